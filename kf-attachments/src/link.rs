//! Signed download links: `{base}/blob/{key}?expires={ms}&sig={HMAC}`. A link names one blob and when it stops
//! working; whoever holds it may download until then, so links are short-lived and handed out only to those who
//! may read the conversation (`/link/{attachment}`). An `<img src>` cannot send a token: the link is the
//! credential.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use kf_core::blob::BlobKey;
use kf_core::model::Timestamp;
use sha2::Sha256;

use crate::AttachmentError;

/// Signs and checks download links with one secret key.
#[derive(Clone)]
pub(crate) struct LinkSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner { .. }")
    }
}

impl LinkSigner {
    pub(crate) fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self, key: &BlobKey, expires: u64) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC; `new_from_slice` cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        };
        mac.update(b"kf-attachment-link\n");
        mac.update(key.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query of a link to `key` that works until `expires`.
    pub(crate) fn query(&self, key: &BlobKey, expires: Timestamp) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(key, expires.0).finalize().into_bytes());
        format!("expires={}&sig={sig}", expires.0)
    }

    /// Checks a link's signature and expiry at `now`.
    pub(crate) fn check(
        &self,
        key: &BlobKey,
        expires: u64,
        sig: &str,
        now: Timestamp,
    ) -> Result<(), AttachmentError> {
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| AttachmentError::BadLink("the link's signature is malformed".into()))?;
        self.mac(key, expires)
            .verify_slice(&sig)
            .map_err(|_| AttachmentError::BadLink("the link's signature does not match".into()))?;
        if now.0 >= expires {
            return Err(AttachmentError::BadLink(
                "the link has expired; ask for a new one".into(),
            ));
        }
        Ok(())
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // HMAC takes keys of every length (longer ones are hashed), so this is never reached.
    panic!("HMAC-SHA256 refused a key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_until_it_expires_and_only_for_its_blob() {
        let signer = LinkSigner::new(vec![7; 32]);
        let key = BlobKey::new("abc").expect("key");
        let query = signer.query(&key, Timestamp(1_000));
        let sig = query.split("sig=").nth(1).expect("sig");
        assert!(signer.check(&key, 1_000, sig, Timestamp(999)).is_ok());
        assert!(matches!(
            signer.check(&key, 1_000, sig, Timestamp(1_000)),
            Err(AttachmentError::BadLink(_))
        ));
        assert!(
            signer.check(&key, 2_000, sig, Timestamp(999)).is_err(),
            "a later expiry is not signed"
        );
        let other = BlobKey::new("abd").expect("key");
        assert!(signer.check(&other, 1_000, sig, Timestamp(999)).is_err());
        assert!(
            LinkSigner::new(vec![8; 32])
                .check(&key, 1_000, sig, Timestamp(999))
                .is_err()
        );
        assert!(signer.check(&key, 1_000, "%%%", Timestamp(999)).is_err());
    }
}
