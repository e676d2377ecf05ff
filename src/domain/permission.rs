//! The permission catalogue: `resource:action` names that roles grant.
//!
//! Roles are data (editable through the API), permissions are code: every route and every
//! `app` use case names the permission it needs from this closed set, so a typo is a compile
//! error and an unknown name in a role is a 422.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! permissions {
    ($( $variant:ident => $name:literal : $doc:literal ),+ $(,)?) => {
        /// One thing a role may allow.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $( #[doc = $doc] $variant, )+
        }

        impl Permission {
            /// Every permission, in catalogue order.
            pub const ALL: &'static [Permission] = &[ $( Permission::$variant, )+ ];

            /// The wire name, `resource:action`.
            pub const fn as_str(self) -> &'static str {
                match self { $( Permission::$variant => $name, )+ }
            }

            /// What holding it allows, for the roles UI and docs.
            pub const fn description(self) -> &'static str {
                match self { $( Permission::$variant => $doc, )+ }
            }
        }

        impl FromStr for Permission {
            type Err = UnknownPermission;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $( $name => Ok(Permission::$variant), )+ _ => Err(UnknownPermission(s.to_owned())) }
            }
        }
    };
}

permissions! {
    UserRead => "user:read": "List and read users",
    UserWrite => "user:write": "Create, change and delete users and their memberships",
    RoleRead => "role:read": "List and read roles",
    RoleWrite => "role:write": "Create, change and delete roles",
    GroupRead => "group:read": "List and read groups and their members",
    GroupWrite => "group:write": "Create, change and delete groups and memberships",
    ServiceRead => "service:read": "Read the service catalog",
    ServiceWrite => "service:write": "Change the service catalog",
    IncidentRead => "incident:read": "Read incidents, comments and timelines",
    IncidentWrite => "incident:write": "Create incidents, comment, assign and move them through the lifecycle",
    IncidentClose => "incident:close": "Close or cancel incidents",
    ProblemRead => "problem:read": "Read problems and the known-error database",
    ProblemWrite => "problem:write": "Create problems, record root causes and known errors, link incidents",
    AlertRead => "alert:read": "Read ingested alerts",
    IntegrationRead => "integration:read": "Read alert integrations",
    IntegrationWrite => "integration:write": "Create, rotate and delete alert integrations",
    HeartbeatRead => "heartbeat:read": "Read heartbeat monitors",
    HeartbeatWrite => "heartbeat:write": "Create, change and delete heartbeat monitors",
    SilenceRead => "silence:read": "Read silences",
    SilenceWrite => "silence:write": "Create and expire silences",
    RoutingRead => "routing:read": "Read alert routing rules",
    RoutingWrite => "routing:write": "Change alert routing rules",
    NotificationRead => "notification:read": "Read notification rules, templates and the delivery log",
    NotificationWrite => "notification:write": "Change notification rules and templates",
    EscalationRead => "escalation:read": "Read escalation policies",
    EscalationWrite => "escalation:write": "Change escalation policies",
    ScheduleRead => "schedule:read": "Read on-call schedules",
    ScheduleWrite => "schedule:write": "Change on-call schedules and overrides",
    ApprovalRead => "approval:read": "Read approval workflows and requests",
    ApprovalWrite => "approval:write": "Change approval workflows and request approvals",
    ApprovalDecide => "approval:decide": "Approve or reject approval requests",
    AuditRead => "audit:read": "Read the audit log",
    DashboardRead => "dashboard:read": "Read the dashboard",
    SettingsWrite => "settings:write": "Change daemon-wide settings such as the priority matrix",
}

/// A name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission '{0}'")]
pub struct UnknownPermission(pub String);

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The wildcard a role may hold instead of a list: every permission, including ones added
/// by later versions (the built-in Admin role holds it).
pub const WILDCARD: &str = "*";

/// What a principal may do: the union of its roles' grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet {
    all: bool,
    granted: BTreeSet<Permission>,
}

impl PermissionSet {
    /// Nothing allowed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Everything allowed (the system actor, Admin).
    pub fn all() -> Self {
        Self {
            all: true,
            granted: BTreeSet::new(),
        }
    }

    /// Adds one role's grants: permission names or the wildcard. Names that this version
    /// does not know are ignored, so a store written by a newer version still loads.
    pub fn grant_names<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            if name == WILDCARD {
                self.all = true;
            } else if let Ok(p) = name.parse() {
                self.granted.insert(p);
            }
        }
    }

    /// Adds one permission.
    pub fn grant(&mut self, p: Permission) {
        self.granted.insert(p);
    }

    /// Whether `p` is allowed.
    pub fn allows(&self, p: Permission) -> bool {
        self.all || self.granted.contains(&p)
    }

    /// Whether this is the wildcard (everything, including permissions added later).
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// Whether everything `other` allows, this allows too. The wildcard is covered only by
    /// the wildcard: it also grants what later versions add.
    pub fn covers(&self, other: &PermissionSet) -> bool {
        self.all || (!other.all && other.granted.iter().all(|p| self.granted.contains(p)))
    }

    /// The allowed permissions, expanded.
    pub fn list(&self) -> Vec<Permission> {
        if self.all {
            Permission::ALL.to_vec()
        } else {
            self.granted.iter().copied().collect()
        }
    }
}

/// Checks a list of names for a role: each must be the wildcard or in the catalogue.
pub fn validate_names(names: &[String]) -> Result<(), UnknownPermission> {
    for name in names {
        if name != WILDCARD {
            name.parse::<Permission>()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
            let (resource, action) = p.as_str().split_once(':').expect("resource:action");
            assert!(!resource.is_empty() && !action.is_empty());
        }
    }

    #[test]
    fn unknown_name_is_rejected() {
        assert_eq!(
            "incident:fly".parse::<Permission>(),
            Err(UnknownPermission("incident:fly".into()))
        );
        assert!(validate_names(&["*".into(), "incident:read".into()]).is_ok());
        assert!(validate_names(&["nope".into()]).is_err());
    }

    #[test]
    fn wildcard_allows_everything() {
        let mut set = PermissionSet::none();
        assert!(!set.allows(Permission::IncidentRead));
        set.grant_names(["incident:read", "future:thing"]);
        assert!(set.allows(Permission::IncidentRead));
        assert!(!set.allows(Permission::IncidentWrite));
        set.grant_names(["*"]);
        assert!(Permission::ALL.iter().all(|p| set.allows(*p)));
        assert_eq!(set.list().len(), Permission::ALL.len());
    }

    #[test]
    fn covering() {
        let mut small = PermissionSet::none();
        small.grant_names(["incident:read"]);
        let mut big = PermissionSet::none();
        big.grant_names(["incident:read", "incident:write"]);
        assert!(big.covers(&small));
        assert!(!small.covers(&big));
        let mut every = PermissionSet::none();
        every.grant_names(Permission::ALL.iter().map(|p| p.as_str()));
        assert!(
            !every.covers(&PermissionSet::all()),
            "only the wildcard covers the wildcard"
        );
        assert!(PermissionSet::all().covers(&every));
        assert!(PermissionSet::all().covers(&PermissionSet::all()));
    }
}
