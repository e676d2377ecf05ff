//! Generic JSON: the integration names JSON pointers (RFC 6901) for the title, dedup key,
//! severity, status, description and labels. The body is one alert object or an array of
//! them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{IngestError, Source, from_json, links};
use crate::domain::alert::{Batch, IncomingAction, IncomingAlert, label_fingerprint};
use crate::domain::integration::{GenericMapping, IntegrationKind, IntegrationSettings};

/// The generic source.
pub struct Generic;

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_owned()),
        other => Some(other.to_string()),
    }
}

fn pointer(
    obj: &Value,
    field: &str,
    ptr: Option<&str>,
    at: &str,
) -> Result<Option<String>, IngestError> {
    match ptr {
        None => Ok(None),
        Some(p) => match obj.pointer(p) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ (Value::Object(_) | Value::Array(_))) if field != "labels" => {
                Err(IngestError::invalid(
                    format!("{at}{p}"),
                    format!(
                        "the {field} must be a string or number, not {}",
                        if v.is_object() {
                            "an object"
                        } else {
                            "an array"
                        }
                    ),
                ))
            }
            Some(v) => Ok(as_text(v)),
        },
    }
}

/// Maps one object.
fn map_one(obj: &Value, m: &GenericMapping, at: &str) -> Result<IncomingAlert, IngestError> {
    if !obj.is_object() {
        return Err(IngestError::invalid(
            if at.is_empty() {
                "body".to_owned()
            } else {
                at.to_owned()
            },
            "each alert must be a JSON object",
        ));
    }
    let title = pointer(obj, "title", Some(&m.title), at)?.ok_or_else(|| {
        IngestError::invalid(
            format!("{at}{}", m.title),
            "the title is missing (mapping.title)",
        )
    })?;
    let mut labels = BTreeMap::new();
    if let Some(p) = &m.labels {
        match obj.pointer(p) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    if let Some(t) = as_text(v) {
                        labels.insert(k.clone(), t);
                    }
                }
            }
            Some(_) => {
                return Err(IngestError::invalid(
                    format!("{at}{p}"),
                    "the labels must be a JSON object",
                ));
            }
        }
    }
    let severity = pointer(obj, "severity", m.severity.as_deref(), at)?;
    if let Some(s) = &severity {
        labels
            .entry("severity".to_owned())
            .or_insert_with(|| s.clone());
    }
    let status = pointer(obj, "status", m.status.as_deref(), at)?;
    let resolved = status
        .as_deref()
        .is_some_and(|s| m.resolved_values.iter().any(|r| r.eq_ignore_ascii_case(s)));
    let fingerprint = match pointer(obj, "dedup key", m.dedup_key.as_deref(), at)? {
        Some(k) => k,
        None if !labels.is_empty() => label_fingerprint(&labels),
        None => label_fingerprint(&BTreeMap::from([("title".to_owned(), title.clone())])),
    };
    let description =
        pointer(obj, "description", m.description.as_deref(), at)?.unwrap_or_default();
    Ok(IncomingAlert {
        fingerprint,
        action: if resolved {
            IncomingAction::Resolve
        } else {
            IncomingAction::Fire
        },
        links: links(&BTreeMap::new(), &[]),
        annotations: BTreeMap::new(),
        labels,
        title: super::one_line_title(&title),
        description,
        severity,
        starts_at: None,
        ends_at: None,
        group_key: None,
    })
}

impl Source for Generic {
    const KIND: IntegrationKind = IntegrationKind::Generic;

    fn parse(body: &[u8], settings: &IntegrationSettings) -> Result<Batch, IngestError> {
        let default_mapping;
        let m = match &settings.mapping {
            Some(m) => m,
            None => {
                default_mapping = GenericMapping {
                    title: "/title".into(),
                    dedup_key: Some("/dedup_key".into()),
                    severity: Some("/severity".into()),
                    status: Some("/status".into()),
                    description: Some("/description".into()),
                    labels: Some("/labels".into()),
                    resolved_values: vec!["resolved".into(), "ok".into()],
                };
                &default_mapping
            }
        };
        let value: Value = from_json(body)?;
        let alerts = match &value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| map_one(v, m, &format!("[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            other => vec![map_one(other, m, "")?],
        };
        Ok(Batch {
            alerts,
            truncated: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(m: GenericMapping) -> IntegrationSettings {
        IntegrationSettings {
            mapping: Some(m),
            ..Default::default()
        }
    }

    fn mapping() -> GenericMapping {
        GenericMapping {
            title: "/check/name".into(),
            dedup_key: Some("/id".into()),
            severity: Some("/level".into()),
            status: Some("/state".into()),
            description: Some("/output".into()),
            labels: Some("/tags".into()),
            resolved_values: vec!["OK".into()],
        }
    }

    #[test]
    fn maps_by_pointers() {
        let body = json!({"id": 17, "check": {"name": "disk"}, "level": "critical", "state": "CRITICAL", "output": "97% full", "tags": {"host": "db-1", "n": 3}});
        let b = Generic::parse(body.to_string().as_bytes(), &settings(mapping())).expect("valid");
        let a = &b.alerts[0];
        assert_eq!(
            (
                a.fingerprint.as_str(),
                a.title.as_str(),
                a.description.as_str()
            ),
            ("17", "disk", "97% full")
        );
        assert_eq!(a.action, IncomingAction::Fire);
        assert_eq!(a.labels["host"], "db-1");
        assert_eq!(a.labels["n"], "3");
        assert_eq!(a.labels["severity"], "critical");
        let resolved = json!([{"id": 17, "check": {"name": "disk"}, "state": "ok"}]);
        let b =
            Generic::parse(resolved.to_string().as_bytes(), &settings(mapping())).expect("valid");
        assert_eq!(b.alerts[0].action, IncomingAction::Resolve);
    }

    #[test]
    fn errors_name_the_pointer() {
        let e = Generic::parse(br#"{"id": 1}"#, &settings(mapping())).expect_err("no title");
        assert!(
            matches!(e, IngestError::Invalid { ref field, .. } if field == "/check/name"),
            "{e:?}"
        );
        let e = Generic::parse(
            br#"[{"check": {"name": "x"}, "tags": [1]}]"#,
            &settings(mapping()),
        )
        .expect_err("bad labels");
        assert!(
            matches!(e, IngestError::Invalid { ref field, .. } if field == "[0]/tags"),
            "{e:?}"
        );
        assert!(matches!(
            Generic::parse(b"{", &settings(mapping())),
            Err(IngestError::Malformed(_))
        ));
        let no_key =
            Generic::parse(br#"{"check": {"name": "x"}}"#, &settings(mapping())).expect("ok");
        let again =
            Generic::parse(br#"{"check": {"name": "x"}}"#, &settings(mapping())).expect("ok");
        assert_eq!(
            no_key.alerts[0].fingerprint, again.alerts[0].fingerprint,
            "stable without a dedup key"
        );
    }
}
