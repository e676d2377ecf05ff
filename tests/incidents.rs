//! Incidents over real HTTP: opening and the priority matrix, PATCH, the lifecycle and its
//! permissions, assignment, comments, the timeline, every list filter, cursors that stay
//! stable while incidents are being opened, and 404s for unknown ids.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Answer, TestDaemon};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Percent-encodes a query value (spaces, CJK, commas: everything but unreserved bytes).
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn open(d: &TestDaemon, token: &str, body: Value) -> Value {
    let a = d.post("/api/v1/incidents", token, body.clone()).await;
    assert_eq!(a.status, 201, "open {body}: {}", a.text);
    a.body
}

/// Opens a minimal incident and returns its id.
async fn open_simple(d: &TestDaemon, title: &str) -> u64 {
    open(
        d,
        &d.admin,
        json!({"title": title, "impact": "medium", "urgency": "medium"}),
    )
    .await["id"]
        .as_u64()
        .expect("id")
}

async fn move_to(d: &TestDaemon, token: &str, id: u64, to: &str) -> Answer {
    d.post(
        &format!("/api/v1/incidents/{id}/transition"),
        token,
        json!({"to": to}),
    )
    .await
}

async fn must_move(d: &TestDaemon, id: u64, to: &str) {
    let a = move_to(d, &d.admin, id, to).await;
    assert_eq!(a.status, 200, "INC-{id} -> {to}: {}", a.text);
    assert_eq!(a.body["status"], to, "{}", a.text);
}

async fn status_of(d: &TestDaemon, id: u64) -> String {
    let a = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["status"].as_str().expect("status").to_owned()
}

fn item_ids(a: &Answer) -> Vec<u64> {
    a.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", a.text))
        .iter()
        .map(|i| i["id"].as_u64().expect("item id"))
        .collect()
}

/// Ids of one list answer (asserting 200).
async fn list_ids(d: &TestDaemon, query: &str) -> Vec<u64> {
    let a = d.get(&format!("/api/v1/incidents?{query}"), &d.admin).await;
    assert_eq!(a.status, 200, "?{query}: {}", a.text);
    item_ids(&a)
}

/// Follows `next_cursor` to the end; returns every id in the order served.
async fn walk(d: &TestDaemon, token: &str, query: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/incidents?{query}&cursor={c}"),
            None => format!("/api/v1/incidents?{query}"),
        };
        let a = d.get(&path, token).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        out.extend(item_ids(&a));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("the walk over ?{query} never ended");
}

fn desc(ids: &[u64]) -> Vec<u64> {
    let mut v = ids.to_vec();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v
}

async fn timeline(d: &TestDaemon, id: u64) -> Vec<Value> {
    let a = d
        .get(
            &format!("/api/v1/incidents/{id}/timeline?limit=500"),
            &d.admin,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.body["next_cursor"].is_null(), "{}", a.text);
    a.body["items"].as_array().expect("items").clone()
}

fn kinds(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

fn assert_field_error(a: &Answer, status: u16, field: &str) {
    a.assert_problem(status);
    assert!(
        a.body["errors"][field].is_array(),
        "expected an error naming `{field}`: {}",
        a.text
    );
}

async fn create_group(d: &TestDaemon, name: &str) -> u64 {
    let a = d
        .post("/api/v1/groups", &d.admin, json!({"name": name}))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.id()
}

async fn create_service(d: &TestDaemon, name: &str) -> u64 {
    let a = d
        .post("/api/v1/services", &d.admin, json!({"name": name}))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.id()
}

/// Polls `cond` every few milliseconds for up to 20 s.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Opening and the priority matrix
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_seed_example_opens_a_new_p2_incident() {
    let d = TestDaemon::start().await;
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title":"系统性能问题","description":"用户报告系统响应缓慢","impact":"High","urgency":"Medium","service_id":1}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    let b = &a.body;
    assert_eq!(b["priority"], "P2");
    assert_eq!(b["status"], "new");
    assert_eq!(b["impact"], "high");
    assert_eq!(b["urgency"], "medium");
    assert_eq!(b["number"], format!("INC-{id}"));
    assert_eq!(b["title"], "系统性能问题");
    assert_eq!(b["description"], "用户报告系统响应缓慢");
    assert_eq!(b["service_id"], 1);
    assert_eq!(b["problem_ids"], json!([]));
    assert!(b["acknowledged_at"].is_null() && b["resolved_at"].is_null());
    assert_eq!(b["created_by"]["name"], "admin");
    assert!(
        chrono::DateTime::parse_from_rfc3339(b["created_at"].as_str().expect("created_at")).is_ok(),
        "{}",
        a.text
    );

    // It reads back the same.
    let g = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_eq!(g.body, a.body);
}

#[tokio::test]
async fn priority_follows_the_default_matrix_for_all_nine_cells() {
    let d = TestDaemon::start().await;
    let cells = [
        ("HIGH", "High", "P1"),
        ("high", "MEDIUM", "P2"),
        ("High", "low", "P3"),
        ("medium", "high", "P2"),
        ("Medium", "Medium", "P3"),
        ("medium", "LOW", "P4"),
        ("low", "high", "P3"),
        ("LOW", "medium", "P4"),
        ("low", "Low", "P5"),
    ];
    for (impact, urgency, priority) in cells {
        let b = open(
            &d,
            &d.admin,
            json!({"title": format!("{impact}/{urgency}"), "impact": impact, "urgency": urgency}),
        )
        .await;
        assert_eq!(b["priority"], priority, "{impact}/{urgency}: {b}");
        assert_eq!(b["impact"], impact.to_lowercase());
        assert_eq!(b["urgency"], urgency.to_lowercase());
        assert_eq!(b["service_id"], 1, "the Default service by default");
    }
}

/// `PUT /settings/priority-matrix` changes the priority of incidents opened after it; a
/// wrong shape or an unknown field is a 422 naming it and changes nothing; only
/// `settings:write` may change it; the change is audited.
#[tokio::test]
async fn the_priority_matrix_can_be_replaced_and_is_validated() {
    let d = TestDaemon::start().await;
    let path = "/api/v1/settings/priority-matrix";
    let default = d.get(path, &d.admin).await.body;
    let bad = [
        (
            json!({"cells": [["P1","P2","P3","P4"],["P2","P3","P4"],["P3","P4","P5"]]}),
            "cells[0]",
        ),
        (
            json!({"cells": [["P1","P2","P3"],["P2","P3","P4"]]}),
            "cells",
        ),
        (
            json!({"cells": [["P1","P2","P3"],["P2","P3","P4"],["P3","P4","P5"]], "x": 1}),
            "x",
        ),
        (
            json!({"cells": [["P1","P2","P3"],["P2","P3","P4"],["P3","P4","P9"]]}),
            "cells[2][2]",
        ),
    ];
    for (body, field) in bad {
        let a = d.put(path, &d.admin, body.clone()).await;
        a.assert_problem(422);
        assert!(a.body["errors"][field].is_array(), "{body}: {}", a.text);
    }
    assert_eq!(d.get(path, &d.admin).await.body, default, "nothing changed");

    let (_, engineer) = d.user("eng", "Engineer").await;
    let flat = json!({"cells": [["P1","P1","P2"],["P1","P2","P3"],["P2","P3","P4"]]});
    d.put(path, &engineer, flat.clone())
        .await
        .assert_problem(403);
    let a = d.put(path, &d.admin, flat.clone()).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body, flat);
    let b = open(
        &d,
        &d.admin,
        json!({"title": "t", "impact": "high", "urgency": "medium"}),
    )
    .await;
    assert_eq!(b["priority"], "P1", "{b}");
    let audit = d.get("/api/v1/audit?limit=500", &d.admin).await;
    let changes = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "settings.priority_matrix")
        .count();
    assert_eq!(changes, 1, "{}", audit.text);
}

#[tokio::test]
async fn opening_validates_its_input() {
    let d = TestDaemon::start().await;
    let bad = [
        (json!({"impact": "high", "urgency": "high"}), "title"),
        (
            json!({"title": "   ", "impact": "high", "urgency": "high"}),
            "title",
        ),
        (
            json!({"title": "x", "impact": "urgent", "urgency": "high"}),
            "impact",
        ),
        (json!({"title": "x", "impact": "high"}), "urgency"),
        (
            json!({"title": "x", "impact": "high", "urgency": "high", "service_id": 999}),
            "service_id",
        ),
        (
            json!({"title": "x", "impact": "high", "urgency": "high", "assignee_id": 999}),
            "assignee_id",
        ),
        (
            json!({"title": "x", "impact": "high", "urgency": "high", "group_id": 999}),
            "group_id",
        ),
        (
            json!({"title": "x", "impact": "high", "urgency": "high", "status": "resolved"}),
            "status",
        ),
        // Control characters reach mail, SMS and terminals as they are; a title is a line.
        (
            json!({"title": "\u{0}", "impact": "high", "urgency": "high"}),
            "title",
        ),
        (
            json!({"title": "down\nInjected: header", "impact": "high", "urgency": "high"}),
            "title",
        ),
        (
            json!({"title": "x", "description": "\u{1b}[31mred", "impact": "high", "urgency": "high"}),
            "description",
        ),
    ];
    for (body, field) in bad {
        let a = d.post("/api/v1/incidents", &d.admin, body.clone()).await;
        assert_field_error(&a, 422, field);
    }
    // Malformed JSON is 400, and nothing was created by any of the above.
    let a = d
        .http
        .post(d.url("/api/v1/incidents"))
        .bearer_auth(&d.admin)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .expect("send");
    common::into_answer(a).await.assert_problem(400);
    assert_eq!(list_ids(&d, "").await, Vec::<u64>::new());
    // A description has lines and tabs.
    let ok = open(
        &d,
        &d.admin,
        json!({"title": "x", "description": "first\n\tsecond", "impact": "low", "urgency": "low"}),
    )
    .await;
    assert_eq!(ok["description"], "first\n\tsecond", "{ok}");
}

// ---------------------------------------------------------------------------------------
// PATCH
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn patch_recomputes_priority_and_writes_an_updated_entry() {
    let d = TestDaemon::start().await;
    let (_, bob) = d.user("bob", "Engineer").await;
    let id = open(
        &d,
        &d.admin,
        json!({"title": "slow", "impact": "low", "urgency": "low"}),
    )
    .await["id"]
        .as_u64()
        .expect("id");
    let path = format!("/api/v1/incidents/{id}");

    let a = d.patch(&path, &bob, json!({"impact": "HIGH"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["impact"], "high");
    assert_eq!(a.body["priority"], "P3", "high/low");
    let a = d.patch(&path, &bob, json!({"urgency": "high"})).await;
    assert_eq!(a.body["priority"], "P1", "high/high: {}", a.text);
    let a = d
        .patch(
            &path,
            &bob,
            json!({"impact": "medium", "urgency": "low", "title": "slower", "description": "much"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["priority"], "P4", "medium/low");
    assert_eq!(a.body["title"], "slower");
    assert_eq!(a.body["description"], "much");
    // What GET shows is what PATCH answered.
    assert_eq!(d.get(&path, &d.admin).await.body, a.body);

    let tl = timeline(&d, id).await;
    assert_eq!(kinds(&tl), ["created", "updated", "updated", "updated"]);
    for e in &tl[1..] {
        assert_eq!(e["actor"]["name"], "bob", "{e}");
        assert!(
            e["detail"]["priority"].is_object(),
            "the priority change is recorded: {e}"
        );
    }
    assert_eq!(tl[1]["detail"]["priority"]["from"], "P5", "{}", tl[1]);
    assert_eq!(tl[1]["detail"]["priority"]["to"], "P3", "{}", tl[1]);
    assert_eq!(tl[1]["detail"]["impact"]["to"], "high", "{}", tl[1]);

    // A PATCH that changes nothing records nothing.
    let a = d.patch(&path, &bob, json!({"title": "slower"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(timeline(&d, id).await.len(), 4);

    // Status is not a PATCH field: it goes through /transition.
    let a = d.patch(&path, &bob, json!({"status": "resolved"})).await;
    assert_field_error(&a, 422, "status");
    assert_eq!(status_of(&d, id).await, "new");

    // Bad values name the field and change nothing.
    assert_field_error(
        &d.patch(&path, &bob, json!({"impact": "huge"})).await,
        422,
        "impact",
    );
    assert_field_error(
        &d.patch(&path, &bob, json!({"title": ""})).await,
        422,
        "title",
    );
    assert_field_error(
        &d.patch(&path, &bob, json!({"service_id": 4242})).await,
        422,
        "service_id",
    );
    // An incident always has a service: null is refused, not ignored.
    assert_field_error(
        &d.patch(&path, &bob, json!({"service_id": null, "title": "moved"}))
            .await,
        422,
        "service_id",
    );
    assert_eq!(d.get(&path, &d.admin).await.body["priority"], "P4");
    assert_eq!(timeline(&d, id).await.len(), 4);

    // A final incident no longer changes.
    must_move(&d, id, "cancelled").await;
    d.patch(&path, &d.admin, json!({"title": "again"}))
        .await
        .assert_problem(409);
}

// ---------------------------------------------------------------------------------------
// The lifecycle
// ---------------------------------------------------------------------------------------

const STATUSES: [&str; 7] = [
    "new",
    "acknowledged",
    "in_progress",
    "on_hold",
    "resolved",
    "closed",
    "cancelled",
];

/// The moves the incident lifecycle allows.
fn allowed(from: &str, to: &str) -> bool {
    let ok: &[&str] = match from {
        "new" => &[
            "acknowledged",
            "in_progress",
            "on_hold",
            "resolved",
            "cancelled",
        ],
        "acknowledged" => &["in_progress", "on_hold", "resolved", "cancelled"],
        "in_progress" => &["on_hold", "resolved", "cancelled"],
        "on_hold" => &["in_progress", "resolved", "cancelled"],
        // Reopen (to new or straight back to work) or close.
        "resolved" => &["new", "acknowledged", "in_progress", "closed"],
        // Final.
        "closed" | "cancelled" => &[],
        other => panic!("unknown status {other}"),
    };
    ok.contains(&to)
}

/// How to bring a new incident to `status`.
fn path_to(status: &str) -> &'static [&'static str] {
    match status {
        "new" => &[],
        "acknowledged" => &["acknowledged"],
        "in_progress" => &["in_progress"],
        "on_hold" => &["on_hold"],
        "resolved" => &["resolved"],
        "closed" => &["resolved", "closed"],
        "cancelled" => &["cancelled"],
        other => panic!("unknown status {other}"),
    }
}

#[tokio::test]
async fn every_move_of_the_lifecycle_is_allowed_or_refused_with_409() {
    let d = TestDaemon::start().await;
    let mut checked = 0;
    for from in STATUSES {
        for to in STATUSES {
            let id = open_simple(&d, &format!("{from} -> {to}")).await;
            for step in path_to(from) {
                must_move(&d, id, step).await;
            }
            let before = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
            let a = move_to(&d, &d.admin, id, to).await;
            if allowed(from, to) {
                assert_eq!(a.status, 200, "{from} -> {to}: {}", a.text);
                assert_eq!(a.body["status"], to);
            } else {
                a.assert_problem(409);
                let detail = a.body["detail"].as_str().expect("detail");
                assert!(
                    detail.contains(from) && detail.contains(to),
                    "{from} -> {to}: the detail names both states: {detail}"
                );
                let after = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
                assert_eq!(after.body, before.body, "a refused move changes nothing");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 49);
}

#[tokio::test]
async fn resolved_reopens_and_closed_is_final() {
    let d = TestDaemon::start().await;
    let id = open_simple(&d, "flapping").await;
    must_move(&d, id, "acknowledged").await;
    let acked = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    let acked_at = acked.body["acknowledged_at"].clone();
    assert!(acked_at.is_string(), "{}", acked.text);

    must_move(&d, id, "resolved").await;
    let r = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert!(r.body["resolved_at"].is_string(), "{}", r.text);

    must_move(&d, id, "new").await;
    let r = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert!(r.body["resolved_at"].is_null(), "reopen clears: {}", r.text);
    assert_eq!(r.body["reopen_count"], 1);
    assert_eq!(
        r.body["acknowledged_at"], acked_at,
        "first response is kept"
    );

    must_move(&d, id, "resolved").await;
    must_move(&d, id, "in_progress").await;
    must_move(&d, id, "resolved").await;
    must_move(&d, id, "closed").await;
    let r = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(r.body["reopen_count"], 2);
    assert!(r.body["closed_at"].is_string() && r.body["resolved_at"].is_string());
    for to in STATUSES {
        let a = move_to(&d, &d.admin, id, to).await;
        a.assert_problem(409);
        assert!(
            a.body["detail"]
                .as_str()
                .expect("detail")
                .contains("closed")
        );
    }
    assert_eq!(status_of(&d, id).await, "closed");

    // An unknown target is a validation error, not a conflict.
    let other = open_simple(&d, "other").await;
    assert_field_error(&move_to(&d, &d.admin, other, "done").await, 422, "to");
    assert_field_error(
        &d.post(
            &format!("/api/v1/incidents/{other}/transition"),
            &d.admin,
            json!({}),
        )
        .await,
        422,
        "to",
    );
}

#[tokio::test]
async fn closing_and_cancelling_need_incident_close() {
    let d = TestDaemon::start().await;
    let (_, eng) = d.user("eve", "Engineer").await;
    let (_, mgr) = d.user("max", "Manager").await;

    let a = open_simple(&d, "a").await;
    assert_eq!(move_to(&d, &eng, a, "acknowledged").await.status, 200);
    assert_eq!(move_to(&d, &eng, a, "resolved").await.status, 200);
    let refused = move_to(&d, &eng, a, "closed").await;
    refused.assert_problem(403);
    assert!(
        refused.body["detail"]
            .as_str()
            .expect("detail")
            .contains("incident:close"),
        "{}",
        refused.text
    );
    assert_eq!(status_of(&d, a).await, "resolved");
    let ok = move_to(&d, &mgr, a, "closed").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["status"], "closed");

    let b = open_simple(&d, "b").await;
    move_to(&d, &eng, b, "cancelled").await.assert_problem(403);
    assert_eq!(status_of(&d, b).await, "new");
    let ok = move_to(&d, &mgr, b, "cancelled").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["status"], "cancelled");

    // Engineers do everything else: reopen included.
    let c = open_simple(&d, "c").await;
    for to in [
        "on_hold",
        "in_progress",
        "resolved",
        "acknowledged",
        "resolved",
    ] {
        let r = move_to(&d, &eng, c, to).await;
        assert_eq!(r.status, 200, "engineer -> {to}: {}", r.text);
    }
}

#[tokio::test]
async fn viewers_read_but_change_nothing() {
    let d = TestDaemon::start().await;
    let (_, viewer) = d.user("vic", "Viewer").await;
    let id = open_simple(&d, "visible").await;
    let c = d
        .post(
            &format!("/api/v1/incidents/{id}/comments"),
            &d.admin,
            json!({"body": "hello"}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.text);

    for path in [
        "/api/v1/incidents".to_owned(),
        format!("/api/v1/incidents/{id}"),
        format!("/api/v1/incidents/{id}/comments"),
        format!("/api/v1/incidents/{id}/timeline"),
    ] {
        let a = d.get(&path, &viewer).await;
        assert_eq!(a.status, 200, "viewer GET {path}: {}", a.text);
    }
    assert_eq!(
        d.get(&format!("/api/v1/incidents/{id}/comments"), &viewer)
            .await
            .body["items"][0]["body"],
        "hello"
    );

    let writes = [
        (
            "/api/v1/incidents".to_owned(),
            json!({"title": "x", "impact": "high", "urgency": "high"}),
        ),
        (
            format!("/api/v1/incidents/{id}/comments"),
            json!({"body": "me too"}),
        ),
        (
            format!("/api/v1/incidents/{id}/transition"),
            json!({"to": "acknowledged"}),
        ),
        (
            format!("/api/v1/incidents/{id}/assign"),
            json!({"assignee_id": 1}),
        ),
    ];
    for (path, body) in writes {
        let a = d.post(&path, &viewer, body).await;
        a.assert_problem(403);
        assert!(
            a.body["detail"]
                .as_str()
                .expect("detail")
                .contains("incident:write"),
            "{path}: {}",
            a.text
        );
    }
    d.patch(
        &format!("/api/v1/incidents/{id}"),
        &viewer,
        json!({"title": "mine"}),
    )
    .await
    .assert_problem(403);

    // Nothing changed.
    let i = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(i.body["status"], "new");
    assert_eq!(i.body["title"], "visible");
    assert!(i.body["assignee_id"].is_null());
    assert_eq!(list_ids(&d, "").await, vec![id]);
    assert_eq!(kinds(&timeline(&d, id).await), ["created", "commented"]);

    // No token at all is 401.
    let anon = d
        .call(reqwest::Method::GET, "/api/v1/incidents", None, None)
        .await;
    anon.assert_problem(401);
}

// ---------------------------------------------------------------------------------------
// Assignment
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn assignment_to_people_and_groups() {
    let d = TestDaemon::start().await;
    let (alice, eng) = d.user("alice", "Engineer").await;
    let (gone, _) = d.user("gone", "Engineer").await;
    let dba = create_group(&d, "dba").await;
    let id = open_simple(&d, "needs an owner").await;
    let path = format!("/api/v1/incidents/{id}/assign");
    async fn get(d: &TestDaemon, id: u64) -> Value {
        d.get(&format!("/api/v1/incidents/{id}"), &d.admin)
            .await
            .body
    }

    let a = d.post(&path, &eng, json!({"assignee_id": alice})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["assignee_id"], alice);
    assert!(a.body["group_id"].is_null());

    let a = d.post(&path, &eng, json!({"group_id": dba})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["group_id"], dba);
    assert_eq!(a.body["assignee_id"], alice, "an absent field stays");

    let a = d.post(&path, &eng, json!({"assignee_id": null})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.body["assignee_id"].is_null(), "null clears: {}", a.text);
    assert_eq!(a.body["group_id"], dba);
    let now = get(&d, id).await;
    assert!(now["assignee_id"].is_null() && now["group_id"] == dba);

    // Unknown user, unknown group, deactivated user: 422 naming the field, nothing changes.
    assert_field_error(
        &d.post(&path, &eng, json!({"assignee_id": 9999})).await,
        422,
        "assignee_id",
    );
    assert_field_error(
        &d.post(&path, &eng, json!({"group_id": 9999})).await,
        422,
        "group_id",
    );
    d.deactivate(gone).await;
    assert_field_error(
        &d.post(&path, &eng, json!({"assignee_id": gone})).await,
        422,
        "assignee_id",
    );
    // Neither field given.
    d.post(&path, &eng, json!({})).await.assert_problem(422);
    assert_eq!(get(&d, id).await, now);

    let a = d
        .post(&path, &eng, json!({"assignee_id": alice, "group_id": null}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["assignee_id"], alice);
    assert!(a.body["group_id"].is_null());

    // Every effective assignment is on the timeline as an update by the engineer.
    let tl = timeline(&d, id).await;
    assert_eq!(
        kinds(&tl),
        ["created", "updated", "updated", "updated", "updated"]
    );
    assert!(tl[1..].iter().all(|e| e["actor"]["name"] == "alice"));

    d.post(
        "/api/v1/incidents/9999/assign",
        &eng,
        json!({"assignee_id": alice}),
    )
    .await
    .assert_problem(404);
}

// ---------------------------------------------------------------------------------------
// Comments and the timeline
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn comments_are_added_and_listed_in_order() {
    let d = TestDaemon::start().await;
    let (carol_id, carol) = d.user("carol", "Engineer").await;
    let id = open_simple(&d, "chatty").await;
    let path = format!("/api/v1/incidents/{id}/comments");

    let mut ids = Vec::new();
    for (n, body) in ["first look", "  重启了服务  ", "third"].iter().enumerate() {
        let a = d.post(&path, &carol, json!({"body": body})).await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.body["body"], body.trim(), "comment {n} is trimmed");
        assert_eq!(a.body["incident_id"], id);
        assert_eq!(a.body["author"]["name"], "carol");
        assert_eq!(a.body["author"]["id"], carol_id);
        ids.push(a.id());
    }
    let list = d.get(&path, &d.admin).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(item_ids(&list), ids, "oldest first");
    assert_eq!(list.body["items"][1]["body"], "重启了服务");

    // Pages of one.
    let first = d.get(&format!("{path}?limit=2"), &d.admin).await;
    assert_eq!(item_ids(&first), ids[..2]);
    let cursor = first.body["next_cursor"].as_str().expect("cursor");
    let rest = d
        .get(&format!("{path}?limit=2&cursor={cursor}"), &d.admin)
        .await;
    assert_eq!(item_ids(&rest), ids[2..]);
    assert!(rest.body["next_cursor"].is_null());

    for bad in [json!({"body": ""}), json!({"body": "   "}), json!({})] {
        assert_field_error(&d.post(&path, &carol, bad).await, 422, "body");
    }
    assert_eq!(item_ids(&d.get(&path, &d.admin).await), ids);

    let tl = timeline(&d, id).await;
    assert_eq!(
        kinds(&tl),
        ["created", "commented", "commented", "commented"]
    );
    assert_eq!(tl[2]["detail"]["body"], "重启了服务");
}

#[tokio::test]
async fn the_timeline_records_every_change_in_order_with_its_actor() {
    let d = TestDaemon::start().await;
    let (_, alice) = d.user("alice", "Engineer").await;
    let (_, bob) = d.user("bob", "Manager").await;
    let (_, carol) = d.user("carol", "Engineer").await;
    let id = open(
        &d,
        &alice,
        json!({"title": "api errors", "impact": "high", "urgency": "high"}),
    )
    .await["id"]
        .as_u64()
        .expect("id");
    let p = d
        .post(
            "/api/v1/problems",
            &bob,
            json!({"title": "bad deploy pipeline"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let problem = p.id();

    assert_eq!(move_to(&d, &carol, id, "acknowledged").await.status, 200);
    let a = d
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &bob,
            json!({"urgency": "low"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = d
        .post(
            &format!("/api/v1/incidents/{id}/comments"),
            &carol,
            json!({"body": "rolling back"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let a = d
        .post(
            &format!("/api/v1/problems/{problem}/incidents"),
            &bob,
            json!({"incident_id": id}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = d
        .post(
            &format!("/api/v1/incidents/{id}/transition"),
            &alice,
            json!({"to": "resolved", "note": "rolled back"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);

    let tl = timeline(&d, id).await;
    assert_eq!(
        kinds(&tl),
        [
            "created",
            "status_changed",
            "updated",
            "commented",
            "problem_linked",
            "status_changed"
        ]
    );
    let actors: Vec<&str> = tl
        .iter()
        .map(|e| e["actor"]["name"].as_str().expect("actor name"))
        .collect();
    assert_eq!(actors, ["alice", "carol", "bob", "carol", "bob", "alice"]);
    assert!(tl.iter().all(|e| e["actor"]["kind"] == "user"));
    assert!(tl.iter().all(|e| e["incident_id"] == id));
    let entry_ids: Vec<u64> = tl.iter().map(|e| e["id"].as_u64().expect("id")).collect();
    assert!(
        entry_ids.windows(2).all(|w| w[0] < w[1]),
        "id order: {entry_ids:?}"
    );
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = tl
        .iter()
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(e["at"].as_str().expect("at")).expect("rfc3339")
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(tl[1]["detail"]["from"], "new");
    assert_eq!(tl[1]["detail"]["to"], "acknowledged");
    assert_eq!(tl[2]["detail"]["urgency"]["to"], "low");
    assert_eq!(tl[4]["detail"]["problem_id"], problem);
    assert_eq!(tl[5]["detail"]["note"], "rolled back");

    // Paged, the timeline is the same sequence.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let a = d
            .get(
                &format!("/api/v1/incidents/{id}/timeline?limit=4{cursor}"),
                &d.admin,
            )
            .await;
        paged.extend(item_ids(&a));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, entry_ids);
}

// ---------------------------------------------------------------------------------------
// Lists and filters
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_filter_selects_exactly_the_matching_incidents() {
    let d = TestDaemon::start().await;
    let (alice, _) = d.user("alice", "Engineer").await;
    let (bob, _) = d.user("bob", "Engineer").await;
    let g1 = create_group(&d, "dba").await;
    let g2 = create_group(&d, "net").await;
    let pay = create_service(&d, "payments").await;

    struct Spec {
        name: &'static str,
        body: Value,
        path: &'static [&'static str],
    }
    let specs = vec![
        Spec {
            name: "db",
            body: json!({"title": "Database latency high", "description": "primary db slow", "impact": "high", "urgency": "high", "service_id": pay, "assignee_id": alice, "group_id": g1}),
            path: &["acknowledged"],
        },
        Spec {
            name: "backup",
            body: json!({"title": "Database backup failed", "description": "nightly job", "impact": "medium", "urgency": "medium", "group_id": g1}),
            path: &[],
        },
        Spec {
            name: "perf",
            body: json!({"title": "系统性能问题", "description": "用户报告系统响应缓慢", "impact": "High", "urgency": "Medium", "service_id": 1, "assignee_id": bob}),
            path: &["resolved"],
        },
        Spec {
            name: "login",
            body: json!({"title": "Login page latency", "description": "users see slow logins", "impact": "low", "urgency": "low", "service_id": pay, "assignee_id": alice, "group_id": g2}),
            path: &["in_progress"],
        },
        Spec {
            name: "net",
            body: json!({"title": "网络中断", "description": "机房A网络不可用, database unreachable", "impact": "high", "urgency": "high", "service_id": pay}),
            path: &["on_hold"],
        },
        Spec {
            name: "disk",
            body: json!({"title": "Disk full on api-01", "impact": "medium", "urgency": "low", "assignee_id": bob, "group_id": g2}),
            path: &["cancelled"],
        },
        Spec {
            name: "cache",
            body: json!({"title": "Cache latency spike", "impact": "medium", "urgency": "high"}),
            path: &["resolved", "closed"],
        },
    ];
    let mut id: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &specs {
        let b = open(&d, &d.admin, s.body.clone()).await;
        let i = b["id"].as_u64().expect("id");
        for step in s.path {
            must_move(&d, i, step).await;
        }
        id.insert(s.name, i);
    }
    let ids = |names: &[&str]| desc(&names.iter().map(|n| id[n]).collect::<Vec<_>>());

    let cases: Vec<(String, Vec<u64>)> = vec![
        (
            String::new(),
            ids(&["db", "backup", "perf", "login", "net", "disk", "cache"]),
        ),
        ("status=new".into(), ids(&["backup"])),
        ("status=acknowledged,resolved".into(), ids(&["db", "perf"])),
        (
            format!("status={}", enc("in_progress, on_hold")),
            ids(&["login", "net"]),
        ),
        ("status=open".into(), ids(&["db", "backup", "login", "net"])),
        (
            "status=open,cancelled".into(),
            ids(&["db", "backup", "login", "net", "disk"]),
        ),
        ("status=closed".into(), ids(&["cache"])),
        ("status=cancelled".into(), ids(&["disk"])),
        ("priority=P1".into(), ids(&["db", "net"])),
        ("priority=P2,p5".into(), ids(&["perf", "login", "cache"])),
        ("priority=P3".into(), ids(&["backup"])),
        (format!("service_id={pay}"), ids(&["db", "login", "net"])),
        (
            "service_id=1".into(),
            ids(&["backup", "perf", "disk", "cache"]),
        ),
        (format!("assignee_id={alice}"), ids(&["db", "login"])),
        (format!("assignee_id={bob}"), ids(&["perf", "disk"])),
        (format!("group_id={g1}"), ids(&["db", "backup"])),
        (format!("group_id={g2}"), ids(&["login", "disk"])),
        ("q=latency".into(), ids(&["db", "login", "cache"])),
        ("q=DATABASE".into(), ids(&["db", "backup", "net"])),
        (format!("q={}", enc("database latency")), ids(&["db"])),
        (format!("q={}", enc("latency database")), ids(&["db"])),
        (format!("q={}", enc("slow primary")), ids(&["db"])),
        ("q=latenc".into(), vec![]),
        (format!("q={}", enc("性能")), ids(&["perf"])),
        (format!("q={}", enc("响应缓慢")), ids(&["perf"])),
        (format!("q={}", enc("慢")), ids(&["perf"])),
        (format!("q={}", enc("系统 缓慢")), ids(&["perf"])),
        (format!("q={}", enc("网络")), ids(&["net"])),
        (format!("q={}", enc("网络 database")), ids(&["net"])),
        (format!("q={}", enc("能系")), vec![]),
        (format!("q={}", enc("不存在")), vec![]),
        (
            format!("status=open&service_id={pay}&priority=P1"),
            ids(&["db", "net"]),
        ),
        ("status=open&q=latency".into(), ids(&["db", "login"])),
        (
            format!("assignee_id={alice}&group_id={g2}"),
            ids(&["login"]),
        ),
        (format!("assignee_id={bob}&status=open"), vec![]),
        (
            format!("group_id={g1}&q={}", enc("backup")),
            ids(&["backup"]),
        ),
    ];
    for (query, expected) in &cases {
        assert_eq!(&list_ids(&d, query).await, expected, "?{query}");
        // The same answer one item at a time through the cursors.
        let sep = if query.is_empty() { "" } else { "&" };
        assert_eq!(
            &walk(&d, &d.admin, &format!("{query}{sep}limit=1")).await,
            expected,
            "?{query} in pages of one"
        );
    }

    // Bad parameters are 422 naming the parameter.
    for (query, field) in [
        ("status=bogus", "status"),
        ("status=new,bogus", "status"),
        ("priority=P9", "priority"),
        ("service_id=abc", "service_id"),
        ("assignee_id=-1", "assignee_id"),
        ("group_id=0", "group_id"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=xyz", "cursor"),
        ("q=-", "q"),
        ("q=%F0%9F%92%A5", "q"),
    ] {
        let a = d.get(&format!("/api/v1/incidents?{query}"), &d.admin).await;
        assert_field_error(&a, 422, field);
    }
    for list in ["/api/v1/problems", "/api/v1/known-errors"] {
        let a = d.get(&format!("{list}?q=%21%21"), &d.admin).await;
        assert_field_error(&a, 422, "q");
    }

    // The indexes follow changes.
    let backup = id["backup"];
    let a = d
        .patch(
            &format!("/api/v1/incidents/{backup}"),
            &d.admin,
            json!({"title": "Replication lag", "description": "复制延迟"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(list_ids(&d, "q=backup").await, Vec::<u64>::new());
    assert_eq!(list_ids(&d, "q=replication").await, vec![backup]);
    assert_eq!(
        list_ids(&d, &format!("q={}", enc("延迟"))).await,
        vec![backup]
    );
    assert_eq!(list_ids(&d, "q=database").await, ids(&["db", "net"]));
    must_move(&d, backup, "acknowledged").await;
    assert_eq!(list_ids(&d, "status=new").await, Vec::<u64>::new());
    assert_eq!(
        list_ids(&d, "status=acknowledged").await,
        ids(&["db", "backup"])
    );
    let login = id["login"];
    let a = d
        .patch(
            &format!("/api/v1/incidents/{login}"),
            &d.admin,
            json!({"service_id": 1, "impact": "high", "urgency": "high"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        list_ids(&d, &format!("service_id={pay}")).await,
        ids(&["db", "net"])
    );
    assert_eq!(
        list_ids(&d, "priority=P1").await,
        ids(&["db", "login", "net"])
    );
    assert_eq!(list_ids(&d, "priority=P5").await, Vec::<u64>::new());
    let db = id["db"];
    let a = d
        .post(
            &format!("/api/v1/incidents/{db}/assign"),
            &d.admin,
            json!({"assignee_id": null, "group_id": g2}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        list_ids(&d, &format!("assignee_id={alice}")).await,
        ids(&["login"])
    );
    assert_eq!(
        list_ids(&d, &format!("group_id={g2}")).await,
        ids(&["db", "login", "disk"])
    );
    assert_eq!(
        list_ids(&d, &format!("group_id={g1}")).await,
        ids(&["backup"])
    );
}

#[tokio::test]
async fn default_and_maximum_page_sizes() {
    let d = TestDaemon::start().await;
    let mut all = Vec::new();
    for n in 0..55 {
        all.push(open_simple(&d, &format!("n{n}")).await);
    }
    let all = desc(&all);
    let a = d.get("/api/v1/incidents", &d.admin).await;
    assert_eq!(item_ids(&a), all[..50], "default limit is 50");
    assert_eq!(a.body["next_cursor"], all[49].to_string());
    let a = d.get("/api/v1/incidents?limit=500", &d.admin).await;
    assert_eq!(item_ids(&a), all);
    assert!(a.body["next_cursor"].is_null());
    // Exactly a full last page: no cursor pointing at an empty page.
    let a = d.get("/api/v1/incidents?limit=55", &d.admin).await;
    assert!(a.body["next_cursor"].is_null(), "{}", a.text);
}

/// Opens incidents over HTTP until told to stop; returns their ids.
fn open_in_background(
    d: &TestDaemon,
    created: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<u64>> {
    let http = d.http.clone();
    let url = d.url("/api/v1/incidents");
    let token = d.admin.clone();
    tokio::spawn(async move {
        let mut ids = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let res = http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"title": format!("concurrent {n}"), "impact": "low", "urgency": "high"}))
                .send()
                .await
                .expect("send");
            let a = common::into_answer(res).await;
            assert_eq!(a.status, 201, "{}", a.text);
            ids.push(a.id());
            created.fetch_add(1, Ordering::SeqCst);
        }
        ids
    })
}

/// Walks `?{query}&limit=7` page by page, waiting after every page until the background
/// task has opened at least one more incident. Returns the ids and the number of pages.
async fn walk_while_creating(
    d: &TestDaemon,
    query: &str,
    created: &AtomicUsize,
) -> (Vec<u64>, usize) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/incidents?{query}&limit=7&cursor={c}"),
            None => format!("/api/v1/incidents?{query}&limit=7"),
        };
        let a = d.get(&path, &d.admin).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        let page = item_ids(&a);
        assert!(page.len() <= 7, "{path}: {}", a.text);
        out.extend(page);
        pages += 1;
        let seen = created.load(Ordering::SeqCst);
        wait_until("a concurrent incident between two pages", || {
            created.load(Ordering::SeqCst) > seen
        })
        .await;
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (out, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_walks_see_every_incident_once_while_more_are_opened() {
    let d = TestDaemon::start().await;
    let mut existing = BTreeSet::new();
    let mut open_ones = BTreeSet::new();
    for n in 0..64 {
        let id = open_simple(&d, &format!("before {n}")).await;
        existing.insert(id);
        if n % 3 == 0 {
            must_move(&d, id, "resolved").await;
        } else {
            open_ones.insert(id);
        }
    }
    let created = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let bg = open_in_background(&d, created.clone(), stop.clone());
    wait_until("the background writer starts", || {
        created.load(Ordering::SeqCst) > 0
    })
    .await;

    let (all, pages) = walk_while_creating(&d, "", &created).await;
    let (open_walk, open_pages) = walk_while_creating(&d, "status=open", &created).await;
    stop.store(true, Ordering::SeqCst);
    let during: BTreeSet<u64> = bg.await.expect("background task").into_iter().collect();
    assert!(
        during.len() >= pages + open_pages,
        "incidents were opened between pages"
    );

    for (name, walked, expected) in [("all", &all, &existing), ("open", &open_walk, &open_ones)] {
        assert!(
            walked.windows(2).all(|w| w[0] > w[1]),
            "{name}: strictly descending, no duplicates: {walked:?}"
        );
        let walked_set: BTreeSet<u64> = walked.iter().copied().collect();
        let missing: Vec<_> = expected.difference(&walked_set).collect();
        assert!(missing.is_empty(), "{name}: gaps: {missing:?}");
        // Anything else it returned was opened concurrently (and is real).
        for id in walked_set.difference(expected) {
            assert!(
                during.contains(id) && !existing.contains(id),
                "{name}: INC-{id} is neither pre-existing nor concurrent"
            );
        }
    }
    // The resolved ones never showed up in the open walk.
    assert!(
        open_walk
            .iter()
            .all(|id| !existing.contains(id) || open_ones.contains(id))
    );
}

// ---------------------------------------------------------------------------------------
// Unknown ids
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_incidents_are_404_everywhere() {
    let d = TestDaemon::start().await;
    open_simple(&d, "exists").await;
    for id in ["999999", "0", "abc", "INC-1x"] {
        let base = format!("/api/v1/incidents/{id}");
        d.get(&base, &d.admin).await.assert_problem(404);
        d.patch(&base, &d.admin, json!({"title": "x"}))
            .await
            .assert_problem(404);
        d.post(
            &format!("{base}/transition"),
            &d.admin,
            json!({"to": "acknowledged"}),
        )
        .await
        .assert_problem(404);
        d.post(
            &format!("{base}/assign"),
            &d.admin,
            json!({"assignee_id": 1}),
        )
        .await
        .assert_problem(404);
        d.get(&format!("{base}/comments"), &d.admin)
            .await
            .assert_problem(404);
        d.post(&format!("{base}/comments"), &d.admin, json!({"body": "hi"}))
            .await
            .assert_problem(404);
        d.get(&format!("{base}/timeline"), &d.admin)
            .await
            .assert_problem(404);
    }
    // Nothing was written on the way.
    assert_eq!(list_ids(&d, "").await.len(), 1);
}

/// Paths take ids as people write them: `INC-42` (any case) and `#42` besides `42`, as
/// chat does and the `number` fields show; problems `PRB-7`.
#[tokio::test]
async fn paths_take_incident_and_problem_numbers() {
    let d = TestDaemon::start().await;
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "Queue stuck", "impact": "low", "urgency": "low"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    for path in [
        format!("/api/v1/incidents/INC-{id}"),
        format!("/api/v1/incidents/inc-{id}"),
        format!("/api/v1/incidents/%23{id}"),
        format!("/api/v1/incidents/INC-{id}/timeline"),
        format!("/api/v1/incidents/INC-{id}/alerts"),
    ] {
        let got = d.get(&path, &d.admin).await;
        assert_eq!(got.status, 200, "{path}: {}", got.text);
    }
    let p = d
        .post(
            "/api/v1/problems",
            &d.admin,
            json!({"title": "Queue consumer leaks connections"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let shown = d
        .get(&format!("/api/v1/problems/PRB-{}", p.id()), &d.admin)
        .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    for wrong in ["INC-", "INC-x", "PRB-1", "0", "INC-99999"] {
        d.get(&format!("/api/v1/incidents/{wrong}"), &d.admin)
            .await
            .assert_problem(404);
    }
}

/// Bodies take the same numbers: a problem link, a merge's sources.
#[tokio::test]
async fn bodies_take_incident_and_problem_numbers() {
    let d = TestDaemon::start().await;
    let mut ids = Vec::new();
    for title in ["Queue stuck", "Queue slow", "Queue lagging"] {
        let a = d
            .post(
                "/api/v1/incidents",
                &d.admin,
                json!({"title": title, "impact": "low", "urgency": "low"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        ids.push(a.id());
    }
    let p = d
        .post(
            "/api/v1/problems",
            &d.admin,
            json!({"title": "Queue consumer leaks connections"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let links = format!("/api/v1/problems/PRB-{}/incidents", p.id());
    for wrong in [json!("PRB-1"), json!("INC-x"), json!(-3)] {
        let a = d
            .post(&links, &d.admin, json!({"incident_id": wrong}))
            .await;
        a.assert_problem(422);
        assert!(a.text.contains("incident_id"), "{wrong}: {}", a.text);
    }
    let linked = d
        .post(
            &links,
            &d.admin,
            json!({"incident_id": format!("INC-{}", ids[0])}),
        )
        .await;
    assert!(linked.status.is_success(), "{}", linked.text);
    let shown = d
        .get(&format!("/api/v1/incidents/{}", ids[0]), &d.admin)
        .await;
    assert!(
        shown.text.contains(&format!("{}", p.id())),
        "{}",
        shown.text
    );

    let merge = format!("/api/v1/incidents/INC-{}/merge", ids[0]);
    let refused = d
        .post(
            &merge,
            &d.admin,
            json!({"source_ids": [format!("INC-{}", ids[1]), "INC-"]}),
        )
        .await;
    refused.assert_problem(422);
    assert!(refused.text.contains("source_ids"), "{}", refused.text);
    let merged = d
        .post(
            &merge,
            &d.admin,
            json!({"source_ids": [format!("INC-{}", ids[1]), format!("#{}", ids[2])]}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    for source in &ids[1..] {
        let s = d
            .get(&format!("/api/v1/incidents/{source}"), &d.admin)
            .await;
        assert_eq!(s.body["merged_into"], ids[0], "{}", s.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_moves_alerts_and_groups_and_resolves_the_sources() {
    use common::ingest::{am_alert, am_webhook};
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let fire = async |group: &str, names: &[&str], status: &str| -> Value {
        let body = am_webhook(
            &format!("{{}}:{{alertname=\"{group}\"}}"),
            names
                .iter()
                .map(|n| am_alert(status, json!({"alertname": group, "instance": n})))
                .collect(),
        );
        let a = d.hook("alertmanager", &int.token, &body).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.body
    };
    let db = fire("DbDown", &["db-1"], "firing").await["opened"][0]
        .as_u64()
        .expect("opened");
    let api = fire("ApiErrors", &["api-1", "api-2"], "firing").await["opened"][0]
        .as_u64()
        .expect("opened");
    let web = fire("WebSlow", &["web-1"], "firing").await["opened"][0]
        .as_u64()
        .expect("opened");
    let get = async |id: u64| {
        d.get(&format!("/api/v1/incidents/{id}"), &d.admin)
            .await
            .body
    };
    let path = format!("/api/v1/incidents/{db}/merge");

    // Refused: nothing, itself, twice, unknown, a viewer; a resolved incident neither
    // takes others in nor goes into one.
    for (body, field_reason) in [
        (json!({"source_ids": []}), "1 to 50"),
        (json!({"source_ids": [db]}), "into itself"),
        (json!({"source_ids": [api, api]}), "named twice"),
    ] {
        let a = d.post(&path, &d.admin, body).await;
        a.assert_problem(422);
        assert!(a.text.contains(field_reason), "{}", a.text);
    }
    d.post(&path, &d.admin, json!({"source_ids": [999_999]}))
        .await
        .assert_problem(404);
    let (_, viewer) = d.user("vera", "Viewer").await;
    d.post(&path, &viewer, json!({"source_ids": [api]}))
        .await
        .assert_problem(403);
    let resolved = fire("Flap", &["x"], "firing").await["opened"][0]
        .as_u64()
        .expect("opened");
    fire("Flap", &["x"], "resolved").await;
    assert_eq!(get(resolved).await["status"], "resolved");
    let a = d
        .post(&path, &d.admin, json!({"source_ids": [resolved]}))
        .await;
    a.assert_problem(409);
    assert!(
        a.text.contains("only open incidents can be merged"),
        "{}",
        a.text
    );
    d.post(
        &format!("/api/v1/incidents/{resolved}/merge"),
        &d.admin,
        json!({"source_ids": [api]}),
    )
    .await
    .assert_problem(409);
    // A merge refused halfway (api would go first) changes nothing.
    d.post(&path, &d.admin, json!({"source_ids": [api, resolved]}))
        .await
        .assert_problem(409);
    let a = get(api).await;
    assert_eq!(
        (a["status"].as_str(), a["alert_count"].as_u64()),
        (Some("new"), Some(2)),
        "{a}"
    );
    assert!(a["merged_into"].is_null(), "{a}");
    assert_eq!(
        d.all(&format!("/api/v1/incidents/{api}/alerts"))
            .await
            .len(),
        2
    );
    assert_eq!(get(db).await["alert_count"], 1);

    // One of api's alerts resolved before the merge: moved, not counted as firing.
    fire("ApiErrors", &["api-2"], "resolved").await;

    let m = d
        .post(&path, &d.admin, json!({"source_ids": [api, web]}))
        .await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(
        (
            m.body["alert_count"].as_u64(),
            m.body["firing_alerts"].as_u64()
        ),
        (Some(4), Some(3)),
        "{}",
        m.text
    );
    assert_eq!(
        d.all(&format!("/api/v1/incidents/{db}/alerts")).await.len(),
        4
    );
    for source in [api, web] {
        let s = get(source).await;
        assert_eq!(s["status"], "resolved", "{s}");
        assert_eq!(s["merged_into"], db, "{s}");
        assert_eq!(s["firing_alerts"], 0, "{s}");
        assert_eq!(s["alert_count"], 0, "its alerts went: {s}");
        // A merged incident is not reopened: work goes on in the target.
        let r = d
            .post(
                &format!("/api/v1/incidents/{source}/transition"),
                &d.admin,
                json!({"to": "new"}),
            )
            .await;
        r.assert_problem(409);
        assert!(
            r.text.contains(&format!("merged into INC-{db}")),
            "{}",
            r.text
        );
        assert!(
            d.all(&format!("/api/v1/incidents/{source}/alerts"))
                .await
                .is_empty()
        );
        let tl = d.all(&format!("/api/v1/incidents/{source}/timeline")).await;
        assert!(
            tl.iter().any(|e| e["summary"]
                .as_str()
                .is_some_and(|s| s.ends_with(&format!("merged into INC-{db}")))),
            "{tl:?}"
        );
    }
    let tl = d.all(&format!("/api/v1/incidents/{db}/timeline")).await;
    let merged: Vec<_> = tl.iter().filter(|e| e["kind"] == "merged").collect();
    assert_eq!(merged.len(), 2, "{tl:?}");
    assert!(
        merged
            .iter()
            .any(|e| e["summary"] == format!("INC-{api} merged in: 2 alert(s), 1 firing")),
        "{merged:?}"
    );
    let audit = d.get("/api/v1/audit?limit=500", &d.admin).await;
    assert!(
        audit
            .text
            .contains(&format!("merged INC-{api}, INC-{web} into INC-{db}")),
        "{}",
        audit.text
    );

    // Merged incidents count in no MTTR: only `resolved` (resolved by its alert) does.
    let overview = d
        .get("/api/v1/dashboard/overview?window=1d", &d.admin)
        .await;
    assert_eq!(overview.status, 200, "{}", overview.text);
    assert_eq!(overview.body["mttr"]["count"], 1, "{}", overview.text);

    // Later alerts of the merged groups join the target; when every alert resolves, the
    // target resolves.
    let sum = fire("ApiErrors", &["api-3"], "firing").await;
    assert_eq!(sum["opened"], json!([]), "{sum}");
    let sum = fire("WebSlow", &["web-2"], "firing").await;
    assert_eq!(sum["opened"], json!([]), "{sum}");
    assert_eq!(get(db).await["alert_count"], 6);
    fire("ApiErrors", &["api-1", "api-2", "api-3"], "resolved").await;
    fire("WebSlow", &["web-1", "web-2"], "resolved").await;
    assert_eq!(get(db).await["status"], "new");
    fire("DbDown", &["db-1"], "resolved").await;
    let t = get(db).await;
    assert_eq!(
        (t["status"].as_str(), t["firing_alerts"].as_u64()),
        (Some("resolved"), Some(0)),
        "{t}"
    );
}

/// The work goes on in a merge's target: it is linked to the sources' open problems (a
/// closed one's record is final); the sources keep their links.
#[tokio::test]
async fn a_merge_target_takes_the_sources_open_problems() {
    let d = TestDaemon::start().await;
    let target = open_simple(&d, "Checkout down").await;
    let first = open_simple(&d, "Payments down").await;
    let second = open_simple(&d, "Refunds down").await;
    let problem = async |title: &str, incident: u64| -> u64 {
        let p = d
            .post("/api/v1/problems", &d.admin, json!({"title": title}))
            .await;
        assert_eq!(p.status, 201, "{}", p.text);
        let a = d
            .post(
                &format!("/api/v1/problems/{}/incidents", p.id()),
                &d.admin,
                json!({"incident_id": incident}),
            )
            .await;
        assert!(a.status.is_success(), "{}", a.text);
        p.id()
    };
    let open_problem = problem("Connection pool too small", first).await;
    let closed_problem = problem("Old leak", second).await;
    let a = d
        .patch(
            &format!("/api/v1/problems/{closed_problem}"),
            &d.admin,
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);

    let a = d
        .post(
            &format!("/api/v1/incidents/{target}/merge"),
            &d.admin,
            json!({"source_ids": [first, second]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["problem_ids"], json!([open_problem]), "{}", a.text);
    let p = d
        .get(&format!("/api/v1/problems/{open_problem}"), &d.admin)
        .await;
    assert_eq!(p.body["incident_ids"], json!([target, first]), "{}", p.text);
    let source = d.get(&format!("/api/v1/incidents/{first}"), &d.admin).await;
    assert_eq!(source.body["problem_ids"], json!([open_problem]));
    assert!(
        kinds(&timeline(&d, target).await).contains(&"problem_linked".to_owned()),
        "the link is on the target's timeline"
    );
}
