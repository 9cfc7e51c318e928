//! The delivery worker over real sockets on 127.0.0.1, against receivers that fail, time out, answer slowly or
//! are down, on the memory state and on a SQLite state across a worker restart.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Mode, Receiver, SECRET, until};
use kf_core::Engine;
use kf_core::model::{ClientId, ConversationId, MessageBody};
use kf_core::store::{ConversationLog, FeedPosition, MemoryStore, Store};
use kf_core::testkit::shop::{engine_with, limits, tenant, visitor};
use kf_store_sqlite::SqliteStore;
use kf_webhooks::{
    EventType, MemoryState, SqliteState, Subscription, SubscriptionSpec, WebhookConfig, WebhookState,
    Webhooks,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Short intervals: retries within milliseconds, an attempt timeout of 200 ms.
fn config() -> WebhookConfig {
    WebhookConfig::default()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(40))
        .with_request_timeout(Duration::from_millis(200))
        .with_poll_interval(Duration::from_millis(50))
        .with_max_attempts(1000)
}

/// A running worker and the way to stop it.
struct Worker {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), kf_webhooks::Error>>,
}

impl Worker {
    fn start(webhooks: &Webhooks, engine: &Engine) -> Worker {
        let (stop, stopped) = oneshot::channel::<()>();
        let webhooks = webhooks.clone();
        let wake = engine.feed_wake();
        let task = tokio::spawn(async move {
            webhooks
                .run_woken(
                    async {
                        let _ = stopped.await;
                    },
                    Some(wake),
                )
                .await
        });
        Worker { stop, task }
    }

    /// Graceful shutdown: waits for the attempts in flight.
    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.expect("worker task").expect("worker");
    }
}

/// Opens `conversations` conversations (visitors `{tag}-n`), sends `messages` messages in each, closes half of
/// them (visitor close), interleaving the conversations.
async fn chat(engine: &Engine, tag: &str, conversations: usize, messages: usize) -> Vec<ConversationId> {
    let mut ids = Vec::new();
    for n in 0..conversations {
        let who = visitor(&format!("{tag}-{n}"));
        let client_id = ClientId::new(format!("open-{tag}-{n}")).expect("id");
        let opened = engine
            .open(&who, client_id, None, None, Default::default())
            .await
            .expect("open");
        ids.push(opened.conversation.id);
    }
    for m in 0..messages {
        for (n, id) in ids.iter().enumerate() {
            let who = visitor(&format!("{tag}-{n}"));
            let client_id = ClientId::new(format!("m-{tag}-{n}-{m}")).expect("id");
            engine
                .send(&who, *id, client_id, MessageBody::text(format!("{tag} {n} {m}")))
                .await
                .expect("send");
        }
    }
    for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
        let who = visitor(&format!("{tag}-{n}"));
        engine.close(&who, *id).await.expect("close");
        let client_id = ClientId::new(format!("rate-{tag}-{n}")).expect("id");
        engine.rate(&who, *id, client_id, 5, None).await.expect("rate");
    }
    ids
}

/// The delivery ids a subscription must get: every event of its tenant after `from` whose type it wants.
async fn expected(
    log: &dyn ConversationLog,
    subscription: &Subscription,
    from: FeedPosition,
) -> HashSet<String> {
    log.feed_after(from, usize::MAX)
        .await
        .expect("feed")
        .into_iter()
        .filter(|entry| entry.tenant == subscription.tenant && subscription.wants(&entry.event.data))
        .map(|entry| format!("{}:{}", subscription.id, entry.position.0))
        .collect()
}

async fn pending(state: &dyn WebhookState, subscription: &Subscription) -> usize {
    state
        .pending(&subscription.id, 10_000)
        .await
        .expect("pending")
        .len()
}

async fn subscribe(webhooks: &Webhooks, url: &str, events: &[EventType]) -> Subscription {
    webhooks
        .create(
            &tenant(),
            SubscriptionSpec::new(url, SECRET, events.iter().copied()),
        )
        .await
        .expect("create")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaotic_receiver_gets_every_event_at_least_once_in_order_and_signed() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine_with(store.clone(), limits(), &["alice"]).await;
    let state = Arc::new(MemoryState::new());
    let webhooks = Webhooks::new(store.clone(), state.clone(), config());
    // Events committed before the subscription exists are not delivered.
    chat(&engine, "before", 2, 1).await;
    let chaos = Receiver::start(
        Mode::Chaos {
            late: Duration::from_millis(400),
        },
        15,
    )
    .await;
    let messages = Receiver::start(Mode::Up, 16).await;
    let all = subscribe(&webhooks, &chaos.url, &EventType::ALL).await;
    let only_messages = subscribe(&webhooks, &messages.url, &[EventType::MessageCreated]).await;
    let from = webhooks.get(&tenant(), &all.id).await.expect("get").position;
    let worker = Worker::start(&webhooks, &engine);
    // Events committed while the worker runs, in two bursts.
    chat(&engine, "a", 6, 4).await;
    chat(&engine, "b", 4, 3).await;
    let want_all = expected(store.as_ref(), &all, from).await;
    let want_messages = expected(store.as_ref(), &only_messages, from).await;
    until("every delivery was taken", Duration::from_secs(15), async || {
        chaos.snapshot(|record| record.unique()) == want_all
            && messages.snapshot(|record| record.unique()) == want_messages
            && pending(state.as_ref(), &all).await == 0
    })
    .await;
    worker.shutdown().await;

    for (receiver, want) in [(&chaos, &want_all), (&messages, &want_messages)] {
        receiver.snapshot(|record| {
            assert_eq!(record.bad_signatures, 0, "every request signed and consistent");
            // Deduplicating by delivery id: each exactly once, nothing else.
            assert_eq!(record.deduplicated().len(), want.len());
            assert_eq!(&record.unique(), want);
            record.assert_per_conversation_order();
        });
    }
    let kinds: HashSet<String> =
        chaos.snapshot(|record| record.taken.iter().map(|t| t.kind.clone()).collect());
    let want_kinds: HashSet<String> = [
        "conversation.created",
        "message.created",
        "conversation.missed",
        "conversation.closed",
        "conversation.rated",
    ]
    .map(str::to_owned)
    .into();
    assert!(want_kinds.is_subset(&kinds), "{kinds:?}");
    assert!(messages.snapshot(|record| record.taken.iter().all(|t| t.kind == "message.created")));
    let (requests, failed, late, taken) =
        chaos.snapshot(|record| (record.requests, record.failed, record.late, record.taken.len()));
    eprintln!(
        "chaos receiver: {} events, {requests} requests, {failed} failed, {late} answered too late, {} duplicates",
        want_all.len(),
        taken - want_all.len()
    );
    assert!(
        failed > 0 && late > 0,
        "the receiver failed and timed out some of the time"
    );
    assert!(taken > want_all.len(), "late answers were sent again");
    assert!(state.dead_letters(&all.id, 10).await.expect("dead").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_past_the_retry_budget_ends_in_dead_letters_that_a_replay_delivers() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine_with(store.clone(), limits(), &["alice"]).await;
    let state = Arc::new(MemoryState::new());
    let webhooks = Webhooks::new(store.clone(), state.clone(), config().with_max_attempts(3));
    let receiver = Receiver::start(Mode::Down, 7).await;
    let sub = subscribe(&webhooks, &receiver.url, &EventType::ALL).await;
    let from = webhooks.get(&tenant(), &sub.id).await.expect("get").position;
    let worker = Worker::start(&webhooks, &engine);
    chat(&engine, "down", 3, 2).await;
    let want = expected(store.as_ref(), &sub, from).await;
    until(
        "everything is a dead letter",
        Duration::from_secs(15),
        async || {
            webhooks
                .dead_letters(&tenant(), &sub.id, 1000)
                .await
                .expect("dead")
                .len()
                == want.len()
        },
    )
    .await;
    let dead = webhooks
        .dead_letters(&tenant(), &sub.id, 1000)
        .await
        .expect("dead");
    assert!(dead.iter().all(|d| d.attempts == 3 && d.last_error.is_some()));
    assert_eq!(pending(state.as_ref(), &sub).await, 0);
    let refused = receiver.snapshot(|record| record.failed);
    assert_eq!(refused, 3 * want.len(), "three attempts each, none after");
    assert!(receiver.snapshot(|record| record.taken.is_empty()));

    // Back up: a replay sends every dead letter, per conversation in order.
    receiver.set_mode(Mode::Up);
    assert_eq!(
        webhooks
            .replay_dead_letters(&tenant(), &sub.id)
            .await
            .expect("replay"),
        want.len()
    );
    until("the replay is delivered", Duration::from_secs(10), async || {
        receiver.snapshot(|record| record.unique()) == want && pending(state.as_ref(), &sub).await == 0
    })
    .await;
    receiver.snapshot(|record| {
        assert_eq!(record.taken.len(), want.len(), "each once");
        assert_eq!(record.bad_signatures, 0);
        record.assert_per_conversation_order();
    });
    assert!(
        webhooks
            .dead_letters(&tenant(), &sub.id, 10)
            .await
            .expect("dead")
            .is_empty()
    );

    // A replay from a position: everything after it again, with the same delivery ids.
    webhooks
        .replay_from(&tenant(), &sub.id, from)
        .await
        .expect("replay from");
    until(
        "the replay from a position is delivered",
        Duration::from_secs(10),
        async || receiver.snapshot(|record| record.taken.len()) == 2 * want.len(),
    )
    .await;
    assert_eq!(receiver.snapshot(|record| record.unique()), want);
    eprintln!(
        "down receiver: {} events, {refused} refused attempts, {} dead letters replayed, {} redelivered from a position",
        want.len(),
        want.len(),
        want.len()
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_hold_back_another() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine_with(store.clone(), limits(), &["alice"]).await;
    let state = Arc::new(MemoryState::new());
    let config = config()
        .with_request_timeout(Duration::from_secs(5))
        .with_concurrency_per_endpoint(2);
    let webhooks = Webhooks::new(store.clone(), state.clone(), config);
    let slow = Receiver::start(Mode::Slow(Duration::from_millis(700)), 1).await;
    let fast = Receiver::start(Mode::Up, 2).await;
    let slow_sub = subscribe(&webhooks, &slow.url, &EventType::ALL).await;
    let fast_sub = subscribe(&webhooks, &fast.url, &EventType::ALL).await;
    let from = webhooks.get(&tenant(), &fast_sub.id).await.expect("get").position;
    chat(&engine, "slow", 4, 3).await;
    let want = expected(store.as_ref(), &fast_sub, from).await;
    let started = Instant::now();
    let worker = Worker::start(&webhooks, &engine);
    until(
        "the fast receiver has everything",
        Duration::from_secs(5),
        async || fast.snapshot(|record| record.unique()) == want,
    )
    .await;
    let elapsed = started.elapsed();
    // Meanwhile the slow one got at most its two slots' worth per 700 ms.
    let slow_taken = slow.snapshot(|record| record.taken.len());
    assert!(
        slow_taken <= 2 * (elapsed.as_millis() as usize / 700 + 1),
        "{slow_taken} in {elapsed:?}"
    );
    assert!(slow_taken < want.len());
    eprintln!(
        "isolation: fast receiver got {} events in {elapsed:?} while the slow one took {slow_taken}",
        want.len()
    );
    fast.snapshot(|record| record.assert_per_conversation_order());
    assert!(pending(state.as_ref(), &slow_sub).await > 0);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_on_the_same_sqlite_state_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Arc::new(SqliteStore::open_default(dir.path().join("kf.sqlite3")).expect("open"));
    let store: Arc<dyn Store> = sqlite.clone();
    let engine = engine_with(store.clone(), limits(), &["alice"]).await;
    let state_path = dir.path().join("webhooks.sqlite3");
    let receiver = Receiver::start(
        Mode::Chaos {
            late: Duration::from_millis(400),
        },
        99,
    )
    .await;

    // First worker: it takes some deliveries, fails others (retries recorded), then dies without a shutdown.
    let (sub, from) = {
        let state = Arc::new(SqliteState::open(&state_path).expect("state"));
        let webhooks = Webhooks::new(
            store.clone(),
            state.clone(),
            // Long enough that retries are still pending when it dies (full jitter: [0, 2 s]).
            config().with_backoff(Duration::from_secs(2), Duration::from_secs(2)),
        );
        let sub = subscribe(&webhooks, &receiver.url, &EventType::ALL).await;
        let from = webhooks.get(&tenant(), &sub.id).await.expect("get").position;
        let worker = Worker::start(&webhooks, &engine);
        chat(&engine, "one", 5, 3).await;
        until(
            "some deliveries were taken and some failed",
            Duration::from_secs(10),
            async || receiver.snapshot(|record| record.unique().len() >= 5 && record.failed >= 2),
        )
        .await;
        worker.task.abort();
        let _ = worker.task.await;
        (sub, from)
    };
    let taken_before = receiver.snapshot(|record| record.unique().len());

    // More events while no worker runs; then a new worker on a state opened again from the file.
    chat(&engine, "two", 3, 2).await;
    let want = expected(store.as_ref(), &sub, from).await;
    let state = Arc::new(SqliteState::open(&state_path).expect("state again"));
    let queued = state.pending(&sub.id, 10_000).await.expect("pending");
    assert!(!queued.is_empty());
    let retried = queued.iter().filter(|delivery| delivery.attempts > 0).count();
    assert!(
        retried > 0,
        "failed attempts and their next times survive the restart"
    );
    let webhooks = Webhooks::new(store.clone(), state.clone(), config());
    receiver.set_mode(Mode::Up);
    let worker = Worker::start(&webhooks, &engine);
    until("everything is delivered", Duration::from_secs(15), async || {
        receiver.snapshot(|record| record.unique()) == want && pending(state.as_ref(), &sub).await == 0
    })
    .await;
    worker.shutdown().await;
    receiver.snapshot(|record| {
        assert_eq!(record.bad_signatures, 0);
        assert_eq!(record.deduplicated().len(), want.len());
        record.assert_per_conversation_order();
    });
    assert!(state.dead_letters(&sub.id, 10).await.expect("dead").is_empty());
    let position = webhooks.get(&tenant(), &sub.id).await.expect("get").position;
    assert_eq!(position, sqlite.feed_head().await.expect("head"));
    eprintln!(
        "restart: {} events, {taken_before} taken before the crash, {retried} queued with failed attempts at restart, \
         {} requests in all",
        want.len(),
        receiver.snapshot(|record| record.requests)
    );
    drop(engine);
    sqlite.close().expect("close");
}
