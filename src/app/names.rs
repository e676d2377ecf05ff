//! Unique, case-insensitive names (services, groups, roles, schedules, escalation
//! policies): one index table per kind mapping the lowercase name to the id, so that
//! "Payments" and "payments" cannot both exist and chat commands can find things by name.

use redb::WriteTransaction;

use super::{AppError, AppResult};
use crate::store::StoreError;
use crate::store::access::{self, Reader};
use crate::store::tables::{self, Table};

/// The name index of one kind of record.
#[derive(Clone, Copy)]
pub struct NameIndex {
    table: Table,
    /// One record in messages, with its article ("a service").
    kind: &'static str,
}

/// Services.
pub const SERVICES: NameIndex = NameIndex::new(tables::SERVICES_BY_NAME, "a service");
/// Groups.
pub const GROUPS: NameIndex = NameIndex::new(tables::GROUPS_BY_NAME, "a group");
/// Roles.
pub const ROLES: NameIndex = NameIndex::new(tables::ROLES_BY_NAME, "a role");
/// Escalation policies.
pub const ESCALATION_POLICIES: NameIndex =
    NameIndex::new(tables::ESCALATION_POLICIES_BY_NAME, "an escalation policy");
/// Approval workflows.
pub const APPROVAL_WORKFLOWS: NameIndex =
    NameIndex::new(tables::APPROVAL_WORKFLOWS_BY_NAME, "an approval workflow");
/// On-call schedules.
pub const SCHEDULES: NameIndex = NameIndex::new(tables::SCHEDULES_BY_NAME, "a schedule");

fn key(name: &str) -> Vec<u8> {
    name.trim().to_lowercase().into_bytes()
}

impl NameIndex {
    const fn new(table: Table, kind: &'static str) -> Self {
        Self { table, kind }
    }

    /// The id of the record named `name`, in any case.
    pub fn find(&self, r: &impl Reader, name: &str) -> Result<Option<u64>, StoreError> {
        access::get_id(r, self.table, &key(name))
    }

    /// Gives `name` to record `id`; 409 if another record has it.
    pub fn claim(&self, tx: &WriteTransaction, name: &str, id: u64) -> AppResult<()> {
        match self.find(tx, name)? {
            Some(other) if other != id => Err(AppError::Conflict(format!(
                "{} named '{name}' already exists",
                self.kind
            ))),
            Some(_) => Ok(()),
            None => Ok(access::put_id(tx, self.table, &key(name), id)?),
        }
    }

    /// Moves record `id` from name `old` to `new`; 409 if another record has `new`.
    pub fn rename(&self, tx: &WriteTransaction, old: &str, new: &str, id: u64) -> AppResult<()> {
        if key(old) == key(new) {
            return Ok(());
        }
        self.claim(tx, new, id)?;
        self.release(tx, old)
    }

    /// Frees `name` (the record is being deleted).
    pub fn release(&self, tx: &WriteTransaction, name: &str) -> AppResult<()> {
        access::delete_raw(tx, self.table, &key(name))?;
        Ok(())
    }
}
