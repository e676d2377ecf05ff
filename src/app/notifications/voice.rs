//! What a key press during a notification call does: 1 acknowledges every incident the
//! call read out, as the user whose phone was called.

use crate::app::incidents;
use crate::app::{App, AppError, AppResult};
use crate::domain::identity::User;
use crate::domain::notification::{ChannelKind, ContactMethod, Delivery};
use crate::store::StoreError;
use crate::store::access::{self, Reader};
use crate::store::keys::Key;
use crate::store::tables::{self, delivery_field as field};

/// The user who answers the call of `d`: the one it was planned for, or, for a number a
/// rule names directly, the one active user whose enabled voice contact method it is (a
/// shared duty phone several people list answers as nobody: anyone could add it). A call
/// nobody answers as a user offers no key to press.
pub fn who_answers(r: &impl Reader, d: &Delivery) -> Result<Option<u64>, StoreError> {
    if d.channel != ChannelKind::Voice {
        return Ok(None);
    }
    if d.user_id.is_some() {
        return Ok(d.user_id);
    }
    let mut owners = std::collections::BTreeSet::new();
    for c in access::list::<ContactMethod>(r, None, access::Order::Asc, usize::MAX)? {
        if c.enabled
            && c.kind == ChannelKind::Voice
            && c.address == d.target
            && access::get::<User>(r, c.user_id)?.is_some_and(|u| u.active)
        {
            owners.insert(c.user_id);
        }
    }
    Ok(match owners.len() {
        1 => owners.pop_first(),
        _ => None,
    })
}

/// The incidents the call of `d` read out: its own, and those of the deliveries folded into
/// it when the rate limit made one call of several (voice calls are few: one per number
/// per rate-limit window, so reading the voice deliveries is cheap).
fn incidents_of_call(r: &impl Reader, d: &Delivery) -> Result<Vec<u64>, StoreError> {
    let mut out: Vec<u64> = d.incident_id.into_iter().collect();
    let voice = Key::new()
        .u8(field::CHANNEL)
        .u64(u64::from(ChannelKind::Voice.code()))
        .into_bytes();
    for id in access::ids_with_prefix(r, tables::DELIVERY_INDEX, &voice, usize::MAX)? {
        if let Some(other) = access::get::<Delivery>(r, id)?
            && other.collapsed_into == Some(d.id)
            && let Some(incident) = other.incident_id
            && !out.contains(&incident)
        {
            out.push(incident);
        }
    }
    Ok(out)
}

/// Handles the digits pressed during the call of delivery `delivery_id`; returns what the
/// call says next.
pub async fn key_press(app: &App, delivery_id: u64, digits: &str) -> AppResult<String> {
    let (d, user_id, incident_ids) = {
        let r = app.store.read()?;
        let d = access::get::<Delivery>(&r, delivery_id)?
            .filter(|d| d.channel == ChannelKind::Voice)
            .ok_or_else(|| AppError::not_found("call", delivery_id))?;
        let user = who_answers(&r, &d)?;
        let incidents = incidents_of_call(&r, &d)?;
        (d, user, incidents)
    };
    if digits.trim() != "1" {
        return Ok("That key does nothing. Goodbye.".into());
    }
    if incident_ids.is_empty() {
        return Ok("There is nothing to acknowledge. Goodbye.".into());
    }
    let Some(user_id) = user_id else {
        return Ok(
            "This number is not linked to a user, so it cannot acknowledge. Goodbye.".into(),
        );
    };
    let actor = match crate::app::users::actor_for_user(&app.store.read()?, user_id) {
        Ok(a) => a,
        Err(_) => return Ok("Your user cannot act any more. Goodbye.".into()),
    };
    let mut said = Vec::new();
    for incident_id in incident_ids {
        match incidents::acknowledge(
            app,
            &actor,
            incident_id,
            Some("acknowledged by phone".into()),
            // A key press answers a call about an incident that was open then.
            incidents::Reopen::Refused,
        )
        .await
        {
            Ok(_) => said.push(format!("Incident {incident_id} acknowledged.")),
            Err(AppError::Conflict(_)) => {
                let status = incidents::load(&app.store.read()?, incident_id)
                    .map(|i| i.status.as_str().replace('_', " "))
                    .unwrap_or_default();
                said.push(format!("Incident {incident_id} is already {status}."));
            }
            Err(AppError::Forbidden(_)) => {
                return Ok("You may not acknowledge incidents. Goodbye.".into());
            }
            Err(e) => {
                tracing::warn!(delivery = d.id, incident = incident_id, error = %e, "cannot acknowledge by phone");
                said.push(format!("Incident {incident_id} could not be acknowledged."));
            }
        }
    }
    said.push("Goodbye.".into());
    Ok(said.join(" "))
}
