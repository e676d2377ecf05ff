//! The single writer with group commit, and the redo log in front of it for ingestion.
//!
//! redb allows one write transaction at a time and each durable commit costs an fsync. One
//! dedicated thread drains a queue of operations into a shared transaction, commits it once,
//! and only then answers every caller: concurrent writers share the fsync, each caller is
//! answered after its own write is durable, and no write transaction ever runs on the async
//! runtime.
//!
//! Ingestion goes through the redo log first, the way a database's write-ahead log works:
//! its one logging thread appends a record ([`super::redo::RedoAppender`]), acknowledges
//! its senders (the record is durable, and start-up replays it after a crash), and hands
//! the operation to this thread in log order ([`Writer::hand_over_logged`]). Here a batch that
//! holds only such operations commits without an fsync; readers see it at once, and
//! [`Writer::caught_up`] lets them wait for what was acknowledged. A durable commit (any
//! other operation, or a checkpoint when the log has grown for `checkpoint_interval` or
//! `checkpoint_bytes`) persists everything before it and stores the highest sequence
//! number it covers, after which the log drops older segments.
//!
//! Applying an acknowledged record is not optional: if it fails (a store error), it and
//! every record after it wait and are tried again, in order, every second, rather than be
//! dropped; the log keeps them meanwhile.
//!
//! An operation that fails must leave no trace, but redb cannot roll back part of a
//! transaction once tables are open. So the batch is aborted, the failed operation is
//! answered with its error, and the rest is replayed in a fresh transaction; operations are
//! `FnMut` for that reason.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot, watch};

use super::error::StoreError;
use super::redo::RedoLog;

/// How long acknowledged records whose application failed wait before the next try.
const STALL_RETRY: Duration = Duration::from_secs(1);

/// The META key of the highest redo sequence number a durable commit covers.
pub(crate) const REDO_MARK_KEY: &[u8] = b"redo/applied";

/// How an operation takes part in the redo log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logging {
    /// Needs a durable commit.
    Plain,
    /// Its records are in the log under the numbers `first..=last`: a commit without
    /// fsync will do.
    Applied { first: u64, last: u64 },
    /// Needs a durable commit that marks the record with this number as covered: a
    /// replay at start-up, or a record the log could not take after numbering it.
    Covered(u64),
}

/// The writer thread's `nice` value: see [`yield_to_request_threads`]. Measured on 2
/// cores: 5 gave 20k requests/s at one alert per request (0: 17k) without slowing 100
/// alerts per request, where the writer is the bottleneck (10 did: 56k alerts/s, 5: 66k).
const WRITER_NICE: libc::c_int = 5;

/// Lowers the calling thread's scheduling priority (Linux: `nice` is per thread).
///
/// Under ingestion load the writer applies big batches that nobody waits for (their
/// senders were answered once the redo log had them), and on a small machine it competes
/// for the cores with the threads that answer requests and write the log. Those must win:
/// every microsecond they wait is latency for every sender, while the writer catching up
/// a little later only delays readers (who wait for it, see [`Writer::caught_up`]). If it
/// falls far behind, its full queue stops the log and ingestion sheds load with 503.
fn yield_to_request_threads() {
    // SAFETY: setpriority only reads its integer arguments; `who == 0` is this thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, WRITER_NICE) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the writer thread's priority"
        );
    }
}

/// One queued operation, type-erased.
trait Job: Send {
    /// Runs the operation inside `tx`; `false` if it failed (its result is kept for
    /// [`Job::answer`]).
    fn run(&mut self, tx: &WriteTransaction) -> bool;
    /// How the operation is made durable.
    fn logging(&self) -> Logging;
    /// The length of the operation's redo record (0 for others).
    fn record_len(&self) -> u64;
    /// Sends the kept result (after a commit, or the operation's own error).
    fn answer(self: Box<Self>);
    /// Sends a store failure instead (the commit failed).
    fn fail(self: Box<Self>, err: StoreError);
}

struct Op<T, E, F> {
    op: F,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
    record_len: u64,
    logging: Logging,
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
        self.logging
    }

    fn record_len(&self) -> u64 {
        self.record_len
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

/// `op` as a queued job, and what answers once the writer has run it.
fn job<T, E, F>(
    op: F,
    logging: Logging,
    record_len: u64,
) -> (
    Box<dyn Job>,
    impl Future<Output = Result<T, E>> + use<T, E, F>,
)
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job = Box::new(Op {
        op,
        result: None,
        reply,
        record_len,
        logging,
    });
    let answer = async move {
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Closed.into()))
    };
    (job, answer)
}

/// How the logging thread hands an operation over ([`Writer::hand_over_logged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromLog {
    /// Its redo records (`record_len` bytes) are on disk under the numbers
    /// `first..=last`: applied without waiting for an fsync. If applying it fails, it and
    /// those after it are tried again (in order) until it succeeds: it was acknowledged.
    Applied {
        first: u64,
        last: u64,
        record_len: u64,
    },
    /// The log could not take it: a durable write. With `seq` (a number the log used up
    /// for it), the commit marks the number covered, so that a record which reached the
    /// disk after all is not replayed on top.
    Unlogged { seq: Option<u64> },
}

/// How a write is submitted.
pub(crate) struct Submit {
    /// Fail with [`StoreError::Busy`] instead of waiting when the queue is full.
    pub shed: bool,
    /// At start-up: the sequence number of the logged operation being replayed.
    pub replayed: Option<u64>,
}

impl Submit {
    /// An operation that needs a durable commit.
    pub fn plain(shed: bool) -> Self {
        Self {
            shed,
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
    /// Acknowledged records waiting because applying one of them failed.
    pub stalled: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    durable_commits: AtomicU64,
    operations: AtomicU64,
    logged_operations: AtomicU64,
    replays: AtomicU64,
    stalled: AtomicU64,
}

/// The redo log the writer checkpoints, and when.
pub(crate) struct LogSetup {
    /// The log, shared with its appender: the writer deletes what a checkpoint covers.
    pub log: Arc<std::sync::Mutex<RedoLog>>,
    /// The highest sequence number acknowledged to a sender, kept by the appender.
    pub acked: Arc<AtomicU64>,
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
    /// What the redo log acknowledged (with a log).
    acked: Option<Arc<AtomicU64>>,
    /// Readers waiting in [`Writer::caught_up`]: the logging thread hands its pending
    /// records over at once for them instead of letting them fold a while longer.
    readers_waiting: AtomicUsize,
    counters: Arc<Counters>,
    commits: watch::Receiver<u64>,
    applied: watch::Receiver<u64>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread over `db`, checkpointing `log` if there is one.
    pub(crate) fn start(
        db: Arc<Database>,
        capacity: usize,
        max_batch: usize,
        log: Option<LogSetup>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let (commit_tx, commit_rx) = watch::channel(0u64);
        let mark = log.as_ref().map_or(0, |l| l.mark);
        let (applied_tx, applied_rx) = watch::channel(mark);
        // A private clock for the checkpoint deadline while waiting on the queue.
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot start the writer's timer: {e}")))?;
        let acked = log.as_ref().map(|l| l.acked.clone());
        let log_side = log.map(LogSide::new);
        let mut state = WriterLoop {
            db,
            counters: counters.clone(),
            commit_tx,
            applied_tx,
            log: log_side,
            max_batch: max_batch.max(1),
            stalled: VecDeque::new(),
            stalled_until: None,
        };
        let thread = std::thread::Builder::new()
            .name("incidentd-writer".into())
            .spawn(move || {
                yield_to_request_threads();
                state.run(rx, timer)
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            sender: std::sync::RwLock::new(Some(tx)),
            acked,
            readers_waiting: AtomicUsize::new(0),
            counters,
            commits: commit_rx,
            applied: applied_rx,
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
        let (job, answer) = job(op, how.replayed.map_or(Logging::Plain, Logging::Covered), 0);
        self.queue(job, how.shed).await.map_err(E::from)?;
        Ok(answer)
    }

    async fn queue(&self, job: Box<dyn Job>, shed: bool) -> Result<(), StoreError> {
        let Some(sender) = self.sender() else {
            return Err(StoreError::Closed);
        };
        if shed {
            sender.try_send(job).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })
        } else {
            sender.send(job).await.map_err(|_| StoreError::Closed)
        }
    }

    /// From the logging thread (blocking while the queue is full): queues `op` as `how`
    /// says. Logged operations must come in log order.
    pub(crate) fn hand_over_logged<T, E, F>(
        &self,
        how: FromLog,
        op: F,
    ) -> Result<impl Future<Output = Result<T, E>> + use<T, E, F>, StoreError>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (logging, record_len) = match how {
            FromLog::Applied {
                first,
                last,
                record_len,
            } => (Logging::Applied { first, last }, record_len),
            FromLog::Unlogged { seq } => (seq.map_or(Logging::Plain, Logging::Covered), 0),
        };
        let Some(sender) = self.sender() else {
            return Err(StoreError::Closed);
        };
        let (job, answer) = job(op, logging, record_len);
        sender.blocking_send(job).map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    /// Waits until every logged operation acknowledged so far is applied, so that a reader
    /// sees what a caller was told is stored. [`StoreError::Busy`] after `timeout`.
    pub(crate) async fn caught_up(&self, timeout: Duration) -> Result<(), StoreError> {
        let Some(acked) = &self.acked else {
            return Ok(());
        };
        let target = acked.load(Ordering::Acquire);
        if *self.applied.borrow() >= target {
            return Ok(());
        }
        let mut applied = self.applied.clone();
        let _waiting = ReaderWaiting::new(&self.readers_waiting);
        match tokio::time::timeout(timeout, applied.wait_for(|a| *a >= target)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => Err(StoreError::Busy),
        }
    }

    /// Whether a reader waits for acknowledged records to be applied.
    pub(crate) fn readers_waiting(&self) -> bool {
        self.readers_waiting.load(Ordering::Acquire) > 0
    }

    pub(crate) fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            commits: c.commits.load(Ordering::Relaxed),
            durable_commits: c.durable_commits.load(Ordering::Relaxed),
            operations: c.operations.load(Ordering::Relaxed),
            logged_operations: c.logged_operations.load(Ordering::Relaxed),
            replays: c.replays.load(Ordering::Relaxed),
            stalled: c.stalled.load(Ordering::Relaxed),
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

/// The writer's side of the redo log: what it covers, and when to checkpoint.
struct LogSide {
    log: Arc<std::sync::Mutex<RedoLog>>,
    /// Highest sequence number whose operation is in redb (maybe not durably yet).
    applied: u64,
    /// The mark of the last durable commit.
    persisted: u64,
    last_durable: Instant,
    /// After a failed checkpoint, when to try again.
    retry_at: Option<Instant>,
    bytes_since: u64,
    interval: Duration,
    max_bytes: u64,
}

impl LogSide {
    fn new(setup: LogSetup) -> LogSide {
        LogSide {
            log: setup.log,
            applied: setup.mark,
            persisted: setup.mark,
            last_durable: Instant::now(),
            retry_at: None,
            bytes_since: 0,
            interval: setup.checkpoint_interval,
            max_bytes: setup.checkpoint_bytes,
        }
    }

    /// Whether commits since the last durable one rely on the log.
    fn pending(&self) -> bool {
        self.applied > self.persisted
    }

    fn checkpoint_due(&self) -> bool {
        self.pending()
            && (self.last_durable.elapsed() >= self.interval || self.bytes_since >= self.max_bytes)
    }

    /// When the writer must checkpoint if nothing arrives, but not more often than a
    /// failing checkpoint allows.
    fn deadline(&self) -> Option<Instant> {
        if !self.pending() {
            return None;
        }
        let due = self.last_durable + self.interval;
        Some(self.retry_at.map_or(due, |r| r.max(due)))
    }

    /// Deletes the log segments a durable commit made redundant.
    fn discard_through(&self, mark: u64) {
        let detached = self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .detach_through(mark);
        super::redo::delete_segments(detached);
    }
}

/// Counts a reader in [`Writer::caught_up`] for as long as it waits, also when its
/// request is dropped mid-wait (a client that hangs up).
struct ReaderWaiting<'a>(&'a AtomicUsize);

impl<'a> ReaderWaiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        ReaderWaiting(count)
    }
}

impl Drop for ReaderWaiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The writer thread's state.
struct WriterLoop {
    db: Arc<Database>,
    counters: Arc<Counters>,
    /// Ticked after every commit: background workers act on what it holds (logged
    /// operations are durable before they are applied).
    commit_tx: watch::Sender<u64>,
    /// The highest logged sequence number applied.
    applied_tx: watch::Sender<u64>,
    log: Option<LogSide>,
    max_batch: usize,
    /// Acknowledged operations waiting, in log order, because applying the first failed.
    stalled: VecDeque<Box<dyn Job>>,
    /// When to try the stalled ones again.
    stalled_until: Option<Instant>,
}

impl WriterLoop {
    fn run(&mut self, mut rx: mpsc::Receiver<Box<dyn Job>>, timer: tokio::runtime::Runtime) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(self.max_batch);
        loop {
            // Also while jobs keep coming, or the stalled ones would wait for a quiet moment.
            if self.stalled_until.is_some_and(|t| t <= Instant::now()) {
                self.retry_stalled(&mut batch);
            }
            let deadline = [
                self.log.as_ref().and_then(LogSide::deadline),
                self.stalled_until,
            ]
            .into_iter()
            .flatten()
            .min();
            let first = match deadline {
                None => rx.blocking_recv(),
                Some(at) => {
                    let wait = async { tokio::time::timeout_at(at.into(), rx.recv()).await };
                    match timer.block_on(wait) {
                        Ok(job) => job,
                        Err(_elapsed) => {
                            if self.stalled_until.is_some_and(|t| t <= Instant::now()) {
                                self.retry_stalled(&mut batch);
                            } else if self.log.as_ref().is_some_and(LogSide::checkpoint_due) {
                                self.checkpoint();
                            }
                            continue;
                        }
                    }
                }
            };
            // Ends when every sender is gone and the queue is empty (shutdown).
            let Some(first) = first else { break };
            self.take(&mut batch, first);
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => self.take(&mut batch, job),
                    Err(_) => break,
                }
            }
            self.commit_batch(&mut batch);
        }
        // Shutdown: what could not be applied is in the log and will be replayed.
        for job in self.stalled.drain(..) {
            job.fail(StoreError::Closed);
        }
        self.checkpoint();
    }

    /// Adds `job` to the batch, or behind the stalled ones if it must wait for them.
    fn take(&mut self, batch: &mut Vec<Box<dyn Job>>, job: Box<dyn Job>) {
        // Covered ones too: they must not overtake acknowledged records either.
        if !self.stalled.is_empty() && job.logging() != Logging::Plain {
            self.stalled.push_back(job);
            self.counters
                .stalled
                .store(self.stalled.len() as u64, Ordering::Relaxed);
        } else {
            batch.push(job);
        }
    }

    /// Tries the stalled operations again, in order.
    fn retry_stalled(&mut self, batch: &mut Vec<Box<dyn Job>>) {
        self.stalled_until = None;
        batch.extend(self.stalled.drain(..));
        self.counters.stalled.store(0, Ordering::Relaxed);
        self.commit_batch(batch);
    }

    /// Whether `batch` (all of whose operations ran) needs a durable commit.
    fn needs_durable(&self, batch: &[Box<dyn Job>]) -> bool {
        match &self.log {
            None => true,
            Some(log) => {
                log.checkpoint_due()
                    || batch
                        .iter()
                        .any(|j| !matches!(j.logging(), Logging::Applied { .. }))
            }
        }
    }

    /// Runs `batch` in one transaction, replaying without any operation that fails, commits,
    /// and answers everyone. Leaves `batch` empty.
    fn commit_batch(&mut self, batch: &mut Vec<Box<dyn Job>>) {
        loop {
            if batch.is_empty() {
                return;
            }
            let tx = match self.db.begin_write() {
                Ok(tx) => tx,
                Err(e) => {
                    self.fail_batch(batch, &StoreError::Db(e.into()));
                    return;
                }
            };
            let failed = batch.iter_mut().position(|job| !job.run(&tx));
            if let Some(index) = failed {
                let _ = tx.abort();
                if matches!(batch[index].logging(), Logging::Applied { .. }) {
                    self.stall(batch, index);
                } else {
                    batch.remove(index).answer();
                }
                if !batch.is_empty() {
                    self.counters.replays.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            let seqs = batch.iter().filter_map(|j| match j.logging() {
                Logging::Applied { last: seq, .. } | Logging::Covered(seq) => Some(seq),
                Logging::Plain => None,
            });
            let highest = seqs.max();
            if self.needs_durable(batch) {
                let limit = self.mark_limit();
                let mark = self
                    .log
                    .as_ref()
                    .map(|l| highest.map_or(l.applied, |h| h.max(l.applied)).min(limit));
                match self.commit_durably(tx, mark) {
                    Ok(()) => self.answer_all(batch),
                    Err(e) => self.fail_batch(batch, &e),
                }
            } else {
                self.commit_logged(tx, batch, highest.unwrap_or(0));
            }
            return;
        }
    }

    /// The highest mark a durable commit may store: not past a stalled record, which the
    /// log must keep for replay.
    fn mark_limit(&self) -> u64 {
        match self.stalled.front().map(|j| j.logging()) {
            Some(Logging::Applied { first: seq, .. } | Logging::Covered(seq)) => seq - 1,
            _ => u64::MAX,
        }
    }

    /// Applying the acknowledged operation at `index` failed: it and every acknowledged
    /// operation after it wait, in order, and are tried again later.
    fn stall(&mut self, batch: &mut Vec<Box<dyn Job>>, index: usize) {
        let mut kept = Vec::with_capacity(batch.len());
        let mut waiting = Vec::new();
        for (i, job) in batch.drain(..).enumerate() {
            if i >= index && job.logging() != Logging::Plain {
                waiting.push(job);
            } else {
                kept.push(job);
            }
        }
        *batch = kept;
        tracing::error!(
            waiting = waiting.len() + self.stalled.len(),
            "applying an acknowledged ingestion failed; it stays in the redo log and is tried again"
        );
        // Older stalled ones first (they were taken out of the queue earlier).
        for job in waiting.into_iter().rev() {
            self.stalled.push_front(job);
        }
        self.stalled_until = Some(Instant::now() + STALL_RETRY);
        self.counters
            .stalled
            .store(self.stalled.len() as u64, Ordering::Relaxed);
    }

    fn answer_all(&mut self, batch: &mut Vec<Box<dyn Job>>) {
        self.counters
            .operations
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.drain(..).for_each(|j| j.answer());
    }

    /// A commit failed: plain operations get the error; acknowledged ones must not be
    /// dropped, so they wait and are tried again.
    fn fail_batch(&mut self, batch: &mut Vec<Box<dyn Job>>, err: &StoreError) {
        if let Some(index) = batch
            .iter()
            .position(|j| matches!(j.logging(), Logging::Applied { .. }))
        {
            self.stall(batch, index);
        }
        for job in batch.drain(..) {
            job.fail(StoreError::Internal(err.to_string()));
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
            }
            return Err(err);
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .durable_commits
            .fetch_add(1, Ordering::Relaxed);
        if let (Some(log), Some(mark)) = (&mut self.log, mark) {
            log.applied = mark;
            log.persisted = mark;
            log.bytes_since = 0;
            log.last_durable = Instant::now();
            log.retry_at = None;
            log.discard_through(mark);
            self.applied_tx.send_if_modified(|a| {
                let moved = *a < mark;
                *a = (*a).max(mark);
                moved
            });
        }
        self.commit_tx.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Commits `tx`, which applies logged operations up to `highest`, without an fsync.
    fn commit_logged(
        &mut self,
        mut tx: WriteTransaction,
        batch: &mut Vec<Box<dyn Job>>,
        highest: u64,
    ) {
        let committed = tx
            .set_durability(Durability::None)
            .map_err(StoreError::from)
            .and_then(|()| tx.commit().map_err(StoreError::from));
        if let Err(e) = committed {
            tracing::error!(error = %e, "commit failed");
            self.fail_batch(batch, &e);
            return;
        }
        let log = self.log.as_mut().expect("only called with a log");
        log.applied = log.applied.max(highest);
        log.bytes_since += batch.iter().map(|j| j.record_len()).sum::<u64>();
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .logged_operations
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.answer_all(batch);
        self.applied_tx.send_if_modified(|a| {
            let moved = *a < highest;
            *a = (*a).max(highest);
            moved
        });
        self.commit_tx.send_modify(|n| *n += 1);
    }

    /// A durable commit of nothing but the mark, when logged commits are pending.
    fn checkpoint(&mut self) {
        let Some(log) = &self.log else { return };
        if !log.pending() {
            return;
        }
        let mark = Some(log.applied);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::access::{self, Reader};
    use crate::store::redo::RedoAppender;
    use crate::store::tables;
    use redb::ReadableDatabase;
    use std::sync::atomic::AtomicUsize;

    struct Setup {
        db: Arc<Database>,
        writer: Arc<Writer>,
        appender: RedoAppender,
    }

    fn start(dir: &std::path::Path) -> Setup {
        let db =
            Arc::new(crate::store::open_database(&dir.join("s.redb"), 1 << 20).expect("database"));
        {
            let tx = db.begin_write().expect("tx");
            tx.open_table(tables::META).expect("meta");
            tx.commit().expect("commit");
        }
        let log = Arc::new(std::sync::Mutex::new(
            RedoLog::open(&dir.join("redo"), 1).expect("log"),
        ));
        let acked = Arc::new(AtomicU64::new(0));
        let appender = RedoAppender::new(log.clone(), 1, acked.clone());
        let setup = LogSetup {
            log,
            acked,
            mark: 0,
            checkpoint_interval: Duration::from_secs(3600),
            checkpoint_bytes: u64::MAX,
        };
        let writer = Arc::new(Writer::start(db.clone(), 64, 64, Some(setup)).expect("writer"));
        Setup {
            db,
            writer,
            appender,
        }
    }

    fn put(key: &'static [u8]) -> impl FnMut(&WriteTransaction) -> Result<(), StoreError> {
        move |tx: &WriteTransaction| access::put_raw(tx, tables::META, key, b"v")
    }

    /// What the logging thread does: append, then apply (or write durably if the log
    /// failed); waits for the outcome.
    async fn ingest<F>(s: &mut Setup, record: &str, op: F) -> Result<(), StoreError>
    where
        F: FnMut(&WriteTransaction) -> Result<(), StoreError> + Send + 'static,
    {
        let (seq, appended) = s.appender.append(record.as_bytes().to_vec());
        let writer = s.writer.clone();
        let how = match appended {
            Ok(()) => FromLog::Applied {
                first: seq,
                last: seq,
                record_len: 10,
            },
            Err(_) => FromLog::Unlogged { seq: Some(seq) },
        };
        let outcome = tokio::task::spawn_blocking(move || writer.hand_over_logged(how, op))
            .await
            .expect("join")?;
        outcome.await
    }

    fn applied(seq: u64) -> FromLog {
        FromLog::Applied {
            first: seq,
            last: seq,
            record_len: 5,
        }
    }

    fn mark(db: &Database) -> Option<u64> {
        let r = db.begin_read().expect("read");
        access::get_id(&r, tables::META, REDO_MARK_KEY).expect("mark")
    }

    /// A failing redo log must not lose a write: what it could not take becomes a durable
    /// commit that covers its number.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_append_becomes_a_durable_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = start(dir.path());
        s.appender.break_for_test();
        ingest(&mut s, "one", put(b"k1"))
            .await
            .expect("durable by a commit");
        assert!(
            s.writer.stats().durable_commits >= 1,
            "{:?}",
            s.writer.stats()
        );
        assert_eq!(
            mark(&s.db),
            Some(1),
            "the commit covers the record's number"
        );
        ingest(&mut s, "two", put(b"k2"))
            .await
            .expect("the log stays off: a durable write");
        assert_eq!(mark(&s.db), Some(2));
        s.writer.shutdown().await;
        let r = s.db.begin_read().expect("read");
        for key in [&b"k1"[..], b"k2"] {
            assert_eq!(
                r.get_raw(tables::META, key).expect("get").as_deref(),
                Some(&b"v"[..])
            );
        }
    }

    /// Logged writes commit without redb's fsync; a plain write after them is a durable
    /// commit that marks them covered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plain_write_checkpoints_the_logged_ones_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = start(dir.path());
        for (i, key) in [&b"a"[..], b"b", b"c"].into_iter().enumerate() {
            ingest(&mut s, &format!("record {i}"), put(key))
                .await
                .expect("logged");
        }
        assert_eq!(s.writer.stats().durable_commits, 0);
        assert_eq!(s.writer.stats().logged_operations, 3);
        s.writer
            .caught_up(Duration::from_secs(1))
            .await
            .expect("nothing acknowledged is unapplied");
        s.writer
            .submit(put(b"plain"), Submit::plain(false))
            .await
            .expect("plain");
        assert_eq!(s.writer.stats().durable_commits, 1);
        assert_eq!(mark(&s.db), Some(3));
        s.writer.shutdown().await;
    }

    /// A reader waiting for acknowledged records is counted (the logging thread hands its
    /// records over at once for it) only while it waits: a request dropped mid-wait, as
    /// when its client hangs up, leaves no count behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_is_counted_only_while_it_waits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = start(dir.path());
        let (_, appended) = s.appender.append(b"not handed over".to_vec());
        appended.expect("logged");
        assert!(!s.writer.readers_waiting());
        let writer = s.writer.clone();
        let waiting = tokio::spawn(async move { writer.caught_up(Duration::from_secs(30)).await });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !s.writer.readers_waiting() {
            assert!(
                Instant::now() < deadline,
                "the reader is counted while it waits"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        waiting.abort();
        assert!(waiting.await.is_err_and(|e| e.is_cancelled()));
        assert!(
            !s.writer.readers_waiting(),
            "a dropped reader is no longer counted"
        );
        s.writer.shutdown().await;
    }

    /// An acknowledged record whose application fails is neither dropped nor overtaken:
    /// it and the records after it are applied, in order, once it succeeds; no durable
    /// commit marks it covered meanwhile, and readers are told the store is behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_application_waits_and_keeps_the_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = start(dir.path());
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = tries.clone();
        let flaky = move |tx: &WriteTransaction| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(StoreError::Internal("disk hiccup".into()));
            }
            access::put_raw(tx, tables::META, b"order", b"first")
        };
        let in_order = |tx: &WriteTransaction| {
            let before = tx.get_raw(tables::META, b"order")?;
            assert_eq!(before.as_deref(), Some(&b"first"[..]), "applied in order");
            access::put_raw(tx, tables::META, b"order", b"second")
        };
        let (first_seq, appended) = s.appender.append(b"first".to_vec());
        appended.expect("logged");
        let (second_seq, appended) = s.appender.append(b"second".to_vec());
        appended.expect("logged");
        let writer = s.writer.clone();
        let (first, second) = tokio::task::spawn_blocking(move || {
            let first = writer
                .hand_over_logged(applied(first_seq), flaky)
                .expect("queued");
            let second = writer
                .hand_over_logged(applied(second_seq), in_order)
                .expect("queued");
            (first, second)
        })
        .await
        .expect("join");
        // A plain write meanwhile commits durably without covering the stalled records.
        s.writer
            .submit(put(b"plain"), Submit::plain(false))
            .await
            .expect("plain");
        assert_eq!(mark(&s.db), None, "no mark past a stalled record");
        assert!(
            s.writer.caught_up(Duration::from_millis(50)).await.is_err(),
            "readers are told the store is behind"
        );
        first.await.expect("applied on the retry");
        second.await.expect("applied after it");
        assert_eq!(tries.load(Ordering::SeqCst), 2);
        s.writer
            .caught_up(Duration::from_secs(1))
            .await
            .expect("caught up");
        s.writer.shutdown().await;
        assert_eq!(mark(&s.db), Some(2), "the shutdown checkpoint covers both");
    }
}
