//! `/api/v1/dashboard/overview`.

use axum::Json;
use axum::extract::State;

use super::extract::{AppState, Auth, Query, perm};
use super::problem::Problem;
use crate::app::AppError;
use crate::app::dashboard::{self, Overview, OverviewParams};

/// Open incidents by status and priority, MTTA and MTTR over a window, problems, known
/// errors, per-service counts.
#[utoipa::path(get, path = "/api/v1/dashboard/overview", tag = "dashboard", security(("bearer" = [])), params(OverviewParams),
    responses((status = 200, body = Overview), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn overview(
    State(app): State<AppState>,
    auth: Auth<perm::DashboardRead>,
    Query(q): Query<OverviewParams>,
) -> Result<Json<Overview>, AppError> {
    Ok(Json(dashboard::overview(&app, &auth.actor, &q)?))
}
