//! What every catalogue record goes through alike: services, groups, roles, schedules,
//! escalation policies, approval workflows, routing rules and heartbeat monitors.
//!
//! Each resource module keeps what is its own: the checks of its fields, what keeps a
//! record from being deleted, what a delete takes along. The steps they all share live
//! here once, so that they cannot drift apart: reads behind the kind's read permission,
//! changes behind its write permission, ids from the kind's sequence, the unique name,
//! `updated_at`, and one audit entry per change (`service.create`, `service.update`,
//! `service.delete`) with the record as created, deleted, or what the change changed.

use chrono::{DateTime, Utc};
use redb::WriteTransaction;

use super::names::{self, NameIndex};
use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, require, required_line};
use crate::domain::actor::{Actor, ActorRef};
use crate::domain::approval::ApprovalWorkflow;
use crate::domain::audit;
use crate::domain::escalation::EscalationPolicy;
use crate::domain::heartbeat::Heartbeat;
use crate::domain::identity::{Group, Role};
use crate::domain::permission::Permission;
use crate::domain::schedule::Schedule;
use crate::domain::service::Service;
use crate::domain::silence::RoutingRule;
use crate::store::access::{self, Reader, Record};

/// How one kind of catalogue record is named, guarded and audited.
pub struct Kind {
    /// What one is called in messages: "escalation policy".
    pub noun: &'static str,
    /// The audit log's target kind and action prefix: "escalation_policy".
    pub audit: &'static str,
    /// The unique-name index; `None` where names may repeat (routing rules).
    pub names: Option<NameIndex>,
    /// Longest name, in characters.
    pub name_max: usize,
    /// What reading one needs.
    pub read: Permission,
    /// What creating, changing or deleting one needs.
    pub write: Permission,
}

/// A catalogue record.
pub trait Entry: Record + Clone {
    /// Its kind.
    const KIND: Kind;
    /// Its name.
    fn name(&self) -> &str;
    /// Marks it changed at `at`.
    fn touch(&mut self, at: DateTime<Utc>);
}

/// Makes a record an [`Entry`]: each kind's noun, audit kind, name index, name length and
/// permissions in one line, and the `name` / `updated_at` fields every such record has.
macro_rules! entry {
    ($record:ty, $noun:literal, $audit:literal, $names:expr, $name_max:literal, $read:ident, $write:ident) => {
        impl Entry for $record {
            const KIND: Kind = Kind {
                noun: $noun,
                audit: $audit,
                names: $names,
                name_max: $name_max,
                read: Permission::$read,
                write: Permission::$write,
            };
            fn name(&self) -> &str {
                &self.name
            }
            fn touch(&mut self, at: DateTime<Utc>) {
                self.updated_at = at;
            }
        }
    };
}

entry!(
    Service,
    "service",
    "service",
    Some(names::SERVICES),
    100,
    ServiceRead,
    ServiceWrite
);
entry!(
    Group,
    "group",
    "group",
    Some(names::GROUPS),
    100,
    GroupRead,
    GroupWrite
);
entry!(
    Role,
    "role",
    "role",
    Some(names::ROLES),
    64,
    RoleRead,
    RoleWrite
);
entry!(
    Schedule,
    "schedule",
    "schedule",
    Some(names::SCHEDULES),
    100,
    ScheduleRead,
    ScheduleWrite
);
entry!(
    EscalationPolicy,
    "escalation policy",
    "escalation_policy",
    Some(names::ESCALATION_POLICIES),
    100,
    EscalationRead,
    EscalationWrite
);
entry!(
    ApprovalWorkflow,
    "approval workflow",
    "approval_workflow",
    Some(names::APPROVAL_WORKFLOWS),
    100,
    ApprovalRead,
    ApprovalWrite
);
entry!(
    RoutingRule,
    "routing rule",
    "routing_rule",
    None,
    100,
    RoutingRead,
    RoutingWrite
);
entry!(
    Heartbeat,
    "heartbeat monitor",
    "heartbeat",
    None,
    100,
    HeartbeatRead,
    HeartbeatWrite
);

/// Who changes catalogue records of one kind, and when: what the audit entries and the
/// records' timestamps of the change say.
#[derive(Debug, Clone)]
pub struct Change {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub who: ActorRef,
}

/// A change of records of kind `R` by `actor`, now (403 without the kind's write
/// permission). Call first: a caller without the permission learns nothing else.
pub fn change<R: Entry>(app: &App, actor: &Actor) -> AppResult<Change> {
    require(actor, R::KIND.write)?;
    Ok(Change {
        at: app.clock.now(),
        who: actor.reference.clone(),
    })
}

/// A new record's name, trimmed; an error on `name` if it is empty or too long.
pub fn new_name<R: Entry>(e: &mut FieldErrors, name: &str) -> String {
    required_line(e, "name", name, R::KIND.name_max)
}

/// A patch's new name, if it has one: [`new_name`].
pub fn patched_name<R: Entry>(e: &mut FieldErrors, name: Option<&str>) -> Option<String> {
    name.map(|n| new_name::<R>(e, n))
}

/// One record (needs the kind's read permission).
pub fn get<R: Entry>(app: &App, actor: &Actor, id: u64) -> AppResult<R> {
    require(actor, R::KIND.read)?;
    load(&app.store.read()?, id)
}

/// A page of records in id order (needs the kind's read permission).
pub fn list<R: Entry>(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<R>> {
    require(actor, R::KIND.read)?;
    super::page::records(&app.store.read()?, page)
}

/// Record `id`, or 404.
pub fn load<R: Entry>(r: &impl Reader, id: u64) -> AppResult<R> {
    access::get(r, id)?.ok_or_else(|| AppError::not_found(R::KIND.noun, id))
}

/// Stores the record `build` makes with the next id, under its unique name (409 if
/// taken), and audits it.
pub fn create<R: Entry>(
    tx: &WriteTransaction,
    change: &Change,
    build: impl FnOnce(u64) -> R,
) -> AppResult<R> {
    let record = build(access::next_id(tx, R::TABLE)?);
    let id = record.id();
    if let Some(names) = R::KIND.names {
        names.claim(tx, record.name(), id)?;
    }
    access::put(tx, &record)?;
    audit_change(
        tx,
        change,
        &record,
        "create",
        "created",
        audit::created_record(&record),
    )?;
    Ok(record)
}

/// Stores `after`, a changed copy of `before`: moves its name if it changed (409 if the
/// new one is taken), stamps `updated_at`, and audits what changed.
pub fn save<R: Entry>(
    tx: &WriteTransaction,
    change: &Change,
    before: &R,
    after: R,
) -> AppResult<R> {
    save_as(tx, change, before, after, ("update", "changed"))
}

/// [`save`] for a change with an audit action of its own (`rotate`: "rotated the token
/// of"), so that the log tells it from an edit of the settings.
pub fn save_as<R: Entry>(
    tx: &WriteTransaction,
    change: &Change,
    before: &R,
    mut after: R,
    (action, done): (&str, &str),
) -> AppResult<R> {
    if let Some(names) = R::KIND.names {
        names.rename(tx, before.name(), after.name(), after.id())?;
    }
    after.touch(change.at);
    access::put(tx, &after)?;
    audit_change(
        tx,
        change,
        &after,
        action,
        done,
        audit::diff_records(before, &after),
    )?;
    Ok(after)
}

/// Deletes `record`, frees its name, and audits it. What it takes along or what forbids
/// it is the caller's.
pub fn delete<R: Entry>(tx: &WriteTransaction, change: &Change, record: &R) -> AppResult<()> {
    access::delete::<R>(tx, record.id())?;
    if let Some(names) = R::KIND.names {
        names.release(tx, record.name())?;
    }
    audit_change(
        tx,
        change,
        record,
        "delete",
        "deleted",
        audit::deleted_record(record),
    )
}

/// The audit entry of one change: action `{kind}.{action}`, "{done} {noun} {name}".
fn audit_change<R: Entry>(
    tx: &WriteTransaction,
    change: &Change,
    record: &R,
    action: &str,
    done: &str,
    changes: serde_json::Value,
) -> AppResult<()> {
    let kind = &R::KIND;
    super::audit::record(
        tx,
        change.at,
        &change.who,
        &format!("{}.{action}", kind.audit),
        (kind.audit, record.id()),
        format!("{done} {} {}", kind.noun, record.name()),
        changes,
    )?;
    Ok(())
}
