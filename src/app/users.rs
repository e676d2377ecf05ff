//! Users: create, read, change, delete; role and group membership; the first-start admin.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use redb::WriteTransaction;
use serde::Deserialize;
use utoipa::ToSchema;

use super::page::{Page, PageRequest};
use super::{App, AppError, AppResult, FieldErrors, optional_text, require};
use crate::domain::actor::Actor;
use crate::domain::audit;
use crate::domain::identity::{self, ADMIN_ROLE, Group, Role, User, UserView};
use crate::domain::permission::{Permission, PermissionSet};
use crate::store::access::{self, Order, Reader};
use crate::store::keys::Key;
use crate::store::tables;

/// A new user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name: letters, digits, `.`, `_`, `-`, `@`; unique, case-insensitive.
    pub username: String,
    /// E-mail address; unique.
    pub email: String,
    /// At least 8 characters. Never returned.
    pub password: String,
    /// Role names, e.g. `["Engineer"]`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Display name.
    #[serde(default)]
    pub real_name: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Groups to join.
    #[serde(default)]
    pub group_ids: Vec<u64>,
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New e-mail address.
    pub email: Option<String>,
    /// New password (invalidates the user's tokens).
    pub password: Option<String>,
    /// Replaces the role names.
    pub roles: Option<Vec<String>>,
    /// Display name; empty clears it.
    pub real_name: Option<String>,
    /// Department; empty clears it.
    pub department: Option<String>,
    /// Replaces the groups.
    pub group_ids: Option<Vec<u64>>,
    /// `false` deactivates (cannot log in; tokens stop working).
    pub active: Option<bool>,
}

/// Hashes on the blocking pool: argon2 takes tens of milliseconds of CPU.
pub(crate) async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || crate::auth::password::hash(&password))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Role name -> id for every role.
fn role_ids_by_name(r: &impl Reader) -> Result<BTreeMap<String, Role>, crate::store::StoreError> {
    Ok(access::list::<Role>(r, None, Order::Asc, usize::MAX)?
        .into_iter()
        .map(|role| (role.name.to_lowercase(), role))
        .collect())
}

/// Resolves role names to ids, recording unknown ones.
fn resolve_roles(
    r: &impl Reader,
    names: &[String],
    errors: &mut FieldErrors,
) -> Result<Vec<u64>, crate::store::StoreError> {
    let roles = role_ids_by_name(r)?;
    let mut ids = BTreeSet::new();
    for name in names {
        match roles.get(&name.trim().to_lowercase()) {
            Some(role) => {
                ids.insert(role.id);
            }
            None => {
                errors.add("roles", format!("no role named '{name}'"));
            }
        }
    }
    Ok(ids.into_iter().collect())
}

fn check_groups(
    r: &impl Reader,
    ids: &[u64],
    errors: &mut FieldErrors,
) -> Result<Vec<u64>, crate::store::StoreError> {
    let mut out = BTreeSet::new();
    for id in ids {
        if access::get::<Group>(r, *id)?.is_none() {
            errors.add("group_ids", format!("no group with id {id}"));
        } else {
            out.insert(*id);
        }
    }
    Ok(out.into_iter().collect())
}

/// The API view of a user.
pub fn view(r: &impl Reader, user: &User) -> Result<UserView, crate::store::StoreError> {
    let mut roles = Vec::new();
    for id in &user.role_ids {
        if let Some(role) = access::get::<Role>(r, *id)? {
            roles.push(role.name);
        }
    }
    Ok(UserView {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        real_name: user.real_name.clone(),
        department: user.department.clone(),
        roles,
        group_ids: user.group_ids.clone(),
        active: user.active,
        created_at: user.created_at,
        updated_at: user.updated_at,
    })
}

/// What a user may do: the union of their roles.
pub fn permissions(
    r: &impl Reader,
    user: &User,
) -> Result<PermissionSet, crate::store::StoreError> {
    let mut set = PermissionSet::none();
    for id in &user.role_ids {
        if let Some(role) = access::get::<Role>(r, *id)? {
            set.grant_names(role.permissions.iter().map(String::as_str));
        }
    }
    Ok(set)
}

/// Refuses (403) unless `granter` holds every permission of the roles `role_ids`: nobody
/// may grant, revoke or act on privileges they do not have themselves.
fn check_privileges(
    r: &impl Reader,
    granter: &PermissionSet,
    role_ids: &[u64],
    what: &str,
) -> AppResult<()> {
    for id in role_ids {
        let Some(role) = access::get::<Role>(r, *id)? else {
            continue;
        };
        super::roles::check_within(granter, &role.name, &role.permissions, what)?;
    }
    Ok(())
}

/// Whether someone holding `granter` may change `target` (contact methods, paging rules,
/// the account itself): only if the target holds no permission the granter lacks.
pub(crate) fn check_may_act_on(
    r: &impl Reader,
    granter: &PermissionSet,
    target: &User,
) -> AppResult<()> {
    check_privileges(r, granter, &target.role_ids, "act on a user with")
}

/// The actor for an authenticated user, or 401 if the user is gone, inactive, the token
/// predates a password change, or its session has ended.
pub fn actor_for(
    r: &impl Reader,
    user_id: u64,
    token_version: u64,
    session: Option<u64>,
) -> AppResult<Actor> {
    let unauthorized = || AppError::Unauthorized("the token is no longer valid".into());
    let user = access::get::<User>(r, user_id)?.ok_or_else(unauthorized)?;
    if !user.active || user.token_version != token_version {
        return Err(unauthorized());
    }
    // Tokens from before sessions were named carry none; they expire on their own.
    if let Some(sid) = session {
        let live = access::get::<crate::auth::refresh::RefreshFamily>(r, sid)?
            .is_some_and(|f| f.user_id == user_id && !f.revoked);
        if !live {
            return Err(AppError::Unauthorized(
                "the session has ended (logout, or its refresh token was reused); log in again"
                    .into(),
            ));
        }
    }
    Ok(Actor::user(user.id, &user.username, permissions(r, &user)?))
}

/// The actor for a user the daemon acts for (a phone key press, a chat button): 401 if the
/// user is gone or inactive.
pub fn actor_for_user(r: &impl Reader, user_id: u64) -> AppResult<Actor> {
    let user = access::get::<User>(r, user_id)?
        .filter(|u| u.active)
        .ok_or_else(|| AppError::Unauthorized("the user no longer exists or is inactive".into()))?;
    Ok(Actor::user(user.id, &user.username, permissions(r, &user)?))
}

/// Finds a user by name.
pub fn find_by_username(
    r: &impl Reader,
    username: &str,
) -> Result<Option<User>, crate::store::StoreError> {
    match access::get_id(
        r,
        tables::USERS_BY_NAME,
        username.trim().to_lowercase().as_bytes(),
    )? {
        Some(id) => access::get(r, id),
        None => Ok(None),
    }
}

/// Finds a user by e-mail address (how chat identities map).
pub fn find_by_email(
    r: &impl Reader,
    email: &str,
) -> Result<Option<User>, crate::store::StoreError> {
    match access::get_id(
        r,
        tables::USERS_BY_EMAIL,
        email.trim().to_lowercase().as_bytes(),
    )? {
        Some(id) => access::get(r, id),
        None => Ok(None),
    }
}

fn member_key(group_id: u64, user_id: u64) -> Vec<u8> {
    Key::new().u64(group_id).u64(user_id).into_bytes()
}

/// Rewrites a user's membership index entries from `old` to `new`.
fn sync_memberships(
    tx: &WriteTransaction,
    user_id: u64,
    old: &[u64],
    new: &[u64],
) -> Result<(), crate::store::StoreError> {
    for g in old.iter().filter(|g| !new.contains(g)) {
        access::delete_raw(tx, tables::GROUP_MEMBERS, &member_key(*g, user_id))?;
    }
    for g in new.iter().filter(|g| !old.contains(g)) {
        access::put_raw(tx, tables::GROUP_MEMBERS, &member_key(*g, user_id), &[])?;
    }
    Ok(())
}

/// A person or a team named as a target (escalation levels, approval levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonRef {
    /// One user.
    User(u64),
    /// Every member of a group.
    Group(u64),
}

/// The active users `refs` name (groups expanded to their members), each once, in the
/// order named: who can actually be reached or asked.
pub fn active_people(
    r: &impl Reader,
    refs: impl IntoIterator<Item = PersonRef>,
) -> Result<Vec<User>, crate::store::StoreError> {
    let mut ids = Vec::new();
    for p in refs {
        match p {
            PersonRef::User(id) => ids.push(id),
            PersonRef::Group(id) => ids.extend(member_ids(r, id)?),
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for id in ids {
        if seen.insert(id)
            && let Some(u) = access::get::<User>(r, id)?.filter(|u| u.active)
        {
            out.push(u);
        }
    }
    Ok(out)
}

/// The ids of the members of a group.
pub fn member_ids(r: &impl Reader, group_id: u64) -> Result<Vec<u64>, crate::store::StoreError> {
    let mut out = Vec::new();
    access::scan_prefix(
        r,
        tables::GROUP_MEMBERS,
        &Key::new().u64(group_id).into_bytes(),
        None,
        Order::Asc,
        &mut |k, _| {
            let mut kr = crate::store::keys::KeyReader::new(k);
            kr.u64();
            if let Some(u) = kr.u64() {
                out.push(u);
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

/// How many active users hold the Admin role, not counting `except`.
fn active_admins(r: &impl Reader, except: Option<u64>) -> Result<usize, crate::store::StoreError> {
    let Some(admin) = access::get_id(
        r,
        tables::ROLES_BY_NAME,
        ADMIN_ROLE.to_lowercase().as_bytes(),
    )?
    else {
        return Ok(0);
    };
    let users = access::list::<User>(r, None, Order::Asc, usize::MAX)?;
    Ok(users
        .iter()
        .filter(|u| Some(u.id) != except && u.active && u.role_ids.contains(&admin))
        .count())
}

fn validate_new(input: &NewUser) -> AppResult<NewUser> {
    let mut e = FieldErrors::new();
    let username = input.username.trim().to_owned();
    e.check("username", identity::check_username(&username));
    let email = input.email.trim().to_owned();
    e.check("email", identity::check_email(&email));
    e.check("password", identity::check_password(&input.password));
    let real_name = optional_text(&mut e, "real_name", input.real_name.as_deref(), 200);
    let department = optional_text(&mut e, "department", input.department.as_deref(), 200);
    e.into_result()?;
    Ok(NewUser {
        username,
        email,
        password: input.password.clone(),
        roles: input.roles.clone(),
        real_name,
        department,
        group_ids: input.group_ids.clone(),
    })
}

/// Creates a user (needs `user:write`).
pub async fn create(app: &App, actor: &Actor, input: NewUser) -> AppResult<UserView> {
    require(actor, Permission::UserWrite)?;
    let input = validate_new(&input)?;
    let hash = hash_password(input.password.clone()).await?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let granter = actor.permissions.clone();
    app.store
        .write(move |tx| {
            let user = insert_user(tx, &granter, &input, &hash, now)?;
            let shown = serde_json::json!({"username": user.username, "email": user.email, "roles": input.roles, "group_ids": user.group_ids, "real_name": user.real_name, "department": user.department});
            super::audit::record(tx, now, &who, "user.create", ("user", user.id), format!("created user {}", user.username), audit::created(&shown))?;
            Ok(view(tx, &user)?)
        })
        .await
}

/// Inserts a validated user inside `tx`: uniqueness, roles, groups, indexes.
pub(crate) fn insert_user(
    tx: &WriteTransaction,
    granter: &PermissionSet,
    input: &NewUser,
    hash: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<User> {
    if access::get_id(
        tx,
        tables::USERS_BY_NAME,
        input.username.to_lowercase().as_bytes(),
    )?
    .is_some()
    {
        return Err(AppError::Conflict(format!(
            "a user named '{}' already exists",
            input.username
        )));
    }
    if access::get_id(
        tx,
        tables::USERS_BY_EMAIL,
        input.email.to_lowercase().as_bytes(),
    )?
    .is_some()
    {
        return Err(AppError::Conflict(format!(
            "a user with e-mail '{}' already exists",
            input.email
        )));
    }
    let mut e = FieldErrors::new();
    let role_ids = resolve_roles(tx, &input.roles, &mut e)?;
    let group_ids = check_groups(tx, &input.group_ids, &mut e)?;
    e.into_result()?;
    check_privileges(tx, granter, &role_ids, "grant")?;
    let id = access::next_id(tx, tables::USERS)?;
    let user = User {
        id,
        username: input.username.clone(),
        email: input.email.clone(),
        real_name: input.real_name.clone(),
        department: input.department.clone(),
        password_hash: hash.to_owned(),
        role_ids,
        group_ids,
        active: true,
        token_version: 0,
        created_at: now,
        updated_at: now,
    };
    access::put(tx, &user)?;
    access::put_id(
        tx,
        tables::USERS_BY_NAME,
        user.username.to_lowercase().as_bytes(),
        id,
    )?;
    access::put_id(
        tx,
        tables::USERS_BY_EMAIL,
        user.email.to_lowercase().as_bytes(),
        id,
    )?;
    sync_memberships(tx, id, &[], &user.group_ids)?;
    Ok(user)
}

/// One user (needs `user:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<UserView> {
    require(actor, Permission::UserRead)?;
    let r = app.store.read()?;
    let user = access::get::<User>(&r, id)?.ok_or_else(|| AppError::not_found("user", id))?;
    Ok(view(&r, &user)?)
}

/// Users in id order (needs `user:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<UserView>> {
    require(actor, Permission::UserRead)?;
    let r = app.store.read()?;
    let users = access::list::<User>(&r, page.after, Order::Asc, page.limit + 1)?;
    let page = Page::from_overfetch(users, page.limit, |u| u.id);
    let mut items = Vec::with_capacity(page.items.len());
    for u in &page.items {
        items.push(view(&r, u)?);
    }
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// Changes a user (needs `user:write`).
pub async fn update(app: &App, actor: &Actor, id: u64, patch: UserPatch) -> AppResult<UserView> {
    require(actor, Permission::UserWrite)?;
    let mut e = FieldErrors::new();
    if let Some(email) = &patch.email {
        e.check("email", identity::check_email(email.trim()));
    }
    if let Some(p) = &patch.password {
        // One's own password changes where the current one is asked for (and guessing it
        // is throttled): a stolen access token must not be enough.
        if actor.user_id == Some(id) {
            e.add(
                "password",
                "change your own password at POST /api/v1/auth/password, which asks for the current one",
            );
        } else {
            e.check("password", identity::check_password(p));
        }
    }
    e.into_result()?;
    let new_hash = match &patch.password {
        Some(p) => Some(hash_password(p.clone()).await?),
        None => None,
    };
    let now = app.clock.now();
    let who = actor.reference.clone();
    let self_id = actor.user_id;
    let granter = actor.permissions.clone();
    app.store
        .write(move |tx| {
            let before =
                access::get::<User>(tx, id)?.ok_or_else(|| AppError::not_found("user", id))?;
            check_privileges(tx, &granter, &before.role_ids, "act on a user with")?;
            let before_view = view(tx, &before)?;
            let mut user = before.clone();
            let mut e = FieldErrors::new();
            if let Some(email) = &patch.email {
                let email = email.trim().to_owned();
                if email.to_lowercase() != user.email.to_lowercase() {
                    if access::get_id(tx, tables::USERS_BY_EMAIL, email.to_lowercase().as_bytes())?
                        .is_some()
                    {
                        return Err(AppError::Conflict(format!(
                            "a user with e-mail '{email}' already exists"
                        )));
                    }
                    access::delete_raw(
                        tx,
                        tables::USERS_BY_EMAIL,
                        user.email.to_lowercase().as_bytes(),
                    )?;
                    super::chat::forget_email_links(tx, id)?;
                    access::put_id(
                        tx,
                        tables::USERS_BY_EMAIL,
                        email.to_lowercase().as_bytes(),
                        id,
                    )?;
                }
                user.email = email;
            }
            if let Some(roles) = &patch.roles {
                user.role_ids = resolve_roles(tx, roles, &mut e)?;
                check_privileges(tx, &granter, &user.role_ids, "grant")?;
            }
            if let Some(groups) = &patch.group_ids {
                user.group_ids = check_groups(tx, groups, &mut e)?;
            }
            if patch.real_name.is_some() {
                user.real_name =
                    optional_text(&mut e, "real_name", patch.real_name.as_deref(), 200);
            }
            if patch.department.is_some() {
                user.department =
                    optional_text(&mut e, "department", patch.department.as_deref(), 200);
            }
            e.into_result()?;
            if let Some(active) = patch.active {
                if !active && Some(id) == self_id {
                    return Err(AppError::Conflict("you cannot deactivate yourself".into()));
                }
                if user.active && !active {
                    user.token_version += 1;
                }
                user.active = active;
            }
            if let Some(hash) = &new_hash {
                user.password_hash = hash.clone();
                user.token_version += 1;
            }
            user.updated_at = now;
            let admin_before = is_active_admin(tx, &before)?;
            if admin_before && !is_active_admin(tx, &user)? && active_admins(tx, Some(id))? == 0 {
                return Err(AppError::Conflict(
                    "this is the last active Admin; make another user Admin first".into(),
                ));
            }
            sync_memberships(tx, id, &before.group_ids, &user.group_ids)?;
            access::put(tx, &user)?;
            let after_view = view(tx, &user)?;
            let mut changes = audit::diff_records(&before_view, &after_view);
            if new_hash.is_some()
                && let Some(obj) = changes.as_object_mut()
            {
                obj.insert("password".into(), audit::redacted_change());
            }
            super::audit::record(
                tx,
                now,
                &who,
                "user.update",
                ("user", id),
                format!("changed user {}", user.username),
                changes,
            )?;
            Ok(after_view)
        })
        .await
}

fn is_active_admin(r: &impl Reader, user: &User) -> Result<bool, crate::store::StoreError> {
    let admin = access::get_id(
        r,
        tables::ROLES_BY_NAME,
        ADMIN_ROLE.to_lowercase().as_bytes(),
    )?;
    Ok(user.active && admin.is_some_and(|a| user.role_ids.contains(&a)))
}

/// Deletes a user (needs `user:write`) nothing still needs ([`super::usage::of_user`]).
/// History keeps their name.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    require(actor, Permission::UserWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let self_id = actor.user_id;
    let granter = actor.permissions.clone();
    app.store
        .write(move |tx| {
            let user =
                access::get::<User>(tx, id)?.ok_or_else(|| AppError::not_found("user", id))?;
            if Some(id) == self_id {
                return Err(AppError::Conflict("you cannot delete yourself".into()));
            }
            check_privileges(tx, &granter, &user.role_ids, "act on a user with")?;
            if is_active_admin(tx, &user)? && active_admins(tx, Some(id))? == 0 {
                return Err(AppError::Conflict(
                    "this is the last active Admin; make another user Admin first".into(),
                ));
            }
            if let Some(why) = super::usage::of_user(tx, id, now)? {
                return Err(AppError::Conflict(format!(
                    "user {} is still needed: {why}; change that first, or deactivate the user",
                    user.username
                )));
            }
            let shown = view(tx, &user)?;
            access::delete::<User>(tx, id)?;
            access::delete_raw(
                tx,
                tables::USERS_BY_NAME,
                user.username.to_lowercase().as_bytes(),
            )?;
            access::delete_raw(
                tx,
                tables::USERS_BY_EMAIL,
                user.email.to_lowercase().as_bytes(),
            )?;
            sync_memberships(tx, id, &user.group_ids, &[])?;
            super::notifications::contacts::delete_all_of(tx, id)?;
            super::schedules::forget_overrides_of(tx, id, now, &who)?;
            super::chat::forget_email_links(tx, id)?;
            super::audit::record(
                tx,
                now,
                &who,
                "user.delete",
                ("user", id),
                format!("deleted user {}", user.username),
                audit::deleted_record(&shown),
            )?;
            Ok(())
        })
        .await
}

/// What happened when the first-start admin was ensured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// Users already existed; nothing changed.
    Existing,
    /// Created with the password from the environment.
    CreatedWithGivenPassword,
    /// Created with this generated password, to be shown once.
    CreatedWithGeneratedPassword(String),
}

/// When no active Admin exists (a new store, or one where `user add` made only other
/// users), creates `admin` with role Admin and the given (or a generated) password. A store
/// with an Admin is left alone, so a restart with another password changes nothing.
pub async fn ensure_admin(app: &App, given_password: Option<String>) -> AppResult<AdminBootstrap> {
    {
        let r = app.store.read()?;
        if active_admins(&r, None)? > 0 {
            return Ok(AdminBootstrap::Existing);
        }
        if find_by_username(&r, "admin")?.is_some() {
            tracing::warn!(
                "no active Admin exists and the username 'admin' is taken; create an Admin with `incidentd user add NAME --role Admin`"
            );
            return Ok(AdminBootstrap::Existing);
        }
    }
    let (password, generated) = match given_password {
        Some(p) => {
            identity::check_password(&p)
                .map_err(|m| FieldErrors::single("INCIDENTD_ADMIN_PASSWORD", m))?;
            (p, false)
        }
        None => (crate::auth::secret::random_password(), true),
    };
    let hash = hash_password(password.clone()).await?;
    let now = app.clock.now();
    let input = NewUser {
        username: "admin".into(),
        email: "admin@localhost.localdomain".into(),
        password: String::new(),
        roles: vec![ADMIN_ROLE.into()],
        real_name: Some("Administrator".into()),
        department: None,
        group_ids: vec![],
    };
    let created = app
        .store
        .write(move |tx| {
            if active_admins(tx, None)? > 0 {
                return Ok(false);
            }
            let user = insert_user(tx, &PermissionSet::all(), &input, &hash, now)?;
            super::audit::record(
                tx,
                now,
                &Actor::system().reference,
                "user.create",
                ("user", user.id),
                "created the first-start admin".into(),
                serde_json::json!({"username": {"from": null, "to": "admin"}}),
            )?;
            Ok::<_, AppError>(true)
        })
        .await?;
    Ok(match (created, generated) {
        (false, _) => AdminBootstrap::Existing,
        (true, false) => AdminBootstrap::CreatedWithGivenPassword,
        (true, true) => AdminBootstrap::CreatedWithGeneratedPassword(password),
    })
}

/// Sets a user's password by username, from the command line (no actor: the operator has
/// the data directory). Invalidates the user's tokens.
pub async fn set_password(app: &App, username: &str, password: String) -> AppResult<()> {
    identity::check_password(&password).map_err(|m| FieldErrors::single("password", m))?;
    let user = find_by_username(&app.store.read()?, username)?
        .ok_or_else(|| AppError::not_found("user", username))?;
    let hash = hash_password(password).await?;
    let now = app.clock.now();
    let id = user.id;
    app.store
        .write(move |tx| {
            let mut user =
                access::get::<User>(tx, id)?.ok_or_else(|| AppError::not_found("user", id))?;
            user.password_hash = hash.clone();
            user.token_version += 1;
            user.updated_at = now;
            access::put(tx, &user)?;
            super::audit::record(
                tx,
                now,
                &Actor::system().reference,
                "user.password",
                ("user", id),
                format!("password of {} set from the command line", user.username),
                serde_json::json!({"password": audit::redacted_change()}),
            )?;
            Ok(())
        })
        .await
}
