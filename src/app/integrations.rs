//! Alert integrations: create (the token is shown once), rotate, change, delete, and find by
//! token for the webhooks.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, nullable, require, required_line};
use crate::auth::secret::{HookToken, sha256_hex};
use crate::domain::actor::Actor;
use crate::domain::audit;
use crate::domain::integration::{Integration, IntegrationKind, IntegrationSettings};
use crate::domain::matcher::is_label_name;
use crate::domain::permission::Permission;
use crate::domain::service::{DEFAULT_SERVICE_ID, Service};
use crate::store::access::{self, Order, Reader};
use crate::store::tables;

/// An integration as the API shows it (never the token, except right after creation or
/// rotation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationView {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Wire format.
    pub kind: IntegrationKind,
    /// The first characters of the token.
    pub token_hint: String,
    /// Where alerts go by default.
    pub service_id: u64,
    /// Who is paged by default.
    pub escalation_policy_id: Option<u64>,
    /// Mapping and grouping.
    pub settings: IntegrationSettings,
    /// Where to send alerts (with the token in place of `{token}` unless just created).
    pub url: String,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The token: only in the answer to create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A new integration.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntegration {
    /// Name.
    pub name: String,
    /// `alertmanager`, `grafana`, `pagerduty` or `generic`.
    pub kind: IntegrationKind,
    /// Default service (default: the Default service).
    #[serde(default)]
    pub service_id: Option<u64>,
    /// Default escalation policy.
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    /// Mapping and grouping.
    #[serde(default)]
    pub settings: Option<IntegrationSettings>,
    /// Import an existing key (e.g. a PagerDuty routing key) instead of generating one:
    /// 32 to 128 characters of letters, digits, `-` and `_`.
    #[serde(default)]
    pub token: Option<String>,
}

/// Changes to an integration.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationPatch {
    /// New name.
    pub name: Option<String>,
    /// New default service.
    pub service_id: Option<u64>,
    /// New default policy, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>)]
    pub escalation_policy_id: Option<Option<u64>>,
    /// New settings (replaces them).
    pub settings: Option<IntegrationSettings>,
}

/// The URL an integration receives at.
pub fn url_for(base: &str, kind: IntegrationKind, token: Option<&str>) -> String {
    let token = token.unwrap_or("{token}");
    match kind {
        IntegrationKind::Pagerduty => format!("{base}/v2/enqueue"),
        other => format!("{base}/hooks/{}/{token}", other.as_str()),
    }
}

fn view(app: &App, i: &Integration, token: Option<String>) -> IntegrationView {
    IntegrationView {
        id: i.id,
        name: i.name.clone(),
        kind: i.kind,
        token_hint: i.token_hint.clone(),
        service_id: i.service_id,
        escalation_policy_id: i.escalation_policy_id,
        settings: i.settings.clone(),
        url: url_for(&app.public_url(), i.kind, token.as_deref()),
        created_at: i.created_at,
        updated_at: i.updated_at,
        token,
    }
}

fn check_settings(e: &mut FieldErrors, kind: IntegrationKind, s: &IntegrationSettings) {
    for (i, name) in s.group_by.iter().enumerate() {
        if !is_label_name(name) {
            e.add(
                format!("settings.group_by[{i}]"),
                format!("'{name}' is not a valid label name"),
            );
        }
    }
    if s.severity_map.levels.contains_key("") {
        e.add(
            "settings.severity_map.levels",
            "a severity word cannot be empty",
        );
    }
    if s.group_window_secs == Some(0) {
        e.add(
            "settings.group_window_secs",
            "must be at least 1 (or absent)",
        );
    }
    let max = crate::config::MAX_DURATION_SECS;
    for (field, secs) in [
        ("settings.group_window_secs", s.group_window_secs),
        ("settings.reopen_window_secs", Some(s.reopen_window_secs)),
    ] {
        if secs.is_some_and(|secs| secs > max) {
            e.add(field, format!("must be at most {max} (ten years)"));
        }
    }
    if let Some(m) = &s.mapping {
        let pointers = [
            ("title", Some(&m.title)),
            ("dedup_key", m.dedup_key.as_ref()),
            ("severity", m.severity.as_ref()),
            ("status", m.status.as_ref()),
            ("description", m.description.as_ref()),
            ("labels", m.labels.as_ref()),
        ];
        for (name, p) in pointers {
            if let Some(p) = p
                && !p.is_empty()
                && !p.starts_with('/')
            {
                e.add(
                    format!("settings.mapping.{name}"),
                    "must be a JSON pointer starting with '/'",
                );
            }
        }
    }
    if kind != IntegrationKind::Generic && s.mapping.is_some() {
        e.add(
            "settings.mapping",
            "only generic integrations take a mapping",
        );
    }
}

fn check_token(e: &mut FieldErrors, token: &str) {
    if !(32..=128).contains(&token.len())
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        e.add(
            "token",
            "must be 32 to 128 characters of letters, digits, '-' and '_'",
        );
    }
}

fn check_service(
    r: &impl Reader,
    e: &mut FieldErrors,
    id: u64,
) -> Result<(), crate::store::StoreError> {
    if access::get::<Service>(r, id)?.is_none() {
        e.add("service_id", format!("no service with id {id}"));
    }
    Ok(())
}

/// Creates an integration (needs `integration:write`); the answer carries the token once.
pub async fn create(app: &App, actor: &Actor, input: NewIntegration) -> AppResult<IntegrationView> {
    require(actor, Permission::IntegrationWrite)?;
    let mut e = FieldErrors::new();
    let name = required_line(&mut e, "name", &input.name, 100);
    let settings = input.settings.clone().unwrap_or_default();
    check_settings(&mut e, input.kind, &settings);
    if let Some(t) = &input.token {
        check_token(&mut e, t);
    }
    e.into_result()?;
    // 128 random bits, hex: fits PagerDuty's 32-character routing keys.
    let HookToken {
        clear: token,
        hash,
        hint,
    } = input
        .token
        .clone()
        .map_or_else(HookToken::generate, HookToken::from_clear);
    let now = app.clock.now();
    let who = actor.reference.clone();
    let service_id = input.service_id.unwrap_or(DEFAULT_SERVICE_ID);
    let integration = app
        .store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            check_service(tx, &mut e, service_id)?;
            super::escalation::policies::check_ref(
                tx,
                &mut e,
                "escalation_policy_id",
                input.escalation_policy_id,
            )?;
            e.into_result()?;
            if access::get_id(tx, tables::INTEGRATIONS_BY_TOKEN, hash.as_bytes())?.is_some() {
                return Err(AppError::Conflict("that token is already in use".into()));
            }
            let id = access::next_id(tx, tables::INTEGRATIONS)?;
            let i = Integration {
                id,
                name: name.clone(),
                kind: input.kind,
                token_hash: hash.clone(),
                token_hint: hint.clone(),
                service_id,
                escalation_policy_id: input.escalation_policy_id,
                settings: settings.clone(),
                created_by: who.clone(),
                created_at: now,
                updated_at: now,
            };
            access::put(tx, &i)?;
            access::put_id(tx, tables::INTEGRATIONS_BY_TOKEN, hash.as_bytes(), id)?;
            super::audit::record(
                tx,
                now,
                &who,
                "integration.create",
                ("integration", id),
                format!("created {} integration {}", i.kind, i.name),
                audit::created_record(&i),
            )?;
            Ok::<_, AppError>(i)
        })
        .await?;
    Ok(view(app, &integration, Some(token)))
}

/// One integration (needs `integration:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<IntegrationView> {
    require(actor, Permission::IntegrationRead)?;
    let i = access::get::<Integration>(&app.store.read()?, id)?
        .ok_or_else(|| AppError::not_found("integration", id))?;
    Ok(view(app, &i, None))
}

/// Integrations in id order (needs `integration:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<IntegrationView>> {
    require(actor, Permission::IntegrationRead)?;
    let items =
        access::list::<Integration>(&app.store.read()?, page.after, Order::Asc, page.limit + 1)?;
    Ok(Page::from_overfetch(items, page.limit, |i| i.id).map(|i| view(app, &i, None)))
}

/// Changes an integration (needs `integration:write`).
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: IntegrationPatch,
) -> AppResult<IntegrationView> {
    require(actor, Permission::IntegrationWrite)?;
    let mut e = FieldErrors::new();
    let name = patch
        .name
        .as_deref()
        .map(|n| required_line(&mut e, "name", n, 100));
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let i = change(app, move |tx| {
        let before = access::get::<Integration>(tx, id)?
            .ok_or_else(|| AppError::not_found("integration", id))?;
        let mut i = before.clone();
        let mut e = FieldErrors::new();
        if let Some(s) = patch.service_id {
            check_service(tx, &mut e, s)?;
            i.service_id = s;
        }
        if let Some(s) = &patch.settings {
            check_settings(&mut e, i.kind, s);
            i.settings = s.clone();
        }
        if let Some(p) = patch.escalation_policy_id {
            super::escalation::policies::check_ref(tx, &mut e, "escalation_policy_id", p)?;
            i.escalation_policy_id = p;
        }
        e.into_result()?;
        if let Some(n) = &name {
            i.name = n.clone();
        }
        i.updated_at = now;
        access::put(tx, &i)?;
        let changes = audit::diff_records(&before, &i);
        super::audit::record(
            tx,
            now,
            &who,
            "integration.update",
            ("integration", id),
            format!("changed integration {}", i.name),
            changes,
        )?;
        Ok::<_, AppError>(i)
    })
    .await?;
    Ok(view(app, &i, None))
}

/// Replaces the token (needs `integration:write`); the old one stops working at once.
pub async fn rotate(app: &App, actor: &Actor, id: u64) -> AppResult<IntegrationView> {
    require(actor, Permission::IntegrationWrite)?;
    let HookToken {
        clear: token,
        hash,
        hint,
    } = HookToken::generate();
    let now = app.clock.now();
    let who = actor.reference.clone();
    let i = change(app, move |tx| {
        let mut i = access::get::<Integration>(tx, id)?
            .ok_or_else(|| AppError::not_found("integration", id))?;
        access::delete_raw(tx, tables::INTEGRATIONS_BY_TOKEN, i.token_hash.as_bytes())?;
        i.token_hash = hash.clone();
        i.token_hint = hint.clone();
        i.updated_at = now;
        access::put(tx, &i)?;
        access::put_id(tx, tables::INTEGRATIONS_BY_TOKEN, hash.as_bytes(), id)?;
        super::audit::record(
            tx,
            now,
            &who,
            "integration.rotate",
            ("integration", id),
            format!("rotated the token of {}", i.name),
            serde_json::json!({"token": audit::redacted_change()}),
        )?;
        Ok::<_, AppError>(i)
    })
    .await?;
    Ok(view(app, &i, Some(token)))
}

/// Deletes an integration (needs `integration:write`); its alerts and incidents stay.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    require(actor, Permission::IntegrationWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    change(app, move |tx| {
        let i = access::get::<Integration>(tx, id)?
            .ok_or_else(|| AppError::not_found("integration", id))?;
        // A rule left naming only this integration would, once its id is gone from the
        // list, match every integration's alerts.
        if let Some(r) = super::routing::all(tx)?
            .iter()
            .find(|r| r.integration_ids.contains(&id))
        {
            return Err(AppError::Conflict(format!(
                "routing rule '{}' applies to integration '{}'; change that rule first",
                r.name, i.name
            )));
        }
        access::delete::<Integration>(tx, id)?;
        access::delete_raw(tx, tables::INTEGRATIONS_BY_TOKEN, i.token_hash.as_bytes())?;
        super::audit::record(
            tx,
            now,
            &who,
            "integration.delete",
            ("integration", id),
            format!("deleted integration {}", i.name),
            audit::deleted_record(&i),
        )?;
        Ok::<_, AppError>(())
    })
    .await?;
    Ok(())
}

/// Integrations by token hash, so that a busy webhook does not open a read transaction and
/// decode its integration for every request. Every change to an integration clears it
/// (after its commit); a lookup that raced with a change does not fill it.
#[derive(Debug, Default)]
pub struct TokenCache {
    inner: std::sync::Mutex<TokenCacheInner>,
}

#[derive(Debug, Default)]
struct TokenCacheInner {
    /// Bumped by every clear.
    generation: u64,
    /// Only tokens that exist: the cache holds at most one entry per integration.
    by_hash: std::collections::HashMap<String, Arc<Integration>>,
}

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, TokenCacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets everything (an integration changed).
    fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.by_hash.clear();
    }
}

/// Runs an integration change, then clears the token cache: in a task of its own, so that
/// a caller that goes away (a timeout, a disconnect) cannot leave the change committed
/// and the cache stale.
async fn change<T, F>(app: &App, op: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnMut(&redb::WriteTransaction) -> AppResult<T> + Send + 'static,
{
    let store = app.store.clone();
    let tokens = app.integration_tokens.clone();
    tokio::spawn(async move {
        let result = store.write(op).await;
        tokens.clear();
        result
    })
    .await
    .map_err(|e| AppError::Internal(format!("an integration change stopped: {e}")))?
}

/// The integration a token belongs to, if its kind is `kind`.
pub fn by_token(app: &App, kind: IntegrationKind, token: &str) -> AppResult<Arc<Integration>> {
    let unknown = || AppError::NoRoute;
    let hash = sha256_hex(token.trim());
    let cache = &app.integration_tokens;
    let generation = {
        let inner = cache.lock();
        if let Some(i) = inner.by_hash.get(&hash) {
            return if i.kind == kind {
                Ok(i.clone())
            } else {
                Err(unknown())
            };
        }
        inner.generation
    };
    let r = app.store.read()?;
    let id =
        access::get_id(&r, tables::INTEGRATIONS_BY_TOKEN, hash.as_bytes())?.ok_or_else(unknown)?;
    let i = Arc::new(access::get::<Integration>(&r, id)?.ok_or_else(unknown)?);
    {
        let mut inner = cache.lock();
        if inner.generation == generation {
            inner.by_hash.insert(hash, i.clone());
        }
    }
    if i.kind != kind {
        return Err(unknown());
    }
    Ok(i)
}
