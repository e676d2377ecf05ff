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
    // Counted by the writer since the start; exported as the counters they are.
    metrics::counter!("incidentd_store_commits_total").absolute(stats.commits);
    metrics::counter!("incidentd_store_operations_total").absolute(stats.operations);
    metrics::counter!("incidentd_store_replays_total").absolute(stats.replays);
    metrics::counter!("incidentd_store_durable_commits_total").absolute(stats.durable_commits);
    metrics::counter!("incidentd_store_logged_operations_total").absolute(stats.logged_operations);
    let mut text = super::metrics::render();
    // What the store holds now; a store that cannot be read leaves them out (readyz says
    // why) rather than failing the scrape of everything else.
    match crate::app::gauges::current(&app).await {
        Ok(gauges) => super::metrics::render_gauges(&mut text, &gauges),
        Err(e) => tracing::warn!(error = %e, "/metrics: cannot read the store's gauges"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
