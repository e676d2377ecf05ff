//! The dashboard overview: open incidents by status and priority, MTTA and MTTR over a
//! window, problems and known errors, per-service counts.
//!
//! Everything comes from counters maintained with each change and from hourly buckets of
//! response and resolution times. A window's partial first and last hours are read from
//! the individual samples, on whichever side of the cut holds fewer of them (a window that
//! ends now has nothing after its end), so the cost does not grow with the number of
//! incidents, even right after a storm.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use chrono::{DateTime, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::incidents::index::{ACKS, Durations, RESOLUTIONS};
use super::{App, AppResult, FieldErrors, require};
use crate::domain::actor::Actor;
use crate::domain::incident::IncidentStatus;
use crate::domain::permission::Permission;
use crate::domain::priority::Priority;
use crate::domain::problem::ProblemStatus;
use crate::domain::service::Service;
use crate::domain::transition::Lifecycle;
use crate::store::StoreError;
use crate::store::access::{self, Order, Reader};
use crate::store::keys::Key;

/// `GET /api/v1/dashboard/overview` parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OverviewParams {
    /// Length of the window ending now: `24h`, `7d`, `30d`, or seconds (default `7d`).
    pub window: Option<String>,
    /// Window start (RFC 3339); with `to`, replaces `window`.
    pub from: Option<String>,
    /// Window end (RFC 3339, default now).
    pub to: Option<String>,
}

/// The time window MTTA and MTTR are computed over.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Window {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
}

/// A mean duration over the window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeanTime {
    /// Mean seconds, absent when nothing happened in the window.
    pub seconds: Option<f64>,
    /// How many incidents it averages.
    pub count: i64,
}

/// Counts for one service.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceCounts {
    /// Service id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Open incidents.
    pub open: i64,
    /// Open incidents by priority.
    pub open_by_priority: BTreeMap<String, i64>,
    /// Incidents ever.
    pub total: i64,
}

/// The overview.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overview {
    /// The MTTA/MTTR window.
    pub window: Window,
    /// Open incidents.
    pub open_incidents: i64,
    /// Open incidents by status.
    pub open_by_status: BTreeMap<String, i64>,
    /// Open incidents by priority.
    pub open_by_priority: BTreeMap<String, i64>,
    /// Incidents by every status, open or not.
    pub incidents_by_status: BTreeMap<String, i64>,
    /// Mean time to acknowledge: opened -> first response, for responses in the window.
    pub mtta: MeanTime,
    /// Mean time to resolve: opened -> resolved, for resolutions in the window.
    pub mttr: MeanTime,
    /// Problems not yet resolved or closed.
    pub open_problems: i64,
    /// Problems by status.
    pub problems_by_status: BTreeMap<String, i64>,
    /// Entries in the known-error database.
    pub known_errors: i64,
    /// Approval requests waiting for a decision.
    pub pending_approvals: i64,
    /// Per-service counts.
    pub services: Vec<ServiceCounts>,
}

fn parse_time(e: &mut FieldErrors, name: &str, raw: Option<&str>) -> Option<DateTime<Utc>> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            e.add(name, "must be an RFC 3339 time");
            None
        }
    }
}

/// Parses `30m`, `24h`, `7d`, `2w` or plain seconds.
pub fn parse_span(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = digits.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        "w" => n.checked_mul(7 * 86_400)?,
        _ => return None,
    };
    (secs <= 3660 * 86_400).then(|| Duration::seconds(secs))
}

impl OverviewParams {
    /// The window these parameters describe, ending at `now` unless `to` is given.
    pub fn window(&self, now: DateTime<Utc>) -> AppResult<Window> {
        let mut e = FieldErrors::new();
        let to = parse_time(&mut e, "to", self.to.as_deref()).unwrap_or(now);
        let from = parse_time(&mut e, "from", self.from.as_deref());
        let span = match self
            .window
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(w) => parse_span(w).or_else(|| {
                e.add(
                    "window",
                    "must be a duration such as 24h, 7d or 30d (at most 10 years)",
                );
                None
            }),
            None => None,
        };
        if from.is_some() && span.is_some() {
            e.add("window", "give either from or window, not both");
        }
        e.into_result()?;
        let from = from.unwrap_or_else(|| to - span.unwrap_or_else(|| Duration::days(7)));
        if from >= to {
            return Err(FieldErrors::single("from", "must be before to"));
        }
        // Samples are kept to the second: the window is whole seconds, from the second
        // `from` falls in to the end of the second `to` falls in, and says so.
        let whole = |t: DateTime<Utc>| t.with_nanosecond(0).unwrap_or(t);
        let to = if to.nanosecond() > 0 {
            whole(to) + Duration::seconds(1)
        } else {
            to
        };
        Ok(Window {
            from: whole(from),
            to,
        })
    }
}

/// Sum and count of the samples of `d` ending in `[from, to)`, or `None` as soon as more
/// than `limit` samples have been visited.
fn samples_in(
    r: &impl Reader,
    d: Durations,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Option<(i64, i64)>, StoreError> {
    let (mut sum, mut n, mut visited) = (0i64, 0i64, 0usize);
    if from >= to {
        return Ok(Some((0, 0)));
    }
    let start = Key::new().i64(from).into_bytes();
    let end = Key::new().i64(to).into_bytes();
    r.scan_raw(
        d.table,
        Bound::Included(start.as_slice()),
        Bound::Excluded(end.as_slice()),
        Order::Asc,
        &mut |_, v| {
            visited += 1;
            if visited > limit {
                return Ok(ControlFlow::Break(()));
            }
            if let Ok(bytes) = <[u8; 8]>::try_from(v) {
                sum += i64::from_be_bytes(bytes);
                n += 1;
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok((visited <= limit).then_some((sum, n)))
}

/// Sum and count of the hourly bucket of `hour`.
fn bucket(r: &impl Reader, d: Durations, hour: i64) -> Result<(i64, i64), StoreError> {
    let (sum, n) = d.bucket(hour);
    Ok((access::counter(r, &sum)?, access::counter(r, &n)?))
}

/// Samples visited before trying the other side of a partial hour; grows fourfold per
/// round.
const FIRST_BUDGET: usize = 256;

/// Sum and count of the samples in `[lo, hi)`, a part of `hour`. Either those samples are
/// scanned, or the rest of the hour is and subtracted from the hour's bucket, whichever
/// side turns out to hold fewer samples (the two are tried with growing budgets, so the
/// cost stays within a small factor of the cheaper side). A window ending now has nothing
/// after its end, so its last, partial hour costs two lookups however busy it was.
fn partial_hour(
    r: &impl Reader,
    d: Durations,
    hour: i64,
    lo: i64,
    hi: i64,
) -> Result<(i64, i64), StoreError> {
    let (start, end) = (hour * 3600, hour * 3600 + 3600);
    debug_assert!(start <= lo && lo <= hi && hi <= end);
    let mut budget = FIRST_BUDGET;
    loop {
        if let Some((s1, n1)) = samples_in(r, d, start, lo, budget)?
            && let Some((s2, n2)) = samples_in(r, d, hi, end, budget)?
        {
            let (sum, n) = bucket(r, d, hour)?;
            return Ok((sum - s1 - s2, n - n1 - n2));
        }
        if let Some(inside) = samples_in(r, d, lo, hi, budget)? {
            return Ok(inside);
        }
        budget = budget.saturating_mul(4);
    }
}

/// Sum and count over the window: whole hours from the buckets, the partial hours at the
/// edges from [`partial_hour`].
fn window_total(
    r: &impl Reader,
    d: Durations,
    from: i64,
    to: i64,
) -> Result<(i64, i64), StoreError> {
    if from >= to {
        return Ok((0, 0));
    }
    let first_hour = from.div_euclid(3600) + i64::from(from.rem_euclid(3600) != 0);
    let last_hour = to.div_euclid(3600);
    if first_hour > last_hour {
        // Both ends inside one hour.
        return partial_hour(r, d, from.div_euclid(3600), from, to);
    }
    let (mut sum, mut n) = (0i64, 0i64);
    if from < first_hour * 3600 {
        let (s, c) = partial_hour(r, d, first_hour - 1, from, first_hour * 3600)?;
        sum += s;
        n += c;
    }
    if to > last_hour * 3600 {
        let (s, c) = partial_hour(r, d, last_hour, last_hour * 3600, to)?;
        sum += s;
        n += c;
    }
    if first_hour == last_hour {
        return Ok((sum, n));
    }
    let lo = format!("{}{first_hour:012}/", d.prefix);
    let hi = format!("{}{last_hour:012}/", d.prefix);
    r.scan_raw(
        crate::store::tables::COUNTERS,
        Bound::Included(lo.as_bytes()),
        Bound::Excluded(hi.as_bytes()),
        Order::Asc,
        &mut |k, v| {
            if let Ok(bytes) = <[u8; 8]>::try_from(v) {
                let value = i64::from_be_bytes(bytes);
                if k.ends_with(b"/sum") {
                    sum += value;
                } else if k.ends_with(b"/n") {
                    n += value;
                }
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok((sum, n))
}

fn mean(r: &impl Reader, d: Durations, w: &Window) -> Result<MeanTime, StoreError> {
    // The window is whole seconds (OverviewParams::window), as samples are.
    let (sum, count) = window_total(r, d, w.from.timestamp(), w.to.timestamp())?;
    Ok(MeanTime {
        seconds: (count > 0).then(|| sum as f64 / count as f64),
        count,
    })
}

/// The overview (needs `dashboard:read`).
pub fn overview(app: &App, actor: &Actor, params: &OverviewParams) -> AppResult<Overview> {
    require(actor, Permission::DashboardRead)?;
    let window = params.window(app.clock.now())?;
    let r = app.store.read()?;
    let mut incidents_by_status = BTreeMap::new();
    let mut open_by_status = BTreeMap::new();
    for s in IncidentStatus::ALL {
        let n = access::counter(&r, &format!("inc/status/{}", s.as_str()))?;
        incidents_by_status.insert(s.as_str().to_owned(), n);
        if s.is_open() {
            open_by_status.insert(s.as_str().to_owned(), n);
        }
    }
    let mut open_by_priority = BTreeMap::new();
    for p in Priority::ALL {
        open_by_priority.insert(
            p.as_str().to_owned(),
            access::counter(&r, &format!("inc/open/priority/{}", p.as_str()))?,
        );
    }
    let mut problems_by_status = BTreeMap::new();
    for s in ProblemStatus::ALL {
        problems_by_status.insert(
            s.as_str().to_owned(),
            access::counter(&r, &format!("prb/status/{}", s.as_str()))?,
        );
    }
    let mut services = Vec::new();
    for s in access::list::<Service>(&r, None, Order::Asc, usize::MAX)? {
        let mut by_priority = BTreeMap::new();
        for p in Priority::ALL {
            by_priority.insert(
                p.as_str().to_owned(),
                access::counter(&r, &format!("svc/{}/open/{}", s.id, p.as_str()))?,
            );
        }
        services.push(ServiceCounts {
            id: s.id,
            name: s.name,
            open: access::counter(&r, &format!("svc/{}/open", s.id))?,
            open_by_priority: by_priority,
            total: access::counter(&r, &format!("svc/{}/total", s.id))?,
        });
    }
    Ok(Overview {
        open_incidents: access::counter(&r, "inc/open")?,
        open_by_status,
        open_by_priority,
        incidents_by_status,
        mtta: mean(&r, ACKS, &window)?,
        mttr: mean(&r, RESOLUTIONS, &window)?,
        open_problems: access::counter(&r, "prb/open")?,
        problems_by_status,
        known_errors: access::counter(&r, "prb/known_errors")?,
        pending_approvals: access::counter(&r, super::approvals::PENDING_COUNTER)?,
        services,
        window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("7d"), Some(Duration::days(7)));
        assert_eq!(parse_span("24h"), Some(Duration::hours(24)));
        assert_eq!(parse_span("90"), Some(Duration::seconds(90)));
        assert_eq!(parse_span("2w"), Some(Duration::days(14)));
        for bad in ["", "0d", "x", "7y", "-1d", "99999999999999999999d"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
    }
}
