//! Over real sockets on 127.0.0.1: a client authenticates with a JWT from a test issuer (the test-only keys of
//! `tests/fixtures`) and with kf tokens across a key rotation, over WebSocket and SSE; refused tokens get the
//! documented `error` frame (`invalid_token` or `token_expired`, close 4001) or HTTP 401.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use kf_auth_jwt::{JwtAuthenticator, JwtConfig};
use kf_core::Engine;
use kf_core::auth::{FirstOf, KeyId, SignedTokens, TokenKeys};
use kf_core::clock::SystemClock;
use kf_core::model::{Agent, AgentId, Group, GroupId};
use kf_core::store::MemoryStore;
use kf_core::testkit::shop::{tenant, visitor};
use kf_transport_sse::SseConfig;
use kf_transport_sse::testkit::{self as sse, Stream};
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::{self as ws, WsClient};
use serde_json::{Value, json};

const RSA_PRIVATE: &str = include_str!("fixtures/rsa-private.pem");
const RSA2_PRIVATE: &str = include_str!("fixtures/rsa2-private.pem");
const EC_PRIVATE: &str = include_str!("fixtures/ec-private.pem");
const JWKS: &str = include_str!("fixtures/jwks.json");
const OLD_KEY: &[u8; 32] = b"kf-test-token-key-old-0000000001";
const NEW_KEY: &[u8; 32] = b"kf-test-token-key-new-0000000002";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

fn id(id: &str) -> KeyId {
    KeyId::new(id).expect("key id")
}

/// A JWT of the test issuer: RS256 (`kid` `rsa-1`) or ES256 (`ec-1`), as published in `fixtures/jwks.json`.
fn jwt(algorithm: Algorithm, private: &str, kid: &str, claims: Value) -> String {
    let key = match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_pem(private.as_bytes()),
        _ => EncodingKey::from_rsa_pem(private.as_bytes()),
    }
    .expect("private key");
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims, &key).expect("encode")
}

fn claims(sub: &str, role: &str, exp: u64) -> Value {
    json!({"iss": "https://id.shop.example/", "aud": "kf", "sub": sub, "kf_role": role, "exp": exp})
}

/// An engine of tenant `shop` (group `support`, agent `alice`) whose authenticator is kf's tokens (a ring during
/// a rotation: `new` signs, `old` is accepted) then the test issuer's JWTs (its JWKS, tenant fixed to `shop`).
async fn engine() -> (Engine, SignedTokens, SignedTokens) {
    let ring = TokenKeys::new(id("new"), NEW_KEY)
        .expect("new")
        .accept(id("old"), OLD_KEY)
        .expect("old");
    let tokens = SignedTokens::with_keys(ring, Arc::new(SystemClock));
    let before_rotation = SignedTokens::with_keys(
        TokenKeys::new(id("old"), OLD_KEY).expect("old"),
        Arc::new(SystemClock),
    );
    let config: JwtConfig = serde_json::from_value(json!({
        "issuer": "https://id.shop.example/",
        "audience": "kf",
        "jwks": serde_json::from_str::<Value>(JWKS).expect("jwks"),
        "claims": {"tenant": {"value": "shop"}}
    }))
    .expect("config");
    let jwt = JwtAuthenticator::new(config, Arc::new(SystemClock)).expect("jwt");
    let authenticator = FirstOf::new().with(Arc::new(tokens.clone())).with(Arc::new(jwt));
    let support = GroupId::new("support").expect("group");
    let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(authenticator))
        .default_group(support.clone())
        .build()
        .await
        .expect("engine");
    engine
        .put_group(Group::new(tenant(), support.clone(), "Support"))
        .await
        .expect("group");
    let alice =
        Agent::new(tenant(), AgentId::new("alice").expect("id"), "Alice", 5).with_groups(vec![support]);
    engine.put_agent(alice).await.expect("agent");
    (engine, tokens, before_rotation)
}

/// Says hello with `token` and expects the `error` frame `code`, then close 4001.
async fn refused(addr: std::net::SocketAddr, token: &str, code: &str) -> Value {
    let mut client = WsClient::connect(addr).await;
    client
        .send(json!({"type": "hello", "id": "h", "v": 1, "token": token}))
        .await;
    let frames = client.expect_close(4001).await;
    let error = frames.first().cloned().expect("an error frame before the close");
    assert_eq!(
        (&error["type"], &error["code"], &error["id"]),
        (&json!("error"), &json!(code), &json!("h")),
        "{error}"
    );
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_and_rotated_kf_tokens_over_websocket() {
    let (engine, tokens, before_rotation) = engine().await;
    let addr = ws::start(&engine, WsConfig::default()).await;
    let exp = now() + 600;

    // A visitor with an RS256 JWT opens a conversation; the agent with an ES256 JWT gets it.
    let visitor_jwt = jwt(
        Algorithm::RS256,
        RSA_PRIVATE,
        "rsa-1",
        claims("v-jwt", "visitor", exp),
    );
    let mut visitor_client = WsClient::hello(addr, &visitor_jwt).await;
    assert_eq!(
        (
            &visitor_client.welcome["tenant"],
            &visitor_client.welcome["principal"]
        ),
        (&json!("shop"), &json!({"role": "visitor", "id": "v-jwt"}))
    );
    let agent_jwt = jwt(
        Algorithm::ES256,
        EC_PRIVATE,
        "ec-1",
        claims("alice", "agent", exp),
    );
    let mut alice = WsClient::hello(addr, &agent_jwt).await;
    assert_eq!(
        alice.welcome["principal"],
        json!({"role": "agent", "id": "alice"})
    );
    let conversation = ws::open(&mut visitor_client, "open-1").await;
    alice
        .send(json!({"type": "subscribe", "conversation": conversation, "after": 0}))
        .await;
    alice
        .next_where(|frame| frame["type"] == "event" && frame["data"]["type"] == "created")
        .await;

    // kf tokens: signed with the old key before the rotation, and with the new one during it.
    let old = before_rotation.issue(&visitor("v-old"), Duration::from_secs(600));
    assert!(old.starts_with("kf2.old."), "{old}");
    let client = WsClient::hello(addr, &old).await;
    assert_eq!(client.welcome["principal"]["id"], "v-old");
    let new = tokens.issue(&visitor("v-new"), Duration::from_secs(600));
    assert!(new.starts_with("kf2.new."), "{new}");
    assert_eq!(
        WsClient::hello(addr, &new).await.welcome["principal"]["id"],
        "v-new"
    );

    // Refused JWTs: tampered (an agent's claims under a visitor's signature), signed by another key under a known
    // kid, for another audience, expired beyond the leeway.
    let (header, rest) = visitor_jwt.split_once('.').expect("dot");
    let (_, signature) = rest.split_once('.').expect("dot");
    let agent_payload = agent_jwt.split('.').nth(1).expect("payload");
    refused(
        addr,
        &format!("{header}.{agent_payload}.{signature}"),
        "invalid_token",
    )
    .await;
    let foreign = jwt(
        Algorithm::RS256,
        RSA2_PRIVATE,
        "rsa-1",
        claims("v-x", "visitor", exp),
    );
    refused(addr, &foreign, "invalid_token").await;
    let mut elsewhere = claims("v-x", "visitor", exp);
    elsewhere["aud"] = json!("billing");
    let error = refused(
        addr,
        &jwt(Algorithm::RS256, RSA_PRIVATE, "rsa-1", elsewhere),
        "invalid_token",
    )
    .await;
    assert!(
        error["message"].as_str().is_some_and(|m| m.contains("audience")),
        "{error}"
    );
    let expired = jwt(
        Algorithm::RS256,
        RSA_PRIVATE,
        "rsa-1",
        claims("v-x", "visitor", now() - 3600),
    );
    refused(addr, &expired, "token_expired").await;

    // The rotation ends: the old key is retired by configuration. Its tokens are refused, the new ones work.
    let ring = TokenKeys::new(id("new"), NEW_KEY)
        .expect("new")
        .accept(id("old"), OLD_KEY)
        .expect("old")
        .retire(&id("old"))
        .expect("retire");
    tokens.set_keys(ring);
    let error = refused(addr, &old, "invalid_token").await;
    assert!(
        error["message"].as_str().is_some_and(|m| m.contains("retired")),
        "{error}"
    );
    assert_eq!(
        WsClient::hello(addr, &new).await.welcome["principal"]["id"],
        "v-new"
    );
    // A connection opened before the retirement is not cut (tokens are checked at hello).
    client.socket().peer_addr().expect("still connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_and_rotated_kf_tokens_over_sse() {
    let (engine, tokens, before_rotation) = engine().await;
    let addr = sse::start(&engine, SseConfig::default()).await;
    let exp = now() + 600;

    let visitor_jwt = jwt(
        Algorithm::ES256,
        EC_PRIVATE,
        "ec-1",
        claims("v-sse", "visitor", exp),
    );
    let bearer = format!("Bearer {visitor_jwt}");
    let mut stream = Stream::open(addr, "/events", &[("Authorization", &bearer)]).await;
    assert_eq!(stream.status, 200, "{}", String::from_utf8_lossy(&stream.body));
    let welcome = stream.next().await;
    assert_eq!(
        welcome["principal"],
        json!({"role": "visitor", "id": "v-sse"}),
        "{welcome}"
    );
    let (status, pong) = sse::request(addr, &visitor_jwt, "ping", json!({})).await;
    assert_eq!((status, &pong["type"]), (200, &json!("pong")));

    let old = before_rotation.issue(&visitor("v-old"), Duration::from_secs(600));
    let (status, _) = sse::request(addr, &old, "ping", json!({})).await;
    assert_eq!(status, 200, "the old key works during the rotation");

    let expired = jwt(
        Algorithm::ES256,
        EC_PRIVATE,
        "ec-1",
        claims("v-sse", "visitor", now() - 3600),
    );
    let refused = Stream::open(addr, &format!("/events?token={expired}"), &[]).await;
    assert_eq!(refused.status, 401);
    let body: Value = serde_json::from_slice(&refused.body).expect("json");
    assert_eq!(body["code"], "token_expired", "{body}");

    tokens.set_keys(TokenKeys::new(id("new"), NEW_KEY).expect("new"));
    let (status, body) = sse::request(addr, &old, "ping", json!({})).await;
    assert_eq!((status, &body["code"]), (401, &json!("invalid_token")), "{body}");
}
