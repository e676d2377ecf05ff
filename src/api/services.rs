//! `/api/v1/services`: the service catalog.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::page::{Page, PageRequest};
use crate::app::services::{self, NewService, ServicePatch};
use crate::domain::service::Service;

/// Lists services.
#[utoipa::path(get, path = "/api/v1/services", tag = "services", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<Service>)), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::ServiceRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<Service>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(services::list(&app, &auth.actor, page)?))
}

/// Creates a service.
#[utoipa::path(post, path = "/api/v1/services", tag = "services", security(("bearer" = [])), request_body = NewService,
    responses((status = 201, body = Service), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::ServiceWrite>,
    Body(input): Body<NewService>,
) -> Result<(StatusCode, Json<Service>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(services::create(&app, &auth.actor, input).await?),
    ))
}

/// One service.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "services", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = Service), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::ServiceRead>,
    Path(id): Path<String>,
) -> Result<Json<Service>, AppError> {
    Ok(Json(services::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a service; `null` clears an optional field.
#[utoipa::path(patch, path = "/api/v1/services/{id}", tag = "services", security(("bearer" = [])), params(("id" = u64, Path)), request_body = ServicePatch,
    responses((status = 200, body = Service), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::ServiceWrite>,
    Path(id): Path<String>,
    Body(patch): Body<ServicePatch>,
) -> Result<Json<Service>, AppError> {
    Ok(Json(
        services::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes a service without incidents (never the default one).
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "services", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::ServiceWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    services::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
