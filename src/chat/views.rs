//! Chat-neutral views: what an incident card and a reply say, before a platform renders
//! them (Block Kit for Slack, embeds and components for Discord).

use serde::Serialize;

use crate::domain::identity::User;
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::service::Service;
use crate::store::StoreError;
use crate::store::access::{self, Reader};

/// A button on an incident card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CardAction {
    /// Acknowledge it.
    Acknowledge,
    /// Resolve it.
    Resolve,
    /// Escalate it.
    Escalate,
    /// Assign it to whoever presses.
    AssignToMe,
    /// Snooze it for an hour (an acknowledged incident).
    SnoozeHour,
}

impl CardAction {
    /// The action id carried by the button (`incident.ack`, ...).
    pub const fn id(self) -> &'static str {
        match self {
            CardAction::Acknowledge => "incident.ack",
            CardAction::Resolve => "incident.resolve",
            CardAction::Escalate => "incident.escalate",
            CardAction::AssignToMe => "incident.assign_me",
            CardAction::SnoozeHour => "incident.snooze_1h",
        }
    }

    /// The button label.
    pub const fn label(self) -> &'static str {
        match self {
            CardAction::Acknowledge => "Acknowledge",
            CardAction::Resolve => "Resolve",
            CardAction::Escalate => "Escalate",
            CardAction::AssignToMe => "Assign to me",
            CardAction::SnoozeHour => "Snooze 1h",
        }
    }

    /// The command pressing it runs on incident `id`.
    pub fn command(self, id: u64) -> crate::chat::grammar::Command {
        use crate::chat::grammar::Command;
        match self {
            CardAction::Acknowledge => Command::Ack {
                id,
                note: None,
                reopens: false,
            },
            CardAction::Resolve => Command::Resolve { id, note: None },
            CardAction::Escalate => Command::Escalate { id },
            CardAction::AssignToMe => Command::Take { id },
            CardAction::SnoozeHour => Command::Snooze { id, minutes: 60 },
        }
    }

    /// The action of an action id.
    pub fn from_id(id: &str) -> Option<CardAction> {
        [
            CardAction::Acknowledge,
            CardAction::Resolve,
            CardAction::Escalate,
            CardAction::AssignToMe,
            CardAction::SnoozeHour,
        ]
        .into_iter()
        .find(|a| a.id() == id)
    }
}

/// A decision button on an approval request (`APR-12`) sent to its approvers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAction {
    /// Approve it.
    Approve,
    /// Reject it.
    Reject,
}

impl ApprovalAction {
    /// Both, in the order they are shown.
    pub const ALL: [ApprovalAction; 2] = [ApprovalAction::Approve, ApprovalAction::Reject];

    /// The word in button ids (`approve`, `reject`).
    pub const fn word(self) -> &'static str {
        match self {
            ApprovalAction::Approve => "approve",
            ApprovalAction::Reject => "reject",
        }
    }

    /// The button label.
    pub const fn label(self) -> &'static str {
        match self {
            ApprovalAction::Approve => "Approve",
            ApprovalAction::Reject => "Reject",
        }
    }

    /// The action of a word.
    pub fn from_word(word: &str) -> Option<ApprovalAction> {
        Self::ALL.into_iter().find(|a| a.word() == word)
    }

    /// The command pressing it on request `number` (`APR-12`) runs: the same as
    /// `/approve APR-12` or `/approve reject APR-12`.
    pub fn command(self, number: &str) -> Option<crate::chat::grammar::Command> {
        use crate::chat::grammar::Command;
        let id = crate::domain::approval::parse_approval_ref(number)?;
        Some(match self {
            ApprovalAction::Approve => Command::Approve { id, comment: None },
            ApprovalAction::Reject => Command::Reject { id, reason: None },
        })
    }
}

/// What an incident card shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentCard {
    /// Id.
    pub id: u64,
    /// `INC-42`.
    pub number: String,
    /// Title.
    pub title: String,
    /// `P1`...
    pub priority: String,
    /// Status.
    pub status: IncidentStatus,
    /// Snoozed until then (acknowledged, pages again at that time).
    pub snoozed_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Impact and urgency, e.g. `High / Medium`.
    pub levels: String,
    /// Service name.
    pub service: String,
    /// Assignee username.
    pub assignee: Option<String>,
    /// Alerts attached, and how many fire.
    pub alerts: (u64, u64),
    /// Runbook link from the alerts' annotations.
    pub runbook: Option<String>,
    /// Where to open it.
    pub url: String,
    /// The buttons that make sense in its status.
    pub actions: Vec<CardAction>,
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

impl IncidentCard {
    /// A one-line summary (`[P1] INC-42 Checkout down — acknowledged`).
    pub fn headline(&self) -> String {
        format!(
            "[{}] {} {} — {}{}",
            self.priority,
            self.number,
            self.title,
            self.status.as_str().replace('_', " "),
            self.snooze_text()
        )
    }

    /// The status as people read it (`Acknowledged, snoozed until 2026-12-02 14:30 UTC`).
    pub fn status_text(&self) -> String {
        format!(
            "{}{}",
            title_case(&self.status.as_str().replace('_', " ")),
            self.snooze_text()
        )
    }

    fn snooze_text(&self) -> String {
        self.snoozed_until
            .map(|u| format!(", snoozed until {}", u.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default()
    }
}

/// Builds the card of an incident as it is now.
pub fn incident_card(
    r: &impl Reader,
    base_url: &str,
    i: &Incident,
) -> Result<IncidentCard, StoreError> {
    let service = access::get::<Service>(r, i.service_id)?
        .map(|s| s.name)
        .unwrap_or_else(|| format!("service {}", i.service_id));
    let assignee = match i.assignee_id {
        Some(id) => access::get::<User>(r, id)?.map(|u| u.username),
        None => None,
    };
    let runbook = crate::app::alerts::runbook_of(r, i.id)?;
    let actions = match i.status {
        IncidentStatus::New => vec![
            CardAction::Acknowledge,
            CardAction::Resolve,
            CardAction::Escalate,
            CardAction::AssignToMe,
        ],
        IncidentStatus::Acknowledged => vec![
            CardAction::Resolve,
            CardAction::Escalate,
            CardAction::AssignToMe,
            CardAction::SnoozeHour,
        ],
        IncidentStatus::InProgress | IncidentStatus::OnHold => vec![
            CardAction::Resolve,
            CardAction::Escalate,
            CardAction::AssignToMe,
        ],
        IncidentStatus::Resolved | IncidentStatus::Closed | IncidentStatus::Cancelled => vec![],
    };
    Ok(IncidentCard {
        id: i.id,
        number: i.number(),
        title: i.title.clone(),
        priority: i.priority.to_string(),
        status: i.status,
        snoozed_until: i.snoozed_until,
        levels: format!(
            "{} / {}",
            title_case(i.impact.as_str()),
            title_case(i.urgency.as_str())
        ),
        service,
        assignee,
        alerts: (i.alert_count, i.firing_alerts),
        runbook,
        url: format!("{base_url}/api/v1/incidents/{}", i.id),
        actions,
    })
}

/// An answer to a command or a button.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The text.
    pub text: String,
    /// A card to show with it.
    pub card: Option<IncidentCard>,
    /// Visible to the channel (else only to the caller).
    pub public: bool,
}

impl Reply {
    /// A private text answer.
    pub fn private(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            card: None,
            public: false,
        }
    }

    /// A text answer the channel sees.
    pub fn public(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            card: None,
            public: true,
        }
    }
}
