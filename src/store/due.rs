//! Due queues: tables keyed `(milliseconds since the epoch, id) -> ()` that hold what a
//! background worker must do and when (the outbox's next attempts, escalation levels).
//! Keeping the queue in the store is what lets a worker stop at any moment and pick up
//! after a restart exactly where the store says.

use std::ops::{Bound, ControlFlow};

use chrono::{DateTime, Utc};

use super::StoreError;
use super::access::{Order, Reader};
use super::keys::{Key, KeyReader};
use super::tables::Table;

/// The queue key of `id` falling due at `at`.
pub fn key(at: DateTime<Utc>, id: u64) -> Vec<u8> {
    Key::new().i64(at.timestamp_millis()).u64(id).into_bytes()
}

/// The ids due at `now` or earlier, earliest first, at most `limit`.
pub fn ids_due(
    r: &impl Reader,
    table: Table,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    Ok(entries_due(r, table, now, limit)?
        .into_iter()
        .map(|(_, id)| id)
        .collect())
}

/// The `(due at, id)` entries due at `now` or earlier, earliest first, at most `limit`.
pub fn entries_due(
    r: &impl Reader,
    table: Table,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError> {
    let end = Key::new()
        .i64(now.timestamp_millis())
        .u64(u64::MAX)
        .into_bytes();
    let mut ids = Vec::new();
    r.scan_raw(
        table,
        Bound::Unbounded,
        Bound::Included(end.as_slice()),
        Order::Asc,
        &mut |k, _| {
            let mut kr = KeyReader::new(k);
            let at = kr.i64().and_then(DateTime::<Utc>::from_timestamp_millis);
            if let (Some(at), Some(id)) = (at, kr.u64()) {
                ids.push((at, id));
            }
            Ok(if ids.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        },
    )?;
    Ok(ids)
}

/// When the first id that passes `wanted` falls due.
pub fn next_due_where(
    r: &impl Reader,
    table: Table,
    wanted: impl Fn(u64) -> bool,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut at = None;
    r.scan_raw(
        table,
        Bound::Unbounded,
        Bound::Unbounded,
        Order::Asc,
        &mut |k, _| {
            let mut kr = KeyReader::new(k);
            let ms = kr.i64();
            if !kr.u64().is_some_and(&wanted) {
                return Ok(ControlFlow::Continue(()));
            }
            at = ms.and_then(DateTime::<Utc>::from_timestamp_millis);
            Ok(ControlFlow::Break(()))
        },
    )?;
    Ok(at)
}
