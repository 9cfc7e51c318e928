//! `GET /metrics` of the demo's app, scraped before and after each thing the test does, over real sockets on
//! 127.0.0.1: every series named in `docs/observability.md` moves when the test drives it.
//!
//! One test in this binary: the recorder and the series are the process's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use kf_core::model::{AgentId, ClientId, ConversationId, MessageBody};
use kf_core::telemetry::names;
use kf_core::testkit::shop::{self, WAIT, agent, engine_with, tenant, token, visitor};
use kf_store_sqlite::{SqliteConfig, SqliteStore, Synchronous};
use kf_transport_ws::testkit::{WsClient, open, say, subscribe};
use kf_webhooks::{EventType, MemoryState, SubscriptionSpec, WebhookConfig, Webhooks};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// A sample's labels: (key, value) pairs.
type Labels = Vec<(String, String)>;

/// One scrape: each sample (`name{labels}`) with its value.
struct Scrape(Vec<(String, Labels, f64)>);

impl Scrape {
    /// The sum of the samples of `name` that carry every label of `labels` (0 when there is none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(sample, sample_labels, _)| {
                sample == name
                    && labels
                        .iter()
                        .all(|(key, value)| sample_labels.iter().any(|(k, v)| k == key && v == value))
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    /// Whether a sample of `name` with `labels` is present.
    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0.iter().any(|(sample, sample_labels, _)| {
            sample == name
                && labels
                    .iter()
                    .all(|(key, value)| sample_labels.iter().any(|(k, v)| k == key && v == value))
        })
    }
}

/// Parses the Prometheus text format: `name{key="value",…} value` lines; comments skipped.
fn parse(text: &str) -> Scrape {
    let mut samples = Vec::new();
    for line in text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.trim_matches('"').to_owned()))
            .collect();
        samples.push((name.to_owned(), labels, value));
    }
    Scrape(samples)
}

/// `GET /metrics` over a fresh connection.
async fn scrape(addr: SocketAddr) -> Scrape {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("utf-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain"), "{head}");
    parse(body)
}

/// Scrapes until `condition` holds (the server counts after it writes, so the client may see a frame first).
async fn until(addr: SocketAddr, what: &str, condition: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let scrape = scrape(addr).await;
        if condition(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const WS_VISITOR: &[(&str, &str)] = &[("transport", "ws"), ("role", "visitor")];
const WS_AGENT: &[(&str, &str)] = &[("transport", "ws"), ("role", "agent")];
const SSE_VISITOR: &[(&str, &str)] = &[("transport", "sse"), ("role", "visitor")];
const SUPPORT: &[(&str, &str)] = &[("tenant", "shop"), ("group", "support")];
const SQLITE: &[(&str, &str)] = &[("store", "sqlite")];

/// A webhook receiver: `/held` answers 200 once the gate opens, `/fail` always 500.
async fn receiver(gate: watch::Receiver<bool>) -> SocketAddr {
    let app = Router::new()
        .route(
            "/held",
            post(move || {
                let mut gate = gate.clone();
                async move {
                    let _ = gate.wait_for(|open| *open).await;
                    StatusCode::OK
                }
            }),
        )
        .route("/fail", post(|| async { StatusCode::INTERNAL_SERVER_ERROR }));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_named_series_moves_as_the_test_drives_it() {
    // Before anything registers its series.
    kf_demo::observability::prometheus().expect("the recorder installs");
    let dir = tempfile::tempdir().expect("tempdir");
    // OFF: the slow-consumer step commits a few thousand messages; durability is not what is measured here.
    let config = SqliteConfig::default().with_synchronous(Synchronous::Off);
    let store = Arc::new(SqliteStore::open(dir.path().join("kf.sqlite3"), config).expect("store"));
    let limits = shop::limits()
        .with_outbound_queue_bytes(16 * 1024)
        .with_requests_per_second(5);
    let engine = engine_with(store.clone(), limits, &["alice"]).await;

    // Webhooks: `/held` gets every event but answers only when the gate opens (one in flight at most, so the
    // worker falls behind the feed); `/fail` gets `conversation.created` and never accepts it.
    let (gate, gate_rx) = watch::channel(false);
    let hooks = receiver(gate_rx).await;
    let mut config = WebhookConfig::default()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .with_request_timeout(Duration::from_secs(5))
        .with_poll_interval(Duration::from_millis(50))
        .with_max_attempts(2)
        .with_max_pending(1);
    config.page = 1;
    let webhooks = Webhooks::new(store.clone(), Arc::new(MemoryState::new()), config);
    let spec = |path: &str, events: &[EventType]| {
        SubscriptionSpec::new(
            format!("http://{hooks}{path}"),
            "metrics-test-secret",
            events.iter().copied(),
        )
    };
    webhooks
        .create(&tenant(), spec("/held", &EventType::ALL))
        .await
        .expect("subscription");
    webhooks
        .create(&tenant(), spec("/fail", &[EventType::ConversationCreated]))
        .await
        .expect("subscription");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn({
        let webhooks = webhooks.clone();
        let wake = engine.feed_wake();
        async move {
            webhooks
                .run_woken(
                    async {
                        let _ = stopped.await;
                    },
                    Some(wake),
                )
                .await
        }
    });

    let app = kf_demo::app(engine.clone(), shop::tokens(), kf_widget::WidgetConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let before = scrape(addr).await;

    // A visitor connects over WebSocket: `hello` in, `welcome` and `inbox` out.
    let mut v1 = WsClient::hello(addr, &token(&visitor("v-1"))).await;
    let connected = until(addr, "the visitor's connection counts", |m| {
        m.value(names::CONNECTIONS, WS_VISITOR) == before.value(names::CONNECTIONS, WS_VISITOR) + 1.0
            && m.value(names::FRAMES_SENT, WS_VISITOR) >= before.value(names::FRAMES_SENT, WS_VISITOR) + 2.0
    })
    .await;
    assert_eq!(
        connected.value(names::FRAMES_RECEIVED, WS_VISITOR),
        before.value(names::FRAMES_RECEIVED, WS_VISITOR) + 1.0,
        "hello"
    );

    // It opens a conversation; alice is offline, so it waits in the queue.
    let conversation = open(&mut v1, "open-1").await;
    let queued = until(addr, "the conversation is queued and committed", |m| {
        m.value(names::QUEUE_LENGTH, SUPPORT) == 1.0
            && m.value(names::EVENTS_COMMITTED, &[]) > connected.value(names::EVENTS_COMMITTED, &[])
    })
    .await;
    let batches = |m: &Scrape| m.value(&format!("{}_count", names::STORE_BATCH_SIZE), SQLITE);
    let commits = |m: &Scrape| m.value(&format!("{}_count", names::STORE_COMMIT), SQLITE);
    assert!(
        batches(&queued) > batches(&connected),
        "a group commit's size was recorded"
    );
    assert!(
        commits(&queued) > commits(&connected),
        "a group commit's time was recorded"
    );
    assert!(queued.value(&format!("{}_sum", names::STORE_BATCH_SIZE), SQLITE) >= batches(&queued));
    assert!(queued.has(
        &format!("{}_bucket", names::STORE_COMMIT),
        &[("store", "sqlite"), ("le", "0.001")]
    ));

    // It writes: one frame in, one message committed.
    say(&mut v1, &conversation, "m-1", "hello").await;
    let said = until(addr, "the message is counted", |m| {
        m.value(names::MESSAGES_COMMITTED, &[]) == queued.value(names::MESSAGES_COMMITTED, &[]) + 1.0
    })
    .await;
    assert_eq!(
        said.value(names::FRAMES_RECEIVED, WS_VISITOR),
        connected.value(names::FRAMES_RECEIVED, WS_VISITOR) + 2.0,
        "open and send"
    );

    // Alice connects over a socket with a small receive buffer (for the slow-consumer step): the conversation
    // leaves the queue for her after a recorded wait.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(8 * 1024).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("connect");
    let mut alice = WsClient::over(stream, addr, "/ws").await;
    alice.say_hello(&token(&agent("alice"))).await;
    alice.next_of("conversation").await;
    subscribe(&mut alice, &conversation, 0).await;
    let wait_count = format!("{}_count", names::QUEUE_WAIT);
    let assigned = until(addr, "the conversation is assigned", |m| {
        m.value(names::QUEUE_LENGTH, SUPPORT) == 0.0
            && m.value(&wait_count, SUPPORT) == said.value(&wait_count, SUPPORT) + 1.0
            && m.value(names::CONNECTIONS, WS_AGENT) == said.value(names::CONNECTIONS, WS_AGENT) + 1.0
            && m.value(names::FRAMES_SENT, WS_AGENT) > said.value(names::FRAMES_SENT, WS_AGENT)
    })
    .await;
    assert!(assigned.has(
        &format!("{}_bucket", names::QUEUE_WAIT),
        &[("group", "support"), ("le", "1")]
    ));

    // The same visitor over SSE: a stream counts as a connection; a POST is a frame in.
    let mut stream = kf_transport_sse::testkit::Stream::open(
        addr,
        &format!("/sse/events?token={}", token(&visitor("v-1"))),
        &[],
    )
    .await;
    stream.next_of("welcome").await;
    let streaming = until(addr, "the SSE stream counts", |m| {
        m.value(names::CONNECTIONS, SSE_VISITOR) == assigned.value(names::CONNECTIONS, SSE_VISITOR) + 1.0
            && m.value(names::FRAMES_SENT, SSE_VISITOR) > assigned.value(names::FRAMES_SENT, SSE_VISITOR)
    })
    .await;
    let body = json!({"conversation": conversation, "client_id": "m-sse", "body": {"text": "over SSE"}});
    let reply = kf_transport_sse::testkit::post(
        addr,
        "/sse/send",
        Some(&token(&visitor("v-1"))),
        &body.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let posted = until(addr, "the POST counts", |m| {
        m.value(names::FRAMES_RECEIVED, SSE_VISITOR)
            == streaming.value(names::FRAMES_RECEIVED, SSE_VISITOR) + 1.0
            && m.value(names::MESSAGES_COMMITTED, &[])
                == streaming.value(names::MESSAGES_COMMITTED, &[]) + 1.0
    })
    .await;
    drop(stream);
    let closed = until(addr, "the SSE stream is gone", |m| {
        m.value(names::CONNECTIONS, SSE_VISITOR) == before.value(names::CONNECTIONS, SSE_VISITOR)
    })
    .await;

    // Rate limit: 5 a second, bursts of 10; twenty `typing` frames at once are refused in part.
    for _ in 0..20 {
        v1.send(json!({"type": "typing", "conversation": conversation, "active": true}))
            .await;
    }
    v1.next_where(|frame| frame["type"] == "error" && frame["code"] == "rate_limited")
        .await;
    let limited = until(addr, "refusals are counted", |m| {
        m.value(names::RATE_LIMITED, &[("role", "visitor")])
            > closed.value(names::RATE_LIMITED, &[("role", "visitor")])
    })
    .await;
    assert_eq!(
        limited.value(names::RATE_LIMITED, &[("role", "agent")]),
        before.value(names::RATE_LIMITED, &[("role", "agent")])
    );

    // Webhooks: `/fail`'s delivery fails twice and becomes a dead letter; `/held` holds its first delivery, so
    // the worker falls behind the feed: its lag shows.
    let webhooks_failing = until(addr, "a dead letter", |m| {
        m.value(names::WEBHOOK_DEAD_LETTERS, &[]) == before.value(names::WEBHOOK_DEAD_LETTERS, &[]) + 1.0
            && m.value(names::WEBHOOK_FAILED, &[]) == before.value(names::WEBHOOK_FAILED, &[]) + 2.0
            && m.value(names::FEED_LAG, &[("consumer", "webhooks")]) > 0.0
    })
    .await;
    assert_eq!(
        webhooks_failing.value(names::WEBHOOK_DELIVERED, &[]),
        before.value(names::WEBHOOK_DELIVERED, &[]),
        "nothing accepted while the gate is shut"
    );
    gate.send_replace(true);
    let attempts = format!("{}_count", names::WEBHOOK_ATTEMPT);
    let delivered = until(addr, "the held deliveries go through and the lag drains", |m| {
        m.value(names::WEBHOOK_DELIVERED, &[]) >= webhooks_failing.value(names::WEBHOOK_DELIVERED, &[]) + 3.0
            && m.value(names::FEED_LAG, &[("consumer", "webhooks")]) == 0.0
    })
    .await;
    assert!(delivered.value(&attempts, &[]) >= before.value(&attempts, &[]) + 5.0);

    // The visitor leaves: its connection is no longer counted.
    v1.close().await;
    let left = until(addr, "the visitor's connection is gone", |m| {
        m.value(names::CONNECTIONS, WS_VISITOR) == before.value(names::CONNECTIONS, WS_VISITOR)
    })
    .await;

    // Slow consumer: alice stops reading while messages keep coming; her queue overflows and she is cut off.
    let id: ConversationId = conversation.parse().expect("conversation id");
    let alice_id = AgentId::new("alice").expect("agent id");
    let text = "m".repeat(2048);
    let mut sent = 0_u32;
    while engine.is_online(&tenant(), &alice_id) {
        assert!(sent < 20_000, "alice was never cut off");
        let client_id = ClientId::new(format!("slow-{sent}")).expect("client id");
        engine
            .send(&visitor("v-1"), id, client_id, MessageBody::text(text.clone()))
            .await
            .expect("send");
        sent += 1;
    }
    let slow = until(addr, "the slow consumer is counted", |m| {
        m.value(names::SLOW_CONSUMER_CLOSES, &[]) == left.value(names::SLOW_CONSUMER_CLOSES, &[]) + 1.0
            && m.value(names::CONNECTIONS, WS_AGENT) == before.value(names::CONNECTIONS, WS_AGENT)
    })
    .await;
    assert!(
        slow.value(names::MESSAGES_COMMITTED, &[])
            >= posted.value(names::MESSAGES_COMMITTED, &[]) + f64::from(sent)
    );
    drop(alice);

    let _ = stop.send(());
    worker.await.expect("worker task").expect("worker");
    server.abort();
    store.close().expect("store closes");
}
