//! Why a configuration was refused.

use thiserror::Error;

/// A [`JwtConfig`](crate::JwtConfig) or a JWKS document that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key given one by one cannot be used (bad PEM, short secret, algorithm not allowed).
    #[error("key {key}: {reason}")]
    Key {
        /// Its `kid`, or its position in the list (`#1`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The JWKS document, or one of its signing keys, cannot be read.
    #[error("JWKS: {0}")]
    Jwks(String),
    /// Two keys have the same `kid`.
    #[error("two keys have the kid {0:?}")]
    DuplicateKid(String),
    /// `issuer` or `audience` is empty.
    #[error("{0} must name at least one non-empty value")]
    Missing(&'static str),
    /// `algorithms` is empty.
    #[error("no algorithm is allowed")]
    NoAlgorithm,
    /// `leeway_secs` is above [`MAX_LEEWAY`](crate::MAX_LEEWAY).
    #[error("a leeway of {0} s is more than the {max} s allowed", max = crate::MAX_LEEWAY.as_secs())]
    Leeway(u64),
    /// The claim mapping cannot give an identity: a role or tenant from nowhere (neither a claim nor a value),
    /// or a tenant value that is not a valid tenant id.
    #[error("claims.{field}: {reason}")]
    Claims {
        /// `role` or `tenant`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}
