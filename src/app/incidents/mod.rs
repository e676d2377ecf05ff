//! Incident use cases: open, change, move through the lifecycle, assign, comment.
//!
//! Every change writes, in one transaction: the record, its derived indexes and counters
//! ([`index`]), a timeline entry with the actor, an audit entry, and a domain event for
//! notifications, chat cards and escalation to consume.

pub(crate) mod index;
pub mod merge;
pub mod query;
pub mod snooze;

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::events::{self, Subject};
use super::page::{Page, PageRequest};
use super::{
    App, AppError, AppResult, FieldErrors, nullable, optional_text, require, required_line,
    required_text,
};
use crate::domain::actor::{Actor, ActorRef};
use crate::domain::audit;
use crate::domain::escalation::EscalationPolicy;
use crate::domain::event::EventKind;
use crate::domain::identity::{Group, User};
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::permission::Permission;
use crate::domain::priority::Level;
use crate::domain::service::{DEFAULT_SERVICE_ID, Service};
use crate::domain::timeline::{Comment, TimelineEntry};
use crate::domain::transition::Lifecycle;
use crate::store::access::{self, Order, Reader};
use crate::store::keys::Key;
use crate::store::tables;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 500;
/// Longest description or comment, in characters.
pub const MAX_TEXT: usize = 20_000;

/// An incident as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentView {
    /// The record.
    #[serde(flatten)]
    pub incident: Incident,
    /// `INC-<id>`.
    pub number: String,
}

impl From<Incident> for IncidentView {
    fn from(incident: Incident) -> Self {
        let number = incident.number();
        Self { incident, number }
    }
}

/// A new incident.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// One line.
    pub title: String,
    /// Details.
    #[serde(default)]
    pub description: Option<String>,
    /// `high`, `medium` or `low`, any case.
    pub impact: Level,
    /// `high`, `medium` or `low`, any case.
    pub urgency: Level,
    /// The affected service (default: the Default service).
    #[serde(default)]
    pub service_id: Option<u64>,
    /// The responsible person.
    #[serde(default)]
    pub assignee_id: Option<u64>,
    /// The responsible team.
    #[serde(default)]
    pub group_id: Option<u64>,
    /// Who is paged; default: the service's escalation policy.
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
}

/// Changes to an incident; `null` clears assignee or group. Status changes go through
/// `/transition`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New impact (priority is recomputed).
    pub impact: Option<Level>,
    /// New urgency (priority is recomputed).
    pub urgency: Option<Level>,
    /// Move to another service (an incident always has one: null is refused).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub service_id: Option<Option<u64>>,
    /// New assignee, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub assignee_id: Option<Option<u64>>,
    /// New group, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub group_id: Option<Option<u64>>,
}

/// A lifecycle move.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// The target status.
    pub to: IncidentStatus,
    /// Why; goes on the timeline.
    #[serde(default)]
    pub note: Option<String>,
}

/// A request for more help: pages the next level of the incident's escalation policy.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationRequest {
    /// Why; goes on the timeline.
    #[serde(default)]
    pub note: Option<String>,
}

/// An assignment; absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The person, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub assignee_id: Option<Option<u64>>,
    /// The team, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub group_id: Option<Option<u64>>,
}

/// A new comment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The text.
    pub body: String,
}

/// What opening an incident needs, from any source (REST, chat, alerts).
#[derive(Debug, Clone)]
pub(crate) struct Opening {
    pub title: String,
    pub description: String,
    pub impact: Level,
    pub urgency: Level,
    pub service_id: u64,
    pub assignee_id: Option<u64>,
    pub group_id: Option<u64>,
    pub integration_id: Option<u64>,
    pub escalation_policy_id: Option<u64>,
}

/// Checks that referenced service, user and group exist, and that the user is active
/// (incidents and problems alike: work is not assigned to someone who left).
pub(crate) fn check_refs(
    r: &impl Reader,
    e: &mut FieldErrors,
    service: Option<u64>,
    assignee: Option<u64>,
    group: Option<u64>,
) -> Result<(), crate::store::StoreError> {
    if let Some(s) = service
        && access::get::<Service>(r, s)?.is_none()
    {
        e.add("service_id", format!("no service with id {s}"));
    }
    if let Some(a) = assignee {
        match access::get::<User>(r, a)? {
            None => {
                e.add("assignee_id", format!("no user with id {a}"));
            }
            Some(u) if !u.active => {
                e.add("assignee_id", format!("user {} is deactivated", u.username));
            }
            Some(_) => {}
        }
    }
    if let Some(g) = group
        && access::get::<Group>(r, g)?.is_none()
    {
        e.add("group_id", format!("no group with id {g}"));
    }
    Ok(())
}

/// Appends a timeline entry.
pub(crate) fn timeline(
    tx: &WriteTransaction,
    incident_id: u64,
    at: DateTime<Utc>,
    actor: &ActorRef,
    kind: &str,
    summary: String,
    detail: Value,
) -> Result<u64, crate::store::StoreError> {
    let id = access::next_id(tx, tables::TIMELINE)?;
    let entry = TimelineEntry {
        id,
        incident_id,
        at,
        actor: actor.clone(),
        kind: kind.to_owned(),
        summary,
        detail,
    };
    access::put_json(
        tx,
        tables::TIMELINE,
        &Key::new().u64(incident_id).u64(id).into_bytes(),
        &entry,
    )?;
    Ok(id)
}

/// Writes a changed record and its derived data.
pub(crate) fn save(
    tx: &WriteTransaction,
    before: Option<&Incident>,
    after: &Incident,
) -> Result<(), crate::store::StoreError> {
    access::put(tx, after)?;
    index::apply(tx, before, Some(after))?;
    let was_snoozed = before.and_then(|b| b.snoozed_until);
    if was_snoozed != after.snoozed_until {
        if let Some(at) = was_snoozed {
            access::delete_raw(
                tx,
                tables::SNOOZES_DUE,
                &crate::store::due::key(at, after.id),
            )?;
        }
        if let Some(at) = after.snoozed_until {
            access::put_raw(
                tx,
                tables::SNOOZES_DUE,
                &crate::store::due::key(at, after.id),
                &[],
            )?;
        }
    }
    if let Some(b) = before
        && let Some(reason) = crate::domain::paging::stops_pages(b.status, after.status)
    {
        crate::app::notifications::outbox::cancel_pages(tx, after.id, reason)?;
    }
    crate::app::escalation::runs::sync(tx, before, after)
}

/// Loads an incident for a change, or 404.
pub(crate) fn load(r: &impl Reader, id: u64) -> AppResult<Incident> {
    access::get::<Incident>(r, id)?.ok_or_else(|| AppError::not_found("incident", id))
}

fn refuse_if_final(i: &Incident) -> AppResult<()> {
    if i.status.is_final() {
        Err(AppError::Conflict(format!(
            "{} is {}; it can no longer change",
            i.number(),
            i.status
        )))
    } else {
        Ok(())
    }
}

/// Opens an incident inside `tx`: record, indexes, timeline, audit, `incident.opened`.
pub(crate) fn open_in_tx(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    actor: &ActorRef,
    o: &Opening,
) -> AppResult<Incident> {
    let mut e = FieldErrors::new();
    check_refs(tx, &mut e, Some(o.service_id), o.assignee_id, o.group_id)?;
    e.into_result()?;
    let matrix = super::settings::priority_matrix(tx)?;
    let service_policy =
        access::get::<Service>(tx, o.service_id)?.and_then(|s| s.escalation_policy_id);
    let id = access::next_id(tx, tables::INCIDENTS)?;
    let incident = Incident {
        assignee_id: o.assignee_id,
        group_id: o.group_id,
        integration_id: o.integration_id,
        escalation_policy_id: o.escalation_policy_id.or(service_policy),
        ..Incident::open(crate::domain::incident::Opening {
            id,
            title: o.title.clone(),
            description: o.description.clone(),
            impact: o.impact,
            urgency: o.urgency,
            priority: matrix.priority(o.impact, o.urgency),
            service_id: o.service_id,
            created_by: actor.clone(),
            at: now,
        })
    };
    save(tx, None, &incident)?;
    let summary = format!(
        "{} opened: {} ({})",
        incident.number(),
        incident.title,
        incident.priority
    );
    timeline(
        tx,
        id,
        now,
        actor,
        "created",
        summary.clone(),
        json!({"priority": incident.priority, "impact": incident.impact, "urgency": incident.urgency, "service_id": incident.service_id}),
    )?;
    let shown = serde_json::to_value(IncidentView::from(incident.clone())).unwrap_or_default();
    super::audit::record(
        tx,
        now,
        actor,
        "incident.create",
        ("incident", id),
        summary,
        audit::created(&shown),
    )?;
    events::publish(
        tx,
        now,
        EventKind::IncidentOpened,
        actor,
        Subject::incident(id),
        json!({"number": incident.number(), "title": incident.title, "priority": incident.priority, "service_id": incident.service_id}),
    )?;
    Ok(incident)
}

/// Opens an incident (needs `incident:write`).
pub async fn create(app: &App, actor: &Actor, input: NewIncident) -> AppResult<IncidentView> {
    require(actor, Permission::IncidentWrite)?;
    let mut e = FieldErrors::new();
    let title = required_line(&mut e, "title", &input.title, MAX_TITLE);
    let description = super::optional_text(
        &mut e,
        "description",
        input.description.as_deref(),
        MAX_TEXT,
    )
    .unwrap_or_default();
    e.into_result()?;
    let opening = Opening {
        title,
        description,
        impact: input.impact,
        urgency: input.urgency,
        service_id: input.service_id.unwrap_or(DEFAULT_SERVICE_ID),
        assignee_id: input.assignee_id,
        group_id: input.group_id,
        integration_id: None,
        escalation_policy_id: input.escalation_policy_id,
    };
    let now = app.clock.now();
    let who = actor.reference.clone();
    let incident = app
        .store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            crate::app::escalation::policies::check_ref(
                tx,
                &mut e,
                "escalation_policy_id",
                opening.escalation_policy_id,
            )?;
            e.into_result()?;
            open_in_tx(tx, now, &who, &opening)
        })
        .await?;
    Ok(incident.into())
}

/// One incident (needs `incident:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<IncidentView> {
    require(actor, Permission::IncidentRead)?;
    Ok(load(&app.store.read()?, id)?.into())
}

/// Changes fields of an incident (needs `incident:write`); the priority follows impact and
/// urgency.
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: IncidentPatch,
) -> AppResult<IncidentView> {
    require(actor, Permission::IncidentWrite)?;
    let mut e = FieldErrors::new();
    let title = patch
        .title
        .as_deref()
        .map(|t| required_line(&mut e, "title", t, MAX_TITLE));
    if let Some(d) = &patch.description
        && d.chars().count() > MAX_TEXT
    {
        e.add(
            "description",
            format!("must be at most {MAX_TEXT} characters"),
        );
    }
    if patch.service_id == Some(None) {
        e.add(
            "service_id",
            "an incident always belongs to a service; name another one",
        );
    }
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let incident = app
        .store
        .write(move |tx| {
            let before = load(tx, id)?;
            refuse_if_final(&before)?;
            let mut e = FieldErrors::new();
            check_refs(
                tx,
                &mut e,
                patch.service_id.flatten(),
                patch.assignee_id.flatten(),
                patch.group_id.flatten(),
            )?;
            e.into_result()?;
            let mut i = before.clone();
            if let Some(t) = &title {
                i.title = t.clone();
            }
            if let Some(d) = &patch.description {
                i.description = d.trim().to_owned();
            }
            if let Some(l) = patch.impact {
                i.impact = l;
            }
            if let Some(l) = patch.urgency {
                i.urgency = l;
            }
            if let Some(Some(s)) = patch.service_id
                && s != before.service_id
            {
                // Moved to another team's service: it escalates under that service's
                // policy (restarting if nobody has responded yet), unless it had a policy
                // of its own (an integration's or a routing rule's), as PagerDuty does. A
                // service without a policy does not stop the paging it had.
                let policy_of = |id: u64| -> Result<Option<u64>, AppError> {
                    Ok(access::get::<Service>(tx, id)?.and_then(|s| s.escalation_policy_id))
                };
                let inherited = before.escalation_policy_id.is_none()
                    || before.escalation_policy_id == policy_of(before.service_id)?;
                if inherited && let Some(p) = policy_of(s)? {
                    i.escalation_policy_id = Some(p);
                }
                i.service_id = s;
            }
            if let Some(a) = patch.assignee_id {
                i.assignee_id = a;
            }
            if let Some(g) = patch.group_id {
                i.group_id = g;
            }
            if i.impact != before.impact || i.urgency != before.urgency {
                i.priority = super::settings::priority_matrix(tx)?.priority(i.impact, i.urgency);
            }
            let changes = audit::diff_records(&before, &i);
            if changes.as_object().is_none_or(|c| c.is_empty()) {
                return Ok::<_, AppError>(before);
            }
            i.updated_at = now;
            save(tx, Some(&before), &i)?;
            let fields: Vec<&String> = changes
                .as_object()
                .map(|c| c.keys().collect())
                .unwrap_or_default();
            let summary = format!(
                "changed {}",
                fields
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            timeline(
                tx,
                id,
                now,
                &who,
                "updated",
                summary.clone(),
                changes.clone(),
            )?;
            super::audit::record(
                tx,
                now,
                &who,
                "incident.update",
                ("incident", id),
                format!("{}: {summary}", i.number()),
                changes.clone(),
            )?;
            let assignment_changed =
                i.assignee_id != before.assignee_id || i.group_id != before.group_id;
            let kind = if assignment_changed {
                EventKind::IncidentAssigned
            } else {
                EventKind::IncidentUpdated
            };
            let seq = events::publish(
                tx,
                now,
                kind,
                &who,
                Subject::incident(id),
                json!({"changes": changes, "assignee_id": i.assignee_id, "group_id": i.group_id}),
            )?;
            if i.assignee_id != before.assignee_id
                && let Some(from) = before.assignee_id
            {
                crate::app::notifications::outbox::cancel_assignment_pages(tx, id, from)?;
            }
            if i.status.is_open()
                && i.assignee_id != before.assignee_id
                && let Some(to) = i.assignee_id
                && let Some(event) = access::get::<crate::domain::event::DomainEvent>(tx, seq)?
            {
                crate::app::notifications::plan::notify_assignee(
                    tx,
                    &event,
                    to,
                    i.acknowledged_at.is_some(),
                )?;
            }
            Ok(i)
        })
        .await?;
    Ok(incident.into())
}

/// Moves an incident inside `tx`, checking the lifecycle and `incident:close` for closing
/// and cancelling.
pub(crate) fn transition_in_tx(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    actor: &Actor,
    id: u64,
    to: IncidentStatus,
    note: Option<&str>,
) -> AppResult<Incident> {
    if to.needs_close_permission() {
        require(actor, Permission::IncidentClose)?;
    }
    let before = load(tx, id)?;
    if let Some(target) = before.merged_into
        && !before.status.is_open()
        && to != IncidentStatus::Closed
    {
        return Err(AppError::Conflict(format!(
            "{} was merged into INC-{target}: work there (it can only be closed)",
            before.number()
        )));
    }
    let mut i = before.clone();
    i.apply_transition(to, now)?;
    save(tx, Some(&before), &i)?;
    let from = before.status;
    let who = &actor.reference;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    let summary = match note {
        Some(n) => format!("{from} → {to}: {n}"),
        None => format!("{from} → {to}"),
    };
    let detail = json!({"from": from, "to": to, "note": note});
    timeline(
        tx,
        id,
        now,
        who,
        "status_changed",
        summary.clone(),
        detail.clone(),
    )?;
    super::audit::record(
        tx,
        now,
        who,
        "incident.transition",
        ("incident", id),
        format!("{}: {summary}", i.number()),
        json!({"status": {"from": from, "to": to}}),
    )?;
    let kind = match to {
        IncidentStatus::Acknowledged => EventKind::IncidentAcknowledged,
        IncidentStatus::Resolved => EventKind::IncidentResolved,
        IncidentStatus::Closed | IncidentStatus::Cancelled => EventKind::IncidentClosed,
        _ if from == IncidentStatus::Resolved => EventKind::IncidentReopened,
        _ => EventKind::IncidentStatusChanged,
    };
    events::publish(tx, now, kind, who, Subject::incident(id), detail)?;
    Ok(i)
}

/// Moves an incident through its lifecycle (needs `incident:write`, and `incident:close` to
/// close or cancel). A move the lifecycle does not allow is 409 naming both states.
pub async fn transition(
    app: &App,
    actor: &Actor,
    id: u64,
    request: TransitionRequest,
) -> AppResult<IncidentView> {
    move_to(app, actor, id, request.to, request.note, Reopen::Allowed).await
}

/// Whether a move may reopen a resolved incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopen {
    /// Someone named the incident and asked (a typed command, the API): the lifecycle
    /// allows it.
    Allowed,
    /// A button or key press on a message from before the resolve (a stale card, a page):
    /// refused with a 409 that says so, decided in the same transaction as the change.
    Refused,
}

/// Acknowledges an incident: what a REST client, a chat button, a phone key press and a
/// PagerDuty `acknowledge` all mean by it.
pub async fn acknowledge(
    app: &App,
    actor: &Actor,
    id: u64,
    note: Option<String>,
    reopen: Reopen,
) -> AppResult<IncidentView> {
    move_to(app, actor, id, IncidentStatus::Acknowledged, note, reopen).await
}

/// [`transition`] and [`acknowledge`]: the checks, then one write transaction.
async fn move_to(
    app: &App,
    actor: &Actor,
    id: u64,
    to: IncidentStatus,
    note: Option<String>,
    reopen: Reopen,
) -> AppResult<IncidentView> {
    require(actor, Permission::IncidentWrite)?;
    if to.needs_close_permission() {
        require(actor, Permission::IncidentClose)?;
    }
    if let Some(n) = &note
        && n.chars().count() > MAX_TEXT
    {
        return Err(FieldErrors::single(
            "note",
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    let now = app.clock.now();
    let actor = actor.clone();
    let incident = app
        .store
        .write(move |tx| {
            if reopen == Reopen::Refused {
                let i = load(tx, id)?;
                if i.status == IncidentStatus::Resolved {
                    return Err(AppError::Conflict(format!(
                        "{} is already resolved; nothing changed (to reopen it, type /incident ack {})",
                        i.number(),
                        i.number()
                    )));
                }
            }
            transition_in_tx(tx, now, &actor, id, to, note.as_deref())
        })
        .await?;
    Ok(incident.into())
}

/// Resolves an incident.
pub async fn resolve(
    app: &App,
    actor: &Actor,
    id: u64,
    note: Option<String>,
) -> AppResult<IncidentView> {
    transition(
        app,
        actor,
        id,
        TransitionRequest {
            to: IncidentStatus::Resolved,
            note,
        },
    )
    .await
}

/// Assigns an incident to the acting user ("take it"); an actor that is no user cannot.
pub async fn take(app: &App, actor: &Actor, id: u64) -> AppResult<IncidentView> {
    let me = actor
        .user_id
        .ok_or_else(|| AppError::Refused("only a user can take an incident".into()))?;
    assign(
        app,
        actor,
        id,
        Assignment {
            assignee_id: Some(Some(me)),
            group_id: None,
        },
    )
    .await
}

/// Assigns an incident to a person and/or a team (needs `incident:write`).
pub async fn assign(
    app: &App,
    actor: &Actor,
    id: u64,
    assignment: Assignment,
) -> AppResult<IncidentView> {
    if assignment.assignee_id.is_none() && assignment.group_id.is_none() {
        return Err(FieldErrors::single(
            "assignee_id",
            "give assignee_id and/or group_id",
        ));
    }
    let patch = IncidentPatch {
        assignee_id: assignment.assignee_id,
        group_id: assignment.group_id,
        ..Default::default()
    };
    update(app, actor, id, patch).await
}

/// Comments on an incident (needs `incident:write`).
pub async fn comment(app: &App, actor: &Actor, id: u64, input: NewComment) -> AppResult<Comment> {
    require(actor, Permission::IncidentWrite)?;
    let mut e = FieldErrors::new();
    let body = required_text(&mut e, "body", &input.body, MAX_TEXT);
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    app.store
        .write(move |tx| {
            let mut i = load(tx, id)?;
            let comment_id = access::next_id(tx, tables::COMMENTS)?;
            let comment = Comment {
                id: comment_id,
                incident_id: id,
                author: who.clone(),
                body: body.clone(),
                at: now,
            };
            access::put_json(
                tx,
                tables::COMMENTS,
                &Key::new().u64(id).u64(comment_id).into_bytes(),
                &comment,
            )?;
            let before = i.clone();
            i.updated_at = now;
            save(tx, Some(&before), &i)?;
            let excerpt: String = body.chars().take(200).collect();
            timeline(
                tx,
                id,
                now,
                &who,
                "commented",
                excerpt,
                json!({"comment_id": comment_id, "body": body}),
            )?;
            super::audit::record(
                tx,
                now,
                &who,
                "incident.comment",
                ("incident", id),
                format!("commented on {}", i.number()),
                json!({"comment": {"from": null, "to": comment_id}}),
            )?;
            events::publish(
                tx,
                now,
                EventKind::IncidentCommented,
                &who,
                Subject::incident(id),
                json!({"comment_id": comment_id, "body": body}),
            )?;
            Ok(comment)
        })
        .await
}

fn child_page<T: serde::de::DeserializeOwned>(
    r: &impl Reader,
    table: tables::Table,
    incident_id: u64,
    page: PageRequest,
    id_of: impl Fn(&T) -> u64,
) -> AppResult<Page<T>> {
    let prefix = Key::new().u64(incident_id).into_bytes();
    let after = page
        .after
        .map(|a| Key::new().u64(incident_id).u64(a).into_bytes());
    let mut items = Vec::new();
    access::scan_prefix(
        r,
        table,
        &prefix,
        after.as_deref(),
        Order::Asc,
        &mut |_, v| {
            items.push(access::decode::<T>(table, v)?);
            Ok(if items.len() > page.limit {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            })
        },
    )?;
    Ok(Page::from_overfetch(items, page.limit, id_of))
}

/// The comments of an incident, oldest first (needs `incident:read`).
pub fn comments(app: &App, actor: &Actor, id: u64, page: PageRequest) -> AppResult<Page<Comment>> {
    require(actor, Permission::IncidentRead)?;
    let r = app.store.read()?;
    load(&r, id)?;
    child_page(&r, tables::COMMENTS, id, page, |c: &Comment| c.id)
}

/// The timeline of an incident, oldest first (needs `incident:read`).
pub fn timeline_of(
    app: &App,
    actor: &Actor,
    id: u64,
    page: PageRequest,
) -> AppResult<Page<TimelineEntry>> {
    require(actor, Permission::IncidentRead)?;
    let r = app.store.read()?;
    load(&r, id)?;
    child_page(&r, tables::TIMELINE, id, page, |t: &TimelineEntry| t.id)
}

/// Asks for more help on an open incident (needs `incident:write`): records it on the
/// timeline and publishes `incident.escalated`, which notification rules (and escalation
/// policies) act on.
pub async fn escalate(
    app: &App,
    actor: &Actor,
    id: u64,
    note: Option<String>,
) -> AppResult<IncidentView> {
    require(actor, Permission::IncidentWrite)?;
    let mut e = FieldErrors::new();
    let note = optional_text(&mut e, "note", note.as_deref(), MAX_TEXT);
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let incident = app
        .store
        .write(move |tx| {
            let before = load(tx, id)?;
            if !before.status.is_open() {
                return Err(AppError::Conflict(format!(
                    "{} is {}; only open incidents can be escalated",
                    before.number(),
                    before.status
                )));
            }
            let mut i = before.clone();
            i.updated_at = now;
            save(tx, Some(&before), &i)?;
            // Without a policy only notification rules on `incident.escalated` act: the
            // timeline says so, rather than suggest that somebody was paged.
            let unpaged = match i.escalation_policy_id {
                None => " (no escalation policy: nobody is paged by escalation)".to_owned(),
                Some(policy) => match access::get::<EscalationPolicy>(tx, policy)? {
                    Some(_) => String::new(),
                    None => format!(
                        " (its escalation policy {policy} no longer exists: nobody is paged by escalation)"
                    ),
                },
            };
            let summary = match &note {
                Some(n) => format!("escalated by {}: {n}{unpaged}", who.name),
                None => format!("escalated by {}{unpaged}", who.name),
            };
            timeline(
                tx,
                id,
                now,
                &who,
                "escalated",
                summary.clone(),
                json!({"note": note}),
            )?;
            super::audit::record(
                tx,
                now,
                &who,
                "incident.escalate",
                ("incident", id),
                format!("{}: {summary}", i.number()),
                json!({}),
            )?;
            events::publish(
                tx,
                now,
                EventKind::IncidentEscalated,
                &who,
                Subject::incident(id),
                json!({"note": note}),
            )?;
            crate::app::escalation::runs::escalate_in_tx(tx, now, &who, &i)?;
            Ok(i)
        })
        .await?;
    Ok(incident.into())
}
