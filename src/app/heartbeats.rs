//! Heartbeat monitors ([`crate::domain::heartbeat`]): the catalogue resource, the ping
//! that keeps one healthy, and the check that opens an incident when one falls silent.
//!
//! Everything a monitor knows is in the store (last ping, the incident of the current
//! silence), so a restart at any moment loses nothing: a silence that began while the
//! daemon was down counts once its sender has had one interval after the start to ping.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incidents::{self, Opening};
use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, catalog};
use crate::auth::secret::{HookToken, sha256_hex};
use crate::domain::actor::Actor;
use crate::domain::heartbeat::{self, Due, Heartbeat, HeartbeatState};
use crate::domain::incident::IncidentStatus;
use crate::domain::priority::Level;
use crate::domain::service::{DEFAULT_SERVICE_ID, Service};
use crate::domain::transition::Lifecycle;
use crate::store::access::{self, Order, Reader};
use crate::store::tables;

/// A new monitor.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHeartbeat {
    /// Name, shown in the incident a silence opens.
    pub name: String,
    /// The longest silence that is still healthy, in seconds (60 to 604800).
    pub interval_secs: u64,
    /// The service a silence opens its incident on (default: the Default service).
    #[serde(default)]
    pub service_id: Option<u64>,
}

/// Changes to a monitor.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatPatch {
    /// New name.
    pub name: Option<String>,
    /// New interval.
    pub interval_secs: Option<u64>,
    /// New service.
    pub service_id: Option<u64>,
}

/// A monitor as the API shows it: the record without its token hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeartbeatView {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// The service a silence opens its incident on.
    pub service_id: u64,
    /// The longest silence that is still healthy, in seconds.
    pub interval_secs: u64,
    /// The token's first characters.
    pub token_hint: String,
    /// The last ping (null while never pinged).
    pub last_ping_at: Option<DateTime<Utc>>,
    /// The incident the current silence opened, until the next ping.
    pub incident_id: Option<u64>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Settings last changed at.
    pub updated_at: DateTime<Utc>,
    /// Where it stands now.
    pub state: HeartbeatState,
    /// When it expires without a ping (null while inactive).
    pub expires_at: Option<DateTime<Utc>>,
    /// Where to ping it (`POST` or `GET`), with `{token}` in place of the token except
    /// in the answer that creates it.
    pub url: String,
    /// The ping token: in the answer that creates the monitor only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// What the API shows of `h` now; `token` only in the answer that made it.
fn view(app: &App, h: Heartbeat, token: Option<String>) -> HeartbeatView {
    HeartbeatView {
        state: h.state(app.clock.now()),
        expires_at: h.deadline(),
        url: format!(
            "{}/hooks/heartbeat/{}",
            app.public_url(),
            token.as_deref().unwrap_or("{token}")
        ),
        token,
        id: h.id,
        name: h.name,
        service_id: h.service_id,
        interval_secs: h.interval_secs,
        token_hint: h.token_hint,
        last_ping_at: h.last_ping_at,
        incident_id: h.incident_id,
        created_at: h.created_at,
        updated_at: h.updated_at,
    }
}

/// Adds a 422 reason for a bad interval or a service that does not exist.
fn check(
    r: &impl Reader,
    e: &mut FieldErrors,
    interval: Option<u64>,
    service: Option<u64>,
) -> AppResult<()> {
    if let Some(Err(why)) = interval.map(heartbeat::check_interval) {
        e.add("interval_secs", why);
    }
    if let Some(id) = service
        && access::get::<Service>(r, id)?.is_none()
    {
        e.add("service_id", format!("no service with id {id}"));
    }
    Ok(())
}

/// Creates a monitor (needs `heartbeat:write`); the answer holds its token, once.
pub async fn create(app: &App, actor: &Actor, input: NewHeartbeat) -> AppResult<HeartbeatView> {
    let change = catalog::change::<Heartbeat>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::new_name::<Heartbeat>(&mut e, &input.name);
    e.into_result()?;
    let HookToken {
        clear: token,
        hash,
        hint,
    } = HookToken::generate();
    let created = app
        .store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            check(tx, &mut e, Some(input.interval_secs), input.service_id)?;
            e.into_result()?;
            let h = catalog::create(tx, &change, |id| Heartbeat {
                id,
                name: name.clone(),
                service_id: input.service_id.unwrap_or(DEFAULT_SERVICE_ID),
                interval_secs: input.interval_secs,
                token_hash: hash.clone(),
                token_hint: hint.clone(),
                last_ping_at: None,
                incident_id: None,
                created_at: change.at,
                updated_at: change.at,
            })?;
            access::put_id(
                tx,
                tables::HEARTBEATS_BY_TOKEN,
                h.token_hash.as_bytes(),
                h.id,
            )?;
            Ok::<_, AppError>(h)
        })
        .await?;
    Ok(view(app, created, Some(token)))
}

/// One monitor (needs `heartbeat:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<HeartbeatView> {
    Ok(view(app, catalog::get(app, actor, id)?, None))
}

/// Monitors in id order (needs `heartbeat:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<HeartbeatView>> {
    Ok(catalog::list(app, actor, page)?.map(|h| view(app, h, None)))
}

/// Changes a monitor (needs `heartbeat:write`).
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: HeartbeatPatch,
) -> AppResult<HeartbeatView> {
    let change = catalog::change::<Heartbeat>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::patched_name::<Heartbeat>(&mut e, patch.name.as_deref());
    e.into_result()?;
    let saved = app
        .store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            check(tx, &mut e, patch.interval_secs, patch.service_id)?;
            e.into_result()?;
            let before: Heartbeat = catalog::load(tx, id)?;
            let mut h = before.clone();
            if let Some(n) = &name {
                h.name = n.clone();
            }
            if let Some(i) = patch.interval_secs {
                h.interval_secs = i;
            }
            if let Some(s) = patch.service_id {
                h.service_id = s;
            }
            catalog::save(tx, &change, &before, h)
        })
        .await?;
    Ok(view(app, saved, None))
}

/// Deletes a monitor (needs `heartbeat:write`). The incident its current silence opened,
/// if still open, is resolved by the same actor: only the monitor's next ping would have
/// resolved it.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    let change = catalog::change::<Heartbeat>(app, actor)?;
    let who = actor.clone();
    app.store
        .write(move |tx| {
            let h: Heartbeat = catalog::load(tx, id)?;
            access::delete_raw(tx, tables::HEARTBEATS_BY_TOKEN, h.token_hash.as_bytes())?;
            if let Some(incident) = h.incident_id {
                let why = format!(
                    "heartbeat monitor '{}' was deleted by {}",
                    h.name, change.who.name
                );
                resolve_if_open(tx, change.at, &who, incident, &why)?;
            }
            catalog::delete(tx, &change, &h)
        })
        .await
}

/// Gives a monitor a new token (needs `heartbeat:write`); the old one stops at once. The
/// answer holds the new token, once.
pub async fn rotate(app: &App, actor: &Actor, id: u64) -> AppResult<HeartbeatView> {
    let change = catalog::change::<Heartbeat>(app, actor)?;
    let HookToken {
        clear: token,
        hash,
        hint,
    } = HookToken::generate();
    let rotated = app
        .store
        .write(move |tx| {
            let before: Heartbeat = catalog::load(tx, id)?;
            access::delete_raw(
                tx,
                tables::HEARTBEATS_BY_TOKEN,
                before.token_hash.as_bytes(),
            )?;
            access::put_id(tx, tables::HEARTBEATS_BY_TOKEN, hash.as_bytes(), id)?;
            let mut h = before.clone();
            h.token_hash = hash.clone();
            h.token_hint = hint.clone();
            catalog::save_as(tx, &change, &before, h, ("rotate", "rotated the token of"))
        })
        .await?;
    Ok(view(app, rotated, Some(token)))
}

/// Every monitor.
fn all(r: &impl Reader) -> AppResult<Vec<Heartbeat>> {
    Ok(access::list::<Heartbeat>(r, None, Order::Asc, usize::MAX)?)
}

/// A ping with `token`: the monitor is healthy until `interval_secs` from now, and the
/// incident its silence opened, if still open, is resolved. An unknown token is a 404
/// like a path no route serves.
pub async fn ping(app: &App, token: &str) -> AppResult<HeartbeatView> {
    let hash = sha256_hex(token.trim());
    let id = access::get_id(
        &app.store.read()?,
        tables::HEARTBEATS_BY_TOKEN,
        hash.as_bytes(),
    )?
    .ok_or(AppError::NoRoute)?;
    let now = app.clock.now();
    let pinged = app
        .store
        .write(move |tx| {
            // Deleted since the lookup: as unknown as a token that never was.
            let mut h = access::get::<Heartbeat>(tx, id)?.ok_or(AppError::NoRoute)?;
            let ended = h.ping(now);
            access::put(tx, &h)?;
            if let Some(incident) = ended {
                let why = format!("heartbeat '{}' is back", h.name);
                resolve_if_open(tx, now, &Actor::system(), incident, &why)?;
            }
            Ok::<_, AppError>(h)
        })
        .await?;
    Ok(view(app, pinged, None))
}

/// Resolves the incident a silence opened as `actor`, saying `why`, if it can still be
/// resolved (somebody may have resolved, closed or cancelled it meanwhile: the ping or
/// the deletion is recorded all the same) and no alert merged into it still fires.
fn resolve_if_open(
    tx: &redb::WriteTransaction,
    now: DateTime<Utc>,
    actor: &Actor,
    incident: u64,
    why: &str,
) -> AppResult<()> {
    let Some(i) = access::get::<crate::domain::incident::Incident>(tx, incident)?
        .filter(|i| i.status.can_move_to(IncidentStatus::Resolved))
    else {
        return Ok(());
    };
    if i.firing_alerts > 0 {
        // Alerts merged into it still fire: the monitor's part is over, not the incident
        // (as alerts auto-resolve an incident only once all of them stop).
        incidents::timeline(
            tx,
            incident,
            now,
            &actor.reference,
            "heartbeat",
            format!(
                "{why}; {} alert(s) still firing, so it stays open",
                i.firing_alerts
            ),
            serde_json::json!({"firing": i.firing_alerts}),
        )?;
        return Ok(());
    }
    incidents::transition_in_tx(
        tx,
        now,
        actor,
        incident,
        IncidentStatus::Resolved,
        Some(why),
    )?;
    Ok(())
}

/// Opens an incident for every monitor silent past its interval that has none yet;
/// returns how many it opened. Each monitor in a transaction of its own, so that one that
/// cannot open its incident does not hold back the others (its error is logged, and it
/// is tried again at the next check). The heartbeat checker runs it every second.
pub async fn check_all(app: &App, watching_since: DateTime<Utc>) -> AppResult<usize> {
    let now = app.clock.now();
    let due: Vec<u64> = all(&app.store.read()?)?
        .iter()
        .filter(|h| h.due(now, watching_since) == Due::Open)
        .map(|h| h.id)
        .collect();
    let mut opened = 0;
    for id in due {
        match app
            .store
            .write(move |tx| open_for(tx, now, watching_since, id))
            .await
        {
            Ok(true) => opened += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(heartbeat = id, error = %e, "cannot open the incident of a missed heartbeat")
            }
        }
    }
    Ok(opened)
}

/// Opens the incident of monitor `id`'s silence, if it is still due (it may have been
/// pinged, changed or deleted since it was read).
fn open_for(
    tx: &redb::WriteTransaction,
    now: DateTime<Utc>,
    watching_since: DateTime<Utc>,
    id: u64,
) -> AppResult<bool> {
    let Some(mut h) = access::get::<Heartbeat>(tx, id)? else {
        return Ok(false);
    };
    if h.due(now, watching_since) != Due::Open {
        return Ok(false);
    }
    // A service cannot be deleted while a monitor names it; should one be gone all the
    // same, the Default service (which cannot be deleted) still gets the page.
    let service_id = if access::get::<Service>(tx, h.service_id)?.is_some() {
        h.service_id
    } else {
        tracing::warn!(
            heartbeat = h.id,
            service = h.service_id,
            "the monitor's service is gone; paging on the Default service"
        );
        DEFAULT_SERVICE_ID
    };
    let last = h
        .last_ping_at
        .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    let incident = incidents::open_in_tx(
        tx,
        now,
        &Actor::system().reference,
        &Opening {
            title: format!("Heartbeat missed: {}", h.name),
            description: format!(
                "No ping from heartbeat monitor '{}' since {last}; one was expected at least every {} s. The monitoring pipeline behind it may be down.",
                h.name, h.interval_secs
            ),
            impact: Level::High,
            urgency: Level::High,
            service_id,
            assignee_id: None,
            group_id: None,
            integration_id: None,
            escalation_policy_id: None,
        },
    )?;
    h.incident_id = Some(incident.id);
    access::put(tx, &h)?;
    Ok(true)
}
