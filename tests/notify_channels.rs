//! Issue 5, end to end: an incident opened through the API reaches a real SMTP server
//! (aiosmtpd), a Twilio fake (SMS and a call with a key-press Gather) and a webhook receiver
//! (HMAC-signed JSON); the delivery log records each send, and no secret leaks in any answer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::TestDaemon;
use common::fakes::{TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, twilio_fake, webhook_fake};
use common::notify::*;
use common::smtp::{SmtpSink, peer_python_or_skip};
use incidentd::domain::clock::SystemClock;
use serde_json::{Value, json};

const WEBHOOK_SECRET: &str = "whsec-do-not-leak-7f3a9c";
const CONTACT_SECRET: &str = "contact-secret-do-not-leak-42";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn incident_opened_reaches_email_sms_voice_and_webhook() {
    let Some(python) = peer_python_or_skip() else {
        return;
    };
    let smtp = SmtpSink::up(python).await;
    let twilio = twilio_fake().await;
    let hook = webhook_fake().await;
    let (smtp_url, twilio_base) = (smtp.url(), twilio.base.clone());
    let d = TestDaemon::start_with(
        move |c| {
            c.notify.email = Some(email_config(&smtp_url));
            c.notify.twilio = Some(twilio_config(&twilio_base));
        },
        Arc::new(SystemClock),
    )
    .await;

    // Alice is reached by e-mail and phone call through her contact methods; the rule also
    // names an e-mail list, an SMS number, a voice number and a webhook directly.
    let (alice, _) = d.user("alice", "Engineer").await;
    contact(&d, alice, "email", "alice@example.com").await;
    contact(&d, alice, "voice", "+15558675310").await;
    // A webhook contact method with a secret: stored, never shown.
    let a = d
        .post(
            &format!("/api/v1/users/{alice}/contact-methods"),
            &d.admin,
            json!({"kind": "webhook", "address": hook.url("/alice"), "secret": CONTACT_SECRET}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert!(!a.text.contains(CONTACT_SECRET), "{}", a.text);
    let created = rule(
        &d,
        "page everyone",
        &["incident.opened"],
        json!([
            {"kind": "user", "id": alice},
            {"kind": "email", "address": "ops-list@example.com"},
            {"kind": "sms", "number": "+15550001111"},
            {"kind": "voice", "number": "+15550002222"},
            {"kind": "webhook", "url": hook.url("/incidents"), "secret": WEBHOOK_SECRET}
        ]),
    )
    .await;
    assert!(
        !created.to_string().contains(WEBHOOK_SECRET),
        "the create answer shows the secret: {created}"
    );

    let title = "Checkout API 5xx above 5%";
    let id = open_incident(&d, &d.admin, title).await;
    let number = format!("INC-{id}");

    // E-mail: both recipients, rendered subject and body, from the configured sender.
    let mails = smtp.wait_for(2, WAIT, |_| true).await;
    let mut rcpts: Vec<String> = mails
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap_or_default().to_owned())
        .collect();
    rcpts.sort();
    assert_eq!(rcpts, ["alice@example.com", "ops-list@example.com"]);
    for m in &mails {
        assert_eq!(
            m["subject"],
            format!("[P1] {number} opened: {title}"),
            "{m}"
        );
        assert_eq!(m["mail_from"], "incidentd@example.com", "{m}");
        assert!(
            m["from"]
                .as_str()
                .unwrap_or("")
                .contains("incidentd@example.com")
        );
        let body = m["body"].as_str().expect("body");
        for needle in [
            format!("{number} opened."),
            format!("Title:     {title}"),
            "Priority:  P1 (impact high, urgency high)".to_owned(),
            "Status:    new".to_owned(),
            format!("Details of {title}"),
            format!("{}/api/v1/incidents/{id}", d.base),
        ] {
            assert!(
                body.contains(&needle),
                "e-mail body lacks {needle:?}:\n{body}"
            );
        }
    }

    // SMS: Twilio's Messages resource, Basic auth sid:token, To/From/Body.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    let sms = twilio.wait_for("/Messages.json", 1, WAIT, |_| true).await;
    assert_eq!(sms.len(), 1, "one SMS");
    let m = &sms[0];
    assert_eq!(m.method, "POST");
    assert_eq!(
        m.path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    assert_eq!(m.header("authorization"), Some(basic.as_str()));
    assert!(
        m.header("content-type")
            .unwrap_or("")
            .starts_with("application/x-www-form-urlencoded")
    );
    assert_eq!(m.form_get("To").as_deref(), Some("+15550001111"));
    assert_eq!(m.form_get("From").as_deref(), Some(TWILIO_FROM));
    let body = m.form_get("Body").expect("Body");
    assert!(
        body.contains(&format!("P1 {number} opened: {title}")),
        "SMS body: {body}"
    );

    // Calls: alice's voice contact method and the voice target, each with TwiML that reads
    // the incident out and gathers one digit for the daemon's callback.
    let calls = twilio.wait_for("/Calls.json", 2, WAIT, |_| true).await;
    assert_eq!(calls.len(), 2, "two calls");
    let voice_log = wait_deliveries(&d, id, "voice", 2, is_sent).await;
    let mut called: Vec<String> = Vec::new();
    for c in &calls {
        assert_eq!(
            c.path,
            format!("/2010-04-01/Accounts/{TWILIO_SID}/Calls.json")
        );
        assert_eq!(c.header("authorization"), Some(basic.as_str()));
        assert_eq!(c.form_get("From").as_deref(), Some(TWILIO_FROM));
        let to = c.form_get("To").expect("To");
        let twiml = c.form_get("Twiml").expect("Twiml");
        let delivery = voice_log
            .iter()
            .find(|v| v["target"] == to.as_str())
            .unwrap_or_else(|| panic!("no voice delivery to {to}: {voice_log:#?}"));
        let action = format!(
            "action=\"{}/hooks/twilio/voice/{}\"",
            d.base,
            delivery["id"].as_u64().expect("id")
        );
        assert!(twiml.starts_with("<?xml"), "{twiml}");
        assert!(twiml.contains(&format!("incident {id}")), "{twiml}");
        assert!(twiml.contains(title), "{twiml}");
        if to == "+15558675310" {
            // Alice's phone: she may acknowledge.
            assert!(twiml.contains("<Gather"), "{twiml}");
            assert!(twiml.contains("numDigits=\"1\""), "{twiml}");
            assert!(twiml.contains(&action), "{action} in {twiml}");
            assert!(twiml.contains("Press 1 to acknowledge"), "{twiml}");
        } else {
            // A number the rule names, nobody's: nothing to press.
            assert!(!twiml.contains("<Gather"), "{twiml}");
            assert!(!twiml.contains("Press 1"), "{twiml}");
        }
        called.push(to);
    }
    called.sort();
    assert_eq!(called, ["+15550002222", "+15558675310"]);

    // Webhooks: the JSON names the incident and the event; the signature verifies with the
    // target's secret (and with the contact method's secret for alice's hook).
    let hooks = hook.wait_for("/", 2, WAIT, |_| true).await;
    for (path, secret) in [("/incidents", WEBHOOK_SECRET), ("/alice", CONTACT_SECRET)] {
        let h = hooks
            .iter()
            .find(|h| h.path == path)
            .unwrap_or_else(|| panic!("no webhook to {path}"));
        assert_eq!(h.header("content-type"), Some("application/json"));
        let v = h.json();
        assert_eq!(v["incident"]["number"], number, "{v}");
        assert_eq!(v["incident"]["id"], id, "{v}");
        assert_eq!(v["incident"]["title"], title, "{v}");
        assert_eq!(v["incident"]["priority"], "P1", "{v}");
        assert_eq!(v["event"]["kind"], "incident.opened", "{v}");
        assert_eq!(h.header("x-incidentd-event"), Some("incident.opened"));
        let sig = h.header("x-incidentd-signature").expect("signature header");
        let ts = h.header("x-incidentd-timestamp").expect("timestamp header");
        let sent: i64 = ts.parse().expect("Unix seconds");
        assert!((now_secs() - sent).abs() < 300, "{ts}");
        assert_eq!(sig, webhook_signature(secret, ts, &h.body), "{path}");
        assert_ne!(sig, webhook_signature("wrong", ts, &h.body));
        let replayed_later = (sent + 600).to_string();
        assert_ne!(
            sig,
            webhook_signature(secret, &replayed_later, &h.body),
            "the signature covers the time"
        );
        assert_eq!(
            h.header("x-incidentd-delivery"),
            Some(v["delivery_id"].to_string().as_str())
        );
    }

    // The delivery log: every send once, sent, one attempt, with its latency.
    let all = eventually("every delivery sent", WAIT, async || {
        let all = deliveries(&d, &format!("incident_id={id}")).await;
        (all.len() == 7 && all.iter().all(is_sent)).then_some(all)
    })
    .await;
    let mut channels: Vec<&str> = all
        .iter()
        .map(|x| x["channel"].as_str().expect("channel"))
        .collect();
    channels.sort();
    assert_eq!(
        channels,
        [
            "email", "email", "sms", "voice", "voice", "webhook", "webhook"
        ]
    );
    for x in &all {
        assert_eq!(x["attempts"], 1, "{x}");
        assert_eq!(x["event"], "incident.opened", "{x}");
        assert!(x["latency_ms"].as_i64().is_some_and(|l| l >= 0), "{x}");
        assert!(x["sent_at"].is_string(), "{x}");
        assert_eq!(x["last_error"], Value::Null, "{x}");
    }
    let sms_log = all.iter().find(|x| x["channel"] == "sms").expect("sms");
    assert_eq!(sms_log["target"], "+15550001111");
    assert!(
        sms_log["provider_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("SM")),
        "the Twilio sid is kept: {sms_log}"
    );

    // No answer ever carries a secret.
    for path in [
        "/api/v1/notification-rules".to_owned(),
        format!("/api/v1/notification-rules/{}", created["id"]),
        "/api/v1/notifications?limit=500".to_owned(),
        format!("/api/v1/notifications?incident_id={id}&channel=webhook"),
        format!("/api/v1/users/{alice}/contact-methods"),
        "/api/v1/audit?limit=500".to_owned(),
    ] {
        let a = d.get(&path, &d.admin).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        for secret in [WEBHOOK_SECRET, CONTACT_SECRET, TWILIO_TOKEN] {
            assert!(
                !a.text.contains(secret),
                "{path} shows a secret: {}",
                a.text
            );
        }
    }
    let shown = d
        .get(
            &format!("/api/v1/notification-rules/{}", created["id"]),
            &d.admin,
        )
        .await;
    let target = &shown.body["targets"][4];
    assert_eq!(target["kind"], "webhook");
    assert_eq!(
        target["secret"], "[redacted]",
        "says a secret is set: {target}"
    );

    // Nothing is sent twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.messages().len(), 2);
    assert_eq!(twilio.to("/Messages.json").len(), 1);
    assert_eq!(twilio.to("/Calls.json").len(), 2);
    assert_eq!(hook.requests().len(), 2);
}

#[tokio::test]
async fn the_person_who_acts_is_not_notified_and_rules_filter_by_event() {
    let hook = webhook_fake().await;
    let d = TestDaemon::start().await;
    let (bob, bob_token) = d.user("bob", "Engineer").await;
    let a = d
        .post(
            &format!("/api/v1/users/{bob}/contact-methods"),
            &d.admin,
            json!({"kind": "webhook", "address": hook.url("/bob")}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    rule(
        &d,
        "opened and resolved",
        &["incident.opened", "incident.resolved"],
        json!([{"kind": "user", "id": bob}, {"kind": "webhook", "url": hook.url("/ops")}]),
    )
    .await;

    // Bob opens it himself: the ops hook hears about it, bob does not.
    let id = open_incident(&d, &bob_token, "Bob's own incident").await;
    hook.wait_for("/ops", 1, WAIT, |_| true).await;
    // Admin acknowledges (not a rule event), then resolves (a rule event): bob hears of that.
    for to in ["acknowledged", "resolved"] {
        let a = d
            .post(
                &format!("/api/v1/incidents/{id}/transition"),
                &d.admin,
                json!({"to": to}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let bob_hooks = hook.wait_for("/bob", 1, WAIT, |_| true).await;
    assert_eq!(bob_hooks[0].json()["event"]["kind"], "incident.resolved");
    let ops = hook.wait_for("/ops", 2, WAIT, |_| true).await;
    let kinds: Vec<Value> = ops
        .iter()
        .map(|h| h.json()["event"]["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [json!("incident.opened"), json!("incident.resolved")]
    );
    // Unsigned when no secret is set.
    assert!(ops[0].header("x-incidentd-signature").is_none());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        hook.to("/bob").len(),
        1,
        "bob is not told about his own incident"
    );
    assert_eq!(hook.to("/ops").len(), 2, "acknowledged matches no rule");
}

#[tokio::test]
async fn contact_methods_are_the_users_own_or_need_user_write() {
    let d = TestDaemon::start().await;
    let (vic, vic_token) = d.user("vic", "Viewer").await;
    let (eve, _) = d.user("eve", "Engineer").await;
    // Anyone manages their own.
    let a = d
        .post(
            &format!("/api/v1/users/{vic}/contact-methods"),
            &vic_token,
            json!({"kind": "sms", "address": "+15550003333"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    // Not someone else's: 403 naming the permission, before the body is even looked at.
    for body in [json!({"kind": "sms", "address": "+15550004444"}), json!({})] {
        let a = d
            .post(
                &format!("/api/v1/users/{eve}/contact-methods"),
                &vic_token,
                body,
            )
            .await;
        a.assert_problem(403);
        assert!(a.text.contains("user:write"), "{}", a.text);
    }
    // Validation for one's own.
    let a = d
        .post(
            &format!("/api/v1/users/{vic}/contact-methods"),
            &vic_token,
            json!({"kind": "sms", "address": "5550004444"}),
        )
        .await;
    a.assert_problem(422);
    assert!(a.body["errors"]["address"].is_array(), "{}", a.text);
    let a = d
        .post(
            &format!("/api/v1/users/{vic}/contact-methods"),
            &vic_token,
            json!({"kind": "email", "address": "vic@example.com", "secret": "x"}),
        )
        .await;
    a.assert_problem(422);
    assert!(a.body["errors"]["secret"].is_array(), "{}", a.text);
    assert_eq!(
        d.get(&format!("/api/v1/users/{eve}/contact-methods"), &d.admin)
            .await
            .body,
        json!({"items": [], "next_cursor": null})
    );
}
