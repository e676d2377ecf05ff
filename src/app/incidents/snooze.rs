//! Snooze: "I have this, but I cannot act on it until later — page me again then."
//!
//! An acknowledged incident can be snoozed for 1 minute to a week (PagerDuty's snooze):
//! it stays acknowledged, escalation stays stopped, page steps still waiting (from a
//! manual escalation) are cancelled, and when the time comes it goes back to `new`, which
//! restarts its escalation from the first level and tells the channels
//! (`incident.status_changed`). Any status change before then (resolve, in progress...)
//! ends the snooze. The wake-up time is on the incident and in a due queue
//! ([`crate::store::tables::SNOOZES_DUE`], kept by [`super::save`]), so a restart loses
//! none: a snooze that ran out while the daemon was down wakes at the first pass.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{IncidentView, MAX_TEXT, load, save, timeline};
use crate::app::events::{self, Subject};
use crate::app::{App, AppError, AppResult, FieldErrors, require};
use crate::domain::actor::Actor;
use crate::domain::event::EventKind;
use crate::domain::incident::{IncidentStatus, MAX_SNOOZE_MINUTES, SnoozeError};
use crate::domain::permission::Permission;
use crate::store::{due, tables};

/// `POST /api/v1/incidents/{id}/snooze`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeRequest {
    /// For how long, in minutes (1 to 10080, a week).
    pub minutes: u32,
    /// Why; goes on the timeline.
    #[serde(default)]
    pub note: Option<String>,
}

/// Incidents woken per pass (the rest wait for the next one, two seconds later).
const WAKE_BATCH: usize = 100;

/// `30 min`, `2 h`, `1 h 30 min`, `3 d`: how long a snooze is, said briefly.
pub fn minutes_in_words(minutes: u32) -> String {
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "min")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    parts.join(" ")
}

/// Snoozes an acknowledged incident (needs `incident:write`): 422 for a length out of
/// range, 409 for an incident that is not acknowledged.
pub async fn snooze(
    app: &App,
    actor: &Actor,
    id: u64,
    request: SnoozeRequest,
) -> AppResult<IncidentView> {
    require(actor, Permission::IncidentWrite)?;
    let mut e = FieldErrors::new();
    if !(1..=MAX_SNOOZE_MINUTES).contains(&request.minutes) {
        e.add(
            "minutes",
            format!("must be 1 to {MAX_SNOOZE_MINUTES} (a week)"),
        );
    }
    let note = request
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_TEXT) {
        e.add("note", format!("must be at most {MAX_TEXT} characters"));
    }
    e.into_result()?;
    let now = app.clock.now();
    let until = now + chrono::Duration::minutes(i64::from(request.minutes));
    let who = actor.reference.clone();
    let incident = app
        .store
        .write(move |tx| {
            let before = load(tx, id)?;
            let mut i = before.clone();
            i.snooze(until, now).map_err(|e| match e {
                SnoozeError::NotAcknowledged(_) => {
                    AppError::Conflict(format!("{}: {e}; acknowledge it first", before.number()))
                }
                SnoozeError::NotInFuture => FieldErrors::single("minutes", e.to_string()),
            })?;
            save(tx, Some(&before), &i)?;
            // Nobody is paged while it sleeps (as in PagerDuty): steps still waiting from
            // a manual escalation go; it pages from level 1 when it wakes.
            crate::app::notifications::outbox::cancel_pages(
                tx,
                id,
                "the incident was snoozed before this step was due",
            )?;
            let length = minutes_in_words(request.minutes);
            let summary = match &note {
                Some(n) => format!(
                    "snoozed for {length}, until {}: {n}",
                    until.format("%Y-%m-%d %H:%M UTC")
                ),
                None => format!(
                    "snoozed for {length}, until {}",
                    until.format("%Y-%m-%d %H:%M UTC")
                ),
            };
            let detail = json!({"until": until, "minutes": request.minutes, "note": note});
            timeline(
                tx,
                id,
                now,
                &who,
                "snoozed",
                summary.clone(),
                detail.clone(),
            )?;
            let changes = json!({"snoozed_until": {"from": before.snoozed_until, "to": until}});
            crate::app::audit::record(
                tx,
                now,
                &who,
                "incident.snooze",
                ("incident", id),
                format!("{}: {summary}", i.number()),
                changes.clone(),
            )?;
            // Chat cards show the snooze; webhooks and rules on incident.updated see it.
            events::publish(
                tx,
                now,
                EventKind::IncidentUpdated,
                &who,
                Subject::incident(id),
                json!({"changes": changes, "assignee_id": i.assignee_id, "group_id": i.group_id}),
            )?;
            Ok::<_, AppError>(i)
        })
        .await?;
    Ok(incident.into())
}

/// Wakes the snoozed incidents whose time has come: back to `new` (escalation restarts
/// at its first level) with a timeline entry and an `incident.status_changed` event.
/// Returns how many woke. Queue entries of incidents that moved on are dropped.
pub async fn wake_due(app: &App) -> AppResult<usize> {
    let now = app.clock.now();
    let entries = due::entries_due(&app.store.read()?, tables::SNOOZES_DUE, now, WAKE_BATCH)?;
    let mut woken = 0;
    for (at, id) in entries {
        let done = app.store.write(move |tx| wake_one(tx, now, at, id)).await;
        match done {
            Ok(true) => woken += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(incident = id, error = %e, "cannot wake a snoozed incident; trying again shortly")
            }
        }
    }
    Ok(woken)
}

/// Wakes incident `id` whose queue entry says `at`, if it is still snoozed until then.
fn wake_one(
    tx: &redb::WriteTransaction,
    now: DateTime<Utc>,
    at: DateTime<Utc>,
    id: u64,
) -> AppResult<bool> {
    let Some(before) = crate::store::access::get::<crate::domain::incident::Incident>(tx, id)?
    else {
        crate::store::access::delete_raw(tx, tables::SNOOZES_DUE, &due::key(at, id))?;
        return Ok(false);
    };
    let mut i = before.clone();
    let same_entry =
        before.snoozed_until.map(|u| u.timestamp_millis()) == Some(at.timestamp_millis());
    if !same_entry || !i.wake(now) {
        // Moved on (its entry went with the change) or snoozed anew: a stale entry.
        crate::store::access::delete_raw(tx, tables::SNOOZES_DUE, &due::key(at, id))?;
        return Ok(false);
    }
    save(tx, Some(&before), &i)?;
    let system = Actor::system().reference;
    let note = if i.escalation_policy_id.is_some() {
        "the snooze ended; paging again from level 1"
    } else {
        "the snooze ended (no escalation policy: nobody is paged by escalation)"
    };
    let summary = format!(
        "{} → {}: {note}",
        IncidentStatus::Acknowledged,
        IncidentStatus::New
    );
    let detail =
        json!({"from": IncidentStatus::Acknowledged, "to": IncidentStatus::New, "note": note});
    timeline(
        tx,
        id,
        now,
        &system,
        "status_changed",
        summary.clone(),
        detail.clone(),
    )?;
    crate::app::audit::record(
        tx,
        now,
        &system,
        "incident.transition",
        ("incident", id),
        format!("{}: {summary}", i.number()),
        json!({"status": {"from": IncidentStatus::Acknowledged, "to": IncidentStatus::New}}),
    )?;
    events::publish(
        tx,
        now,
        EventKind::IncidentStatusChanged,
        &system,
        Subject::incident(id),
        detail,
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_in_words() {
        assert_eq!(minutes_in_words(1), "1 min");
        assert_eq!(minutes_in_words(90), "1 h 30 min");
        assert_eq!(minutes_in_words(120), "2 h");
        assert_eq!(minutes_in_words(1440 + 61), "1 d 1 h 1 min");
        assert_eq!(minutes_in_words(MAX_SNOOZE_MINUTES), "7 d");
    }
}
