//! Alert integrations: a kind of sender, its secret token, where its alerts go and how they
//! are mapped.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor::ActorRef;
use super::alert::SeverityMap;

/// The wire format an integration accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    /// Prometheus Alertmanager webhook v4.
    Alertmanager,
    /// Grafana unified alerting webhook.
    Grafana,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Any JSON, mapped by JSON pointers.
    Generic,
}

impl IntegrationKind {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Alertmanager => "alertmanager",
            IntegrationKind::Grafana => "grafana",
            IntegrationKind::Pagerduty => "pagerduty",
            IntegrationKind::Generic => "generic",
        }
    }
}

impl fmt::Display for IntegrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for IntegrationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "alertmanager" => Ok(IntegrationKind::Alertmanager),
            "grafana" => Ok(IntegrationKind::Grafana),
            "pagerduty" => Ok(IntegrationKind::Pagerduty),
            "generic" => Ok(IntegrationKind::Generic),
            _ => Err(format!("unknown integration kind '{s}'")),
        }
    }
}

/// Where a generic integration finds each field (RFC 6901 JSON pointers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericMapping {
    /// The title (required in every payload).
    pub title: String,
    /// The dedup key; absent: a hash of the labels, or of the title.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// The severity word.
    #[serde(default)]
    pub severity: Option<String>,
    /// The status; values in `resolved_values` resolve, anything else fires.
    #[serde(default)]
    pub status: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// An object of labels (string values; others are stringified).
    #[serde(default)]
    pub labels: Option<String>,
    /// Status values that mean resolved (case-insensitive).
    #[serde(default = "default_resolved_values")]
    pub resolved_values: Vec<String>,
}

fn default_resolved_values() -> Vec<String> {
    ["resolved", "ok", "closed", "recovered", "normal"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// How an integration turns alerts into incidents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationSettings {
    /// Group alerts into one incident by these labels instead of the source's group key.
    pub group_by: Vec<String>,
    /// A group joins its open incident only if that incident opened at most this long ago;
    /// absent: as long as it is open.
    pub group_window_secs: Option<u64>,
    /// Resolve the incident when all its alerts have resolved.
    pub auto_resolve: bool,
    /// A resolved incident whose alert fires again within this many seconds is reopened;
    /// later, a new incident opens.
    pub reopen_window_secs: u64,
    /// Severity word -> impact and urgency.
    pub severity_map: SeverityMap,
    /// For `generic` integrations: where the fields are.
    pub mapping: Option<GenericMapping>,
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        Self {
            group_by: vec![],
            group_window_secs: None,
            auto_resolve: true,
            reopen_window_secs: 3600,
            severity_map: SeverityMap::default(),
            mapping: None,
        }
    }
}

/// An integration as stored. Only a SHA-256 of its token is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    /// Id.
    pub id: u64,
    /// Name (shown as the actor of what it does).
    pub name: String,
    /// Wire format.
    pub kind: IntegrationKind,
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// The first characters of the token, to recognise it.
    pub token_hint: String,
    /// Where its incidents go unless a routing rule says otherwise.
    pub service_id: u64,
    /// Who is paged unless a routing rule says otherwise.
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    /// Mapping and grouping.
    #[serde(default)]
    pub settings: IntegrationSettings,
    /// Who created it.
    pub created_by: ActorRef,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}
