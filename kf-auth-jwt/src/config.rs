//! The configuration of a [`JwtAuthenticator`](crate::JwtAuthenticator), as data: deserialize it from the host's
//! own configuration file (JSON, TOML…) or build it in code.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The clock skew allowed by default on `exp` and `nbf`: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The largest clock skew a configuration may allow: 5 minutes.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The shortest HS256 secret accepted, in bytes (the size of the hash, as RFC 7518 §3.2 asks).
pub const MIN_SECRET_LEN: usize = 32;

/// A signature algorithm kf accepts in JWTs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (an RSA public key of at least 2048 bits).
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl JwtAlgorithm {
    /// Every algorithm kf accepts.
    pub const ALL: [JwtAlgorithm; 3] = [JwtAlgorithm::HS256, JwtAlgorithm::RS256, JwtAlgorithm::ES256];

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            JwtAlgorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            JwtAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            JwtAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }

    /// The algorithm named `name` in a JWT header or a JWK's `alg`, if kf accepts it.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(JwtAlgorithm::HS256),
            "RS256" => Some(JwtAlgorithm::RS256),
            "ES256" => Some(JwtAlgorithm::ES256),
            _ => None,
        }
    }
}

fn all_algorithms() -> Vec<JwtAlgorithm> {
    JwtAlgorithm::ALL.to_vec()
}

fn default_leeway_secs() -> u64 {
    DEFAULT_LEEWAY.as_secs()
}

/// One value or a list of them (`"aud": "kf"` or `"aud": ["kf", "chat"]`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several; any of them matches.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values.
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(value) => vec![value.clone()],
            OneOrMany::Many(values) => values.clone(),
        }
    }
}

impl From<&str> for OneOrMany {
    fn from(value: &str) -> Self {
        OneOrMany::One(value.to_owned())
    }
}

/// How a JWT is checked and turned into a kf [`Identity`](kf_core::auth::Identity).
///
/// ```
/// let config: kf_auth_jwt::JwtConfig = serde_json::from_str(r#"{
///     "issuer": "https://id.shop.example/",
///     "audience": "kf",
///     "keys": [{"kid": "2026-12", "hs256_secret": "a shared secret of at least thirty-two bytes"}],
///     "claims": {"tenant": {"value": "shop"}, "role": {"claim": "kf_role", "default": "visitor"}}
/// }"#)?;
/// assert_eq!(config.leeway_secs, 60);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JwtConfig {
    /// The required `iss`: a token of any other issuer, or of none, is refused.
    pub issuer: OneOrMany,
    /// The required `aud`: the token's audience (one value or a list) must hold one of these.
    pub audience: OneOrMany,
    /// The algorithms accepted (default: all of [`JwtAlgorithm::ALL`]). Each key is used only with its own
    /// algorithm whatever this says; this narrows which keys count.
    #[serde(default = "all_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// The clock skew allowed on `exp` and `nbf`, in seconds: default [`DEFAULT_LEEWAY`], at most
    /// [`MAX_LEEWAY`]. A token is valid from `nbf - leeway` until just before `exp + leeway`.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Keys given one by one.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// A JSON Web Key Set (`{"keys": [...]}`), as the issuer publishes it. Fetching it is the host's job; replace
    /// it at run time with [`JwtAuthenticator::set_jwks`](crate::JwtAuthenticator::set_jwks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Which claims give the subject, the role and the tenant.
    #[serde(default)]
    pub claims: ClaimMapping,
}

impl JwtConfig {
    /// A configuration for tokens of `issuer` for `audience`, with no keys yet, the default leeway and claims.
    pub fn new(issuer: impl Into<OneOrMany>, audience: impl Into<OneOrMany>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: all_algorithms(),
            leeway_secs: default_leeway_secs(),
            keys: Vec::new(),
            jwks: None,
            claims: ClaimMapping::default(),
        }
    }

    /// Adds a key.
    pub fn key(mut self, key: KeyConfig) -> Self {
        self.keys.push(key);
        self
    }

    /// Sets the JWKS document.
    pub fn jwks(mut self, jwks: serde_json::Value) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Sets the leeway.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway_secs = leeway.as_secs();
        self
    }

    /// Sets the claim mapping.
    pub fn claims(mut self, claims: ClaimMapping) -> Self {
        self.claims = claims;
        self
    }

    /// Sets the accepted algorithms.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = JwtAlgorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }
}

/// A verification key: `{"kid": "...", "hs256_secret": "..."}`, `{"kid": "...", "rsa_pem": "-----BEGIN PUBLIC
/// KEY-----\n..."}`…
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyConfig {
    /// The key id a token names in its header (`kid`). A token without `kid` is checked with every key of its
    /// algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The key itself.
    #[serde(flatten)]
    pub material: KeyMaterial,
}

impl KeyConfig {
    /// `material` named `kid`.
    pub fn new(kid: Option<&str>, material: KeyMaterial) -> Self {
        Self {
            kid: kid.map(str::to_owned),
            material,
        }
    }
}

/// What a key is made of; the algorithm follows from it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyMaterial {
    /// An HS256 secret, its UTF-8 bytes (at least [`MIN_SECRET_LEN`]).
    Hs256Secret(String),
    /// An HS256 secret in base64 (standard or URL-safe alphabet, padding optional).
    Hs256SecretBase64(String),
    /// An RS256 public key in PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`) or a certificate.
    RsaPem(String),
    /// An ES256 public key (P-256) in PEM (`BEGIN PUBLIC KEY`) or a certificate.
    EcPem(String),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMaterial::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
            KeyMaterial::Hs256SecretBase64(_) => f.write_str("Hs256SecretBase64(<redacted>)"),
            KeyMaterial::RsaPem(pem) => f.debug_tuple("RsaPem").field(pem).finish(),
            KeyMaterial::EcPem(pem) => f.debug_tuple("EcPem").field(pem).finish(),
        }
    }
}

/// The role a token gives: a visitor, or an agent of a [`Role`](kf_core::auth::Role) (`agent`, `supervisor`,
/// `admin`; the last two are agents with more rights, see `docs/admin.md`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JwtRole {
    /// A website visitor.
    Visitor,
    /// A support agent (who must also be known to the engine).
    Agent,
    /// An agent with the supervisor role: reads every conversation of its tenant.
    Supervisor,
    /// An agent with the admin role: also administers its tenant.
    Admin,
}

/// Where a value of the identity comes from: a claim of the token, else a default.
///
/// `{"claim": "role"}`: the claim, required; `{"value": "visitor"}`: always this value, whatever the token says;
/// `{"claim": "role", "default": "visitor"}`: the claim when the token has it, else the default.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct ClaimSource<T> {
    /// The claim's name (top level of the payload; a name with dots or slashes is one name, as in
    /// `https://shop.example/role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// The value when the claim is absent (or when no claim is named).
    #[serde(default, alias = "value", skip_serializing_if = "Option::is_none")]
    pub default: Option<T>,
}

impl<T> ClaimSource<T> {
    /// Read from `claim`, required.
    pub fn claim(claim: &str) -> Self {
        Self {
            claim: Some(claim.to_owned()),
            default: None,
        }
    }

    /// Always `value`.
    pub fn value(value: T) -> Self {
        Self {
            claim: None,
            default: Some(value),
        }
    }

    /// Read from `claim`, `default` when the token does not have it.
    pub fn claim_or(claim: &str, default: T) -> Self {
        Self {
            claim: Some(claim.to_owned()),
            default: Some(default),
        }
    }
}

fn default_subject() -> String {
    "sub".to_owned()
}

/// Which claims of a JWT give kf's identity.
///
/// Default: the subject from `sub`, the role from `kf_role` (`"visitor"`, `"agent"`, `"supervisor"`, `"admin"`),
/// the tenant from `kf_tenant` — all required. A single-tenant host says `"tenant": {"value": "shop"}`; an issuer of agents
/// only, `"role": {"value": "agent"}`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClaimMapping {
    /// The claim holding the visitor's or agent's id (a string, or an integer taken as its decimal digits).
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Where the role comes from.
    #[serde(default = "ClaimMapping::default_role")]
    pub role: ClaimSource<JwtRole>,
    /// Where the tenant comes from.
    #[serde(default = "ClaimMapping::default_tenant")]
    pub tenant: ClaimSource<String>,
}

impl ClaimMapping {
    fn default_role() -> ClaimSource<JwtRole> {
        ClaimSource::claim("kf_role")
    }

    fn default_tenant() -> ClaimSource<String> {
        ClaimSource::claim("kf_tenant")
    }

    /// Sets the subject's claim.
    pub fn subject(mut self, claim: &str) -> Self {
        self.subject = claim.to_owned();
        self
    }

    /// Sets where the role comes from.
    pub fn role(mut self, role: ClaimSource<JwtRole>) -> Self {
        self.role = role;
        self
    }

    /// Sets where the tenant comes from.
    pub fn tenant(mut self, tenant: ClaimSource<String>) -> Self {
        self.tenant = tenant;
        self
    }
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject: default_subject(),
            role: Self::default_role(),
            tenant: Self::default_tenant(),
        }
    }
}
