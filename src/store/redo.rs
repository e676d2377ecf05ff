//! The redo log: where an acknowledged alert is durable before redb has it on disk.
//!
//! A durable redb commit rewrites and fsyncs every B-tree page its transaction touched.
//! Alert ingestion touches many (fingerprints are random keys), and at one alert per request
//! the fsync alone caps throughput at "requests in flight / fsync latency". So ingestion,
//! and only ingestion, appends its input to this log first (one `fdatasync`, one sequential
//! write shared by every request that arrived meanwhile) and answers its 2xx then; redb
//! gets the changes just after, in a commit without an fsync (visible to readers at once,
//! gone after a crash), and readers wait for them if they are behind
//! ([`super::Store::caught_up`]). A later durable redb commit (a checkpoint, see
//! [`super::writer`]) makes older records redundant, and at start-up the records newer than
//! the store's checkpoint mark are replayed in order through the same ingestion code, which
//! is deterministic given the store and the record. This is the write-ahead logging every
//! database does, applied to one use case.
//!
//! Segments are named by their first sequence number (`{seq:020}.log`); each is a run of
//! records `[len: u32 LE][crc32: u32 LE][seq: u64 LE][payload: len bytes]`, the checksum over
//! seq and payload. Reading a segment stops at the first record that is short or fails its
//! checksum: a write torn by a crash, which was never acknowledged. A segment is filled with
//! zeros a few MiB ahead of its last record, so that appending overwrites allocated blocks
//! and `fdatasync` has no file size to persist (about 125 us instead of 200-330 us on the
//! machine this was measured on); reading stops quietly at those zeros.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::error::StoreError;

/// A segment is closed and a new one begun once it holds this many bytes, so that
/// checkpointed records can be deleted a file at a time.
const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
/// How far ahead of the last record a segment is filled with zeros.
const PREALLOCATE_BYTES: u64 = 4 * 1024 * 1024;
/// Record header: length, checksum, sequence number.
const HEADER: usize = 4 + 4 + 8;
/// No record is larger (a hook body is capped far below this); a larger length is a torn
/// or corrupt header.
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// One logged operation: its sequence number and its payload.
pub(crate) type LogRecord = (u64, Vec<u8>);

/// The log directory, appended to by one thread (through [`RedoAppender`]).
pub(crate) struct RedoLog {
    dir: PathBuf,
    /// `(first sequence number, path)` of every segment, oldest first; the last one is
    /// being appended to.
    segments: Vec<(u64, PathBuf)>,
    file: File,
    /// Bytes of records in the current segment.
    written: u64,
    /// Bytes of the current segment allocated (records, then zeros).
    allocated: u64,
    buf: Vec<u8>,
}

/// The writing end of the log, for the one thread that logs (ingestion): numbers records
/// in the order they are appended, which is the order their operations must be applied.
pub struct RedoAppender {
    log: Arc<Mutex<RedoLog>>,
    next_seq: u64,
    /// The highest sequence number on disk, for readers who wait for it to be applied.
    acked: Arc<AtomicU64>,
    failed: bool,
}

impl RedoAppender {
    pub(crate) fn new(log: Arc<Mutex<RedoLog>>, next_seq: u64, acked: Arc<AtomicU64>) -> Self {
        Self {
            log,
            next_seq,
            acked,
            failed: false,
        }
    }

    /// Appends `record` and waits until it is on disk; its sequence number either way
    /// (the number is used up even if the append failed, see
    /// [`super::FromLog::Unlogged`]).
    ///
    /// After a failed append the file may end in a torn record, and anything appended
    /// behind it would never be read back: the log refuses every later append (until a
    /// restart opens a new segment) and the caller makes its writes durable in redb.
    pub fn append(&mut self, record: Vec<u8>) -> (u64, Result<(), StoreError>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.failed {
            return (
                seq,
                Err(StoreError::Internal(
                    "the redo log failed earlier and is off until a restart".into(),
                )),
            );
        }
        let appended = self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(&[(seq, record)]);
        match &appended {
            Ok(()) => self.acked.store(seq, Ordering::Release),
            Err(e) => {
                self.failed = true;
                tracing::error!(
                    error = %e,
                    "redo log append failed; the log is off and ingestion commits durably until a restart"
                );
            }
        }
        (seq, appended)
    }

    /// Makes every later append fail, as a full or failing disk would.
    #[cfg(test)]
    pub(crate) fn break_for_test(&mut self) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .break_for_test();
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Every segment in `dir`, oldest first.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The records of one segment, up to the first torn or corrupt one.
fn read_segment(path: &Path) -> Result<Vec<LogRecord>, StoreError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_err(path))?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= HEADER {
        let word = |i: usize| -> [u8; 4] {
            bytes[at + i..at + i + 4]
                .try_into()
                .expect("a four-byte slice of a checked range")
        };
        let len = u32::from_le_bytes(word(0)) as usize;
        let crc = u32::from_le_bytes(word(4));
        if len > MAX_RECORD || bytes.len() - at - HEADER < len {
            break;
        }
        let body = &bytes[at + 8..at + HEADER + len];
        if crc32fast::hash(body) != crc {
            break;
        }
        let seq = u64::from_le_bytes(
            body[..8]
                .try_into()
                .expect("an eight-byte slice of a checked range"),
        );
        out.push((seq, body[8..].to_vec()));
        at += HEADER + len;
    }
    if bytes[at..].iter().any(|b| *b != 0) {
        tracing::warn!(
            segment = %path.display(),
            ignored_bytes = bytes.len() - at,
            "redo log ends in a torn or corrupt record (a crash mid-write); it was never acknowledged"
        );
    }
    Ok(out)
}

/// Fills `file` with zeros from `from` to `to`.
fn write_zeros(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    const CHUNK: usize = 1024 * 1024;
    let zeros = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).map_or(CHUNK, |left| left.min(CHUNK));
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Creates `dir` (and its parents) so that it survives a power loss: the entry of each
/// directory created is made durable in its parent.
pub(crate) fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_owned());
        at = d.parent();
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    for d in missing.iter().rev() {
        let parent = d
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent)?;
    }
    Ok(())
}

/// The first run of sequence numbers missing from `backlog` (the records after `mark`,
/// oldest first), if any.
///
/// A crash can only tear the last record of a segment, never an acknowledged one, and the
/// next start numbers its segment from just after the last whole record; so the records
/// after the checkpoint mark run on without a gap, unless a segment was damaged later.
pub(crate) fn first_gap(mark: u64, backlog: &[LogRecord]) -> Option<(u64, u64)> {
    let mut expected = mark.saturating_add(1);
    for (seq, _) in backlog {
        if *seq != expected {
            return Some((expected, seq.saturating_sub(1).max(expected)));
        }
        expected = seq.saturating_add(1);
    }
    None
}

/// Deletes segments detached by [`RedoLog::detach_through`], outside the log's lock.
pub(crate) fn delete_segments(paths: Vec<PathBuf>) {
    for path in paths {
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(segment = %path.display(), error = %e, "cannot delete a checkpointed redo segment");
        }
    }
}

impl RedoLog {
    /// Reads every record in `dir` (none if it does not exist), oldest first.
    pub(crate) fn read_all(dir: &Path) -> Result<Vec<LogRecord>, StoreError> {
        let mut out = Vec::new();
        for (_, path) in list_segments(dir)? {
            out.extend(read_segment(&path)?);
        }
        Ok(out)
    }

    /// Opens the log for appending, in a new segment whose first record will be
    /// `next_seq` (a torn tail of an older segment is never appended after).
    pub(crate) fn open(dir: &Path, next_seq: u64) -> Result<RedoLog, StoreError> {
        create_dir_durably(dir)?;
        let mut segments = list_segments(dir)?;
        // A segment of this name can only be one that got no record (the sequence
        // numbers it would hold were never used): start it afresh.
        segments.retain(|(first, _)| *first != next_seq);
        let (file, path) = Self::create_segment(dir, next_seq)?;
        segments.push((next_seq, path));
        Ok(RedoLog {
            dir: dir.to_owned(),
            segments,
            file,
            written: 0,
            allocated: 0,
            buf: Vec::new(),
        })
    }

    fn create_segment(dir: &Path, first: u64) -> Result<(File, PathBuf), StoreError> {
        let path = dir.join(format!("{first:020}.log"));
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(dir)?;
        Ok((file, path))
    }

    /// Appends `records` (in sequence order) and waits until they are on disk.
    pub(crate) fn append(&mut self, records: &[LogRecord]) -> Result<(), StoreError> {
        let Some((first, _)) = records.first() else {
            return Ok(());
        };
        if self.written >= SEGMENT_BYTES {
            let (file, path) = Self::create_segment(&self.dir, *first)?;
            self.file = file;
            self.written = 0;
            self.allocated = 0;
            self.segments.push((*first, path));
        }
        self.buf.clear();
        for (seq, payload) in records {
            let start = self.buf.len();
            self.buf.extend_from_slice(&[0; 8]);
            self.buf.extend_from_slice(&seq.to_le_bytes());
            self.buf.extend_from_slice(payload);
            let crc = crc32fast::hash(&self.buf[start + 8..]);
            let len = u32::try_from(payload.len()).map_err(|_| {
                StoreError::Internal(format!("a {} byte redo record", payload.len()))
            })?;
            self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
            self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        }
        let path = &self.segments.last().expect("open() pushes a segment").1;
        let end = self.written + self.buf.len() as u64;
        if end > self.allocated {
            let upto = end + PREALLOCATE_BYTES;
            write_zeros(&self.file, self.allocated, upto).map_err(io_err(path))?;
            self.allocated = upto;
        }
        let started = std::time::Instant::now();
        let appended = self
            .file
            .write_all_at(&self.buf, self.written)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = appended {
            // The bytes may have reached the disk all the same (an fsync error says
            // nothing about which pages made it). This record is not acknowledged: its
            // requests become durable redb commits or get an error, so a replay must not
            // find it. Zero it out, as far as the failing disk lets us.
            let erased =
                write_zeros(&self.file, self.written, end).and_then(|()| self.file.sync_data());
            if let Err(again) = erased {
                tracing::error!(segment = %path.display(), error = %again, "cannot erase a failed redo record; a restart may replay it");
            }
            return Err(io_err(path)(e));
        }
        metrics::histogram!("incidentd_redo_append_seconds")
            .record(started.elapsed().as_secs_f64());
        self.written = end;
        Ok(())
    }

    /// Deletes the segments holding only records up to `mark`, which a durable redb
    /// commit has made redundant. The segment being appended to stays.
    pub(crate) fn discard_through(&mut self, mark: u64) {
        delete_segments(self.detach_through(mark));
    }

    /// Forgets the segments holding only records up to `mark` and returns their paths,
    /// for [`delete_segments`] to delete without holding up appends.
    pub(crate) fn detach_through(&mut self, mark: u64) -> Vec<PathBuf> {
        let mut keep_from = 0;
        for i in 0..self.segments.len().saturating_sub(1) {
            // Segment i ends right before segment i + 1 begins.
            if self.segments[i + 1].0 <= mark.saturating_add(1) {
                keep_from = i + 1;
            }
        }
        self.segments
            .drain(..keep_from)
            .map(|(_, path)| path)
            .collect()
    }

    /// Makes every later append fail, as a full or failing disk would.
    #[cfg(test)]
    pub(crate) fn break_for_test(&mut self) {
        let path = &self.segments.last().expect("open() pushes a segment").1;
        self.file = File::open(path).expect("reopen read-only");
    }

    /// How many segment files exist.
    #[cfg(test)]
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_after_the_mark_are_found() {
        let recs = |seqs: &[u64]| -> Vec<LogRecord> { seqs.iter().map(|s| (*s, vec![])).collect() };
        assert_eq!(first_gap(0, &[]), None);
        assert_eq!(first_gap(7, &recs(&[8, 9, 10])), None);
        assert_eq!(first_gap(7, &recs(&[9, 10])), Some((8, 8)));
        assert_eq!(first_gap(0, &recs(&[1, 2, 5, 6])), Some((3, 4)));
        assert_eq!(first_gap(0, &recs(&[1, 2, 2])), Some((3, 3)));
    }

    #[test]
    fn a_new_directory_is_created_with_its_parents() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/redo");
        create_dir_durably(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_durably(&deep).unwrap();
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RedoLog::open(dir.path(), 1).unwrap();
        log.append(&[(1, b"one".to_vec()), (2, b"two".to_vec())])
            .unwrap();
        log.append(&[(3, vec![7; 1000])]).unwrap();
        drop(log);
        let seg = dir.path().join(format!("{:020}.log", 1));
        // The file is preallocated beyond the records.
        assert!(std::fs::metadata(&seg).unwrap().len() >= PREALLOCATE_BYTES);
        // A crash mid-write leaves half a record right after the last one.
        let end = (HEADER + 3) * 2 + HEADER + 1000;
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(&[9, 0, 0, 0, 1, 2], end as u64).unwrap();
        let all = RedoLog::read_all(dir.path()).unwrap();
        assert_eq!(
            all,
            vec![
                (1, b"one".to_vec()),
                (2, b"two".to_vec()),
                (3, vec![7; 1000])
            ]
        );
    }

    #[test]
    fn a_flipped_bit_ends_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RedoLog::open(dir.path(), 5).unwrap();
        log.append(&[(5, b"five".to_vec()), (6, b"six".to_vec())])
            .unwrap();
        drop(log);
        let seg = dir.path().join(format!("{:020}.log", 5));
        let mut bytes = std::fs::read(&seg).unwrap();
        // The last byte of the second record.
        let last = HEADER + 4 + HEADER + 3 - 1;
        bytes[last] ^= 1;
        std::fs::write(&seg, bytes).unwrap();
        assert_eq!(
            RedoLog::read_all(dir.path()).unwrap(),
            vec![(5, b"five".to_vec())]
        );
    }

    #[test]
    fn records_larger_than_the_preallocation_grow_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RedoLog::open(dir.path(), 1).unwrap();
        let big = vec![5u8; PREALLOCATE_BYTES as usize + 10];
        log.append(&[(1, b"small".to_vec())]).unwrap();
        log.append(&[(2, big.clone()), (3, b"after".to_vec())])
            .unwrap();
        log.append(&[(4, b"last".to_vec())]).unwrap();
        assert_eq!(
            RedoLog::read_all(dir.path()).unwrap(),
            vec![
                (1, b"small".to_vec()),
                (2, big),
                (3, b"after".to_vec()),
                (4, b"last".to_vec())
            ]
        );
    }

    #[test]
    fn reopening_starts_a_new_segment_and_checkpoints_delete_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RedoLog::open(dir.path(), 1).unwrap();
        log.append(&[(1, b"a".to_vec())]).unwrap();
        drop(log);
        let mut log = RedoLog::open(dir.path(), 2).unwrap();
        log.append(&[(2, b"b".to_vec())]).unwrap();
        assert_eq!(log.segment_count(), 2);
        assert_eq!(RedoLog::read_all(dir.path()).unwrap().len(), 2);
        // Record 1 is checkpointed: its segment goes; the current one stays.
        log.discard_through(1);
        assert_eq!(log.segment_count(), 1);
        log.discard_through(2);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(
            RedoLog::read_all(dir.path()).unwrap(),
            vec![(2, b"b".to_vec())]
        );
    }
}
