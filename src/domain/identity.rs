//! Users, roles and groups: who exists, what they may do, which teams they are in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A person who can log in, be assigned incidents and be notified.
///
/// Stored as-is; `password_hash` never leaves the daemon (see [`UserView`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Positive integer id.
    pub id: u64,
    /// Unique login name, compared case-insensitively.
    pub username: String,
    /// Unique e-mail address; also how chat identities are mapped.
    pub email: String,
    /// The person's name as displayed.
    #[serde(default)]
    pub real_name: Option<String>,
    /// Organisational unit, free text.
    #[serde(default)]
    pub department: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role ids.
    #[serde(default)]
    pub role_ids: Vec<u64>,
    /// Group ids (team membership).
    #[serde(default)]
    pub group_ids: Vec<u64>,
    /// A deactivated user cannot log in and their tokens stop working.
    #[serde(default = "yes")]
    pub active: bool,
    /// Bumped when the password changes or the user is deactivated: tokens carrying an
    /// older value are refused.
    #[serde(default)]
    pub token_version: u64,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
}

fn yes() -> bool {
    true
}

/// A user as shown through the API: everything but the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: u64,
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub real_name: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Role names.
    pub roles: Vec<String>,
    /// Group ids.
    pub group_ids: Vec<u64>,
    /// Whether the user may log in.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A named set of permissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    /// Id.
    pub id: u64,
    /// Unique name (`Admin`, `Engineer`...).
    pub name: String,
    /// What the role is for.
    #[serde(default)]
    pub description: String,
    /// Permission names (`incident:write`) or `*`.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Shipped by a migration: may not be deleted or renamed; `Admin` may not be changed.
    #[serde(default)]
    pub builtin: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The role that holds every permission and must always have a member.
pub const ADMIN_ROLE: &str = "Admin";

/// A team: the unit that owns services and takes incident assignments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    /// Id.
    pub id: u64,
    /// Unique name.
    pub name: String,
    /// What the team does.
    #[serde(default)]
    pub description: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Why a username is not acceptable, if it is not.
pub fn check_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("may contain only letters, digits and . _ - @");
    }
    Ok(())
}

/// Why an e-mail address is not acceptable, if it is not. Deliberately loose: one `@`
/// with something on both sides and a dot in the domain.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    let Some((local, domain)) = email.split_once('@') else {
        return Err("must be an e-mail address");
    };
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || email.chars().any(char::is_whitespace)
        || email.len() > 254
    {
        return Err("must be an e-mail address");
    }
    Ok(())
}

/// Why a password is not acceptable, if it is not.
pub fn check_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < 8 {
        return Err("must be at least 8 characters");
    }
    if password.len() > 1024 {
        return Err("must be at most 1024 bytes");
    }
    if password.chars().all(char::is_whitespace) {
        return Err("must not be only spaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(check_username("alice").is_ok());
        assert!(check_username("a.b-c_d@x").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("with space").is_err());
        assert!(check_username(&"x".repeat(65)).is_err());
    }

    #[test]
    fn emails() {
        assert!(check_email("a@example.com").is_ok());
        for bad in ["", "a", "a@", "@b.c", "a@b", "a@@b.c", "a b@c.d"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
        assert!(check_password("密码密码密码密码").is_ok());
        assert_eq!(check_password("        "), Err("must not be only spaces"));
    }
}
