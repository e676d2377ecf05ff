//! What can go wrong in the store.

use std::path::PathBuf;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb reported an error (I/O, corruption, ...).
    #[error("storage error: {0}")]
    Db(#[from] redb::Error),
    /// A stored value did not decode: a bug or corruption, never user input.
    #[error("stored record in table '{table}' does not decode: {source}")]
    Decode {
        /// The table.
        table: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A stored value in a binary layout did not decode: a bug or corruption.
    #[error("stored record in table '{table}' is damaged: {reason}")]
    Corrupt {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// The write queue is full; the caller should shed load (HTTP 503).
    #[error("the store is busy; retry later")]
    Busy,
    /// The writer has stopped (shutdown in progress, or it failed).
    #[error("the store is shutting down")]
    Closed,
    /// Another process (a running daemon) holds the store.
    #[error(
        "the store {0} is in use by another process (is the daemon running? stop it, or use its control socket)"
    )]
    Locked(PathBuf),
    /// The store was written by a newer version of incidentd.
    #[error(
        "the store has schema version {found}, but this incidentd knows only up to {supported}: it was written by a newer version; run that version or restore a backup"
    )]
    SchemaTooNew {
        /// The version in the store.
        found: u64,
        /// The highest this binary knows.
        supported: u64,
    },
    /// The redo log lacks records it must have: a segment in the middle is damaged, and
    /// the acknowledged writes in it cannot be replayed.
    #[error(
        "the redo log in {dir} lacks acknowledged records {missing_from}..{missing_to} (a damaged segment); incidentd will not start without them: restore the segment or a backup, or move {dir} aside to start without those writes"
    )]
    RedoGap {
        /// The log directory.
        dir: PathBuf,
        /// The first missing sequence number.
        missing_from: u64,
        /// The last missing one.
        missing_to: u64,
    },
    /// A file operation around the store failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An internal invariant broke (an operation panicked, a migration is malformed...).
    #[error("internal store error: {0}")]
    Internal(String),
}

macro_rules! from_redb {
    ($($t:ty),+) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )+};
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);
