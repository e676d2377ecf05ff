//! Cursor pagination shared by every list: `?limit=` (default 50, max 500) and `?cursor=`.
//!
//! Most lists are ordered by id, and the cursor is the last id of the page, so concurrent
//! inserts never shift a page: walking the cursors sees every item that existed when the
//! walk began exactly once. A few short lists keep an order of their own (routing rules
//! by position, shifts by time): their cursor counts the items already given
//! ([`Page::positional`]), so a change between two pages may shift one item across them.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AppResult, FieldErrors};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size.
pub const MAX_LIMIT: usize = 500;

/// Which page to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Items per page.
    pub limit: usize,
    /// Continue after this id (or, for a positional list, after this many items).
    pub after: Option<u64>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl PageRequest {
    /// Validates the raw query values.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> AppResult<Self> {
        let mut errors = FieldErrors::new();
        let limit = match limit.map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.add("limit", format!("must be an integer from 1 to {MAX_LIMIT}"));
                    DEFAULT_LIMIT
                }
            },
        };
        let after = match cursor.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match s.parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    errors.add("cursor", "is not a cursor returned by this list");
                    None
                }
            },
        };
        errors.into_result()?;
        Ok(Self { limit, after })
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` fetched items: the extra one only says there is more.
    pub fn from_overfetch(mut items: Vec<T>, limit: usize, id: impl Fn(&T) -> u64) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more {
            items.last().map(|i| id(i).to_string())
        } else {
            None
        };
        Page { items, next_cursor }
    }

    /// One page of a whole list kept in an order of its own rather than by id (routing
    /// rules in evaluation order, templates, a user's contact methods, a schedule's
    /// overrides): the cursor counts the items of the earlier pages.
    pub fn positional(items: Vec<T>, page: PageRequest) -> Self {
        let start = page
            .after
            .map_or(0, |a| usize::try_from(a).unwrap_or(usize::MAX));
        let total = items.len();
        let items: Vec<T> = items.into_iter().skip(start).take(page.limit).collect();
        let end = start.saturating_add(items.len());
        let next_cursor = (end < total).then(|| end.to_string());
        Page { items, next_cursor }
    }

    /// Converts the items.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors() {
        assert_eq!(
            PageRequest::parse(None, None).expect("ok"),
            PageRequest::default()
        );
        assert_eq!(
            PageRequest::parse(Some("500"), Some("9")).expect("ok"),
            PageRequest {
                limit: 500,
                after: Some(9)
            }
        );
        for bad in ["0", "501", "-1", "x"] {
            assert!(PageRequest::parse(Some(bad), None).is_err(), "{bad}");
        }
        assert!(PageRequest::parse(None, Some("abc")).is_err());
    }

    #[test]
    fn overfetch_decides_the_cursor() {
        let p = Page::from_overfetch(vec![9u64, 8, 7], 2, |i| *i);
        assert_eq!(p.items, vec![9, 8]);
        assert_eq!(p.next_cursor.as_deref(), Some("8"));
        let last = Page::from_overfetch(vec![2u64], 2, |i| *i);
        assert_eq!(last.next_cursor, None);
    }
}

/// What a walk does with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Put it on the page.
    Yes,
    /// Skip it.
    No,
    /// Skip it and stop: nothing older can match (time-ordered filters).
    Stop,
}

/// Walks records newest first and keeps those `take` accepts, until a page is full. Ids come
/// from `driver` (an index table and a key prefix; every key ends in the record id, so keys
/// under the prefix are in id order) or, without one, from the record table itself. The
/// page request's cursor is the id to continue below.
pub fn walk<T: crate::store::Record>(
    r: &impl crate::store::Reader,
    driver: Option<(crate::store::tables::Table, &[u8])>,
    page: PageRequest,
    mut take: impl FnMut(&T) -> Take,
) -> Result<Page<T>, crate::store::StoreError> {
    use crate::store::access::{self, Order};
    use std::ops::ControlFlow;
    const STRETCH: usize = 256;
    let want = page.limit + 1;
    let mut out: Vec<T> = Vec::new();
    let mut before = page.after;
    loop {
        let mut ids: Vec<u64> = Vec::with_capacity(STRETCH);
        match driver {
            None => ids.extend(
                access::list::<T>(r, before, Order::Desc, STRETCH)?
                    .iter()
                    .map(T::id),
            ),
            Some((table, prefix)) => {
                let bound = before.map(|b| [prefix, &b.to_be_bytes()].concat());
                access::scan_prefix(
                    r,
                    table,
                    prefix,
                    bound.as_deref(),
                    Order::Desc,
                    &mut |k, _| {
                        if let Some(tail) = k.len().checked_sub(8).and_then(|start| k.get(start..))
                            && let Some(id) = crate::store::keys::id_from_key(tail)
                        {
                            ids.push(id);
                        }
                        Ok(if ids.len() >= STRETCH {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        })
                    },
                )?;
            }
        }
        let Some(last) = ids.last().copied() else {
            break;
        };
        for id in &ids {
            let Some(record) = access::get::<T>(r, *id)? else {
                continue;
            };
            match take(&record) {
                Take::Yes => {
                    out.push(record);
                    if out.len() >= want {
                        return Ok(Page::from_overfetch(out, page.limit, T::id));
                    }
                }
                Take::No => {}
                Take::Stop => return Ok(Page::from_overfetch(out, page.limit, T::id)),
            }
        }
        if ids.len() < STRETCH {
            break;
        }
        before = Some(last);
    }
    Ok(Page::from_overfetch(out, page.limit, T::id))
}

/// One page of records of a kind kept under their ids, in id order (the list endpoints of
/// the catalogue resources).
pub(crate) fn records<T: crate::store::access::Record>(
    r: &impl crate::store::access::Reader,
    page: PageRequest,
) -> AppResult<Page<T>> {
    let items = crate::store::access::list::<T>(
        r,
        page.after,
        crate::store::access::Order::Asc,
        page.limit + 1,
    )?;
    Ok(Page::from_overfetch(items, page.limit, T::id))
}
