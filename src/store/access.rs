//! Typed access on top of the byte tables: records by id, id sequences, counters, indexes.
//!
//! Read helpers are generic over [`Reader`], implemented by both redb transactions, so the
//! same code serves an API read on a snapshot and a check inside a write.

use std::ops::{Bound, ControlFlow};

use redb::{ReadTransaction, ReadableTable, TableHandle, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;
use super::keys::{id_from_key, id_key, prefix_end};
use super::tables::{self, Table};

/// A record kept in its own table under its id.
pub trait Record: Serialize + DeserializeOwned {
    /// Its table.
    const TABLE: Table;
    /// Its id.
    fn id(&self) -> u64;

    /// Its stored form: JSON, unless the record has a layout of its own
    /// ([`super::codec`]).
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        encode(self)
    }

    /// From its stored form.
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        decode(Self::TABLE, bytes)
    }
}

/// A visitor over raw entries: return `Break` to stop.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>, StoreError> + 'a;

/// One item of a redb range.
type RangeItem<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// Direction of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Smallest key first.
    Asc,
    /// Largest key first.
    Desc,
}

/// Something to read tables from: a snapshot or a write transaction.
pub trait Reader {
    /// The value under `key`.
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Visits the entries of `table` with keys in `[start, end)` (either open) in `order`
    /// until `visit` breaks. Do not touch the same table from inside `visit`.
    fn scan_raw(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        order: Order,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError>;

    /// Number of entries in `table`.
    fn len(&self, table: Table) -> Result<u64, StoreError>;
}

fn scan_table<T: ReadableTable<&'static [u8], &'static [u8]>>(
    t: &T,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    order: Order,
    visit: &mut Visit<'_>,
) -> Result<(), StoreError> {
    let range = t.range::<&[u8]>((start, end))?;
    let mut step = |item: RangeItem<'_>| -> Result<ControlFlow<()>, StoreError> {
        let (k, v) = item?;
        visit(k.value(), v.value())
    };
    match order {
        Order::Asc => {
            for item in range {
                if step(item)?.is_break() {
                    break;
                }
            }
        }
        Order::Desc => {
            for item in range.rev() {
                if step(item)?.is_break() {
                    break;
                }
            }
        }
    }
    Ok(())
}

impl Reader for ReadTransaction {
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = match self.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(t.get(key)?.map(|g| g.value().to_vec()))
    }

    fn scan_raw(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        order: Order,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        let t = match self.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        scan_table(&t, start, end, order, visit)
    }

    fn len(&self, table: Table) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        match self.open_table(table) {
            Ok(t) => Ok(t.len()?),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

impl Reader for WriteTransaction {
    fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.open_table(table)?;
        let v = t.get(key)?.map(|g| g.value().to_vec());
        Ok(v)
    }

    fn scan_raw(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        order: Order,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        let t = self.open_table(table)?;
        scan_table(&t, start, end, order, visit)
    }

    fn len(&self, table: Table) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let t = self.open_table(table)?;
        Ok(t.len()?)
    }
}

/// Decodes a stored JSON value.
pub fn decode<T: DeserializeOwned>(table: Table, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Decode {
        table: table.name().to_owned(),
        source,
    })
}

/// Encodes a value for storage.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Internal(format!("encode: {e}")))
}

/// Writes `value` under `key`.
pub fn put_raw(
    tx: &WriteTransaction,
    table: Table,
    key: &[u8],
    value: &[u8],
) -> Result<(), StoreError> {
    tx.open_table(table)?.insert(key, value)?;
    Ok(())
}

/// Writes `value` under each of `keys`, opening the table once.
pub fn put_raw_many<'k>(
    tx: &WriteTransaction,
    table: Table,
    keys: impl IntoIterator<Item = &'k [u8]>,
    value: &[u8],
) -> Result<(), StoreError> {
    let mut keys = keys.into_iter().peekable();
    if keys.peek().is_none() {
        return Ok(());
    }
    let mut t = tx.open_table(table)?;
    for k in keys {
        t.insert(k, value)?;
    }
    Ok(())
}

/// Removes each of `keys`, opening the table once.
pub fn delete_raw_many<'k>(
    tx: &WriteTransaction,
    table: Table,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Result<(), StoreError> {
    let mut keys = keys.into_iter().peekable();
    if keys.peek().is_none() {
        return Ok(());
    }
    let mut t = tx.open_table(table)?;
    for k in keys {
        t.remove(k)?;
    }
    Ok(())
}

/// Removes `key`; whether it was there.
pub fn delete_raw(tx: &WriteTransaction, table: Table, key: &[u8]) -> Result<bool, StoreError> {
    let mut t = tx.open_table(table)?;
    let existed = t.remove(key)?.is_some();
    Ok(existed)
}

/// A JSON value under `key`.
pub fn get_json<T: DeserializeOwned>(
    r: &impl Reader,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    r.get_raw(table, key)?
        .map(|b| decode(table, &b))
        .transpose()
}

/// Writes a JSON value under `key`.
pub fn put_json<T: Serialize>(
    tx: &WriteTransaction,
    table: Table,
    key: &[u8],
    value: &T,
) -> Result<(), StoreError> {
    put_raw(tx, table, key, &encode(value)?)
}

/// The record with `id`.
pub fn get<T: Record>(r: &impl Reader, id: u64) -> Result<Option<T>, StoreError> {
    r.get_raw(T::TABLE, &id_key(id))?
        .map(|b| T::from_bytes(&b))
        .transpose()
}

/// Writes a record under its id.
pub fn put<T: Record>(tx: &WriteTransaction, record: &T) -> Result<(), StoreError> {
    put_raw(tx, T::TABLE, &id_key(record.id()), &record.to_bytes()?)
}

/// Deletes the record with `id`; whether it existed.
pub fn delete<T: Record>(tx: &WriteTransaction, id: u64) -> Result<bool, StoreError> {
    delete_raw(tx, T::TABLE, &id_key(id))
}

/// Records in id order, from just after `after` (exclusive), at most `limit`.
pub fn list<T: Record>(
    r: &impl Reader,
    after: Option<u64>,
    order: Order,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    let bound = after.map(id_key);
    let (start, end) = match (order, &bound) {
        (Order::Asc, Some(b)) => (Bound::Excluded(b.as_slice()), Bound::Unbounded),
        (Order::Desc, Some(b)) => (Bound::Unbounded, Bound::Excluded(b.as_slice())),
        (_, None) => (Bound::Unbounded, Bound::Unbounded),
    };
    r.scan_raw(T::TABLE, start, end, order, &mut |_, v| {
        out.push(T::from_bytes(v)?);
        Ok(if out.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    Ok(out)
}

/// The id stored under `key` (name indexes).
pub fn get_id(r: &impl Reader, table: Table, key: &[u8]) -> Result<Option<u64>, StoreError> {
    Ok(r.get_raw(table, key)?.and_then(|b| id_from_key(&b)))
}

/// Stores `id` under `key`.
pub fn put_id(tx: &WriteTransaction, table: Table, key: &[u8], id: u64) -> Result<(), StoreError> {
    put_raw(tx, table, key, &id_key(id))
}

/// Takes the next id of a sequence (the first is 1).
pub fn next_id(tx: &WriteTransaction, sequence: Table) -> Result<u64, StoreError> {
    let key = format!("seq/{}", sequence.name());
    let mut meta = tx.open_table(tables::META)?;
    let current = meta
        .get(key.as_bytes())?
        .and_then(|g| id_from_key(g.value()))
        .unwrap_or(0);
    let next = current + 1;
    meta.insert(key.as_bytes(), id_key(next).as_slice())?;
    Ok(next)
}

/// The last id a sequence handed out (0 if none). With [`bump_sequence`], lets one
/// operation take many ids with one read and one write: nothing else in the transaction
/// may take ids of that sequence in between.
pub fn last_id(r: &impl Reader, sequence: Table) -> Result<u64, StoreError> {
    let key = format!("seq/{}", sequence.name());
    Ok(r.get_raw(tables::META, key.as_bytes())?
        .and_then(|b| id_from_key(&b))
        .unwrap_or(0))
}

/// Moves a sequence forward so that the next id is above `id` (seeded records).
pub fn bump_sequence(tx: &WriteTransaction, sequence: Table, id: u64) -> Result<(), StoreError> {
    let key = format!("seq/{}", sequence.name());
    let mut meta = tx.open_table(tables::META)?;
    let current = meta
        .get(key.as_bytes())?
        .and_then(|g| id_from_key(g.value()))
        .unwrap_or(0);
    if id > current {
        meta.insert(key.as_bytes(), id_key(id).as_slice())?;
    }
    Ok(())
}

/// The value of a counter (0 if never touched).
pub fn counter(r: &impl Reader, name: &str) -> Result<i64, StoreError> {
    Ok(r.get_raw(tables::COUNTERS, name.as_bytes())?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0))
}

/// Adds `delta` to a counter.
pub fn add_counter(tx: &WriteTransaction, name: &str, delta: i64) -> Result<(), StoreError> {
    if delta == 0 {
        return Ok(());
    }
    let mut t = tx.open_table(tables::COUNTERS)?;
    let current = t
        .get(name.as_bytes())?
        .and_then(|g| <[u8; 8]>::try_from(g.value()).ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0);
    let next = current + delta;
    if next == 0 {
        t.remove(name.as_bytes())?;
    } else {
        t.insert(name.as_bytes(), next.to_be_bytes().as_slice())?;
    }
    Ok(())
}

/// All counters whose names start with `prefix`, with the rest of their names.
pub fn counters_with_prefix(
    r: &impl Reader,
    prefix: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::new();
    let end = prefix_end(prefix.as_bytes());
    let end_bound = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    r.scan_raw(
        tables::COUNTERS,
        Bound::Included(prefix.as_bytes()),
        end_bound,
        Order::Asc,
        &mut |k, v| {
            if let (Ok(name), Ok(bytes)) = (std::str::from_utf8(k), <[u8; 8]>::try_from(v)) {
                out.push((name[prefix.len()..].to_owned(), i64::from_be_bytes(bytes)));
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

/// Visits the keys of `table` that start with `prefix`, from just after `after` (a full key,
/// exclusive) in `order`, until `visit` breaks.
pub fn scan_prefix(
    r: &impl Reader,
    table: Table,
    prefix: &[u8],
    after: Option<&[u8]>,
    order: Order,
    visit: &mut Visit<'_>,
) -> Result<(), StoreError> {
    let end = prefix_end(prefix);
    let (start, end) = match (order, after) {
        (Order::Asc, Some(a)) => (
            Bound::Excluded(a),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        ),
        (Order::Desc, Some(a)) => (Bound::Included(prefix), Bound::Excluded(a)),
        (_, None) => (
            Bound::Included(prefix),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        ),
    };
    r.scan_raw(table, start, end, order, visit)
}

/// The record ids at the end of the index keys of `table` that start with `prefix`
/// (`(field, value, id)` keys), in key order, at most `limit` of them.
pub fn ids_with_prefix(
    r: &impl Reader,
    table: Table,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    if limit == 0 {
        return Ok(ids);
    }
    scan_prefix(r, table, prefix, None, Order::Asc, &mut |k, _| {
        ids.extend(super::keys::KeyReader::new(&k[k.len().saturating_sub(8)..]).u64());
        Ok(if ids.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    Ok(ids)
}

/// How many keys of `table` start with `prefix`.
pub fn count_with_prefix(r: &impl Reader, table: Table, prefix: &[u8]) -> Result<u64, StoreError> {
    let mut n = 0;
    scan_prefix(r, table, prefix, None, Order::Asc, &mut |_, _| {
        n += 1;
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(n)
}

/// Whether any key of `table` starts with `prefix`.
pub fn any_with_prefix(r: &impl Reader, table: Table, prefix: &[u8]) -> Result<bool, StoreError> {
    let mut found = false;
    scan_prefix(r, table, prefix, None, Order::Asc, &mut |_, _| {
        found = true;
        Ok(ControlFlow::Break(()))
    })?;
    Ok(found)
}
