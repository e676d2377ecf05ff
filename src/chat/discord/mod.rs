//! The Discord adapter: `POST /chat/discord/interactions` verifies Discord's Ed25519
//! signature, answers PINGs, turns slash commands (`/incident`, `/problem`, `/approve`
//! with a subcommand and options) and button presses (`inc:<action>:<INC-id>`) into the
//! chat-neutral [`Command`]s that Slack also runs, and renders the answer as an
//! interaction response (ephemeral unless it shows a new incident).
//!
//! A Discord user acts as the incidentd user with a `discord` contact method whose
//! address is their Discord user id; anyone else may only read.

pub mod api;
pub mod definitions;
pub mod render;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};

use super::commands::{self, Caller, Directory};
use super::grammar::{self, Command};
use super::replay::SeenSignatures;
use super::views::{ApprovalAction, CardAction, Reply};
use crate::api::extract::RawBody;
use crate::api::problem::Problem;
use crate::app::App;
use crate::domain::incident::parse_incident_ref;
use crate::domain::notification::ChannelKind;
use crate::notify::BoxFuture;

/// Discord gives an interaction 3 seconds; past this the caller is told it is still running.
const INLINE_BUDGET: Duration = Duration::from_millis(2500);

/// The Discord adapter's state.
pub struct Discord {
    app: Arc<App>,
    key: VerifyingKey,
    /// Edits the answer of a command that outlived Discord's 3 seconds.
    api: api::DiscordApi,
    /// Signed interactions already run (a replay is refused).
    seen: SeenSignatures,
}

/// The route, when Discord interactions are configured (the key was checked with the
/// config).
pub fn router(app: Arc<App>) -> Option<Router> {
    let config = app.config.discord.as_ref()?;
    let key = verify::public_key(&config.public_key).ok()?;
    let http = crate::notify::http_client(Duration::from_secs(app.config.notify.timeout_secs))
        .map_err(|e| tracing::error!(error = %e, "Discord follow-ups are off"))
        .ok()?;
    let api = api::DiscordApi::new(http, &config.api_base_url, &config.bot_token);
    let state = Arc::new(Discord {
        app,
        key,
        api,
        seen: SeenSignatures::new(verify::WINDOW_SECS),
    });
    Some(
        Router::new()
            .route("/chat/discord/interactions", post(interactions_endpoint))
            .with_state(state),
    )
}

/// Resolves Discord users through `discord` contact methods.
struct DiscordDirectory<'a>(&'a Discord);

impl Directory for DiscordDirectory<'_> {
    fn user_id<'a>(&'a self, chat_user: &'a str) -> BoxFuture<'a, Option<u64>> {
        Box::pin(async move { self.0.platform_user(chat_user).map(|u| u.id) })
    }
}

impl Discord {
    fn platform_user(&self, discord_user: &str) -> Option<crate::domain::identity::User> {
        let r = self.app.store.read().ok()?;
        crate::app::chat::linked_user(&r, ChannelKind::Discord, discord_user)
            .ok()
            .flatten()
    }

    fn caller(&self, discord_user: &str) -> Caller {
        let actor = self.platform_user(discord_user).and_then(|u| {
            let r = self.app.store.read().ok()?;
            crate::app::chat::actor(&r, &u).ok()
        });
        Caller {
            actor,
            chat_user: discord_user.to_owned(),
            platform: "Discord",
        }
    }
}

/// An interaction response carrying `reply` (type 4).
fn message(reply: &Reply) -> Value {
    json!({"type": 4, "data": render::reply_data(reply)})
}

fn private(text: impl Into<String>) -> Value {
    message(&Reply::private(text))
}

/// The text a slash command's subcommand and options stand for, in the shared grammar:
/// `/incident ack id:INC-7` reads as `ack INC-7`; `impact`, `urgency` and `service` become
/// `key=value` (but `oncall service:api` reads as `oncall api`); values with spaces are
/// quoted.
pub fn command_text(data: &Value) -> String {
    let mut words = Vec::new();
    let push_options = |sub: &str, options: &[Value], words: &mut Vec<String>| {
        // A note, comment, reason or root cause goes last and as typed: the grammar
        // reads the rest of the line as that text, quotes and spacing included.
        let mut free = None;
        for o in options {
            let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
            if let Some(Value::String(s)) = o.get("value")
                && matches!(name, "note" | "text" | "comment" | "reason")
            {
                free = Some(s.clone());
                continue;
            }
            let value = match o.get("value") {
                // `/approve`'s free text is already in the grammar's words.
                Some(Value::String(s)) if name == definitions::FREE_TEXT => {
                    words.push(s.clone());
                    continue;
                }
                // A user option carries the id; the grammar reads users as mentions.
                Some(Value::String(s)) if o.get("type").and_then(Value::as_u64) == Some(6) => {
                    format!("<@{s}>")
                }
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => continue,
            };
            let value = if value.chars().any(char::is_whitespace) {
                format!("\"{}\"", value.replace('"', "'"))
            } else {
                value
            };
            match name {
                // `oncall` takes the service as its one argument, not as `service=`.
                "service" if sub == "oncall" => words.push(value),
                "impact" | "urgency" | "service" => words.push(format!("{name}={value}")),
                // `/incident merge incident:43 into:42` reads as `merge 43 into 42`.
                "into" => {
                    words.push("into".to_owned());
                    words.push(value);
                }
                _ => words.push(value),
            }
        }
        words.extend(free);
    };
    let options = data
        .get("options")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match options.first() {
        // A subcommand (type 1) carries its own options.
        Some(sub) if sub.get("type").and_then(Value::as_u64) == Some(1) => {
            let name = sub.get("name").and_then(Value::as_str).unwrap_or_default();
            words.push(name.to_owned());
            let inner = sub
                .get("options")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            push_options(name, &inner, &mut words);
        }
        _ => push_options("", &options, &mut words),
    }
    words.join(" ")
}

/// The command a button's `custom_id` stands for: `inc:ack:INC-1042` on an incident card,
/// `apr:approve:APR-12` on an approval request.
pub fn button_command(custom_id: &str) -> Option<Command> {
    let mut parts = custom_id.splitn(3, ':');
    match parts.next()? {
        "inc" => {}
        "apr" => {
            let action = ApprovalAction::from_word(parts.next()?)?;
            return action.command(parts.next()?);
        }
        _ => return None,
    }
    let action = match parts.next()? {
        "ack" => CardAction::Acknowledge,
        "resolve" => CardAction::Resolve,
        "escalate" => CardAction::Escalate,
        "take" | "assign_me" => CardAction::AssignToMe,
        "snooze1h" => CardAction::SnoozeHour,
        _ => return None,
    };
    let id = parse_incident_ref(parts.next()?)?;
    Some(action.command(id))
}

/// What a command that failed inside incidentd answers.
const FAILED: &str = "Something went wrong inside incidentd; the error is in its log.";

/// The interaction a late answer replaces: its application and its token.
struct FollowUp {
    application_id: String,
    token: String,
}

/// Runs `command` for `caller` within Discord's time budget.
async fn answer(
    discord: &Arc<Discord>,
    caller: Caller,
    command: Command,
    follow_up: FollowUp,
) -> Value {
    let d = discord.clone();
    let task = tokio::spawn(async move {
        commands::execute(&d.app, &caller, command, &DiscordDirectory(&d)).await
    });
    answer_within(INLINE_BUDGET, task, discord.api.clone(), follow_up).await
}

/// Runs an approval button's decision. Decided: the request's message shows the outcome
/// instead of its buttons (type 7). Not decided: the buttons stay and only the presser is
/// told why.
async fn decide(discord: &Arc<Discord>, caller: Caller, command: Command, asked: &str) -> Value {
    let d = discord.clone();
    let task = tokio::spawn(async move {
        commands::run_worded(&d.app, &caller, command, &DiscordDirectory(&d)).await
    });
    match tokio::time::timeout(INLINE_BUDGET, task).await {
        Ok(Ok(Ok(reply))) => {
            let mut data = render::text(&format!("{asked}\n{}", reply.text));
            data["components"] = json!([]);
            json!({"type": 7, "data": data})
        }
        Ok(Ok(Err(why))) => private(why),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a Discord approval button failed");
            private(FAILED)
        }
        Err(_) => private("Still deciding; GET /api/v1/approvals shows the outcome."),
    }
}

/// The interaction answer for `task`: its reply if it finishes within `budget`; else
/// "deferred" (Discord shows that the bot is thinking), and the reply replaces that
/// answer when it is ready.
async fn answer_within(
    budget: Duration,
    mut task: tokio::task::JoinHandle<Reply>,
    api: api::DiscordApi,
    follow_up: FollowUp,
) -> Value {
    match tokio::time::timeout(budget, &mut task).await {
        Ok(Ok(reply)) => message(&reply),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a Discord command failed");
            private(FAILED)
        }
        Err(_) => {
            tokio::spawn(async move {
                let data = match task.await {
                    Ok(reply) => render::reply_data(&reply),
                    Err(e) => {
                        tracing::error!(error = %e, "a Discord command failed");
                        render::text(FAILED)
                    }
                };
                if let Err(e) = api
                    .edit_original(&follow_up.application_id, &follow_up.token, &data)
                    .await
                {
                    tracing::warn!(error = %e, "could not send a late Discord answer");
                }
            });
            json!({"type": 5, "data": {"flags": render::EPHEMERAL}})
        }
    }
}

/// `POST /chat/discord/interactions`.
async fn interactions_endpoint(
    State(discord): State<Arc<Discord>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refused = |why: String| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            format!("Discord request refused: {why}"),
        )
        .into_response()
    };
    let now = discord.app.clock.now().timestamp();
    let (timestamp, signature) = (h("x-signature-timestamp"), h("x-signature-ed25519"));
    if let Err(e) = verify::verify(&discord.key, timestamp, signature, &body, now) {
        return refused(e.to_string());
    }
    if !discord.seen.first_time(signature, timestamp, now) {
        return refused("this signed request was already received".into());
    }
    let Ok(interaction) = serde_json::from_slice::<Value>(&body) else {
        return Problem::new(StatusCode::BAD_REQUEST, "the body is not JSON").into_response();
    };
    let user = interaction
        .pointer("/member/user/id")
        .or_else(|| interaction.pointer("/user/id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let field = |name: &str| {
        interaction
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let follow_up = FollowUp {
        application_id: field("application_id"),
        token: field("token"),
    };
    let reply = match interaction.get("type").and_then(Value::as_u64) {
        Some(1) => json!({"type": 1}),
        Some(2) => {
            let data = interaction.get("data").cloned().unwrap_or(Value::Null);
            let text = command_text(&data);
            let parsed = match data.get("name").and_then(Value::as_str) {
                Some("incident") => grammar::parse_incident(&text, None),
                Some("problem") => grammar::parse_problem(&text),
                Some("approval" | "approve") => grammar::parse_approve(&text),
                other => {
                    return axum::Json(private(format!(
                        "incidentd does not know the command /{}",
                        other.unwrap_or("?")
                    )))
                    .into_response();
                }
            };
            match parsed {
                Ok(command) => answer(&discord, discord.caller(&user), command, follow_up).await,
                Err(e) => private(format!("{}\nUsage:\n```{}```", e.message, e.usage)),
            }
        }
        Some(3) => {
            let custom = interaction
                .pointer("/data/custom_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match button_command(custom) {
                Some(command) if custom.starts_with("apr:") => {
                    let asked = interaction
                        .pointer("/message/content")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    decide(&discord, discord.caller(&user), command, asked).await
                }
                Some(command) => answer(&discord, discord.caller(&user), command, follow_up).await,
                None => private(format!("incidentd does not know the button '{custom}'")),
            }
        }
        _ => {
            return Problem::new(StatusCode::BAD_REQUEST, "unsupported interaction type")
                .into_response();
        }
    };
    axum::Json(reply).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_and_options_read_as_the_shared_grammar() {
        let data = json!({"name": "incident", "type": 1, "options": [{"name": "ack", "type": 1,
            "options": [{"name": "id", "type": 3, "value": "INC-1042"}]}]});
        assert_eq!(command_text(&data), "ack INC-1042");
        let data = json!({"name": "incident", "options": [{"name": "merge", "type": 1, "options": [
            {"name": "incident", "type": 3, "value": "INC-43"},
            {"name": "into", "type": 3, "value": "INC-42"}]}]});
        assert_eq!(command_text(&data), "merge INC-43 into INC-42");
        assert_eq!(
            grammar::parse_incident(&command_text(&data), None),
            Ok(Command::Merge {
                target: 42,
                sources: vec![43]
            })
        );
        let data = json!({"name": "incident", "options": [{"name": "new", "type": 1, "options": [
            {"name": "title", "type": 3, "value": "Checkout \"down\" in EU"},
            {"name": "impact", "type": 3, "value": "medium"},
            {"name": "service", "type": 3, "value": "checkout"}]}]});
        let text = command_text(&data);
        assert_eq!(
            text,
            "new \"Checkout 'down' in EU\" impact=medium service=checkout"
        );
        assert!(matches!(
            grammar::parse_incident(&text, None),
            Ok(Command::New { ref title, service: Some(ref s), .. }) if title == "Checkout 'down' in EU" && s == "checkout"
        ));
        // Free text goes last and as typed, whatever order the options came in.
        let data = json!({"name": "incident", "options": [{"name": "comment", "type": 1, "options": [
            {"name": "text", "type": 3, "value": "ran \"kubectl rollout undo\" --to-revision=3"},
            {"name": "id", "type": 3, "value": "INC-7"}]}]});
        assert_eq!(
            grammar::parse_incident(&command_text(&data), None),
            Ok(Command::Comment {
                id: 7,
                text: "ran \"kubectl rollout undo\" --to-revision=3".into()
            })
        );
        for (service, text) in [
            ("payments", "oncall payments"),
            ("payments api", "oncall \"payments api\""),
        ] {
            let data = json!({"name": "incident", "options": [{"name": "oncall", "type": 1,
                "options": [{"name": "service", "type": 3, "value": service}]}]});
            assert_eq!(command_text(&data), text);
            assert_eq!(
                grammar::parse_incident(text, None),
                Ok(Command::Oncall {
                    service: Some(service.to_owned())
                })
            );
        }
        let data =
            json!({"name": "approve", "options": [{"name": "id", "type": 3, "value": "APR-3"}]});
        assert_eq!(command_text(&data), "APR-3");
        assert_eq!(command_text(&json!({"name": "incident"})), "");
    }

    #[tokio::test]
    async fn a_slow_command_is_deferred_and_its_answer_follows() {
        use std::sync::Mutex;
        let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let record = seen.clone();
        let fake = Router::new().route(
            "/webhooks/{app}/{token}/messages/@original",
            axum::routing::patch(
                move |axum::extract::Path((app, token)): axum::extract::Path<(String, String)>,
                      axum::Json(body): axum::Json<Value>| async move {
                    record
                        .lock()
                        .expect("log")
                        .push((format!("{app}/{token}"), body));
                    axum::Json(json!({"id": "1"}))
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, fake).await });
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = api::DiscordApi::new(reqwest::Client::new(), &base, "");
        let follow_up = || FollowUp {
            application_id: "77".into(),
            token: "tok".into(),
        };

        let quick = tokio::spawn(async { Reply::public("done") });
        let v = answer_within(Duration::from_secs(5), quick, api.clone(), follow_up()).await;
        assert_eq!(v["type"], 4);
        assert_eq!(v["data"]["content"], "done");

        let slow = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Reply::private("late but done")
        });
        let v = answer_within(Duration::from_millis(20), slow, api, follow_up()).await;
        assert_eq!(v, json!({"type": 5, "data": {"flags": 64}}));
        for _ in 0..200 {
            if !seen.lock().expect("log").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = seen.lock().expect("log").clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, "77/tok");
        assert_eq!(seen[0].1["content"], "late but done");
        assert_eq!(seen[0].1["flags"], 64);
    }

    #[test]
    fn buttons_name_an_action_and_an_incident() {
        assert_eq!(
            button_command("inc:ack:INC-1042"),
            Some(Command::Ack {
                id: 1042,
                note: None,
                reopens: false
            })
        );
        assert_eq!(button_command("inc:take:7"), Some(Command::Take { id: 7 }));
        assert_eq!(
            button_command("inc:snooze1h:INC-7"),
            Some(Command::Snooze { id: 7, minutes: 60 })
        );
        assert_eq!(button_command("inc:explode:7"), None);
        assert_eq!(button_command("prb:ack:7"), None);
        assert_eq!(button_command("inc:ack:x"), None);
        assert_eq!(
            button_command("apr:approve:APR-12"),
            Some(Command::Approve {
                id: 12,
                comment: None
            })
        );
        assert_eq!(
            button_command("apr:reject:12"),
            Some(Command::Reject {
                id: 12,
                reason: None
            })
        );
        assert_eq!(button_command("apr:maybe:APR-12"), None);
        assert_eq!(button_command("apr:approve:INC-12"), None);
    }
}
