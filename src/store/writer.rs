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
        // A private clock for the checkpoint deadline while waiting on the queue.
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot start the writer's timer: {e}")))?;
        let log = log.map(LogSide::start).transpose()?;
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
    bytes_since: u64,
    interval: Duration,
    max_bytes: u64,
}

impl LogSide {
    fn start(setup: LogSetup) -> Result<LogSide, StoreError> {
        let (to_log, from_writer) = std::sync::mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let thread_healthy = healthy.clone();
        let log = setup.log;
        let thread = std::thread::Builder::new()
            .name("incidentd-redo".into())
            .spawn(move || run_log(log, from_writer, thread_healthy))
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
            bytes_since: 0,
            interval: setup.checkpoint_interval,
            max_bytes: setup.checkpoint_bytes,
        })
    }

    fn checkpoint_due(&self) -> bool {
        self.pending
            && (self.last_durable.elapsed() >= self.interval || self.bytes_since >= self.max_bytes)
    }

    /// When the writer must checkpoint if nothing arrives.
    fn deadline(&self) -> Option<Instant> {
        self.pending.then(|| self.last_durable + self.interval)
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
fn run_log(mut log: RedoLog, rx: std::sync::mpsc::Receiver<LogMsg>, healthy: Arc<AtomicBool>) {
    while let Ok(first) = rx.recv() {
        let mut records = Vec::new();
        let mut jobs = Vec::new();
        let mut mark = None;
        let mut take = |msg| match msg {
            LogMsg::Append(r, j) => {
                records.extend(r);
                jobs.extend(j);
            }
            LogMsg::Checkpointed(m) => mark = Some(m),
        };
        take(first);
        while let Ok(msg) = rx.try_recv() {
            take(msg);
        }
        if !records.is_empty() {
            match log.append(&records) {
                Ok(()) => jobs.into_iter().for_each(|j| j.answer()),
                Err(e) => {
                    healthy.store(false, Ordering::Relaxed);
                    tracing::error!(error = %e, "redo log append failed; every commit is durable from now on");
                    for job in jobs {
                        job.fail(StoreError::Internal(e.to_string()));
                    }
                }
            }
        }
        if let Some(m) = mark {
            log.discard_through(m);
        }
    }
}

/// The writer thread's state.
struct WriterLoop {
    db: Arc<Database>,
    counters: Arc<Counters>,
    commit_tx: watch::Sender<u64>,
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
                            self.checkpoint();
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
            self.commit_tx.send_modify(|n| *n += 1);
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
        if let Some(mark) = mark
            && self.log.as_ref().is_some_and(|l| mark != l.persisted)
        {
            super::access::put_id(&tx, super::tables::META, REDO_MARK_KEY, mark)?;
        }
        tx.set_durability(Durability::Immediate)?;
        if let Err(e) = tx.commit() {
            let err = StoreError::Db(e.into());
            tracing::error!(error = %err, "commit failed");
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
            log.send(LogMsg::Checkpointed(mark));
        }
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
