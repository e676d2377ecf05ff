//! The audit log: every mutation, who made it, to what, and what changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::actor::ActorRef;

/// What a change was made to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditTarget {
    /// `user`, `role`, `group`, `service`, `incident`, `problem`, ...
    pub kind: String,
    /// Its id (0 for daemon-wide settings).
    pub id: u64,
}

/// One recorded mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Increasing id: newer entries have larger ids.
    pub id: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: ActorRef,
    /// `user.create`, `incident.transition`, ...
    pub action: String,
    /// What.
    pub target: AuditTarget,
    /// One line for people.
    pub summary: String,
    /// Changed fields: `{field: {"from": old, "to": new}}`; secrets redacted.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub changes: Value,
}

/// Fields whose values never appear in the audit log.
const REDACTED: &[&str] = &[
    "password",
    "password_hash",
    "token",
    "token_hash",
    "secret",
    "auth_token",
    "signing_secret",
];

fn redact(key: &str, v: &Value) -> Value {
    if REDACTED.contains(&key) && !v.is_null() {
        Value::String("[redacted]".into())
    } else {
        v.clone()
    }
}

/// The change of a secret (a password, a token, a signing key): that it changed, never
/// what to.
pub fn redacted_change() -> Value {
    serde_json::json!({"from": "[redacted]", "to": "[redacted]"})
}

/// The top-level fields that differ between two JSON objects, as `{field: {from, to}}`.
/// `updated_at` is left out (it always changes); secrets are redacted. A missing field
/// counts as null.
pub fn diff(before: &Value, after: &Value) -> Value {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    for key in keys {
        if key == "updated_at" {
            continue;
        }
        let old = b.get(key).unwrap_or(&Value::Null);
        let new = a.get(key).unwrap_or(&Value::Null);
        if old != new {
            let mut change = Map::new();
            change.insert("from".into(), redact(key, old));
            change.insert("to".into(), redact(key, new));
            out.insert(key.clone(), Value::Object(change));
        }
    }
    Value::Object(out)
}

/// A created record's fields as a change from nothing.
pub fn created(after: &Value) -> Value {
    diff(&Value::Object(Map::new()), after)
}

/// A deleted record's fields as a change to nothing.
pub fn deleted(before: &Value) -> Value {
    diff(before, &Value::Object(Map::new()))
}

/// [`diff`] of two records as they serialize (what every update records).
pub fn diff_records<T: serde::Serialize>(before: &T, after: &T) -> Value {
    diff(&as_json(before), &as_json(after))
}

/// [`created`] of a record as it serializes.
pub fn created_record<T: serde::Serialize>(after: &T) -> Value {
    created(&as_json(after))
}

/// [`deleted`] of a record as it serializes.
pub fn deleted_record<T: serde::Serialize>(before: &T) -> Value {
    deleted(&as_json(before))
}

/// A record as JSON; domain records always serialize, so null only stands for a bug.
fn as_json<T: serde::Serialize>(record: &T) -> Value {
    serde_json::to_value(record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_changed_fields_only() {
        let before = json!({"name": "a", "tier": 1, "updated_at": "x", "same": true});
        let after = json!({"name": "b", "tier": 1, "updated_at": "y", "same": true, "new": 3});
        assert_eq!(
            diff(&before, &after),
            json!({"name": {"from": "a", "to": "b"}, "new": {"from": null, "to": 3}})
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let d = created(&json!({"username": "bob", "password_hash": "$argon2id$..."}));
        assert_eq!(d["password_hash"]["to"], json!("[redacted]"));
        assert_eq!(d["username"]["to"], json!("bob"));
        let gone = deleted(&json!({"token_hash": "abc"}));
        assert_eq!(
            gone["token_hash"],
            json!({"from": "[redacted]", "to": null})
        );
    }
}
