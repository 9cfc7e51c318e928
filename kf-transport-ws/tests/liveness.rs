//! Application-level ping and idle timeout; a slow consumer's outbox stays bounded. (Heartbeats and the slow
//! consumer over a real socket are in the conformance suite, `tests/conformance.rs`.)

mod common;

use std::time::Duration;

use common::*;
use kf_core::engine::Outgoing;
use kf_core::limits::Limits;
use kf_core::model::{ClientId, MessageBody};
use kf_core::protocol::CloseReason;
use kf_transport_ws::WsConfig;
use serde_json::json;

#[tokio::test]
async fn pings_keep_an_answering_client_and_close_a_silent_one() {
    let engine = engine(Limits::default()).await;
    let config = WsConfig::default()
        .ping_interval(Duration::from_millis(100))
        .idle_timeout(Duration::from_millis(400));
    let addr = start(&engine, config).await;

    let mut answering = Client::as_identity(addr, &visitor("v-1")).await;
    let mut silent = Client::as_identity(addr, &visitor("v-2")).await;

    // Six pings answered span more than the idle timeout: the answering client stays.
    for _ in 0..6 {
        answering.next_of("ping").await;
        answering.send(json!({"type": "pong"})).await;
    }

    let frames = silent.expect_close(4002).await;
    let pings = frames.iter().filter(|frame| frame["type"] == "ping").count();
    assert!(
        pings >= 1,
        "the silent client was pinged before being closed: {frames:?}"
    );

    answering.until_pong().await;
    answering.close().await;
}

/// A client that does not read, seen at the engine's outbox, which the transport drains: it never holds more than
/// the configured bytes, and ends with the slow-consumer close. (Over a real socket: the conformance suite's
/// `a_slow_consumer_is_cut_off_and_resumes`.)
#[tokio::test]
async fn the_outbox_of_a_client_that_never_reads_stays_bounded() {
    let limit = 16 * 1024;
    let engine = engine(Limits::default().with_outbound_queue_bytes(limit)).await;
    let hello = json!({"type": "hello", "v": 1, "token": token(&agent("alice"))}).to_string();
    let (mut session, mut outbox) = engine.accept(&hello).await.expect("accepted");
    let opened = engine
        .open(
            &visitor("v-1"),
            ClientId::new("open-1").expect("client id"),
            None,
            None,
        )
        .await
        .expect("open");
    let id = opened.conversation.id;
    session
        .receive(&json!({"type": "subscribe", "conversation": id, "after": 2}).to_string())
        .await;

    for n in 0..200 {
        let client_id = ClientId::new(format!("m-{n}")).expect("client id");
        engine
            .send(
                &visitor("v-1"),
                id,
                client_id,
                MessageBody::text("m".repeat(1024)),
            )
            .await
            .expect("send");
        assert!(
            outbox.queued_bytes() <= limit,
            "{} bytes queued after {n} messages",
            outbox.queued_bytes()
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(outbox.next().await, Outgoing::Close(CloseReason::SlowConsumer));
    assert_eq!(outbox.queued_bytes(), 0, "queued frames are released");
}
