//! Groups (teams) and their members.

use serde::Deserialize;
use utoipa::ToSchema;

use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, catalog, require};
use crate::domain::actor::Actor;
use crate::domain::identity::{Group, User, UserView};
use crate::domain::permission::Permission;
use crate::domain::service::Service;
use crate::store::access::{self, Order};
use crate::store::keys::Key;
use crate::store::tables;

/// A new group.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Unique name.
    pub name: String,
    /// What the team does.
    #[serde(default)]
    pub description: String,
}

/// Changes to a group.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// Creates a group (needs `group:write`).
pub async fn create(app: &App, actor: &Actor, input: NewGroup) -> AppResult<Group> {
    let change = catalog::change::<Group>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::new_name::<Group>(&mut e, &input.name);
    e.into_result()?;
    let description = input.description.trim().to_owned();
    app.store
        .write(move |tx| {
            catalog::create(tx, &change, |id| Group {
                id,
                name: name.clone(),
                description: description.clone(),
                created_at: change.at,
                updated_at: change.at,
            })
        })
        .await
}

/// One group (needs `group:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<Group> {
    catalog::get(app, actor, id)
}

/// Groups in id order (needs `group:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<Group>> {
    catalog::list(app, actor, page)
}

/// Changes a group (needs `group:write`).
pub async fn update(app: &App, actor: &Actor, id: u64, patch: GroupPatch) -> AppResult<Group> {
    let change = catalog::change::<Group>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::patched_name::<Group>(&mut e, patch.name.as_deref());
    e.into_result()?;
    app.store
        .write(move |tx| {
            let before: Group = catalog::load(tx, id)?;
            let mut group = before.clone();
            if let Some(name) = &name {
                group.name = name.clone();
            }
            if let Some(d) = &patch.description {
                group.description = d.trim().to_owned();
            }
            catalog::save(tx, &change, &before, group)
        })
        .await
}

/// Deletes a group (needs `group:write`): members leave it; a group that owns services or
/// that something else still names ([`super::usage::of_group`]) cannot be deleted.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    let change = catalog::change::<Group>(app, actor)?;
    app.store
        .write(move |tx| {
            let group: Group = catalog::load(tx, id)?;
            let services = access::list::<Service>(tx, None, Order::Asc, usize::MAX)?;
            if let Some(s) = services.iter().find(|s| s.owner_group_id == Some(id)) {
                return Err(AppError::Conflict(format!(
                    "group '{}' owns service '{}'; give it another owner first",
                    group.name, s.name
                )));
            }
            if let Some(why) = super::usage::of_group(tx, id)? {
                return Err(AppError::Conflict(format!(
                    "group '{}' is still needed: {why}; change that first",
                    group.name
                )));
            }
            for user_id in super::users::member_ids(tx, id)? {
                if let Some(mut user) = access::get::<User>(tx, user_id)? {
                    user.group_ids.retain(|g| *g != id);
                    access::put(tx, &user)?;
                }
                access::delete_raw(
                    tx,
                    tables::GROUP_MEMBERS,
                    &Key::new().u64(id).u64(user_id).into_bytes(),
                )?;
            }
            catalog::delete(tx, &change, &group)
        })
        .await
}

/// The members of a group (needs `group:read`).
pub fn members(app: &App, actor: &Actor, id: u64) -> AppResult<Vec<UserView>> {
    require(actor, Permission::GroupRead)?;
    let r = app.store.read()?;
    catalog::load::<Group>(&r, id)?;
    let mut out = Vec::new();
    for user_id in super::users::member_ids(&r, id)? {
        if let Some(u) = access::get::<User>(&r, user_id)? {
            out.push(super::users::view(&r, &u)?);
        }
    }
    Ok(out)
}

/// Adds (`join = true`) or removes a member (needs `group:write`). Idempotent: adding a
/// member twice or removing a non-member changes nothing and records nothing.
pub async fn set_member(
    app: &App,
    actor: &Actor,
    group_id: u64,
    user_id: u64,
    join: bool,
) -> AppResult<()> {
    require(actor, Permission::GroupWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    app.store
        .write(move |tx| {
            let group: Group = catalog::load(tx, group_id)?;
            let mut user = access::get::<User>(tx, user_id)?
                .ok_or_else(|| AppError::not_found("user", user_id))?;
            let member = user.group_ids.contains(&group_id);
            if member == join {
                return Ok(());
            }
            let key = Key::new().u64(group_id).u64(user_id).into_bytes();
            if join {
                user.group_ids.push(group_id);
                user.group_ids.sort_unstable();
                access::put_raw(tx, tables::GROUP_MEMBERS, &key, &[])?;
            } else {
                user.group_ids.retain(|g| *g != group_id);
                access::delete_raw(tx, tables::GROUP_MEMBERS, &key)?;
            }
            user.updated_at = now;
            access::put(tx, &user)?;
            let (action, summary) = if join {
                (
                    "group.member_add",
                    format!("added {} to group {}", user.username, group.name),
                )
            } else {
                (
                    "group.member_remove",
                    format!("removed {} from group {}", user.username, group.name),
                )
            };
            let change = if join {
                serde_json::json!({"members": {"from": null, "to": user.username}})
            } else {
                serde_json::json!({"members": {"from": user.username, "to": null}})
            };
            super::audit::record(tx, now, &who, action, ("group", group_id), summary, change)?;
            Ok(())
        })
        .await
}
