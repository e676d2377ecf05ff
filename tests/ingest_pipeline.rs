//! The ingestion pipeline: bad input is refused with the right status and stores nothing;
//! re-delivery deduplicates; alerts group by the sender's group key or by chosen labels;
//! `truncatedAlerts` never resolves what is missing; incidents auto-resolve only when all
//! their alerts have, reopen within the reopen window and open anew after it.
mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::TestDaemon;
use common::ingest::{Integration, am_alert, am_webhook, assert_invalid_field, fixture};
use incidentd::domain::clock::ManualClock;
use serde_json::{Value, json};

const GROUP: &str = "{}:{alertname=\"DiskFull\"}";

fn labels(name: &str, instance: &str) -> Value {
    json!({"alertname": name, "instance": instance, "severity": "warning"})
}

async fn send(d: &TestDaemon, int: &Integration, body: &Value) -> Value {
    let a = d.hook("alertmanager", &int.token, body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

fn opened_one(summary: &Value) -> u64 {
    let opened = summary["opened"].as_array().expect("opened");
    assert_eq!(opened.len(), 1, "{summary}");
    opened[0].as_u64().expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_stores_nothing() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let good = fixture("alertmanager_webhook_v4.json");
    send(&d, &int, &good).await;
    let before = d.counts().await;
    assert_eq!(before, (2, 1));
    let path = format!("/hooks/alertmanager/{}", int.token);

    // Malformed: 400.
    let text = good.to_string();
    for raw in [
        text[..text.len() / 2].to_owned(),
        text[..text.len() - 1].to_owned(),
        format!("{text} trailing"),
        "{\"version\": \"4\", \"alerts\": 7 ".to_owned(),
        String::new(),
    ] {
        let a = d.post_raw(&path, raw.clone().into_bytes()).await;
        a.assert_problem(400);
        assert!(
            a.body["detail"].as_str().expect("detail").contains("JSON"),
            "{}",
            a.text
        );
    }

    // Unknown token (and no token): 404, worded as for a URL no route serves, so that a
    // prober cannot tell a wrong token from a wrong path.
    let no_route = d
        .post_raw("/hooks/no-such-source", good.to_string().into_bytes())
        .await;
    no_route.assert_problem(404);
    for a in [
        d.hook("alertmanager", "no-such-token", &good).await,
        d.post_raw("/hooks/alertmanager", good.to_string().into_bytes())
            .await,
    ] {
        a.assert_problem(404);
        assert_eq!(a.body["detail"], no_route.body["detail"], "{}", a.text);
    }

    // Over the 512 KiB hook limit: 413, for every hook.
    let mut big = good.clone();
    big["alerts"][0]["annotations"]["description"] = json!("x".repeat(600 * 1024));
    for kind in ["alertmanager", "grafana", "generic"] {
        let a = d
            .post_raw(
                &format!("/hooks/{kind}/{}", int.token),
                big.to_string().into_bytes(),
            )
            .await;
        a.assert_problem(413);
    }
    // PagerDuty's endpoint answers in PagerDuty's shape, this error too.
    let a = d
        .post_raw("/v2/enqueue", big.to_string().into_bytes())
        .await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert_eq!(a.body["status"], "invalid event", "{}", a.text);
    assert!(a.body["errors"][0].is_string(), "{}", a.text);
    // Just under the limit is fine (the same alert, refreshed).
    let mut large = good.clone();
    large["alerts"][0]["annotations"]["description"] = json!("x".repeat(400 * 1024));
    send(&d, &int, &large).await;

    // Wrong shape: 422 naming the field.
    let mut v3 = good.clone();
    v3["version"] = json!("3");
    let msgs = assert_invalid_field(&d.hook("alertmanager", &int.token, &v3).await, "version");
    assert!(msgs[0].contains('3'), "{msgs:?}");
    let mut exploded = good.clone();
    exploded["alerts"][1]["status"] = json!("exploded");
    let msgs = assert_invalid_field(
        &d.hook("alertmanager", &int.token, &exploded).await,
        "alerts[1].status",
    );
    assert!(msgs[0].contains("exploded"), "{msgs:?}");
    let mut no_alerts = good.clone();
    no_alerts.as_object_mut().expect("object").remove("alerts");
    assert_invalid_field(
        &d.hook("alertmanager", &int.token, &no_alerts).await,
        "alerts",
    );
    let mut no_labels = good.clone();
    no_labels["alerts"][0]["labels"] = json!({});
    assert_invalid_field(
        &d.hook("alertmanager", &int.token, &no_labels).await,
        "alerts[0].labels",
    );
    let mut bad_time = good.clone();
    bad_time["alerts"][0]["startsAt"] = json!("yesterday");
    assert_invalid_field(
        &d.hook("alertmanager", &int.token, &bad_time).await,
        "alerts[0].startsAt",
    );
    let mut bad_status = good.clone();
    bad_status["status"] = json!("pending");
    assert_invalid_field(
        &d.hook("alertmanager", &int.token, &bad_status).await,
        "status",
    );
    let mut wrong_type = good.clone();
    wrong_type["alerts"] = json!({"not": "a list"});
    assert_invalid_field(
        &d.hook("alertmanager", &int.token, &wrong_type).await,
        "alerts",
    );
    let mut bad_labels = good.clone();
    bad_labels["alerts"][0]["labels"]["pod"] = json!(7);
    assert_invalid_field(
        &d.hook("alertmanager", &int.token, &bad_labels).await,
        "alerts[0].labels.pod",
    );

    assert_eq!(d.counts().await, before, "refused payloads store nothing");
    let stored = d
        .alert_by_fingerprint("6d1f0c2b9a7e4f31")
        .await
        .expect("alert");
    assert_eq!(
        stored["receive_count"], 2,
        "only the two accepted deliveries counted"
    );
    // A payload that is refused as a whole leaves even its valid alerts untouched.
    assert_eq!(stored["state"], "firing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_deduplicates() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let payload = fixture("alertmanager_webhook_v4.json");
    let first = send(&d, &int, &payload).await;
    let inc = opened_one(&first);
    let second = send(&d, &int, &payload).await;
    assert_eq!(second["new"], 0, "{second}");
    assert_eq!(second["deduplicated"], 1, "{second}");
    assert_eq!(second["opened"], json!([]), "{second}");
    assert_eq!(
        d.counts().await,
        (2, 1),
        "one incident, the same two alerts"
    );
    let alerts = d.alerts_of(inc).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["receive_count"], 2);
    assert_eq!(d.incident(inc).await["alert_count"], 1);
    let never_fired = d
        .alert_by_fingerprint("b3a90e55c01d7f42")
        .await
        .expect("alert");
    assert_eq!(never_fired["receive_count"], 2);
    assert_eq!(never_fired["incident_id"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_by_group_key_or_by_labels() {
    let d = TestDaemon::start().await;
    let by_key = d.integration("alertmanager", json!({})).await;
    let by_instance = d
        .integration(
            "alertmanager",
            json!({"settings": {"group_by": ["instance"]}}),
        )
        .await;

    // Same groupKey, two requests: one incident with two alerts; the critical one raises it.
    let s = send(
        &d,
        &by_key,
        &am_webhook(GROUP, vec![am_alert("firing", labels("DiskFull", "a"))]),
    )
    .await;
    let inc = opened_one(&s);
    assert_eq!(d.incident(inc).await["priority"], "P3");
    let mut critical = am_alert("firing", labels("DiskFull", "b"));
    critical["labels"]["severity"] = json!("critical");
    let s = send(&d, &by_key, &am_webhook(GROUP, vec![critical])).await;
    assert_eq!(s["opened"], json!([]), "{s}");
    let i = d.incident(inc).await;
    assert_eq!(i["alert_count"], 2);
    assert_eq!(i["firing_alerts"], 2);
    assert_eq!(
        i["priority"], "P1",
        "a more severe alert raises the incident"
    );
    assert_eq!(d.alerts_of(inc).await.len(), 2);
    // Another group key: another incident.
    let s = send(
        &d,
        &by_key,
        &am_webhook(
            "{}:{alertname=\"Other\"}",
            vec![am_alert("firing", labels("Other", "a"))],
        ),
    )
    .await;
    assert_ne!(opened_one(&s), inc);

    // group_by instance: the same groupKey splits by instance, and joins across names.
    let s = send(
        &d,
        &by_instance,
        &am_webhook(
            GROUP,
            vec![
                am_alert("firing", labels("DiskFull", "a")),
                am_alert("firing", labels("DiskFull", "b")),
            ],
        ),
    )
    .await;
    let opened = s["opened"].as_array().expect("opened").clone();
    assert_eq!(opened.len(), 2, "one incident per instance: {s}");
    let s = send(
        &d,
        &by_instance,
        &am_webhook(
            "{}:{alertname=\"Other\"}",
            vec![am_alert("firing", labels("Other", "a"))],
        ),
    )
    .await;
    assert_eq!(s["opened"], json!([]), "joins instance a's incident: {s}");
    let mut sizes = Vec::new();
    for id in &opened {
        let id = id.as_u64().expect("id");
        sizes.push(d.incident(id).await["alert_count"].as_u64().expect("count"));
    }
    sizes.sort();
    assert_eq!(sizes, vec![1, 2]);
    assert_eq!(d.counts().await, (6, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_payloads_never_resolve_missing_alerts_and_all_must_resolve() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let a = labels("DiskFull", "a");
    let b = labels("DiskFull", "b");
    let s = send(
        &d,
        &int,
        &am_webhook(
            GROUP,
            vec![am_alert("firing", a.clone()), am_alert("firing", b.clone())],
        ),
    )
    .await;
    let inc = opened_one(&s);

    // max_alerts cut A out; the group says resolved, only B is in it.
    let mut cut = am_webhook(GROUP, vec![am_alert("resolved", b.clone())]);
    cut["truncatedAlerts"] = json!(1);
    cut["status"] = json!("resolved");
    let s = send(&d, &int, &cut).await;
    assert_eq!(s["truncated"], 1, "{s}");
    assert_eq!(s["auto_resolved"], json!([]), "{s}");
    let i = d.incident(inc).await;
    assert_eq!(i["status"], "new", "A still fires: {i}");
    assert_eq!(i["firing_alerts"], 1);
    let states: Vec<(String, String)> = d
        .alerts_of(inc)
        .await
        .iter()
        .map(|x| {
            (
                x["labels"]["instance"]
                    .as_str()
                    .expect("instance")
                    .to_owned(),
                x["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&("a".into(), "firing".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("b".into(), "resolved".into())),
        "{states:?}"
    );

    // Omitted without truncation: still nothing inferred from absence.
    let s = send(
        &d,
        &int,
        &am_webhook(GROUP, vec![am_alert("resolved", b.clone())]),
    )
    .await;
    assert_eq!(s["auto_resolved"], json!([]), "{s}");
    assert_eq!(d.incident(inc).await["status"], "new");

    // The last one resolves: so does the incident.
    let s = send(
        &d,
        &int,
        &am_webhook(GROUP, vec![am_alert("resolved", a.clone())]),
    )
    .await;
    assert_eq!(s["auto_resolved"], json!([inc]), "{s}");
    let i = d.incident(inc).await;
    assert_eq!(i["status"], "resolved");
    assert_eq!(i["firing_alerts"], 0);
    assert_eq!(i["alert_count"], 2);
    assert_eq!(d.counts().await, (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_resolve_can_be_turned_off() {
    let d = TestDaemon::start().await;
    let int = d
        .integration("alertmanager", json!({"settings": {"auto_resolve": false}}))
        .await;
    let a = labels("DiskFull", "a");
    let inc = opened_one(
        &send(
            &d,
            &int,
            &am_webhook(GROUP, vec![am_alert("firing", a.clone())]),
        )
        .await,
    );
    let s = send(
        &d,
        &int,
        &am_webhook(GROUP, vec![am_alert("resolved", a.clone())]),
    )
    .await;
    assert_eq!(s["resolved"], 1);
    assert_eq!(s["auto_resolved"], json!([]));
    let i = d.incident(inc).await;
    assert_eq!(i["status"], "new", "stays open for a person to resolve");
    assert_eq!(i["firing_alerts"], 0);
    assert_eq!(d.alerts_of(inc).await[0]["state"], "resolved");
    // Firing again joins the same, still open incident.
    let s = send(&d, &int, &am_webhook(GROUP, vec![am_alert("firing", a)])).await;
    assert_eq!(s["opened"], json!([]), "{s}");
    assert_eq!(d.incident(inc).await["firing_alerts"], 1);
    assert_eq!(d.counts().await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refire_reopens_within_the_window_and_opens_anew_after_it() {
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    // Default window (3600 s) and a short one (60 s).
    for (settings, inside, outside) in [
        (json!({}), Duration::minutes(10), Duration::hours(2)),
        (
            json!({"reopen_window_secs": 60}),
            Duration::seconds(30),
            Duration::seconds(61),
        ),
    ] {
        let int = d
            .integration("alertmanager", json!({"settings": settings}))
            .await;
        let a = labels("DiskFull", "a");
        let fire = am_webhook(GROUP, vec![am_alert("firing", a.clone())]);
        let resolve = am_webhook(GROUP, vec![am_alert("resolved", a.clone())]);
        let inc = opened_one(&send(&d, &int, &fire).await);
        let s = send(&d, &int, &resolve).await;
        assert_eq!(s["auto_resolved"], json!([inc]), "{s}");

        clock.advance(inside);
        let s = send(&d, &int, &fire).await;
        assert_eq!(s["reopened"], json!([inc]), "{s}");
        assert_eq!(s["opened"], json!([]), "{s}");
        assert_eq!(
            (s["refired"].as_u64(), s["new"].as_u64()),
            (Some(1), Some(0)),
            "{s}"
        );
        let i = d.incident(inc).await;
        assert_eq!(i["status"], "new");
        assert_eq!(i["reopen_count"], 1);
        assert_eq!(i["resolved_at"], Value::Null);
        assert_eq!(i["firing_alerts"], 1);
        assert_eq!(i["alert_count"], 1);
        let alerts = d.alerts_of(inc).await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["state"], "firing");
        assert_eq!(alerts[0]["receive_count"], 3);

        let s = send(&d, &int, &resolve).await;
        assert_eq!(s["auto_resolved"], json!([inc]), "{s}");
        assert_eq!(s["resolved"], 1, "{s}");
        let s = send(&d, &int, &resolve).await;
        assert_eq!(
            s["resolved"], 0,
            "a resolve delivered again resolves nothing: {s}"
        );
        clock.advance(outside);
        let s = send(&d, &int, &fire).await;
        assert_eq!(s["reopened"], json!([]), "{s}");
        let fresh = opened_one(&s);
        assert_ne!(fresh, inc);
        let old = d.incident(inc).await;
        assert_eq!(old["status"], "resolved", "the old incident stays resolved");
        assert_eq!(old["reopen_count"], 1);
        let new = d.incident(fresh).await;
        assert_eq!(new["status"], "new");
        assert_eq!(new["reopen_count"], 0);
        assert_eq!(new["alert_count"], 1);
        assert_eq!(d.alerts_of(fresh).await[0]["state"], "firing");
        assert_eq!(
            d.alerts_of(inc).await[0]["state"],
            "resolved",
            "history kept"
        );
    }
}

/// Severity words are compared lowercase: a map saying `P1` matches an alert saying `p1`
/// or `P1`; an empty word is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn severity_words_match_whatever_their_case() {
    let d = TestDaemon::start().await;
    let map = json!({"levels": {"P1": {"impact": "high", "urgency": "high"}},
                     "fallback": {"impact": "low", "urgency": "low"}});
    let int = d
        .integration("alertmanager", json!({"settings": {"severity_map": map}}))
        .await;
    for (i, word) in ["P1", "p1", " p1 "].iter().enumerate() {
        let mut l = labels("Sev", &format!("case-{i}"));
        l["severity"] = json!(word);
        let body = am_webhook(&format!("sev-{i}"), vec![am_alert("firing", l)]);
        let inc = opened_one(&send(&d, &int, &body).await);
        assert_eq!(d.incident(inc).await["priority"], "P1", "severity {word:?}");
    }
    let shown = d
        .get(&format!("/api/v1/integrations/{}", int.id), &d.admin)
        .await;
    assert!(
        shown.body["settings"]["severity_map"]["levels"]["p1"].is_object(),
        "{}",
        shown.text
    );
    let mut bad = map.clone();
    bad["levels"][""] = json!({"impact": "low", "urgency": "low"});
    let a = d
        .patch(
            &format!("/api/v1/integrations/{}", int.id),
            &d.admin,
            json!({"settings": {"severity_map": bad}}),
        )
        .await;
    a.assert_problem(422);
    assert!(
        a.body["errors"]["settings.severity_map.levels"].is_array(),
        "{}",
        a.text
    );
}

/// `reopen_window_secs: 0` never reopens, even within the same second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_reopen_window_never_reopens() {
    let d = TestDaemon::start().await;
    let int = d
        .integration(
            "alertmanager",
            json!({"settings": {"reopen_window_secs": 0}}),
        )
        .await;
    let a = labels("Flap", "zero");
    let fire = am_webhook(GROUP, vec![am_alert("firing", a.clone())]);
    let resolve = am_webhook(GROUP, vec![am_alert("resolved", a.clone())]);
    let first = opened_one(&send(&d, &int, &fire).await);
    send(&d, &int, &resolve).await;
    let s = send(&d, &int, &fire).await;
    assert_eq!(s["reopened"], json!([]), "{s}");
    assert_ne!(opened_one(&s), first);
}

/// An alert still firing when its incident is closed by hand: its next delivery opens a
/// new incident with a new record, and the old record ends (nothing else would ever
/// resolve it, and it would count as firing forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refire_after_a_close_ends_the_old_record() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let a = labels("Stuck", "closed");
    let fire = am_webhook(GROUP, vec![am_alert("firing", a.clone())]);
    let resolve = am_webhook(GROUP, vec![am_alert("resolved", a.clone())]);
    let first = opened_one(&send(&d, &int, &fire).await);
    d.transition(first, "resolved").await;
    d.transition(first, "closed").await;

    let second = opened_one(&send(&d, &int, &fire).await);
    assert_ne!(second, first);
    let old = d.alerts_of(first).await;
    assert_eq!(old.len(), 1);
    assert_eq!(old[0]["state"], "resolved", "{}", old[0]);
    assert_eq!(
        d.incident(first).await["firing_alerts"],
        0,
        "the closed one counts it no more"
    );
    assert!(old[0]["ends_at"].is_string(), "{}", old[0]);
    let firing = d.all("/api/v1/alerts?status=firing").await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0]["incident_id"], second);
    let s = send(&d, &int, &resolve).await;
    assert_eq!(s["auto_resolved"], json!([second]), "{s}");
    assert!(d.all("/api/v1/alerts?status=firing").await.is_empty());
}

/// Resolved by hand while its alert still fires: Alertmanager's next repeat reopens the
/// incident without counting the alert twice, and the alert's resolution then resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_after_a_manual_resolve_reopens_without_counting_the_alert_twice() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let a = labels("DiskFull", "manual");
    let fire = am_webhook(GROUP, vec![am_alert("firing", a.clone())]);
    let resolve = am_webhook(GROUP, vec![am_alert("resolved", a.clone())]);
    let inc = opened_one(&send(&d, &int, &fire).await);
    let done = d
        .post(
            &format!("/api/v1/incidents/{inc}/transition"),
            &d.admin,
            json!({"to": "resolved", "note": "looks fine to me"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);

    let s = send(&d, &int, &fire).await;
    assert_eq!(s["reopened"], json!([inc]), "{s}");
    let i = d.incident(inc).await;
    assert_eq!(i["status"], "new", "{i}");
    assert_eq!(
        (i["firing_alerts"].as_u64(), i["alert_count"].as_u64()),
        (Some(1), Some(1)),
        "{i}"
    );
    let s = send(&d, &int, &resolve).await;
    assert_eq!(s["auto_resolved"], json!([inc]), "{s}");
    let i = d.incident(inc).await;
    assert_eq!(i["status"], "resolved", "{i}");
    assert_eq!(i["firing_alerts"], 0, "{i}");
}

/// Webhooks find their integration through an in-memory cache: a change to the integration
/// takes effect on the very next request (rotated token refused, new settings applied,
/// deleted integration gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_changes_apply_to_the_next_webhook() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let firing = am_webhook(GROUP, vec![am_alert("firing", labels("DiskFull", "a"))]);
    let resolved = am_webhook(GROUP, vec![am_alert("resolved", labels("DiskFull", "a"))]);
    // Auto-resolve is on: the incident resolves with its alert.
    let id = opened_one(&send(&d, &int, &firing).await);
    let summary = send(&d, &int, &resolved).await;
    assert_eq!(summary["auto_resolved"], json!([id]), "{summary}");

    // Turned off: the next resolve leaves the incident open.
    let a = d
        .patch(
            &format!("/api/v1/integrations/{}", int.id),
            &d.admin,
            json!({"settings": {"auto_resolve": false, "reopen_window_secs": 0}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let other = |status| {
        am_webhook(
            "{}:{alertname=\"Other\"}",
            vec![am_alert(status, labels("Other", "b"))],
        )
    };
    let opened = opened_one(&send(&d, &int, &other("firing")).await);
    let summary = send(&d, &int, &other("resolved")).await;
    assert_eq!(summary["auto_resolved"], json!([]), "{summary}");
    assert_eq!(d.incident(opened).await["status"], "new");

    // Rotated: the old token is unknown at once, the new one works.
    let a = d
        .post(
            &format!("/api/v1/integrations/{}/rotate-token", int.id),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let new_token = a.body["token"].as_str().expect("token").to_owned();
    d.hook("alertmanager", &int.token, &firing)
        .await
        .assert_problem(404);
    let a = d.hook("alertmanager", &new_token, &firing).await;
    assert_eq!(a.status, 200, "{}", a.text);

    // Deleted: gone at once.
    let a = d
        .delete(&format!("/api/v1/integrations/{}", int.id), &d.admin)
        .await;
    assert!(a.status == 204 || a.status == 200, "{}", a.text);
    d.hook("alertmanager", &new_token, &firing)
        .await
        .assert_problem(404);
}

/// `?wait=` takes `durable` (the default, 202 once stored) or `applied` (200 with what the
/// alerts did); anything else is refused with a reason and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_parameter_is_validated_and_chooses_the_answer() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let body = am_webhook(
        "{}:{alertname=\"Wait\"}",
        vec![am_alert(
            "firing",
            json!({"alertname": "Wait", "instance": "a"}),
        )],
    );
    let bad = d
        .post_raw(
            &format!("/hooks/alertmanager/{}?wait=later", int.token),
            body.to_string().into_bytes(),
        )
        .await;
    let reasons = assert_invalid_field(&bad, "wait");
    assert!(reasons[0].contains("durable or applied"), "{reasons:?}");
    assert_eq!(d.counts().await, (0, 0), "a refused request stores nothing");

    let durable = d
        .post_raw(
            &format!("/hooks/alertmanager/{}?wait=durable", int.token),
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(durable.status, 202, "{}", durable.text);
    assert_eq!(durable.body["status"], "accepted");
    assert_eq!(durable.body["alerts"], 1);
    // Read right after the answer: the API waits until the alert is applied.
    assert_eq!(d.counts().await, (1, 1));

    let applied = d.hook("alertmanager", &int.token, &body).await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    assert_eq!(applied.body["deduplicated"], 1, "{}", applied.text);
    assert_eq!(d.counts().await, (1, 1));
}

/// A service that receives an integration's alerts, or a routing rule's, cannot be
/// deleted: alerts routed to it would have nowhere to open incidents (a webhook logged
/// just before such a change is skipped when applied, see the ingestion queue's tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_receives_alerts_cannot_be_deleted() {
    let d = TestDaemon::start().await;
    let service = d
        .post("/api/v1/services", &d.admin, json!({"name": "receiving"}))
        .await;
    assert_eq!(service.status, 201, "{}", service.text);
    let sid = service.id();
    let int = d
        .integration("alertmanager", json!({"service_id": sid}))
        .await;
    let refused = d.delete(&format!("/api/v1/services/{sid}"), &d.admin).await;
    refused.assert_problem(409);
    assert!(refused.text.contains("integration"), "{}", refused.text);

    let moved = d
        .patch(
            &format!("/api/v1/integrations/{}", int.id),
            &d.admin,
            json!({"service_id": 1}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let rule = d
        .post(
            "/api/v1/routing-rules",
            &d.admin,
            json!({"name": "to-receiving", "matchers": [{"name": "team", "value": "db", "is_regex": false, "is_equal": true}], "service_id": sid}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.text);
    let refused = d.delete(&format!("/api/v1/services/{sid}"), &d.admin).await;
    refused.assert_problem(409);
    assert!(refused.text.contains("routing rule"), "{}", refused.text);

    let unrouted = d
        .delete(&format!("/api/v1/routing-rules/{}", rule.id()), &d.admin)
        .await;
    assert_eq!(unrouted.status, 204, "{}", unrouted.text);
    let gone = d.delete(&format!("/api/v1/services/{sid}"), &d.admin).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
}
