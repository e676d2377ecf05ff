//! The single writer with group commit.
//!
//! redb allows one write transaction at a time and each durable commit costs an fsync. One
//! dedicated thread drains a queue of operations into a shared transaction, commits it once,
//! and only then answers every caller: concurrent writers share the fsync, each caller is
//! answered after its own write is durable, and no write transaction ever runs on the async
//! runtime.
//!
//! An operation that fails must leave no trace, but redb cannot roll back part of a
//! transaction once tables are open. So the batch is aborted, the failed operation is
//! answered with its error, and the rest is replayed in a fresh transaction; operations are
//! `FnMut` for that reason.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot, watch};

use super::error::StoreError;

/// One queued operation, type-erased.
trait Job: Send {
    /// Runs the operation inside `tx`; `false` if it failed (its result is kept for
    /// [`Job::answer`]).
    fn run(&mut self, tx: &WriteTransaction) -> bool;
    /// Sends the kept result (after a commit, or the operation's own error).
    fn answer(self: Box<Self>);
    /// Sends a store failure instead (the commit failed).
    fn fail(self: Box<Self>, err: StoreError);
}

struct Op<T, E, F> {
    op: F,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Job for Op<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
{
    fn run(&mut self, tx: &WriteTransaction) -> bool {
        let outcome = catch_unwind(AssertUnwindSafe(|| (self.op)(tx))).unwrap_or_else(|_| {
            Err(StoreError::Internal("a write operation panicked".into()).into())
        });
        let ok = outcome.is_ok();
        self.result = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>) {
        let result = self
            .result
            .unwrap_or_else(|| Err(StoreError::Internal("operation never ran".into()).into()));
        // The caller may have gone away (client disconnected): the write stands anyway.
        let _ = self.reply.send(result);
    }

    fn fail(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(err.into()));
    }
}

/// Counts that show group commit at work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    /// Durable transactions committed.
    pub commits: u64,
    /// Operations committed (successful ones).
    pub operations: u64,
    /// Batches replayed because one of their operations failed.
    pub replays: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    operations: AtomicU64,
    replays: AtomicU64,
}

/// The handle the async side holds.
pub(crate) struct Writer {
    // `None` once shut down: the thread ends when the last clone of the sender is gone and
    // the queue is drained.
    sender: std::sync::RwLock<Option<mpsc::Sender<Box<dyn Job>>>>,
    counters: Arc<Counters>,
    commits: watch::Receiver<u64>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread over `db`.
    pub(crate) fn start(
        db: Arc<Database>,
        capacity: usize,
        max_batch: usize,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let (commit_tx, commit_rx) = watch::channel(0u64);
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("incidentd-writer".into())
            .spawn(move || run(db, rx, max_batch.max(1), thread_counters, commit_tx))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            sender: std::sync::RwLock::new(Some(tx)),
            counters,
            commits: commit_rx,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    fn sender(&self) -> Option<mpsc::Sender<Box<dyn Job>>> {
        self.sender
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) async fn submit<T, E, F>(&self, op: F, shed: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let Some(sender) = self.sender() else {
            return Err(StoreError::Closed.into());
        };
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Op {
            op,
            result: None,
            reply,
        });
        let sent = if shed {
            sender.try_send(job).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })
        } else {
            sender.send(job).await.map_err(|_| StoreError::Closed)
        };
        drop(sender);
        sent.map_err(E::from)?;
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Closed.into()))
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            operations: self.counters.operations.load(Ordering::Relaxed),
            replays: self.counters.replays.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn alive(&self) -> bool {
        self.thread
            .lock()
            .map(|t| t.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false)
    }

    pub(crate) fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }

    /// Stops taking writes, lets the queued ones commit, and waits for the thread.
    pub(crate) async fn shutdown(&self) {
        self.sender
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

fn run(
    db: Arc<Database>,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    counters: Arc<Counters>,
    commit_tx: watch::Sender<u64>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    // Ends when every sender is gone and the queue is empty (shutdown).
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&db, &mut batch, &counters);
        commit_tx.send_modify(|n| *n += 1);
    }
}

/// Runs `batch` in one transaction, replaying without any operation that fails, commits,
/// and answers everyone. Leaves `batch` empty.
fn commit_batch(db: &Database, batch: &mut Vec<Box<dyn Job>>, counters: &Counters) {
    loop {
        if batch.is_empty() {
            return;
        }
        let mut tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                let err = StoreError::Db(e.into());
                fail_all(batch, &err);
                return;
            }
        };
        if let Err(e) = tx.set_durability(Durability::Immediate) {
            let err = StoreError::Db(e.into());
            fail_all(batch, &err);
            return;
        }
        let failed = batch.iter_mut().position(|job| !job.run(&tx));
        if let Some(index) = failed {
            let _ = tx.abort();
            let job = batch.remove(index);
            job.answer();
            if !batch.is_empty() {
                counters.replays.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        match tx.commit() {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters
                    .operations
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for job in batch.drain(..) {
                    job.answer();
                }
            }
            Err(e) => {
                let err = StoreError::Db(e.into());
                tracing::error!(error = %err, "commit failed");
                fail_all(batch, &err);
            }
        }
        return;
    }
}

fn fail_all(batch: &mut Vec<Box<dyn Job>>, err: &StoreError) {
    for job in batch.drain(..) {
        job.fail(StoreError::Internal(err.to_string()));
    }
}
