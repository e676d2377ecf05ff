//! `/api/v1/alerts` and `/api/v1/incidents/{id}/alerts`.

use axum::Json;
use axum::extract::{Path, State};

use super::ListParams;
use super::extract::{AppState, Auth, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::alerts::{self, AlertFilter, AlertParams};
use crate::app::page::{Page, PageRequest};
use crate::domain::alert::Alert;

/// Alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = [])), params(AlertParams),
    responses((status = 200, body = inline(Page<Alert>)), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::AlertRead>,
    Query(q): Query<AlertParams>,
) -> Result<Json<Page<Alert>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(alerts::list(
        &app,
        &auth.actor,
        &AlertFilter::parse(&q)?,
        page,
    )?))
}

/// One alert.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = Alert), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::AlertRead>,
    Path(id): Path<String>,
) -> Result<Json<Alert>, AppError> {
    Ok(Json(alerts::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// The alerts of an incident, newest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/alerts", tag = "incidents", security(("bearer" = [])), params(("id" = u64, Path), ListParams),
    responses((status = 200, body = inline(Page<Alert>)), (status = 404, body = Problem)))]
pub async fn of_incident(
    State(app): State<AppState>,
    auth: Auth<perm::AlertRead>,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<Alert>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(alerts::list(
        &app,
        &auth.actor,
        &AlertFilter::of_incident(super::extract::incident_id(&id)?),
        page,
    )?))
}
