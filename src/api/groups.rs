//! `/api/v1/groups` and their members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::groups::{self, GroupPatch, NewGroup};
use crate::app::page::{Page, PageRequest};
use crate::domain::identity::{Group, UserView};

/// Lists groups.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<Group>)), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::GroupRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<Group>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(groups::list(&app, &auth.actor, page)?))
}

/// Creates a group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", security(("bearer" = [])), request_body = NewGroup,
    responses((status = 201, body = Group), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::GroupWrite>,
    Body(input): Body<NewGroup>,
) -> Result<(StatusCode, Json<Group>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(groups::create(&app, &auth.actor, input).await?),
    ))
}

/// One group.
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = Group), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::GroupRead>,
    Path(id): Path<String>,
) -> Result<Json<Group>, AppError> {
    Ok(Json(groups::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a group.
#[utoipa::path(patch, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = [])), params(("id" = u64, Path)), request_body = GroupPatch,
    responses((status = 200, body = Group), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::GroupWrite>,
    Path(id): Path<String>,
    Body(patch): Body<GroupPatch>,
) -> Result<Json<Group>, AppError> {
    Ok(Json(
        groups::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes a group; its members leave it.
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::GroupWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    groups::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a group.
#[utoipa::path(get, path = "/api/v1/groups/{id}/members", tag = "groups", security(("bearer" = [])), params(("id" = u64, Path), ListParams),
    responses((status = 200, body = inline(Page<UserView>)), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn members(
    State(app): State<AppState>,
    auth: Auth<perm::GroupRead>,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<UserView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let members = groups::members(&app, &auth.actor, parse_id(&id)?)?;
    Ok(Json(Page::positional(members, page)))
}

/// Adds a member (idempotent).
#[utoipa::path(put, path = "/api/v1/groups/{id}/members/{user_id}", tag = "groups", security(("bearer" = [])), params(("id" = u64, Path), ("user_id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn add_member(
    State(app): State<AppState>,
    auth: Auth<perm::GroupWrite>,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    groups::set_member(&app, &auth.actor, parse_id(&id)?, parse_id(&user)?, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member (idempotent).
#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{user_id}", tag = "groups", security(("bearer" = [])), params(("id" = u64, Path), ("user_id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn remove_member(
    State(app): State<AppState>,
    auth: Auth<perm::GroupWrite>,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    groups::set_member(&app, &auth.actor, parse_id(&id)?, parse_id(&user)?, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
