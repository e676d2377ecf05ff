//! Inbound alert webhooks: `/hooks/{alertmanager,grafana,generic}[/{token}]` and the
//! PagerDuty Events API v2 compatible `/v2/enqueue`.
//!
//! A 2xx means every alert of the request is durably stored (202; with `?wait=applied`,
//! 200 with what the alerts did, once that is applied too). When the write queue is full
//! the answer is 503 with `Retry-After`, never 429: Alertmanager retries only 5xx.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::extract::{AppState, Query, RawBody};
use super::problem::Problem;
use crate::app::alerts::{self, IngestSummary, Source, Wait};
use crate::app::{AppError, FieldErrors, integrations};
use crate::domain::integration::IntegrationKind;
use crate::ingest::{self, IngestError};

fn bearer(headers: &HeaderMap) -> Option<String> {
    super::extract::bearer_token(headers).map(str::to_owned)
}

impl From<IngestError> for AppError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Malformed(m) => AppError::BadRequest(format!("malformed JSON: {m}")),
            IngestError::Invalid { field, reason } => FieldErrors::single(field, reason),
        }
    }
}

/// `?wait=` on the alert webhooks.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HookParams {
    /// `durable` (the default): answer 202 once the alerts are durably stored. `applied`:
    /// answer 200 with what they did (incidents opened, alerts deduplicated...) once
    /// that is applied too, which takes longer under load.
    pub wait: Option<String>,
}

impl HookParams {
    fn wait(&self) -> Result<Wait, AppError> {
        match self.wait.as_deref().map(str::trim) {
            None | Some("") | Some("durable") => Ok(Wait::Durable),
            Some("applied") => Ok(Wait::Applied),
            Some(other) => Err(FieldErrors::single(
                "wait",
                format!("must be durable or applied (got '{other}')"),
            )),
        }
    }
}

/// The answer to a webhook whose alerts are durably stored, before they are applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: &'static str,
    /// Alerts in the payload.
    pub alerts: usize,
    /// Alerts the sender said it left out (Alertmanager's `truncatedAlerts`).
    pub truncated: u64,
}

async fn receive(
    app: &AppState,
    kind: IntegrationKind,
    token: Option<String>,
    params: &HookParams,
    body: Bytes,
) -> Result<Response, AppError> {
    let wait = params.wait()?;
    let token = token.ok_or(AppError::NoRoute)?;
    let integration = integrations::by_token(app, kind, &token)?;
    let batch = ingest::parse(kind, &body, &integration.settings)?;
    let (alerts, truncated) = (batch.alerts.len(), batch.truncated);
    metrics::counter!("incidentd_alerts_received_total", "kind" => kind.as_str())
        .increment(alerts as u64);
    Ok(
        match alerts::ingest(app, integration, batch, Source::Body(body), wait).await? {
            Some(summary) => Json(summary).into_response(),
            None => (
                StatusCode::ACCEPTED,
                Json(Accepted {
                    status: "accepted",
                    alerts,
                    truncated,
                }),
            )
                .into_response(),
        },
    )
}

macro_rules! hook {
    ($with_token:ident, $with_header:ident, $kind:expr, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = concat!($path, "/{token}"), tag = "hooks", params(("token" = String, Path, description = "The integration token"), HookParams),
            request_body(content = Object, description = "The sender's payload"),
            responses((status = 202, body = Accepted), (status = 200, body = IngestSummary, description = "With `?wait=applied`"), (status = 400, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
        pub async fn $with_token(State(app): State<AppState>, Path(token): Path<String>, Query(params): Query<HookParams>, RawBody(body): RawBody) -> Result<Response, AppError> {
            receive(&app, $kind, Some(token), &params, body).await
        }

        #[doc = $doc]
        #[doc = " The token comes as `Authorization: Bearer <token>`."]
        #[utoipa::path(post, path = $path, tag = "hooks", security(("bearer" = [])), params(HookParams),
            request_body(content = Object, description = "The sender's payload"),
            responses((status = 202, body = Accepted), (status = 200, body = IngestSummary, description = "With `?wait=applied`"), (status = 400, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
        pub async fn $with_header(State(app): State<AppState>, headers: HeaderMap, Query(params): Query<HookParams>, RawBody(body): RawBody) -> Result<Response, AppError> {
            receive(&app, $kind, bearer(&headers), &params, body).await
        }
    };
}

hook!(
    alertmanager,
    alertmanager_bearer,
    IntegrationKind::Alertmanager,
    "/hooks/alertmanager",
    "Prometheus Alertmanager webhook (v4)."
);
hook!(
    grafana,
    grafana_bearer,
    IntegrationKind::Grafana,
    "/hooks/grafana",
    "Grafana unified alerting webhook."
);
hook!(
    generic,
    generic_bearer,
    IntegrationKind::Generic,
    "/hooks/generic",
    "Generic JSON, mapped by the integration's JSON pointers."
);

/// PagerDuty's answer shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueueAnswer {
    /// `success` or `invalid event`.
    pub status: String,
    /// For people.
    pub message: String,
    /// The event's dedup key (on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    /// What is wrong (on 400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}

fn pd_error(status: StatusCode, message: &str, errors: Vec<String>) -> Response {
    let mut res = (
        status,
        Json(EnqueueAnswer {
            status: "invalid event".into(),
            message: message.into(),
            dedup_key: None,
            errors: Some(errors),
        }),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    res
}

/// PagerDuty Events API v2: trigger, acknowledge, resolve. The routing key is an
/// integration token of kind `pagerduty` (in the body, or as a bearer token).
#[utoipa::path(post, path = "/v2/enqueue", tag = "hooks",
    request_body(content = Object, description = "A PagerDuty Events API v2 event"),
    responses((status = 202, body = EnqueueAnswer), (status = 400, body = EnqueueAnswer), (status = 404, body = EnqueueAnswer), (status = 413, body = EnqueueAnswer), (status = 503, body = EnqueueAnswer)))]
pub async fn enqueue(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<RawBody, Problem>,
) -> Response {
    // PagerDuty senders read `{status, message, errors}` on every error, 413 included.
    let body = match body {
        Ok(RawBody(body)) => body,
        Err(p) => {
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
            return pd_error(status, "Event object is invalid", vec![p.detail]);
        }
    };
    let event = match ingest::pagerduty::parse_event(&body) {
        Ok(e) => e,
        Err(errors) => return pd_error(StatusCode::BAD_REQUEST, "Event object is invalid", errors),
    };
    let Some(key) = event
        .routing_key
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| bearer(&headers))
    else {
        return pd_error(
            StatusCode::BAD_REQUEST,
            "Event object is invalid",
            vec!["'routing_key' is missing or blank".into()],
        );
    };
    let integration = match integrations::by_token(&app, IntegrationKind::Pagerduty, &key) {
        Ok(i) => i,
        Err(AppError::NoRoute) => {
            return pd_error(
                StatusCode::NOT_FOUND,
                "Unknown routing key",
                vec!["no integration has this routing key".into()],
            );
        }
        Err(e) => return e.into_response(),
    };
    metrics::counter!("incidentd_alerts_received_total", "kind" => "pagerduty").increment(1);
    match alerts::ingest(&app, integration, event.batch, Source::Parsed, Wait::Durable).await {
        Ok(_) => (StatusCode::ACCEPTED, Json(json!({"status": "success", "message": "Event processed", "dedup_key": event.dedup_key}))).into_response(),
        Err(AppError::Busy) => pd_error(StatusCode::SERVICE_UNAVAILABLE, "Busy; retry", vec!["the daemon is shedding load".into()]),
        Err(e) => e.into_response(),
    }
}
