//! The embedded store: redb tables, their encoding, indexes, the group-commit writer,
//! migrations and backups.
//!
//! Every table maps bytes to bytes. Keys are built with [`keys::Key`] so that byte order is
//! the order we list in (big-endian ids, escaped strings). Values are JSON, which is
//! self-describing: a record written before a field existed still reads, the field taking
//! its `#[serde(default)]`. Alerts are the exception, written at storm rates in the binary
//! layout of [`codec`]: a new alert field needs a new layout version there (the old one
//! still decoded), not just a serde default. Reads run on MVCC snapshots and never wait
//! for writes; all writes go through the single [`writer`] thread.

pub mod access;
pub mod backup;
pub mod codec;
pub mod due;
pub mod error;
pub mod keys;
pub mod migrations;
pub mod records;
pub mod redo;
pub mod tables;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, WriteTransaction};
use tokio::sync::watch;

pub use access::{Reader, Record};
pub use error::StoreError;
pub use writer::{FromLog, WriterStats};

/// The file name of the store inside the data directory.
pub const STORE_FILE: &str = "incidentd.redb";

/// How the store is tuned.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// redb page cache, in bytes.
    pub cache_bytes: usize,
    /// Writes that may wait for the writer before `try_write_logged` sheds load.
    pub queue_capacity: usize,
    /// Most operations folded into one transaction.
    pub max_batch: usize,
    /// Longest time between durable commits while logged writes pile up (see
    /// [`redo`]).
    pub checkpoint_interval: std::time::Duration,
    /// Most redo log bytes between durable commits.
    pub checkpoint_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 256 * 1024 * 1024,
            queue_capacity: 8192,
            max_batch: 2048,
            checkpoint_interval: std::time::Duration::from_secs(30),
            checkpoint_bytes: 128 * 1024 * 1024,
        }
    }
}

/// A handle to the open store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    writer: writer::Writer,
    path: PathBuf,
    /// Logged writes that were acknowledged but never checkpointed, taken by
    /// [`Store::take_redo_backlog`] for replay at start-up.
    backlog: std::sync::Mutex<Vec<(u64, Vec<u8>)>>,
    /// The redo log's writing end, until the logging thread takes it.
    appender: std::sync::Mutex<Option<redo::RedoAppender>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`, runs pending migrations and starts the
    /// writer thread. Refuses a store written by a newer version.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let db = open_database(path, options.cache_bytes)?;
        migrations::run(&db)?;
        let mark = {
            let r = db.begin_read().map_err(redb::Error::from)?;
            access::get_id(&r, tables::META, writer::REDO_MARK_KEY)?.unwrap_or(0)
        };
        let dir = redo_dir(path);
        let records = redo::RedoLog::read_all(&dir)?;
        let last = records.iter().map(|(seq, _)| *seq).fold(mark, u64::max);
        let backlog: Vec<_> = records.into_iter().filter(|(seq, _)| *seq > mark).collect();
        if let Some((missing_from, missing_to)) = redo::first_gap(mark, &backlog) {
            return Err(StoreError::RedoGap {
                dir,
                missing_from,
                missing_to,
            });
        }
        let mut log = redo::RedoLog::open(&dir, last + 1)?;
        if backlog.is_empty() {
            log.discard_through(last);
        } else {
            tracing::info!(
                records = backlog.len(),
                "the redo log holds acknowledged writes newer than the last checkpoint; replaying"
            );
        }
        let db = Arc::new(db);
        let log = Arc::new(std::sync::Mutex::new(log));
        let acked = Arc::new(std::sync::atomic::AtomicU64::new(mark));
        let appender = redo::RedoAppender::new(log.clone(), last + 1, acked.clone());
        let writer = writer::Writer::start(
            db.clone(),
            options.queue_capacity,
            options.max_batch,
            Some(writer::LogSetup {
                log,
                acked,
                mark,
                checkpoint_interval: options.checkpoint_interval,
                checkpoint_bytes: options.checkpoint_bytes,
            }),
        )?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                writer,
                path: path.to_owned(),
                backlog: std::sync::Mutex::new(backlog),
                appender: std::sync::Mutex::new(Some(appender)),
            }),
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A consistent read-only snapshot; never waits for writers.
    pub fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        Ok(self.inner.db.begin_read().map_err(redb::Error::from)?)
    }

    /// Runs `op` in a write transaction shared with other concurrent writes, and answers
    /// once that transaction is durably committed. Waits for room in the queue.
    ///
    /// `op` may run more than once (when another operation in its batch fails, the batch is
    /// replayed without it), so it must not have side effects outside the transaction. If
    /// `op` returns an error, none of its writes are kept.
    pub async fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.inner
            .writer
            .submit(op, writer::Submit::plain(false))
            .await
    }

    /// The redo log's writing end, for the one thread that logs (ingestion); `None` after
    /// the first call. That thread appends a record that describes an operation
    /// completely, acknowledges it (start-up replays the record after a crash, so the
    /// operation must be a deterministic function of the store and the record), and then
    /// hands the operation over with [`Store::hand_over_logged`], in log order. See [`redo`].
    pub fn take_redo_appender(&self) -> Option<redo::RedoAppender> {
        self.inner
            .appender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// From the logging thread (blocks while the queue is full): `op`, logged and to be
    /// applied without redb's fsync, or a durable write when the log could not take it
    /// (see [`FromLog`]). Readers that must see it wait with [`Store::caught_up`]. `op`
    /// may run more than once.
    pub fn hand_over_logged<T, E, F>(
        &self,
        how: FromLog,
        op: F,
    ) -> Result<impl Future<Output = Result<T, E>> + use<T, E, F>, StoreError>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.inner.writer.hand_over_logged(how, op)
    }

    /// Waits until everything acknowledged through the redo log so far is applied, so
    /// that what a sender was told is stored is also what a reader sees. Immediate when
    /// nothing is behind; [`StoreError::Busy`] after `timeout`.
    pub async fn caught_up(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        self.inner.writer.caught_up(timeout).await
    }

    /// Whether a reader waits in [`Store::caught_up`] right now.
    pub fn readers_waiting(&self) -> bool {
        self.inner.writer.readers_waiting()
    }

    /// The logged writes acknowledged after the last checkpoint, oldest first, as
    /// `(sequence number, record)`; empty after the first call.
    pub fn take_redo_backlog(&self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut *self.inner.backlog.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Applies records of the backlog durably in one transaction: `op` applies every
    /// record up to `last_seq` not yet replayed, in order, and the commit marks them
    /// replayed. Call in order, before serving; if `op` fails nothing of it is kept.
    pub async fn replay<T, E, F>(&self, last_seq: u64, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let how = writer::Submit {
            replayed: Some(last_seq),
            ..writer::Submit::plain(false)
        };
        self.inner.writer.submit(op, how).await
    }

    /// Counts of commits and operations so far.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }

    /// Whether the writer thread is still running.
    pub fn writer_alive(&self) -> bool {
        self.inner.writer.alive()
    }

    /// Ticks after every commit (its changes are visible); background workers wait on it
    /// instead of polling.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.inner.writer.commits()
    }

    /// Stops taking writes, lets queued ones commit, and waits for the writer to finish.
    pub async fn shutdown(&self) {
        self.inner.writer.shutdown().await;
    }

    /// Writes a consistent copy of the whole store to `out` (a new redb file).
    pub fn backup_to(&self, out: &Path) -> Result<backup::BackupSummary, StoreError> {
        let snapshot = self.read()?;
        backup::copy_snapshot(&snapshot, out)
    }
}

/// Where the redo log of the store at `path` lives: `redo/` beside the store file.
pub fn redo_dir(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new(".")).join("redo")
}

/// Opens the redb file, translating "locked by another process" into a clear error.
pub(crate) fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        redo::create_dir_durably(parent)?;
    }
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.to_owned()),
            other => StoreError::Db(other.into()),
        })?;
    owner_only(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(db)
}

/// Makes `path` readable and writable by its owner only (the store holds password hashes
/// and webhook secrets), if it is not already.
pub(crate) fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaves a redo log as two runs of the daemon do: records 1-3 in one segment, 4-5
    /// in the next.
    fn two_segments(path: &Path) -> PathBuf {
        let dir = redo_dir(path);
        let mut log = redo::RedoLog::open(&dir, 1).expect("open log");
        for seq in 1..=3u8 {
            log.append(&[(u64::from(seq), vec![seq; 64])])
                .expect("append");
        }
        drop(log);
        let mut log = redo::RedoLog::open(&dir, 4).expect("reopen log");
        for seq in 4..=5u8 {
            log.append(&[(u64::from(seq), vec![seq; 64])])
                .expect("append");
        }
        dir.join(format!("{:020}.log", 1))
    }

    #[tokio::test]
    async fn an_intact_redo_log_is_handed_over_for_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STORE_FILE);
        two_segments(&path);
        let store = Store::open(&path, &StoreOptions::default()).expect("open");
        let seqs: Vec<u64> = store.take_redo_backlog().iter().map(|r| r.0).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        store.shutdown().await;
    }

    #[test]
    fn a_redo_log_missing_acknowledged_records_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STORE_FILE);
        let first = two_segments(&path);
        // Damage record 2 (its payload, after the 16-byte header of record 1 + 64 bytes
        // and its own header): records 2 and 3 no longer read, 4 and 5 still do.
        let mut bytes = std::fs::read(&first).expect("read segment");
        bytes[16 + 64 + 16 + 3] ^= 0xff;
        std::fs::write(&first, &bytes).expect("damage segment");
        match Store::open(&path, &StoreOptions::default()) {
            Err(StoreError::RedoGap {
                missing_from,
                missing_to,
                ..
            }) => assert_eq!((missing_from, missing_to), (2, 3)),
            Err(other) => panic!("wrong error: {other}"),
            Ok(_) => panic!("a log missing acknowledged records must be refused"),
        }
        // Refusing deleted nothing.
        assert!(first.exists());
    }
}
