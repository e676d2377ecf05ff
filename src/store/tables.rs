//! Every table the daemon keeps. All map bytes to bytes (see [`super::keys`]), which keeps
//! backups, migrations and tooling generic.

use redb::TableDefinition;

/// The one table type.
pub type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

macro_rules! tables {
    ($( $(#[$doc:meta])* $name:ident = $str:literal; )+) => {
        $( $(#[$doc])* pub const $name: Table = TableDefinition::new($str); )+
        /// Every table, so that migrations can create them all up front (a reader then
        /// never meets a missing table) and backups can copy them.
        pub const ALL: &[Table] = &[ $( $name, )+ ];
    };
}

tables! {
    /// Daemon-wide values: schema version, id sequences, settings, consumer cursors.
    META = "meta";
    /// Named counters (open incidents by status, per service...), i64 big-endian.
    COUNTERS = "counters";

    /// id -> User.
    USERS = "users";
    /// lowercase username -> id.
    USERS_BY_NAME = "users_by_name";
    /// lowercase email -> id.
    USERS_BY_EMAIL = "users_by_email";
    /// id -> Role.
    ROLES = "roles";
    /// lowercase name -> id.
    ROLES_BY_NAME = "roles_by_name";
    /// id -> Group.
    GROUPS = "groups";
    /// lowercase name -> id.
    GROUPS_BY_NAME = "groups_by_name";
    /// (group id, user id) -> ().
    GROUP_MEMBERS = "group_members";
    /// id -> Service.
    SERVICES = "services";
    /// lowercase name -> id.
    SERVICES_BY_NAME = "services_by_name";
    /// family id -> RefreshFamily.
    REFRESH_FAMILIES = "refresh_families";

    /// id -> AuditEntry.
    AUDIT = "audit";
    /// (actor kind, actor id, entry id) -> ().
    AUDIT_BY_ACTOR = "audit_by_actor";
    /// (target kind, target id, entry id) -> ().
    AUDIT_BY_TARGET = "audit_by_target";

    /// seq -> DomainEvent.
    EVENTS = "events";

    /// id -> Incident.
    INCIDENTS = "incidents";
    /// (field code, value, incident id) -> (): one table for every filterable field.
    INCIDENT_INDEX = "incident_index";
    /// (token, incident id) -> (): full-text index over title and description.
    INCIDENT_TEXT = "incident_text";
    /// (incident id, entry id) -> TimelineEntry.
    TIMELINE = "timeline";
    /// (incident id, comment id) -> Comment.
    COMMENTS = "comments";
    /// (event time seconds, incident id) -> seconds taken: first responses, for MTTA.
    ACK_TIMES = "ack_times";
    /// (event time seconds, incident id) -> seconds taken: resolutions, for MTTR.
    RESOLVE_TIMES = "resolve_times";

    /// id -> Integration.
    INTEGRATIONS = "integrations";
    /// SHA-256 (hex) of the token -> integration id.
    INTEGRATIONS_BY_TOKEN = "integrations_by_token";
    /// id -> Alert.
    ALERTS = "alerts";
    /// (integration id, fingerprint) -> id of the alert's latest record.
    ALERTS_BY_FINGERPRINT = "alerts_by_fingerprint";
    /// (field code, value, alert id) -> ().
    ALERT_INDEX = "alert_index";
    /// (integration id, group key) -> id of the incident the group last opened.
    ALERT_GROUPS = "alert_groups";
    /// id -> Silence.
    SILENCES = "silences";
    /// (ends at seconds, silence id) -> (): finds the silences that can still be active.
    SILENCES_BY_END = "silences_by_end";
    /// id -> RoutingRule.
    ROUTING_RULES = "routing_rules";
    /// id -> Heartbeat: monitors of the monitoring.
    HEARTBEATS = "heartbeats";
    /// SHA-256 of a heartbeat's ping token -> its id.
    HEARTBEATS_BY_TOKEN = "heartbeats_by_token";

    /// id -> ContactMethod.
    CONTACT_METHODS = "contact_methods";
    /// (user id, contact method id) -> ().
    CONTACTS_BY_USER = "contacts_by_user";
    /// user id -> JSON list of PagingRule: how the person wants to be paged.
    PAGING_RULES = "paging_rules";
    /// (channel code, address) -> contact method id: who a chat user id or number is.
    CONTACTS_BY_ADDRESS = "contacts_by_address";
    /// (channel code, chat user id) -> platform user id, learned by e-mail.
    CHAT_LINKS = "chat_links";
    /// (channel code, incident id, chat target) -> ChatMessage: the incident's card there.
    CHAT_MESSAGES = "chat_messages";
    /// (channel code, chat channel, message ts) -> incident id: which incident a thread is.
    CHAT_THREADS = "chat_threads";
    /// id -> NotificationRule.
    NOTIFICATION_RULES = "notification_rules";
    /// (event name or "*", channel) -> TemplateOverride.
    TEMPLATES = "templates";
    /// id -> Delivery: the outbox and the delivery log.
    DELIVERIES = "deliveries";
    /// (next attempt, milliseconds since the epoch, delivery id) -> (): what the outbox
    /// worker must do next.
    DELIVERIES_DUE = "deliveries_due";
    /// (field code, value, delivery id) -> ().
    DELIVERY_INDEX = "delivery_index";
    /// (channel code, address) -> milliseconds of the last message sent there.
    RATE_LIMITS = "rate_limits";

    /// id -> Problem.
    PROBLEMS = "problems";
    /// (field code, value, problem id) -> ().
    PROBLEM_INDEX = "problem_index";
    /// (token, problem id) -> (): full-text index over problems (title, description, root
    /// cause, workaround); the known-error search filters it.
    PROBLEM_TEXT = "problem_text";

    /// id -> EscalationPolicy.
    ESCALATION_POLICIES = "escalation_policies";
    /// lowercase name -> id.
    ESCALATION_POLICIES_BY_NAME = "escalation_policies_by_name";
    /// incident id -> EscalationRun: where each incident's escalation stands.
    ESCALATION_RUNS = "escalation_runs";
    /// (due, milliseconds since the epoch, incident id) -> (): the active runs in the
    /// order the escalation worker must page them.
    ESCALATIONS_DUE = "escalations_due";
    /// (wake-up, milliseconds since the epoch, incident id) -> (): snoozed incidents in
    /// the order they page again.
    SNOOZES_DUE = "snoozes_due";
    /// id -> Schedule.
    SCHEDULES = "schedules";
    /// lowercase name -> id.
    SCHEDULES_BY_NAME = "schedules_by_name";
    /// (schedule id, override id) -> ScheduleOverride.
    SCHEDULE_OVERRIDES = "schedule_overrides";

    /// id -> ApprovalWorkflow.
    APPROVAL_WORKFLOWS = "approval_workflows";
    /// lowercase name -> id.
    APPROVAL_WORKFLOWS_BY_NAME = "approval_workflows_by_name";
    /// id -> ApprovalRequest.
    APPROVALS = "approvals";
    /// (status code, request id) -> ().
    APPROVAL_INDEX = "approval_index";
}

/// Field codes, the first component of [`INCIDENT_INDEX`] keys.
pub mod incident_field {
    /// Status code (`IncidentStatus::code`).
    pub const STATUS: u8 = 1;
    /// Priority rank.
    pub const PRIORITY: u8 = 2;
    /// Service id.
    pub const SERVICE: u8 = 3;
    /// Assignee user id.
    pub const ASSIGNEE: u8 = 4;
    /// Group id.
    pub const GROUP: u8 = 5;
}

/// Field codes, the first component of [`ALERT_INDEX`] keys.
pub mod alert_field {
    /// Incident id.
    pub const INCIDENT: u8 = 1;
    /// State code (`AlertState::code`).
    pub const STATE: u8 = 2;
    /// Integration id.
    pub const INTEGRATION: u8 = 3;
    /// Id of the silence muting a firing alert (so that its end can release them).
    pub const SILENCE: u8 = 4;
}

/// Field codes, the first component of [`DELIVERY_INDEX`] keys.
pub mod delivery_field {
    /// Status code (`DeliveryStatus::code`).
    pub const STATUS: u8 = 1;
    /// Incident id.
    pub const INCIDENT: u8 = 2;
    /// Channel code.
    pub const CHANNEL: u8 = 3;
}

/// Field codes, the first component of [`PROBLEM_INDEX`] keys.
pub mod problem_field {
    /// Status code (`ProblemStatus::code`).
    pub const STATUS: u8 = 1;
    /// Service id.
    pub const SERVICE: u8 = 2;
    /// 1 while the problem is in the known-error database.
    pub const KNOWN_ERROR: u8 = 3;
}

/// Keys of [`AUDIT_BY_ACTOR`].
pub mod audit_actor {
    use crate::domain::actor::ActorKind;
    use crate::store::keys::Key;

    /// The prefix of an actor's entries: its kind's code and id (entry ids follow).
    pub fn prefix(kind: ActorKind, id: u64) -> Key {
        Key::new().u8(kind.code()).u64(id)
    }

    /// The key that files entry `entry` under person (user) `user_id`, besides its
    /// actor's: a chat actor is the user of that id acting from Slack or Discord.
    pub fn person(user_id: u64, entry: u64) -> Vec<u8> {
        prefix(ActorKind::User, user_id).u64(entry).into_bytes()
    }
}
