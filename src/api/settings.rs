//! `/api/v1/settings`: daemon-wide settings.

use axum::Json;
use axum::extract::State;

use super::extract::{AppState, Auth, Body, perm};
use super::problem::Problem;
use crate::app::settings::MatrixInput;
use crate::app::{AppError, settings};
use crate::domain::priority::PriorityMatrix;

/// The priority matrix in force.
#[utoipa::path(get, path = "/api/v1/settings/priority-matrix", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = PriorityMatrix), (status = 401, body = Problem)))]
pub async fn get_matrix(
    State(app): State<AppState>,
    _auth: Auth,
) -> Result<Json<PriorityMatrix>, AppError> {
    Ok(Json(settings::get_priority_matrix(&app)?))
}

/// Replaces the priority matrix.
#[utoipa::path(put, path = "/api/v1/settings/priority-matrix", tag = "settings", security(("bearer" = [])), request_body = PriorityMatrix,
    responses((status = 200, body = PriorityMatrix), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_matrix(
    State(app): State<AppState>,
    auth: Auth<perm::SettingsWrite>,
    Body(m): Body<MatrixInput>,
) -> Result<Json<PriorityMatrix>, AppError> {
    Ok(Json(
        settings::set_priority_matrix(&app, &auth.actor, m.into_matrix()?).await?,
    ))
}
