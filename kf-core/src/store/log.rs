//! [`ConversationLog`]: the conversation logs, their records, and the change feed.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::context::ConversationContext;
use crate::model::{
    Actor, AgentId, ClientId, Conversation, ConversationId, EntryPointId, Epoch, Event, EventKind, GroupId,
    MessageBody, SeenMark, Seq, TenantId, Timestamp, VisitorId,
};

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
    /// The visitor's pre-chat answers, recorded on the `Created` event.
    pub fields: BTreeMap<String, String>,
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
                fields: self.fields.clone(),
            },
        }
    }
}

/// The result of [`ConversationLog::create_conversation`].
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

/// The result of [`ConversationLog::append`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Appended {
    /// The committed event (for a duplicate: the original one).
    pub event: Event,
    /// The conversation after the event (for a duplicate: as it is now).
    pub conversation: Conversation,
    /// True when the client id had been used before and nothing new was stored.
    pub duplicate: bool,
}

/// A place in a store's change feed: the position of one committed event, or [`FeedPosition::ZERO`] (before
/// everything). Positions only mean something within one [`Epoch`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeedPosition(pub u64);

impl FeedPosition {
    /// Before the first event.
    pub const ZERO: FeedPosition = FeedPosition(0);

    /// The smallest position after this one. Positions only promise order: the next event's may be higher.
    pub fn next(self) -> FeedPosition {
        FeedPosition(self.0.saturating_add(1))
    }
}

impl std::fmt::Display for FeedPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// One committed event as the change feed hands it out.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct FeedEntry {
    /// Its position in the feed.
    pub position: FeedPosition,
    /// The tenant of its conversation.
    pub tenant: TenantId,
    /// The event.
    pub event: Event,
}

impl FeedEntry {
    /// An entry of the feed (for backends).
    pub fn new(position: FeedPosition, tenant: TenantId, event: Event) -> Self {
        Self {
            position,
            tenant,
            event,
        }
    }
}

/// The conversation logs: each conversation's record and its ordered, gapless log of events, and the store-wide
/// change feed over every log. Object safe; held as `Arc<dyn ConversationLog>` (or as part of a
/// [`Store`](super::Store)).
///
/// A log assigns each event its [`Seq`] in the same durable commit that stores it, enforces idempotency per
/// (conversation, author, client id), and keeps each conversation's record in step with its log by applying
/// every event through [`Conversation::apply`]. An append the conversation's state does not allow is refused and
/// changes nothing.
///
/// Implementations must make `create_conversation`, `append` and `append_batch` durable before they return
/// `Ok` (the engine acknowledges a send to its client right after), and must serialize appends to one
/// conversation so that seqs are gapless.
///
/// # The change feed
///
/// Every committed event, each conversation's `Created` event included, gets exactly one [`FeedPosition`],
/// assigned in the same commit as the event; positions strictly increase in commit order. Duplicates and refused
/// appends add nothing. A consumer that stores a position and later asks [`feed_after`](Self::feed_after) gets
/// exactly what was committed after it, never skipping an event: so a position must never become visible to a
/// reader before every smaller position is. A backend with one writer gets this for free (commit order is
/// position order); a backend with concurrent writers must assign positions at commit time under a lock (or
/// hold readers back to the lowest position not yet committed), never from a sequence taken before the commit.
#[async_trait]
pub trait ConversationLog: Send + Sync + Debug + 'static {
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

    /// Appends several events, in order, each exactly as [`append`](Self::append) would (a later draft sees the
    /// effect of an earlier one, also on the same conversation). Returns one result per draft, in order; a
    /// refused draft stores nothing and does not stop the others. Backends may commit the drafts together (the
    /// default appends them one by one).
    async fn append_batch(&self, drafts: Vec<EventDraft>) -> Vec<Result<Appended, StoreError>> {
        let mut results = Vec::with_capacity(drafts.len());
        for draft in drafts {
            results.push(self.append(draft).await);
        }
        results
    }

    /// Up to `limit` events of a conversation with seq greater than `after`, in seq order.
    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// The event `author` stored in a conversation under `client_id` (a `Created` event under the visitor's
    /// open client id), whatever the conversation's state now; `None` when there is none or the conversation
    /// is unknown. Lets a retried send be answered with its original event after the conversation closed.
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError>;

    /// A conversation's record.
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;

    /// A visitor's conversations, newest first.
    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError>;

    /// The open conversations assigned to an agent, and those it put on hold, oldest first.
    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError>;

    /// Every open (queued, assigned or offline) conversation of every tenant, oldest first. Read when an engine
    /// starts.
    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError>;

    /// Creates or replaces the visitor-context summary of a conversation; [`StoreError::ConversationNotFound`]
    /// for an unknown conversation.
    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError>;

    /// The visitor-context summary of a conversation.
    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError>;

    /// Raises seen marks: afterwards each participant's stored mark is at least the `seq` given (a lower one than
    /// stored changes nothing: marks never move backwards). Marks of unknown conversations are skipped. Durable
    /// before `Ok`. The engine coalesces `read` receipts and hands them over in batches, so a backend may simply
    /// write the batch in one transaction. [`StoreError::Invalid`] (nothing stored) when a mark is by `system`
    /// or at seq 0.
    async fn record_seen(&self, marks: Vec<SeenMark>) -> Result<(), StoreError>;

    /// The stored seen marks of these conversations (every participant's), in no particular order.
    async fn seen(&self, conversations: &[ConversationId]) -> Result<Vec<SeenMark>, StoreError>;

    /// Up to `limit` committed events with a position greater than `after`, in position order, each with its
    /// position and tenant. [`FeedPosition::ZERO`] reads from the beginning; a position at or beyond the head
    /// reads nothing.
    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError>;

    /// The position of the last committed event ([`FeedPosition::ZERO`] for an empty store).
    async fn feed_head(&self) -> Result<FeedPosition, StoreError>;
}

/// Checks the marks handed to [`ConversationLog::record_seen`] (for backends): no `system` mark, no seq 0.
pub fn check_seen_marks(marks: &[SeenMark]) -> Result<(), StoreError> {
    for mark in marks {
        if mark.from == Actor::System {
            return Err(StoreError::Invalid(format!(
                "a seen mark of conversation {} is by `system`: only visitors and agents see",
                mark.conversation
            )));
        }
        if mark.seq == Seq::ZERO {
            return Err(StoreError::Invalid(format!(
                "a seen mark of conversation {} is at seq 0",
                mark.conversation
            )));
        }
    }
    Ok(())
}

macro_rules! forward_conversation_log {
    ($pointer:ident) => {
        #[async_trait]
        impl<T: ?Sized + ConversationLog> ConversationLog for $pointer<T> {
            async fn epoch(&self) -> Result<Epoch, StoreError> {
                (**self).epoch().await
            }
            async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
                (**self).create_conversation(new).await
            }
            async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
                (**self).append(draft).await
            }
            async fn append_batch(&self, drafts: Vec<EventDraft>) -> Vec<Result<Appended, StoreError>> {
                (**self).append_batch(drafts).await
            }
            async fn events_after(
                &self,
                conversation: ConversationId,
                after: Seq,
                limit: usize,
            ) -> Result<Vec<Event>, StoreError> {
                (**self).events_after(conversation, after, limit).await
            }
            async fn event_by_client_id(
                &self,
                conversation: ConversationId,
                author: &Actor,
                client_id: &ClientId,
            ) -> Result<Option<Event>, StoreError> {
                (**self)
                    .event_by_client_id(conversation, author, client_id)
                    .await
            }
            async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
                (**self).conversation(id).await
            }
            async fn conversations_of_visitor(
                &self,
                tenant: &TenantId,
                visitor: &VisitorId,
            ) -> Result<Vec<Conversation>, StoreError> {
                (**self).conversations_of_visitor(tenant, visitor).await
            }
            async fn conversations_of_agent(
                &self,
                tenant: &TenantId,
                agent: &AgentId,
            ) -> Result<Vec<Conversation>, StoreError> {
                (**self).conversations_of_agent(tenant, agent).await
            }
            async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
                (**self).open_conversations().await
            }
            async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
                (**self).put_conversation_context(context).await
            }
            async fn conversation_context(
                &self,
                conversation: ConversationId,
            ) -> Result<Option<ConversationContext>, StoreError> {
                (**self).conversation_context(conversation).await
            }
            async fn record_seen(&self, marks: Vec<SeenMark>) -> Result<(), StoreError> {
                (**self).record_seen(marks).await
            }
            async fn seen(&self, conversations: &[ConversationId]) -> Result<Vec<SeenMark>, StoreError> {
                (**self).seen(conversations).await
            }
            async fn feed_after(
                &self,
                after: FeedPosition,
                limit: usize,
            ) -> Result<Vec<FeedEntry>, StoreError> {
                (**self).feed_after(after, limit).await
            }
            async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
                (**self).feed_head().await
            }
        }
    };
}

forward_conversation_log!(Arc);
forward_conversation_log!(Box);
