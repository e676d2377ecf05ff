//! Problems over real HTTP: recording and analysing them, their lifecycle, the known-error
//! rule and database search, many-to-many links with incidents seen from both sides,
//! `problem:write` for Managers and Admins only, and 404s for unknown ids.
mod common;

use common::{Answer, TestDaemon};
use serde_json::{Value, json};

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

fn assert_field_error(a: &Answer, status: u16, field: &str) {
    a.assert_problem(status);
    assert!(
        a.body["errors"][field].is_array(),
        "expected an error naming `{field}`: {}",
        a.text
    );
}

fn item_ids(a: &Answer) -> Vec<u64> {
    a.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", a.text))
        .iter()
        .map(|i| i["id"].as_u64().expect("item id"))
        .collect()
}

fn desc(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable_by(|a, b| b.cmp(a));
    v
}

async fn new_problem(d: &TestDaemon, token: &str, body: Value) -> Value {
    let a = d.post("/api/v1/problems", token, body.clone()).await;
    assert_eq!(a.status, 201, "create {body}: {}", a.text);
    a.body
}

async fn problem_id(d: &TestDaemon, title: &str) -> u64 {
    new_problem(d, &d.admin, json!({"title": title})).await["id"]
        .as_u64()
        .expect("id")
}

async fn incident_id(d: &TestDaemon, title: &str) -> u64 {
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": title, "impact": "high", "urgency": "low"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.id()
}

async fn get_problem(d: &TestDaemon, id: u64) -> Value {
    let a = d.get(&format!("/api/v1/problems/{id}"), &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

async fn get_incident(d: &TestDaemon, id: u64) -> Value {
    let a = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

async fn set_status(d: &TestDaemon, id: u64, body: Value) -> Answer {
    d.patch(&format!("/api/v1/problems/{id}"), &d.admin, body)
        .await
}

async fn known_errors(d: &TestDaemon, q: Option<&str>) -> Vec<u64> {
    let path = match q {
        Some(q) => format!("/api/v1/known-errors?q={}", enc(q)),
        None => "/api/v1/known-errors".to_owned(),
    };
    let a = d.get(&path, &d.admin).await;
    assert_eq!(a.status, 200, "{path}: {}", a.text);
    item_ids(&a)
}

async fn list(d: &TestDaemon, query: &str) -> Vec<u64> {
    let a = d.get(&format!("/api/v1/problems?{query}"), &d.admin).await;
    assert_eq!(a.status, 200, "?{query}: {}", a.text);
    item_ids(&a)
}

#[tokio::test]
async fn problems_are_recorded_analysed_and_listed() {
    let d = TestDaemon::start().await;
    let (_, mgr) = d.user("mia", "Manager").await;
    let p = new_problem(
        &d,
        &mgr,
        json!({"title": "数据库连接池耗尽", "description": "recurring pool exhaustion", "impact": "High", "urgency": "high", "service_id": 1}),
    )
    .await;
    let id = p["id"].as_u64().expect("id");
    assert_eq!(p["status"], "open");
    assert_eq!(p["number"], format!("PRB-{id}"));
    assert_eq!(p["impact"], "high");
    assert_eq!(p["priority"], "P1");
    assert_eq!(p["service_id"], 1);
    assert_eq!(p["incident_ids"], json!([]));
    assert_eq!(p["known_error"], false);
    assert!(p["root_cause"].is_null() && p["workaround"].is_null());
    assert_eq!(p["created_by"]["name"], "mia");
    assert_eq!(get_problem(&d, id).await, p);

    // Validation (work is not assigned to someone deactivated, as on incidents).
    let (gone, _) = d.user("gone", "Engineer").await;
    d.deactivate(gone).await;
    for (body, field) in [
        (json!({"title": "x", "assignee_id": gone}), "assignee_id"),
        (json!({"description": "no title"}), "title"),
        (json!({"title": " "}), "title"),
        (json!({"title": "x", "impact": "massive"}), "impact"),
        (json!({"title": "x", "service_id": 77}), "service_id"),
        (json!({"title": "x", "status": "closed"}), "status"),
    ] {
        assert_field_error(&d.post("/api/v1/problems", &mgr, body).await, 422, field);
    }

    // Root-cause analysis.
    let path = format!("/api/v1/problems/{id}");
    let a = d
        .patch(
            &path,
            &mgr,
            json!({"root_cause": "connections leak on timeout", "impact_analysis": "checkout fails for 5% of users", "status": "investigating"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["root_cause"], "connections leak on timeout");
    assert_eq!(a.body["impact_analysis"], "checkout fails for 5% of users");
    assert_eq!(a.body["status"], "investigating");
    assert_eq!(a.body["known_error"], false);
    assert_eq!(get_problem(&d, id).await, a.body);

    let a = d.patch(&path, &mgr, json!({"urgency": "low"})).await;
    assert_eq!(a.body["priority"], "P3", "high/low: {}", a.text);
    let a = d.patch(&path, &mgr, json!({"urgency": null})).await;
    assert!(a.body["priority"].is_null(), "{}", a.text);
    let a = d.patch(&path, &mgr, json!({"impact_analysis": null})).await;
    assert!(
        a.body["impact_analysis"].is_null(),
        "null clears: {}",
        a.text
    );
    assert_eq!(a.body["root_cause"], "connections leak on timeout");

    // Known error without a workaround: 422 naming it, nothing changes.
    let before = get_problem(&d, id).await;
    let a = d.patch(&path, &mgr, json!({"status": "known_error"})).await;
    assert_field_error(&a, 422, "workaround");
    assert_eq!(get_problem(&d, id).await, before);

    // Listing and filters.
    let other = problem_id(&d, "printer on fire").await;
    assert_eq!(list(&d, "").await, vec![other, id]);
    assert_eq!(list(&d, "status=investigating").await, vec![id]);
    assert_eq!(
        list(&d, "status=open").await,
        vec![other, id],
        "open means not resolved"
    );
    assert_eq!(list(&d, "service_id=1").await, vec![id]);
    assert_eq!(list(&d, &format!("q={}", enc("连接池"))).await, vec![id]);
    assert_eq!(
        list(&d, "q=leak").await,
        vec![id],
        "root cause is searchable"
    );
    assert_eq!(list(&d, "q=printer").await, vec![other]);
    let first = d.get("/api/v1/problems?limit=1", &d.admin).await;
    assert_eq!(item_ids(&first), vec![other]);
    let c = first.body["next_cursor"].as_str().expect("cursor");
    assert_eq!(list(&d, &format!("limit=1&cursor={c}")).await, vec![id]);
    d.get("/api/v1/problems?status=nope", &d.admin)
        .await
        .assert_problem(422);
}

const STATUSES: [&str; 5] = ["open", "investigating", "known_error", "resolved", "closed"];

fn allowed(from: &str, to: &str) -> bool {
    let ok: &[&str] = match from {
        "open" => &["investigating", "known_error", "resolved", "closed"],
        "investigating" => &["known_error", "resolved", "closed"],
        "known_error" => &["investigating", "resolved", "closed"],
        "resolved" => &["investigating", "closed"],
        "closed" => &[],
        other => panic!("{other}"),
    };
    ok.contains(&to)
}

fn path_to(status: &str) -> &'static [&'static str] {
    match status {
        "open" => &[],
        "investigating" => &["investigating"],
        "known_error" => &["known_error"],
        "resolved" => &["resolved"],
        "closed" => &["closed"],
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn every_move_of_the_problem_lifecycle() {
    let d = TestDaemon::start().await;
    for from in STATUSES {
        for to in STATUSES {
            let id = problem_id(&d, &format!("{from} -> {to}")).await;
            for step in path_to(from) {
                let a = set_status(&d, id, json!({"status": step, "workaround": "w"})).await;
                assert_eq!(a.status, 200, "to {step}: {}", a.text);
            }
            let before = get_problem(&d, id).await;
            let a = set_status(&d, id, json!({"status": to, "workaround": "retry"})).await;
            if from == to && from != "closed" {
                // A PATCH carrying the current status (a client sending the whole object
                // back) is not a move: it changes only what else it carries.
                assert_eq!(a.status, 200, "{from} -> {to}: {}", a.text);
                assert_eq!(a.body["status"], to);
            } else if allowed(from, to) {
                assert_eq!(a.status, 200, "{from} -> {to}: {}", a.text);
                assert_eq!(a.body["status"], to);
            } else {
                a.assert_problem(409);
                let detail = a.body["detail"].as_str().expect("detail");
                if from != "closed" {
                    assert!(
                        detail.contains(from) && detail.contains(to),
                        "{from} -> {to}: {detail}"
                    );
                } else {
                    assert!(detail.contains("closed"), "{detail}");
                }
                assert_eq!(get_problem(&d, id).await, before, "{from} -> {to}");
            }
        }
    }
}

#[tokio::test]
async fn the_known_error_database() {
    let d = TestDaemon::start().await;
    let pool = problem_id(&d, "Checkout timeouts").await;
    let dns = problem_id(&d, "DNS flaps").await;
    let cn = problem_id(&d, "报表服务内存泄漏").await;
    let plain = problem_id(&d, "Pool of printers jams").await;

    // Empty workaround is refused, naming it.
    for bad in [
        json!({"workaround": ""}),
        json!({"workaround": "  "}),
        json!({}),
    ] {
        assert_field_error(
            &d.post(
                &format!("/api/v1/problems/{pool}/known-error"),
                &d.admin,
                bad,
            )
            .await,
            422,
            "workaround",
        );
    }
    assert_eq!(get_problem(&d, pool).await["status"], "open");
    assert_eq!(known_errors(&d, None).await, Vec::<u64>::new());

    let a = d
        .post(
            &format!("/api/v1/problems/{pool}/known-error"),
            &d.admin,
            json!({"workaround": "restart the connection pool", "root_cause": "driver leaks sockets"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "known_error");
    assert_eq!(a.body["known_error"], true);
    assert_eq!(a.body["workaround"], "restart the connection pool");
    assert_eq!(a.body["root_cause"], "driver leaks sockets");
    assert!(a.body["known_error_at"].is_string(), "{}", a.text);

    let a = d
        .patch(
            &format!("/api/v1/problems/{dns}"),
            &d.admin,
            json!({"status": "investigating"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = d
        .post(
            &format!("/api/v1/problems/{dns}/known-error"),
            &d.admin,
            json!({"workaround": "pin resolver to 10.0.0.2"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "known_error");
    let a = d
        .post(
            &format!("/api/v1/problems/{cn}/known-error"),
            &d.admin,
            json!({"workaround": "每天凌晨重启报表服务"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);

    // On a known error the endpoint updates the workaround.
    let a = d
        .post(
            &format!("/api/v1/problems/{dns}/known-error"),
            &d.admin,
            json!({"workaround": "pin resolver to 10.0.0.3"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["workaround"], "pin resolver to 10.0.0.3");
    assert_eq!(a.body["status"], "known_error");

    assert_eq!(known_errors(&d, None).await, desc(vec![pool, dns, cn]));
    for (q, expected) in [
        ("restart", vec![pool]),          // workaround
        ("POOL", vec![pool]),             // workaround, any case (not "Pool of printers")
        ("driver sockets", vec![pool]),   // root cause, several words
        ("checkout", vec![pool]),         // title
        ("timeouts restart", vec![pool]), // title and workaround together
        ("resolver", vec![dns]),          // updated workaround
        ("10.0.0.2", vec![]),             // the replaced workaround is gone
        ("flaps", vec![dns]),
        ("重启", vec![cn]),     // CJK in workaround
        ("内存泄漏", vec![cn]), // CJK in title
        ("printers", vec![]),   // not a known error
        ("restart printers", vec![]),
    ] {
        assert_eq!(known_errors(&d, Some(q)).await, desc(expected), "q={q}");
    }
    // The plain problem is found by the general search, not by the known-error search.
    assert_eq!(list(&d, "q=printers").await, vec![plain]);

    // Closed known errors leave the database.
    let a = d
        .patch(
            &format!("/api/v1/problems/{pool}"),
            &d.admin,
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["known_error"], false);
    assert_eq!(known_errors(&d, Some("restart")).await, Vec::<u64>::new());
    assert_eq!(known_errors(&d, None).await, desc(vec![dns, cn]));
    // A closed problem takes no workaround any more.
    d.post(
        &format!("/api/v1/problems/{pool}/known-error"),
        &d.admin,
        json!({"workaround": "again"}),
    )
    .await
    .assert_problem(409);

    // A known error cannot lose its workaround while it is one.
    assert_field_error(
        &d.patch(
            &format!("/api/v1/problems/{dns}"),
            &d.admin,
            json!({"workaround": null}),
        )
        .await,
        422,
        "workaround",
    );
    assert_eq!(known_errors(&d, Some("resolver")).await, vec![dns]);

    d.post(
        "/api/v1/problems/4242/known-error",
        &d.admin,
        json!({"workaround": "x"}),
    )
    .await
    .assert_problem(404);
}

#[tokio::test]
async fn links_are_many_to_many_and_visible_from_both_sides() {
    let d = TestDaemon::start().await;
    let (_, mgr) = d.user("mia", "Manager").await;
    let (_, eng) = d.user("eli", "Engineer").await;
    let i1 = incident_id(&d, "checkout 500s").await;
    let i2 = incident_id(&d, "checkout slow").await;
    let p1 = problem_id(&d, "db pool").await;
    let p2 = problem_id(&d, "bad deploy").await;
    let link = |p: u64, i: u64, token: String| {
        let d = &d;
        async move {
            d.post(
                &format!("/api/v1/problems/{p}/incidents"),
                &token,
                json!({"incident_id": i}),
            )
            .await
        }
    };

    for (p, i) in [(p1, i1), (p1, i2), (p2, i1)] {
        let a = link(p, i, mgr.clone()).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(
            a.body["incident_ids"]
                .as_array()
                .expect("incident_ids")
                .contains(&json!(i)),
            "{}",
            a.text
        );
    }
    assert_eq!(get_problem(&d, p1).await["incident_ids"], json!([i1, i2]));
    assert_eq!(get_problem(&d, p2).await["incident_ids"], json!([i1]));
    assert_eq!(get_incident(&d, i1).await["problem_ids"], json!([p1, p2]));
    assert_eq!(get_incident(&d, i2).await["problem_ids"], json!([p1]));

    // Twice is a conflict; an unknown incident is a bad field; an unknown problem is 404.
    link(p1, i1, mgr.clone()).await.assert_problem(409);
    assert_field_error(&link(p1, 9999, mgr.clone()).await, 422, "incident_id");
    link(9999, i1, mgr.clone()).await.assert_problem(404);
    assert_field_error(
        &d.post(&format!("/api/v1/problems/{p1}/incidents"), &mgr, json!({}))
            .await,
        422,
        "incident_id",
    );
    // Engineers and viewers may not link.
    link(p2, i2, eng.clone()).await.assert_problem(403);
    assert_eq!(get_problem(&d, p2).await["incident_ids"], json!([i1]));

    // Unlink.
    let a = d
        .delete(&format!("/api/v1/problems/{p1}/incidents/{i1}"), &mgr)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["incident_ids"], json!([i2]));
    assert_eq!(get_problem(&d, p1).await["incident_ids"], json!([i2]));
    assert_eq!(get_incident(&d, i1).await["problem_ids"], json!([p2]));
    assert_eq!(get_incident(&d, i2).await["problem_ids"], json!([p1]));
    d.delete(&format!("/api/v1/problems/{p1}/incidents/{i1}"), &mgr)
        .await
        .assert_problem(404);
    d.delete(&format!("/api/v1/problems/{p1}/incidents/9999"), &mgr)
        .await
        .assert_problem(404);
    d.delete(&format!("/api/v1/problems/9999/incidents/{i1}"), &mgr)
        .await
        .assert_problem(404);
    d.delete(&format!("/api/v1/problems/{p2}/incidents/{i1}"), &eng)
        .await
        .assert_problem(403);
    // Relinking after an unlink works.
    assert_eq!(link(p1, i1, mgr.clone()).await.status, 200);
    assert_eq!(get_incident(&d, i1).await["problem_ids"], json!([p1, p2]));

    // The incident's timeline shows the links, by whom.
    let tl = d
        .get(&format!("/api/v1/incidents/{i1}/timeline"), &d.admin)
        .await;
    let entries: Vec<(String, String, u64)> = tl.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["kind"] != "created")
        .map(|e| {
            (
                e["kind"].as_str().expect("kind").to_owned(),
                e["actor"]["name"].as_str().expect("name").to_owned(),
                e["detail"]["problem_id"].as_u64().expect("problem_id"),
            )
        })
        .collect();
    let m = || "mia".to_owned();
    assert_eq!(
        entries,
        [
            ("problem_linked".to_owned(), m(), p1),
            ("problem_linked".to_owned(), m(), p2),
            ("problem_unlinked".to_owned(), m(), p1),
            ("problem_linked".to_owned(), m(), p1),
        ]
    );
}

#[tokio::test]
async fn only_managers_and_admins_write_problems() {
    let d = TestDaemon::start().await;
    let (_, eng) = d.user("eli", "Engineer").await;
    let (_, viewer) = d.user("vic", "Viewer").await;
    let (_, mgr) = d.user("mia", "Manager").await;
    let id = problem_id(&d, "existing").await;
    let inc = incident_id(&d, "incident").await;

    for token in [&eng, &viewer] {
        let a = d
            .post("/api/v1/problems", token, json!({"title": "mine"}))
            .await;
        a.assert_problem(403);
        assert!(
            a.body["detail"]
                .as_str()
                .expect("detail")
                .contains("problem:write"),
            "{}",
            a.text
        );
        d.patch(
            &format!("/api/v1/problems/{id}"),
            token,
            json!({"root_cause": "x"}),
        )
        .await
        .assert_problem(403);
        d.post(
            &format!("/api/v1/problems/{id}/known-error"),
            token,
            json!({"workaround": "x"}),
        )
        .await
        .assert_problem(403);
        d.post(
            &format!("/api/v1/problems/{id}/incidents"),
            token,
            json!({"incident_id": inc}),
        )
        .await
        .assert_problem(403);
        // But they read.
        for path in [
            "/api/v1/problems".to_owned(),
            format!("/api/v1/problems/{id}"),
            "/api/v1/known-errors".to_owned(),
            "/api/v1/known-errors?q=x".to_owned(),
        ] {
            let a = d.get(&path, token).await;
            assert_eq!(a.status, 200, "GET {path}: {}", a.text);
        }
    }
    let p = get_problem(&d, id).await;
    assert!(p["root_cause"].is_null() && p["incident_ids"] == json!([]));
    assert_eq!(
        d.get("/api/v1/problems", &d.admin).await.body["items"]
            .as_array()
            .expect("items")
            .len(),
        1
    );

    let a = d
        .post("/api/v1/problems", &mgr, json!({"title": "managed"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
}

/// One definition of a known error (status `known_error`) for the database, the flag,
/// the status filter and both dashboard counts: a workaround on a problem still under
/// investigation is a field until the problem is moved.
#[tokio::test]
async fn a_known_error_is_one_thing_everywhere() {
    let d = TestDaemon::start().await;
    let p = problem_id(&d, "Pool exhaustion").await;
    let counts = async || {
        let o = d.get("/api/v1/dashboard/overview", &d.admin).await;
        assert_eq!(o.status, 200, "{}", o.text);
        (
            o.body["known_errors"].as_i64().unwrap_or(-1),
            o.body["problems_by_status"]["known_error"]
                .as_i64()
                .unwrap_or(0),
        )
    };
    let a = d
        .patch(
            &format!("/api/v1/problems/{p}"),
            &d.admin,
            json!({"workaround": "restart the pool"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        (&a.body["status"], &a.body["known_error"]),
        (&json!("open"), &json!(false))
    );
    assert_eq!(known_errors(&d, None).await, Vec::<u64>::new());
    assert_eq!(list(&d, "status=known_error").await, Vec::<u64>::new());
    assert_eq!(counts().await, (0, 0));

    let a = d
        .post(
            &format!("/api/v1/problems/{p}/known-error"),
            &d.admin,
            json!({"workaround": "restart the pool"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["known_error"], true);
    assert_eq!(known_errors(&d, None).await, vec![p]);
    assert_eq!(list(&d, "status=known_error").await, vec![p]);
    assert_eq!(counts().await, (1, 1));

    // Back under investigation: out of the database, and no longer "known since".
    let a = d
        .patch(
            &format!("/api/v1/problems/{p}"),
            &d.admin,
            json!({"status": "investigating"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["known_error"], false);
    assert!(a.body["known_error_at"].is_null(), "{}", a.text);
    assert_eq!(known_errors(&d, None).await, Vec::<u64>::new());
    assert_eq!(counts().await, (0, 0));
}

/// Closed is final: a closed problem keeps the incidents it was linked to.
#[tokio::test]
async fn a_closed_problem_keeps_its_incidents() {
    let d = TestDaemon::start().await;
    let inc = incident_id(&d, "kept").await;
    let p = problem_id(&d, "closing").await;
    let a = d
        .post(
            &format!("/api/v1/problems/{p}/incidents"),
            &d.admin,
            json!({"incident_id": inc}),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let a = d
        .patch(
            &format!("/api/v1/problems/{p}"),
            &d.admin,
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = d
        .delete(&format!("/api/v1/problems/{p}/incidents/{inc}"), &d.admin)
        .await;
    a.assert_problem(409);
    assert!(a.text.contains("is closed"), "{}", a.text);
    assert_eq!(get_incident(&d, inc).await["problem_ids"], json!([p]));
}

#[tokio::test]
async fn unknown_problems_are_404_everywhere() {
    let d = TestDaemon::start().await;
    let inc = incident_id(&d, "real").await;
    problem_id(&d, "real").await;
    for id in ["999999", "0", "abc"] {
        let base = format!("/api/v1/problems/{id}");
        d.get(&base, &d.admin).await.assert_problem(404);
        d.patch(&base, &d.admin, json!({"root_cause": "x"}))
            .await
            .assert_problem(404);
        d.post(
            &format!("{base}/known-error"),
            &d.admin,
            json!({"workaround": "x"}),
        )
        .await
        .assert_problem(404);
        d.post(
            &format!("{base}/incidents"),
            &d.admin,
            json!({"incident_id": inc}),
        )
        .await
        .assert_problem(404);
        d.delete(&format!("{base}/incidents/{inc}"), &d.admin)
            .await
            .assert_problem(404);
    }
    assert_eq!(get_incident(&d, inc).await["problem_ids"], json!([]));
}

/// Recording a workaround is idempotent in effect: several managers doing it at once on the
/// same problem all succeed (the first makes it a known error, the others update the
/// workaround), rather than failing on a status that changed under them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_known_error_records_all_succeed() {
    let d = TestDaemon::start().await;
    for round in 0..5 {
        let id = problem_id(&d, &format!("race {round}")).await;
        let mut set = tokio::task::JoinSet::new();
        for k in 0..8 {
            let (http, token) = (d.http.clone(), d.admin.clone());
            let url = d.url(&format!("/api/v1/problems/{id}/known-error"));
            set.spawn(async move {
                let res = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"workaround": format!("workaround {k}")}))
                    .send()
                    .await
                    .expect("send");
                common::into_answer(res).await
            });
        }
        while let Some(a) = set.join_next().await {
            let a = a.expect("task");
            assert_eq!(a.status, 200, "round {round}: {}", a.text);
            assert_eq!(a.body["status"], "known_error");
        }
        let p = get_problem(&d, id).await;
        assert_eq!(p["status"], "known_error");
        assert!(
            p["workaround"]
                .as_str()
                .is_some_and(|w| w.starts_with("workaround ")),
            "{p}"
        );
    }
}
