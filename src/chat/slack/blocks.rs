//! Block Kit rendering of the chat-neutral views.

use serde_json::{Value, json};

use crate::chat::views::{ApprovalAction, CardAction, IncidentCard, Reply};
use crate::domain::incident::IncidentStatus;

fn emoji(status: IncidentStatus) -> &'static str {
    match status {
        IncidentStatus::New => ":red_circle:",
        IncidentStatus::Acknowledged => ":large_orange_circle:",
        IncidentStatus::InProgress => ":large_blue_circle:",
        IncidentStatus::OnHold => ":double_vertical_bar:",
        IncidentStatus::Resolved => ":white_check_mark:",
        IncidentStatus::Closed => ":lock:",
        IncidentStatus::Cancelled => ":no_entry_sign:",
    }
}

/// Escapes `&`, `<` and `>` for mrkdwn.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Undoes Slack's escaping of typed text (`&amp;`, `&lt;`, `&gt;`: slash commands and
/// messages arrive so), so that "p99 > 2s & rising" is stored as typed, not as entities
/// that every other surface would show and the next card would escape again.
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `url` as the target of a mrkdwn link (`<url|label>`): an http(s) URL with the
/// characters that would end the link or start another (`|`, `<`, `>`, white space)
/// percent-encoded, so that a runbook annotation cannot smuggle in `<!channel>` or a
/// second link; `None` for anything but http(s).
pub fn link_target(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    for ch in url.chars() {
        match ch {
            '|' => out.push_str("%7C"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '&' => out.push_str("&amp;"),
            c if c.is_whitespace() || c.is_control() => {
                for b in c.to_string().bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// The card: (fallback text, blocks).
pub fn card(c: &IncidentCard) -> (String, Value) {
    let assignee = c
        .assignee
        .as_deref()
        .map(escape)
        .unwrap_or_else(|| "nobody".into());
    let header = format!(
        "{} *[{}] {}* {}\nService: `{}` | Impact / Urgency: {} | Status: *{}* | Assignee: {} | Alerts: {} firing of {}",
        emoji(c.status),
        c.priority,
        c.number,
        escape(&c.title),
        escape(&c.service),
        c.levels,
        c.status_text(),
        assignee,
        c.alerts.1,
        c.alerts.0
    );
    let mut links: Vec<String> = link_target(&c.url)
        .map(|url| format!("<{url}|Open {}>", c.number))
        .into_iter()
        .collect();
    if let Some(rb) = c.runbook.as_deref().and_then(link_target) {
        links.insert(0, format!(":book: <{rb}|Runbook>"));
    }
    let mut blocks = vec![
        json!({"type": "section", "block_id": "inc_header", "text": {"type": "mrkdwn", "text": header}}),
        json!({"type": "context", "block_id": "inc_links", "elements": [{"type": "mrkdwn", "text": links.join("  ·  ")}]}),
    ];
    if !c.actions.is_empty() {
        let buttons: Vec<Value> = c
            .actions
            .iter()
            .map(|a| {
                let mut b = json!({"type": "button", "action_id": a.id(), "text": {"type": "plain_text", "text": a.label(), "emoji": true}, "value": c.number});
                match a {
                    CardAction::Acknowledge => b["style"] = json!("primary"),
                    CardAction::Resolve => b["style"] = json!("danger"),
                    _ => {}
                }
                b
            })
            .collect();
        blocks.push(json!({"type": "actions", "block_id": format!("inc_actions:{}", c.number), "elements": buttons}));
    }
    (c.headline(), Value::Array(blocks))
}

/// A plain message; with `asks` (an approval request number such as `APR-12`), Approve
/// and Reject buttons (`action_id` `approval.approve` / `approval.reject`, value the
/// number) that decide it.
pub fn message(text: &str, asks: Option<&str>) -> Value {
    let mut blocks =
        vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}})];
    if let Some(number) = asks {
        let buttons: Vec<Value> = ApprovalAction::ALL
            .iter()
            .map(|a| {
                let style = match a {
                    ApprovalAction::Approve => "primary",
                    ApprovalAction::Reject => "danger",
                };
                json!({"type": "button", "action_id": format!("approval.{}", a.word()), "style": style,
                       "text": {"type": "plain_text", "text": a.label()}, "value": number})
            })
            .collect();
        blocks.push(json!({"type": "actions", "block_id": format!("approval:{number}"), "elements": buttons}));
    }
    // `text` raw: the outbox sends this through `SlackApi`, which escapes it on the way out.
    json!({"text": text, "blocks": blocks})
}

/// What replaces an approval request's message once its approver pressed a button: the
/// request as it was asked (`asked` as typed: Slack hands a message's text back escaped,
/// so the caller unescapes it), and the outcome, without buttons. Sent through a
/// `response_url`, so escaped here.
pub fn decided(asked: &str, outcome: &str) -> Value {
    json!({"replace_original": true, "text": escape(&format!("{asked}\n{outcome}")), "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(asked)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(outcome)}]}]})
}

/// A slash-command answer (`response_type` ephemeral or in_channel).
pub fn reply(r: &Reply) -> Value {
    let mut body = json!({"response_type": if r.public { "in_channel" } else { "ephemeral" }, "text": escape(&r.text)});
    if let Some(c) = &r.card {
        let (_, blocks) = card(c);
        let mut all =
            vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": escape(&r.text)}})];
        if let Value::Array(b) = blocks {
            all.extend(b);
        }
        body["blocks"] = Value::Array(all);
    }
    body
}

/// The "new incident" modal.
pub fn new_incident_modal(channel: &str) -> Value {
    let level = |id: &str, label: &str| {
        json!({"type": "input", "block_id": id, "label": {"type": "plain_text", "text": label}, "element": {
            "type": "static_select", "action_id": "value",
            "initial_option": {"text": {"type": "plain_text", "text": "High"}, "value": "high"},
            "options": [
                {"text": {"type": "plain_text", "text": "High"}, "value": "high"},
                {"text": {"type": "plain_text", "text": "Medium"}, "value": "medium"},
                {"text": {"type": "plain_text", "text": "Low"}, "value": "low"}]}})
    };
    json!({
        "type": "modal", "callback_id": "incident.new", "private_metadata": channel,
        "title": {"type": "plain_text", "text": "New incident"},
        "submit": {"type": "plain_text", "text": "Open"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": "title", "label": {"type": "plain_text", "text": "Title"}, "element": {"type": "plain_text_input", "action_id": "value", "max_length": 500}},
            {"type": "input", "block_id": "description", "optional": true, "label": {"type": "plain_text", "text": "Description"}, "element": {"type": "plain_text_input", "action_id": "value", "multiline": true}},
            level("impact", "Impact"),
            level("urgency", "Urgency"),
            {"type": "input", "block_id": "service", "optional": true, "label": {"type": "plain_text", "text": "Service"}, "element": {"type": "plain_text_input", "action_id": "value"}}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: IncidentStatus, actions: Vec<CardAction>) -> IncidentCard {
        IncidentCard {
            id: 42,
            number: "INC-42".into(),
            title: "Checkout <5xx> & slow".into(),
            priority: "P1".into(),
            status,
            snoozed_until: None,
            levels: "High / High".into(),
            service: "checkout-api".into(),
            assignee: None,
            alerts: (2, 1),
            runbook: Some("https://runbooks/x".into()),
            url: "http://incidentd/api/v1/incidents/42".into(),
            actions,
        }
    }

    #[test]
    fn a_snoozed_card_says_until_when() {
        let mut c = sample(IncidentStatus::Acknowledged, vec![CardAction::Resolve]);
        c.snoozed_until = Some(
            chrono::DateTime::parse_from_rfc3339("2026-12-02T14:30:00Z")
                .expect("time")
                .with_timezone(&chrono::Utc),
        );
        let (text, blocks) = card(&c);
        assert!(
            text.ends_with("— acknowledged, snoozed until 2026-12-02 14:30 UTC"),
            "{text}"
        );
        assert!(
            blocks
                .to_string()
                .contains("Acknowledged, snoozed until 2026-12-02 14:30 UTC"),
            "{blocks}"
        );
    }

    #[test]
    fn a_runbook_annotation_cannot_add_mentions_or_links() {
        let mut c = sample(IncidentStatus::New, vec![]);
        c.runbook = Some(
            "https://runbooks.example.com/x|Runbook> <!channel> <https://evil.example.com".into(),
        );
        let (_, blocks) = card(&c);
        let s = blocks.to_string();
        assert!(!s.contains("<!channel>"), "{s}");
        assert!(!s.contains("<https://evil"), "{s}");
        assert!(
            s.contains("<https://runbooks.example.com/x%7CRunbook%3E%20%3C!channel%3E%20%3Chttps://evil.example.com|Runbook>"),
            "{s}"
        );
        c.runbook = Some("javascript:alert(1)".into());
        assert!(!card(&c).1.to_string().contains("Runbook"));
        assert_eq!(
            link_target("https://x/a?b=1&c=2").as_deref(),
            Some("https://x/a?b=1&amp;c=2")
        );
    }

    #[test]
    fn text_is_escaped_exactly_once_on_each_way_out() {
        // An outbox message: raw here, escaped by SlackApi on the way out.
        let m = message("a & b <!here>", None);
        assert_eq!(m["text"], "a & b <!here>");
        assert!(m["blocks"].to_string().contains("a &amp; b &lt;!here&gt;"));
        // A decision replaces the message through response_url: escaped once here.
        let d = decided(&unescape("Deploy &amp; migrate"), "approved");
        assert_eq!(d["text"], "Deploy &amp; migrate\napproved");
        assert!(d["blocks"].to_string().contains("Deploy &amp; migrate"));
        assert!(!d.to_string().contains("&amp;amp;"));
    }

    #[test]
    fn typed_text_is_read_as_typed() {
        assert_eq!(
            unescape("p99 &gt; 2s &amp; rising &lt;x&gt;"),
            "p99 > 2s & rising <x>"
        );
        assert_eq!(unescape("&amp;lt;"), "&lt;", "decoded once");
        let typed = "a <b> & c";
        assert_eq!(unescape(&escape(typed)), typed);
    }

    #[test]
    fn card_has_everything_a_responder_needs() {
        let (text, blocks) = card(&sample(
            IncidentStatus::New,
            vec![
                CardAction::Acknowledge,
                CardAction::Resolve,
                CardAction::Escalate,
                CardAction::AssignToMe,
            ],
        ));
        assert!(text.contains("INC-42"));
        let s = blocks.to_string();
        for needle in [
            "[P1] INC-42",
            "Checkout &lt;5xx&gt; &amp; slow",
            "checkout-api",
            "*New*",
            "1 firing of 2",
            "Runbook",
            "incident.ack",
            "incident.resolve",
            "incident.escalate",
            "incident.assign_me",
            "inc_actions:INC-42",
        ] {
            assert!(s.contains(needle), "{needle} in {s}");
        }
        let (_, resolved) = card(&sample(IncidentStatus::Resolved, vec![]));
        assert!(
            !resolved.to_string().contains("\"actions\""),
            "no buttons once resolved"
        );
    }
}
