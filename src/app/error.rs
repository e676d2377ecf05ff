//! The one error type of the use cases. Every adapter maps it to its medium in one place
//! (`api::problem` for HTTP, the chat adapters for ephemeral messages).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::permission::Permission;
use crate::domain::transition::InvalidTransition;
use crate::store::StoreError;

/// Field -> messages, for 422 answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a message for `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) -> &mut Self {
        self.0.entry(field.into()).or_default().push(message.into());
        self
    }

    /// Adds the error of `check`, if any.
    pub fn check(&mut self, field: &str, check: Result<(), impl std::fmt::Display>) -> &mut Self {
        if let Err(e) = check {
            self.add(field, e.to_string());
        }
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Err(Validation)` if there are any.
    pub fn into_result(self) -> Result<(), AppError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self))
        }
    }

    /// A single-field error.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> AppError {
        let mut e = FieldErrors::new();
        e.add(field, message);
        AppError::Validation(e)
    }
}

/// Why a use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is well-formed but not acceptable (422).
    #[error("validation failed: {}", summarize(.0))]
    Validation(FieldErrors),
    /// The input is not well-formed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Not authenticated (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed (403).
    #[error("missing permission '{0}'")]
    Forbidden(Permission),
    /// Not allowed for a reason other than a missing permission (403).
    #[error("{0}")]
    Refused(String),
    /// No such thing (404).
    #[error("{kind} {id} not found")]
    NotFound {
        /// What kind of thing.
        kind: &'static str,
        /// Which.
        id: String,
    },
    /// Nothing here (404), worded as for a path no route serves: a webhook token that
    /// names no integration must not be told apart from a wrong URL.
    #[error("no such route or resource")]
    NoRoute,
    /// The change conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts (429).
    #[error("too many attempts; retry in {} s", .retry_after.as_secs())]
    Throttled {
        /// When to try again.
        retry_after: Duration,
    },
    /// Overloaded; retry (503).
    #[error("the daemon is busy; retry later")]
    Busy,
    /// Shutting down or not ready (503).
    #[error("the daemon is not available: {0}")]
    Unavailable(String),
    /// A bug or an I/O failure (500); details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

fn summarize(f: &FieldErrors) -> String {
    f.0.iter()
        .map(|(k, v)| format!("{k}: {}", v.join("; ")))
        .collect::<Vec<_>>()
        .join(", ")
}

impl AppError {
    /// A 404 for `kind` with `id`.
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        AppError::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => AppError::Busy,
            StoreError::Closed => AppError::Unavailable("shutting down".into()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<InvalidTransition> for AppError {
    fn from(e: InvalidTransition) -> Self {
        AppError::Conflict(e.to_string())
    }
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;

/// The field a data error is about: the path, plus the name in "missing field `x`" or
/// "unknown field `x`" (which serde reports at the parent).
pub fn json_field(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    let base = if path == "." { "" } else { path };
    match named {
        Some(name) if base.is_empty() => name.to_owned(),
        Some(name) if base == name || base.ends_with(&format!(".{name}")) => base.to_owned(),
        Some(name) => format!("{base}.{name}"),
        None if base.is_empty() => "body".to_owned(),
        None => base.to_owned(),
    }
}
