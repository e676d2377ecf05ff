//! Each incident's escalation run, kept in the store: started and stopped in the same
//! transaction as the incident change that calls for it, paged by the escalation worker
//! (`engine::escalation`) when it falls due, and by hand through `/incident escalate` or
//! `POST /api/v1/incidents/{id}/escalate`.
//!
//! Because the timer is a row ordered by its due time, a daemon that was down when a level
//! fell due pages it as soon as it is back, once.

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde_json::json;

use crate::app::events::{self, Subject};
use crate::app::{App, AppError, AppResult, require};
use crate::domain::actor::{Actor, ActorRef};
use crate::domain::escalation::{EscalationPolicy, EscalationRun, EscalationTarget, Position};
use crate::domain::event::{DomainEvent, EventKind};
use crate::domain::identity::User;
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::permission::Permission;
use crate::store::access::{self, Reader};
use crate::store::due as queue;
use crate::store::{StoreError, tables};

fn due_key(run: &EscalationRun) -> Option<Vec<u8>> {
    run.due_at.map(|at| queue::key(at, run.incident_id))
}

/// Writes a run and moves its due entry.
fn save(
    tx: &WriteTransaction,
    before: Option<&EscalationRun>,
    after: &EscalationRun,
) -> Result<(), StoreError> {
    if let Some(key) = before.and_then(due_key) {
        access::delete_raw(tx, tables::ESCALATIONS_DUE, &key)?;
    }
    access::put(tx, after)?;
    if let Some(key) = due_key(after) {
        access::put_raw(tx, tables::ESCALATIONS_DUE, &key, &[])?;
    }
    Ok(())
}

/// The policy an incident escalates under right now: its own, while nobody has responded.
fn escalating_policy(i: &Incident) -> Option<u64> {
    (i.status == IncidentStatus::New)
        .then_some(i.escalation_policy_id)
        .flatten()
}

/// Starts, restarts or stops the incident's run to match a change of the incident, inside
/// the transaction that saves it. Opening (or reopening) an incident with a policy starts
/// at level 1 at once; any move out of `new` stops the run. Cheap when nothing relevant
/// changed, which is most saves (alerts joining an incident).
///
/// The time of the change is `after.updated_at`, which every incident change sets.
pub(crate) fn sync(
    tx: &WriteTransaction,
    before: Option<&Incident>,
    after: &Incident,
) -> Result<(), StoreError> {
    let was = before.and_then(escalating_policy);
    let is = escalating_policy(after);
    if was == is {
        return Ok(());
    }
    let existing = access::get::<EscalationRun>(tx, after.id)?;
    match is {
        Some(policy_id) => {
            let run = EscalationRun::start(after.id, policy_id, after.updated_at);
            save(tx, existing.as_ref(), &run)
        }
        None => match &existing {
            Some(run) if run.due_at.is_some() => {
                let mut stopped = run.clone();
                stopped.stop();
                save(tx, existing.as_ref(), &stopped)
            }
            _ => Ok(()),
        },
    }
}

/// The queue entries `(due at, incident)` due at `now`, earliest first, at most `limit`.
pub fn due(
    r: &impl Reader,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError> {
    queue::entries_due(r, tables::ESCALATIONS_DUE, now, limit)
}

/// When the next level of any incident falls due.
pub fn next_due(r: &impl Reader) -> Result<Option<DateTime<Utc>>, StoreError> {
    queue::next_due_where(r, tables::ESCALATIONS_DUE, |_| true)
}

/// The active users a level's targets name at `now`, each once, in the order given.
fn users_of(
    r: &impl Reader,
    targets: &[EscalationTarget],
    now: DateTime<Utc>,
) -> Result<Vec<User>, StoreError> {
    use crate::app::users::PersonRef;
    let mut refs = Vec::new();
    for t in targets {
        match *t {
            EscalationTarget::User { id } => refs.push(PersonRef::User(id)),
            EscalationTarget::Group { id } => refs.push(PersonRef::Group(id)),
            EscalationTarget::Schedule { id } => {
                if let Some(on_call) = crate::app::schedules::on_call_at(r, id, now)? {
                    refs.push(PersonRef::User(on_call.user_id));
                }
            }
        }
    }
    crate::app::users::active_people(r, refs)
}

/// Pages `at`'s level of `policy` for `incident`: `incident.paged` (which notification
/// rules may also follow), a delivery to every enabled contact method of every user on
/// the level, a timeline entry; then moves the run on (at once past a level with nobody
/// on it). Returns the timeline summary and whether the level had anybody on it.
fn page(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    actor: &ActorRef,
    incident: &Incident,
    run: &mut EscalationRun,
    policy: &EscalationPolicy,
    at: Position,
) -> AppResult<(String, bool)> {
    let users = users_of(tx, policy.targets_of(at), now)?;
    let user_ids: Vec<u64> = users.iter().map(|u| u.id).collect();
    let level = at.step + 1;
    let seq = events::publish(
        tx,
        now,
        EventKind::IncidentPaged,
        actor,
        Subject::incident(incident.id),
        json!({"policy_id": policy.id, "policy": policy.name, "level": level, "round": at.round, "user_ids": user_ids}),
    )?;
    let deliveries = match access::get::<DomainEvent>(tx, seq)? {
        Some(event) => crate::app::notifications::plan::page_users(tx, &event, &user_ids)?,
        None => 0,
    };
    if users.is_empty() {
        run.paged_nobody(policy, at, now);
    } else {
        run.paged(policy, at, now);
    }
    let repeat = if at.round > 0 {
        format!(" (repeat {})", at.round)
    } else {
        String::new()
    };
    let who = if users.is_empty() {
        "nobody: no active user on it".to_owned()
    } else {
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut summary = format!("paged level {level} of '{}'{repeat}: {who}", policy.name);
    if deliveries == 0 && !users.is_empty() {
        summary.push_str(" (none of them has an enabled contact method)");
    }
    match run.due_at {
        Some(next) if next <= now => {
            summary.push_str(&format!("; level {} follows at once", run.next.step + 1))
        }
        Some(next) => summary.push_str(&format!(
            "; level {} follows at {} unless acknowledged",
            run.next.step + 1,
            next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        None if run.state == crate::domain::escalation::RunState::Exhausted => {
            summary.push_str("; that was the last level")
        }
        None => {}
    }
    crate::app::incidents::timeline(
        tx,
        incident.id,
        now,
        actor,
        "paged",
        summary.clone(),
        json!({"policy_id": policy.id, "level": level, "round": at.round, "user_ids": user_ids, "deliveries": deliveries, "next_at": run.due_at}),
    )?;
    Ok((summary, !users.is_empty()))
}

/// Stops a run after paging it failed (so one broken incident cannot hold up the others),
/// with the reason on the incident's timeline.
pub(crate) fn stop_after_error(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    queued_at: DateTime<Utc>,
    incident_id: u64,
    error: &str,
) -> AppResult<()> {
    if let Some(run) = access::get::<EscalationRun>(tx, incident_id)?
        && run.due_at == Some(queued_at)
    {
        stop_with_note(
            tx,
            now,
            &run,
            format!("escalation stopped: paging failed ({error})"),
        )?;
    }
    Ok(())
}

/// Removes one queue entry (when even stopping its run failed).
pub(crate) fn drop_queue_entry(
    tx: &WriteTransaction,
    queued_at: DateTime<Utc>,
    incident_id: u64,
) -> AppResult<()> {
    access::delete_raw(
        tx,
        tables::ESCALATIONS_DUE,
        &queue::key(queued_at, incident_id),
    )?;
    Ok(())
}

/// Stops a run that can no longer page, with a note on the incident's timeline.
fn stop_with_note(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    before: &EscalationRun,
    why: String,
) -> AppResult<()> {
    let mut run = before.clone();
    run.stop();
    save(tx, Some(before), &run)?;
    crate::app::incidents::timeline(
        tx,
        run.incident_id,
        now,
        &Actor::system().reference,
        "escalation_stopped",
        why,
        json!({"policy_id": run.policy_id}),
    )?;
    Ok(())
}

/// Pages the incident's next level for the queue entry `(queued_at, incident_id)` if it is
/// due at `now` (the escalation worker). An entry that no longer matches its run (the run
/// moved on or is gone) is removed, so the queue can never hold the worker on a stale row.
/// Returns whether a level was paged.
pub(crate) fn page_if_due(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    queued_at: DateTime<Utc>,
    incident_id: u64,
) -> AppResult<bool> {
    let run = access::get::<EscalationRun>(tx, incident_id)?;
    let Some(before) = run.filter(|r| r.due_at == Some(queued_at)) else {
        access::delete_raw(
            tx,
            tables::ESCALATIONS_DUE,
            &queue::key(queued_at, incident_id),
        )?;
        return Ok(false);
    };
    if !before.is_due(now) {
        return Ok(false);
    }
    let incident = access::get::<Incident>(tx, incident_id)?;
    let Some(incident) = incident.filter(|i| escalating_policy(i) == Some(before.policy_id)) else {
        // Out of step with its incident (which `sync` prevents): stop quietly.
        let mut run = before.clone();
        run.stop();
        save(tx, Some(&before), &run)?;
        return Ok(false);
    };
    let Some(policy) = access::get::<EscalationPolicy>(tx, before.policy_id)? else {
        stop_with_note(
            tx,
            now,
            &before,
            format!(
                "escalation stopped: policy {} no longer exists",
                before.policy_id
            ),
        )?;
        return Ok(false);
    };
    let mut run = before.clone();
    // On its own the run only pages a level that is still there; a policy that lost the
    // planned level (and has no repeat left) ends the escalation instead.
    let Some(at) = policy.resolve(run.next) else {
        stop_with_note(
            tx,
            now,
            &before,
            format!(
                "escalation ended: policy '{}' has no level {} any more",
                policy.name,
                run.next.step + 1
            ),
        )?;
        return Ok(false);
    };
    page(
        tx,
        now,
        &Actor::system().reference,
        &incident,
        &mut run,
        &policy,
        at,
    )?;
    save(tx, Some(&before), &run)?;
    Ok(true)
}

/// A manual escalation: pages the next level of the incident's policy now (the last one
/// again once there is no further level). A running timer restarts from that level; a
/// stopped one stays stopped. `None` if the incident has no usable policy.
pub(crate) fn escalate_in_tx(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    actor: &ActorRef,
    incident: &Incident,
) -> AppResult<Option<String>> {
    let Some(policy_id) = incident.escalation_policy_id else {
        return Ok(None);
    };
    let Some(policy) = access::get::<EscalationPolicy>(tx, policy_id)? else {
        return Ok(None);
    };
    let before = access::get::<EscalationRun>(tx, incident.id)?;
    let mut run = match &before {
        Some(r) if r.policy_id == policy_id => r.clone(),
        _ => {
            let mut r = EscalationRun::start(incident.id, policy_id, now);
            r.stop();
            r
        }
    };
    let Some(mut at) = run.to_page(&policy) else {
        return Ok(None);
    };
    // Past levels with nobody on them to the first that has somebody, within the round
    // (a running timer does the same through `paged_nobody`).
    let mut summaries = Vec::new();
    loop {
        let (summary, reached) = page(tx, now, actor, incident, &mut run, &policy, at)?;
        summaries.push(summary);
        match policy.after(at) {
            Some(next) if !reached && next.round == at.round => at = next,
            _ => break,
        }
    }
    save(tx, before.as_ref(), &run)?;
    Ok(Some(summaries.join("; then ")))
}

/// Who a policy would page first at `now`: its name and the usernames on level 1 (for
/// `/incident oncall`).
pub fn first_level(
    r: &impl Reader,
    policy_id: u64,
    now: DateTime<Utc>,
) -> Result<Option<(String, Vec<String>)>, StoreError> {
    let Some(policy) = access::get::<EscalationPolicy>(r, policy_id)? else {
        return Ok(None);
    };
    let users = users_of(r, policy.targets_of(Position::START), now)?;
    Ok(Some((
        policy.name,
        users.into_iter().map(|u| u.username).collect(),
    )))
}

/// Where an incident's escalation stands (needs `incident:read`).
pub fn of_incident(app: &App, actor: &Actor, incident_id: u64) -> AppResult<EscalationRun> {
    require(actor, Permission::IncidentRead)?;
    let r = app.store.read()?;
    crate::app::incidents::load(&r, incident_id)?;
    access::get::<EscalationRun>(&r, incident_id)?
        .ok_or_else(|| AppError::not_found("escalation", format!("of incident {incident_id}")))
}
