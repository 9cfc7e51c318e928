//! The delivery contract over real sockets: resume without gap or duplicate, idempotent sends, ack after commit.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use common::*;
use kf_core::model::{
    Agent, AgentId, ClientId, Conversation, ConversationId, Event, EventKind, Group, MessageBody, Seq,
    TenantId, Visitor, VisitorId,
};
use kf_core::protocol::Limits;
use kf_core::store::{Appended, Created, Epoch, EventDraft, MemoryStore, NewConversation, Store, StoreError};
use kf_transport_ws::WsConfig;
use serde_json::json;
use tokio::sync::{Notify, watch};

fn generous() -> Limits {
    Limits {
        requests_per_second: 10_000,
        ..Limits::default()
    }
}

/// Opens a conversation between visitor `v-1` and agent alice, both subscribed from the start and caught up.
async fn conversation(addr: std::net::SocketAddr) -> (Client, Client, String) {
    let mut alice = Client::as_identity(addr, &agent("alice")).await;
    let mut visitor = Client::as_identity(addr, &common::visitor("v-1")).await;
    let conversation = open(&mut visitor, "open-1").await;
    alice.next_of("conversation").await;
    subscribe(&mut visitor, &conversation, 0).await;
    subscribe(&mut alice, &conversation, 0).await;
    assert_eq!(seqs(&events_until(&mut visitor, 2).await), [1, 2]);
    assert_eq!(seqs(&events_until(&mut alice, 2).await), [1, 2]);
    (alice, visitor, conversation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_delivers_exactly_what_was_missed_then_live_events() {
    let engine = engine(generous()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let (mut alice, mut visitor, conversation) = conversation(addr).await;

    // The visitor has applied everything up to k = 4, then its connection drops.
    say(&mut visitor, &conversation, "v-1", "one").await;
    say(&mut visitor, &conversation, "v-2", "two").await;
    let seen = events_until(&mut visitor, 4).await;
    assert_eq!(seqs(&seen), [3, 4]);
    let k = 4;
    visitor.vanish();

    // Messages k+1..=7 while it is away.
    for n in 1..=3 {
        let ack = say(&mut alice, &conversation, &format!("a-{n}"), &format!("away {n}")).await;
        assert_eq!(ack["seq"], k + n);
    }
    // A burst committed concurrently with the reconnect and the subscribe: seqs 8..=17.
    let burst = tokio::spawn({
        let engine = engine.clone();
        let id: ConversationId = conversation.parse().expect("id");
        async move {
            let mut acks = Vec::new();
            for n in 0..10 {
                let client_id = ClientId::new(format!("burst-{n}")).expect("client id");
                let ack = engine
                    .send(
                        &agent("alice"),
                        id,
                        client_id,
                        MessageBody::text(format!("burst {n}")),
                    )
                    .await;
                acks.push(ack.expect("burst send").seq.0);
                tokio::task::yield_now().await;
            }
            acks
        }
    });
    let mut visitor = Client::as_identity(addr, &common::visitor("v-1")).await;
    subscribe(&mut visitor, &conversation, k).await;
    assert_eq!(burst.await.expect("burst task"), (8..=17).collect::<Vec<_>>());

    let mut received = events_until(&mut visitor, 17).await;
    // Then live.
    let ack = say(&mut alice, &conversation, "a-live", "live").await;
    assert_eq!(ack["seq"], 18);
    received.extend(events_until(&mut visitor, 18).await);
    // Anything still in flight arrives before the answer to a ping: there must be nothing.
    let after: Vec<_> = visitor
        .until_pong()
        .await
        .into_iter()
        .filter(|frame| frame["type"] == "event")
        .collect();
    assert!(after.is_empty(), "events after the last one: {after:?}");
    assert_eq!(
        seqs(&received),
        (k + 1..=18).collect::<Vec<_>>(),
        "exactly k+1..=n then live, in order"
    );
    assert_eq!(received[0]["data"]["body"]["text"], "away 1");
    assert_eq!(received.last().expect("last")["data"]["body"]["text"], "live");
}

#[tokio::test]
async fn a_repeated_send_is_stored_once() {
    let engine = engine(generous()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let mut visitor = Client::as_identity(addr, &common::visitor("v-1")).await;
    let conversation = open(&mut visitor, "open-1").await;

    let first = say(&mut visitor, &conversation, "dup-1", "only once").await;
    assert_eq!(first["duplicate"], false);
    let seq = first["seq"].as_u64().expect("seq");
    let second = say(&mut visitor, &conversation, "dup-1", "only once").await;
    assert_eq!(
        (second["seq"].as_u64(), second["duplicate"].as_bool()),
        (Some(seq), Some(true))
    );

    // After a reconnect (as if the first ack had been lost).
    visitor.close().await;
    let mut visitor = Client::as_identity(addr, &common::visitor("v-1")).await;
    let third = say(&mut visitor, &conversation, "dup-1", "only once").await;
    assert_eq!(
        (third["seq"].as_u64(), third["duplicate"].as_bool()),
        (Some(seq), Some(true))
    );

    let log = stored(&engine, &conversation).await;
    let messages: Vec<&Event> = log
        .iter()
        .filter(|event| matches!(event.data, EventKind::Message { .. }))
        .collect();
    assert_eq!(messages.len(), 1, "{log:?}");
    assert_eq!(messages[0].seq, Seq(seq));
    assert_eq!(
        messages[0].client_id.as_ref().map(ClientId::as_str),
        Some("dup-1")
    );
}

/// A [`MemoryStore`] whose `append` can be held at a gate: it announces that it was entered, then waits until
/// the gate opens before committing.
#[derive(Debug)]
struct GatedStore {
    inner: MemoryStore,
    armed: AtomicBool,
    entered: Notify,
    open: watch::Sender<bool>,
}

impl GatedStore {
    fn new() -> Self {
        Self {
            inner: MemoryStore::new(),
            armed: AtomicBool::new(false),
            entered: Notify::new(),
            open: watch::channel(false).0,
        }
    }
}

#[async_trait]
impl Store for GatedStore {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
        self.inner.epoch().await
    }
    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
        self.inner.create_conversation(new).await
    }
    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        if self.armed.load(Ordering::SeqCst) {
            self.entered.notify_one();
            let mut open = self.open.subscribe();
            let _ = open.wait_for(|open| *open).await;
        }
        self.inner.append(draft).await
    }
    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.inner.events_after(conversation, after, limit).await
    }
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
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
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError> {
        self.inner.put_visitor(visitor).await
    }
    async fn visitor(&self, tenant: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError> {
        self.inner.visitor(tenant, id).await
    }
    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError> {
        self.inner.put_agent(agent).await
    }
    async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        self.inner.agent(tenant, id).await
    }
    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.inner.agents().await
    }
    async fn put_group(&self, group: Group) -> Result<(), StoreError> {
        self.inner.put_group(group).await
    }
    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.inner.groups().await
    }
    async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &kf_core::model::GroupId,
        hours: Option<kf_core::hours::WorkingHours>,
    ) -> Result<(), StoreError> {
        self.inner.put_group_hours(tenant, group, hours).await
    }
    async fn group_hours(&self) -> Result<Vec<kf_core::store::GroupHours>, StoreError> {
        self.inner.group_hours().await
    }
    async fn put_conversation_context(
        &self,
        context: kf_core::context::ConversationContext,
    ) -> Result<(), StoreError> {
        self.inner.put_conversation_context(context).await
    }
    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<kf_core::context::ConversationContext>, StoreError> {
        self.inner.conversation_context(conversation).await
    }
    async fn put_quick_reply(&self, reply: kf_core::quick_replies::QuickReply) -> Result<(), StoreError> {
        self.inner.put_quick_reply(reply).await
    }
    async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_quick_reply(tenant, id).await
    }
    async fn quick_reply(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<kf_core::quick_replies::QuickReply>, StoreError> {
        self.inner.quick_reply(tenant, id).await
    }
    async fn quick_replies(
        &self,
        tenant: &TenantId,
        scope: &kf_core::quick_replies::QuickReplyScope,
    ) -> Result<Vec<kf_core::quick_replies::QuickReply>, StoreError> {
        self.inner.quick_replies(tenant, scope).await
    }
}

#[tokio::test]
async fn no_ack_before_the_commit() {
    let store = Arc::new(GatedStore::new());
    let engine = engine_with(store.clone(), generous(), &["alice"]).await;
    let addr = start(&engine, WsConfig::default()).await;
    let (mut alice, mut visitor, conversation) = conversation(addr).await;

    store.armed.store(true, Ordering::SeqCst);
    visitor
        .send(json!({"type": "send", "id": "r1", "conversation": conversation, "client_id": "m-1", "body": {"text": "held"}}))
        .await;
    store.entered.notified().await;

    // The append is in progress and not committed; the connection is live (a typing signal gets through) and
    // the first thing it delivers is not an ack.
    assert_eq!(
        stored(&engine, &conversation).await.len(),
        2,
        "nothing committed yet"
    );
    alice
        .send(json!({"type": "typing", "conversation": conversation, "active": true}))
        .await;
    let typing = visitor.next().await;
    assert_eq!(
        typing["type"], "typing",
        "the only frame while the commit is held: {typing}"
    );

    store.open.send_replace(true);
    let ack = visitor.next_of("ack").await;
    assert_eq!(
        (
            ack["id"].as_str(),
            ack["seq"].as_u64(),
            ack["duplicate"].as_bool()
        ),
        (Some("r1"), Some(3), Some(false))
    );
    let log = stored(&engine, &conversation).await;
    assert_eq!(log.len(), 3);
    assert!(matches!(&log[2].data, EventKind::Message { body } if body.text == "held"));
    assert_eq!(alice.next_event().await["seq"], 3);
}
