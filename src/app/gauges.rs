//! What the store holds right now, as gauges for `/metrics`: open incidents by status and
//! by priority, firing and silenced alerts, notifications waiting or given up, heartbeat
//! monitors by state, approval requests waiting for a decision.
//!
//! Counters say what happened; an on-call dashboard and the alert rules that watch the
//! daemon itself ("an incident has waited unacknowledged", "the outbox is backing up", "a
//! heartbeat expired") need what *is*. The values are read from the store at scrape time,
//! mostly by counting index keys, so they are exact, survive restarts, keep no state of
//! their own, and cost nothing between scrapes.

use chrono::{DateTime, Utc};

use super::{App, AppResult};
use crate::domain::approval::ApprovalStatus;
use crate::domain::heartbeat::{Heartbeat, HeartbeatState};
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::notification::DeliveryStatus;
use crate::domain::priority::Priority;
use crate::domain::transition::Lifecycle;
use crate::store::StoreError;
use crate::store::access::{self, Order, Reader};
use crate::store::keys::Key;
use crate::store::tables::{self, alert_field, delivery_field, incident_field};

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

/// Every gauge, as the store has it at `now`.
pub fn current(app: &App) -> AppResult<Vec<Gauge>> {
    let r = app.store.read()?;
    Ok(read(&r, app.clock.now())?)
}

fn read(r: &impl Reader, now: DateTime<Utc>) -> Result<Vec<Gauge>, StoreError> {
    let mut by_status = Vec::new();
    let mut by_priority = [0u64; 5];
    for status in IncidentStatus::ALL.iter().filter(|s| s.is_open()) {
        let open = access::ids_with_prefix(
            r,
            tables::INCIDENT_INDEX,
            &field_prefix(incident_field::STATUS, status.code()),
            usize::MAX,
        )?;
        by_status.push((vec![("status", status.as_str())], open.len() as u64));
        for id in open {
            if let Some(i) = access::get::<Incident>(r, id)? {
                by_priority[usize::from(i.priority.rank() - 1)] += 1;
            }
        }
    }
    let by_priority = Priority::ALL
        .iter()
        .zip(by_priority)
        .map(|(p, n)| (vec![("priority", p.as_str())], n))
        .collect();

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
