//! Payload signatures: `X-Kf-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! The timestamp is the time of the attempt (each retry is signed anew), and it is inside the MAC, so a receiver
//! that checks it against its own clock refuses a captured request replayed later. The recommended window is
//! [`REPLAY_WINDOW`] (5 minutes) either way; within it, the delivery id (`X-Kf-Delivery`, also the payload's
//! `id`) lets the receiver drop what it already handled — which it must do anyway, since delivery is
//! at-least-once. Compare the MAC in constant time ([`verify`] does). A receiver may see several `v1=` values
//! during a secret rotation in the future; accept the request when any of them matches.
//!
//! ```
//! use kf_webhooks::signature::{sign, verify, REPLAY_WINDOW};
//!
//! let body = br#"{"id":"sub:1","type":"message.created"}"#;
//! let header = sign(b"a-shared-secret-16+", 1_718_000_000, body);
//! assert!(header.starts_with("t=1718000000,v1="));
//! // The receiver: secret, header, raw body (before any JSON parsing), its own clock.
//! verify(b"a-shared-secret-16+", &header, body, 1_718_000_042, REPLAY_WINDOW).expect("valid");
//! assert!(verify(b"another-secret-16+", &header, body, 1_718_000_042, REPLAY_WINDOW).is_err());
//! assert!(verify(b"a-shared-secret-16+", &header, body, 1_718_000_000 + 600, REPLAY_WINDOW).is_err());
//! ```

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The signature header's name.
pub const HEADER: &str = "X-Kf-Signature";

/// How far a signature's timestamp may be from the receiver's clock (either way) in the recommended check.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// The header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex(&tag))
}

/// Why [`verify`] refused a signature.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The header is not `t=…,v1=…`.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is outside the window around `now`.
    #[error("signature timestamp outside the replay window")]
    Expired,
    /// No `v1` MAC matches.
    #[error("signature mismatch")]
    Mismatch,
}

/// Checks a signature header against the raw `body`, the shared `secret` and the receiver's clock `now` (Unix
/// seconds): the timestamp must be within `window` of `now`, and a `v1` MAC must match (compared in constant
/// time).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    window: Duration,
) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value.parse::<u64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", value)) => tags.push(unhex(value).ok_or(VerifyError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    if tags.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if now.abs_diff(timestamp) > window.as_secs() {
        return Err(VerifyError::Expired);
    }
    let expected = mac(secret, timestamp, body);
    if tags.iter().any(|tag| expected.clone().verify_slice(tag).is_ok()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_vector_and_tampering() {
        // HMAC-SHA256("secret", "1.{}"), computed independently (Python's hmac module).
        let header = sign(b"secret", 1, b"{}");
        assert_eq!(
            header,
            "t=1,v1=1122767b193110cfec322b6f199b599edbf608ed087f2d27afb0b97d99523908"
        );
        assert_eq!(verify(b"secret", &header, b"{}", 1, REPLAY_WINDOW), Ok(()));
        assert_eq!(
            verify(b"secret", &header, b"{ }", 1, REPLAY_WINDOW),
            Err(VerifyError::Mismatch)
        );
        let shifted = header.replace("t=1,", "t=2,");
        assert_eq!(
            verify(b"secret", &shifted, b"{}", 2, REPLAY_WINDOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", "v1=zz", b"{}", 1, REPLAY_WINDOW),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify(b"secret", "t=1", b"{}", 1, REPLAY_WINDOW),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify(b"secret", &header, b"{}", 302, REPLAY_WINDOW),
            Err(VerifyError::Expired)
        );
    }
}
