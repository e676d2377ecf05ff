//! Liveness, readiness and metrics endpoints (no authentication: they are for probes).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::AppState;
use super::problem::Problem;

/// A probe answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// 200 once the store is open and migrated and its writer runs; 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Health), (status = 503, body = Problem)))]
pub async fn readyz(State(app): State<AppState>) -> Response {
    if app.store.writer_alive() && app.store.read().is_ok() {
        axum::Json(Health { status: "ok" }).into_response()
    } else {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is not available",
        )
        .into_response()
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    let stats = app.store.writer_stats();
    metrics::gauge!("incidentd_store_commits").set(stats.commits as f64);
    metrics::gauge!("incidentd_store_operations").set(stats.operations as f64);
    metrics::gauge!("incidentd_store_replays").set(stats.replays as f64);
    metrics::gauge!("incidentd_store_durable_commits").set(stats.durable_commits as f64);
    metrics::gauge!("incidentd_store_logged_operations").set(stats.logged_operations as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::metrics::render(),
    )
        .into_response()
}
