//! Approval workflows and requests: configure the levels, ask for an approval, decide,
//! withdraw. The rules are `domain::approval`'s; this module stores the outcome, keeps the
//! pending count for the dashboard, tells the next level's approvers (and, at the end,
//! the requester) through their contact methods, and notes it on a linked incident.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::events::{self, Subject};
use super::page::{Page, PageRequest, Take, walk};
use super::{App, AppError, AppResult, FieldErrors, catalog, require, required_line};
use crate::domain::actor::Actor;
use crate::domain::approval::{
    self, ApprovalLevel, ApprovalRequest, ApprovalStatus, ApprovalWorkflow, Approver,
    DecisionError, Outcome, Standing, Verdict,
};
use crate::domain::audit;
use crate::domain::event::{DomainEvent, EventKind};
use crate::domain::identity::{Group, User};
use crate::domain::incident::Incident;
use crate::domain::permission::Permission;
use crate::domain::problem::Problem;
use crate::store::access::{self, Reader};
use crate::store::keys::Key;
use crate::store::{StoreError, tables};

/// Counter of pending requests (the dashboard's "pending approvals").
pub const PENDING_COUNTER: &str = "apr/pending";

/// A new workflow.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkflow {
    /// Unique name (case-insensitive).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The levels, passed in order.
    pub levels: Vec<ApprovalLevel>,
    /// Minutes a request may wait for its decisions before it expires (1 to 43200; absent
    /// or null: never).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 43200)]
    pub expires_after_minutes: Option<u32>,
}

/// Changes to a workflow; pending requests keep the levels and deadline they were made
/// with.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New levels.
    pub levels: Option<Vec<ApprovalLevel>>,
    /// New expiry in minutes, or null for never.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 43200)]
    pub expires_after_minutes: Option<Option<u32>>,
}

/// A request for approval.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApproval {
    /// The workflow to follow.
    pub workflow_id: u64,
    /// What is to be approved.
    pub title: String,
    /// Details.
    #[serde(default)]
    pub description: String,
    /// The incident it is about: `42`, `"INC-42"` or `"#42"`.
    #[serde(default, deserialize_with = "crate::domain::reference::incident_opt")]
    #[schema(value_type = Option<u64>)]
    pub incident_id: Option<u64>,
    /// The problem it is about: `7`, `"PRB-7"` or `"#7"`.
    #[serde(default, deserialize_with = "crate::domain::reference::problem_opt")]
    #[schema(value_type = Option<u64>)]
    pub problem_id: Option<u64>,
}

/// A decision.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approve` or `reject`.
    pub decision: Verdict,
    /// Why.
    #[serde(default)]
    pub comment: Option<String>,
}

/// `?status=` of the request list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApprovalParams {
    /// Comma-separated, any case: `pending`, `approved`, `rejected`, `cancelled`,
    /// `expired`.
    pub status: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

fn index_key(status: ApprovalStatus, id: u64) -> Vec<u8> {
    Key::new().u8(status.code()).u64(id).into_bytes()
}

/// Writes a request, its status index entry and the pending counter.
fn save(
    tx: &redb::WriteTransaction,
    before: Option<&ApprovalRequest>,
    after: &ApprovalRequest,
) -> Result<(), StoreError> {
    if let Some(b) = before {
        access::delete_raw(tx, tables::APPROVAL_INDEX, &index_key(b.status, b.id))?;
        if b.status == ApprovalStatus::Pending {
            access::add_counter(tx, PENDING_COUNTER, -1)?;
        }
    }
    access::put(tx, after)?;
    access::put_raw(
        tx,
        tables::APPROVAL_INDEX,
        &index_key(after.status, after.id),
        &[],
    )?;
    if after.status == ApprovalStatus::Pending {
        access::add_counter(tx, PENDING_COUNTER, 1)?;
    }
    Ok(())
}

fn load(r: &impl Reader, id: u64) -> AppResult<ApprovalRequest> {
    access::get::<ApprovalRequest>(r, id)?
        .ok_or_else(|| AppError::not_found("approval", format!("APR-{id}")))
}

/// The active users a level's approvers name, each once.
fn approver_ids(r: &impl Reader, level: &ApprovalLevel) -> Result<Vec<u64>, StoreError> {
    use super::users::PersonRef;
    let refs = level.approvers.iter().map(|a| match *a {
        Approver::User { id } => PersonRef::User(id),
        Approver::Group { id } => PersonRef::Group(id),
    });
    Ok(super::users::active_people(r, refs)?
        .into_iter()
        .map(|u| u.id)
        .collect())
}

fn check_workflow(
    r: &impl Reader,
    e: &mut FieldErrors,
    levels: &[ApprovalLevel],
) -> Result<(), StoreError> {
    for (field, reason) in approval::check_levels(levels) {
        e.add(field, reason);
    }
    for (i, l) in levels.iter().enumerate() {
        for (j, a) in l.approvers.iter().enumerate() {
            let field = format!("levels[{i}].approvers[{j}]");
            match *a {
                Approver::User { id } => {
                    if access::get::<User>(r, id)?.is_none() {
                        e.add(field, format!("no user with id {id}"));
                    }
                }
                Approver::Group { id } => {
                    if access::get::<Group>(r, id)?.is_none() {
                        e.add(field, format!("no group with id {id}"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Publishes `kind` about `r` and sends it to `users`; notes it on a linked incident.
fn announce(
    tx: &redb::WriteTransaction,
    r: &ApprovalRequest,
    kind: EventKind,
    actor: &crate::domain::actor::ActorRef,
    users: &[u64],
    summary: String,
) -> AppResult<()> {
    let level_name = r
        .current_level()
        .map(|l| l.name.clone())
        .unwrap_or_default();
    let seq = events::publish(
        tx,
        r.updated_at,
        kind,
        actor,
        Subject {
            incident_id: r.incident_id,
            problem_id: r.problem_id,
        },
        json!({"approval_id": r.id, "number": r.number(), "title": r.title, "status": r.status.as_str(),
               "level": r.level + 1, "level_name": level_name, "workflow": r.workflow_name, "summary": summary,
               "expires_at": r.expires_at}),
    )?;
    if !users.is_empty()
        && let Some(event) = access::get::<DomainEvent>(tx, seq)?
    {
        super::notifications::plan::notify_users(tx, &event, users)?;
    }
    if let Some(incident) = r.incident_id {
        super::incidents::timeline(
            tx,
            incident,
            r.updated_at,
            actor,
            "approval",
            summary,
            json!({"approval_id": r.id, "status": r.status.as_str(), "level": r.level + 1}),
        )?;
    }
    Ok(())
}

/// Adds the 422 reason of a bad `expires_after_minutes`, if it is bad.
fn check_expiry(e: &mut FieldErrors, minutes: Option<u32>) {
    if let Some(reason) = approval::check_expiry(minutes) {
        e.add("expires_after_minutes", reason);
    }
}

/// Adds a 422 reason if `value` is longer than `max` characters.
fn check_length(e: &mut FieldErrors, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        e.add(field, format!("must be at most {max} characters"));
    }
}

/// Whether enough people other than the requester can decide at every level; a 422 on
/// `workflow_id` naming the first level that could never pass (the request would
/// otherwise wait forever).
fn check_decidable(
    r: &impl Reader,
    workflow: &ApprovalWorkflow,
    requester: Option<u64>,
) -> AppResult<()> {
    for (i, l) in workflow.levels.iter().enumerate() {
        let able = approver_ids(r, l)?
            .into_iter()
            .filter(|u| Some(*u) != requester)
            .count();
        if (able as u64) < u64::from(l.required.max(1)) {
            return Err(FieldErrors::single(
                "workflow_id",
                format!(
                    "level {} ('{}') needs {} approval(s) but only {able} active approver(s) other than you can give them",
                    i + 1,
                    l.name,
                    l.required.max(1)
                ),
            ));
        }
    }
    Ok(())
}

/// Creates a workflow (needs `approval:write`).
pub async fn create_workflow(
    app: &App,
    actor: &Actor,
    input: NewWorkflow,
) -> AppResult<ApprovalWorkflow> {
    let change = catalog::change::<ApprovalWorkflow>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::new_name::<ApprovalWorkflow>(&mut e, &input.name);
    check_length(&mut e, "description", &input.description, 2000);
    check_expiry(&mut e, input.expires_after_minutes);
    e.into_result()?;
    app.store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            check_workflow(tx, &mut e, &input.levels)?;
            e.into_result()?;
            catalog::create(tx, &change, |id| ApprovalWorkflow {
                id,
                name: name.clone(),
                description: input.description.trim().to_owned(),
                levels: input.levels.clone(),
                expires_after_minutes: input.expires_after_minutes,
                created_at: change.at,
                updated_at: change.at,
            })
        })
        .await
}

/// One workflow (needs `approval:read`).
pub fn get_workflow(app: &App, actor: &Actor, id: u64) -> AppResult<ApprovalWorkflow> {
    catalog::get(app, actor, id)
}

/// Workflows in id order (needs `approval:read`).
pub fn list_workflows(
    app: &App,
    actor: &Actor,
    page: PageRequest,
) -> AppResult<Page<ApprovalWorkflow>> {
    catalog::list(app, actor, page)
}

/// Changes a workflow (needs `approval:write`).
pub async fn update_workflow(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: WorkflowPatch,
) -> AppResult<ApprovalWorkflow> {
    let change = catalog::change::<ApprovalWorkflow>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::patched_name::<ApprovalWorkflow>(&mut e, patch.name.as_deref());
    if let Some(d) = &patch.description {
        check_length(&mut e, "description", d, 2000);
    }
    if let Some(minutes) = patch.expires_after_minutes {
        check_expiry(&mut e, minutes);
    }
    e.into_result()?;
    app.store
        .write(move |tx| {
            let before: ApprovalWorkflow = catalog::load(tx, id)?;
            let mut w = before.clone();
            if let Some(levels) = &patch.levels {
                w.levels = levels.clone();
            }
            if let Some(d) = &patch.description {
                w.description = d.trim().to_owned();
            }
            if let Some(minutes) = patch.expires_after_minutes {
                w.expires_after_minutes = minutes;
            }
            let mut e = FieldErrors::new();
            check_workflow(tx, &mut e, &w.levels)?;
            e.into_result()?;
            if let Some(name) = &name {
                w.name = name.clone();
            }
            catalog::save(tx, &change, &before, w)
        })
        .await
}

/// Deletes a workflow (needs `approval:write`); its requests keep their copy of the levels.
pub async fn delete_workflow(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    let change = catalog::change::<ApprovalWorkflow>(app, actor)?;
    app.store
        .write(move |tx| {
            let w: ApprovalWorkflow = catalog::load(tx, id)?;
            catalog::delete(tx, &change, &w)
        })
        .await
}

/// Asks for an approval (needs `approval:write`); level 1's approvers are told.
pub async fn request(app: &App, actor: &Actor, input: NewApproval) -> AppResult<ApprovalRequest> {
    require(actor, Permission::ApprovalWrite)?;
    let mut e = FieldErrors::new();
    let title = required_line(&mut e, "title", &input.title, 200);
    check_length(&mut e, "description", &input.description, 4000);
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let requester_id = actor.user_id;
    app.store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            let workflow = access::get::<ApprovalWorkflow>(tx, input.workflow_id)?;
            if workflow.is_none() {
                e.add(
                    "workflow_id",
                    format!("no approval workflow with id {}", input.workflow_id),
                );
            }
            if let Some(i) = input.incident_id
                && access::get::<Incident>(tx, i)?.is_none()
            {
                e.add("incident_id", format!("no incident with id {i}"));
            }
            if let Some(p) = input.problem_id
                && access::get::<Problem>(tx, p)?.is_none()
            {
                e.add("problem_id", format!("no problem with id {p}"));
            }
            e.into_result()?;
            let workflow = workflow.ok_or_else(|| AppError::Internal("checked above".into()))?;
            check_decidable(tx, &workflow, requester_id)?;
            let id = access::next_id(tx, tables::APPROVALS)?;
            let r = ApprovalRequest {
                id,
                workflow_id: workflow.id,
                workflow_name: workflow.name.clone(),
                title: title.clone(),
                description: input.description.trim().to_owned(),
                incident_id: input.incident_id,
                problem_id: input.problem_id,
                requested_by: who.clone(),
                requester_id,
                status: ApprovalStatus::Pending,
                level: 0,
                levels: workflow.levels.clone(),
                decisions: vec![],
                created_at: now,
                updated_at: now,
                decided_at: None,
                expires_at: workflow.expiry_of(now),
            };
            save(tx, None, &r)?;
            let first = r.current_level().cloned();
            let users: Vec<u64> = match &first {
                Some(l) => approver_ids(tx, l)?
                    .into_iter()
                    .filter(|u| Some(*u) != requester_id)
                    .collect(),
                None => vec![],
            };
            let summary = format!(
                "{} requested by {}: {} (level 1, '{}'){}",
                r.number(),
                who.name,
                r.title,
                first.map(|l| l.name).unwrap_or_default(),
                decide_by(&r)
            );
            announce(
                tx,
                &r,
                EventKind::ApprovalRequested,
                &who,
                &users,
                summary.clone(),
            )?;
            super::audit::record(
                tx,
                now,
                &who,
                "approval.request",
                ("approval", id),
                summary,
                audit::created_record(&r),
            )?;
            Ok(r)
        })
        .await
}

/// One request (needs `approval:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<ApprovalRequest> {
    require(actor, Permission::ApprovalRead)?;
    load(&app.store.read()?, id)
}

/// Requests, newest first, optionally by status (needs `approval:read`).
pub fn list(
    app: &App,
    actor: &Actor,
    status: Option<&str>,
    page: PageRequest,
) -> AppResult<Page<ApprovalRequest>> {
    require(actor, Permission::ApprovalRead)?;
    // Comma-separated, any case, as the other lists take their statuses.
    let mut statuses = BTreeSet::new();
    for word in status.unwrap_or_default().split(',').map(str::trim) {
        if word.is_empty() {
            continue;
        }
        statuses.insert(
            ApprovalStatus::parse(&word.to_ascii_lowercase()).ok_or_else(|| {
                FieldErrors::single(
                    "status",
                    format!(
                        "'{word}' is not one of pending, approved, rejected, cancelled, expired"
                    ),
                )
            })?,
        );
    }
    let r = app.store.read()?;
    // Every request has exactly one index entry: one status walks its part of the index;
    // several, or none, walk the records.
    let page = match statuses.iter().collect::<Vec<_>>().as_slice() {
        [one] => {
            let prefix = Key::new().u8(one.code()).into_bytes();
            walk::<ApprovalRecord>(&r, Some((tables::APPROVAL_INDEX, &prefix)), page, |_| {
                Take::Yes
            })?
        }
        [] => walk::<ApprovalRecord>(&r, None, page, |_| Take::Yes)?,
        _ => walk::<ApprovalRecord>(&r, None, page, |a| {
            if statuses.contains(&a.0.status) {
                Take::Yes
            } else {
                Take::No
            }
        })?,
    };
    Ok(page.map(|a| a.0))
}

/// A request as a store record, for the generic list walk.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct ApprovalRecord(ApprovalRequest);

impl crate::store::access::Record for ApprovalRecord {
    const TABLE: crate::store::tables::Table = tables::APPROVALS;
    fn id(&self) -> u64 {
        self.0.id
    }
}

/// Where `user_id` stands among `r`'s approvers, groups resolved to their active members.
fn standing(r: &impl Reader, req: &ApprovalRequest, user_id: u64) -> AppResult<Standing> {
    let (current, earlier) = match req.levels.split_at_checked(req.level as usize) {
        Some((earlier, [current, ..])) => (current, earlier),
        _ => return Ok(Standing::Outsider),
    };
    if approver_ids(r, current)?.contains(&user_id) {
        return Ok(Standing::Approver);
    }
    for l in earlier {
        if approver_ids(r, l)?.contains(&user_id) {
            return Ok(Standing::EarlierApprover);
        }
    }
    Ok(Standing::Outsider)
}

fn refusal(e: DecisionError) -> AppError {
    match e {
        DecisionError::NotPending(..)
        | DecisionError::AlreadyDecided(..)
        | DecisionError::NoLevel(..)
        | DecisionError::Overdue(..)
        | DecisionError::NotDue(..)
        | DecisionError::LevelPassed { .. } => AppError::Conflict(e.to_string()),
        DecisionError::OwnRequest | DecisionError::NotAnApprover { .. } => {
            AppError::Refused(e.to_string())
        }
    }
}

/// Approves or rejects at the request's current level (needs `approval:decide`, and to be
/// one of the level's approvers, and not the requester).
pub async fn decide(
    app: &App,
    actor: &Actor,
    id: u64,
    input: DecisionRequest,
) -> AppResult<ApprovalRequest> {
    require(actor, Permission::ApprovalDecide)?;
    let Some(user_id) = actor.user_id else {
        return Err(AppError::Refused(
            "only a person can decide on an approval (link your chat account to a user)".into(),
        ));
    };
    let mut e = FieldErrors::new();
    let comment = super::optional_text(&mut e, "comment", input.comment.as_deref(), 2000);
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    app.store
        .write(move |tx| {
            let before = load(tx, id)?;
            let mut r = before.clone();
            let standing = standing(tx, &r, user_id)?;
            let outcome = r
                .decide(user_id, &who.name, standing, input.decision, comment.clone(), now)
                .map_err(refusal)?;
            save(tx, Some(&before), &r)?;
            let verb = match input.decision {
                Verdict::Approve => "approved",
                Verdict::Reject => "rejected",
            };
            let said = comment
                .as_deref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            let passed = before.current_level().map(|l| l.name.clone()).unwrap_or_default();
            let requester: Vec<u64> = r.requester_id.into_iter().collect();
            let summary = match outcome {
                Outcome::Counted {
                    approvals,
                    required,
                } => {
                    let summary = format!(
                        "{} {verb} by {} at level {} ('{passed}'), {approvals} of {required}{said}",
                        r.number(),
                        who.name,
                        before.level + 1
                    );
                    if let Some(incident) = r.incident_id {
                        super::incidents::timeline(
                            tx,
                            incident,
                            now,
                            &who,
                            "approval",
                            summary.clone(),
                            json!({"approval_id": r.id, "status": r.status.as_str(), "level": r.level + 1}),
                        )?;
                    }
                    summary
                }
                Outcome::NextLevel(next) => {
                    let level = r.current_level().cloned();
                    let users: Vec<u64> = match &level {
                        Some(l) => approver_ids(tx, l)?
                            .into_iter()
                            .filter(|u| Some(*u) != r.requester_id)
                            .collect(),
                        None => vec![],
                    };
                    let summary = format!(
                        "{} passed level {} ('{passed}') with {}'s approval{said}; level {} ('{}') decides next{}",
                        r.number(),
                        before.level + 1,
                        who.name,
                        next + 1,
                        level.map(|l| l.name).unwrap_or_default(),
                        decide_by(&r)
                    );
                    announce(tx, &r, EventKind::ApprovalRequested, &who, &users, summary.clone())?;
                    summary
                }
                Outcome::Approved => {
                    let summary = format!(
                        "{} approved: {} gave the last approval{said}",
                        r.number(),
                        who.name
                    );
                    announce(tx, &r, EventKind::ApprovalApproved, &who, &requester, summary.clone())?;
                    summary
                }
                Outcome::Rejected => {
                    let summary = format!("{} rejected by {}{said}", r.number(), who.name);
                    announce(tx, &r, EventKind::ApprovalRejected, &who, &requester, summary.clone())?;
                    summary
                }
            };
            super::audit::record(
                tx,
                now,
                &who,
                "approval.decide",
                ("approval", id),
                summary,
                json!({"decision": verb, "level": before.level + 1, "status": r.status.as_str(), "comment": comment}),
            )?;
            Ok(r)
        })
        .await
}

/// Withdraws a pending request (needs `approval:write`): the requester, or anybody who
/// may decide approvals (so that a request whose requester left can still be closed).
pub async fn cancel(app: &App, actor: &Actor, id: u64) -> AppResult<ApprovalRequest> {
    require(actor, Permission::ApprovalWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let user_id = actor.user_id;
    let may_decide = actor.can(Permission::ApprovalDecide);
    app.store
        .write(move |tx| {
            let before = load(tx, id)?;
            let own = user_id.is_some() && before.requester_id == user_id;
            if !own && !may_decide {
                return Err(AppError::Refused(format!(
                    "only the requester, or someone who may decide approvals (approval:decide), may withdraw {}",
                    before.number()
                )));
            }
            let mut r = before.clone();
            r.cancel(now).map_err(refusal)?;
            save(tx, Some(&before), &r)?;
            let summary = format!("{} withdrawn by {}", r.number(), who.name);
            announce(
                tx,
                &r,
                EventKind::ApprovalCancelled,
                &who,
                &[],
                summary.clone(),
            )?;
            super::audit::record(
                tx,
                now,
                &who,
                "approval.cancel",
                ("approval", id),
                summary,
                json!({"status": {"from": "pending", "to": "cancelled"}}),
            )?;
            Ok(r)
        })
        .await
}

/// ", to be decided by <deadline>", or nothing without one.
fn decide_by(r: &ApprovalRequest) -> String {
    r.expires_at
        .map(|t| format!(", to be decided by {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
        .unwrap_or_default()
}

/// The pending requests whose current or a later level names `approver` (each keeps
/// its own copy of its workflow's levels), for the guard against deleting the last
/// person who could decide them.
pub(crate) fn pending_asking(
    r: &impl Reader,
    approver: &Approver,
) -> Result<Option<ApprovalRequest>, StoreError> {
    for id in pending_ids(r)? {
        if let Some(ApprovalRecord(req)) = access::get::<ApprovalRecord>(r, id)?
            && req
                .levels
                .iter()
                .skip(req.level as usize)
                .any(|l| l.approvers.contains(approver))
        {
            return Ok(Some(req));
        }
    }
    Ok(None)
}

/// The ids of the pending requests, oldest first.
fn pending_ids(r: &impl Reader) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    access::scan_prefix(
        r,
        tables::APPROVAL_INDEX,
        &Key::new().u8(ApprovalStatus::Pending.code()).into_bytes(),
        None,
        access::Order::Asc,
        &mut |k, _| {
            if let Some(id) = k.get(1..).and_then(crate::store::keys::id_from_key) {
                ids.push(id);
            }
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    Ok(ids)
}

/// Expires every pending request past its deadline (the approval checker calls this):
/// each in its own transaction, told to its requester, noted on a linked incident and in
/// the audit log. Returns how many expired.
pub async fn expire_due(app: &App) -> AppResult<usize> {
    let now = app.clock.now();
    let r = app.store.read()?;
    let mut due = Vec::new();
    for id in pending_ids(&r)? {
        // One unreadable request must not stop the others from expiring.
        match load(&r, id) {
            Ok(a) if a.is_overdue(now) => due.push(id),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(approval = id, error = %e, "cannot read a pending approval request")
            }
        }
    }
    drop(r);
    let mut expired = 0;
    for id in due {
        let done: AppResult<bool> = app
            .store
            .write(move |tx| {
                let before = load(tx, id)?;
                if !before.is_overdue(now) {
                    // Decided or withdrawn since it was read.
                    return Ok(false);
                }
                let mut r = before.clone();
                r.expire(now).map_err(refusal)?;
                save(tx, Some(&before), &r)?;
                let system = Actor::system().reference;
                let summary = format!(
                    "{} expired at level {} ('{}'): not decided within {}",
                    r.number(),
                    r.level + 1,
                    r.current_level()
                        .map(|l| l.name.as_str())
                        .unwrap_or_default(),
                    approval::wait_in_words(before.expires_at.unwrap_or(now) - before.created_at),
                );
                // The requester, and the approvers who were asked (their request with
                // its buttons is stale now).
                let mut told: Vec<u64> = r.requester_id.into_iter().collect();
                if let Some(level) = r.current_level() {
                    told.extend(approver_ids(tx, level)?);
                }
                told.sort_unstable();
                told.dedup();
                announce(
                    tx,
                    &r,
                    EventKind::ApprovalExpired,
                    &system,
                    &told,
                    summary.clone(),
                )?;
                super::audit::record(
                    tx,
                    now,
                    &system,
                    "approval.expire",
                    ("approval", id),
                    summary,
                    json!({"status": {"from": "pending", "to": "expired"}, "level": r.level + 1,
                           "expires_at": before.expires_at}),
                )?;
                Ok(true)
            })
            .await;
        match done {
            Ok(true) => expired += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(approval = id, error = %e, "cannot expire an approval request")
            }
        }
    }
    Ok(expired)
}

/// The pending requests `user_id` may decide on now, oldest first (for `/approve list`).
pub fn waiting_for(
    app: &App,
    actor: &Actor,
    user_id: u64,
    limit: usize,
) -> AppResult<Vec<ApprovalRequest>> {
    require(actor, Permission::ApprovalRead)?;
    let r = app.store.read()?;
    let now = app.clock.now();
    let mut out = Vec::new();
    for id in pending_ids(&r)? {
        let a = load(&r, id)?;
        let mine = a.is_open(now)
            && a.requester_id != Some(user_id)
            && !a
                .decisions
                .iter()
                .any(|d| d.level == a.level && d.user_id == user_id)
            && match a.current_level() {
                Some(l) => approver_ids(&r, l)?.contains(&user_id),
                None => false,
            };
        if mine {
            out.push(a);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
