//! Turning a domain event into deliveries, inside the transaction that publishes it.

use std::collections::BTreeSet;

use redb::WriteTransaction;

use super::contacts;
use super::outbox;
use crate::domain::actor::ActorKind;
use crate::domain::event::{DomainEvent, EventKind};
use crate::domain::incident::Incident;
use crate::domain::notification::{ChannelKind, Delivery, DeliveryStatus, Target};
use crate::domain::service::Service;
use crate::store::StoreError;
use crate::store::access;

/// One address to reach.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Recipient {
    channel: ChannelKind,
    address: String,
    user_id: Option<u64>,
    secret: Option<String>,
}

fn user_recipients(
    tx: &WriteTransaction,
    user_id: u64,
    out: &mut Vec<Recipient>,
) -> Result<(), StoreError> {
    // A deactivated person is told nothing (a rule or a group may still name them).
    if !access::get::<crate::domain::identity::User>(tx, user_id)?.is_some_and(|u| u.active) {
        return Ok(());
    }
    for c in contacts::of_user(tx, user_id)? {
        if c.enabled {
            out.push(Recipient {
                channel: c.kind,
                address: c.address,
                user_id: Some(user_id),
                secret: c.secret,
            });
        }
    }
    Ok(())
}

/// Incident events that change what a chat card shows.
const CARD_EVENTS: &[EventKind] = &[
    EventKind::IncidentOpened,
    EventKind::IncidentAcknowledged,
    EventKind::IncidentStatusChanged,
    EventKind::IncidentResolved,
    EventKind::IncidentReopened,
    EventKind::IncidentClosed,
    EventKind::IncidentUpdated,
    EventKind::IncidentAssigned,
    EventKind::IncidentEscalated,
    EventKind::IncidentAlertsChanged,
];

fn enqueue(
    tx: &WriteTransaction,
    event: &DomainEvent,
    rule_id: Option<u64>,
    rcpt: Recipient,
) -> Result<(), StoreError> {
    enqueue_at(tx, event, rule_id, rcpt, event.at)
}

/// Enqueues a delivery due at `due`.
fn enqueue_at(
    tx: &WriteTransaction,
    event: &DomainEvent,
    rule_id: Option<u64>,
    rcpt: Recipient,
    due: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let id = access::next_id(tx, crate::store::tables::DELIVERIES)?;
    let d = Delivery {
        id,
        event_seq: event.seq,
        event: event.kind,
        rule_id,
        incident_id: event.incident_id,
        channel: rcpt.channel,
        target: rcpt.address,
        user_id: rcpt.user_id,
        secret: rcpt.secret,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: due,
        last_error: None,
        provider_id: None,
        collapsed_into: None,
        created_at: event.at,
        sent_at: None,
        latency_ms: None,
    };
    outbox::save(tx, None, &d)
}

/// Enqueues the incident's chat cards (posted on `incident.opened`, updated on every later
/// change) in its service's Slack and Discord channels, or the default ones, on each
/// platform that can post.
fn plan_cards(
    tx: &WriteTransaction,
    event: &DomainEvent,
    incident: &Incident,
) -> Result<(), StoreError> {
    if !CARD_EVENTS.contains(&event.kind) {
        return Ok(());
    }
    let Some(settings) = crate::app::settings::chat_settings(tx)? else {
        return Ok(());
    };
    let service = access::get::<Service>(tx, incident.service_id)?;
    let slack = settings.slack.then(|| {
        let channel = service.as_ref().and_then(|s| s.chat_channel.clone());
        (
            ChannelKind::Slack,
            channel.or(settings.slack_default_channel),
        )
    });
    let discord = settings.discord.then(|| {
        let channel = service.as_ref().and_then(|s| s.discord_channel.clone());
        (
            ChannelKind::Discord,
            channel.or(settings.discord_default_channel),
        )
    });
    for (kind, channel) in [slack, discord].into_iter().flatten() {
        if let Some(channel) = channel.filter(|c| !c.is_empty()) {
            let rcpt = Recipient {
                channel: kind,
                address: channel,
                user_id: None,
                secret: None,
            };
            enqueue(tx, event, None, rcpt)?;
        }
    }
    Ok(())
}

/// Enqueues a page of `user_ids` about `event` (an escalation level), not to the person
/// who caused the event: each person's paging rules say which contact methods, and when
/// (every enabled method at once without rules). Returns how many deliveries.
pub(crate) fn page_users(
    tx: &WriteTransaction,
    event: &DomainEvent,
    user_ids: &[u64],
) -> Result<usize, StoreError> {
    reach_users(tx, event, user_ids, Steps::All)
}

/// Tells `user_ids` about `event` (an approval request, its outcome) on every enabled
/// contact method at once, not to the person who caused it: paging rules are for pages,
/// whose later steps an acknowledgement cancels. Returns how many deliveries.
pub(crate) fn notify_users(
    tx: &WriteTransaction,
    event: &DomainEvent,
    user_ids: &[u64],
) -> Result<usize, StoreError> {
    reach_users(tx, event, user_ids, Steps::EveryMethod)
}

/// Reaches the person an open incident was just assigned to (by someone else), as
/// PagerDuty and Opsgenie reach whoever an incident is reassigned to, through their paging
/// rules (every enabled method at once without rules): all steps while nobody has
/// acknowledged it (an acknowledgement cancels the later ones, as for an escalation page),
/// only the first, at once, when somebody has: a call five minutes later about an
/// incident already in hand would be noise. Not again if a notification rule already told them of
/// this event.
pub(crate) fn notify_assignee(
    tx: &WriteTransaction,
    event: &DomainEvent,
    user_id: u64,
    acknowledged: bool,
) -> Result<usize, StoreError> {
    if let Some(incident) = event.incident_id {
        let prefix = crate::store::keys::Key::new()
            .u8(crate::store::tables::delivery_field::INCIDENT)
            .u64(incident)
            .into_bytes();
        for id in access::ids_with_prefix(
            tx,
            crate::store::tables::DELIVERY_INDEX,
            &prefix,
            usize::MAX,
        )? {
            if let Some(d) = access::get::<Delivery>(tx, id)?
                && d.event_seq == event.seq
                && d.user_id == Some(user_id)
            {
                return Ok(0);
            }
        }
    }
    let steps = if acknowledged {
        Steps::First
    } else {
        Steps::All
    };
    reach_users(tx, event, &[user_id], steps)
}

/// Which of a person's paging rules a delivery follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Steps {
    /// Every step, each after its delay.
    All,
    /// The first step (the methods of the shortest delay), at once.
    First,
    /// Not the rules: every enabled contact method at once.
    EveryMethod,
}

fn reach_users(
    tx: &WriteTransaction,
    event: &DomainEvent,
    user_ids: &[u64],
    steps: Steps,
) -> Result<usize, StoreError> {
    let actor_user =
        matches!(event.actor.kind, ActorKind::User | ActorKind::Chat).then_some(event.actor.id);
    let mut seen = BTreeSet::new();
    let mut sent = 0;
    for user_id in user_ids.iter().filter(|id| Some(**id) != actor_user) {
        let reach = match steps {
            Steps::All => super::paging::steps(tx, *user_id)?,
            Steps::First => {
                let all = super::paging::steps(tx, *user_id)?;
                let first = all.iter().map(|(_, delay)| *delay).min();
                all.into_iter()
                    .filter(|(_, delay)| Some(*delay) == first)
                    .map(|(m, _)| (m, chrono::Duration::zero()))
                    .collect()
            }
            Steps::EveryMethod => contacts::of_user(tx, *user_id)?
                .into_iter()
                .filter(|m| m.enabled)
                .map(|m| (m, chrono::Duration::zero()))
                .collect(),
        };
        for (method, delay) in reach {
            if !seen.insert((method.kind, method.address.clone(), delay)) {
                continue;
            }
            let rcpt = Recipient {
                channel: method.kind,
                address: method.address,
                user_id: Some(*user_id),
                secret: method.secret,
            };
            enqueue_at(tx, event, None, rcpt, event.at + delay)?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Enqueues the deliveries every matching rule asks for, and chat cards. The person who
/// caused the event is not told about it.
pub(crate) fn plan(tx: &WriteTransaction, event: &DomainEvent) -> Result<(), StoreError> {
    let incident = match event.incident_id {
        Some(id) => access::get::<Incident>(tx, id)?,
        None => None,
    };
    if let Some(i) = &incident {
        plan_cards(tx, event, i)?;
    }
    let rules: Vec<_> = super::rules::all(tx)?
        .into_iter()
        .filter(|r| r.enabled && r.events.contains(&event.kind))
        .collect();
    if rules.is_empty() {
        return Ok(());
    }
    let actor_user =
        matches!(event.actor.kind, ActorKind::User | ActorKind::Chat).then_some(event.actor.id);
    // Filters go by the incident's service and priority, or a problem's for problem events.
    let (service, priority) = match (&incident, event.problem_id) {
        (Some(i), _) => (Some(i.service_id), Some(i.priority)),
        (None, Some(id)) => match access::get::<crate::domain::problem::Problem>(tx, id)? {
            Some(p) => (p.service_id, p.priority),
            None => (None, None),
        },
        (None, None) => (None, None),
    };
    let mut seen = BTreeSet::new();
    for rule in rules {
        if !rule.filter.accepts(service, priority) {
            continue;
        }
        let mut recipients = Vec::new();
        for target in &rule.targets {
            match target {
                Target::User { id } => user_recipients(tx, *id, &mut recipients)?,
                Target::Group { id } => {
                    for member in crate::app::users::member_ids(tx, *id)? {
                        user_recipients(tx, member, &mut recipients)?;
                    }
                }
                Target::Email { address } => recipients.push(Recipient {
                    channel: ChannelKind::Email,
                    address: address.clone(),
                    user_id: None,
                    secret: None,
                }),
                Target::Sms { number } => recipients.push(Recipient {
                    channel: ChannelKind::Sms,
                    address: number.clone(),
                    user_id: None,
                    secret: None,
                }),
                Target::Voice { number } => recipients.push(Recipient {
                    channel: ChannelKind::Voice,
                    address: number.clone(),
                    user_id: None,
                    secret: None,
                }),
                Target::Webhook { url, secret } => recipients.push(Recipient {
                    channel: ChannelKind::Webhook,
                    address: url.clone(),
                    user_id: None,
                    secret: secret.clone(),
                }),
            }
        }
        for rcpt in recipients {
            if rcpt.user_id.is_some() && rcpt.user_id == actor_user {
                continue;
            }
            if !seen.insert((rcpt.channel, rcpt.address.clone())) {
                continue;
            }
            enqueue(tx, event, Some(rule.id), rcpt)?;
        }
    }
    Ok(())
}
