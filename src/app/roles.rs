//! Roles: named permission sets. The built-in ones come from the first migration.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, catalog};
use crate::domain::actor::Actor;
use crate::domain::identity::{ADMIN_ROLE, Role, User};
use crate::domain::permission::{self, Permission, PermissionSet};
use crate::store::access::{self, Order};

/// A new role.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Unique name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Permission names (`incident:write`) or `*`.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// Changes to a role.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// New name (not for built-in roles).
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Replaces the permissions.
    pub permissions: Option<Vec<String>>,
}

/// One entry of the permission catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PermissionInfo {
    /// `resource:action`.
    pub name: &'static str,
    /// What it allows.
    pub description: &'static str,
}

/// The permission catalogue.
pub fn catalogue() -> Vec<PermissionInfo> {
    Permission::ALL
        .iter()
        .map(|p| PermissionInfo {
            name: p.as_str(),
            description: p.description(),
        })
        .collect()
}

fn check_permissions(errors: &mut FieldErrors, names: &[String]) -> Vec<String> {
    if let Err(e) = permission::validate_names(names) {
        errors.add("permissions", e.to_string());
    }
    let mut out: Vec<String> = names.iter().map(|n| n.trim().to_owned()).collect();
    out.sort();
    out.dedup();
    out
}

/// Refuses (403) unless `granter` holds every permission in `permissions` (of the role
/// `role`): nobody may grant, revoke or act on privileges they do not have themselves;
/// whoever may write roles could otherwise write `*` into a role they hold.
pub(super) fn check_within(
    granter: &PermissionSet,
    role: &str,
    permissions: &[String],
    what: &str,
) -> AppResult<()> {
    let mut needed = PermissionSet::none();
    needed.grant_names(permissions.iter().map(String::as_str));
    if granter.covers(&needed) {
        Ok(())
    } else {
        Err(AppError::Refused(format!(
            "you cannot {what} role '{role}': it allows more than you may do"
        )))
    }
}

/// Creates a role (needs `role:write`), allowing no more than its creator may do.
pub async fn create(app: &App, actor: &Actor, input: NewRole) -> AppResult<Role> {
    let change = catalog::change::<Role>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::new_name::<Role>(&mut e, &input.name);
    let permissions = check_permissions(&mut e, &input.permissions);
    e.into_result()?;
    check_within(&actor.permissions, &name, &permissions, "create")?;
    let description = input.description.trim().to_owned();
    app.store
        .write(move |tx| {
            catalog::create(tx, &change, |id| Role {
                id,
                name: name.clone(),
                description: description.clone(),
                permissions: permissions.clone(),
                builtin: false,
                created_at: change.at,
                updated_at: change.at,
            })
        })
        .await
}

/// One role (needs `role:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<Role> {
    catalog::get(app, actor, id)
}

/// Roles in id order (needs `role:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<Role>> {
    catalog::list(app, actor, page)
}

/// Changes a role (needs `role:write`). Admin cannot be changed; built-ins keep their names;
/// the role must allow no more than the changer may do, before and after.
pub async fn update(app: &App, actor: &Actor, id: u64, patch: RolePatch) -> AppResult<Role> {
    let granter = actor.permissions.clone();
    let change = catalog::change::<Role>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::patched_name::<Role>(&mut e, patch.name.as_deref());
    let permissions = patch
        .permissions
        .as_deref()
        .map(|p| check_permissions(&mut e, p));
    e.into_result()?;
    app.store
        .write(move |tx| {
            let before: Role = catalog::load(tx, id)?;
            if before.builtin && before.name == ADMIN_ROLE {
                return Err(AppError::Conflict(
                    "the Admin role cannot be changed".into(),
                ));
            }
            check_within(&granter, &before.name, &before.permissions, "change")?;
            if let Some(p) = &permissions {
                check_within(&granter, &before.name, p, "grant these permissions to")?;
            }
            let mut role = before.clone();
            if let Some(name) = &name
                && *name != role.name
            {
                if role.builtin {
                    return Err(AppError::Conflict(format!(
                        "the built-in role '{}' cannot be renamed",
                        role.name
                    )));
                }
                role.name = name.clone();
            }
            if let Some(d) = &patch.description {
                role.description = d.trim().to_owned();
            }
            if let Some(p) = &permissions {
                role.permissions = p.clone();
            }
            catalog::save(tx, &change, &before, role)
        })
        .await
}

/// Deletes a role (needs `role:write`): not a built-in one, not one in use, not one that
/// allows more than the deleter may do.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    let change = catalog::change::<Role>(app, actor)?;
    let granter = actor.permissions.clone();
    app.store
        .write(move |tx| {
            let role: Role = catalog::load(tx, id)?;
            check_within(&granter, &role.name, &role.permissions, "delete")?;
            if role.builtin {
                return Err(AppError::Conflict(format!(
                    "the built-in role '{}' cannot be deleted",
                    role.name
                )));
            }
            let users = access::list::<User>(tx, None, Order::Asc, usize::MAX)?;
            let holders = users.iter().filter(|u| u.role_ids.contains(&id)).count();
            if holders > 0 {
                return Err(AppError::Conflict(format!(
                    "role '{}' is held by {holders} user(s); take it away first",
                    role.name
                )));
            }
            catalog::delete(tx, &change, &role)
        })
        .await
}
