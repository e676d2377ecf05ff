//! Silences: mute alerts matching label matchers for a time window, with a comment and a
//! creator. A silenced alert is stored as silenced and opens nothing.
//!
//! Muting is not forgetting: when a silence ends (its time runs out, somebody expires it,
//! or its matchers or times change) the alerts it no longer mutes that still fire are
//! released into their incidents at once, as Alertmanager notifies of them after a
//! silence, without waiting for the sender to repeat them (a PagerDuty or generic sender
//! may never repeat).

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, alerts, incidents, require, required_text};
use crate::domain::actor::{Actor, ActorRef};
use crate::domain::alert::Alert;
use crate::domain::audit;
use crate::domain::matcher::{Matcher, MatcherSet};
use crate::domain::permission::Permission;
use crate::domain::silence::{Silence, SilenceState};
use crate::store::access::{self, Order, Reader};
use crate::store::keys::{Key, KeyReader};
use crate::store::{StoreError, tables};

/// A silence as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SilenceView {
    /// The record.
    #[serde(flatten)]
    pub silence: Silence,
    /// Its state now.
    pub state: SilenceState,
}

/// A new silence.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// All must match; at least one must not match the empty string.
    pub matchers: Vec<Matcher>,
    /// Start (default now).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// End (after the start and in the future).
    pub ends_at: DateTime<Utc>,
    /// Why.
    pub comment: String,
}

/// Changes to a silence that has not expired.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilencePatch {
    /// New matchers.
    pub matchers: Option<Vec<Matcher>>,
    /// New start.
    pub starts_at: Option<DateTime<Utc>>,
    /// New end.
    pub ends_at: Option<DateTime<Utc>>,
    /// New comment.
    pub comment: Option<String>,
}

/// `GET /api/v1/silences` filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SilenceParams {
    /// `pending`, `active` or `expired`.
    pub state: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Cursor.
    pub cursor: Option<String>,
}

fn check(
    e: &mut FieldErrors,
    matchers: &[Matcher],
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    if matchers.is_empty() {
        e.add("matchers", "at least one matcher is needed");
    }
    match MatcherSet::compile(matchers) {
        Err((i, err)) => {
            e.add(format!("matchers[{i}]"), err.to_string());
        }
        Ok(set) if !matchers.is_empty() && set.matches_everything_empty() => {
            e.add("matchers", "at least one matcher must not match the empty string (it would silence everything)");
        }
        Ok(_) => {}
    }
    use chrono::Datelike;
    for (field, t) in [("starts_at", starts), ("ends_at", ends)] {
        if t.year() > 9999 {
            e.add(
                field,
                "must be before the year 10000 (RFC 3339 has four-digit years)",
            );
        }
    }
    if ends <= starts {
        e.add("ends_at", "must be after starts_at");
    }
    if ends <= now {
        e.add("ends_at", "must be in the future");
    }
}

fn end_key(s: &Silence) -> Vec<u8> {
    Key::new().i64(s.ends_at.timestamp()).u64(s.id).into_bytes()
}

fn save(
    tx: &WriteTransaction,
    before: Option<&Silence>,
    after: &Silence,
) -> Result<(), StoreError> {
    if let Some(b) = before {
        access::delete_raw(tx, tables::SILENCES_BY_END, &end_key(b))?;
    }
    access::put(tx, after)?;
    access::put_raw(tx, tables::SILENCES_BY_END, &end_key(after), &[])
}

/// Silences that have not ended by `now` (active or pending).
pub fn current(r: &impl Reader, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
    let mut ids = Vec::new();
    let start = Key::new().i64(now.timestamp()).into_bytes();
    r.scan_raw(
        tables::SILENCES_BY_END,
        std::ops::Bound::Included(start.as_slice()),
        std::ops::Bound::Unbounded,
        Order::Asc,
        &mut |k, _| {
            let mut kr = KeyReader::new(k);
            kr.i64();
            if let Some(id) = kr.u64() {
                ids.push(id);
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = access::get::<Silence>(r, id)? {
            out.push(s);
        }
    }
    Ok(out)
}

/// Releases the firing alerts silence `id` mutes that no silence in force at `now` mutes
/// any more: they join or open their group's incident, whose timeline says why.
fn release_in_tx(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    who: &ActorRef,
    id: u64,
) -> AppResult<usize> {
    let muted = alerts::muted_by_in_tx(tx, id)?;
    if muted.is_empty() {
        return Ok(0);
    }
    let ids: Vec<u64> = muted.iter().map(|a| a.id).collect();
    alerts::reconsider_in_tx(tx, now, muted)?;
    let mut released: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for alert_id in ids {
        if let Some(a) = access::get::<Alert>(tx, alert_id)?
            && let Some(incident) = a.incident_id
        {
            released.entry(incident).or_default().push(alert_id);
        }
    }
    let mut count = 0;
    for (incident, alert_ids) in released {
        count += alert_ids.len();
        incidents::timeline(
            tx,
            incident,
            now,
            who,
            "silence",
            format!(
                "silence {id} no longer mutes {} alert(s) that still fire",
                alert_ids.len()
            ),
            serde_json::json!({"silence_id": id, "alerts": alert_ids}),
        )?;
    }
    Ok(count)
}

/// [`release_in_tx`] in a transaction of its own, right after a change to silence `id`
/// was committed: the change stands even if the release fails (it is logged, and the
/// release pass tries again if the silence has ended).
async fn release_after_change(app: &App, now: DateTime<Utc>, who: ActorRef, id: u64) {
    let released = app
        .store
        .write(move |tx| release_in_tx(tx, now, &who, id))
        .await;
    if let Err(e) = released {
        tracing::warn!(silence = id, error = %e, "cannot release the alerts of a changed silence");
    }
}

/// Releases the alerts of every silence that has ended (or not yet begun) while alerts it
/// muted still fire: the pass of [`crate::engine::silences`]. Returns how many alerts
/// went to incidents. A silence whose release fails is logged and left for the next pass;
/// the others go on.
pub async fn release_ended(app: &App) -> AppResult<usize> {
    let now = app.clock.now();
    let r = app.store.read()?;
    let mut ended = Vec::new();
    for id in alerts::muting_silences(&r)? {
        let in_force =
            access::get::<Silence>(&r, id)?.is_some_and(|s| s.state(now) == SilenceState::Active);
        if !in_force {
            ended.push(id);
        }
    }
    drop(r);
    let mut released = 0;
    for id in ended {
        match app
            .store
            .write(move |tx| release_in_tx(tx, now, &Actor::system().reference, id))
            .await
        {
            Ok(n) => released += n,
            Err(e) => {
                tracing::warn!(silence = id, error = %e, "cannot release the alerts of an ended silence; trying again shortly")
            }
        }
    }
    Ok(released)
}

fn view(s: Silence, now: DateTime<Utc>) -> SilenceView {
    SilenceView {
        state: s.state(now),
        silence: s,
    }
}

/// Creates a silence (needs `silence:write`).
pub async fn create(app: &App, actor: &Actor, input: NewSilence) -> AppResult<SilenceView> {
    require(actor, Permission::SilenceWrite)?;
    let now = app.clock.now();
    let starts = input.starts_at.unwrap_or(now);
    let mut e = FieldErrors::new();
    check(&mut e, &input.matchers, starts, input.ends_at, now);
    let comment = required_text(&mut e, "comment", &input.comment, 1000);
    e.into_result()?;
    let who = actor.reference.clone();
    let s = app
        .store
        .write(move |tx| {
            let id = access::next_id(tx, tables::SILENCES)?;
            let s = Silence {
                id,
                matchers: input.matchers.clone(),
                starts_at: starts,
                ends_at: input.ends_at,
                comment: comment.clone(),
                created_by: who.clone(),
                created_at: now,
                updated_at: now,
            };
            save(tx, None, &s)?;
            let summary = format!(
                "silenced {} until {}",
                s.matchers
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                s.ends_at.to_rfc3339()
            );
            super::audit::record(
                tx,
                now,
                &who,
                "silence.create",
                ("silence", id),
                summary,
                audit::created_record(&s),
            )?;
            Ok::<_, AppError>(s)
        })
        .await?;
    Ok(view(s, now))
}

/// One silence (needs `silence:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<SilenceView> {
    require(actor, Permission::SilenceRead)?;
    let s = access::get::<Silence>(&app.store.read()?, id)?
        .ok_or_else(|| AppError::not_found("silence", id))?;
    Ok(view(s, app.clock.now()))
}

/// Silences, newest first, optionally by state (needs `silence:read`).
pub fn list(
    app: &App,
    actor: &Actor,
    params: &SilenceParams,
    page: PageRequest,
) -> AppResult<Page<SilenceView>> {
    require(actor, Permission::SilenceRead)?;
    let state = match params
        .state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<SilenceState>(serde_json::Value::String(
                s.to_ascii_lowercase(),
            ))
            .map_err(|_| FieldErrors::single("state", "must be pending, active or expired"))?,
        ),
    };
    let now = app.clock.now();
    let r = app.store.read()?;
    let mut out = Vec::new();
    let mut after = page.after;
    loop {
        let batch = access::list::<Silence>(&r, after, Order::Desc, 256)?;
        let Some(last) = batch.last().map(|s| s.id) else {
            break;
        };
        let full = batch.len() == 256;
        for s in batch {
            if state.is_none_or(|st| s.state(now) == st) {
                out.push(s);
                if out.len() > page.limit {
                    break;
                }
            }
        }
        if out.len() > page.limit || !full {
            break;
        }
        after = Some(last);
    }
    Ok(Page::from_overfetch(out, page.limit, |s| s.id).map(|s| view(s, now)))
}

/// Changes a silence that has not expired (needs `silence:write`).
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: SilencePatch,
) -> AppResult<SilenceView> {
    require(actor, Permission::SilenceWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let s = app
        .store
        .write(move |tx| {
            let before = access::get::<Silence>(tx, id)?
                .ok_or_else(|| AppError::not_found("silence", id))?;
            if before.state(now) == SilenceState::Expired {
                return Err(AppError::Conflict(format!(
                    "silence {id} has expired; create a new one"
                )));
            }
            let mut s = before.clone();
            if let Some(m) = &patch.matchers {
                s.matchers = m.clone();
            }
            if let Some(t) = patch.starts_at {
                s.starts_at = t;
            }
            if let Some(t) = patch.ends_at {
                s.ends_at = t;
            }
            let mut e = FieldErrors::new();
            if let Some(c) = &patch.comment {
                s.comment = required_text(&mut e, "comment", c, 1000);
            }
            check(&mut e, &s.matchers, s.starts_at, s.ends_at, now);
            e.into_result()?;
            s.updated_at = now;
            save(tx, Some(&before), &s)?;
            let changes = audit::diff_records(&before, &s);
            super::audit::record(
                tx,
                now,
                &who,
                "silence.update",
                ("silence", id),
                format!("changed silence {id}"),
                changes,
            )?;
            Ok(s)
        })
        .await?;
    release_after_change(app, now, actor.reference.clone(), id).await;
    Ok(view(s, now))
}

/// Ends a silence now (needs `silence:write`); expiring an expired silence is 409.
pub async fn expire(app: &App, actor: &Actor, id: u64) -> AppResult<SilenceView> {
    require(actor, Permission::SilenceWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let s = app
        .store
        .write(move |tx| {
            let before = access::get::<Silence>(tx, id)?
                .ok_or_else(|| AppError::not_found("silence", id))?;
            if before.state(now) == SilenceState::Expired {
                return Err(AppError::Conflict(format!(
                    "silence {id} has already expired"
                )));
            }
            let mut s = before.clone();
            s.ends_at = now;
            if s.starts_at > now {
                s.starts_at = now;
            }
            s.updated_at = now;
            save(tx, Some(&before), &s)?;
            super::audit::record(
                tx,
                now,
                &who,
                "silence.expire",
                ("silence", id),
                format!("expired silence {id}"),
                serde_json::json!({"ends_at": {"from": before.ends_at, "to": now}}),
            )?;
            Ok(s)
        })
        .await?;
    release_after_change(app, now, actor.reference.clone(), id).await;
    Ok(view(s, now))
}
