//! Promises of `docs/protocol.md` found unkept by a client written from it: retried sends after the conversation
//! moved on, cursors beyond the log, the end of a subscription's replay.

use super::*;
use crate::context::ConversationContext;
use crate::model::{Epoch, Event, VisitorId};
use crate::store::{
    Appended, Created, EventDraft, FeedEntry, FeedPosition, NewConversation, StoreError, Stores,
};

fn ack_of(frame: &ServerFrame) -> Option<(u64, bool)> {
    match frame {
        ServerFrame::Ack { seq, duplicate, .. } => Some((seq.0, *duplicate)),
        _ => None,
    }
}

#[tokio::test]
async fn an_agents_retry_after_the_close_gets_its_original_ack() {
    let engine = engine().await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;
    let sent = alice.send(conversation, "a-1", "on my way").await;
    assert_eq!(ack_of(&sent), Some((3, false)), "{sent:?}");
    let closed = v1
        .request(serde_json::json!({"type": "close", "conversation": conversation}))
        .await;
    assert!(
        matches!(closed, ServerFrame::Event(_) | ServerFrame::Closed { .. }),
        "{closed:?}"
    );

    // The ack was lost; the retry comes after the close: the original seq, not `forbidden`.
    let retry = alice.send(conversation, "a-1", "on my way").await;
    assert_eq!(ack_of(&retry), Some((3, true)), "{retry:?}");
    // A message that was never stored is still refused.
    let fresh = alice.send(conversation, "a-2", "one more").await;
    assert_eq!(error_code(&fresh), Some(ErrorCode::Forbidden), "{fresh:?}");
    // Another author's client id is not a repeat of alice's.
    let engine_ack = engine
        .send(
            &visitor("v1"),
            conversation,
            client_id("a-1"),
            MessageBody::text("mine"),
        )
        .await
        .expect("a visitor's message reopens it");
    assert!(!engine_ack.duplicate);
}

#[tokio::test]
async fn an_agents_retry_after_a_transfer_away_gets_its_original_ack() {
    let engine = engine().await;
    let (mut alice, _v1, conversation) = assigned_chat(&engine).await;
    let sent = alice.send(conversation, "a-1", "let me hand you on").await;
    assert_eq!(ack_of(&sent), Some((3, false)), "{sent:?}");
    // Away, so that the transfer back to the queue does not hand it straight back to her.
    let away = alice
        .request(serde_json::json!({"type": "status", "status": "away"}))
        .await;
    assert!(matches!(away, ServerFrame::Status { .. }), "{away:?}");
    let transferred = alice
        .request(serde_json::json!({"type": "transfer", "id": "t", "conversation": conversation}))
        .await;
    let transferred = match transferred {
        ServerFrame::Event(_) => alice.next_reply().await,
        other => other,
    };
    assert!(
        matches!(transferred, ServerFrame::Transferred { .. }),
        "{transferred:?}"
    );
    let retry = alice.send(conversation, "a-1", "let me hand you on").await;
    assert_eq!(ack_of(&retry), Some((3, true)), "{retry:?}");
    let fresh = alice.send(conversation, "a-2", "hello?").await;
    assert_eq!(error_code(&fresh), Some(ErrorCode::Forbidden), "{fresh:?}");
}

#[tokio::test]
async fn a_cursor_beyond_the_log_is_refused() {
    let engine = engine().await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;
    let sent = alice.send(conversation, "a-1", "hello").await;
    assert_eq!(ack_of(&sent), Some((3, false)), "{sent:?}");
    assert_eq!(v1.event().await.seq, Seq(3));

    let mut v2 = Client::connect(&engine, visitor("v1")).await;
    let ahead = v2
        .request(
            serde_json::json!({"type": "subscribe", "id": "s", "conversation": conversation, "after": 9}),
        )
        .await;
    assert_eq!(error_code(&ahead), Some(ErrorCode::BadCursor), "{ahead:?}");
    let read = v2
        .request(serde_json::json!({"type": "read", "id": "r", "conversation": conversation, "seq": 4}))
        .await;
    assert_eq!(error_code(&read), Some(ErrorCode::BadCursor), "{read:?}");
    for (frame, what) in [
        (
            serde_json::json!({"type": "subscribe", "id": "s", "conversation": conversation, "after": 1_u64 << 53}),
            "subscribe",
        ),
        (
            serde_json::json!({"type": "read", "id": "r", "conversation": conversation, "seq": 1_u64 << 53}),
            "read",
        ),
    ] {
        let refused = v2.request(frame).await;
        assert_eq!(
            error_code(&refused),
            Some(ErrorCode::InvalidFrame),
            "{what}: {refused:?}"
        );
    }
    // Nothing of the refused read reached the others; a read within the log does.
    let within = serde_json::json!({"type": "read", "conversation": conversation, "seq": 3});
    v2.session.receive(&within.to_string()).await;
    match v1.next_reply().await {
        ServerFrame::Read { seq, .. } => assert_eq!(seq, Seq(3)),
        other => panic!("expected the read within the log, got {other:?}"),
    }
}

#[tokio::test]
async fn subscribed_says_where_the_replay_ends() {
    let engine = engine().await;
    let (mut alice, _v1, conversation) = assigned_chat(&engine).await;
    alice.send(conversation, "a-1", "one").await;
    let mut v2 = Client::connect(&engine, visitor("v1")).await;
    let subscribed = v2
        .request(serde_json::json!({"type": "subscribe", "conversation": conversation, "after": 1}))
        .await;
    assert!(
        matches!(
            subscribed,
            ServerFrame::Subscribed {
                after: Seq(1),
                last_seq: Seq(3),
                ..
            }
        ),
        "{subscribed:?}"
    );
    let caught_up = v2
        .request(serde_json::json!({"type": "subscribe", "conversation": conversation, "after": 3}))
        .await;
    assert!(
        matches!(
            caught_up,
            ServerFrame::Subscribed {
                after: Seq(3),
                last_seq: Seq(3),
                ..
            }
        ),
        "{caught_up:?}"
    );
}

#[tokio::test]
async fn a_status_set_by_the_host_is_pushed_to_every_connection_of_the_agent() {
    let engine = engine().await;
    engine.put_agent(agent("alice", 2)).await.expect("agent");
    let mut tabs = [
        Client::connect(&engine, agent_identity("alice")).await,
        Client::connect(&engine, agent_identity("alice")).await,
    ];
    engine
        .set_status(&agent_identity("alice"), AgentStatus::Away, Some("lunch".into()))
        .await
        .expect("status");
    for tab in &mut tabs {
        let pushed = tab.next_reply().await;
        assert!(
            matches!(&pushed, ServerFrame::Status { id: None, status: AgentStatus::Away, label }
                if label.as_deref() == Some("lunch")),
            "{pushed:?}"
        );
    }
}

/// A log that counts the reads a subscription can cause (`conversation`, `events_after`) and forwards all.
#[derive(Debug)]
struct CountingReads {
    inner: Arc<MemoryStore>,
    reads: std::sync::atomic::AtomicUsize,
}

impl CountingReads {
    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn count(&self) {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ConversationLog for CountingReads {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
        self.inner.epoch().await
    }
    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
        self.inner.create_conversation(new).await
    }
    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        self.inner.append(draft).await
    }
    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.count();
        self.inner.events_after(conversation, after, limit).await
    }
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError> {
        self.inner
            .event_by_client_id(conversation, author, client_id)
            .await
    }
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.count();
        self.inner.conversation(id).await
    }
    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.inner.conversations_of_visitor(tenant, visitor).await
    }
    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.inner.conversations_of_agent(tenant, agent).await
    }
    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.inner.open_conversations().await
    }
    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
        self.inner.put_conversation_context(context).await
    }
    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError> {
        self.inner.conversation_context(conversation).await
    }
    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.inner.feed_after(after, limit).await
    }
    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        self.inner.feed_head().await
    }
}

/// A reconnect storm is mostly clients whose cursor is current: their `subscribe` is answered from what the
/// engine published, without reading the store, and the live events still reach them, in order. A client that
/// is behind still gets its history from the store.
#[tokio::test]
async fn a_current_subscriber_resumes_without_reading_the_store() {
    let memory = Arc::new(MemoryStore::new());
    let log = Arc::new(CountingReads {
        inner: Arc::clone(&memory),
        reads: Default::default(),
    });
    let stores = Stores::new(log.clone(), memory.clone(), memory);
    let engine =
        engine_from(Engine::builder(stores, Arc::new(tokens())).presence_grace(Duration::ZERO)).await;
    let (mut alice, _v1, conversation) = assigned_chat(&engine).await;
    alice.send(conversation, "a-1", "one").await;

    // A reconnect from seq 3, the last one: no read, and the next message arrives live.
    let mut back = Client::connect(&engine, visitor("v1")).await;
    let before = log.reads();
    let subscribed = back
        .request(serde_json::json!({"type": "subscribe", "conversation": conversation, "after": 3}))
        .await;
    assert!(
        matches!(subscribed, ServerFrame::Subscribed { last_seq: Seq(3), .. }),
        "{subscribed:?}"
    );
    alice.send(conversation, "a-2", "two").await;
    assert_eq!(back.event().await.seq, Seq(4));
    // (A catch-up would have read by now: the live event waits behind it.)
    assert_eq!(log.reads(), before, "a current cursor reads nothing");

    // One that is behind replays from the store, then goes on live.
    let mut behind = Client::connect(&engine, visitor("v1")).await;
    let before = log.reads();
    let subscribed = behind
        .request(serde_json::json!({"type": "subscribe", "conversation": conversation, "after": 2}))
        .await;
    assert!(
        matches!(subscribed, ServerFrame::Subscribed { last_seq: Seq(4), .. }),
        "{subscribed:?}"
    );
    assert_eq!(behind.event().await.seq, Seq(3));
    assert_eq!(behind.event().await.seq, Seq(4));
    assert!(log.reads() > before, "history comes from the store");
    alice.send(conversation, "a-3", "three").await;
    assert_eq!(behind.event().await.seq, Seq(5));
    assert_eq!(back.event().await.seq, Seq(5));
}
