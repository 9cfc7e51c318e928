//! A delivery worker in a process of its own, killed with SIGKILL in the middle of deliveries (attempts in
//! flight, failures being recorded), then started again on the same SQLite files: nothing is lost.
//!
//! The worker process is this test binary run again with `KF_WEBHOOKS_CHILD` set: it runs the ignored test
//! `worker_process`, which follows the store's file (written by the parent's engine) and records in the state's.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Mode, Receiver, SECRET, until};
use kf_core::Engine;
use kf_core::model::{ClientId, MessageBody};
use kf_core::store::{ConversationLog, FeedPosition, Store};
use kf_core::testkit::shop::{engine_with, limits, tenant, visitor};
use kf_store_sqlite::SqliteStore;
use kf_webhooks::{EventType, SqliteState, SubscriptionSpec, WebhookConfig, WebhookState, Webhooks};

const CHILD: &str = "KF_WEBHOOKS_CHILD";

#[test]
#[ignore = "the worker process of `a_worker_killed_with_sigkill_loses_nothing`, started by it"]
fn worker_process() {
    let (Ok(log), Ok(state)) = (std::env::var("KF_LOG"), std::env::var("KF_STATE")) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = Arc::new(SqliteStore::open_default(log).expect("store"));
        let state = Arc::new(SqliteState::open(state).expect("state"));
        let config = WebhookConfig::default()
            .with_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .with_request_timeout(Duration::from_millis(200))
            .with_poll_interval(Duration::from_millis(20))
            .with_max_attempts(1000);
        let webhooks = Webhooks::new(store, state, config);
        // Runs until killed.
        webhooks.run(std::future::pending()).await.expect("worker");
    });
}

fn spawn_worker(log: &std::path::Path, state: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "worker_process", "--ignored", "--test-threads", "1"])
        .env(CHILD, "1")
        .env("KF_LOG", log)
        .env("KF_STATE", state)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the worker process")
}

async fn chat(engine: &Engine, tag: &str, conversations: usize, messages: usize) {
    let mut ids = Vec::new();
    for n in 0..conversations {
        let who = visitor(&format!("{tag}-{n}"));
        let opened = engine
            .open(
                &who,
                ClientId::new(format!("open-{tag}-{n}")).expect("id"),
                None,
                None,
                Default::default(),
            )
            .await
            .expect("open");
        ids.push((who, opened.conversation.id));
    }
    for m in 0..messages {
        for (who, id) in &ids {
            let client_id = ClientId::new(format!("m-{tag}-{id}-{m}")).expect("id");
            engine
                .send(who, *id, client_id, MessageBody::text(format!("{m}")))
                .await
                .expect("send");
            // Spread the commits out, so the kill finds deliveries of several kinds under way.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log_path, state_path) = (dir.path().join("kf.sqlite3"), dir.path().join("webhooks.sqlite3"));
    let sqlite = Arc::new(SqliteStore::open_default(&log_path).expect("store"));
    let store: Arc<dyn Store> = sqlite.clone();
    let engine = engine_with(store.clone(), limits(), &["alice"]).await;
    let state = Arc::new(SqliteState::open(&state_path).expect("state"));
    let webhooks = Webhooks::new(store.clone(), state.clone(), WebhookConfig::default());
    let receiver = Receiver::start(
        Mode::Chaos {
            late: Duration::from_millis(400),
        },
        9,
    )
    .await;
    let spec = SubscriptionSpec::new(&receiver.url, SECRET, EventType::ALL);
    let sub = webhooks.create(&tenant(), spec).await.expect("create");
    let from = FeedPosition::ZERO;

    let mut worker = spawn_worker(&log_path, &state_path);
    chat(&engine, "one", 6, 5).await;
    until("deliveries are under way", Duration::from_secs(15), async || {
        receiver.snapshot(|record| record.unique().len() >= 12 && record.failed >= 2)
    })
    .await;
    worker.kill().expect("SIGKILL");
    let _ = worker.wait();
    let before = receiver.snapshot(|record| (record.unique().len(), record.requests));

    // Events while no worker runs, then a new worker process on the same files.
    chat(&engine, "two", 3, 2).await;
    let want: std::collections::HashSet<String> = sqlite
        .feed_after(from, usize::MAX)
        .await
        .expect("feed")
        .into_iter()
        .filter(|entry| sub.wants(&entry.event.data))
        .map(|entry| format!("{}:{}", sub.id, entry.position.0))
        .collect();
    let mut worker = spawn_worker(&log_path, &state_path);
    until("everything is delivered", Duration::from_secs(15), async || {
        receiver.snapshot(|record| record.unique()) == want
            && state.pending(&sub.id, 10_000).await.expect("pending").is_empty()
    })
    .await;
    worker.kill().expect("SIGKILL");
    let _ = worker.wait();
    receiver.snapshot(|record| {
        assert_eq!(record.bad_signatures, 0);
        assert_eq!(record.deduplicated().len(), want.len());
        record.assert_per_conversation_order();
    });
    assert!(state.dead_letters(&sub.id, 10).await.expect("dead").is_empty());
    eprintln!(
        "kill -9: {} events, {} taken in {} requests before the kill, {} requests in all",
        want.len(),
        before.0,
        before.1,
        receiver.snapshot(|record| record.requests)
    );
    drop(engine);
    sqlite.close().expect("close");
}
