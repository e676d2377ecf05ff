//! Folds concurrent ingestion requests into one store operation.
//!
//! At one alert per request, the per-request part of ingestion (reading and rewriting the
//! incident, its timeline entry and event, opening tables) costs more than the alert. The
//! queue lets requests pile up while the store works on the previous group (at most
//! [`IN_FLIGHT`] groups are in the store at once) and hands each group to the store as one
//! logged operation: one transaction step, one incident update per incident, one redo
//! record. A quiet daemon sends every request alone at once; a busy one folds them, which is
//! group commit one level up.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::alerts::{IngestSummary, ingest_many_in_tx};
use super::{App, AppError, AppResult};
use crate::domain::alert::Batch;
use crate::domain::integration::Integration;
use crate::store::Store;

/// Groups in the store at once: while one is applied, the ones before wait for their redo
/// record to reach the disk and the next is already queued, so the writer never waits for
/// the queue. Measured on 2 cores: 2 left the writer idle a tenth of the time at 100
/// alerts per request; 4 and 6 did equally well.
const IN_FLIGHT: usize = 4;
/// Most requests folded into one group.
const MAX_GROUP: usize = 512;

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
    reply: oneshot::Sender<AppResult<IngestSummary>>,
}

/// The queue in front of the store's writer for ingestion; started on first use.
#[derive(Default)]
pub struct IngestQueue {
    sender: OnceLock<mpsc::Sender<Waiting>>,
}

impl std::fmt::Debug for IngestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestQueue").finish_non_exhaustive()
    }
}

impl IngestQueue {
    fn sender(&self, app: &App) -> &mpsc::Sender<Waiting> {
        self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::channel(app.config.store.write_queue.max(1));
            tokio::spawn(run(app.store.clone(), rx));
            tx
        })
    }
}

/// Ingests `batch` for `integration`: answers once it is durable (in the redo log). Sheds
/// load with [`AppError::Busy`] (503) when the queue is full.
pub(crate) async fn submit(
    app: &App,
    integration: Integration,
    batch: Batch,
) -> AppResult<IngestSummary> {
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
    let (reply, answer) = oneshot::channel();
    let waiting = Waiting {
        record,
        encoded,
        reply,
    };
    app.ingest_queue
        .sender(app)
        .try_send(waiting)
        .map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AppError::Busy,
            mpsc::error::TrySendError::Closed(_) => AppError::Internal("ingestion stopped".into()),
        })?;
    answer
        .await
        .unwrap_or_else(|_| Err(AppError::Internal("ingestion stopped".into())))
}

/// [`RequestRecord`] by reference, for encoding.
#[derive(Serialize)]
struct RequestRecordRef<'a> {
    now: DateTime<Utc>,
    batch: &'a Batch,
}

/// Takes what is waiting whenever a group slot is free.
async fn run(store: Store, mut rx: mpsc::Receiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            commit(&store, group).await;
            drop(slot);
        });
    }
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

/// Ingests a group as one operation; if that fails, each request alone, so that one bad
/// request fails only itself.
async fn commit(store: &Store, group: Vec<Waiting>) {
    let bytes = group_record(group.iter().map(|w| (&w.record, w.encoded.as_slice())));
    let (records, replies): (Vec<_>, Vec<_>) = group
        .into_iter()
        .map(|w| ((w.record, w.encoded), w.reply))
        .unzip();
    let records: Arc<Vec<(IngestRecord, Vec<u8>)>> = Arc::new(records);
    let shared = records.clone();
    let together = store
        .try_write_logged(bytes, move |tx| {
            ingest_records(tx, shared.iter().map(|(r, _)| r))
        })
        .await;
    match together {
        Ok(summaries) => {
            for (reply, summary) in replies.into_iter().zip(summaries) {
                let _ = reply.send(Ok(summary));
            }
        }
        Err(AppError::Busy) => {
            for reply in replies {
                let _ = reply.send(Err(AppError::Busy));
            }
        }
        Err(e) if replies.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(_) => {
            for (i, reply) in replies.into_iter().enumerate() {
                let one = records.clone();
                let bytes = group_record(std::iter::once((&records[i].0, records[i].1.as_slice())));
                let alone = store
                    .try_write_logged(bytes, move |tx| {
                        ingest_records(tx, std::iter::once(&one[i].0))
                    })
                    .await;
                let _ = reply.send(alone.and_then(|mut s| {
                    s.pop()
                        .ok_or_else(|| AppError::Internal("no summary for a request".into()))
                }));
            }
        }
    }
}

fn ingest_records<'a>(
    tx: &WriteTransaction,
    records: impl Iterator<Item = &'a IngestRecord> + Clone,
) -> AppResult<Vec<IngestSummary>> {
    ingest_many_in_tx(tx, records.map(|r| (r.now, &r.integration, &r.batch)))
}

/// Records replayed per transaction at start-up.
const REPLAY_CHUNK: usize = 256;

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
        let groups = Arc::new(groups);
        let mut attempt = 0;
        loop {
            let shared = groups.clone();
            let replayed = app
                .store
                .replay(last_seq, move |tx| {
                    for records in shared.iter() {
                        ingest_records(tx, records.iter())?;
                    }
                    Ok::<_, AppError>(())
                })
                .await;
            match replayed {
                Ok(()) => break,
                Err(e) if attempt == 0 => {
                    tracing::warn!(error = %e, last_seq, "replaying the redo log failed; retrying once");
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

    #[test]
    fn a_record_naming_a_missing_integration_is_refused() {
        let bytes = br#"{"integrations":[],"requests":[[0,{"now":"2026-01-01T00:00:00Z","batch":{"alerts":[],"truncated":0}}]]}"#;
        let group: GroupRecord = serde_json::from_slice(bytes).expect("decode");
        assert!(group.into_records().is_err());
    }
}
