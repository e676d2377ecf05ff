//! The logging thread of ingestion: folds concurrent requests into one redo record per
//! log write, acknowledges them, and hands their operation to the store's writer.
//!
//! Every request's alerts must be durable before its 2xx, and at one alert per request
//! what it costs to make them durable is the request's whole cost. So one thread does
//! group commit for ingestion: it takes every request that arrived while it wrote the
//! previous record, appends them as ONE record to the redo log (one `fdatasync`), answers
//! them, and hands their application to the store's writer; records logged while the
//! writer is busy fold into ONE store operation (one incident update per incident).
//! Requests that arrive while it writes wait for the next record, so the busier the
//! daemon, the bigger the records and operations; a quiet one handles every request alone
//! at once.
//!
//! A request is answered once its record is on disk ([`Wait::Durable`]): from then on a
//! crash cannot lose it, and readers wait until it is applied
//! ([`crate::store::Store::caught_up`]). A sender that wants to know what its alerts did
//! waits for the application too ([`Wait::Applied`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::alerts::{IngestSummary, ingest_many_in_tx};
use super::{App, AppError, AppResult};
use crate::domain::alert::Batch;
use crate::domain::integration::Integration;
use crate::store::redo::RedoAppender;
use crate::store::{FromLog, Store};

/// Most requests folded into one record.
const MAX_GROUP: usize = 512;
/// Most bytes of requests folded into one record (a request alone may be bigger, up to
/// the hook body limit): records stay far below what the log reads back.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;

/// What an ingestion request waits for before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Its alerts are durably stored (in the redo log).
    Durable,
    /// Also applied: incidents opened or updated, with what happened to each alert.
    Applied,
}

/// Everything one ingestion depends on besides the store. Replaying it against the store
/// as it was gives the same result: ingestion reads nothing else (the clock is in the
/// record, and the integration as it was when the request came).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IngestRecord {
    pub now: DateTime<Utc>,
    pub integration: Integration,
    pub batch: Batch,
}

/// A request's part of a redo record: the integration is stored once per group.
#[derive(Serialize, Deserialize)]
struct RequestRecord {
    now: DateTime<Utc>,
    batch: Batch,
}

/// A group's redo record: `requests` are `(index into integrations, request)`.
#[derive(Deserialize)]
struct GroupRecord {
    integrations: Vec<Integration>,
    requests: Vec<(usize, RequestRecord)>,
}

impl GroupRecord {
    fn into_records(self) -> Result<Vec<IngestRecord>, String> {
        self.requests
            .into_iter()
            .map(|(i, r)| {
                let integration = self
                    .integrations
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("no integration #{i} in the record"))?;
                Ok(IngestRecord {
                    now: r.now,
                    integration,
                    batch: r.batch,
                })
            })
            .collect()
    }
}

/// One waiting request.
struct Waiting {
    record: IngestRecord,
    /// Its [`RequestRecord`] as JSON, encoded on the request's own task.
    encoded: Vec<u8>,
    /// Told once the request is durable (or why it is not).
    durable: oneshot::Sender<AppResult<()>>,
    /// Told what the request did once applied, if the sender waits for that.
    applied: Option<oneshot::Sender<AppResult<IngestSummary>>>,
}

/// The queue in front of the logging thread; the thread starts on first use.
#[derive(Default)]
pub struct IngestQueue {
    running: Mutex<Option<Running>>,
    /// Set by [`IngestQueue::shutdown`]: no new thread, and the running one stops waiting
    /// for the writer.
    closing: Arc<AtomicBool>,
}

/// The logging thread and the way to it.
struct Running {
    sender: std::sync::mpsc::SyncSender<Waiting>,
    thread: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for IngestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestQueue").finish_non_exhaustive()
    }
}

impl IngestQueue {
    fn sender(&self, app: &App) -> AppResult<std::sync::mpsc::SyncSender<Waiting>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = running.as_ref() {
            return Ok(r.sender.clone());
        }
        if self.closing.load(Ordering::Acquire) {
            return Err(AppError::Unavailable("shutting down".into()));
        }
        let (sender, rx) = std::sync::mpsc::sync_channel(app.config.store.write_queue.max(1));
        let logger = Logger::new(
            app.store.clone(),
            app.store.take_redo_appender(),
            tokio::runtime::Handle::current(),
            self.closing.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("incidentd-ingest".into())
            .spawn(move || logger.run(rx))
            .map_err(|e| AppError::Internal(format!("cannot start the ingestion thread: {e}")))?;
        *running = Some(Running {
            sender: sender.clone(),
            thread,
        });
        Ok(sender)
    }

    /// Stops taking requests and waits until every one taken is logged and handed to the
    /// store (call before the store shuts down).
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::Release);
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(Running { sender, thread }) = running {
            drop(sender);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Ingests `batch` for `integration`: answers once it is durable, and with what it did
/// if `wait` is [`Wait::Applied`]. Sheds load with [`AppError::Busy`] (503) when the queue
/// is full.
pub(crate) async fn submit(
    app: &App,
    integration: Integration,
    batch: Batch,
    wait: Wait,
) -> AppResult<Option<IngestSummary>> {
    let record = IngestRecord {
        now: app.clock.now(),
        integration,
        batch,
    };
    let encoded = serde_json::to_vec(&RequestRecordRef {
        now: record.now,
        batch: &record.batch,
    })
    .map_err(|e| AppError::Internal(format!("cannot encode a redo record: {e}")))?;
    let (durable, is_durable) = oneshot::channel();
    let (applied, is_applied) = match wait {
        Wait::Durable => (None, None),
        Wait::Applied => {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        }
    };
    let waiting = Waiting {
        record,
        encoded,
        durable,
        applied,
    };
    let stopped = || AppError::Unavailable("ingestion stopped".into());
    app.ingest_queue
        .sender(app)?
        .try_send(waiting)
        .map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(_) => AppError::Busy,
            std::sync::mpsc::TrySendError::Disconnected(_) => stopped(),
        })?;
    is_durable.await.unwrap_or_else(|_| Err(stopped()))?;
    match is_applied {
        None => Ok(None),
        Some(rx) => rx.await.unwrap_or_else(|_| Err(stopped())).map(Some),
    }
}

/// What the senders who wait for the application of a record are told.
type AppliedReplies = Vec<Option<oneshot::Sender<AppResult<IngestSummary>>>>;

/// The logging thread.
struct Logger {
    store: Store,
    /// `None` if another queue took it (then every write is a durable commit).
    appender: Option<RedoAppender>,
    /// Where the waits for applications run.
    runtime: tokio::runtime::Handle,
    /// Logged records not yet handed to the store, folded into one operation.
    pending: Option<Pending>,
    /// Operations handed to the store and not yet applied.
    applying: Arc<AtomicUsize>,
    /// Shutting down: hand over without waiting for the writer (it may be stalled).
    closing: Arc<AtomicBool>,
}

/// Logged records waiting to be handed to the store as one operation.
struct Pending {
    /// One `Vec` per log record.
    records: Vec<Vec<IngestRecord>>,
    applied: AppliedReplies,
    /// The first and last records' sequence numbers.
    first_seq: u64,
    last_seq: u64,
    bytes: u64,
    alerts: usize,
}

/// Operations handed to the store at once. While the writer applies them, newly logged
/// records fold into one pending operation: the busier the writer, the fewer and bigger
/// its operations (one incident update per incident each).
const APPLYING: usize = 2;

/// Most alerts folded into one pending operation. A full one waits for the writer (and
/// the log with it, so that requests queue and, past the queue, get 503): acknowledged
/// alerts never trail their application by more than a few such operations.
const MAX_PENDING_ALERTS: usize = 2048;

/// How often a thread with a pending operation looks whether the writer has room.
const PENDING_POLL: Duration = Duration::from_micros(250);

impl Logger {
    fn new(
        store: Store,
        appender: Option<RedoAppender>,
        runtime: tokio::runtime::Handle,
        closing: Arc<AtomicBool>,
    ) -> Self {
        Self {
            store,
            appender,
            runtime,
            pending: None,
            applying: Arc::new(AtomicUsize::new(0)),
            closing,
        }
    }

    /// Ends when every sender is gone and the queue is empty, with everything handed over.
    fn run(mut self, rx: std::sync::mpsc::Receiver<Waiting>) {
        // A request that would have made the previous record too big.
        let mut carried: Option<Waiting> = None;
        loop {
            let first = if let Some(w) = carried.take() {
                w
            } else if self.pending.is_some() {
                match rx.recv_timeout(PENDING_POLL) {
                    Ok(w) => w,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        self.hand_over(false);
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(w) => w,
                    Err(_) => break,
                }
            };
            let mut bytes = first.encoded.len();
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(w) if bytes + w.encoded.len() > MAX_GROUP_BYTES => {
                        carried = Some(w);
                        break;
                    }
                    Ok(w) => {
                        bytes += w.encoded.len();
                        group.push(w);
                    }
                    Err(_) => break,
                }
            }
            self.log(group);
        }
        if let Some(w) = carried {
            self.log(vec![w]);
        }
        self.hand_over(true);
    }

    /// Hands the pending records to the store as one operation if the writer has room
    /// (or `anyway`).
    fn hand_over(&mut self, anyway: bool) {
        if !anyway && self.applying.load(Ordering::Acquire) >= APPLYING {
            let full = self
                .pending
                .as_ref()
                .is_some_and(|p| p.alerts >= MAX_PENDING_ALERTS);
            if !full {
                return;
            }
            while self.applying.load(Ordering::Acquire) >= APPLYING
                && !self.closing.load(Ordering::Acquire)
            {
                std::thread::sleep(PENDING_POLL);
            }
        }
        let Some(p) = self.pending.take() else { return };
        let records = p.records;
        let mut applier = Applier::default();
        let op = move |tx: &WriteTransaction| applier.apply(tx, &records);
        match self.store.hand_over_logged(
            FromLog::Applied {
                first: p.first_seq,
                last: p.last_seq,
                record_len: p.bytes,
            },
            op,
        ) {
            Ok(outcome) => {
                self.applying.fetch_add(1, Ordering::AcqRel);
                let applying = self.applying.clone();
                self.runtime.spawn(async move {
                    let result = outcome.await;
                    applying.fetch_sub(1, Ordering::AcqRel);
                    answer_applied(result, p.applied);
                });
            }
            // Shutting down: the records are replayed at the next start.
            Err(e) => answer_applied(Err(e.into()), p.applied),
        }
    }

    /// Logs a group as one record and answers each request once it is durable; the
    /// application follows (see [`Logger::hand_over`]).
    fn log(&mut self, group: Vec<Waiting>) {
        let bytes = group_record(group.iter().map(|w| (&w.record, w.encoded.as_slice())));
        let record_len = bytes.len() as u64;
        let mut records = Vec::with_capacity(group.len());
        let mut durable = Vec::with_capacity(group.len());
        let mut applied: AppliedReplies = Vec::with_capacity(group.len());
        for w in group {
            records.push(w.record);
            durable.push(w.durable);
            applied.push(w.applied);
        }
        let appended = self.appender.as_mut().map(|a| a.append(bytes));
        if let Some((seq, Ok(()))) = appended {
            for d in durable {
                let _ = d.send(Ok(()));
            }
            let p = self.pending.get_or_insert_with(|| Pending {
                records: Vec::new(),
                applied: Vec::new(),
                first_seq: seq,
                last_seq: seq,
                bytes: 0,
                alerts: 0,
            });
            p.alerts += records.iter().map(|r| r.batch.alerts.len()).sum::<usize>();
            p.records.push(records);
            p.applied.extend(applied);
            p.last_seq = seq;
            p.bytes += record_len;
            self.hand_over(false);
            return;
        }
        // Not in the log: a durable write, behind what is pending.
        self.hand_over(true);
        let records = vec![records];
        let mut applier = Applier::default();
        let op = move |tx: &WriteTransaction| applier.apply(tx, &records);
        let seq = appended.map(|(seq, _)| seq);
        match self.store.hand_over_logged(FromLog::Unlogged { seq }, op) {
            Ok(outcome) => {
                self.runtime.spawn(async move {
                    let result: AppResult<Outcomes> = outcome.await;
                    for d in durable {
                        let _ = d.send(match &result {
                            Ok(_) => Ok(()),
                            Err(e) => Err(shared_error(e)),
                        });
                    }
                    answer_applied(result, applied);
                });
            }
            Err(e) => {
                let e = AppError::from(e);
                for d in durable {
                    let _ = d.send(Err(shared_error(&e)));
                }
            }
        }
    }
}

/// The same failure for each request of a group (503s stay 503s).
fn shared_error(e: &AppError) -> AppError {
    match e {
        AppError::Busy => AppError::Busy,
        AppError::Unavailable(why) => AppError::Unavailable(why.clone()),
        other => AppError::Internal(other.to_string()),
    }
}

/// What each request of an operation did, or why it was skipped.
type Outcomes = Vec<Result<IngestSummary, String>>;

/// Tells the senders who wait for the application what their requests did.
fn answer_applied(result: AppResult<Outcomes>, applied: AppliedReplies) {
    match result {
        Ok(outcomes) => {
            for (reply, outcome) in applied.into_iter().zip(outcomes) {
                if let Some(reply) = reply {
                    // The state conflicts with the request (409): no retry will help.
                    let _ = reply.send(outcome.map_err(|why| {
                        AppError::Conflict(format!(
                            "the alerts are stored, but could not be applied: {why}"
                        ))
                    }));
                }
            }
        }
        Err(e) => {
            for reply in applied.into_iter().flatten() {
                let _ = reply.send(Err(shared_error(&e)));
            }
        }
    }
}

/// [`RequestRecord`] by reference, for encoding.
#[derive(Serialize)]
struct RequestRecordRef<'a> {
    now: DateTime<Utc>,
    batch: &'a Batch,
}

/// The redo record of requests: each distinct integration once, then the requests.
fn group_record<'a>(requests: impl Iterator<Item = (&'a IngestRecord, &'a [u8])>) -> Vec<u8> {
    let mut integrations: Vec<&Integration> = Vec::new();
    let mut out = Vec::new();
    out.extend_from_slice(b",\"requests\":[");
    for (n, (record, encoded)) in requests.enumerate() {
        let index = match integrations.iter().position(|i| **i == record.integration) {
            Some(i) => i,
            None => {
                integrations.push(&record.integration);
                integrations.len() - 1
            }
        };
        if n > 0 {
            out.push(b',');
        }
        out.push(b'[');
        out.extend_from_slice(index.to_string().as_bytes());
        out.push(b',');
        out.extend_from_slice(encoded);
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
    let mut head = b"{\"integrations\":".to_vec();
    // Integrations are plain data: encoding them cannot fail.
    head.extend(serde_json::to_vec(&integrations).unwrap_or_else(|_| b"[]".to_vec()));
    head.extend(out);
    head
}

/// Applies log records, each in its own [`super::alerts`] session (live and in a replay
/// alike, so that a replay after a crash does exactly what the live daemon did), and
/// gets past requests that cannot be applied.
///
/// A request was acknowledged before it was applied, so a request that fails for a reason
/// other than the store (its integration's service was deleted meanwhile, say) cannot be
/// answered with the error; and retrying it as it is would stop every record behind it.
/// So an attempt that fails that way marks its record to be applied one request at a time
/// on the next attempt, and a request that fails alone to be skipped (logged, and told to
/// a sender that waits for the application). The store aborts a failed attempt and runs
/// the operation again, so nothing of a skipped request is kept. Store errors (and
/// panics) are returned as they are: the attempt is simply tried again.
#[derive(Debug, Default)]
struct Applier {
    /// Records (by index) applied one request at a time.
    isolate: BTreeSet<usize>,
    /// Requests (record, request) skipped, with why.
    skip: BTreeMap<(usize, usize), String>,
}

/// Whether a failure may go away when tried again (the store) or not (the request).
fn transient(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Internal(_) | AppError::Busy | AppError::Unavailable(_)
    )
}

impl Applier {
    /// Applies `records` (one `Vec` per log record); one result per request, in order.
    fn apply(
        &mut self,
        tx: &WriteTransaction,
        records: &[Vec<IngestRecord>],
    ) -> AppResult<Vec<Result<IngestSummary, String>>> {
        let mut out = Vec::new();
        for (g, group) in records.iter().enumerate() {
            if !self.isolate.contains(&g) {
                match ingest_many_in_tx(tx, group.iter().map(|r| (r.now, &r.integration, &r.batch)))
                {
                    Ok(summaries) => {
                        out.extend(summaries.into_iter().map(Ok));
                        continue;
                    }
                    Err(e) if transient(&e) => return Err(e),
                    Err(e) => {
                        self.isolate.insert(g);
                        return Err(e);
                    }
                }
            }
            for (i, r) in group.iter().enumerate() {
                if let Some(why) = self.skip.get(&(g, i)) {
                    out.push(Err(why.clone()));
                    continue;
                }
                match ingest_many_in_tx(tx, std::iter::once((r.now, &r.integration, &r.batch))) {
                    Ok(mut summary) => {
                        out.push(summary.pop().ok_or_else(|| "no summary".to_owned()))
                    }
                    Err(e) if transient(&e) => return Err(e),
                    Err(e) => {
                        tracing::error!(
                            error = %e,
                            integration = r.integration.id,
                            alerts = r.batch.alerts.len(),
                            "an acknowledged webhook cannot be applied and is skipped"
                        );
                        metrics::counter!("incidentd_ingest_skipped_requests_total").increment(1);
                        self.skip.insert((g, i), e.to_string());
                        return Err(e);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Records replayed per transaction at start-up.
const REPLAY_CHUNK: usize = 256;
/// Attempts at one chunk before start-up gives up.
const REPLAY_ATTEMPTS: usize = 64;

/// Replays the ingestions that were acknowledged but not yet checkpointed when the daemon
/// last stopped (a crash), in their original order, a chunk per durable transaction.
/// Runs before the daemon serves. A record that does not decode or apply (after one retry)
/// stops start-up: skipping it would lose acknowledged alerts, and the store is left as the
/// last checkpoint plus the chunks replayed so far, so a restart resumes there.
pub async fn replay_backlog(app: &App) -> AppResult<usize> {
    let backlog = app.store.take_redo_backlog();
    if backlog.is_empty() {
        return Ok(0);
    }
    let count = backlog.len();
    for chunk in backlog.chunks(REPLAY_CHUNK) {
        let mut groups = Vec::with_capacity(chunk.len());
        for (seq, bytes) in chunk {
            let records = serde_json::from_slice::<GroupRecord>(bytes)
                .map_err(|e| e.to_string())
                .and_then(GroupRecord::into_records)
                .map_err(|e| {
                    AppError::Internal(format!(
                        "redo log record {seq} does not decode ({e}); the store holds everything up to the record before it"
                    ))
                })?;
            groups.push(records);
        }
        let last_seq = chunk.last().map_or(0, |(seq, _)| *seq);
        // The applier is shared by the attempts: it remembers what to isolate and skip.
        let applier = Arc::new(Mutex::new(Applier::default()));
        let groups = Arc::new(groups);
        let mut attempt = 0;
        loop {
            let (shared, applier) = (groups.clone(), applier.clone());
            let replayed = app
                .store
                .replay(last_seq, move |tx| {
                    let mut applier = applier.lock().unwrap_or_else(|e| e.into_inner());
                    applier.apply(tx, &shared).map(drop)
                })
                .await;
            match replayed {
                Ok(()) => break,
                // Each failing request takes two attempts (isolate, skip); a store error
                // gets one more.
                Err(e) if attempt < REPLAY_ATTEMPTS => {
                    tracing::warn!(error = %e, last_seq, attempt, "replaying the redo log failed; trying again");
                    attempt += 1;
                }
                Err(e) => {
                    return Err(AppError::Internal(format!(
                        "replaying the redo log up to record {last_seq} failed: {e}"
                    )));
                }
            }
        }
    }
    tracing::info!(records = count, "replayed the redo log");
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{IncomingAction, IncomingAlert};
    use crate::domain::integration::{IntegrationKind, IntegrationSettings};

    fn integration(id: u64, name: &str) -> Integration {
        Integration {
            id,
            name: name.into(),
            kind: IntegrationKind::Alertmanager,
            token_hash: "hash".into(),
            token_hint: "hint".into(),
            service_id: 1,
            escalation_policy_id: None,
            settings: IntegrationSettings::default(),
            created_by: crate::domain::actor::Actor::system().reference,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn record(i: &Integration, fingerprint: &str, second: i64) -> (IngestRecord, Vec<u8>) {
        let r = IngestRecord {
            now: DateTime::<Utc>::from_timestamp(second, 0).expect("time"),
            integration: i.clone(),
            batch: Batch {
                alerts: vec![IncomingAlert {
                    fingerprint: fingerprint.into(),
                    action: IncomingAction::Fire,
                    labels: [("alertname".to_string(), "A".to_string())].into(),
                    annotations: Default::default(),
                    title: "A".into(),
                    description: String::new(),
                    severity: Some("critical".into()),
                    starts_at: None,
                    ends_at: None,
                    group_key: Some("{}:{}".into()),
                    links: vec![],
                }],
                truncated: 0,
            },
        };
        let encoded = serde_json::to_vec(&RequestRecordRef {
            now: r.now,
            batch: &r.batch,
        })
        .expect("encode");
        (r, encoded)
    }

    #[test]
    fn a_group_record_gives_back_every_request_with_its_own_integration() {
        let a = integration(1, "a");
        let mut a_changed = a.clone();
        a_changed.settings.auto_resolve = false;
        let b = integration(2, "b");
        let requests = vec![
            record(&a, "f1", 10),
            record(&b, "f2", 11),
            record(&a, "f3", 12),
            // The same integration, changed between two requests: both versions are kept.
            record(&a_changed, "f4", 13),
        ];
        let bytes = group_record(requests.iter().map(|(r, e)| (r, e.as_slice())));
        let group: GroupRecord = serde_json::from_slice(&bytes).expect("decode");
        assert_eq!(
            group.integrations.len(),
            3,
            "each distinct integration once"
        );
        let back = group.into_records().expect("records");
        let expected: Vec<IngestRecord> = requests.into_iter().map(|(r, _)| r).collect();
        assert_eq!(back, expected);
    }

    /// A request that cannot be applied (its integration, as logged, names a service that
    /// no longer exists) is isolated, then skipped; the rest of its record and the records
    /// around it are applied, and nothing of the skipped one is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_cannot_be_applied_is_skipped_and_the_rest_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(
            &dir.path().join("s.redb"),
            &crate::store::StoreOptions::default(),
        )
        .expect("store");
        let good = integration(1, "good");
        let mut orphan = integration(2, "orphan");
        orphan.service_id = 999;
        let records = vec![
            vec![record(&good, "g1", 10).0],
            vec![
                record(&good, "g2", 11).0,
                record(&orphan, "o1", 11).0,
                record(&good, "g3", 11).0,
            ],
            vec![record(&good, "g4", 12).0],
        ];
        let applier = Arc::new(Mutex::new(Applier::default()));
        let mut attempts = 0;
        let outcomes = loop {
            attempts += 1;
            assert!(attempts <= 3, "isolate, skip, apply");
            let (applier, records) = (applier.clone(), records.clone());
            let tried = store
                .write(move |tx| {
                    let mut applier = applier.lock().unwrap_or_else(|e| e.into_inner());
                    applier.apply(tx, &records)
                })
                .await;
            if let Ok(outcomes) = tried {
                break outcomes;
            }
        };
        assert_eq!(attempts, 3);
        assert_eq!(outcomes.len(), 5, "one outcome per request");
        let skipped: Vec<_> = outcomes.iter().map(Result::is_err).collect();
        assert_eq!(skipped, [false, false, true, false, false]);
        assert!(
            outcomes[2].as_ref().unwrap_err().contains("999"),
            "{outcomes:?}"
        );
        let r = store.read().expect("read");
        let alerts = crate::store::access::list::<crate::domain::alert::Alert>(
            &r,
            None,
            crate::store::access::Order::Asc,
            100,
        )
        .expect("alerts");
        let fps: Vec<_> = alerts.iter().map(|a| a.fingerprint.as_str()).collect();
        assert_eq!(
            fps,
            ["g1", "g2", "g3", "g4"],
            "nothing of the skipped request"
        );
        drop(r);
        store.shutdown().await;
    }

    #[test]
    fn a_record_naming_a_missing_integration_is_refused() {
        let bytes = br#"{"integrations":[],"requests":[[0,{"now":"2026-01-01T00:00:00Z","batch":{"alerts":[],"truncated":0}}]]}"#;
        let group: GroupRecord = serde_json::from_slice(bytes).expect("decode");
        assert!(group.into_records().is_err());
    }
}
