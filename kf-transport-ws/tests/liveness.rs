//! Application-level ping and idle timeout; a slow consumer's outbox stays bounded. (Heartbeats and the slow
//! consumer over a real socket are in the conformance suite, `tests/conformance.rs`.)

use std::time::Duration;

use kf_core::engine::Outgoing;
use kf_core::limits::Limits;
use kf_core::model::{ClientId, MessageBody};
use kf_core::protocol::CloseReason;
use kf_core::testkit::shop::*;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::json;

#[tokio::test]
async fn pings_keep_an_answering_client_and_close_a_silent_one() {
    let engine = engine_with_alice(Limits::default()).await;
    let config = WsConfig::default()
        .ping_interval(Duration::from_millis(100))
        .idle_timeout(Duration::from_millis(400));
    let addr = start(&engine, config).await;

    let mut answering = WsClient::as_identity(addr, &visitor("v-1")).await;
    let mut silent = WsClient::as_identity(addr, &visitor("v-2")).await;

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
    let engine = engine_with_alice(Limits::default().with_outbound_queue_bytes(limit)).await;
    let hello = json!({"type": "hello", "v": 1, "token": token(&agent("alice"))}).to_string();
    let (mut session, mut outbox) = engine.accept(&hello).await.expect("accepted");
    let opened = engine
        .open(
            &visitor("v-1"),
            ClientId::new("open-1").expect("client id"),
            None,
            None,
            Default::default(),
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

/// Whether the server has let go of the connection under `socket`, seen without reading from it: a write reaches a
/// socket the server closed, which answers with a reset (a live server just buffers it).
async fn server_let_go(socket: &tokio::net::TcpStream) -> bool {
    if let Ok(Some(_)) = socket.take_error() {
        return true;
    }
    match socket.try_write(b"\x89\x80\0\0\0\0") {
        Ok(_) | Err(_) if socket.take_error().ok().flatten().is_some() => true,
        Ok(_) => false,
        Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// A client that never reads, with a small receive buffer, so that the server's socket fills and nothing more can
/// be written to it — not even the close frame. Its queue overflows, its session ends at once (the agent goes
/// offline), and the server drops the TCP connection within a second or two instead of waiting on the stalled
/// socket for a TCP timeout.
#[tokio::test]
async fn a_client_that_never_reads_is_dropped_promptly() {
    let engine = engine_with_alice(Limits::default().with_outbound_queue_bytes(16 * 1024)).await;
    let addr = start(&engine, WsConfig::default().write_buffer_size(1024)).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("connect");
    let mut alice = WsClient::hello_over(stream, addr, &token(&agent("alice"))).await;
    let opened = engine
        .open(
            &visitor("v-1"),
            ClientId::new("open-1").expect("id"),
            None,
            None,
            Default::default(),
        )
        .await
        .expect("open");
    let id = opened.conversation.id;
    alice.next_of("conversation").await;
    alice
        .send(json!({"type": "subscribe", "conversation": id, "after": 2}))
        .await;
    alice.next_of("subscribed").await;
    // From here on alice reads nothing.
    let alice_id = kf_core::model::AgentId::new("alice").expect("id");
    let mut published = 0;
    while engine.is_online(&tenant(), &alice_id) {
        assert!(published < 10_000, "the server kept buffering");
        let client_id = ClientId::new(format!("m-{published}")).expect("id");
        engine
            .send(
                &visitor("v-1"),
                id,
                client_id,
                MessageBody::text("m".repeat(2048)),
            )
            .await
            .expect("send");
        published += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cut_at = tokio::time::Instant::now();
    // The server ends its side promptly although its close frame cannot be written.
    loop {
        if server_let_go(alice.socket()).await {
            break;
        }
        assert!(
            cut_at.elapsed() < Duration::from_secs(3),
            "the server still holds the connection {:?} after cutting the session",
            cut_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
