//! Tokens of test issuers (the test-only keys of `tests/fixtures`) signed with `jsonwebtoken::encode`.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header, encode};
use kf_core::auth::{AuthError, FirstOf, Identity, SignedTokens};
use kf_core::clock::ManualClock;
use kf_core::model::{AgentId, TenantId, Timestamp, VisitorId};
use serde_json::{Value, json};

use super::*;

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "a shared secret of at least thirty-two bytes";
const RSA_PRIVATE: &str = include_str!("../tests/fixtures/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../tests/fixtures/rsa-public.pem");
const RSA2_PRIVATE: &str = include_str!("../tests/fixtures/rsa2-private.pem");
const EC_PRIVATE: &str = include_str!("../tests/fixtures/ec-private.pem");
const EC_PUBLIC: &str = include_str!("../tests/fixtures/ec-public.pem");
const JWKS: &str = include_str!("../tests/fixtures/jwks.json");

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp(NOW * 1000)))
}

fn config() -> JwtConfig {
    JwtConfig::new("https://id.shop.example/", "kf")
        .key(KeyConfig::new(
            Some("hs-1"),
            KeyMaterial::Hs256Secret(SECRET.into()),
        ))
        .key(KeyConfig::new(
            Some("rsa-pem"),
            KeyMaterial::RsaPem(RSA_PUBLIC.into()),
        ))
        .key(KeyConfig::new(
            Some("ec-pem"),
            KeyMaterial::EcPem(EC_PUBLIC.into()),
        ))
}

fn authenticator(config: JwtConfig) -> (JwtAuthenticator, Arc<ManualClock>) {
    let clock = clock();
    (
        JwtAuthenticator::new(config, clock.clone()).expect("config"),
        clock,
    )
}

fn claims() -> Value {
    json!({
        "iss": "https://id.shop.example/",
        "aud": "kf",
        "sub": "v-42",
        "kf_role": "visitor",
        "kf_tenant": "shop",
        "iat": NOW,
        "exp": NOW + 600,
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().expect("object").remove(key);
    claims
}

#[derive(Clone, Copy)]
enum Signer {
    Hs,
    Rsa,
    Ec,
    OtherRsa,
}

fn sign(signer: Signer, kid: Option<&str>, claims: &Value) -> String {
    let (algorithm, key) = match signer {
        Signer::Hs => (
            jsonwebtoken::Algorithm::HS256,
            EncodingKey::from_secret(SECRET.as_bytes()),
        ),
        Signer::Rsa => (
            jsonwebtoken::Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa"),
        ),
        Signer::OtherRsa => (
            jsonwebtoken::Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).expect("rsa"),
        ),
        Signer::Ec => (
            jsonwebtoken::Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("ec"),
        ),
    };
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).expect("encode")
}

fn visitor() -> Identity {
    Identity::visitor(
        TenantId::new("shop").expect("id"),
        VisitorId::new("v-42").expect("id"),
    )
}

fn refusal(result: Result<Identity, AuthError>) -> &'static str {
    match result {
        Err(AuthError::Invalid(reason)) => reason,
        Err(AuthError::Expired) => "expired",
        Err(AuthError::Unrecognized) => "unrecognized",
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_algorithm_is_accepted_with_and_without_kid() {
    let (jwt, _) = authenticator(config());
    for (signer, kid) in [
        (Signer::Hs, "hs-1"),
        (Signer::Rsa, "rsa-pem"),
        (Signer::Ec, "ec-pem"),
    ] {
        assert_eq!(
            jwt.verify(&sign(signer, Some(kid), &claims())).expect(kid),
            visitor()
        );
        assert_eq!(jwt.verify(&sign(signer, None, &claims())).expect(kid), visitor());
    }
}

#[test]
fn tampered_and_foreign_signatures_are_refused() {
    let (jwt, _) = authenticator(config());
    for signer in [Signer::Hs, Signer::Rsa, Signer::Ec] {
        let token = sign(signer, None, &claims());
        // Another payload under the original signature: an agent instead of the visitor.
        let (header, rest) = token.split_once('.').expect("dot");
        let (_, signature) = rest.split_once('.').expect("dot");
        let forged_claims = with(claims(), "kf_role", json!("agent"));
        let payload = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
        assert_eq!(
            refusal(jwt.verify(&format!("{header}.{payload}.{signature}"))),
            "signature mismatch"
        );
        // A flipped character of the signature.
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let token = String::from_utf8(bytes).expect("utf-8");
        assert!(
            matches!(
                refusal(jwt.verify(&token)),
                "signature mismatch" | "malformed token"
            ),
            "{token}"
        );
    }
    // Signed by a key the authenticator does not know, claiming the kid of one it knows.
    let token = sign(Signer::OtherRsa, Some("rsa-pem"), &claims());
    assert_eq!(refusal(jwt.verify(&token)), "signature mismatch");
    let token = sign(Signer::OtherRsa, None, &claims());
    assert_eq!(refusal(jwt.verify(&token)), "signature mismatch");
}

#[test]
fn expiry_and_not_before_have_the_documented_leeway() {
    let (jwt, clock) = authenticator(config());
    let leeway = DEFAULT_LEEWAY.as_secs();
    // exp: valid until just before exp + leeway.
    let token = sign(Signer::Hs, None, &with(claims(), "exp", json!(NOW)));
    assert!(jwt.verify(&token).is_ok(), "at exp, within the leeway");
    clock.set(Timestamp((NOW + leeway - 1) * 1000 + 999));
    assert!(jwt.verify(&token).is_ok(), "the last moment of the leeway");
    clock.set(Timestamp((NOW + leeway) * 1000));
    assert_eq!(refusal(jwt.verify(&token)), "expired");
    // A fractional exp counts by whole seconds.
    clock.set(Timestamp(NOW * 1000));
    let token = sign(
        Signer::Hs,
        None,
        &with(claims(), "exp", json!(NOW as f64 - leeway as f64 + 0.5)),
    );
    assert_eq!(refusal(jwt.verify(&token)), "expired");
    // nbf: valid from nbf - leeway.
    let token = sign(Signer::Hs, None, &with(claims(), "nbf", json!(NOW + leeway)));
    assert!(jwt.verify(&token).is_ok(), "nbf at the leeway's edge");
    let token = sign(Signer::Hs, None, &with(claims(), "nbf", json!(NOW + leeway + 1)));
    assert_eq!(refusal(jwt.verify(&token)), "not yet valid");
    let token = sign(Signer::Hs, None, &with(claims(), "nbf", json!("soon")));
    assert_eq!(refusal(jwt.verify(&token)), "malformed token");
    // exp is required, and a number.
    assert_eq!(
        refusal(jwt.verify(&sign(Signer::Hs, None, &without(claims(), "exp")))),
        "missing exp"
    );
    let token = sign(Signer::Hs, None, &with(claims(), "exp", json!("tomorrow")));
    assert_eq!(refusal(jwt.verify(&token)), "missing exp");
    // Without leeway, exp itself is the end.
    let (strict, _) = authenticator(config().leeway(Duration::ZERO));
    let token = sign(Signer::Hs, None, &with(claims(), "exp", json!(NOW + 1)));
    assert!(strict.verify(&token).is_ok());
    let token = sign(Signer::Hs, None, &with(claims(), "exp", json!(NOW)));
    assert_eq!(refusal(strict.verify(&token)), "expired");
}

#[test]
fn issuer_and_audience_are_required() {
    let (jwt, _) = authenticator(config());
    let cases = [
        (
            with(claims(), "iss", json!("https://evil.example/")),
            "wrong issuer",
        ),
        (without(claims(), "iss"), "wrong issuer"),
        (with(claims(), "aud", json!("other-app")), "wrong audience"),
        (
            with(claims(), "aud", json!(["other-app", "billing"])),
            "wrong audience",
        ),
        (without(claims(), "aud"), "wrong audience"),
    ];
    for (claims, expected) in cases {
        assert_eq!(
            refusal(jwt.verify(&sign(Signer::Rsa, None, &claims))),
            expected,
            "{claims}"
        );
    }
    let token = sign(
        Signer::Rsa,
        None,
        &with(claims(), "aud", json!(["other-app", "kf"])),
    );
    assert_eq!(jwt.verify(&token).expect("one of the audiences"), visitor());
    // Several accepted values.
    let config = JwtConfig {
        issuer: OneOrMany::Many(vec!["a".into(), "https://id.shop.example/".into()]),
        audience: OneOrMany::Many(vec!["chat".into(), "kf".into()]),
        ..config()
    };
    let (jwt, _) = authenticator(config);
    assert!(jwt.verify(&sign(Signer::Rsa, None, &claims())).is_ok());
}

#[test]
fn keys_algorithms_and_kids_must_match() {
    let (jwt, _) = authenticator(config());
    assert_eq!(
        refusal(jwt.verify(&sign(Signer::Rsa, Some("nobody"), &claims()))),
        "unknown key id"
    );
    // An RS256 token naming the HS256 key: never verify an RSA signature as an HMAC (or the reverse).
    assert_eq!(
        refusal(jwt.verify(&sign(Signer::Rsa, Some("hs-1"), &claims()))),
        "algorithm not allowed"
    );
    assert_eq!(
        refusal(jwt.verify(&sign(Signer::Hs, Some("rsa-pem"), &claims()))),
        "algorithm not allowed"
    );
    // `alg: none` and algorithms kf does not take.
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for alg in ["none", "HS512", "PS256", "EdDSA"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        assert_eq!(
            refusal(jwt.verify(&format!("{header}.{payload}."))),
            "algorithm not allowed",
            "{alg}"
        );
    }
    // Algorithms narrowed by configuration.
    let rsa_only = JwtConfig::new("https://id.shop.example/", "kf")
        .algorithms([JwtAlgorithm::RS256])
        .key(KeyConfig::new(None, KeyMaterial::RsaPem(RSA_PUBLIC.into())));
    let (jwt, _) = authenticator(rsa_only);
    assert!(jwt.verify(&sign(Signer::Rsa, None, &claims())).is_ok());
    assert_eq!(
        refusal(jwt.verify(&sign(Signer::Hs, None, &claims()))),
        "algorithm not allowed"
    );
    // No key of the token's algorithm.
    let hs_only = JwtConfig::new("https://id.shop.example/", "kf")
        .key(KeyConfig::new(None, KeyMaterial::Hs256Secret(SECRET.into())));
    let (jwt, _) = authenticator(hs_only);
    assert_eq!(
        refusal(jwt.verify(&sign(Signer::Ec, None, &claims()))),
        "no key for this algorithm"
    );
}

#[test]
fn tokens_that_are_not_jwts_are_unrecognized() {
    let (jwt, _) = authenticator(config());
    let kf = SignedTokens::new(&[7; 32], clock()).expect("key");
    let kf_token = kf.issue(&visitor(), Duration::from_secs(60));
    for token in [
        kf_token.as_str(),
        "kf1.eyJ0IjoicyJ9.c2ln",
        "kf2.k1.eyJ0IjoicyJ9.c2ln",
        "",
        "Bearer abc",
        "a.b",
        "a.b.c.d",
        "e30.e30.",          // a JSON header without alg
        "W10.e30.",          // a header that is an array
        "eyJhbGciOjF9.e30.", // alg not a string
        "!!!.e30.e30",
    ] {
        assert_eq!(refusal(jwt.verify(token)), "unrecognized", "{token}");
    }
    // A JWT with a damaged payload is a JWT: refused, not passed on.
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256"}).to_string());
    assert_eq!(
        refusal(jwt.verify(&format!("{header}.!!!.sig"))),
        "signature mismatch"
    );
}

#[tokio::test]
async fn first_of_chains_jwts_with_kf_tokens() {
    let clock = clock();
    let jwt = JwtAuthenticator::new(config(), clock.clone()).expect("config");
    let kf = SignedTokens::new(&[7; 32], clock).expect("key");
    let chain = FirstOf::new().with(Arc::new(kf.clone())).with(Arc::new(jwt));
    let kf_token = kf.issue(&visitor(), Duration::from_secs(60));
    assert_eq!(chain.authenticate(&kf_token).await.expect("kf"), visitor());
    let jwt_token = sign(Signer::Ec, Some("ec-pem"), &claims());
    assert_eq!(chain.authenticate(&jwt_token).await.expect("jwt"), visitor());
    let expired = sign(Signer::Ec, None, &with(claims(), "exp", json!(NOW - 3600)));
    assert!(matches!(
        chain.authenticate(&expired).await,
        Err(AuthError::Expired)
    ));
    assert!(matches!(
        chain.authenticate("other").await,
        Err(AuthError::Unrecognized)
    ));
}

#[test]
fn claims_map_to_identities() {
    let (jwt, _) = authenticator(config());
    let agent = with(with(claims(), "kf_role", json!("agent")), "sub", json!("alice"));
    assert_eq!(
        jwt.verify(&sign(Signer::Hs, None, &agent)).expect("agent"),
        Identity::agent(
            TenantId::new("shop").expect("id"),
            AgentId::new("alice").expect("id")
        )
    );
    // Supervisors and admins are agents with a role; an agent's token without one is a plain agent's.
    for (claim, role) in [
        ("agent", kf_core::auth::Role::Agent),
        ("supervisor", kf_core::auth::Role::Supervisor),
        ("admin", kf_core::auth::Role::Admin),
    ] {
        let token = with(with(claims(), "kf_role", json!(claim)), "sub", json!("alice"));
        let identity = jwt.verify(&sign(Signer::Hs, None, &token)).expect("agent");
        assert_eq!(
            (identity.principal, identity.role),
            (
                kf_core::auth::Principal::Agent(AgentId::new("alice").expect("id")),
                role
            )
        );
    }
    let numeric = with(claims(), "sub", json!(1042));
    let identity = jwt
        .verify(&sign(Signer::Hs, None, &numeric))
        .expect("numeric subject");
    assert_eq!(
        identity.principal,
        kf_core::auth::Principal::Visitor(VisitorId::new("1042").expect("id"))
    );
    let cases = [
        (without(claims(), "sub"), "bad subject"),
        (with(claims(), "sub", json!("")), "bad subject"),
        (with(claims(), "sub", json!(true)), "bad subject"),
        (with(claims(), "kf_role", json!("root")), "bad role"),
        (without(claims(), "kf_role"), "bad role"),
        (without(claims(), "kf_tenant"), "bad tenant"),
        (with(claims(), "kf_tenant", json!("")), "bad tenant"),
        (with(claims(), "kf_tenant", json!(7)), "bad tenant"),
    ];
    for (claims, expected) in cases {
        assert_eq!(
            refusal(jwt.verify(&sign(Signer::Hs, None, &claims))),
            expected,
            "{claims}"
        );
    }

    // A host's own claim names (namespaced, as some identity providers require), a fixed tenant, a default role.
    let mapping = ClaimMapping::default()
        .subject("https://shop.example/user")
        .role(ClaimSource::claim_or(
            "https://shop.example/role",
            JwtRole::Visitor,
        ))
        .tenant(ClaimSource::value("shop".to_owned()));
    let (jwt, _) = authenticator(config().claims(mapping));
    let host = json!({
        "iss": "https://id.shop.example/", "aud": "kf", "exp": NOW + 60,
        "https://shop.example/user": "v-42", "kf_tenant": "ignored",
    });
    assert_eq!(
        jwt.verify(&sign(Signer::Hs, None, &host)).expect("defaults"),
        visitor()
    );
    let host = with(host, "https://shop.example/role", json!("agent"));
    let identity = jwt.verify(&sign(Signer::Hs, None, &host)).expect("agent");
    assert_eq!(
        identity.principal,
        kf_core::auth::Principal::Agent(AgentId::new("v-42").expect("id"))
    );
    // A fixed role, whatever the token says.
    let mapping = ClaimMapping::default().role(ClaimSource::value(JwtRole::Visitor));
    let (jwt, _) = authenticator(config().claims(mapping));
    let token = sign(Signer::Hs, None, &with(claims(), "kf_role", json!("agent")));
    assert_eq!(jwt.verify(&token).expect("visitor"), visitor());
}

#[test]
fn a_jwks_gives_its_signing_keys_and_can_be_replaced_at_run_time() {
    let jwks: Value = serde_json::from_str(JWKS).expect("json");
    let config = JwtConfig::new("https://id.shop.example/", "kf")
        .key(KeyConfig::new(
            Some("hs-1"),
            KeyMaterial::Hs256Secret(SECRET.into()),
        ))
        .jwks(jwks);
    let (jwt, _) = authenticator(config);
    // The encryption key and the Ed25519 key are left out.
    assert_eq!(jwt.keys().kids().collect::<Vec<_>>(), ["hs-1", "rsa-1", "ec-1"]);
    assert!(jwt.verify(&sign(Signer::Rsa, Some("rsa-1"), &claims())).is_ok());
    assert!(jwt.verify(&sign(Signer::Ec, Some("ec-1"), &claims())).is_ok());
    assert_eq!(
        refusal(jwt.verify(&sign(Signer::OtherRsa, Some("enc-1"), &claims()))),
        "unknown key id"
    );

    // The issuer rotates: its new JWKS has only the EC key. A clone (the engine's) sees it.
    let clone = jwt.clone();
    let rotated = json!({"keys": [serde_json::from_str::<Value>(JWKS).expect("json")["keys"][1].clone()]});
    assert_eq!(jwt.set_jwks(&rotated.to_string()).expect("jwks"), 1);
    assert_eq!(clone.keys().kids().collect::<Vec<_>>(), ["hs-1", "ec-1"]);
    assert_eq!(
        refusal(clone.verify(&sign(Signer::Rsa, Some("rsa-1"), &claims()))),
        "unknown key id"
    );
    assert!(clone.verify(&sign(Signer::Ec, Some("ec-1"), &claims())).is_ok());
    assert!(
        clone.verify(&sign(Signer::Hs, Some("hs-1"), &claims())).is_ok(),
        "keys given one by one stay"
    );

    // A bad document changes nothing.
    for bad in [
        "",
        "[]",
        "{}",
        r#"{"keys": 1}"#,
        r#"{"keys": [{"kty": "RSA", "n": "!", "e": "AQAB"}]}"#,
    ] {
        assert!(matches!(jwt.set_jwks(bad), Err(ConfigError::Jwks(_))), "{bad}");
    }
    assert_eq!(jwt.keys().len(), 2);
    // Duplicate kids are refused.
    let twice = json!({"keys": [rotated["keys"][0].clone(), rotated["keys"][0].clone()]});
    assert!(matches!(
        jwt.set_jwks(&twice.to_string()),
        Err(ConfigError::DuplicateKid(_))
    ));
    // A whole new key set.
    jwt.set_keys(JwtKeys::default());
    assert!(jwt.keys().is_empty());
    assert_eq!(
        refusal(jwt.verify(&sign(Signer::Hs, None, &claims()))),
        "no key for this algorithm"
    );
}

#[test]
fn jwks_secrets_are_base64url_and_long_enough() {
    let k = URL_SAFE_NO_PAD.encode(SECRET);
    let jwks = json!({"keys": [{"kty": "oct", "kid": "oct-1", "k": k}]});
    let (jwt, _) = authenticator(JwtConfig::new("https://id.shop.example/", "kf").jwks(jwks));
    assert!(jwt.verify(&sign(Signer::Hs, Some("oct-1"), &claims())).is_ok());
    let short = json!({"keys": [{"kty": "oct", "kid": "oct-1", "k": URL_SAFE_NO_PAD.encode("short")}]});
    let error = JwtAuthenticator::new(JwtConfig::new("i", "a").jwks(short), clock()).expect_err("short");
    assert!(matches!(error, ConfigError::Jwks(_)), "{error}");
}

#[test]
fn configurations_are_checked() {
    let bad_configs = [
        config().key(KeyConfig::new(None, KeyMaterial::Hs256Secret("short".into()))),
        config().key(KeyConfig::new(
            None,
            KeyMaterial::Hs256SecretBase64("not base64!".into()),
        )),
        config().key(KeyConfig::new(
            None,
            KeyMaterial::RsaPem("-----BEGIN NOTHING-----".into()),
        )),
        config().key(KeyConfig::new(None, KeyMaterial::EcPem(RSA_PUBLIC.into()))),
        config().key(KeyConfig::new(
            Some("hs-1"),
            KeyMaterial::Hs256Secret(SECRET.into()),
        )),
        config().leeway(MAX_LEEWAY + Duration::from_secs(1)),
        config().algorithms([]),
        config().algorithms([JwtAlgorithm::RS256]),
        JwtConfig {
            audience: OneOrMany::Many(vec![]),
            ..config()
        },
        JwtConfig {
            issuer: "".into(),
            ..config()
        },
        config().claims(ClaimMapping::default().tenant(ClaimSource::value(String::new()))),
        config().claims(ClaimMapping::default().tenant(ClaimSource {
            claim: None,
            default: None,
        })),
        config().claims(ClaimMapping::default().role(ClaimSource {
            claim: None,
            default: None,
        })),
    ];
    for config in bad_configs {
        assert!(
            JwtAuthenticator::new(config.clone(), clock()).is_err(),
            "{config:?}"
        );
    }
    let base64 = URL_SAFE_NO_PAD.encode(SECRET);
    let config = JwtConfig::new("https://id.shop.example/", "kf").key(KeyConfig::new(
        None,
        KeyMaterial::Hs256SecretBase64(format!("{base64}=")),
    ));
    let (jwt, _) = authenticator(config);
    assert!(jwt.verify(&sign(Signer::Hs, None, &claims())).is_ok());
    // Secrets stay out of debug output.
    assert!(!format!("{:?}", config_with_secret()).contains(SECRET));
    assert!(!format!("{jwt:?}").contains(SECRET));
}

fn config_with_secret() -> JwtConfig {
    config()
}

#[test]
fn a_configuration_file_reads_as_documented() {
    let text = json!({
        "issuer": "https://id.shop.example/",
        "audience": ["kf", "chat"],
        "algorithms": ["RS256", "ES256", "HS256"],
        "leeway_secs": 30,
        "keys": [
            {"kid": "hs-1", "hs256_secret": SECRET},
            {"kid": "rsa-pem", "rsa_pem": RSA_PUBLIC},
            {"ec_pem": EC_PUBLIC}
        ],
        "jwks": serde_json::from_str::<Value>(JWKS).expect("json"),
        "claims": {"subject": "sub", "role": {"claim": "kf_role", "default": "visitor"}, "tenant": {"value": "shop"}}
    })
    .to_string();
    let config: JwtConfig = serde_json::from_str(&text).expect("config");
    assert_eq!(config.leeway_secs, 30);
    let (jwt, _) = authenticator(config);
    assert_eq!(jwt.keys().len(), 5);
    let token = sign(
        Signer::Ec,
        None,
        &without(without(claims(), "kf_role"), "kf_tenant"),
    );
    assert_eq!(jwt.verify(&token).expect("defaults"), visitor());
    // Defaults: all algorithms, 60 s, sub / kf_role / kf_tenant.
    let config: JwtConfig = serde_json::from_str(r#"{"issuer": "i", "audience": "a"}"#).expect("minimal");
    assert_eq!(config.algorithms, JwtAlgorithm::ALL);
    assert_eq!(config.leeway_secs, 60);
    assert_eq!(config.claims, ClaimMapping::default());
    assert!(serde_json::from_str::<JwtConfig>(r#"{"issuer": "i", "audience": "a", "leway": 5}"#).is_err());
}
