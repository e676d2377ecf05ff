//! Alert sources: each module turns one wire format into a [`Batch`] of
//! [`IncomingAlert`](crate::domain::alert::IncomingAlert)s. What happens to them next
//! (silences, routing, dedup, grouping, incidents) is `app::alerts`, the same for every
//! source.

pub mod alertmanager;
pub mod generic;
pub mod grafana;
pub mod pagerduty;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use serde::de::DeserializeOwned;

use crate::domain::alert::{Batch, Link};
use crate::domain::integration::{IntegrationKind, IntegrationSettings};

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// Not JSON, or truncated (400).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON of the wrong shape (422), with the field and the reason.
    #[error("{field}: {reason}")]
    Invalid {
        /// The JSON path of the field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl IngestError {
    /// A shape error.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        IngestError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A wire format.
pub trait Source {
    /// The integration kind it serves.
    const KIND: IntegrationKind;

    /// Parses and validates one request body.
    fn parse(body: &[u8], settings: &IntegrationSettings) -> Result<Batch, IngestError>;
}

/// Parses `body` as the format of `kind`.
pub fn parse(
    kind: IntegrationKind,
    body: &[u8],
    settings: &IntegrationSettings,
) -> Result<Batch, IngestError> {
    match kind {
        IntegrationKind::Alertmanager => alertmanager::Alertmanager::parse(body, settings),
        IntegrationKind::Grafana => grafana::Grafana::parse(body, settings),
        IntegrationKind::Pagerduty => pagerduty::parse_event(body)
            .map(|e| e.batch)
            .map_err(|errors| IngestError::invalid("event", errors.join("; "))),
        IntegrationKind::Generic => generic::Generic::parse(body, settings),
    }
}

/// Deserializes JSON, telling malformed input (400) from a wrong shape (422, with the path).
/// Well-formed bodies take the plain parser; only a failing one is parsed again with path
/// tracking, which costs a good part of a webhook's CPU when done every time.
pub(crate) fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, IngestError> {
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // A data error can surface before a syntax error further on (a truncated
                // body whose first fields have the wrong type): that body is malformed JSON
                // all the same, 400 and not 422.
                if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(body)
                    && !syntax.is_data()
                {
                    return IngestError::Malformed(syntax.to_string());
                }
                let message = inner.to_string();
                let message = message
                    .rfind(" at line ")
                    .map_or(message.as_str(), |i| &message[..i])
                    .to_owned();
                // "missing field `alerts`" is about `alerts`, not the whole body.
                IngestError::invalid(crate::app::error::json_field(&path, &message), message)
            }
            _ => IngestError::Malformed(inner.to_string()),
        }
    })?;
    de.end()
        .map_err(|e| IngestError::Malformed(e.to_string()))?;
    Ok(value)
}

/// Parses an RFC 3339 time; Go's zero time (`0001-01-01T00:00:00Z`) and empty strings are
/// "not set".
pub(crate) fn go_time(
    field: impl FnOnce() -> String,
    raw: Option<&str>,
) -> Result<Option<DateTime<Utc>>, IngestError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let t = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| IngestError::invalid(field(), format!("'{raw}' is not an RFC 3339 time")))?
        .with_timezone(&Utc);
    Ok((t.year() > 1).then_some(t))
}

/// The links an alert's annotations and URLs give: runbook first.
pub(crate) fn links(
    annotations: &BTreeMap<String, String>,
    extra: &[(&str, Option<&str>)],
) -> Vec<Link> {
    let mut out = Vec::new();
    for key in ["runbook_url", "runbook"] {
        if let Some(href) = annotations.get(key).filter(|h| !h.is_empty()) {
            out.push(Link {
                text: "runbook".into(),
                href: href.clone(),
            });
            break;
        }
    }
    for (text, href) in extra {
        if let Some(href) = href.filter(|h| !h.is_empty()) {
            out.push(Link {
                text: (*text).into(),
                href: href.to_owned(),
            });
        }
    }
    out
}

/// A title from the usual annotations and labels.
pub(crate) fn title_of(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> String {
    let name = labels.get("alertname").filter(|s| !s.is_empty());
    let summary = annotations
        .get("summary")
        .or_else(|| annotations.get("title"))
        .filter(|s| !s.is_empty());
    let title = match (name, summary) {
        (Some(n), Some(s)) if !s.contains(n.as_str()) => format!("{n}: {s}"),
        (_, Some(s)) => s.clone(),
        (Some(n), None) => n.clone(),
        (None, None) => "Alert".to_owned(),
    };
    one_line_title(&title)
}

/// A title from a sender, held to what the REST API asks of the titles people type: one
/// line without control characters, at most `MAX_TITLE` characters.
pub(crate) fn one_line_title(title: &str) -> String {
    crate::domain::text::one_line(title, crate::app::incidents::MAX_TITLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_titles_are_one_line_without_control_characters() {
        assert_eq!(one_line_title("  disk\nfull\r\n "), "disk full");
        assert_eq!(one_line_title("\u{1b}[31mred\u{0}"), "[31mred");
        assert_eq!(one_line_title("tab\there"), "tab here");
        let long = "x".repeat(crate::app::incidents::MAX_TITLE + 10);
        assert_eq!(
            one_line_title(&long).chars().count(),
            crate::app::incidents::MAX_TITLE
        );
        let labels = BTreeMap::from([("alertname".to_owned(), "Disk".to_owned())]);
        let annotations = BTreeMap::from([("summary".to_owned(), "full\non db-1".to_owned())]);
        assert_eq!(title_of(&labels, &annotations), "Disk: full on db-1");
    }
}
