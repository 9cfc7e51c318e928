//! What must hold for any input of a decoder that faces the network, whatever the input: the oracles of the
//! fuzz targets (`fuzz/`) and of the decoders' property tests. Each `check_…` function runs one decoder and
//! panics (a finding) when it answers in a way `docs/protocol.md` does not allow; a decoder that panics or hangs
//! is a finding by itself.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;

use crate::auth::{AuthError, Identity, SignedTokens};
use crate::clock::ManualClock;
use crate::cursor::Cursor;
use crate::limits::{MAX_CURSOR_POSITIONS, MAX_REQUEST_ID_LEN, MAX_SEQ};
use crate::model::Timestamp;
use crate::protocol::{ClientFrame, DecodeError, ErrorCode, Request, decode};

/// Decodes `text` as a client frame (`kf_core::protocol::decode`) and checks the outcome:
///
/// - an error has one of the decoding codes of protocol.md §3 and an id of at most 64 bytes;
/// - text that is not JSON, or JSON that is not an object, is `bad_json`;
/// - a decoded frame has a request id of at most 64 bytes and seqs of at most 2^53 − 1, and encodes back to a
///   text that decodes to the same request.
pub fn check_decode(text: &str) -> Result<Request, DecodeError> {
    let decoded = decode(text);
    match &decoded {
        Ok(request) => {
            assert!(
                request
                    .id
                    .as_ref()
                    .is_none_or(|id| id.len() <= MAX_REQUEST_ID_LEN)
            );
            if let ClientFrame::Subscribe { after: seq, .. } | ClientFrame::Read { seq, .. } = &request.frame
            {
                assert!(seq.0 <= MAX_SEQ, "seq {seq:?} above 2^53 - 1 decoded");
            }
            let Ok(mut value) = serde_json::to_value(&request.frame) else {
                panic!("{request:?} does not encode");
            };
            if let (Some(id), Value::Object(fields)) = (&request.id, &mut value) {
                fields.insert("id".into(), Value::String(id.clone()));
            }
            let again = decode(&value.to_string());
            assert_eq!(
                again.as_ref().ok(),
                Some(request),
                "round trip of {value}: {again:?}"
            );
        }
        Err(error) => {
            assert!(
                matches!(
                    error.code,
                    ErrorCode::BadJson | ErrorCode::UnknownType | ErrorCode::InvalidFrame
                ),
                "{error:?}"
            );
            assert!(error.id.as_ref().is_none_or(|id| id.len() <= MAX_REQUEST_ID_LEN));
            assert!(!error.message.is_empty());
            assert!(
                error.message.len() <= crate::protocol::MAX_DECODE_MESSAGE_BYTES,
                "a message of {} bytes",
                error.message.len()
            );
        }
    }
    match serde_json::from_str::<Value>(text) {
        Err(_) | Ok(Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_)) => {
            assert_eq!(
                decoded.as_ref().map_err(|error| error.code),
                Err(ErrorCode::BadJson),
                "not a JSON object"
            );
        }
        Ok(Value::Object(_)) => {}
    }
    decoded
}

/// The key of the token targets.
pub const KEY: [u8; 32] = [7; 32];

/// The time (ms since the epoch) of the token targets' clock.
pub const NOW_MS: u64 = 1_700_000_000_000;

/// The token authority of the token targets: [`KEY`] on a clock stopped at [`NOW_MS`].
pub fn tokens() -> SignedTokens {
    match SignedTokens::new(&KEY, Arc::new(ManualClock::new(Timestamp(NOW_MS)))) {
        Ok(tokens) => tokens,
        Err(error) => panic!("{error}"),
    }
}

/// `signed.<base64url of HMAC-SHA256(KEY, signed)>`: whatever `signed` is, a signature that matches.
pub fn sign(signed: &str) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&KEY) else {
        unreachable!("HMAC takes keys of any length");
    };
    mac.update(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// `kf1.<base64url of payload>`, signed: a token whose claims are `payload`, whatever it holds.
pub fn sign_payload(payload: &[u8]) -> String {
    sign(&format!("kf1.{}", URL_SAFE_NO_PAD.encode(payload)))
}

/// Verifies `token` and checks the refusal: a token without the `kf1.` or `kf2.` prefix is `Unrecognized` (so
/// that a host's authenticator may take it), and nothing else comes out but `Invalid`, `Expired` or an identity.
pub fn check_token(token: &str) -> Result<Identity, AuthError> {
    let verified = tokens().verify(token);
    let ours = token.starts_with("kf1.") || token.starts_with("kf2.");
    match &verified {
        Err(AuthError::Unrecognized) => assert!(!ours, "{token:?}"),
        Err(AuthError::Invalid(_) | AuthError::Expired) => assert!(ours),
        Err(other) => panic!("SignedTokens gave {other:?}"),
        // The oracle's key has no id: only `kf1.` tokens can verify.
        Ok(_) => assert!(token.starts_with("kf1.")),
    }
    verified
}

/// Parses `text` as a resume cursor and checks the outcome: at most [`MAX_CURSOR_POSITIONS`] positions, seqs
/// of at most 2^53 − 1, an encoding of URL-safe characters that parses back to the same cursor.
pub fn check_cursor(text: &str) -> Option<Cursor> {
    let cursor = Cursor::parse(text).ok()?;
    assert!(cursor.positions().len() <= MAX_CURSOR_POSITIONS);
    for (_, seq) in cursor.positions() {
        assert!(seq.0 <= MAX_SEQ, "{text:?}: seq {seq:?} above 2^53 - 1");
    }
    let encoded = cursor.encode();
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)),
        "{encoded}"
    );
    assert_eq!(
        Cursor::parse(&encoded).as_ref(),
        Ok(&cursor),
        "{text:?} → {encoded}"
    );
    Some(cursor)
}
