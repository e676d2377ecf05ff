//! `/api/v1/silences`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::page::{Page, PageRequest};
use crate::app::silences::{self, NewSilence, SilenceParams, SilencePatch, SilenceView};

/// Lists silences, newest first.
#[utoipa::path(get, path = "/api/v1/silences", tag = "silences", security(("bearer" = [])), params(SilenceParams),
    responses((status = 200, body = inline(Page<SilenceView>)), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::SilenceRead>,
    Query(q): Query<SilenceParams>,
) -> Result<Json<Page<SilenceView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(silences::list(&app, &auth.actor, &q, page)?))
}

/// Creates a silence.
#[utoipa::path(post, path = "/api/v1/silences", tag = "silences", security(("bearer" = [])), request_body = NewSilence,
    responses((status = 201, body = SilenceView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::SilenceWrite>,
    Body(input): Body<NewSilence>,
) -> Result<(StatusCode, Json<SilenceView>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(silences::create(&app, &auth.actor, input).await?),
    ))
}

/// One silence.
#[utoipa::path(get, path = "/api/v1/silences/{id}", tag = "silences", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = SilenceView), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::SilenceRead>,
    Path(id): Path<String>,
) -> Result<Json<SilenceView>, AppError> {
    Ok(Json(silences::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a silence that has not expired.
#[utoipa::path(patch, path = "/api/v1/silences/{id}", tag = "silences", security(("bearer" = [])), params(("id" = u64, Path)), request_body = SilencePatch,
    responses((status = 200, body = SilenceView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::SilenceWrite>,
    Path(id): Path<String>,
    Body(patch): Body<SilencePatch>,
) -> Result<Json<SilenceView>, AppError> {
    Ok(Json(
        silences::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Expires a silence now (the record stays, as in Alertmanager).
#[utoipa::path(delete, path = "/api/v1/silences/{id}", tag = "silences", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = SilenceView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::SilenceWrite>,
    Path(id): Path<String>,
) -> Result<Json<SilenceView>, AppError> {
    Ok(Json(
        silences::expire(&app, &auth.actor, parse_id(&id)?).await?,
    ))
}

/// Expires a silence now.
#[utoipa::path(post, path = "/api/v1/silences/{id}/expire", tag = "silences", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = SilenceView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn expire(
    State(app): State<AppState>,
    auth: Auth<perm::SilenceWrite>,
    Path(id): Path<String>,
) -> Result<Json<SilenceView>, AppError> {
    Ok(Json(
        silences::expire(&app, &auth.actor, parse_id(&id)?).await?,
    ))
}
