//! One conversation followed through the logs by its span fields: a visitor and an agent talk over WebSocket, the
//! visitor also posts over SSE, another visitor talks at the same time; the captured log lines that carry
//! `conversation=<id>` tell the first conversation's story (connections, requests, commits) and nothing of the
//! other one. The spans and fields are documented in `docs/observability.md`.
//!
//! One test in this binary: the subscriber is the process's.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use kf_core::testkit::shop::{self, agent, engine_with_alice, token, visitor};
use kf_transport_ws::testkit::{WsClient, open, say, subscribe};
use serde_json::json;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Where the subscriber writes: a buffer the test reads.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("buffer").clone();
        String::from_utf8(bytes)
            .expect("utf-8 logs")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

async fn serve(engine: &kf_core::Engine) -> SocketAddr {
    let app = kf_demo::app(engine.clone(), shop::tokens(), kf_widget::WidgetConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_conversation_is_followed_through_the_logs_by_its_fields() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(
            "kf_core=debug,kf_transport_ws=debug,kf_transport_sse=debug",
        ))
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let engine = engine_with_alice(shop::limits()).await;
    let addr = serve(&engine).await;

    // Conversation A: visitor v-1 and alice, over WebSocket; v-1 also posts over SSE.
    let mut v1 = WsClient::hello(addr, &token(&visitor("v-1"))).await;
    let a = open(&mut v1, "open-a").await;
    let mut alice = WsClient::hello(addr, &token(&agent("alice"))).await;
    subscribe(&mut alice, &a, 0).await;
    say(&mut v1, &a, "a-1", "hello from v-1").await;
    say(&mut alice, &a, "a-2", "hello from alice").await;
    let body = json!({"conversation": a, "client_id": "a-3", "body": {"text": "over SSE"}});
    let reply = kf_transport_sse::testkit::post(
        addr,
        "/sse/send",
        Some(&token(&visitor("v-1"))),
        &body.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    // Conversation B, at the same time: visitor v-2.
    let mut v2 = WsClient::hello(addr, &token(&visitor("v-2"))).await;
    let b = open(&mut v2, "open-b").await;
    say(&mut v2, &b, "b-1", "hello from v-2").await;
    v1.close().await;
    v2.close().await;
    alice.close().await;
    // The connection spans close (and are logged) when the server has seen the connections end.
    let lines = {
        let deadline = tokio::time::Instant::now() + shop::WAIT;
        loop {
            let lines = captured.lines();
            let closed = lines
                .iter()
                .filter(|line| line.contains("kf.connection{") && line.contains(": close"))
                .count();
            if closed >= 3 {
                break lines;
            }
            assert!(tokio::time::Instant::now() < deadline, "connection spans closed");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };

    // `grep conversation=<A>`.
    let of_a: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains(&format!("conversation={a}")))
        .collect();
    let has = |what: &str, parts: &[&str]| {
        assert!(
            of_a.iter()
                .any(|line| parts.iter().all(|part| line.contains(part))),
            "{what}: no line of conversation {a} with {parts:?} in:\n{}",
            of_a.iter()
                .map(|line| line.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    };
    let v1_ws = "kf.connection{transport=\"ws\" role=\"visitor\" tenant=shop identity=visitor:v-1";
    let alice_ws = "kf.connection{transport=\"ws\" role=\"agent\" tenant=shop identity=agent:alice";
    has(
        "the visitor's open, with the conversation it created",
        &[v1_ws, "kf.request{type=\"open\"", "close"],
    );
    has(
        "the conversation's creation committed",
        &[
            v1_ws,
            "kf.commit{",
            "event committed",
            "seq=1",
            "kind=\"created\"",
        ],
    );
    has(
        "the visitor's message",
        &[
            v1_ws,
            "kf.request{type=\"send\"",
            "kf.commit{",
            "kind=\"message\"",
        ],
    );
    has(
        "the assignment to alice, made when she connected",
        &[alice_ws, "kf.commit{", "event committed", "kind=\"assigned\""],
    );
    has("alice subscribing", &[alice_ws, "kf.request{type=\"subscribe\""]);
    has(
        "alice's answer",
        &[alice_ws, "kf.request{type=\"send\"", "kind=\"message\""],
    );
    has(
        "the visitor's message over SSE",
        &[
            "kf.post{transport=\"sse\" role=\"visitor\" tenant=shop identity=visitor:v-1",
            "kf.request{type=\"send\"",
            "kind=\"message\"",
        ],
    );
    // Nothing of conversation B, nor of its visitor, among them.
    assert!(
        of_a.iter()
            .all(|line| !line.contains(&b) && !line.contains("visitor:v-2")),
        "conversation A's lines mention B"
    );
    // And B is followed the same way.
    assert!(
        lines
            .iter()
            .any(|line| line.contains(&format!("conversation={b}")) && line.contains("identity=visitor:v-2")),
        "conversation B's lines"
    );
}
