//! Alert ingestion and the alert list.
//!
//! One request's alerts go through silences, routing, dedup and grouping into incidents in
//! ONE write transaction, which the webhook's 2xx waits for (group commit shares it with
//! other requests). Processing is idempotent: the same payload delivered again finds every
//! alert by fingerprint and only refreshes it.
//!
//! For each alert, by what the store already knows of its fingerprint:
//! - firing, on an open incident: deduplicated (last seen, count, annotations);
//! - firing, on an incident resolved within the reopen window: the incident reopens;
//! - firing, matched by an active silence: stored as silenced, opens nothing;
//! - firing, otherwise: joins the open incident of its group, or opens one;
//! - resolved: the alert resolves; an incident whose alerts have all resolved resolves
//!   (per integration, on by default). An alert is never resolved by its absence from a
//!   payload (Alertmanager's `truncatedAlerts`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::events::{self, Subject};
use super::incidents::{self, Opening};
pub use super::ingest_queue::{Source, Wait};
use super::page::{Page, PageRequest, Take, walk};
use super::{App, AppError, AppResult, FieldErrors, require};
use crate::domain::actor::Actor;
use crate::domain::alert::{
    Alert, AlertState, Batch, IncomingAction, IncomingAlert, Levels, group_key, group_key_of,
};
use crate::domain::event::EventKind;
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::integration::{Integration, IntegrationKind};
use crate::domain::permission::Permission;
use crate::domain::silence::{Router, Silencer};
use crate::store::StoreError;
use crate::store::access::{self, Order, Reader, Record};
use crate::store::keys::{Key, KeyReader};
use crate::store::tables::{self, alert_field as field};

/// What one request did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct IngestSummary {
    /// Alerts in the payload.
    pub received: usize,
    /// Alerts that joined or opened an incident for the first time (or again after their
    /// incident ended); muted ones count in `silenced` instead.
    pub new: usize,
    /// Alerts already firing on an open incident (refreshed only).
    pub deduplicated: usize,
    /// Alerts firing again on their incident, which reopens if it had resolved.
    #[serde(default)]
    pub refired: usize,
    /// Alerts that resolved: firing ones, and ones first seen resolved (a resolve delivered
    /// again counts once).
    pub resolved: usize,
    /// Alerts muted by a silence.
    pub silenced: usize,
    /// Incidents opened.
    pub opened: Vec<u64>,
    /// Incidents reopened.
    pub reopened: Vec<u64>,
    /// Incidents auto-resolved.
    pub auto_resolved: Vec<u64>,
    /// Incidents acknowledged (PagerDuty `acknowledge`).
    pub acknowledged: Vec<u64>,
    /// Alerts the sender said it left out; their state is unchanged.
    pub truncated: u64,
}

/// Changes the requests of one transaction make to one incident, applied once at the end.
#[derive(Debug, Default)]
struct Touch {
    attached: Vec<u64>,
    refired: Vec<u64>,
    resolved: Vec<u64>,
    levels: Vec<Levels>,
    /// The requests (indexes into the session's summaries) that resolved alerts of it.
    resolving_requests: BTreeSet<usize>,
    /// Per the integration of the request that touched it last.
    auto_resolve: bool,
    actor: Option<Actor>,
    /// The latest request time that touched it.
    now: Option<DateTime<Utc>>,
}

/// A firing alert on its way into a silence or an incident ([`Session::place`]).
struct Placement<'a> {
    /// Its fingerprint key.
    key: Vec<u8>,
    /// The stored record it replaces, if any.
    before: Option<Alert>,
    /// The record to store.
    alert: Alert,
    /// The group it joins.
    group: String,
    /// The silence muting it.
    silenced: Option<u64>,
    /// The labels routing goes by: the delivery's (the stored record keeps those of its
    /// first delivery).
    labels: &'a BTreeMap<String, String>,
    /// The severity its levels come from: the delivery's, even if absent.
    severity: Option<&'a str>,
}

/// Incidents read during one batch, so that a hundred alerts of one group load their
/// incident once. Entries are dropped whenever the batch changes the incident.
#[derive(Default)]
struct IncidentCache(HashMap<u64, Option<Incident>>);

impl IncidentCache {
    fn get(&mut self, tx: &WriteTransaction, id: u64) -> Result<Option<Incident>, StoreError> {
        if let Some(i) = self.0.get(&id) {
            return Ok(i.clone());
        }
        let i = access::get::<Incident>(tx, id)?;
        self.0.insert(id, i.clone());
        Ok(i)
    }

    fn forget(&mut self, id: u64) {
        self.0.remove(&id);
    }

    fn put(&mut self, i: Incident) {
        self.0.insert(i.id, Some(i));
    }
}

/// Ingests a parsed batch for `integration`. Sheds load with [`AppError::Busy`] (503) when
/// the queue is full. Answers once the batch is durable (in the redo log, see
/// [`super::ingest_queue`]), and with what it did if `wait` is [`Wait::Applied`].
pub async fn ingest(
    app: &App,
    integration: std::sync::Arc<Integration>,
    batch: Batch,
    source: Source,
    wait: Wait,
) -> AppResult<Option<IngestSummary>> {
    super::ingest_queue::submit(app, integration, batch, source, wait).await
}

/// Whether `age` is at most `window_secs` (any window holds what is not yet old).
fn within(age: chrono::Duration, window_secs: u64) -> bool {
    u64::try_from(age.num_seconds()).map_or(true, |age| age <= window_secs)
}

fn fp_key(integration: u64, fingerprint: &str) -> Vec<u8> {
    Key::new().u64(integration).str(fingerprint).into_bytes()
}

fn index_entries(a: &Alert) -> BTreeSet<(u8, u64)> {
    let mut out = BTreeSet::new();
    out.insert((field::STATE, u64::from(a.state.code())));
    out.insert((field::INTEGRATION, a.integration_id));
    if let Some(i) = a.incident_id {
        out.insert((field::INCIDENT, i));
    }
    if let (AlertState::Firing, Some(s)) = (a.state, a.silenced_by) {
        out.insert((field::SILENCE, s));
    }
    out
}

/// The three alert tables, opened once for a whole batch: a hundred alerts would
/// otherwise open each table hundreds of times (opening costs more than the insert).
/// Nothing else may open these tables while they are held.
///
/// Index and fingerprint entries are kept aside and written in key order by
/// [`AlertTables::flush`]: fingerprints are random, and inserting a thousand of them in
/// order walks each B-tree leaf once instead of jumping around the tree.
struct AlertTables<'t> {
    alerts: redb::Table<'t, &'static [u8], &'static [u8]>,
    index: redb::Table<'t, &'static [u8], &'static [u8]>,
    by_fingerprint: redb::Table<'t, &'static [u8], &'static [u8]>,
    /// Fingerprint keys pointed at new records, not yet written.
    points: HashMap<Vec<u8>, u64>,
    /// Index keys to insert (`true`) or remove, in the order decided.
    index_changes: Vec<(Vec<u8>, bool)>,
}

impl<'t> AlertTables<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            alerts: tx.open_table(tables::ALERTS)?,
            index: tx.open_table(tables::ALERT_INDEX)?,
            by_fingerprint: tx.open_table(tables::ALERTS_BY_FINGERPRINT)?,
            points: HashMap::new(),
            index_changes: Vec::new(),
        })
    }

    /// The latest record of a fingerprint.
    fn by_fingerprint(&self, key: &[u8]) -> Result<Option<Alert>, StoreError> {
        use redb::ReadableTable;
        let id = match self.points.get(key) {
            Some(id) => Some(*id),
            None => self
                .by_fingerprint
                .get(key)?
                .and_then(|g| crate::store::keys::id_from_key(g.value())),
        };
        match id {
            Some(id) => self.get(id),
            None => Ok(None),
        }
    }

    /// The alert record `id`.
    fn get(&self, id: u64) -> Result<Option<Alert>, StoreError> {
        use redb::ReadableTable;
        self.alerts
            .get(crate::store::keys::id_key(id).as_slice())?
            .map(|g| Alert::from_bytes(g.value()))
            .transpose()
    }

    /// Deletes an alert, its index entries, and its fingerprint's pointer if it is the
    /// latest record of the fingerprint.
    fn delete(&mut self, a: &Alert) -> Result<(), StoreError> {
        use redb::ReadableTable;
        self.alerts
            .remove(crate::store::keys::id_key(a.id).as_slice())?;
        for (f, v) in index_entries(a) {
            let key = Key::new().u8(f).u64(v).u64(a.id).into_bytes();
            self.index_changes.push((key, false));
        }
        let fp = fp_key(a.integration_id, &a.fingerprint);
        let latest = self
            .by_fingerprint
            .get(fp.as_slice())?
            .and_then(|g| crate::store::keys::id_from_key(g.value()));
        if latest == Some(a.id) {
            self.by_fingerprint.remove(fp.as_slice())?;
        }
        Ok(())
    }

    /// Makes `id` the latest record of a fingerprint.
    fn point(&mut self, key: &[u8], id: u64) {
        self.points.insert(key.to_vec(), id);
    }

    /// Writes an alert and moves its index entries from `before`'s to its own.
    fn save(&mut self, before: Option<&Alert>, after: &Alert) -> Result<(), StoreError> {
        self.alerts.insert(
            crate::store::keys::id_key(after.id).as_slice(),
            after.to_bytes()?.as_slice(),
        )?;
        let old = before.map(index_entries).unwrap_or_default();
        let new = index_entries(after);
        let key = |(f, v): &(u8, u64)| Key::new().u8(*f).u64(*v).u64(after.id).into_bytes();
        for gone in old.difference(&new) {
            self.index_changes.push((key(gone), false));
        }
        for added in new.difference(&old) {
            self.index_changes.push((key(added), true));
        }
        Ok(())
    }

    /// Writes the entries kept aside, each table in key order (changes to one key keep
    /// their order: the sort is stable).
    fn flush(&mut self) -> Result<(), StoreError> {
        let mut points: Vec<_> = self.points.drain().collect();
        points.sort_unstable();
        for (key, id) in points {
            self.by_fingerprint
                .insert(key.as_slice(), crate::store::keys::id_key(id).as_slice())?;
        }
        let mut changes = std::mem::take(&mut self.index_changes);
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, insert) in changes {
            if insert {
                self.index.insert(key.as_slice(), [].as_slice())?;
            } else {
                self.index.remove(key.as_slice())?;
            }
        }
        Ok(())
    }
}

/// Whether `incoming` only names its alert: PagerDuty's acknowledge and resolve events
/// carry no payload (its parser reads none), so they change an alert's state, never its
/// content, and create no record.
fn names_only(integration: &Integration, incoming: &IncomingAlert) -> bool {
    integration.kind == IntegrationKind::Pagerduty && incoming.action != IncomingAction::Fire
}

/// Copies what the latest delivery says onto a stored alert (only the time and count for
/// an event that [`names_only`] it).
fn refresh(a: &mut Alert, incoming: &IncomingAlert, now: DateTime<Utc>, names_only: bool) {
    a.last_seen_at = now;
    a.receive_count += 1;
    if names_only {
        return;
    }
    a.annotations = incoming.annotations.clone();
    a.title = incoming.title.clone();
    a.description = incoming.description.clone();
    a.links = incoming.links.clone();
    if incoming.severity.is_some() {
        a.severity = incoming.severity.clone();
    }
    if incoming.starts_at.is_some() {
        a.starts_at = incoming.starts_at;
    }
}

/// Alert ids for one batch: the sequence is read once and written back once
/// ([`AlertIds::finish`]) instead of twice per new alert. Only `new_alert` takes alert ids
/// inside the ingestion transaction.
struct AlertIds {
    start: u64,
    last: u64,
}

impl AlertIds {
    fn open(tx: &WriteTransaction) -> Result<Self, StoreError> {
        let last = access::last_id(tx, tables::ALERTS)?;
        Ok(Self { start: last, last })
    }

    fn next(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    fn finish(&self, tx: &WriteTransaction) -> Result<(), StoreError> {
        if self.last > self.start {
            access::bump_sequence(tx, tables::ALERTS, self.last)?;
        }
        Ok(())
    }
}

/// A stored record refreshed by `incoming` (with the record as it was), or a new one.
fn reuse_or_new(
    reusable: Option<Alert>,
    ids: &mut AlertIds,
    integration: &Integration,
    incoming: &IncomingAlert,
    now: DateTime<Utc>,
) -> (Option<Alert>, Alert) {
    match reusable {
        Some(b) => {
            let mut a = b.clone();
            refresh(&mut a, incoming, now, false);
            (Some(b), a)
        }
        None => (None, new_alert(ids, integration, incoming, now)),
    }
}

fn new_alert(
    ids: &mut AlertIds,
    integration: &Integration,
    incoming: &IncomingAlert,
    now: DateTime<Utc>,
) -> Alert {
    Alert {
        id: ids.next(),
        integration_id: integration.id,
        fingerprint: incoming.fingerprint.clone(),
        state: AlertState::Firing,
        silenced_by: None,
        incident_id: None,
        labels: incoming.labels.clone(),
        annotations: incoming.annotations.clone(),
        title: incoming.title.clone(),
        description: incoming.description.clone(),
        severity: incoming.severity.clone(),
        starts_at: incoming.starts_at,
        ends_at: None,
        first_seen_at: now,
        last_seen_at: now,
        receive_count: 1,
        group_key: None,
        links: incoming.links.clone(),
    }
}

/// The pipeline for any number of requests inside one transaction: a hundred requests
/// that hit one incident update it, its timeline and its event stream once.
struct Session<'t> {
    tx: &'t WriteTransaction,
    /// `None` once the per-incident work began (it may read the alert tables).
    tables: Option<AlertTables<'t>>,
    silences: Vec<crate::domain::silence::Silence>,
    /// The silencer compiled for the latest `now` seen.
    silencer: Option<(DateTime<Utc>, Silencer)>,
    router: Router,
    cache: IncidentCache,
    ids: AlertIds,
    /// Group key -> incident, read once per transaction.
    groups: HashMap<Vec<u8>, Option<u64>>,
    touches: BTreeMap<u64, Touch>,
    summaries: Vec<IngestSummary>,
}

/// The session's alert tables, while the per-alert work goes on.
fn open_tables<'s, 't>(
    tables: &'s mut Option<AlertTables<'t>>,
) -> AppResult<&'s mut AlertTables<'t>> {
    tables
        .as_mut()
        .ok_or_else(|| AppError::Internal("alerts added after the session finished".into()))
}

/// The touch of `incident`, noting who touched it last and when.
fn touch<'a>(
    touches: &'a mut BTreeMap<u64, Touch>,
    incident: u64,
    integration: &Integration,
    actor: &Actor,
    now: DateTime<Utc>,
) -> &'a mut Touch {
    let t = touches.entry(incident).or_default();
    t.auto_resolve = integration.settings.auto_resolve;
    t.actor = Some(actor.clone());
    t.now = Some(t.now.map_or(now, |n| n.max(now)));
    t
}

impl<'t> Session<'t> {
    /// Starts a session for requests received at `since` or later.
    fn open(tx: &'t WriteTransaction, since: DateTime<Utc>) -> AppResult<Self> {
        Ok(Self {
            tx,
            silences: super::silences::current(tx, since)?,
            silencer: None,
            router: Router::new(super::routing::all(tx)?),
            cache: IncidentCache::default(),
            ids: AlertIds::open(tx)?,
            groups: HashMap::new(),
            touches: BTreeMap::new(),
            summaries: Vec::new(),
            tables: Some(AlertTables::open(tx)?),
        })
    }

    /// The silences in force at `now`, compiled once per distinct `now`.
    fn silencer_at(&mut self, now: DateTime<Utc>) -> Option<&Silencer> {
        if self.silences.is_empty() {
            return None;
        }
        if self.silencer.as_ref().is_none_or(|(at, _)| *at != now) {
            self.silencer = Some((now, Silencer::new(&self.silences, now)));
        }
        self.silencer.as_ref().map(|(_, s)| s)
    }

    /// Runs one request's alerts through silences, routing, dedup and grouping.
    fn add(
        &mut self,
        now: DateTime<Utc>,
        integration: &Integration,
        batch: &Batch,
    ) -> AppResult<()> {
        let request = self.summaries.len();
        let actor = Actor::integration(integration.id, &integration.name);
        let mut summary = IngestSummary {
            received: batch.alerts.len(),
            truncated: batch.truncated,
            ..Default::default()
        };
        for incoming in &batch.alerts {
            self.one(now, integration, &actor, request, incoming, &mut summary)?;
        }
        self.summaries.push(summary);
        Ok(())
    }

    /// One alert of request number `request`.
    fn one(
        &mut self,
        now: DateTime<Utc>,
        integration: &Integration,
        actor: &Actor,
        request: usize,
        incoming: &IncomingAlert,
        summary: &mut IngestSummary,
    ) -> AppResult<()> {
        let settings = &integration.settings;
        let silenced = match incoming.action {
            IncomingAction::Fire => self
                .silencer_at(now)
                .and_then(|s| s.silenced_by(&incoming.labels)),
            _ => None,
        };
        let Session {
            tx,
            tables,
            cache,
            ids,
            touches,
            ..
        } = self;
        let tx: &WriteTransaction = tx;
        let tables = open_tables(tables)?;
        let key = fp_key(integration.id, &incoming.fingerprint);
        let existing: Option<Alert> = tables.by_fingerprint(&key)?;
        let current_incident = match existing.as_ref().and_then(|a| a.incident_id) {
            Some(id) => cache.get(tx, id)?,
            None => None,
        };
        match incoming.action {
            IncomingAction::Acknowledge => {
                if let Some(i) = current_incident.filter(|i| i.status == IncidentStatus::New) {
                    incidents::transition_in_tx(
                        tx,
                        now,
                        actor,
                        i.id,
                        IncidentStatus::Acknowledged,
                        Some("acknowledged at the source"),
                    )?;
                    cache.forget(i.id);
                    summary.acknowledged.push(i.id);
                }
            }
            IncomingAction::Resolve => {
                match existing {
                    Some(before) => {
                        let mut a = before.clone();
                        let was_firing = a.state == AlertState::Firing;
                        refresh(&mut a, incoming, now, names_only(integration, incoming));
                        a.state = AlertState::Resolved;
                        a.ends_at = incoming.ends_at.or(a.ends_at).or(Some(now));
                        tables.save(Some(&before), &a)?;
                        if was_firing {
                            summary.resolved += 1;
                        }
                        if was_firing && let Some(inc) = a.incident_id {
                            let t = touch(touches, inc, integration, actor, now);
                            t.resolved.push(a.id);
                            t.resolving_requests.insert(request);
                        }
                    }
                    // PagerDuty: resolving a dedup key nobody triggered does nothing.
                    None if names_only(integration, incoming) => {}
                    None => {
                        // Never seen firing: keep the record, open nothing.
                        summary.resolved += 1;
                        let mut a = new_alert(ids, integration, incoming, now);
                        a.state = AlertState::Resolved;
                        a.ends_at = incoming.ends_at.or(Some(now));
                        tables.save(None, &a)?;
                        tables.point(&key, a.id);
                    }
                }
            }
            IncomingAction::Fire => {
                // 1. Still on an open incident: dedup (or re-fire within it).
                if let (Some(before), Some(inc)) = (&existing, &current_incident)
                    && inc.status.is_open()
                {
                    let mut a = before.clone();
                    let refired = a.state == AlertState::Resolved;
                    refresh(&mut a, incoming, now, false);
                    a.state = AlertState::Firing;
                    a.ends_at = None;
                    tables.save(Some(before), &a)?;
                    if refired {
                        summary.refired += 1;
                        let t = touch(touches, inc.id, integration, actor, now);
                        t.refired.push(a.id);
                        t.levels
                            .push(settings.severity_map.levels(incoming.severity.as_deref()));
                    } else {
                        summary.deduplicated += 1;
                    }
                    return Ok(());
                }
                // 2. Its incident resolved recently: reopen it (unless now silenced).
                if let (Some(before), Some(inc), None) = (&existing, &current_incident, silenced)
                    && inc.status == IncidentStatus::Resolved
                    && settings.reopen_window_secs > 0
                    && inc
                        .resolved_at
                        .is_some_and(|r| within(now - r, settings.reopen_window_secs))
                {
                    // Resolved by hand while the alert kept firing, the incident
                    // reopens on the sender's next repeat; the alert was counted as
                    // firing all along, so only an alert that had resolved fires again.
                    let refired = before.state == AlertState::Resolved;
                    let why = if refired {
                        format!("alert fired again: {}", incoming.title)
                    } else {
                        format!("alert still firing: {}", incoming.title)
                    };
                    incidents::transition_in_tx(
                        tx,
                        now,
                        actor,
                        inc.id,
                        IncidentStatus::New,
                        Some(&why),
                    )?;
                    cache.forget(inc.id);
                    let mut a = before.clone();
                    refresh(&mut a, incoming, now, false);
                    a.state = AlertState::Firing;
                    a.ends_at = None;
                    tables.save(Some(before), &a)?;
                    if refired {
                        touch(touches, inc.id, integration, actor, now)
                            .refired
                            .push(a.id);
                    }
                    summary.reopened.push(inc.id);
                    if refired {
                        summary.refired += 1;
                    } else {
                        summary.deduplicated += 1;
                    }
                    return Ok(());
                }
                // 3-4. The stored record is reused only if it never joined an incident. One
                // still firing on an incident that ended (closed, cancelled, or resolved
                // beyond the reopen window) ends here: the new record carries its
                // fingerprint on, and nothing would ever resolve the old one.
                if let Some(old) = existing.as_ref().filter(|a| a.state == AlertState::Firing)
                    && let Some(inc) = old.incident_id
                {
                    let mut ended = old.clone();
                    ended.state = AlertState::Resolved;
                    ended.ends_at = Some(now);
                    tables.save(Some(old), &ended)?;
                    // Its incident stops counting it as firing (a timeline entry says so).
                    touch(touches, inc, integration, actor, now)
                        .resolved
                        .push(old.id);
                }
                let reusable = existing.filter(|a| a.incident_id.is_none());
                let (before, alert) = reuse_or_new(reusable, ids, integration, incoming, now);
                let placement = Placement {
                    key,
                    before,
                    alert,
                    group: group_key(&settings.group_by, incoming),
                    silenced,
                    labels: &incoming.labels,
                    severity: incoming.severity.as_deref(),
                };
                self.place(now, integration, actor, placement, summary)?;
            }
        }
        Ok(())
    }

    /// Steps 3 and 4 for a firing alert that no open incident holds: muted by a silence
    /// (stored, opens nothing), or into its group's open incident, opening one if there
    /// is none.
    fn place(
        &mut self,
        now: DateTime<Utc>,
        integration: &Integration,
        actor: &Actor,
        placement: Placement<'_>,
        summary: &mut IngestSummary,
    ) -> AppResult<()> {
        let Placement {
            key,
            before,
            alert: mut a,
            group: gkey,
            silenced,
            labels: placement_labels,
            severity: placement_severity,
        } = placement;
        let settings = &integration.settings;
        let Session {
            tx,
            tables,
            router,
            cache,
            groups,
            touches,
            ..
        } = self;
        let tx: &WriteTransaction = tx;
        let tables = open_tables(tables)?;
        a.state = AlertState::Firing;
        a.ends_at = None;
        // 3. Silenced: stored with the group it would join once the silence ends.
        if let Some(silence_id) = silenced {
            a.silenced_by = Some(silence_id);
            a.group_key = Some(gkey);
            tables.save(before.as_ref(), &a)?;
            tables.point(&key, a.id);
            summary.silenced += 1;
            return Ok(());
        }
        // 4. Join the group's open incident, or open one.
        summary.new += 1;
        let group_db_key = Key::new().u64(integration.id).str(&gkey).into_bytes();
        let group_incident = match groups.get(&group_db_key) {
            Some(known) => *known,
            None => {
                let id = access::get_id(tx, tables::ALERT_GROUPS, &group_db_key)?;
                groups.insert(group_db_key.clone(), id);
                id
            }
        };
        let joinable = match group_incident {
            Some(id) => cache.get(tx, id)?.filter(|i| {
                i.status.is_open()
                    && settings
                        .group_window_secs
                        .is_none_or(|w| within(now - i.created_at, w))
            }),
            None => None,
        };
        let route = router.route(integration.id, placement_labels);
        let mapped = settings.severity_map.levels(placement_severity);
        let levels = Levels {
            impact: route.impact.unwrap_or(mapped.impact),
            urgency: route.urgency.unwrap_or(mapped.urgency),
        };
        let mut opened_by_this = false;
        let incident_id = match joinable {
            Some(i) => i.id,
            None => {
                let opening = Opening {
                    title: a.title.clone(),
                    description: a.description.clone(),
                    impact: levels.impact,
                    urgency: levels.urgency,
                    service_id: route.service_id.unwrap_or(integration.service_id),
                    assignee_id: None,
                    group_id: None,
                    integration_id: Some(integration.id),
                    escalation_policy_id: route
                        .escalation_policy_id
                        .or(integration.escalation_policy_id),
                };
                let opened = incidents::open_in_tx(tx, now, &actor.reference, &opening)?;
                access::put_id(tx, tables::ALERT_GROUPS, &group_db_key, opened.id)?;
                groups.insert(group_db_key.clone(), Some(opened.id));
                cache.put(opened.clone());
                summary.opened.push(opened.id);
                opened_by_this = true;
                opened.id
            }
        };
        a.silenced_by = None;
        a.incident_id = Some(incident_id);
        a.group_key = Some(gkey);
        tables.save(before.as_ref(), &a)?;
        tables.point(&key, a.id);
        let t = touch(touches, incident_id, integration, actor, now);
        t.attached.push(a.id);
        if !opened_by_this {
            t.levels.push(levels);
        }
        Ok(())
    }

    /// Reconsiders a firing alert a silence muted, as if it had just arrived but without
    /// counting a delivery: it stays muted while a silence in force at `now` matches it
    /// (preferably the one that muted it), else it joins or opens its group's incident.
    fn reconsider(
        &mut self,
        now: DateTime<Utc>,
        integration: &Integration,
        alert: Alert,
    ) -> AppResult<()> {
        let silenced = self.silencer_at(now).and_then(|s| {
            alert
                .silenced_by
                .filter(|id| s.mutes(*id, &alert.labels))
                .or_else(|| s.silenced_by(&alert.labels))
        });
        let mut summary = IngestSummary {
            received: 1,
            ..Default::default()
        };
        if silenced.is_some() && silenced == alert.silenced_by {
            summary.silenced = 1;
            self.summaries.push(summary);
            return Ok(());
        }
        let actor = Actor::integration(integration.id, &integration.name);
        let group = alert.group_key.clone().unwrap_or_else(|| {
            group_key_of(
                &integration.settings.group_by,
                &alert.labels,
                None,
                &alert.fingerprint,
            )
        });
        let (labels, severity) = (alert.labels.clone(), alert.severity.clone());
        let placement = Placement {
            key: fp_key(integration.id, &alert.fingerprint),
            before: Some(alert.clone()),
            alert,
            group,
            silenced,
            labels: &labels,
            severity: severity.as_deref(),
        };
        self.place(now, integration, &actor, placement, &mut summary)?;
        self.summaries.push(summary);
        Ok(())
    }

    /// Applies the incident changes once per incident and answers each request.
    fn finish(mut self) -> AppResult<Vec<IngestSummary>> {
        let tx = self.tx;
        if let Some(mut tables) = self.tables.take() {
            tables.flush()?;
        }
        self.ids.finish(tx)?;
        for (incident_id, touch) in std::mem::take(&mut self.touches) {
            let (Some(actor), Some(now)) = (touch.actor.clone(), touch.now) else {
                continue;
            };
            self.cache.forget(incident_id);
            let Some(before) = self.cache.get(tx, incident_id)? else {
                continue;
            };
            let mut i = before.clone();
            i.alert_count += touch.attached.len() as u64;
            i.firing_alerts =
                (i.firing_alerts + touch.attached.len() as u64 + touch.refired.len() as u64)
                    .saturating_sub(touch.resolved.len() as u64);
            // A more severe alert joining raises the incident; nothing lowers it.
            let mut raised = false;
            for l in &touch.levels {
                if i.status.is_open() && (l.impact < i.impact || l.urgency < i.urgency) {
                    i.impact = i.impact.min(l.impact);
                    i.urgency = i.urgency.min(l.urgency);
                    raised = true;
                }
            }
            if raised {
                i.priority = super::settings::priority_matrix(tx)?.priority(i.impact, i.urgency);
            }
            i.updated_at = now;
            incidents::save(tx, Some(&before), &i)?;
            let mut parts = Vec::new();
            if !touch.attached.is_empty() {
                parts.push(format!("{} alert(s) attached", touch.attached.len()));
            }
            if !touch.refired.is_empty() {
                parts.push(format!("{} alert(s) firing again", touch.refired.len()));
            }
            if !touch.resolved.is_empty() {
                parts.push(format!("{} alert(s) resolved", touch.resolved.len()));
            }
            if raised {
                parts.push(format!("priority raised to {}", i.priority));
            }
            let summary_line = format!(
                "{}; {} of {} firing",
                parts.join(", "),
                i.firing_alerts,
                i.alert_count
            );
            incidents::timeline(
                tx,
                incident_id,
                now,
                &actor.reference,
                "alerts",
                summary_line,
                json!({"attached": touch.attached, "refired": touch.refired, "resolved": touch.resolved, "firing": i.firing_alerts, "total": i.alert_count}),
            )?;
            events::publish(
                tx,
                now,
                EventKind::IncidentAlertsChanged,
                &actor.reference,
                Subject::incident(incident_id),
                json!({"firing": i.firing_alerts, "total": i.alert_count, "attached": touch.attached.len(), "resolved": touch.resolved.len()}),
            )?;
            if !touch.resolved.is_empty()
                && i.firing_alerts == 0
                && touch.auto_resolve
                && i.status.is_open()
            {
                incidents::transition_in_tx(
                    tx,
                    now,
                    &actor,
                    incident_id,
                    IncidentStatus::Resolved,
                    Some("all alerts resolved"),
                )?;
                for r in &touch.resolving_requests {
                    self.summaries[*r].auto_resolved.push(incident_id);
                }
            }
        }
        Ok(self.summaries)
    }
}

/// The pipeline for several requests, `(received at, integration, batch)` each, inside one
/// transaction; one summary per request, in order.
pub(crate) fn ingest_many_in_tx<'a>(
    tx: &WriteTransaction,
    requests: impl Iterator<Item = (DateTime<Utc>, &'a Integration, &'a Batch)> + Clone,
) -> AppResult<Vec<IngestSummary>> {
    let Some(since) = requests.clone().map(|(now, _, _)| now).min() else {
        return Ok(Vec::new());
    };
    let mut session = Session::open(tx, since)?;
    for (now, integration, batch) in requests {
        session.add(now, integration, batch)?;
    }
    session.finish()
}

/// Reconsiders firing alerts that silences muted, at `now` (see `Session::reconsider`):
/// each stays muted while a silence in force matches it, else joins or opens its group's
/// incident. One summary per alert with an integration, in order. An alert whose
/// integration is gone is unmuted and left alone: nothing routes it any more.
pub(crate) fn reconsider_in_tx(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    alerts: Vec<Alert>,
) -> AppResult<Vec<IngestSummary>> {
    let mut integrations: HashMap<u64, Option<Integration>> = HashMap::new();
    for a in &alerts {
        if let std::collections::hash_map::Entry::Vacant(e) = integrations.entry(a.integration_id) {
            e.insert(access::get::<Integration>(tx, a.integration_id)?);
        }
    }
    let mut session = Session::open(tx, now)?;
    let mut orphans = Vec::new();
    for a in alerts {
        match integrations.get(&a.integration_id).and_then(Option::as_ref) {
            Some(integration) => session.reconsider(now, integration, a)?,
            None => orphans.push(a),
        }
    }
    let summaries = session.finish()?;
    if !orphans.is_empty() {
        let mut tables = AlertTables::open(tx)?;
        for before in orphans {
            let mut a = before.clone();
            a.silenced_by = None;
            tables.save(Some(&before), &a)?;
        }
        tables.flush()?;
    }
    Ok(summaries)
}

/// The silences muting at least one firing alert, ascending: one index seek per silence.
pub(crate) fn muting_silences(r: &impl Reader) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    let end = Key::new().u8(field::SILENCE + 1).into_bytes();
    loop {
        let start = match ids.last() {
            None => Key::new().u8(field::SILENCE).into_bytes(),
            Some(last) => Key::new().u8(field::SILENCE).u64(last + 1).into_bytes(),
        };
        let mut found = None;
        r.scan_raw(
            tables::ALERT_INDEX,
            std::ops::Bound::Included(start.as_slice()),
            std::ops::Bound::Excluded(end.as_slice()),
            Order::Asc,
            &mut |k, _| {
                let mut kr = KeyReader::new(k);
                kr.u8();
                found = kr.u64();
                Ok(ControlFlow::Break(()))
            },
        )?;
        match found {
            Some(id) => ids.push(id),
            None => return Ok(ids),
        }
    }
}

/// The firing alerts silence `silence_id` mutes (none on an incident yet), oldest first.
/// An index entry that does not describe its record any more is dropped on the way, so
/// that it cannot bring a resolved alert back or be looked at again and again.
pub(crate) fn muted_by_in_tx(
    tx: &WriteTransaction,
    silence_id: u64,
) -> Result<Vec<Alert>, StoreError> {
    let prefix = Key::new().u8(field::SILENCE).u64(silence_id);
    let mut out = Vec::new();
    for id in access::ids_with_prefix(tx, tables::ALERT_INDEX, prefix.as_bytes(), usize::MAX)? {
        match access::get::<Alert>(tx, id)? {
            Some(a)
                if a.state == AlertState::Firing
                    && a.silenced_by == Some(silence_id)
                    && a.incident_id.is_none() =>
            {
                out.push(a)
            }
            _ => {
                tracing::warn!(
                    alert = id,
                    silence = silence_id,
                    "dropping a stale silence entry of the alert index"
                );
                let key = prefix.clone().u64(id).into_bytes();
                access::delete_raw(tx, tables::ALERT_INDEX, &key)?;
            }
        }
    }
    Ok(out)
}

/// Moves every alert of incident `from` to incident `to` (a merge), with their index
/// entries, and points the alert groups that fed `from` at `to`, so that later alerts of
/// those groups join `to`. Returns `(alerts moved, of which firing)`.
pub(crate) fn move_in_tx(tx: &WriteTransaction, from: u64, to: u64) -> AppResult<(u64, u64)> {
    let ids = first_alert_ids(tx, from, usize::MAX)?;
    let mut moved = Vec::with_capacity(ids.len());
    for id in ids {
        // Only what the record says is on `from` (an index entry could be stale).
        moved.extend(access::get::<Alert>(tx, id)?.filter(|a| a.incident_id == Some(from)));
    }
    let mut groups = BTreeSet::new();
    let mut firing = 0;
    {
        let mut tables = AlertTables::open(tx)?;
        for before in &moved {
            let mut a = before.clone();
            a.incident_id = Some(to);
            tables.save(Some(before), &a)?;
            if a.state == AlertState::Firing {
                firing += 1;
            }
            if let Some(g) = &a.group_key {
                groups.insert(Key::new().u64(a.integration_id).str(g).into_bytes());
            }
        }
        tables.flush()?;
    }
    for key in groups {
        if access::get_id(tx, tables::ALERT_GROUPS, &key)? == Some(from) {
            access::put_id(tx, tables::ALERT_GROUPS, &key, to)?;
        }
    }
    Ok((moved.len() as u64, firing))
}

/// What one retention step over resolved alerts did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pruned {
    /// Alerts deleted.
    pub deleted: u64,
    /// The last alert id looked at, to go on after; `None` once every alert old enough
    /// has been looked at.
    pub next: Option<u64>,
}

/// Deletes resolved alerts last seen before `cutoff` that nothing needs any more, looking
/// at up to `limit` resolved alerts with ids above `after`. An alert goes when it never
/// joined an incident, or its incident has not changed since `cutoff` and is closed or
/// cancelled, or resolved for longer than its integration's reopen window (a re-fire
/// opens a new incident anyway) and the alert is not among the incident's first
/// [`FIRST_ALERTS`] (kept for the labels playbooks match and the runbook link, should it
/// be reopened by hand). It goes with its index entries and its fingerprint's pointer;
/// the incident keeps its counts and timeline. Alert ids grow with `first_seen_at`, so
/// the walk stops at the first alert first seen after `cutoff` (skipping any first seen
/// after `now`, stamped while the clock was ahead).
pub(crate) fn prune_resolved(
    tx: &WriteTransaction,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
    after: u64,
    limit: usize,
) -> AppResult<Pruned> {
    let resolved = u64::from(AlertState::Resolved.code());
    let start = Key::new()
        .u8(field::STATE)
        .u64(resolved)
        .u64(after.saturating_add(1))
        .into_bytes();
    let end = Key::new().u8(field::STATE).u64(resolved + 1).into_bytes();
    let mut ids = Vec::new();
    tx.scan_raw(
        tables::ALERT_INDEX,
        std::ops::Bound::Included(start.as_slice()),
        std::ops::Bound::Excluded(end.as_slice()),
        Order::Asc,
        &mut |k, _| {
            ids.extend(KeyReader::new(&k[k.len().saturating_sub(8)..]).u64());
            Ok(if ids.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        },
    )?;
    let mut keep = Keep::default();
    let mut doomed = Vec::new();
    let mut reached_cutoff = false;
    for id in &ids {
        let Some(a) = access::get::<Alert>(tx, *id)? else {
            continue;
        };
        if a.first_seen_at > now {
            continue;
        }
        if a.first_seen_at >= cutoff {
            reached_cutoff = true;
            break;
        }
        if a.state == AlertState::Resolved
            && a.last_seen_at < cutoff
            && !keep.needed(tx, &a, now, cutoff)?
        {
            doomed.push(a);
        }
    }
    let mut tables = AlertTables::open(tx)?;
    for a in &doomed {
        tables.delete(a)?;
    }
    tables.flush()?;
    Ok(Pruned {
        deleted: doomed.len() as u64,
        next: (!reached_cutoff && ids.len() >= limit)
            .then(|| ids.last().copied())
            .flatten(),
    })
}

/// What retention reads to decide whether an old resolved alert is still needed, read
/// once per incident and integration.
#[derive(Default)]
struct Keep {
    incidents: IncidentCache,
    reopen_windows: HashMap<u64, u64>,
    first_alerts: HashMap<u64, Vec<u64>>,
}

impl Keep {
    fn needed(
        &mut self,
        tx: &WriteTransaction,
        a: &Alert,
        now: DateTime<Utc>,
        cutoff: DateTime<Utc>,
    ) -> AppResult<bool> {
        let Some(incident_id) = a.incident_id else {
            return Ok(false);
        };
        let Some(i) = self.incidents.get(tx, incident_id)? else {
            return Ok(false);
        };
        if i.status.is_open() || i.updated_at >= cutoff {
            return Ok(true);
        }
        if i.status != IncidentStatus::Resolved {
            return Ok(false);
        }
        let window = match self.reopen_windows.get(&a.integration_id) {
            Some(w) => *w,
            None => {
                let w = access::get::<Integration>(tx, a.integration_id)?
                    .map_or(0, |i| i.settings.reopen_window_secs);
                self.reopen_windows.insert(a.integration_id, w);
                w
            }
        };
        if i.resolved_at.is_none_or(|r| within(now - r, window)) {
            return Ok(true);
        }
        let first = match self.first_alerts.get(&incident_id) {
            Some(f) => f,
            None => {
                let f = first_alert_ids(tx, incident_id, FIRST_ALERTS)?;
                self.first_alerts.entry(incident_id).or_insert(f)
            }
        };
        Ok(first.contains(&a.id))
    }
}

/// `GET /api/v1/alerts` filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    /// Alerts of this incident.
    pub incident_id: Option<String>,
    /// `firing`, `resolved` or `silenced` (firing but muted); also as `state`, the name
    /// of the field it filters on.
    #[serde(alias = "state")]
    pub status: Option<String>,
    /// Alerts of this integration.
    pub integration_id: Option<String>,
    /// Page size.
    pub limit: Option<String>,
    /// Cursor.
    pub cursor: Option<String>,
}

/// A validated alert filter.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    incident_id: Option<u64>,
    integration_id: Option<u64>,
    state: Option<AlertState>,
    silenced: Option<bool>,
}

impl AlertFilter {
    /// From query parameters.
    pub fn parse(p: &AlertParams) -> AppResult<Self> {
        let mut e = FieldErrors::new();
        let mut id = |name: &str, raw: Option<&str>| -> Option<u64> {
            let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
            match raw.parse::<u64>() {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    e.add(name, "must be a positive integer");
                    None
                }
            }
        };
        let incident_id = id("incident_id", p.incident_id.as_deref());
        let integration_id = id("integration_id", p.integration_id.as_deref());
        let (state, silenced) = match p.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => (None, None),
            Some("firing") => (Some(AlertState::Firing), Some(false)),
            Some("resolved") => (Some(AlertState::Resolved), None),
            Some("silenced") => (Some(AlertState::Firing), Some(true)),
            Some(other) => {
                e.add(
                    "status",
                    format!("must be firing, resolved or silenced (got '{other}')"),
                );
                (None, None)
            }
        };
        e.into_result()?;
        Ok(Self {
            incident_id,
            integration_id,
            state,
            silenced,
        })
    }

    /// Only the alerts of one incident.
    pub fn of_incident(id: u64) -> Self {
        Self {
            incident_id: Some(id),
            ..Default::default()
        }
    }

    fn matches(&self, a: &Alert) -> bool {
        self.incident_id.is_none_or(|i| a.incident_id == Some(i))
            && self.integration_id.is_none_or(|i| a.integration_id == i)
            && self.state.is_none_or(|s| a.state == s)
            && self.silenced.is_none_or(|s| a.silenced_by.is_some() == s)
    }

    fn driver(&self) -> Option<Vec<u8>> {
        if let Some(i) = self.incident_id {
            return Some(Key::new().u8(field::INCIDENT).u64(i).into_bytes());
        }
        if let Some(i) = self.integration_id {
            return Some(Key::new().u8(field::INTEGRATION).u64(i).into_bytes());
        }
        self.state.map(|s| {
            Key::new()
                .u8(field::STATE)
                .u64(u64::from(s.code()))
                .into_bytes()
        })
    }
}

/// Alerts matching `filter`, newest first (needs `alert:read`).
pub fn list(
    app: &App,
    actor: &Actor,
    filter: &AlertFilter,
    page: PageRequest,
) -> AppResult<Page<Alert>> {
    require(actor, Permission::AlertRead)?;
    let r = app.store.read()?;
    if let Some(id) = filter.incident_id {
        incidents::load(&r, id)?;
    }
    let driver = filter.driver();
    Ok(walk(
        &r,
        driver.as_deref().map(|p| (tables::ALERT_INDEX, p)),
        page,
        |a: &Alert| {
            if filter.matches(a) {
                Take::Yes
            } else {
                Take::No
            }
        },
    )?)
}

/// One alert (needs `alert:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<Alert> {
    require(actor, Permission::AlertRead)?;
    access::get(&app.store.read()?, id)?.ok_or_else(|| AppError::not_found("alert", id))
}

/// How many of an incident's first alerts stand for it: where its runbook link is looked
/// for, and what retention keeps of an incident that may still be reopened.
const FIRST_ALERTS: usize = 16;

/// The ids of the first `limit` alerts attached to an incident, oldest first.
fn first_alert_ids(
    r: &impl crate::store::access::Reader,
    incident_id: u64,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let prefix = Key::new().u8(field::INCIDENT).u64(incident_id).into_bytes();
    access::ids_with_prefix(r, tables::ALERT_INDEX, &prefix, limit)
}

/// The runbook link of an incident: the first of its first alerts that has one.
pub fn runbook_of(
    r: &impl crate::store::access::Reader,
    incident_id: u64,
) -> Result<Option<String>, StoreError> {
    for id in first_alert_ids(r, incident_id, FIRST_ALERTS)? {
        if let Some(a) = access::get::<Alert>(r, id)?
            && let Some(rb) = a.runbook()
        {
            return Ok(Some(rb.to_owned()));
        }
    }
    Ok(None)
}

/// The labels of the alert that opened an incident (none when it was opened by hand).
pub fn first_labels_of(
    r: &impl crate::store::access::Reader,
    incident_id: u64,
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    for id in first_alert_ids(r, incident_id, 1)? {
        if let Some(a) = access::get::<Alert>(r, id)? {
            return Ok(a.labels);
        }
    }
    Ok(Default::default())
}
