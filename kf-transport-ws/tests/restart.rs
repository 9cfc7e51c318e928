//! Restart: the engine and its SQLite store are closed and opened again on the same file; clients reconnect over
//! WebSocket and find their history, seqs, epoch and idempotency keys intact, and new seqs continue the log.

use std::path::Path;
use std::sync::Arc;

use kf_core::Engine;
use kf_core::limits::Limits;
use kf_core::testkit::shop::*;
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::json;

async fn open_server(path: &Path) -> (Engine, Arc<SqliteStore>, std::net::SocketAddr) {
    let store = Arc::new(SqliteStore::open(path, SqliteConfig::default()).expect("open sqlite"));
    let limits = Limits::default().with_requests_per_second(1_000);
    let engine = engine_with(store.clone(), limits, &["alice"]).await;
    let addr = start(&engine, WsConfig::default()).await;
    (engine, store, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_keeps_history_and_continues_the_seqs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");

    let (conversation, epoch, before) = {
        let (engine, store, addr) = open_server(&path).await;
        let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
        let mut visitor = WsClient::connect(addr).await;
        visitor
            .send(json!({"type": "hello", "v": 1, "token": token(&kf_core::testkit::shop::visitor("v-1"))}))
            .await;
        let welcome = visitor.expect("welcome").await;
        visitor.expect("inbox").await;
        let conversation = open(&mut visitor, "open-1").await;
        alice.next_of("conversation").await;
        subscribe(&mut alice, &conversation, 0).await;
        assert_eq!(say(&mut visitor, &conversation, "m-1", "hello").await["seq"], 3);
        assert_eq!(say(&mut alice, &conversation, "r-1", "hi there").await["seq"], 4);
        assert_eq!(say(&mut visitor, &conversation, "m-2", "thanks").await["seq"], 5);
        let before = events_until(&mut alice, 5).await;
        assert_eq!(seqs(&before), [1, 2, 3, 4, 5]);
        engine.shutdown().await;
        store.close().expect("close the store");
        (conversation, welcome["epoch"].clone(), before)
    };

    let (_engine, _store, addr) = open_server(&path).await;
    let mut visitor = WsClient::connect(addr).await;
    visitor
        .send(json!({"type": "hello", "v": 1, "token": token(&kf_core::testkit::shop::visitor("v-1"))}))
        .await;
    let welcome = visitor.expect("welcome").await;
    assert_eq!(
        welcome["epoch"], epoch,
        "same store, same epoch: cursors stay valid"
    );
    let inbox = visitor.expect("inbox").await;
    assert_eq!(inbox["conversations"][0]["id"], conversation.as_str());
    assert_eq!(inbox["conversations"][0]["last_seq"], 5);
    assert_eq!(inbox["conversations"][0]["status"], "assigned");

    // Resume after seq 2: exactly 3..=5, as they were before the restart.
    visitor
        .send(json!({"type": "subscribe", "conversation": conversation, "after": 2, "epoch": epoch}))
        .await;
    let subscribed = visitor.next_of("subscribed").await;
    assert_eq!(subscribed["reset"], false);
    let replayed = events_until(&mut visitor, 5).await;
    assert_eq!(replayed, before[2..].to_vec());

    // A send retried across the restart is still the same message.
    let retried = say(&mut visitor, &conversation, "m-2", "thanks").await;
    assert_eq!(
        (retried["seq"].clone(), retried["duplicate"].clone()),
        (json!(5), json!(true))
    );

    // New messages continue the log, and reach the agent who reconnects with its cursor.
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
    assert_eq!(alice.inbox["conversations"][0]["id"], conversation.as_str());
    subscribe(&mut alice, &conversation, 5).await;
    assert_eq!(
        say(&mut visitor, &conversation, "m-3", "one more thing").await["seq"],
        6
    );
    let live = events_until(&mut alice, 6).await;
    assert_eq!(seqs(&live), [6]);
    assert_eq!(live[0]["data"]["body"]["text"], "one more thing");
}
