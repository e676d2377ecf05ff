//! Discord's request signature: Ed25519 over the timestamp header followed by the raw
//! body, with the application's public key. Discord checks that an interactions endpoint
//! refuses bad signatures before it accepts the URL, and keeps testing it.

use ed25519_dalek::{Signature, VerifyingKey};

/// How old (or far in the future) a request may be, in seconds.
pub const WINDOW_SECS: i64 = 300;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The timestamp is not a number of seconds.
    #[error("bad X-Signature-Timestamp")]
    BadTimestamp,
    /// Outside the window (a replay).
    #[error("stale request (more than {WINDOW_SECS} s from now)")]
    Stale,
    /// Not 64 hex bytes.
    #[error("malformed X-Signature-Ed25519")]
    Malformed,
    /// Does not verify.
    #[error("bad signature")]
    Bad,
}

/// The verifying key in `hex`, or why it is not one.
pub fn public_key(hex_key: &str) -> Result<VerifyingKey, String> {
    let bytes = hex::decode(hex_key.trim())
        .map_err(|_| "must be the application's public key in hex".to_owned())?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "must be 32 bytes (64 hex characters)".to_owned())?;
    VerifyingKey::from_bytes(&arr).map_err(|_| "is not a valid Ed25519 public key".to_owned())
}

/// Checks a request's signature at `now` (seconds).
pub fn verify(
    key: &VerifyingKey,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let ts = timestamp.ok_or(VerifyError::Missing("X-Signature-Timestamp"))?;
    let sig = signature.ok_or(VerifyError::Missing("X-Signature-Ed25519"))?;
    let secs: i64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if now.abs_diff(secs) > WINDOW_SECS.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let raw: [u8; 64] = hex::decode(sig.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(VerifyError::Malformed)?;
    let signature = Signature::from_bytes(&raw);
    let mut message = Vec::with_capacity(ts.len() + body.len());
    message.extend_from_slice(ts.as_bytes());
    message.extend_from_slice(body);
    key.verify_strict(&message, &signature)
        .map_err(|_| VerifyError::Bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn keys() -> (SigningKey, VerifyingKey) {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let verifying = signing.verifying_key();
        (signing, verifying)
    }

    fn sign(k: &SigningKey, ts: &str, body: &[u8]) -> String {
        let mut m = ts.as_bytes().to_vec();
        m.extend_from_slice(body);
        hex::encode(k.sign(&m).to_bytes())
    }

    #[test]
    fn good_signatures_pass_and_everything_else_is_refused() {
        let (s, v) = keys();
        let body = br#"{"type":1}"#;
        let sig = sign(&s, "1700000000", body);
        assert_eq!(
            verify(&v, Some("1700000000"), Some(&sig), body, 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            verify(
                &v,
                Some("1700000000"),
                Some(&sig),
                b"{\"type\":2}",
                1_700_000_000
            ),
            Err(VerifyError::Bad)
        );
        assert_eq!(
            verify(&v, Some("1700000001"), Some(&sig), body, 1_700_000_000),
            Err(VerifyError::Bad),
            "the timestamp is signed too"
        );
        assert_eq!(
            verify(&v, Some("1700000000"), Some(&sig), body, 1_700_000_301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(&v, None, Some(&sig), body, 1_700_000_000),
            Err(VerifyError::Missing("X-Signature-Timestamp"))
        );
        assert_eq!(
            verify(&v, Some("1700000000"), None, body, 1_700_000_000),
            Err(VerifyError::Missing("X-Signature-Ed25519"))
        );
        assert_eq!(
            verify(&v, Some("soon"), Some(&sig), body, 1_700_000_000),
            Err(VerifyError::BadTimestamp)
        );
        for extreme in ["-9223372036854775808", "9223372036854775807"] {
            assert_eq!(
                verify(&v, Some(extreme), Some(&sig), body, 1_700_000_000),
                Err(VerifyError::Stale),
                "{extreme}"
            );
        }
        assert_eq!(
            verify(&v, Some("1700000000"), Some("abcd"), body, 1_700_000_000),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn public_keys_are_checked() {
        let (_, v) = keys();
        assert_eq!(public_key(&hex::encode(v.to_bytes())), Ok(v));
        assert!(public_key("zz").is_err());
        assert!(public_key("abcd").is_err());
    }
}
