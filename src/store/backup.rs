//! Consistent copies of the store, and restoring one into an empty data directory.
//!
//! A backup reads one MVCC snapshot and writes every table into a new redb file, so it is
//! consistent even while the daemon keeps writing. A raw file copy would not be: redb
//! rewrites its header and free pages underneath a copier.

use std::path::Path;

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    TableHandle,
};
use serde::Serialize;

use super::error::StoreError;
use super::migrations;

/// What a backup or restore copied.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BackupSummary {
    /// Tables copied.
    pub tables: usize,
    /// Entries copied.
    pub entries: u64,
    /// Schema version of the copy.
    pub schema_version: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes every table of `snapshot` to a new redb file at `out` (which must not exist).
pub fn copy_snapshot(snapshot: &ReadTransaction, out: &Path) -> Result<BackupSummary, StoreError> {
    if out.exists() {
        return Err(StoreError::Io {
            path: out.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "refusing to overwrite an existing file",
            ),
        });
    }
    let tmp = out.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        // A backup holds what the store holds (password hashes, webhook secrets): its
        // owner's only, whatever the umask.
        std::fs::File::create(&tmp).map_err(io(&tmp))?;
        super::owner_only(&tmp).map_err(io(&tmp))?;
        let target = Database::create(&tmp)?;
        let mut tx = target.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        let mut tables = 0;
        let mut entries = 0;
        for handle in snapshot.list_tables()? {
            let name = handle.name().to_owned();
            let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
            let source = snapshot.open_table(def)?;
            let mut dest = tx.open_table(def)?;
            for item in source.iter()? {
                let (k, v) = item?;
                dest.insert(k.value(), v.value())?;
                entries += 1;
            }
            tables += 1;
        }
        let schema_version = migrations::current_version(snapshot)?;
        tx.commit()?;
        drop(target);
        Ok::<_, StoreError>(BackupSummary {
            tables,
            entries,
            schema_version,
        })
    })();
    match result {
        Ok(summary) => {
            std::fs::rename(&tmp, out).map_err(io(out))?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Fills the empty (or missing) `data_dir` from the backup file `from`, after checking that
/// the backup opens and its schema is one this binary can run.
pub fn restore(
    from: &Path,
    data_dir: &Path,
    store_file: &str,
) -> Result<BackupSummary, StoreError> {
    if data_dir.exists() {
        let mut entries = std::fs::read_dir(data_dir).map_err(io(data_dir))?;
        if entries.next().is_some() {
            return Err(StoreError::Io {
                path: data_dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the data directory is not empty; restore only fills an empty one",
                ),
            });
        }
    }
    if !from.is_file() {
        return Err(StoreError::Io {
            path: from.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such backup file"),
        });
    }
    let source = Database::builder()
        .open_read_only(from)
        .map_err(|e| StoreError::Db(e.into()))?;
    let snapshot = source.begin_read()?;
    let version = migrations::current_version(&snapshot)?;
    if version > migrations::latest_version() {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: migrations::latest_version(),
        });
    }
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let target = data_dir.join(store_file);
    copy_snapshot(&snapshot, &target)
}
