//! Authentication: the [`Authenticator`] trait, built-in HMAC-signed tokens ([`SignedTokens`]) and
//! [`FirstOf`], which lets a host keep kf's visitor tokens and plug in its own agent authentication.
//!
//! A token format of kf's own: `kf1.<payload>.<mac>`, where payload is base64url (no padding) of the JSON claims
//! `{"t": tenant, "r": "visitor" | "agent", "s": subject id, "exp": unix seconds}`, plus `"role": "supervisor" |
//! "admin"` for an agent of that [`Role`] (absent: an agent) and mac is base64url of
//! HMAC-SHA256(key, "kf1." + payload). Verification is constant-time.
//!
//! With key rotation ([`TokenKeys`]), a token names the key that signed it: `kf2.<key id>.<payload>.<mac>`, mac
//! being HMAC-SHA256(key, "kf2." + key id + "." + payload). `kf1.` tokens still verify with any key of the ring.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
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
///
/// Equality and hashing look at who it is (tenant and principal), not at its [`Role`]: the same agent signed in
/// with a token of another role is the same participant, with the same connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Identity {
    /// The tenant.
    pub tenant: TenantId,
    /// The visitor or agent.
    pub principal: Principal,
    /// What an agent may do beyond its own conversations ([`Role::Agent`] for visitors, where it means nothing).
    pub role: Role,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.tenant == other.tenant && self.principal == other.principal
    }
}

impl Eq for Identity {}

impl std::hash::Hash for Identity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.tenant.hash(state);
        self.principal.hash(state);
    }
}

impl Identity {
    /// `principal` of `tenant`, with the [`Role::Agent`] role.
    pub fn new(tenant: TenantId, principal: Principal) -> Self {
        Self {
            tenant,
            principal,
            role: Role::Agent,
        }
    }

    /// The same identity with `role`.
    #[must_use]
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
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

/// What an agent may do in its tenant, each role all that the one before may:
///
/// - `agent`: its own conversations and those routing gives its groups;
/// - `supervisor`: also reads every conversation of the tenant and the live monitor (it still writes only in
///   conversations assigned to it);
/// - `admin`: also changes the tenant's settings (the admin API) and reads the audit log.
///
/// Tokens that name no role are agents'. Ordered: `Agent < Supervisor < Admin`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A support agent.
    #[default]
    Agent,
    /// Oversees a tenant's agents and conversations.
    Supervisor,
    /// Administers a tenant.
    Admin,
}

impl Role {
    /// Whether this is [`Role::Agent`].
    pub fn is_agent(&self) -> bool {
        *self == Role::Agent
    }

    /// The role's name, as tokens and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(role: &str) -> Result<Self, Self::Err> {
        match role {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}: agent, supervisor or admin")),
        }
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
const KEYED_PREFIX: &str = "kf2.";

/// The longest [`KeyId`], in bytes.
pub const MAX_KEY_ID_LEN: usize = 32;

#[derive(Serialize, Deserialize)]
struct Claims {
    t: TenantId,
    r: Kind,
    s: String,
    exp: u64,
    /// An agent's role; absent for agents (and in every token made before roles).
    #[serde(default, skip_serializing_if = "Role::is_agent")]
    role: Role,
}

/// Whom a token is for (the `r` claim).
#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Visitor,
    Agent,
}

/// The signing key was shorter than [`MIN_SIGNING_KEY_LEN`] bytes.
#[derive(Debug, Error)]
#[error("a signing key must be at least {MIN_SIGNING_KEY_LEN} bytes")]
pub struct WeakKey;

/// A key ring could not be built as asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// A key id is empty, longer than [`MAX_KEY_ID_LEN`] or holds a character other than an ASCII letter, a
    /// digit, `-` or `_`.
    #[error("bad key id {0:?}: 1 to {MAX_KEY_ID_LEN} ASCII letters, digits, '-' or '_'")]
    BadKeyId(String),
    /// The key of this id is shorter than [`MIN_SIGNING_KEY_LEN`] bytes.
    #[error("key {0}: a signing key must be at least {MIN_SIGNING_KEY_LEN} bytes")]
    Weak(KeyId),
    /// Two keys have this id.
    #[error("two keys have the id {0}")]
    Duplicate(KeyId),
    /// The current key (the one that signs) cannot be retired: make another key current first.
    #[error("key {0} signs new tokens and cannot be retired; make another key current first")]
    RetiringCurrent(KeyId),
}

/// The name of a signing key, carried in the tokens it signs so that the verifier picks the key without trying
/// them all: 1 to [`MAX_KEY_ID_LEN`] ASCII letters, digits, `-` or `_` (a date does well: `2026-12`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Checks `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, KeyRingError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= MAX_KEY_ID_LEN
            && id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if valid {
            Ok(Self(id))
        } else {
            Err(KeyRingError::BadKeyId(id))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for KeyId {
    type Err = KeyRingError;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Self::new(id)
    }
}

#[derive(Clone)]
struct Key {
    /// `None`: a key of a ring without ids ([`TokenKeys::unnamed`]), which signs `kf1.` tokens.
    id: Option<KeyId>,
    secret: Arc<[u8]>,
}

impl Key {
    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        match HmacSha256::new_from_slice(&self.secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }

    /// Whether `signature` (base64url) is this key's MAC of `signed` (constant-time).
    fn signed(&self, signed: &str, signature: &[u8]) -> bool {
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(signature).is_ok()
    }
}

/// The keys of [`SignedTokens`], for key rotation: one **current** key that signs new tokens, any number of
/// **accepted** keys that still verify the tokens they signed, and **retired** ids whose tokens are refused.
///
/// A key with an id signs tokens `kf2.<id>.<payload>.<mac>`: the verifier takes the key of that id (the id is
/// covered by the MAC). Tokens from before key ids (`kf1.<payload>.<mac>`) verify with any key of the ring, so
/// they keep working for as long as the key that signed them is in the ring under some id.
///
/// Rotation, on every node that verifies tokens (see `docs/architecture.md`, "Authentication"):
/// 1. add the new key as accepted (`accept`), everywhere — nobody signs with it yet;
/// 2. make it current and the old one accepted — new tokens carry the new id, old ones still verify;
/// 3. once the longest-lived token signed with the old key has expired, retire it (`retire`, or just leave it
///    out): its tokens are refused with `invalid_token`.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use kf_core::auth::{Identity, KeyId, SignedTokens, TokenKeys};
/// use kf_core::clock::SystemClock;
/// use kf_core::model::{TenantId, VisitorId};
///
/// let old = KeyId::new("2026-06")?;
/// let new = KeyId::new("2026-12")?;
/// let before = SignedTokens::with_keys(TokenKeys::new(old.clone(), &[1; 32])?, Arc::new(SystemClock));
/// let visitor = Identity::visitor(TenantId::new("shop")?, VisitorId::new("v-1")?);
/// let token = before.issue(&visitor, Duration::from_secs(3600));
///
/// // During the rotation: the new key signs, the old one still verifies.
/// let during = TokenKeys::new(new.clone(), &[2; 32])?.accept(old.clone(), &[1; 32])?;
/// let tokens = SignedTokens::with_keys(during.clone(), Arc::new(SystemClock));
/// assert_eq!(tokens.verify(&token)?, visitor);
///
/// // After it: the old key is retired.
/// tokens.set_keys(during.retire(&old)?);
/// assert!(tokens.verify(&token).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TokenKeys {
    current: Key,
    accepted: Vec<Key>,
    retired: Vec<KeyId>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("current", &self.current.id)
            .field(
                "accepted",
                &self.accepted.iter().map(|key| &key.id).collect::<Vec<_>>(),
            )
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// A ring whose current key is `secret` (at least [`MIN_SIGNING_KEY_LEN`] random bytes, kept secret), named
    /// `id` in the tokens it signs.
    pub fn new(id: KeyId, secret: &[u8]) -> Result<Self, KeyRingError> {
        if secret.len() < MIN_SIGNING_KEY_LEN {
            return Err(KeyRingError::Weak(id));
        }
        Ok(Self {
            current: Key {
                id: Some(id),
                secret: Arc::from(secret),
            },
            accepted: Vec::new(),
            retired: Vec::new(),
        })
    }

    /// A ring of one key without an id, which signs `kf1.` tokens (what [`SignedTokens::new`] uses): tokens as
    /// kf made them before key ids.
    pub fn unnamed(secret: &[u8]) -> Result<Self, WeakKey> {
        if secret.len() < MIN_SIGNING_KEY_LEN {
            return Err(WeakKey);
        }
        Ok(Self {
            current: Key {
                id: None,
                secret: Arc::from(secret),
            },
            accepted: Vec::new(),
            retired: Vec::new(),
        })
    }

    /// Also accepts tokens signed by `secret` under `id` (and `kf1.` tokens it signed), without signing with it.
    /// A key whose id was [retired](TokenKeys::retire) stays refused.
    pub fn accept(mut self, id: KeyId, secret: &[u8]) -> Result<Self, KeyRingError> {
        if secret.len() < MIN_SIGNING_KEY_LEN {
            return Err(KeyRingError::Weak(id));
        }
        if self.ids().any(|known| *known == id) {
            return Err(KeyRingError::Duplicate(id));
        }
        self.accepted.push(Key {
            id: Some(id),
            secret: Arc::from(secret),
        });
        Ok(self)
    }

    /// Refuses the tokens of key `id` from now on (`invalid_token`, "retired key"), whether or not the ring holds
    /// its secret. The current key cannot be retired.
    pub fn retire(mut self, id: &KeyId) -> Result<Self, KeyRingError> {
        if self.current.id.as_ref() == Some(id) {
            return Err(KeyRingError::RetiringCurrent(id.clone()));
        }
        self.accepted.retain(|key| key.id.as_ref() != Some(id));
        if !self.retired.contains(id) {
            self.retired.push(id.clone());
        }
        Ok(self)
    }

    /// The id of the key that signs new tokens (`None` for an [unnamed](TokenKeys::unnamed) ring).
    pub fn current(&self) -> Option<&KeyId> {
        self.current.id.as_ref()
    }

    /// The ids of the keys that verify tokens, the current one first.
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.verifying().filter_map(|key| key.id.as_ref())
    }

    /// The ids retired.
    pub fn retired(&self) -> &[KeyId] {
        &self.retired
    }

    /// The keys that verify, the current one first (retired ones are never among them).
    fn verifying(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(
            self.accepted
                .iter()
                .filter(|key| key.id.as_ref().is_none_or(|id| !self.retired.contains(id))),
        )
    }

    fn find(&self, id: &KeyId) -> Result<&Key, AuthError> {
        if self.retired.contains(id) {
            return Err(AuthError::Invalid("retired key"));
        }
        self.verifying()
            .find(|key| key.id.as_ref() == Some(id))
            .ok_or(AuthError::Invalid("unknown key id"))
    }
}

/// Issues and verifies HMAC-SHA256 signed tokens for visitors and agents.
///
/// The host's backend calls [`SignedTokens::issue`] when a page loads (visitor) or an agent logs in, and hands the
/// token to the client; the engine verifies it on `hello`. Its keys ([`TokenKeys`]) may change while it runs
/// ([`SignedTokens::set_keys`]): every clone sees the change.
#[derive(Clone)]
pub struct SignedTokens {
    keys: Arc<RwLock<Arc<TokenKeys>>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SignedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedTokens")
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

impl SignedTokens {
    /// Uses `key` (at least 32 random bytes, kept secret) and `clock` for expiry. Tokens carry no key id
    /// (`kf1.`); use [`SignedTokens::with_keys`] for rotation.
    pub fn new(key: &[u8], clock: Arc<dyn Clock>) -> Result<Self, WeakKey> {
        Ok(Self::with_keys(TokenKeys::unnamed(key)?, clock))
    }

    /// Signs with the current key of `keys` and verifies with every key it accepts.
    pub fn with_keys(keys: TokenKeys, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            clock,
        }
    }

    /// The keys in use.
    pub fn keys(&self) -> Arc<TokenKeys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the keys, for this value and all its clones (the engine's authenticator, the widget's issuer):
    /// a rotation without a restart. Tokens being checked meanwhile use the old keys or the new ones.
    pub fn set_keys(&self, keys: TokenKeys) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    /// A token for `identity`, valid for `ttl`, signed with the current key.
    pub fn issue(&self, identity: &Identity, ttl: Duration) -> String {
        let (r, s) = match &identity.principal {
            Principal::Visitor(id) => (Kind::Visitor, id.as_str()),
            Principal::Agent(id) => (Kind::Agent, id.as_str()),
        };
        let exp = self.clock.now().as_millis() / 1000 + ttl.as_secs();
        let claims = Claims {
            t: identity.tenant.clone(),
            r,
            s: s.to_owned(),
            exp,
            role: identity.role,
        };
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let keys = self.keys();
        let key = &keys.current;
        let mut token = match &key.id {
            None => format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json)),
            Some(id) => format!("{KEYED_PREFIX}{id}.{}", URL_SAFE_NO_PAD.encode(json)),
        };
        let mut mac = key.mac();
        mac.update(token.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        token.push('.');
        token.push_str(&signature);
        token
    }

    /// Verifies a token's signature and expiry: `kf2.<key id>.<payload>.<mac>` with the key of that id,
    /// `kf1.<payload>.<mac>` with any key of the ring.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let keyed = token.starts_with(KEYED_PREFIX);
        if !keyed && !token.starts_with(PREFIX) {
            return Err(AuthError::Unrecognized);
        }
        let (signed, signature) = token
            .rsplit_once('.')
            .ok_or(AuthError::Invalid("missing signature"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::Invalid("bad signature encoding"))?;
        let keys = self.keys();
        // `signed` is what the signature covers: a signature that matches does not make it start with the
        // prefix (`kf1.<signature of "kf1">` signs the prefix without its dot).
        let payload = if keyed {
            let id = token[KEYED_PREFIX.len()..]
                .split_once('.')
                .map(|(id, _)| id)
                .ok_or(AuthError::Invalid("missing key id"))?;
            let id = KeyId::new(id).map_err(|_| AuthError::Invalid("bad key id"))?;
            if !keys.find(&id)?.signed(signed, &signature) {
                return Err(AuthError::Invalid("signature mismatch"));
            }
            signed
                .strip_prefix(KEYED_PREFIX)
                .and_then(|rest| rest.strip_prefix(id.as_str()))
                .and_then(|rest| rest.strip_prefix('.'))
                .ok_or(AuthError::Invalid("missing payload"))?
        } else {
            if !keys.verifying().any(|key| key.signed(signed, &signature)) {
                return Err(AuthError::Invalid("signature mismatch"));
            }
            signed
                .strip_prefix(PREFIX)
                .ok_or(AuthError::Invalid("missing payload"))?
        };
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
            Kind::Visitor if !claims.role.is_agent() => {
                return Err(AuthError::Invalid("a visitor has no role"));
            }
            Kind::Visitor => {
                Principal::Visitor(VisitorId::new(claims.s).map_err(|_| AuthError::Invalid("bad subject"))?)
            }
            Kind::Agent => {
                Principal::Agent(AgentId::new(claims.s).map_err(|_| AuthError::Invalid("bad subject"))?)
            }
        };
        Ok(Identity::new(claims.t, principal).with_role(claims.role))
    }
}

impl SignedTokens {
    /// A keyed tag of `message` for `purpose` (HMAC-SHA256 with the current signing key, base64url): a value only
    /// this key can make, for secrets derived from public ids (the widget's anonymous visitor keys). Purposes are
    /// kept apart from each other and from tokens.
    pub fn tag(&self, purpose: &str, message: &str) -> String {
        let keys = self.keys();
        URL_SAFE_NO_PAD.encode(tag_mac(&keys.current, purpose, message).finalize().into_bytes())
    }

    /// Whether `tag` is [`SignedTokens::tag`] of `message` for `purpose` under any key the ring accepts
    /// (constant-time for each key).
    pub fn verify_tag(&self, purpose: &str, message: &str, tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        let keys = self.keys();
        keys.verifying()
            .any(|key| tag_mac(key, purpose, message).verify_slice(&tag).is_ok())
    }
}

fn tag_mac(key: &Key, purpose: &str, message: &str) -> HmacSha256 {
    let mut mac = key.mac();
    // Never a prefix of a token (`kf1.`, `kf2.`), and the purpose cannot run into the message.
    mac.update(b"kf-tag\0");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(message.as_bytes());
    mac
}

#[async_trait]
impl Authenticator for SignedTokens {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify(token)
    }
}

impl SignedTokens {
    /// Signs with the key kept in the file at `path`, made with fresh random bytes on the first run (see
    /// [`signing_key::load_or_create`](crate::signing_key::load_or_create)). The directory must exist. The key
    /// has no id (tokens are `kf1.`); name it in a [`TokenKeys`] to rotate it.
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
        let keys = TokenKeys {
            current: Key {
                id: None,
                secret: Arc::from(key.as_slice()),
            },
            accepted: Vec::new(),
            retired: Vec::new(),
        };
        Ok(Self::with_keys(keys, clock))
    }
}

#[cfg(test)]
mod tests;
