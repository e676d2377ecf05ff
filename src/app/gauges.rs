//! What the store holds right now, as gauges for `/metrics`: open incidents by status and
//! by priority, firing and silenced alerts, notifications waiting or given up, heartbeat
//! monitors by state, approval requests waiting for a decision.
//!
//! Counters say what happened; an on-call dashboard and the alert rules that watch the
//! daemon itself ("an incident has waited unacknowledged", "the outbox is backing up", "a
//! heartbeat expired") need what *is*. The values are read from the store at scrape time
//! (the incident counters the store keeps, index keys for the rest), so they are exact,
//! survive restarts, keep no state of their own, and cost nothing between scrapes.

use chrono::{DateTime, Utc};

use super::{App, AppError, AppResult};
use crate::domain::approval::ApprovalStatus;
use crate::domain::heartbeat::{Heartbeat, HeartbeatState};
use crate::domain::incident::IncidentStatus;
use crate::domain::notification::DeliveryStatus;
use crate::domain::priority::Priority;
use crate::domain::transition::Lifecycle;
use crate::store::StoreError;
use crate::store::access::{self, Order, Reader};
use crate::store::keys::Key;
use crate::store::tables::{self, alert_field, delivery_field};

/// One gauge with its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// Metric name.
    pub name: &'static str,
    /// Its `# HELP` text.
    pub help: &'static str,
    /// `(labels, value)` per sample; every label combination is present, zeros included,
    /// so that alert rules see a series before its first non-zero value.
    pub samples: Vec<(Vec<(&'static str, &'static str)>, u64)>,
}

fn field_prefix(field: u8, code: u8) -> Vec<u8> {
    Key::new().u8(field).u64(u64::from(code)).into_bytes()
}

/// Every gauge, as the store has it now. Counting firing alerts and deliveries walks
/// their index entries, so this runs off the async runtime.
pub async fn current(app: &std::sync::Arc<App>) -> AppResult<Vec<Gauge>> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let r = app.store.read()?;
        Ok(read(&r, app.clock.now())?)
    })
    .await
    .map_err(|e| AppError::Internal(format!("the gauges task failed: {e}")))?
}

fn read(r: &impl Reader, now: DateTime<Utc>) -> Result<Vec<Gauge>, StoreError> {
    // Kept up to date with every incident change (incidents::index), as the dashboard
    // reads them: one read per series, however many incidents are open.
    let counted = |name: String| -> Result<u64, StoreError> {
        Ok(u64::try_from(access::counter(r, &name)?).unwrap_or(0))
    };
    let mut by_status = Vec::new();
    for status in IncidentStatus::ALL.iter().filter(|s| s.is_open()) {
        let n = counted(format!("inc/status/{}", status.as_str()))?;
        by_status.push((vec![("status", status.as_str())], n));
    }
    let mut by_priority = Vec::new();
    for p in Priority::ALL {
        let n = counted(format!("inc/open/priority/{}", p.as_str()))?;
        by_priority.push((vec![("priority", p.as_str())], n));
    }

    let firing = access::count_with_prefix(
        r,
        tables::ALERT_INDEX,
        &field_prefix(
            alert_field::STATE,
            crate::domain::alert::AlertState::Firing.code(),
        ),
    )?;
    let silenced = access::count_with_prefix(
        r,
        tables::ALERT_INDEX,
        &Key::new().u8(alert_field::SILENCE).into_bytes(),
    )?;

    let mut deliveries = Vec::new();
    for (status, name) in [
        (DeliveryStatus::Pending, "pending"),
        (DeliveryStatus::Failed, "retrying"),
        (DeliveryStatus::Dead, "dead"),
    ] {
        let n = access::count_with_prefix(
            r,
            tables::DELIVERY_INDEX,
            &field_prefix(delivery_field::STATUS, status.code()),
        )?;
        deliveries.push((vec![("status", name)], n));
    }

    let mut heartbeats = [0u64; 3];
    let states = [
        HeartbeatState::Inactive,
        HeartbeatState::Healthy,
        HeartbeatState::Expired,
    ];
    for h in access::list::<Heartbeat>(r, None, Order::Asc, usize::MAX)? {
        let state = h.state(now);
        if let Some(i) = states.iter().position(|s| *s == state) {
            heartbeats[i] += 1;
        }
    }
    let heartbeats = states
        .iter()
        .zip(heartbeats)
        .map(|(s, n)| (vec![("state", s.as_str())], n))
        .collect();

    let pending_approvals = access::count_with_prefix(
        r,
        tables::APPROVAL_INDEX,
        &Key::new().u8(ApprovalStatus::Pending.code()).into_bytes(),
    )?;

    Ok(vec![
        Gauge {
            name: "incidentd_open_incidents",
            help: "Incidents not yet resolved, closed or cancelled, by status.",
            samples: by_status,
        },
        Gauge {
            name: "incidentd_open_incidents_by_priority",
            help: "Incidents not yet resolved, closed or cancelled, by priority.",
            samples: by_priority,
        },
        Gauge {
            name: "incidentd_firing_alerts",
            help: "Alerts firing now, silenced ones included.",
            samples: vec![(vec![], firing)],
        },
        Gauge {
            name: "incidentd_silenced_alerts",
            help: "Firing alerts a silence mutes.",
            samples: vec![(vec![], silenced)],
        },
        Gauge {
            name: "incidentd_notifications",
            help: "Notifications waiting for their first attempt (pending), for a retry (retrying), or given up (dead).",
            samples: deliveries,
        },
        Gauge {
            name: "incidentd_heartbeats",
            help: "Heartbeat monitors by state (expired: silent past their interval).",
            samples: heartbeats,
        },
        Gauge {
            name: "incidentd_pending_approvals",
            help: "Approval requests waiting for a decision.",
            samples: vec![(vec![], pending_approvals)],
        },
    ])
}
