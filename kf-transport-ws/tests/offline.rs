//! Working hours over WebSocket on a SQLite file, with a manual clock: outside the hours a visitor leaves an
//! offline message; after a restart, in office hours, an agent finds it after its inbox and takes it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kf_core::Engine;
use kf_core::clock::ManualClock;
use kf_core::hours::WorkingHours;
use kf_core::model::{Agent, AgentId, Group, GroupId, Timestamp};
use kf_core::testkit::shop::*;
use kf_store_sqlite::SqliteStore;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::json;

/// Monday 2026-11-23, 20:00 in Europe/Berlin is 19:00 UTC.
const MONDAY_EVENING_BERLIN: u64 = 1_795_460_400_000;

async fn server(path: &Path, now: Timestamp) -> (Engine, Arc<SqliteStore>, std::net::SocketAddr) {
    let store = Arc::new(SqliteStore::open_default(path).expect("open sqlite"));
    let engine = Engine::builder(store.clone(), Arc::new(tokens()))
        .clock(Arc::new(ManualClock::new(now)))
        .presence_grace(Duration::ZERO)
        .build()
        .await
        .expect("engine");
    let support = GroupId::new("support").expect("id");
    engine
        .put_group(Group::new(tenant(), support.clone(), "Support"))
        .await
        .expect("group");
    engine
        .put_agent(
            Agent::new(tenant(), AgentId::new("alice").expect("id"), "Alice", 3).with_groups(vec![support]),
        )
        .await
        .expect("agent");
    let addr = start(&engine, WsConfig::default()).await;
    (engine, store, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_message_left_after_hours_is_taken_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let support = GroupId::new("support").expect("id");

    let conversation = {
        let (engine, store, addr) = server(&path, Timestamp(MONDAY_EVENING_BERLIN)).await;
        let hours: WorkingHours = serde_json::from_value(json!({
            "time_zone": "Europe/Berlin",
            "weekly": {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]}
        }))
        .expect("hours");
        engine
            .put_group_hours(&tenant(), &support, Some(hours))
            .await
            .expect("hours");
        let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
        let mut visitor = WsClient::as_identity(addr, &visitor("v-1")).await;
        visitor
            .send(json!({"type": "open", "id": "o", "client_id": "open-1"}))
            .await;
        let opened = visitor.expect("opened").await;
        assert_eq!(opened["conversation"]["status"], "offline", "{opened}");
        let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();
        let told = alice.next_of("offline_messages").await;
        assert_eq!(told["conversations"][0]["id"], conversation.as_str());
        assert_eq!(
            say(&mut visitor, &conversation, "m-1", "Please call me back").await["seq"],
            3
        );
        engine.shutdown().await;
        store.close().expect("close the store");
        conversation
    };

    // Tuesday 10:00 in Berlin: open. The hours and the offline message come back from the file.
    let tuesday = Timestamp(MONDAY_EVENING_BERLIN + 14 * 3_600_000);
    let (engine, _store, addr) = server(&path, tuesday).await;
    assert!(engine.is_group_open(&tenant(), &support));
    assert!(engine.group_hours(&tenant(), &support).is_some());
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
    assert_eq!(alice.inbox["conversations"], json!([]));
    let waiting = alice.expect("offline_messages").await;
    assert_eq!(waiting["conversations"][0]["id"], conversation.as_str());
    assert_eq!(waiting["conversations"][0]["last_seq"], 3);
    alice
        .send(json!({"type": "take", "id": "t", "conversation": conversation}))
        .await;
    let taken = alice.next_of("taken").await;
    assert_eq!(taken["conversation"]["status"], "assigned");
    assert_eq!(taken["conversation"]["agent"], "alice");
    subscribe(&mut alice, &conversation, 0).await;
    let log = events_until(&mut alice, 4).await;
    let kinds: Vec<&str> = log
        .iter()
        .map(|e| e["data"]["type"].as_str().expect("type"))
        .collect();
    assert_eq!(kinds, ["created", "offline", "message", "assigned"]);
    assert_eq!(log[3]["author"], json!({"role": "agent", "id": "alice"}));
    // Live conversations are routed again.
    let mut other = WsClient::as_identity(addr, &visitor("v-2")).await;
    other.send(json!({"type": "open", "client_id": "open-1"})).await;
    assert_eq!(other.expect("opened").await["conversation"]["status"], "assigned");
}
