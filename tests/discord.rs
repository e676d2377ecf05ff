//! Discord, black-box. Interactions: the documented fixtures signed with a test key and
//! posted to `/chat/discord/interactions`. PINGs are answered, bad or stale signatures are
//! 401, a slash command and a button run the same use cases as Slack and the API, and an
//! unlinked Discord user may only read. Outbound, against a fake Discord API on loopback:
//! incident cards are posted to a channel and edited as the incident changes (and their
//! buttons work), pages reach people as direct messages, rate limits are retried, and
//! `incidentd discord register-commands` overwrites the application's commands.

mod common;

use std::sync::Arc;

use common::TestDaemon;
use common::fakes::{DISCORD_BOT_TOKEN, Fake, Recorded, Reply, discord_dm_channel, discord_fake};
use common::notify::{contact, fast_retries, rule, wait_deliveries};
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
        move |c| {
            c.discord = Some(DiscordConfig {
                public_key: public,
                ..DiscordConfig::default()
            })
        },
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

/// Posts `body` signed now, as a new interaction: Discord gives every interaction its own
/// id (and the daemon refuses a signed request it has already received).
async fn post(d: &TestDaemon, body: &Value) -> common::Answer {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut body = body.clone();
    if let Some(b) = body.as_object_mut() {
        let n = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b.insert("id".into(), json!(format!("9{n:018}")));
    }
    post_signed(d, &body, chrono::Utc::now().timestamp(), &key()).await
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
    // A signed interaction replayed within the window is refused: Discord never sends
    // one twice.
    let once =
        json!({"id": "replayed-1", "type": 1, "application_id": "1", "token": "t", "version": 1});
    assert_eq!(post_signed(&d, &once, now, &key()).await.status, 200);
    let replay = post_signed(&d, &once, now, &key()).await;
    replay.assert_problem(401);
    assert!(replay.text.contains("already received"), "{}", replay.text);
    // The same signature in capital hex (which decodes to the same bytes) is the same
    // request.
    let raw = once.to_string();
    let mut msg = now.to_string().into_bytes();
    msg.extend_from_slice(raw.as_bytes());
    let shouted = hex::encode_upper(key().sign(&msg).to_bytes());
    let res = d
        .http
        .post(d.url("/chat/discord/interactions"))
        .header("content-type", "application/json")
        .header("x-signature-ed25519", shouted)
        .header("x-signature-timestamp", now.to_string())
        .body(raw)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
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

/// The channel cards go to when a service names none.
const CARD_CHANNEL: &str = "1100000000000000001";
const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A daemon with interactions on and a bot that posts through `fake`.
async fn start_posting(fake: &Fake, default_channel: Option<&str>) -> TestDaemon {
    let public = hex::encode(key().verifying_key().to_bytes());
    let base = fake.url("/api/v10");
    let default_channel = default_channel.map(str::to_owned);
    TestDaemon::start_with(
        move |c| {
            fast_retries(c);
            c.discord = Some(DiscordConfig {
                public_key: public,
                bot_token: DISCORD_BOT_TOKEN.into(),
                api_base_url: base,
                default_channel,
                ..DiscordConfig::default()
            })
        },
        Arc::new(SystemClock),
    )
    .await
}

/// The `custom_id`s of a posted or edited card.
fn button_ids(r: &Recorded) -> Vec<String> {
    r.json()["components"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|b| b["custom_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn embed_description(r: &Recorded) -> String {
    r.json()["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn incident_cards_are_posted_to_discord_edited_in_place_and_their_buttons_work() {
    let fake = discord_fake().await;
    let d = start_posting(&fake, Some(CARD_CHANNEL)).await;
    let id = common::notify::open_incident(&d, &d.admin, "Payments API 5xx").await;

    let card_path = format!("/channels/{CARD_CHANNEL}/messages");
    let posted = fake
        .wait_for(&card_path, 1, WAIT, |r| r.method == "POST")
        .await
        .remove(0);
    assert_eq!(
        posted.header("authorization"),
        Some(format!("Bot {DISCORD_BOT_TOKEN}").as_str())
    );
    let card = posted.json();
    assert_eq!(
        card["embeds"][0]["title"],
        format!("[P1] INC-{id} Payments API 5xx")
    );
    assert!(embed_description(&posted).contains("Status: **New**"));
    assert_eq!(card["allowed_mentions"]["parse"], json!([]));
    let ack = format!("inc:ack:INC-{id}");
    assert!(button_ids(&posted).contains(&ack), "{card}");

    // A linked engineer presses the card's own Acknowledge button.
    let (ann, _) = d.user("ann", "Engineer").await;
    contact(&d, ann, "discord", FIXTURE_USER).await;
    let mut press = fixture("discord_interaction_component.json");
    press["data"]["custom_id"] = json!(ack);
    content(&post(&d, &press).await);
    let a = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(a.body["status"], "acknowledged", "{}", a.text);

    // The card is edited in place: same message, new status, no Acknowledge button.
    let edited = fake
        .wait_for(&card_path, 1, WAIT, |r| {
            r.method == "PATCH" && embed_description(r).contains("Acknowledged")
        })
        .await
        .remove(0);
    assert!(!button_ids(&edited).contains(&ack));
    assert!(button_ids(&edited).contains(&format!("inc:resolve:INC-{id}")));
    let resolve = d
        .post(
            &format!("/api/v1/incidents/{id}/transition"),
            &d.admin,
            json!({"to": "resolved"}),
        )
        .await;
    assert_eq!(resolve.status, 200, "{}", resolve.text);
    let last = fake
        .wait_for(&card_path, 1, WAIT, |r| {
            r.method == "PATCH" && embed_description(r).contains("Resolved")
        })
        .await
        .remove(0);
    assert_eq!(
        last.json()["components"],
        json!([]),
        "no buttons once resolved"
    );
    let posts = fake
        .to(&card_path)
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        posts, 1,
        "one card per incident and channel, edited ever after"
    );
    let edits: std::collections::BTreeSet<String> = fake
        .to(&card_path)
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path)
        .collect();
    assert_eq!(edits.len(), 1, "every edit is of the one card: {edits:?}");
    wait_deliveries(&d, id, "discord", 1, |x| x["status"] == "sent").await;

    // A service may name its own channel; it must be a channel id.
    let bad = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "payments", "discord_channel": "#payments"}),
        )
        .await;
    common::ingest::assert_invalid_field(&bad, "discord_channel");
    let own = "1200000000000000002";
    let svc = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "payments", "discord_channel": own}),
        )
        .await;
    assert_eq!(svc.status, 201, "{}", svc.text);
    assert_eq!(svc.body["discord_channel"], own);
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "Card queue stuck", "impact": "low", "urgency": "low", "service_id": svc.id()}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let there = fake
        .wait_for(&format!("/channels/{own}/messages"), 1, WAIT, |r| {
            r.method == "POST"
        })
        .await;
    assert!(
        there[0].json()["embeds"][0]["title"]
            .as_str()
            .unwrap_or_default()
            .contains("Card queue stuck")
    );
}

#[tokio::test]
async fn pages_reach_people_by_direct_message_and_rate_limits_are_retried() {
    let fake = discord_fake().await;
    let d = start_posting(&fake, None).await;
    let bob_discord = "1355555555555555555";
    let (bob, _) = d.user("bob", "Engineer").await;
    contact(&d, bob, "discord", bob_discord).await;
    let bad = d
        .post(
            &format!("/api/v1/users/{bob}/contact-methods"),
            &d.admin,
            json!({"kind": "discord", "address": "bob#1234"}),
        )
        .await;
    common::ingest::assert_invalid_field(&bad, "address");
    rule(
        &d,
        "bob hears of everything",
        &["incident.opened"],
        json!([{"kind": "user", "id": bob}]),
    )
    .await;
    // Discord's rate-limit answer, once.
    fake.script(
        "/messages",
        1,
        Reply::json(
            429,
            json!({"message": "You are being rate limited.", "retry_after": 1.0, "global": false}),
        )
        .header("retry-after", "1"),
    );
    let id = common::notify::open_incident(&d, &d.admin, "Disk full on db-1").await;

    let dm = fake
        .wait_for("/users/@me/channels", 1, WAIT, |r| r.method == "POST")
        .await;
    assert_eq!(dm[0].json()["recipient_id"], bob_discord);
    let channel = discord_dm_channel(bob_discord);
    let sends = fake
        .wait_for(&format!("/channels/{channel}/messages"), 2, WAIT, |r| {
            r.method == "POST"
        })
        .await;
    assert!(sends[1].at - sends[0].at >= std::time::Duration::from_millis(900));
    assert!(
        sends[1].json()["embeds"][0]["title"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("INC-{id}"))
    );
    let log = wait_deliveries(&d, id, "discord", 1, |x| x["status"] == "sent").await;
    assert_eq!(log[0]["attempts"], 2, "{log:#?}");
    assert_eq!(log[0]["target"], bob_discord);
    // No default channel and no service channel: no card anywhere else.
    let elsewhere: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/messages") && !r.path.contains(&channel))
        .map(|r| r.path)
        .collect();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
}

/// Runs the binary with only PATH and `env`.
async fn incidentd(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(common::binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INCIDENTD_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("incidentd finished")
        .expect("incidentd ran")
}

#[tokio::test]
async fn register_commands_overwrites_the_applications_commands() {
    let fake = discord_fake().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("incidentd.toml");
    std::fs::write(
        &config,
        format!("[discord]\napi_base_url = \"{}\"\n", fake.url("/api/v10")),
    )
    .expect("config");
    let config = config.to_str().expect("path");
    let env = [
        ("INCIDENTD_DISCORD_BOT_TOKEN", DISCORD_BOT_TOKEN),
        ("INCIDENTD_DISCORD_APPLICATION_ID", "1300000000000000003"),
    ];
    let out = incidentd(
        &[
            "--config",
            config,
            "discord",
            "register-commands",
            "--guild",
            "1400000000000000004",
        ],
        &env,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("registered 4 commands in server 1400000000000000004"),
        "{stdout}"
    );
    let put = fake.to("/commands");
    assert_eq!(put.len(), 1);
    assert_eq!(put[0].method, "PUT");
    assert_eq!(
        put[0].path,
        "/api/v10/applications/1300000000000000003/guilds/1400000000000000004/commands"
    );
    assert_eq!(
        put[0].header("authorization"),
        Some(format!("Bot {DISCORD_BOT_TOKEN}").as_str())
    );
    assert_eq!(put[0].json(), incidentd::chat::discord::definitions::all());

    // Global registration, and the printed definitions.
    let out = incidentd(&["--config", config, "discord", "register-commands"], &env).await;
    assert!(out.status.success());
    assert_eq!(
        fake.to("/commands")[1].path,
        "/api/v10/applications/1300000000000000003/commands"
    );
    let out = incidentd(&["discord", "register-commands", "--print"], &[]).await;
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(printed, incidentd::chat::discord::definitions::all());

    // What is missing is named, and nothing is sent.
    let out = incidentd(
        &["--config", config, "discord", "register-commands"],
        &[("INCIDENTD_DISCORD_BOT_TOKEN", DISCORD_BOT_TOKEN)],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("discord.application_id"));
    fake.script(
        "/commands",
        1,
        Reply::json(401, json!({"message": "401: Unauthorized", "code": 0})),
    );
    let out = incidentd(&["--config", config, "discord", "register-commands"], &env).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.to("/commands").len(), 3);
}

#[tokio::test]
async fn approvers_decide_from_the_buttons_on_their_direct_message() {
    let fake = discord_fake().await;
    let d = start_posting(&fake, None).await;
    let (mona, _) = d.user("mona", "Manager").await;
    contact(&d, mona, "discord", FIXTURE_USER).await;
    let (_, alice_token) = d.user("alice", "Engineer").await;
    let wf = d
        .post(
            "/api/v1/approval-workflows",
            &d.admin,
            json!({"name": "Failover", "levels": [{"name": "manager", "approvers": [{"type": "user", "id": mona}]}]}),
        )
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    let a = d
        .post(
            "/api/v1/approvals",
            &alice_token,
            json!({"workflow_id": wf.id(), "title": "Fail over to the replica"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let number = format!("APR-{}", a.id());

    let dm = discord_dm_channel(FIXTURE_USER);
    let asked = fake
        .wait_for(&format!("/channels/{dm}/messages"), 1, WAIT, |r| {
            r.method == "POST"
        })
        .await
        .remove(0);
    let ids = button_ids(&asked);
    assert_eq!(
        ids,
        [
            format!("apr:approve:{number}"),
            format!("apr:reject:{number}")
        ]
    );
    let content = asked.json()["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(content.contains(&number), "{content}");

    // Somebody unlinked presses it: nothing is decided, the buttons stay.
    let mut stranger = fixture("discord_interaction_component.json");
    stranger["data"]["custom_id"] = json!(ids[0]);
    stranger["member"]["user"]["id"] = json!("1377777777777777777");
    let a = post(&d, &stranger).await;
    assert_eq!(a.body["type"], 4, "{}", a.text);
    assert_eq!(a.body["data"]["flags"], 64);
    assert!(a.text.contains("not linked"), "{}", a.text);

    // Mona presses Approve on that message: decided, and the message loses its buttons.
    let mut press = fixture("discord_interaction_component.json");
    press["data"]["custom_id"] = json!(ids[0]);
    press["message"]["content"] = json!(content);
    let a = post(&d, &press).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["type"], 7, "{}", a.text);
    assert_eq!(a.body["data"]["components"], json!([]));
    let shown = a.body["data"]["content"].as_str().unwrap_or_default();
    assert!(
        shown.starts_with(&content) && shown.contains(&format!("{number} is approved")),
        "{shown}"
    );
    let r = d
        .get(&format!("/api/v1/approvals/{}", &number[4..]), &d.admin)
        .await;
    assert_eq!(r.body["status"], "approved", "{}", r.text);
    assert_eq!(r.body["decisions"][0]["username"], "mona");

    // `/approve` takes Slack's words: a second request rejected with a reason.
    let a = d
        .post(
            "/api/v1/approvals",
            &alice_token,
            json!({"workflow_id": wf.id(), "title": "Drop the old replica"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let second = a.id();
    let mut typed = fixture("discord_interaction_command.json");
    typed["data"] = json!({"name": "approve", "type": 1, "options": [
        {"type": 3, "name": "command", "value": format!("reject APR-{second} too risky today")}]});
    let t = self::content(&post(&d, &typed).await);
    assert!(t.contains(&format!("APR-{second} is rejected")), "{t}");
    let r = d
        .get(&format!("/api/v1/approvals/{second}"), &d.admin)
        .await;
    assert_eq!(r.body["status"], "rejected", "{}", r.text);
    assert_eq!(r.body["decisions"][0]["comment"], "too risky today");
}

/// A card someone deleted in Discord (the edit answers 404) is posted again, and the next
/// change edits the new one.
#[tokio::test]
async fn a_deleted_discord_card_is_posted_again() {
    let fake = discord_fake().await;
    let d = start_posting(&fake, Some(CARD_CHANNEL)).await;
    let id = common::notify::open_incident(&d, &d.admin, "Card deleted").await;
    let card_path = format!("/channels/{CARD_CHANNEL}/messages");
    fake.wait_for(&card_path, 1, WAIT, |r| r.method == "POST")
        .await;
    // The fake numbers messages from 1400000000000000001: the card is that one.
    fake.script(
        "/messages/1400000000000000001",
        1,
        Reply::json(404, json!({"message": "Unknown Message", "code": 10008})),
    );
    d.transition(id, "acknowledged").await;
    let posted = fake
        .wait_for(&card_path, 2, WAIT, |r| r.method == "POST")
        .await;
    assert!(
        embed_description(&posted[1]).contains("Acknowledged"),
        "{}",
        posted[1].json()
    );
    d.transition(id, "resolved").await;
    let edited = fake
        .wait_for(&card_path, 1, WAIT, |r| {
            r.method == "PATCH" && embed_description(r).contains("Resolved")
        })
        .await;
    assert!(
        edited[0].path.ends_with("/messages/1400000000000000002"),
        "{}",
        edited[0].path
    );
}
