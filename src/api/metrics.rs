//! Request metrics: counts and latency histograms by route, exported in Prometheus format.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (several daemons in one test process share it).
pub fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        describe();
        Some(handle)
    });
}

/// `# HELP` for every metric the daemon exports, and the counters a dashboard needs
/// from the start at zero (a counter that appears only on its first event breaks
/// `rate()` and alert rules that expect it).
fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route template."
    );
    describe_counter!(
        "incidentd_alerts_received_total",
        "Alerts accepted by the webhooks, by integration kind."
    );
    describe_counter!(
        "incidentd_ingest_skipped_requests_total",
        "Acknowledged ingestion requests that could not be applied (logged, skipped)."
    );
    describe_histogram!(
        "incidentd_ingest_record_requests",
        "Requests per redo log record (group commit size)."
    );
    describe_histogram!(
        "incidentd_redo_append_seconds",
        Unit::Seconds,
        "Time to append and fdatasync one redo log record."
    );
    describe_counter!(
        "incidentd_deliveries_total",
        "Notification delivery attempts, by channel and result (sent, retry, dead)."
    );
    describe_histogram!(
        "incidentd_delivery_seconds",
        Unit::Seconds,
        "Time of one notification delivery attempt, by channel."
    );
    describe_counter!(
        "incidentd_retention_deleted_total",
        "Records deleted by retention, by kind."
    );
    describe_counter!(
        "incidentd_store_commits_total",
        "Store write transactions committed."
    );
    describe_counter!(
        "incidentd_store_operations_total",
        "Store write operations applied."
    );
    describe_counter!(
        "incidentd_store_replays_total",
        "Redo log records replayed at start-up."
    );
    describe_counter!(
        "incidentd_store_durable_commits_total",
        "Store commits made durable (fsync)."
    );
    describe_counter!(
        "incidentd_store_logged_operations_total",
        "Store operations made durable through the redo log."
    );
    for kind in ["events", "deliveries", "alerts"] {
        metrics::counter!("incidentd_retention_deleted_total", "kind" => kind).increment(0);
    }
}

/// The current metrics in text format.
pub fn render() -> String {
    HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map(|h| h.render())
        .unwrap_or_default()
}

/// Appends `gauges` to `out` in the Prometheus text format. Label values are fixed
/// names (statuses, priorities), never user input, so they need no escaping.
pub fn render_gauges(out: &mut String, gauges: &[crate::app::gauges::Gauge]) {
    use std::fmt::Write;
    for g in gauges {
        let _ = writeln!(out, "# HELP {} {}", g.name, g.help);
        let _ = writeln!(out, "# TYPE {} gauge", g.name);
        for (labels, value) in &g.samples {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            if labels.is_empty() {
                let _ = writeln!(out, "{} {value}", g.name);
            } else {
                let _ = writeln!(out, "{}{{{}}} {value}", g.name, labels.join(","));
            }
        }
    }
}

/// The request metrics of one route and method: handles looked up once, because a
/// lookup by name and labels allocates and hashes every label (the webhooks take tens of
/// thousands of requests a second).
struct RouteMetrics {
    method: Method,
    route: Arc<str>,
    /// `http_requests_total` by status code.
    requests: HashMap<u16, Counter>,
    duration: Histogram,
}

/// Route template -> its metrics by method.
type Routes = HashMap<Arc<str>, Vec<RouteMetrics>>;

static ROUTES: OnceLock<Mutex<Routes>> = OnceLock::new();

/// Counts a request and records how long it took.
fn record(route: &str, method: &Method, status: u16, seconds: f64) {
    let mut routes = ROUTES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !routes.contains_key(route) {
        routes.insert(Arc::from(route), Vec::new());
    }
    let Some(by_method) = routes.get_mut(route) else {
        return;
    };
    let at = match by_method.iter().position(|m| m.method == *method) {
        Some(at) => at,
        None => {
            let route: Arc<str> = Arc::from(route);
            by_method.push(RouteMetrics {
                method: method.clone(),
                duration: metrics::histogram!("http_request_duration_seconds", "method" => method.as_str().to_owned(), "route" => route.to_string()),
                route,
                requests: HashMap::new(),
            });
            by_method.len() - 1
        }
    };
    let m = &mut by_method[at];
    m.duration.record(seconds);
    let (method, route) = (&m.method, &m.route);
    m.requests
        .entry(status)
        .or_insert_with(|| {
            metrics::counter!("http_requests_total", "method" => method.as_str().to_owned(), "route" => route.to_string(), "status" => status.to_string())
        })
        .increment(1);
}

/// Middleware: records every request under its route template (`/api/v1/incidents/{id}`),
/// never the raw path, so that cardinality stays bounded.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    // Standard methods only: a made-up one would be a new series per request.
    let method = match *req.method() {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS => req.method().clone(),
        _ => Method::from_bytes(b"OTHER").expect("OTHER is a valid method token"),
    };
    let res = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    record(
        route,
        &method,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}
