//! Authentication from the outside: login, failed-login secrecy and throttling, every way an
//! access token can be bad (expired, tampered, foreign, missing), refresh-token rotation with
//! reuse detection, and that a password change or a deactivation ends existing sessions.
mod common;

use std::sync::Arc;

use chrono::Utc;
use common::{ADMIN_PASSWORD, Answer, TestDaemon, USER_PASSWORD};
use incidentd::domain::clock::Clock;
use incidentd::domain::clock::ManualClock;
use reqwest::Method;
use serde_json::{Value, json};

async fn login_answer(d: &TestDaemon, username: &str, password: &str) -> Answer {
    d.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

/// The login session (`sid` claim) of the test daemon's admin token, read from its payload
/// without checking it (it may have expired).
fn admin_session(d: &TestDaemon) -> u64 {
    use base64::Engine;
    let payload = d.admin.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    claims["sid"].as_u64().expect("a session")
}

async fn refresh(d: &TestDaemon, token: &str) -> Answer {
    d.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

/// GET /auth/me with `token`, asserting 401 problem+json with `WWW-Authenticate: Bearer`.
async fn assert_refused(d: &TestDaemon, token: &str, why: &str) {
    let a = d.get("/api/v1/auth/me", token).await;
    a.assert_problem(401);
    assert_eq!(
        a.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer"),
        "{why}: {a:?}"
    );
}

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {v}"))
}

#[tokio::test]
async fn login_with_the_right_password_issues_a_bearer_pair() {
    let d = TestDaemon::start().await;
    let a = login_answer(&d, "admin", ADMIN_PASSWORD).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["token_type"], "Bearer");
    assert_eq!(a.body["expires_in"], 86400);
    let access = str_field(&a.body, "access_token");
    let refresh = str_field(&a.body, "refresh_token");
    assert_eq!(access.split('.').count(), 3, "a JWT: {access}");
    assert!(!refresh.is_empty() && refresh != access);
    let me = d.get("/api/v1/auth/me", access).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["username"], "admin");
    // The username is matched case-insensitively.
    let a = login_answer(&d, "ADMIN", ADMIN_PASSWORD).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let d = TestDaemon::start().await;
    let wrong = login_answer(&d, "admin", "not-the-password").await;
    let unknown = login_answer(&d, "nobody-here", "not-the-password").await;
    wrong.assert_problem(401);
    unknown.assert_problem(401);
    assert_eq!(
        wrong.text, unknown.text,
        "the body must not tell which part was wrong"
    );
    assert_eq!(wrong.content_type(), unknown.content_type());
    assert!(wrong.body.get("access_token").is_none());
}

#[tokio::test]
async fn five_failures_throttle_the_username_even_for_the_right_password() {
    let d = TestDaemon::start().await;
    d.user("alice", "Engineer").await;
    for i in 0..5 {
        let a = login_answer(&d, "alice", "wrong-password").await;
        a.assert_problem(401);
        assert!(a.headers.get("retry-after").is_none(), "attempt {i}");
    }
    let a = login_answer(&d, "alice", USER_PASSWORD).await;
    a.assert_problem(429);
    let retry: u64 = a
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After in seconds: {a:?}"));
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    assert!(a.body.get("access_token").is_none());
    // Any case of the name is the same user.
    login_answer(&d, "ALICE", USER_PASSWORD)
        .await
        .assert_problem(429);
    // Other users (from the same address) are not affected.
    let a = login_answer(&d, "admin", ADMIN_PASSWORD).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    // Expiry is read on the daemon's clock, the one that issued the token: a day and a bit
    // later (the default lifetime is a day), the login's token is refused.
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let me = d.get("/api/v1/auth/me", &d.admin).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let issued = clock.now();
    clock.advance(chrono::Duration::hours(25));
    assert_refused(&d, &d.admin, "expired login token").await;
    let a = d.get("/api/v1/users", &d.admin).await;
    a.assert_problem(401);
    assert!(
        a.body["detail"].as_str().unwrap_or("").contains("expired"),
        "{}",
        a.text
    );
    let old = d
        .app
        .tokens
        .issue(1, 0, admin_session(&d), issued.timestamp(), 3600)
        .expect("issue");
    assert_refused(&d, &old, "expired issued token").await;
    // Control: the same claims issued at the daemon's now are accepted, so expiry is what
    // was refused.
    let fresh = d
        .app
        .tokens
        .issue(1, 0, admin_session(&d), clock.now().timestamp(), 3600)
        .expect("issue");
    let me = d.get("/api/v1/auth/me", &fresh).await;
    assert_eq!(me.status, 200, "{}", me.text);
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let d = TestDaemon::start().await;
    let (_, viewer) = d.user("vera", "Viewer").await;
    assert_eq!(d.get("/api/v1/auth/me", &viewer).await.status, 200);

    // Flip one character in the middle of the payload.
    let parts: Vec<&str> = viewer.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut payload: Vec<char> = parts[1].chars().collect();
    let mid = payload.len() / 2;
    payload[mid] = if payload[mid] == 'A' { 'B' } else { 'A' };
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        payload.into_iter().collect::<String>(),
        parts[2]
    );
    assert_ne!(flipped, viewer);
    assert_refused(&d, &flipped, "flipped payload").await;

    // Graft the admin's payload onto the viewer's signature: a privilege escalation attempt.
    let admin_parts: Vec<&str> = d.admin.split('.').collect();
    let grafted = format!("{}.{}.{}", parts[0], admin_parts[1], parts[2]);
    assert_refused(&d, &grafted, "grafted payload").await;

    // A flipped signature.
    let mut sig: Vec<char> = parts[2].chars().collect();
    sig[0] = if sig[0] == 'A' { 'B' } else { 'A' };
    let bad_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        sig.into_iter().collect::<String>()
    );
    assert_refused(&d, &bad_sig, "flipped signature").await;
    assert_refused(&d, "garbage", "not a JWT").await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let d = TestDaemon::start().await;
    let foreign = incidentd::auth::jwt::TokenKeys::new(b"another-secret-another-secret-xx")
        .issue(1, 0, admin_session(&d), Utc::now().timestamp(), 3600)
        .expect("issue");
    assert_refused(&d, &foreign, "foreign secret").await;
    // Control: our own keys with the same claims work.
    let ours = d
        .app
        .tokens
        .issue(1, 0, admin_session(&d), Utc::now().timestamp(), 3600)
        .expect("issue");
    assert_eq!(d.get("/api/v1/auth/me", &ours).await.status, 200);
}

#[tokio::test]
async fn a_missing_or_malformed_header_is_401_with_www_authenticate() {
    let d = TestDaemon::start().await;
    let a = d.call(Method::GET, "/api/v1/auth/me", None, None).await;
    a.assert_problem(401);
    assert_eq!(
        a.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer"),
        "{a:?}"
    );
    // Basic credentials are not a bearer token.
    let res = d
        .http
        .get(d.url("/api/v1/auth/me"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("request");
    let a = common::into_answer(res).await;
    a.assert_problem(401);
    assert!(a.headers.get("www-authenticate").is_some());
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let d = TestDaemon::start().await;
    let first = login_answer(&d, "admin", ADMIN_PASSWORD).await;
    assert_eq!(first.status, 200);
    let old_refresh = str_field(&first.body, "refresh_token").to_owned();

    let second = refresh(&d, &old_refresh).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.body["token_type"], "Bearer");
    assert_eq!(second.body["expires_in"], 86400);
    let new_refresh = str_field(&second.body, "refresh_token").to_owned();
    let new_access = str_field(&second.body, "access_token").to_owned();
    assert_ne!(new_refresh, old_refresh, "the refresh token rotates");
    assert_eq!(d.get("/api/v1/auth/me", &new_access).await.status, 200);

    // Someone who knows only the family id (a small number) forges an older generation:
    // refused, and the session goes on (it would otherwise be anyone's to end).
    let family = old_refresh.split('.').nth(1).expect("family id");
    for forged in [
        format!("rt.{family}.0.{}", "0".repeat(64)),
        format!("rt.{family}.0.{}", &new_refresh[new_refresh.len() - 64..]),
    ] {
        refresh(&d, &forged).await.assert_problem(401);
    }
    assert_eq!(d.get("/api/v1/auth/me", &new_access).await.status, 200);

    // The old refresh token no longer works; presenting it is reuse and revokes the family...
    refresh(&d, &old_refresh).await.assert_problem(401);
    // ...so the new one, never used, fails too, and so does the session's access token
    // (whoever stole the refresh token may hold it).
    refresh(&d, &new_refresh).await.assert_problem(401);
    d.get("/api/v1/auth/me", &new_access)
        .await
        .assert_problem(401);

    // Other sessions are unaffected.
    let other = login_answer(&d, "admin", ADMIN_PASSWORD).await;
    let r = refresh(&d, str_field(&other.body, "refresh_token")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Garbage is 401, not 400 or 500.
    refresh(&d, "rt.1.0.nothex").await.assert_problem(401);
    refresh(&d, "nonsense").await.assert_problem(401);
}

#[tokio::test]
async fn a_password_change_ends_old_sessions() {
    let d = TestDaemon::start().await;
    let (_, _) = d.user("bob", "Engineer").await;
    let session = login_answer(&d, "bob", USER_PASSWORD).await;
    let old_access = str_field(&session.body, "access_token").to_owned();
    let old_refresh = str_field(&session.body, "refresh_token").to_owned();
    assert_eq!(d.get("/api/v1/auth/me", &old_access).await.status, 200);

    // A wrong current password changes nothing.
    let a = d
        .post(
            "/api/v1/auth/password",
            &old_access,
            json!({"current_password": "not-it-at-all", "new_password": "a-brand-new-password"}),
        )
        .await;
    a.assert_problem(422);
    assert!(
        a.body["errors"]["current_password"].is_array(),
        "{}",
        a.text
    );
    assert_eq!(d.get("/api/v1/auth/me", &old_access).await.status, 200);
    // The same password again, or only spaces, is no change.
    for new in [USER_PASSWORD, "          "] {
        let a = d
            .post(
                "/api/v1/auth/password",
                &old_access,
                json!({"current_password": USER_PASSWORD, "new_password": new}),
            )
            .await;
        a.assert_problem(422);
        assert!(a.body["errors"]["new_password"].is_array(), "{}", a.text);
    }

    let a = d
        .post(
            "/api/v1/auth/password",
            &old_access,
            json!({"current_password": USER_PASSWORD, "new_password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text);

    assert_refused(&d, &old_access, "access token from before the change").await;
    refresh(&d, &old_refresh).await.assert_problem(401);
    login_answer(&d, "bob", USER_PASSWORD)
        .await
        .assert_problem(401);
    let fresh = d.login("bob", "a-brand-new-password").await;
    let me = d.get("/api/v1/auth/me", &fresh).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["username"], "bob");
}

/// Guessing the current password through an access token is throttled like a login
/// (the same counters): after five wrong guesses even the right one waits.
#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins() {
    let d = TestDaemon::start().await;
    let (_, token) = d.user("carl", "Engineer").await;
    let change =
        |current: &str| json!({"current_password": current, "new_password": "another-password-1"});
    for i in 0..5 {
        let a = d
            .post(
                "/api/v1/auth/password",
                &token,
                change(&format!("guess-{i}-wrong")),
            )
            .await;
        a.assert_problem(422);
    }
    let a = d
        .post("/api/v1/auth/password", &token, change(USER_PASSWORD))
        .await;
    a.assert_problem(429);
    assert!(a.headers.contains_key("retry-after"), "{}", a.text);
    login_answer(&d, "carl", USER_PASSWORD)
        .await
        .assert_problem(429);
    // An admin's token cannot skip the current password by editing its own user either.
    let me = d.get("/api/v1/auth/me", &d.admin).await.id();
    let a = d
        .patch(
            &format!("/api/v1/users/{me}"),
            &d.admin,
            json!({"password": "another-password-1"}),
        )
        .await;
    a.assert_problem(422);
    assert!(a.text.contains("/api/v1/auth/password"), "{}", a.text);
    assert_eq!(login_answer(&d, "admin", ADMIN_PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_deactivated_user_loses_tokens_and_cannot_log_in() {
    let d = TestDaemon::start().await;
    let (id, token) = d.user("carol", "Engineer").await;
    let session = login_answer(&d, "carol", USER_PASSWORD).await;
    let refresh_token = str_field(&session.body, "refresh_token").to_owned();
    assert_eq!(d.get("/api/v1/auth/me", &token).await.status, 200);

    let a = d
        .patch(
            &format!("/api/v1/users/{id}"),
            &d.admin,
            json!({"active": false}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["active"], false);

    assert_refused(&d, &token, "token of a deactivated user").await;
    refresh(&d, &refresh_token).await.assert_problem(401);
    let refused = login_answer(&d, "carol", USER_PASSWORD).await;
    refused.assert_problem(401);
    // Same answer as a wrong password: nothing tells that the account exists.
    let wrong = login_answer(&d, "nobody-at-all", "whatever-password").await;
    assert_eq!(refused.text, wrong.text);

    // Reactivated, the user can log in again (old tokens stay dead).
    let a = d
        .patch(
            &format!("/api/v1/users/{id}"),
            &d.admin,
            json!({"active": true}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_refused(&d, &token, "token from before the deactivation").await;
    d.login("carol", USER_PASSWORD).await;
}

#[tokio::test]
async fn logout_ends_the_refresh_session() {
    let d = TestDaemon::start().await;
    let session = login_answer(&d, "admin", ADMIN_PASSWORD).await;
    let refresh_token = str_field(&session.body, "refresh_token").to_owned();
    let first_access = str_field(&session.body, "access_token").to_owned();
    // A refresh in the same session, and another session (another device).
    let rotated = refresh(&d, &refresh_token).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let refresh_token = str_field(&rotated.body, "refresh_token").to_owned();
    let second_access = str_field(&rotated.body, "access_token").to_owned();
    let elsewhere = d.login("admin", ADMIN_PASSWORD).await;
    for token in [&first_access, &second_access, &elsewhere] {
        assert_eq!(d.get("/api/v1/auth/me", token).await.status, 200);
    }
    let a = d
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": refresh_token})),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    refresh(&d, &refresh_token).await.assert_problem(401);
    // Every access token of the session stops at once, not when it expires; the other
    // session goes on.
    for token in [&first_access, &second_access] {
        let a = d.get("/api/v1/auth/me", token).await;
        a.assert_problem(401);
        assert!(a.text.contains("the session has ended"), "{}", a.text);
    }
    assert_eq!(d.get("/api/v1/auth/me", &elsewhere).await.status, 200);
    // Logging out an unknown session is not an error (and says nothing).
    let a = d
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": "rt.999.0.nothing"})),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text);

    // A client that kept only its access token logs out with it (no body): that session
    // ends, refresh token included.
    let kept = login_answer(&d, "admin", ADMIN_PASSWORD).await;
    let kept_refresh = str_field(&kept.body, "refresh_token").to_owned();
    let kept_access = str_field(&kept.body, "access_token").to_owned();
    let a = d
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&kept_access),
            None,
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    d.get("/api/v1/auth/me", &kept_access)
        .await
        .assert_problem(401);
    refresh(&d, &kept_refresh).await.assert_problem(401);
    assert_eq!(d.get("/api/v1/auth/me", &elsewhere).await.status, 200);
    // Neither a refresh token nor an access token: 422 naming what is missing; a bad
    // access token is a 401, as everywhere.
    let a = d
        .call(Method::POST, "/api/v1/auth/logout", None, None)
        .await;
    a.assert_problem(422);
    assert!(a.body["errors"]["refresh_token"].is_array(), "{}", a.text);
    d.call(Method::POST, "/api/v1/auth/logout", Some("garbage"), None)
        .await
        .assert_problem(401);
}

#[tokio::test]
async fn logins_logouts_and_revoked_sessions_are_on_the_audit_record() {
    let d = TestDaemon::start().await;
    let (alice, _) = d.user("alice", "Engineer").await;

    login_answer(&d, "alice", "wrong-password-123")
        .await
        .assert_problem(401);
    login_answer(&d, "nobody-at-all", "wrong-password-123")
        .await
        .assert_problem(401);
    // Recorded after the answer (so that it takes no longer than for an unknown name).
    let failed = common::notify::eventually(
        "the failed login on the record",
        std::time::Duration::from_secs(5),
        async || {
            let failed = d.audited("auth.login_failed").await;
            (!failed.is_empty()).then_some(failed)
        },
    )
    .await;
    assert_eq!(
        failed.len(),
        1,
        "unknown names are not recorded: {failed:#?}"
    );
    assert_eq!(failed[0]["target"]["id"], alice);
    assert!(
        failed[0]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("wrong password"),
        "{failed:#?}"
    );
    let before = d.audited("auth.login").await.len();
    let session = login_answer(&d, "alice", USER_PASSWORD).await;
    assert_eq!(session.status, 200, "{}", session.text);
    let logins = d.audited("auth.login").await;
    assert_eq!(logins.len(), before + 1);
    assert_eq!(logins[0]["actor"]["name"], "alice", "{:#?}", logins[0]);
    assert!(
        !logins[0]
            .to_string()
            .contains(str_field(&session.body, "refresh_token")),
        "no token on the record"
    );

    // A copied refresh token: the session ends, and the record says why.
    let first = str_field(&session.body, "refresh_token").to_owned();
    let rotated = refresh(&d, &first).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    refresh(&d, &first).await.assert_problem(401);
    let revoked = d.audited("auth.session_revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:#?}");
    assert_eq!(revoked[0]["target"]["id"], alice);

    // Logging out, once on the record however often it is asked.
    let other = login_answer(&d, "alice", USER_PASSWORD).await;
    for _ in 0..2 {
        let a = d
            .call(
                Method::POST,
                "/api/v1/auth/logout",
                None,
                Some(json!({"refresh_token": str_field(&other.body, "refresh_token")})),
            )
            .await;
        assert_eq!(a.status, 204, "{}", a.text);
    }
    let out = d.audited("auth.logout").await;
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0]["actor"]["name"], "alice");
}
