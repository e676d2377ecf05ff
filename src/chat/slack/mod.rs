//! The Slack adapter: verifies and parses slash commands, button presses, modal
//! submissions and mentions, resolves the Slack user to a platform user, runs the
//! chat-neutral command, and renders the answer in Block Kit.
//!
//! Slack wants an answer within 3 seconds. Commands answer inline when they finish in
//! time; otherwise the caller sees "working on it" and the result arrives through the
//! `response_url`. Buttons answer at once; the card itself is updated by the outbox when
//! the incident changes, whoever changed it.

pub mod api;
pub mod blocks;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use self::api::SlackApi;
use super::commands::{self, Caller, Directory};
use super::grammar::{self, Command};
use super::replay::SeenSignatures;
use super::views::{CardAction, Reply};
use crate::api::extract::{RawBody, form_pairs};
use crate::api::problem::Problem;
use crate::app::{App, AppError};
use crate::config::SlackConfig;
use crate::domain::incident::parse_incident_ref;
use crate::domain::notification::ChannelKind;
use crate::notify::BoxFuture;
use crate::store::keys::Key;
use crate::store::{access, tables};

/// How long a command may run before Slack gets "working on it" instead of the answer.
const INLINE_BUDGET: Duration = Duration::from_millis(2500);

/// The Slack adapter's state.
pub struct Slack {
    app: Arc<App>,
    api: SlackApi,
    config: SlackConfig,
    /// Signed requests already run (a replay is refused).
    seen: SeenSignatures,
}

/// The routes under `/chat/slack`, when Slack is configured.
pub fn router(app: Arc<App>) -> Option<Router> {
    let config = app.config.slack.clone()?;
    let http =
        crate::notify::http_client(Duration::from_secs(app.config.notify.timeout_secs)).ok()?;
    let api = SlackApi::new(http, &config.api_base_url, &config.bot_token);
    let state = Arc::new(Slack {
        app,
        api,
        config,
        seen: SeenSignatures::new(verify::MAX_SKEW_SECS),
    });
    Some(
        Router::new()
            .route("/chat/slack/commands", post(commands_endpoint))
            .route("/chat/slack/interactions", post(interactions_endpoint))
            .route("/chat/slack/events", post(events_endpoint))
            .with_state(state),
    )
}

/// Whether a verified request is new, or one already received.
enum Receipt {
    New,
    Repeat,
}

/// The 401 answer to a request that is not Slack's (problem+json).
fn refused(why: String) -> Box<Problem> {
    Box::new(Problem::new(
        StatusCode::UNAUTHORIZED,
        format!("Slack request refused: {why}"),
    ))
}

/// Resolves Slack users: an explicit link, a remembered one, or by e-mail via `users.info`.
struct SlackDirectory<'a>(&'a Slack);

impl Directory for SlackDirectory<'_> {
    fn user_id<'a>(&'a self, chat_user: &'a str) -> BoxFuture<'a, Option<u64>> {
        Box::pin(async move { self.0.platform_user(chat_user).await.map(|u| u.id) })
    }
}

impl Slack {
    /// Checks Slack's signature and whether the request was received before; the error is
    /// the 401 answer (problem+json).
    fn verified(&self, headers: &HeaderMap, body: &[u8]) -> Result<Receipt, Box<Problem>> {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let now = self.app.clock.now().timestamp();
        let (timestamp, signature) = (h("x-slack-request-timestamp"), h("x-slack-signature"));
        verify::verify(&self.config.signing_secret, timestamp, signature, body, now)
            .map_err(|e| refused(e.to_string()))?;
        Ok(if self.seen.first_time(signature, timestamp, now) {
            Receipt::New
        } else {
            Receipt::Repeat
        })
    }

    /// [`Slack::verified`] for a command or an action, which must not run twice: a repeat
    /// (Slack retries neither) is a replay, refused.
    fn verified_new(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Box<Problem>> {
        match self.verified(headers, body)? {
            Receipt::New => Ok(()),
            Receipt::Repeat => Err(refused("this signed request was already received".into())),
        }
    }

    async fn platform_user(&self, slack_user: &str) -> Option<crate::domain::identity::User> {
        let r = self.app.store.read().ok()?;
        if let Ok(Some(u)) = crate::app::chat::linked_user(&r, ChannelKind::Slack, slack_user) {
            return Some(u);
        }
        drop(r);
        let email = match self.api.user_email(slack_user).await {
            Ok(e) => e?,
            Err(e) => {
                tracing::warn!(error = %e, user = slack_user, "cannot look up a Slack user");
                return None;
            }
        };
        crate::app::chat::link_by_email(&self.app, ChannelKind::Slack, slack_user, &email)
            .await
            .ok()
            .flatten()
    }

    async fn caller(&self, slack_user: &str) -> Caller {
        let actor = match self.platform_user(slack_user).await {
            Some(u) => self
                .app
                .store
                .read()
                .ok()
                .and_then(|r| crate::app::chat::actor(&r, &u).ok()),
            None => None,
        };
        Caller {
            actor,
            chat_user: slack_user.to_owned(),
            platform: "Slack",
        }
    }

    /// Tells only the person who pressed a button, through its `response_url`, what
    /// happened or why nothing did; the message and its buttons stay as they are (a card
    /// is updated by the outbox).
    async fn tell_presser(&self, response_url: &str, text: &str) {
        if response_url.is_empty() {
            return;
        }
        let answer = json!({"response_type": "ephemeral", "replace_original": false, "text": blocks::escape(text)});
        if let Err(e) = self.api.respond(response_url, &answer).await {
            tracing::warn!(error = %e, "cannot answer a button press");
        }
    }

    /// The incident whose card starts the thread `ts` in `channel`, if any.
    fn thread_incident(&self, channel: &str, ts: &str) -> Option<u64> {
        let r = self.app.store.read().ok()?;
        access::get_id(&r, tables::CHAT_THREADS, &thread_key(channel, ts))
            .ok()
            .flatten()
    }
}

/// The key of [`tables::CHAT_THREADS`] for a Slack message.
pub fn thread_key(channel: &str, ts: &str) -> Vec<u8> {
    Key::new()
        .u8(ChannelKind::Slack.code())
        .str(channel)
        .str(ts)
        .into_bytes()
}

fn usage_reply(e: &grammar::UsageError) -> Value {
    json!({"response_type": "ephemeral", "text": format!("{}\nUsage:\n```{}```", blocks::escape(&e.message), blocks::escape(e.usage))})
}

/// `POST /chat/slack/commands`: `/incident ...` and `/problem ...`.
async fn commands_endpoint(
    State(slack): State<Arc<Slack>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    if let Err(refused) = slack.verified_new(&headers, &body) {
        return refused.into_response();
    }
    let form = form_pairs(&body);
    let field = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (command, text, user, channel) = (
        field("command"),
        blocks::unescape(&field("text")),
        field("user_id"),
        field("channel_id"),
    );
    let (response_url, trigger_id) = (field("response_url"), field("trigger_id"));
    let parsed = match command.as_str() {
        "/incident" => grammar::parse_incident(&text, None),
        "/problem" => grammar::parse_problem(&text),
        "/approve" => grammar::parse_approve(&text),
        other => return axum::Json(json!({"response_type": "ephemeral", "text": format!("incidentd does not know the command {other}")})).into_response(),
    };
    if command == "/incident" && text.trim().eq_ignore_ascii_case("new") && !trigger_id.is_empty() {
        // `/incident new` alone opens the form.
        let s = slack.clone();
        tokio::spawn(async move {
            if let Err(e) = s
                .api
                .views_open(&trigger_id, &blocks::new_incident_modal(&channel))
                .await
            {
                tracing::warn!(error = %e, "cannot open the new-incident modal");
            }
        });
        return StatusCode::OK.into_response();
    }
    let cmd = match parsed {
        Ok(c) => c,
        Err(e) => return axum::Json(usage_reply(&e)).into_response(),
    };
    let s = slack.clone();
    let mut work = tokio::spawn(async move {
        let caller = s.caller(&user).await;
        commands::execute(&s.app, &caller, cmd, &SlackDirectory(&s)).await
    });
    match tokio::time::timeout(INLINE_BUDGET, &mut work).await {
        Ok(Ok(reply)) => axum::Json(blocks::reply(&reply)).into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "slash command task failed");
            axum::Json(json!({"response_type": "ephemeral", "text": "Something went wrong inside incidentd."})).into_response()
        }
        Err(_) => {
            let s = slack.clone();
            tokio::spawn(async move {
                if let Ok(reply) = work.await
                    && !response_url.is_empty()
                    && let Err(e) = s.api.respond(&response_url, &blocks::reply(&reply)).await
                {
                    tracing::warn!(error = %e, "cannot answer through response_url");
                }
            });
            axum::Json(json!({"response_type": "ephemeral", "text": "Working on it…"}))
                .into_response()
        }
    }
}

/// The decision an approval button (`approval.approve` / `approval.reject`, value
/// `APR-12`) stands for.
fn approval_button(action: &Value) -> Option<Command> {
    let word = action
        .get("action_id")
        .and_then(Value::as_str)?
        .strip_prefix("approval.")?;
    let number = action.get("value").and_then(Value::as_str)?;
    crate::chat::views::ApprovalAction::from_word(word)?.command(number)
}

/// Runs a card button for `caller` on incident `id`: the same command the button's words
/// would run.
async fn press(
    slack: &Slack,
    caller: &Caller,
    action: CardAction,
    id: u64,
) -> Result<Reply, AppError> {
    if caller.actor.is_none() {
        return Err(AppError::Refused(commands::unlinked_message(
            &slack.app, caller,
        )));
    }
    commands::run(
        &slack.app,
        caller,
        action.command(id),
        &SlackDirectory(slack),
    )
    .await
}

/// `POST /chat/slack/interactions`: buttons and the new-incident modal.
async fn interactions_endpoint(
    State(slack): State<Arc<Slack>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    if let Err(refused) = slack.verified_new(&headers, &body) {
        return refused.into_response();
    }
    let form = form_pairs(&body);
    let Some(payload) = form
        .iter()
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str::<Value>(v).ok())
    else {
        return Problem::new(StatusCode::BAD_REQUEST, "no JSON payload").into_response();
    };
    let user = payload
        .pointer("/user/id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match payload.get("type").and_then(Value::as_str) {
        Some("block_actions") => {
            let Some(action) = payload.pointer("/actions/0") else {
                return StatusCode::OK.into_response();
            };
            if let Some(command) = approval_button(action) {
                let s = slack.clone();
                let response_url = payload
                    .get("response_url")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let asked = payload
                    .pointer("/message/text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                tokio::spawn(async move {
                    let caller = s.caller(&user).await;
                    let answer =
                        match commands::run_worded(&s.app, &caller, command, &SlackDirectory(&s))
                            .await
                        {
                            // The request's message shows the outcome instead of the buttons.
                            Ok(reply) => blocks::decided(&blocks::unescape(&asked), &reply.text),
                            // Nothing was decided: the buttons stay, the presser is told why.
                            Err(why) => return s.tell_presser(&response_url, &why).await,
                        };
                    if !response_url.is_empty()
                        && let Err(e) = s.api.respond(&response_url, &answer).await
                    {
                        tracing::warn!(error = %e, "cannot answer an approval button");
                    }
                });
                return StatusCode::OK.into_response();
            }
            let kind = action
                .get("action_id")
                .and_then(Value::as_str)
                .and_then(CardAction::from_id);
            let id = action
                .get("value")
                .and_then(Value::as_str)
                .and_then(parse_incident_ref);
            let response_url = payload
                .get("response_url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let s = slack.clone();
            match (kind, id) {
                (Some(kind), Some(id)) => {
                    tokio::spawn(async move {
                        let caller = s.caller(&user).await;
                        // Either way the presser hears what happened (as on Discord): a
                        // press whose card looks the same after it (Escalate) says so.
                        let told = match press(&s, &caller, kind, id).await {
                            Ok(reply) => reply.text,
                            Err(e) => commands::explain(&e),
                        };
                        s.tell_presser(&response_url, &told).await;
                    });
                }
                // A link button only opens its URL; Slack reports the click all the same.
                _ if action.get("url").is_some() => {}
                // A button of a message written by another version, or a forged value: the
                // presser learns that nothing happened instead of waiting for it.
                _ => {
                    let button = action
                        .get("action_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .chars()
                        .take(64)
                        .collect::<String>();
                    tracing::info!(button, "unknown Slack button pressed");
                    tokio::spawn(async move {
                        let text = format!(
                            "incidentd does not know the button `{button}` (is the message older than this version?). Nothing was changed; `/incident help` lists what you can do."
                        );
                        s.tell_presser(&response_url, &text).await;
                    });
                }
            }
            StatusCode::OK.into_response()
        }
        Some("view_submission") => {
            let values = payload
                .pointer("/view/state/values")
                .cloned()
                .unwrap_or(Value::Null);
            let get = |block: &str| -> Option<String> {
                let v = values.get(block)?.get("value")?;
                v.get("value")
                    .and_then(Value::as_str)
                    .or_else(|| v.pointer("/selected_option/value").and_then(Value::as_str))
                    .map(str::to_owned)
            };
            let title = get("title").unwrap_or_default();
            if title.trim().is_empty() {
                return axum::Json(
                    json!({"response_action": "errors", "errors": {"title": "A title is needed"}}),
                )
                .into_response();
            }
            let impact = get("impact")
                .and_then(|v| v.parse().ok())
                .unwrap_or(crate::domain::priority::Level::High);
            let urgency = get("urgency")
                .and_then(|v| v.parse().ok())
                .unwrap_or(crate::domain::priority::Level::High);
            let service_name = get("service").filter(|s| !s.trim().is_empty());
            let description = get("description");
            let (s, asker) = (slack.clone(), user.clone());
            // Ok: what to tell the asker; Err: (the form's field at fault, why).
            let mut work = tokio::spawn(async move {
                let caller = s.caller(&user).await;
                if caller.actor.is_none() {
                    return Err(("title", commands::unlinked_message(&s.app, &caller)));
                }
                let command = Command::New {
                    title,
                    impact,
                    urgency,
                    service: service_name,
                    description,
                };
                commands::run(&s.app, &caller, command, &SlackDirectory(&s))
                    .await
                    .map(|reply| reply.text)
                    .map_err(|e| {
                        let field = match &e {
                            AppError::NotFound { kind, .. } if *kind == "service" => "service",
                            _ => "title",
                        };
                        (field, commands::explain(&e))
                    })
            });
            match tokio::time::timeout(INLINE_BUDGET, &mut work).await {
                Ok(Ok(Err((field, message)))) => {
                    axum::Json(json!({"response_action": "errors", "errors": {field: message}}))
                        .into_response()
                }
                Ok(_) => axum::Json(json!({"response_action": "clear"})).into_response(),
                // Slack closes a form it waits for too long on: the outcome reaches the
                // asker as a direct message once the work is done.
                Err(_) => {
                    let s = slack.clone();
                    tokio::spawn(async move {
                        let text = match work.await {
                            Ok(Ok(opened)) => opened,
                            Ok(Err((_, why))) => format!("The incident was not opened: {why}"),
                            Err(_) => "The incident may not have been opened; `/incident list` shows the open ones.".to_owned(),
                        };
                        let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": blocks::escape(&text)}}]);
                        if let Err(e) = s.api.post_message(&asker, &text, &blocks, None).await {
                            tracing::warn!(error = %e, "cannot tell the asker how a slow form ended");
                        }
                    });
                    axum::Json(json!({"response_action": "clear"})).into_response()
                }
            }
        }
        _ => StatusCode::OK.into_response(),
    }
}

/// `POST /chat/slack/events`: URL verification and `@incidentd ...` mentions.
async fn events_endpoint(
    State(slack): State<Arc<Slack>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let receipt = match slack.verified(&headers, &body) {
        Ok(r) => r,
        Err(refused) => return refused.into_response(),
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return Problem::new(StatusCode::BAD_REQUEST, "malformed JSON").into_response();
    };
    match v.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            axum::Json(json!({"challenge": v.get("challenge").cloned().unwrap_or(Value::Null)}))
                .into_response()
        }
        Some("event_callback") => {
            // Slack retries events it thinks we missed; we answer at once, so a retry (or
            // the same signed event again) is a duplicate.
            if headers.contains_key("x-slack-retry-num") || matches!(receipt, Receipt::Repeat) {
                return StatusCode::OK.into_response();
            }
            let event = v.get("event").cloned().unwrap_or(Value::Null);
            if event.get("type").and_then(Value::as_str) == Some("app_mention") {
                let s = slack.clone();
                tokio::spawn(async move { s.mention(&event).await });
            }
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

impl Slack {
    /// Answers `@incidentd <command>` in the thread it was said in.
    async fn mention(&self, event: &Value) {
        let text = event
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let user = event
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let channel = event
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ts = event.get("ts").and_then(Value::as_str).unwrap_or_default();
        let thread = event.get("thread_ts").and_then(Value::as_str);
        // Drop the leading mention of the bot, and an optional "incident" word; the rest
        // is read as typed (free text keeps its spacing and quotes).
        let mut rest = text.trim_start();
        if rest.starts_with("<@")
            && let Some(end) = rest.find('>')
        {
            rest = rest[end + 1..].trim_start();
        }
        let first = rest.split_whitespace().next().unwrap_or_default();
        let first_word = first.trim_start_matches('/').to_lowercase();
        let is_problem = first_word == "problem";
        if matches!(first_word.as_str(), "incident" | "problem") {
            rest = rest[first.len()..].trim_start();
        }
        let rest = blocks::unescape(rest.trim_end());
        let context = thread.and_then(|t| self.thread_incident(channel, t));
        let parsed = if is_problem {
            grammar::parse_problem(&rest)
        } else {
            grammar::parse_incident(&rest, context)
        };
        let reply = match parsed {
            Ok(Command::Help) | Err(_) if rest.is_empty() => Reply::private(format!(
                "{}\n{}",
                grammar::INCIDENT_USAGE,
                grammar::PROBLEM_USAGE
            )),
            Ok(cmd) => {
                let caller = self.caller(user).await;
                commands::execute(&self.app, &caller, cmd, &SlackDirectory(self)).await
            }
            Err(e) => Reply::private(format!("{}\nUsage:\n{}", e.message, e.usage)),
        };
        let (text, blocks) = match &reply.card {
            Some(c) => {
                let (_, b) = blocks::card(c);
                (reply.text.clone(), b)
            }
            None => (
                reply.text.clone(),
                json!([{"type": "section", "text": {"type": "mrkdwn", "text": blocks::escape(&reply.text)}}]),
            ),
        };
        // Errors, "not linked" and other answers for the asker alone are ephemeral, as
        // for slash commands: the channel sees only what is meant for it.
        let thread_ts = thread.unwrap_or(ts);
        let sent = if reply.public {
            self.api
                .post_message(channel, &text, &blocks, Some(thread_ts))
                .await
                .map(drop)
        } else {
            self.api
                .post_ephemeral(channel, user, &text, &blocks, Some(thread_ts))
                .await
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "cannot answer a mention");
        }
    }
}
