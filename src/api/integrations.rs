//! `/api/v1/integrations`: alert senders and their tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::integrations::{self, IntegrationPatch, IntegrationView, NewIntegration};
use crate::app::page::{Page, PageRequest};

/// Lists integrations (tokens are never shown).
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<IntegrationView>)), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::IntegrationRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<IntegrationView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(integrations::list(&app, &auth.actor, page)?))
}

/// Creates an integration; the answer carries its token and URL, once.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", security(("bearer" = [])), request_body = NewIntegration,
    responses((status = 201, body = IntegrationView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::IntegrationWrite>,
    Body(input): Body<NewIntegration>,
) -> Result<(StatusCode, Json<IntegrationView>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(integrations::create(&app, &auth.actor, input).await?),
    ))
}

/// One integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::IntegrationRead>,
    Path(id): Path<String>,
) -> Result<Json<IntegrationView>, AppError> {
    Ok(Json(integrations::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes an integration.
#[utoipa::path(patch, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])), params(("id" = u64, Path)), request_body = IntegrationPatch,
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::IntegrationWrite>,
    Path(id): Path<String>,
    Body(patch): Body<IntegrationPatch>,
) -> Result<Json<IntegrationView>, AppError> {
    Ok(Json(
        integrations::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes an integration; its alerts and incidents stay.
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::IntegrationWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    integrations::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the token; the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/rotate-token", tag = "integrations", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem)))]
pub async fn rotate(
    State(app): State<AppState>,
    auth: Auth<perm::IntegrationWrite>,
    Path(id): Path<String>,
) -> Result<Json<IntegrationView>, AppError> {
    Ok(Json(
        integrations::rotate(&app, &auth.actor, parse_id(&id)?).await?,
    ))
}
