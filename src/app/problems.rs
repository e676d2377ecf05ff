//! Problem management: root cause, impact analysis, workaround, the known-error database,
//! and many-to-many links with incidents.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::events::{self, Subject};
use super::incidents;
use super::page::{Page, PageRequest, Take, walk};
use super::{
    App, AppError, AppResult, FieldErrors, nullable, optional_text, require, required_line,
    required_text,
};
use crate::domain::actor::{Actor, ActorRef};
use crate::domain::audit;
use crate::domain::event::EventKind;
use crate::domain::permission::Permission;
use crate::domain::priority::Level;
use crate::domain::problem::{Problem, ProblemStatus, ProblemTransitionError};
use crate::domain::text;
use crate::store::StoreError;
use crate::store::access::{self, Reader};
use crate::store::keys::Key;
use crate::store::tables::{self, problem_field as field};

/// A problem as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemView {
    /// The record.
    #[serde(flatten)]
    pub problem: Problem,
    /// `PRB-<id>`.
    pub number: String,
    /// Whether it is in the known-error database (its status is `known_error`).
    pub known_error: bool,
}

impl From<Problem> for ProblemView {
    fn from(problem: Problem) -> Self {
        Self {
            number: problem.number(),
            known_error: problem.is_known_error(),
            problem,
        }
    }
}

/// A new problem.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProblem {
    /// One line.
    pub title: String,
    /// Details.
    #[serde(default)]
    pub description: Option<String>,
    /// Impact, if assessed.
    #[serde(default)]
    pub impact: Option<Level>,
    /// Urgency, if assessed.
    #[serde(default)]
    pub urgency: Option<Level>,
    /// The affected service.
    #[serde(default)]
    pub service_id: Option<u64>,
    /// Who drives the analysis.
    #[serde(default)]
    pub assignee_id: Option<u64>,
}

/// Changes to a problem: fields, root-cause analysis and status. `null` clears an optional
/// field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Impact, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Level>)]
    pub impact: Option<Option<Level>>,
    /// Urgency, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Level>)]
    pub urgency: Option<Option<Level>>,
    /// Service, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub service_id: Option<Option<u64>>,
    /// Assignee, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub assignee_id: Option<Option<u64>>,
    /// The root cause.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub root_cause: Option<Option<String>>,
    /// The impact analysis.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub impact_analysis: Option<Option<String>>,
    /// The workaround.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub workaround: Option<Option<String>>,
    /// A lifecycle move (409 if not allowed).
    pub status: Option<ProblemStatus>,
}

/// Recording a known error.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownErrorRequest {
    /// How to restore service until the fix lands.
    pub workaround: String,
    /// The root cause, if not recorded yet.
    #[serde(default)]
    pub root_cause: Option<String>,
}

/// A link request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The incident to link: `42`, `"INC-42"` or `"#42"`.
    #[serde(deserialize_with = "crate::domain::reference::incident")]
    #[schema(value_type = u64)]
    pub incident_id: u64,
}

/// `GET /api/v1/problems` filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProblemParams {
    /// Comma-separated statuses; `open` means open, investigating and known_error.
    pub status: Option<String>,
    /// Service id.
    pub service_id: Option<String>,
    /// Words that must all appear in title, description, root cause or workaround.
    pub q: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Cursor.
    pub cursor: Option<String>,
}

const MAX_TEXT: usize = incidents::MAX_TEXT;

fn check_refs(
    r: &impl Reader,
    e: &mut FieldErrors,
    service: Option<u64>,
    assignee: Option<u64>,
) -> Result<(), StoreError> {
    incidents::check_refs(r, e, service, assignee, None)
}

fn searchable(p: &Problem) -> String {
    [
        Some(p.title.as_str()),
        Some(p.description.as_str()),
        p.root_cause.as_deref(),
        p.workaround.as_deref(),
        p.impact_analysis.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

fn index_entries(p: &Problem) -> BTreeSet<(u8, u64)> {
    let mut out = BTreeSet::new();
    out.insert((field::STATUS, u64::from(p.status.code())));
    if let Some(s) = p.service_id {
        out.insert((field::SERVICE, s));
    }
    if p.is_known_error() {
        out.insert((field::KNOWN_ERROR, 1));
    }
    out
}

fn counters(p: &Problem) -> Vec<String> {
    let mut out = vec![format!("prb/status/{}", p.status.as_str())];
    if p.status.is_open() {
        out.push("prb/open".into());
    }
    if p.is_known_error() {
        out.push("prb/known_errors".into());
    }
    out
}

/// Writes a problem and keeps its indexes and counters in step.
fn save(
    tx: &WriteTransaction,
    before: Option<&Problem>,
    after: &Problem,
) -> Result<(), StoreError> {
    access::put(tx, after)?;
    let id = after.id;
    let old = before.map(index_entries).unwrap_or_default();
    let new = index_entries(after);
    for (f, v) in old.difference(&new) {
        access::delete_raw(
            tx,
            tables::PROBLEM_INDEX,
            &Key::new().u8(*f).u64(*v).u64(id).into_bytes(),
        )?;
    }
    for (f, v) in new.difference(&old) {
        access::put_raw(
            tx,
            tables::PROBLEM_INDEX,
            &Key::new().u8(*f).u64(*v).u64(id).into_bytes(),
            &[],
        )?;
    }
    let old_t = before
        .map(|p| text::index_tokens(&searchable(p)))
        .unwrap_or_default();
    let new_t = text::index_tokens(&searchable(after));
    for t in old_t.difference(&new_t) {
        access::delete_raw(
            tx,
            tables::PROBLEM_TEXT,
            &Key::new().str(t).u64(id).into_bytes(),
        )?;
    }
    for t in new_t.difference(&old_t) {
        access::put_raw(
            tx,
            tables::PROBLEM_TEXT,
            &Key::new().str(t).u64(id).into_bytes(),
            &[],
        )?;
    }
    for name in before.map(counters).unwrap_or_default() {
        access::add_counter(tx, &name, -1)?;
    }
    for name in counters(after) {
        access::add_counter(tx, &name, 1)?;
    }
    Ok(())
}

pub(crate) fn load(r: &impl Reader, id: u64) -> AppResult<Problem> {
    access::get::<Problem>(r, id)?.ok_or_else(|| AppError::not_found("problem", id))
}

fn record(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    who: &ActorRef,
    p: &Problem,
    (action, kind): (&str, EventKind),
    summary: String,
    changes: serde_json::Value,
) -> Result<(), StoreError> {
    super::audit::record(
        tx,
        now,
        who,
        action,
        ("problem", p.id),
        format!("{}: {summary}", p.number()),
        changes.clone(),
    )?;
    events::publish(
        tx,
        now,
        kind,
        who,
        Subject::problem(p.id),
        json!({"number": p.number(), "title": p.title, "changes": changes}),
    )?;
    Ok(())
}

/// Records a problem (needs `problem:write`).
pub async fn create(app: &App, actor: &Actor, input: NewProblem) -> AppResult<ProblemView> {
    require(actor, Permission::ProblemWrite)?;
    let mut e = FieldErrors::new();
    let title = required_line(&mut e, "title", &input.title, incidents::MAX_TITLE);
    let description = optional_text(
        &mut e,
        "description",
        input.description.as_deref(),
        MAX_TEXT,
    )
    .unwrap_or_default();
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let problem = app
        .store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            check_refs(tx, &mut e, input.service_id, input.assignee_id)?;
            e.into_result()?;
            let matrix = super::settings::priority_matrix(tx)?;
            let id = access::next_id(tx, tables::PROBLEMS)?;
            let p = Problem {
                id,
                title: title.clone(),
                description: description.clone(),
                status: ProblemStatus::Open,
                impact: input.impact,
                urgency: input.urgency,
                priority: input
                    .impact
                    .zip(input.urgency)
                    .map(|(i, u)| matrix.priority(i, u)),
                service_id: input.service_id,
                assignee_id: input.assignee_id,
                root_cause: None,
                impact_analysis: None,
                workaround: None,
                incident_ids: vec![],
                created_by: who.clone(),
                created_at: now,
                updated_at: now,
                known_error_at: None,
                resolved_at: None,
                closed_at: None,
            };
            save(tx, None, &p)?;
            let shown = serde_json::to_value(&p).unwrap_or_default();
            record(
                tx,
                now,
                &who,
                &p,
                ("problem.create", EventKind::ProblemOpened),
                format!("recorded: {}", p.title),
                audit::created(&shown),
            )?;
            Ok::<_, AppError>(p)
        })
        .await?;
    Ok(problem.into())
}

/// One problem (needs `problem:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<ProblemView> {
    require(actor, Permission::ProblemRead)?;
    Ok(load(&app.store.read()?, id)?.into())
}

fn transition_error(e: ProblemTransitionError) -> AppError {
    match e {
        ProblemTransitionError::Lifecycle(l) => AppError::Conflict(l.to_string()),
        ProblemTransitionError::KnownError(k) => FieldErrors::single("workaround", k.to_string()),
    }
}

/// Changes a problem, its analysis and its status (needs `problem:write`).
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: ProblemPatch,
) -> AppResult<ProblemView> {
    change(app, actor, id, patch, false).await
}

/// [`update`], or with `into_known_error` the known-error move: `patch.status` is ignored
/// and the problem moves to `known_error` unless it is one already. That is decided inside
/// the write transaction, on the current status, so that concurrent records of a
/// workaround all succeed.
async fn change(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: ProblemPatch,
    into_known_error: bool,
) -> AppResult<ProblemView> {
    require(actor, Permission::ProblemWrite)?;
    let mut e = FieldErrors::new();
    let title = patch
        .title
        .as_deref()
        .map(|t| required_line(&mut e, "title", t, incidents::MAX_TITLE));
    let text_field = |e: &mut FieldErrors, name: &str, v: &Option<Option<String>>| {
        v.clone()
            .map(|inner| optional_text(e, name, inner.as_deref(), MAX_TEXT))
    };
    let root_cause = text_field(&mut e, "root_cause", &patch.root_cause);
    let impact_analysis = text_field(&mut e, "impact_analysis", &patch.impact_analysis);
    let workaround = text_field(&mut e, "workaround", &patch.workaround);
    if let Some(d) = &patch.description
        && d.chars().count() > MAX_TEXT
    {
        e.add(
            "description",
            format!("must be at most {MAX_TEXT} characters"),
        );
    }
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let problem = app
        .store
        .write(move |tx| {
            let before = load(tx, id)?;
            if before.status == ProblemStatus::Closed {
                return Err(AppError::Conflict(format!("{} is closed; it can no longer change", before.number())));
            }
            let mut e = FieldErrors::new();
            check_refs(tx, &mut e, patch.service_id.flatten(), patch.assignee_id.flatten())?;
            e.into_result()?;
            let mut p = before.clone();
            if let Some(t) = &title {
                p.title = t.clone();
            }
            if let Some(d) = &patch.description {
                p.description = d.trim().to_owned();
            }
            if let Some(v) = patch.impact {
                p.impact = v;
            }
            if let Some(v) = patch.urgency {
                p.urgency = v;
            }
            if let Some(v) = patch.service_id {
                p.service_id = v;
            }
            if let Some(v) = patch.assignee_id {
                p.assignee_id = v;
            }
            if let Some(v) = &root_cause {
                p.root_cause = v.clone();
            }
            if let Some(v) = &impact_analysis {
                p.impact_analysis = v.clone();
            }
            if let Some(v) = &workaround {
                p.workaround = v.clone();
                if p.workaround.is_none() && p.status == ProblemStatus::KnownError {
                    return Err(FieldErrors::single("workaround", "a known error needs a workaround; move the problem out of known_error first"));
                }
            }
            let matrix = super::settings::priority_matrix(tx)?;
            p.priority = p.impact.zip(p.urgency).map(|(i, u)| matrix.priority(i, u));
            let status = if into_known_error {
                (p.status != ProblemStatus::KnownError).then_some(ProblemStatus::KnownError)
            } else {
                patch.status
            };
            if let Some(to) = status
                && to != p.status
            {
                p.apply_transition(to, now).map_err(transition_error)?;
            }
            let changes = audit::diff_records(&before, &p);
            if changes.as_object().is_none_or(|c| c.is_empty()) {
                return Ok::<_, AppError>(before);
            }
            p.updated_at = now;
            save(tx, Some(&before), &p)?;
            let kind = if p.status != before.status {
                if p.status == ProblemStatus::KnownError { EventKind::ProblemKnownError } else { EventKind::ProblemStatusChanged }
            } else {
                EventKind::ProblemUpdated
            };
            let fields: Vec<String> = changes.as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default();
            record(tx, now, &who, &p, ("problem.update", kind), format!("changed {}", fields.join(", ")), changes)?;
            Ok(p)
        })
        .await?;
    Ok(problem.into())
}

/// Records the workaround (and root cause) and moves the problem into the known-error
/// database (needs `problem:write`). On a known error it updates the workaround.
pub async fn known_error(
    app: &App,
    actor: &Actor,
    id: u64,
    request: KnownErrorRequest,
) -> AppResult<ProblemView> {
    let mut e = FieldErrors::new();
    let workaround = required_text(&mut e, "workaround", &request.workaround, MAX_TEXT);
    let root_cause = optional_text(
        &mut e,
        "root_cause",
        request.root_cause.as_deref(),
        MAX_TEXT,
    );
    e.into_result()?;
    let patch = ProblemPatch {
        workaround: Some(Some(workaround)),
        root_cause: root_cause.map(Some),
        ..Default::default()
    };
    change(app, actor, id, patch, true).await
}

pub(crate) fn link_in_tx(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    who: &ActorRef,
    problem_id: u64,
    incident_id: u64,
    link: bool,
) -> AppResult<Problem> {
    let before = load(tx, problem_id)?;
    let incident = match incidents::load(tx, incident_id) {
        Ok(i) => i,
        Err(AppError::NotFound { .. }) if link => {
            return Err(FieldErrors::single(
                "incident_id",
                format!("no incident with id {incident_id}"),
            ));
        }
        Err(e) => return Err(e),
    };
    let linked = before.incident_ids.contains(&incident_id);
    if link && linked {
        return Err(AppError::Conflict(format!(
            "{} is already linked to {}",
            incident.number(),
            before.number()
        )));
    }
    if !link && !linked {
        return Err(AppError::not_found(
            "link",
            format!("{}-{}", before.number(), incident.number()),
        ));
    }
    if before.status == ProblemStatus::Closed {
        // Closed is final: its incidents are part of its record.
        return Err(AppError::Conflict(if link {
            format!(
                "{} is closed; link the incident to an open problem",
                before.number()
            )
        } else {
            format!(
                "{} is closed; its incidents are part of its record and stay linked",
                before.number()
            )
        }));
    }
    let mut p = before.clone();
    let mut i = incident.clone();
    if link {
        p.incident_ids.push(incident_id);
        p.incident_ids.sort_unstable();
        i.problem_ids.push(problem_id);
        i.problem_ids.sort_unstable();
    } else {
        p.incident_ids.retain(|x| *x != incident_id);
        i.problem_ids.retain(|x| *x != problem_id);
    }
    p.updated_at = now;
    i.updated_at = now;
    save(tx, Some(&before), &p)?;
    incidents::save(tx, Some(&incident), &i)?;
    let (verb, kind, tl) = if link {
        ("linked", EventKind::ProblemLinked, "problem_linked")
    } else {
        ("unlinked", EventKind::ProblemUnlinked, "problem_unlinked")
    };
    let summary = format!("{verb} {} and {}", i.number(), p.number());
    incidents::timeline(
        tx,
        incident_id,
        now,
        who,
        tl,
        summary.clone(),
        json!({"problem_id": problem_id}),
    )?;
    let change = if link {
        json!({"incident_ids": {"from": null, "to": incident_id}})
    } else {
        json!({"incident_ids": {"from": incident_id, "to": null}})
    };
    super::audit::record(
        tx,
        now,
        who,
        &format!("problem.{}", if link { "link" } else { "unlink" }),
        ("problem", problem_id),
        summary,
        change,
    )?;
    events::publish(
        tx,
        now,
        kind,
        who,
        Subject {
            incident_id: Some(incident_id),
            problem_id: Some(problem_id),
        },
        json!({"number": p.number(), "incident": i.number()}),
    )?;
    Ok(p)
}

/// Links an incident to a problem; both sides show the link (needs `problem:write`).
pub async fn link(
    app: &App,
    actor: &Actor,
    problem_id: u64,
    incident_id: u64,
) -> AppResult<ProblemView> {
    require(actor, Permission::ProblemWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let p = app
        .store
        .write(move |tx| link_in_tx(tx, now, &who, problem_id, incident_id, true))
        .await?;
    Ok(p.into())
}

/// Removes a link (needs `problem:write`).
pub async fn unlink(
    app: &App,
    actor: &Actor,
    problem_id: u64,
    incident_id: u64,
) -> AppResult<ProblemView> {
    require(actor, Permission::ProblemWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let p = app
        .store
        .write(move |tx| link_in_tx(tx, now, &who, problem_id, incident_id, false))
        .await?;
    Ok(p.into())
}

/// A validated problem filter.
#[derive(Debug, Clone, Default)]
pub struct ProblemFilter {
    statuses: BTreeSet<ProblemStatus>,
    service_id: Option<u64>,
    q: Option<String>,
    known_errors_only: bool,
}

impl ProblemFilter {
    /// From query parameters.
    pub fn parse(p: &ProblemParams) -> AppResult<Self> {
        let mut e = FieldErrors::new();
        let mut f = ProblemFilter::default();
        for s in p
            .status
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if s.eq_ignore_ascii_case("open") {
                f.statuses.extend([
                    ProblemStatus::Open,
                    ProblemStatus::Investigating,
                    ProblemStatus::KnownError,
                ]);
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
        if let Some(s) = p
            .service_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match s.parse::<u64>() {
                Ok(v) if v > 0 => f.service_id = Some(v),
                _ => {
                    e.add("service_id", "must be a positive integer");
                }
            }
        }
        f.q = super::search_param(&mut e, p.q.as_deref());
        e.into_result()?;
        Ok(f)
    }

    /// The known-error database search: known errors matching `q`.
    pub fn known_errors(q: Option<&str>) -> AppResult<Self> {
        let mut e = FieldErrors::new();
        let q = super::search_param(&mut e, q);
        e.into_result()?;
        Ok(ProblemFilter {
            q,
            known_errors_only: true,
            ..Default::default()
        })
    }

    fn matches(&self, p: &Problem) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&p.status))
            && self.service_id.is_none_or(|s| p.service_id == Some(s))
            && (!self.known_errors_only || p.is_known_error())
            && self
                .q
                .as_deref()
                .is_none_or(|q| text::matches(&searchable(p), q))
    }

    /// The index prefix that drives the walk: text token, known-error flag, service, or
    /// a single status.
    fn driver(&self) -> Option<(tables::Table, Vec<u8>)> {
        if let Some(t) = self
            .q
            .as_deref()
            .and_then(|q| text::query_tokens(q).into_iter().max_by_key(|t| t.len()))
        {
            return Some((tables::PROBLEM_TEXT, Key::new().str(&t).into_bytes()));
        }
        if self.known_errors_only {
            return Some((
                tables::PROBLEM_INDEX,
                Key::new().u8(field::KNOWN_ERROR).u64(1).into_bytes(),
            ));
        }
        if let Some(s) = self.service_id {
            return Some((
                tables::PROBLEM_INDEX,
                Key::new().u8(field::SERVICE).u64(s).into_bytes(),
            ));
        }
        if self.statuses.len() == 1 {
            let s = self
                .statuses
                .iter()
                .next()
                .map(|s| u64::from(s.code()))
                .unwrap_or_default();
            return Some((
                tables::PROBLEM_INDEX,
                Key::new().u8(field::STATUS).u64(s).into_bytes(),
            ));
        }
        None
    }
}

/// Problems matching `filter`, newest first (needs `problem:read`).
pub fn list(
    app: &App,
    actor: &Actor,
    filter: &ProblemFilter,
    page: PageRequest,
) -> AppResult<Page<ProblemView>> {
    require(actor, Permission::ProblemRead)?;
    let r = app.store.read()?;
    let driver = filter.driver();
    let found = walk(
        &r,
        driver.as_ref().map(|(t, p)| (*t, p.as_slice())),
        page,
        |p: &Problem| {
            if filter.matches(p) {
                Take::Yes
            } else {
                Take::No
            }
        },
    )?;
    Ok(found.map(ProblemView::from))
}
