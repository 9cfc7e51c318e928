//! The [`WebhookState`](crate::WebhookState) conformance suite (feature `testkit`): functions taking an `Arc<dyn WebhookState>`, and
//! [`webhook_state_conformance_tests!`](crate::webhook_state_conformance_tests) stamping each into a test.
//!
//! ```ignore
//! kf_webhooks::webhook_state_conformance_tests!(async { std::sync::Arc::new(MyState::temporary().await) });
//! ```
//!
//! Functions panic (failing the test) on anything unexpected.

/// Stamps every function of [`state`] into a `#[tokio::test]`, each on a fresh state built by `$make` (an
/// expression of type `impl Future<Output = Arc<impl WebhookState>>`).
#[macro_export]
macro_rules! webhook_state_conformance_tests {
    ($make:expr) => {
        $crate::webhook_state_conformance_tests!(@tests $make;
            subscriptions_are_created_updated_listed_and_deleted_per_tenant,
            enqueue_moves_the_position_only_from_the_expected_one,
            pending_deliveries_come_in_position_order_and_leave_on_success,
            failures_count_and_dead_letters_wait_for_a_replay,
            a_rewind_queues_again_without_touching_what_is_queued,
            deleting_a_subscription_deletes_its_deliveries,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let state = $make.await;
                $crate::testkit::state::$name(state).await;
            }
        )+
    };
}

/// The suite's functions.
pub mod state {
    use std::sync::Arc;

    use kf_core::model::{ConversationId, Seq, TenantId};
    use kf_core::store::FeedPosition;

    use crate::{
        Error, EventType, NewDelivery, Subscription, SubscriptionId, SubscriptionSpec, WebhookState,
    };

    fn ok<T>(result: Result<T, Error>, what: &str) -> T {
        match result {
            Ok(value) => value,
            Err(error) => panic!("{what} failed: {error:?}"),
        }
    }

    fn tenant(name: &str) -> TenantId {
        match TenantId::new(name) {
            Ok(tenant) => tenant,
            Err(error) => panic!("tenant: {error:?}"),
        }
    }

    fn subscription(tenant_name: &str) -> Subscription {
        let spec = SubscriptionSpec::new(
            "http://127.0.0.1:9/hook",
            "0123456789abcdef-secret",
            [EventType::MessageCreated, EventType::ConversationClosed],
        );
        Subscription::new(SubscriptionId::generate(), tenant(tenant_name), spec)
    }

    fn delivery(position: u64, conversation: ConversationId, seq: u64) -> NewDelivery {
        NewDelivery::new(
            FeedPosition(position),
            conversation,
            Seq(seq),
            EventType::MessageCreated,
            format!("{{\"position\":{position}}}"),
        )
    }

    async fn created(state: &Arc<dyn WebhookState>, tenant_name: &str, position: u64) -> Subscription {
        let subscription = subscription(tenant_name);
        ok(
            state
                .create_subscription(subscription.clone(), FeedPosition(position))
                .await,
            "create",
        );
        subscription
    }

    fn positions(deliveries: &[crate::Delivery]) -> Vec<u64> {
        deliveries.iter().map(|delivery| delivery.position.0).collect()
    }

    /// Create, a second create of the same id (conflict), update (spec replaced, position kept; another
    /// tenant's update finds nothing), list, delete (only by its tenant).
    pub async fn subscriptions_are_created_updated_listed_and_deleted_per_tenant(
        state: Arc<dyn WebhookState>,
    ) {
        assert!(ok(state.subscriptions().await, "list").is_empty());
        let shop = created(&state, "shop", 7).await;
        let other = created(&state, "other", 0).await;
        assert!(matches!(
            state.create_subscription(shop.clone(), FeedPosition(1)).await,
            Err(Error::Conflict(_))
        ));
        let listed = ok(state.subscriptions().await, "list");
        assert_eq!(listed.len(), 2);
        let mine = listed.iter().find(|entry| entry.subscription.id == shop.id);
        let Some(mine) = mine else { panic!("not listed") };
        assert_eq!((&mine.subscription, mine.position), (&shop, FeedPosition(7)));

        let mut changed = shop.clone();
        changed.spec = SubscriptionSpec::new(
            "https://hooks.example/kf",
            "another-secret-0123",
            [EventType::ALL[0]],
        )
        .with_active(false);
        assert!(ok(state.update_subscription(changed.clone()).await, "update"));
        let mut foreign = changed.clone();
        foreign.tenant = tenant("other");
        assert!(!ok(state.update_subscription(foreign).await, "update"));
        let listed = ok(state.subscriptions().await, "list");
        let mine = listed.iter().find(|entry| entry.subscription.id == shop.id);
        let Some(mine) = mine else { panic!("not listed") };
        assert_eq!((&mine.subscription, mine.position), (&changed, FeedPosition(7)));

        assert!(!ok(
            state.delete_subscription(&tenant("other"), &shop.id).await,
            "delete"
        ));
        assert!(ok(
            state.delete_subscription(&tenant("shop"), &shop.id).await,
            "delete"
        ));
        assert!(!ok(
            state.delete_subscription(&tenant("shop"), &shop.id).await,
            "delete"
        ));
        let listed = ok(state.subscriptions().await, "list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].subscription, other);
    }

    /// `enqueue` queues and moves the position in one step, only from the expected position; a delivery already
    /// queued is kept as it is; an unknown subscription is refused.
    pub async fn enqueue_moves_the_position_only_from_the_expected_one(state: Arc<dyn WebhookState>) {
        let sub = created(&state, "shop", 0).await;
        let conversation = ConversationId::generate();
        let first = vec![delivery(2, conversation, 1), delivery(5, conversation, 2)];
        assert!(ok(
            state
                .enqueue(&sub.id, FeedPosition(0), first, FeedPosition(6), 100)
                .await,
            "enqueue"
        ));
        // A stale expected position (another writer moved it): nothing happens.
        let stale = vec![delivery(7, conversation, 3)];
        assert!(!ok(
            state
                .enqueue(&sub.id, FeedPosition(0), stale, FeedPosition(9), 100)
                .await,
            "enqueue"
        ));
        let listed = ok(state.subscriptions().await, "list");
        assert_eq!(listed[0].position, FeedPosition(6));
        let pending = ok(state.pending(&sub.id, 10).await, "pending");
        assert_eq!(positions(&pending), [2, 5]);
        assert!(
            pending
                .iter()
                .all(|d| d.attempts == 0 && d.next_attempt_at == 100 && !d.dead)
        );
        assert_eq!(pending[0].id(), format!("{}:2", sub.id));
        assert_eq!(pending[0].body, "{\"position\":2}");
        assert_eq!((pending[1].conversation, pending[1].seq), (conversation, Seq(2)));
        // Queued again (after a rewind): the queued one keeps its attempts.
        ok(
            state
                .failed(&sub.id, FeedPosition(2), 3, 500, "HTTP 500", false)
                .await,
            "failed",
        );
        let again = vec![delivery(2, conversation, 1), delivery(7, conversation, 3)];
        assert!(ok(
            state
                .enqueue(&sub.id, FeedPosition(6), again, FeedPosition(7), 900)
                .await,
            "enqueue"
        ));
        let pending = ok(state.pending(&sub.id, 10).await, "pending");
        assert_eq!(positions(&pending), [2, 5, 7]);
        assert_eq!((pending[0].attempts, pending[0].next_attempt_at), (3, 500));
        // An empty batch moves the position alone.
        assert!(ok(
            state
                .enqueue(&sub.id, FeedPosition(7), vec![], FeedPosition(40), 0)
                .await,
            "enqueue"
        ));
        assert_eq!(
            ok(state.subscriptions().await, "list")[0].position,
            FeedPosition(40)
        );
        let unknown = SubscriptionId::generate();
        assert!(!ok(
            state
                .enqueue(&unknown, FeedPosition(0), vec![], FeedPosition(1), 0)
                .await,
            "enqueue"
        ));
    }

    /// Pending deliveries come in position order, limited; a success removes one; subscriptions do not see each
    /// other's.
    pub async fn pending_deliveries_come_in_position_order_and_leave_on_success(
        state: Arc<dyn WebhookState>,
    ) {
        let sub = created(&state, "shop", 0).await;
        let other = created(&state, "shop", 0).await;
        let (a, b) = (ConversationId::generate(), ConversationId::generate());
        let batch = vec![
            delivery(9, a, 3),
            delivery(3, a, 1),
            delivery(4, b, 1),
            delivery(6, a, 2),
        ];
        assert!(ok(
            state
                .enqueue(&sub.id, FeedPosition(0), batch, FeedPosition(9), 0)
                .await,
            "enqueue"
        ));
        assert!(ok(
            state
                .enqueue(
                    &other.id,
                    FeedPosition(0),
                    vec![delivery(4, b, 1)],
                    FeedPosition(9),
                    0
                )
                .await,
            "enqueue"
        ));
        assert_eq!(
            positions(&ok(state.pending(&sub.id, 10).await, "pending")),
            [3, 4, 6, 9]
        );
        assert_eq!(positions(&ok(state.pending(&sub.id, 2).await, "pending")), [3, 4]);
        ok(state.succeeded(&sub.id, FeedPosition(4)).await, "succeeded");
        ok(state.succeeded(&sub.id, FeedPosition(4)).await, "succeeded twice");
        assert_eq!(
            positions(&ok(state.pending(&sub.id, 10).await, "pending")),
            [3, 6, 9]
        );
        assert_eq!(positions(&ok(state.pending(&other.id, 10).await, "pending")), [4]);
    }

    /// A failure records attempts, next time and error; a dead letter leaves the pending list for the dead
    /// letters, and a replay makes every dead letter pending again with no attempts.
    pub async fn failures_count_and_dead_letters_wait_for_a_replay(state: Arc<dyn WebhookState>) {
        let sub = created(&state, "shop", 0).await;
        let c = ConversationId::generate();
        let batch = vec![delivery(1, c, 1), delivery(2, c, 2), delivery(3, c, 3)];
        assert!(ok(
            state
                .enqueue(&sub.id, FeedPosition(0), batch, FeedPosition(3), 10)
                .await,
            "enqueue"
        ));
        ok(
            state
                .failed(&sub.id, FeedPosition(1), 1, 2_000, "timed out", false)
                .await,
            "failed",
        );
        let pending = ok(state.pending(&sub.id, 10).await, "pending");
        assert_eq!(
            (
                pending[0].attempts,
                pending[0].next_attempt_at,
                pending[0].last_error.as_deref()
            ),
            (1, 2_000, Some("timed out"))
        );
        ok(
            state
                .failed(&sub.id, FeedPosition(1), 5, 9_000, "HTTP 503", true)
                .await,
            "failed",
        );
        ok(
            state
                .failed(&sub.id, FeedPosition(3), 5, 9_000, "HTTP 410", true)
                .await,
            "failed",
        );
        assert_eq!(positions(&ok(state.pending(&sub.id, 10).await, "pending")), [2]);
        let dead = ok(state.dead_letters(&sub.id, 10).await, "dead letters");
        assert_eq!(positions(&dead), [1, 3]);
        assert!(dead.iter().all(|d| d.dead && d.attempts == 5));
        assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 503"));
        assert_eq!(ok(state.replay_dead_letters(&sub.id, 77).await, "replay"), 2);
        assert!(ok(state.dead_letters(&sub.id, 10).await, "dead letters").is_empty());
        let pending = ok(state.pending(&sub.id, 10).await, "pending");
        assert_eq!(positions(&pending), [1, 2, 3]);
        assert!(pending[0].attempts == 0 && pending[0].next_attempt_at == 77 && !pending[0].dead);
        assert_eq!(ok(state.replay_dead_letters(&sub.id, 77).await, "replay"), 0);
    }

    /// A rewind sets the position (lower or higher); unknown subscriptions answer false.
    pub async fn a_rewind_queues_again_without_touching_what_is_queued(state: Arc<dyn WebhookState>) {
        let sub = created(&state, "shop", 50).await;
        let c = ConversationId::generate();
        assert!(ok(
            state
                .enqueue(
                    &sub.id,
                    FeedPosition(50),
                    vec![delivery(51, c, 1)],
                    FeedPosition(60),
                    0
                )
                .await,
            "enqueue"
        ));
        assert!(ok(state.rewind(&sub.id, FeedPosition(10)).await, "rewind"));
        assert_eq!(
            ok(state.subscriptions().await, "list")[0].position,
            FeedPosition(10)
        );
        assert_eq!(positions(&ok(state.pending(&sub.id, 10).await, "pending")), [51]);
        assert!(!ok(
            state.rewind(&SubscriptionId::generate(), FeedPosition(1)).await,
            "rewind"
        ));
    }

    /// Deleting a subscription deletes its pending deliveries and dead letters.
    pub async fn deleting_a_subscription_deletes_its_deliveries(state: Arc<dyn WebhookState>) {
        let sub = created(&state, "shop", 0).await;
        let c = ConversationId::generate();
        assert!(ok(
            state
                .enqueue(
                    &sub.id,
                    FeedPosition(0),
                    vec![delivery(1, c, 1), delivery(2, c, 2)],
                    FeedPosition(2),
                    0
                )
                .await,
            "enqueue"
        ));
        ok(
            state.failed(&sub.id, FeedPosition(1), 9, 0, "gone", true).await,
            "failed",
        );
        assert!(ok(
            state.delete_subscription(&tenant("shop"), &sub.id).await,
            "delete"
        ));
        assert!(ok(state.pending(&sub.id, 10).await, "pending").is_empty());
        assert!(ok(state.dead_letters(&sub.id, 10).await, "dead letters").is_empty());
        // The same id created again starts empty.
        ok(
            state.create_subscription(sub.clone(), FeedPosition(0)).await,
            "create again",
        );
        assert!(ok(state.pending(&sub.id, 10).await, "pending").is_empty());
    }
}
