//! `/api/v1/escalation-policies`: who is paged, level by level, while an incident goes
//! unacknowledged.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::escalation::policies::{self, NewPolicy, PolicyPatch};
use crate::app::page::{Page, PageRequest};
use crate::domain::escalation::EscalationPolicy;

/// Lists escalation policies.
#[utoipa::path(get, path = "/api/v1/escalation-policies", tag = "escalation", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<EscalationPolicy>)), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::EscalationRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<EscalationPolicy>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(policies::list(&app, &auth.actor, page)?))
}

/// Creates an escalation policy.
#[utoipa::path(post, path = "/api/v1/escalation-policies", tag = "escalation", security(("bearer" = [])), request_body = NewPolicy,
    responses((status = 201, body = EscalationPolicy), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::EscalationWrite>,
    Body(input): Body<NewPolicy>,
) -> Result<(StatusCode, Json<EscalationPolicy>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(policies::create(&app, &auth.actor, input).await?),
    ))
}

/// One escalation policy.
#[utoipa::path(get, path = "/api/v1/escalation-policies/{id}", tag = "escalation", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = EscalationPolicy), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::EscalationRead>,
    Path(id): Path<String>,
) -> Result<Json<EscalationPolicy>, AppError> {
    Ok(Json(policies::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes an escalation policy; running escalations follow the new levels from their
/// next page.
#[utoipa::path(patch, path = "/api/v1/escalation-policies/{id}", tag = "escalation", security(("bearer" = [])), params(("id" = u64, Path)), request_body = PolicyPatch,
    responses((status = 200, body = EscalationPolicy), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::EscalationWrite>,
    Path(id): Path<String>,
    Body(patch): Body<PolicyPatch>,
) -> Result<Json<EscalationPolicy>, AppError> {
    Ok(Json(
        policies::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes an escalation policy that no service, integration or routing rule uses.
#[utoipa::path(delete, path = "/api/v1/escalation-policies/{id}", tag = "escalation", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::EscalationWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    policies::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
