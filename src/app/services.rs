//! The service catalog.

use serde::Deserialize;
use utoipa::ToSchema;

use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, catalog, nullable, optional_text};
use crate::domain::actor::Actor;
use crate::domain::identity::Group;
use crate::domain::service::{self, DEFAULT_SERVICE_ID, Service};
use crate::store::access::{self, Reader};
use crate::store::keys::Key;
use crate::store::tables;

/// A new service.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    /// Unique name.
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// The owning team.
    #[serde(default)]
    pub owner_group_id: Option<u64>,
    /// Who is paged for its incidents.
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    /// Criticality tier 1..4.
    #[serde(default)]
    pub tier: Option<u8>,
    /// Slack channel for its incident cards.
    #[serde(default)]
    pub chat_channel: Option<String>,
    /// Discord channel id for its incident cards.
    #[serde(default)]
    pub discord_channel: Option<String>,
}

/// Changes to a service; `null` clears an optional field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New owner, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub owner_group_id: Option<Option<u64>>,
    /// New escalation policy, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub escalation_policy_id: Option<Option<u64>>,
    /// New tier, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u8>)]
    pub tier: Option<Option<u8>>,
    /// New Slack channel, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub chat_channel: Option<Option<String>>,
    /// New Discord channel id, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub discord_channel: Option<Option<String>>,
}

fn check_refs(
    r: &impl Reader,
    e: &mut FieldErrors,
    owner: Option<u64>,
    tier: Option<u8>,
    escalation_policy_id: Option<u64>,
) -> Result<(), crate::store::StoreError> {
    super::escalation::policies::check_ref(r, e, "escalation_policy_id", escalation_policy_id)?;
    if let Some(g) = owner
        && access::get::<Group>(r, g)?.is_none()
    {
        e.add("owner_group_id", format!("no group with id {g}"));
    }
    if let Some(t) = tier {
        e.check("tier", service::check_tier(t));
    }
    Ok(())
}

/// A Discord channel id from input: blank is none, anything else must be an id.
fn discord_channel(e: &mut FieldErrors, input: Option<&str>) -> Option<String> {
    let id = input.map(str::trim).filter(|s| !s.is_empty())?;
    e.check("discord_channel", service::check_discord_channel(id));
    Some(id.to_owned())
}

/// Finds a service by name (case-insensitive).
pub fn find_by_name(
    r: &impl Reader,
    name: &str,
) -> Result<Option<Service>, crate::store::StoreError> {
    match super::names::SERVICES.find(r, name)? {
        Some(id) => access::get(r, id),
        None => Ok(None),
    }
}

/// Creates a service (needs `service:write`).
pub async fn create(app: &App, actor: &Actor, input: NewService) -> AppResult<Service> {
    let change = catalog::change::<Service>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::new_name::<Service>(&mut e, &input.name);
    let chat_channel = optional_text(&mut e, "chat_channel", input.chat_channel.as_deref(), 200);
    let discord_channel = discord_channel(&mut e, input.discord_channel.as_deref());
    e.into_result()?;
    app.store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            check_refs(
                tx,
                &mut e,
                input.owner_group_id,
                input.tier,
                input.escalation_policy_id,
            )?;
            e.into_result()?;
            catalog::create(tx, &change, |id| Service {
                id,
                name: name.clone(),
                description: input.description.trim().to_owned(),
                owner_group_id: input.owner_group_id,
                escalation_policy_id: input.escalation_policy_id,
                tier: input.tier,
                chat_channel: chat_channel.clone(),
                discord_channel: discord_channel.clone(),
                created_at: change.at,
                updated_at: change.at,
            })
        })
        .await
}

/// One service (needs `service:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<Service> {
    catalog::get(app, actor, id)
}

/// Services in id order (needs `service:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<Service>> {
    catalog::list(app, actor, page)
}

/// Changes a service (needs `service:write`).
pub async fn update(app: &App, actor: &Actor, id: u64, patch: ServicePatch) -> AppResult<Service> {
    let change = catalog::change::<Service>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::patched_name::<Service>(&mut e, patch.name.as_deref());
    let chat_channel = patch
        .chat_channel
        .clone()
        .map(|c| optional_text(&mut e, "chat_channel", c.as_deref(), 200));
    let discord = patch
        .discord_channel
        .clone()
        .map(|c| discord_channel(&mut e, c.as_deref()));
    e.into_result()?;
    app.store
        .write(move |tx| {
            let before: Service = catalog::load(tx, id)?;
            let mut s = before.clone();
            if let Some(owner) = patch.owner_group_id {
                s.owner_group_id = owner;
            }
            if let Some(tier) = patch.tier {
                s.tier = tier;
            }
            if let Some(policy) = patch.escalation_policy_id {
                s.escalation_policy_id = policy;
            }
            if let Some(channel) = &chat_channel {
                s.chat_channel = channel.clone();
            }
            if let Some(channel) = &discord {
                s.discord_channel = channel.clone();
            }
            if let Some(d) = &patch.description {
                s.description = d.trim().to_owned();
            }
            let mut e = FieldErrors::new();
            check_refs(tx, &mut e, s.owner_group_id, s.tier, s.escalation_policy_id)?;
            e.into_result()?;
            if let Some(name) = &name {
                s.name = name.clone();
            }
            catalog::save(tx, &change, &before, s)
        })
        .await
}

/// Index prefix of the incidents of a service (see `app::incidents`).
fn incidents_of(service_id: u64) -> Vec<u8> {
    Key::new()
        .u8(tables::incident_field::SERVICE)
        .u64(service_id)
        .into_bytes()
}

/// Deletes a service (needs `service:write`): not the default one, not one with incidents.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    let change = catalog::change::<Service>(app, actor)?;
    app.store
        .write(move |tx| {
            let s: Service = catalog::load(tx, id)?;
            if id == DEFAULT_SERVICE_ID {
                return Err(AppError::Conflict(
                    "the default service cannot be deleted".into(),
                ));
            }
            if access::any_with_prefix(tx, tables::INCIDENT_INDEX, &incidents_of(id))? {
                return Err(AppError::Conflict(format!(
                    "service '{}' has incidents; it can be renamed but not deleted",
                    s.name
                )));
            }
            // Alerts routed to it would have no service to open incidents in.
            let integrations = access::list::<crate::domain::integration::Integration>(
                tx,
                None,
                access::Order::Asc,
                usize::MAX,
            )?;
            if let Some(i) = integrations.iter().find(|i| i.service_id == id) {
                return Err(AppError::Conflict(format!(
                    "service '{}' receives the alerts of integration '{}'; move that integration first",
                    s.name, i.name
                )));
            }
            if let Some(r) = super::routing::all(tx)?
                .iter()
                .find(|r| r.service_id == Some(id))
            {
                return Err(AppError::Conflict(format!(
                    "routing rule '{}' sends alerts to service '{}'; change that rule first",
                    r.name, s.name
                )));
            }
            let monitors = access::list::<crate::domain::heartbeat::Heartbeat>(
                tx,
                None,
                access::Order::Asc,
                usize::MAX,
            )?;
            if let Some(h) = monitors.iter().find(|h| h.service_id == id) {
                return Err(AppError::Conflict(format!(
                    "heartbeat monitor '{}' pages service '{}'; move that monitor first",
                    h.name, s.name
                )));
            }
            let problems = access::list::<crate::domain::problem::Problem>(
                tx,
                None,
                access::Order::Asc,
                usize::MAX,
            )?;
            if let Some(p) = problems.iter().find(|p| p.service_id == Some(id)) {
                return Err(AppError::Conflict(format!(
                    "problem {} is on service '{}'; it can be renamed but not deleted",
                    p.number(),
                    s.name
                )));
            }
            if let Some(r) = super::notifications::rules::all(tx)?
                .iter()
                .find(|r| r.filter.service_ids.contains(&id))
            {
                return Err(AppError::Conflict(format!(
                    "notification rule '{}' is filtered to service '{}'; change that rule first",
                    r.name, s.name
                )));
            }
            catalog::delete(tx, &change, &s)
        })
        .await
}
