//! Authentication: the [`Authenticator`] trait, built-in HMAC-signed tokens ([`SignedTokens`]) and
//! [`FirstOf`], which lets a host keep kf's visitor tokens and plug in its own agent authentication.
//!
//! A token format of kf's own: `kf1.<payload>.<mac>`, where payload is base64url (no padding) of the JSON claims
//! `{"t": tenant, "r": "visitor" | "agent", "s": subject id, "exp": unix seconds}` and mac is base64url of
//! HMAC-SHA256(key, "kf1." + payload). Verification is constant-time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::limits::MIN_SIGNING_KEY_LEN;

use crate::clock::Clock;
use crate::model::{Actor, AgentId, TenantId, VisitorId};

/// Who is on the other end of a connection.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "role", content = "id", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Principal {
    /// A website visitor.
    Visitor(VisitorId),
    /// A support agent.
    Agent(AgentId),
}

impl Principal {
    /// The [`Actor`] this principal acts as in conversation logs.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Visitor(id) => Actor::Visitor(id.clone()),
            Principal::Agent(id) => Actor::Agent(id.clone()),
        }
    }
}

/// An authenticated principal of a tenant: what an [`Authenticator`] returns.
///
/// ```
/// use kf_core::auth::{Identity, Principal};
/// use kf_core::model::{AgentId, TenantId, VisitorId};
///
/// let shop = TenantId::new("shop").unwrap();
/// let visitor = Identity::visitor(shop.clone(), VisitorId::new("v1").unwrap());
/// let agent = Identity::new(shop, Principal::Agent(AgentId::new("alice").unwrap()));
/// assert_ne!(visitor, agent);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub struct Identity {
    /// The tenant.
    pub tenant: TenantId,
    /// The visitor or agent.
    pub principal: Principal,
}

impl Identity {
    /// `principal` of `tenant`.
    pub fn new(tenant: TenantId, principal: Principal) -> Self {
        Self { tenant, principal }
    }

    /// A visitor of `tenant`.
    pub fn visitor(tenant: TenantId, visitor: VisitorId) -> Self {
        Self::new(tenant, Principal::Visitor(visitor))
    }

    /// An agent of `tenant`.
    pub fn agent(tenant: TenantId, agent: AgentId) -> Self {
        Self::new(tenant, Principal::Agent(agent))
    }
}

/// Why a token was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not a token this authenticator understands (so another one may).
    #[error("unrecognized token format")]
    Unrecognized,
    /// The token has the right format but is damaged or its signature does not match.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// The token was valid but has expired.
    #[error("token expired")]
    Expired,
    /// A host authenticator refused the credentials.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The authenticator could not decide now (its backend is down); the client may retry.
    #[error("authentication unavailable: {0}")]
    Unavailable(String),
}

/// Turns a client's token into an [`Identity`]. Object safe; held as `Arc<dyn Authenticator>`.
#[async_trait]
pub trait Authenticator: Send + Sync + fmt::Debug + 'static {
    /// Checks a token. Return [`AuthError::Unrecognized`] for tokens of a format this authenticator does not
    /// handle, so that [`FirstOf`] can ask the next one.
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError>;
}

/// Tries authenticators in order; the first that recognizes the token decides.
#[derive(Debug, Clone, Default)]
pub struct FirstOf(Vec<Arc<dyn Authenticator>>);

impl FirstOf {
    /// An empty chain (refuses everything as unrecognized).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an authenticator at the end of the chain.
    pub fn with(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.0.push(authenticator);
        self
    }
}

#[async_trait]
impl Authenticator for FirstOf {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        for authenticator in &self.0 {
            match authenticator.authenticate(token).await {
                Err(AuthError::Unrecognized) => continue,
                decided => return decided,
            }
        }
        Err(AuthError::Unrecognized)
    }
}

const PREFIX: &str = "kf1.";

#[derive(Serialize, Deserialize)]
struct Claims {
    t: TenantId,
    r: Role,
    s: String,
    exp: u64,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Role {
    Visitor,
    Agent,
}

/// The signing key was shorter than [`MIN_SIGNING_KEY_LEN`] bytes.
#[derive(Debug, Error)]
#[error("a signing key must be at least {MIN_SIGNING_KEY_LEN} bytes")]
pub struct WeakKey;

/// Issues and verifies HMAC-SHA256 signed tokens for visitors and agents.
///
/// The host's backend calls [`SignedTokens::issue`] when a page loads (visitor) or an agent logs in, and hands the
/// token to the client; the engine verifies it on `hello`.
#[derive(Clone)]
pub struct SignedTokens {
    key: Arc<[u8]>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SignedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedTokens")
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

impl SignedTokens {
    /// Uses `key` (at least 32 random bytes, kept secret) and `clock` for expiry.
    pub fn new(key: &[u8], clock: Arc<dyn Clock>) -> Result<Self, WeakKey> {
        if key.len() < MIN_SIGNING_KEY_LEN {
            return Err(WeakKey);
        }
        Ok(Self {
            key: Arc::from(key),
            clock,
        })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }

    /// A token for `identity`, valid for `ttl`.
    pub fn issue(&self, identity: &Identity, ttl: Duration) -> String {
        let (r, s) = match &identity.principal {
            Principal::Visitor(id) => (Role::Visitor, id.as_str()),
            Principal::Agent(id) => (Role::Agent, id.as_str()),
        };
        let exp = self.clock.now().as_millis() / 1000 + ttl.as_secs();
        let claims = Claims {
            t: identity.tenant.clone(),
            r,
            s: s.to_owned(),
            exp,
        };
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let mut token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        token.push('.');
        token.push_str(&signature);
        token
    }

    /// Verifies a token's signature and expiry.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if !token.starts_with(PREFIX) {
            return Err(AuthError::Unrecognized);
        }
        let (signed, signature) = token
            .rsplit_once('.')
            .ok_or(AuthError::Invalid("missing signature"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::Invalid("bad signature encoding"))?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| AuthError::Invalid("signature mismatch"))?;
        // `signed` is what the signature covers: a signature that matches does not make it start with the
        // prefix (`kf1.<signature of "kf1">` signs the prefix without its dot).
        let payload = signed
            .strip_prefix(PREFIX)
            .ok_or(AuthError::Invalid("missing payload"))?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| AuthError::Invalid("bad payload encoding"))?;
        // The claims are a JSON object, as `issue` writes them (serde would read a struct from an array too).
        if payload.first() != Some(&b'{') {
            return Err(AuthError::Invalid("bad claims"));
        }
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| AuthError::Invalid("bad claims"))?;
        if claims.exp <= self.clock.now().as_millis() / 1000 {
            return Err(AuthError::Expired);
        }
        let principal = match claims.r {
            Role::Visitor => {
                Principal::Visitor(VisitorId::new(claims.s).map_err(|_| AuthError::Invalid("bad subject"))?)
            }
            Role::Agent => {
                Principal::Agent(AgentId::new(claims.s).map_err(|_| AuthError::Invalid("bad subject"))?)
            }
        };
        Ok(Identity {
            tenant: claims.t,
            principal,
        })
    }
}

impl SignedTokens {
    /// A keyed tag of `message` for `purpose` (HMAC-SHA256 with the signing key, base64url): a value only this
    /// key can make, for secrets derived from public ids (the widget's anonymous visitor keys). Purposes are
    /// kept apart from each other and from tokens.
    pub fn tag(&self, purpose: &str, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.tag_mac(purpose, message).finalize().into_bytes())
    }

    /// Whether `tag` is [`SignedTokens::tag`] of `message` for `purpose` (constant-time).
    pub fn verify_tag(&self, purpose: &str, message: &str, tag: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(tag)
            .is_ok_and(|tag| self.tag_mac(purpose, message).verify_slice(&tag).is_ok())
    }

    fn tag_mac(&self, purpose: &str, message: &str) -> HmacSha256 {
        let mut mac = self.mac();
        // Never a prefix of a token (`kf1.`), and the purpose cannot run into the message.
        mac.update(b"kf-tag\0");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(message.as_bytes());
        mac
    }
}

#[async_trait]
impl Authenticator for SignedTokens {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify(token)
    }
}

impl SignedTokens {
    /// Signs with the key kept in the file at `path`, made with fresh random bytes on the first run (see
    /// [`signing_key::load_or_create`](crate::signing_key::load_or_create)). The directory must exist.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use kf_core::{auth::SignedTokens, clock::SystemClock};
    /// let tokens = SignedTokens::from_key_file("data/signing.key", Arc::new(SystemClock))?;
    /// # Ok::<(), kf_core::signing_key::KeyFileError>(())
    /// ```
    pub fn from_key_file(
        path: impl AsRef<std::path::Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, crate::signing_key::KeyFileError> {
        let key = crate::signing_key::load_or_create(path.as_ref())?;
        Ok(Self {
            key: Arc::from(key.as_slice()),
            clock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::model::Timestamp;

    fn identity() -> Identity {
        Identity {
            tenant: TenantId::new("shop").expect("id"),
            principal: Principal::Visitor(VisitorId::new("v-1").expect("id")),
        }
    }

    #[test]
    fn tags_verify_only_for_their_purpose_and_message() {
        let tokens = SignedTokens::new(&[7; 32], Arc::new(ManualClock::new(Timestamp(0)))).expect("key");
        let other = SignedTokens::new(&[8; 32], Arc::new(ManualClock::new(Timestamp(0)))).expect("key");
        let tag = tokens.tag("visitor", "shop\0v-1");
        assert!(tokens.verify_tag("visitor", "shop\0v-1", &tag));
        assert!(!tokens.verify_tag("visitor", "shop\0v-2", &tag));
        assert!(!tokens.verify_tag("agent", "shop\0v-1", &tag));
        assert!(!other.verify_tag("visitor", "shop\0v-1", &tag));
        assert!(!tokens.verify_tag("visitor", "shop\0v-1", "not base64!"));
        assert!(!tokens.verify_tag("visitor", "shop\0v-1", ""));
    }

    #[test]
    fn round_trip_and_expiry() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let tokens = SignedTokens::new(&[7; 32], clock.clone()).expect("key");
        let token = tokens.issue(&identity(), Duration::from_secs(60));
        assert_eq!(tokens.verify(&token).expect("valid"), identity());
        clock.advance(Duration::from_secs(59));
        assert!(tokens.verify(&token).is_ok());
        clock.advance(Duration::from_secs(1));
        assert!(matches!(tokens.verify(&token), Err(AuthError::Expired)));
    }

    #[test]
    fn forgeries_are_refused() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let tokens = SignedTokens::new(&[7; 32], clock.clone()).expect("key");
        let other = SignedTokens::new(&[8; 32], clock).expect("key");
        let token = tokens.issue(&identity(), Duration::from_secs(60));
        assert!(matches!(other.verify(&token), Err(AuthError::Invalid(_))));
        // Swap in the claims of an agent but keep the visitor's signature.
        let agent = Identity {
            principal: Principal::Agent(AgentId::new("boss").expect("id")),
            ..identity()
        };
        let agent_token = other.issue(&agent, Duration::from_secs(60));
        let (_, signature) = token.rsplit_once('.').expect("dot");
        let (claims, _) = agent_token.rsplit_once('.').expect("dot");
        assert!(matches!(
            tokens.verify(&format!("{claims}.{signature}")),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(tokens.verify("kf1.garbage"), Err(AuthError::Invalid(_))));
        assert!(matches!(tokens.verify("kf1..."), Err(AuthError::Invalid(_))));
        assert!(matches!(
            tokens.verify("Bearer xyz"),
            Err(AuthError::Unrecognized)
        ));
        assert!(SignedTokens::new(&[1; 31], Arc::new(ManualClock::new(Timestamp(0)))).is_err());
    }

    /// A signature is checked before the payload is read, so only the key's holder can reach the payload: but
    /// what it signed need not start with `kf1.`. `kf1.<mac of "kf1">` signs `kf1` (the prefix without its dot);
    /// it once made the payload's slice panic (found by the `token` fuzz target).
    #[test]
    fn a_signed_text_shorter_than_the_prefix_is_invalid() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let tokens = SignedTokens::new(&[7; 32], clock).expect("key");
        for signed in ["kf1", "kf", ""] {
            let mut mac = tokens.mac();
            mac.update(signed.as_bytes());
            let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
            match tokens.verify(&token) {
                Err(AuthError::Invalid(_) | AuthError::Unrecognized) => {}
                other => panic!("{token}: {other:?}"),
            }
        }
    }

    #[derive(Debug)]
    struct Agents;

    #[async_trait]
    impl Authenticator for Agents {
        async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
            match token.strip_prefix("agent:") {
                Some(id) => Ok(Identity {
                    tenant: TenantId::new("shop").expect("id"),
                    principal: Principal::Agent(
                        AgentId::new(id).map_err(|e| AuthError::Rejected(e.to_string()))?,
                    ),
                }),
                None => Err(AuthError::Unrecognized),
            }
        }
    }

    #[tokio::test]
    async fn first_of_lets_hosts_plug_their_own() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let tokens = SignedTokens::new(&[7; 32], clock).expect("key");
        let token = tokens.issue(&identity(), Duration::from_secs(60));
        let chain = FirstOf::new().with(Arc::new(tokens)).with(Arc::new(Agents));
        assert_eq!(chain.authenticate(&token).await.expect("visitor"), identity());
        let agent = chain.authenticate("agent:alice").await.expect("agent");
        assert_eq!(
            agent.principal,
            Principal::Agent(AgentId::new("alice").expect("id"))
        );
        assert!(matches!(
            chain.authenticate("other").await,
            Err(AuthError::Unrecognized)
        ));
        assert!(matches!(
            chain.authenticate("kf1.x.y").await,
            Err(AuthError::Invalid(_))
        ));
    }
}
