//! Which table each domain record lives in.

use super::access::Record;
use super::error::StoreError;
use super::tables::{self, Table};
use crate::domain::audit::AuditEntry;
use crate::domain::event::DomainEvent;
use crate::domain::identity::{Group, Role, User};
use crate::domain::incident::Incident;
use crate::domain::problem::Problem;
use crate::domain::service::Service;
use redb::TableHandle;

macro_rules! record {
    ($t:ty, $table:expr, $id:ident) => {
        impl Record for $t {
            const TABLE: Table = $table;
            fn id(&self) -> u64 {
                self.$id
            }
        }
    };
}

record!(User, tables::USERS, id);
record!(Role, tables::ROLES, id);
record!(Group, tables::GROUPS, id);
record!(Service, tables::SERVICES, id);
record!(AuditEntry, tables::AUDIT, id);
record!(DomainEvent, tables::EVENTS, seq);
record!(Incident, tables::INCIDENTS, id);
record!(Problem, tables::PROBLEMS, id);
record!(
    crate::auth::refresh::RefreshFamily,
    tables::REFRESH_FAMILIES,
    id
);
record!(
    crate::domain::integration::Integration,
    tables::INTEGRATIONS,
    id
);

/// Alerts have a binary layout of their own: they are written at storm rates.
impl Record for crate::domain::alert::Alert {
    const TABLE: Table = tables::ALERTS;

    fn id(&self) -> u64 {
        self.id
    }

    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        Ok(super::codec::encode_alert(self))
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        super::codec::decode_alert(bytes).map_err(|reason| StoreError::Corrupt {
            table: tables::ALERTS.name().to_owned(),
            reason,
        })
    }
}
record!(crate::domain::silence::Silence, tables::SILENCES, id);
record!(
    crate::domain::silence::RoutingRule,
    tables::ROUTING_RULES,
    id
);
record!(crate::domain::heartbeat::Heartbeat, tables::HEARTBEATS, id);
record!(
    crate::domain::notification::ContactMethod,
    tables::CONTACT_METHODS,
    id
);
record!(
    crate::domain::notification::NotificationRule,
    tables::NOTIFICATION_RULES,
    id
);
record!(
    crate::domain::notification::Delivery,
    tables::DELIVERIES,
    id
);
record!(
    crate::domain::escalation::EscalationPolicy,
    tables::ESCALATION_POLICIES,
    id
);
record!(
    crate::domain::escalation::EscalationRun,
    tables::ESCALATION_RUNS,
    incident_id
);
record!(crate::domain::schedule::Schedule, tables::SCHEDULES, id);
record!(
    crate::domain::approval::ApprovalWorkflow,
    tables::APPROVAL_WORKFLOWS,
    id
);
record!(
    crate::domain::approval::ApprovalRequest,
    tables::APPROVALS,
    id
);
