//! The logging thread of ingestion: folds concurrent requests into one redo record per
//! log write, acknowledges them, and hands their operation to the store's writer.
//!
//! Every request's alerts must be durable before its 2xx, and at one alert per request
//! what it costs to make them durable is the request's whole cost. So one thread does
//! group commit for ingestion: it takes every request that arrived while it wrote the
//! previous record, appends them as ONE record to the redo log (one `fdatasync`), answers
//! them, and hands their application to the store's writer. Records fold into ONE store
//! operation (one incident update per incident) until it is worth handing over: enough
//! requests or alerts, 10 ms old, or somebody waiting to read them ([`Pending::ripe`]);
//! while the writer is busy they keep folding. Requests that arrive while it writes wait
//! for the next record, so the busier the daemon, the bigger the records and operations.
//! A quiet daemon logs and answers every request alone at once, and applies it within
//! 10 ms, at once if a reader or a `?wait=applied` sender is waiting.
//!
//! A request is answered once its record is on disk ([`Wait::Durable`]): from then on a
//! crash cannot lose it, and readers wait until it is applied
//! ([`crate::store::Store::caught_up`]). A sender that wants to know what its alerts did
//! waits for the application too ([`Wait::Applied`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::WriteTransaction;
use tokio::sync::oneshot;

use super::alerts::{IngestSummary, ingest_many_in_tx};
use super::redo_record::{self, BodyParser, IngestRecord, Kept};
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

/// One waiting request.
struct Waiting {
    record: IngestRecord,
    /// What the redo log keeps of it.
    kept: Kept,
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

/// How the redo log keeps a request, as its sender gave it.
#[derive(Debug, Clone)]
pub enum Source {
    /// The body as received, which a replay parses again with the integration's settings:
    /// for the sources whose parse is deterministic.
    Body(Bytes),
    /// The parsed alerts themselves (a PagerDuty event may get a generated dedup key).
    Parsed,
}

/// Ingests `batch` (parsed from `source`) for `integration`: answers once it is durable,
/// and with what it did if `wait` is [`Wait::Applied`]. Sheds load with
/// [`AppError::Busy`] (503) when the queue is full.
pub(crate) async fn submit(
    app: &App,
    integration: Arc<Integration>,
    batch: Batch,
    source: Source,
    wait: Wait,
) -> AppResult<Option<IngestSummary>> {
    let kept = match source {
        Source::Body(body) => Kept::Body(body),
        Source::Parsed => Kept::Batch(
            serde_json::to_vec(&batch)
                .map_err(|e| AppError::Internal(format!("cannot encode a redo record: {e}")))?,
        ),
    };
    let record = IngestRecord {
        now: app.clock.now(),
        integration,
        batch,
    };
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
        kept,
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
    /// Durable writes handed to the store while the log is off, not yet committed.
    unlogged: Arc<AtomicUsize>,
    /// Shutting down: hand over without waiting for the writer (it may be stalled).
    closing: Arc<AtomicBool>,
}

/// Logged records waiting to be handed to the store as one operation.
struct Pending {
    /// The requests of its records, applied in one session (the records after the first
    /// say so in the log: they join the session of the record before them).
    requests: Vec<IngestRecord>,
    applied: AppliedReplies,
    /// The first and last records' sequence numbers.
    first_seq: u64,
    last_seq: u64,
    bytes: u64,
    alerts: usize,
    /// When its first record was logged.
    since: Instant,
}

impl Pending {
    /// Whether it is worth an operation of its own yet. Every operation costs the writer a
    /// fixed amount besides its requests (a session, an update per incident, a commit:
    /// about as much as ten requests), so records fold until there are enough of them or
    /// they have waited long enough; but not when someone waits for them to be applied.
    /// Holds as much as may trail the log: the log waits for the writer until it is
    /// handed over. Requests count besides alerts (an empty batch still costs a session
    /// entry and its bytes).
    fn full(&self) -> bool {
        self.alerts >= MAX_PENDING_ALERTS
            || self.requests.len() >= MAX_PENDING_ALERTS
            || self.bytes >= MAX_PENDING_BYTES
    }

    fn ripe(&self, store: &Store) -> bool {
        self.requests.len() >= FOLD_REQUESTS
            || self.alerts >= FOLD_ALERTS
            || self.since.elapsed() >= FOLD_WAIT
            || self.applied.iter().any(Option::is_some)
            || store.readers_waiting()
    }
}

/// Operations handed to the store at once. While the writer applies one, newly logged
/// records fold into the next: the busier the writer, the fewer and bigger its operations
/// (one incident update per incident each).
const APPLYING: usize = 1;

/// Requests that make a pending operation worth handing over (see [`Pending::ripe`]).
const FOLD_REQUESTS: usize = 128;
/// Alerts that do.
const FOLD_ALERTS: usize = 512;
/// Longest a pending operation folds while nobody waits for it: what a reader that
/// arrives meanwhile does not wait for (it asks for the records at once).
const FOLD_WAIT: Duration = Duration::from_millis(10);

/// Most alerts folded into one pending operation. A full one waits for the writer (and
/// the log with it, so that requests queue and, past the queue, get 503): acknowledged
/// alerts never trail their application by more than a few such operations.
const MAX_PENDING_ALERTS: usize = 2048;

/// Most record bytes folded into one pending operation (see [`MAX_PENDING_ALERTS`]).
const MAX_PENDING_BYTES: u64 = 2 * MAX_GROUP_BYTES as u64;

/// Most durable writes in flight once the log is off (a failed disk): the logging thread
/// waits for the writer beyond that, so requests queue and get 503 rather than pile up.
const MAX_UNLOGGED: usize = 8;

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
            unlogged: Arc::new(AtomicUsize::new(0)),
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
            let mut bytes = first.kept.len();
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(w) if bytes + w.kept.len() > MAX_GROUP_BYTES => {
                        carried = Some(w);
                        break;
                    }
                    Ok(w) => {
                        bytes += w.kept.len();
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

    /// Waits until fewer than `limit` operations counted by `in_flight` are in the store
    /// (or shutdown begins: the writer may be stalled). Meanwhile requests queue in front
    /// of this thread, and past the queue get 503.
    fn wait_below(&self, in_flight: &AtomicUsize, limit: usize) {
        while in_flight.load(Ordering::Acquire) >= limit && !self.closing.load(Ordering::Acquire) {
            std::thread::sleep(PENDING_POLL);
        }
    }

    /// Hands the pending records to the store as one operation if the writer has room
    /// (or `anyway`).
    fn hand_over(&mut self, anyway: bool) {
        if !anyway && !self.pending.as_ref().is_some_and(|p| p.ripe(&self.store)) {
            return;
        }
        if !anyway && self.applying.load(Ordering::Acquire) >= APPLYING {
            if !self.pending.as_ref().is_some_and(Pending::full) {
                return;
            }
            self.wait_below(&self.applying, APPLYING);
        }
        let Some(p) = self.pending.take() else { return };
        let sessions = vec![p.requests];
        let mut applier = Applier::default();
        let op = move |tx: &WriteTransaction| applier.apply(tx, &sessions);
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
        // Decided here, written in the record, and done below: records logged while an
        // operation is pending join its session, in the live daemon and in a replay.
        let joins = self.pending.is_some();
        metrics::histogram!("incidentd_ingest_record_requests").record(group.len() as f64);
        let bytes = redo_record::encode(joins, group.iter().map(|w| (&w.record, &w.kept)));
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
                requests: Vec::new(),
                applied: Vec::new(),
                first_seq: seq,
                last_seq: seq,
                bytes: 0,
                alerts: 0,
                since: Instant::now(),
            });
            p.alerts += records.iter().map(|r| r.batch.alerts.len()).sum::<usize>();
            p.requests.extend(records);
            p.applied.extend(applied);
            p.last_seq = seq;
            p.bytes += record_len;
            self.hand_over(false);
            return;
        }
        // Not in the log: a durable write, behind what is pending.
        self.hand_over(true);
        self.wait_below(&self.unlogged, MAX_UNLOGGED);
        let records = vec![records];
        let mut applier = Applier::default();
        let op = move |tx: &WriteTransaction| applier.apply(tx, &records);
        let seq = appended.map(|(seq, _)| seq);
        match self.store.hand_over_logged(FromLog::Unlogged { seq }, op) {
            Ok(outcome) => {
                self.unlogged.fetch_add(1, Ordering::AcqRel);
                let unlogged = self.unlogged.clone();
                self.runtime.spawn(async move {
                    let result: AppResult<Outcomes> = outcome.await;
                    unlogged.fetch_sub(1, Ordering::AcqRel);
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

/// Applies sessions of logged requests, each session in one [`super::alerts`] session
/// (live and in a replay alike: the log says which records share a session, so that a
/// replay after a crash does exactly what the live daemon did), and gets past requests
/// that cannot be applied.
///
/// A request was acknowledged before it was applied, so a request that fails for a reason
/// other than the store (its integration's service was deleted meanwhile, say) cannot be
/// answered with the error; and retrying it as it is would stop every record behind it.
/// So an attempt that fails that way marks its session to be applied one request at a time
/// on the next attempt, and a request that fails alone to be skipped (logged, and told to
/// a sender that waits for the application). The store aborts a failed attempt and runs
/// the operation again, so nothing of a skipped request is kept. Store errors (and
/// panics) are returned as they are: the attempt is simply tried again.
#[derive(Debug, Default)]
struct Applier {
    /// Sessions (by index) applied one request at a time.
    isolate: BTreeSet<usize>,
    /// Requests (session, request) skipped, with why.
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
    /// Applies `sessions` (the requests of each, in log order); one result per request,
    /// in order.
    fn apply(
        &mut self,
        tx: &WriteTransaction,
        sessions: &[Vec<IngestRecord>],
    ) -> AppResult<Vec<Result<IngestSummary, String>>> {
        let mut out = Vec::new();
        for (g, group) in sessions.iter().enumerate() {
            if !self.isolate.contains(&g) {
                match ingest_many_in_tx(
                    tx,
                    group.iter().map(|r| (r.now, &*r.integration, &r.batch)),
                ) {
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
                match ingest_many_in_tx(tx, std::iter::once((r.now, &*r.integration, &r.batch))) {
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

/// Requests replayed per transaction at start-up (whole sessions: a little more).
const REPLAY_CHUNK: usize = 256;
/// Attempts at one chunk before start-up gives up.
const REPLAY_ATTEMPTS: usize = 64;

/// The sessions of a backlog, in log order, each with the number of its last record.
fn sessions(
    backlog: &[(u64, Vec<u8>)],
    parse: &BodyParser,
) -> AppResult<Vec<(u64, Vec<IngestRecord>)>> {
    let mut out: Vec<(u64, Vec<IngestRecord>)> = Vec::new();
    for (seq, bytes) in backlog {
        let record = redo_record::decode(bytes, parse).map_err(|e| {
            AppError::Internal(format!(
                "redo log record {seq} does not decode ({e}); the store holds everything up to the record before it"
            ))
        })?;
        match out.last_mut() {
            // A first record that joins a session begun before the checkpoint cannot
            // happen (checkpoints fall between operations); alone it is its own session.
            Some((last, session)) if record.joins => {
                *last = *seq;
                session.extend(record.requests);
            }
            _ => out.push((*seq, record.requests)),
        }
    }
    Ok(out)
}

/// Replays the ingestions that were acknowledged but not yet checkpointed when the daemon
/// last stopped (a crash), in their original order and sessions, a chunk per durable
/// transaction. `parse` reads the request bodies the log keeps (`crate::ingest::parse`).
/// Runs before the daemon serves. A record that does not decode or apply (after one retry)
/// stops start-up: skipping it would lose acknowledged alerts, and the store is left as the
/// last checkpoint plus the chunks replayed so far, so a restart resumes there.
pub async fn replay_backlog(app: &App, parse: &BodyParser) -> AppResult<usize> {
    let backlog = app.store.take_redo_backlog();
    if backlog.is_empty() {
        return Ok(0);
    }
    let count = backlog.len();
    let mut sessions = sessions(&backlog, parse)?.into_iter().peekable();
    drop(backlog);
    while sessions.peek().is_some() {
        let mut chunk = Vec::new();
        let mut last_seq = 0;
        let mut requests = 0;
        while requests < REPLAY_CHUNK
            && let Some((seq, session)) = sessions.next()
        {
            last_seq = seq;
            requests += session.len().max(1);
            chunk.push(session);
        }
        // The applier is shared by the attempts: it remembers what to isolate and skip.
        let applier = Arc::new(Mutex::new(Applier::default()));
        let chunk = Arc::new(chunk);
        let mut attempt = 0;
        loop {
            let (shared, applier) = (chunk.clone(), applier.clone());
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
    use chrono::{DateTime, Utc};

    use crate::app::redo_record::test_integration as integration;

    fn record(i: &Arc<Integration>, fingerprint: &str, second: i64) -> IngestRecord {
        IngestRecord {
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
        }
    }

    /// Without the redo log (it failed, or another queue took it) every request becomes a
    /// durable redb commit. Only so many may be in flight, and each frees its place once
    /// committed: many more than that, one after another and at once, all get through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_the_log_requests_commit_durably_and_keep_flowing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::config::Config {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let app =
            Arc::new(App::open(config, Arc::new(crate::domain::clock::SystemClock)).expect("app"));
        drop(app.store.take_redo_appender());
        let i = integration(1, "a");
        let in_turn = 3 * MAX_UNLOGGED;
        for n in 0..in_turn {
            let wait = if n % 2 == 0 {
                Wait::Durable
            } else {
                Wait::Applied
            };
            let answer = tokio::time::timeout(
                Duration::from_secs(10),
                submit(
                    &app,
                    i.clone(),
                    record(&i, &format!("s{n}"), 1).batch,
                    Source::Parsed,
                    wait,
                ),
            )
            .await
            .unwrap_or_else(|_| panic!("request {n} was not answered"))
            .expect("stored");
            assert_eq!(answer.is_some(), wait == Wait::Applied);
        }
        let mut at_once = tokio::task::JoinSet::new();
        for n in 0..4 * MAX_UNLOGGED {
            let (app, i) = (app.clone(), i.clone());
            at_once.spawn(async move {
                let batch = record(&i, &format!("c{n}"), 1).batch;
                submit(&app, i, batch, Source::Parsed, Wait::Durable).await
            });
        }
        let answers = tokio::time::timeout(Duration::from_secs(20), at_once.join_all())
            .await
            .expect("every concurrent request answered");
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        let r = app.store.read().expect("read");
        let stored =
            crate::store::access::Reader::len(&r, crate::store::tables::ALERTS).expect("count");
        assert_eq!(stored as usize, in_turn + 4 * MAX_UNLOGGED);
        drop(r);
        app.ingest_queue.shutdown().await;
        app.store.shutdown().await;
    }

    /// Requests without alerts (Alertmanager's `"alerts": []`) still fill a pending
    /// operation, so that a stalled writer backs them up into 503s too.
    #[test]
    fn a_pending_operation_is_full_by_alerts_requests_or_bytes() {
        let i = integration(1, "a");
        let pending = |requests: Vec<IngestRecord>, bytes: u64| Pending {
            alerts: requests.iter().map(|r| r.batch.alerts.len()).sum(),
            requests,
            applied: Vec::new(),
            first_seq: 1,
            last_seq: 1,
            bytes,
            since: Instant::now(),
        };
        let empty = || {
            let mut r = record(&i, "x", 1);
            r.batch.alerts.clear();
            r
        };
        assert!(!pending((0..10).map(|_| empty()).collect(), 100).full());
        assert!(pending((0..MAX_PENDING_ALERTS).map(|_| empty()).collect(), 100).full());
        assert!(pending(vec![empty()], MAX_PENDING_BYTES).full());
        let many = (0..MAX_PENDING_ALERTS)
            .map(|n| record(&i, &format!("f{n}"), 1))
            .collect();
        assert!(pending(many, 100).full());
    }

    /// A backlog falls into the sessions its records name: a record that joins goes with
    /// the one before it, and a first record that joins (its session began before the
    /// checkpoint, which cannot happen) stands alone.
    #[test]
    fn a_backlog_is_replayed_in_the_sessions_the_log_names() {
        let i = integration(1, "a");
        let parse = |_: IntegrationKind, body: &[u8], _: &IntegrationSettings| {
            let fp = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            Ok(record(&integration(1, "a"), fp, 0).batch)
        };
        let rec = |joins: bool, fps: &[&str]| {
            let requests: Vec<(IngestRecord, Kept)> = fps
                .iter()
                .map(|fp| {
                    (
                        record(&i, fp, 0),
                        Kept::Body(Bytes::copy_from_slice(fp.as_bytes())),
                    )
                })
                .collect();
            redo_record::encode(joins, requests.iter().map(|(r, k)| (r, k)))
        };
        let backlog = vec![
            (7, rec(true, &["a"])),
            (8, rec(false, &["b", "c"])),
            (9, rec(true, &["d"])),
            (10, rec(true, &["e"])),
            (11, rec(false, &["f"])),
        ];
        let got: Vec<(u64, Vec<String>)> = sessions(&backlog, &parse)
            .expect("sessions")
            .into_iter()
            .map(|(seq, requests)| {
                let fps = requests
                    .iter()
                    .map(|r| r.batch.alerts[0].fingerprint.clone())
                    .collect();
                (seq, fps)
            })
            .collect();
        let want: Vec<(u64, Vec<String>)> = vec![
            (7, vec!["a".into()]),
            (10, vec!["b".into(), "c".into(), "d".into(), "e".into()]),
            (11, vec!["f".into()]),
        ];
        assert_eq!(got, want);
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
        let mut orphan = (*integration(2, "orphan")).clone();
        orphan.service_id = 999;
        let orphan = Arc::new(orphan);
        let records = vec![
            vec![record(&good, "g1", 10)],
            vec![
                record(&good, "g2", 11),
                record(&orphan, "o1", 11),
                record(&good, "g3", 11),
            ],
            vec![record(&good, "g4", 12)],
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
}

/// Writer cost per request by session size, without HTTP or the load generator:
/// `cargo test --release --lib apply_cost -- --ignored --nocapture`.
#[cfg(test)]
mod apply_cost {
    use super::*;
    use crate::domain::integration::IntegrationKind;
    use chrono::Utc;

    fn thread_cpu_us(name: &str) -> u64 {
        let mut total = 0;
        for t in std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
        {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
            let f: Vec<&str> = after.split(' ').collect();
            total += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        }
        total * 10_000
    }

    fn body(i: usize) -> String {
        format!(
            r#"{{"receiver":"incidentd","status":"firing","alerts":[{{"status":"firing","labels":{{"alertname":"Bench0","severity":"critical","instance":"host-{i}-0:9100","job":"bench"}},"annotations":{{"summary":"bench alert {i}/0","description":"synthetic load from alertmanager-bench.sh"}},"startsAt":"2025-11-24T09:12:31.482Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://127.0.0.1:9090/graph","fingerprint":"{i:016x}"}}],"groupLabels":{{"alertname":"Bench0"}},"commonLabels":{{"alertname":"Bench0","job":"bench","severity":"critical"}},"commonAnnotations":{{"description":"synthetic load from alertmanager-bench.sh"}},"externalURL":"http://127.0.0.1:9093","version":"4","groupKey":"{{}}:{{alertname=\"Bench0\"}}","truncatedAlerts":0}}"#
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn apply_cost() {
        let sizes: Vec<usize> = std::env::var("APPLY_SIZES")
            .ok()
            .map_or(vec![1, 4, 16, 64, 256], |v| {
                v.split(',').filter_map(|x| x.parse().ok()).collect()
            });
        for size in sizes {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(
                &dir.path().join("s.redb"),
                &crate::store::StoreOptions::default(),
            )
            .expect("store");
            let integration = crate::app::redo_record::test_integration(1, "bench");
            let total = 20_000usize;
            let mut appender = store.take_redo_appender().expect("appender");
            let now = Utc::now();
            let before = thread_cpu_us("incidentd-write");
            let started = std::time::Instant::now();
            let handle = tokio::runtime::Handle::current();
            let store2 = store.clone();
            let integration2 = integration.clone();
            tokio::task::spawn_blocking(move || {
                let (store, integration) = (store2, integration2);
                let mut waits = Vec::new();
                for chunk in 0..total / size {
                    let requests: Vec<IngestRecord> = (0..size)
                        .map(|j| {
                            let b = body(chunk * size + j);
                            IngestRecord {
                                now,
                                integration: integration.clone(),
                                batch: crate::ingest::parse(
                                    IntegrationKind::Alertmanager,
                                    b.as_bytes(),
                                    &integration.settings,
                                )
                                .expect("parse"),
                            }
                        })
                        .collect();
                    let (seq, appended) = appender.append(b"x".to_vec());
                    appended.expect("append");
                    let sessions = vec![requests];
                    let mut applier = Applier::default();
                    let op = move |tx: &WriteTransaction| applier.apply(tx, &sessions);
                    let wait = store
                        .hand_over_logged(
                            FromLog::Applied {
                                first: seq,
                                last: seq,
                                record_len: 1,
                            },
                            op,
                        )
                        .expect("hand over");
                    waits.push(wait);
                    if waits.len() >= 2 {
                        handle.block_on(waits.remove(0)).expect("applied");
                    }
                }
                for w in waits {
                    handle.block_on(w).expect("applied");
                }
            })
            .await
            .expect("bench thread");
            let cpu = thread_cpu_us("incidentd-write") - before;
            println!(
                "session of {size:>3}: writer {:>5.1} us/request, wall {:>5.1} us/request",
                cpu as f64 / total as f64,
                started.elapsed().as_micros() as f64 / total as f64
            );
            store.shutdown().await;
        }
    }
}
