//! Grafana unified alerting webhook.
//!
//! The envelope is Alertmanager's (Grafana embeds one) plus Grafana's extras: per-alert
//! dashboard, panel and silence links, rule UID and evaluated values, and a group-level
//! title, state and message. The extras become links and annotations.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::alertmanager::{WebhookAlert, map_alert};
use super::{IngestError, Source, from_json};
use crate::domain::alert::Batch;
use crate::domain::integration::{IntegrationKind, IntegrationSettings};

/// The webhook body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Grafana's webhook version ("1").
    #[serde(default)]
    pub version: String,
    /// Identifies the alert group.
    pub group_key: String,
    /// Alerts left out.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` or `resolved`.
    pub status: String,
    /// Annotations all alerts share.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Grafana's `[FIRING:1] ...` title.
    #[serde(default)]
    pub title: String,
    /// `alerting`, `ok`...
    #[serde(default)]
    pub state: String,
    /// The rendered message.
    #[serde(default)]
    pub message: String,
    /// The organisation.
    #[serde(default)]
    pub org_id: Option<i64>,
    /// The alerts.
    pub alerts: Vec<GrafanaAlert>,
}

/// A Grafana alert: Alertmanager's fields plus Grafana's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaAlert {
    /// The Alertmanager part.
    #[serde(flatten)]
    pub base: WebhookAlert,
    /// Link to a new silence for it.
    #[serde(default, rename = "silenceURL")]
    pub silence_url: String,
    /// Its dashboard.
    #[serde(default, rename = "dashboardURL")]
    pub dashboard_url: String,
    /// Its panel.
    #[serde(default, rename = "panelURL")]
    pub panel_url: String,
    /// The alert rule.
    #[serde(default, rename = "ruleUID")]
    pub rule_uid: String,
    /// Evaluated values.
    #[serde(default)]
    pub values: Option<BTreeMap<String, serde_json::Value>>,
    /// Evaluated values as text.
    #[serde(default)]
    pub value_string: String,
}

/// The Grafana source.
pub struct Grafana;

impl Source for Grafana {
    const KIND: IntegrationKind = IntegrationKind::Grafana;

    fn parse(body: &[u8], _settings: &IntegrationSettings) -> Result<Batch, IngestError> {
        let hook: Webhook = from_json(body)?;
        if !matches!(hook.status.as_str(), "firing" | "resolved") {
            return Err(IngestError::invalid(
                "status",
                format!("must be firing or resolved (got '{}')", hook.status),
            ));
        }
        let mut alerts = Vec::with_capacity(hook.alerts.len());
        for (i, a) in hook.alerts.into_iter().enumerate() {
            let extra = [
                ("dashboard", Some(a.dashboard_url.as_str())),
                ("panel", Some(a.panel_url.as_str())),
                ("silence", Some(a.silence_url.as_str())),
            ];
            let mut alert =
                map_alert(i, a.base, &hook.group_key, &hook.common_annotations, &extra)?;
            if !a.rule_uid.is_empty() {
                alert
                    .annotations
                    .insert("grafana_rule_uid".into(), a.rule_uid);
            }
            if !a.value_string.is_empty() {
                alert
                    .annotations
                    .insert("grafana_values".into(), a.value_string);
            } else if let Some(values) = &a.values {
                alert.annotations.insert(
                    "grafana_values".into(),
                    serde_json::to_string(values).unwrap_or_default(),
                );
            }
            alerts.push(alert);
        }
        Ok(Batch {
            alerts,
            truncated: hook.truncated_alerts,
        })
    }
}
