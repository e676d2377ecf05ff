//! `/api/v1/problems` and `/api/v1/known-errors`: problem management.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{AppState, Auth, Body, Query, incident_id, perm, problem_id};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::page::{Page, PageRequest};
use crate::app::problems::{
    self, KnownErrorRequest, LinkRequest, NewProblem, ProblemFilter, ProblemParams, ProblemPatch,
    ProblemView,
};

/// Lists problems, newest first.
#[utoipa::path(get, path = "/api/v1/problems", tag = "problems", security(("bearer" = [])), params(ProblemParams),
    responses((status = 200, body = inline(Page<ProblemView>)), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(app): State<AppState>,
    auth: Auth<perm::ProblemRead>,
    Query(q): Query<ProblemParams>,
) -> Result<Json<Page<ProblemView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(problems::list(
        &app,
        &auth.actor,
        &ProblemFilter::parse(&q)?,
        page,
    )?))
}

/// Records a problem.
#[utoipa::path(post, path = "/api/v1/problems", tag = "problems", security(("bearer" = [])), request_body = NewProblem,
    responses((status = 201, body = ProblemView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(app): State<AppState>,
    auth: Auth<perm::ProblemWrite>,
    Body(input): Body<NewProblem>,
) -> Result<(StatusCode, Json<ProblemView>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(problems::create(&app, &auth.actor, input).await?),
    ))
}

/// One problem, with its linked incidents.
#[utoipa::path(get, path = "/api/v1/problems/{id}", tag = "problems", security(("bearer" = [])), params(("id" = u64, Path)),
    responses((status = 200, body = ProblemView), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<AppState>,
    auth: Auth<perm::ProblemRead>,
    Path(id): Path<String>,
) -> Result<Json<ProblemView>, AppError> {
    Ok(Json(problems::get(&app, &auth.actor, problem_id(&id)?)?))
}

/// Changes a problem: fields, root cause, impact analysis, workaround, status.
#[utoipa::path(patch, path = "/api/v1/problems/{id}", tag = "problems", security(("bearer" = [])), params(("id" = u64, Path)), request_body = ProblemPatch,
    responses((status = 200, body = ProblemView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(app): State<AppState>,
    auth: Auth<perm::ProblemWrite>,
    Path(id): Path<String>,
    Body(patch): Body<ProblemPatch>,
) -> Result<Json<ProblemView>, AppError> {
    Ok(Json(
        problems::update(&app, &auth.actor, problem_id(&id)?, patch).await?,
    ))
}

/// Records the workaround and enters the problem into the known-error database.
#[utoipa::path(post, path = "/api/v1/problems/{id}/known-error", tag = "problems", security(("bearer" = [])), params(("id" = u64, Path)), request_body = KnownErrorRequest,
    responses((status = 200, body = ProblemView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn known_error(
    State(app): State<AppState>,
    auth: Auth<perm::ProblemWrite>,
    Path(id): Path<String>,
    Body(req): Body<KnownErrorRequest>,
) -> Result<Json<ProblemView>, AppError> {
    Ok(Json(
        problems::known_error(&app, &auth.actor, problem_id(&id)?, req).await?,
    ))
}

/// Links an incident (visible from both sides).
#[utoipa::path(post, path = "/api/v1/problems/{id}/incidents", tag = "problems", security(("bearer" = [])), params(("id" = u64, Path)), request_body = LinkRequest,
    responses((status = 200, body = ProblemView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn link(
    State(app): State<AppState>,
    auth: Auth<perm::ProblemWrite>,
    Path(id): Path<String>,
    Body(req): Body<LinkRequest>,
) -> Result<Json<ProblemView>, AppError> {
    Ok(Json(
        problems::link(&app, &auth.actor, problem_id(&id)?, req.incident_id).await?,
    ))
}

/// Removes a link.
#[utoipa::path(delete, path = "/api/v1/problems/{id}/incidents/{incident_id}", tag = "problems", security(("bearer" = [])), params(("id" = u64, Path), ("incident_id" = u64, Path)),
    responses((status = 200, body = ProblemView), (status = 404, body = Problem)))]
pub async fn unlink(
    State(app): State<AppState>,
    auth: Auth<perm::ProblemWrite>,
    Path((id, incident)): Path<(String, String)>,
) -> Result<Json<ProblemView>, AppError> {
    Ok(Json(
        problems::unlink(&app, &auth.actor, problem_id(&id)?, incident_id(&incident)?).await?,
    ))
}

/// Known-error search.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KnownErrorParams {
    /// Words that must all appear in title, description, root cause or workaround.
    pub q: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Cursor.
    pub cursor: Option<String>,
}

/// The known-error database: problems with a recorded workaround, searchable.
#[utoipa::path(get, path = "/api/v1/known-errors", tag = "problems", security(("bearer" = [])), params(KnownErrorParams),
    responses((status = 200, body = inline(Page<ProblemView>)), (status = 403, body = Problem)))]
pub async fn known_errors(
    State(app): State<AppState>,
    auth: Auth<perm::ProblemRead>,
    Query(q): Query<KnownErrorParams>,
) -> Result<Json<Page<ProblemView>>, AppError> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    Ok(Json(problems::list(
        &app,
        &auth.actor,
        &ProblemFilter::known_errors(q.q.as_deref())?,
        page,
    )?))
}
