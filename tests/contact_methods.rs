//! Contact methods and webhook secrets, black-box: a secret shown as `[redacted]` and
//! written back stays the secret (deliveries still verify with it), a real change is on
//! the audit record; someone who may manage users may not manage the contact methods or
//! paging rules of a user who holds more than they do (a `slack` method is the identity
//! chat acts under); a chat user id belongs to one user, on change as on create.

mod common;

use std::time::Duration;

use common::TestDaemon;
use common::fakes::webhook_fake;
use common::notify::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const RULE_SECRET: &str = "rule-secret-0123456789";
const CONTACT_SECRET: &str = "contact-secret-0123456789";

#[tokio::test]
async fn a_redacted_secret_written_back_keeps_the_secret() {
    let hook = webhook_fake().await;
    let d = TestDaemon::start().await;
    let (alice, _) = d.user("alice", "Engineer").await;
    let method = d
        .post(
            &format!("/api/v1/users/{alice}/contact-methods"),
            &d.admin,
            json!({"kind": "webhook", "address": hook.url("/alice"), "secret": CONTACT_SECRET}),
        )
        .await;
    assert_eq!(method.status, 201, "{}", method.text);
    let created = rule(
        &d,
        "hooks",
        &["incident.opened"],
        json!([{"kind": "user", "id": alice},
               {"kind": "webhook", "url": hook.url("/rule"), "secret": RULE_SECRET}]),
    )
    .await;
    let rule_id = created["id"].as_u64().expect("rule id");

    // Read, edit, write back: the answers show the marker, which goes back unchanged.
    let shown = d
        .get(&format!("/api/v1/notification-rules/{rule_id}"), &d.admin)
        .await;
    assert_eq!(
        shown.body["targets"][1]["secret"], "[redacted]",
        "{}",
        shown.text
    );
    let a = d
        .patch(
            &format!("/api/v1/notification-rules/{rule_id}"),
            &d.admin,
            json!({"name": "hooks, renamed", "targets": shown.body["targets"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let methods = d
        .get(&format!("/api/v1/users/{alice}/contact-methods"), &d.admin)
        .await;
    assert_eq!(
        methods.body["items"][0]["secret"], "[redacted]",
        "{}",
        methods.text
    );
    let a = d
        .patch(
            &format!("/api/v1/users/{alice}/contact-methods/{}", method.id()),
            &d.admin,
            json!({"label": "relabelled", "secret": methods.body["items"][0]["secret"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // The marker with a URL that has no stored secret would send unsigned: refused.
    let mut moved = shown.body["targets"].clone();
    moved[1]["url"] = json!(hook.url("/moved"));
    let a = d
        .patch(
            &format!("/api/v1/notification-rules/{rule_id}"),
            &d.admin,
            json!({"targets": moved}),
        )
        .await;
    a.assert_problem(422);
    assert!(
        a.body["errors"]["targets[1].secret"].is_array(),
        "{}",
        a.text
    );
    let rule_changes = &d.audited("notification_rule.update").await[0]["changes"];
    assert!(rule_changes.get("secret").is_none(), "{rule_changes}");
    let contact_changes = &d.audited("contact_method.update").await[0]["changes"];
    assert!(contact_changes.get("secret").is_none(), "{contact_changes}");

    let id = open_incident(&d, &d.admin, "Secrets kept").await;
    let hooks = hook.wait_for("/", 2, WAIT, |_| true).await;
    for (path, secret) in [("/rule", RULE_SECRET), ("/alice", CONTACT_SECRET)] {
        let h = hooks
            .iter()
            .find(|h| h.path == path)
            .unwrap_or_else(|| panic!("no webhook to {path}"));
        assert_eq!(h.json()["incident"]["id"], id);
        let ts = h.header("x-incidentd-timestamp").expect("timestamp");
        assert_eq!(
            h.header("x-incidentd-signature"),
            Some(webhook_signature(secret, ts, &h.body).as_str()),
            "{path} is still signed with its secret"
        );
    }

    // A real change is on the record, as a change and never as a value.
    let a = d
        .patch(
            &format!("/api/v1/users/{alice}/contact-methods/{}", method.id()),
            &d.admin,
            json!({"secret": "a-new-contact-secret"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let entry = &d.audited("contact_method.update").await[0];
    assert_eq!(
        entry["changes"]["secret"],
        json!({"from": "[redacted]", "to": "[redacted]"}),
        "{entry}"
    );
    let mut targets = shown.body["targets"].clone();
    targets[1]["secret"] = json!("a-new-rule-secret");
    let a = d
        .patch(
            &format!("/api/v1/notification-rules/{rule_id}"),
            &d.admin,
            json!({"targets": targets}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let entry = &d.audited("notification_rule.update").await[0];
    assert_eq!(
        entry["changes"]["secret"],
        json!({"from": "[redacted]", "to": "[redacted]"}),
        "{entry}"
    );
    let log = d.get("/api/v1/audit?limit=200", &d.admin).await.text;
    for secret in [
        "a-new-contact-secret",
        "a-new-rule-secret",
        RULE_SECRET,
        CONTACT_SECRET,
    ] {
        assert!(!log.contains(secret), "{secret} in the audit log");
    }
}

#[tokio::test]
async fn managing_users_does_not_reach_the_contact_methods_of_a_stronger_user() {
    let d = TestDaemon::start().await;
    let role = d
        .post(
            "/api/v1/roles",
            &d.admin,
            json!({"name": "HR", "permissions": ["user:read", "user:write"]}),
        )
        .await;
    assert_eq!(role.status, 201, "{}", role.text);
    let (hr, hr_token) = d.user("hr", "HR").await;
    let (colleague, _) = d.user("colleague", "HR").await;
    let admin_id = d.get("/api/v1/auth/me", &d.admin).await.body["id"]
        .as_u64()
        .expect("admin id");

    // The Admin holds what HR lacks: no contact method, no paging rule, not even a webhook.
    for body in [
        json!({"kind": "slack", "address": "U0HRPERSON"}),
        json!({"kind": "email", "address": "hr@example.com"}),
    ] {
        let a = d
            .post(
                &format!("/api/v1/users/{admin_id}/contact-methods"),
                &hr_token,
                body,
            )
            .await;
        a.assert_problem(403);
        assert!(
            a.text.contains("act on a user with role 'Admin'"),
            "{}",
            a.text
        );
    }
    let admin_method = contact(&d, admin_id, "email", "admin@example.com").await;
    d.patch(
        &format!("/api/v1/users/{admin_id}/contact-methods/{admin_method}"),
        &hr_token,
        json!({"address": "hr@example.com"}),
    )
    .await
    .assert_problem(403);
    d.delete(
        &format!("/api/v1/users/{admin_id}/contact-methods/{admin_method}"),
        &hr_token,
    )
    .await
    .assert_problem(403);
    d.post(
        &format!("/api/v1/users/{admin_id}/notification-rules"),
        &hr_token,
        json!({"contact_method_id": admin_method, "delay_minutes": 0}),
    )
    .await
    .assert_problem(403);
    // Reading stays allowed with user:read.
    let a = d
        .get(
            &format!("/api/v1/users/{admin_id}/contact-methods"),
            &hr_token,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        d.audited("contact_method.create").await.len(),
        1,
        "only the admin's own method was created"
    );

    // A user who holds no more than HR, and HR's own methods, are HR's to manage.
    for user in [colleague, hr] {
        let a = d
            .post(
                &format!("/api/v1/users/{user}/contact-methods"),
                &hr_token,
                json!({"kind": "email", "address": format!("user{user}@example.com")}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
    }
}

#[tokio::test]
async fn a_chat_id_moves_to_nobody_else_by_a_change() {
    let d = TestDaemon::start().await;
    let (alice, _) = d.user("alice", "Engineer").await;
    let (vera, vera_token) = d.user("vera", "Viewer").await;
    contact(&d, alice, "slack", "U0ALICE001").await;
    let own = d
        .post(
            &format!("/api/v1/users/{vera}/contact-methods"),
            &vera_token,
            json!({"kind": "slack", "address": "U0VERA0001"}),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.text);
    let path = format!("/api/v1/users/{vera}/contact-methods/{}", own.id());

    // Create and change refuse alike; nothing changes.
    d.post(
        &format!("/api/v1/users/{vera}/contact-methods"),
        &vera_token,
        json!({"kind": "slack", "address": "U0ALICE001"}),
    )
    .await
    .assert_problem(409);
    let a = d
        .patch(&path, &vera_token, json!({"address": "U0ALICE001"}))
        .await;
    a.assert_problem(409);
    assert!(
        a.text.contains("already linked to another user"),
        "{}",
        a.text
    );
    let a = d
        .patch(&path, &vera_token, json!({"label": "x".repeat(101)}))
        .await;
    a.assert_problem(422);
    assert!(a.text.contains("label"), "{}", a.text);
    let mine = d
        .get(
            &format!("/api/v1/users/{vera}/contact-methods"),
            &vera_token,
        )
        .await;
    assert_eq!(
        mine.body["items"][0]["address"], "U0VERA0001",
        "{}",
        mine.text
    );

    // Deleting her own method leaves Alice's link alone: Alice's id is still taken.
    let a = d.delete(&path, &vera_token).await;
    assert_eq!(a.status, 204, "{}", a.text);
    d.post(
        &format!("/api/v1/users/{vera}/contact-methods"),
        &vera_token,
        json!({"kind": "slack", "address": "U0ALICE001"}),
    )
    .await
    .assert_problem(409);
    // A change of address frees the old one.
    let alice_methods = d
        .get(&format!("/api/v1/users/{alice}/contact-methods"), &d.admin)
        .await;
    let alice_method = alice_methods.body["items"][0]["id"].as_u64().expect("id");
    let a = d
        .patch(
            &format!("/api/v1/users/{alice}/contact-methods/{alice_method}"),
            &d.admin,
            json!({"address": "U0ALICE002"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = d
        .post(
            &format!("/api/v1/users/{vera}/contact-methods"),
            &vera_token,
            json!({"kind": "slack", "address": "U0ALICE001"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn addresses_are_checked_as_they_will_be_used_and_stored_trimmed() {
    let d = TestDaemon::start().await;
    let (alice, _) = d.user("alice", "Engineer").await;
    for url in ["http://[zz", "http://hooks.example.com:99999/x", "http://"] {
        let a = d
            .post(
                "/api/v1/notification-rules",
                &d.admin,
                json!({"name": "bad", "events": ["incident.opened"], "targets": [{"kind": "webhook", "url": url}]}),
            )
            .await;
        a.assert_problem(422);
        assert!(
            a.body["errors"]["targets[0]"].is_array(),
            "{url}: {}",
            a.text
        );
        let a = d
            .post(
                &format!("/api/v1/users/{alice}/contact-methods"),
                &d.admin,
                json!({"kind": "webhook", "address": url}),
            )
            .await;
        a.assert_problem(422);
        assert!(a.body["errors"]["address"].is_array(), "{url}: {}", a.text);
    }
    let created = rule(
        &d,
        "trimmed",
        &["incident.opened"],
        json!([{"kind": "sms", "number": " +15550001111 "},
               {"kind": "email", "address": " ops@example.com\t"}]),
    )
    .await;
    assert_eq!(created["targets"][0]["number"], "+15550001111", "{created}");
    assert_eq!(
        created["targets"][1]["address"], "ops@example.com",
        "{created}"
    );
}
