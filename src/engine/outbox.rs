//! The outbox worker: sends due deliveries through their channels and records the outcome.
//!
//! It wakes on every commit (a new delivery is usually due at once) and otherwise when the
//! next delivery falls due. Deliveries are at-least-once: one being sent when the daemon
//! dies is sent again after the restart; in the normal course each is sent once (the worker
//! never picks up a delivery it has in flight). SMS and calls to one number are rate
//! limited; what piles up meanwhile goes out as one summary.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::app::App;
use crate::app::notifications::outbox::{self, Outcome};
use crate::app::notifications::templates::{self, Rendered};
use crate::domain::approval::ApprovalRequest;
use crate::domain::event::{DomainEvent, EventKind};
use crate::domain::notification::{ChannelKind, Delivery, RetryPolicy};
use crate::notify::{Channels, Outbound, SendError};
use crate::store::access;

/// Most deliveries taken per look at the queue.
const BATCH: usize = 256;
/// The longest the worker sleeps without looking.
const IDLE: Duration = Duration::from_secs(5);

/// A rate-limited address, or a chat card (`target#incident`), of a channel.
type AddressKey = (ChannelKind, String);

/// The worker.
pub struct OutboxWorker {
    app: Arc<App>,
    channels: Channels,
    policy: RetryPolicy,
    rate_window: chrono::Duration,
    in_flight: Arc<Mutex<HashSet<u64>>>,
    /// Rate-limited addresses and chat cards with a send in flight: what else is due for
    /// them waits until it completes (else a number would get a second message before the
    /// first one starts its rate window, and a card would be posted twice).
    busy: Arc<Mutex<HashSet<AddressKey>>>,
    /// Due deliveries held back by a busy address at the last look.
    held: Mutex<HashSet<u64>>,
    /// Rung when a send completes.
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
}

impl OutboxWorker {
    /// A worker for `app` sending through `channels`.
    pub fn new(app: Arc<App>, channels: Channels) -> Self {
        let n = &app.config.notify;
        let policy = RetryPolicy {
            base: chrono::Duration::seconds(n.retry_base_secs as i64),
            max: chrono::Duration::seconds(n.retry_max_secs as i64),
            max_attempts: n.max_attempts,
        };
        Self {
            rate_window: chrono::Duration::seconds(n.rate_limit_secs as i64),
            permits: Arc::new(Semaphore::new(n.concurrency)),
            app,
            channels,
            policy,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            busy: Arc::new(Mutex::new(HashSet::new())),
            held: Mutex::new(HashSet::new()),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Runs until `shutdown` turns true, then waits (briefly) for sends in flight.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.app.store.commits();
        let mut tasks = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.tick(&mut tasks).await {
                tracing::warn!(error = %e, "outbox: could not read the queue");
            }
            while tasks.try_join_next().is_some() {}
            let wait = self.until_next_due().unwrap_or(IDLE);
            tokio::select! {
                _ = commits.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(
            Duration::from_secs(self.app.config.notify.timeout_secs + 1),
            drain,
        )
        .await
        .is_err()
        {
            tracing::warn!(
                "outbox: sends still in flight at shutdown will be retried after the restart"
            );
        }
    }

    /// How long until a delivery that is neither in flight nor held falls due (those
    /// stay in the due queue; counting them would make the worker spin until they finish).
    fn until_next_due(&self) -> Option<Duration> {
        let r = self.app.store.read().ok()?;
        let next = {
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            outbox::next_due_where(&r, |id| !in_flight.contains(&id) && !held.contains(&id))
                .ok()??
        };
        let now = self.app.clock.now();
        Some((next - now).to_std().unwrap_or(Duration::ZERO).min(IDLE))
    }

    async fn tick(&self, tasks: &mut JoinSet<()>) -> Result<(), crate::app::AppError> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let now = self.app.clock.now();
        let mut unwanted = Vec::new();
        let due: Vec<Delivery> = {
            let r = self.app.store.read()?;
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let mut due = Vec::new();
            for d in outbox::due(&r, now, BATCH)? {
                if in_flight.contains(&d.id) {
                    continue;
                }
                match outbox::no_longer_wanted(&r, &d)? {
                    Some(why) => unwanted.push((d.id, Outcome::Cancelled(why))),
                    None => due.push(d),
                }
            }
            due
        };
        if !unwanted.is_empty() {
            outbox::complete(&self.app, unwanted, self.policy, 0.5).await?;
        }
        if due.is_empty() {
            return Ok(());
        }
        // Rate-limited channels go out per address, chat cards once per incident and
        // target (they show the incident as it is now); everything else one by one.
        let mut groups: BTreeMap<(ChannelKind, String), Vec<Delivery>> = BTreeMap::new();
        let mut singles: Vec<(Option<AddressKey>, Vec<Delivery>)> = Vec::new();
        for d in due {
            match (d.channel, d.incident_id) {
                (c, _) if c.is_rate_limited() => {
                    groups.entry((c, d.target.clone())).or_default().push(d)
                }
                (c, Some(incident)) if d.is_chat_card() => groups
                    .entry((c, format!("{}#{incident}", d.target)))
                    .or_default()
                    .push(d),
                _ => singles.push((None, vec![d])),
            }
        }
        let mut postponed = Vec::new();
        {
            let r = self.app.store.read()?;
            let busy = self.busy.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for ((channel, address), group) in groups {
                if busy.contains(&(channel, address.clone())) {
                    self.held
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(group.iter().map(|d| d.id));
                    continue;
                }
                if channel.is_rate_limited()
                    && let Some(last) = outbox::last_sent(&r, channel, &address)?
                    && now < last + self.rate_window
                {
                    let until = last + self.rate_window;
                    postponed.extend(group.iter().map(|d| (d.id, Outcome::Postponed(until))));
                    continue;
                }
                singles.push((Some((channel, address)), group));
            }
        }
        if !postponed.is_empty() {
            outbox::complete(&self.app, postponed, self.policy, 0.5).await?;
        }
        for (key, unit) in singles {
            {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                for d in &unit {
                    in_flight.insert(d.id);
                }
            }
            if let Some(k) = &key {
                self.busy
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(k.clone());
            }
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| crate::app::AppError::Internal(e.to_string()))?;
            let app = self.app.clone();
            let channels = self.channels.clone();
            let in_flight = self.in_flight.clone();
            let busy = self.busy.clone();
            let wake = self.wake.clone();
            let policy = self.policy;
            tasks.spawn(async move {
                let ids: Vec<u64> = unit.iter().map(|d| d.id).collect();
                let results = deliver(&app, &channels, unit).await;
                let jitter = rand::rng().random::<f64>();
                if let Err(e) = outbox::complete(&app, results, policy, jitter).await {
                    tracing::warn!(error = %e, "outbox: could not record an outcome; the delivery will be retried");
                }
                {
                    let mut set = in_flight.lock().unwrap_or_else(|e| e.into_inner());
                    for id in ids {
                        set.remove(&id);
                    }
                }
                if let Some(k) = key {
                    busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&k);
                }
                drop(permit);
                wake.notify_one();
            });
        }
        Ok(())
    }
}

/// Renders one delivery's message, or says why it cannot be rendered.
fn render(app: &App, d: &Delivery) -> Result<(Rendered, Option<String>), Outcome> {
    let r = app.store.read().map_err(|e| Outcome::Transient {
        reason: e.to_string(),
        retry_after: None,
    })?;
    let event = access::get::<DomainEvent>(&r, d.event_seq)
        .map_err(|e| Outcome::Transient {
            reason: e.to_string(),
            retry_after: None,
        })?
        .ok_or_else(|| {
            Outcome::Permanent(format!("event {} is no longer in the log", d.event_seq))
        })?;
    let base = app.public_url();
    let ctx = templates::context(&r, &base, &event).map_err(|e| Outcome::Transient {
        reason: e.to_string(),
        retry_after: None,
    })?;
    // Press 1 is offered only where someone answers as a user.
    let answers =
        crate::app::notifications::voice::who_answers(&r, d).map_err(|e| Outcome::Transient {
            reason: e.to_string(),
            retry_after: None,
        })?;
    let callback = answers.map(|_| format!("{base}/hooks/twilio/voice/{}", d.id));
    let rendered = match d.channel {
        ChannelKind::Webhook => {
            let body = json!({"delivery_id": d.id, "event": ctx["event"], "incident": ctx["incident"], "problem": ctx["problem"], "site": ctx["site"]});
            Rendered {
                subject: None,
                body: body.to_string(),
            }
        }
        ChannelKind::Slack | ChannelKind::Discord => {
            let incident = event
                .incident_id
                .and_then(|id| crate::app::incidents::load(&r, id).ok());
            let transient = |e: crate::store::StoreError| Outcome::Transient {
                reason: e.to_string(),
                retry_after: None,
            };
            let message = match incident.filter(|_| d.shows_incident()) {
                Some(i) => {
                    let card =
                        crate::chat::views::incident_card(&r, &base, &i).map_err(transient)?;
                    if d.channel == ChannelKind::Discord {
                        crate::chat::discord::render::card(&card)
                    } else {
                        let (text, blocks) = crate::chat::slack::blocks::card(&card);
                        json!({"text": text, "blocks": blocks})
                    }
                }
                None => {
                    let text = templates::render(&r, ChannelKind::Sms, event.kind, &ctx)
                        .map_err(transient)?
                        .map_err(Outcome::Permanent)?
                        .body;
                    // Approvers are asked with buttons that decide, while the request is
                    // still open (a delivery retried for long may arrive after the end).
                    let open = || {
                        event
                            .data
                            .get("approval_id")
                            .and_then(Value::as_u64)
                            .and_then(|id| access::get::<ApprovalRequest>(&r, id).ok().flatten())
                            .is_some_and(|a| a.is_open(app.clock.now()))
                    };
                    let asks = (event.kind == EventKind::ApprovalRequested && open())
                        .then(|| event.data.get("number").and_then(Value::as_str))
                        .flatten();
                    if d.channel == ChannelKind::Discord {
                        crate::chat::discord::render::message(&text, asks)
                    } else {
                        crate::chat::slack::blocks::message(&text, asks)
                    }
                }
            };
            Rendered {
                subject: None,
                body: message.to_string(),
            }
        }
        channel => templates::render(&r, channel, event.kind, &ctx)
            .map_err(|e| Outcome::Transient {
                reason: e.to_string(),
                retry_after: None,
            })?
            .map_err(Outcome::Permanent)?,
    };
    Ok((rendered, callback))
}

/// Sends one delivery, or a group for one rate-limited address as one summary.
async fn deliver(app: &App, channels: &Channels, unit: Vec<Delivery>) -> Vec<(u64, Outcome)> {
    let Some(primary) = unit.first().cloned() else {
        return vec![];
    };
    let Some(channel) = channels.get(primary.channel) else {
        let reason = format!("{} is not configured", primary.channel);
        return unit
            .iter()
            .map(|d| (d.id, Outcome::Permanent(reason.clone())))
            .collect();
    };
    let mut outcomes = Vec::new();
    let mut parts = Vec::new();
    let mut callback = None;
    for d in &unit {
        match render(app, d) {
            Ok((r, cb)) => {
                if callback.is_none() {
                    callback = cb;
                }
                parts.push((d.id, r));
            }
            Err(o) => outcomes.push((d.id, o)),
        }
    }
    let Some((first_id, first)) = parts.first().cloned() else {
        return outcomes;
    };
    let is_card = primary.is_chat_card();
    // A chat card shows the incident as it is now: one send covers the whole group.
    let rendered = if parts.len() == 1 || is_card {
        first
    } else {
        let lines: Vec<String> = parts
            .iter()
            .map(|(_, r)| r.body.replace("[incidentd] ", ""))
            .collect();
        let intro = match primary.channel {
            ChannelKind::Voice => format!("You have {} new notifications.", lines.len()),
            _ => format!("[incidentd] {} updates:", lines.len()),
        };
        Rendered {
            subject: first.subject.clone(),
            body: format!("{intro} {}", lines.join(" | ")),
        }
    };
    let sender = unit
        .iter()
        .find(|d| d.id == first_id)
        .cloned()
        .unwrap_or(primary);
    let update_ref = match (is_card, sender.incident_id) {
        (true, Some(incident)) => app.store.read().ok().and_then(|r| {
            outbox::card_ref(&r, sender.channel, incident, &sender.target)
                .ok()
                .flatten()
        }),
        _ => None,
    };
    let message = Outbound {
        delivery: sender,
        rendered,
        callback_url: callback,
        update_ref,
    };
    let started = std::time::Instant::now();
    let result = channel.send(&message).await;
    metrics::histogram!("incidentd_delivery_seconds", "channel" => message.delivery.channel.as_str()).record(started.elapsed().as_secs_f64());
    let others = parts.iter().skip(1).map(|(id, _)| *id);
    match result {
        Ok(provider) => {
            metrics::counter!("incidentd_deliveries_total", "channel" => message.delivery.channel.as_str(), "result" => "sent").increment(1);
            outcomes.push((first_id, Outcome::Sent(provider)));
            outcomes.extend(others.map(|id| (id, Outcome::Collapsed(first_id))));
        }
        Err(SendError::Transient {
            reason,
            retry_after,
        }) => {
            metrics::counter!("incidentd_deliveries_total", "channel" => message.delivery.channel.as_str(), "result" => "retry").increment(1);
            tracing::info!(delivery = first_id, %reason, "delivery failed; will retry");
            for (id, _) in &parts {
                outcomes.push((
                    *id,
                    Outcome::Transient {
                        reason: reason.clone(),
                        retry_after,
                    },
                ));
            }
        }
        Err(SendError::Permanent(reason)) => {
            metrics::counter!("incidentd_deliveries_total", "channel" => message.delivery.channel.as_str(), "result" => "dead").increment(1);
            tracing::warn!(delivery = first_id, %reason, "delivery failed for good");
            for (id, _) in &parts {
                outcomes.push((*id, Outcome::Permanent(reason.clone())));
            }
        }
    }
    outcomes
}
