//! Deleting what something still names is a 409 naming that thing, and changes nothing:
//! a user assigned to open work, paged by a policy, in a schedule's rotation or an
//! override, notified by a rule or asked by an approval workflow; a group assigned to an
//! open incident, paged, notified or asked; an escalation policy an open incident
//! names; a service a problem is on or a notification rule is filtered to.
//! Once nothing names them, they go.
mod common;

use common::{Answer, TestDaemon};
use serde_json::{Value, json};

async fn created(d: &TestDaemon, path: &str, body: Value) -> u64 {
    let a = d.post(path, &d.admin, body).await;
    assert_eq!(a.status, 201, "POST {path}: {}", a.text);
    a.id()
}

/// Asserts a 409 whose detail mentions `why`, and that `path` still answers 200.
async fn refused(d: &TestDaemon, path: &str, why: &str) {
    let a: Answer = d.delete(path, &d.admin).await;
    a.assert_problem(409);
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(why),
        "DELETE {path}: wanted {why:?} in {}",
        a.text
    );
    assert_eq!(
        d.get(path, &d.admin).await.status,
        200,
        "{path} still there"
    );
}

#[tokio::test]
async fn users_groups_and_policies_in_use_cannot_be_deleted() {
    let d = TestDaemon::start().await;
    let mut users = Vec::new();
    for name in [
        "assignee", "paged", "rotating", "covering", "notified", "approver", "free",
    ] {
        users.push(d.user(name, "Engineer").await.0);
    }
    let [
        assignee,
        paged,
        rotating,
        covering,
        notified,
        approver,
        free,
    ] = users[..]
    else {
        unreachable!("seven users")
    };
    let groups: Vec<u64> = {
        let mut out = Vec::new();
        for name in [
            "on-incident",
            "paged-group",
            "notified-group",
            "board",
            "unused",
        ] {
            out.push(created(&d, "/api/v1/groups", json!({"name": name})).await);
        }
        out
    };
    let [on_incident, paged_group, notified_group, board, unused] = groups[..] else {
        unreachable!("five groups")
    };

    let incident = created(
        &d,
        "/api/v1/incidents",
        json!({"title": "Checkout down", "impact": "high", "urgency": "high",
               "assignee_id": assignee, "group_id": on_incident}),
    )
    .await;
    let policy = created(
        &d,
        "/api/v1/escalation-policies",
        json!({"name": "checkout on-call", "steps": [
            {"delay_minutes": 30, "targets": [{"type": "user", "id": paged}]},
            {"delay_minutes": 30, "targets": [{"type": "group", "id": paged_group}]},
        ]}),
    )
    .await;
    let schedule = created(
        &d,
        "/api/v1/schedules",
        json!({"name": "primary", "time_zone": "UTC", "layers": [
            {"name": "weekly", "users": [rotating], "rotation": "weeks", "length": 1,
             "start": "2026-01-05T09:00:00"}]}),
    )
    .await;
    let now = chrono::Utc::now();
    let o = d
        .post(
            &format!("/api/v1/schedules/{schedule}/overrides"),
            &d.admin,
            json!({"user_id": covering, "start": now.to_rfc3339(),
                   "end": (now + chrono::Duration::hours(4)).to_rfc3339()}),
        )
        .await;
    assert_eq!(o.status, 201, "{}", o.text);
    created(
        &d,
        "/api/v1/notification-rules",
        json!({"name": "tell them", "events": ["incident.opened"],
               "targets": [{"kind": "user", "id": notified}, {"kind": "group", "id": notified_group}]}),
    )
    .await;
    created(
        &d,
        "/api/v1/approval-workflows",
        json!({"name": "change", "levels": [
            {"name": "lead", "approvers": [{"type": "user", "id": approver}]},
            {"name": "board", "approvers": [{"type": "group", "id": board}]}]}),
    )
    .await;

    for (id, why) in [
        (assignee, "incident INC-"),
        (paged, "escalation policy 'checkout on-call'"),
        (rotating, "schedule 'primary'"),
        (covering, "override of schedule 'primary'"),
        (notified, "notification rule 'tell them'"),
        (approver, "approval workflow 'change'"),
    ] {
        refused(&d, &format!("/api/v1/users/{id}"), why).await;
    }
    for (id, why) in [
        (on_incident, "incident INC-"),
        (paged_group, "escalation policy 'checkout on-call'"),
        (notified_group, "notification rule 'tell them'"),
        (board, "approval workflow 'change'"),
    ] {
        refused(&d, &format!("/api/v1/groups/{id}"), why).await;
    }
    assert_eq!(
        d.delete(&format!("/api/v1/users/{free}"), &d.admin)
            .await
            .status,
        204
    );
    assert_eq!(
        d.delete(&format!("/api/v1/groups/{unused}"), &d.admin)
            .await
            .status,
        204
    );
    // Deactivating is how someone assigned to work leaves.
    d.deactivate(assignee).await;

    // A policy an open incident names stays until the incident is over: acknowledged, a
    // manual escalation still pages through it.
    let paging = created(
        &d,
        "/api/v1/incidents",
        json!({"title": "Payments down", "impact": "high", "urgency": "high",
               "escalation_policy_id": policy}),
    )
    .await;
    refused(
        &d,
        &format!("/api/v1/escalation-policies/{policy}"),
        &format!("INC-{paging} is escalating"),
    )
    .await;
    d.transition(paging, "acknowledged").await;
    refused(
        &d,
        &format!("/api/v1/escalation-policies/{policy}"),
        &format!("INC-{paging} names it"),
    )
    .await;
    d.transition(paging, "resolved").await;
    d.transition(incident, "resolved").await;
    let gone = d
        .delete(&format!("/api/v1/escalation-policies/{policy}"), &d.admin)
        .await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    // With the incident resolved and the policy gone, the group on the incident and the
    // user paged by the policy may go.
    assert_eq!(
        d.delete(&format!("/api/v1/groups/{on_incident}"), &d.admin)
            .await
            .status,
        204
    );
    assert_eq!(
        d.delete(&format!("/api/v1/users/{paged}"), &d.admin)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn a_service_a_problem_or_a_rule_names_cannot_be_deleted() {
    let d = TestDaemon::start().await;
    let payments = created(&d, "/api/v1/services", json!({"name": "payments"})).await;
    let search = created(&d, "/api/v1/services", json!({"name": "search"})).await;
    let problem = created(
        &d,
        "/api/v1/problems",
        json!({"title": "Payments leak", "service_id": payments}),
    )
    .await;
    let rule = created(
        &d,
        "/api/v1/notification-rules",
        json!({"name": "search only", "events": ["incident.opened"], "filter": {"service_ids": [search]},
               "targets": [{"kind": "email", "address": "search@example.com"}]}),
    )
    .await;
    refused(
        &d,
        &format!("/api/v1/services/{payments}"),
        &format!("problem PRB-{problem} is on service 'payments'"),
    )
    .await;
    refused(
        &d,
        &format!("/api/v1/services/{search}"),
        "notification rule 'search only' is filtered to service 'search'",
    )
    .await;
    let a = d
        .patch(
            &format!("/api/v1/notification-rules/{rule}"),
            &d.admin,
            json!({"filter": {}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = d
        .delete(&format!("/api/v1/services/{search}"), &d.admin)
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
}
