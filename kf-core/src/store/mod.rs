//! Persistence: the [`Store`] trait every backend implements, and [`MemoryStore`].
//!
//! A store owns the conversation logs. It assigns each event its [`Seq`] in the same durable commit that stores
//! it, enforces idempotency per (conversation, author, client id), and keeps each conversation's record (its
//! state) in step with its log by applying every event through [`Conversation::apply`]. An append that the
//! conversation's state does not allow is refused and changes nothing.
//!
//! Backends prove they keep this contract by running the conformance suite in `kf_core::testkit`.

mod memory;

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use memory::MemoryStore;

use crate::context::ConversationContext;
use crate::entry::EntryPoint;
use crate::hours::WorkingHours;
use crate::model::{
    Actor, Agent, AgentId, ClientId, Conversation, ConversationId, EntryPointId, Event, EventKind, Group,
    GroupId, MessageBody, Seq, TenantId, Timestamp, TransitionError, Visitor, VisitorId,
};
use crate::quick_replies::{QuickReply, QuickReplyScope};

/// Identifies one incarnation of a store. Seqs (cursors) only mean something within one epoch: a client holding
/// a cursor from another epoch must start over from [`Seq::ZERO`].
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub String);

/// A request to open a conversation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NewConversation {
    /// The id to give it (ignored when `client_id` matches an existing conversation).
    pub id: ConversationId,
    /// The tenant.
    pub tenant: TenantId,
    /// The visitor opening it.
    pub visitor: VisitorId,
    /// The group it is for.
    pub group: GroupId,
    /// The visitor's idempotency key: the same (tenant, visitor, client id) opens the same conversation.
    pub client_id: ClientId,
    /// The entry point the visitor came through, recorded on the `Created` event.
    pub entry: Option<EntryPointId>,
    /// Commit time.
    pub at: Timestamp,
}

impl NewConversation {
    /// The `Created` event (seq 1) of this conversation, as every store writes it.
    pub fn created_event(&self) -> Event {
        Event {
            conversation: self.id,
            seq: Seq(1),
            at: self.at,
            author: Actor::Visitor(self.visitor.clone()),
            client_id: Some(self.client_id.clone()),
            data: EventKind::Created {
                group: self.group.clone(),
                entry: self.entry.clone(),
            },
        }
    }
}

/// The result of [`Store::create_conversation`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Created {
    /// The conversation as it is now.
    pub conversation: Conversation,
    /// Its `Created` event (seq 1).
    pub event: Event,
    /// False when the client id matched an existing conversation, which is returned instead.
    pub created: bool,
}

/// An event to append; the store gives it its seq.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EventDraft {
    /// The conversation to append to.
    pub conversation: ConversationId,
    /// Who caused it.
    pub author: Actor,
    /// Idempotency key: a second append with the same (conversation, author, client id) returns the first event.
    pub client_id: Option<ClientId>,
    /// Commit time.
    pub at: Timestamp,
    /// What happened.
    pub data: EventKind,
}

impl EventDraft {
    /// An event without an idempotency key.
    pub fn new(conversation: ConversationId, author: Actor, data: EventKind, at: Timestamp) -> Self {
        Self {
            conversation,
            author,
            client_id: None,
            at,
            data,
        }
    }

    /// An event kf itself causes (routing, timers).
    pub fn system(conversation: ConversationId, data: EventKind, at: Timestamp) -> Self {
        Self::new(conversation, Actor::System, data, at)
    }

    /// A chat message, idempotent by `client_id` when one is given.
    pub fn message(
        conversation: ConversationId,
        author: Actor,
        client_id: Option<ClientId>,
        body: MessageBody,
        at: Timestamp,
    ) -> Self {
        Self {
            client_id,
            ..Self::new(conversation, author, EventKind::Message { body }, at)
        }
    }
}

/// The result of [`Store::append`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Appended {
    /// The committed event (for a duplicate: the original one).
    pub event: Event,
    /// The conversation after the event (for a duplicate: as it is now).
    pub conversation: Conversation,
    /// True when the client id had been used before and nothing new was stored.
    pub duplicate: bool,
}

/// Errors of a store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No conversation with this id.
    #[error("conversation {0} not found")]
    ConversationNotFound(ConversationId),
    /// The conversation's state does not allow this event; nothing was stored.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The request itself is invalid (for example a value the backend cannot represent).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request clashes with a stored record (a quick reply shortcut already taken in its scope).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
    /// The backend failed (I/O, corruption, a dropped connection). The request may be retried.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

/// A group's working hours, as stored.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupHours {
    /// The tenant.
    pub tenant: TenantId,
    /// The group.
    pub group: GroupId,
    /// Its schedule.
    pub hours: WorkingHours,
}

/// The persistence behind an [`Engine`](crate::engine::Engine). Object safe; held as `Arc<dyn Store>`.
///
/// Implementations must make `create_conversation` and `append` durable before they return `Ok` (the engine
/// acknowledges a send to its client right after), and must serialize appends to one conversation so that seqs
/// are gapless.
#[async_trait]
pub trait Store: Send + Sync + Debug + 'static {
    /// This store's epoch; stable for the life of its data.
    async fn epoch(&self) -> Result<Epoch, StoreError>;

    /// Opens a conversation (state queued) with its `Created` event at seq 1, or returns the conversation
    /// already opened with the same (tenant, visitor, client id).
    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError>;

    /// Appends an event to a conversation's log, applying it to the conversation's state in the same commit.
    /// Fails with [`StoreError::Transition`] when the state does not allow it (including a second `Created`),
    /// with nothing stored. A repeated (conversation, author, client id) returns the original event with
    /// `duplicate: true`, whatever the conversation's state now; the check comes before the transition check.
    ///
    /// Client ids share one key space per (conversation, author): the `Created` event is stored under the
    /// visitor's `open` client id, so a visitor message reusing that id returns the `Created` event as a
    /// duplicate. Clients must use a fresh id per request.
    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError>;

    /// Up to `limit` events of a conversation with seq greater than `after`, in seq order.
    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// A conversation's record.
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;

    /// A visitor's conversations, newest first.
    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError>;

    /// The open conversations assigned to an agent, oldest first.
    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError>;

    /// Every open (queued, assigned or offline) conversation of every tenant, oldest first. Read when an engine
    /// starts.
    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError>;

    /// Creates or replaces a visitor record.
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError>;

    /// A visitor record.
    async fn visitor(&self, tenant: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError>;

    /// Creates or replaces an agent record.
    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError>;

    /// An agent record.
    async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError>;

    /// Every agent of every tenant, ordered by (tenant, id).
    async fn agents(&self) -> Result<Vec<Agent>, StoreError>;

    /// Creates or replaces a group record.
    async fn put_group(&self, group: Group) -> Result<(), StoreError>;

    /// Every group of every tenant, ordered by (tenant, id).
    async fn groups(&self) -> Result<Vec<Group>, StoreError>;

    // Working hours, visitor context and quick replies (issue #3).

    /// Sets a group's working hours, or removes them (`None`: the group is always open).
    async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), StoreError>;

    /// Every group's working hours, ordered by (tenant, group). Read when an engine starts.
    async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError>;

    /// Creates or replaces the visitor-context summary of a conversation.
    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError>;

    /// The visitor-context summary of a conversation.
    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError>;

    /// Creates or replaces a quick reply (by tenant and id). Fails with [`StoreError::Conflict`], storing
    /// nothing, when another quick reply of the same scope has the same shortcut.
    async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError>;

    /// Deletes a quick reply; false when there was none.
    async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;

    /// A quick reply by id.
    async fn quick_reply(&self, tenant: &TenantId, id: &str) -> Result<Option<QuickReply>, StoreError>;

    /// The quick replies of one scope, ordered by shortcut.
    async fn quick_replies(
        &self,
        tenant: &TenantId,
        scope: &QuickReplyScope,
    ) -> Result<Vec<QuickReply>, StoreError>;

    // Entry points (issue #3).

    /// Creates or replaces an entry point (by tenant and id).
    async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError>;

    /// Deletes an entry point; false when there was none.
    async fn delete_entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Result<bool, StoreError>;

    /// Every entry point of every tenant, ordered by (tenant, id). Read when an engine starts.
    async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError>;
}
