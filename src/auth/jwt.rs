//! HS256 access tokens.
//!
//! A token names the user and the user's `token_version`; the API loads the user on every
//! request, so a password change, a deactivation or a role change takes effect at once.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519 `sub`).
    pub sub: String,
    /// The user's token version when issued.
    pub ver: u64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Issuer, always `incidentd`.
    pub iss: String,
    /// The login session (refresh family) the token belongs to: logging out, or a stolen
    /// refresh token being reused, ends the session and with it this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<u64>,
}

const ISSUER: &str = "incidentd";

/// Signs and checks access tokens with one secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys([redacted])")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// Bad signature, wrong algorithm, malformed.
    #[error("the token is invalid")]
    Invalid,
}

impl TokenKeys {
    /// Keys for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // Expiry is checked in `verify` against the daemon's clock, the one `issue` used:
        // jsonwebtoken would read the system clock.
        validation.validate_exp = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for `user_id` at `token_version` in login session `session`, valid from
    /// `now` for `ttl_secs`.
    pub fn issue(
        &self,
        user_id: u64,
        token_version: u64,
        session: u64,
        now: i64,
        ttl_secs: u64,
    ) -> Result<String, TokenError> {
        let claims = Claims {
            sub: user_id.to_string(),
            ver: token_version,
            iat: now,
            exp: now + i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
            iss: ISSUER.into(),
            sid: Some(session),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)
    }

    /// The claims of a valid token unexpired at `now` (seconds, the clock `issue` was
    /// given).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| TokenError::Invalid)?;
        if claims.exp < now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn issue_and_verify() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let t = keys.issue(7, 2, 3, now(), 60).expect("issue");
        let c = keys.verify(&t, now()).expect("valid");
        assert_eq!((c.sub.as_str(), c.ver, c.sid), ("7", 2, Some(3)));
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let old = keys.issue(7, 0, 3, now() - 7200, 60).expect("issue");
        assert_eq!(keys.verify(&old, now()), Err(TokenError::Expired));
        // Expiry is read on the clock given, not the system's.
        assert!(keys.verify(&old, now() - 7200).is_ok());
        let good = keys.issue(7, 0, 3, now(), 60).expect("issue");
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert_eq!(
            keys.verify(&parts.join("."), now()),
            Err(TokenError::Invalid)
        );
        let other = TokenKeys::new(b"another-secret-another-secret-xx");
        assert_eq!(other.verify(&good, now()), Err(TokenError::Invalid));
        assert_eq!(keys.verify("garbage", now()), Err(TokenError::Invalid));
    }
}
