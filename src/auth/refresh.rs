//! Rotating refresh tokens.
//!
//! A login starts a *family*; each refresh rotates it to a new generation and the old
//! token stops working. Presenting an old generation again means the token was copied: the
//! whole family is revoked (OAuth 2.0 Security BCP, refresh token rotation). Only a SHA-256
//! of the secret part is stored, for the current generation and the last
//! [`RETIRED_KEPT`] ones: an old token counts as reused only if its secret is one that was
//! really issued, so that nobody can end a session by guessing its family id.

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
    /// The latest earlier generations, oldest first: what tells a copied token from a
    /// forged one.
    #[serde(default)]
    pub retired: Vec<RetiredSecret>,
}

/// How many earlier generations a family remembers (a copy older than that is refused
/// without revoking the family).
pub const RETIRED_KEPT: usize = 8;

/// An earlier generation of a family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredSecret {
    /// Its generation.
    pub generation: u64,
    /// SHA-256 (hex) of its secret.
    pub secret_hash: String,
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
        let hash = super::secret::sha256_hex(&token.secret);
        let matches =
            |stored: &str| super::secret::constant_time_eq(hash.as_bytes(), stored.as_bytes());
        if token.generation == self.generation && matches(&self.secret_hash) {
            return Presented::Current;
        }
        let issued_before = self
            .retired
            .iter()
            .any(|r| r.generation == token.generation && matches(&r.secret_hash));
        if token.generation < self.generation && issued_before {
            Presented::Reused
        } else {
            Presented::Invalid
        }
    }

    /// Moves the family to its next generation, whose secret hashes to `secret_hash`.
    pub fn rotate(&mut self, secret_hash: String) {
        self.retired.push(RetiredSecret {
            generation: self.generation,
            secret_hash: std::mem::replace(&mut self.secret_hash, secret_hash),
        });
        if self.retired.len() > RETIRED_KEPT {
            let excess = self.retired.len() - RETIRED_KEPT;
            self.retired.drain(..excess);
        }
        self.generation += 1;
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
            retired: vec![],
        }
    }

    fn token(generation: u64, secret: &str) -> RefreshToken {
        RefreshToken {
            family: 1,
            generation,
            secret: secret.to_owned(),
        }
    }

    #[test]
    fn only_a_secret_really_issued_counts_as_reused() {
        let first = random_hex(32);
        let mut f = family(&first);
        let now = Utc::now();
        let mut issued = vec![first];
        for _ in 0..RETIRED_KEPT + 2 {
            let next = random_hex(32);
            f.rotate(sha256_hex(&next));
            issued.push(next);
        }
        assert_eq!(f.generation, 3 + RETIRED_KEPT as u64 + 2);
        assert_eq!(f.retired.len(), RETIRED_KEPT);
        let current = issued.last().expect("issued").clone();
        assert_eq!(
            f.judge(&token(f.generation, &current), now, 0),
            Presented::Current
        );
        // The previous generations that are remembered: reuse.
        for back in 1..=RETIRED_KEPT as u64 {
            let g = f.generation - back;
            let secret = &issued[(g - 3) as usize];
            assert_eq!(
                f.judge(&token(g, secret), now, 0),
                Presented::Reused,
                "{back} back"
            );
        }
        // Older than that, or never issued: refused, nothing revoked.
        let oldest = f.generation - RETIRED_KEPT as u64 - 1;
        assert_eq!(
            f.judge(&token(oldest, &issued[(oldest - 3) as usize]), now, 0),
            Presented::Invalid
        );
        let forged = random_hex(32);
        for g in [0, f.generation - 1, f.generation, f.generation + 1] {
            assert_eq!(
                f.judge(&token(g, &forged), now, 0),
                Presented::Invalid,
                "{g}"
            );
        }
        // The current secret under another generation number is no token either.
        assert_eq!(
            f.judge(&token(f.generation - 1, &current), now, 0),
            Presented::Invalid
        );
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
        let mut rotated = f.clone();
        rotated.rotate(sha256_hex(&random_hex(32)));
        assert_eq!(rotated.judge(&current, now, 0), Presented::Reused);
        let unknown_old = RefreshToken {
            family: 1,
            generation: 2,
            secret: secret.clone(),
        };
        assert_eq!(f.judge(&unknown_old, now, 0), Presented::Invalid);
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
