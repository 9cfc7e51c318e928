//! The delivery contract over real sockets: no ack before the commit. (Resume without gap or duplicate and
//! idempotent sends are in the conformance suite, `tests/conformance.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use kf_core::limits::Limits;
use kf_core::model::{
    Agent, AgentId, Conversation, ConversationId, Epoch, Event, EventKind, Group, Seq, TenantId, Visitor,
    VisitorId,
};
use kf_core::store::{
    Appended, ConversationLog, Created, Directory, EventDraft, MemoryStore, NewConversation, Settings,
    StoreError,
};
use kf_core::testkit::shop::*;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::json;
use tokio::sync::{Notify, watch};

fn generous() -> Limits {
    Limits::default().with_requests_per_second(10_000)
}

/// Opens a conversation between visitor `v-1` and agent alice, both subscribed from the start and caught up.
async fn conversation(addr: std::net::SocketAddr) -> (WsClient, WsClient, String) {
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;
    let mut visitor = WsClient::as_identity(addr, &kf_core::testkit::shop::visitor("v-1")).await;
    let conversation = open(&mut visitor, "open-1").await;
    alice.next_of("conversation").await;
    subscribe(&mut visitor, &conversation, 0).await;
    subscribe(&mut alice, &conversation, 0).await;
    assert_eq!(seqs(&events_until(&mut visitor, 2).await), [1, 2]);
    assert_eq!(seqs(&events_until(&mut alice, 2).await), [1, 2]);
    (alice, visitor, conversation)
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
impl ConversationLog for GatedStore {
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
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &kf_core::model::Actor,
        client_id: &kf_core::model::ClientId,
    ) -> Result<Option<Event>, StoreError> {
        self.inner
            .event_by_client_id(conversation, author, client_id)
            .await
    }
    async fn feed_after(
        &self,
        after: kf_core::store::FeedPosition,
        limit: usize,
    ) -> Result<Vec<kf_core::store::FeedEntry>, StoreError> {
        self.inner.feed_after(after, limit).await
    }
    async fn feed_head(&self) -> Result<kf_core::store::FeedPosition, StoreError> {
        self.inner.feed_head().await
    }
    async fn record_seen(&self, marks: Vec<kf_core::model::SeenMark>) -> Result<(), StoreError> {
        self.inner.record_seen(marks).await
    }
    async fn seen(
        &self,
        conversations: &[kf_core::model::ConversationId],
    ) -> Result<Vec<kf_core::model::SeenMark>, StoreError> {
        self.inner.seen(conversations).await
    }
}

#[async_trait]
impl Directory for GatedStore {
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
    async fn delete_agent(
        &self,
        tenant: &TenantId,
        id: &kf_core::model::AgentId,
    ) -> Result<bool, StoreError> {
        self.inner.delete_agent(tenant, id).await
    }
    async fn delete_group(
        &self,
        tenant: &TenantId,
        id: &kf_core::model::GroupId,
    ) -> Result<bool, StoreError> {
        self.inner.delete_group(tenant, id).await
    }
    async fn put_entry_point(&self, entry: kf_core::entry::EntryPoint) -> Result<(), StoreError> {
        self.inner.put_entry_point(entry).await
    }
    async fn delete_entry_point(
        &self,
        tenant: &TenantId,
        id: &kf_core::model::EntryPointId,
    ) -> Result<bool, StoreError> {
        self.inner.delete_entry_point(tenant, id).await
    }
    async fn entry_points(&self) -> Result<Vec<kf_core::entry::EntryPoint>, StoreError> {
        self.inner.entry_points().await
    }
}

#[async_trait]
impl Settings for GatedStore {
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
    async fn put_label(&self, label: kf_core::labels::Label) -> Result<(), StoreError> {
        self.inner.put_label(label).await
    }
    async fn delete_label(&self, t: &TenantId, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_label(t, name).await
    }
    async fn labels(&self, t: &TenantId) -> Result<Vec<kf_core::labels::Label>, StoreError> {
        self.inner.labels(t).await
    }
    async fn put_attribute_definition(
        &self,
        definition: kf_core::labels::AttributeDefinition,
    ) -> Result<(), StoreError> {
        self.inner.put_attribute_definition(definition).await
    }
    async fn delete_attribute_definition(
        &self,
        t: &TenantId,
        object: kf_core::labels::AttributeObject,
        key: &str,
    ) -> Result<bool, StoreError> {
        self.inner.delete_attribute_definition(t, object, key).await
    }
    async fn attribute_definitions(
        &self,
        t: &TenantId,
    ) -> Result<Vec<kf_core::labels::AttributeDefinition>, StoreError> {
        self.inner.attribute_definitions(t).await
    }
    async fn put_allowed_origins(&self, tenant: &TenantId, origins: Vec<String>) -> Result<(), StoreError> {
        self.inner.put_allowed_origins(tenant, origins).await
    }
    async fn allowed_origins(&self) -> Result<Vec<kf_core::store::TenantOrigins>, StoreError> {
        self.inner.allowed_origins().await
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
