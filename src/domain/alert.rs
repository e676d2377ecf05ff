//! Alerts: what monitoring systems send, normalized, and how they are identified.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::priority::Level;

/// What the source says about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// The condition cleared.
    Resolved,
}

impl AlertState {
    /// Stable code for index keys.
    pub const fn code(self) -> u8 {
        match self {
            AlertState::Firing => 1,
            AlertState::Resolved => 2,
        }
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// What an incoming event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncomingAction {
    /// The alert fires.
    Fire,
    /// The alert resolved.
    Resolve,
    /// Someone acknowledged it at the source (PagerDuty `acknowledge`).
    Acknowledge,
}

/// A link attached to an alert (runbook, dashboard, panel, source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// What it is (`runbook`, `dashboard`, `source`, or the sender's text).
    pub text: String,
    /// Where it points.
    pub href: String,
}

/// One alert as parsed from a source, before it meets the store. Serialized, it is in the
/// redo log only where a body cannot simply be parsed again (PagerDuty events given a
/// generated dedup key, records written by older versions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingAlert {
    /// Identity within the integration (source fingerprint, dedup key or label hash).
    pub fingerprint: String,
    /// What to do.
    pub action: IncomingAction,
    /// Identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Informational annotations.
    pub annotations: BTreeMap<String, String>,
    /// One line for people.
    pub title: String,
    /// Details.
    pub description: String,
    /// The source's severity word (`critical`, `warning`...), if any.
    pub severity: Option<String>,
    /// When it started firing, per the source.
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ended, per the source.
    pub ends_at: Option<DateTime<Utc>>,
    /// The source's grouping key (Alertmanager's `groupKey`), if any.
    pub group_key: Option<String>,
    /// Links.
    pub links: Vec<Link>,
}

/// What one request carried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The alerts, in payload order.
    pub alerts: Vec<IncomingAlert>,
    /// Alerts the sender left out (Alertmanager `truncatedAlerts`): their absence says
    /// nothing about their state.
    pub truncated: u64,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// Id.
    pub id: u64,
    /// The integration it came through.
    pub integration_id: u64,
    /// Identity within the integration.
    pub fingerprint: String,
    /// Firing or resolved.
    pub state: AlertState,
    /// The silence that suppressed it when it last fired, if any.
    #[serde(default)]
    pub silenced_by: Option<u64>,
    /// The incident it belongs to (none while silenced, or if it only ever resolved).
    #[serde(default)]
    pub incident_id: Option<u64>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (latest).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Severity word.
    #[serde(default)]
    pub severity: Option<String>,
    /// Started, per the source.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Ended, per the source.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// First received.
    pub first_seen_at: DateTime<Utc>,
    /// Last received.
    pub last_seen_at: DateTime<Utc>,
    /// How many times it was received.
    pub receive_count: u64,
    /// The grouping key it was grouped under.
    #[serde(default)]
    pub group_key: Option<String>,
    /// Links.
    #[serde(default)]
    pub links: Vec<Link>,
}

impl Alert {
    /// The runbook link, if the source gave one.
    pub fn runbook(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.text == "runbook")
            .map(|l| l.href.as_str())
    }
}

/// A stable identity for a label set: SHA-256 over the sorted `name=value` pairs, as 16 hex
/// characters (64 bits, as Alertmanager's fingerprints).
pub fn label_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0xff]);
        h.update(v.as_bytes());
        h.update([0xfe]);
    }
    hex::encode(&h.finalize()[..8])
}

/// An impact and an urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Levels {
    /// Impact.
    pub impact: Level,
    /// Urgency.
    pub urgency: Level,
}

/// Severity word -> impact and urgency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeverityMap {
    /// Severity words, compared lowercase and trimmed (the words are read that way, so a
    /// map saying `P1` matches an alert saying `p1` or `P1`).
    #[serde(deserialize_with = "severity_words")]
    pub levels: BTreeMap<String, Levels>,
    /// For alerts without a severity or with an unknown one.
    pub fallback: Levels,
}

impl Default for SeverityMap {
    /// critical/page -> high/high, error -> high/medium, warning -> medium/medium,
    /// info -> low/low; anything else medium/medium.
    fn default() -> Self {
        use Level::*;
        let levels = [
            ("critical", (High, High)),
            ("page", (High, High)),
            ("error", (High, Medium)),
            ("warning", (Medium, Medium)),
            ("info", (Low, Low)),
        ]
        .into_iter()
        .map(|(k, (impact, urgency))| (k.to_owned(), Levels { impact, urgency }))
        .collect();
        Self {
            levels,
            fallback: Levels {
                impact: Medium,
                urgency: Medium,
            },
        }
    }
}

/// Reads the severity words of a [`SeverityMap`] as they are compared: lowercase, trimmed.
/// Of spellings that read as one word, the last in sorted order wins (the plain lowercase
/// one over capitalised ones); stored maps must keep loading, so this never fails.
fn severity_words<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Levels>, D::Error> {
    let raw = BTreeMap::<String, Levels>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(word, levels)| (word.trim().to_ascii_lowercase(), levels))
        .collect())
}

impl SeverityMap {
    /// The impact and urgency of a severity word.
    pub fn levels(&self, severity: Option<&str>) -> Levels {
        severity
            .and_then(|s| self.levels.get(&s.trim().to_ascii_lowercase()))
            .copied()
            .unwrap_or(self.fallback)
    }
}

/// The grouping key of an alert: the chosen labels' values when the integration groups by
/// labels, else the source's group key, else the fingerprint (one incident per alert).
pub fn group_key(group_by: &[String], alert: &IncomingAlert) -> String {
    group_key_of(
        group_by,
        &alert.labels,
        alert.group_key.as_deref(),
        &alert.fingerprint,
    )
}

/// [`group_key`] from its parts: the alert's labels, the group the source put it in, and
/// its fingerprint.
pub fn group_key_of(
    group_by: &[String],
    labels: &BTreeMap<String, String>,
    source_group: Option<&str>,
    fingerprint: &str,
) -> String {
    if !group_by.is_empty() {
        let parts: Vec<String> = group_by
            .iter()
            .map(|name| {
                format!(
                    "{name}={:?}",
                    labels.get(name).map(String::as_str).unwrap_or("")
                )
            })
            .collect();
        return format!("labels:{{{}}}", parts.join(","));
    }
    match source_group {
        Some(k) => format!("source:{k}"),
        None => format!("alert:{fingerprint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn incoming(l: BTreeMap<String, String>, group: Option<&str>) -> IncomingAlert {
        IncomingAlert {
            fingerprint: label_fingerprint(&l),
            action: IncomingAction::Fire,
            labels: l,
            annotations: BTreeMap::new(),
            title: String::new(),
            description: String::new(),
            severity: None,
            starts_at: None,
            ends_at: None,
            group_key: group.map(str::to_owned),
            links: vec![],
        }
    }

    #[test]
    fn fingerprints_are_stable_and_order_free() {
        let a = labels(&[("a", "1"), ("b", "2")]);
        let b: BTreeMap<String, String> = [("b", "2"), ("a", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(label_fingerprint(&a), label_fingerprint(&b));
        assert_eq!(label_fingerprint(&a).len(), 16);
        assert_ne!(
            label_fingerprint(&a),
            label_fingerprint(&labels(&[("a", "1"), ("b", "3")]))
        );
        // Boundaries between names and values matter.
        assert_ne!(
            label_fingerprint(&labels(&[("ab", "c")])),
            label_fingerprint(&labels(&[("a", "bc")]))
        );
    }

    #[test]
    fn severity_defaults() {
        let m = SeverityMap::default();
        let l = |i, u| Levels {
            impact: i,
            urgency: u,
        };
        assert_eq!(m.levels(Some("critical")), l(Level::High, Level::High));
        assert_eq!(m.levels(Some("WARNING")), l(Level::Medium, Level::Medium));
        assert_eq!(m.levels(Some("info")), l(Level::Low, Level::Low));
        assert_eq!(m.levels(Some("bogus")), l(Level::Medium, Level::Medium));
        assert_eq!(m.levels(None), l(Level::Medium, Level::Medium));
    }

    #[test]
    fn grouping_keys() {
        let a = incoming(
            labels(&[("alertname", "X"), ("instance", "1")]),
            Some("{}:{alertname=\"X\"}"),
        );
        let b = incoming(
            labels(&[("alertname", "X"), ("instance", "2")]),
            Some("{}:{alertname=\"X\"}"),
        );
        assert_eq!(group_key(&[], &a), group_key(&[], &b));
        let by = vec!["instance".to_owned()];
        assert_ne!(group_key(&by, &a), group_key(&by, &b));
        let alone = incoming(labels(&[("x", "1")]), None);
        assert!(group_key(&[], &alone).starts_with("alert:"));
        // From the parts a stored alert keeps: the same keys.
        for (group_by, alert) in [(&[][..], &a), (&by[..], &b), (&[][..], &alone)] {
            assert_eq!(
                group_key_of(
                    group_by,
                    &alert.labels,
                    alert.group_key.as_deref(),
                    &alert.fingerprint
                ),
                group_key(group_by, alert)
            );
        }
        assert_eq!(
            group_key_of(&by, &labels(&[]), None, "f"),
            "labels:{instance=\"\"}",
            "a missing label groups as empty"
        );
    }
}
