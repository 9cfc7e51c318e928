//! JWT authentication for the [kf](https://example.invalid/kf) live-chat engine: a host that already issues JSON
//! Web Tokens plugs its issuer in with configuration, not code.
//!
//! [`JwtAuthenticator`] is a kf [`Authenticator`]: it checks a JWT's signature (HS256 with a shared secret, RS256
//! or ES256 with public keys in PEM or a JWKS document), its issuer (`iss`), audience (`aud`), expiry (`exp`,
//! required) and not-before time (`nbf`) with a small clock skew ([`DEFAULT_LEEWAY`], 60 s), and maps its claims
//! to an [`Identity`] ([`ClaimMapping`]). A token that is not a JWT is [`AuthError::Unrecognized`], so it chains
//! with kf's own tokens in a [`FirstOf`](kf_core::auth::FirstOf):
//!
//! ```
//! use std::sync::Arc;
//! use kf_auth_jwt::{JwtAuthenticator, JwtConfig};
//! use kf_core::auth::{FirstOf, SignedTokens};
//! use kf_core::clock::SystemClock;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: JwtConfig = serde_json::from_str(r#"{
//!     "issuer": "https://id.shop.example/",
//!     "audience": "kf",
//!     "keys": [{"kid": "hs-1", "hs256_secret": "a shared secret of at least thirty-two bytes"}],
//!     "claims": {"tenant": {"value": "shop"}}
//! }"#)?;
//! let jwt = JwtAuthenticator::new(config, Arc::new(SystemClock))?;
//! let kf_tokens = SignedTokens::new(&[7; 32], Arc::new(SystemClock))?;
//! let authenticator = FirstOf::new().with(Arc::new(kf_tokens)).with(Arc::new(jwt));
//! // Engine::builder(store, Arc::new(authenticator))…
//! # let _ = authenticator;
//! # Ok(())
//! # }
//! ```
//!
//! Refusals (all answered `invalid_token` on the wire, except an expired token: `token_expired`; see
//! `docs/protocol.md` §5):
//!
//! | refusal | [`AuthError`] |
//! |---|---|
//! | not a JWT (not three base64url parts with a JSON header naming `alg`) | `Unrecognized` |
//! | `alg` not allowed, or not the algorithm of the key its `kid` names | `Invalid("algorithm not allowed")` |
//! | `kid` of no known key | `Invalid("unknown key id")` |
//! | no key of its algorithm | `Invalid("no key for this algorithm")` |
//! | signature does not verify with the key (any key of its algorithm, without `kid`) | `Invalid("signature mismatch")` |
//! | damaged (bad base64, JSON) | `Invalid("malformed token")` |
//! | `iss` missing or not the configured one | `Invalid("wrong issuer")` |
//! | `aud` missing or holding none of the configured ones | `Invalid("wrong audience")` |
//! | no `exp` (or not a number) | `Invalid("missing exp")` |
//! | `nbf` more than the leeway in the future | `Invalid("not yet valid")` |
//! | `exp` more than the leeway in the past | `Expired` |
//! | subject, role or tenant claim missing or not a valid id | `Invalid("bad subject")`, `Invalid("bad role")`, `Invalid("bad tenant")` |
//!
//! Key rotation at the issuer: give the new key beside the old one (or a JWKS with both); a token names its key
//! with `kid`. Replace the keys while running with [`JwtAuthenticator::set_jwks`] (the host fetches the JWKS,
//! on a timer or when a token names an unknown `kid`) or [`JwtAuthenticator::set_keys`].
//!
//! Times come from kf's [`Clock`], so tests control them.

#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
mod keys;

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode};
use kf_core::auth::{AuthError, Authenticator, Identity, Principal, Role};
use kf_core::clock::Clock;
use kf_core::model::{AgentId, TenantId, VisitorId};
use serde_json::{Map, Value};

pub use config::{
    ClaimMapping, ClaimSource, DEFAULT_LEEWAY, JwtAlgorithm, JwtConfig, JwtRole, KeyConfig, KeyMaterial,
    MAX_LEEWAY, MIN_SECRET_LEN, OneOrMany,
};
pub use error::ConfigError;
pub use keys::JwtKeys;

use keys::VerifyingKey;

/// Checks JWTs of one issuer (see the [crate documentation](crate)). Clones share their keys: a key set
/// replaced through one ([`JwtAuthenticator::set_jwks`]) is used by all.
#[derive(Clone)]
pub struct JwtAuthenticator {
    checks: Arc<Checks>,
    keys: Arc<RwLock<Arc<JwtKeys>>>,
    clock: Arc<dyn Clock>,
}

/// What does not change while running.
#[derive(Debug)]
struct Checks {
    issuers: Vec<String>,
    audiences: Vec<String>,
    algorithms: Vec<JwtAlgorithm>,
    leeway_secs: u64,
    claims: ClaimMapping,
    fixed_tenant: Option<TenantId>,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("checks", &self.checks)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl JwtAuthenticator {
    /// Checks `config` and builds its keys; `clock` gives the time for `exp` and `nbf`.
    pub fn new(config: JwtConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let non_empty = |values: Vec<String>, what| {
            if values.is_empty() || values.iter().any(String::is_empty) {
                Err(ConfigError::Missing(what))
            } else {
                Ok(values)
            }
        };
        let issuers = non_empty(config.issuer.values(), "issuer")?;
        let audiences = non_empty(config.audience.values(), "audience")?;
        if config.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithm);
        }
        if config.leeway_secs > MAX_LEEWAY.as_secs() {
            return Err(ConfigError::Leeway(config.leeway_secs));
        }
        let fixed_tenant = match (&config.claims.tenant.claim, &config.claims.tenant.default) {
            (_, Some(tenant)) => {
                Some(
                    TenantId::new(tenant.clone()).map_err(|error| ConfigError::Claims {
                        field: "tenant",
                        reason: error.to_string(),
                    })?,
                )
            }
            (None, None) => {
                return Err(ConfigError::Claims {
                    field: "tenant",
                    reason: "name a claim or a value".to_owned(),
                });
            }
            (Some(_), None) => None,
        };
        if config.claims.role.claim.is_none() && config.claims.role.default.is_none() {
            return Err(ConfigError::Claims {
                field: "role",
                reason: "name a claim or a value".to_owned(),
            });
        }
        let keys = JwtKeys::new(&config.keys, config.jwks.as_ref(), &config.algorithms)?;
        Ok(Self {
            checks: Arc::new(Checks {
                issuers,
                audiences,
                algorithms: config.algorithms,
                leeway_secs: config.leeway_secs,
                claims: config.claims,
                fixed_tenant,
            }),
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            clock,
        })
    }

    /// The keys in use.
    pub fn keys(&self) -> Arc<JwtKeys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces every key (for all clones). Build them with [`JwtKeys::new`].
    pub fn set_keys(&self, keys: JwtKeys) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    /// Replaces the keys that came from a JWKS by those of `jwks` (the JSON text the issuer publishes), keeping
    /// the keys given one by one. On an error nothing changes. Returns how many keys `jwks` gave.
    pub fn set_jwks(&self, jwks: &str) -> Result<usize, ConfigError> {
        let document: Value =
            serde_json::from_str(jwks).map_err(|error| ConfigError::Jwks(error.to_string()))?;
        let mut current = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let keys = current.with_jwks(&document, &self.checks.algorithms)?;
        let count = keys.from_jwks;
        *current = Arc::new(keys);
        Ok(count)
    }

    /// Verifies `token` and maps its claims to an identity.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = JwtHeader::sniff(token).ok_or(AuthError::Unrecognized)?;
        let algorithm = JwtAlgorithm::from_name(&header.alg)
            .filter(|algorithm| self.checks.algorithms.contains(algorithm))
            .ok_or(AuthError::Invalid("algorithm not allowed"))?;
        let keys = self.keys();
        let candidates: Vec<&VerifyingKey> = match &header.kid {
            Some(kid) => {
                let key = keys
                    .keys
                    .iter()
                    .find(|key| key.kid.as_deref() == Some(kid))
                    .ok_or(AuthError::Invalid("unknown key id"))?;
                if key.algorithm != algorithm {
                    return Err(AuthError::Invalid("algorithm not allowed"));
                }
                vec![key]
            }
            None => keys
                .keys
                .iter()
                .filter(|key| key.algorithm == algorithm)
                .collect(),
        };
        if candidates.is_empty() {
            return Err(AuthError::Invalid("no key for this algorithm"));
        }
        let validation = self.validation(algorithm);
        let mut claims = None;
        for key in candidates {
            match decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(error) => {
                    let refusal = match error.kind() {
                        ErrorKind::InvalidSignature | ErrorKind::Crypto(_) => continue,
                        ErrorKind::InvalidIssuer => "wrong issuer",
                        ErrorKind::InvalidAudience => "wrong audience",
                        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                            "iss" => "wrong issuer",
                            "aud" => "wrong audience",
                            _ => "missing exp",
                        },
                        ErrorKind::InvalidAlgorithm => "algorithm not allowed",
                        _ => "malformed token",
                    };
                    return Err(AuthError::Invalid(refusal));
                }
            }
        }
        let claims = claims.ok_or(AuthError::Invalid("signature mismatch"))?;
        self.check_times(&claims)?;
        self.identity(&claims)
    }

    fn validation(&self, algorithm: JwtAlgorithm) -> Validation {
        let mut validation = Validation::new(algorithm.jsonwebtoken());
        // Times are checked with kf's clock (`check_times`); presence of exp, iss and aud here.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&self.checks.issuers);
        validation.set_audience(&self.checks.audiences);
        validation
    }

    /// `exp` (required) and `nbf` (when present) against the clock, with the leeway: valid from `nbf - leeway`
    /// (inclusive) until `exp + leeway` (exclusive), in whole seconds.
    fn check_times(&self, claims: &Map<String, Value>) -> Result<(), AuthError> {
        let now = self.clock.now().as_millis() / 1000;
        let leeway = self.checks.leeway_secs;
        let exp = claims
            .get("exp")
            .and_then(numeric_date)
            .ok_or(AuthError::Invalid("missing exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = numeric_date(nbf).ok_or(AuthError::Invalid("malformed token"))?;
            if nbf > now.saturating_add(leeway) {
                return Err(AuthError::Invalid("not yet valid"));
            }
        }
        Ok(())
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
        let mapping = &self.checks.claims;
        let subject = claims
            .get(&mapping.subject)
            .and_then(|value| match value {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) if number.is_u64() || number.is_i64() => Some(number.to_string()),
                _ => None,
            })
            .ok_or(AuthError::Invalid("bad subject"))?;
        let role = match mapping.role.claim.as_ref().and_then(|claim| claims.get(claim)) {
            Some(value) => serde_json::from_value::<JwtRole>(value.clone())
                .map_err(|_| AuthError::Invalid("bad role"))?,
            None => mapping.role.default.ok_or(AuthError::Invalid("bad role"))?,
        };
        let from_claim = mapping.tenant.claim.as_ref().and_then(|claim| claims.get(claim));
        let tenant = match (from_claim, &self.checks.fixed_tenant) {
            (Some(Value::String(tenant)), _) => {
                TenantId::new(tenant.clone()).map_err(|_| AuthError::Invalid("bad tenant"))?
            }
            (Some(_), _) | (None, None) => return Err(AuthError::Invalid("bad tenant")),
            (None, Some(tenant)) => tenant.clone(),
        };
        let agent = |role: Role| -> Result<Identity, AuthError> {
            let agent = AgentId::new(subject.clone()).map_err(|_| AuthError::Invalid("bad subject"))?;
            Ok(Identity::new(tenant.clone(), Principal::Agent(agent)).with_role(role))
        };
        match role {
            JwtRole::Visitor => {
                let visitor =
                    VisitorId::new(subject.clone()).map_err(|_| AuthError::Invalid("bad subject"))?;
                Ok(Identity::new(tenant.clone(), Principal::Visitor(visitor)))
            }
            JwtRole::Agent => agent(Role::Agent),
            JwtRole::Supervisor => agent(Role::Supervisor),
            JwtRole::Admin => agent(Role::Admin),
        }
    }
}

/// A NumericDate (seconds, possibly with a fraction) as whole seconds; a negative one is 0.
fn numeric_date(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number
            .as_u64()
            .or_else(|| number.as_i64().map(|_| 0))
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.max(0.0) as u64)
            }),
        _ => None,
    }
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify(token)
    }
}

/// The header fields read before a key is chosen.
struct JwtHeader {
    alg: String,
    kid: Option<String>,
}

impl JwtHeader {
    /// The header of `token` if it looks like a JWT: three base64url parts, the first a JSON object with a string
    /// `alg`. Anything else is some other kind of token.
    fn sniff(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (header, _, _) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header = URL_SAFE_NO_PAD.decode(header).ok()?;
        let header: Map<String, Value> = serde_json::from_slice(&header).ok()?;
        let alg = header.get("alg")?.as_str()?.to_owned();
        let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
        Some(Self { alg, kid })
    }
}

#[cfg(test)]
mod tests;
