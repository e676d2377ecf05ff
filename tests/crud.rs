//! CRUD of users, roles, groups (with members) and services through the API: the happy
//! paths, 404 / 409 / 422 for every rule the contract states, that passwords never come back,
//! that user pagination walks every user once, and that every successful mutation writes
//! exactly one audit entry (actor, action, changed fields) while a failed one writes none.
mod common;

use std::collections::BTreeSet;

use common::{Answer, TestDaemon, USER_PASSWORD};
use reqwest::Method;
use serde_json::{Value, json};

/// Mutations by one caller, each checked against the audit log.
struct Caller<'a> {
    d: &'a TestDaemon,
    token: String,
    name: &'static str,
}

/// The id of the newest audit entry (0 if none).
async fn newest_audit_id(d: &TestDaemon) -> u64 {
    let a = d.get("/api/v1/audit?limit=1", &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["items"][0]["id"].as_u64().unwrap_or(0)
}

/// Every audit entry, newest first.
async fn all_audit(d: &TestDaemon, filter: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/audit?limit=100{filter}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let a = d.get(&path, &d.admin).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        out.extend(a.body["items"].as_array().expect("items").iter().cloned());
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Asserts the answer carries no password material.
fn no_secrets(a: &Answer) {
    for needle in [USER_PASSWORD, "password", "$argon2", "new-secret-password"] {
        assert!(
            !a.text.contains(needle),
            "'{needle}' leaked in a user answer: {}",
            a.text
        );
    }
}

impl<'a> Caller<'a> {
    fn admin(d: &'a TestDaemon) -> Self {
        Caller {
            d,
            token: d.admin.clone(),
            name: "admin",
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.d.call(method, path, Some(&self.token), body).await
    }

    /// A mutation that must succeed with `status` and add exactly one audit entry: `action`
    /// by this caller on `<kind>:<id>` (`id` None: the answer's id), naming `fields`.
    #[allow(clippy::too_many_arguments)]
    async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
        kind: &str,
        id: Option<u64>,
        action: &str,
        fields: &[&str],
    ) -> (Answer, Value) {
        let mark = newest_audit_id(self.d).await;
        let a = self.send(method.clone(), path, body).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text);
        let target = id.unwrap_or_else(|| a.id());
        let new: Vec<Value> = all_audit(self.d, "")
            .await
            .into_iter()
            .filter(|e| e["id"].as_u64().unwrap_or(0) > mark)
            .collect();
        assert_eq!(
            new.len(),
            1,
            "{method} {path} must add exactly one audit entry: {new:#?}"
        );
        let e = new[0].clone();
        assert_eq!(e["action"], action, "{e}");
        assert_eq!(e["actor"]["name"], self.name, "{e}");
        assert_eq!(e["actor"]["kind"], "user", "{e}");
        assert_eq!(e["target"], json!({"kind": kind, "id": target}), "{e}");
        assert!(e["at"].is_string() && e["summary"].is_string(), "{e}");
        for f in fields {
            assert!(
                e["changes"].get(*f).is_some(),
                "{action}: changes should name '{f}': {e}"
            );
        }
        let text = e.to_string();
        assert!(
            !text.contains(USER_PASSWORD) && !text.contains("$argon2"),
            "secret in audit: {text}"
        );
        // The entry is found by its target, too.
        let by_target = all_audit(self.d, &format!("&target={kind}:{target}")).await;
        assert!(
            by_target.iter().any(|x| x["id"] == e["id"]),
            "?target={kind}:{target} misses {e}"
        );
        assert!(
            by_target
                .iter()
                .all(|x| x["target"] == json!({"kind": kind, "id": target}))
        );
        (a, e)
    }

    /// A mutation that must fail as problem+json `status` and leave the audit log alone.
    async fn err(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Answer {
        let mark = newest_audit_id(self.d).await;
        let a = self.send(method.clone(), path, body).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text);
        a.assert_problem(status);
        assert_eq!(
            newest_audit_id(self.d).await,
            mark,
            "failed {method} {path} must not write an audit entry"
        );
        a
    }

    /// Like `err`, for a 422 that names `field`.
    async fn invalid(&self, method: Method, path: &str, body: Value, field: &str) -> Answer {
        let a = self.err(method, path, Some(body), 422).await;
        assert!(
            a.body["errors"][field].is_array(),
            "422 should name '{field}': {}",
            a.text
        );
        a
    }

    /// A mutation that succeeds but changes nothing, so records nothing.
    async fn noop(&self, method: Method, path: &str, status: u16) {
        let mark = newest_audit_id(self.d).await;
        let a = self.send(method.clone(), path, None).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text);
        assert_eq!(newest_audit_id(self.d).await, mark, "{method} {path}");
    }
}

async fn role_id(d: &TestDaemon, name: &str) -> u64 {
    let a = d.get("/api/v1/roles?limit=500", &d.admin).await;
    a.body["items"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["id"].as_u64())
        .unwrap_or_else(|| panic!("no role {name}: {}", a.text))
}

fn new_user(name: &str) -> Value {
    json!({"username": name, "email": format!("{name}@example.com"), "password": USER_PASSWORD, "roles": ["Engineer"]})
}

#[tokio::test]
async fn users_crud_with_every_error_and_audit() {
    let d = TestDaemon::start().await;
    let admin = Caller::admin(&d);
    let (g, _) = admin
        .ok(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Ops"})),
            201,
            "group",
            None,
            "group.create",
            &["name"],
        )
        .await;
    let g = g.id();

    // Create.
    let (a, _) = admin
        .ok(
            Method::POST,
            "/api/v1/users",
            Some(json!({
                "username": "dave", "email": "dave@example.com", "password": USER_PASSWORD,
                "roles": ["Engineer"], "real_name": "Dave D", "department": "Ops", "group_ids": [g]
            })),
            201,
            "user",
            None,
            "user.create",
            &["username", "email", "roles", "department", "group_ids"],
        )
        .await;
    no_secrets(&a);
    let dave = a.id();
    assert_eq!(a.body["username"], "dave");
    assert_eq!(a.body["roles"], json!(["Engineer"]));
    assert_eq!(a.body["group_ids"], json!([g]));
    assert_eq!(a.body["department"], "Ops");
    assert_eq!(a.body["active"], true);

    // Read.
    let a = d.get(&format!("/api/v1/users/{dave}"), &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    no_secrets(&a);
    assert_eq!(a.body["email"], "dave@example.com");
    assert_eq!(a.body["real_name"], "Dave D");
    let list = d.get("/api/v1/users", &d.admin).await;
    no_secrets(&list);
    assert!(
        list.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|u| u["id"] == dave)
    );
    d.get("/api/v1/users/999", &d.admin)
        .await
        .assert_problem(404);
    let me = d
        .get("/api/v1/auth/me", &d.login("dave", USER_PASSWORD).await)
        .await;
    no_secrets(&me);

    // 409: duplicates, case-insensitively.
    let users = "/api/v1/users";
    admin
        .err(
            Method::POST,
            users,
            Some(json!({"username": "DAVE", "email": "other@example.com", "password": USER_PASSWORD, "roles": ["Engineer"]})),
            409,
        )
        .await;
    admin
        .err(
            Method::POST,
            users,
            Some(json!({"username": "dave2", "email": "Dave@Example.com", "password": USER_PASSWORD, "roles": ["Engineer"]})),
            409,
        )
        .await;

    // 422: missing and invalid fields, unknown role and group.
    admin
        .invalid(
            Method::POST,
            users,
            json!({"username": "erin", "password": USER_PASSWORD}),
            "email",
        )
        .await;
    let a = admin
        .invalid(
            Method::POST,
            users,
            json!({"username": "bad name", "email": "not-an-email", "password": "short"}),
            "username",
        )
        .await;
    assert!(a.body["errors"]["email"].is_array(), "{}", a.text);
    assert!(a.body["errors"]["password"].is_array(), "{}", a.text);
    admin
        .invalid(
            Method::POST,
            users,
            json!({"username": "erin", "email": "erin@example.com", "password": USER_PASSWORD, "roles": ["Wizard"]}),
            "roles",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            users,
            json!({"username": "erin", "email": "erin@example.com", "password": USER_PASSWORD, "group_ids": [999]}),
            "group_ids",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            users,
            json!({"username": "erin", "email": "erin@example.com", "password": USER_PASSWORD, "roles": "Engineer"}),
            "roles",
        )
        .await;

    // Update.
    let path = format!("/api/v1/users/{dave}");
    let (a, e) = admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"department": "SRE"})),
            200,
            "user",
            Some(dave),
            "user.update",
            &["department"],
        )
        .await;
    no_secrets(&a);
    assert_eq!(a.body["department"], "SRE");
    assert_eq!(
        e["changes"]["department"],
        json!({"from": "Ops", "to": "SRE"})
    );
    assert!(
        e["changes"].get("email").is_none(),
        "only changed fields: {e}"
    );
    let (a, e) = admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"roles": ["Viewer"], "email": "dave@corp.example.com"})),
            200,
            "user",
            Some(dave),
            "user.update",
            &["roles", "email"],
        )
        .await;
    assert_eq!(a.body["roles"], json!(["Viewer"]));
    assert_eq!(
        e["changes"]["roles"],
        json!({"from": ["Engineer"], "to": ["Viewer"]})
    );
    // The old address is free again, the new one taken.
    admin
        .err(
            Method::POST,
            users,
            Some(json!({"username": "dave3", "email": "dave@corp.example.com", "password": USER_PASSWORD})),
            409,
        )
        .await;
    let (a, e) = admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"password": "new-secret-password"})),
            200,
            "user",
            Some(dave),
            "user.update",
            &["password"],
        )
        .await;
    no_secrets(&a);
    assert_eq!(
        e["changes"]["password"],
        json!({"from": "[redacted]", "to": "[redacted]"})
    );
    assert!(!e.to_string().contains("new-secret-password"));
    d.login("dave", "new-secret-password").await;

    admin
        .err(
            Method::PATCH,
            "/api/v1/users/999",
            Some(json!({"department": "x"})),
            404,
        )
        .await;
    admin
        .err(
            Method::PATCH,
            &path,
            Some(json!({"email": "admin@localhost.localdomain"})),
            409,
        )
        .await;
    admin
        .invalid(Method::PATCH, &path, json!({"roles": ["Wizard"]}), "roles")
        .await;
    admin
        .invalid(
            Method::PATCH,
            &path,
            json!({"group_ids": [999]}),
            "group_ids",
        )
        .await;
    admin
        .invalid(Method::PATCH, &path, json!({"email": "nope"}), "email")
        .await;
    admin
        .invalid(
            Method::PATCH,
            &path,
            json!({"password": "short"}),
            "password",
        )
        .await;
    admin
        .invalid(Method::PATCH, &path, json!({"active": "no"}), "active")
        .await;
    // Nothing of the failed patches stuck.
    let a = d.get(&path, &d.admin).await;
    assert_eq!(a.body["email"], "dave@corp.example.com");
    assert_eq!(a.body["roles"], json!(["Viewer"]));

    // Delete.
    admin
        .ok(
            Method::DELETE,
            &path,
            None,
            204,
            "user",
            Some(dave),
            "user.delete",
            &["username"],
        )
        .await;
    d.get(&path, &d.admin).await.assert_problem(404);
    admin.err(Method::DELETE, &path, None, 404).await;
    admin
        .err(Method::DELETE, "/api/v1/users/999", None, 404)
        .await;
    // The name and the address are free again.
    admin
        .ok(
            Method::POST,
            users,
            Some(json!({"username": "dave", "email": "dave@corp.example.com", "password": USER_PASSWORD})),
            201,
            "user",
            None,
            "user.create",
            &["username"],
        )
        .await;

    // Nobody deletes or deactivates themselves.
    admin
        .err(Method::DELETE, "/api/v1/users/1", None, 409)
        .await;
    admin
        .err(
            Method::PATCH,
            "/api/v1/users/1",
            Some(json!({"active": false})),
            409,
        )
        .await;
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed() {
    let d = TestDaemon::start().await;
    let admin = Caller::admin(&d);
    admin
        .ok(
            Method::POST,
            "/api/v1/roles",
            Some(json!({"name": "UserAdmins", "permissions": ["user:read", "user:write"]})),
            201,
            "role",
            None,
            "role.create",
            &["name", "permissions"],
        )
        .await;
    admin
        .ok(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "ursula", "email": "ursula@example.com", "password": USER_PASSWORD, "roles": ["UserAdmins"]})),
            201,
            "user",
            None,
            "user.create",
            &["roles"],
        )
        .await;
    let ursula = Caller {
        d: &d,
        token: d.login("ursula", USER_PASSWORD).await,
        name: "ursula",
    };
    // Holding user:write is not enough to act on, grant or revoke more than you hold.
    for (method, body) in [
        (Method::DELETE, None),
        (Method::PATCH, Some(json!({"active": false}))),
        (Method::PATCH, Some(json!({"roles": ["Viewer"]}))),
    ] {
        let a = ursula.err(method, "/api/v1/users/1", body, 403).await;
        assert!(
            a.body["detail"].as_str().unwrap_or("").contains("Admin"),
            "{}",
            a.text
        );
    }
    let a = ursula
        .err(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "root2", "email": "root2@example.com", "password": USER_PASSWORD, "roles": ["Admin"]})),
            403,
        )
        .await;
    assert!(
        a.body["detail"].as_str().unwrap_or("").contains("'Admin'"),
        "{}",
        a.text
    );
    // The last Admin cannot demote or deactivate itself.
    admin
        .err(
            Method::PATCH,
            "/api/v1/users/1",
            Some(json!({"roles": ["Viewer"]})),
            409,
        )
        .await;
    admin
        .err(
            Method::PATCH,
            "/api/v1/users/1",
            Some(json!({"active": false})),
            409,
        )
        .await;
    assert_eq!(
        d.get("/api/v1/users/1", &d.admin).await.body["roles"],
        json!(["Admin"])
    );
    // With a second admin, either may go.
    let (a, _) = admin
        .ok(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "root2", "email": "root2@example.com", "password": USER_PASSWORD, "roles": ["Admin"]})),
            201,
            "user",
            None,
            "user.create",
            &["username"],
        )
        .await;
    let root2 = a.id();
    admin
        .ok(
            Method::DELETE,
            &format!("/api/v1/users/{root2}"),
            None,
            204,
            "user",
            Some(root2),
            "user.delete",
            &["username"],
        )
        .await;
}

#[tokio::test]
async fn user_pagination_walks_everyone_once() {
    let d = TestDaemon::start().await;
    for i in 0..6 {
        Caller::admin(&d)
            .ok(
                Method::POST,
                "/api/v1/users",
                Some(new_user(&format!("pager{i}"))),
                201,
                "user",
                None,
                "user.create",
                &["username"],
            )
            .await;
    }
    let all = d.get("/api/v1/users?limit=500", &d.admin).await;
    let all_ids: Vec<u64> = all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(all_ids.len(), 7);
    assert!(all.body["next_cursor"].is_null());

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=2&cursor={c}"),
            None => "/api/v1/users?limit=2".to_owned(),
        };
        let a = d.get(&path, &d.admin).await;
        assert_eq!(a.status, 200, "{}", a.text);
        no_secrets(&a);
        let items = a.body["items"].as_array().expect("items");
        assert!(items.len() <= 2 && !items.is_empty(), "{}", a.text);
        seen.extend(items.iter().map(|u| u["id"].as_u64().expect("id")));
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    assert_eq!(seen, all_ids, "in id order, everyone");
}

#[tokio::test]
async fn roles_crud_with_every_error_and_audit() {
    let d = TestDaemon::start().await;
    let admin = Caller::admin(&d);
    let roles = "/api/v1/roles";
    let (a, _) = admin
        .ok(
            Method::POST,
            roles,
            Some(json!({"name": "Responders", "description": "first line", "permissions": ["incident:write", "incident:read"]})),
            201,
            "role",
            None,
            "role.create",
            &["name", "permissions", "description"],
        )
        .await;
    let id = a.id();
    assert_eq!(a.body["builtin"], false);
    let path = format!("/api/v1/roles/{id}");
    let a = d.get(&path, &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.body["permissions"],
        json!(["incident:read", "incident:write"])
    );
    d.get("/api/v1/roles/999", &d.admin)
        .await
        .assert_problem(404);

    admin
        .err(
            Method::POST,
            roles,
            Some(json!({"name": "responders"})),
            409,
        )
        .await;
    admin
        .err(Method::POST, roles, Some(json!({"name": "viewer"})), 409)
        .await;
    admin
        .invalid(
            Method::POST,
            roles,
            json!({"name": "X", "permissions": ["incident:explode"]}),
            "permissions",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            roles,
            json!({"permissions": ["incident:read"]}),
            "name",
        )
        .await;
    admin
        .invalid(Method::POST, roles, json!({"name": "   "}), "name")
        .await;

    let (a, e) = admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"permissions": ["incident:read"]})),
            200,
            "role",
            Some(id),
            "role.update",
            &["permissions"],
        )
        .await;
    assert_eq!(a.body["permissions"], json!(["incident:read"]));
    assert_eq!(e["changes"]["permissions"]["to"], json!(["incident:read"]));
    admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"name": "Responders2"})),
            200,
            "role",
            Some(id),
            "role.update",
            &["name"],
        )
        .await;
    admin
        .err(Method::PATCH, &path, Some(json!({"name": "Engineer"})), 409)
        .await;
    admin
        .invalid(
            Method::PATCH,
            &path,
            json!({"permissions": ["nope:nope"]}),
            "permissions",
        )
        .await;
    admin
        .err(
            Method::PATCH,
            "/api/v1/roles/999",
            Some(json!({"description": "x"})),
            404,
        )
        .await;

    // Built-ins: Admin is frozen; others keep their names and cannot be deleted.
    let admin_role = role_id(&d, "Admin").await;
    let viewer_role = role_id(&d, "Viewer").await;
    admin
        .err(
            Method::PATCH,
            &format!("/api/v1/roles/{admin_role}"),
            Some(json!({"permissions": ["incident:read"]})),
            409,
        )
        .await;
    admin
        .err(
            Method::PATCH,
            &format!("/api/v1/roles/{admin_role}"),
            Some(json!({"description": "less"})),
            409,
        )
        .await;
    admin
        .err(
            Method::DELETE,
            &format!("/api/v1/roles/{admin_role}"),
            None,
            409,
        )
        .await;
    admin
        .err(
            Method::DELETE,
            &format!("/api/v1/roles/{viewer_role}"),
            None,
            409,
        )
        .await;
    admin
        .err(
            Method::PATCH,
            &format!("/api/v1/roles/{viewer_role}"),
            Some(json!({"name": "Lookers"})),
            409,
        )
        .await;
    admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/roles/{viewer_role}"),
            Some(json!({"description": "Reads things"})),
            200,
            "role",
            Some(viewer_role),
            "role.update",
            &["description"],
        )
        .await;
    let a = d.get("/api/v1/roles/1", &d.admin).await;
    assert_eq!(a.body["permissions"], json!(["*"]), "Admin unchanged");

    // A role in use cannot go.
    let (u, _) = admin
        .ok(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "rita", "email": "rita@example.com", "password": USER_PASSWORD, "roles": ["responders2"]})),
            201,
            "user",
            None,
            "user.create",
            &["roles"],
        )
        .await;
    assert_eq!(u.body["roles"], json!(["Responders2"]));
    let u = u.id();
    admin.err(Method::DELETE, &path, None, 409).await;
    admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/users/{u}"),
            Some(json!({"roles": ["Viewer"]})),
            200,
            "user",
            Some(u),
            "user.update",
            &["roles"],
        )
        .await;
    admin
        .ok(
            Method::DELETE,
            &path,
            None,
            204,
            "role",
            Some(id),
            "role.delete",
            &["name", "permissions"],
        )
        .await;
    d.get(&path, &d.admin).await.assert_problem(404);
    admin.err(Method::DELETE, &path, None, 404).await;
}

#[tokio::test]
async fn groups_and_members_crud_with_every_error_and_audit() {
    let d = TestDaemon::start().await;
    let admin = Caller::admin(&d);
    let groups = "/api/v1/groups";
    let (a, _) = admin
        .ok(
            Method::POST,
            groups,
            Some(json!({"name": "Payments", "description": "money"})),
            201,
            "group",
            None,
            "group.create",
            &["name", "description"],
        )
        .await;
    let g = a.id();
    let path = format!("/api/v1/groups/{g}");
    let a = d.get(&path, &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["name"], "Payments");
    d.get("/api/v1/groups/999", &d.admin)
        .await
        .assert_problem(404);
    let (a, _) = admin
        .ok(
            Method::POST,
            groups,
            Some(json!({"name": "Search"})),
            201,
            "group",
            None,
            "group.create",
            &["name"],
        )
        .await;
    let other = a.id();

    admin
        .err(Method::POST, groups, Some(json!({"name": "payments"})), 409)
        .await;
    admin
        .invalid(Method::POST, groups, json!({"description": "x"}), "name")
        .await;
    admin
        .invalid(Method::POST, groups, json!({"name": ""}), "name")
        .await;

    let (_, e) = admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"description": "all the money"})),
            200,
            "group",
            Some(g),
            "group.update",
            &["description"],
        )
        .await;
    assert_eq!(
        e["changes"]["description"],
        json!({"from": "money", "to": "all the money"})
    );
    admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"name": "Payments-Core"})),
            200,
            "group",
            Some(g),
            "group.update",
            &["name"],
        )
        .await;
    admin
        .err(Method::PATCH, &path, Some(json!({"name": "SEARCH"})), 409)
        .await;
    admin
        .invalid(Method::PATCH, &path, json!({"name": " "}), "name")
        .await;
    admin
        .err(
            Method::PATCH,
            "/api/v1/groups/999",
            Some(json!({"name": "x"})),
            404,
        )
        .await;

    // Members.
    let (u, _) = admin
        .ok(
            Method::POST,
            "/api/v1/users",
            Some(new_user("mia")),
            201,
            "user",
            None,
            "user.create",
            &["username"],
        )
        .await;
    let u = u.id();
    let member = format!("{path}/members/{u}");
    admin
        .ok(
            Method::PUT,
            &member,
            None,
            204,
            "group",
            Some(g),
            "group.member_add",
            &["members"],
        )
        .await;
    let a = d.get(&format!("{path}/members"), &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    no_secrets(&a);
    let ids: Vec<u64> = a.body["items"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![u]);
    assert_eq!(
        d.get(&format!("/api/v1/users/{u}"), &d.admin).await.body["group_ids"],
        json!([g])
    );
    admin.noop(Method::PUT, &member, 204).await;
    admin
        .err(
            Method::PUT,
            &format!("/api/v1/groups/999/members/{u}"),
            None,
            404,
        )
        .await;
    admin
        .err(Method::PUT, &format!("{path}/members/999"), None, 404)
        .await;
    d.get("/api/v1/groups/999/members", &d.admin)
        .await
        .assert_problem(404);
    admin
        .ok(
            Method::DELETE,
            &member,
            None,
            204,
            "group",
            Some(g),
            "group.member_remove",
            &["members"],
        )
        .await;
    let a = d.get(&format!("{path}/members"), &d.admin).await;
    assert_eq!(a.body, json!({"items": [], "next_cursor": null}));
    assert_eq!(
        d.get(&format!("/api/v1/users/{u}"), &d.admin).await.body["group_ids"],
        json!([])
    );
    admin.noop(Method::DELETE, &member, 204).await;

    // A group that owns a service cannot go; its members leave it when it goes.
    let (s, _) = admin
        .ok(
            Method::POST,
            "/api/v1/services",
            Some(json!({"name": "billing", "owner_group_id": g})),
            201,
            "service",
            None,
            "service.create",
            &["owner_group_id"],
        )
        .await;
    let s = s.id();
    admin.err(Method::DELETE, &path, None, 409).await;
    admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/services/{s}"),
            Some(json!({"owner_group_id": null})),
            200,
            "service",
            Some(s),
            "service.update",
            &["owner_group_id"],
        )
        .await;
    admin
        .ok(
            Method::PUT,
            &member,
            None,
            204,
            "group",
            Some(g),
            "group.member_add",
            &["members"],
        )
        .await;
    admin
        .ok(
            Method::DELETE,
            &path,
            None,
            204,
            "group",
            Some(g),
            "group.delete",
            &["name"],
        )
        .await;
    d.get(&path, &d.admin).await.assert_problem(404);
    assert_eq!(
        d.get(&format!("/api/v1/users/{u}"), &d.admin).await.body["group_ids"],
        json!([])
    );
    admin.err(Method::DELETE, &path, None, 404).await;
    // The other group is untouched.
    assert_eq!(
        d.get(&format!("/api/v1/groups/{other}"), &d.admin)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn services_crud_with_every_error_and_audit() {
    let d = TestDaemon::start().await;
    let admin = Caller::admin(&d);
    let services = "/api/v1/services";
    let a = d.get("/api/v1/services/1", &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["name"], "Default");
    let (g, _) = admin
        .ok(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Platform"})),
            201,
            "group",
            None,
            "group.create",
            &["name"],
        )
        .await;
    let g = g.id();

    let (a, e) = admin
        .ok(
            Method::POST,
            services,
            Some(json!({"name": "api", "description": "the API", "owner_group_id": g, "tier": 2})),
            201,
            "service",
            None,
            "service.create",
            &["name", "description", "owner_group_id", "tier"],
        )
        .await;
    let s = a.id();
    assert!(s > 1);
    assert_eq!(a.body["tier"], 2);
    assert_eq!(a.body["owner_group_id"], g);
    assert_eq!(e["changes"]["tier"], json!({"from": null, "to": 2}));
    let path = format!("/api/v1/services/{s}");
    assert_eq!(d.get(&path, &d.admin).await.body["name"], "api");
    let list = d.get(services, &d.admin).await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Default", "api"]);
    d.get("/api/v1/services/999", &d.admin)
        .await
        .assert_problem(404);

    admin
        .err(Method::POST, services, Some(json!({"name": "API"})), 409)
        .await;
    admin
        .err(
            Method::POST,
            services,
            Some(json!({"name": "default"})),
            409,
        )
        .await;
    admin
        .invalid(
            Method::POST,
            services,
            json!({"name": "web", "tier": 9}),
            "tier",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            services,
            json!({"name": "web", "tier": 0}),
            "tier",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            services,
            json!({"name": "web", "owner_group_id": 999}),
            "owner_group_id",
        )
        .await;
    admin
        .invalid(Method::POST, services, json!({"description": "x"}), "name")
        .await;
    admin
        .invalid(Method::POST, services, json!({"name": "  "}), "name")
        .await;

    let (a, e) = admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"tier": 1})),
            200,
            "service",
            Some(s),
            "service.update",
            &["tier"],
        )
        .await;
    assert_eq!(a.body["tier"], 1);
    assert_eq!(e["changes"]["tier"], json!({"from": 2, "to": 1}));
    assert!(e["changes"].get("name").is_none(), "{e}");
    let (a, _) = admin
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"tier": null, "name": "api-gw"})),
            200,
            "service",
            Some(s),
            "service.update",
            &["tier", "name"],
        )
        .await;
    assert!(a.body["tier"].is_null());
    admin
        .invalid(Method::PATCH, &path, json!({"tier": 9}), "tier")
        .await;
    admin
        .invalid(
            Method::PATCH,
            &path,
            json!({"owner_group_id": 999}),
            "owner_group_id",
        )
        .await;
    admin
        .err(Method::PATCH, &path, Some(json!({"name": "Default"})), 409)
        .await;
    admin
        .err(
            Method::PATCH,
            "/api/v1/services/999",
            Some(json!({"tier": 1})),
            404,
        )
        .await;
    let a = d.get(&path, &d.admin).await;
    assert_eq!(a.body["name"], "api-gw");
    assert_eq!(a.body["owner_group_id"], g);

    admin
        .err(Method::DELETE, "/api/v1/services/1", None, 409)
        .await;
    admin
        .ok(
            Method::DELETE,
            &path,
            None,
            204,
            "service",
            Some(s),
            "service.delete",
            &["name"],
        )
        .await;
    d.get(&path, &d.admin).await.assert_problem(404);
    admin.err(Method::DELETE, &path, None, 404).await;
    // The name is free again.
    admin
        .ok(
            Method::POST,
            services,
            Some(json!({"name": "api-gw"})),
            201,
            "service",
            None,
            "service.create",
            &["name"],
        )
        .await;
}

#[tokio::test]
async fn audit_filters_by_actor_target_and_time() {
    let d = TestDaemon::start().await;
    let admin = Caller::admin(&d);
    let (a, _) = admin
        .ok(
            Method::POST,
            "/api/v1/users",
            Some(new_user("mgr")),
            201,
            "user",
            None,
            "user.create",
            &["username"],
        )
        .await;
    let mgr_id = a.id();
    admin
        .ok(
            Method::PATCH,
            &format!("/api/v1/users/{mgr_id}"),
            Some(json!({"roles": ["Manager"]})),
            200,
            "user",
            Some(mgr_id),
            "user.update",
            &["roles"],
        )
        .await;
    let mgr = Caller {
        d: &d,
        token: d.login("mgr", USER_PASSWORD).await,
        name: "mgr",
    };
    let (_, by_mgr) = mgr
        .ok(
            Method::POST,
            "/api/v1/services",
            Some(json!({"name": "search"})),
            201,
            "service",
            None,
            "service.create",
            &["name"],
        )
        .await;
    let (_, later) = admin
        .ok(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "Later"})),
            201,
            "group",
            None,
            "group.create",
            &["name"],
        )
        .await;

    let everything = all_audit(&d, "").await;
    assert!(everything.len() >= 5, "{everything:#?}");
    let ids: Vec<u64> = everything
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let mine = all_audit(&d, "&actor=admin").await;
    assert!(mine.len() >= 3, "{mine:#?}");
    assert!(
        mine.iter()
            .all(|e| e["actor"]["name"] == "admin" && e["actor"]["kind"] == "user")
    );
    assert!(!mine.iter().any(|e| e["id"] == by_mgr["id"]));
    assert_eq!(all_audit(&d, "&actor=1").await, mine, "by id");
    assert_eq!(all_audit(&d, "&actor=user:1").await, mine, "by kind:id");
    // What mgr did: logging in, and the one change.
    let theirs = all_audit(&d, "&actor=mgr").await;
    assert_eq!(
        theirs
            .iter()
            .filter(|e| e["action"] != "auth.login")
            .map(|e| &e["id"])
            .collect::<Vec<_>>(),
        vec![&by_mgr["id"]]
    );
    assert!(theirs.iter().all(|e| e["actor"]["name"] == "mgr"));
    let system = all_audit(&d, "&actor=system").await;
    assert!(
        system
            .iter()
            .any(|e| e["action"] == "user.create" && e["target"]["id"] == 1),
        "first-start admin: {system:#?}"
    );
    assert!(system.iter().all(|e| e["actor"]["kind"] == "system"));

    let users_only = all_audit(&d, "&target=user").await;
    assert!(users_only.iter().all(|e| e["target"]["kind"] == "user"));
    assert_eq!(
        users_only.len(),
        everything
            .iter()
            .filter(|e| e["target"]["kind"] == "user")
            .count()
    );

    // since: exactly the entries at or after the given time.
    let since = by_mgr["at"].as_str().expect("at").to_owned();
    let recent = all_audit(&d, &format!("&since={since}")).await;
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("at")).expect("RFC 3339 time")
    };
    let expected: Vec<&Value> = everything
        .iter()
        .filter(|e| time(&e["at"]) >= time(&by_mgr["at"]))
        .collect();
    assert_eq!(recent.iter().collect::<Vec<_>>(), expected);
    assert!(recent.iter().any(|e| e["id"] == later["id"]));
    assert!(recent.len() < everything.len(), "since filtered nothing");
    let combined = all_audit(&d, &format!("&since={since}&actor=admin")).await;
    assert!(combined.iter().any(|e| e["id"] == later["id"]));
    assert!(!combined.iter().any(|e| e["id"] == by_mgr["id"]));
    assert!(
        all_audit(&d, "&since=2999-01-01T00:00:00Z")
            .await
            .is_empty()
    );

    for bad in [
        "since=yesterday",
        "actor=nobody-by-that-name",
        "target=user:abc",
    ] {
        d.get(&format!("/api/v1/audit?{bad}"), &d.admin)
            .await
            .assert_problem(422);
    }
    // The number people use finds the entries of that incident.
    let inc = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "audited", "impact": "low", "urgency": "low"}),
        )
        .await;
    assert_eq!(inc.status, 201, "{}", inc.text);
    let number = inc.body["number"].as_str().expect("number").to_owned();
    let by_number = all_audit(&d, &format!("&target={number}")).await;
    let by_kind_id = all_audit(&d, &format!("&target=incident:{}", inc.id())).await;
    assert!(!by_number.is_empty(), "{number}");
    assert_eq!(by_number, by_kind_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uniqueness_holds_under_concurrent_creates() {
    let d = std::sync::Arc::new(TestDaemon::start().await);
    let mark = newest_audit_id(&d).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let user = d
                .post(
                    "/api/v1/users",
                    &d.admin,
                    json!({"username": "same", "email": format!("same{i}@example.com"), "password": USER_PASSWORD}),
                )
                .await
                .status
                .as_u16();
            let service = d
                .post("/api/v1/services", &d.admin, json!({"name": "same"}))
                .await
                .status
                .as_u16();
            (user, service)
        }));
    }
    let mut users = Vec::new();
    let mut services = Vec::new();
    for t in tasks {
        let (u, s) = t.await.expect("task");
        users.push(u);
        services.push(s);
    }
    users.sort_unstable();
    services.sort_unstable();
    let expected: Vec<u16> = std::iter::once(201)
        .chain(std::iter::repeat_n(409, 9))
        .collect();
    assert_eq!(users, expected);
    assert_eq!(services, expected);
    let new: Vec<Value> = all_audit(&d, "")
        .await
        .into_iter()
        .filter(|e| e["id"].as_u64().unwrap_or(0) > mark)
        .collect();
    assert_eq!(new.len(), 2, "one entry per successful create: {new:#?}");
}

/// Schedules, escalation policies, approval workflows and routing rules share one life
/// (`app::catalog`): each change writes one audit entry `<kind>.create|update|delete` on
/// `<kind>:<id>`, a failed one none; names are unique regardless of case where the kind
/// says so (routing rules may repeat them); a reader cannot write; a deleted one is gone.
#[tokio::test]
async fn every_catalogue_kind_audits_its_changes_and_guards_its_names() {
    let d = TestDaemon::start().await;
    let admin = Caller::admin(&d);
    let (ann, _) = d.user("ann", "Engineer").await;
    let (bob, _) = d.user("bob", "Engineer").await;
    let (_, viewer) = d.user("vera", "Viewer").await;
    let cases: [(&str, &str, bool, Value); 4] = [
        (
            "/api/v1/schedules",
            "schedule",
            true,
            json!({"time_zone": "UTC", "layers": [{"name": "primary", "users": [ann], "rotation": "weeks", "length": 1, "start": "2026-12-07T09:00:00"}]}),
        ),
        (
            "/api/v1/escalation-policies",
            "escalation_policy",
            true,
            json!({"steps": [{"delay_minutes": 5, "targets": [{"type": "user", "id": ann}]}]}),
        ),
        (
            "/api/v1/approval-workflows",
            "approval_workflow",
            true,
            json!({"levels": [{"name": "lead", "approvers": [{"type": "user", "id": ann}, {"type": "user", "id": bob}]}]}),
        ),
        (
            "/api/v1/routing-rules",
            "routing_rule",
            false,
            json!({"matchers": [{"name": "team", "value": "db"}], "impact": "high"}),
        ),
    ];
    for (path, kind, unique, fields) in cases {
        let body = |name: &str| {
            let mut b = fields.clone();
            b["name"] = json!(name);
            b
        };
        let (a, created) = admin
            .ok(
                Method::POST,
                path,
                Some(body("Night Shift")),
                201,
                kind,
                None,
                &format!("{kind}.create"),
                &["name"],
            )
            .await;
        let id = a.id();
        assert_eq!(
            created["summary"]
                .as_str()
                .map(|s| s.ends_with("Night Shift")),
            Some(true),
            "{created}"
        );
        assert_eq!(a.body["created_at"], a.body["updated_at"], "{}", a.text);

        // A reader may read but not write; a bad name is a 422 on `name`.
        let r = d.get(&format!("{path}/{id}"), &viewer).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let r = d.post(path, &viewer, body("Other")).await;
        r.assert_problem(403);
        admin.invalid(Method::POST, path, body("  "), "name").await;
        admin
            .invalid(
                Method::PATCH,
                &format!("{path}/{id}"),
                json!({"name": "x".repeat(101)}),
                "name",
            )
            .await;

        // Names: unique in any case where the kind says so.
        let twin = d.post(path, &d.admin, body("night SHIFT")).await;
        if unique {
            assert_eq!(twin.status, 409, "{path}: {}", twin.text);
            twin.assert_problem(409);
        } else {
            assert_eq!(twin.status, 201, "{path}: {}", twin.text);
            let gone = d.delete(&format!("{path}/{}", twin.id()), &d.admin).await;
            assert_eq!(gone.status, 204, "{}", gone.text);
        }

        // A rename moves the name: the old one is free, the new one taken.
        let (a, changed) = admin
            .ok(
                Method::PATCH,
                &format!("{path}/{id}"),
                Some(json!({"name": "Day Shift"})),
                200,
                kind,
                Some(id),
                &format!("{kind}.update"),
                &["name"],
            )
            .await;
        assert_eq!(a.body["name"], "Day Shift");
        assert_eq!(
            changed["changes"]["name"],
            json!({"from": "Night Shift", "to": "Day Shift"}),
            "{changed}"
        );
        assert_ne!(a.body["updated_at"], a.body["created_at"], "{}", a.text);
        let reuse = d.post(path, &d.admin, body("night shift")).await;
        assert_eq!(
            reuse.status, 201,
            "the old name is free again: {}",
            reuse.text
        );
        if unique {
            admin
                .err(
                    Method::PATCH,
                    &format!("{path}/{}", reuse.id()),
                    Some(json!({"name": "DAY shift"})),
                    409,
                )
                .await;
        }

        admin
            .ok(
                Method::DELETE,
                &format!("{path}/{id}"),
                None,
                204,
                kind,
                Some(id),
                &format!("{kind}.delete"),
                &["name"],
            )
            .await;
        admin
            .err(Method::GET, &format!("{path}/{id}"), None, 404)
            .await;
        admin
            .err(Method::DELETE, &format!("{path}/{id}"), None, 404)
            .await;
        let again = d.post(path, &d.admin, body("Day Shift")).await;
        assert_eq!(
            again.status, 201,
            "a deleted record's name is free: {}",
            again.text
        );
    }
}
