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

/// Groups in the store at once: one being applied while the one before waits for its
/// redo record to reach the disk.
const IN_FLIGHT: usize = 2;
/// Most requests folded into one group.
const MAX_GROUP: usize = 512;

/// Everything one ingestion depends on besides the store. Replaying it against the store
/// as it was gives the same result: ingestion reads nothing else (the clock is in the
/// record, and the integration as it was when the request came).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IngestRecord {
    pub now: DateTime<Utc>,
    pub integration: Integration,
    pub batch: Batch,
}

/// One waiting request.
struct Waiting {
    record: IngestRecord,
    /// `record` as JSON, encoded on the request's own task.
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
    let encoded = serde_json::to_vec(&record)
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

/// The redo record of a group: a JSON array of its requests' records.
fn group_record(group: &[Waiting]) -> Vec<u8> {
    let len = group.iter().map(|w| w.encoded.len() + 1).sum::<usize>() + 1;
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, w) in group.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&w.encoded);
    }
    out.push(b']');
    out
}

/// Ingests a group as one operation; if that fails, each request alone, so that one bad
/// request fails only itself.
async fn commit(store: &Store, group: Vec<Waiting>) {
    let bytes = group_record(&group);
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
                let bytes = group_record_of(&records[i].1);
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

fn group_record_of(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 2);
    out.push(b'[');
    out.extend_from_slice(encoded);
    out.push(b']');
    out
}

fn ingest_records<'a>(
    tx: &WriteTransaction,
    records: impl Iterator<Item = &'a IngestRecord> + Clone,
) -> AppResult<Vec<IngestSummary>> {
    ingest_many_in_tx(tx, records.map(|r| (r.now, &r.integration, &r.batch)))
}

/// Replays the ingestions that were acknowledged but not yet checkpointed when the daemon
/// last stopped (a crash), in their original order. Runs before the daemon serves.
pub async fn replay_backlog(app: &App) -> AppResult<usize> {
    let backlog = app.store.take_redo_backlog();
    if backlog.is_empty() {
        return Ok(0);
    }
    let mut ops = Vec::with_capacity(backlog.len());
    for (seq, bytes) in backlog {
        match serde_json::from_slice::<Vec<IngestRecord>>(&bytes) {
            Ok(records) => ops.push((seq, move |tx: &WriteTransaction| {
                ingest_records(tx, records.iter())
            })),
            Err(e) => {
                tracing::error!(seq, error = %e, "skipping a redo record that does not decode")
            }
        }
    }
    let count = ops.len();
    for (i, result) in app.store.replay(ops).await.into_iter().enumerate() {
        if let Err(e) = result {
            tracing::error!(index = i, error = %e, "a replayed ingestion failed; skipped");
        }
    }
    tracing::info!(records = count, "replayed the redo log");
    Ok(count)
}
