//! Chat identities: which platform user a Slack or Discord user is.
//!
//! A chat user maps to a platform user through an explicit link (a `slack` or `discord`
//! contact method whose address is the chat user id) or, failing that, through their
//! e-mail address (as the chat platform reports it), remembered once found. An unmapped
//! chat user may read but not change anything.

use redb::WriteTransaction;

use super::{App, AppResult};
use crate::domain::actor::Actor;
use crate::domain::identity::User;
use crate::domain::notification::ChannelKind;
use crate::store::access::{self, Reader};
use crate::store::keys::Key;
use crate::store::{StoreError, tables};

fn link_key(platform: ChannelKind, chat_user: &str) -> Vec<u8> {
    Key::new().u8(platform.code()).str(chat_user).into_bytes()
}

/// The active platform user a chat user is linked to, if known.
pub fn linked_user(
    r: &impl Reader,
    platform: ChannelKind,
    chat_user: &str,
) -> Result<Option<User>, StoreError> {
    Ok(linked_user_even_inactive(r, platform, chat_user)?.filter(|u| u.active))
}

/// The platform user a chat user is linked to, deactivated or not: to tell a deactivated
/// person why they may not act, rather than that they are not linked.
pub fn linked_user_even_inactive(
    r: &impl Reader,
    platform: ChannelKind,
    chat_user: &str,
) -> Result<Option<User>, StoreError> {
    let id = match super::notifications::contacts::by_address(r, platform, chat_user)? {
        Some(c) => Some(c.user_id),
        None => linked_by_email(r, platform, chat_user)?,
    };
    Ok(match id {
        Some(id) => access::get::<User>(r, id)?,
        None => None,
    })
}

/// Forgets the chat users linked to `user_id` by e-mail address, in the transaction that
/// changes that address: the link stood for "same e-mail", which no longer holds. The
/// next command from them looks the address up again.
pub(crate) fn forget_email_links(tx: &WriteTransaction, user_id: u64) -> Result<(), StoreError> {
    let mut stale = Vec::new();
    access::scan_prefix(
        tx,
        tables::CHAT_LINKS,
        &[],
        None,
        access::Order::Asc,
        &mut |k, v| {
            if crate::store::keys::id_from_key(v) == Some(user_id) {
                stale.push(k.to_vec());
            }
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    for key in stale {
        access::delete_raw(tx, tables::CHAT_LINKS, &key)?;
    }
    Ok(())
}

/// The user a chat user was linked to by e-mail address (not by a contact method), if any.
pub(crate) fn linked_by_email(
    r: &impl Reader,
    platform: ChannelKind,
    chat_user: &str,
) -> Result<Option<u64>, StoreError> {
    access::get_id(r, tables::CHAT_LINKS, &link_key(platform, chat_user))
}

/// Links a chat user to the platform user with `email`, if there is one; remembers it.
pub async fn link_by_email(
    app: &App,
    platform: ChannelKind,
    chat_user: &str,
    email: &str,
) -> AppResult<Option<User>> {
    let Some(user) = super::users::find_by_email(&app.store.read()?, email)?.filter(|u| u.active)
    else {
        return Ok(None);
    };
    let key = link_key(platform, chat_user);
    let now = app.clock.now();
    let (user_id, name, chat_user) = (user.id, user.username.clone(), chat_user.to_owned());
    app.store
        .write(move |tx: &WriteTransaction| {
            access::put_id(tx, tables::CHAT_LINKS, &key, user_id)?;
            super::audit::record(
                tx,
                now,
                &Actor::system().reference,
                "chat.link",
                ("user", user_id),
                format!("{platform} user {chat_user} is {name} (same e-mail)"),
                serde_json::json!({"chat_user": {"from": null, "to": chat_user}}),
            )?;
            Ok::<_, super::AppError>(())
        })
        .await?;
    Ok(Some(user))
}

/// The actor for a linked chat user: the user's permissions, recorded as a chat action.
pub fn actor(r: &impl Reader, user: &User) -> Result<Actor, StoreError> {
    Ok(Actor::chat(
        user.id,
        &user.username,
        super::users::permissions(r, user)?,
    ))
}
