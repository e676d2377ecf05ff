//! Issue 5, the durable outbox: an SMTP outage is retried until the server is back (also
//! across a daemon restart), nothing is delivered twice, a webhook's 429 Retry-After is
//! honoured, and a permanent 400 ends the delivery dead after one attempt.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestDaemon;
use common::fakes::{Fake, Reply, webhook_fake};
use common::notify::*;
use common::smtp::{SmtpSink, peer_python_or_skip};
use incidentd::domain::clock::SystemClock;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn subject_of(m: &Value) -> String {
    m["subject"].as_str().unwrap_or_default().to_owned()
}

/// How many e-mails the sink holds about incident `id`.
fn mails_about(smtp: &SmtpSink, id: u64) -> usize {
    let needle = format!("INC-{id} ");
    smtp.messages()
        .iter()
        .filter(|m| subject_of(m).contains(&needle))
        .count()
}

async fn email_rule(d: &TestDaemon) {
    rule(
        d,
        "mail ops",
        &["incident.opened"],
        json!([{"kind": "email", "address": "ops@example.com"}]),
    )
    .await;
}

/// Waits until the e-mail of `id` has failed at least `attempts` times.
async fn failed_at_least(d: &TestDaemon, id: u64, attempts: u64) -> Value {
    let log = wait_deliveries(d, id, "email", 1, |x| {
        x["status"] == "failed" && x["attempts"].as_u64().unwrap_or(0) >= attempts
    })
    .await;
    log[0].clone()
}

#[tokio::test]
async fn smtp_outage_is_retried_until_the_server_is_back() {
    let Some(python) = peer_python_or_skip() else {
        return;
    };
    let mut smtp = SmtpSink::down(python);
    let url = smtp.url();
    let d = TestDaemon::start_with(
        move |c| {
            fast_retries(c);
            c.notify.email = Some(email_config(&url));
        },
        Arc::new(SystemClock),
    )
    .await;
    email_rule(&d).await;

    let id = open_incident(&d, &d.admin, "Mail server outage").await;
    let failed = failed_at_least(&d, id, 2).await;
    let error = failed["last_error"].as_str().expect("last_error");
    assert!(error.contains("SMTP"), "names the channel: {error}");
    assert!(failed["next_attempt_at"].is_string(), "{failed}");
    assert_eq!(failed["sent_at"], Value::Null);
    assert_eq!(mails_about(&smtp, id), 0);

    smtp.start().await;
    let mails = smtp
        .wait_for(1, WAIT, |m| subject_of(m).contains(&format!("INC-{id} ")))
        .await;
    assert_eq!(
        subject_of(&mails[0]),
        format!("[P1] INC-{id} opened: Mail server outage")
    );
    let sent = wait_deliveries(&d, id, "email", 1, is_sent).await;
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]["attempts"].as_u64().expect("attempts") > 2,
        "{}",
        sent[0]
    );
    assert_eq!(sent[0]["last_error"], Value::Null, "cleared once sent");
    assert!(sent[0]["latency_ms"].as_i64().expect("latency") > 1000);

    // Once sent it stays sent: no second copy after more retry intervals.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(mails_about(&smtp, id), 1, "delivered once");
}

#[tokio::test]
async fn smtp_outage_survives_a_daemon_restart() {
    let Some(python) = peer_python_or_skip() else {
        return;
    };
    let mut smtp = SmtpSink::down(python);
    let url = smtp.url();
    let config = move |c: &mut incidentd::config::Config| {
        fast_retries(c);
        c.notify.email = Some(email_config(&url));
    };
    let mut d = TestDaemon::start_with(config.clone(), Arc::new(SystemClock)).await;
    email_rule(&d).await;
    let id = open_incident(&d, &d.admin, "Outage across a restart").await;
    let before = failed_at_least(&d, id, 1).await;

    // Stop the daemon while the delivery waits for its next attempt.
    let dir = d.dir.take().expect("dir");
    d.stop().await;
    drop(d);
    smtp.start().await;

    let d = TestDaemon::start_in(dir.path(), config, Arc::new(SystemClock)).await;
    smtp.wait_for(1, WAIT, |m| subject_of(m).contains(&format!("INC-{id} ")))
        .await;
    let sent = wait_deliveries(&d, id, "email", 1, is_sent).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["id"], before["id"],
        "the same delivery, not a new one"
    );
    assert!(
        sent[0]["attempts"].as_u64().expect("attempts") > before["attempts"].as_u64().expect("n"),
        "{}",
        sent[0]
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(mails_about(&smtp, id), 1, "delivered once");
}

#[tokio::test]
async fn each_incident_is_mailed_exactly_once() {
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
    email_rule(&d).await;
    // Opened concurrently, so that the worker sees several in one batch.
    let mut set = tokio::task::JoinSet::new();
    for i in 1..=12 {
        let (http, url, token) = (d.http.clone(), d.url("/api/v1/incidents"), d.admin.clone());
        set.spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"title": format!("Burst incident {i}"), "impact": "high", "urgency": "high"}))
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.expect("json")["id"]
                .as_u64()
                .expect("id")
        });
    }
    let ids: Vec<u64> = set.join_all().await;
    smtp.wait_for(ids.len(), WAIT, |_| true).await;
    for id in &ids {
        wait_deliveries(&d, *id, "email", 1, |x| is_sent(x) && x["attempts"] == 1).await;
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for id in &ids {
        assert_eq!(mails_about(&smtp, *id), 1, "INC-{id}");
    }
    assert_eq!(smtp.messages().len(), ids.len());
}

async fn webhook_daemon(hook: &Fake) -> TestDaemon {
    let d = TestDaemon::start_with(fast_retries, Arc::new(SystemClock)).await;
    rule(
        &d,
        "hook",
        &["incident.opened"],
        json!([{"kind": "webhook", "url": hook.url("/hook"), "secret": "s3cret"}]),
    )
    .await;
    d
}

#[tokio::test]
async fn webhook_429_is_retried_no_sooner_than_retry_after() {
    let hook = webhook_fake().await;
    hook.script(
        "/hook",
        1,
        Reply::json(429, json!({"error": "slow down"})).header("Retry-After", "2"),
    );
    let d = webhook_daemon(&hook).await;
    let id = open_incident(&d, &d.admin, "Rate limited receiver").await;

    let got = hook.wait_for("/hook", 2, WAIT, |_| true).await;
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_secs(2),
        "retried after {gap:?}, before Retry-After"
    );
    assert!(gap < Duration::from_secs(10), "but not much later: {gap:?}");
    assert_eq!(got[0].body, got[1].body, "the same message again");
    assert_eq!(
        got[0].header("x-incidentd-delivery"),
        got[1].header("x-incidentd-delivery"),
        "same delivery id, for the receiver's de-duplication"
    );
    let log = wait_deliveries(&d, id, "webhook", 1, is_sent).await;
    assert_eq!(log[0]["attempts"], 2, "{}", log[0]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hook.to("/hook").len(), 2);
}

#[tokio::test]
async fn webhook_429_shows_as_failed_with_its_reason_while_waiting() {
    let hook = webhook_fake().await;
    hook.script(
        "/hook",
        1,
        Reply::json(429, json!({"error": "slow down"})).header("Retry-After", "4"),
    );
    let d = webhook_daemon(&hook).await;
    let id = open_incident(&d, &d.admin, "Waiting out a 429").await;
    let log = wait_deliveries(&d, id, "webhook", 1, |x| x["status"] == "failed").await;
    assert_eq!(log[0]["attempts"], 1);
    let error = log[0]["last_error"].as_str().expect("last_error");
    assert!(error.contains("429"), "{error}");
    wait_deliveries(&d, id, "webhook", 1, is_sent).await;
}

#[tokio::test]
async fn webhook_400_is_dead_after_one_attempt() {
    let hook = webhook_fake().await;
    hook.script(
        "/hook",
        usize::MAX,
        Reply::json(400, json!({"error": "unknown field incident"})),
    );
    let d = webhook_daemon(&hook).await;
    let id = open_incident(&d, &d.admin, "Rejected by the receiver").await;
    let log = wait_deliveries(&d, id, "webhook", 1, |x| x["status"] == "dead").await;
    assert_eq!(log[0]["attempts"], 1, "{}", log[0]);
    let error = log[0]["last_error"].as_str().expect("last_error");
    assert!(error.contains("400"), "{error}");
    // What a URL anyone may enter answered stays out of the log that many may read.
    assert!(
        !error.contains("unknown field incident"),
        "the receiver's body is not quoted: {error}"
    );
    assert_eq!(log[0]["sent_at"], Value::Null);
    // Dead means no more attempts, well past the retry interval.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(hook.to("/hook").len(), 1);
    let dead = deliveries(&d, "status=dead").await;
    assert_eq!(dead.len(), 1, "listed under status=dead: {dead:#?}");
}

#[tokio::test]
async fn a_receiver_that_hangs_times_out_and_is_retried() {
    let hook = webhook_fake().await;
    hook.script(
        "/hook",
        1,
        Reply::json(200, json!({})).after(Duration::from_secs(5)),
    );
    let d = TestDaemon::start_with(
        |c| {
            fast_retries(c);
            c.notify.timeout_secs = 1;
        },
        Arc::new(SystemClock),
    )
    .await;
    rule(
        &d,
        "hook",
        &["incident.opened"],
        json!([{"kind": "webhook", "url": hook.url("/hook")}]),
    )
    .await;
    let id = open_incident(&d, &d.admin, "Slow receiver").await;
    let log = wait_deliveries(&d, id, "webhook", 1, is_sent).await;
    assert_eq!(log[0]["attempts"], 2, "{}", log[0]);
    let got = hook.to("/hook");
    assert_eq!(got.len(), 2);
    assert!(got[1].at.duration_since(got[0].at) < Duration::from_secs(5));
}

#[tokio::test]
async fn a_webhook_that_redirects_is_not_followed() {
    let hook = webhook_fake().await;
    hook.script(
        "/hook",
        usize::MAX,
        Reply::text(302, "moved").header("Location", &hook.url("/elsewhere")),
    );
    let d = webhook_daemon(&hook).await;
    let id = open_incident(&d, &d.admin, "Redirecting receiver").await;
    let log = wait_deliveries(&d, id, "webhook", 1, |x| x["status"] == "dead").await;
    let error = log[0]["last_error"].as_str().expect("last_error");
    assert!(error.contains("302"), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        hook.to("/elsewhere").is_empty(),
        "the redirect was followed"
    );
}

#[tokio::test]
async fn a_late_message_says_what_its_event_did_not_what_came_after() {
    let hook = webhook_fake().await;
    // The receiver is down for the first two attempts: both assignments go out late.
    hook.script("/assigned", 2, Reply::json(503, json!({"error": "down"})));
    let d = TestDaemon::start_with(fast_retries, Arc::new(SystemClock)).await;
    let (ann, _) = d.user("ann", "Engineer").await;
    let (ben, _) = d.user("ben", "Engineer").await;
    rule(
        &d,
        "assignments",
        &["incident.assigned"],
        json!([{"kind": "webhook", "url": hook.url("/assigned")}]),
    )
    .await;
    let id = open_incident(&d, &d.admin, "Reassigned twice").await;
    for user in [ann, ben] {
        let a = d
            .patch(
                &format!("/api/v1/incidents/{id}"),
                &d.admin,
                json!({"assignee_id": user}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    // Two refused attempts, then the two retries that are answered.
    let got = hook.wait_for("/assigned", 4, WAIT, |_| true).await;
    let mut headlines: Vec<String> = got[2..]
        .iter()
        .map(|r| {
            r.json()["event"]["headline"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    headlines.sort();
    assert_eq!(
        headlines,
        ["assigned to ann", "assigned to ben"],
        "{got:#?}"
    );
}

#[tokio::test]
async fn problem_events_pass_rule_filters_by_the_problems_service_and_priority() {
    let hook = webhook_fake().await;
    let d = TestDaemon::start_with(fast_retries, Arc::new(SystemClock)).await;
    let mut services = Vec::new();
    for name in ["payments", "search"] {
        let s = d
            .post("/api/v1/services", &d.admin, json!({"name": name}))
            .await;
        assert_eq!(s.status, 201, "{}", s.text);
        services.push(s.id());
    }
    let a = d
        .post(
            "/api/v1/notification-rules",
            &d.admin,
            json!({"name": "payments problems", "events": ["problem.opened"],
                   "filter": {"service_ids": [services[0]], "min_priority": "P2"},
                   "targets": [{"kind": "webhook", "url": hook.url("/problems")}]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    for (title, service, impact) in [
        ("Payments leak", services[0], "high"),
        ("Search leak", services[1], "high"),
        ("Payments nit", services[0], "low"),
    ] {
        let p = d
            .post(
                "/api/v1/problems",
                &d.admin,
                json!({"title": title, "service_id": service, "impact": impact, "urgency": impact}),
            )
            .await;
        assert_eq!(p.status, 201, "{}", p.text);
    }
    let got = hook.wait_for("/problems", 1, WAIT, |_| true).await;
    assert_eq!(got[0].json()["problem"]["title"], "Payments leak");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hook.to("/problems").len(), 1, "only the matching problem");
}

#[tokio::test]
async fn whoever_an_open_incident_is_assigned_to_is_told_once() {
    let hook = webhook_fake().await;
    let d = TestDaemon::start_with(fast_retries, Arc::new(SystemClock)).await;
    let (ann, ann_token) = d.user("ann", "Engineer").await;
    let (ben, _) = d.user("ben", "Engineer").await;
    contact(&d, ann, "webhook", &hook.url("/ann")).await;
    contact(&d, ben, "webhook", &hook.url("/ben")).await;
    // A rule that also tells ben of assignments: he still hears once.
    rule(
        &d,
        "ben hears of assignments",
        &["incident.assigned"],
        json!([{"kind": "user", "id": ben}]),
    )
    .await;
    let id = open_incident(&d, &d.admin, "Reassigned").await;
    for user in [ann, ben] {
        let a = d
            .post(
                &format!("/api/v1/incidents/{id}/assign"),
                &d.admin,
                json!({"assignee_id": user}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let told = hook.wait_for("/ann", 1, WAIT, |_| true).await;
    let v = told[0].json();
    assert_eq!(v["event"]["kind"], "incident.assigned", "{v}");
    assert_eq!(v["event"]["headline"], "assigned to ann", "{v}");
    hook.wait_for("/ben", 1, WAIT, |_| true).await;
    // Taking it oneself tells nobody; neither does assigning a resolved incident.
    let a = d
        .post(
            &format!("/api/v1/incidents/{id}/assign"),
            &ann_token,
            json!({"assignee_id": ann}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    d.transition(id, "resolved").await;
    let a = d
        .post(
            &format!("/api/v1/incidents/{id}/assign"),
            &d.admin,
            json!({"assignee_id": ben}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hook.to("/ann").len(), 1, "ann: once");
    // Ben's rule tells him of each of the four assignments, each once: the one to him is
    // not sent twice.
    let mut seqs: Vec<u64> = hook
        .to("/ben")
        .iter()
        .map(|r| r.json()["event"]["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs.len(), 4, "{seqs:?}");
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 4, "one message per event: {seqs:?}");
}
