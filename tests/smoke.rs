//! The harness itself works: a daemon starts, the admin logs in, /auth/me answers.
mod common;

use common::TestDaemon;

#[tokio::test]
async fn admin_logs_in_and_sees_itself() {
    let d = TestDaemon::start().await;
    let me = d.get("/api/v1/auth/me", &d.admin).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["username"], "admin");
    assert_eq!(me.body["roles"], serde_json::json!(["Admin"]));
}
