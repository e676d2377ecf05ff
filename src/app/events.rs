//! Publishing domain events into the store's event log, and reading them back for
//! consumers that keep their position in the store (at-least-once, in order, restart-safe).

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde_json::Value;

use crate::domain::actor::ActorRef;
use crate::domain::event::{DomainEvent, EventKind};
use crate::store::access::{self, Order, Reader};
use crate::store::keys::{Key, id_key};
use crate::store::{StoreError, tables};

/// What an event is about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject {
    /// The incident.
    pub incident_id: Option<u64>,
    /// The problem.
    pub problem_id: Option<u64>,
}

impl Subject {
    /// About an incident.
    pub fn incident(id: u64) -> Self {
        Self {
            incident_id: Some(id),
            problem_id: None,
        }
    }

    /// About a problem.
    pub fn problem(id: u64) -> Self {
        Self {
            incident_id: None,
            problem_id: Some(id),
        }
    }
}

/// Appends an event to the log inside `tx`; returns its sequence number.
pub fn publish(
    tx: &WriteTransaction,
    at: DateTime<Utc>,
    kind: EventKind,
    actor: &ActorRef,
    subject: Subject,
    data: Value,
) -> Result<u64, StoreError> {
    let seq = access::next_id(tx, tables::EVENTS)?;
    let event = DomainEvent {
        seq,
        at,
        kind,
        actor: actor.clone(),
        incident_id: subject.incident_id,
        problem_id: subject.problem_id,
        data,
    };
    access::put(tx, &event)?;
    super::notifications::plan::plan(tx, &event)?;
    Ok(seq)
}

/// Up to `limit` events after `after`, oldest first.
pub fn read_after(
    r: &impl Reader,
    after: u64,
    limit: usize,
) -> Result<Vec<DomainEvent>, StoreError> {
    access::list(r, Some(after), Order::Asc, limit)
}

fn cursor_key(consumer: &str) -> Vec<u8> {
    Key::new().str("cursor").str(consumer).into_bytes()
}

/// The last event `consumer` has handled (0 if none).
pub fn cursor(r: &impl Reader, consumer: &str) -> Result<u64, StoreError> {
    Ok(cursor_if_set(r, consumer)?.unwrap_or(0))
}

/// The last event `consumer` has handled, or `None` if it never ran (a new consumer
/// then starts from the present rather than working through history).
pub fn cursor_if_set(r: &impl Reader, consumer: &str) -> Result<Option<u64>, StoreError> {
    access::get_id(r, tables::META, &cursor_key(consumer))
}

/// Records that `consumer` has handled everything up to `seq`.
pub fn set_cursor(tx: &WriteTransaction, consumer: &str, seq: u64) -> Result<(), StoreError> {
    access::put_id(tx, tables::META, &cursor_key(consumer), seq)
}

/// Forgets `consumer`'s position (it no longer runs).
pub fn forget_cursor(tx: &WriteTransaction, consumer: &str) -> Result<(), StoreError> {
    access::delete_raw(tx, tables::META, &cursor_key(consumer))?;
    Ok(())
}

/// The newest sequence number (0 if the log is empty).
pub fn last_seq(r: &impl Reader) -> Result<u64, StoreError> {
    let mut last = 0;
    r.scan_raw(
        tables::EVENTS,
        std::ops::Bound::Unbounded,
        std::ops::Bound::Unbounded,
        Order::Desc,
        &mut |k, _| {
            last = crate::store::keys::id_from_key(k).unwrap_or(0);
            Ok(ControlFlow::Break(()))
        },
    )?;
    Ok(last)
}

/// Every consumer that keeps a cursor; retention keeps what any of them has yet to handle.
pub const CONSUMERS: &[&str] = &["playbooks"];

/// Deletes up to `limit` of the oldest events that happened before `cutoff`, that every
/// consumer has handled and that come before `needed_from` (the oldest event a waiting
/// delivery still renders); returns how many.
pub fn prune_before(
    tx: &WriteTransaction,
    cutoff: DateTime<Utc>,
    needed_from: Option<u64>,
    limit: usize,
) -> Result<u64, StoreError> {
    let mut handled = u64::MAX;
    for consumer in CONSUMERS {
        if let Some(c) = cursor_if_set(tx, consumer)? {
            handled = handled.min(c);
        }
    }
    let through = read_after(tx, 0, limit)?
        .into_iter()
        .take_while(|e| e.at < cutoff && e.seq <= handled && needed_from.is_none_or(|n| e.seq < n))
        .last()
        .map(|e| e.seq);
    match through {
        Some(seq) => prune_through(tx, seq),
        None => Ok(0),
    }
}

/// Deletes events up to and including `seq` (retention, once every consumer is past them).
pub fn prune_through(tx: &WriteTransaction, seq: u64) -> Result<u64, StoreError> {
    let mut t = tx.open_table(tables::EVENTS)?;
    let end = id_key(seq);
    let removed = t
        .extract_from_if::<&[u8], _>(..=end.as_slice(), |_, _| true)?
        .count() as u64;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::Actor;
    use crate::domain::event::EventKind;
    use redb::ReadableDatabase;

    /// A migrated store with events 1..=10, event `n` at `start + n hours`.
    fn store_with_events(start: DateTime<Utc>) -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = redb::Database::create(dir.path().join("s.redb")).expect("db");
        crate::store::migrations::run(&db).expect("migrate");
        let tx = db.begin_write().expect("tx");
        for n in 1..=10 {
            publish(
                &tx,
                start + chrono::Duration::hours(n),
                EventKind::ProblemOpened,
                &Actor::system().reference,
                Subject::problem(n as u64),
                serde_json::json!({}),
            )
            .expect("publish");
        }
        tx.commit().expect("commit");
        (dir, db)
    }

    fn left(db: &redb::Database) -> Vec<u64> {
        let r = db.begin_read().expect("read");
        read_after(&r, 0, 100)
            .expect("read")
            .into_iter()
            .map(|e| e.seq)
            .collect()
    }

    #[test]
    fn pruning_takes_old_events_in_chunks_and_never_what_a_consumer_has_not_handled() {
        let start = Utc::now();
        let (_dir, db) = store_with_events(start);
        let cutoff = start + chrono::Duration::minutes(7 * 60 + 30);
        let tx = db.begin_write().expect("tx");
        set_cursor(&tx, "playbooks", 5).expect("cursor");
        // Chunks of 2: events 1-2, then 3-4, then 5; 6 and 7 wait for the consumer.
        assert_eq!(prune_before(&tx, cutoff, None, 2).expect("prune"), 2);
        assert_eq!(prune_before(&tx, cutoff, None, 2).expect("prune"), 2);
        assert_eq!(prune_before(&tx, cutoff, None, 2).expect("prune"), 1);
        assert_eq!(prune_before(&tx, cutoff, None, 2).expect("prune"), 0);
        tx.commit().expect("commit");
        assert_eq!(left(&db), (6..=10).collect::<Vec<_>>());
        // Once the consumer moves on (or goes), the rest before the cutoff goes too.
        let tx = db.begin_write().expect("tx");
        forget_cursor(&tx, "playbooks").expect("forget");
        // A waiting delivery of event 7 keeps it (and what follows).
        assert_eq!(prune_before(&tx, cutoff, Some(7), 100).expect("prune"), 1);
        assert_eq!(prune_before(&tx, cutoff, None, 100).expect("prune"), 1);
        tx.commit().expect("commit");
        assert_eq!(left(&db), [8, 9, 10]);
    }
}
