//! Issue 5: the key press during a notification call acknowledges the incident as the user
//! whose phone rang (only with a valid X-Twilio-Signature); SMS to one number are rate
//! limited and bursts collapse into one summary; message templates are checked (422 with
//! the line), overridable and restorable.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fakes::{Reply, TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, twilio_fake};
use common::notify::*;
use common::smtp::{SmtpSink, peer_python_or_skip};
use common::{Answer, TestDaemon, into_answer};
use incidentd::domain::clock::SystemClock;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn post_callback(
    d: &TestDaemon,
    path: &str,
    params: &[(&str, &str)],
    sig: Option<&str>,
) -> Answer {
    let mut req = d
        .http
        .post(d.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(common::fakes::form_encode(params));
    if let Some(s) = sig {
        req = req.header("x-twilio-signature", s);
    }
    into_answer(req.send().await.expect("request")).await
}

fn status_changes(timeline: &[Value]) -> Vec<&Value> {
    timeline
        .iter()
        .filter(|e| e["kind"] == "status_changed" || e["detail"]["to"] == "acknowledged")
        .collect()
}

#[tokio::test]
async fn voice_key_press_acknowledges_as_the_called_user() {
    let twilio = twilio_fake().await;
    let base = twilio.base.clone();
    let d = TestDaemon::start_with(
        move |c| c.notify.twilio = Some(twilio_config(&base)),
        Arc::new(SystemClock),
    )
    .await;
    let (bob, _) = d.user("bob", "Engineer").await;
    contact(&d, bob, "voice", "+15558675310").await;
    rule(
        &d,
        "call bob and the duty phone",
        &["incident.opened"],
        json!([{"kind": "user", "id": bob}, {"kind": "voice", "number": "+15550002222"}]),
    )
    .await;
    let id = open_incident(&d, &d.admin, "Database primary down").await;
    twilio.wait_for("/Calls.json", 2, WAIT, |_| true).await;
    let calls = wait_deliveries(&d, id, "voice", 2, is_sent).await;
    let call_of = |number: &str| {
        calls
            .iter()
            .find(|c| c["target"] == number)
            .unwrap_or_else(|| panic!("no call to {number}"))["id"]
            .as_u64()
            .expect("id")
    };
    let (bobs, duty) = (call_of("+15558675310"), call_of("+15550002222"));
    // The TwiML sent to Twilio points its Gather at exactly this URL.
    let twiml = twilio
        .to("/Calls.json")
        .iter()
        .find(|r| r.form_get("To").as_deref() == Some("+15558675310"))
        .and_then(|r| r.form_get("Twiml"))
        .expect("bob's TwiML");
    let path = format!("/hooks/twilio/voice/{bobs}");
    let url = d.url(&path);
    assert!(twiml.contains(&format!("action=\"{url}\"")), "{twiml}");

    let params = [
        ("AccountSid", TWILIO_SID),
        ("CallSid", "CA1f2e3d4c5b6a79881726354433221100"),
        ("Digits", "1"),
        ("From", TWILIO_FROM),
        ("To", "+15558675310"),
    ];
    let good = twilio_signature(TWILIO_TOKEN, &url, &params);

    // Refused: unsigned, signed with another token, signed over other digits, signed for
    // another URL, or a signature copied onto another call's callback.
    let mut other_digits = params;
    other_digits[2] = ("Digits", "2");
    let refusals = [
        (path.clone(), None),
        (
            path.clone(),
            Some(twilio_signature("not-the-token", &url, &params)),
        ),
        (
            path.clone(),
            Some(twilio_signature(TWILIO_TOKEN, &url, &other_digits)),
        ),
        (
            path.clone(),
            Some(twilio_signature(
                TWILIO_TOKEN,
                &format!("https://elsewhere.example.com{path}"),
                &params,
            )),
        ),
        (format!("/hooks/twilio/voice/{duty}"), Some(good.clone())),
    ];
    for (p, sig) in &refusals {
        let a = post_callback(&d, p, &params, sig.as_deref()).await;
        a.assert_problem(403);
    }
    assert_eq!(
        incident(&d, id).await["status"],
        "new",
        "refused presses change nothing"
    );
    assert!(status_changes(&timeline(&d, id).await).is_empty());

    // The duty phone is nobody's: a correctly signed press cannot acknowledge.
    let duty_url = d.url(&format!("/hooks/twilio/voice/{duty}"));
    let mut duty_params = params;
    duty_params[4] = ("To", "+15550002222");
    let a = post_callback(
        &d,
        &format!("/hooks/twilio/voice/{duty}"),
        &duty_params,
        Some(&twilio_signature(TWILIO_TOKEN, &duty_url, &duty_params)),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("not linked to a user"), "{}", a.text);
    assert_eq!(incident(&d, id).await["status"], "new");

    // A key other than 1 does nothing.
    let a = post_callback(
        &d,
        &path,
        &other_digits,
        Some(&twilio_signature(TWILIO_TOKEN, &url, &other_digits)),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("does nothing"), "{}", a.text);
    assert_eq!(incident(&d, id).await["status"], "new");

    // Bob presses 1.
    let a = post_callback(&d, &path, &params, Some(&good)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.content_type().starts_with("application/xml"),
        "{}",
        a.content_type()
    );
    assert!(a.text.starts_with("<?xml"), "TwiML: {}", a.text);
    assert!(
        a.text.contains(&format!("Incident {id} acknowledged")),
        "{}",
        a.text
    );
    let i = incident(&d, id).await;
    assert_eq!(i["status"], "acknowledged");
    let tl = timeline(&d, id).await;
    let ack = tl
        .iter()
        .find(|e| e["detail"]["to"] == "acknowledged")
        .unwrap_or_else(|| panic!("no acknowledgement in {tl:#?}"));
    assert_eq!(ack["actor"]["name"], "bob", "{ack}");
    assert_eq!(ack["actor"]["id"], bob, "{ack}");

    // Pressing again says so and changes nothing.
    let a = post_callback(&d, &path, &params, Some(&good)).await;
    assert_eq!(a.status, 200);
    assert!(a.text.contains("already acknowledged"), "{}", a.text);

    // Resolved meanwhile: a key press on the call from before does not reopen it.
    d.transition(id, "resolved").await;
    let a = post_callback(&d, &path, &params, Some(&good)).await;
    assert_eq!(a.status, 200);
    assert!(a.text.contains("already resolved"), "{}", a.text);
    assert_eq!(incident(&d, id).await["status"], "resolved");

    // An unknown call is 404 even when signed.
    let missing = "/hooks/twilio/voice/999999";
    let a = post_callback(
        &d,
        missing,
        &params,
        Some(&twilio_signature(TWILIO_TOKEN, &d.url(missing), &params)),
    )
    .await;
    a.assert_problem(404);
}

/// A call that reads out several incidents (the rate limit folded them into one) is
/// acknowledged whole by one key press; a rule's number that is someone's voice contact
/// method acknowledges as that person.
#[tokio::test]
async fn one_key_press_acknowledges_every_incident_of_a_summary_call() {
    let twilio = twilio_fake().await;
    let base = twilio.base.clone();
    let window = 3;
    let d = TestDaemon::start_with(
        move |c| {
            fast_retries(c);
            c.notify.rate_limit_secs = window;
            c.notify.twilio = Some(twilio_config(&base));
        },
        Arc::new(SystemClock),
    )
    .await;
    let (carol, _) = d.user("carol", "Engineer").await;
    contact(&d, carol, "voice", "+15550003333").await;
    rule(
        &d,
        "call the on-call phone",
        &["incident.opened"],
        json!([{"kind": "voice", "number": "+15550003333"}]),
    )
    .await;
    let first = open_incident(&d, &d.admin, "First page").await;
    wait_deliveries(&d, first, "voice", 1, is_sent).await;
    let second = open_incident(&d, &d.admin, "Second page").await;
    let third = open_incident(&d, &d.admin, "Third page").await;
    let calls = twilio.wait_for("/Calls.json", 2, WAIT, |_| true).await;
    let twiml = calls[1].form_get("Twiml").expect("Twiml");
    assert!(twiml.contains("2 new notifications"), "{twiml}");
    assert!(twiml.contains("Press 1 to acknowledge"), "{twiml}");
    let summary = wait_deliveries(&d, second, "voice", 1, is_sent).await[0].clone();
    let summary_id = match summary["collapsed_into"].as_u64() {
        Some(into) => into,
        None => summary["id"].as_u64().expect("id"),
    };
    let path = format!("/hooks/twilio/voice/{summary_id}");
    assert!(twiml.contains(&d.url(&path)), "{twiml}");

    let params = [
        ("CallSid", "CA00000000000000000000000000000002"),
        ("Digits", "1"),
    ];
    let a = post_callback(
        &d,
        &path,
        &params,
        Some(&twilio_signature(TWILIO_TOKEN, &d.url(&path), &params)),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    for id in [second, third] {
        assert!(
            a.text.contains(&format!("Incident {id} acknowledged")),
            "{}",
            a.text
        );
        let i = incident(&d, id).await;
        assert_eq!(i["status"], "acknowledged", "{i}");
    }
    assert_eq!(
        incident(&d, first).await["status"],
        "new",
        "not read out by this call"
    );
    let tl = timeline(&d, third).await;
    let ack = tl
        .iter()
        .find(|e| e["detail"]["to"] == "acknowledged")
        .unwrap_or_else(|| panic!("no acknowledgement in {tl:#?}"));
    assert_eq!(ack["actor"]["name"], "carol", "{ack}");
}

#[tokio::test]
async fn sms_burst_within_the_rate_window_is_one_summary() {
    let twilio = twilio_fake().await;
    let base = twilio.base.clone();
    let window = 3;
    let d = TestDaemon::start_with(
        move |c| {
            fast_retries(c);
            c.notify.rate_limit_secs = window;
            c.notify.twilio = Some(twilio_config(&base));
        },
        Arc::new(SystemClock),
    )
    .await;
    rule(
        &d,
        "text the duty phone",
        &["incident.opened"],
        json!([{"kind": "sms", "number": "+15550001111"}]),
    )
    .await;
    // The first message goes out at once and opens the window.
    let first = open_incident(&d, &d.admin, "First page").await;
    wait_deliveries(&d, first, "sms", 1, is_sent).await;
    let sent_first = twilio.wait_for("/Messages.json", 1, WAIT, |_| true).await[0].clone();
    assert!(
        sent_first
            .form_get("Body")
            .expect("body")
            .contains(&format!("INC-{first} "))
    );

    // Two more incidents within the window: held, then one summary after it.
    let second = open_incident(&d, &d.admin, "Second page").await;
    let third = open_incident(&d, &d.admin, "Third page").await;
    let msgs = twilio.wait_for("/Messages.json", 2, WAIT, |_| true).await;
    let summary = &msgs[1];
    let gap = summary.at.duration_since(sent_first.at);
    assert!(
        gap >= Duration::from_secs(window),
        "the summary went {gap:?} after the first message, inside the {window}s window"
    );
    assert_eq!(summary.form_get("To").as_deref(), Some("+15550001111"));
    let body = summary.form_get("Body").expect("Body");
    assert!(body.contains("2 updates"), "{body}");
    assert!(
        body.contains(&format!("INC-{second} ")) && body.contains("Second page"),
        "{body}"
    );
    assert!(
        body.contains(&format!("INC-{third} ")) && body.contains("Third page"),
        "{body}"
    );

    let a = wait_deliveries(&d, second, "sms", 1, is_sent).await[0].clone();
    let b = wait_deliveries(&d, third, "sms", 1, is_sent).await[0].clone();
    assert_eq!(a["collapsed_into"], Value::Null, "{a}");
    assert_eq!(a["attempts"], 1, "{a}");
    assert!(
        a["provider_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("SM")),
        "{a}"
    );
    assert_eq!(b["collapsed_into"], a["id"], "the second rode along: {b}");
    assert!(b["sent_at"].is_string(), "{b}");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        twilio.to("/Messages.json").len(),
        2,
        "one summary, not one per incident"
    );
}

#[tokio::test]
async fn sms_opened_while_the_first_is_still_being_sent_waits_for_the_window() {
    let twilio = twilio_fake().await;
    // Twilio takes a second to answer: the next incidents arrive while it is in flight.
    twilio.script(
        "/Messages.json",
        1,
        Reply::json(
            201,
            json!({"sid": "SM00000000000000000000000000000001", "status": "queued"}),
        )
        .after(Duration::from_secs(1)),
    );
    let base = twilio.base.clone();
    let window = 3;
    let d = TestDaemon::start_with(
        move |c| {
            fast_retries(c);
            c.notify.rate_limit_secs = window;
            c.notify.twilio = Some(twilio_config(&base));
        },
        Arc::new(SystemClock),
    )
    .await;
    rule(
        &d,
        "text the duty phone",
        &["incident.opened"],
        json!([{"kind": "sms", "number": "+15550001111"}]),
    )
    .await;
    let first = open_incident(&d, &d.admin, "First page").await;
    twilio.wait_for("/Messages.json", 1, WAIT, |_| true).await;
    let second = open_incident(&d, &d.admin, "Second page").await;
    let third = open_incident(&d, &d.admin, "Third page").await;
    for id in [first, second, third] {
        wait_deliveries(&d, id, "sms", 1, is_sent).await;
    }
    let msgs = twilio.to("/Messages.json");
    assert_eq!(
        msgs.len(),
        2,
        "the first message and one summary: {:#?}",
        msgs.iter().map(|m| m.form_get("Body")).collect::<Vec<_>>()
    );
    assert!(msgs[1].at.duration_since(msgs[0].at) >= Duration::from_secs(window));
}

#[tokio::test]
async fn templates_are_checked_overridable_and_restorable() {
    let Some(python) = peer_python_or_skip() else {
        return;
    };
    let smtp = SmtpSink::up(python).await;
    let url = smtp.url();
    let d = TestDaemon::start_with(
        move |c| {
            fast_retries(c);
            c.notify.email = Some(email_config(&url));
        },
        Arc::new(SystemClock),
    )
    .await;
    rule(
        &d,
        "mail ops",
        &["incident.opened"],
        json!([{"kind": "email", "address": "ops@example.com"}]),
    )
    .await;
    let put = |body: Value| {
        let d = &d;
        async move {
            d.put("/api/v1/notification-templates", &d.admin, body)
                .await
        }
    };

    // Templates that do not compile are refused with their line.
    let a = put(json!({"channel": "email", "part": "subject", "source": "{% if x %}"})).await;
    a.assert_problem(422);
    let msg = a.body["errors"]["source"][0]
        .as_str()
        .expect("source error");
    assert!(msg.contains("line 1"), "{msg}");
    let a = put(
        json!({"channel": "email", "part": "body", "source": "Hello\n{{ incident.title | }}\nBye"}),
    )
    .await;
    a.assert_problem(422);
    let msg = a.body["errors"]["source"][0]
        .as_str()
        .expect("source error");
    assert!(msg.contains("line 2"), "{msg}");
    // Parts and events that do not exist.
    let a = put(json!({"channel": "sms", "part": "subject", "source": "x"})).await;
    a.assert_problem(422);
    assert!(a.body["errors"]["part"].is_array(), "{}", a.text);
    let a =
        put(json!({"event": "incident.exploded", "channel": "sms", "part": "body", "source": "x"}))
            .await;
    a.assert_problem(422);
    assert!(a.body["errors"]["event"].is_array(), "{}", a.text);
    // Engineers read templates but do not change them.
    let (_, eng) = d.user("erin", "Engineer").await;
    let a = d
        .put(
            "/api/v1/notification-templates",
            &eng,
            json!({"channel": "email", "part": "subject", "source": "x"}),
        )
        .await;
    a.assert_problem(403);
    assert_eq!(
        d.get("/api/v1/notification-templates", &eng).await.status,
        200
    );

    // The shipped subject.
    let id1 = open_incident(&d, &d.admin, "Before the override").await;
    smtp.wait_for(1, WAIT, |_| true).await;
    assert_eq!(
        smtp.messages()[0]["subject"],
        format!("[P1] INC-{id1} opened: Before the override")
    );

    // An override changes the next e-mail's subject.
    let a = put(json!({"channel": "email", "part": "subject", "source": "PAGE {{ incident.number }} {{ incident.title | upper }}"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let list = d.get("/api/v1/notification-templates", &d.admin).await;
    assert!(list.body["next_cursor"].is_null(), "{}", list.text);
    // Pages of three walk the same list, each item once, in the same order.
    let mut walked = Vec::new();
    let mut path = "/api/v1/notification-templates?limit=3".to_owned();
    loop {
        let page = d.get(&path, &d.admin).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let items = page.body["items"].as_array().expect("items");
        assert!(items.len() <= 3 && !items.is_empty(), "{}", page.text);
        walked.extend(items.iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/notification-templates?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(&walked, list.body["items"].as_array().expect("items"));
    d.get("/api/v1/notification-templates?limit=0", &d.admin)
        .await
        .assert_problem(422);
    let subjects: Vec<&Value> = list.body["items"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|t| t["channel"] == "email" && t["part"] == "subject")
        .collect();
    assert_eq!(
        subjects.len(),
        1,
        "the override replaces the shipped one: {subjects:?}"
    );
    assert_eq!(subjects[0]["builtin"], false);
    let id2 = open_incident(&d, &d.admin, "With the override").await;
    smtp.wait_for(2, WAIT, |_| true).await;
    assert_eq!(
        smtp.messages()[1]["subject"],
        format!("PAGE INC-{id2} WITH THE OVERRIDE")
    );
    // The body is still the shipped one.
    assert!(
        smtp.messages()[1]["body"]
            .as_str()
            .unwrap_or("")
            .contains("Title:     With the override")
    );

    // DELETE restores the shipped template; deleting again is 404.
    let a = d
        .delete("/api/v1/notification-templates/email/subject", &d.admin)
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    d.delete("/api/v1/notification-templates/email/subject", &d.admin)
        .await
        .assert_problem(404);
    let id3 = open_incident(&d, &d.admin, "After the reset").await;
    smtp.wait_for(3, WAIT, |_| true).await;
    assert_eq!(
        smtp.messages()[2]["subject"],
        format!("[P1] INC-{id3} opened: After the reset")
    );

    // A template that renders some events but fails on this one's data (an approval's
    // level, absent from an incident event) makes the delivery dead with the reason,
    // instead of retrying forever.
    let a = put(json!({"event": "incident.opened", "channel": "email", "part": "subject", "source": "{{ event.data.level + 1 }}"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let id4 = open_incident(&d, &d.admin, "Broken template").await;
    let log = wait_deliveries(&d, id4, "email", 1, |x| x["status"] == "dead").await;
    assert_eq!(log[0]["attempts"], 1, "{}", log[0]);
    let error = log[0]["last_error"].as_str().expect("last_error");
    assert!(error.contains("email subject template"), "{error}");
    let a = d
        .delete(
            "/api/v1/notification-templates/email/subject?event=incident.opened",
            &d.admin,
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    assert_eq!(smtp.messages().len(), 3);
}

/// A template no event could render (an unknown function, a runaway loop) is refused with
/// a 422 naming `source` and changes nothing: accepted, it would fail every page on its
/// channel, or hold a delivery thread rendering forever (and again after every restart).
#[tokio::test]
async fn templates_that_would_fail_every_page_are_refused() {
    let d = TestDaemon::start().await;
    let before = d.get("/api/v1/notification-templates", &d.admin).await.body;
    for source in [
        "{{ undefined_fn() }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "{% for i in range(100000000) %}x{% endfor %}",
    ] {
        let a = d
            .put(
                "/api/v1/notification-templates",
                &d.admin,
                json!({"channel": "sms", "part": "body", "source": source}),
            )
            .await;
        a.assert_problem(422);
        let msg = a.body["errors"]["source"][0].as_str().unwrap_or_default();
        assert!(msg.contains("example event"), "{source}: {}", a.text);
    }
    assert_eq!(
        d.get("/api/v1/notification-templates", &d.admin).await.body,
        before
    );
    let ok = d
        .put(
            "/api/v1/notification-templates",
            &d.admin,
            json!({"channel": "sms", "part": "Body", "source": "{{ incident.number }} {{ event.data.level }}"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // Parts are named in lower case, whatever the case they were given in.
    assert_eq!(ok.body["part"], "body", "{}", ok.text);
    let a = d
        .delete("/api/v1/notification-templates/sms/Body", &d.admin)
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
}
