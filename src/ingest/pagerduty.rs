//! PagerDuty Events API v2 (`POST /v2/enqueue`), so that an existing PagerDuty sender works
//! by changing one URL.
//!
//! Validation follows PagerDuty's rules and answers: an invalid event is 400
//! `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`; an
//! accepted one is 202 `{"status": "success", "message": "Event processed", "dedup_key"}`.
//! A trigger without a `dedup_key` gets a generated one, returned in the answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::links;
use crate::domain::alert::{Batch, IncomingAction, IncomingAlert, Link};

/// Severities PagerDuty accepts.
pub const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];
/// Longest summary PagerDuty accepts.
pub const MAX_SUMMARY: usize = 1024;
/// Longest dedup key PagerDuty accepts.
pub const MAX_DEDUP_KEY: usize = 255;

/// A validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The integration key, when given in the body.
    pub routing_key: Option<String>,
    /// The dedup key (generated for a trigger without one).
    pub dedup_key: String,
    /// The alert to process.
    pub batch: Batch,
}

fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .or_else(|_| DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses and validates one event; on failure, PagerDuty-style error messages.
pub fn parse_event(body: &[u8]) -> Result<Event, Vec<String>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![format!("the body is not valid JSON: {e}")])?;
    let Some(obj) = value.as_object() else {
        return Err(vec!["the event must be a JSON object".into()]);
    };
    let mut errors = Vec::new();
    let routing_key = match obj.get("routing_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(_) => {
            errors.push("'routing_key' must be a string".into());
            None
        }
    };
    let action = match text(obj, "event_action") {
        Some("trigger") => Some(IncomingAction::Fire),
        Some("acknowledge") => Some(IncomingAction::Acknowledge),
        Some("resolve") => Some(IncomingAction::Resolve),
        _ => {
            errors.push("'event_action' is missing or invalid (must be one of: trigger, acknowledge, resolve)".into());
            None
        }
    };
    let dedup_key = match obj.get("dedup_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) if s.chars().count() > MAX_DEDUP_KEY => {
            errors.push(format!(
                "'dedup_key' is longer than {MAX_DEDUP_KEY} characters"
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push("'dedup_key' must be a string".into());
            None
        }
    };
    if matches!(
        action,
        Some(IncomingAction::Acknowledge | IncomingAction::Resolve)
    ) && dedup_key.is_none()
    {
        errors.push("'dedup_key' is required for acknowledge and resolve events".into());
    }
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let mut title = String::new();
    let mut severity = None;
    let mut starts_at = None;
    let mut extra_links = Vec::new();
    if action == Some(IncomingAction::Fire) {
        match obj.get("payload").and_then(Value::as_object) {
            None => errors.push("'payload' is missing or not an object".into()),
            Some(p) => {
                match text(p, "summary") {
                    None => errors.push("'payload.summary' is missing or blank".into()),
                    Some(s) if s.chars().count() > MAX_SUMMARY => errors.push(format!(
                        "'payload.summary' is longer than {MAX_SUMMARY} characters"
                    )),
                    Some(s) => title = s.to_owned(),
                }
                match text(p, "source") {
                    None => errors.push("'payload.source' is missing or blank".into()),
                    Some(s) => {
                        labels.insert("source".to_owned(), s.to_owned());
                    }
                }
                match text(p, "severity") {
                    Some(s) if SEVERITIES.contains(&s) => {
                        severity = Some(s.to_owned());
                        labels.insert("severity".to_owned(), s.to_owned());
                    }
                    _ => errors.push("'payload.severity' is invalid (must be one of: critical, error, warning, info)".into()),
                }
                if let Some(ts) = p.get("timestamp").filter(|v| !v.is_null()) {
                    match ts.as_str().and_then(parse_timestamp) {
                        Some(t) => starts_at = Some(t),
                        None => errors.push(
                            "'payload.timestamp' is invalid (must be an ISO 8601 time)".into(),
                        ),
                    }
                }
                for key in ["component", "group", "class"] {
                    if let Some(v) = text(p, key) {
                        labels.insert(key.to_owned(), v.to_owned());
                    }
                }
                match p.get("custom_details") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(details)) => {
                        for (k, v) in details {
                            annotations.insert(k.clone(), stringify(v));
                        }
                    }
                    Some(other) => {
                        annotations.insert("details".to_owned(), stringify(other));
                    }
                }
            }
        }
        for (key, href_key, text_key) in [("links", "href", "text"), ("images", "href", "alt")] {
            match obj.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let href = item
                            .get(href_key)
                            .or_else(|| item.get("src"))
                            .and_then(Value::as_str);
                        match href {
                            Some(h) => extra_links.push(Link {
                                text: item
                                    .get(text_key)
                                    .and_then(Value::as_str)
                                    .unwrap_or(if key == "links" { "link" } else { "image" })
                                    .to_owned(),
                                href: h.to_owned(),
                            }),
                            None => errors.push(format!("'{key}[{i}].{href_key}' is missing")),
                        }
                    }
                }
                Some(_) => errors.push(format!("'{key}' must be an array")),
            }
        }
        for key in ["client", "client_url"] {
            if let Some(v) = text(obj, key) {
                annotations.insert(key.to_owned(), v.to_owned());
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let action = action.unwrap_or(IncomingAction::Fire);
    let dedup_key = dedup_key.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let mut all_links = links(&annotations, &[]);
    if let Some(url) = annotations.get("client_url") {
        all_links.push(Link {
            text: annotations
                .get("client")
                .cloned()
                .unwrap_or_else(|| "source".into()),
            href: url.clone(),
        });
    }
    all_links.extend(extra_links);
    let description = annotations
        .iter()
        .filter(|(k, _)| !k.starts_with("client"))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    let alert = IncomingAlert {
        fingerprint: dedup_key.clone(),
        action,
        labels,
        annotations,
        title: super::one_line_title(&title),
        description,
        severity,
        starts_at,
        ends_at: None,
        group_key: None,
        links: all_links,
    };
    Ok(Event {
        routing_key,
        dedup_key,
        batch: Batch {
            alerts: vec![alert],
            truncated: 0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Event, Vec<String>> {
        parse_event(v.to_string().as_bytes())
    }

    #[test]
    fn trigger_maps_fields() {
        let e = parse(json!({
            "routing_key": "k", "event_action": "trigger", "dedup_key": "d1",
            "payload": {"summary": "disk full", "source": "db-1", "severity": "error",
                        "timestamp": "2025-11-24T09:12:31.482+0000", "component": "postgres",
                        "custom_details": {"free": 0.01, "runbook_url": "https://rb"}},
            "client": "Nagios", "client_url": "https://nagios",
            "links": [{"href": "https://dash", "text": "Dashboard"}],
            "images": [{"src": "https://img", "alt": "graph"}]
        }))
        .expect("valid");
        let a = &e.batch.alerts[0];
        assert_eq!(e.dedup_key, "d1");
        assert_eq!(a.fingerprint, "d1");
        assert_eq!(a.title, "disk full");
        assert_eq!(a.severity.as_deref(), Some("error"));
        assert_eq!(a.labels["source"], "db-1");
        assert_eq!(a.labels["component"], "postgres");
        assert_eq!(a.annotations["free"], "0.01");
        assert_eq!(a.links[0].text, "runbook");
        assert!(
            a.links
                .iter()
                .any(|l| l.text == "Dashboard" && l.href == "https://dash")
        );
        assert!(
            a.links
                .iter()
                .any(|l| l.text == "graph" && l.href == "https://img")
        );
        assert!(a.starts_at.is_some());
    }

    #[test]
    fn a_trigger_without_dedup_key_gets_one() {
        let e = parse(json!({"routing_key": "k", "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "info"}})).expect("valid");
        assert_eq!(e.dedup_key.len(), 32);
    }

    #[test]
    fn pagerduty_validation_rules() {
        let errs = parse(json!({"routing_key": "k", "event_action": "trigger", "payload": {"summary": "", "severity": "fatal"}})).expect_err("invalid");
        assert!(
            errs.iter().any(|e| e.contains("'payload.summary'")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("'payload.source'")),
            "{errs:?}"
        );
        assert!(
            errs.contains(
                &"'payload.severity' is invalid (must be one of: critical, error, warning, info)"
                    .to_owned()
            )
        );
        let errs =
            parse(json!({"routing_key": "k", "event_action": "resolve"})).expect_err("needs key");
        assert!(errs[0].contains("dedup_key"));
        let errs =
            parse(json!({"routing_key": "k", "event_action": "explode"})).expect_err("bad action");
        assert!(errs[0].contains("event_action"));
        assert!(parse_event(b"{").is_err());
        let errs = parse(json!({"event_action": "trigger", "payload": {"summary": "x".repeat(1025), "source": "s", "severity": "info"}})).expect_err("long");
        assert!(errs[0].contains("1024"));
        assert!(parse(json!({"event_action": "acknowledge", "dedup_key": "d"})).is_ok());
    }
}
