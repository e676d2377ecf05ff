//! `/api/v1/roles` and the permission catalogue.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::page::{Page, PageRequest};
use crate::app::roles::{self, NewRole, PermissionInfo, RolePatch};
use crate::domain::identity::Role;

/// Lists roles.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<Role>)), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::RoleRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<Role>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(roles::list(&app, &auth.actor, page)?))
}

/// Creates a role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])), request_body = NewRole,
    responses((status = 201, body = Role), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::RoleWrite>,
    Body(input): Body<NewRole>,
) -> Result<(StatusCode, Json<Role>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(roles::create(&app, &auth.actor, input).await?),
    ))
}

/// One role.
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = Role), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::RoleRead>,
    Path(id): Path<String>,
) -> Result<Json<Role>, AppError> {
    Ok(Json(roles::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a role (not Admin; built-ins keep their names).
#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", security(("bearer" = [])), params(("id" = u64, Path)), request_body = RolePatch,
    responses((status = 200, body = Role), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::RoleWrite>,
    Path(id): Path<String>,
    Body(patch): Body<RolePatch>,
) -> Result<Json<Role>, AppError> {
    Ok(Json(
        roles::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes a role that is neither built in nor held by anyone.
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::RoleWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    roles::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every permission a role can grant.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "roles", security(("bearer" = [])),
    responses((status = 200, body = Vec<PermissionInfo>)))]
pub async fn permissions(_auth: Auth<perm::RoleRead>) -> Json<Vec<PermissionInfo>> {
    Json(roles::catalogue())
}
