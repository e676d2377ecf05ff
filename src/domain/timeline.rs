//! The incident timeline: every change, in order, with who made it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor::ActorRef;

/// One entry on an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    /// Global, increasing id: timeline order is id order.
    pub id: u64,
    /// The incident it belongs to.
    pub incident_id: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: ActorRef,
    /// What kind of change: `created`, `status_changed`, `updated`, `assigned`, `commented`,
    /// `problem_linked`, `problem_unlinked`, `alert`, `notified`, `escalated`...
    pub kind: String,
    /// One line for people.
    #[serde(default)]
    pub summary: String,
    /// The change, structured (`{"from": "new", "to": "acknowledged"}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A comment on an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Comment {
    /// Id.
    pub id: u64,
    /// The incident.
    pub incident_id: u64,
    /// Who wrote it.
    pub author: ActorRef,
    /// The text.
    pub body: String,
    /// When.
    pub at: DateTime<Utc>,
}
