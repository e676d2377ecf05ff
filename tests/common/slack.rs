//! A daemon wired to the fake Slack Web API, with users mapped to Slack users the way an
//! admin does it (a `slack` contact method whose address is the Slack user id), and
//! builders for signed slash commands and button presses modelled on the shared fixtures.

use std::sync::Arc;

use incidentd::config::Config;
use incidentd::domain::clock::SystemClock;
use serde_json::{Value, json};

use super::fakes::{SlackFake, form_encode};
use super::notify::{contact, post_signed, slack_config};
use super::{Answer, TestDaemon};

/// Alice (Engineer), as in the fixtures.
pub const ALICE: &str = "U05ALICE01";
/// Vera (Viewer).
pub const VERA: &str = "U0VIEWER01";
/// Mona (Manager).
pub const MONA: &str = "U0MANAGER1";
/// A Slack user nobody linked and whose e-mail matches no user.
pub const NOBODY: &str = "U0NOBODY01";
/// The channel cards go to.
pub const CHANNEL: &str = "C07INC0001";

pub struct SlackEnv {
    pub d: TestDaemon,
    pub slack: SlackFake,
    pub alice: (u64, String),
    pub vera: (u64, String),
    pub mona: (u64, String),
}

impl SlackEnv {
    pub async fn start() -> SlackEnv {
        Self::start_with(|_| {}).await
    }

    /// Slack configured (default channel [`CHANNEL`]) after `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config) + Send + 'static) -> SlackEnv {
        let slack = SlackFake::start().await;
        let api = slack.api_base();
        let d = TestDaemon::start_with(
            move |c| {
                c.slack = Some(slack_config(&api, Some(CHANNEL)));
                adjust(c);
            },
            Arc::new(SystemClock),
        )
        .await;
        let alice = d.user("alice", "Engineer").await;
        let vera = d.user("vera", "Viewer").await;
        let mona = d.user("mona", "Manager").await;
        contact(&d, alice.0, "slack", ALICE).await;
        contact(&d, vera.0, "slack", VERA).await;
        contact(&d, mona.0, "slack", MONA).await;
        SlackEnv {
            d,
            slack,
            alice,
            vera,
            mona,
        }
    }

    /// A slash command body as Slack sends it (the fields of slack_slash_command.txt), with
    /// a trigger id of its own as every real command has (the daemon refuses a signed
    /// request it has already received).
    pub fn slash_body(&self, command: &str, text: &str, user: &str, response_url: &str) -> String {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let trigger = format!("8019345671234.7006123456.3f1c9e0b2a7d4c5e8f9a{n:012x}");
        form_encode(&[
            ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
            ("team_id", "T0A1B2C3D"),
            ("team_domain", "example-ops"),
            ("channel_id", CHANNEL),
            ("channel_name", "incidents"),
            ("user_id", user),
            ("user_name", "someone"),
            ("command", command),
            ("text", text),
            ("api_app_id", "A07CHATOPS1"),
            ("is_enterprise_install", "false"),
            ("response_url", response_url),
            ("trigger_id", &trigger),
        ])
    }

    /// Runs a signed slash command; asserts 200 and returns the answer.
    pub async fn command(&self, user: &str, command: &str, text: &str) -> Answer {
        let body = self.slash_body(command, text, user, &self.slack.response_url("cmd"));
        let a = post_signed(&self.d, "/chat/slack/commands", &body).await;
        assert_eq!(a.status, 200, "{command} {text}: {}", a.text);
        a
    }

    /// The text of a slash command's inline answer, which must be ephemeral.
    pub async fn private(&self, user: &str, command: &str, text: &str) -> String {
        let a = self.command(user, command, text).await;
        assert_eq!(
            a.body["response_type"], "ephemeral",
            "{command} {text}: {}",
            a.text
        );
        // As Slack shows it: the answer escapes &, < and >.
        a.body["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text: {}", a.text))
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    /// A block_actions payload (slack_block_actions.json) for a button press.
    pub fn press_body(
        &self,
        user: &str,
        action_id: &str,
        incident: u64,
        response_url: &str,
    ) -> String {
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/slack_block_actions.json"
        ))
        .expect("fixture");
        let mut p: Value = serde_json::from_str(&fixture).expect("fixture JSON");
        let value = format!("INC-{incident}");
        p["user"]["id"] = json!(user);
        p["response_url"] = json!(response_url);
        p["actions"][0]["action_id"] = json!(action_id);
        p["actions"][0]["value"] = json!(value);
        p["actions"][0]["block_id"] = json!(format!("inc_actions:{value}"));
        form_encode(&[("payload", &p.to_string())])
    }

    /// Presses a card button, signed; asserts 200.
    pub async fn press(&self, user: &str, action_id: &str, incident: u64, response_url: &str) {
        let body = self.press_body(user, action_id, incident, response_url);
        let a = post_signed(&self.d, "/chat/slack/interactions", &body).await;
        assert_eq!(a.status, 200, "{action_id} by {user}: {}", a.text);
    }
}
