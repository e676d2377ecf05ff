//! `/api/v1/incidents`: ITIL incidents, their comments, timeline and alerts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, incident_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::incidents::merge::MergeRequest;
use crate::app::incidents::query::{IncidentFilter, IncidentParams};
use crate::app::incidents::snooze::SnoozeRequest;
use crate::app::incidents::{
    self, Assignment, EscalationRequest, IncidentPatch, IncidentView, NewComment, NewIncident,
    TransitionRequest,
};
use crate::app::page::{Page, PageRequest};
use crate::domain::escalation::EscalationRun;
use crate::domain::timeline::{Comment, TimelineEntry};

/// Lists incidents, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = [])), params(IncidentParams),
    responses((status = 200, body = inline(Page<IncidentView>)), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentRead>,
    Query(q): Query<IncidentParams>,
) -> Result<Json<Page<IncidentView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let filter = IncidentFilter::parse(&q)?;
    Ok(Json(incidents::query::list(
        &app,
        &auth.actor,
        &filter,
        page,
    )?))
}

/// Opens an incident; its priority comes from impact x urgency.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = [])), request_body = NewIncident,
    responses((status = 201, body = IncidentView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentWrite>,
    Body(input): Body<NewIncident>,
) -> Result<(StatusCode, Json<IncidentView>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(incidents::create(&app, &auth.actor, input).await?),
    ))
}

/// One incident.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = IncidentView), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentRead>,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, AppError> {
    Ok(Json(incidents::get(&app, &auth.actor, incident_id(&id)?)?))
}

/// Changes an incident's fields; priority follows impact and urgency.
#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)), request_body = IncidentPatch,
    responses((status = 200, body = IncidentView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentWrite>,
    Path(id): Path<String>,
    Body(patch): Body<IncidentPatch>,
) -> Result<Json<IncidentView>, AppError> {
    Ok(Json(
        incidents::update(&app, &auth.actor, incident_id(&id)?, patch).await?,
    ))
}

/// Moves an incident through its lifecycle; closing and cancelling need `incident:close`.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/transition", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)), request_body = TransitionRequest,
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn transition(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentWrite>,
    Path(id): Path<String>,
    Body(req): Body<TransitionRequest>,
) -> Result<Json<IncidentView>, AppError> {
    Ok(Json(
        incidents::transition(&app, &auth.actor, incident_id(&id)?, req).await?,
    ))
}

/// Asks for more help: records the escalation, and pages the next level of the incident's
/// escalation policy now (the last level again when there is none further).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/escalate", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)), request_body = EscalationRequest,
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn escalate(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentWrite>,
    Path(id): Path<String>,
    Body(req): Body<EscalationRequest>,
) -> Result<Json<IncidentView>, AppError> {
    Ok(Json(
        incidents::escalate(&app, &auth.actor, incident_id(&id)?, req.note).await?,
    ))
}

/// Merges other open incidents into this one: their alerts (and the alert groups that
/// fed them) move here, and each is resolved as "merged into" this one. 409 when this
/// incident or a source is not open.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/merge", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)), request_body = MergeRequest,
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn merge(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentWrite>,
    Path(id): Path<String>,
    Body(req): Body<MergeRequest>,
) -> Result<Json<IncidentView>, AppError> {
    Ok(Json(
        incidents::merge::merge(&app, &auth.actor, incident_id(&id)?, req).await?,
    ))
}

/// Snoozes an acknowledged incident for 1 minute to a week: it stays acknowledged, then
/// goes back to `new` and pages again from the first escalation level, unless its status
/// changed meanwhile. 409 unless acknowledged.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/snooze", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)), request_body = SnoozeRequest,
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn snooze(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentWrite>,
    Path(id): Path<String>,
    Body(req): Body<SnoozeRequest>,
) -> Result<Json<IncidentView>, AppError> {
    Ok(Json(
        incidents::snooze::snooze(&app, &auth.actor, incident_id(&id)?, req).await?,
    ))
}

/// Where the incident's escalation stands: the level paged next and when, or why it
/// stopped. 404 when the incident never had an escalation policy.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/escalation", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = EscalationRun), (status = 404, body = Problem)))]
pub async fn escalation(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentRead>,
    Path(id): Path<String>,
) -> Result<Json<EscalationRun>, AppError> {
    Ok(Json(crate::app::escalation::runs::of_incident(
        &app,
        &auth.actor,
        incident_id(&id)?,
    )?))
}

/// Assigns an incident to a person and/or a team.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/assign", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)), request_body = Assignment,
    responses((status = 200, body = IncidentView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn assign(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentWrite>,
    Path(id): Path<String>,
    Body(req): Body<Assignment>,
) -> Result<Json<IncidentView>, AppError> {
    Ok(Json(
        incidents::assign(&app, &auth.actor, incident_id(&id)?, req).await?,
    ))
}

/// Comments, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/comments", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path), ListParams),
    responses((status = 200, body = inline(Page<Comment>)), (status = 404, body = Problem)))]
pub async fn comments(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentRead>,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<Comment>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(incidents::comments(
        &app,
        &auth.actor,
        incident_id(&id)?,
        page,
    )?))
}

/// Adds a comment.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/comments", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path)), request_body = NewComment,
    responses((status = 201, body = Comment), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_comment(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentWrite>,
    Path(id): Path<String>,
    Body(input): Body<NewComment>,
) -> Result<(StatusCode, Json<Comment>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(incidents::comment(&app, &auth.actor, incident_id(&id)?, input).await?),
    ))
}

/// The timeline: every change with its actor, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/timeline", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path), ListParams),
    responses((status = 200, body = inline(Page<TimelineEntry>)), (status = 404, body = Problem)))]
pub async fn timeline(
    State(app): State<AppState>,
    auth: Auth<perm::IncidentRead>,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<TimelineEntry>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(incidents::timeline_of(
        &app,
        &auth.actor,
        incident_id(&id)?,
        page,
    )?))
}
