//! Shutdown and health: every acknowledged send is stored, no tracked task outlives the engine, clients are told
//! `CloseReason::Shutdown`, writes after the shutdown are refused, and health tells liveness from readiness.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::context::ConversationContext;
use crate::model::{Epoch, GroupTimers, VisitorId};
use crate::store::{
    Appended, ConversationLog, Created, EventDraft, FeedEntry, FeedPosition, FollowOptions, NewConversation,
    StoreError, Stores,
};

/// Reads the outbox until the engine closes it; returns the reason.
async fn close_reason(outbox: &mut Outbox) -> CloseReason {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), outbox.next()).await {
            Ok(Outgoing::Close(reason)) => return reason,
            Ok(_) => continue,
            Err(_) => panic!("the outbox was not closed within 5 s"),
        }
    }
}

#[tokio::test]
async fn shutdown_under_load_keeps_every_acknowledged_send_and_leaves_no_task() {
    let memory = Arc::new(MemoryStore::new());
    let engine = engine_with(
        memory.clone(),
        Limits::default().with_requests_per_second(100_000),
    )
    .await;
    engine.put_agent(agent("alice", 50)).await.expect("agent");
    let mut alice = Client::connect(&engine, agent_identity("alice")).await;
    // Senders write as fast as the engine acknowledges, each on its own task, until refused.
    let mut senders = Vec::new();
    for v in 0..8 {
        let engine = engine.clone();
        senders.push(tokio::spawn(async move {
            let visitor = visitor(&format!("v{v}"));
            let opened = engine
                .open(
                    &visitor,
                    client_id(&format!("o{v}")),
                    None,
                    None,
                    Default::default(),
                )
                .await
                .expect("open before the shutdown");
            let id = opened.conversation.id;
            let mut acked = Vec::new();
            for n in 0.. {
                let body = MessageBody::text(format!("{v}/{n}"));
                match engine.send(&visitor, id, client_id(&format!("m{n}")), body).await {
                    Ok(ack) => acked.push((n, ack.seq)),
                    Err(RequestError::ShuttingDown) => break,
                    Err(other) => panic!("unexpected error: {other}"),
                }
                tokio::task::yield_now().await;
            }
            (id, v, acked)
        }));
    }
    // Let traffic flow, then shut down in the middle of it.
    eventually_async("messages flow", || async {
        memory.feed_head().await.expect("head").0 > 200
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), engine.shutdown())
        .await
        .expect("the shutdown ends");
    assert_eq!(engine.tracked_tasks(), 0, "no task outlives the shutdown");
    assert_eq!(close_reason(&mut alice.outbox).await, CloseReason::Shutdown);
    let mut total = 0;
    for sender in senders {
        let (id, v, acked) = tokio::time::timeout(Duration::from_secs(10), sender)
            .await
            .expect("senders stop: writes are refused")
            .expect("sender");
        let log = memory.events_after(id, Seq::ZERO, usize::MAX).await.expect("log");
        for (n, seq) in &acked {
            let text = format!("{v}/{n}");
            let stored: Vec<Seq> = log
                .iter()
                .filter(|event| matches!(&event.data, EventKind::Message { body } if body.text == text))
                .map(|event| event.seq)
                .collect();
            assert_eq!(
                stored,
                [*seq],
                "acknowledged message {text} stored once, at its seq"
            );
        }
        total += acked.len();
    }
    assert!(total > 0);
    // After the shutdown every write is refused, clearly.
    let refused = engine
        .open(
            &visitor("late"),
            client_id("o-late"),
            None,
            None,
            Default::default(),
        )
        .await;
    assert!(matches!(refused, Err(RequestError::ShuttingDown)), "{refused:?}");
    assert_eq!(
        RequestError::ShuttingDown.code(),
        ErrorCode::Unavailable,
        "clients retry it like any unavailability"
    );
    let connect = engine.connect(visitor("late")).await;
    assert!(matches!(connect, Err(RequestError::ShuttingDown)));
}

/// Polls an async condition until it holds (5 s at most).
async fn eventually_async<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn armed_timers_and_presence_graces_end_with_the_shutdown_without_firing() {
    let memory = Arc::new(MemoryStore::new());
    let engine = engine_from(builder(memory.clone()).presence_grace(Duration::from_secs(3600))).await;
    let slow = Group::new(tenant(), group(), "Support").with_timers(
        GroupTimers::default()
            .with_max_wait_ms(3_600_000)
            .with_missed_after_ms(3_600_000),
    );
    engine.put_group(slow).await.expect("group");
    engine.put_agent(agent("alice", 1)).await.expect("agent");
    // An agent who leaves starts an hour's grace; a queued conversation arms two one-hour timers.
    drop(Client::connect(&engine, agent_identity("alice")).await);
    let opened = engine
        .open(&visitor("v1"), client_id("o1"), None, None, Default::default())
        .await
        .expect("open");
    assert!(engine.tracked_tasks() >= 3, "{} tasks", engine.tracked_tasks());
    tokio::time::timeout(Duration::from_secs(5), engine.shutdown())
        .await
        .expect("timers do not hold the shutdown");
    assert_eq!(engine.tracked_tasks(), 0);
    // Nothing fired (alice, in her grace, still counts as online: the conversation went to her).
    let log = memory
        .events_after(opened.conversation.id, Seq::ZERO, 10)
        .await
        .expect("log");
    let kinds: Vec<&str> = log.iter().map(|event| event.data.name()).collect();
    assert_eq!(kinds, ["created", "assigned"]);
    assert!(
        engine.is_online(&tenant(), &"alice".parse().expect("id")),
        "the grace never ended"
    );
}

#[tokio::test]
async fn the_hosts_token_shuts_the_engine_down_and_the_engines_shutdown_leaves_it_alone() {
    let host = CancellationToken::new();
    let engine = engine_from(builder(Arc::new(MemoryStore::new())).shutdown_token(host.clone())).await;
    let mut client = Client::connect(&engine, visitor("v1")).await;
    assert!(!engine.is_shutting_down());
    host.cancel();
    tokio::time::timeout(Duration::from_secs(5), engine.closed())
        .await
        .expect("closed after the host's cancel");
    assert!(engine.is_shutting_down());
    assert_eq!(close_reason(&mut client.outbox).await, CloseReason::Shutdown);
    assert_eq!(engine.tracked_tasks(), 0);
    let refused = engine.accept(r#"{"type":"hello","v":1,"token":"x"}"#).await;
    assert!(refused.is_err());

    // The other way round: an engine's shutdown does not cancel the host's token.
    let host = CancellationToken::new();
    let engine = engine_from(builder(Arc::new(MemoryStore::new())).shutdown_token(host.clone())).await;
    let token = engine.shutdown_token();
    engine.shutdown().await;
    assert!(token.is_cancelled());
    assert!(!host.is_cancelled());
    // Idempotent.
    engine.shutdown().await;
}

#[tokio::test]
async fn a_connect_during_the_shutdown_is_refused_and_hello_says_unavailable() {
    let engine = engine().await;
    engine.shutdown().await;
    let token = tokens().issue(&visitor("v1"), Duration::from_secs(60));
    let hello = serde_json::json!({"type": "hello", "v": 1, "token": token}).to_string();
    let Err(rejection) = engine.accept(&hello).await else {
        panic!("accepted after the shutdown");
    };
    assert_eq!(error_code(&rejection.frame), Some(ErrorCode::Unavailable));
    assert_eq!(rejection.reason, CloseReason::Unavailable);
}

/// A log whose health read fails while `down` is set (everything else is the memory store's).
#[derive(Debug)]
struct Flaky {
    memory: MemoryStore,
    down: AtomicBool,
}

#[async_trait]
impl ConversationLog for Flaky {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
        self.memory.epoch().await
    }
    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
        self.memory.create_conversation(new).await
    }
    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        self.memory.append(draft).await
    }
    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.memory.events_after(conversation, after, limit).await
    }
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError> {
        self.memory
            .event_by_client_id(conversation, author, client_id)
            .await
    }
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.memory.conversation(id).await
    }
    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.memory.conversations_of_visitor(tenant, visitor).await
    }
    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.memory.conversations_of_agent(tenant, agent).await
    }
    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.memory.open_conversations().await
    }
    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
        self.memory.put_conversation_context(context).await
    }
    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError> {
        self.memory.conversation_context(conversation).await
    }
    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.memory.feed_after(after, limit).await
    }
    async fn record_seen(&self, marks: Vec<crate::model::SeenMark>) -> Result<(), StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Closed);
        }
        self.memory.record_seen(marks).await
    }

    async fn seen(
        &self,
        conversations: &[ConversationId],
    ) -> Result<Vec<crate::model::SeenMark>, StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Closed);
        }
        self.memory.seen(conversations).await
    }

    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Closed);
        }
        self.memory.feed_head().await
    }
}

#[tokio::test]
async fn health_tells_liveness_from_readiness_and_reports_the_feeds_lag() {
    let memory = Arc::new(MemoryStore::new());
    let flaky = Arc::new(Flaky {
        memory: MemoryStore::new(),
        down: AtomicBool::new(false),
    });
    let stores = Stores::new(flaky.clone(), memory.clone(), memory);
    let engine = engine_from(Engine::builder(stores, Arc::new(tokens()))).await;
    let health = engine.health().await;
    assert!(health.live && health.ready && !health.shutting_down, "{health:?}");
    assert!(health.store.reachable && health.store.error.is_none());
    assert_eq!((health.feed.head, health.connections), (Some(0), 0));

    // A follower that has read one entry of three is two behind; a named consumer reports its own position.
    let _client = Client::connect(&engine, visitor("v1")).await;
    let mut follower = engine.follow_feed(FeedPosition::ZERO, FollowOptions::default());
    let opened = engine
        .open(&visitor("v1"), client_id("o1"), None, None, Default::default())
        .await
        .expect("open");
    for n in 0..2 {
        engine
            .send(
                &visitor("v1"),
                opened.conversation.id,
                client_id(&format!("m{n}")),
                MessageBody::text("hi"),
            )
            .await
            .expect("send");
    }
    let first = follower.next().await.expect("entry").expect("read");
    let webhooks = engine.feed_consumer("webhooks");
    webhooks.record(FeedPosition(3));
    let health = engine.health().await;
    assert_eq!((health.feed.head, health.connections), (Some(3), 1));
    let lags: Vec<(&str, u64, Option<u64>)> = health
        .feed
        .consumers
        .iter()
        .map(|c| (c.name.as_str(), c.position, c.lag))
        .collect();
    assert_eq!(
        lags,
        [
            ("follow_feed", first.position.0, Some(2)),
            ("webhooks", 3, Some(0))
        ]
    );
    // Serializable for an endpoint.
    let json = serde_json::to_value(&health).expect("json");
    assert_eq!(json["ready"], true);
    assert_eq!(json["feed"]["consumers"][0]["lag"], 2);

    // A store that does not answer: alive, not ready.
    flaky.down.store(true, Ordering::Relaxed);
    let health = engine.health().await;
    assert!(
        health.live && !health.ready && !health.store.reachable,
        "{health:?}"
    );
    assert!(health.store.error.is_some());
    assert_eq!(health.feed.consumers[0].lag, None);
    flaky.down.store(false, Ordering::Relaxed);

    // Shutting down: not ready; once stopped, not live either.
    drop(follower);
    drop(webhooks);
    engine.begin_shutdown();
    let health = engine.health().await;
    assert!(health.live && !health.ready && health.shutting_down, "{health:?}");
    assert!(
        health.feed.consumers.is_empty(),
        "dropped consumers are forgotten"
    );
    engine.closed().await;
    let health = engine.health().await;
    assert!(!health.live && !health.ready);
    assert_eq!((health.commits_in_flight, health.background_tasks), (0, 0));
}
