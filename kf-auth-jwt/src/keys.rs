//! Verification keys: built from [`KeyConfig`]s and JWKS documents, replaced as a whole at run time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};

use crate::config::{JwtAlgorithm, KeyConfig, KeyMaterial, MIN_SECRET_LEN};
use crate::error::ConfigError;

/// One verification key and the one algorithm it is used with.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) algorithm: JwtAlgorithm,
    pub(crate) key: DecodingKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The keys a [`JwtAuthenticator`](crate::JwtAuthenticator) verifies with: the ones given one by one and those
/// of a JWKS document. Build one with [`JwtKeys::new`] to replace them all at run time
/// ([`JwtAuthenticator::set_keys`](crate::JwtAuthenticator::set_keys)).
#[derive(Clone, Debug, Default)]
pub struct JwtKeys {
    pub(crate) keys: Vec<VerifyingKey>,
    /// How many keys came from the JWKS (at the end of `keys`).
    pub(crate) from_jwks: usize,
}

impl JwtKeys {
    /// The keys of `keys` and of the JWKS document `jwks`, restricted to `algorithms`. A key given one by one
    /// whose algorithm is not allowed is an error; a JWKS key for encryption, or of an algorithm or curve kf does
    /// not accept, is left out (issuers publish such keys beside their signing keys). Key ids must be unique.
    pub fn new(
        keys: &[KeyConfig],
        jwks: Option<&serde_json::Value>,
        algorithms: &[JwtAlgorithm],
    ) -> Result<Self, ConfigError> {
        let mut set = JwtKeys::default();
        for (index, config) in keys.iter().enumerate() {
            let key = from_config(config).map_err(|reason| ConfigError::Key {
                key: describe(index, config.kid.as_deref()),
                reason,
            })?;
            if !algorithms.contains(&key.algorithm) {
                return Err(ConfigError::Key {
                    key: describe(index, config.kid.as_deref()),
                    reason: format!("{:?} is not among the allowed algorithms", key.algorithm),
                });
            }
            set.push(key)?;
        }
        if let Some(jwks) = jwks {
            for key in from_jwks(jwks)? {
                if algorithms.contains(&key.algorithm) {
                    set.push(key)?;
                    set.from_jwks += 1;
                }
            }
        }
        Ok(set)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key (every JWT is then refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, in order (keys without an id are left out).
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|key| key.kid.as_deref())
    }

    fn push(&mut self, key: VerifyingKey) -> Result<(), ConfigError> {
        if let Some(kid) = &key.kid
            && self.kids().any(|known| known == kid)
        {
            return Err(ConfigError::DuplicateKid(kid.clone()));
        }
        self.keys.push(key);
        Ok(())
    }

    /// These keys with those from the JWKS replaced by the keys of `jwks`.
    pub(crate) fn with_jwks(
        &self,
        jwks: &serde_json::Value,
        algorithms: &[JwtAlgorithm],
    ) -> Result<Self, ConfigError> {
        let mut set = JwtKeys {
            keys: self.keys[..self.keys.len() - self.from_jwks].to_vec(),
            from_jwks: 0,
        };
        for key in from_jwks(jwks)? {
            if algorithms.contains(&key.algorithm) {
                set.push(key)?;
                set.from_jwks += 1;
            }
        }
        Ok(set)
    }
}

fn describe(index: usize, kid: Option<&str>) -> String {
    match kid {
        Some(kid) => format!("{kid:?}"),
        None => format!("#{}", index + 1),
    }
}

fn from_config(config: &KeyConfig) -> Result<VerifyingKey, String> {
    let (algorithm, key) = match &config.material {
        KeyMaterial::Hs256Secret(secret) => (JwtAlgorithm::HS256, secret_key(secret.as_bytes())?),
        KeyMaterial::Hs256SecretBase64(secret) => {
            let trimmed = secret.trim().trim_end_matches('=');
            let bytes = URL_SAFE_NO_PAD
                .decode(trimmed)
                .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
                .map_err(|_| "the secret is not base64".to_owned())?;
            (JwtAlgorithm::HS256, secret_key(&bytes)?)
        }
        KeyMaterial::RsaPem(pem) => (
            JwtAlgorithm::RS256,
            DecodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|error| format!("not an RSA public key: {error}"))?,
        ),
        KeyMaterial::EcPem(pem) => (
            JwtAlgorithm::ES256,
            DecodingKey::from_ec_pem(pem.as_bytes())
                .map_err(|error| format!("not an EC public key: {error}"))?,
        ),
    };
    Ok(VerifyingKey {
        kid: config.kid.clone(),
        algorithm,
        key,
    })
}

fn secret_key(secret: &[u8]) -> Result<DecodingKey, String> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "an HS256 secret must be at least {MIN_SECRET_LEN} bytes, this one has {}",
            secret.len()
        ));
    }
    Ok(DecodingKey::from_secret(secret))
}

/// The signing keys of a JWKS document that kf can use. Each key is read by itself, so that a key kf does not
/// know (another `kty`, an `alg` such as `RSA-OAEP`) does not spoil the others.
fn from_jwks(jwks: &serde_json::Value) -> Result<Vec<VerifyingKey>, ConfigError> {
    let keys = jwks
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| ConfigError::Jwks("a JWKS is an object with a \"keys\" array".to_owned()))?;
    let mut usable = Vec::new();
    for (index, value) in keys.iter().enumerate() {
        let named = |reason: String| {
            let kid = value.get("kid").and_then(serde_json::Value::as_str);
            ConfigError::Jwks(format!("key {}: {reason}", describe(index, kid)))
        };
        if value.get("use").and_then(serde_json::Value::as_str) == Some("enc") {
            continue;
        }
        // An `alg` kf does not accept (RS512, RSA-OAEP, EdDSA…): not a key for kf.
        if let Some(alg) = value.get("alg").and_then(serde_json::Value::as_str)
            && JwtAlgorithm::from_name(alg).is_none()
        {
            continue;
        }
        let kty = value.get("kty").and_then(serde_json::Value::as_str);
        if !matches!(kty, Some("RSA" | "EC" | "oct")) {
            continue;
        }
        let jwk: Jwk = serde_json::from_value(value.clone()).map_err(|error| named(error.to_string()))?;
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => JwtAlgorithm::RS256,
            (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                if ec.curve == EllipticCurve::P256 =>
            {
                JwtAlgorithm::ES256
            }
            (AlgorithmParameters::OctetKey(_), None | Some(KeyAlgorithm::HS256)) => JwtAlgorithm::HS256,
            // Another curve, or an `alg` that does not fit the key type.
            _ => continue,
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|error| named(error.to_string()))?;
        if let AlgorithmParameters::OctetKey(octets) = &jwk.algorithm {
            let len = URL_SAFE_NO_PAD
                .decode(octets.value.trim_end_matches('='))
                .map_err(|_| named("the secret is not base64url".to_owned()))?
                .len();
            if len < MIN_SECRET_LEN {
                return Err(named(format!(
                    "an HS256 secret must be at least {MIN_SECRET_LEN} bytes, this one has {len}"
                )));
            }
        }
        usable.push(VerifyingKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    Ok(usable)
}
