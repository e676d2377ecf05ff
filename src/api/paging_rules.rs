//! `/api/v1/users/{id}/notification-rules`: a person's paging rules (which contact method
//! an escalation page uses, after how many minutes), as PagerDuty's personal notification
//! rules.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::notifications::contacts;
use crate::app::notifications::paging::{self, NewPagingRule};
use crate::app::page::{Page, PageRequest};
use crate::domain::paging::PagingRule;

/// A person's paging rules, by delay (the person themself, or `user:read`). Without rules
/// a page reaches every enabled contact method at once.
#[utoipa::path(get, path = "/api/v1/users/{id}/notification-rules", tag = "users", security(("bearer" = [])), params(("id" = u64, Path), ListParams),
    responses((status = 200, body = inline(Page<PagingRule>)), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_paging_rules(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<PagingRule>>, AppError> {
    // Who may see them (403, 404) before what the query asks (422).
    let rules = paging::list(&app, &auth.actor, parse_id(&id)?)?;
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(Page::positional(rules, page)))
}

/// Adds a paging rule (the person themself, or `user:write`).
#[utoipa::path(post, path = "/api/v1/users/{id}/notification-rules", tag = "users", security(("bearer" = [])), params(("id" = u64, Path)), request_body = NewPagingRule,
    responses((status = 201, body = PagingRule), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_paging_rule(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Result<Body<NewPagingRule>, Problem>,
) -> Result<(StatusCode, Json<PagingRule>), Response> {
    // Who may is decided before the body is looked at: 403 before 400/422.
    let id = parse_id(&id).map_err(IntoResponse::into_response)?;
    contacts::allowed(&app, &auth.actor, id, true).map_err(IntoResponse::into_response)?;
    let Body(input) = body.map_err(IntoResponse::into_response)?;
    let rule = paging::create(&app, &auth.actor, id, input)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// Removes a paging rule.
#[utoipa::path(delete, path = "/api/v1/users/{id}/notification-rules/{rule_id}", tag = "users", security(("bearer" = [])), params(("id" = u64, Path), ("rule_id" = u64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_paging_rule(
    State(app): State<AppState>,
    auth: Auth,
    Path((id, rule)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    paging::delete(&app, &auth.actor, parse_id(&id)?, parse_id(&rule)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
