//! Notification rules: which events, narrowed how, reach whom.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::page::{Page, PageRequest};
use crate::app::{App, AppError, AppResult, FieldErrors, require, required_line};
use crate::domain::actor::Actor;
use crate::domain::audit;
use crate::domain::event::EventKind;
use crate::domain::identity::{Group, User};
use crate::domain::notification::{
    ChannelKind, NotificationRule, REDACTED_SECRET, RuleFilter, Target, kept_secret,
};
use crate::domain::permission::Permission;
use crate::domain::service::Service;
use crate::store::access::{self, Order, Reader};
use crate::store::{StoreError, tables};

/// A new rule.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    /// Name.
    pub name: String,
    /// Events, e.g. `["incident.opened", "incident.resolved"]`.
    pub events: Vec<EventKind>,
    /// Narrowing by service and priority.
    #[serde(default)]
    pub filter: RuleFilter,
    /// Who hears about it.
    pub targets: Vec<Target>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Changes to a rule.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    /// New name.
    pub name: Option<String>,
    /// New events.
    pub events: Option<Vec<EventKind>>,
    /// New filter.
    pub filter: Option<RuleFilter>,
    /// New targets.
    pub targets: Option<Vec<Target>>,
    /// On or off.
    pub enabled: Option<bool>,
}

fn check(r: &impl Reader, e: &mut FieldErrors, rule: &NotificationRule) -> Result<(), StoreError> {
    if rule.events.is_empty() {
        e.add("events", "at least one event is needed");
    }
    if rule.targets.is_empty() {
        e.add("targets", "at least one target is needed");
    }
    for s in &rule.filter.service_ids {
        if access::get::<Service>(r, *s)?.is_none() {
            e.add("filter.service_ids", format!("no service with id {s}"));
        }
    }
    for (i, t) in rule.targets.iter().enumerate() {
        let field = format!("targets[{i}]");
        match t {
            Target::User { id } => {
                if access::get::<User>(r, *id)?.is_none() {
                    e.add(field, format!("no user with id {id}"));
                }
            }
            Target::Group { id } => {
                if access::get::<Group>(r, *id)?.is_none() {
                    e.add(field, format!("no group with id {id}"));
                }
            }
            Target::Email { address } => {
                e.check(&field, ChannelKind::Email.check_address(address));
            }
            Target::Sms { number } => {
                e.check(&field, ChannelKind::Sms.check_address(number));
            }
            Target::Voice { number } => {
                e.check(&field, ChannelKind::Voice.check_address(number));
            }
            Target::Webhook { url, .. } => {
                e.check(&field, ChannelKind::Webhook.check_address(url));
            }
        }
    }
    Ok(())
}

/// Every rule.
pub fn all(r: &impl Reader) -> Result<Vec<NotificationRule>, StoreError> {
    access::list(r, None, Order::Asc, usize::MAX)
}

/// Creates a rule (needs `notification:write`).
pub async fn create(app: &App, actor: &Actor, input: NewRule) -> AppResult<NotificationRule> {
    require(actor, Permission::NotificationWrite)?;
    let mut e = FieldErrors::new();
    let name = required_line(&mut e, "name", &input.name, 100);
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let rule = app
        .store
        .write(move |tx| {
            let id = access::next_id(tx, tables::NOTIFICATION_RULES)?;
            let rule = NotificationRule {
                id,
                name: name.clone(),
                enabled: input.enabled.unwrap_or(true),
                events: input.events.clone(),
                filter: input.filter.clone(),
                targets: input.targets.iter().cloned().map(trimmed).collect(),
                created_at: now,
                updated_at: now,
            };
            let mut e = FieldErrors::new();
            check(tx, &mut e, &rule)?;
            e.into_result()?;
            access::put(tx, &rule)?;
            let shown = serde_json::to_value(rule.clone().redacted()).unwrap_or_default();
            crate::app::audit::record(
                tx,
                now,
                &who,
                "notification_rule.create",
                ("notification_rule", id),
                format!("created notification rule {}", rule.name),
                audit::created(&shown),
            )?;
            Ok::<_, AppError>(rule)
        })
        .await?;
    Ok(rule.redacted())
}

/// One rule (needs `notification:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<NotificationRule> {
    require(actor, Permission::NotificationRead)?;
    Ok(access::get::<NotificationRule>(&app.store.read()?, id)?
        .ok_or_else(|| AppError::not_found("notification rule", id))?
        .redacted())
}

/// Rules in id order (needs `notification:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<NotificationRule>> {
    require(actor, Permission::NotificationRead)?;
    let items = access::list::<NotificationRule>(
        &app.store.read()?,
        page.after,
        Order::Asc,
        page.limit + 1,
    )?;
    Ok(Page::from_overfetch(items, page.limit, |r| r.id).map(NotificationRule::redacted))
}

/// A target with its address as it will be used: without the spaces around it (a number
/// with spaces would otherwise be another number to the SMS rate limit).
fn trimmed(target: Target) -> Target {
    let trim = |s: String| s.trim().to_owned();
    match target {
        Target::Email { address } => Target::Email {
            address: trim(address),
        },
        Target::Sms { number } => Target::Sms {
            number: trim(number),
        },
        Target::Voice { number } => Target::Voice {
            number: trim(number),
        },
        Target::Webhook { url, secret } => Target::Webhook {
            url: trim(url),
            secret,
        },
        other => other,
    }
}

/// The webhook secrets of a rule's targets, in order (for the audit record).
fn secrets(r: &NotificationRule) -> Vec<Option<&str>> {
    r.targets
        .iter()
        .filter_map(|t| match t {
            Target::Webhook { secret, .. } => Some(secret.as_deref()),
            _ => None,
        })
        .collect()
}

/// Changes a rule (needs `notification:write`). A webhook target given without a secret,
/// or with the `[redacted]` marker an answer showed, keeps the secret it had for the same
/// URL.
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: RulePatch,
) -> AppResult<NotificationRule> {
    require(actor, Permission::NotificationWrite)?;
    let mut e = FieldErrors::new();
    let name = patch
        .name
        .as_deref()
        .map(|n| required_line(&mut e, "name", n, 100));
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let rule = app
        .store
        .write(move |tx| {
            let before = access::get::<NotificationRule>(tx, id)?
                .ok_or_else(|| AppError::not_found("notification rule", id))?;
            let mut r = before.clone();
            if let Some(n) = &name {
                r.name = n.clone();
            }
            if let Some(ev) = &patch.events {
                r.events = ev.clone();
            }
            if let Some(f) = &patch.filter {
                r.filter = f.clone();
            }
            if let Some(t) = &patch.targets {
                // The marker stands for the secret stored for the same URL; with a new
                // URL there is none, and deliveries would go out unsigned.
                for (i, target) in t.iter().enumerate() {
                    if let Target::Webhook { url, secret: Some(s) } = target
                        && s == REDACTED_SECRET
                        && !before.targets.iter().any(|old| {
                            matches!(old, Target::Webhook { url: u, secret: Some(_) } if u.trim() == url.trim())
                        })
                    {
                        return Err(FieldErrors::single(
                            format!("targets[{i}].secret"),
                            "is the marker of a stored secret, and none is stored for this URL: give the secret",
                        ));
                    }
                }
                r.targets = t
                    .iter()
                    .cloned()
                    .map(trimmed)
                    .map(|mut target| {
                        if let Target::Webhook { url, secret } = &mut target {
                            let stored = before.targets.iter().find_map(|old| match old {
                                Target::Webhook { url: u, secret: s } if u == url => s.as_deref(),
                                _ => None,
                            });
                            *secret = kept_secret(secret.as_deref(), stored);
                        }
                        target
                    })
                    .collect();
            }
            if let Some(en) = patch.enabled {
                r.enabled = en;
            }
            let mut e = FieldErrors::new();
            check(tx, &mut e, &r)?;
            e.into_result()?;
            r.updated_at = now;
            access::put(tx, &r)?;
            let mut changes = audit::diff(
                &serde_json::to_value(before.clone().redacted()).unwrap_or_default(),
                &serde_json::to_value(r.clone().redacted()).unwrap_or_default(),
            );
            // The redacted views hide a new webhook secret; the record says one changed.
            if secrets(&before) != secrets(&r)
                && let Some(map) = changes.as_object_mut()
            {
                map.insert("secret".into(), audit::redacted_change());
            }
            crate::app::audit::record(
                tx,
                now,
                &who,
                "notification_rule.update",
                ("notification_rule", id),
                format!("changed notification rule {}", r.name),
                changes,
            )?;
            Ok::<_, AppError>(r)
        })
        .await?;
    Ok(rule.redacted())
}

/// Deletes a rule (needs `notification:write`); deliveries already planned stay.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    require(actor, Permission::NotificationWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    app.store
        .write(move |tx| {
            let r = access::get::<NotificationRule>(tx, id)?
                .ok_or_else(|| AppError::not_found("notification rule", id))?;
            access::delete::<NotificationRule>(tx, id)?;
            crate::app::audit::record(
                tx,
                now,
                &who,
                "notification_rule.delete",
                ("notification_rule", id),
                format!("deleted notification rule {}", r.name),
                audit::deleted_record(&r.clone().redacted()),
            )?;
            Ok(())
        })
        .await
}
