//! A visitor and an agent converse, standalone and mounted in axum; HTTP-level refusals; vanishing clients.

use kf_core::limits::Limits;
use kf_core::model::{EventKind, Seq};
use kf_core::testkit::shop::*;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The whole exchange, against a server at `addr` whose WebSocket endpoint is `/ws`.
async fn converse(engine: &kf_core::Engine, addr: std::net::SocketAddr) {
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
    assert_eq!(alice.inbox["conversations"], json!([]));

    let mut visitor = WsClient::as_identity(addr, &visitor("v-1")).await;
    visitor
        .send(json!({"type": "open", "client_id": "open-1", "id": "r1"}))
        .await;
    let opened = visitor.expect("opened").await;
    assert_eq!(opened["id"], "r1");
    assert_eq!(opened["created"], true);
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();

    // The agent is assigned automatically and told so.
    let assigned = alice.expect("conversation").await;
    assert_eq!(assigned["conversation"]["id"], conversation.as_str());
    assert_eq!(assigned["conversation"]["status"], "assigned");
    assert_eq!(assigned["conversation"]["agent"], "alice");

    subscribe(&mut visitor, &conversation, 0).await;
    let history = events_until(&mut visitor, 2).await;
    assert_eq!(seqs(&history), [1, 2]);
    assert_eq!(history[0]["data"]["type"], "created");
    assert_eq!(history[1]["data"]["type"], "assigned");
    assert_eq!(history[1]["data"]["agent"], "alice");

    subscribe(&mut alice, &conversation, 0).await;
    assert_eq!(seqs(&events_until(&mut alice, 2).await), [1, 2]);

    // Visitor → agent.
    let ack = say(&mut visitor, &conversation, "m-1", "Hello, is my order shipped?").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["duplicate"].as_bool()),
        (Some(3), Some(false))
    );
    let event = alice.next_event().await;
    assert_eq!(event["seq"], 3);
    assert_eq!(event["author"], json!({"role": "visitor", "id": "v-1"}));
    assert_eq!(event["data"]["body"]["text"], "Hello, is my order shipped?");
    assert_eq!(
        visitor.next_event().await["seq"],
        3,
        "the sender sees its own message in the log too"
    );

    // Agent → visitor.
    let ack = say(&mut alice, &conversation, "a-1", "It left this morning.").await;
    assert_eq!(ack["seq"], 4);
    let event = visitor.next_event().await;
    assert_eq!(event["seq"], 4);
    assert_eq!(event["author"], json!({"role": "agent", "id": "alice"}));
    assert_eq!(event["data"]["body"]["text"], "It left this morning.");

    // Typing is relayed, not stored.
    alice
        .send(json!({"type": "typing", "conversation": conversation, "active": true}))
        .await;
    let typing = visitor.next_of("typing").await;
    assert_eq!(typing["from"], json!({"role": "agent", "id": "alice"}));

    let log = stored(engine, &conversation).await;
    let kinds: Vec<(Seq, &str)> = log.iter().map(|event| (event.seq, event.data.name())).collect();
    assert_eq!(
        kinds,
        [
            (Seq(1), "created"),
            (Seq(2), "assigned"),
            (Seq(3), "message"),
            (Seq(4), "message")
        ]
    );
    assert!(matches!(&log[1].data, EventKind::Assigned { agent } if agent.as_str() == "alice"));

    visitor.close().await;
    alice.close().await;
}

#[tokio::test]
async fn visitor_and_agent_converse() {
    let engine = engine_with_alice(Limits::default()).await;
    let addr = start(&engine, WsConfig::default()).await;
    converse(&engine, addr).await;
}

#[tokio::test]
async fn mounted_in_an_axum_router() {
    let engine = engine_with_alice(Limits::default()).await;
    let app = axum::Router::new()
        .route("/ws", kf_transport_ws::route(engine.clone(), WsConfig::default()))
        .route("/health", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    converse(&engine, addr).await;

    // The host's other routes still work, and plain requests to the endpoint get clear refusals.
    assert!(
        http_get(
            addr,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .await
        .starts_with("HTTP/1.1 200")
    );
    let plain = http_get(addr, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
    let post = http_get(
        addr,
        "POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
}

/// Sends a raw HTTP request and returns the whole response text.
async fn http_get(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn standalone_refuses_what_is_not_an_upgrade() {
    let engine = engine_with_alice(Limits::default()).await;
    let addr = start(&engine, WsConfig::default().path("/kf")).await;

    let plain = http_get(addr, "GET /kf HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
    assert!(
        plain.to_ascii_lowercase().contains("upgrade: websocket"),
        "{plain}"
    );
    let wrong_path = http_get(
        addr,
        "GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(wrong_path.starts_with("HTTP/1.1 404"), "{wrong_path}");
    let old_version = http_get(
        addr,
        "GET /kf HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(old_version.starts_with("HTTP/1.1 426"), "{old_version}");
    assert!(
        old_version
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{old_version}"
    );
    let no_key = http_get(
        addr,
        "GET /kf HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(no_key.starts_with("HTTP/1.1 400"), "{no_key}");

    // The configured path works.
    let mut client = WsClient::connect_path(addr, "/kf").await;
    client
        .send(json!({"type": "hello", "v": 1, "token": token(&visitor("v-1"))}))
        .await;
    client.expect("welcome").await;
}

#[tokio::test]
async fn a_vanished_client_ends_its_session() {
    let engine = engine_with_alice(Limits::default()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let alice = WsClient::as_identity(addr, &agent("alice")).await;
    assert!(engine.is_online(&tenant(), &agent_id("alice")));
    alice.vanish();
    eventually("the agent's session is dropped", || {
        !engine.is_online(&tenant(), &agent_id("alice"))
    })
    .await;

    // A client that closes politely ends it too.
    let alice = WsClient::as_identity(addr, &agent("alice")).await;
    assert!(engine.is_online(&tenant(), &agent_id("alice")));
    alice.close().await;
    eventually("the agent's session is dropped", || {
        !engine.is_online(&tenant(), &agent_id("alice"))
    })
    .await;
}

fn agent_id(id: &str) -> kf_core::model::AgentId {
    kf_core::model::AgentId::new(id).expect("agent id")
}

#[tokio::test]
async fn a_silent_connection_is_refused_after_the_hello_timeout() {
    let engine = engine_with_alice(Limits::default()).await;
    let addr = start(
        &engine,
        WsConfig::default().hello_timeout(std::time::Duration::from_millis(200)),
    )
    .await;
    let mut client = WsClient::connect(addr).await;
    let frames = client.expect_close(4001).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["code"], "hello_required");

    // A first text frame that is not hello breaks the protocol (1002); a binary first frame is treated as no
    // `hello` at all (4001, an error without id), as protocol.md §1 says.
    let mut client = WsClient::connect(addr).await;
    client.send(json!({"type": "ping"})).await;
    let frames = client.expect_close(1002).await;
    assert_eq!(frames[0]["code"], "hello_required");
    let mut client = WsClient::connect(addr).await;
    client.send_binary(b"hello").await;
    let frames = client.expect_close(4001).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["code"], "hello_required");
    assert!(frames[0].get("id").is_none(), "{}", frames[0]);
}

#[tokio::test]
async fn engine_shutdown_closes_connections_with_1001() {
    let engine = engine_with_alice(Limits::default()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
    let mut visitor = WsClient::as_identity(addr, &visitor("v-1")).await;
    engine.shutdown().await;
    alice.expect_close(1001).await;
    visitor.expect_close(1001).await;
    eventually("the agent's session is dropped", || {
        !engine.is_online(&tenant(), &agent_id("alice"))
    })
    .await;
}

// Regression test for a kf-core bug found here (fixed in `Engine::connect`): `welcome` and `inbox` were queued
// with the slow-consumer bound, so a visitor whose inbox did not fit beside `welcome` in `outbound_queue_bytes`
// was closed with 4008 on every connect, before it could read anything.
#[tokio::test]
async fn a_long_inbox_does_not_make_a_new_connection_a_slow_consumer() {
    let engine = engine_with_alice(Limits::default().with_outbound_queue_bytes(4 * 1024)).await;
    let addr = start(&engine, WsConfig::default()).await;
    let returning = visitor("v-1");
    for n in 0..80 {
        let client_id = kf_core::model::ClientId::new(format!("open-{n}")).expect("client id");
        let opened = engine
            .open(&returning, client_id, None, None, Default::default())
            .await
            .expect("open");
        engine
            .close(&returning, opened.conversation.id)
            .await
            .expect("close");
    }
    // With the bug, the connection was closed (4008) where `welcome` and `inbox` are expected.
    let mut client = WsClient::as_identity(addr, &returning).await;
    let inbox = client.inbox["conversations"].as_array().expect("conversations");
    assert_eq!(inbox.len(), kf_core::Limits::default().inbox_conversations);
    assert!(
        client.inbox.to_string().len() > 4 * 1024,
        "the inbox alone is larger than the queue"
    );
    client.until_pong().await;
}
