//! The embedded store: redb tables, their encoding, indexes, the group-commit writer,
//! migrations and backups.
//!
//! Every table maps bytes to bytes. Keys are built with [`keys::Key`] so that byte order is
//! the order we list in (big-endian ids, escaped strings); values are JSON, which is
//! self-describing: a record written before a field existed still reads, the field taking
//! its `#[serde(default)]`. Reads run on MVCC snapshots and never wait for writes; all writes
//! go through the single [`writer`] thread.

pub mod access;
pub mod backup;
pub mod error;
pub mod keys;
pub mod migrations;
pub mod records;
pub mod tables;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, WriteTransaction};
use tokio::sync::watch;

pub use access::{Reader, Record};
pub use error::StoreError;
pub use writer::WriterStats;

/// The file name of the store inside the data directory.
pub const STORE_FILE: &str = "incidentd.redb";

/// How the store is tuned.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// redb page cache, in bytes.
    pub cache_bytes: usize,
    /// Writes that may wait for the writer before `try_write` sheds load.
    pub queue_capacity: usize,
    /// Most operations folded into one transaction.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 256 * 1024 * 1024,
            queue_capacity: 8192,
            max_batch: 2048,
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
        let db = Arc::new(db);
        let writer = writer::Writer::start(db.clone(), options.queue_capacity, options.max_batch)?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                writer,
                path: path.to_owned(),
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
        self.inner.writer.submit(op, false).await
    }

    /// Like [`Store::write`], but fails at once with [`StoreError::Busy`] when the queue is
    /// full, so that the ingest path can shed load with 503 instead of piling up.
    pub async fn try_write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.inner.writer.submit(op, true).await
    }

    /// Counts of commits and operations so far.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }

    /// Whether the writer thread is still running.
    pub fn writer_alive(&self) -> bool {
        self.inner.writer.alive()
    }

    /// Ticks after every durable commit; background workers wait on it instead of polling.
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

/// Opens the redb file, translating "locked by another process" into a clear error.
pub(crate) fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::Io {
            path: parent.to_owned(),
            source: e,
        })?;
    }
    Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.to_owned()),
            other => StoreError::Db(other.into()),
        })
}
