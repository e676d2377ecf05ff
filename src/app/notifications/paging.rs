//! A person's paging rules (`/api/v1/users/{id}/notification-rules`): which of their
//! contact methods an escalation page uses, and after how many minutes. People manage
//! their own; `user:write` manages anyone's, as for contact methods. The rules of one
//! person are one record, so that a page reads them with one lookup.

use redb::WriteTransaction;
use serde::Deserialize;
use utoipa::ToSchema;

use super::contacts;
use crate::app::{App, AppError, AppResult, FieldErrors};
use crate::domain::actor::Actor;
use crate::domain::audit;
use crate::domain::identity::User;
use crate::domain::notification::ContactMethod;
use crate::domain::paging::{self, PagingRule};
use crate::store::access::{self, Reader};
use crate::store::keys::Key;
use crate::store::{StoreError, tables};

/// A new paging rule.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPagingRule {
    /// One of the person's contact methods.
    pub contact_method_id: u64,
    /// Minutes after the page (0 to 1440).
    #[serde(default)]
    pub delay_minutes: u32,
}

fn key(user_id: u64) -> Vec<u8> {
    Key::new().u64(user_id).into_bytes()
}

/// The paging rules of a person, by delay.
pub fn of_user(r: &impl Reader, user_id: u64) -> Result<Vec<PagingRule>, StoreError> {
    Ok(access::get_json(r, tables::PAGING_RULES, &key(user_id))?.unwrap_or_default())
}

fn save(tx: &WriteTransaction, user_id: u64, rules: &[PagingRule]) -> Result<(), StoreError> {
    if rules.is_empty() {
        access::delete_raw(tx, tables::PAGING_RULES, &key(user_id))?;
        Ok(())
    } else {
        access::put_json(tx, tables::PAGING_RULES, &key(user_id), &rules)
    }
}

/// Drops the rules that use contact method `method_id` (it is being deleted), or every
/// rule of the person with `None` (the person is being deleted).
pub(crate) fn forget(
    tx: &WriteTransaction,
    user_id: u64,
    method_id: Option<u64>,
) -> Result<(), StoreError> {
    let mut rules = of_user(tx, user_id)?;
    rules.retain(|r| method_id.is_some_and(|m| r.contact_method_id != m));
    save(tx, user_id, &rules)
}

/// Which of a person's contact methods a page reaches, and how long after it.
pub(crate) fn steps(
    r: &impl Reader,
    user_id: u64,
) -> Result<Vec<(ContactMethod, chrono::Duration)>, StoreError> {
    let methods = contacts::of_user(r, user_id)?;
    let rules = of_user(r, user_id)?;
    Ok(paging::plan(&rules, &methods)
        .into_iter()
        .map(|(m, d)| (m.clone(), d))
        .collect())
}

/// Lists a person's paging rules (self, or `user:read`).
pub fn list(app: &App, actor: &Actor, user_id: u64) -> AppResult<Vec<PagingRule>> {
    contacts::allowed(app, actor, user_id, false)?;
    let r = app.store.read()?;
    access::get::<User>(&r, user_id)?.ok_or_else(|| AppError::not_found("user", user_id))?;
    Ok(of_user(&r, user_id)?)
}

/// Adds a paging rule (self, or `user:write`).
pub async fn create(
    app: &App,
    actor: &Actor,
    user_id: u64,
    input: NewPagingRule,
) -> AppResult<PagingRule> {
    contacts::allowed(app, actor, user_id, true)?;
    let mut e = FieldErrors::new();
    e.check("delay_minutes", paging::check_delay(input.delay_minutes));
    e.into_result()?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let changer = contacts::Changer::of(actor);
    app.store
        .write(move |tx| {
            changer.check(tx, user_id)?;
            access::get::<User>(tx, user_id)?
                .ok_or_else(|| AppError::not_found("user", user_id))?;
            let method = access::get::<ContactMethod>(tx, input.contact_method_id)?
                .filter(|m| m.user_id == user_id);
            let Some(method) = method else {
                return Err(FieldErrors::single(
                    "contact_method_id",
                    format!(
                        "user {user_id} has no contact method {}",
                        input.contact_method_id
                    ),
                ));
            };
            let mut rules = of_user(tx, user_id)?;
            if rules
                .iter()
                .any(|r| r.contact_method_id == method.id && r.delay_minutes == input.delay_minutes)
            {
                return Err(AppError::Conflict(format!(
                    "this user is already paged by {} {} after {} minutes",
                    method.kind, method.address, input.delay_minutes
                )));
            }
            if rules.len() >= paging::MAX_RULES_PER_USER {
                return Err(AppError::Conflict(format!(
                    "a user may have at most {} paging rules",
                    paging::MAX_RULES_PER_USER
                )));
            }
            let rule = PagingRule {
                id: access::next_id(tx, tables::PAGING_RULES)?,
                user_id,
                contact_method_id: method.id,
                delay_minutes: input.delay_minutes,
            };
            rules.push(rule.clone());
            rules.sort_by_key(|r| (r.delay_minutes, r.id));
            save(tx, user_id, &rules)?;
            crate::app::audit::record(
                tx,
                now,
                &who,
                "paging_rule.create",
                ("user", user_id),
                format!(
                    "pages by {} {} after {} minutes",
                    method.kind, method.address, rule.delay_minutes
                ),
                audit::created_record(&rule),
            )?;
            Ok(rule)
        })
        .await
}

/// Removes a paging rule (self, or `user:write`).
pub async fn delete(app: &App, actor: &Actor, user_id: u64, id: u64) -> AppResult<()> {
    contacts::allowed(app, actor, user_id, true)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let changer = contacts::Changer::of(actor);
    app.store
        .write(move |tx| {
            changer.check(tx, user_id)?;
            let mut rules = of_user(tx, user_id)?;
            let Some(at) = rules.iter().position(|r| r.id == id) else {
                return Err(AppError::not_found("notification rule", id));
            };
            let rule = rules.remove(at);
            save(tx, user_id, &rules)?;
            crate::app::audit::record(
                tx,
                now,
                &who,
                "paging_rule.delete",
                ("user", user_id),
                format!("removed paging rule {id}"),
                audit::deleted_record(&rule),
            )?;
            Ok(())
        })
        .await
}
