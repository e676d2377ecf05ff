//! `/api/v1/routing-rules`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::page::{Page, PageRequest};
use crate::app::routing::{self, NewRoutingRule, RoutingRulePatch};
use crate::domain::silence::RoutingRule;

/// Rules in evaluation order.
#[utoipa::path(get, path = "/api/v1/routing-rules", tag = "routing", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<RoutingRule>)), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::RoutingRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<RoutingRule>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(routing::list(&app, &auth.actor, page)?))
}

/// Creates a rule.
#[utoipa::path(post, path = "/api/v1/routing-rules", tag = "routing", security(("bearer" = [])), request_body = NewRoutingRule,
    responses((status = 201, body = RoutingRule), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::RoutingWrite>,
    Body(input): Body<NewRoutingRule>,
) -> Result<(StatusCode, Json<RoutingRule>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(routing::create(&app, &auth.actor, input).await?),
    ))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/routing-rules/{id}", tag = "routing", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = RoutingRule), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::RoutingRead>,
    Path(id): Path<String>,
) -> Result<Json<RoutingRule>, AppError> {
    Ok(Json(routing::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a rule.
#[utoipa::path(patch, path = "/api/v1/routing-rules/{id}", tag = "routing", security(("bearer" = [])), params(("id" = u64, Path)), request_body = RoutingRulePatch,
    responses((status = 200, body = RoutingRule), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::RoutingWrite>,
    Path(id): Path<String>,
    Body(patch): Body<RoutingRulePatch>,
) -> Result<Json<RoutingRule>, AppError> {
    Ok(Json(
        routing::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes a rule.
#[utoipa::path(delete, path = "/api/v1/routing-rules/{id}", tag = "routing", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::RoutingWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    routing::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
