//! The outbox's state: which deliveries are due, and what an attempt's outcome does to a
//! delivery (sent, retried with backoff, dead, folded into a summary, postponed by a rate
//! limit, cancelled because a page is no longer wanted). The delivery log is the same
//! records.

use chrono::{DateTime, Duration, TimeZone, Utc};
use redb::WriteTransaction;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::page::{Page, PageRequest, Take, walk};
use crate::app::{App, AppError, AppResult, FieldErrors, require};
use crate::domain::actor::Actor;
use crate::domain::event::EventKind;
use crate::domain::notification::{
    ChannelKind, Delivery, DeliveryStatus, RetryPolicy, redact_secret,
};
use crate::domain::permission::Permission;
use crate::store::StoreError;
use crate::store::access::{self, Reader};
use crate::store::due as queue;
use crate::store::keys::Key;
use crate::store::tables::{self, delivery_field as field};

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered; the provider's id if it gave one.
    Sent(Option<String>),
    /// Failed in a way that may pass (timeout, 5xx, 429); wait at least `retry_after`.
    Transient {
        /// Why.
        reason: String,
        /// The provider's Retry-After.
        retry_after: Option<Duration>,
    },
    /// Failed for good (4xx, bad address, not configured, template error).
    Permanent(String),
    /// Carried by the summary sent as another delivery.
    Collapsed(u64),
    /// Not attempted: a rate limit holds it until then.
    Postponed(DateTime<Utc>),
    /// Not attempted and never will be: why (see [`no_longer_wanted`]).
    Cancelled(String),
}

fn due_key(d: &Delivery) -> Vec<u8> {
    queue::key(d.next_attempt_at, d.id)
}

fn entries(d: &Delivery) -> Vec<(u8, u64)> {
    let mut out = vec![
        (field::STATUS, u64::from(d.status.code())),
        (field::CHANNEL, u64::from(d.channel.code())),
    ];
    if let Some(i) = d.incident_id {
        out.push((field::INCIDENT, i));
    }
    out
}

/// Writes a delivery and keeps the due queue and the log indexes in step.
pub(crate) fn save(
    tx: &WriteTransaction,
    before: Option<&Delivery>,
    after: &Delivery,
) -> Result<(), StoreError> {
    if let Some(b) = before {
        if b.status.is_due_kind() {
            access::delete_raw(tx, tables::DELIVERIES_DUE, &due_key(b))?;
        }
        for (f, v) in entries(b) {
            access::delete_raw(
                tx,
                tables::DELIVERY_INDEX,
                &Key::new().u8(f).u64(v).u64(b.id).into_bytes(),
            )?;
        }
    }
    access::put(tx, after)?;
    if after.status.is_due_kind() {
        access::put_raw(tx, tables::DELIVERIES_DUE, &due_key(after), &[])?;
    }
    for (f, v) in entries(after) {
        access::put_raw(
            tx,
            tables::DELIVERY_INDEX,
            &Key::new().u8(f).u64(v).u64(after.id).into_bytes(),
            &[],
        )?;
    }
    Ok(())
}

/// Deliveries due at `now`, oldest first, at most `limit`.
pub fn due(r: &impl Reader, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let ids = queue::ids_due(r, tables::DELIVERIES_DUE, now, limit)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(d) = access::get::<Delivery>(r, id)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// When the next delivery falls due, if any is waiting.
pub fn next_due(r: &impl Reader) -> Result<Option<DateTime<Utc>>, StoreError> {
    next_due_where(r, |_| true)
}

/// When the next delivery whose id passes `wanted` falls due.
pub fn next_due_where(
    r: &impl Reader,
    wanted: impl Fn(u64) -> bool,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    queue::next_due_where(r, tables::DELIVERIES_DUE, wanted)
}

fn rate_key(channel: ChannelKind, address: &str) -> Vec<u8> {
    Key::new().u8(channel.code()).str(address).into_bytes()
}

/// When a message last went to `address` on `channel`.
pub fn last_sent(
    r: &impl Reader,
    channel: ChannelKind,
    address: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(r.get_raw(tables::RATE_LIMITS, &rate_key(channel, address))?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .and_then(|b| Utc.timestamp_millis_opt(i64::from_be_bytes(b)).single()))
}

fn card_key(channel: ChannelKind, incident: u64, target: &str) -> Vec<u8> {
    Key::new()
        .u8(channel.code())
        .u64(incident)
        .str(target)
        .into_bytes()
}

/// Where an incident's card is in a chat target, as `channel|message` (to update it).
pub fn card_ref(
    r: &impl Reader,
    channel: ChannelKind,
    incident: u64,
    target: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        r.get_raw(tables::CHAT_MESSAGES, &card_key(channel, incident, target))?
            .and_then(|b| String::from_utf8(b).ok()),
    )
}

/// Remembers a posted card: to update it later, and to know which incident its thread is.
fn remember_card(
    tx: &WriteTransaction,
    channel: ChannelKind,
    incident: u64,
    target: &str,
    reference: &str,
) -> Result<(), StoreError> {
    access::put_raw(
        tx,
        tables::CHAT_MESSAGES,
        &card_key(channel, incident, target),
        reference.as_bytes(),
    )?;
    if let Some((chat_channel, ts)) = reference.split_once('|') {
        let thread = Key::new()
            .u8(channel.code())
            .str(chat_channel)
            .str(ts)
            .into_bytes();
        access::put_id(tx, tables::CHAT_THREADS, &thread, incident)?;
    }
    Ok(())
}

/// Deletes up to `limit` finished deliveries (sent, dead, cancelled) created before
/// `cutoff`, oldest first, with their index entries; returns how many.
pub(crate) fn prune(
    tx: &WriteTransaction,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    let mut pruned = 0;
    let mut after = None;
    'scan: loop {
        let batch: Vec<Delivery> = access::list(tx, after, access::Order::Asc, 256)?;
        let Some(last) = batch.last().map(|d| d.id) else {
            break;
        };
        for d in batch {
            if d.created_at >= cutoff || pruned >= limit {
                break 'scan;
            }
            // One still being tried stays, however old (a page is never lost to a clean-up).
            if d.status.is_due_kind() {
                continue;
            }
            for (f, v) in entries(&d) {
                access::delete_raw(
                    tx,
                    tables::DELIVERY_INDEX,
                    &Key::new().u8(f).u64(v).u64(d.id).into_bytes(),
                )?;
            }
            access::delete::<Delivery>(tx, d.id)?;
            pruned += 1;
        }
        after = Some(last);
    }
    Ok(pruned)
}

/// Applies attempt outcomes, in one transaction. `jitter` in [0, 1) spreads retries.
pub async fn complete(
    app: &App,
    results: Vec<(u64, Outcome)>,
    policy: RetryPolicy,
    jitter: f64,
) -> AppResult<()> {
    let now = app.clock.now();
    app.store
        .write(move |tx| {
            for (id, outcome) in &results {
                let Some(before) = access::get::<Delivery>(tx, *id)? else {
                    continue;
                };
                if !before.status.is_due_kind() {
                    continue;
                }
                let mut d = before.clone();
                match outcome {
                    Outcome::Postponed(until) => {
                        d.next_attempt_at = *until;
                    }
                    Outcome::Sent(provider) => {
                        d.attempts += 1;
                        d.status = DeliveryStatus::Sent;
                        d.provider_id = provider.clone();
                        d.sent_at = Some(now);
                        d.latency_ms = Some((now - d.created_at).num_milliseconds());
                        d.last_error = None;
                        if d.channel.is_rate_limited() {
                            access::put_raw(
                                tx,
                                tables::RATE_LIMITS,
                                &rate_key(d.channel, &d.target),
                                &now.timestamp_millis().to_be_bytes(),
                            )?;
                        }
                        if let (Some(incident), Some(reference)) =
                            (d.incident_id, provider.as_deref())
                            && d.is_chat_card()
                        {
                            remember_card(tx, d.channel, incident, &d.target, reference)?;
                        }
                    }
                    Outcome::Collapsed(into) => {
                        d.status = DeliveryStatus::Sent;
                        d.collapsed_into = Some(*into);
                        d.sent_at = Some(now);
                        d.latency_ms = Some((now - d.created_at).num_milliseconds());
                    }
                    Outcome::Transient {
                        reason,
                        retry_after,
                    } => {
                        d.attempts += 1;
                        d.last_error = Some(reason.clone());
                        match policy.next_attempt(now, d.attempts, jitter, *retry_after) {
                            Some(next) => {
                                d.status = DeliveryStatus::Failed;
                                d.next_attempt_at = next;
                            }
                            None => {
                                d.status = DeliveryStatus::Dead;
                                d.last_error = Some(format!(
                                    "gave up after {} attempts: {reason}",
                                    d.attempts
                                ));
                            }
                        }
                    }
                    Outcome::Permanent(reason) => {
                        d.attempts += 1;
                        d.status = DeliveryStatus::Dead;
                        d.last_error = Some(reason.clone());
                    }
                    Outcome::Cancelled(reason) => {
                        d.status = DeliveryStatus::Cancelled;
                        d.last_error = Some(reason.clone());
                    }
                }
                save(tx, Some(&before), &d)?;
            }
            Ok::<_, AppError>(())
        })
        .await
}

/// Why a delivery planned for a person must not go out any more, if so: the person was
/// deactivated or deleted, or the contact method it was planned for was removed or turned
/// off while it waited (a page step minutes later, a retry).
pub fn no_longer_wanted(r: &impl Reader, d: &Delivery) -> Result<Option<String>, StoreError> {
    let Some(user_id) = d.user_id else {
        return Ok(None);
    };
    match access::get::<crate::domain::identity::User>(r, user_id)? {
        None => return Ok(Some("its recipient's account was deleted".into())),
        Some(u) if !u.active => return Ok(Some(format!("{} was deactivated", u.username))),
        Some(_) => {}
    }
    let reachable = super::contacts::of_user(r, user_id)?
        .iter()
        .any(|c| c.enabled && c.kind == d.channel && c.address == d.target);
    Ok((!reachable).then(|| "the contact method it was for was removed or turned off".into()))
}

/// The event of the oldest delivery still waiting to be sent (retention keeps it and every
/// later one: rendering a delivery needs its event). Deliveries and events are numbered
/// in the same commit order, so the lowest waiting delivery id has the lowest event.
pub fn oldest_waiting_event(r: &impl Reader) -> Result<Option<u64>, StoreError> {
    let oldest = queue::ids_due(
        r,
        tables::DELIVERIES_DUE,
        DateTime::<Utc>::MAX_UTC,
        usize::MAX,
    )?
    .into_iter()
    .min();
    match oldest {
        Some(id) => Ok(access::get::<Delivery>(r, id)?.map(|d| d.event_seq)),
        None => Ok(None),
    }
}

/// Cancels the page steps still waiting for incident `incident` (deliveries an escalation
/// page or a reassignment made to people, not those of notification rules), with
/// `reason`, in the transaction that acknowledges or ends it.
pub(crate) fn cancel_pages(
    tx: &WriteTransaction,
    incident: u64,
    reason: &str,
) -> Result<usize, StoreError> {
    cancel_waiting(tx, incident, reason, |d| {
        matches!(
            d.event,
            EventKind::IncidentPaged | EventKind::IncidentAssigned
        ) && d.rule_id.is_none()
            && d.user_id.is_some()
    })
}

/// Cancels what still waits to reach `user_id` because incident `incident` was assigned
/// to them, in the transaction that assigns it to somebody else: the later steps of their
/// paging rules are about an incident no longer theirs.
pub(crate) fn cancel_assignment_pages(
    tx: &WriteTransaction,
    incident: u64,
    user_id: u64,
) -> Result<usize, StoreError> {
    cancel_waiting(tx, incident, "assigned to somebody else", |d| {
        d.event == EventKind::IncidentAssigned && d.rule_id.is_none() && d.user_id == Some(user_id)
    })
}

/// Cancels the deliveries about `incident` still waiting to go out that `which` picks.
fn cancel_waiting(
    tx: &WriteTransaction,
    incident: u64,
    reason: &str,
    which: impl Fn(&Delivery) -> bool,
) -> Result<usize, StoreError> {
    let ids = access::ids_with_prefix(
        tx,
        tables::DELIVERY_INDEX,
        &Key::new().u8(field::INCIDENT).u64(incident).into_bytes(),
        usize::MAX,
    )?;
    let mut cancelled = 0;
    for id in ids {
        let Some(before) = access::get::<Delivery>(tx, id)? else {
            continue;
        };
        if !which(&before) || !before.status.is_due_kind() {
            continue;
        }
        let mut d = before.clone();
        d.status = DeliveryStatus::Cancelled;
        d.last_error = Some(reason.to_owned());
        save(tx, Some(&before), &d)?;
        cancelled += 1;
    }
    Ok(cancelled)
}

/// `GET /api/v1/notifications` filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// `pending`, `sent`, `failed`, `dead` or `cancelled`.
    pub status: Option<String>,
    /// `email`, `sms`, `voice`, `slack`, `discord` or `webhook`.
    pub channel: Option<String>,
    /// Deliveries about this incident.
    pub incident_id: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Cursor.
    pub cursor: Option<String>,
}

/// The delivery log, newest first (needs `notification:read`).
pub fn list(
    app: &App,
    actor: &Actor,
    params: &DeliveryParams,
    page: PageRequest,
) -> AppResult<Page<Delivery>> {
    require(actor, Permission::NotificationRead)?;
    let mut e = FieldErrors::new();
    let status = match params
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => serde_json::from_value::<DeliveryStatus>(serde_json::Value::String(
            s.to_ascii_lowercase(),
        ))
        .map_err(|_| e.add("status", "must be pending, sent, failed, dead or cancelled"))
        .ok(),
    };
    let channel = match params
        .channel
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => s
            .parse::<ChannelKind>()
            .map_err(|m| e.add("channel", m))
            .ok(),
    };
    let incident = match params
        .incident_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => s.parse::<u64>().ok().filter(|v| *v > 0).or_else(|| {
            e.add("incident_id", "must be a positive integer");
            None
        }),
    };
    e.into_result()?;
    let driver = match (incident, status, channel) {
        (Some(i), _, _) => Some(Key::new().u8(field::INCIDENT).u64(i).into_bytes()),
        (None, Some(s), _) => Some(
            Key::new()
                .u8(field::STATUS)
                .u64(u64::from(s.code()))
                .into_bytes(),
        ),
        (None, None, Some(c)) => Some(
            Key::new()
                .u8(field::CHANNEL)
                .u64(u64::from(c.code()))
                .into_bytes(),
        ),
        _ => None,
    };
    let matches = |d: &Delivery| {
        status.is_none_or(|s| d.status == s)
            && channel.is_none_or(|c| d.channel == c)
            && incident.is_none_or(|i| d.incident_id == Some(i))
    };
    let r = app.store.read()?;
    let found = walk(
        &r,
        driver.as_deref().map(|p| (tables::DELIVERY_INDEX, p)),
        page,
        |d: &Delivery| if matches(d) { Take::Yes } else { Take::No },
    )?;
    Ok(found.map(|mut d| {
        redact_secret(&mut d.secret);
        d
    }))
}
