//! [`CountingStore`]: a [`MemoryStore`] that counts every call, by store trait and by method — for tests that
//! say how many reads a path costs ("a returning visitor reads no directory"), and a third backend that shows
//! the conformance suites need only the traits.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::context::ConversationContext;
use crate::entry::EntryPoint;
use crate::hours::WorkingHours;
use crate::labels::{AttributeDefinition, AttributeObject, Label};
use crate::model::{
    Actor, Agent, AgentId, ClientId, Conversation, ConversationId, EntryPointId, Epoch, Event, Group,
    GroupId, Seq, TenantId, Visitor, VisitorId,
};
use crate::quick_replies::{QuickReply, QuickReplyScope};
use crate::store::{
    Appended, ConversationLog, Created, Directory, EventDraft, FeedEntry, FeedPosition, GroupHours,
    MemoryStore, NewConversation, Settings, StoreError,
};

/// Which store trait a call belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Concern {
    /// [`ConversationLog`].
    Log,
    /// [`Directory`].
    Directory,
    /// [`Settings`].
    Settings,
}

/// A [`MemoryStore`] that counts its calls.
#[derive(Debug, Default)]
pub struct CountingStore {
    inner: MemoryStore,
    calls: Mutex<HashMap<(Concern, &'static str), u64>>,
}

impl CountingStore {
    /// An empty store, no calls counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// The store under the counter (its calls are not counted).
    pub fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    /// Calls of one method so far (`"events_after"`, `"visitor"`…).
    pub fn calls_of(&self, method: &str) -> u64 {
        self.lock()
            .iter()
            .filter(|((_, m), _)| *m == method)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls of one trait's methods so far.
    pub fn calls(&self, concern: Concern) -> u64 {
        self.lock()
            .iter()
            .filter(|((c, _), _)| *c == concern)
            .map(|(_, n)| n)
            .sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Concern, &'static str), u64>> {
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn counted(&self, concern: Concern, method: &'static str) -> &MemoryStore {
        *self.lock().entry((concern, method)).or_default() += 1;
        &self.inner
    }
}

#[async_trait]
impl ConversationLog for CountingStore {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
        self.counted(Concern::Log, "epoch").epoch().await
    }
    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
        self.counted(Concern::Log, "create_conversation")
            .create_conversation(new)
            .await
    }
    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        self.counted(Concern::Log, "append").append(draft).await
    }
    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.counted(Concern::Log, "events_after")
            .events_after(conversation, after, limit)
            .await
    }
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError> {
        self.counted(Concern::Log, "event_by_client_id")
            .event_by_client_id(conversation, author, client_id)
            .await
    }
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.counted(Concern::Log, "conversation").conversation(id).await
    }
    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.counted(Concern::Log, "conversations_of_visitor")
            .conversations_of_visitor(tenant, visitor)
            .await
    }
    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.counted(Concern::Log, "conversations_of_agent")
            .conversations_of_agent(tenant, agent)
            .await
    }
    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.counted(Concern::Log, "open_conversations")
            .open_conversations()
            .await
    }
    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
        self.counted(Concern::Log, "put_conversation_context")
            .put_conversation_context(context)
            .await
    }
    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError> {
        self.counted(Concern::Log, "conversation_context")
            .conversation_context(conversation)
            .await
    }
    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.counted(Concern::Log, "feed_after")
            .feed_after(after, limit)
            .await
    }
    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        self.counted(Concern::Log, "feed_head").feed_head().await
    }

    async fn record_seen(&self, marks: Vec<crate::model::SeenMark>) -> Result<(), StoreError> {
        self.counted(Concern::Log, "record_seen").record_seen(marks).await
    }

    async fn seen(
        &self,
        conversations: &[ConversationId],
    ) -> Result<Vec<crate::model::SeenMark>, StoreError> {
        self.counted(Concern::Log, "seen").seen(conversations).await
    }
}

#[async_trait]
impl Directory for CountingStore {
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError> {
        self.counted(Concern::Directory, "put_visitor")
            .put_visitor(visitor)
            .await
    }
    async fn visitor(&self, tenant: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError> {
        self.counted(Concern::Directory, "visitor")
            .visitor(tenant, id)
            .await
    }
    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError> {
        self.counted(Concern::Directory, "put_agent")
            .put_agent(agent)
            .await
    }
    async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        self.counted(Concern::Directory, "agent").agent(tenant, id).await
    }
    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.counted(Concern::Directory, "agents").agents().await
    }
    async fn put_group(&self, group: Group) -> Result<(), StoreError> {
        self.counted(Concern::Directory, "put_group")
            .put_group(group)
            .await
    }
    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.counted(Concern::Directory, "groups").groups().await
    }
    async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> Result<bool, StoreError> {
        self.counted(Concern::Directory, "delete_agent")
            .delete_agent(tenant, id)
            .await
    }
    async fn delete_group(&self, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError> {
        self.counted(Concern::Directory, "delete_group")
            .delete_group(tenant, id)
            .await
    }
    async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError> {
        self.counted(Concern::Directory, "put_entry_point")
            .put_entry_point(entry)
            .await
    }
    async fn delete_entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Result<bool, StoreError> {
        self.counted(Concern::Directory, "delete_entry_point")
            .delete_entry_point(tenant, id)
            .await
    }
    async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError> {
        self.counted(Concern::Directory, "entry_points")
            .entry_points()
            .await
    }
}

#[async_trait]
impl Settings for CountingStore {
    async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), StoreError> {
        self.counted(Concern::Settings, "put_group_hours")
            .put_group_hours(tenant, group, hours)
            .await
    }
    async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError> {
        self.counted(Concern::Settings, "group_hours").group_hours().await
    }
    async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError> {
        self.counted(Concern::Settings, "put_quick_reply")
            .put_quick_reply(reply)
            .await
    }
    async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.counted(Concern::Settings, "delete_quick_reply")
            .delete_quick_reply(tenant, id)
            .await
    }
    async fn quick_reply(&self, tenant: &TenantId, id: &str) -> Result<Option<QuickReply>, StoreError> {
        self.counted(Concern::Settings, "quick_reply")
            .quick_reply(tenant, id)
            .await
    }
    async fn quick_replies(
        &self,
        tenant: &TenantId,
        scope: &QuickReplyScope,
    ) -> Result<Vec<QuickReply>, StoreError> {
        self.counted(Concern::Settings, "quick_replies")
            .quick_replies(tenant, scope)
            .await
    }
    async fn put_label(&self, label: Label) -> Result<(), StoreError> {
        self.counted(Concern::Settings, "put_label")
            .put_label(label)
            .await
    }
    async fn delete_label(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        self.counted(Concern::Settings, "delete_label")
            .delete_label(tenant, name)
            .await
    }
    async fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>, StoreError> {
        self.counted(Concern::Settings, "labels").labels(tenant).await
    }
    async fn put_attribute_definition(&self, definition: AttributeDefinition) -> Result<(), StoreError> {
        self.counted(Concern::Settings, "put_attribute_definition")
            .put_attribute_definition(definition)
            .await
    }
    async fn delete_attribute_definition(
        &self,
        tenant: &TenantId,
        object: AttributeObject,
        key: &str,
    ) -> Result<bool, StoreError> {
        self.counted(Concern::Settings, "delete_attribute_definition")
            .delete_attribute_definition(tenant, object, key)
            .await
    }
    async fn attribute_definitions(&self, tenant: &TenantId) -> Result<Vec<AttributeDefinition>, StoreError> {
        self.counted(Concern::Settings, "attribute_definitions")
            .attribute_definitions(tenant)
            .await
    }
    async fn put_allowed_origins(&self, tenant: &TenantId, origins: Vec<String>) -> Result<(), StoreError> {
        self.counted(Concern::Settings, "put_allowed_origins")
            .put_allowed_origins(tenant, origins)
            .await
    }
    async fn allowed_origins(&self) -> Result<Vec<crate::store::TenantOrigins>, StoreError> {
        self.counted(Concern::Settings, "allowed_origins")
            .allowed_origins()
            .await
    }
}
