//! The HTTP surface around the handlers: every client error is problem+json with the right
//! status (400 malformed, 422 naming the field, 413, 415, 404, 405), list limits are
//! validated, every answer carries `x-request-id`, and the probes and Prometheus metrics work.
mod common;

use common::{Answer, TestDaemon, USER_PASSWORD, into_answer};
use reqwest::Method;
use serde_json::json;

/// Sends `body` as is with `content_type` to POST /api/v1/users as admin.
async fn raw_post(d: &TestDaemon, content_type: &str, body: impl Into<reqwest::Body>) -> Answer {
    let res = d
        .http
        .post(d.url("/api/v1/users"))
        .bearer_auth(&d.admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    into_answer(res).await
}

fn request_id(a: &Answer) -> String {
    a.headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no x-request-id on {} {}", a.status, a.text))
        .to_owned()
}

async fn user_count(d: &TestDaemon) -> usize {
    d.get("/api/v1/users?limit=500", &d.admin).await.body["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn malformed_json_is_400() {
    let d = TestDaemon::start().await;
    for body in [
        r#"{"username": "x", "#,
        "not json at all",
        r#"{"username": "x"} trailing"#,
    ] {
        let a = raw_post(&d, "application/json", body).await;
        a.assert_problem(400);
        request_id(&a);
    }
    assert_eq!(user_count(&d).await, 1);
}

#[tokio::test]
async fn field_errors_are_422_naming_the_field() {
    let d = TestDaemon::start().await;
    // Missing.
    let a = d
        .post(
            "/api/v1/users",
            &d.admin,
            json!({"email": "x@example.com", "password": USER_PASSWORD}),
        )
        .await;
    a.assert_problem(422);
    assert!(a.body["errors"]["username"].is_array(), "{}", a.text);
    // Wrong type.
    let a = d
        .post(
            "/api/v1/users",
            &d.admin,
            json!({"username": 5, "email": "x@example.com", "password": USER_PASSWORD}),
        )
        .await;
    a.assert_problem(422);
    assert!(a.body["errors"]["username"].is_array(), "{}", a.text);
    let a = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "x", "tier": "high"}),
        )
        .await;
    a.assert_problem(422);
    assert!(a.body["errors"]["tier"].is_array(), "{}", a.text);
    // Unknown.
    let a = d
        .post(
            "/api/v1/users",
            &d.admin,
            json!({"username": "x", "email": "x@example.com", "password": USER_PASSWORD, "favourite_colour": "red"}),
        )
        .await;
    a.assert_problem(422);
    assert!(
        a.body["errors"]["favourite_colour"].is_array(),
        "{}",
        a.text
    );
    // A JSON value that is not an object.
    d.post("/api/v1/users", &d.admin, json!([1, 2]))
        .await
        .assert_problem(422);
    assert_eq!(user_count(&d).await, 1, "nothing was created");
    // A window past ten years is a typo, not "forever": cast to a signed number it would
    // turn grouping or reopening off.
    for field in ["reopen_window_secs", "group_window_secs"] {
        let a = d
            .post(
                "/api/v1/integrations",
                &d.admin,
                json!({"name": "am", "kind": "alertmanager", "settings": {field: u64::MAX}}),
            )
            .await;
        a.assert_problem(422);
        assert!(
            a.body["errors"][format!("settings.{field}")].is_array(),
            "{}",
            a.text
        );
    }
    let listed = d.get("/api/v1/integrations", &d.admin).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let d = TestDaemon::start().await;
    let big = "x".repeat(1_150_000);
    let body = serde_json::to_vec(
        &json!({"username": "big", "email": "big@example.com", "password": USER_PASSWORD, "real_name": big}),
    )
    .expect("json");
    assert!(body.len() > 1024 * 1024 + 50_000);
    let a = raw_post(&d, "application/json", body).await;
    a.assert_problem(413);
    request_id(&a);
    // Just under the limit is read (and refused for its content, not its size).
    let under = serde_json::to_vec(
        &json!({"username": "big", "email": "big@example.com", "password": USER_PASSWORD, "real_name": "x".repeat(1_000_000)}),
    )
    .expect("json");
    let a = raw_post(&d, "application/json", under).await;
    a.assert_problem(422);
    assert!(a.body["errors"]["real_name"].is_array(), "{}", a.text);
    assert_eq!(user_count(&d).await, 1);
}

#[tokio::test]
async fn a_non_json_content_type_is_415() {
    let d = TestDaemon::start().await;
    let body =
        json!({"username": "t", "email": "t@example.com", "password": USER_PASSWORD}).to_string();
    let a = raw_post(&d, "text/plain", body.clone()).await;
    a.assert_problem(415);
    let a = raw_post(&d, "application/x-www-form-urlencoded", body.clone()).await;
    a.assert_problem(415);
    assert_eq!(user_count(&d).await, 1);
    // The same body as JSON (also with parameters) is accepted.
    let a = raw_post(&d, "application/json; charset=utf-8", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn unknown_routes_methods_and_ids_are_problems() {
    let d = TestDaemon::start().await;
    for path in ["/api/v1/nothing-here", "/nope", "/api/v2/users"] {
        let a = d.get(path, &d.admin).await;
        a.assert_problem(404);
        request_id(&a);
    }
    // Unknown route without a token: still 404, not 401.
    d.call(Method::GET, "/api/v1/nothing-here", None, None)
        .await
        .assert_problem(404);

    let a = d
        .call(Method::DELETE, "/api/v1/users", Some(&d.admin), None)
        .await;
    a.assert_problem(405);
    request_id(&a);
    d.call(Method::PUT, "/healthz", None, None)
        .await
        .assert_problem(405);

    for path in [
        "/api/v1/users/abc",
        "/api/v1/users/0",
        "/api/v1/users/-1",
        "/api/v1/roles/1.5",
        "/api/v1/groups/x/members",
        "/api/v1/services/99999999999999999999999",
    ] {
        let a = d.get(path, &d.admin).await;
        a.assert_problem(404);
    }
    d.patch("/api/v1/users/abc", &d.admin, json!({"department": "x"}))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn list_limits_are_validated() {
    let d = TestDaemon::start().await;
    for list in [
        "/api/v1/users",
        "/api/v1/roles",
        "/api/v1/groups",
        "/api/v1/services",
        "/api/v1/audit",
    ] {
        for bad in [
            "limit=0",
            "limit=501",
            "limit=-1",
            "limit=ten",
            "cursor=abc",
        ] {
            let a = d.get(&format!("{list}?{bad}"), &d.admin).await;
            a.assert_problem(422);
            let field = bad.split('=').next().expect("name");
            assert!(
                a.body["errors"][field].is_array(),
                "{list}?{bad}: {}",
                a.text
            );
        }
        for good in ["limit=1", "limit=500"] {
            let a = d.get(&format!("{list}?{good}"), &d.admin).await;
            assert_eq!(a.status, 200, "{list}?{good}: {}", a.text);
            assert!(a.body["items"].is_array());
        }
    }
    let a = d.get("/api/v1/roles?limit=1", &d.admin).await;
    assert_eq!(a.body["items"].as_array().map(Vec::len), Some(1));
    assert!(a.body["next_cursor"].is_string(), "{}", a.text);
}

/// Every documented list or query route (from the OpenAPI document, so that a new route is
/// covered the day it is added) refuses a parameter it does not know and one given twice,
/// naming it; the webhooks take unknown parameters, since a sender's URL is set once.
#[tokio::test]
async fn unknown_and_repeated_query_parameters_are_422_naming_them() {
    let d = TestDaemon::start().await;
    let doc = d.get("/api/v1/openapi.json", &d.admin).await.body;
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, item) in paths {
        let Some(params) = item["get"]["parameters"].as_array() else {
            continue;
        };
        let query: Vec<&str> = params
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        if path.contains('{') || query.is_empty() {
            continue;
        }
        let a = d.get(&format!("{path}?stauts=open"), &d.admin).await;
        a.assert_problem(422);
        let why = a.body["errors"]["stauts"][0].as_str().unwrap_or_default();
        assert!(
            why.contains("not a parameter") && why.contains(&format!("`{}`", query[0])),
            "{path}: {}",
            a.text
        );
        let twice = format!("{path}?{0}=1&{0}=2", query[0]);
        let a = d.get(&twice, &d.admin).await;
        a.assert_problem(422);
        assert_eq!(
            a.body["errors"][query[0]][0], "is given more than once",
            "{twice}: {}",
            a.text
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} query routes in the document");
    // Routes that take no parameter at all refuse one too, naming it.
    let incident = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "q", "impact": "low", "urgency": "low"}),
        )
        .await
        .id();
    for path in [
        "/api/v1/users/1".to_owned(),
        format!("/api/v1/incidents/{incident}"),
        "/api/v1/auth/me".to_owned(),
        "/api/v1/settings/priority-matrix".to_owned(),
    ] {
        let a = d.get(&format!("{path}?expand=all"), &d.admin).await;
        a.assert_problem(422);
        let why = a.body["errors"]["expand"][0].as_str().unwrap_or_default();
        assert!(why.contains("takes none"), "{path}: {}", a.text);
        assert_eq!(d.get(&path, &d.admin).await.status, 200, "{path}");
    }
    for (list, filter) in [
        ("/api/v1/incidents", "status=open"),
        ("/api/v1/alerts", "state=firing"),
    ] {
        let a = d.get(&format!("{list}?{filter}&limit=5"), &d.admin).await;
        assert_eq!(a.status, 200, "{list}: {}", a.text);
    }

    let hook = d.integration("alertmanager", json!({})).await;
    let body = common::ingest::am_webhook(
        "{}:{alertname=\"Q\"}",
        vec![common::ingest::am_alert(
            "firing",
            json!({"alertname": "Q"}),
        )],
    );
    let a = d
        .post_raw(
            &format!("/hooks/alertmanager/{}?source=prod", hook.token),
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let d = TestDaemon::start().await;
    let answers = vec![
        d.call(Method::GET, "/healthz", None, None).await,
        d.call(Method::GET, "/readyz", None, None).await,
        d.call(Method::GET, "/metrics", None, None).await,
        d.call(Method::GET, "/api/v1/openapi.json", None, None)
            .await,
        d.get("/api/v1/users", &d.admin).await,
        d.call(Method::GET, "/api/v1/users", None, None).await,
        d.get("/api/v1/users/999", &d.admin).await,
        d.get("/api/v1/unknown", &d.admin).await,
        d.post("/api/v1/groups", &d.admin, json!({"name": "G"}))
            .await,
        d.post("/api/v1/groups", &d.admin, json!({})).await,
    ];
    let mut ids = std::collections::BTreeSet::new();
    for a in &answers {
        assert!(!request_id(a).is_empty());
        ids.insert(request_id(a));
    }
    assert_eq!(ids.len(), answers.len(), "request ids are unique: {ids:?}");
    // A caller's own request id is kept.
    let res = d
        .http
        .get(d.url("/api/v1/users/999"))
        .bearer_auth(&d.admin)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("request");
    assert_eq!(request_id(&into_answer(res).await), "trace-me-42");
}

#[tokio::test]
async fn probes_answer_200() {
    let d = TestDaemon::start().await;
    for path in ["/healthz", "/readyz"] {
        let a = d.call(Method::GET, path, None, None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        assert_eq!(a.body["status"], "ok");
    }
    let a = d
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body["paths"]["/api/v1/users"].is_object());
    // The project's own info, and what OpenAPI requires of every response.
    assert_eq!(a.body["info"]["title"], "incidentd", "{}", a.body["info"]);
    assert_eq!(a.body["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(a.body["components"]["securitySchemes"]["bearer"].is_object());
    let mut responses = 0;
    for (path, item) in a.body["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            // Behind a bearer token: 401 always, 403 unless any signed-in user may call it.
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path}: no 401"
                );
                let anyone = [
                    ("get", "/api/v1/auth/me"),
                    ("post", "/api/v1/auth/password"),
                    ("get", "/api/v1/settings/priority-matrix"),
                ];
                assert_eq!(
                    op["responses"]["403"].is_object(),
                    !anyone.contains(&(method.as_str(), path.as_str())),
                    "{method} {path}: 403"
                );
            }
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                responses += 1;
                assert!(
                    r["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
    assert!(responses > 100, "{responses}");
    // Enumerations document the spellings the API reads (`incident.opened`, `in_progress`),
    // not Rust's variant names, or a client generated from the document is refused.
    fn pascal_case_enum_values(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    if k == "enum" {
                        for e in x
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e.as_str())
                        {
                            let upper = e.chars().filter(char::is_ascii_uppercase).count();
                            if upper >= 2
                                && e.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                            {
                                out.push(e.to_owned());
                            }
                        }
                    }
                    pascal_case_enum_values(x, out);
                }
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|x| pascal_case_enum_values(x, out));
            }
            _ => {}
        }
    }
    let mut odd = Vec::new();
    pascal_case_enum_values(&a.body, &mut odd);
    assert!(odd.is_empty(), "enum values in Rust spelling: {odd:?}");
    let kinds = &a.body["components"]["schemas"]["EventKind"]["enum"];
    assert!(
        kinds
            .as_array()
            .is_some_and(|k| k.contains(&json!("incident.opened"))),
        "{kinds}"
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_by_route_template() {
    let d = TestDaemon::start().await;
    assert_eq!(d.get("/api/v1/users", &d.admin).await.status, 200);
    assert_eq!(d.get("/api/v1/users/1", &d.admin).await.status, 200);
    let res = d.http.get(d.url("/metrics")).send().await.expect("metrics");
    assert_eq!(res.status(), 200);
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = res.text().await.expect("text");
    let has = |metric: &str, label: &str| {
        text.lines()
            .any(|l| l.starts_with(metric) && l.contains(label))
    };
    assert!(
        has("http_requests_total", r#"route="/api/v1/users""#),
        "{text}"
    );
    assert!(
        has("http_requests_total", r#"route="/api/v1/users/{id}""#),
        "the template, not the raw path: {text}"
    );
    assert!(
        !text.contains(r#"route="/api/v1/users/1""#),
        "raw paths must not become labels"
    );
    assert!(
        has(
            "http_request_duration_seconds_bucket",
            r#"route="/api/v1/users""#
        ),
        "{text}"
    );
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    // Described, counters typed as counters, and present before their first event.
    for needle in [
        "# HELP http_requests_total ",
        "# HELP incidentd_store_commits_total ",
        "# TYPE incidentd_store_commits_total counter",
        "# TYPE incidentd_store_durable_commits_total counter",
        r#"incidentd_retention_deleted_total{kind="events"} 0"#,
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // Every sample line is `name{labels} value` or `name value`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap_or("");
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN",
            "not a sample line: {line}"
        );
    }
}
