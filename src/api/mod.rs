//! The REST API (axum): router, middleware, problem+json errors, the auth extractor, one
//! file per resource, and the OpenAPI document generated from the handlers.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod escalation_policies;
pub mod extract;
pub mod groups;
pub mod health;
pub mod heartbeats;
pub mod hooks;
pub mod incidents;
pub mod integrations;
pub mod metrics;
pub mod notifications;
pub mod paging_rules;
pub mod problem;
pub mod problems;
pub mod roles;
pub mod routing_rules;
pub mod schedules;
pub mod services;
pub mod settings;
pub mod silences;
pub mod twilio;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
pub use extract::AppState;

/// `?limit=&cursor=` of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Page size (1..500, default 50).
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "incidentd", description = "Incident response: alerts in, ITIL incidents out, chat-ops, escalations and notifications."),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    }
}

/// Every documented route, with its handlers; also the source of the OpenAPI document.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::password))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(roles::list, roles::create))
        .routes(routes!(roles::get, roles::update, roles::delete))
        .routes(routes!(roles::permissions))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::get, groups::update, groups::delete))
        .routes(routes!(groups::members))
        .routes(routes!(groups::add_member, groups::remove_member))
        .routes(routes!(services::list, services::create))
        .routes(routes!(services::get, services::update, services::delete))
        .routes(routes!(audit::list))
        .routes(routes!(settings::get_matrix, settings::put_matrix))
        .routes(routes!(incidents::list, incidents::create))
        .routes(routes!(incidents::get, incidents::update))
        .routes(routes!(incidents::transition))
        .routes(routes!(incidents::assign))
        .routes(routes!(incidents::escalate))
        .routes(routes!(incidents::snooze))
        .routes(routes!(incidents::merge))
        .routes(routes!(incidents::escalation))
        .routes(routes!(
            escalation_policies::list,
            escalation_policies::create
        ))
        .routes(routes!(
            escalation_policies::get,
            escalation_policies::update,
            escalation_policies::delete
        ))
        .routes(routes!(schedules::list, schedules::create))
        .routes(routes!(
            schedules::get,
            schedules::update,
            schedules::delete
        ))
        .routes(routes!(schedules::overrides, schedules::add_override))
        .routes(routes!(schedules::delete_override))
        .routes(routes!(schedules::oncall))
        .routes(routes!(schedules::shifts))
        .routes(routes!(
            approvals::list_workflows,
            approvals::create_workflow
        ))
        .routes(routes!(
            approvals::get_workflow,
            approvals::update_workflow,
            approvals::delete_workflow
        ))
        .routes(routes!(approvals::list, approvals::create))
        .routes(routes!(approvals::get))
        .routes(routes!(approvals::decision))
        .routes(routes!(approvals::cancel))
        .routes(routes!(incidents::comments, incidents::add_comment))
        .routes(routes!(incidents::timeline))
        .routes(routes!(problems::list, problems::create))
        .routes(routes!(problems::get, problems::update))
        .routes(routes!(problems::known_error))
        .routes(routes!(problems::link))
        .routes(routes!(problems::unlink))
        .routes(routes!(problems::known_errors))
        .routes(routes!(dashboard::overview))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::get))
        .routes(routes!(alerts::of_incident))
        .routes(routes!(integrations::list, integrations::create))
        .routes(routes!(
            integrations::get,
            integrations::update,
            integrations::delete
        ))
        .routes(routes!(integrations::rotate))
        .routes(routes!(silences::list, silences::create))
        .routes(routes!(silences::get, silences::update, silences::delete))
        .routes(routes!(silences::expire))
        .routes(routes!(heartbeats::list, heartbeats::create))
        .routes(routes!(
            heartbeats::get,
            heartbeats::update,
            heartbeats::delete
        ))
        .routes(routes!(heartbeats::rotate))
        .routes(routes!(routing_rules::list, routing_rules::create))
        .routes(routes!(
            routing_rules::get,
            routing_rules::update,
            routing_rules::delete
        ))
        .routes(routes!(
            notifications::list_rules,
            notifications::create_rule
        ))
        .routes(routes!(
            notifications::get_rule,
            notifications::update_rule,
            notifications::delete_rule
        ))
        .routes(routes!(
            notifications::list_templates,
            notifications::set_template
        ))
        .routes(routes!(notifications::reset_template))
        .routes(routes!(notifications::deliveries))
        .routes(routes!(
            notifications::list_contacts,
            notifications::create_contact
        ))
        .routes(routes!(
            notifications::update_contact,
            notifications::delete_contact
        ))
        .routes(routes!(
            paging_rules::list_paging_rules,
            paging_rules::create_paging_rule
        ))
        .routes(routes!(paging_rules::delete_paging_rule))
}

/// The alert webhooks, with their own body limit.
/// Liveness, readiness and metrics: answered at once, even while the store catches up.
fn health_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
}

/// How long a read waits for acknowledged ingestion to be applied before it gives up
/// with 503.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Makes a request wait until every alert already acknowledged to a sender is applied, so
/// that the API never shows less than a webhook was told is stored (ingestion is
/// acknowledged once durable in the redo log, and applied just after). Immediate unless
/// the store is behind.
async fn read_your_writes(
    State(app): State<AppState>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    match app.store.caught_up(CATCH_UP).await {
        Ok(()) => next.run(req).await,
        Err(e) => crate::app::AppError::from(e).into_response(),
    }
}

fn hook_routes(limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hooks::alertmanager))
        .routes(routes!(hooks::alertmanager_bearer))
        .routes(routes!(hooks::grafana))
        .routes(routes!(hooks::grafana_bearer))
        .routes(routes!(hooks::generic))
        .routes(routes!(hooks::generic_bearer))
        .routes(routes!(hooks::enqueue))
        .routes(routes!(heartbeats::ping, heartbeats::ping_get))
        .routes(routes!(twilio::voice_gather))
        .layer(DefaultBodyLimit::max(limit))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    finished(
        health_routes()
            .merge(routes())
            .merge(hook_routes(0))
            .into_openapi(),
    )
}

/// Secured operations that any signed-in user may call: no 403.
const OPEN_TO_ANY_USER: &[(&str, &str)] = &[
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/auth/password"),
    ("get", "/api/v1/settings/priority-matrix"),
];

/// The merged document made whole: the project's `info` and security scheme (a merge keeps
/// the first router's, utoipa-axum's placeholder), 401 and 403 on secured operations, and a
/// description on every response, which OpenAPI requires and the handlers leave out where
/// the status says it all.
fn finished(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let ours = ApiDoc::openapi();
    doc.info = ours.info;
    if let Some(theirs) = ours.components {
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.extend(theirs.security_schemes);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
            ("head", &mut item.head),
            ("options", &mut item.options),
            ("trace", &mut item.trace),
        ];
        for (method, op) in operations
            .into_iter()
            .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
        {
            // Every operation behind a bearer token can answer 401, and all but the few
            // any signed-in user may call can answer 403; the handlers need not each say so.
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                let mut statuses = vec!["401"];
                if !OPEN_TO_ANY_USER.contains(&(method, path.as_str())) {
                    statuses.push("403");
                }
                for status in statuses {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            utoipa::openapi::ResponseBuilder::new()
                                .content(
                                    "application/problem+json",
                                    utoipa::openapi::ContentBuilder::new()
                                        .schema(Some(utoipa::openapi::Ref::from_schema_name(
                                            "Problem",
                                        )))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
            for (status, response) in op.responses.responses.iter_mut() {
                if let utoipa::openapi::RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|c| StatusCode::from_u16(c).ok())
                        .and_then(|c| c.canonical_reason())
                        .unwrap_or("Response")
                        .to_owned();
                }
            }
        }
    }
    doc
}

/// The whole HTTP application.
pub fn router(app: Arc<App>) -> Router {
    metrics::install();
    let barrier = axum::middleware::from_fn_with_state(app.clone(), read_your_writes);
    let (api, doc) = health_routes()
        .merge(routes().layer(barrier))
        .merge(hook_routes(app.config.http.hook_body_limit_bytes))
        .split_for_parts();
    let doc = Arc::new(
        finished(doc)
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".into()),
    );
    let timeout = Duration::from_secs(app.config.http.request_timeout_secs);
    let body_limit = app.config.http.body_limit_bytes;
    let mut all: Router = api
        .layer(DefaultBodyLimit::max(body_limit))
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        doc.as_str().to_owned(),
                    )
                        .into_response()
                }
            }),
        )
        .with_state(app.clone());
    // The chat routes wait for ingestion to be applied inside each command
    // (`chat::commands::run`), where the wait counts against the platform's answer budget.
    if let Some(discord) = crate::chat::discord::router(app.clone()) {
        all = all.merge(discord.layer(DefaultBodyLimit::max(body_limit)));
    }
    if let Some(slack) = crate::chat::slack::router(app) {
        all = all.merge(slack.layer(DefaultBodyLimit::max(body_limit)));
    }
    with_outer_layers(all.fallback(problem::not_found), timeout)
}

/// What every route gets, innermost first: the request timeout (503), panics caught (500),
/// every error answer made problem+json (so the two before it are too), request metrics
/// by route template, and a request id in the log span and the answer.
fn with_outer_layers(router: Router, timeout: Duration) -> Router {
    router
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::map_response(problem::ensure_problem_json))
        .layer(axum::middleware::from_fn(extract::refuse_stray_query))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri().path()), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The path as the request log shows it: a hook's path carries its integration's secret
/// token (`/hooks/alertmanager/<token>`), which the log must not, so everything after a
/// hook's kind is left out.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/hooks/") {
        Some(rest) => {
            let kind = rest.split('/').next().unwrap_or_default();
            if rest.len() > kind.len() {
                format!("/hooks/{kind}/[redacted]").into()
            } else {
                path.into()
            }
        }
        None => path.into(),
    }
}

#[cfg(test)]
mod layer_tests {
    use super::*;

    #[test]
    fn hook_tokens_stay_out_of_the_request_log() {
        assert_eq!(
            loggable_path("/hooks/alertmanager/0123abcd"),
            "/hooks/alertmanager/[redacted]"
        );
        assert_eq!(
            loggable_path("/hooks/heartbeat/0123abcd/extra"),
            "/hooks/heartbeat/[redacted]"
        );
        assert_eq!(loggable_path("/hooks/"), "/hooks/");
        assert_eq!(loggable_path("/hooks/grafana"), "/hooks/grafana");
        assert_eq!(loggable_path("/v2/enqueue"), "/v2/enqueue");
        assert_eq!(
            loggable_path("/api/v1/incidents/42"),
            "/api/v1/incidents/42"
        );
    }

    async fn answer(router: Router, path: &str) -> (StatusCode, String, Option<String>, String) {
        use tower::ServiceExt;
        let res = router
            .oneshot(
                Request::get(path)
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let header = |h| {
            res.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (ctype, retry) = (
            header(header::CONTENT_TYPE).unwrap_or_default(),
            header(header::RETRY_AFTER),
        );
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            ctype,
            retry,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn timeouts_and_panics_answer_problem_json() {
        let router = with_outer_layers(
            Router::new()
                .route(
                    "/slow",
                    axum::routing::get(|| async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        "late"
                    }),
                )
                .route(
                    "/panics",
                    axum::routing::get(|| async {
                        if true {
                            panic!("a bug");
                        }
                        "never"
                    }),
                ),
            Duration::from_millis(50),
        );
        let (status, ctype, retry, body) = answer(router.clone(), "/slow").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(ctype.starts_with("application/problem+json"), "{ctype}");
        assert!(retry.is_some(), "a 503 says when to come back");
        assert!(body.contains("took too long"), "{body}");
        let (status, ctype, _, body) = answer(router, "/panics").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(ctype.starts_with("application/problem+json"), "{ctype}");
        assert!(
            !body.contains("a bug"),
            "no panic message to the caller: {body}"
        );
    }
}
