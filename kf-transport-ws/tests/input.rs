//! Refused hellos and bad input of every kind, WebSocket-specific. (Isolation between visitors, tenants and agents,
//! and the bad input every transport shares, are in the conformance suite, `tests/conformance.rs`.)

use std::sync::Arc;
use std::time::Duration;

use kf_core::auth::SignedTokens;
use kf_core::clock::ManualClock;
use kf_core::limits::Limits;
use kf_core::model::Timestamp;
use kf_core::testkit::shop::*;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Sends `frame` and returns the `error` frame that answers it (asserting its request id).
async fn refused(client: &mut WsClient, frame: Value) -> String {
    let id = frame["id"].clone();
    client.send(frame).await;
    let error = client.next_of("error").await;
    assert_eq!(error["id"], id, "{error}");
    error["code"].as_str().expect("code").to_owned()
}

/// Says `hello` and expects the connection to be refused with the error `code`, then closed with `close`.
async fn refused_at_hello(addr: std::net::SocketAddr, hello: Value, code: &str, close: u16) {
    let mut client = WsClient::connect(addr).await;
    client.send(hello).await;
    let frames = client.expect_close(close).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "error");
    assert_eq!(frames[0]["code"], code, "{frames:?}");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_4001() {
    let engine = engine_with_alice(Limits::default()).await;
    let addr = start(&engine, WsConfig::default()).await;

    let forger = SignedTokens::new(&[9; 32], Arc::new(kf_core::clock::SystemClock)).expect("key");
    let forged = forger.issue(&visitor("v-a"), Duration::from_secs(3600));
    refused_at_hello(
        addr,
        json!({"type": "hello", "v": 1, "token": forged}),
        "invalid_token",
        4001,
    )
    .await;

    let an_hour_ago = Timestamp(Timestamp::now().as_millis() - 3_600_000);
    let past = SignedTokens::new(KEY, Arc::new(ManualClock::new(an_hour_ago))).expect("key");
    let expired = past.issue(&visitor("v-a"), Duration::from_secs(60));
    refused_at_hello(
        addr,
        json!({"type": "hello", "v": 1, "token": expired}),
        "token_expired",
        4001,
    )
    .await;

    refused_at_hello(
        addr,
        json!({"type": "hello", "v": 1, "token": "nonsense"}),
        "invalid_token",
        4001,
    )
    .await;
    let valid = token(&visitor("v-a"));
    refused_at_hello(
        addr,
        json!({"type": "hello", "v": 2, "token": valid}),
        "unsupported_version",
        1002,
    )
    .await;
    refused_at_hello(
        addr,
        json!({"type": "hello", "v": "one", "token": valid}),
        "invalid_frame",
        1002,
    )
    .await;

    // The valid token still works.
    WsClient::as_identity(addr, &visitor("v-a")).await.close().await;
}

#[tokio::test]
async fn connections_past_the_per_identity_limit_are_refused_with_4029() {
    let engine = engine_with_alice(Limits::default().with_connections_per_identity(1)).await;
    let addr = start(&engine, WsConfig::default()).await;
    let first = WsClient::as_identity(addr, &visitor("v-a")).await;
    let hello = json!({"type": "hello", "v": 1, "token": token(&visitor("v-a"))});
    refused_at_hello(addr, hello, "too_many_connections", 4029).await;
    first.close().await;
}

fn small_limits() -> Limits {
    Limits::default()
        .with_max_text_bytes(1024)
        .with_max_frame_bytes(8 * 1024)
        .with_requests_per_second(1000)
}

#[tokio::test]
async fn bad_frames_are_answered_and_the_connection_stays_usable() {
    let engine = engine_with_alice(small_limits()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let mut client = WsClient::as_identity(addr, &visitor("v-1")).await;
    let conversation = open(&mut client, "open-1").await;
    let before = stored(&engine, &conversation).await;

    client.send_text("this is not JSON").await;
    assert_eq!(client.next_of("error").await["code"], "bad_json");
    client.send_text("[1, 2, 3]").await;
    assert_eq!(client.next_of("error").await["code"], "bad_json");
    assert_eq!(
        refused(&mut client, json!({"type": "dance", "id": "d"})).await,
        "unknown_type"
    );
    assert_eq!(
        refused(&mut client, json!({"id": "no-type"})).await,
        "invalid_frame"
    );
    let wrong_types =
        json!({"type": "send", "id": "w", "conversation": 42, "client_id": "c-1", "body": {"text": 7}});
    assert_eq!(refused(&mut client, wrong_types).await, "invalid_frame");
    let missing =
        json!({"type": "send", "id": "n", "conversation": conversation, "body": {"text": "no client id"}});
    assert_eq!(refused(&mut client, missing).await, "invalid_frame");
    let too_long = json!({"type": "send", "id": "big", "conversation": conversation, "client_id": "c-2", "body": {"text": "x".repeat(2000)}});
    assert_eq!(refused(&mut client, too_long).await, "too_large");
    client.send_binary(b"\x00\x01binary").await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "unsupported_data");

    // Still usable: a ping is answered and a valid message goes through.
    client.until_pong().await;
    let ack = say(&mut client, &conversation, "c-3", "fine now").await;
    assert_eq!(ack["duplicate"], false);
    let log = stored(&engine, &conversation).await;
    assert_eq!(
        log.len(),
        before.len() + 1,
        "only the valid message was stored: {log:?}"
    );
}

#[tokio::test]
async fn an_oversize_frame_closes_with_1009() {
    let engine = engine_with_alice(small_limits()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let mut client = WsClient::as_identity(addr, &visitor("v-1")).await;
    let conversation = open(&mut client, "open-1").await;
    let before = stored(&engine, &conversation).await;
    let frame = json!({"type": "send", "conversation": conversation, "client_id": "c-1", "body": {"text": "x".repeat(9000)}});
    client.send(frame).await;
    client.expect_close(1009).await;
    assert_eq!(stored(&engine, &conversation).await, before);

    // Before hello too.
    let mut client = WsClient::connect(addr).await;
    client.send_text(&"y".repeat(100_000)).await;
    client.expect_close(1009).await;

    // The server carries on.
    WsClient::as_identity(addr, &visitor("v-1")).await.close().await;
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let engine = engine_with_alice(small_limits()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let invalid = || {
        Message::Frame(Frame::message(
            vec![b'{', 0xff, 0xfe, b'}'],
            OpCode::Data(Data::Text),
            true,
        ))
    };

    let mut client = WsClient::as_identity(addr, &visitor("v-1")).await;
    let conversation = open(&mut client, "open-1").await;
    client.send_message(invalid()).await;
    client.expect_close(1007).await;
    assert_eq!(stored(&engine, &conversation).await.len(), 1);

    let mut client = WsClient::connect(addr).await;
    client.send_message(invalid()).await;
    client.expect_close(1007).await;

    WsClient::as_identity(addr, &visitor("v-1")).await.close().await;
}
