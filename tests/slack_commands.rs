//! Issue 6: Slack slash commands. The shared fixtures are accepted when signed and refused
//! (401, nothing changes) when tampered with or stale; every `/incident` and `/problem`
//! subcommand works and explains its errors (unknown id, no permission, bad syntax); an
//! unlinked Slack user is mapped by e-mail; the answer comes within 3 s even when Slack's
//! API is slow; Events API URL verification.

mod common;

use std::time::{Duration, Instant};

use common::fakes::{Reply, SLACK_SECRET, SLACK_TOKEN, pct};
use common::notify::*;
use common::slack::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// The slash command fixture with its incident and response_url made real.
fn slash_fixture(incident: u64, fake_base: &str) -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/slack_slash_command.txt"
    ))
    .expect("fixture")
    .trim_end()
    .replace("INC-1042", &format!("INC-{incident}"))
    .replace("https%3A%2F%2Fhooks.slack.com", &pct(fake_base))
}

/// The block_actions form fixture likewise.
fn actions_fixture(incident: u64, fake_base: &str) -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/slack_block_actions_form.txt"
    ))
    .expect("fixture")
    .trim_end()
    .replace("INC-1042", &format!("INC-{incident}"))
    .replace("https%3A%2F%2Fhooks.slack.com", &pct(&pct(fake_base)))
}

async fn acknowledgements(env: &SlackEnv, id: u64) -> usize {
    timeline(&env.d, id)
        .await
        .iter()
        .filter(|e| e["detail"]["to"] == "acknowledged")
        .count()
}

#[tokio::test]
async fn signed_fixtures_are_accepted_and_forged_or_stale_ones_refused() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let id = open_incident(d, &d.admin, "Checkout 5xx").await;
    let second = open_incident(d, &d.admin, "Search slow").await;
    let base = env.slack.fake.base.clone();

    // Refused on both endpoints: a body changed after signing, a timestamp more than five
    // minutes off (either way), another app's secret, no signature.
    let body = slash_fixture(id, &base);
    let cases = [
        (
            "/chat/slack/commands",
            body.clone(),
            body.replace("text=ack", "text=resolve"),
        ),
        (
            "/chat/slack/interactions",
            actions_fixture(id, &base),
            actions_fixture(id, &base).replace("incident.ack", "incident.resolve"),
        ),
    ];
    for (path, form, tampered) in &cases {
        assert_ne!(form, tampered);
        let now = now_secs();
        let sig = |secret: &str, ts: i64| slack_signature(secret, &ts.to_string(), form.as_bytes());
        let refusals = [
            (tampered, now, Some(sig(SLACK_SECRET, now))),
            (form, now - 301, Some(sig(SLACK_SECRET, now - 301))),
            (form, now - 3600, Some(sig(SLACK_SECRET, now - 3600))),
            (form, now + 600, Some(sig(SLACK_SECRET, now + 600))),
            (form, now, Some(sig("another-apps-secret", now))),
            (form, now, None),
        ];
        for (b, ts, sig) in refusals {
            post_signed_as(d, path, b, &ts.to_string(), sig.as_deref())
                .await
                .assert_problem(401);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        incident(d, id).await["status"],
        "new",
        "refused requests change nothing"
    );
    assert_eq!(acknowledgements(&env, id).await, 0);
    let answered: Vec<String> = env
        .slack
        .fake
        .requests()
        .iter()
        .filter(|r| !r.path.starts_with("/api/chat.postMessage"))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        answered.is_empty(),
        "only the two cards went to Slack: {answered:?}"
    );

    // The slash command fixture, signed: alice acknowledges.
    let a = post_signed(d, "/chat/slack/commands", &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["response_type"], "ephemeral");
    assert_eq!(a.body["text"], format!("INC-{id} acknowledged."));
    let i = incident(d, id).await;
    assert_eq!(i["status"], "acknowledged");
    let tl = timeline(d, id).await;
    let ack = tl
        .iter()
        .find(|e| e["detail"]["to"] == "acknowledged")
        .expect("ack");
    assert_eq!(ack["actor"]["name"], "alice");
    assert_eq!(ack["actor"]["kind"], "chat");

    // The same signed request again (captured and replayed within the five minutes):
    // refused, nothing runs twice.
    let ts = now_secs().to_string();
    let comment = body.replace("text=ack", "text=comment");
    let sig = slack_signature(SLACK_SECRET, &ts, comment.as_bytes());
    let first = post_signed_as(d, "/chat/slack/commands", &comment, &ts, Some(&sig)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let replay = post_signed_as(d, "/chat/slack/commands", &comment, &ts, Some(&sig)).await;
    replay.assert_problem(401);
    assert!(replay.text.contains("already received"), "{}", replay.text);

    // The block_actions fixture, signed: alice's Acknowledge button on the second one.
    let a = post_signed(
        d,
        "/chat/slack/interactions",
        &actions_fixture(second, &base),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    eventually("the button acknowledges", WAIT, async || {
        (incident(d, second).await["status"] == "acknowledged").then_some(())
    })
    .await;
    let tl = timeline(d, second).await;
    let ack = tl
        .iter()
        .find(|e| e["detail"]["to"] == "acknowledged")
        .expect("ack");
    assert_eq!(ack["actor"]["name"], "alice");
}

#[tokio::test]
async fn events_url_verification_returns_the_challenge() {
    let env = SlackEnv::start().await;
    let body = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let a = post_signed(&env.d, "/chat/slack/events", &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.body["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    let ts = now_secs().to_string();
    post_signed_as(&env.d, "/chat/slack/events", &body, &ts, None)
        .await
        .assert_problem(401);
    let stale = (now_secs() - 400).to_string();
    let sig = slack_signature(SLACK_SECRET, &stale, body.as_bytes());
    post_signed_as(&env.d, "/chat/slack/events", &body, &stale, Some(&sig))
        .await
        .assert_problem(401);
}

#[tokio::test]
async fn incident_new_and_its_errors() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let t = env
        .private(
            ALICE,
            "/incident",
            "new DB latency high impact=medium urgency=low",
        )
        .await;
    assert!(t.starts_with("Opened INC-"), "{t}");
    assert!(t.contains("(P4): DB latency high"), "{t}");
    let id: u64 = t["Opened INC-".len()..]
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let i = incident(d, id).await;
    assert_eq!(i["title"], "DB latency high");
    assert_eq!(i["impact"], "medium");
    assert_eq!(i["urgency"], "low");
    assert_eq!(i["priority"], "P4");
    let tl = timeline(d, id).await;
    assert_eq!(tl[0]["actor"]["name"], "alice", "{tl:#?}");
    // The answer carries the card with its buttons.
    let a = env
        .command(ALICE, "/incident", "new \"Quoted title\" service=Default")
        .await;
    let blocks = a.body["blocks"].to_string();
    assert!(
        blocks.contains("incident.ack") && blocks.contains("Quoted title"),
        "{blocks}"
    );

    // `/incident new` alone opens the form.
    let a = env.command(ALICE, "/incident", "new").await;
    assert!(
        a.text.is_empty() || a.body["response_type"].is_null(),
        "{}",
        a.text
    );
    let opened = env
        .slack
        .fake
        .wait_for("/api/views.open", 1, WAIT, |_| true)
        .await;
    let v = opened[0].json();
    assert!(
        v["trigger_id"]
            .as_str()
            .is_some_and(|t| t.starts_with("8019345671234.7006123456.")),
        "the command's trigger id: {v}"
    );
    assert_eq!(v["view"]["callback_id"], "incident.new");
    assert_eq!(
        opened[0].header("authorization"),
        Some(format!("Bearer {SLACK_TOKEN}").as_str())
    );

    let count = || async {
        d.get("/api/v1/incidents?limit=500", &d.admin).await.body["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = count().await;
    // Bad syntax: usage.
    let t = env
        .private(ALICE, "/incident", "new Disk full impact=huge")
        .await;
    assert!(t.contains("impact must be high, medium or low"), "{t}");
    assert!(
        t.contains("Usage:") && t.contains("/incident new <title>"),
        "{t}"
    );
    let t = env
        .private(ALICE, "/incident", "new Disk full service=")
        .await;
    assert!(t.contains("service= needs a service name"), "{t}");
    // Unknown service.
    let t = env
        .private(ALICE, "/incident", "new Disk full service=nosuch")
        .await;
    assert!(t.contains("no service") && t.contains("nosuch"), "{t}");
    // No permission: a Viewer; an unlinked Slack user.
    let t = env.private(VERA, "/incident", "new Disk full").await;
    assert!(
        t.contains("You may not do that") && t.contains("incident:write"),
        "{t}"
    );
    let t = env.private(NOBODY, "/incident", "new Disk full").await;
    assert!(t.contains("not linked") && t.contains(NOBODY), "{t}");
    assert_eq!(
        count().await,
        before,
        "no incident was opened by the refused commands"
    );
}

#[tokio::test]
async fn ack_resolve_and_their_errors() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let id = open_incident(d, &d.admin, "Queue backlog").await;

    // Bad syntax, unknown id, no permission, unlinked.
    let t = env.private(ALICE, "/incident", "ack").await;
    assert!(
        t.contains("which incident") && t.contains("/incident ack [id]"),
        "{t}"
    );
    let t = env.private(ALICE, "/incident", "ack banana").await;
    assert!(t.contains("'banana' is not an incident id"), "{t}");
    let t = env.private(ALICE, "/incident", "ack INC-999999").await;
    assert!(t.contains("There is no incident 999999"), "{t}");
    let t = env
        .private(VERA, "/incident", &format!("ack INC-{id}"))
        .await;
    assert!(
        t.contains("You may not do that") && t.contains("incident:write"),
        "{t}"
    );
    let t = env.private(NOBODY, "/incident", &format!("ack {id}")).await;
    assert!(t.contains("not linked"), "{t}");
    assert_eq!(incident(d, id).await["status"], "new");

    // Every id form works.
    let t = env.private(ALICE, "/incident", &format!("ack #{id}")).await;
    assert_eq!(t, format!("INC-{id} acknowledged."));
    assert_eq!(incident(d, id).await["status"], "acknowledged");
    // Again: the lifecycle says no, naming the states.
    let t = env
        .private(ALICE, "/incident", &format!("acknowledge INC-{id}"))
        .await;
    assert!(t.contains("acknowledged"), "{t}");
    assert_ne!(t, format!("INC-{id} acknowledged."), "{t}");

    // Resolve.
    let t = env.private(ALICE, "/incident", "resolve").await;
    assert!(t.contains("/incident resolve [id] [note]"), "{t}");
    let t = env.private(ALICE, "/incident", "resolve 999999 gone").await;
    assert!(t.contains("There is no incident 999999"), "{t}");
    let t = env
        .private(VERA, "/incident", &format!("resolve {id}"))
        .await;
    assert!(t.contains("You may not do that"), "{t}");
    assert_eq!(incident(d, id).await["status"], "acknowledged");
    let t = env
        .private(
            ALICE,
            "/incident",
            &format!("resolve INC-{id} rolled back the deploy"),
        )
        .await;
    assert_eq!(t, format!("INC-{id} resolved."));
    assert_eq!(incident(d, id).await["status"], "resolved");
    let tl = timeline(d, id).await;
    let res = tl
        .iter()
        .find(|e| e["detail"]["to"] == "resolved")
        .expect("resolved");
    assert_eq!(res["actor"]["name"], "alice");
    assert!(
        tl.iter()
            .any(|e| e.to_string().contains("rolled back the deploy")),
        "{tl:#?}"
    );
    // Acknowledging it now reopens it, and the answer says so.
    let t = env
        .private(ALICE, "/incident", &format!("ack INC-{id}"))
        .await;
    assert_eq!(t, format!("INC-{id} reopened and acknowledged."));
    assert_eq!(incident(d, id).await["status"], "acknowledged");
}

#[tokio::test]
async fn assign_and_its_errors() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let id = open_incident(d, &d.admin, "Cache stampede").await;
    let t = env
        .private(
            ALICE,
            "/incident",
            &format!("assign INC-{id} <@{MONA}|mona>"),
        )
        .await;
    assert_eq!(t, format!("INC-{id} assigned to mona."));
    assert_eq!(incident(d, id).await["assignee_id"], env.mona.0);
    let t = env
        .private(ALICE, "/incident", &format!("assign {id} @alice"))
        .await;
    assert_eq!(t, format!("INC-{id} assigned to alice."));
    assert_eq!(incident(d, id).await["assignee_id"], env.alice.0);

    for (text, needle) in [
        (format!("assign {id}"), "assign to whom"),
        (format!("assign {id} a b"), "assign takes one user"),
        (format!("assign {id} <@>"), "is not a user"),
        ("assign".to_owned(), "which incident"),
        (format!("assign {id} <@{NOBODY}>"), "not linked"),
        (format!("assign {id} @ghost"), "ghost"),
        (
            "assign 999999 @alice".to_owned(),
            "There is no incident 999999",
        ),
    ] {
        let t = env.private(ALICE, "/incident", &text).await;
        assert!(t.contains(needle), "{text}: {t}");
    }
    let t = env
        .private(VERA, "/incident", &format!("assign {id} @vera"))
        .await;
    assert!(t.contains("You may not do that"), "{t}");
    assert_eq!(
        incident(d, id).await["assignee_id"],
        env.alice.0,
        "unchanged"
    );
}

#[tokio::test]
async fn status_list_comment_escalate_and_their_errors() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let p1 = open_incident(d, &d.admin, "Payments down").await;
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "Minor glitch", "impact": "low", "urgency": "low", "assignee_id": env.alice.0}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let p5 = a.id();

    // Status: anyone may read, even unlinked.
    let a = env
        .command(NOBODY, "/incident", &format!("status INC-{p1}"))
        .await;
    assert!(
        a.body["text"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("INC-{p1}")),
        "{}",
        a.text
    );
    assert!(
        a.body["blocks"].to_string().contains("Payments down"),
        "{}",
        a.text
    );
    for (text, needle) in [
        ("status".to_owned(), "which incident"),
        (format!("status {p1} extra"), "unexpected 'extra'"),
        ("status 999999".to_owned(), "There is no incident 999999"),
    ] {
        let t = env.private(ALICE, "/incident", &text).await;
        assert!(t.contains(needle), "{text}: {t}");
    }

    // List.
    let t = env.private(VERA, "/incident", "list").await;
    assert!(
        t.contains(&format!("INC-{p1} Payments down"))
            && t.contains(&format!("INC-{p5} Minor glitch")),
        "{t}"
    );
    let t = env.private(ALICE, "/incident", "list p1").await;
    assert!(
        t.contains(&format!("INC-{p1} ")) && !t.contains(&format!("INC-{p5} ")),
        "{t}"
    );
    let t = env.private(ALICE, "/incident", "list mine").await;
    assert!(
        t.contains(&format!("INC-{p5} ")) && !t.contains(&format!("INC-{p1} ")),
        "{t}"
    );
    let t = env.private(MONA, "/incident", "list mine").await;
    assert_eq!(t, "No open incidents match.");
    let t = env.private(NOBODY, "/incident", "list mine").await;
    assert!(t.contains("not linked"), "{t}");
    let t = env.private(ALICE, "/incident", "list everything").await;
    assert!(
        t.contains("list takes open, mine or p1..p5") && t.contains("Usage:"),
        "{t}"
    );

    // Comment.
    let t = env
        .private(
            ALICE,
            "/incident",
            &format!("comment INC-{p1} looking at the pool"),
        )
        .await;
    assert_eq!(t, format!("Comment added to INC-{p1}."));
    let comments = d
        .get(&format!("/api/v1/incidents/{p1}/comments"), &d.admin)
        .await;
    let c = &comments.body["items"][0];
    assert_eq!(c["body"], "looking at the pool", "{}", comments.text);
    assert!(
        comments.text.contains("alice"),
        "the author: {}",
        comments.text
    );
    for (user, text, needle) in [
        (ALICE, format!("comment {p1}"), "a comment needs text"),
        (
            ALICE,
            "comment 999999 hello".to_owned(),
            "There is no incident 999999",
        ),
        (VERA, format!("comment {p1} hi"), "You may not do that"),
        (NOBODY, format!("comment {p1} hi"), "not linked"),
    ] {
        let t = env.private(user, "/incident", &text).await;
        assert!(t.contains(needle), "{text}: {t}");
    }

    // Escalate.
    let t = env
        .private(ALICE, "/incident", &format!("escalate INC-{p1}"))
        .await;
    assert_eq!(t, format!("INC-{p1} escalated."));
    let tl = timeline(d, p1).await;
    let e = tl
        .iter()
        .find(|e| e["kind"] == "escalated")
        .expect("escalated entry");
    assert_eq!(e["actor"]["name"], "alice");
    for (user, text, needle) in [
        (ALICE, "escalate".to_owned(), "which incident"),
        (
            ALICE,
            "escalate 999999".to_owned(),
            "There is no incident 999999",
        ),
        (VERA, format!("escalate {p1}"), "You may not do that"),
    ] {
        let t = env.private(user, "/incident", &text).await;
        assert!(t.contains(needle), "{text}: {t}");
    }
    d.post(
        &format!("/api/v1/incidents/{p5}/transition"),
        &d.admin,
        json!({"to": "resolved"}),
    )
    .await;
    let t = env
        .private(ALICE, "/incident", &format!("escalate {p5}"))
        .await;
    assert!(t.contains("only open incidents can be escalated"), "{t}");

    // Snooze: an acknowledged incident, for a length.
    let t = env
        .private(ALICE, "/incident", &format!("snooze INC-{p1} 30m"))
        .await;
    assert!(t.contains("acknowledge it first"), "{t}");
    d.transition(p1, "acknowledged").await;
    let t = env
        .private(ALICE, "/incident", &format!("snooze INC-{p1} 1h30m"))
        .await;
    assert_eq!(
        t,
        format!("INC-{p1} snoozed for 1 h 30 min: it pages again then unless its status changes.")
    );
    let i = d
        .get(&format!("/api/v1/incidents/{p1}"), &d.admin)
        .await
        .body;
    assert!(i["snoozed_until"].is_string(), "{i}");
    let t = env
        .private(ALICE, "/incident", &format!("snooze INC-{p1} later"))
        .await;
    assert!(t.contains("'later' is not a length"), "{t}");

    // Merge: another open incident goes into p1; the resolved p5 cannot.
    let extra = open_incident(d, &d.admin, "Payments slow").await;
    let t = env
        .private(
            ALICE,
            "/incident",
            &format!("merge INC-{extra} into INC-{p1}"),
        )
        .await;
    assert_eq!(
        t,
        format!("Merged INC-{extra} into INC-{p1}: 0 alert(s), 0 firing.")
    );
    let merged = d
        .get(&format!("/api/v1/incidents/{extra}"), &d.admin)
        .await
        .body;
    assert_eq!(merged["merged_into"], p1, "{merged}");
    let t = env
        .private(ALICE, "/incident", &format!("merge {p5} into {p1}"))
        .await;
    assert!(t.contains("only open incidents can be merged"), "{t}");
}

#[tokio::test]
async fn oncall_help_and_unknown_commands() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let g = d
        .post("/api/v1/groups", &d.admin, json!({"name": "payments-team"}))
        .await;
    assert_eq!(g.status, 201, "{}", g.text);
    let a = d
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{}/members/{}", g.id(), env.alice.0),
            Some(&d.admin),
            None,
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let s = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "checkout-api", "owner_group_id": g.id()}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.text);

    let t = env
        .private(NOBODY, "/incident", "oncall checkout-api")
        .await;
    assert!(
        t.contains("checkout-api: team payments-team (alice)"),
        "{t}"
    );
    let t = env.private(ALICE, "/incident", "oncall").await;
    assert!(
        t.contains("Default: no owning team") && t.contains("checkout-api"),
        "{t}"
    );
    let t = env.private(ALICE, "/incident", "oncall nosuch").await;
    assert!(t.contains("no service") && t.contains("nosuch"), "{t}");

    // With an escalation policy, level 1 of the policy answers, not the owning team.
    let p = d
        .post(
            "/api/v1/escalation-policies",
            &d.admin,
            json!({"name": "Checkout on-call", "steps": [
                {"delay_minutes": 5, "targets": [{"type": "group", "id": g.id()}]}
            ]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let a = d
        .patch(
            &format!("/api/v1/services/{}", s.id()),
            &d.admin,
            json!({"escalation_policy_id": p.id()}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let t = env
        .private(NOBODY, "/incident", "oncall checkout-api")
        .await;
    assert!(
        t.contains("checkout-api: alice (level 1 of 'Checkout on-call')"),
        "{t}"
    );

    for text in ["help", ""] {
        let t = env.private(NOBODY, "/incident", text).await;
        for sub in [
            "new", "ack", "resolve", "assign", "status", "list", "comment", "escalate", "oncall",
            "help",
        ] {
            assert!(
                t.contains(&format!("/incident {sub}")),
                "help lists {sub}: {t}"
            );
        }
        assert!(t.contains("/problem rca"), "{t}");
    }
    let t = env.private(ALICE, "/incident", "explode now").await;
    assert!(
        t.contains("unknown subcommand 'explode'") && t.contains("/incident new"),
        "{t}"
    );
    let t = env.private(ALICE, "/problem", "zap").await;
    assert!(
        t.contains("unknown subcommand 'zap'") && t.contains("/problem link"),
        "{t}"
    );
    let t = env.private(ALICE, "/deploy", "now").await;
    assert!(t.contains("/deploy"), "{t}");
}

#[tokio::test]
async fn problem_commands_and_their_errors() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let inc = open_incident(d, &d.admin, "Pool exhausted").await;
    let problems = || async {
        d.get("/api/v1/problems?limit=500", &d.admin).await.body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };

    // new: Engineers and Viewers may not; Managers may.
    for user in [ALICE, VERA] {
        let t = env.private(user, "/problem", "new Pool too small").await;
        assert!(
            t.contains("You may not do that") && t.contains("problem:write"),
            "{t}"
        );
    }
    let t = env.private(NOBODY, "/problem", "new Pool too small").await;
    assert!(t.contains("not linked"), "{t}");
    assert!(problems().await.is_empty());
    let t = env.private(MONA, "/problem", "new").await;
    assert!(t.contains("a new problem needs a title"), "{t}");
    let t = env.private(MONA, "/problem", "new Pool too small").await;
    assert!(
        t.starts_with("Recorded PRB-") && t.ends_with(": Pool too small"),
        "{t}"
    );
    let list = problems().await;
    assert_eq!(list.len(), 1);
    let prb = list[0]["id"].as_u64().expect("id");

    // link.
    for (user, text, needle) in [
        (
            MONA,
            format!("link PRB-{prb}"),
            "link takes a problem and an incident",
        ),
        (MONA, format!("link X INC-{inc}"), "'X' is not a problem id"),
        (
            MONA,
            format!("link PRB-{prb} nope"),
            "'nope' is not an incident id",
        ),
        (
            MONA,
            format!("link PRB-999999 INC-{inc}"),
            "There is no problem 999999",
        ),
        (
            MONA,
            format!("link PRB-{prb} INC-999999"),
            "no incident with id 999999",
        ),
        (
            VERA,
            format!("link PRB-{prb} INC-{inc}"),
            "You may not do that",
        ),
        (
            ALICE,
            format!("link PRB-{prb} INC-{inc}"),
            "You may not do that",
        ),
    ] {
        let t = env.private(user, "/problem", &text).await;
        assert!(t.contains(needle), "{text}: {t}");
    }
    let p = d.get(&format!("/api/v1/problems/{prb}"), &d.admin).await;
    assert_eq!(
        p.body["incident_ids"],
        json!([]),
        "refused links change nothing"
    );
    let t = env
        .private(MONA, "/problem", &format!("link PRB-{prb} INC-{inc}"))
        .await;
    assert_eq!(t, format!("Linked INC-{inc} to PRB-{prb}."));
    let p = d.get(&format!("/api/v1/problems/{prb}"), &d.admin).await;
    assert_eq!(p.body["incident_ids"], json!([inc]));
    assert_eq!(incident(d, inc).await["problem_ids"], json!([prb]));

    // rca.
    for (user, text, needle) in [
        (MONA, "rca".to_owned(), "which problem"),
        (
            MONA,
            format!("rca PRB-{prb}"),
            "rca needs the root cause text",
        ),
        (
            MONA,
            "rca banana too small".to_owned(),
            "'banana' is not a problem id",
        ),
        (
            MONA,
            "rca PRB-999999 too small".to_owned(),
            "There is no problem 999999",
        ),
        (
            VERA,
            format!("rca PRB-{prb} too small"),
            "You may not do that",
        ),
    ] {
        let t = env.private(user, "/problem", &text).await;
        assert!(t.contains(needle), "{text}: {t}");
    }
    let t = env
        .private(
            MONA,
            "/problem",
            &format!("rca PRB-{prb} max_connections was 20"),
        )
        .await;
    assert_eq!(t, format!("Root cause of PRB-{prb} recorded."));
    let p = d.get(&format!("/api/v1/problems/{prb}"), &d.admin).await;
    assert_eq!(p.body["root_cause"], "max_connections was 20");
}

#[tokio::test]
async fn an_unlinked_slack_user_is_mapped_by_email() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let (erin, _) = d.user("erin", "Engineer").await;
    env.slack.set_email("U0ERIN0001", "erin@example.com");
    let id = open_incident(d, &d.admin, "Mapped by e-mail").await;

    let t = env
        .private("U0ERIN0001", "/incident", &format!("ack {id}"))
        .await;
    assert_eq!(t, format!("INC-{id} acknowledged."));
    let tl = timeline(d, id).await;
    let ack = tl
        .iter()
        .find(|e| e["detail"]["to"] == "acknowledged")
        .expect("ack");
    assert_eq!(ack["actor"]["name"], "erin");
    assert_eq!(ack["actor"]["id"], erin);
    let lookups = env.slack.fake.to("/api/users.info");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].method, "GET");
    assert_eq!(lookups[0].query_get("user").as_deref(), Some("U0ERIN0001"));
    assert_eq!(
        lookups[0].header("authorization"),
        Some(format!("Bearer {SLACK_TOKEN}").as_str())
    );
    // Remembered: the next command does not ask Slack again.
    let t = env
        .private("U0ERIN0001", "/incident", &format!("comment {id} on it"))
        .await;
    assert_eq!(t, format!("Comment added to INC-{id}."));
    assert_eq!(env.slack.fake.to("/api/users.info").len(), 1);
    let audit = d.get("/api/v1/audit?limit=500", &d.admin).await;
    assert!(
        audit.text.contains("chat.link"),
        "the link is audited: {}",
        audit.text
    );

    // The id is Erin's now: nobody else may claim it with a contact method.
    let (vera_id, vera_token) = env.vera.clone();
    let a = d
        .post(
            &format!("/api/v1/users/{vera_id}/contact-methods"),
            &vera_token,
            json!({"kind": "slack", "address": "U0ERIN0001"}),
        )
        .await;
    a.assert_problem(409);
    let t = env
        .private("U0ERIN0001", "/incident", &format!("comment {id} still me"))
        .await;
    assert_eq!(t, format!("Comment added to INC-{id}."));

    // A Slack user whose e-mail matches nobody stays unlinked.
    env.slack
        .set_email("U0STRANGER", "stranger@elsewhere.example");
    let t = env
        .private("U0STRANGER", "/incident", &format!("resolve {id}"))
        .await;
    assert!(t.contains("not linked"), "{t}");
    assert_eq!(incident(d, id).await["status"], "acknowledged");

    // Erin's e-mail changes: the link stood for "same e-mail", so it goes; Slack is
    // asked again, and the old address links nobody.
    let a = d
        .patch(
            &format!("/api/v1/users/{erin}"),
            &d.admin,
            json!({"email": "erin.new@example.com"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let t = env
        .private("U0ERIN0001", "/incident", &format!("comment {id} am I me?"))
        .await;
    assert!(t.contains("not linked"), "{t}");
    env.slack.set_email("U0ERIN0001", "erin.new@example.com");
    let t = env
        .private("U0ERIN0001", "/incident", &format!("comment {id} me again"))
        .await;
    assert_eq!(t, format!("Comment added to INC-{id}."));

    // A deactivated person is told so, not that they are not linked.
    d.deactivate(erin).await;
    let t = env
        .private("U0ERIN0001", "/incident", &format!("comment {id} hello?"))
        .await;
    assert!(t.contains("deactivated") && t.contains("erin"), "{t}");

    // Alice turns her Slack contact method off (no pages there): it is still who she is.
    let (alice_id, alice_token) = env.alice.clone();
    let methods = d
        .get(
            &format!("/api/v1/users/{alice_id}/contact-methods"),
            &alice_token,
        )
        .await;
    let slack = methods.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["kind"] == "slack")
        .expect("alice's slack method")["id"]
        .as_u64()
        .expect("id");
    let off = d
        .patch(
            &format!("/api/v1/users/{alice_id}/contact-methods/{slack}"),
            &alice_token,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let t = env
        .private(ALICE, "/incident", &format!("comment {id} still alice"))
        .await;
    assert_eq!(t, format!("Comment added to INC-{id}."));
}

#[tokio::test]
async fn a_slow_slack_api_does_not_delay_the_answer_beyond_3s() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let (sam, _) = d.user("sam", "Engineer").await;
    // users.info takes 5 s for the unlinked Sam.
    env.slack.fake.script(
        "/api/users.info",
        usize::MAX,
        Reply::json(200, json!({"ok": true, "user": {"id": "U0SAM00001", "profile": {"email": "sam@example.com"}}}))
            .after(Duration::from_secs(5)),
    );
    let id = open_incident(d, &d.admin, "Slow Slack").await;
    let response_url = env.slack.response_url("slow");
    let body = env.slash_body(
        "/incident",
        &format!("ack INC-{id}"),
        "U0SAM00001",
        &response_url,
    );
    let started = Instant::now();
    let a = post_signed(d, "/chat/slack/commands", &body).await;
    let took = started.elapsed();
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(a.body["response_type"], "ephemeral");
    assert!(
        a.body["text"]
            .as_str()
            .unwrap_or("")
            .contains("Working on it"),
        "{}",
        a.text
    );

    // The real result follows through response_url.
    let later = env
        .slack
        .fake
        .wait_for("/response/slow", 1, WAIT, |_| true)
        .await;
    let v = later[0].json();
    assert_eq!(v["text"], format!("INC-{id} acknowledged."), "{v}");
    assert_eq!(v["response_type"], "ephemeral");
    assert!(later[0].at.duration_since(started) >= Duration::from_secs(5));
    let tl = timeline(d, id).await;
    let ack = tl
        .iter()
        .find(|e| e["detail"]["to"] == "acknowledged")
        .expect("ack");
    assert_eq!(ack["actor"]["id"], sam);
}

/// The `/incident new` form's submission: a service nobody has is shown under the
/// service field; a good one opens the incident; one that takes longer than Slack waits
/// closes the form and the outcome reaches the asker as a direct message.
#[tokio::test]
async fn the_new_incident_form_says_what_went_wrong_where() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let submit = |user: &str, title: &str, service: &str| {
        let payload = json!({
            "type": "view_submission", "user": {"id": user},
            "view": {"callback_id": "incident.new", "state": {"values": {
                "title": {"value": {"type": "plain_text_input", "value": title}},
                "service": {"value": {"type": "plain_text_input", "value": service}},
                "impact": {"value": {"type": "static_select", "selected_option": {"value": "low"}}},
            }}}
        });
        common::fakes::form_encode(&[("payload", &payload.to_string())])
    };
    let a = post_signed(
        d,
        "/chat/slack/interactions",
        &submit(ALICE, "Disk full", "nosuch"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["response_action"], "errors", "{}", a.text);
    assert!(
        a.body["errors"]["service"]
            .as_str()
            .unwrap_or("")
            .contains("nosuch"),
        "{}",
        a.text
    );
    let a = post_signed(
        d,
        "/chat/slack/interactions",
        &submit(ALICE, "Disk full", ""),
    )
    .await;
    assert_eq!(a.body["response_action"], "clear", "{}", a.text);
    let listed = d.get("/api/v1/incidents?q=Disk", &d.admin).await;
    assert_eq!(listed.body["items"][0]["impact"], "low", "{}", listed.text);

    // Slack's users.info takes five seconds for an unlinked user: the form closes at
    // once, and the answer comes as a direct message.
    env.slack.fake.script(
        "/api/users.info",
        1,
        common::fakes::Reply::json(200, json!({"ok": false, "error": "user_not_found"}))
            .after(Duration::from_secs(5)),
    );
    let started = Instant::now();
    let a = post_signed(d, "/chat/slack/interactions", &submit(NOBODY, "Slow", "")).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.body["response_action"], "clear", "{}", a.text);
    let dm = env
        .slack
        .fake
        .wait_for("/api/chat.postMessage", 1, WAIT, |r| {
            r.json()["channel"] == NOBODY
        })
        .await;
    let text = dm[0].json()["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("not opened") && text.contains("not linked"),
        "{text}"
    );
}
