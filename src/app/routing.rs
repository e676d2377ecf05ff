//! Routing rules: ordered label matchers that send alerts to a service and escalation
//! policy and override their impact and urgency.

use serde::Deserialize;
use utoipa::ToSchema;

use super::page::{Page, PageRequest};
use super::{App, AppResult, FieldErrors, catalog, nullable, require};
use crate::domain::actor::Actor;
use crate::domain::matcher::{Matcher, MatcherSet};
use crate::domain::permission::Permission;
use crate::domain::priority::Level;
use crate::domain::service::Service;
use crate::domain::silence::RoutingRule;
use crate::store::StoreError;
use crate::store::access::{self, Order, Reader};

/// A new rule.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoutingRule {
    /// Name.
    pub name: String,
    /// Order: lower first (default: after the last rule).
    #[serde(default)]
    pub position: Option<i64>,
    /// All must match (empty: every alert).
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Only alerts of these integrations (empty: any).
    #[serde(default)]
    pub integration_ids: Vec<u64>,
    /// Target service.
    #[serde(default)]
    pub service_id: Option<u64>,
    /// Target escalation policy.
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    /// Impact override.
    #[serde(default)]
    pub impact: Option<Level>,
    /// Urgency override.
    #[serde(default)]
    pub urgency: Option<Level>,
    /// Keep evaluating later rules.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
}

/// Changes to a rule; `null` clears an optional field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRulePatch {
    /// New name.
    pub name: Option<String>,
    /// New position.
    pub position: Option<i64>,
    /// New matchers.
    pub matchers: Option<Vec<Matcher>>,
    /// New integration filter.
    pub integration_ids: Option<Vec<u64>>,
    /// Service, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub service_id: Option<Option<u64>>,
    /// Policy, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub escalation_policy_id: Option<Option<u64>>,
    /// Impact, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Level>)]
    pub impact: Option<Option<Level>>,
    /// Urgency, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Level>)]
    pub urgency: Option<Option<Level>>,
    /// Continue flag.
    #[serde(rename = "continue")]
    pub continue_matching: Option<bool>,
}

fn check(r: &impl Reader, e: &mut FieldErrors, rule: &RoutingRule) -> Result<(), StoreError> {
    if let Err((i, err)) = MatcherSet::compile(&rule.matchers) {
        e.add(format!("matchers[{i}]"), err.to_string());
    }
    if let Some(s) = rule.service_id
        && access::get::<Service>(r, s)?.is_none()
    {
        e.add("service_id", format!("no service with id {s}"));
    }
    crate::app::escalation::policies::check_ref(
        r,
        e,
        "escalation_policy_id",
        rule.escalation_policy_id,
    )?;
    for id in &rule.integration_ids {
        if access::get::<crate::domain::integration::Integration>(r, *id)?.is_none() {
            e.add("integration_ids", format!("no integration with id {id}"));
        }
    }
    if rule.service_id.is_none()
        && rule.escalation_policy_id.is_none()
        && rule.impact.is_none()
        && rule.urgency.is_none()
    {
        e.add(
            "service_id",
            "a rule must set at least one of service_id, escalation_policy_id, impact, urgency",
        );
    }
    Ok(())
}

/// All rules in evaluation order.
pub fn all(r: &impl Reader) -> Result<Vec<RoutingRule>, StoreError> {
    let mut rules = access::list::<RoutingRule>(r, None, Order::Asc, usize::MAX)?;
    rules.sort_by_key(|r| (r.position, r.id));
    Ok(rules)
}

/// Creates a rule (needs `routing:write`).
pub async fn create(app: &App, actor: &Actor, input: NewRoutingRule) -> AppResult<RoutingRule> {
    let change = catalog::change::<RoutingRule>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::new_name::<RoutingRule>(&mut e, &input.name);
    e.into_result()?;
    app.store
        .write(move |tx| {
            let position = match input.position {
                Some(p) => p,
                None => all(tx)?.last().map_or(10, |r| r.position + 10),
            };
            let rule = RoutingRule {
                id: 0,
                name: name.clone(),
                position,
                matchers: input.matchers.clone(),
                integration_ids: input.integration_ids.clone(),
                service_id: input.service_id,
                escalation_policy_id: input.escalation_policy_id,
                impact: input.impact,
                urgency: input.urgency,
                continue_matching: input.continue_matching,
                created_at: change.at,
                updated_at: change.at,
            };
            let mut e = FieldErrors::new();
            check(tx, &mut e, &rule)?;
            e.into_result()?;
            catalog::create(tx, &change, |id| RoutingRule { id, ..rule })
        })
        .await
}

/// One rule (needs `routing:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<RoutingRule> {
    catalog::get(app, actor, id)
}

/// Rules in evaluation order (needs `routing:read`); the cursor is a position in that order.
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<RoutingRule>> {
    require(actor, Permission::RoutingRead)?;
    Ok(Page::positional(all(&app.store.read()?)?, page))
}

/// Changes a rule (needs `routing:write`).
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: RoutingRulePatch,
) -> AppResult<RoutingRule> {
    let change = catalog::change::<RoutingRule>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::patched_name::<RoutingRule>(&mut e, patch.name.as_deref());
    e.into_result()?;
    app.store
        .write(move |tx| {
            let before: RoutingRule = catalog::load(tx, id)?;
            let mut r = before.clone();
            if let Some(n) = &name {
                r.name = n.clone();
            }
            if let Some(p) = patch.position {
                r.position = p;
            }
            if let Some(m) = &patch.matchers {
                r.matchers = m.clone();
            }
            if let Some(i) = &patch.integration_ids {
                r.integration_ids = i.clone();
            }
            if let Some(v) = patch.service_id {
                r.service_id = v;
            }
            if let Some(v) = patch.escalation_policy_id {
                r.escalation_policy_id = v;
            }
            if let Some(v) = patch.impact {
                r.impact = v;
            }
            if let Some(v) = patch.urgency {
                r.urgency = v;
            }
            if let Some(v) = patch.continue_matching {
                r.continue_matching = v;
            }
            let mut e = FieldErrors::new();
            check(tx, &mut e, &r)?;
            e.into_result()?;
            catalog::save(tx, &change, &before, r)
        })
        .await
}

/// Deletes a rule (needs `routing:write`).
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    let change = catalog::change::<RoutingRule>(app, actor)?;
    app.store
        .write(move |tx| {
            let r: RoutingRule = catalog::load(tx, id)?;
            catalog::delete(tx, &change, &r)
        })
        .await
}
