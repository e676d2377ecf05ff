//! A user's contact methods. Users manage their own; `user:write` manages anyone's.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::{App, AppError, AppResult, FieldErrors, require};
use crate::domain::actor::Actor;
use crate::domain::audit;
use crate::domain::identity::User;
use crate::domain::notification::{
    ChannelKind, ContactMethod, REDACTED_SECRET, kept_secret, redact_secret,
};
use crate::domain::permission::Permission;
use crate::store::access::{self, Order, Reader};
use crate::store::keys::{Key, KeyReader};
use crate::store::{StoreError, tables};

/// A new contact method.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContactMethod {
    /// `email`, `sms`, `voice`, `slack`, `discord` or `webhook`.
    pub kind: ChannelKind,
    /// E-mail address, E.164 number, URL, or chat user id.
    pub address: String,
    /// A name for it.
    #[serde(default)]
    pub label: String,
    /// For webhooks: the HMAC-SHA256 signing secret.
    #[serde(default)]
    pub secret: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Changes to a contact method.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactMethodPatch {
    /// New address.
    pub address: Option<String>,
    /// New label.
    pub label: Option<String>,
    /// New secret.
    pub secret: Option<String>,
    /// On or off.
    pub enabled: Option<bool>,
}

/// Whether `actor` may read (or, with `write`, change) the contact methods and paging
/// rules of `user_id`: their own, or anyone's with `user:read` / `user:write`, but
/// changes only to a user who holds no permission the actor lacks (a chat contact method
/// is the identity chat commands act under: adding one's own Slack id to an Admin would
/// make one an Admin in Slack), as for every other change to a user.
pub fn allowed(app: &App, actor: &Actor, user_id: u64, write: bool) -> AppResult<()> {
    if actor.user_id == Some(user_id) {
        return Ok(());
    }
    if !write {
        return require(actor, Permission::UserRead);
    }
    require(actor, Permission::UserWrite)?;
    Changer::of(actor).check(&app.store.read()?, user_id)
}

/// Who changes a user's contact methods or paging rules: checked early ([`allowed`]) and
/// again inside the write transaction, so that a role given to the target in between
/// counts.
#[derive(Debug, Clone)]
pub(crate) struct Changer {
    user_id: Option<u64>,
    permissions: crate::domain::permission::PermissionSet,
}

impl Changer {
    /// The changer `actor` is.
    pub(crate) fn of(actor: &Actor) -> Self {
        Self {
            user_id: actor.user_id,
            permissions: actor.permissions.clone(),
        }
    }

    /// Whether they may change `user_id`'s: their own, or a user who holds no permission
    /// they lack (a user that does not exist is the operation's 404).
    pub(crate) fn check(&self, r: &impl Reader, user_id: u64) -> AppResult<()> {
        if self.user_id == Some(user_id) {
            return Ok(());
        }
        match access::get::<User>(r, user_id)? {
            Some(target) => crate::app::users::check_may_act_on(r, &self.permissions, &target),
            None => Ok(()),
        }
    }
}

fn user_key(user_id: u64, id: u64) -> Vec<u8> {
    Key::new().u64(user_id).u64(id).into_bytes()
}

/// Removes every contact method of a user (the user is being deleted).
pub(crate) fn delete_all_of(tx: &redb::WriteTransaction, user_id: u64) -> Result<(), StoreError> {
    super::paging::forget(tx, user_id, None)?;
    for c in of_user(tx, user_id)? {
        access::delete::<ContactMethod>(tx, c.id)?;
        access::delete_raw(tx, tables::CONTACTS_BY_USER, &user_key(user_id, c.id))?;
        unindex(tx, &c)?;
    }
    Ok(())
}

/// The contact methods of a user.
pub fn of_user(r: &impl Reader, user_id: u64) -> Result<Vec<ContactMethod>, StoreError> {
    let mut ids = Vec::new();
    access::scan_prefix(
        r,
        tables::CONTACTS_BY_USER,
        &Key::new().u64(user_id).into_bytes(),
        None,
        Order::Asc,
        &mut |k, _| {
            let mut kr = KeyReader::new(k);
            kr.u64();
            if let Some(id) = kr.u64() {
                ids.push(id);
            }
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(c) = access::get::<ContactMethod>(r, id)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// The key of the address index.
pub(crate) fn address_key(kind: ChannelKind, address: &str) -> Vec<u8> {
    Key::new().u8(kind.code()).str(address).into_bytes()
}

/// The contact method with this channel and address (a chat user id), enabled or not.
pub fn by_address(
    r: &impl Reader,
    kind: ChannelKind,
    address: &str,
) -> Result<Option<ContactMethod>, StoreError> {
    match access::get_id(r, tables::CONTACTS_BY_ADDRESS, &address_key(kind, address))? {
        // Turned off or not, the method says whose chat id this is: `enabled` is about
        // being paged there, not about who one is.
        Some(id) => Ok(access::get::<ContactMethod>(r, id)?),
        None => Ok(None),
    }
}

/// A chat user id is an identity: it may belong to one user only, whether another user
/// linked it by a contact method or chat found it by that user's e-mail address. A 409
/// otherwise.
fn check_identity_free(
    tx: &redb::WriteTransaction,
    kind: ChannelKind,
    address: &str,
    user_id: u64,
) -> AppResult<()> {
    if !matches!(kind, ChannelKind::Slack | ChannelKind::Discord) {
        return Ok(());
    }
    let owner = match access::get_id(tx, tables::CONTACTS_BY_ADDRESS, &address_key(kind, address))?
    {
        Some(id) => access::get::<ContactMethod>(tx, id)?.map(|c| c.user_id),
        None => None,
    };
    let owner = match owner {
        Some(o) => Some(o),
        // A link found by e-mail counts while its user is there and active (it is not
        // removed when they leave; chat stops using it then too).
        None => match crate::app::chat::linked_by_email(tx, kind, address)? {
            Some(id) if access::get::<User>(tx, id)?.is_some_and(|u| u.active) => Some(id),
            _ => None,
        },
    };
    match owner {
        Some(other) if other != user_id => Err(AppError::Conflict(format!(
            "{kind} user {address} is already linked to another user"
        ))),
        _ => Ok(()),
    }
}

/// Removes the address index entry of `c`, if it is `c`'s (two users may share an e-mail
/// address or a number; the entry names one of them).
fn unindex(tx: &redb::WriteTransaction, c: &ContactMethod) -> Result<(), StoreError> {
    let key = address_key(c.kind, &c.address);
    if access::get_id(tx, tables::CONTACTS_BY_ADDRESS, &key)? == Some(c.id) {
        access::delete_raw(tx, tables::CONTACTS_BY_ADDRESS, &key)?;
    }
    Ok(())
}

fn shown(mut c: ContactMethod) -> ContactMethod {
    redact_secret(&mut c.secret);
    c
}

fn check(e: &mut FieldErrors, kind: ChannelKind, address: &str, secret: Option<&str>) {
    if let Err(m) = kind.check_address(address) {
        e.add("address", m);
    }
    if let Some(s) = secret
        && kind != ChannelKind::Webhook
    {
        let _ = s;
        e.add("secret", "only webhook contact methods take a secret");
    }
}

fn check_label(e: &mut FieldErrors, label: &str) {
    if label.chars().count() > 100 {
        e.add("label", "must be at most 100 characters");
    }
}

/// Lists a user's contact methods (self, or `user:read`).
pub fn list(app: &App, actor: &Actor, user_id: u64) -> AppResult<Vec<ContactMethod>> {
    allowed(app, actor, user_id, false)?;
    let r = app.store.read()?;
    access::get::<User>(&r, user_id)?.ok_or_else(|| AppError::not_found("user", user_id))?;
    Ok(of_user(&r, user_id)?.into_iter().map(shown).collect())
}

/// Adds a contact method (self, or `user:write`).
pub async fn create(
    app: &App,
    actor: &Actor,
    user_id: u64,
    input: NewContactMethod,
) -> AppResult<ContactMethod> {
    allowed(app, actor, user_id, true)?;
    let mut e = FieldErrors::new();
    check(&mut e, input.kind, &input.address, input.secret.as_deref());
    check_label(&mut e, &input.label);
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let changer = Changer::of(actor);
    let c = app
        .store
        .write(move |tx| {
            changer.check(tx, user_id)?;
            access::get::<User>(tx, user_id)?
                .ok_or_else(|| AppError::not_found("user", user_id))?;
            let address = input.address.trim().to_owned();
            if of_user(tx, user_id)?
                .iter()
                .any(|c| c.kind == input.kind && c.address == address)
            {
                return Err(AppError::Conflict(format!(
                    "this user already has {} {address}",
                    input.kind
                )));
            }
            check_identity_free(tx, input.kind, &address, user_id)?;
            let id = access::next_id(tx, tables::CONTACT_METHODS)?;
            let c = ContactMethod {
                id,
                user_id,
                kind: input.kind,
                address,
                label: input.label.trim().to_owned(),
                secret: input.secret.clone(),
                enabled: input.enabled.unwrap_or(true),
                created_at: now,
            };
            access::put(tx, &c)?;
            access::put_raw(tx, tables::CONTACTS_BY_USER, &user_key(user_id, id), &[])?;
            access::put_id(
                tx,
                tables::CONTACTS_BY_ADDRESS,
                &address_key(c.kind, &c.address),
                id,
            )?;
            let shown_json = serde_json::to_value(shown(c.clone())).unwrap_or_default();
            crate::app::audit::record(
                tx,
                now,
                &who,
                "contact_method.create",
                ("user", user_id),
                format!("added {} contact method {}", c.kind, c.address),
                audit::created(&shown_json),
            )?;
            Ok(c)
        })
        .await?;
    Ok(shown(c))
}

/// Changes a contact method (self, or `user:write`).
pub async fn update(
    app: &App,
    actor: &Actor,
    user_id: u64,
    id: u64,
    patch: ContactMethodPatch,
) -> AppResult<ContactMethod> {
    allowed(app, actor, user_id, true)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let changer = Changer::of(actor);
    let c = app
        .store
        .write(move |tx| {
            changer.check(tx, user_id)?;
            let before = access::get::<ContactMethod>(tx, id)?
                .filter(|c| c.user_id == user_id)
                .ok_or_else(|| AppError::not_found("contact method", id))?;
            let mut c = before.clone();
            if let Some(a) = &patch.address {
                c.address = a.trim().to_owned();
            }
            if let Some(l) = &patch.label {
                c.label = l.trim().to_owned();
            }
            if patch.secret.as_deref() == Some(REDACTED_SECRET) && before.secret.is_none() {
                return Err(FieldErrors::single(
                    "secret",
                    "is the marker of a stored secret, and none is stored: give the secret",
                ));
            }
            c.secret = kept_secret(patch.secret.as_deref(), before.secret.as_deref());
            if let Some(en) = patch.enabled {
                c.enabled = en;
            }
            let mut e = FieldErrors::new();
            check(&mut e, c.kind, &c.address, patch.secret.as_deref());
            check_label(&mut e, &c.label);
            e.into_result()?;
            if c.address != before.address {
                if of_user(tx, user_id)?
                    .iter()
                    .any(|o| o.id != id && o.kind == c.kind && o.address == c.address)
                {
                    return Err(AppError::Conflict(format!(
                        "this user already has {} {}",
                        c.kind, c.address
                    )));
                }
                check_identity_free(tx, c.kind, &c.address, user_id)?;
                unindex(tx, &before)?;
            }
            access::put_id(
                tx,
                tables::CONTACTS_BY_ADDRESS,
                &address_key(c.kind, &c.address),
                id,
            )?;
            access::put(tx, &c)?;
            // The diff redacts the secret itself, and says whether it changed.
            let changes = audit::diff(
                &serde_json::to_value(&before).unwrap_or_default(),
                &serde_json::to_value(&c).unwrap_or_default(),
            );
            crate::app::audit::record(
                tx,
                now,
                &who,
                "contact_method.update",
                ("user", user_id),
                format!("changed {} contact method {}", c.kind, c.address),
                changes,
            )?;
            Ok::<_, AppError>(c)
        })
        .await?;
    Ok(shown(c))
}

/// Removes a contact method (self, or `user:write`).
pub async fn delete(app: &App, actor: &Actor, user_id: u64, id: u64) -> AppResult<()> {
    allowed(app, actor, user_id, true)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let changer = Changer::of(actor);
    app.store
        .write(move |tx| {
            changer.check(tx, user_id)?;
            let c = access::get::<ContactMethod>(tx, id)?
                .filter(|c| c.user_id == user_id)
                .ok_or_else(|| AppError::not_found("contact method", id))?;
            access::delete::<ContactMethod>(tx, id)?;
            super::paging::forget(tx, user_id, Some(id))?;
            access::delete_raw(tx, tables::CONTACTS_BY_USER, &user_key(user_id, id))?;
            unindex(tx, &c)?;
            crate::app::audit::record(
                tx,
                now,
                &who,
                "contact_method.delete",
                ("user", user_id),
                format!("removed {} contact method {}", c.kind, c.address),
                audit::deleted_record(&shown(c.clone())),
            )?;
            Ok(())
        })
        .await
}
