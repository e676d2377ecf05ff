//! What still names a user, a group or an escalation policy.
//!
//! Deleting one that something names would leave an escalation policy paging nobody (and
//! refusing every later edit of it, since its targets no longer exist), a schedule with a
//! gap nobody sees, an approval level nobody can pass, or an open incident assigned to
//! nobody. So a delete is refused (409) naming the first thing that still uses the object,
//! as services, schedules and roles already are; deactivating a user is how someone leaves
//! without rewriting the history that names them.

use chrono::{DateTime, Utc};

use crate::domain::approval::{ApprovalWorkflow, Approver};
use crate::domain::escalation::{EscalationPolicy, EscalationTarget};
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::integration::Integration;
use crate::domain::notification::{NotificationRule, Target};
use crate::domain::problem::Problem;
use crate::domain::schedule::Schedule;
use crate::domain::service::Service;
use crate::domain::silence::RoutingRule;
use crate::domain::transition::Lifecycle;
use crate::store::StoreError;
use crate::store::access::{self, Order, Reader};
use crate::store::tables::{self, incident_field as field};

/// The first open incident indexed under `(field, value)`.
fn open_incident_under(r: &impl Reader, f: u8, value: u64) -> Result<Option<Incident>, StoreError> {
    let prefix = crate::store::keys::Key::new().u8(f).u64(value).into_bytes();
    for id in access::ids_with_prefix(r, tables::INCIDENT_INDEX, &prefix, usize::MAX)? {
        if let Some(i) = access::get::<Incident>(r, id)?
            && i.status.is_open()
        {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The first escalation policy with a level paging `target`.
fn policy_paging(r: &impl Reader, target: &EscalationTarget) -> Result<Option<String>, StoreError> {
    let policies = access::list::<EscalationPolicy>(r, None, Order::Asc, usize::MAX)?;
    Ok(policies
        .into_iter()
        .find(|p| p.steps.iter().any(|s| s.targets.contains(target)))
        .map(|p| format!("escalation policy '{}' pages it", p.name)))
}

/// The first notification rule sending to `target`.
fn rule_notifying(r: &impl Reader, target: &Target) -> Result<Option<String>, StoreError> {
    let rules = access::list::<NotificationRule>(r, None, Order::Asc, usize::MAX)?;
    Ok(rules
        .into_iter()
        .find(|n| n.targets.contains(target))
        .map(|n| format!("notification rule '{}' notifies it", n.name)))
}

/// The first approval workflow with `approver` on a level.
fn workflow_asking(r: &impl Reader, approver: &Approver) -> Result<Option<String>, StoreError> {
    let workflows = access::list::<ApprovalWorkflow>(r, None, Order::Asc, usize::MAX)?;
    if let Some(w) = workflows
        .into_iter()
        .find(|w| w.levels.iter().any(|l| l.approvers.contains(approver)))
    {
        return Ok(Some(format!("approval workflow '{}' asks it", w.name)));
    }
    // A pending request decides by the levels it was made with, even if its workflow
    // changed since.
    Ok(super::approvals::pending_asking(r, approver)?
        .map(|req| format!("pending approval {} asks it", req.number())))
}

/// What still names user `id` (at `now`, for schedule overrides), if anything.
pub(crate) fn of_user(
    r: &impl Reader,
    id: u64,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    if let Some(i) = open_incident_under(r, field::ASSIGNEE, id)? {
        return Ok(Some(format!(
            "open incident {} is assigned to it",
            i.number()
        )));
    }
    let problems = access::list::<Problem>(r, None, Order::Asc, usize::MAX)?;
    if let Some(p) = problems
        .iter()
        .find(|p| p.status.is_open() && p.assignee_id == Some(id))
    {
        return Ok(Some(format!(
            "open problem {} is assigned to it",
            p.number()
        )));
    }
    if let Some(why) = policy_paging(r, &EscalationTarget::User { id })? {
        return Ok(Some(why));
    }
    for s in access::list::<Schedule>(r, None, Order::Asc, usize::MAX)? {
        if let Some(l) = s.layers.iter().find(|l| l.users.contains(&id)) {
            return Ok(Some(format!(
                "layer '{}' of schedule '{}' rotates through it",
                l.name, s.name
            )));
        }
        if super::schedules::overrides_of(r, s.id, Some(now))?
            .iter()
            .any(|o| o.user_id == id)
        {
            return Ok(Some(format!(
                "an override of schedule '{}' is for it",
                s.name
            )));
        }
    }
    if let Some(why) = rule_notifying(r, &Target::User { id })? {
        return Ok(Some(why));
    }
    workflow_asking(r, &Approver::User { id })
}

/// What still names group `id`, if anything.
pub(crate) fn of_group(r: &impl Reader, id: u64) -> Result<Option<String>, StoreError> {
    if let Some(i) = open_incident_under(r, field::GROUP, id)? {
        return Ok(Some(format!(
            "open incident {} is assigned to it",
            i.number()
        )));
    }
    if let Some(why) = policy_paging(r, &EscalationTarget::Group { id })? {
        return Ok(Some(why));
    }
    if let Some(why) = rule_notifying(r, &Target::Group { id })? {
        return Ok(Some(why));
    }
    workflow_asking(r, &Approver::Group { id })
}

/// What still names escalation policy `id`, if anything: a service, integration or routing
/// rule that sends incidents to it, or an open incident escalating under it (deleting the
/// policy would stop that escalation without a word).
pub(crate) fn of_policy(r: &impl Reader, id: u64) -> Result<Option<String>, StoreError> {
    let services = access::list::<Service>(r, None, Order::Asc, usize::MAX)?;
    if let Some(s) = services.iter().find(|s| s.escalation_policy_id == Some(id)) {
        return Ok(Some(format!("service '{}' uses it", s.name)));
    }
    let integrations = access::list::<Integration>(r, None, Order::Asc, usize::MAX)?;
    if let Some(i) = integrations
        .iter()
        .find(|i| i.escalation_policy_id == Some(id))
    {
        return Ok(Some(format!("integration '{}' uses it", i.name)));
    }
    let rules = access::list::<RoutingRule>(r, None, Order::Asc, usize::MAX)?;
    if let Some(rule) = rules.iter().find(|x| x.escalation_policy_id == Some(id)) {
        return Ok(Some(format!("routing rule '{}' uses it", rule.name)));
    }
    escalating_under(r, id)
}

/// The first open incident that names policy `id`, if any: one still escalating under
/// it, or one somebody has in hand, which a manual escalation still pages through it
/// (PagerDuty, too, refuses to delete a policy with open incidents).
fn escalating_under(r: &impl Reader, id: u64) -> Result<Option<String>, StoreError> {
    for status in IncidentStatus::ALL.iter().filter(|s| s.is_open()) {
        let prefix = crate::store::keys::Key::new()
            .u8(field::STATUS)
            .u64(u64::from(status.code()))
            .into_bytes();
        for incident in access::ids_with_prefix(r, tables::INCIDENT_INDEX, &prefix, usize::MAX)? {
            if let Some(i) = access::get::<Incident>(r, incident)?
                && i.escalation_policy_id == Some(id)
            {
                let how = if *status == IncidentStatus::New {
                    "is escalating under it"
                } else {
                    "names it (a manual escalation pages through it)"
                };
                return Ok(Some(format!("open incident {} {how}", i.number())));
            }
        }
    }
    Ok(None)
}
