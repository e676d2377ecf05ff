//! Use cases: the one place where rules, authorization and storage meet.
//!
//! REST handlers, chat buttons, alert ingestion and playbooks all call these functions with
//! an [`Actor`](crate::domain::actor::Actor); each checks the actor's permissions, applies
//! domain rules, and writes the change together with its audit entry, timeline entry and
//! domain events in one durable transaction.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod chat;
pub mod dashboard;
pub mod error;
pub mod escalation;
pub mod events;
pub mod gauges;
pub mod groups;
pub mod heartbeats;
pub mod incidents;
pub mod ingest_queue;
pub mod integrations;
pub mod names;
pub mod notifications;
pub mod page;
pub mod playbooks;
pub mod problems;
pub(crate) mod redo_record;
pub mod roles;
pub mod routing;
pub mod schedules;
pub mod services;
pub mod settings;
pub mod silences;
pub mod usage;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

pub use error::{AppError, AppResult, FieldErrors};

use crate::auth::jwt::TokenKeys;
use crate::auth::throttle::LoginThrottle;
use crate::config::Config;
use crate::domain::actor::Actor;
use crate::domain::clock::Clock;
use crate::domain::permission::Permission;
use crate::store::{Store, StoreError};

/// Everything a use case needs; shared by every adapter and worker.
pub struct App {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The store.
    pub store: Store,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Access-token keys.
    pub tokens: TokenKeys,
    /// Login throttling.
    pub throttle: LoginThrottle,
    /// The base URL once the listener is bound (when not configured).
    bound_url: std::sync::OnceLock<String>,
    /// Folds concurrent ingestion requests into one store operation.
    pub ingest_queue: ingest_queue::IngestQueue,
    /// Integrations by token, for the webhooks.
    pub integration_tokens: Arc<integrations::TokenCache>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed to open or migrate.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The JWT secret could not be read or created.
    #[error("JWT secret: {0}")]
    Secret(std::io::Error),
    /// A use case during start-up failed.
    #[error(transparent)]
    App(#[from] AppError),
}

impl App {
    /// Opens the store (running migrations) and assembles the application. Blocking: call it
    /// before serving or from `spawn_blocking`.
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<App, StartError> {
        let store = Store::open(&config.store_path(), &config.store_options())?;
        let secret =
            crate::auth::secret::jwt_secret(config.auth.jwt_secret.as_deref(), &config.data_dir)
                .map_err(StartError::Secret)?;
        let throttle = LoginThrottle::new(
            Duration::from_secs(config.auth.throttle_window_secs),
            config.auth.max_failures_per_user,
            config.auth.max_failures_per_address,
        );
        Ok(App {
            bound_url: std::sync::OnceLock::new(),
            ingest_queue: ingest_queue::IngestQueue::default(),
            integration_tokens: Arc::default(),
            tokens: TokenKeys::new(&secret),
            throttle,
            config: Arc::new(config),
            store,
            clock,
        })
    }
}

impl App {
    /// The URL users and senders reach the daemon at: `public_url` when configured, else
    /// the address the listener is bound to.
    pub fn public_url(&self) -> String {
        match (&self.config.public_url, self.bound_url.get()) {
            (None, Some(bound)) => bound.clone(),
            _ => self.config.public_url(),
        }
    }

    /// Records the bound address (for links when `public_url` is not configured).
    pub fn set_bound_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.bound_url.set(format!("http://{addr}"));
    }
}

/// `Ok(())` if `actor` holds `p`, else 403 naming it.
pub fn require(actor: &Actor, p: Permission) -> AppResult<()> {
    if actor.can(p) {
        Ok(())
    } else {
        Err(AppError::Forbidden(p))
    }
}

/// Trims a required text field, recording an error if it is empty or too long.
pub(crate) fn required_text(
    errors: &mut FieldErrors,
    field: &str,
    value: &str,
    max_chars: usize,
) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.add(field, "must not be empty");
    } else if v.chars().count() > max_chars {
        errors.add(field, format!("must be at most {max_chars} characters"));
    } else {
        check_controls(errors, field, v);
    }
    v.to_owned()
}

/// [`required_text`] for a title or a name: one line (it goes into e-mail subjects, SMS,
/// chat headers and lists).
pub(crate) fn required_line(
    errors: &mut FieldErrors,
    field: &str,
    value: &str,
    max_chars: usize,
) -> String {
    let v = required_text(errors, field, value, max_chars);
    if v.contains(['\n', '\r']) {
        errors.add(field, "must be one line");
    }
    v
}

/// Records an error if `v` holds a control character other than a line break or a tab
/// (a NUL or an escape sequence in a title reaches terminals, mail and chat as is).
fn check_controls(errors: &mut FieldErrors, field: &str, v: &str) {
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        errors.add(field, "must not contain control characters");
    }
}

/// Trims an optional text field (empty becomes `None`), recording an error if too long.
pub(crate) fn optional_text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    if v.chars().count() > max_chars {
        errors.add(field, format!("must be at most {max_chars} characters"));
    } else {
        check_controls(errors, field, v);
    }
    Some(v.to_owned())
}

/// A `?q=` search: trimmed, absent when blank, and a field error when it has nothing to
/// search for (no letters or digits): `q=-` or an emoji would otherwise filter nothing and
/// return the whole list.
pub(crate) fn search_param(errors: &mut FieldErrors, q: Option<&str>) -> Option<String> {
    let q = q.map(str::trim).filter(|q| !q.is_empty())?;
    if crate::domain::text::query_tokens(q).is_empty() {
        errors.add("q", "has no words to search for (letters or digits)");
        return None;
    }
    Some(q.to_owned())
}

/// For PATCH bodies: tells "absent" (`None`) from "null" (`Some(None)`), so that a field
/// can be cleared. Use with `#[serde(default, deserialize_with = "crate::app::nullable")]`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Ok(Some(Option::deserialize(d)?))
}

use serde::Deserialize as _;
