//! Discord renderings of the chat-neutral views: an incident card as an embed with a row
//! of buttons (`custom_id` `inc:<action>:<INC-id>`, which [`super::button_command`] reads
//! back), and plain text messages. Discord's limits (2000 characters of content, 256 of
//! an embed title, 4096 of its description) are kept by cutting, never by failing.
//!
//! Every message sets `allowed_mentions` to nothing: an alert's text must not ping
//! `@everyone`.

use serde_json::{Value, json};

use crate::chat::views::{ApprovalAction, CardAction, IncidentCard, Reply};
use crate::domain::incident::IncidentStatus;

/// Content limit of a message.
const CONTENT_MAX: usize = 2000;
/// Limit of an embed title.
const TITLE_MAX: usize = 256;
/// Limit of an embed description.
const DESCRIPTION_MAX: usize = 4096;
/// Message flag: only the caller sees it.
pub const EPHEMERAL: u64 = 1 << 6;

/// Button styles.
const PRIMARY: u8 = 1;
const SECONDARY: u8 = 2;
const SUCCESS: u8 = 3;
const DANGER: u8 = 4;

/// Cuts `s` to at most `max` characters, marking the cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes Discord markdown in text that came from outside (alert titles, names).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The part of a button's `custom_id` naming the action.
fn action_word(a: CardAction) -> &'static str {
    match a {
        CardAction::Acknowledge => "ack",
        CardAction::Resolve => "resolve",
        CardAction::Escalate => "escalate",
        CardAction::AssignToMe => "take",
        CardAction::SnoozeHour => "snooze1h",
    }
}

/// The embed colour of a status: red while nobody responds, orange while somebody works
/// on it, green once resolved, grey when over.
fn colour(status: IncidentStatus) -> u32 {
    match status {
        IncidentStatus::New => 0xE7_4C_3C,
        IncidentStatus::Acknowledged | IncidentStatus::InProgress | IncidentStatus::OnHold => {
            0xE6_7E_22
        }
        IncidentStatus::Resolved => 0x2E_CC_71,
        IncidentStatus::Closed | IncidentStatus::Cancelled => 0x95_A5_A6,
    }
}

/// The embed and buttons of a card.
fn card_parts(c: &IncidentCard) -> (Value, Vec<Value>) {
    let mut lines = vec![
        format!("Service: {}", escape(&c.service)),
        format!("Impact / Urgency: {}", c.levels),
        format!("Status: **{}**", c.status_text()),
        format!(
            "Assignee: {}",
            c.assignee.as_deref().map(escape).unwrap_or("nobody".into())
        ),
        format!("Alerts: {} firing of {}", c.alerts.1, c.alerts.0),
    ];
    if let Some(rb) = &c.runbook {
        lines.push(format!("Runbook: {rb}"));
    }
    let embed = json!({
        "type": "rich",
        "title": cut(&format!("[{}] {} {}", c.priority, c.number, c.title), TITLE_MAX),
        "description": cut(&lines.join("\n"), DESCRIPTION_MAX),
        "color": colour(c.status),
        "url": c.url,
    });
    let buttons: Vec<Value> = c
        .actions
        .iter()
        .map(|a| {
            let style = match a {
                CardAction::Acknowledge => PRIMARY,
                CardAction::Resolve => DANGER,
                _ => SECONDARY,
            };
            json!({"type": 2, "style": style, "label": a.label(),
                   "custom_id": format!("inc:{}:{}", action_word(*a), c.number)})
        })
        .collect();
    let rows = if buttons.is_empty() {
        vec![]
    } else {
        vec![json!({"type": 1, "components": buttons})]
    };
    (embed, rows)
}

/// A channel message showing an incident card. `components` is always present, so that
/// editing a card whose incident was resolved removes its buttons.
pub fn card(c: &IncidentCard) -> Value {
    let (embed, rows) = card_parts(c);
    json!({"content": "", "embeds": [embed], "components": rows, "allowed_mentions": {"parse": []}})
}

/// A plain text message.
pub fn text(s: &str) -> Value {
    json!({"content": cut(s, CONTENT_MAX), "allowed_mentions": {"parse": []}})
}

/// A plain message; with `asks` (an approval request number such as `APR-12`), Approve
/// and Reject buttons (`custom_id` `apr:approve:APR-12` / `apr:reject:APR-12`).
pub fn message(s: &str, asks: Option<&str>) -> Value {
    let mut m = text(s);
    if let Some(number) = asks {
        let buttons: Vec<Value> = ApprovalAction::ALL
            .iter()
            .map(|a| {
                let style = match a {
                    ApprovalAction::Approve => SUCCESS,
                    ApprovalAction::Reject => DANGER,
                };
                json!({"type": 2, "style": style, "label": a.label(),
                       "custom_id": format!("apr:{}:{number}", a.word())})
            })
            .collect();
        m["components"] = json!([{"type": 1, "components": buttons}]);
    }
    m
}

/// The `data` of an interaction answer (or of an edited original answer) showing `reply`.
pub fn reply_data(reply: &Reply) -> Value {
    let mut data = text(&reply.text);
    if let Some(c) = &reply.card {
        let (embed, rows) = card_parts(c);
        data["embeds"] = json!([embed]);
        data["components"] = Value::Array(rows);
    }
    data["flags"] = json!(if reply.public { 0 } else { EPHEMERAL });
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: IncidentStatus, actions: Vec<CardAction>) -> IncidentCard {
        IncidentCard {
            id: 1042,
            number: "INC-1042".into(),
            title: "checkout-api 5xx ratio above 5% @everyone".into(),
            priority: "P1".into(),
            status,
            snoozed_until: None,
            levels: "High / High".into(),
            service: "checkout_api".into(),
            assignee: Some("alice".into()),
            alerts: (3, 2),
            runbook: Some("https://runbooks.example.com/checkout".into()),
            url: "http://localhost:8080/api/v1/incidents/1042".into(),
            actions,
        }
    }

    #[test]
    fn a_card_is_an_embed_with_buttons_the_interactions_endpoint_reads_back() {
        let m = card(&sample(
            IncidentStatus::New,
            vec![CardAction::Acknowledge, CardAction::AssignToMe],
        ));
        assert_eq!(
            m["embeds"][0]["title"],
            "[P1] INC-1042 checkout-api 5xx ratio above 5% @everyone"
        );
        let description = m["embeds"][0]["description"].as_str().expect("text");
        assert!(
            description.contains("Service: checkout\\_api"),
            "{description}"
        );
        assert!(
            description.contains("Alerts: 2 firing of 3"),
            "{description}"
        );
        assert_eq!(m["embeds"][0]["color"], 0xE74C3C);
        assert_eq!(m["allowed_mentions"]["parse"], json!([]));
        let ids: Vec<&str> = m["components"][0]["components"]
            .as_array()
            .expect("buttons")
            .iter()
            .map(|b| b["custom_id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, ["inc:ack:INC-1042", "inc:take:INC-1042"]);
        for id in ids {
            assert!(super::super::button_command(id).is_some(), "{id}");
        }
    }

    #[test]
    fn a_finished_incident_has_no_buttons_left() {
        let m = card(&sample(IncidentStatus::Resolved, vec![]));
        assert_eq!(m["components"], json!([]));
        assert_eq!(m["embeds"][0]["color"], 0x2ECC71);
    }

    #[test]
    fn limits_are_kept_by_cutting() {
        let mut c = sample(IncidentStatus::New, vec![]);
        c.title = "x".repeat(1000);
        let m = card(&c);
        assert_eq!(
            m["embeds"][0]["title"]
                .as_str()
                .expect("title")
                .chars()
                .count(),
            TITLE_MAX
        );
        let t = text(&"y".repeat(5000));
        assert_eq!(
            t["content"].as_str().expect("content").chars().count(),
            CONTENT_MAX
        );
    }

    #[test]
    fn replies_are_private_unless_public() {
        let private = reply_data(&Reply::private("nope"));
        assert_eq!(private["flags"], EPHEMERAL);
        let mut public = Reply::public("opened");
        public.card = Some(sample(IncidentStatus::New, vec![CardAction::Acknowledge]));
        let data = reply_data(&public);
        assert_eq!(data["flags"], 0);
        assert_eq!(data["content"], "opened");
        assert_eq!(
            data["components"][0]["components"][0]["custom_id"],
            "inc:ack:INC-1042"
        );
    }
}
