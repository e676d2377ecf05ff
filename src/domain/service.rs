//! The service catalog: what incidents are about and who owns it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The service that exists from the first start and takes what nothing else routes.
pub const DEFAULT_SERVICE_ID: u64 = 1;

/// A business or technical service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Service {
    /// Id.
    pub id: u64,
    /// Unique name.
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// The team that owns it.
    #[serde(default)]
    pub owner_group_id: Option<u64>,
    /// Who is paged for its incidents.
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    /// Criticality tier, 1 (most critical) to 4.
    #[serde(default)]
    pub tier: Option<u8>,
    /// Slack channel where its incident cards go.
    #[serde(default)]
    pub chat_channel: Option<String>,
    /// Discord channel id where its incident cards go.
    #[serde(default)]
    pub discord_channel: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Why a tier is not acceptable, if it is not.
pub fn check_tier(tier: u8) -> Result<(), &'static str> {
    if (1..=4).contains(&tier) {
        Ok(())
    } else {
        Err("must be between 1 and 4")
    }
}

/// Why a Discord channel id is not acceptable, if it is not.
pub fn check_discord_channel(id: &str) -> Result<(), &'static str> {
    if super::notification::is_discord_id(id) {
        Ok(())
    } else {
        Err("must be a Discord channel id (digits)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers() {
        assert!(check_tier(0).is_err());
        assert!((1..=4).all(|t| check_tier(t).is_ok()));
        assert!(check_tier(5).is_err());
    }
}
