//! Issue 6, end to end: an Alertmanager alert opens an incident whose card (with buttons)
//! is posted to Slack; a mapped Engineer's Acknowledge press acknowledges it as that user
//! and the card is updated in place; resolving through REST updates it again without
//! buttons; unmapped and unauthorised presses change nothing and are told why; a rate
//! limited chat.postMessage is retried through the outbox.

mod common;

use std::time::Duration;

use common::fakes::{Recorded, Reply, SLACK_TOKEN};
use common::notify::*;
use common::slack::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn header_text(blocks: &Value) -> String {
    blocks
        .as_array()
        .expect("blocks")
        .iter()
        .find(|b| b["block_id"] == "inc_header")
        .map(|b| b["text"]["text"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("no header block in {blocks}"))
}

/// The buttons of a card: (action_id, value).
fn buttons(blocks: &Value) -> Vec<(String, String)> {
    blocks
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
        .collect()
}

fn action_ids(blocks: &Value) -> Vec<String> {
    buttons(blocks).into_iter().map(|(a, _)| a).collect()
}

async fn alertmanager_incident(env: &SlackEnv) -> u64 {
    let d = &env.d;
    let a = d
        .post(
            "/api/v1/integrations",
            &d.admin,
            json!({"name": "prometheus", "kind": "alertmanager"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let token = a.body["token"].as_str().expect("token").to_owned();
    let payload = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/alertmanager_webhook_v4.json"
    ))
    .expect("fixture");
    let res = d
        .http
        .post(d.url(&format!("/hooks/alertmanager/{token}?wait=applied")))
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .expect("post");
    assert!(res.status().is_success(), "{}", res.status());
    let summary: Value = res.json().await.expect("json");
    summary["opened"][0]
        .as_u64()
        .unwrap_or_else(|| panic!("no incident opened: {summary}"))
}

fn updates(env: &SlackEnv) -> Vec<Recorded> {
    env.slack.fake.to("/api/chat.update")
}

#[tokio::test]
async fn alert_card_buttons_and_updates() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let id = alertmanager_incident(&env).await;
    let number = format!("INC-{id}");

    // The card is posted to the default channel with its buttons.
    let posted = env
        .slack
        .fake
        .wait_for("/api/chat.postMessage", 1, WAIT, |_| true)
        .await;
    let post = &posted[0];
    assert_eq!(
        post.header("authorization"),
        Some(format!("Bearer {SLACK_TOKEN}").as_str())
    );
    let card = post.json();
    assert_eq!(card["channel"], CHANNEL);
    assert!(
        card["text"].as_str().unwrap_or("").contains(&number),
        "{card}"
    );
    let header = header_text(&card["blocks"]);
    assert!(header.contains(&format!("] {number}*")), "{header}");
    assert!(
        header.contains("checkout-api 5xx ratio above 5%"),
        "{header}"
    );
    assert!(header.contains("*New*"), "{header}");
    let b = buttons(&card["blocks"]);
    for action in ["incident.ack", "incident.resolve", "incident.escalate"] {
        assert!(
            b.contains(&(action.to_owned(), number.clone())),
            "{action} with value {number} in {b:?}"
        );
    }
    assert!(
        card["blocks"].to_string().contains("runbooks.example.com"),
        "runbook link"
    );
    let ts = "1763975551.000001";

    // An unmapped Slack user presses Acknowledge: refused, told through response_url.
    env.press(
        NOBODY,
        "incident.ack",
        id,
        &env.slack.response_url("nobody"),
    )
    .await;
    let told = env
        .slack
        .fake
        .wait_for("/response/nobody", 1, WAIT, |_| true)
        .await;
    let v = told[0].json();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    assert_eq!(v["replace_original"], false, "{v}");
    assert!(
        v["text"].as_str().unwrap_or("").contains("not linked"),
        "{v}"
    );
    // A Viewer presses Resolve: refused likewise.
    env.press(
        VERA,
        "incident.resolve",
        id,
        &env.slack.response_url("vera"),
    )
    .await;
    let told = env
        .slack
        .fake
        .wait_for("/response/vera", 1, WAIT, |_| true)
        .await;
    let v = told[0].json();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    assert!(
        v["text"]
            .as_str()
            .unwrap_or("")
            .contains("You may not do that"),
        "{v}"
    );
    // A button this version does not know (an old message): the presser is told.
    env.press(
        ALICE,
        "incident.reboot",
        id,
        &env.slack.response_url("old-button"),
    )
    .await;
    let told = env
        .slack
        .fake
        .wait_for("/response/old-button", 1, WAIT, |_| true)
        .await;
    let v = told[0].json();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    assert!(
        v["text"]
            .as_str()
            .unwrap_or("")
            .contains("does not know the button `incident.reboot`"),
        "{v}"
    );
    assert_eq!(
        incident(d, id).await["status"],
        "new",
        "refused presses change nothing"
    );
    assert!(updates(&env).is_empty(), "and the card stays as it was");

    // Alice (an Engineer, linked by her slack contact method) presses Acknowledge.
    env.press(ALICE, "incident.ack", id, &env.slack.response_url("alice"))
        .await;
    eventually("acknowledged by the button", WAIT, async || {
        (incident(d, id).await["status"] == "acknowledged").then_some(())
    })
    .await;
    let tl = timeline(d, id).await;
    let ack = tl
        .iter()
        .find(|e| e["detail"]["to"] == "acknowledged")
        .expect("ack entry");
    assert_eq!(ack["actor"]["name"], "alice", "{ack}");
    assert_eq!(ack["actor"]["kind"], "chat", "{ack}");
    assert_eq!(ack["actor"]["id"], env.alice.0, "{ack}");
    // The card is updated in place: Acknowledged, no Acknowledge button any more.
    let up = env
        .slack
        .fake
        .wait_for("/api/chat.update", 1, WAIT, |r| {
            header_text(&r.json()["blocks"]).contains("*Acknowledged*")
        })
        .await;
    let u = up[0].json();
    assert_eq!(u["channel"], CHANNEL);
    assert_eq!(u["ts"], ts, "the posted message is the one updated");
    let ids = action_ids(&u["blocks"]);
    assert!(!ids.contains(&"incident.ack".to_owned()), "{ids:?}");
    assert!(ids.contains(&"incident.resolve".to_owned()), "{ids:?}");
    // The presser alone is told, without touching the card (the outbox updates it).
    let told = env
        .slack
        .fake
        .wait_for("/response/alice", 1, WAIT, |_| true)
        .await;
    let v = told[0].json();
    assert_eq!(v["text"], format!("INC-{id} acknowledged."), "{v}");
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    assert_eq!(v["replace_original"], false, "{v}");

    // Acknowledged, it can be snoozed for an hour from the card, which says so.
    assert!(ids.contains(&"incident.snooze_1h".to_owned()), "{ids:?}");
    env.press(
        ALICE,
        "incident.snooze_1h",
        id,
        &env.slack.response_url("alice"),
    )
    .await;
    eventually("snoozed by the button", WAIT, async || {
        incident(d, id).await["snoozed_until"]
            .is_string()
            .then_some(())
    })
    .await;
    env.slack
        .fake
        .wait_for("/api/chat.update", 1, WAIT, |r| {
            header_text(&r.json()["blocks"]).contains("Acknowledged, snoozed until ")
        })
        .await;

    // Resolved through the REST API: the card follows, without buttons.
    let a = d
        .post(
            &format!("/api/v1/incidents/{id}/transition"),
            &d.admin,
            json!({"to": "resolved", "note": "error rate back to normal"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let up = env
        .slack
        .fake
        .wait_for("/api/chat.update", 1, WAIT, |r| {
            header_text(&r.json()["blocks"]).contains("*Resolved*")
        })
        .await;
    let u = up[0].json();
    assert_eq!(u["ts"], ts);
    assert!(
        buttons(&u["blocks"]).is_empty(),
        "no buttons once resolved: {u}"
    );

    // One card, updated; never posted twice.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(env.slack.fake.to("/api/chat.postMessage").len(), 1);
    let slack_log = deliveries(d, &format!("incident_id={id}&channel=slack")).await;
    assert!(!slack_log.is_empty());
    assert!(slack_log.iter().all(is_sent), "{slack_log:#?}");
}

#[tokio::test]
async fn a_change_while_the_card_is_being_posted_updates_it_instead_of_posting_another() {
    let env = SlackEnv::start().await;
    // chat.postMessage takes a second: the acknowledgement happens meanwhile.
    env.slack.fake.script(
        "/api/chat.postMessage",
        1,
        Reply::json(
            200,
            json!({"ok": true, "channel": CHANNEL, "ts": "1763975551.000777"}),
        )
        .after(Duration::from_secs(1)),
    );
    let d = &env.d;
    let id = open_incident(d, &d.admin, "Racing the card").await;
    env.slack
        .fake
        .wait_for("/api/chat.postMessage", 1, WAIT, |_| true)
        .await;
    let a = d
        .post(
            &format!("/api/v1/incidents/{id}/transition"),
            &env.alice.1,
            json!({"to": "acknowledged"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let up = env
        .slack
        .fake
        .wait_for("/api/chat.update", 1, WAIT, |r| {
            header_text(&r.json()["blocks"]).contains("*Acknowledged*")
        })
        .await;
    assert_eq!(up[0].json()["ts"], "1763975551.000777");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.slack.fake.to("/api/chat.postMessage").len(),
        1,
        "one card per incident"
    );
}

#[tokio::test]
async fn rate_limited_post_message_is_retried_through_the_outbox() {
    let env = SlackEnv::start_with(fast_retries).await;
    env.slack.fake.script(
        "/api/chat.postMessage",
        1,
        Reply::json(429, json!({"ok": false, "error": "ratelimited"})).header("Retry-After", "2"),
    );
    let d = &env.d;
    let id = open_incident(d, &d.admin, "Slack says slow down").await;
    let log = wait_deliveries(d, id, "slack", 1, |x| x["status"] == "failed").await;
    let error = log[0]["last_error"].as_str().expect("last_error");
    assert!(error.contains("429"), "{error}");
    let posts = env
        .slack
        .fake
        .wait_for("/api/chat.postMessage", 2, WAIT, |_| true)
        .await;
    let gap = posts[1].at.duration_since(posts[0].at);
    assert!(
        gap >= Duration::from_secs(2),
        "retried after {gap:?}, before Retry-After"
    );
    assert_eq!(posts[0].json(), posts[1].json(), "the same card");
    let log = wait_deliveries(d, id, "slack", 1, is_sent).await;
    assert_eq!(log[0]["attempts"], 2, "{}", log[0]);
    // The retried card is the one later updates edit.
    d.post(
        &format!("/api/v1/incidents/{id}/transition"),
        &d.admin,
        json!({"to": "acknowledged"}),
    )
    .await;
    let up = env
        .slack
        .fake
        .wait_for("/api/chat.update", 1, WAIT, |_| true)
        .await;
    assert_eq!(up[0].json()["ts"], "1763975551.000001");
    assert_eq!(env.slack.fake.to("/api/chat.postMessage").len(), 2);
}

#[tokio::test]
async fn a_mention_in_the_card_thread_acts_on_its_incident() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let id = open_incident(d, &d.admin, "Thread context").await;
    env.slack
        .fake
        .wait_for("/api/chat.postMessage", 1, WAIT, |_| true)
        .await;
    wait_deliveries(d, id, "slack", 1, is_sent).await;
    let card_ts = "1763975551.000001";
    let event = json!({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": "T0A1B2C3D", "api_app_id": "A07CHATOPS1",
        "type": "event_callback", "event_id": "Ev07MENTION1", "event_time": now_secs(),
        "event": {"type": "app_mention", "user": ALICE, "text": "<@U07BOTUSER1> ack",
                  "ts": "1763975600.000100", "thread_ts": card_ts, "channel": CHANNEL}
    })
    .to_string();
    let a = post_signed(d, "/chat/slack/events", &event).await;
    assert_eq!(a.status, 200, "{}", a.text);
    // The reply goes into the thread, to alice alone; the incident of the thread is
    // acknowledged by alice.
    let replies = env
        .slack
        .fake
        .wait_for("/api/chat.postEphemeral", 1, WAIT, |r| {
            r.json()["thread_ts"] == card_ts
        })
        .await;
    assert_eq!(replies[0].json()["text"], format!("INC-{id} acknowledged."));
    assert_eq!(replies[0].json()["user"], ALICE);
    assert_eq!(incident(d, id).await["status"], "acknowledged");
    let tl = timeline(d, id).await;
    let ack = tl
        .iter()
        .find(|e| e["detail"]["to"] == "acknowledged")
        .expect("ack");
    assert_eq!(ack["actor"]["name"], "alice");

    // Slack's retry of the same event is answered and ignored.
    let ts = now_secs().to_string();
    let sig = slack_signature(common::fakes::SLACK_SECRET, &ts, event.as_bytes());
    let res = d
        .http
        .post(d.url("/chat/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", &sig)
        .header("x-slack-retry-num", "1")
        .header("x-slack-retry-reason", "http_timeout")
        .body(event.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let threaded = env
        .slack
        .fake
        .to("/api/chat.postEphemeral")
        .into_iter()
        .filter(|r| r.json()["thread_ts"] == card_ts)
        .count();
    assert_eq!(threaded, 1, "the retry did not run the command again");

    // In the thread a bare number is text: the comment goes on the thread's incident, as
    // typed.
    let event = json!({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": "T0A1B2C3D", "api_app_id": "A07CHATOPS1",
        "type": "event_callback", "event_id": "Ev07MENTION2", "event_time": now_secs(),
        "event": {"type": "app_mention", "user": ALICE,
                  "text": "<@U07BOTUSER1>  comment 2 replicas are  \"down\"",
                  "ts": "1763975600.000200", "thread_ts": card_ts, "channel": CHANNEL}
    })
    .to_string();
    let a = post_signed(d, "/chat/slack/events", &event).await;
    assert_eq!(a.status, 200, "{}", a.text);
    env.slack
        .fake
        .wait_for("/api/chat.postEphemeral", 2, WAIT, |r| {
            r.json()["thread_ts"] == card_ts
        })
        .await;
    let all = serde_json::to_string(&timeline(d, id).await.to_vec()).expect("json");
    assert!(all.contains(r#"2 replicas are  \"down\""#), "{all}");
}

/// Text from outside reaches Slack escaped (a title cannot ping the channel through the
/// message's `text` either), typed entities are read as the characters they stand for,
/// an acknowledgement's note is kept, and a stale Acknowledge button on a resolved
/// incident is refused rather than reopen it.
#[tokio::test]
async fn outside_text_is_escaped_and_a_stale_acknowledge_reopens_nothing() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let id = open_incident(d, &d.admin, "Checkout down <!channel> @here").await;
    let posted = env
        .slack
        .fake
        .wait_for("/api/chat.postMessage", 1, WAIT, |_| true)
        .await;
    let msg = posted[0].json();
    let text = msg["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Checkout down &lt;!channel&gt; @here") && !text.contains("<!channel>"),
        "{msg}"
    );
    assert!(!msg["blocks"].to_string().contains("<!channel>"), "{msg}");

    // Slack sends typed `>` and `&` as entities: stored as typed.
    let t = env
        .private(
            ALICE,
            "/incident",
            &format!("comment INC-{id} p99 &gt; 2s &amp; rising"),
        )
        .await;
    assert_eq!(t, format!("Comment added to INC-{id}."));
    let t = env
        .private(
            ALICE,
            "/incident",
            &format!("ack INC-{id} investigating db pool"),
        )
        .await;
    assert_eq!(t, format!("INC-{id} acknowledged."));
    let tl = timeline(d, id).await.to_vec();
    let all = serde_json::to_string(&tl).expect("json");
    assert!(all.contains("p99 > 2s & rising"), "{all}");
    assert!(!all.contains("&gt;"), "{all}");
    assert!(all.contains("investigating db pool"), "{all}");
    // What alice did from Slack is found under alice (and under chat:<id> exactly, not
    // under user:<id>).
    let alice_id = env.alice.0;
    for (actor, chat_entries) in [
        ("alice".to_owned(), true),
        (alice_id.to_string(), true),
        (format!("chat:{alice_id}"), true),
        (format!("user:{alice_id}"), false),
    ] {
        let a = d
            .get(&format!("/api/v1/audit?actor={actor}"), &d.admin)
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let from_chat = a.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["actor"]["kind"] == "chat" && e["actor"]["id"] == alice_id);
        assert_eq!(from_chat, chat_entries, "?actor={actor}: {}", a.text);
    }

    // Resolved from the API; an Acknowledge pressed on a card from before is refused.
    d.transition(id, "resolved").await;
    env.press(ALICE, "incident.ack", id, &env.slack.response_url("stale"))
        .await;
    let told = env
        .slack
        .fake
        .wait_for("/response/stale", 1, WAIT, |_| true)
        .await;
    let v = told[0].json();
    assert!(
        v["text"]
            .as_str()
            .unwrap_or("")
            .contains("already resolved"),
        "{v}"
    );
    assert_eq!(incident(d, id).await["status"], "resolved");
}

/// A card someone deleted in Slack is posted again on the next change, and later changes
/// update the new one; the delivery is sent, not dead.
#[tokio::test]
async fn a_deleted_card_is_posted_again() {
    let env = SlackEnv::start().await;
    let d = &env.d;
    let id = open_incident(d, &d.admin, "Card deleted").await;
    env.slack
        .fake
        .wait_for("/api/chat.postMessage", 1, WAIT, |_| true)
        .await;
    env.slack.fake.script(
        "/api/chat.update",
        1,
        Reply::json(200, json!({"ok": false, "error": "message_not_found"})),
    );
    env.slack.fake.script(
        "/api/chat.postMessage",
        1,
        Reply::json(
            200,
            json!({"ok": true, "channel": CHANNEL, "ts": "1763975551.000999"}),
        ),
    );
    d.transition(id, "acknowledged").await;
    let posted = env
        .slack
        .fake
        .wait_for("/api/chat.postMessage", 2, WAIT, |_| true)
        .await;
    assert!(
        header_text(&posted[1].json()["blocks"]).contains("*Acknowledged*"),
        "{}",
        posted[1].json()
    );
    d.transition(id, "resolved").await;
    let up = env
        .slack
        .fake
        .wait_for("/api/chat.update", 1, WAIT, |r| {
            header_text(&r.json()["blocks"]).contains("*Resolved*")
        })
        .await;
    assert_eq!(up[0].json()["ts"], "1763975551.000999");
    let dead = deliveries(d, &format!("incident_id={id}&status=dead")).await;
    assert!(dead.is_empty(), "{dead:#?}");
}
