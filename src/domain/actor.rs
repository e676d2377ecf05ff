//! Who did something: a user, a chat user mapped to one, an integration, a playbook or the
//! daemon itself. Every timeline and audit entry names its actor.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::permission::{Permission, PermissionSet};

/// The kind of principal behind a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A platform user through the REST API.
    User,
    /// A platform user acting through Slack or Discord.
    Chat,
    /// An alert integration (Alertmanager, Grafana, PagerDuty, generic).
    Integration,
    /// A triage playbook.
    Playbook,
    /// The daemon itself: migrations, timers, first-start set-up.
    System,
}

impl ActorKind {
    /// Stable one-byte code used in index keys.
    pub const fn code(self) -> u8 {
        match self {
            ActorKind::User => 1,
            ActorKind::Chat => 2,
            ActorKind::Integration => 3,
            ActorKind::Playbook => 4,
            ActorKind::System => 5,
        }
    }
}

/// A recorded reference to an actor, as stored in timeline and audit entries. `name` is
/// kept so that history stays readable after the user is renamed or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActorRef {
    /// What kind of principal.
    pub kind: ActorKind,
    /// Its id (user id, integration id...); 0 for the system.
    pub id: u64,
    /// The username, or the integration / playbook / chat name.
    pub name: String,
}

/// A principal about to do something, with what it may do.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who, as it will be recorded.
    pub reference: ActorRef,
    /// The platform user behind it, when there is one (chat actors map to users).
    pub user_id: Option<u64>,
    /// What it may do.
    pub permissions: PermissionSet,
}

impl Actor {
    /// The daemon itself: allowed everything, recorded as `system`.
    pub fn system() -> Self {
        Self {
            reference: ActorRef {
                kind: ActorKind::System,
                id: 0,
                name: "system".into(),
            },
            user_id: None,
            permissions: PermissionSet::all(),
        }
    }

    /// A platform user with the union of their roles' permissions.
    pub fn user(id: u64, username: &str, permissions: PermissionSet) -> Self {
        Self {
            reference: ActorRef {
                kind: ActorKind::User,
                id,
                name: username.to_owned(),
            },
            user_id: Some(id),
            permissions,
        }
    }

    /// A platform user acting through chat: the user's permissions, recorded with kind
    /// `chat` and the username.
    pub fn chat(id: u64, username: &str, permissions: PermissionSet) -> Self {
        Self {
            reference: ActorRef {
                kind: ActorKind::Chat,
                id,
                name: username.to_owned(),
            },
            user_id: Some(id),
            permissions,
        }
    }

    /// A chat user not linked to any platform user: may read, nothing else.
    pub fn unlinked_chat(name: &str) -> Self {
        let mut permissions = PermissionSet::none();
        for p in [
            Permission::IncidentRead,
            Permission::ProblemRead,
            Permission::ServiceRead,
            Permission::GroupRead,
            Permission::UserRead,
            Permission::ScheduleRead,
            Permission::AlertRead,
        ] {
            permissions.grant(p);
        }
        Self {
            reference: ActorRef {
                kind: ActorKind::Chat,
                id: 0,
                name: name.to_owned(),
            },
            user_id: None,
            permissions,
        }
    }

    /// A triage playbook: may work on incidents and problems and request approvals,
    /// never decide them (an approval needs people).
    pub fn playbook(name: &str) -> Self {
        let mut permissions = PermissionSet::none();
        for p in [
            Permission::IncidentRead,
            Permission::IncidentWrite,
            Permission::IncidentClose,
            Permission::ProblemRead,
            Permission::ProblemWrite,
            Permission::ApprovalRead,
            Permission::ApprovalWrite,
        ] {
            permissions.grant(p);
        }
        Self {
            reference: ActorRef {
                kind: ActorKind::Playbook,
                id: 0,
                name: name.to_owned(),
            },
            user_id: None,
            permissions,
        }
    }

    /// An alert integration, allowed what ingestion needs and nothing else.
    pub fn integration(id: u64, name: &str) -> Self {
        let mut permissions = PermissionSet::none();
        for p in [
            Permission::IncidentRead,
            Permission::IncidentWrite,
            Permission::AlertRead,
        ] {
            permissions.grant(p);
        }
        Self {
            reference: ActorRef {
                kind: ActorKind::Integration,
                id,
                name: name.to_owned(),
            },
            user_id: None,
            permissions,
        }
    }

    /// Whether this actor may do `p`.
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.allows(p)
    }

    /// The actor's name as recorded.
    pub fn name(&self) -> &str {
        &self.reference.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_may_do_everything_and_integrations_little() {
        let system = Actor::system();
        assert!(Permission::ALL.iter().all(|p| system.can(*p)));
        let integration = Actor::integration(3, "prometheus");
        assert!(integration.can(Permission::IncidentWrite));
        assert!(!integration.can(Permission::IncidentClose));
        assert!(!integration.can(Permission::UserWrite));
        assert_eq!(integration.reference.kind, ActorKind::Integration);
    }

    #[test]
    fn kind_codes_are_distinct() {
        let kinds = [
            ActorKind::User,
            ActorKind::Chat,
            ActorKind::Integration,
            ActorKind::Playbook,
            ActorKind::System,
        ];
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
    }
}
