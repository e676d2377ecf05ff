//! On-call schedules and their overrides: create, read, change, delete, and who is on
//! call at an instant (for the API, `/incident oncall`, and escalation levels that page a
//! schedule). The rotation math is in `domain::schedule`.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, catalog, require};
use crate::domain::actor::Actor;
use crate::domain::audit;
use crate::domain::escalation::{EscalationPolicy, EscalationTarget};
use crate::domain::identity::User;
use crate::domain::permission::Permission;
use crate::domain::schedule::{
    self, Layer, MAX_SHIFT_WINDOW_DAYS, OnCall, Schedule, ScheduleOverride, Shift,
};
use crate::store::access::{self, Order, Reader};
use crate::store::keys::Key;
use crate::store::{StoreError, tables};

/// Longest override: a year.
const MAX_OVERRIDE_DAYS: i64 = 366;

/// A new schedule.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    /// Unique name (case-insensitive).
    pub name: String,
    /// What it covers.
    #[serde(default)]
    pub description: String,
    /// IANA time zone of the layers' wall-clock times, `Europe/Berlin`.
    pub time_zone: String,
    /// The layers; later ones win where several have somebody.
    pub layers: Vec<Layer>,
}

/// Changes to a schedule.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New time zone.
    pub time_zone: Option<String>,
    /// New layers.
    pub layers: Option<Vec<Layer>>,
}

/// Somebody covering a schedule from `start` until `end`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOverride {
    /// Who covers.
    pub user_id: u64,
    /// From (RFC 3339).
    pub start: DateTime<Utc>,
    /// Until (RFC 3339, exclusive).
    pub end: DateTime<Utc>,
}

/// Who is on call at an instant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnCallAnswer {
    /// The schedule.
    pub schedule_id: u64,
    /// The instant asked about.
    pub at: DateTime<Utc>,
    /// The user on call; null when nobody is.
    pub user_id: Option<u64>,
    /// Their username.
    pub username: Option<String>,
    /// Why they are on call, and the shift or override that puts them there.
    pub on_call: Option<OnCall>,
}

fn check_layers(
    r: &impl Reader,
    e: &mut FieldErrors,
    time_zone: &str,
    layers: &[Layer],
) -> Result<(), StoreError> {
    for (field, reason) in schedule::check(time_zone, layers) {
        e.add(field, reason);
    }
    for (i, l) in layers.iter().enumerate() {
        for (j, id) in l.users.iter().enumerate() {
            if access::get::<User>(r, *id)?.is_none() {
                e.add(
                    format!("layers[{i}].users[{j}]"),
                    format!("no user with id {id}"),
                );
            }
        }
    }
    Ok(())
}

fn override_key(schedule_id: u64, id: u64) -> Vec<u8> {
    Key::new().u64(schedule_id).u64(id).into_bytes()
}

/// The overrides of a schedule that have not ended at `since`, oldest first.
pub(crate) fn overrides_of(
    r: &impl Reader,
    schedule_id: u64,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<ScheduleOverride>, StoreError> {
    let mut out = Vec::new();
    access::scan_prefix(
        r,
        tables::SCHEDULE_OVERRIDES,
        &Key::new().u64(schedule_id).into_bytes(),
        None,
        Order::Asc,
        &mut |_, v| {
            let o: ScheduleOverride = access::decode(tables::SCHEDULE_OVERRIDES, v)?;
            if since.is_none_or(|s| o.end > s) {
                out.push(o);
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

/// Who schedule `id` has on call at `at` (`None` if nobody, or no such schedule); for
/// escalation levels that page a schedule.
pub fn on_call_at(
    r: &impl Reader,
    id: u64,
    at: DateTime<Utc>,
) -> Result<Option<OnCall>, StoreError> {
    let Some(s) = access::get::<Schedule>(r, id)? else {
        return Ok(None);
    };
    let overrides = overrides_of(r, id, Some(at))?;
    let active = active_users(r, &s, &overrides)?;
    Ok(s.on_call(&overrides, at, |u| active.get(&u).copied().unwrap_or(false)))
}

/// Which of the people a schedule names are active. Only users who can be reached may be
/// on call: a deactivated one is covered by the layers below.
fn active_users(
    r: &impl Reader,
    s: &Schedule,
    overrides: &[ScheduleOverride],
) -> Result<std::collections::BTreeMap<u64, bool>, StoreError> {
    let mut active = std::collections::BTreeMap::new();
    let ids = overrides
        .iter()
        .map(|o| o.user_id)
        .chain(s.layers.iter().flat_map(|l| l.users.iter().copied()));
    for u in ids {
        if let std::collections::btree_map::Entry::Vacant(e) = active.entry(u) {
            e.insert(access::get::<User>(r, u)?.is_some_and(|u| u.active));
        }
    }
    Ok(active)
}

/// A shift of the final schedule, with the username.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShiftView {
    /// The shift.
    #[serde(flatten)]
    pub shift: Shift,
    /// The user's name.
    pub username: Option<String>,
}

/// The final schedule over `[from, to)` (default: the next 7 days; at most 92 days) (needs
/// `schedule:read`).
pub fn shifts(
    app: &App,
    actor: &Actor,
    schedule_id: u64,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> AppResult<Vec<ShiftView>> {
    require(actor, Permission::ScheduleRead)?;
    let from = from.unwrap_or_else(|| app.clock.now());
    let to = to.unwrap_or(from + chrono::Duration::days(7));
    if to <= from {
        return Err(FieldErrors::single("to", "must be after from"));
    }
    if to - from > chrono::Duration::days(MAX_SHIFT_WINDOW_DAYS) {
        return Err(FieldErrors::single(
            "to",
            format!("the window may be at most {MAX_SHIFT_WINDOW_DAYS} days"),
        ));
    }
    let r = app.store.read()?;
    let s = catalog::load::<Schedule>(&r, schedule_id)?;
    let overrides = overrides_of(&r, schedule_id, Some(from))?;
    let active = active_users(&r, &s, &overrides)?;
    let shifts = s.shifts(&overrides, from, to, |u| {
        active.get(&u).copied().unwrap_or(false)
    });
    let mut out = Vec::with_capacity(shifts.len());
    for shift in shifts {
        let username = access::get::<User>(&r, shift.user_id)?.map(|u| u.username);
        out.push(ShiftView { shift, username });
    }
    Ok(out)
}

/// Creates a schedule (needs `schedule:write`).
pub async fn create(app: &App, actor: &Actor, input: NewSchedule) -> AppResult<Schedule> {
    let change = catalog::change::<Schedule>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::new_name::<Schedule>(&mut e, &input.name);
    e.into_result()?;
    app.store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            check_layers(tx, &mut e, &input.time_zone, &input.layers)?;
            e.into_result()?;
            catalog::create(tx, &change, |id| Schedule {
                id,
                name: name.clone(),
                description: input.description.trim().to_owned(),
                time_zone: input.time_zone.clone(),
                layers: input.layers.clone(),
                created_at: change.at,
                updated_at: change.at,
            })
        })
        .await
}

/// One schedule (needs `schedule:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<Schedule> {
    catalog::get(app, actor, id)
}

/// Schedules in id order (needs `schedule:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<Schedule>> {
    catalog::list(app, actor, page)
}

/// Changes a schedule (needs `schedule:write`).
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: SchedulePatch,
) -> AppResult<Schedule> {
    let change = catalog::change::<Schedule>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::patched_name::<Schedule>(&mut e, patch.name.as_deref());
    e.into_result()?;
    app.store
        .write(move |tx| {
            let before: Schedule = catalog::load(tx, id)?;
            let mut s = before.clone();
            if let Some(tz) = &patch.time_zone {
                s.time_zone = tz.clone();
            }
            if let Some(layers) = &patch.layers {
                s.layers = layers.clone();
            }
            if let Some(d) = &patch.description {
                s.description = d.trim().to_owned();
            }
            let mut e = FieldErrors::new();
            check_layers(tx, &mut e, &s.time_zone, &s.layers)?;
            e.into_result()?;
            if let Some(name) = &name {
                s.name = name.clone();
            }
            catalog::save(tx, &change, &before, s)
        })
        .await
}

/// Deletes a schedule (needs `schedule:write`) that no escalation policy pages, with its
/// overrides.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    let change = catalog::change::<Schedule>(app, actor)?;
    app.store
        .write(move |tx| {
            let s: Schedule = catalog::load(tx, id)?;
            let policies = access::list::<EscalationPolicy>(tx, None, Order::Asc, usize::MAX)?;
            if let Some(p) = policies.iter().find(|p| {
                p.steps
                    .iter()
                    .any(|st| st.targets.contains(&EscalationTarget::Schedule { id }))
            }) {
                return Err(AppError::Conflict(format!(
                    "escalation policy '{}' pages schedule '{}'; change it first",
                    p.name, s.name
                )));
            }
            for o in overrides_of(tx, id, None)? {
                access::delete_raw(tx, tables::SCHEDULE_OVERRIDES, &override_key(id, o.id))?;
            }
            catalog::delete(tx, &change, &s)
        })
        .await
}

/// Deletes every override of user `user_id` in any schedule, in the transaction that
/// deletes the user (`now`, `who`: that deletion's time and actor): only ended ones can be
/// left by then (a current or future one makes the deletion a 409), and an override
/// naming nobody would be a stale record. Each removal is audited as a removal by hand is.
pub(crate) fn forget_overrides_of(
    tx: &redb::WriteTransaction,
    user_id: u64,
    now: DateTime<Utc>,
    who: &crate::domain::actor::ActorRef,
) -> Result<(), StoreError> {
    let mut stale = Vec::new();
    access::scan_prefix(
        tx,
        tables::SCHEDULE_OVERRIDES,
        &[],
        None,
        Order::Asc,
        &mut |_, v| {
            let o: ScheduleOverride = access::decode(tables::SCHEDULE_OVERRIDES, v)?;
            if o.user_id == user_id {
                stale.push(o);
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    for o in stale {
        access::delete_raw(
            tx,
            tables::SCHEDULE_OVERRIDES,
            &override_key(o.schedule_id, o.id),
        )?;
        super::audit::record(
            tx,
            now,
            who,
            "schedule.override_delete",
            ("schedule", o.schedule_id),
            format!("removed override {} with its deleted user", o.id),
            audit::deleted_record(&o),
        )?;
    }
    Ok(())
}

/// The overrides of a schedule not yet over at `since` (default: all), oldest first
/// (needs `schedule:read`).
pub fn list_overrides(
    app: &App,
    actor: &Actor,
    schedule_id: u64,
    since: Option<DateTime<Utc>>,
) -> AppResult<Vec<ScheduleOverride>> {
    require(actor, Permission::ScheduleRead)?;
    let r = app.store.read()?;
    catalog::load::<Schedule>(&r, schedule_id)?;
    Ok(overrides_of(&r, schedule_id, since)?)
}

/// Adds an override (needs `schedule:write`).
pub async fn add_override(
    app: &App,
    actor: &Actor,
    schedule_id: u64,
    input: NewOverride,
) -> AppResult<ScheduleOverride> {
    require(actor, Permission::ScheduleWrite)?;
    let now = app.clock.now();
    let mut e = FieldErrors::new();
    for (field, at) in [("start", input.start), ("end", input.end)] {
        if let Err(why) = crate::domain::schedule::check_year(chrono::Datelike::year(&at)) {
            e.add(field, why);
        }
    }
    if input.end <= input.start {
        e.add("end", "must be after start");
    } else if input.end <= now {
        e.add("end", "is in the past: an override covers now or later");
    } else if (input.end - input.start).num_days() > MAX_OVERRIDE_DAYS {
        e.add(
            "end",
            format!("an override lasts at most {MAX_OVERRIDE_DAYS} days"),
        );
    }
    e.into_result()?;
    let who = actor.reference.clone();
    app.store
        .write(move |tx| {
            let s = catalog::load::<Schedule>(tx, schedule_id)?;
            let user = match access::get::<User>(tx, input.user_id)? {
                Some(u) if u.active => u,
                Some(u) => {
                    return Err(FieldErrors::single(
                        "user_id",
                        format!("user {} is deactivated", u.username),
                    ));
                }
                None => {
                    return Err(FieldErrors::single(
                        "user_id",
                        format!("no user with id {}", input.user_id),
                    ));
                }
            };
            let id = access::next_id(tx, tables::SCHEDULE_OVERRIDES)?;
            let o = ScheduleOverride {
                id,
                schedule_id,
                user_id: input.user_id,
                start: input.start,
                end: input.end,
                created_by: who.name.clone(),
                created_at: now,
            };
            access::put_json(
                tx,
                tables::SCHEDULE_OVERRIDES,
                &override_key(schedule_id, id),
                &o,
            )?;
            super::audit::record(
                tx,
                now,
                &who,
                "schedule.override_add",
                ("schedule", schedule_id),
                format!(
                    "{} covers schedule {} from {} until {}",
                    user.username, s.name, o.start, o.end
                ),
                serde_json::to_value(&o).unwrap_or_default(),
            )?;
            Ok(o)
        })
        .await
}

/// Removes an override (needs `schedule:write`).
pub async fn delete_override(
    app: &App,
    actor: &Actor,
    schedule_id: u64,
    override_id: u64,
) -> AppResult<()> {
    require(actor, Permission::ScheduleWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    app.store
        .write(move |tx| {
            let key = override_key(schedule_id, override_id);
            let o: ScheduleOverride = access::get_json(tx, tables::SCHEDULE_OVERRIDES, &key)?
                .ok_or_else(|| AppError::not_found("override", override_id))?;
            access::delete_raw(tx, tables::SCHEDULE_OVERRIDES, &key)?;
            super::audit::record(
                tx,
                now,
                &who,
                "schedule.override_delete",
                ("schedule", schedule_id),
                format!("removed override {override_id}"),
                audit::deleted_record(&o),
            )?;
            Ok(())
        })
        .await
}

/// Who is on call at `at` (default now) (needs `schedule:read`).
pub fn on_call(
    app: &App,
    actor: &Actor,
    schedule_id: u64,
    at: Option<DateTime<Utc>>,
) -> AppResult<OnCallAnswer> {
    require(actor, Permission::ScheduleRead)?;
    let at = at.unwrap_or_else(|| app.clock.now());
    let r = app.store.read()?;
    let schedule = catalog::load::<Schedule>(&r, schedule_id)?;
    // With the handovers people see (`held`), not the raw rotation shift or override.
    let on_call = match on_call_at(&r, schedule_id, at)? {
        Some(o) => {
            let overrides = overrides_of(&r, schedule_id, Some(o.start))?;
            let active = active_users(&r, &schedule, &overrides)?;
            Some(schedule.held(&overrides, o, at, |u| {
                active.get(&u).copied().unwrap_or(false)
            }))
        }
        None => None,
    };
    let username = match &on_call {
        Some(o) => access::get::<User>(&r, o.user_id)?.map(|u| u.username),
        None => None,
    };
    Ok(OnCallAnswer {
        schedule_id,
        at,
        user_id: on_call.as_ref().map(|o| o.user_id),
        username,
        on_call,
    })
}
