//! Prometheus Alertmanager webhook, version 4.
//!
//! Every documented field is read; fields added by newer Alertmanager versions
//! (`notification_reason`, `routeLabels`, ...) are ignored. Alerts are identified by
//! Alertmanager's own fingerprint and grouped by its `groupKey`. `truncatedAlerts` says
//! alerts were left out; nothing is ever inferred from an alert's absence, so they stay as
//! they are.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{IngestError, Source, from_json, go_time, links, title_of};
use crate::domain::alert::{Batch, IncomingAction, IncomingAlert, label_fingerprint};
use crate::domain::integration::{IntegrationKind, IntegrationSettings};

/// The webhook body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// "4".
    pub version: String,
    /// Identifies the alert group.
    pub group_key: String,
    /// Alerts left out because of `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` if any alert fires, else `resolved`.
    pub status: String,
    /// The receiver name.
    #[serde(default)]
    pub receiver: String,
    /// The labels the group is formed by.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// Labels all alerts share.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations all alerts share.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Where the Alertmanager is.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of the webhook.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Start (RFC 3339).
    #[serde(default)]
    pub starts_at: Option<String>,
    /// End (RFC 3339; Go's zero time while firing).
    #[serde(default)]
    pub ends_at: Option<String>,
    /// The alerting rule's expression link.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint of the labels.
    #[serde(default)]
    pub fingerprint: String,
}

/// The Alertmanager source.
pub struct Alertmanager;

/// Maps alerts shared by Alertmanager and Grafana (same envelope). Takes the alert by
/// value: its labels, annotations and fingerprint move into the result (a webhook is
/// parsed on the request's hot path; cloning every string of it twice showed up there).
pub(crate) fn map_alert(
    i: usize,
    a: WebhookAlert,
    group_key: &str,
    common_annotations: &BTreeMap<String, String>,
    extra_links: &[(&str, Option<&str>)],
) -> Result<IncomingAlert, IngestError> {
    let action = match a.status.as_str() {
        "firing" => IncomingAction::Fire,
        "resolved" => IncomingAction::Resolve,
        other => {
            return Err(IngestError::invalid(
                format!("alerts[{i}].status"),
                format!("must be firing or resolved (got '{other}')"),
            ));
        }
    };
    if a.labels.is_empty() {
        return Err(IngestError::invalid(
            format!("alerts[{i}].labels"),
            "an alert needs at least one label",
        ));
    }
    let starts_at = go_time(|| format!("alerts[{i}].startsAt"), a.starts_at.as_deref())?;
    let ends_at = go_time(|| format!("alerts[{i}].endsAt"), a.ends_at.as_deref())?;
    // The alert's own annotations win over the group's common ones.
    let mut annotations = a.annotations;
    for (k, v) in common_annotations {
        if !annotations.contains_key(k) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let fingerprint = match a.fingerprint.trim() {
        "" => label_fingerprint(&a.labels),
        trimmed if trimmed.len() == a.fingerprint.len() => a.fingerprint,
        trimmed => trimmed.to_owned(),
    };
    let mut all_links = vec![("source", Some(a.generator_url.as_str()))];
    all_links.extend_from_slice(extra_links);
    Ok(IncomingAlert {
        fingerprint,
        action,
        title: title_of(&a.labels, &annotations),
        description: annotations
            .get("description")
            .or_else(|| annotations.get("message"))
            .cloned()
            .unwrap_or_default(),
        severity: a.labels.get("severity").cloned(),
        starts_at,
        ends_at,
        group_key: Some(group_key.to_owned()),
        links: links(&annotations, &all_links),
        labels: a.labels,
        annotations,
    })
}

impl Source for Alertmanager {
    const KIND: IntegrationKind = IntegrationKind::Alertmanager;

    fn parse(body: &[u8], _settings: &IntegrationSettings) -> Result<Batch, IngestError> {
        let hook: Webhook = from_json(body)?;
        if hook.version != "4" {
            return Err(IngestError::invalid(
                "version",
                format!(
                    "only webhook version 4 is supported (got '{}')",
                    hook.version
                ),
            ));
        }
        if !matches!(hook.status.as_str(), "firing" | "resolved") {
            return Err(IngestError::invalid(
                "status",
                format!("must be firing or resolved (got '{}')", hook.status),
            ));
        }
        let (group_key, common) = (&hook.group_key, &hook.common_annotations);
        let alerts = hook
            .alerts
            .into_iter()
            .enumerate()
            .map(|(i, a)| map_alert(i, a, group_key, common, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Batch {
            alerts,
            truncated: hook.truncated_alerts,
        })
    }
}
