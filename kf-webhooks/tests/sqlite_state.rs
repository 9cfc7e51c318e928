//! `SqliteState` in a file: what it records survives reopening, and it can share the store's own file.

use std::sync::Arc;

use kf_core::model::{ConversationId, Seq};
use kf_core::store::{ConversationLog, FeedPosition};
use kf_core::testkit::shop::tenant;
use kf_store_sqlite::SqliteStore;
use kf_webhooks::{
    EventType, NewDelivery, SqliteState, Subscription, SubscriptionId, SubscriptionSpec, WebhookState,
};

fn subscription() -> Subscription {
    let spec = SubscriptionSpec::new("http://127.0.0.1:9/hook", "0123456789abcdef", EventType::ALL);
    Subscription::new(SubscriptionId::generate(), tenant(), spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_survives_reopening_and_can_share_the_stores_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let store = SqliteStore::open_default(&path).expect("store");
    let sub = subscription();
    let conversation = ConversationId::generate();
    {
        let state = SqliteState::open(&path).expect("state in the store's file");
        state
            .create_subscription(sub.clone(), FeedPosition(3))
            .await
            .expect("create");
        let delivery = NewDelivery::new(
            FeedPosition(4),
            conversation,
            Seq(1),
            EventType::ConversationCreated,
            "{}".into(),
        );
        assert!(
            state
                .enqueue(&sub.id, FeedPosition(3), vec![delivery], FeedPosition(4), 5)
                .await
                .expect("enqueue")
        );
        state
            .failed(&sub.id, FeedPosition(4), 2, 1_000, "HTTP 502", false)
            .await
            .expect("failed");
    }
    // The store still works on its file, and reopens (its migrations ignore the webhook tables).
    assert_eq!(store.feed_head().await.expect("head"), FeedPosition::ZERO);
    store.close().expect("close");
    let store = Arc::new(SqliteStore::open_default(&path).expect("store again"));
    let state = SqliteState::open(&path).expect("state again");
    let listed = state.subscriptions().await.expect("list");
    assert_eq!((listed.len(), listed[0].position), (1, FeedPosition(4)));
    assert_eq!(listed[0].subscription, sub);
    let pending = state.pending(&sub.id, 10).await.expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].attempts,
            pending[0].next_attempt_at,
            pending[0].last_error.as_deref()
        ),
        (2, 1_000, Some("HTTP 502"))
    );
    assert_eq!(pending[0].id(), format!("{}:4", sub.id));
    store.close().expect("close");
}
