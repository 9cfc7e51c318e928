//! Application-level ping and idle timeout; slow consumers are cut off with 4008 and resume.

mod common;

use std::time::Duration;

use common::*;
use kf_core::engine::Outgoing;
use kf_core::model::{AgentId, ClientId, ConversationId, MessageBody};
use kf_core::protocol::{CloseReason, Limits};
use kf_transport_ws::WsConfig;
use serde_json::{Value, json};
use tokio::net::TcpSocket;

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

fn alice() -> AgentId {
    AgentId::new("alice").expect("agent id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_with_4008_and_resumes() {
    let limits = Limits {
        outbound_queue_bytes: 16 * 1024,
        requests_per_second: 10_000,
        ..Limits::default()
    };
    let engine = engine(limits).await;
    let addr = start(&engine, WsConfig::default()).await;

    // The slow agent connects with a small receive buffer, takes the conversation, then stops reading.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("connect");
    let mut slow = Client::over(stream, addr, "/ws").await;
    slow.send(json!({"type": "hello", "v": 1, "token": token(&agent("alice"))}))
        .await;
    slow.expect("welcome").await;
    let mut visitor = Client::as_identity(addr, &visitor("v-1")).await;
    let conversation = open(&mut visitor, "open-1").await;
    slow.next_of("conversation").await;
    subscribe(&mut slow, &conversation, 0).await;
    assert_eq!(seqs(&events_until(&mut slow, 2).await), [1, 2]);
    subscribe(&mut visitor, &conversation, 2).await;

    // Publish until the server gives up on it (its session ends: the agent goes offline), at the pace of a
    // client that does read (the visitor), so that it is the socket that backs up, not a burst.
    let id: ConversationId = conversation.parse().expect("id");
    let text = "m".repeat(2048);
    let mut published = 0_u64;
    while engine.is_online(&tenant(), &alice()) {
        assert!(
            published < 50_000,
            "the server kept buffering for a client that does not read"
        );
        let client_id = ClientId::new(format!("m-{published}")).expect("client id");
        engine
            .send(
                &common::visitor("v-1"),
                id,
                client_id,
                MessageBody::text(text.clone()),
            )
            .await
            .expect("send");
        published += 1;
        assert_eq!(visitor.next_event().await["seq"], published + 2);
    }
    let last = published + 2;

    // What it gets when it reads again: an unbroken prefix of the log, then close 4008.
    let frames = slow.expect_close(4008).await;
    let events: Vec<Value> = frames
        .into_iter()
        .filter(|frame| frame["type"] == "event")
        .collect();
    let received = seqs(&events);
    let expected: Vec<u64> = (3..3 + received.len() as u64).collect();
    assert_eq!(received, expected, "a prefix of the log, in order");
    let applied = received.last().copied().unwrap_or(2);
    assert!(
        applied < last,
        "the server dropped what did not fit instead of buffering it ({applied} of {last})"
    );

    // Resume from its cursor: everything it missed, exactly once.
    let mut resumed = Client::as_identity(addr, &agent("alice")).await;
    subscribe(&mut resumed, &conversation, applied).await;
    let missed = events_until(&mut resumed, last).await;
    assert_eq!(seqs(&missed), (applied + 1..=last).collect::<Vec<_>>());
    let extra: Vec<Value> = resumed
        .until_pong()
        .await
        .into_iter()
        .filter(|f| f["type"] == "event")
        .collect();
    assert!(extra.is_empty(), "{extra:?}");
}

/// The same situation seen at the engine's outbox, which the transport drains: it never holds more than the
/// configured bytes, and ends with the slow-consumer close.
#[tokio::test]
async fn the_outbox_of_a_client_that_never_reads_stays_bounded() {
    let limit = 16 * 1024;
    let engine = engine(Limits {
        outbound_queue_bytes: limit,
        ..Limits::default()
    })
    .await;
    let hello = json!({"type": "hello", "v": 1, "token": token(&agent("alice"))}).to_string();
    let (mut session, mut outbox) = engine.accept(&hello).await.expect("accepted");
    let opened = engine
        .open(&visitor("v-1"), ClientId::new("open-1").expect("client id"), None)
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
