//! What a key press during a notification call does: 1 acknowledges the incident, as the
//! user whose phone was called.

use crate::app::incidents;
use crate::app::{App, AppError, AppResult};
use crate::domain::notification::{ChannelKind, Delivery};
use crate::store::access;

/// Handles the digits pressed during the call of delivery `delivery_id`; returns what the
/// call says next.
pub async fn key_press(app: &App, delivery_id: u64, digits: &str) -> AppResult<String> {
    let d = access::get::<Delivery>(&app.store.read()?, delivery_id)?
        .filter(|d| d.channel == ChannelKind::Voice)
        .ok_or_else(|| AppError::not_found("call", delivery_id))?;
    if digits.trim() != "1" {
        return Ok("That key does nothing. Goodbye.".into());
    }
    let Some(incident_id) = d.incident_id else {
        return Ok("There is nothing to acknowledge. Goodbye.".into());
    };
    let Some(user_id) = d.user_id else {
        return Ok(
            "This number is not linked to a user, so it cannot acknowledge. Goodbye.".into(),
        );
    };
    let actor = match crate::app::users::actor_for_user(&app.store.read()?, user_id) {
        Ok(a) => a,
        Err(_) => return Ok("Your user cannot act any more. Goodbye.".into()),
    };
    match incidents::acknowledge(
        app,
        &actor,
        incident_id,
        Some("acknowledged by phone".into()),
    )
    .await
    {
        Ok(_) => Ok(format!("Incident {incident_id} acknowledged. Goodbye.")),
        Err(AppError::Conflict(_)) => {
            let status = incidents::load(&app.store.read()?, incident_id)
                .map(|i| i.status.as_str().replace('_', " "))
                .unwrap_or_default();
            Ok(format!(
                "Incident {incident_id} is already {status}. Goodbye."
            ))
        }
        Err(AppError::Forbidden(_)) => Ok("You may not acknowledge incidents. Goodbye.".into()),
        Err(e) => Err(e),
    }
}
