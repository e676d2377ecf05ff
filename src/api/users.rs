//! `/api/v1/users`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::page::{Page, PageRequest};
use crate::app::users::{self, NewUser, UserPatch};
use crate::domain::identity::UserView;

/// Lists users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<UserView>)), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::UserRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<UserView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(users::list(&app, &auth.actor, page)?))
}

/// Creates a user; the password is never returned.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = UserView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::UserWrite>,
    Body(input): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(users::create(&app, &auth.actor, input).await?),
    ))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::UserRead>,
    Path(id): Path<String>,
) -> Result<Json<UserView>, AppError> {
    Ok(Json(users::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a user.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = u64, Path)), request_body = UserPatch,
    responses((status = 200, body = UserView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::UserWrite>,
    Path(id): Path<String>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<UserView>, AppError> {
    Ok(Json(
        users::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes a user; history keeps their name.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::UserWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    users::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
