//! `/api/v1/schedules`: on-call rotations, their overrides, and who is on call when.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ListParams;
use super::extract::{AppState, Auth, Body, Query, parse_id, perm};
use super::problem::Problem;
use crate::app::page::{Page, PageRequest};
use crate::app::schedules::{
    self, NewOverride, NewSchedule, OnCallAnswer, SchedulePatch, ShiftView,
};
use crate::app::{AppError, FieldErrors};
use crate::domain::schedule::{Schedule, ScheduleOverride};

/// `?at=` of the on-call question.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AtParams {
    /// The instant (RFC 3339); default now.
    pub at: Option<String>,
}

/// `?from=&to=` of the final schedule.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowParams {
    /// Start (RFC 3339); default now.
    pub from: Option<String>,
    /// End (RFC 3339); default seven days after `from`, at most 92.
    pub to: Option<String>,
    /// Page size (1..500, default 50).
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// `?since=&limit=&cursor=` of the override list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SinceParams {
    /// Only overrides not yet over at this instant (RFC 3339).
    pub since: Option<String>,
    /// Page size (1..500, default 50).
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

fn instant(field: &'static str, s: Option<&str>) -> Result<Option<DateTime<Utc>>, AppError> {
    use chrono::Datelike;
    s.map(|s| {
        let at = DateTime::parse_from_rfc3339(s.trim())
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                FieldErrors::single(
                    field,
                    "must be an RFC 3339 time such as 2026-01-01T00:00:00Z",
                )
            })?;
        crate::domain::schedule::check_year(at.year())
            .map_err(|why| FieldErrors::single(field, why))?;
        Ok(at)
    })
    .transpose()
}

/// Lists schedules.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = inline(Page<Schedule>)), (status = 403, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleRead>,
    Query(q): Query<ListParams>,
) -> Result<Json<Page<Schedule>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(schedules::list(&app, &auth.actor, page)?))
}

/// Creates a schedule.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", security(("bearer" = [])), request_body = NewSchedule,
    responses((status = 201, body = Schedule), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleWrite>,
    Body(input): Body<NewSchedule>,
) -> Result<(StatusCode, Json<Schedule>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(schedules::create(&app, &auth.actor, input).await?),
    ))
}

/// One schedule.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleRead>,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, AppError> {
    Ok(Json(schedules::get(&app, &auth.actor, parse_id(&id)?)?))
}

/// Changes a schedule.
#[utoipa::path(patch, path = "/api/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])), params(("id" = u64, Path)), request_body = SchedulePatch,
    responses((status = 200, body = Schedule), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleWrite>,
    Path(id): Path<String>,
    Body(patch): Body<SchedulePatch>,
) -> Result<Json<Schedule>, AppError> {
    Ok(Json(
        schedules::update(&app, &auth.actor, parse_id(&id)?, patch).await?,
    ))
}

/// Deletes a schedule that no escalation policy pages.
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    schedules::delete(&app, &auth.actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The overrides of a schedule, oldest first.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/overrides", tag = "schedules", security(("bearer" = [])), params(("id" = u64, Path), SinceParams),
    responses((status = 200, body = inline(Page<ScheduleOverride>)), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn overrides(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleRead>,
    Path(id): Path<String>,
    Query(q): Query<SinceParams>,
) -> Result<Json<Page<ScheduleOverride>>, AppError> {
    let since = instant("since", q.since.as_deref())?;
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let overrides = schedules::list_overrides(&app, &auth.actor, parse_id(&id)?, since)?;
    Ok(Json(Page::positional(overrides, page)))
}

/// Puts somebody on call instead of the rotation for a while.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/overrides", tag = "schedules", security(("bearer" = [])), params(("id" = u64, Path)), request_body = NewOverride,
    responses((status = 201, body = ScheduleOverride), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_override(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleWrite>,
    Path(id): Path<String>,
    Body(input): Body<NewOverride>,
) -> Result<(StatusCode, Json<ScheduleOverride>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(schedules::add_override(&app, &auth.actor, parse_id(&id)?, input).await?),
    ))
}

/// Removes an override.
#[utoipa::path(delete, path = "/api/v1/schedules/{id}/overrides/{override_id}", tag = "schedules", security(("bearer" = [])), params(("id" = u64, Path), ("override_id" = u64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_override(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleWrite>,
    Path((id, override_id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    schedules::delete_override(&app, &auth.actor, parse_id(&id)?, parse_id(&override_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The final schedule: who is on call from `?from=` (default now) to `?to=` (default a
/// week later, at most 92 days), shift by shift, with overrides and restriction windows
/// applied; stretches with nobody on call are left out.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/shifts", tag = "schedules", security(("bearer" = [])), params(("id" = u64, Path), WindowParams),
    responses((status = 200, body = inline(Page<ShiftView>)), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn shifts(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleRead>,
    Path(id): Path<String>,
    Query(q): Query<WindowParams>,
) -> Result<Json<Page<ShiftView>>, AppError> {
    let from = instant("from", q.from.as_deref())?;
    let to = instant("to", q.to.as_deref())?;
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let shifts = schedules::shifts(&app, &auth.actor, parse_id(&id)?, from, to)?;
    Ok(Json(Page::positional(shifts, page)))
}

/// Who is on call at `?at=` (default now), and why.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/oncall", tag = "schedules", security(("bearer" = [])), params(("id" = u64, Path), AtParams),
    responses((status = 200, body = OnCallAnswer), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn oncall(
    State(app): State<AppState>,
    auth: Auth<perm::ScheduleRead>,
    Path(id): Path<String>,
    Query(q): Query<AtParams>,
) -> Result<Json<OnCallAnswer>, AppError> {
    let at = instant("at", q.at.as_deref())?;
    Ok(Json(schedules::on_call(
        &app,
        &auth.actor,
        parse_id(&id)?,
        at,
    )?))
}
