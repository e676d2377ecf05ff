//! The slash commands incidentd registers with Discord (`incidentd discord
//! register-commands`). They are the shared chat grammar written as Discord subcommands
//! and options: [`super::command_text`] reads an invocation back into the same words a
//! Slack user types, so each subcommand here must exist in `chat::grammar`, which the
//! tests check. `/approve` is also there as Slack has it, one line of free text in the
//! same grammar (`APR-12 looks good`, `reject APR-12 too risky`, `list`), besides the
//! structured `/approval approve|reject|list`.

use serde_json::{Value, json};

/// Option types.
const SUB_COMMAND: u8 = 1;
const STRING: u8 = 3;
const USER: u8 = 6;

/// A string option.
fn text(name: &str, description: &str, required: bool) -> Value {
    json!({"type": STRING, "name": name, "description": description, "required": required, "max_length": 500})
}

/// A string option with fixed choices.
fn choice(name: &str, description: &str, values: &[&str]) -> Value {
    let choices: Vec<Value> = values
        .iter()
        .map(|v| json!({"name": v, "value": v}))
        .collect();
    json!({"type": STRING, "name": name, "description": description, "required": false, "choices": choices})
}

/// A subcommand.
fn sub(name: &str, description: &str, options: Vec<Value>) -> Value {
    json!({"type": SUB_COMMAND, "name": name, "description": description, "options": options})
}

/// An incident id option.
fn incident() -> Value {
    text("id", "Incident id: INC-42, #42 or 42", true)
}

/// The free-text option of `/approve`: its words go to the grammar as they are.
pub const FREE_TEXT: &str = "command";

/// A top-level command usable in servers.
fn command(name: &str, description: &str, subs: Vec<Value>) -> Value {
    json!({"name": name, "type": 1, "description": description, "contexts": [0],
           "integration_types": [0], "options": subs})
}

/// Every command, as the body of Discord's bulk overwrite.
pub fn all() -> Value {
    let levels = ["high", "medium", "low"];
    json!([
        command(
            "incident",
            "Work with incidents",
            vec![
                sub(
                    "new",
                    "Open an incident",
                    vec![
                        text("title", "Short title", true),
                        choice("impact", "Impact (default high)", &levels),
                        choice("urgency", "Urgency (default high)", &levels),
                        text("service", "Service name", false),
                    ]
                ),
                sub(
                    "ack",
                    "Acknowledge an incident",
                    vec![
                        incident(),
                        text("note", "What you are doing about it", false)
                    ]
                ),
                sub(
                    "resolve",
                    "Resolve an incident",
                    vec![incident(), text("note", "Why", false)]
                ),
                sub(
                    "assign",
                    "Assign an incident",
                    vec![
                        incident(),
                        json!({"type": USER, "name": "user", "description": "Whom", "required": true}),
                    ]
                ),
                sub("take", "Assign an incident to yourself", vec![incident()]),
                sub("status", "Show an incident", vec![incident()]),
                sub(
                    "list",
                    "List incidents",
                    vec![choice(
                        "filter",
                        "Which (default open)",
                        &["open", "mine", "p1", "p2", "p3", "p4", "p5"]
                    )]
                ),
                sub(
                    "comment",
                    "Comment on an incident",
                    vec![incident(), text("text", "The comment", true)]
                ),
                sub(
                    "escalate",
                    "Page the next escalation level",
                    vec![incident()]
                ),
                sub(
                    "snooze",
                    "Snooze an acknowledged incident: it pages again after that long",
                    vec![
                        incident(),
                        text(
                            "length",
                            "For how long: 30m, 2h, 1h30m, 1d (a week at most)",
                            true
                        ),
                    ]
                ),
                sub(
                    "merge",
                    "Merge an incident into another: its alerts go there, it is resolved",
                    vec![
                        text("incident", "The incident that goes: INC-43 or 43", true),
                        text("into", "The incident that stays: INC-42 or 42", true),
                    ]
                ),
                sub(
                    "oncall",
                    "Who is on call",
                    vec![text("service", "Service name", false)]
                ),
                sub("help", "How to use /incident", vec![]),
            ]
        ),
        command(
            "problem",
            "Work with problems",
            vec![
                sub(
                    "new",
                    "Record a problem",
                    vec![text("title", "Short title", true)]
                ),
                sub(
                    "link",
                    "Link an incident to a problem",
                    vec![
                        text("problem", "Problem id: PRB-7 or 7", true),
                        text("incident", "Incident id: INC-42 or 42", true),
                    ]
                ),
                sub(
                    "rca",
                    "Record a root cause",
                    vec![
                        text("problem", "Problem id: PRB-7 or 7", true),
                        text("text", "The root cause", true),
                    ]
                ),
            ]
        ),
        command(
            "approve",
            "Approve, reject or list approval requests, as in Slack",
            vec![text(
                FREE_TEXT,
                "APR-12 [comment] | reject APR-12 [reason] | list (empty: help)",
                false
            )]
        ),
        command(
            "approval",
            "Decide on approval requests",
            vec![
                sub(
                    "approve",
                    "Approve a request",
                    vec![
                        text("id", "Request id: APR-12 or 12", true),
                        text("comment", "Comment", false),
                    ]
                ),
                sub(
                    "reject",
                    "Reject a request",
                    vec![
                        text("id", "Request id: APR-12 or 12", true),
                        text("reason", "Why", false),
                    ]
                ),
                sub("list", "Requests waiting for you", vec![]),
            ]
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::grammar::{self, Command};

    /// A Discord invocation of `command sub` with each option filled with `value`.
    fn invocation(command: &Value, sub: &Value, value: &str) -> Value {
        let options: Vec<Value> = sub["options"]
            .as_array()
            .expect("options")
            .iter()
            .map(|o| {
                let v = match (o["type"].as_u64(), o["name"].as_str()) {
                    (Some(6), _) => "1344444444444444444".to_owned(),
                    (_, Some("impact" | "urgency")) => "low".to_owned(),
                    (_, Some("filter")) => "mine".to_owned(),
                    (_, Some("length")) => "30m".to_owned(),
                    _ => value.to_owned(),
                };
                json!({"type": o["type"], "name": o["name"], "value": v})
            })
            .collect();
        json!({"name": command["name"], "options": [{"type": 1, "name": sub["name"], "options": options}]})
    }

    #[test]
    fn every_registered_subcommand_parses_in_the_shared_grammar() {
        let all = all();
        let commands = all.as_array().expect("list");
        assert_eq!(commands.len(), 4);
        for c in commands.iter().filter(|c| c["name"] != "approve") {
            assert!(c["description"].as_str().is_some_and(|d| d.len() <= 100));
            for s in c["options"].as_array().expect("subcommands") {
                let data = invocation(c, s, "7");
                let text = super::super::command_text(&data);
                let parsed = match c["name"].as_str() {
                    Some("incident") => grammar::parse_incident(&text, None),
                    Some("problem") => grammar::parse_problem(&text),
                    Some("approval") => grammar::parse_approve(&text),
                    other => panic!("unexpected command {other:?}"),
                };
                let parsed = parsed.unwrap_or_else(|e| panic!("{text}: {}", e.message));
                if s["name"] != "help" {
                    assert!(
                        !matches!(parsed, Command::Help | Command::ApproveHelp),
                        "{text} parsed as help"
                    );
                }
            }
        }
    }

    #[test]
    fn user_options_become_mentions() {
        let all = all();
        let incident = &all[0];
        let assign = incident["options"]
            .as_array()
            .expect("subs")
            .iter()
            .find(|s| s["name"] == "assign")
            .expect("assign");
        let text = super::super::command_text(&invocation(incident, assign, "INC-3"));
        assert_eq!(text, "assign INC-3 <@1344444444444444444>");
        assert!(matches!(
            grammar::parse_incident(&text, None),
            Ok(Command::Assign { id: 3, .. })
        ));
    }

    /// `/approve` carries Slack's words through unchanged.
    #[test]
    fn approve_reads_its_free_text_as_slack_does() {
        let all = all();
        let approve = all
            .as_array()
            .expect("list")
            .iter()
            .find(|c| c["name"] == "approve")
            .expect("/approve");
        assert_eq!(approve["options"][0]["name"], FREE_TEXT);
        assert_eq!(approve["options"][0]["type"], STRING);
        let typed = |words: &str| {
            let data = json!({"name": "approve", "options": [{"type": STRING, "name": FREE_TEXT, "value": words}]});
            grammar::parse_approve(&super::super::command_text(&data))
        };
        assert!(matches!(
            typed("APR-12 looks \"good\" to me"),
            Ok(Command::Approve { id: 12, comment: Some(ref c) }) if c.contains("looks") && c.contains("me")
        ));
        assert!(matches!(
            typed("reject APR-12 too risky"),
            Ok(Command::Reject { id: 12, reason: Some(ref r) }) if r == "too risky"
        ));
        assert!(matches!(typed("list"), Ok(Command::ApprovalsWaiting)));
        let bare = json!({"name": "approve"});
        assert!(matches!(
            grammar::parse_approve(&super::super::command_text(&bare)),
            Ok(Command::ApproveHelp)
        ));
    }
}
