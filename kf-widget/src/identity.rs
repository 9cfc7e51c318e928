//! Who a widget visitor is: an anonymous visitor kept by a key only this server can make, or a host's user
//! whose id the host signed with the tenant's identity secret.

use hmac::{Hmac, Mac};
use kf_core::auth::SignedTokens;
use kf_core::model::{TenantId, VisitorId};
use sha2::{Digest, Sha256};

/// The purpose of anonymous visitor keys among [`SignedTokens::tag`]s.
const VISITOR_KEY: &str = "widget-visitor";

/// Longest user id a host may pass, in bytes.
pub(crate) const MAX_USER_ID_BYTES: usize = 256;

/// A fresh anonymous visitor id: `v-` and 24 random hex digits.
pub(crate) fn new_visitor_id() -> Result<VisitorId, getrandom::Error> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes)?;
    let id = format!("v-{}", hex(&bytes));
    Ok(VisitorId::new(id).unwrap_or_else(|_| unreachable!("hex digits make a valid id")))
}

/// The key that lets a browser come back as the anonymous visitor `visitor` of `tenant`.
pub(crate) fn visitor_key(tokens: &SignedTokens, tenant: &TenantId, visitor: &VisitorId) -> String {
    tokens.tag(VISITOR_KEY, &format!("{tenant}\0{visitor}"))
}

/// Whether `key` is [`visitor_key`] of that visitor.
pub(crate) fn is_visitor_key(
    tokens: &SignedTokens,
    tenant: &TenantId,
    visitor: &VisitorId,
    key: &str,
) -> bool {
    tokens.verify_tag(VISITOR_KEY, &format!("{tenant}\0{visitor}"), key)
}

/// Whether `user_hash` is the lowercase (or uppercase) hex HMAC-SHA256 of `user_id` with `secret`, as the
/// host computes it (constant-time).
pub(crate) fn is_user_hash(secret: &[u8], user_id: &str, user_hash: &str) -> bool {
    let Some(hash) = unhex(user_hash) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(user_id.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// The visitor id of a verified user: `u-` and 32 hex digits of SHA-256 of the user id. The same on every
/// device and browser; an anonymous visitor cannot get it (its ids start with `v-`, and only a key this server
/// made for an id brings a browser back to it); and it does not show the host's user id (often an email).
pub(crate) fn user_visitor_id(user_id: &str) -> VisitorId {
    let digest = Sha256::digest(user_id.as_bytes());
    let id = format!("u-{}", hex(&digest[..16]));
    VisitorId::new(id).unwrap_or_else(|_| unreachable!("hex digits make a valid id"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kf_core::clock::SystemClock;

    use super::*;

    #[test]
    fn user_hashes_are_hex_hmacs_of_the_user_id() {
        // RFC 4231, test case 2: what a host's HMAC-SHA256 library prints as hex.
        let vector = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert!(is_user_hash(b"Jefe", "what do ya want for nothing?", vector));
        let real = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").expect("key");
            mac.update(b"user-42");
            hex(&mac.finalize().into_bytes())
        };
        assert!(is_user_hash(b"secret", "user-42", &real));
        assert!(is_user_hash(b"secret", "user-42", &real.to_uppercase()));
        assert!(!is_user_hash(b"secret", "user-43", &real));
        assert!(!is_user_hash(b"other", "user-42", &real));
        assert!(!is_user_hash(b"secret", "user-42", vector));
        assert!(!is_user_hash(b"secret", "user-42", &real[..62]));
        assert!(!is_user_hash(b"secret", "user-42", "zz"));
        assert!(!is_user_hash(b"secret", "user-42", "é"));
        assert!(!is_user_hash(b"secret", "user-42", ""));
    }

    #[test]
    fn visitor_ids_and_keys() {
        let tokens = SignedTokens::new(&[1; 32], Arc::new(SystemClock)).expect("key");
        let shop = TenantId::new("shop").expect("id");
        let a = new_visitor_id().expect("random");
        let b = new_visitor_id().expect("random");
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("v-") && a.as_str().len() == 26);
        let key = visitor_key(&tokens, &shop, &a);
        assert!(is_visitor_key(&tokens, &shop, &a, &key));
        assert!(!is_visitor_key(&tokens, &shop, &b, &key));
        assert!(!is_visitor_key(
            &tokens,
            &TenantId::new("other").expect("id"),
            &a,
            &key
        ));
        let user = user_visitor_id("ada@shop.example");
        assert_eq!(user, user_visitor_id("ada@shop.example"));
        assert_ne!(user, user_visitor_id("bob@shop.example"));
        assert!(user.as_str().starts_with("u-") && user.as_str().len() == 34);
    }
}
