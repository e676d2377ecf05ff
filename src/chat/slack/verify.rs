//! Slack request signing (v0): `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">`
//! keyed by the signing secret, with `X-Slack-Request-Timestamp` at most five minutes off.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from now.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing or malformed.
    #[error("missing or malformed {0}")]
    Missing(&'static str),
    /// The timestamp is too old or in the future (replay).
    #[error("the request timestamp is more than five minutes off")]
    Stale,
    /// The signature does not match.
    #[error("the signature does not match")]
    BadSignature,
}

/// The signature Slack would send for `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a request's signature and freshness at `now` (seconds since the epoch).
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let ts = timestamp.ok_or(VerifyError::Missing("X-Slack-Request-Timestamp"))?;
    let when: i64 = ts
        .trim()
        .parse()
        .map_err(|_| VerifyError::Missing("X-Slack-Request-Timestamp"))?;
    let given = signature.ok_or(VerifyError::Missing("X-Slack-Signature"))?;
    if now.abs_diff(when) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let expected = sign(secret, ts.trim(), body);
    if crate::auth::secret::constant_time_eq(expected.as_bytes(), given.trim().as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_documentation_example() {
        // https://api.slack.com/authentication/verifying-requests-from-slack
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(sign(secret, "1531420618", body), sig);
        assert_eq!(
            verify(secret, Some("1531420618"), Some(sig), body, 1531420618 + 60),
            Ok(())
        );
        assert_eq!(
            verify(
                secret,
                Some("1531420618"),
                Some(sig),
                body,
                1531420618 + 301
            ),
            Err(VerifyError::Stale)
        );
        let mut tampered = body.to_vec();
        tampered[0] = b'T';
        assert_eq!(
            verify(secret, Some("1531420618"), Some(sig), &tampered, 1531420618),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(secret, None, Some(sig), body, 0),
            Err(VerifyError::Missing("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            verify(secret, Some("1531420618"), None, body, 1531420618),
            Err(VerifyError::Missing("X-Slack-Signature"))
        );
        for extreme in ["-9223372036854775808", "9223372036854775807"] {
            assert_eq!(
                verify(secret, Some(extreme), Some(sig), body, 1531420618),
                Err(VerifyError::Stale),
                "{extreme}"
            );
        }
    }
}
