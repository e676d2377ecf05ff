//! Everything derived from an incident record: filter indexes, the full-text index,
//! counters for the dashboard, and the first-response / resolution times behind MTTA and
//! MTTR.
//!
//! It is all computed from the record by pure functions and kept in step by one diff
//! ([`apply`]) in the same transaction as the record itself, so that no use case can forget
//! an index and lists and the dashboard never scan every incident.

use std::collections::{BTreeMap, BTreeSet};

use redb::WriteTransaction;

use crate::domain::incident::Incident;
use crate::domain::text;
use crate::store::StoreError;
use crate::store::access;
use crate::store::keys::Key;
use crate::store::tables::{self, incident_field as field};

/// The (field, value) pairs an incident is indexed under.
pub(crate) fn index_entries(i: &Incident) -> BTreeSet<(u8, u64)> {
    let mut out = BTreeSet::new();
    out.insert((field::STATUS, u64::from(i.status.code())));
    out.insert((field::PRIORITY, u64::from(i.priority.rank())));
    out.insert((field::SERVICE, i.service_id));
    if let Some(a) = i.assignee_id {
        out.insert((field::ASSIGNEE, a));
    }
    if let Some(g) = i.group_id {
        out.insert((field::GROUP, g));
    }
    out
}

/// The key of an index entry.
pub(crate) fn index_key(f: u8, value: u64, id: u64) -> Vec<u8> {
    Key::new().u8(f).u64(value).u64(id).into_bytes()
}

/// The counter that tracks how many incidents an index entry has.
pub(crate) fn index_counter(f: u8, value: u64) -> String {
    format!("idx/inc/{f}/{value}")
}

fn text_of(i: &Incident) -> BTreeSet<String> {
    text::index_tokens(&format!("{} {}", i.title, i.description))
}

/// The counters an incident contributes 1 to.
pub(crate) fn counters(i: &Incident) -> Vec<String> {
    let mut out = vec![
        "inc/all".to_owned(),
        format!("inc/status/{}", i.status.as_str()),
        format!("svc/{}/total", i.service_id),
    ];
    if i.status.is_open() {
        out.push("inc/open".to_owned());
        out.push(format!("inc/open/priority/{}", i.priority.as_str()));
        out.push(format!("svc/{}/open", i.service_id));
        out.push(format!("svc/{}/open/{}", i.service_id, i.priority.as_str()));
    }
    out.extend(
        index_entries(i)
            .into_iter()
            .map(|(f, v)| index_counter(f, v)),
    );
    out
}

/// A duration sample: (when it ended, seconds since the incident opened).
type Sample = (i64, i64);

fn ack_sample(i: &Incident) -> Option<Sample> {
    Some((i.acknowledged_at?.timestamp(), i.time_to_acknowledge()?))
}

/// A merged incident was not fixed, it went into another: it is no MTTR sample.
fn resolve_sample(i: &Incident) -> Option<Sample> {
    if i.merged_into.is_some() {
        return None;
    }
    Some((i.resolved_at?.timestamp(), i.time_to_resolve()?))
}

/// A table of duration samples and the prefix of its hourly bucket counters.
#[derive(Clone, Copy)]
pub(crate) struct Durations {
    /// (ended at, incident id) -> seconds.
    pub table: tables::Table,
    /// Counters `<prefix><hour>/sum` and `<prefix><hour>/n`.
    pub prefix: &'static str,
}

/// First responses (MTTA).
pub(crate) const ACKS: Durations = Durations {
    table: tables::ACK_TIMES,
    prefix: "mtta/h/",
};
/// Resolutions (MTTR).
pub(crate) const RESOLUTIONS: Durations = Durations {
    table: tables::RESOLVE_TIMES,
    prefix: "mttr/h/",
};

impl Durations {
    /// Counter names (sum, count) of the bucket of `hour` (hours since the epoch).
    pub(crate) fn bucket(&self, hour: i64) -> (String, String) {
        (
            format!("{}{hour:012}/sum", self.prefix),
            format!("{}{hour:012}/n", self.prefix),
        )
    }
}

/// The key of a duration sample.
pub(crate) fn sample_key(at: i64, id: u64) -> Vec<u8> {
    Key::new().i64(at).u64(id).into_bytes()
}

fn move_sample(
    tx: &WriteTransaction,
    d: Durations,
    id: u64,
    before: Option<Sample>,
    after: Option<Sample>,
) -> Result<(), StoreError> {
    if before == after {
        return Ok(());
    }
    if let Some((at, secs)) = before {
        access::delete_raw(tx, d.table, &sample_key(at, id))?;
        let (sum, n) = d.bucket(at.div_euclid(3600));
        access::add_counter(tx, &sum, -secs)?;
        access::add_counter(tx, &n, -1)?;
    }
    if let Some((at, secs)) = after {
        access::put_raw(tx, d.table, &sample_key(at, id), &secs.to_be_bytes())?;
        let (sum, n) = d.bucket(at.div_euclid(3600));
        access::add_counter(tx, &sum, secs)?;
        access::add_counter(tx, &n, 1)?;
    }
    Ok(())
}

/// Brings every derived entry from `before` to `after` (either may be absent: insert,
/// delete).
pub(crate) fn apply(
    tx: &WriteTransaction,
    before: Option<&Incident>,
    after: Option<&Incident>,
) -> Result<(), StoreError> {
    let id = after.or(before).map(|i| i.id).unwrap_or_default();
    let none = BTreeSet::new();
    let (old_idx, new_idx) = (
        before.map(index_entries).unwrap_or_default(),
        after.map(index_entries).unwrap_or_default(),
    );
    for (f, v) in old_idx.difference(&new_idx) {
        access::delete_raw(tx, tables::INCIDENT_INDEX, &index_key(*f, *v, id))?;
    }
    for (f, v) in new_idx.difference(&old_idx) {
        access::put_raw(tx, tables::INCIDENT_INDEX, &index_key(*f, *v, id), &[])?;
    }
    let old_text = before.map(text_of).unwrap_or_default();
    let new_text = after.map(text_of).unwrap_or_default();
    if old_text != new_text {
        for t in old_text.difference(if after.is_some() { &new_text } else { &none }) {
            access::delete_raw(
                tx,
                tables::INCIDENT_TEXT,
                &Key::new().str(t).u64(id).into_bytes(),
            )?;
        }
        for t in new_text.difference(&old_text) {
            access::put_raw(
                tx,
                tables::INCIDENT_TEXT,
                &Key::new().str(t).u64(id).into_bytes(),
                &[],
            )?;
        }
    }
    let mut deltas: BTreeMap<String, i64> = BTreeMap::new();
    for name in before.map(counters).unwrap_or_default() {
        *deltas.entry(name).or_default() -= 1;
    }
    for name in after.map(counters).unwrap_or_default() {
        *deltas.entry(name).or_default() += 1;
    }
    for (name, delta) in deltas {
        access::add_counter(tx, &name, delta)?;
    }
    move_sample(
        tx,
        ACKS,
        id,
        before.and_then(ack_sample),
        after.and_then(ack_sample),
    )?;
    move_sample(
        tx,
        RESOLUTIONS,
        id,
        before.and_then(resolve_sample),
        after.and_then(resolve_sample),
    )?;
    Ok(())
}
