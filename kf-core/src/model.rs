//! The domain model: identifiers, records, conversations (a typed state machine) and the events of their logs.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::limits::MAX_ID_LEN;

/// An identifier was empty, too long or contained control characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {kind}: {reason}")]
#[non_exhaustive]
pub struct InvalidId {
    /// Which identifier type rejected the value.
    pub kind: &'static str,
    /// Why it was rejected.
    pub reason: &'static str,
}

fn check_id(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    if value.is_empty() {
        return Err(InvalidId {
            kind,
            reason: "must not be empty",
        });
    }
    if value.len() > MAX_ID_LEN {
        return Err(InvalidId {
            kind,
            reason: "longer than 128 bytes",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidId {
            kind,
            reason: "contains control characters",
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier (non-empty, at most 128 bytes, no control characters).
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check_id($kind, &value)?;
                Ok(Self(value))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

string_id!(
    /// A tenant: one customer of the host (a shop, a brand). Every other record belongs to one tenant.
    TenantId,
    "tenant id"
);
string_id!(
    /// A website visitor, as identified by the host (a cookie id, a user id).
    VisitorId,
    "visitor id"
);
string_id!(
    /// A support agent.
    AgentId,
    "agent id"
);
string_id!(
    /// A skill group (department) agents belong to and conversations are routed to.
    GroupId,
    "group id"
);
string_id!(
    /// An entry point: a widget, channel or page rule that leads visitors to a group (see [`crate::entry`]).
    EntryPointId,
    "entry point id"
);
string_id!(
    /// A client-generated id that makes a request idempotent (for example a UUID made by the widget).
    ClientId,
    "client id"
);

/// A conversation's id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(Uuid);

impl ConversationId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl FromStr for ConversationId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConversationId({})", self.0)
    }
}

/// The position of an event in its conversation's log: 1, 2, 3… without gaps. `Seq::ZERO` means "nothing yet".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// Before the first event.
    pub const ZERO: Seq = Seq(0);

    /// The seq that follows this one.
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Timestamp(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }
}

/// Who did something: a visitor, an agent, or the system itself (routing, timers).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "role", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A website visitor.
    Visitor(VisitorId),
    /// A support agent.
    Agent(AgentId),
    /// kf itself.
    System,
}

impl Actor {
    /// A short stable name of the actor's role, used as a storage key.
    pub fn role(&self) -> &'static str {
        match self {
            Actor::Visitor(_) => "visitor",
            Actor::Agent(_) => "agent",
            Actor::System => "system",
        }
    }

    /// The id of the visitor or agent; empty for the system.
    pub fn id_str(&self) -> &str {
        match self {
            Actor::Visitor(id) => id.as_str(),
            Actor::Agent(id) => id.as_str(),
            Actor::System => "",
        }
    }
}

/// The content of a chat message. Text today; further fields (attachments) are added as optional fields, so
/// existing clients and stored rows stay valid.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageBody {
    /// The message text (UTF-8).
    pub text: String,
}

impl MessageBody {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// Size of the body in bytes, as counted against the message size limit.
    pub fn size(&self) -> usize {
        self.text.len()
    }
}

/// What happened in a conversation. Every kind is an entry in the conversation's log and gets a [`Seq`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The conversation was opened by a visitor for a group. Always seq 1.
    Created {
        /// The group the conversation was opened for.
        group: GroupId,
        /// The entry point the visitor came through, if any (absent in logs written before entry points).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry: Option<EntryPointId>,
    },
    /// A chat message.
    Message {
        /// Its content.
        body: MessageBody,
    },
    /// The conversation was assigned to an agent.
    Assigned {
        /// The agent who now owns the conversation.
        agent: AgentId,
    },
    /// The conversation was closed.
    Closed,
    /// A closed conversation was opened again and waits for an agent.
    Reopened,
    /// The conversation was handed on: to another agent, to another group's queue, or back to the queue.
    Transferred {
        /// The agent who owned it before, if it was assigned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<AgentId>,
        /// The new owner; absent when the conversation went (back) to a queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<AgentId>,
        /// The group the conversation belongs to from now on.
        group: GroupId,
        /// A note for the next agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The conversation was not routed — opened outside its group's working hours, or nobody took it within the
    /// group's max wait — and waits as an offline message (the visitor may still write) until an agent takes it
    /// (`assigned`) or it is closed.
    Offline,
    /// The conversation was missed: recorded for the group's agents (it changes nothing else).
    Missed {
        /// Why.
        reason: MissedReason,
    },
}

/// Why a conversation counts as missed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MissedReason {
    /// It waited in a queue past the group's `missed_after_ms`.
    Waited,
    /// The visitor closed it while it was still waiting for an agent.
    Unanswered,
}

impl EventKind {
    /// The stable snake_case name of the kind (the `type` field on the wire).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Created { .. } => "created",
            EventKind::Message { .. } => "message",
            EventKind::Assigned { .. } => "assigned",
            EventKind::Closed => "closed",
            EventKind::Reopened => "reopened",
            EventKind::Transferred { .. } => "transferred",
            EventKind::Missed { .. } => "missed",
            EventKind::Offline => "offline",
        }
    }
}

/// One committed entry of a conversation's log. The engine and the stores produce events; a store backend
/// rebuilds them with [`Event::new`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The conversation this event belongs to.
    pub conversation: ConversationId,
    /// Its position in the conversation's log.
    pub seq: Seq,
    /// When it was committed (server clock).
    pub at: Timestamp,
    /// Who caused it.
    pub author: Actor,
    /// The idempotency key the author sent with it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// What happened.
    pub data: EventKind,
}

impl Event {
    /// An event as committed: `seq` in `conversation`'s log at `at`, by `author` (with the idempotency key it
    /// sent, if any).
    ///
    /// ```
    /// use kf_core::model::{Actor, ConversationId, Event, EventKind, MessageBody, Seq, Timestamp, VisitorId};
    ///
    /// let author = Actor::Visitor(VisitorId::new("v1").unwrap());
    /// let data = EventKind::Message { body: MessageBody::text("hi") };
    /// let event = Event::new(ConversationId::generate(), Seq(2), Timestamp(1), author, None, data);
    /// assert_eq!(event.data.name(), "message");
    /// ```
    pub fn new(
        conversation: ConversationId,
        seq: Seq,
        at: Timestamp,
        author: Actor,
        client_id: Option<ClientId>,
        data: EventKind,
    ) -> Self {
        Self {
            conversation,
            seq,
            at,
            author,
            client_id,
            data,
        }
    }

    /// The event as a visitor may see it, when that differs: a transfer's `note` is for agents only.
    pub fn for_visitors(&self) -> Option<Event> {
        match &self.data {
            EventKind::Transferred {
                from,
                agent,
                group,
                note: Some(_),
            } => Some(Event {
                data: EventKind::Transferred {
                    from: from.clone(),
                    agent: agent.clone(),
                    group: group.clone(),
                    note: None,
                },
                ..self.clone()
            }),
            _ => None,
        }
    }
}

/// A conversation's state. Transitions happen only by applying events (see [`Conversation::apply`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConversationState {
    /// Waiting for an agent.
    Queued,
    /// Owned by an agent.
    Assigned {
        /// The owner.
        agent: AgentId,
    },
    /// Finished; a visitor message may reopen it.
    Closed,
    /// Not routed (outside working hours, or past the group's max wait): an offline message, waiting for an
    /// agent to take it.
    Offline,
}

impl ConversationState {
    /// The stable snake_case name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            ConversationState::Queued => "queued",
            ConversationState::Assigned { .. } => "assigned",
            ConversationState::Closed => "closed",
            ConversationState::Offline => "offline",
        }
    }

    /// The owning agent, if assigned.
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            ConversationState::Assigned { agent } => Some(agent),
            _ => None,
        }
    }

    /// Not closed: queued, assigned or offline (an offline message still takes messages and can be taken).
    pub fn is_open(&self) -> bool {
        !matches!(self, ConversationState::Closed)
    }
}

/// An event that the conversation's current state does not allow.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[error("a conversation that is {state} cannot take a `{event}` event")]
#[non_exhaustive]
pub struct TransitionError {
    /// The state's name.
    pub state: &'static str,
    /// The event kind's name.
    pub event: &'static str,
}

/// A conversation between one visitor and the agents of a group: the projection of its event log. The engine
/// produces it; a store backend rebuilds a stored one with [`Conversation::new`] and sets the other fields.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The visitor who opened it.
    pub visitor: VisitorId,
    /// The group it is routed to.
    pub group: GroupId,
    /// Queued, assigned or closed.
    #[serde(flatten)]
    pub state: ConversationState,
    /// The agent who owned it last (kept after close, for reopening and sticky routing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_agent: Option<AgentId>,
    /// The seq of the newest event in its log.
    pub last_seq: Seq,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its last event was committed.
    pub updated_at: Timestamp,
}

impl Conversation {
    /// The state right after the `Created` event (seq 1).
    pub fn new(
        id: ConversationId,
        tenant: TenantId,
        visitor: VisitorId,
        group: GroupId,
        at: Timestamp,
    ) -> Self {
        Self {
            id,
            tenant,
            visitor,
            group,
            state: ConversationState::Queued,
            last_agent: None,
            last_seq: Seq(1),
            created_at: at,
            updated_at: at,
        }
    }

    /// Checks that `kind` may be appended now, without changing anything.
    pub fn check(&self, kind: &EventKind) -> Result<(), TransitionError> {
        use ConversationState as S;
        let allowed = match (&self.state, kind) {
            (_, EventKind::Created { .. }) => false,
            (S::Queued | S::Assigned { .. } | S::Offline, EventKind::Message { .. }) => true,
            (S::Queued | S::Offline, EventKind::Assigned { .. }) => true,
            (S::Queued | S::Assigned { .. } | S::Offline, EventKind::Closed) => true,
            (S::Queued, EventKind::Offline) => true,
            (S::Closed, EventKind::Reopened) => true,
            (S::Queued | S::Assigned { .. }, EventKind::Transferred { .. }) => true,
            (_, EventKind::Missed { .. }) => true,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(TransitionError {
                state: self.state.name(),
                event: kind.name(),
            })
        }
    }

    /// Applies the event that will be committed with the next seq; returns that seq.
    /// On error the conversation is unchanged.
    pub fn apply(&mut self, kind: &EventKind, at: Timestamp) -> Result<Seq, TransitionError> {
        self.check(kind)?;
        match kind {
            EventKind::Assigned { agent } => {
                self.state = ConversationState::Assigned { agent: agent.clone() };
                self.last_agent = Some(agent.clone());
            }
            EventKind::Closed => self.state = ConversationState::Closed,
            EventKind::Reopened => self.state = ConversationState::Queued,
            EventKind::Offline => self.state = ConversationState::Offline,
            EventKind::Transferred { agent, group, .. } => {
                self.group = group.clone();
                match agent {
                    Some(agent) => {
                        self.state = ConversationState::Assigned { agent: agent.clone() };
                        self.last_agent = Some(agent.clone());
                    }
                    None => self.state = ConversationState::Queued,
                }
            }
            EventKind::Created { .. } | EventKind::Message { .. } | EventKind::Missed { .. } => {}
        }
        self.last_seq = self.last_seq.next();
        self.updated_at = at;
        Ok(self.last_seq)
    }
}

/// A visitor record.
///
/// ```
/// use kf_core::model::{TenantId, Timestamp, Visitor, VisitorId};
///
/// let visitor = Visitor::new(TenantId::new("shop").unwrap(), VisitorId::new("v1").unwrap(), Timestamp(0))
///     .with_name("Ada");
/// assert_eq!(visitor.name.as_deref(), Some("Ada"));
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Visitor {
    /// The tenant.
    pub tenant: TenantId,
    /// The visitor's id.
    pub id: VisitorId,
    /// A display name, when the visitor gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// First seen.
    pub created_at: Timestamp,
}

impl Visitor {
    /// A visitor first seen at `created_at`, without a name.
    pub fn new(tenant: TenantId, id: VisitorId, created_at: Timestamp) -> Self {
        Self {
            tenant,
            id,
            name: None,
            created_at,
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// An agent record: who they are and how much they can take.
///
/// ```
/// use kf_core::model::{Agent, AgentId, GroupId, TenantId};
///
/// let support = GroupId::new("support").unwrap();
/// let agent = Agent::new(TenantId::new("shop").unwrap(), AgentId::new("alice").unwrap(), "Alice", 5)
///     .with_groups([support.clone()])
///     .with_group_capacity(support.clone(), 2);
/// assert_eq!(agent.capacity_in(&support), 2);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Agent {
    /// The tenant.
    pub tenant: TenantId,
    /// The agent's id.
    pub id: AgentId,
    /// Display name shown to visitors.
    pub name: String,
    /// Skill groups the agent takes conversations from.
    pub groups: Vec<GroupId>,
    /// Maximum number of open conversations assigned at once.
    pub capacity: u32,
    /// Per-group overrides of `capacity`: the agent takes a conversation of such a group only while it has
    /// fewer open conversations (of any group) than the override.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_capacity: BTreeMap<GroupId, u32>,
}

impl Agent {
    /// An agent of no group yet, taking up to `capacity` open conversations at once.
    pub fn new(tenant: TenantId, id: AgentId, name: impl Into<String>, capacity: u32) -> Self {
        Self {
            tenant,
            id,
            name: name.into(),
            groups: Vec::new(),
            capacity,
            group_capacity: BTreeMap::new(),
        }
    }

    /// Sets the groups the agent takes conversations from.
    #[must_use]
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = GroupId>) -> Self {
        self.groups = groups.into_iter().collect();
        self
    }

    /// Sets the agent's capacity.
    #[must_use]
    pub fn with_capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Overrides the capacity for conversations of `group` (see [`Agent::group_capacity`]).
    #[must_use]
    pub fn with_group_capacity(mut self, group: GroupId, capacity: u32) -> Self {
        self.group_capacity.insert(group, capacity);
        self
    }

    /// The capacity that applies when the agent takes a conversation of `group`.
    pub fn capacity_in(&self, group: &GroupId) -> u32 {
        self.group_capacity.get(group).copied().unwrap_or(self.capacity)
    }
}

/// The availability an agent chose. Whatever it chose, an agent without a live connection is offline; only an
/// `online` agent with a live connection gets new conversations. The others keep the ones they have.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentStatus {
    /// Takes new conversations.
    #[default]
    Online,
    /// Away from the desk.
    Away,
    /// Busy with something else.
    Busy,
    /// Appears offline while connected.
    Offline,
    /// A status of the agent's own wording (its label travels next to it).
    Custom,
}

impl AgentStatus {
    /// Whether an agent with this status takes new conversations.
    pub fn accepts(self) -> bool {
        self == AgentStatus::Online
    }
}

/// How a group chooses the agent for a conversation. `docs/routing.md` gives each one's fairness rule.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// The engine's default policy (`EngineBuilder::routing`, least-busy unless the host set another).
    #[default]
    Default,
    /// Most spare capacity; ties to the least recently assigned, then the smallest id.
    LeastBusy,
    /// The least recently assigned agent with spare capacity; ties to the smallest id.
    RoundRobin,
    /// Nobody is assigned automatically: agents claim conversations from the shared queue.
    Manual,
    /// A returning visitor goes to the agent who served it last if that agent can take it; otherwise least-busy.
    Sticky,
    /// A policy the host registered on the engine builder under this name.
    External(String),
}

/// A skill group (department).
///
/// ```
/// use kf_core::model::{Group, GroupId, GroupTimers, Strategy, TenantId};
///
/// let group = Group::new(TenantId::new("shop").unwrap(), GroupId::new("sales").unwrap(), "Sales")
///     .with_strategy(Strategy::RoundRobin)
///     .with_welcome("Hi! Someone from sales will be with you shortly.")
///     .with_timers(GroupTimers::default().with_missed_after_ms(60_000));
/// assert_eq!(group.max_active, None);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Group {
    /// The tenant.
    pub tenant: TenantId,
    /// The group's id.
    pub id: GroupId,
    /// Display name.
    pub name: String,
    /// How an agent is chosen for the group's conversations.
    #[serde(default)]
    pub strategy: Strategy,
    /// Most conversations of this group assigned at once, over all its agents (no cap when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<u32>,
    /// A message kf posts (as the system) in every new conversation of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<String>,
    /// Timers of the group's conversations (all off by default).
    #[serde(default, skip_serializing_if = "GroupTimers::is_off")]
    pub timers: GroupTimers,
}

/// A group's timers, in milliseconds. Each runs from the event it names; `None` turns it off. Start from
/// [`GroupTimers::default`] (all off) and turn on what you need with the `with_…` setters.
///
/// ```
/// use kf_core::model::{GroupId, GroupTimers};
///
/// let timers = GroupTimers::default()
///     .with_max_wait_ms(120_000)
///     .with_fallback(GroupId::new("general").unwrap());
/// assert!(!timers.is_off());
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupTimers {
    /// Longest a conversation waits in the queue: then it moves to `fallback`, or without one becomes a message
    /// left for the group's agents (state `offline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_ms: Option<u64>,
    /// The group a conversation moves to after `max_wait_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<GroupId>,
    /// A conversation waiting this long in the queue is recorded as missed and agents are reminded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_after_ms: Option<u64>,
    /// An assigned agent that has not written within this long loses the conversation to another agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_timeout_ms: Option<u64>,
    /// An assigned conversation whose visitor has not written for this long is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_close_ms: Option<u64>,
}

impl GroupTimers {
    /// Sets [`max_wait_ms`](Self::max_wait_ms).
    #[must_use]
    pub fn with_max_wait_ms(mut self, ms: u64) -> Self {
        self.max_wait_ms = Some(ms);
        self
    }

    /// Sets [`fallback`](Self::fallback).
    #[must_use]
    pub fn with_fallback(mut self, group: GroupId) -> Self {
        self.fallback = Some(group);
        self
    }

    /// Sets [`missed_after_ms`](Self::missed_after_ms).
    #[must_use]
    pub fn with_missed_after_ms(mut self, ms: u64) -> Self {
        self.missed_after_ms = Some(ms);
        self
    }

    /// Sets [`answer_timeout_ms`](Self::answer_timeout_ms).
    #[must_use]
    pub fn with_answer_timeout_ms(mut self, ms: u64) -> Self {
        self.answer_timeout_ms = Some(ms);
        self
    }

    /// Sets [`inactivity_close_ms`](Self::inactivity_close_ms).
    #[must_use]
    pub fn with_inactivity_close_ms(mut self, ms: u64) -> Self {
        self.inactivity_close_ms = Some(ms);
        self
    }

    /// Whether every timer is off.
    pub fn is_off(&self) -> bool {
        self == &GroupTimers::default()
    }
}

impl Group {
    /// A group with the default strategy and no cap.
    pub fn new(tenant: TenantId, id: GroupId, name: impl Into<String>) -> Self {
        Self {
            tenant,
            id,
            name: name.into(),
            strategy: Strategy::default(),
            max_active: None,
            welcome: None,
            timers: GroupTimers::default(),
        }
    }

    /// Sets how an agent is chosen.
    #[must_use]
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Caps the conversations of the group assigned at once.
    #[must_use]
    pub fn with_max_active(mut self, max_active: u32) -> Self {
        self.max_active = Some(max_active);
        self
    }

    /// Sets the message posted in every new conversation of the group.
    #[must_use]
    pub fn with_welcome(mut self, welcome: impl Into<String>) -> Self {
        self.welcome = Some(welcome.into());
        self
    }

    /// Sets the group's timers.
    #[must_use]
    pub fn with_timers(mut self, timers: GroupTimers) -> Self {
        self.timers = timers;
        self
    }
}

/// Identifies one incarnation of a store. Seqs (cursors) and feed positions only mean something within one
/// epoch: a client holding a cursor from another epoch must start over from [`Seq::ZERO`].
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation() -> Conversation {
        Conversation::new(
            ConversationId::generate(),
            TenantId::new("t").expect("id"),
            VisitorId::new("v").expect("id"),
            GroupId::new("g").expect("id"),
            Timestamp(1),
        )
    }

    #[test]
    fn ids_are_validated() {
        assert!(AgentId::new("").is_err());
        assert!(AgentId::new("a\u{0}b").is_err());
        assert!(AgentId::new("x".repeat(129)).is_err());
        assert!(AgentId::new("x".repeat(128)).is_ok());
        let parsed: Result<AgentId, _> = serde_json::from_str("\"\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn lifecycle_follows_the_state_machine() {
        let mut c = conversation();
        let agent = AgentId::new("a").expect("id");
        assert_eq!(
            c.apply(
                &EventKind::Message {
                    body: MessageBody::text("hi")
                },
                Timestamp(2)
            ),
            Ok(Seq(2))
        );
        assert_eq!(
            c.apply(&EventKind::Assigned { agent: agent.clone() }, Timestamp(3)),
            Ok(Seq(3))
        );
        assert_eq!(c.state.agent(), Some(&agent));
        let again = c.apply(&EventKind::Assigned { agent: agent.clone() }, Timestamp(4));
        assert_eq!(
            again,
            Err(TransitionError {
                state: "assigned",
                event: "assigned"
            })
        );
        assert_eq!(c.last_seq, Seq(3), "a refused event changes nothing");
        assert_eq!(c.apply(&EventKind::Closed, Timestamp(5)), Ok(Seq(4)));
        assert!(
            c.apply(
                &EventKind::Message {
                    body: MessageBody::text("late")
                },
                Timestamp(6)
            )
            .is_err()
        );
        assert!(c.apply(&EventKind::Closed, Timestamp(6)).is_err());
        assert_eq!(c.apply(&EventKind::Reopened, Timestamp(7)), Ok(Seq(5)));
        assert_eq!(c.state, ConversationState::Queued);
        assert_eq!(c.last_agent, Some(agent));
        assert!(
            c.apply(
                &EventKind::Created {
                    group: c.group.clone(),
                    entry: None,
                },
                Timestamp(8)
            )
            .is_err()
        );
    }

    #[test]
    fn transfers_move_the_owner_or_requeue() {
        let mut c = conversation();
        let (a, b) = (AgentId::new("a").expect("id"), AgentId::new("b").expect("id"));
        let other = GroupId::new("billing").expect("id");
        c.apply(&EventKind::Assigned { agent: a.clone() }, Timestamp(2))
            .expect("assign");
        let to_b = EventKind::Transferred {
            from: Some(a.clone()),
            agent: Some(b.clone()),
            group: c.group.clone(),
            note: Some("knows the order".into()),
        };
        assert_eq!(c.apply(&to_b, Timestamp(3)), Ok(Seq(3)));
        assert_eq!(c.state.agent(), Some(&b));
        assert_eq!(c.last_agent, Some(b.clone()));
        let to_queue = EventKind::Transferred {
            from: Some(b.clone()),
            agent: None,
            group: other.clone(),
            note: None,
        };
        assert_eq!(c.apply(&to_queue, Timestamp(4)), Ok(Seq(4)));
        assert_eq!(c.state, ConversationState::Queued);
        assert_eq!(c.group, other);
        assert_eq!(c.last_agent, Some(b), "the last owner is kept for sticky routing");
        c.apply(&EventKind::Closed, Timestamp(5)).expect("close");
        assert_eq!(
            c.apply(&to_b, Timestamp(6)),
            Err(TransitionError {
                state: "closed",
                event: "transferred"
            })
        );
        let json = serde_json::to_value(&to_queue).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"type": "transferred", "from": "b", "group": "billing"})
        );
    }

    #[test]
    fn offline_messages_take_messages_and_can_be_taken_or_closed() {
        let mut c = conversation();
        let text = EventKind::Message {
            body: MessageBody::text("please call back"),
        };
        assert_eq!(c.apply(&EventKind::Offline, Timestamp(2)), Ok(Seq(2)));
        assert_eq!(c.state, ConversationState::Offline);
        assert!(c.state.is_open());
        assert_eq!(c.apply(&text, Timestamp(3)), Ok(Seq(3)));
        assert!(
            c.apply(&EventKind::Offline, Timestamp(4)).is_err(),
            "only from queued"
        );
        assert!(c.apply(&EventKind::Reopened, Timestamp(4)).is_err());
        let agent = AgentId::new("a").expect("id");
        let mut taken = c.clone();
        assert_eq!(
            taken.apply(&EventKind::Assigned { agent: agent.clone() }, Timestamp(4)),
            Ok(Seq(4))
        );
        assert_eq!(taken.state, ConversationState::Assigned { agent });
        assert_eq!(c.apply(&EventKind::Closed, Timestamp(4)), Ok(Seq(4)));
        assert!(
            c.apply(&EventKind::Offline, Timestamp(5)).is_err(),
            "not from closed"
        );
        let json = serde_json::to_value(ConversationState::Offline).expect("json");
        assert_eq!(json, serde_json::json!({"status": "offline"}));
    }

    #[test]
    fn records_without_routing_settings_load_with_defaults() {
        let agent: Agent = serde_json::from_value(serde_json::json!({
            "tenant": "t", "id": "a", "name": "A", "groups": ["g", "h"], "capacity": 3
        }))
        .expect("agent");
        assert!(agent.group_capacity.is_empty());
        let mut agent = agent;
        agent.group_capacity.insert(GroupId::new("h").expect("id"), 1);
        assert_eq!(agent.capacity_in(&GroupId::new("g").expect("id")), 3);
        assert_eq!(agent.capacity_in(&GroupId::new("h").expect("id")), 1);
        let group: Group = serde_json::from_value(serde_json::json!({"tenant": "t", "id": "g", "name": "G"}))
            .expect("group");
        assert_eq!(group.strategy, Strategy::Default);
        assert_eq!(group.max_active, None);
        let external = serde_json::to_value(Strategy::External("crm".into())).expect("json");
        assert_eq!(external, serde_json::json!({"external": "crm"}));
        let manual = serde_json::to_value(Strategy::Manual).expect("json");
        assert_eq!(manual, serde_json::json!("manual"));
    }

    #[test]
    fn created_events_carry_their_entry_point_only_when_there_is_one() {
        let old: EventKind = serde_json::from_value(serde_json::json!({"type": "created", "group": "g"}))
            .expect("a log written before entry points");
        let plain = EventKind::Created {
            group: GroupId::new("g").expect("id"),
            entry: None,
        };
        assert_eq!(old, plain);
        assert_eq!(
            serde_json::to_value(&plain).expect("json"),
            serde_json::json!({"type": "created", "group": "g"})
        );
        let through = EventKind::Created {
            group: GroupId::new("g").expect("id"),
            entry: Some(EntryPointId::new("pricing").expect("id")),
        };
        assert_eq!(
            serde_json::to_value(&through).expect("json"),
            serde_json::json!({"type": "created", "group": "g", "entry": "pricing"})
        );
    }

    #[test]
    fn event_json_shape_is_stable() {
        let event = Event {
            conversation: ConversationId::from_uuid(Uuid::nil()),
            seq: Seq(2),
            at: Timestamp(1700000000000),
            author: Actor::Visitor(VisitorId::new("v1").expect("id")),
            client_id: Some(ClientId::new("c1").expect("id")),
            data: EventKind::Message {
                body: MessageBody::text("hello"),
            },
        };
        let json = serde_json::to_value(&event).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "conversation": "00000000-0000-0000-0000-000000000000",
                "seq": 2,
                "at": 1700000000000u64,
                "author": {"role": "visitor", "id": "v1"},
                "client_id": "c1",
                "data": {"type": "message", "body": {"text": "hello"}}
            })
        );
        let back: Event = serde_json::from_value(json).expect("parse");
        assert_eq!(back, event);
        let system = serde_json::to_value(Actor::System).expect("json");
        assert_eq!(system, serde_json::json!({"role": "system"}));
    }
}
