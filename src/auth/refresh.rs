//! Rotating refresh tokens.
//!
//! A login starts a *family*; each refresh rotates it to a new generation and the old
//! token stops working. Presenting an old generation again means the token was copied: the
//! whole family is revoked (OAuth 2.0 Security BCP, refresh token rotation). Only a SHA-256
//! of the secret part is stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A refresh-token family as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFamily {
    /// Id.
    pub id: u64,
    /// Whose.
    pub user_id: u64,
    /// Current generation; only a token of this generation is accepted.
    pub generation: u64,
    /// SHA-256 (hex) of the current secret.
    pub secret_hash: String,
    /// The user's token version at login; a password change invalidates the family.
    pub token_version: u64,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// No refresh after this.
    pub expires_at: DateTime<Utc>,
    /// Revoked after reuse was detected or on logout.
    pub revoked: bool,
}

/// A refresh token taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Family id.
    pub family: u64,
    /// Generation.
    pub generation: u64,
    /// The secret part.
    pub secret: String,
}

impl RefreshToken {
    /// The wire form, `rt.<family>.<generation>.<secret>`.
    pub fn encode(&self) -> String {
        format!("rt.{}.{}.{}", self.family, self.generation, self.secret)
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<RefreshToken> {
        let mut parts = s.trim().split('.');
        if parts.next()? != "rt" {
            return None;
        }
        let family = parts.next()?.parse().ok()?;
        let generation = parts.next()?.parse().ok()?;
        let secret = parts.next()?.to_owned();
        if parts.next().is_some()
            || secret.len() != 64
            || !secret.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(RefreshToken {
            family,
            generation,
            secret,
        })
    }
}

/// What presenting a token to its family means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The current token: rotate.
    Current,
    /// An older generation: the token leaked; revoke the family.
    Reused,
    /// Wrong secret, revoked, expired or stale: refuse.
    Invalid,
}

impl RefreshFamily {
    /// Judges `token` against this family at `now` for a user at `token_version`.
    pub fn judge(&self, token: &RefreshToken, now: DateTime<Utc>, token_version: u64) -> Presented {
        if self.revoked || now >= self.expires_at || token_version != self.token_version {
            return Presented::Invalid;
        }
        if token.generation < self.generation {
            return Presented::Reused;
        }
        let hash = super::secret::sha256_hex(&token.secret);
        if token.generation == self.generation
            && super::secret::constant_time_eq(hash.as_bytes(), self.secret_hash.as_bytes())
        {
            Presented::Current
        } else {
            Presented::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::secret::{random_hex, sha256_hex};

    fn family(secret: &str) -> RefreshFamily {
        let now = Utc::now();
        RefreshFamily {
            id: 1,
            user_id: 2,
            generation: 3,
            secret_hash: sha256_hex(secret),
            token_version: 0,
            created_at: now,
            expires_at: now + chrono::Duration::hours(1),
            revoked: false,
        }
    }

    #[test]
    fn wire_form_round_trips() {
        let t = RefreshToken {
            family: 9,
            generation: 4,
            secret: random_hex(32),
        };
        assert_eq!(RefreshToken::parse(&t.encode()), Some(t));
        for bad in ["", "rt.1.2", "rt.x.1.abc", "xx.1.1.00", "rt.1.1.zz"] {
            assert_eq!(RefreshToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn judging() {
        let secret = random_hex(32);
        let f = family(&secret);
        let now = Utc::now();
        let current = RefreshToken {
            family: 1,
            generation: 3,
            secret: secret.clone(),
        };
        assert_eq!(f.judge(&current, now, 0), Presented::Current);
        let old = RefreshToken {
            family: 1,
            generation: 2,
            secret: secret.clone(),
        };
        assert_eq!(f.judge(&old, now, 0), Presented::Reused);
        let wrong = RefreshToken {
            family: 1,
            generation: 3,
            secret: random_hex(32),
        };
        assert_eq!(f.judge(&wrong, now, 0), Presented::Invalid);
        assert_eq!(
            f.judge(&current, now, 1),
            Presented::Invalid,
            "password changed"
        );
        assert_eq!(
            f.judge(&current, now + chrono::Duration::hours(2), 0),
            Presented::Invalid
        );
        let revoked = RefreshFamily { revoked: true, ..f };
        assert_eq!(revoked.judge(&current, now, 0), Presented::Invalid);
    }
}
