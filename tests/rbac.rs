//! Role-based access control, checked against the whole documented API: every mutating route
//! in the OpenAPI document refuses a Viewer with 403 naming the missing permission, and
//! refuses an anonymous caller with 401; Viewers can read but not the audit log.
mod common;

use std::collections::BTreeSet;

use common::TestDaemon;
use reqwest::Method;
use serde_json::{Value, json};

/// Routes anyone (or any authenticated user, for their own account) may call.
const SELF_SERVICE: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/password",
];

/// Every (method, path template) of the OpenAPI document that is not a read.
async fn mutating_routes(d: &TestDaemon) -> Vec<(Method, String)> {
    let res = d
        .http
        .get(d.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("openapi json");
    let paths = doc["paths"].as_object().expect("paths object");
    let mut out = Vec::new();
    for (path, item) in paths {
        // Webhooks (/hooks, /v2/enqueue) authenticate senders by integration token or
        // signature, not by user; their own tests cover that.
        if SELF_SERVICE.contains(&path.as_str()) || !path.starts_with("/api/v1/") {
            continue;
        }
        for method in item.as_object().expect("path item").keys() {
            let m = match method.as_str() {
                "post" => Method::POST,
                "put" => Method::PUT,
                "patch" => Method::PATCH,
                "delete" => Method::DELETE,
                "get" | "head" | "options" | "trace" | "parameters" | "summary" | "description"
                | "servers" => continue,
                other => panic!("unexpected method {other} on {path}"),
            };
            out.push((m, path.clone()));
        }
    }
    out.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
    out
}

/// `/api/v1/groups/{id}/members/{user_id}` -> `/api/v1/groups/1/members/1`.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('1');
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// The resource a route is about, from its first segment after `/api/v1/`:
/// `escalation-policies` -> `escalation`, `users` -> `user`.
fn resource_words(template: &str) -> Vec<String> {
    let first = template
        .trim_start_matches("/api/v1/")
        .split('/')
        .next()
        .unwrap_or_default();
    let word = first.split('-').next().unwrap_or_default();
    let mut words = vec![word.to_owned()];
    if let Some(singular) = word.strip_suffix('s') {
        words.push(singular.to_owned());
    }
    words
}

#[tokio::test]
async fn every_mutating_route_refuses_a_viewer_with_403_naming_the_permission() {
    let d = TestDaemon::start().await;
    let (_, viewer) = d.user("vic", "Viewer").await;
    let me = d.get("/api/v1/auth/me", &viewer).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let viewer_perms: BTreeSet<String> = me.body["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .map(|p| p.as_str().expect("name").to_owned())
        .collect();
    assert!(viewer_perms.contains("user:read"), "{viewer_perms:?}");
    let catalogue = d.get("/api/v1/permissions", &viewer).await;
    assert_eq!(catalogue.status, 200, "{}", catalogue.text);
    let all_perms: BTreeSet<String> = catalogue
        .body
        .as_array()
        .expect("catalogue")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();

    let routes = mutating_routes(&d).await;
    println!("walking {} mutating routes:", routes.len());
    for (m, p) in &routes {
        println!("  {m} {p}");
    }
    assert!(
        routes.len() >= 15,
        "the OpenAPI document lists only {} mutating routes",
        routes.len()
    );

    let before = d.get("/api/v1/audit?limit=1", &d.admin).await;
    let mut failures = Vec::new();
    for (method, template) in &routes {
        let path = concrete(template);
        let a = d
            .call(method.clone(), &path, Some(&viewer), Some(json!({})))
            .await;
        let named = a.body["detail"]
            .as_str()
            .and_then(|d| d.strip_prefix("missing permission '"))
            .and_then(|rest| rest.split('\'').next())
            .map(str::to_owned);
        let ok = a.status == 403
            && a.content_type().starts_with("application/problem+json")
            && a.body["status"] == 403
            && named.as_ref().is_some_and(|p| {
                all_perms.contains(p)
                    && !viewer_perms.contains(p)
                    && resource_words(template)
                        .iter()
                        .any(|w| p.split(':').next() == Some(w.as_str()))
            });
        if !ok {
            failures.push(format!("{method} {path}: {} {}", a.status, a.text));
        }
    }
    assert!(
        failures.is_empty(),
        "routes that did not refuse a Viewer with 403 naming a missing permission of their \
         resource:\n{}",
        failures.join("\n")
    );
    // Nothing a Viewer tried changed anything.
    let after = d.get("/api/v1/audit?limit=1", &d.admin).await;
    assert_eq!(before.body["items"], after.body["items"]);
}

#[tokio::test]
async fn every_mutating_route_refuses_an_anonymous_caller_with_401() {
    let d = TestDaemon::start().await;
    let routes = mutating_routes(&d).await;
    assert!(routes.len() >= 15, "{routes:?}");
    let mut failures = Vec::new();
    for (method, template) in &routes {
        let path = concrete(template);
        let a = d.call(method.clone(), &path, None, Some(json!({}))).await;
        let ok = a.status == 401
            && a.content_type().starts_with("application/problem+json")
            && a.headers.get("www-authenticate").is_some();
        if !ok {
            failures.push(format!("{method} {path}: {} {}", a.status, a.text));
        }
    }
    assert!(
        failures.is_empty(),
        "routes that did not answer 401 without a token:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_viewer_reads_the_directory_but_not_the_audit_log() {
    let d = TestDaemon::start().await;
    let (_, viewer) = d.user("vic", "Viewer").await;
    for path in [
        "/api/v1/users",
        "/api/v1/users/1",
        "/api/v1/roles",
        "/api/v1/groups",
        "/api/v1/services",
        "/api/v1/services/1",
        "/api/v1/permissions",
        "/api/v1/auth/me",
    ] {
        let a = d.get(path, &viewer).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.text);
    }
    let a = d.get("/api/v1/audit", &viewer).await;
    a.assert_problem(403);
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("audit:read"),
        "{}",
        a.text
    );
    // The same request as admin works, so 403 was about the permission.
    assert_eq!(d.get("/api/v1/audit", &d.admin).await.status, 200);
}

#[tokio::test]
async fn no_token_on_a_mutating_route_is_401_not_403() {
    let d = TestDaemon::start().await;
    let a = d
        .call(
            Method::POST,
            "/api/v1/users",
            None,
            Some(json!({"username": "x", "email": "x@example.com", "password": "long-enough"})),
        )
        .await;
    a.assert_problem(401);
    assert_eq!(
        a.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let users = d.get("/api/v1/users", &d.admin).await;
    assert_eq!(users.body["items"].as_array().map(Vec::len), Some(1));
}

/// Writing roles is not a way to more power: a role manager cannot create, widen, change
/// or delete a role that allows more than they hold (`*` in their own role would make
/// them an administrator), while roles within their own permissions stay theirs to edit.
#[tokio::test]
async fn a_role_manager_cannot_give_a_role_more_than_they_hold() {
    let d = TestDaemon::start().await;
    let a = d
        .post(
            "/api/v1/roles",
            &d.admin,
            json!({"name": "RoleMgr", "permissions": ["role:read", "role:write", "incident:read"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let own = a.id();
    let (_, mgr) = d.user("rmgr", "RoleMgr").await;
    let roles = d.get("/api/v1/roles?limit=500", &d.admin).await.body;
    let id_of = |name: &str| {
        roles["items"]
            .as_array()
            .and_then(|items| items.iter().find(|r| r["name"] == name))
            .and_then(|r| r["id"].as_u64())
            .unwrap_or_else(|| panic!("no role {name}"))
    };
    let refused = [
        (
            Method::PATCH,
            format!("/api/v1/roles/{own}"),
            Some(json!({"permissions": ["*"]})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/roles/{own}"),
            Some(json!({"permissions": ["role:read", "role:write", "user:write"]})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/roles/{}", id_of("Viewer")),
            Some(json!({"permissions": ["incident:read"]})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/roles/{}", id_of("Engineer")),
            Some(json!({"permissions": []})),
        ),
        (
            Method::POST,
            "/api/v1/roles".to_owned(),
            Some(json!({"name": "Root", "permissions": ["*"]})),
        ),
    ];
    for (method, path, body) in refused {
        let a = d.call(method.clone(), &path, Some(&mgr), body).await;
        a.assert_problem(403);
        assert!(
            a.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("more than you may do"),
            "{method} {path}: {}",
            a.text
        );
    }
    let mine = d.get(&format!("/api/v1/roles/{own}"), &d.admin).await;
    assert_eq!(
        mine.body["permissions"],
        json!(["incident:read", "role:read", "role:write"]),
        "{}",
        mine.text
    );
    // Within their own permissions they manage roles as before.
    let a = d
        .post(
            "/api/v1/roles",
            &mgr,
            json!({"name": "Readers", "permissions": ["incident:read"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let readers = a.id();
    let a = d
        .patch(
            &format!("/api/v1/roles/{readers}"),
            &mgr,
            json!({"permissions": ["role:read"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        d.delete(&format!("/api/v1/roles/{readers}"), &mgr)
            .await
            .status,
        204
    );
    // A role that allows more than they hold is not theirs to delete either.
    let a = d
        .post(
            "/api/v1/roles",
            &d.admin,
            json!({"name": "Powerful", "permissions": ["user:write"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let powerful = d.delete(&format!("/api/v1/roles/{}", a.id()), &mgr).await;
    powerful.assert_problem(403);
    assert_eq!(
        d.get(&format!("/api/v1/roles/{}", a.id()), &d.admin)
            .await
            .status,
        200
    );
}
