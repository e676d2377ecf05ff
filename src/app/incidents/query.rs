//! Listing incidents: filters by status, priority, service, assignee, group and full text,
//! newest first, with cursors that stay stable while incidents are being opened.
//!
//! The most selective filter (by the index counters) drives the walk over its index in
//! descending id order; the other filters are checked on each candidate. Nothing scans the
//! whole incident table unless no filter is given, and then only one page of it.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use serde::Deserialize;
use utoipa::IntoParams;

use super::IncidentView;
use super::index::index_counter;
use crate::app::page::{Page, PageRequest};
use crate::app::{App, AppResult, FieldErrors, require};
use crate::domain::actor::Actor;
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::permission::Permission;
use crate::domain::priority::Priority;
use crate::domain::text;
use crate::domain::transition::Lifecycle;
use crate::store::StoreError;
use crate::store::access::{self, Order, Reader};
use crate::store::keys::{Key, KeyReader};
use crate::store::tables::{self, incident_field as field};

/// The raw query string of `GET /api/v1/incidents`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// Comma-separated statuses; `open` means new, acknowledged, in_progress and on_hold.
    pub status: Option<String>,
    /// Comma-separated priorities (`P1,P2`).
    pub priority: Option<String>,
    /// Service id.
    pub service_id: Option<String>,
    /// Assignee user id.
    pub assignee_id: Option<String>,
    /// Group id.
    pub group_id: Option<String>,
    /// Words that must all appear in the title or description.
    pub q: Option<String>,
    /// Page size (1..500, default 50).
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A validated incident filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Any of these statuses (empty: any).
    pub statuses: BTreeSet<IncidentStatus>,
    /// Any of these priorities (empty: any).
    pub priorities: BTreeSet<Priority>,
    /// This service.
    pub service_id: Option<u64>,
    /// This assignee.
    pub assignee_id: Option<u64>,
    /// This group.
    pub group_id: Option<u64>,
    /// Full-text query.
    pub q: Option<String>,
}

fn id_param(e: &mut FieldErrors, name: &str, raw: Option<&str>) -> Option<u64> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match raw.parse::<u64>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            e.add(name, "must be a positive integer");
            None
        }
    }
}

impl IncidentFilter {
    /// Validates the raw parameters (422 naming the field).
    pub fn parse(p: &IncidentParams) -> AppResult<Self> {
        let mut e = FieldErrors::new();
        let mut f = IncidentFilter::default();
        for s in p
            .status
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if s.eq_ignore_ascii_case("open") {
                f.statuses
                    .extend(IncidentStatus::ALL.iter().copied().filter(|s| s.is_open()));
            } else {
                match s.parse() {
                    Ok(st) => {
                        f.statuses.insert(st);
                    }
                    Err(err) => {
                        e.add("status", format!("{err}"));
                    }
                }
            }
        }
        for s in p
            .priority
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match s.parse() {
                Ok(pr) => {
                    f.priorities.insert(pr);
                }
                Err(err) => {
                    e.add("priority", format!("{err}"));
                }
            }
        }
        f.service_id = id_param(&mut e, "service_id", p.service_id.as_deref());
        f.assignee_id = id_param(&mut e, "assignee_id", p.assignee_id.as_deref());
        f.group_id = id_param(&mut e, "group_id", p.group_id.as_deref());
        f.q = crate::app::search_param(&mut e, p.q.as_deref());
        e.into_result()?;
        Ok(f)
    }

    /// Whether `i` passes every filter.
    pub fn matches(&self, i: &Incident) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&i.status))
            && (self.priorities.is_empty() || self.priorities.contains(&i.priority))
            && self.service_id.is_none_or(|s| i.service_id == s)
            && self.assignee_id.is_none_or(|a| i.assignee_id == Some(a))
            && self.group_id.is_none_or(|g| i.group_id == Some(g))
            && self
                .q
                .as_deref()
                .is_none_or(|q| text::matches(&format!("{} {}", i.title, i.description), q))
    }

    /// The index streams that could drive the walk.
    fn streams(&self) -> Vec<Stream> {
        let mut out = Vec::new();
        if !self.statuses.is_empty() {
            out.push(Stream::Index(
                field::STATUS,
                self.statuses.iter().map(|s| u64::from(s.code())).collect(),
            ));
        }
        if !self.priorities.is_empty() {
            out.push(Stream::Index(
                field::PRIORITY,
                self.priorities
                    .iter()
                    .map(|p| u64::from(p.rank()))
                    .collect(),
            ));
        }
        for (f, v) in [
            (field::SERVICE, self.service_id),
            (field::ASSIGNEE, self.assignee_id),
            (field::GROUP, self.group_id),
        ] {
            if let Some(v) = v {
                out.push(Stream::Index(f, vec![v]));
            }
        }
        if let Some(q) = &self.q {
            // The longest token is usually the rarest.
            if let Some(t) = text::query_tokens(q).into_iter().max_by_key(|t| t.len()) {
                out.push(Stream::Text(t));
            }
        }
        out
    }
}

/// A descending walk over ids from one index.
#[derive(Debug, Clone)]
enum Stream {
    /// Entries (field, value) for any of the values.
    Index(u8, Vec<u64>),
    /// Entries of one text token.
    Text(String),
}

const TEXT_COST_PROBE: usize = 4096;

impl Stream {
    /// How many entries the walk may visit.
    fn cost(&self, r: &impl Reader) -> Result<u64, StoreError> {
        match self {
            Stream::Index(f, values) => {
                let mut total = 0u64;
                for v in values {
                    total += access::counter(r, &index_counter(*f, *v))?.max(0) as u64;
                }
                Ok(total)
            }
            Stream::Text(t) => {
                let mut n = 0usize;
                access::scan_prefix(
                    r,
                    tables::INCIDENT_TEXT,
                    &Key::new().str(t).into_bytes(),
                    None,
                    Order::Asc,
                    &mut |_, _| {
                        n += 1;
                        Ok(if n >= TEXT_COST_PROBE {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        })
                    },
                )?;
                Ok(n as u64)
            }
        }
    }

    /// Up to `n` ids below `before` (exclusive), descending.
    fn next_ids(
        &self,
        r: &impl Reader,
        before: Option<u64>,
        n: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let prefixes: Vec<Vec<u8>> = match self {
            Stream::Index(f, values) => values
                .iter()
                .map(|v| Key::new().u8(*f).u64(*v).into_bytes())
                .collect(),
            Stream::Text(t) => vec![Key::new().str(t).into_bytes()],
        };
        let mut ids = Vec::new();
        for prefix in prefixes {
            let bound = before.map(|b| [prefix.as_slice(), &b.to_be_bytes()].concat());
            let mut taken = 0;
            access::scan_prefix(
                r,
                self.table(),
                &prefix,
                bound.as_deref(),
                Order::Desc,
                &mut |k, _| {
                    let tail = &k[k.len().saturating_sub(8)..];
                    if let Some(id) = KeyReader::new(tail).u64() {
                        ids.push(id);
                    }
                    taken += 1;
                    Ok(if taken >= n {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    })
                },
            )?;
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.truncate(n);
        Ok(ids)
    }

    fn table(&self) -> tables::Table {
        match self {
            Stream::Index(..) => tables::INCIDENT_INDEX,
            Stream::Text(_) => tables::INCIDENT_TEXT,
        }
    }
}

/// Incidents matching `filter`, newest first (needs `incident:read`).
pub fn list(
    app: &App,
    actor: &Actor,
    filter: &IncidentFilter,
    page: PageRequest,
) -> AppResult<Page<IncidentView>> {
    require(actor, Permission::IncidentRead)?;
    let r = app.store.read()?;
    Ok(find(&r, filter, page)?.map(IncidentView::from))
}

/// The walk itself, on any reader (chat commands use it too).
pub fn find(
    r: &impl Reader,
    filter: &IncidentFilter,
    page: PageRequest,
) -> Result<Page<Incident>, StoreError> {
    let want = page.limit + 1;
    let mut out: Vec<Incident> = Vec::with_capacity(want);
    let streams = filter.streams();
    if streams.is_empty() {
        let items = access::list::<Incident>(r, page.after, Order::Desc, want)?;
        return Ok(Page::from_overfetch(items, page.limit, |i| i.id));
    }
    let mut best: Option<(u64, &Stream)> = None;
    for s in &streams {
        let c = s.cost(r)?;
        if best.is_none_or(|(b, _)| c < b) {
            best = Some((c, s));
        }
    }
    let Some((_, driver)) = best else {
        return Ok(Page {
            items: vec![],
            next_cursor: None,
        });
    };
    let stretch = (want * 2).max(64);
    let mut before = page.after;
    loop {
        let ids = driver.next_ids(r, before, stretch)?;
        let Some(last) = ids.last().copied() else {
            break;
        };
        for id in &ids {
            if let Some(i) = access::get::<Incident>(r, *id)?
                && filter.matches(&i)
            {
                out.push(i);
                if out.len() >= want {
                    return Ok(Page::from_overfetch(out, page.limit, |i| i.id));
                }
            }
        }
        if ids.len() < stretch {
            break;
        }
        before = Some(last);
    }
    Ok(Page::from_overfetch(out, page.limit, |i| i.id))
}
