//! Escalation policies: create, read, change, delete. The paging itself is in
//! [`super::runs`].

use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::page::{Page, PageRequest};
use crate::app::{App, AppError, AppResult, FieldErrors, catalog};
use crate::domain::actor::Actor;
use crate::domain::escalation::{self, EscalationPolicy, EscalationStep, EscalationTarget};
use crate::domain::identity::{Group, User};
use crate::store::StoreError;
use crate::store::access::{self, Reader};

/// Longest description.
const MAX_DESCRIPTION: usize = 2000;

/// A new escalation policy.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    /// Unique name (case-insensitive).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The levels, paged in order; each waits `delay_minutes` for an acknowledgement.
    pub steps: Vec<EscalationStep>,
    /// Extra rounds through all levels (0..=9, default 0).
    #[serde(default)]
    pub repeat: u32,
}

/// Changes to a policy. Incidents escalating under it follow the new levels from their
/// next page on.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New levels.
    pub steps: Option<Vec<EscalationStep>>,
    /// New repeat count.
    pub repeat: Option<u32>,
}

/// Adds a 422 reason to `field` if `id` names no escalation policy; for the services,
/// integrations and routing rules that point at one.
pub fn check_ref(
    r: &impl Reader,
    e: &mut FieldErrors,
    field: &str,
    id: Option<u64>,
) -> Result<(), StoreError> {
    if let Some(id) = id
        && access::get::<EscalationPolicy>(r, id)?.is_none()
    {
        e.add(field, format!("no escalation policy with id {id}"));
    }
    Ok(())
}

/// The shape of the levels, and that every user and group they page exists.
fn check_policy(
    r: &impl Reader,
    e: &mut FieldErrors,
    steps: &[EscalationStep],
    repeat: u32,
) -> Result<(), StoreError> {
    for (field, reason) in escalation::check_steps(steps, repeat) {
        e.add(field, reason);
    }
    for (i, s) in steps.iter().enumerate() {
        for (j, t) in s.targets.iter().enumerate() {
            let field = format!("steps[{i}].targets[{j}]");
            match *t {
                EscalationTarget::User { id } => match access::get::<User>(r, id)? {
                    None => {
                        e.add(field, format!("no user with id {id}"));
                    }
                    Some(u) if !u.active => {
                        e.add(field, format!("user {} is deactivated", u.username));
                    }
                    Some(_) => {}
                },
                EscalationTarget::Group { id } => {
                    if access::get::<Group>(r, id)?.is_none() {
                        e.add(field, format!("no group with id {id}"));
                    }
                }
                EscalationTarget::Schedule { id } => {
                    if access::get::<crate::domain::schedule::Schedule>(r, id)?.is_none() {
                        e.add(field, format!("no schedule with id {id}"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Creates a policy (needs `escalation:write`).
pub async fn create(app: &App, actor: &Actor, input: NewPolicy) -> AppResult<EscalationPolicy> {
    let change = catalog::change::<EscalationPolicy>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::new_name::<EscalationPolicy>(&mut e, &input.name);
    if input.description.chars().count() > MAX_DESCRIPTION {
        e.add(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        );
    }
    e.into_result()?;
    app.store
        .write(move |tx| {
            let mut e = FieldErrors::new();
            check_policy(tx, &mut e, &input.steps, input.repeat)?;
            e.into_result()?;
            catalog::create(tx, &change, |id| EscalationPolicy {
                id,
                name: name.clone(),
                description: input.description.trim().to_owned(),
                steps: input.steps.clone(),
                repeat: input.repeat,
                created_at: change.at,
                updated_at: change.at,
            })
        })
        .await
}

/// One policy (needs `escalation:read`).
pub fn get(app: &App, actor: &Actor, id: u64) -> AppResult<EscalationPolicy> {
    catalog::get(app, actor, id)
}

/// Policies in id order (needs `escalation:read`).
pub fn list(app: &App, actor: &Actor, page: PageRequest) -> AppResult<Page<EscalationPolicy>> {
    catalog::list(app, actor, page)
}

/// Changes a policy (needs `escalation:write`).
pub async fn update(
    app: &App,
    actor: &Actor,
    id: u64,
    patch: PolicyPatch,
) -> AppResult<EscalationPolicy> {
    let change = catalog::change::<EscalationPolicy>(app, actor)?;
    let mut e = FieldErrors::new();
    let name = catalog::patched_name::<EscalationPolicy>(&mut e, patch.name.as_deref());
    if patch
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        e.add(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        );
    }
    e.into_result()?;
    app.store
        .write(move |tx| {
            let before: EscalationPolicy = catalog::load(tx, id)?;
            let mut p = before.clone();
            if let Some(steps) = &patch.steps {
                p.steps = steps.clone();
            }
            if let Some(repeat) = patch.repeat {
                p.repeat = repeat;
            }
            if let Some(d) = &patch.description {
                p.description = d.trim().to_owned();
            }
            let mut e = FieldErrors::new();
            check_policy(tx, &mut e, &p.steps, p.repeat)?;
            e.into_result()?;
            if let Some(name) = &name {
                p.name = name.clone();
            }
            catalog::save(tx, &change, &before, p)
        })
        .await
}

/// Deletes a policy (needs `escalation:write`) that no service, integration, routing
/// rule or open incident names.
pub async fn delete(app: &App, actor: &Actor, id: u64) -> AppResult<()> {
    let change = catalog::change::<EscalationPolicy>(app, actor)?;
    app.store
        .write(move |tx| {
            let p: EscalationPolicy = catalog::load(tx, id)?;
            if let Some(why) = crate::app::usage::of_policy(tx, id)? {
                return Err(AppError::Conflict(format!(
                    "escalation policy '{}' is still needed: {why}; change that first",
                    p.name
                )));
            }
            catalog::delete(tx, &change, &p)
        })
        .await
}
