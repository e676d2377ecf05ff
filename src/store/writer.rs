//! The single writer with group commit, and the redo-log path for ingestion.
//!
//! redb allows one write transaction at a time and each durable commit costs an fsync. One
//! dedicated thread drains a queue of operations into a shared transaction, commits it once,
//! and only then answers every caller: concurrent writers share the fsync, each caller is
//! answered after its own write is durable, and no write transaction ever runs on the async
//! runtime.
//!
//! Operations submitted with a redo record (alert ingestion, see [`super::redo`]) take a
//! cheaper road when a batch holds nothing else: the transaction commits without an fsync
//! (readers see it at once), the records go to the log thread, and the callers are answered
//! once the log's `fdatasync` is done, while this thread already runs the next batch. A
//! durable commit (any other operation, or a checkpoint when the log has grown for
//! `checkpoint_interval` or `checkpoint_bytes`) persists everything before it and stores the
//! highest sequence number it covers, after which the log drops older segments.
//!
//! An operation that fails must leave no trace, but redb cannot roll back part of a
//! transaction once tables are open. So the batch is aborted, the failed operation is
//! answered with its error, and the rest is replayed in a fresh transaction; operations are
//! `FnMut` for that reason.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot, watch};

use super::error::StoreError;
use super::redo::{LogRecord, RedoLog};

/// How often a writer with logged commits pending checks that the log still works.
const HEALTH_CHECK: Duration = Duration::from_millis(250);

/// The META key of the highest redo sequence number a durable commit covers.
pub(crate) const REDO_MARK_KEY: &[u8] = b"redo/applied";

/// How an operation takes part in the redo log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logging {
    /// Needs a durable commit.
    Plain,
    /// Carries a redo record: durable once the record is on disk.
    Logged,
    /// Replays the record with this sequence number at start-up (durable commit).
    Replayed(u64),
}

/// One queued operation, type-erased.
trait Job: Send {
    /// Runs the operation inside `tx`; `false` if it failed (its result is kept for
    /// [`Job::answer`]).
    fn run(&mut self, tx: &WriteTransaction) -> bool;
    /// How the operation is made durable.
    fn logging(&self) -> Logging;
    /// Hands over the redo record (empty for others).
    fn take_record(&mut self) -> Vec<u8>;
    /// Sends the kept result (after a commit, or the operation's own error).
    fn answer(self: Box<Self>);
    /// Sends a store failure instead (the commit failed).
    fn fail(self: Box<Self>, err: StoreError);
}

struct Op<T, E, F> {
    op: F,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
    record: Option<Vec<u8>>,
    replayed: Option<u64>,
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

    fn logging(&self) -> Logging {
        match (&self.record, self.replayed) {
            (_, Some(seq)) => Logging::Replayed(seq),
            (Some(_), None) => Logging::Logged,
            (None, None) => Logging::Plain,
        }
    }

    fn take_record(&mut self) -> Vec<u8> {
        self.record.take().unwrap_or_default()
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

/// How a write is submitted.
pub(crate) struct Submit {
    /// Fail with [`StoreError::Busy`] instead of waiting when the queue is full.
    pub shed: bool,
    /// The redo record that makes the operation durable without a durable commit.
    pub record: Option<Vec<u8>>,
    /// At start-up: the sequence number of the logged operation being replayed.
    pub replayed: Option<u64>,
}

impl Submit {
    /// An operation that needs a durable commit.
    pub fn plain(shed: bool) -> Self {
        Self {
            shed,
            record: None,
            replayed: None,
        }
    }
}

/// Counts that show group commit at work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    /// Transactions committed (durable or through the redo log).
    pub commits: u64,
    /// Of those, the ones fsync'd by redb itself.
    pub durable_commits: u64,
    /// Operations committed (successful ones).
    pub operations: u64,
    /// Of those, the ones made durable by a redo record.
    pub logged_operations: u64,
    /// Batches replayed because one of their operations failed.
    pub replays: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    durable_commits: AtomicU64,
    operations: AtomicU64,
    logged_operations: AtomicU64,
    replays: AtomicU64,
}

/// The redo log the writer may use, and when it must checkpoint.
pub(crate) struct LogSetup {
    /// The opened log (appending to a fresh segment).
    pub log: RedoLog,
    /// The first sequence number to hand out.
    pub next_seq: u64,
    /// The mark the store holds: every record up to it is in redb durably.
    pub mark: u64,
    /// Longest time between durable commits while logged ones pile up.
    pub checkpoint_interval: Duration,
    /// Most redo bytes between durable commits.
    pub checkpoint_bytes: u64,
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
    /// Starts the writer thread over `db` (and the log thread, with a log).
    pub(crate) fn start(
        db: Arc<Database>,
        capacity: usize,
        max_batch: usize,
        log: Option<LogSetup>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let (commit_tx, commit_rx) = watch::channel(0u64);
        let commit_tx = Arc::new(commit_tx);
        // A private clock for the checkpoint deadline while waiting on the queue.
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot start the writer's timer: {e}")))?;
        let log = log
            .map(|setup| LogSide::start(setup, commit_tx.clone()))
            .transpose()?;
        let mut state = WriterLoop {
            db,
            counters: counters.clone(),
            commit_tx,
            log,
            max_batch: max_batch.max(1),
        };
        let thread = std::thread::Builder::new()
            .name("incidentd-writer".into())
            .spawn(move || state.run(rx, timer))
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

    /// Queues `op` and answers once it is committed (see [`Writer::enqueue`]).
    pub(crate) async fn submit<T, E, F>(&self, op: F, how: Submit) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.enqueue(op, how).await?.await
    }

    /// Queues `op` and returns what answers once it is committed: operations enqueued one
    /// after the other run in that order.
    pub(crate) async fn enqueue<T, E, F>(
        &self,
        op: F,
        how: Submit,
    ) -> Result<impl Future<Output = Result<T, E>> + use<T, E, F>, E>
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
            record: how.record,
            replayed: how.replayed,
        });
        let sent = if how.shed {
            sender.try_send(job).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })
        } else {
            sender.send(job).await.map_err(|_| StoreError::Closed)
        };
        drop(sender);
        sent.map_err(E::from)?;
        Ok(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(StoreError::Closed.into()))
        })
    }

    pub(crate) fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            commits: c.commits.load(Ordering::Relaxed),
            durable_commits: c.durable_commits.load(Ordering::Relaxed),
            operations: c.operations.load(Ordering::Relaxed),
            logged_operations: c.logged_operations.load(Ordering::Relaxed),
            replays: c.replays.load(Ordering::Relaxed),
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

    /// Stops taking writes, lets the queued ones commit, checkpoints, and waits for the
    /// thread.
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

/// What the writer hands the log thread.
enum LogMsg {
    /// Records to append, and the callers to answer once they are on disk.
    Append(Vec<LogRecord>, Vec<Box<dyn Job>>),
    /// A durable commit covers every record up to this one.
    Checkpointed(u64),
    /// A durable commit failed: callers parked after a failed append cannot be answered
    /// with success.
    CheckpointFailed(String),
}

/// The writer's side of the redo log.
struct LogSide {
    to_log: Option<std::sync::mpsc::Sender<LogMsg>>,
    thread: Option<JoinHandle<()>>,
    /// Cleared when an append failed: from then on every commit is durable.
    healthy: Arc<AtomicBool>,
    next_seq: u64,
    /// Highest sequence number whose operation is in redb (maybe not durably yet).
    assigned: u64,
    /// The mark of the last durable commit.
    persisted: u64,
    /// Whether commits since the last durable one rely on the log.
    pending: bool,
    last_durable: Instant,
    /// After a failed checkpoint, when to try again.
    retry_at: Option<Instant>,
    bytes_since: u64,
    interval: Duration,
    max_bytes: u64,
}

impl LogSide {
    fn start(setup: LogSetup, commit_tx: Arc<watch::Sender<u64>>) -> Result<LogSide, StoreError> {
        let (to_log, from_writer) = std::sync::mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let log_thread = LogThread {
            log: setup.log,
            healthy: healthy.clone(),
            commit_tx,
            failed: false,
            parked: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("incidentd-redo".into())
            .spawn(move || log_thread.run(from_writer))
            .map_err(|e| StoreError::Internal(format!("cannot start the redo log thread: {e}")))?;
        Ok(LogSide {
            to_log: Some(to_log),
            thread: Some(thread),
            healthy,
            next_seq: setup.next_seq,
            assigned: setup.mark,
            persisted: setup.mark,
            pending: false,
            last_durable: Instant::now(),
            retry_at: None,
            bytes_since: 0,
            interval: setup.checkpoint_interval,
            max_bytes: setup.checkpoint_bytes,
        })
    }

    fn checkpoint_due(&self) -> bool {
        self.pending
            && (self.last_durable.elapsed() >= self.interval || self.bytes_since >= self.max_bytes)
    }

    /// When the writer must checkpoint if nothing arrives: at once when the log failed
    /// (callers wait for it), but not more often than a failing checkpoint allows.
    fn deadline(&self) -> Option<Instant> {
        if !self.pending {
            return None;
        }
        // The log thread cannot wake this one when an append fails, so while logged
        // commits are pending the writer looks again every quarter second.
        let due = if self.healthy.load(Ordering::Relaxed) {
            (self.last_durable + self.interval).min(Instant::now() + HEALTH_CHECK)
        } else {
            Instant::now()
        };
        Some(self.retry_at.map_or(due, |r| r.max(due)))
    }

    fn send(&self, msg: LogMsg) {
        let Some(to_log) = &self.to_log else {
            return;
        };
        if let Err(std::sync::mpsc::SendError(msg)) = to_log.send(msg) {
            // The log thread is gone (it never panics on its own): fail its callers.
            self.healthy.store(false, Ordering::Relaxed);
            if let LogMsg::Append(_, jobs) = msg {
                for job in jobs {
                    job.fail(StoreError::Internal("the redo log stopped".into()));
                }
            }
        }
    }

    fn stop(&mut self) {
        self.to_log.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The log thread: appends what the writer committed, one `fdatasync` for everything
/// queued meanwhile, then answers those callers.
///
/// After a failed append the file may end in a torn record, and anything appended behind
/// it would never be read back: the log stops for good (until a restart opens a new
/// segment) and the writer makes every commit durable. The callers whose records were not
/// written are parked: their changes are in redb already (not yet fsync'd), so they are
/// answered with success once a checkpoint covers them, or with an error if it fails.
struct LogThread {
    log: RedoLog,
    healthy: Arc<AtomicBool>,
    commit_tx: Arc<watch::Sender<u64>>,
    failed: bool,
    /// `(sequence number, caller)` waiting for a checkpoint after a failure.
    parked: Vec<(u64, Box<dyn Job>)>,
}

impl LogThread {
    fn run(mut self, rx: std::sync::mpsc::Receiver<LogMsg>) {
        while let Ok(first) = rx.recv() {
            let mut records = Vec::new();
            let mut jobs = Vec::new();
            let mut mark = None;
            let mut checkpoint_error = None;
            let mut take = |msg| match msg {
                LogMsg::Append(r, j) => {
                    records.extend(r);
                    jobs.extend(j);
                }
                LogMsg::Checkpointed(m) => mark = Some(m),
                LogMsg::CheckpointFailed(e) => checkpoint_error = Some(e),
            };
            take(first);
            while let Ok(msg) = rx.try_recv() {
                take(msg);
            }
            if !records.is_empty() {
                self.append(records, jobs);
            }
            if let Some(e) = checkpoint_error {
                for (_, job) in self.parked.drain(..) {
                    job.fail(StoreError::Internal(format!(
                        "the redo log and the checkpoint both failed: {e}"
                    )));
                }
            }
            if let Some(m) = mark {
                self.log.discard_through(m);
                let (covered, waiting) = std::mem::take(&mut self.parked)
                    .into_iter()
                    .partition::<Vec<_>, _>(|(seq, _)| *seq <= m);
                self.parked = waiting;
                covered.into_iter().for_each(|(_, job)| job.answer());
            }
        }
        // Shutdown: the writer's final checkpoint came first; anything still parked was
        // not covered by it.
        for (_, job) in self.parked.drain(..) {
            job.fail(StoreError::Closed);
        }
    }

    fn append(&mut self, records: Vec<LogRecord>, jobs: Vec<Box<dyn Job>>) {
        if !self.failed {
            match self.log.append(&records) {
                Ok(()) => {
                    jobs.into_iter().for_each(|j| j.answer());
                    // Only now may background workers act on what these callers wrote.
                    self.commit_tx.send_modify(|n| *n += 1);
                    return;
                }
                Err(e) => {
                    self.failed = true;
                    self.healthy.store(false, Ordering::Relaxed);
                    tracing::error!(
                        error = %e,
                        "redo log append failed; the log is off and every commit is durable until a restart"
                    );
                }
            }
        }
        let seqs = records.iter().map(|(seq, _)| *seq);
        self.parked.extend(seqs.zip(jobs));
    }
}

/// The writer thread's state.
struct WriterLoop {
    db: Arc<Database>,
    counters: Arc<Counters>,
    /// Ticked after every durable commit here, and by the log thread once logged
    /// commits are on disk.
    commit_tx: Arc<watch::Sender<u64>>,
    log: Option<LogSide>,
    max_batch: usize,
}

impl WriterLoop {
    fn run(&mut self, mut rx: mpsc::Receiver<Box<dyn Job>>, timer: tokio::runtime::Runtime) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(self.max_batch);
        loop {
            let deadline = self.log.as_ref().and_then(LogSide::deadline);
            let first = match deadline {
                None => rx.blocking_recv(),
                Some(at) => {
                    let wait = async { tokio::time::timeout_at(at.into(), rx.recv()).await };
                    match timer.block_on(wait) {
                        Ok(job) => job,
                        Err(_elapsed) => {
                            let needed = self.log.as_ref().is_some_and(|l| {
                                l.checkpoint_due() || !l.healthy.load(Ordering::Relaxed)
                            });
                            if needed {
                                self.checkpoint();
                            }
                            continue;
                        }
                    }
                }
            };
            // Ends when every sender is gone and the queue is empty (shutdown).
            let Some(first) = first else { break };
            batch.push(first);
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(&mut batch);
        }
        self.checkpoint();
        if let Some(log) = &mut self.log {
            log.stop();
        }
    }

    /// Whether `batch` (all of whose operations ran) needs a durable commit.
    fn needs_durable(&self, batch: &[Box<dyn Job>]) -> bool {
        match &self.log {
            None => true,
            Some(log) => {
                !log.healthy.load(Ordering::Relaxed)
                    || log.checkpoint_due()
                    || batch.iter().any(|j| j.logging() != Logging::Logged)
            }
        }
    }

    /// Runs `batch` in one transaction, replaying without any operation that fails, commits,
    /// and answers everyone (logged operations once their records are on disk). Leaves
    /// `batch` empty.
    fn commit_batch(&mut self, batch: &mut Vec<Box<dyn Job>>) {
        loop {
            if batch.is_empty() {
                return;
            }
            let tx = match self.db.begin_write() {
                Ok(tx) => tx,
                Err(e) => {
                    fail_all(batch, &StoreError::Db(e.into()));
                    return;
                }
            };
            let failed = batch.iter_mut().position(|job| !job.run(&tx));
            if let Some(index) = failed {
                let _ = tx.abort();
                let job = batch.remove(index);
                job.answer();
                if !batch.is_empty() {
                    self.counters.replays.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            if self.needs_durable(batch) {
                let replayed = batch.iter().filter_map(|j| match j.logging() {
                    Logging::Replayed(seq) => Some(seq),
                    _ => None,
                });
                let mark = self
                    .log
                    .as_ref()
                    .map(|l| replayed.fold(l.assigned, u64::max));
                match self.commit_durably(tx, mark) {
                    Ok(()) => {
                        self.counters
                            .operations
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        batch.drain(..).for_each(|j| j.answer());
                    }
                    Err(e) => fail_all(batch, &e),
                }
            } else {
                self.commit_logged(tx, batch);
            }
            return;
        }
    }

    /// Commits `tx` with an fsync, storing `mark` (with a log) so that the log can drop
    /// what it covers.
    fn commit_durably(
        &mut self,
        mut tx: WriteTransaction,
        mark: Option<u64>,
    ) -> Result<(), StoreError> {
        let write_mark = mark.filter(|m| self.log.as_ref().is_some_and(|l| *m != l.persisted));
        let committed = write_mark
            .map_or(Ok(()), |m| {
                super::access::put_id(&tx, super::tables::META, REDO_MARK_KEY, m)
            })
            .and_then(|()| Ok(tx.set_durability(Durability::Immediate)?))
            .and_then(|()| tx.commit().map_err(|e| StoreError::Db(e.into())));
        if let Err(err) = committed {
            tracing::error!(error = %err, "commit failed");
            if let Some(log) = &mut self.log {
                log.retry_at = Some(Instant::now() + Duration::from_secs(1));
                log.send(LogMsg::CheckpointFailed(err.to_string()));
            }
            return Err(err);
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .durable_commits
            .fetch_add(1, Ordering::Relaxed);
        if let (Some(log), Some(mark)) = (&mut self.log, mark) {
            log.assigned = mark;
            log.persisted = mark;
            log.pending = false;
            log.bytes_since = 0;
            log.last_durable = Instant::now();
            log.retry_at = None;
            log.send(LogMsg::Checkpointed(mark));
        }
        self.commit_tx.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Commits `tx` without an fsync and hands the batch's records and callers to the log
    /// thread.
    fn commit_logged(&mut self, mut tx: WriteTransaction, batch: &mut Vec<Box<dyn Job>>) {
        let committed = tx
            .set_durability(Durability::None)
            .map_err(StoreError::from)
            .and_then(|()| tx.commit().map_err(StoreError::from));
        if let Err(e) = committed {
            tracing::error!(error = %e, "commit failed");
            fail_all(batch, &e);
            return;
        }
        let log = self.log.as_mut().expect("only called with a log");
        let records: Vec<LogRecord> = batch
            .iter_mut()
            .map(|job| {
                let seq = log.next_seq;
                log.next_seq += 1;
                (seq, job.take_record())
            })
            .collect();
        log.assigned = log.next_seq - 1;
        log.pending = true;
        log.bytes_since += records.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .operations
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.counters
            .logged_operations
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        log.send(LogMsg::Append(records, std::mem::take(batch)));
    }

    /// A durable commit of nothing but the mark, when logged commits are pending.
    fn checkpoint(&mut self) {
        let Some(log) = &self.log else { return };
        if !log.pending {
            return;
        }
        let mark = Some(log.assigned);
        let done = self
            .db
            .begin_write()
            .map_err(StoreError::from)
            .and_then(|tx| self.commit_durably(tx, mark));
        if let Err(e) = done {
            tracing::error!(error = %e, "checkpoint failed; the redo log keeps the records");
        }
    }
}

fn fail_all(batch: &mut Vec<Box<dyn Job>>, err: &StoreError) {
    for job in batch.drain(..) {
        job.fail(StoreError::Internal(err.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::access::{self, Reader};
    use crate::store::tables;
    use redb::ReadableDatabase;

    fn start(dir: &std::path::Path, log: RedoLog) -> (Arc<Database>, Writer) {
        let db =
            Arc::new(crate::store::open_database(&dir.join("s.redb"), 1 << 20).expect("database"));
        {
            let tx = db.begin_write().expect("tx");
            tx.open_table(tables::META).expect("meta");
            tx.commit().expect("commit");
        }
        let setup = LogSetup {
            log,
            next_seq: 1,
            mark: 0,
            checkpoint_interval: Duration::from_secs(3600),
            checkpoint_bytes: u64::MAX,
        };
        let writer = Writer::start(db.clone(), 64, 64, Some(setup)).expect("writer");
        (db, writer)
    }

    fn logged(record: &str) -> Submit {
        Submit {
            record: Some(record.as_bytes().to_vec()),
            ..Submit::plain(true)
        }
    }

    /// A failing redo log must not lose what its callers wrote, nor answer them before it
    /// is durable: the writer checkpoints at once and the callers are answered then.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_append_is_answered_after_a_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = RedoLog::open(&dir.path().join("redo"), 1).expect("log");
        log.break_for_test();
        let (db, writer) = start(dir.path(), log);
        let put = |key: &'static [u8]| {
            move |tx: &WriteTransaction| access::put_raw(tx, tables::META, key, b"v")
        };
        writer
            .submit(put(b"k1"), logged("one"))
            .await
            .expect("answered once checkpointed");
        let stats = writer.stats();
        assert!(stats.durable_commits >= 1, "{stats:?}");
        // From now on logged writes are plain durable commits.
        writer
            .submit(put(b"k2"), logged("two"))
            .await
            .expect("durable write");
        writer.shutdown().await;
        let r = db.begin_read().expect("read");
        for key in [&b"k1"[..], b"k2"] {
            assert_eq!(
                r.get_raw(tables::META, key).expect("get").as_deref(),
                Some(&b"v"[..])
            );
        }
        assert_eq!(
            access::get_id(&r, tables::META, REDO_MARK_KEY).expect("mark"),
            Some(1),
            "the checkpoint covers the record the log could not take"
        );
    }

    /// Logged writes commit without redb's fsync; a plain write after them is a durable
    /// commit that marks them covered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plain_write_checkpoints_the_logged_ones_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = RedoLog::open(&dir.path().join("redo"), 1).expect("log");
        let (db, writer) = start(dir.path(), log);
        for (i, key) in [&b"a"[..], b"b", b"c"].into_iter().enumerate() {
            writer
                .submit(
                    move |tx: &WriteTransaction| access::put_raw(tx, tables::META, key, b"v"),
                    logged(&format!("record {i}")),
                )
                .await
                .expect("logged");
        }
        assert_eq!(writer.stats().durable_commits, 0);
        writer
            .submit(
                |tx: &WriteTransaction| access::put_raw(tx, tables::META, b"plain", b"v"),
                Submit::plain(false),
            )
            .await
            .expect("plain");
        assert_eq!(writer.stats().durable_commits, 1);
        let r = db.begin_read().expect("read");
        assert_eq!(
            access::get_id(&r, tables::META, REDO_MARK_KEY).expect("mark"),
            Some(3)
        );
        drop(r);
        writer.shutdown().await;
    }
}
