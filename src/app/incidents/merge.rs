//! Merge: several incidents that turn out to be one outage become one.
//!
//! When one failure opens incidents in several groups or services (the database is down,
//! and every service that uses it alerts), responders want one incident to work in, one
//! timeline and one page. `POST /api/v1/incidents/{id}/merge {"source_ids": [...]}` moves
//! the alerts of each source incident to the target (and the alert groups that fed them,
//! so that their next alerts join the target too), resolves each source with "merged
//! into INC-n" (`merged_into` on its record), and notes it on both timelines, as
//! PagerDuty's merge does. The target keeps its own priority, assignee and escalation,
//! and is linked to the sources' open problems (when whoever merges may change problems).
//! A merged incident is not a fix: it counts in no MTTR, and it cannot be reopened (close
//! it, or work in the target). The target's "first alerts" (where its runbook link and the
//! labels playbooks match come from) are its alerts in id order, so an older source's
//! alerts come first after a merge.

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{IncidentView, load, save, timeline, transition_in_tx};
use crate::app::events::{self, Subject};
use crate::app::{App, AppError, AppResult, FieldErrors, alerts, require};
use crate::domain::actor::Actor;
use crate::domain::event::EventKind;
use crate::domain::incident::IncidentStatus;
use crate::domain::permission::Permission;

/// Most incidents merged in one request.
pub const MAX_SOURCES: usize = 50;

/// `POST /api/v1/incidents/{id}/merge`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The incidents to merge into this one, 1 to 50: ids, `"INC-42"` or `"#42"`.
    #[serde(deserialize_with = "crate::domain::reference::incidents")]
    #[schema(value_type = Vec<u64>)]
    pub source_ids: Vec<u64>,
}

/// Merges `request.source_ids` into incident `target` (needs `incident:write`). 422 for an
/// empty, repeated or self-including list; 404 for an unknown incident; 409 when the target
/// or a source is not open.
pub async fn merge(
    app: &App,
    actor: &Actor,
    target: u64,
    request: MergeRequest,
) -> AppResult<IncidentView> {
    require(actor, Permission::IncidentWrite)?;
    let sources = request.source_ids;
    let mut e = FieldErrors::new();
    if sources.is_empty() || sources.len() > MAX_SOURCES {
        e.add(
            "source_ids",
            format!("name 1 to {MAX_SOURCES} incidents to merge"),
        );
    }
    if sources.contains(&target) {
        e.add("source_ids", "an incident cannot be merged into itself");
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = sources.iter().find(|id| !seen.insert(**id)) {
        e.add("source_ids", format!("INC-{dup} is named twice"));
    }
    e.into_result()?;
    let now = app.clock.now();
    let actor = actor.clone();
    let incident = app
        .store
        .write(move |tx| {
            let before = load(tx, target)?;
            if !before.status.is_open() {
                return Err(AppError::Conflict(format!(
                    "{} is {}; only an open incident takes others in (reopen it first)",
                    before.number(),
                    before.status
                )));
            }
            let who = &actor.reference;
            let mut i = before.clone();
            let mut merged = Vec::new();
            let mut problems = Vec::new();
            for &source in &sources {
                let s = load(tx, source)?;
                problems.extend(s.problem_ids.iter().copied());
                if !s.status.is_open() {
                    return Err(AppError::Conflict(format!(
                        "{} is {}; only open incidents can be merged",
                        s.number(),
                        s.status
                    )));
                }
                let (moved, firing) = alerts::move_in_tx(tx, source, target)?;
                let mut gone = s.clone();
                gone.merged_into = Some(target);
                gone.alert_count = gone.alert_count.saturating_sub(moved);
                gone.firing_alerts = gone.firing_alerts.saturating_sub(firing);
                gone.updated_at = now;
                save(tx, Some(&s), &gone)?;
                transition_in_tx(
                    tx,
                    now,
                    &actor,
                    source,
                    IncidentStatus::Resolved,
                    Some(&format!("merged into {}", i.number())),
                )?;
                i.alert_count += moved;
                i.firing_alerts += firing;
                timeline(
                    tx,
                    target,
                    now,
                    who,
                    "merged",
                    format!(
                        "{} merged in: {moved} alert(s), {firing} firing",
                        s.number()
                    ),
                    json!({"source_id": source, "alerts": moved, "firing": firing}),
                )?;
                merged.push(json!({"id": source, "alerts": moved, "firing": firing}));
            }
            i.updated_at = now;
            save(tx, Some(&before), &i)?;
            // The work goes on in the target: the sources' problems follow it there (the
            // sources keep their links, as part of their record; a closed problem's record
            // is final and is not extended).
            problems.sort_unstable();
            problems.dedup();
            // Linking is a change to the problem too: only for someone who may make it.
            if !actor.can(Permission::ProblemWrite) {
                problems.clear();
            }
            for problem in problems {
                let open = crate::app::problems::load(tx, problem).is_ok_and(|p| {
                    p.status != crate::domain::problem::ProblemStatus::Closed
                        && !p.incident_ids.contains(&target)
                });
                if open && !i.problem_ids.contains(&problem) {
                    crate::app::problems::link_in_tx(tx, now, who, problem, target, true)?;
                }
            }
            let i = load(tx, target)?;
            let names: Vec<String> = sources.iter().map(|id| format!("INC-{id}")).collect();
            crate::app::audit::record(
                tx,
                now,
                who,
                "incident.merge",
                ("incident", target),
                format!("merged {} into {}", names.join(", "), i.number()),
                json!({"sources": merged}),
            )?;
            events::publish(
                tx,
                now,
                EventKind::IncidentAlertsChanged,
                who,
                Subject::incident(target),
                json!({"firing": i.firing_alerts, "total": i.alert_count, "merged": sources}),
            )?;
            Ok::<_, AppError>(i)
        })
        .await?;
    Ok(incident.into())
}
