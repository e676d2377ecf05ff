//! Runs a parsed chat command for a caller through the same `app::` use cases as the REST
//! API, and words the answer. Nothing here is platform-specific.

use crate::app::approvals::{self, DecisionRequest};
use crate::app::incidents::query::{IncidentFilter, find};
use crate::app::incidents::{self, NewComment, NewIncident};
use crate::app::page::PageRequest;
use crate::app::problems::{self, NewProblem, ProblemPatch};
use crate::app::{App, AppError};
use crate::domain::actor::Actor;
use crate::domain::approval::{ApprovalStatus, Verdict};
use crate::domain::identity::Group;
use crate::domain::incident::IncidentStatus;
use crate::domain::notification::ChannelKind;
use crate::domain::service::Service;
use crate::domain::transition::Lifecycle;
use crate::notify::BoxFuture;
use crate::store::access::{self, Order};

use super::grammar::{APPROVE_USAGE, Command, INCIDENT_USAGE, ListFilter, PROBLEM_USAGE, UserRef};
use super::views::{Reply, incident_card};

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The platform user behind the chat user, with their permissions; `None` if unlinked.
    pub actor: Option<Actor>,
    /// The chat user id, to tell an unlinked user what to link.
    pub chat_user: String,
    /// `Slack` or `Discord`, for messages.
    pub platform: &'static str,
}

impl Caller {
    fn reader(&self) -> Actor {
        self.actor
            .clone()
            .unwrap_or_else(|| Actor::unlinked_chat(&self.chat_user))
    }
}

/// Resolves chat user mentions to platform users (platform-specific lookups).
pub trait Directory: Send + Sync {
    /// The platform user id of a chat user, if linked.
    fn user_id<'a>(&'a self, chat_user: &'a str) -> BoxFuture<'a, Option<u64>>;
}

/// What an unlinked (or deactivated) user is told when they try to change something.
pub fn unlinked_message(app: &App, caller: &Caller) -> String {
    let platform = caller.platform;
    if caller.chat_user.is_empty() {
        return format!("incidentd cannot tell who you are: the {platform} request named no user.");
    }
    let kind = if platform == "Discord" {
        ChannelKind::Discord
    } else {
        ChannelKind::Slack
    };
    let linked = app.store.read().ok().and_then(|r| {
        crate::app::chat::linked_user_even_inactive(&r, kind, &caller.chat_user)
            .ok()
            .flatten()
    });
    if let Some(user) = linked.filter(|u| !u.active) {
        return format!(
            "Your {platform} account is linked to incidentd user {}, who is deactivated, so you can look but not change anything. Ask an admin to reactivate the user.",
            user.username
        );
    }
    // Only Slack reports e-mail addresses: Discord links by contact method alone.
    let or_email = if kind == ChannelKind::Slack {
        ", or use the same e-mail address in both"
    } else {
        ""
    };
    format!(
        "Your {platform} account ({}) is not linked to an incidentd user, so you can look but not change anything. Ask an admin to add a {} contact method with address {} to your user{or_email}.",
        caller.chat_user,
        platform.to_lowercase(),
        caller.chat_user
    )
}

/// Words an error for a chat answer.
pub fn explain(e: &AppError) -> String {
    match e {
        AppError::Forbidden(p) => format!("You may not do that: it needs the `{p}` permission."),
        AppError::Refused(m)
        | AppError::Conflict(m)
        | AppError::BadRequest(m)
        | AppError::Unauthorized(m) => m.clone(),
        AppError::NotFound { kind, id } => format!("There is no {kind} {id}."),
        AppError::NoRoute => "There is no such thing.".into(),
        AppError::Validation(f) => {
            f.0.iter()
                .map(|(k, v)| format!("{k}: {}", v.join("; ")))
                .collect::<Vec<_>>()
                .join(". ")
        }
        AppError::Throttled { .. } | AppError::Busy | AppError::Unavailable(_) => {
            "incidentd is busy; try again in a moment.".into()
        }
        AppError::Internal(_) => {
            "Something went wrong inside incidentd; the error is in its log.".into()
        }
    }
}

/// `/approve` and `/approve reject`: the same rules as `POST /api/v1/approvals/{id}/decision`.
async fn decide(
    app: &App,
    actor: &Actor,
    id: u64,
    decision: Verdict,
    comment: Option<String>,
) -> Result<Reply, AppError> {
    let a = approvals::decide(app, actor, id, DecisionRequest { decision, comment }).await?;
    let text = match a.status {
        ApprovalStatus::Approved => format!("{} is approved: {}", a.number(), a.title),
        ApprovalStatus::Rejected => format!("{} is rejected: {}", a.number(), a.title),
        _ => format!(
            "Recorded. {} now waits at level {} of {} ('{}'), {} approval(s) so far.",
            a.number(),
            a.level + 1,
            a.levels.len(),
            a.current_level()
                .map(|l| l.name.as_str())
                .unwrap_or_default(),
            a.approvals_at_level()
        ),
    };
    Ok(Reply::private(text))
}

/// Runs `command` for `caller`.
pub async fn execute(
    app: &App,
    caller: &Caller,
    command: Command,
    directory: &dyn Directory,
) -> Reply {
    if command.mutates() && caller.actor.is_none() {
        return Reply::private(unlinked_message(app, caller));
    }
    match run(app, caller, command, directory).await {
        Ok(reply) => reply,
        Err(e) => Reply::private(explain(&e)),
    }
}

/// Runs `command` for `caller` and tells success from failure, with the failure worded
/// (for buttons that change their message only when the command did something).
pub async fn run_worded(
    app: &App,
    caller: &Caller,
    command: Command,
    directory: &dyn Directory,
) -> Result<Reply, String> {
    if command.mutates() && caller.actor.is_none() {
        return Err(unlinked_message(app, caller));
    }
    run(app, caller, command, directory)
        .await
        .map_err(|e| explain(&e))
}

/// How long a command waits for acknowledged alerts to be applied (see
/// [`crate::store::Store::caught_up`]) before it says incidentd is busy. The wait is part of
/// the command, so it counts against the adapter's answer budget: past that, Slack gets
/// "working on it" and Discord a deferred answer, and the reply follows.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `command` for `caller`, returning the error instead of wording it (for adapters that
/// answer success and failure differently, such as buttons).
pub async fn run(
    app: &App,
    caller: &Caller,
    command: Command,
    directory: &dyn Directory,
) -> Result<Reply, AppError> {
    // Never show less than a webhook was told is stored.
    app.store.caught_up(CATCH_UP).await?;
    let actor = caller.reader();
    let base = app.public_url();
    match command {
        Command::Help => Ok(Reply::private(format!(
            "{INCIDENT_USAGE}\n{PROBLEM_USAGE}\n{APPROVE_USAGE}"
        ))),
        Command::ApproveHelp => Ok(Reply::private(APPROVE_USAGE.to_owned())),
        Command::Approve { id, comment } => {
            decide(app, &actor, id, Verdict::Approve, comment).await
        }
        Command::Reject { id, reason } => decide(app, &actor, id, Verdict::Reject, reason).await,
        Command::ApprovalsWaiting => {
            let Some(user_id) = actor.user_id else {
                return Ok(Reply::private(unlinked_message(app, caller)));
            };
            let waiting = approvals::waiting_for(app, &actor, user_id, 20)?;
            if waiting.is_empty() {
                return Ok(Reply::private("Nothing is waiting for your approval."));
            }
            let lines: Vec<String> = waiting
                .iter()
                .map(|a| {
                    format!(
                        "• {}: {} (level {} of {}, asked by {})",
                        a.number(),
                        a.title,
                        a.level + 1,
                        a.levels.len(),
                        a.requested_by.name
                    )
                })
                .collect();
            Ok(Reply::private(format!(
                "Waiting for your decision:\n{}",
                lines.join("\n")
            )))
        }
        Command::New {
            title,
            impact,
            urgency,
            service,
            description,
        } => {
            let service_id = match service {
                None => None,
                Some(name) => Some(
                    crate::app::services::find_by_name(&app.store.read()?, &name)?
                        .map(|s| s.id)
                        .ok_or_else(|| AppError::not_found("service", format!("named '{name}'")))?,
                ),
            };
            let input = NewIncident {
                title,
                description,
                impact,
                urgency,
                service_id,
                assignee_id: None,
                group_id: None,
                escalation_policy_id: None,
            };
            let v = incidents::create(app, &actor, input).await?;
            let card = incident_card(&app.store.read()?, &base, &v.incident)?;
            Ok(Reply {
                text: format!(
                    "Opened {} ({}): {}",
                    v.number, v.incident.priority, v.incident.title
                ),
                card: Some(card),
                public: false,
            })
        }
        Command::Ack { id, note, reopens } => {
            // Acknowledging a resolved incident reopens it when typed; the answer says so,
            // as the timeline does, rather than read like a routine acknowledgement. A
            // button is refused instead: its card or page was from before the resolve.
            let was_resolved =
                access::get::<crate::domain::incident::Incident>(&app.store.read()?, id)?
                    .is_some_and(|i| i.status == IncidentStatus::Resolved);
            let reopen = if reopens {
                incidents::Reopen::Allowed
            } else {
                incidents::Reopen::Refused
            };
            let v = incidents::acknowledge(app, &actor, id, note, reopen).await?;
            Ok(Reply::private(if was_resolved {
                format!("{} reopened and acknowledged.", v.number)
            } else {
                format!("{} acknowledged.", v.number)
            }))
        }
        Command::Resolve { id, note } => {
            let v = incidents::resolve(app, &actor, id, note).await?;
            Ok(Reply::private(format!("{} resolved.", v.number)))
        }
        Command::Take { id } => {
            let v = incidents::take(app, &actor, id).await?;
            Ok(Reply::private(format!("{} is yours.", v.number)))
        }
        Command::Assign { id, user } => {
            let user_id = match &user {
                UserRef::Chat(chat_id) => directory.user_id(chat_id).await.ok_or_else(|| {
                    AppError::Refused(format!("<@{chat_id}> is not linked to an incidentd user"))
                })?,
                UserRef::Username(name) => {
                    crate::app::users::find_by_username(&app.store.read()?, name)?
                        .map(|u| u.id)
                        .ok_or_else(|| AppError::not_found("user", format!("named '{name}'")))?
                }
            };
            let a = incidents::Assignment {
                assignee_id: Some(Some(user_id)),
                group_id: None,
            };
            let v = incidents::assign(app, &actor, id, a).await?;
            let who = crate::app::users::get(app, &Actor::system(), user_id)
                .map(|u| u.username)
                .unwrap_or_default();
            Ok(Reply::private(format!("{} assigned to {who}.", v.number)))
        }
        Command::Status { id } => {
            let v = incidents::get(app, &actor, id)?;
            let card = incident_card(&app.store.read()?, &base, &v.incident)?;
            Ok(Reply {
                text: card.headline(),
                card: Some(card),
                public: false,
            })
        }
        Command::List { filter } => {
            let mut f = IncidentFilter::default();
            f.statuses
                .extend(IncidentStatus::ALL.iter().copied().filter(|s| s.is_open()));
            match filter {
                ListFilter::Open => {}
                ListFilter::Mine => {
                    f.assignee_id = Some(
                        actor
                            .user_id
                            .ok_or_else(|| AppError::Refused(unlinked_message(app, caller)))?,
                    );
                }
                ListFilter::Priority(p) => {
                    f.priorities.insert(p);
                }
            }
            crate::app::require(&actor, crate::domain::permission::Permission::IncidentRead)?;
            let page = find(
                &app.store.read()?,
                &f,
                PageRequest {
                    limit: 20,
                    after: None,
                },
            )?;
            if page.items.is_empty() {
                return Ok(Reply::private("No open incidents match."));
            }
            let mut lines: Vec<String> = page
                .items
                .iter()
                .map(|i| {
                    format!(
                        "• [{}] {} {} — {}",
                        i.priority,
                        i.number(),
                        i.title,
                        i.status.as_str().replace('_', " ")
                    )
                })
                .collect();
            if page.next_cursor.is_some() {
                lines.push("…and more: narrow it with `list p1` or `list mine`.".into());
            }
            Ok(Reply::private(lines.join("\n")))
        }
        Command::Comment { id, text } => {
            incidents::comment(app, &actor, id, NewComment { body: text }).await?;
            Ok(Reply::private(format!("Comment added to INC-{id}.")))
        }
        Command::Escalate { id } => {
            let v = incidents::escalate(app, &actor, id, None).await?;
            Ok(Reply::private(format!("{} escalated.", v.number)))
        }
        Command::Merge { target, sources } => {
            let names: Vec<String> = sources.iter().map(|id| format!("INC-{id}")).collect();
            let v = incidents::merge::merge(
                app,
                &actor,
                target,
                incidents::merge::MergeRequest {
                    source_ids: sources,
                },
            )
            .await?;
            Ok(Reply::private(format!(
                "Merged {} into {}: {} alert(s), {} firing.",
                names.join(", "),
                v.number,
                v.incident.alert_count,
                v.incident.firing_alerts
            )))
        }
        Command::Snooze { id, minutes } => {
            let v = incidents::snooze::snooze(
                app,
                &actor,
                id,
                incidents::snooze::SnoozeRequest {
                    minutes,
                    note: None,
                },
            )
            .await?;
            Ok(Reply::private(format!(
                "{} snoozed for {}: it pages again then unless its status changes.",
                v.number,
                incidents::snooze::minutes_in_words(minutes)
            )))
        }
        Command::Oncall { service } => oncall(app, &actor, service.as_deref()),
        Command::ProblemNew { title } => {
            let p = problems::create(
                app,
                &actor,
                NewProblem {
                    title,
                    description: None,
                    impact: None,
                    urgency: None,
                    service_id: None,
                    assignee_id: None,
                },
            )
            .await?;
            Ok(Reply::private(format!(
                "Recorded {}: {}",
                p.number, p.problem.title
            )))
        }
        Command::ProblemLink { problem, incident } => {
            let p = problems::link(app, &actor, problem, incident).await?;
            Ok(Reply::private(format!(
                "Linked INC-{incident} to {}.",
                p.number
            )))
        }
        Command::ProblemRca { problem, text } => {
            let p = problems::update(
                app,
                &actor,
                problem,
                ProblemPatch {
                    root_cause: Some(Some(text)),
                    ..Default::default()
                },
            )
            .await?;
            Ok(Reply::private(format!(
                "Root cause of {} recorded.",
                p.number
            )))
        }
    }
}

/// Who answers for a service: level 1 of its escalation policy, else its owning team's
/// members.
fn oncall(app: &App, actor: &Actor, service: Option<&str>) -> Result<Reply, AppError> {
    crate::app::require(actor, crate::domain::permission::Permission::ServiceRead)?;
    let r = app.store.read()?;
    let services: Vec<Service> = match service {
        Some(name) => vec![
            crate::app::services::find_by_name(&r, name)?
                .ok_or_else(|| AppError::not_found("service", format!("named '{name}'")))?,
        ],
        None => access::list::<Service>(&r, None, Order::Asc, 50)?,
    };
    let mut lines = Vec::new();
    for s in services {
        let first = match s.escalation_policy_id {
            Some(p) => crate::app::escalation::runs::first_level(&r, p, app.clock.now())?,
            None => None,
        };
        if let Some((policy, names)) = first {
            let who = if names.is_empty() {
                "nobody active".to_owned()
            } else {
                names.join(", ")
            };
            lines.push(format!("• {}: {who} (level 1 of '{policy}')", s.name));
            continue;
        }
        let line = match s
            .owner_group_id
            .and_then(|g| access::get::<Group>(&r, g).ok().flatten())
        {
            Some(g) => {
                let mut names = Vec::new();
                for id in crate::app::users::member_ids(&r, g.id)? {
                    if let Some(u) =
                        access::get::<crate::domain::identity::User>(&r, id)?.filter(|u| u.active)
                    {
                        names.push(u.username);
                    }
                }
                let who = if names.is_empty() {
                    "nobody yet".to_owned()
                } else {
                    names.join(", ")
                };
                format!("• {}: team {} ({who})", s.name, g.name)
            }
            None => format!("• {}: no owning team", s.name),
        };
        lines.push(line);
    }
    Ok(Reply::private(format!(
        "Who answers for what (level 1 of each service's escalation policy, else its owning team):\n{}",
        lines.join("\n")
    )))
}
