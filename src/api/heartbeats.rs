//! `/api/v1/heartbeats` (monitors of the monitoring) and their ping,
//! `/hooks/heartbeat/{token}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::heartbeats::{self, HeartbeatPatch, HeartbeatView, NewHeartbeat};
use crate::app::page::{Page, PageRequest};

/// Monitors in id order.
#[utoipa::path(get, path = "/api/v1/heartbeats", tag = "heartbeats", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<HeartbeatView>)), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::HeartbeatRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<HeartbeatView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(heartbeats::list(&app, &auth.actor, page)?))
}

/// Creates a monitor; the answer holds its ping URL with the token, once.
#[utoipa::path(post, path = "/api/v1/heartbeats", tag = "heartbeats", security(("bearer" = [])), request_body = NewHeartbeat,
    responses((status = 201, body = HeartbeatView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::HeartbeatWrite>,
    Body(input): Body<NewHeartbeat>,
) -> Result<(StatusCode, Json<HeartbeatView>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(heartbeats::create(&app, &auth.actor, input).await?),
    ))
}

/// One monitor.
#[utoipa::path(get, path = "/api/v1/heartbeats/{id}", tag = "heartbeats", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = HeartbeatView), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::HeartbeatRead>,
    Path(id): Path<String>,
) -> Result<Json<HeartbeatView>, AppError> {
    Ok(Json(heartbeats::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a monitor.
#[utoipa::path(patch, path = "/api/v1/heartbeats/{id}", tag = "heartbeats", security(("bearer" = [])), params(("id" = u64, Path)), request_body = HeartbeatPatch,
    responses((status = 200, body = HeartbeatView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::HeartbeatWrite>,
    Path(id): Path<String>,
    Body(patch): Body<HeartbeatPatch>,
) -> Result<Json<HeartbeatView>, AppError> {
    Ok(Json(
        heartbeats::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes a monitor; the open incident of its current silence is resolved (earlier
/// incidents stay as they are).
#[utoipa::path(delete, path = "/api/v1/heartbeats/{id}", tag = "heartbeats", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::HeartbeatWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    heartbeats::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a monitor a new ping token; the old one stops at once. The answer holds the new
/// token, once.
#[utoipa::path(post, path = "/api/v1/heartbeats/{id}/rotate-token", tag = "heartbeats", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = HeartbeatView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn rotate(
    State(app): State<AppState>,
    auth: Auth<perm::HeartbeatWrite>,
    Path(id): Path<String>,
) -> Result<Json<HeartbeatView>, AppError> {
    Ok(Json(
        heartbeats::rotate(&app, &auth.actor, parse_id(&id)?).await?,
    ))
}

/// A ping: the monitor is healthy for another interval, and the incident of a silence it
/// ends is resolved. Any body is ignored. Unknown token: 404, as for a path no route
/// serves.
#[utoipa::path(post, path = "/hooks/heartbeat/{token}", tag = "hooks", params(("token" = String, Path, description = "The monitor's token")),
    responses((status = 200, body = HeartbeatView), (status = 404, body = Problem), (status = 503, body = Problem)))]
pub async fn ping(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<HeartbeatView>, AppError> {
    Ok(Json(heartbeats::ping(&app, &token).await?))
}

/// The same ping as a `GET`, for `curl` in a cron job.
#[utoipa::path(get, path = "/hooks/heartbeat/{token}", tag = "hooks", params(("token" = String, Path, description = "The monitor's token")),
    responses((status = 200, body = HeartbeatView), (status = 404, body = Problem), (status = 503, body = Problem)))]
pub async fn ping_get(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<HeartbeatView>, AppError> {
    ping(State(app), Path(token)).await
}
