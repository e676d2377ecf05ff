//! Multi-level approvals, black-box: a workflow of two levels (one lead, then two of a
//! change board), the four-eyes and eligibility rules with their status codes, the
//! approvers and the requester reached through their contact methods, the dashboard's
//! pending count, the linked incident's timeline, rejection, withdrawal, the checks, and
//! the same decision from Slack's `/approve`; a request nobody decides expires at its
//! workflow's deadline, across a restart too.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::TestDaemon;
use common::fakes::{Fake, webhook_fake};
use common::notify::*;
use common::slack::{ALICE, MONA, SlackEnv, VERA};
use incidentd::domain::clock::ManualClock;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn person(d: &TestDaemon, hook: &Fake, name: &str, role: &str) -> (u64, String) {
    let (id, token) = d.user(name, role).await;
    contact(d, id, "webhook", &hook.url(&format!("/{name}"))).await;
    (id, token)
}

async fn told(hook: &Fake, name: &str, n: usize) {
    eventually(&format!("{name} told {n} time(s)"), WAIT, async || {
        (hook.to(&format!("/{name}")).len() >= n).then_some(())
    })
    .await;
}

async fn pending(d: &TestDaemon) -> i64 {
    let a = d.get("/api/v1/dashboard/overview", &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["pending_approvals"]
        .as_i64()
        .expect("pending_approvals")
}

async fn decide(d: &TestDaemon, token: &str, id: u64, decision: &str) -> common::Answer {
    d.post(
        &format!("/api/v1/approvals/{id}/decision"),
        token,
        json!({"decision": decision, "comment": format!("{decision} in test")}),
    )
    .await
}

#[tokio::test]
async fn a_request_passes_every_level_in_order_under_the_four_eyes_rule() {
    let hook = webhook_fake().await;
    let d = TestDaemon::start().await;
    let (mia, mia_token) = person(&d, &hook, "mia", "Manager").await;
    let (lead, lead_token) = person(&d, &hook, "lead", "Manager").await;
    let (deputy, deputy_token) = person(&d, &hook, "deputy", "Manager").await;
    let (_, cab1_token) = person(&d, &hook, "cab1", "Manager").await;
    let (_, cab2_token) = person(&d, &hook, "cab2", "Manager").await;
    let (_, max_token) = person(&d, &hook, "max", "Manager").await;
    let (_, eng_token) = person(&d, &hook, "eng", "Engineer").await;
    let board = d
        .post("/api/v1/groups", &d.admin, json!({"name": "change-board"}))
        .await;
    assert_eq!(board.status, 201, "{}", board.text);
    for name in ["cab1", "cab2"] {
        let users = d.get("/api/v1/users?limit=100", &d.admin).await;
        let id = users.body["items"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["username"] == name)
            .and_then(|u| u["id"].as_u64())
            .expect("user");
        let a = d
            .put(
                &format!("/api/v1/groups/{}/members/{id}", board.id()),
                &d.admin,
                json!({}),
            )
            .await;
        assert!(a.status.is_success(), "{}", a.text);
    }
    let wf = d
        .post(
            "/api/v1/approval-workflows",
            &d.admin,
            json!({"name": "Production change", "levels": [
                {"name": "team lead", "approvers": [{"type": "user", "id": lead}, {"type": "user", "id": mia}, {"type": "user", "id": deputy}]},
                {"name": "change board", "approvers": [{"type": "group", "id": board.id()}], "required": 2},
            ]}),
        )
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    let incident = open_incident(&d, &d.admin, "Payments degraded").await;

    let a = d
        .post(
            "/api/v1/approvals",
            &mia_token,
            json!({"workflow_id": wf.id(), "title": "Roll back payments to v41", "incident_id": incident}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    assert_eq!(a.body["status"], "pending");
    assert_eq!(a.body["level"], 0);
    assert_eq!(a.body["number"], format!("APR-{id}"), "{}", a.text);
    let by_number = d
        .get(&format!("/api/v1/approvals/APR-{id}"), &d.admin)
        .await;
    assert_eq!(
        by_number.body["number"],
        format!("APR-{id}"),
        "{}",
        by_number.text
    );
    assert_eq!(pending(&d).await, 1);
    told(&hook, "lead", 1).await;
    assert!(
        hook.to("/mia").is_empty(),
        "the requester is not asked to approve"
    );

    // Four eyes, eligibility, permission.
    let own = decide(&d, &mia_token, id, "approve").await;
    own.assert_problem(403);
    assert!(own.text.contains("your own request"), "{}", own.text);
    let stranger = decide(&d, &max_token, id, "approve").await;
    stranger.assert_problem(403);
    assert!(
        stranger.text.contains("not an approver of level 1"),
        "{}",
        stranger.text
    );
    decide(&d, &eng_token, id, "approve")
        .await
        .assert_problem(403);
    decide(&d, &cab1_token, id, "approve")
        .await
        .assert_problem(403);

    // Level 1 passes; the board is asked.
    let a = decide(&d, &lead_token, id, "approve").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["level"], 1, "{}", a.text);
    // The other lead clicked a moment too late: a conflict, not a refusal.
    let late = decide(&d, &deputy_token, id, "approve").await;
    late.assert_problem(409);
    assert!(
        late.text
            .contains("already moved on to level 2 ('change board')"),
        "{}",
        late.text
    );
    told(&hook, "cab1", 1).await;
    told(&hook, "cab2", 1).await;

    // Two of the board are needed; nobody decides twice.
    let a = decide(&d, &cab1_token, id, "approve").await;
    assert_eq!(
        (a.status.as_u16(), &a.body["status"]),
        (200, &json!("pending")),
        "{}",
        a.text
    );
    decide(&d, &cab1_token, id, "approve")
        .await
        .assert_problem(409);
    let a = decide(&d, &cab2_token, id, "approve").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "approved", "{}", a.text);
    assert_eq!(a.body["decisions"].as_array().map(Vec::len), Some(3));
    assert!(a.body["decided_at"].is_string());
    told(&hook, "mia", 1).await;
    let note = &hook.to("/mia")[0].json();
    assert_eq!(note["event"]["kind"], "approval.approved", "{note}");
    decide(&d, &lead_token, id, "reject")
        .await
        .assert_problem(409);
    assert_eq!(pending(&d).await, 0);

    // On the record: the incident's timeline, the list by status, the audit log.
    let entries = timeline(&d, incident).await;
    let approvals: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "approval").collect();
    assert_eq!(
        approvals.len(),
        4,
        "requested, level passed, one of two, approved: {approvals:#?}"
    );
    assert!(
        approvals[3]["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("approved"),
        "{approvals:#?}"
    );
    let listed = d.get("/api/v1/approvals?status=approved", &eng_token).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["items"][0]["id"], id);
    let none = d.get("/api/v1/approvals?status=pending", &eng_token).await;
    assert_eq!(none.body["items"], json!([]));
    // Any case, and several at once, as the other lists take statuses.
    for query in [
        "status=APPROVED",
        "status=pending,approved",
        "status=Rejected,approved",
    ] {
        let listed = d
            .get(&format!("/api/v1/approvals?{query}"), &eng_token)
            .await;
        assert_eq!(listed.status, 200, "{query}: {}", listed.text);
        assert_eq!(listed.body["items"][0]["id"], id, "{query}");
    }
    let none = d
        .get("/api/v1/approvals?status=rejected,expired", &eng_token)
        .await;
    assert_eq!(none.body["items"], json!([]));
    d.get("/api/v1/approvals?status=pending,maybe", &eng_token)
        .await
        .assert_problem(422);
    d.get("/api/v1/approvals?status=maybe", &eng_token)
        .await
        .assert_problem(422);
    let shown = d
        .get(&format!("/api/v1/approvals/APR-{id}"), &eng_token)
        .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    let audit = d.get("/api/v1/audit?limit=200", &d.admin).await.text;
    assert!(audit.contains("approval.request") && audit.contains("approval.decide"));
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

#[tokio::test]
async fn a_request_nobody_decides_expires_at_its_deadline_even_across_a_restart() {
    let clock = ManualClock::new(Utc::now());
    let root = tempfile::tempdir().expect("tempdir");
    let mut d = TestDaemon::start_in(root.path(), |_| {}, Arc::new(clock.clone())).await;
    let hook = webhook_fake().await;
    let (_, mia_token) = person(&d, &hook, "mia", "Manager").await;
    let (lead, lead_token) = person(&d, &hook, "lead", "Manager").await;
    let levels = json!([{"name": "lead", "approvers": [{"type": "user", "id": lead}]}]);

    // The deadline is 1 minute to 30 days, or none.
    for minutes in [json!(0), json!(43201), json!(-5), json!("soon")] {
        let a = d
            .post(
                "/api/v1/approval-workflows",
                &d.admin,
                json!({"name": "Change", "levels": levels, "expires_after_minutes": minutes}),
            )
            .await;
        assert!(
            matches!(a.status.as_u16(), 400 | 422),
            "{minutes}: {}",
            a.text
        );
        assert!(a.text.contains("expires_after_minutes"), "{}", a.text);
    }
    let wf = d
        .post(
            "/api/v1/approval-workflows",
            &d.admin,
            json!({"name": "Change", "levels": levels, "expires_after_minutes": 60}),
        )
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    assert_eq!(wf.body["expires_after_minutes"], 60);
    let incident = open_incident(&d, &d.admin, "Checkout errors").await;
    let a = d
        .post(
            "/api/v1/approvals",
            &mia_token,
            json!({"workflow_id": wf.id(), "title": "Fail over the primary", "incident_id": incident}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    assert_eq!(
        at(&a.body["expires_at"]) - at(&a.body["created_at"]),
        chrono::Duration::minutes(60),
        "{}",
        a.text
    );
    let deadline = at(&a.body["expires_at"])
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();

    // Editing the workflow changes the deadline of later requests only.
    let patched = d
        .patch(
            &format!("/api/v1/approval-workflows/{}", wf.id()),
            &d.admin,
            json!({"expires_after_minutes": null}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert!(
        patched.body["expires_after_minutes"].is_null(),
        "{}",
        patched.text
    );
    d.patch(
        &format!("/api/v1/approval-workflows/{}", wf.id()),
        &d.admin,
        json!({"expires_after_minutes": 0}),
    )
    .await
    .assert_problem(422);
    let open_ended = d
        .post(
            "/api/v1/approvals",
            &mia_token,
            json!({"workflow_id": wf.id(), "title": "Resize the pool"}),
        )
        .await;
    assert_eq!(open_ended.status, 201, "{}", open_ended.text);
    assert!(
        open_ended.body["expires_at"].is_null(),
        "{}",
        open_ended.text
    );
    assert_eq!(pending(&d).await, 2);

    // A minute before the deadline nothing happens.
    clock.advance(chrono::Duration::minutes(59));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let shown = d.get(&format!("/api/v1/approvals/{id}"), &d.admin).await;
    assert_eq!(shown.body["status"], "pending", "{}", shown.text);

    // The deadline passes while the daemon is down: the first check after the start
    // expires the request; the one without a deadline waits on.
    d.stop().await;
    drop(d);
    clock.advance(chrono::Duration::minutes(2));
    let d = TestDaemon::start_in(root.path(), |_| {}, Arc::new(clock.clone())).await;
    let shown = eventually("the request expires", WAIT, async || {
        let a = d.get(&format!("/api/v1/approvals/{id}"), &d.admin).await;
        (a.body["status"] == "expired").then_some(a)
    })
    .await;
    assert!(shown.body["decided_at"].is_string(), "{}", shown.text);
    let still = d
        .get(&format!("/api/v1/approvals/{}", open_ended.id()), &d.admin)
        .await;
    assert_eq!(still.body["status"], "pending", "{}", still.text);
    assert_eq!(pending(&d).await, 1);

    // No decision counts any more; nor a withdrawal.
    let late = decide(&d, &lead_token, id, "approve").await;
    late.assert_problem(409);
    assert!(late.text.contains("expired"), "{}", late.text);
    d.post(
        &format!("/api/v1/approvals/{id}/cancel"),
        &mia_token,
        json!({}),
    )
    .await
    .assert_problem(409);

    // The requester and the approver asked are told; the incident's timeline, the list and
    // the audit log say so.
    for name in ["/mia", "/lead"] {
        eventually(&format!("{name} told"), WAIT, async || {
            hook.to(name)
                .iter()
                .any(|r| r.json()["event"]["kind"] == "approval.expired")
                .then_some(())
        })
        .await;
    }
    let entries = timeline(&d, incident).await;
    let said = |text: &str| {
        entries.iter().any(|e| {
            e["kind"] == "approval" && e["summary"].as_str().is_some_and(|s| s.contains(text))
        })
    };
    assert!(
        said(&format!(", to be decided by {deadline}")),
        "the deadline is announced to the second: {entries:#?}"
    );
    assert!(
        said(&format!(
            "APR-{id} expired at level 1 ('lead'): not decided within 1 hour"
        )),
        "{entries:#?}"
    );
    let listed = d.get("/api/v1/approvals?status=expired", &d.admin).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let ids: Vec<u64> = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|a| a["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![id]);
    let audit = d.get("/api/v1/audit?limit=200", &d.admin).await.text;
    assert!(audit.contains("approval.expire"), "{audit}");
}

#[tokio::test]
async fn rejection_withdrawal_and_bad_input() {
    let d = TestDaemon::start().await;
    let (lead, lead_token) = d.user("lead", "Manager").await;
    let (_, eng_token) = d.user("eng", "Engineer").await;
    let (_, other_token) = d.user("other", "Engineer").await;

    // The checks name the field; nothing is stored.
    for (body, field) in [
        (json!({"name": "x", "levels": []}), "levels"),
        (
            json!({"name": "x", "levels": [{"name": "l", "approvers": [{"type": "user", "id": lead}], "required": 2}]}),
            "levels[0].required",
        ),
        (
            json!({"name": "x", "levels": [{"name": "l", "approvers": [{"type": "user", "id": 999}]}]}),
            "levels[0].approvers[0]",
        ),
    ] {
        let a = d.post("/api/v1/approval-workflows", &d.admin, body).await;
        a.assert_problem(422);
        assert!(a.text.contains(field), "{field}: {}", a.text);
    }
    let wf = d
        .post(
            "/api/v1/approval-workflows",
            &d.admin,
            json!({"name": "Hotfix", "levels": [{"name": "lead", "approvers": [{"type": "user", "id": lead}]}]}),
        )
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    d.post(
        "/api/v1/approval-workflows",
        &d.admin,
        json!({"name": "hotfix", "levels": [{"name": "lead", "approvers": [{"type": "user", "id": lead}]}]}),
    )
    .await
    .assert_problem(409);
    for (body, field) in [
        (json!({"workflow_id": 999, "title": "x"}), "workflow_id"),
        (
            json!({"workflow_id": wf.id(), "title": "x", "incident_id": 999}),
            "incident_id",
        ),
        (json!({"workflow_id": wf.id(), "title": " "}), "title"),
    ] {
        let a = d.post("/api/v1/approvals", &eng_token, body).await;
        a.assert_problem(422);
        assert!(a.text.contains(field), "{field}: {}", a.text);
    }
    // A request nobody but the requester could approve would wait forever: refused.
    let own = d
        .post(
            "/api/v1/approvals",
            &lead_token,
            json!({"workflow_id": wf.id(), "title": "x"}),
        )
        .await;
    own.assert_problem(422);
    assert!(
        own.text.contains("workflow_id") && own.text.contains("level 1"),
        "{}",
        own.text
    );
    assert_eq!(pending(&d).await, 0);

    // Rejected at the first level, with the reason.
    let a = d
        .post(
            "/api/v1/approvals",
            &eng_token,
            json!({"workflow_id": wf.id(), "title": "Skip the canary"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let r = decide(&d, &lead_token, a.id(), "reject").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "rejected");
    assert_eq!(r.body["decisions"][0]["comment"], "reject in test");

    // Withdrawn by the requester only; then final.
    let a = d
        .post(
            "/api/v1/approvals",
            &eng_token,
            json!({"workflow_id": wf.id(), "title": "Restart the cluster"}),
        )
        .await;
    assert_eq!(pending(&d).await, 1);
    d.post(
        &format!("/api/v1/approvals/{}/cancel", a.id()),
        &other_token,
        json!({}),
    )
    .await
    .assert_problem(403);
    let c = d
        .post(
            &format!("/api/v1/approvals/{}/cancel", a.id()),
            &eng_token,
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(pending(&d).await, 0);
    decide(&d, &lead_token, a.id(), "approve")
        .await
        .assert_problem(409);
    d.post(
        &format!("/api/v1/approvals/{}/cancel", a.id()),
        &eng_token,
        json!({}),
    )
    .await
    .assert_problem(409);
    d.get("/api/v1/approvals/APR-999", &eng_token)
        .await
        .assert_problem(404);

    // An approver may close a request its requester can no longer withdraw.
    let a = d
        .post(
            "/api/v1/approvals",
            &eng_token,
            json!({"workflow_id": wf.id(), "title": "Drain node 7"}),
        )
        .await;
    let c = d
        .post(
            &format!("/api/v1/approvals/#{}/cancel", a.id()).replace('#', "%23"),
            &lead_token,
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(pending(&d).await, 0);
}

#[tokio::test]
async fn slack_approve_lists_and_decides_with_the_same_rules() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let wf = d
        .post(
            "/api/v1/approval-workflows",
            &d.admin,
            json!({"name": "Change", "levels": [{"name": "manager", "approvers": [{"type": "user", "id": env.mona.0}]}]}),
        )
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    let a = d
        .post(
            "/api/v1/approvals",
            &env.alice.1,
            json!({"workflow_id": wf.id(), "title": "Failover to eu-west"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();

    let t = env.private(MONA, "/approve", "list").await;
    assert!(t.contains(&format!("APR-{id}: Failover to eu-west")), "{t}");
    let t = env.private(ALICE, "/approve", "list").await;
    assert!(t.contains("Nothing is waiting"), "{t}");
    let t = env.private(VERA, "/approve", &format!("APR-{id}")).await;
    assert!(t.contains("approval:decide"), "{t}");
    let t = env.private(ALICE, "/approve", "APR-x").await;
    assert!(t.contains("not an approval id"), "{t}");
    let t = env
        .private(MONA, "/approve", &format!("APR-{id} go ahead"))
        .await;
    assert_eq!(t, format!("APR-{id} is approved: Failover to eu-west"));
    let t = env
        .private(MONA, "/approve", &format!("reject APR-{id}"))
        .await;
    assert!(t.contains("already approved"), "{t}");
    let shown = d.get(&format!("/api/v1/approvals/{id}"), &d.admin).await;
    assert_eq!(shown.body["decisions"][0]["comment"], "go ahead");
    assert_eq!(shown.body["decisions"][0]["username"], "mona");
}

#[tokio::test]
async fn approvers_decide_from_the_buttons_on_their_slack_message() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let incident = open_incident(d, &d.admin, "Primary DB degraded").await;
    let wf = d
        .post(
            "/api/v1/approval-workflows",
            &d.admin,
            json!({"name": "Failover", "levels": [{"name": "manager", "approvers": [{"type": "user", "id": env.mona.0}]}]}),
        )
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    let a = d
        .post(
            "/api/v1/approvals",
            &env.alice.1,
            json!({"workflow_id": wf.id(), "title": "Fail over to the replica", "incident_id": incident}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    let number = format!("APR-{id}");

    // Mona is asked in Slack with buttons; the request is its own message, not the
    // linked incident's card.
    let asked = env
        .slack
        .fake
        .wait_for("/api/chat.postMessage", 1, WAIT, |r| {
            r.json()["channel"] == MONA && r.text().contains("approval.approve")
        })
        .await
        .remove(0)
        .json();
    let buttons: Vec<(String, String)> = asked["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["action_id"].as_str().unwrap_or_default().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        buttons,
        [
            ("approval.approve".to_owned(), number.clone()),
            ("approval.reject".to_owned(), number.clone())
        ],
        "{asked}"
    );
    assert!(
        asked["text"].as_str().unwrap_or_default().contains(&number),
        "{asked}"
    );

    // Mona presses Approve: decided as Mona, and the message shows the outcome instead.
    let press = |action: &str, response: &str| {
        let mut body: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/slack_block_actions.json"
            ))
            .expect("fixture"),
        )
        .expect("JSON");
        body["user"]["id"] = json!(MONA);
        body["response_url"] = json!(env.slack.response_url(response));
        body["message"]["text"] = asked["text"].clone();
        body["actions"][0]["action_id"] = json!(action);
        body["actions"][0]["value"] = json!(number);
        common::fakes::form_encode(&[("payload", &body.to_string())])
    };
    let a = post_signed(
        d,
        "/chat/slack/interactions",
        &press("approval.approve", "yes"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let answer = env
        .slack
        .fake
        .wait_for("/response/yes", 1, WAIT, |_| true)
        .await
        .remove(0)
        .json();
    assert_eq!(answer["replace_original"], true, "{answer}");
    let text = answer["text"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("{number} is approved")), "{answer}");
    assert!(
        !answer.to_string().contains("approval.approve"),
        "no buttons left: {answer}"
    );
    let shown = d.get(&format!("/api/v1/approvals/{id}"), &d.admin).await;
    assert_eq!(shown.body["status"], "approved", "{}", shown.text);
    assert_eq!(shown.body["decisions"][0]["username"], "mona");

    // A second press is told it is decided already; nothing changes.
    post_signed(
        d,
        "/chat/slack/interactions",
        &press("approval.reject", "late"),
    )
    .await;
    let late = env
        .slack
        .fake
        .wait_for("/response/late", 1, WAIT, |_| true)
        .await
        .remove(0)
        .json();
    assert!(
        late["text"]
            .as_str()
            .unwrap_or_default()
            .contains("already approved"),
        "{late}"
    );
    let shown = d.get(&format!("/api/v1/approvals/{id}"), &d.admin).await;
    assert_eq!(shown.body["status"], "approved");
    assert_eq!(shown.body["decisions"].as_array().map(Vec::len), Some(1));
}

/// A pending request decides by the levels it was made with: whoever those name cannot be
/// deleted while it waits, even after its workflow changed.
#[tokio::test]
async fn the_approvers_of_a_pending_request_cannot_be_deleted() {
    let hook = webhook_fake().await;
    let d = TestDaemon::start().await;
    let (_, mia_token) = person(&d, &hook, "mia", "Manager").await;
    let (solo, _) = person(&d, &hook, "solo", "Manager").await;
    let (other, _) = person(&d, &hook, "other", "Manager").await;
    let board = d
        .post("/api/v1/groups", &d.admin, json!({"name": "board"}))
        .await;
    assert_eq!(board.status, 201, "{}", board.text);
    let a = d
        .put(
            &format!("/api/v1/groups/{}/members/{other}", board.id()),
            &d.admin,
            json!({}),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let wf = d
        .post(
            "/api/v1/approval-workflows",
            &d.admin,
            json!({"name": "change", "levels": [
                {"name": "solo", "approvers": [{"type": "user", "id": solo}]},
                {"name": "board", "approvers": [{"type": "group", "id": board.id()}]},
            ]}),
        )
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    let req = d
        .post(
            "/api/v1/approvals",
            &mia_token,
            json!({"workflow_id": wf.id(), "title": "Roll back"}),
        )
        .await;
    assert_eq!(req.status, 201, "{}", req.text);
    let a = d
        .patch(
            &format!("/api/v1/approval-workflows/{}", wf.id()),
            &d.admin,
            json!({"levels": [{"name": "other", "approvers": [{"type": "user", "id": other}]}]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);

    let number = format!("pending approval APR-{} asks it", req.id());
    for path in [
        format!("/api/v1/users/{solo}"),
        format!("/api/v1/groups/{}", board.id()),
    ] {
        let a = d.delete(&path, &d.admin).await;
        a.assert_problem(409);
        assert!(a.text.contains(&number), "{path}: {}", a.text);
    }
    // Withdrawn, it names nobody any more.
    let a = d
        .post(
            &format!("/api/v1/approvals/{}/cancel", req.id()),
            &mia_token,
            json!({}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = d.delete(&format!("/api/v1/users/{solo}"), &d.admin).await;
    assert_eq!(a.status, 204, "{}", a.text);
}
