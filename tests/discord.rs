//! Discord interactions, black-box: the documented fixtures signed with a test key and
//! posted to `/chat/discord/interactions`. PINGs are answered, bad or stale signatures are
//! 401, a slash command and a button run the same use cases as Slack and the API, and an
//! unlinked Discord user may only read.

mod common;

use std::sync::Arc;

use common::TestDaemon;
use common::notify::contact;
use ed25519_dalek::{Signer, SigningKey};
use incidentd::config::DiscordConfig;
use incidentd::domain::clock::SystemClock;
use serde_json::{Value, json};

/// The user id in the fixtures.
const FIXTURE_USER: &str = "1344444444444444444";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

async fn start() -> TestDaemon {
    let public = hex::encode(key().verifying_key().to_bytes());
    TestDaemon::start_with(
        move |c| c.discord = Some(DiscordConfig { public_key: public }),
        Arc::new(SystemClock),
    )
    .await
}

/// Posts `body` signed at `ts` (seconds) with `signer`.
async fn post_signed(d: &TestDaemon, body: &Value, ts: i64, signer: &SigningKey) -> common::Answer {
    let raw = body.to_string();
    let ts = ts.to_string();
    let mut msg = ts.as_bytes().to_vec();
    msg.extend_from_slice(raw.as_bytes());
    let sig = hex::encode(signer.sign(&msg).to_bytes());
    let res = d
        .http
        .post(d.url("/chat/discord/interactions"))
        .header("content-type", "application/json")
        .header("x-signature-ed25519", sig)
        .header("x-signature-timestamp", ts)
        .body(raw)
        .send()
        .await
        .expect("request");
    common::into_answer(res).await
}

async fn post(d: &TestDaemon, body: &Value) -> common::Answer {
    post_signed(d, body, chrono::Utc::now().timestamp(), &key()).await
}

fn content(a: &common::Answer) -> String {
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["type"], 4, "{}", a.text);
    a.body["data"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The command fixture (`/incident ack id:INC-1042 note:...`) aimed at incident `id`.
fn ack_command(id: u64) -> Value {
    let mut c = fixture("discord_interaction_command.json");
    c["data"]["options"][0]["options"][0]["value"] = json!(format!("INC-{id}"));
    c
}

#[tokio::test]
async fn pings_are_answered_and_bad_signatures_refused() {
    let d = start().await;
    let ping = fixture("discord_interaction_ping.json");
    let a = post(&d, &ping).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body, fixture("discord_response_pong.json"));

    let now = chrono::Utc::now().timestamp();
    let forged = post_signed(&d, &ping, now, &SigningKey::from_bytes(&[1u8; 32])).await;
    forged.assert_problem(401);
    assert!(forged.text.contains("bad signature"), "{}", forged.text);
    post_signed(&d, &ping, now - 600, &key())
        .await
        .assert_problem(401);
    let unsigned = d
        .http
        .post(d.url("/chat/discord/interactions"))
        .body(ping.to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), 401);

    // Without a Discord key configured the route does not exist.
    let plain = TestDaemon::start().await;
    let a = plain
        .http
        .post(plain.url("/chat/discord/interactions"))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(a.status(), 404);
}

#[tokio::test]
async fn commands_and_buttons_act_for_the_linked_user_only() {
    let d = start().await;
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "DB pool exhausted", "impact": "high", "urgency": "high"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();

    // Unlinked: may read, not change.
    let t = content(&post(&d, &ack_command(id)).await);
    assert!(t.contains("not linked"), "{t}");
    let a = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(a.body["status"], "new", "nothing changed");
    let mut status = ack_command(id);
    status["data"]["options"][0]["name"] = json!("status");
    status["data"]["options"][0]["options"] =
        json!([{"name": "id", "type": 3, "value": format!("INC-{id}")}]);
    let t = content(&post(&d, &status).await);
    assert!(t.contains(&format!("INC-{id}")), "{t}");

    // Linked through a discord contact method: the command acknowledges.
    let (ann, _) = d.user("ann", "Engineer").await;
    contact(&d, ann, "discord", FIXTURE_USER).await;
    let a = post(&d, &ack_command(id)).await;
    let t = content(&a);
    assert!(t.contains(&format!("INC-{id}")), "{t}");
    assert_eq!(a.body["data"]["flags"], 64, "answers are private");
    let a = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(a.body["status"], "acknowledged", "{}", a.text);
    let timeline = d
        .get(&format!("/api/v1/incidents/{id}/timeline"), &d.admin)
        .await;
    assert!(
        timeline.text.contains("ann"),
        "acted as ann: {}",
        timeline.text
    );

    // The button fixture resolves it.
    let mut button = fixture("discord_interaction_component.json");
    button["data"]["custom_id"] = json!(format!("inc:resolve:INC-{id}"));
    content(&post(&d, &button).await);
    let a = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(a.body["status"], "resolved", "{}", a.text);

    // Mistakes get the usage; unknown commands and buttons are named.
    let mut bad = ack_command(id);
    bad["data"]["options"][0]["options"][0]["value"] = json!("yesterday");
    let t = content(&post(&d, &bad).await);
    assert!(
        t.contains("not an incident id") && t.contains("Usage"),
        "{t}"
    );
    let mut unknown = ack_command(id);
    unknown["data"]["name"] = json!("deploy");
    assert!(content(&post(&d, &unknown).await).contains("/deploy"));
    button["data"]["custom_id"] = json!("inc:explode:1");
    assert!(content(&post(&d, &button).await).contains("inc:explode:1"));
    let a = post(&d, &json!({"type": 99})).await;
    a.assert_problem(400);
}
