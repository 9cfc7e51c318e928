//! The engine: connections, requests, routing, and the persist → publish → push event flow.
//!
//! Transports hand the engine decoded frames through a [`Session`] and write what comes out of its [`Outbox`];
//! hosts call the same operations directly ([`Engine::send`], [`Engine::open`]…) from their own endpoints.
//! Nothing in here knows a socket, an HTTP type or a database.

mod agent_tools;
mod assignment;
mod catalog;
mod connection;
mod dispatch;
mod entry;
mod limiter;
mod offline;
mod outbox;
mod pipeline;
mod reactions;
mod request;
mod router;
mod routing;
mod session;
mod sessions;
mod timers;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::auth::{AuthError, Authenticator, Identity, Principal};
use crate::clock::{Clock, SystemClock};
use crate::cursor::Cursor;
use crate::model::Epoch;
use crate::model::{
    Actor, Agent, AgentId, AgentStatus, ClientId, Conversation, ConversationId, ConversationState,
    EntryPointId, EventKind, Group, GroupId, MessageBody, MissedReason, Seq, TenantId, TransitionError,
    Visitor, VisitorId,
};
use crate::protocol::{CloseReason, ErrorCode, PROTOCOL_VERSION, ServerFrame};
use crate::routing::{LeastBusy, RoutingPolicy};
use crate::store::{ConversationLog, Directory, EventDraft, NewConversation, Settings, StoreError, Stores};

use catalog::Catalog;
use connection::Conn;
use dispatch::Dispatcher;
use pipeline::{Command, Opening};
use router::Presence;
use routing::Routing;
use sessions::Sessions;

pub use agent_tools::VisitorContextView;
pub use assignment::Transfer;
pub use outbox::{Outbox, Outgoing};
pub use session::{Rejection, Session};

use crate::limits::Limits;

/// Why a request failed. Each maps to a stable [`ErrorCode`] for the wire.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The conversation (or group) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The principal may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The conversation's state does not allow it.
    #[error(transparent)]
    InvalidState(#[from] TransitionError),
    /// The message is too large.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The request is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Too many live connections for this identity.
    #[error("too many connections: at most {0} per visitor or agent")]
    TooManyConnections(usize),
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The store failed; the request may be retried with the same client id.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// The agent (claiming, or a transfer's target) has no spare capacity, or the group is at its cap.
    #[error("at capacity: {0}")]
    AtCapacity(String),
    /// A transfer's target cannot take conversations now (offline, not accepting, not in the group).
    #[error("agent unavailable: {0}")]
    AgentUnavailable(String),
    /// The request clashes with existing data (a quick reply shortcut already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A seq the client gave (a subscription's cursor, a read receipt) is beyond the conversation's last seq.
    #[error("bad cursor: {0}")]
    BadCursor(String),
}

impl RequestError {
    /// The wire error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::NotFound(_) => ErrorCode::NotFound,
            RequestError::Forbidden(_) => ErrorCode::Forbidden,
            RequestError::InvalidState(_) => ErrorCode::InvalidState,
            RequestError::TooLarge { .. } => ErrorCode::TooLarge,
            RequestError::Invalid(_) => ErrorCode::InvalidFrame,
            RequestError::TooManyConnections(_) => ErrorCode::TooManyConnections,
            RequestError::Auth(AuthError::Expired) => ErrorCode::TokenExpired,
            RequestError::Auth(AuthError::Unavailable(_)) => ErrorCode::Unavailable,
            RequestError::Auth(_) => ErrorCode::InvalidToken,
            RequestError::Unavailable(_) => ErrorCode::Unavailable,
            RequestError::AtCapacity(_) => ErrorCode::AtCapacity,
            RequestError::AgentUnavailable(_) => ErrorCode::AgentUnavailable,
            RequestError::Conflict(_) => ErrorCode::Conflict,
            RequestError::BadCursor(_) => ErrorCode::BadCursor,
        }
    }

    /// The `error` frame answering a request with this id.
    pub fn to_frame(&self, id: Option<String>) -> ServerFrame {
        ServerFrame::error(id, self.code(), self.to_string())
    }
}

impl From<StoreError> for RequestError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::ConversationNotFound(id) => RequestError::NotFound(format!("conversation {id}")),
            StoreError::Transition(error) => RequestError::InvalidState(error),
            StoreError::Invalid(message) => RequestError::Invalid(message),
            StoreError::Conflict(message) => RequestError::Conflict(message),
            other => RequestError::Unavailable(other),
        }
    }
}

/// The engine failed to start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Loading agents, groups or open conversations from the store failed.
    #[error("cannot load state from the store: {0}")]
    Store(#[from] StoreError),
}

/// Result of [`Engine::open`].
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The conversation as it is now.
    pub conversation: Conversation,
    /// False when an existing conversation was returned (same client id, or already open in that group).
    pub created: bool,
}

/// Result of [`Engine::send`]: the message is durably stored.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Ack {
    /// The message's seq.
    pub seq: Seq,
    /// True when this client id was sent before and the original seq is returned.
    pub duplicate: bool,
}

/// Builds an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    stores: Stores,
    authenticator: Arc<dyn Authenticator>,
    routing: Arc<dyn RoutingPolicy>,
    policies: HashMap<String, Arc<dyn RoutingPolicy>>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    presence_grace: Duration,
    default_group: Option<GroupId>,
}

impl EngineBuilder {
    /// The routing policy (default: [`LeastBusy`]).
    pub fn routing(mut self, routing: Arc<dyn RoutingPolicy>) -> Self {
        self.routing = routing;
        self
    }

    /// Registers a host policy under `name`, for groups whose strategy is `Strategy::External(name)`.
    /// A group naming a policy that is not registered is routed by the default policy (and a warning logged).
    pub fn policy(mut self, name: impl Into<String>, policy: Arc<dyn RoutingPolicy>) -> Self {
        self.policies.insert(name.into(), policy);
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The limits (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long an agent whose last connection dropped stays online, so a reconnect keeps its place
    /// (default: 10 s).
    pub fn presence_grace(mut self, grace: Duration) -> Self {
        self.presence_grace = grace;
        self
    }

    /// The group a visitor's `open` goes to when it names none (default: the tenant's first group by id).
    pub fn default_group(mut self, group: GroupId) -> Self {
        self.default_group = Some(group);
        self
    }

    /// Loads groups, agents and open conversations from the store and starts the engine.
    pub async fn build(self) -> Result<Engine, EngineError> {
        let Stores {
            log,
            directory,
            settings,
            ..
        } = self.stores;
        let epoch = log.epoch().await?;
        let routing = Routing::new(
            self.routing,
            self.policies,
            self.default_group,
            self.limits.missed_reminders_per_group,
        );
        for group in directory.groups().await? {
            routing.ledger.put_group(group);
        }
        for agent in directory.agents().await? {
            routing.ledger.put_agent(agent);
        }
        let open = log.open_conversations().await?;
        for conversation in &open {
            routing.ledger.track(conversation.clone());
        }
        let catalog = Catalog::load(directory.as_ref(), settings.as_ref()).await?;
        let engine = Engine {
            inner: Arc::new(Inner {
                log,
                directory,
                settings,
                authenticator: self.authenticator,
                clock: self.clock,
                sessions: Sessions::new(&self.limits, self.presence_grace),
                limits: self.limits,
                epoch,
                delivery: Dispatcher::default(),
                routing,
                catalog,
            }),
        };
        // Timers count from the conversation's last event (`updated_at`), so a wait or a silence that began before
        // the restart keeps what it had already used up (a message since the queue entry only lengthens it).
        for conversation in &open {
            match &conversation.state {
                ConversationState::Queued => engine.arm_queued(conversation),
                ConversationState::Assigned { agent } => engine.arm_assigned(conversation, agent),
                ConversationState::Closed | ConversationState::Offline => {}
            }
        }
        Ok(engine)
    }
}

/// The kf engine. Cheap to clone (an `Arc` inside); share one per process.
///
/// Transports hand it frames ([`Engine::accept`], [`Session::receive`], [`Engine::request`]); a host calls the
/// same operations directly from its own endpoints, and configures groups and agents:
///
/// ```
/// # use std::sync::Arc;
/// # use kf_core::auth::{Identity, SignedTokens};
/// # use kf_core::clock::SystemClock;
/// # use kf_core::model::{Agent, ClientId, Group, GroupId, MessageBody, TenantId};
/// # use kf_core::store::MemoryStore;
/// # use kf_core::Engine;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tokens = SignedTokens::new(&[7; 32], Arc::new(SystemClock))?;
/// let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens)).build().await?;
/// let shop = TenantId::new("shop")?;
/// engine.put_group(Group::new(shop.clone(), GroupId::new("support")?, "Support")).await?;
/// let agent = Agent::new(shop.clone(), "alice".parse()?, "Alice", 3).with_groups([GroupId::new("support")?]);
/// engine.put_agent(agent).await?;
///
/// let visitor = Identity::visitor(shop, "v-1".parse()?);
/// let opened = engine.open(&visitor, ClientId::new("open-1")?, None, None).await?;
/// let ack = engine
///     .send(&visitor, opened.conversation.id, ClientId::new("m-1")?, MessageBody::text("Hi!"))
///     .await?;
/// assert_eq!(ack.seq.0, 2); // 1 is `created`
/// // A retry with the same client id stores nothing new.
/// let again = engine
///     .send(&visitor, opened.conversation.id, ClientId::new("m-1")?, MessageBody::text("Hi!"))
///     .await?;
/// assert!(again.duplicate && again.seq == ack.seq);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("log", &self.inner.log)
            .field("epoch", &self.inner.epoch)
            .finish_non_exhaustive()
    }
}

/// The engine's parts. Each component owns its state; the engine's methods are the flow between them:
/// a request is checked against the sessions and the catalogue, its change is committed through the pipeline
/// (`pipeline.rs`) to the log, and the reactions hand the event to delivery and routing.
struct Inner {
    /// The conversation logs and the change feed: written only by the pipeline.
    log: Arc<dyn ConversationLog>,
    /// Agents, groups, visitors, entry points (written through by the admin API).
    directory: Arc<dyn Directory>,
    /// Working hours, quick replies.
    settings: Arc<dyn Settings>,
    authenticator: Arc<dyn Authenticator>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    epoch: Epoch,
    /// Live connections, their rate limits and visitors' page trails.
    sessions: Sessions,
    /// Subscriptions and the per-connection outbound queues.
    delivery: Dispatcher,
    /// The ledger of agents, groups, queues and assignments, the policies and the timers' state.
    routing: Routing,
    /// Working hours and entry points, cached.
    catalog: Catalog,
}

impl Engine {
    /// Starts building an engine over its stores (one backend for all three, `Arc<S: Store>`, or a
    /// [`Stores`] bundle of separate ones), authenticating with `authenticator`.
    pub fn builder(stores: impl Into<Stores>, authenticator: Arc<dyn Authenticator>) -> EngineBuilder {
        EngineBuilder {
            stores: stores.into(),
            authenticator,
            routing: Arc::new(LeastBusy),
            policies: HashMap::new(),
            clock: Arc::new(SystemClock),
            limits: Limits::default(),
            presence_grace: Duration::from_secs(10),
            default_group: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The store's epoch.
    pub fn epoch(&self) -> &Epoch {
        &self.inner.epoch
    }

    /// The conversation log, for the crate's tests and the testkit (hosts read through the engine).
    #[cfg(any(test, feature = "testkit"))]
    pub(crate) fn log(&self) -> &Arc<dyn ConversationLog> {
        &self.inner.log
    }

    /// Checks that the store answers (reads its epoch): for a host's health endpoint.
    pub async fn check_store(&self) -> Result<(), RequestError> {
        self.inner.log.epoch().await?;
        Ok(())
    }

    /// Checks a token with the configured authenticator.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, RequestError> {
        Ok(self.inner.authenticator.authenticate(token).await?)
    }

    /// Opens a session for an authenticated identity: queues `welcome` and `inbox` on its outbox.
    ///
    /// Transports that authenticate at the HTTP level call this; frame-based transports usually call
    /// [`Engine::accept`] with the connection's first frame instead.
    pub async fn connect(&self, identity: Identity) -> Result<(Session, Outbox), RequestError> {
        self.admit(&identity).await?;
        // Register before reading the inbox (as subscriptions do), so an assignment committed meanwhile is
        // either in the inbox or announced by a `conversation` frame; `welcome` is queued on registration so it
        // always comes first.
        let welcome = ServerFrame::Welcome {
            v: PROTOCOL_VERSION,
            tenant: identity.tenant.clone(),
            principal: identity.principal.clone(),
            epoch: self.inner.epoch.clone(),
            limits: self.inner.limits.for_clients(),
        };
        let conn = self.inner.sessions.open(&identity, welcome.encode())?;
        let presence = match &identity.principal {
            Principal::Agent(agent) => self.inner.routing.ledger.connect(&identity.tenant, agent),
            Principal::Visitor(_) => None,
        };
        // From here on the session's drop undoes the registration, also when the inbox read fails.
        let session = Session::new(self.clone(), Arc::clone(&conn));
        let inbox = self.inbox(&identity).await?;
        self.greet(&conn, inbox);
        if let Principal::Agent(agent) = &identity.principal {
            self.announce_offline_messages(&conn).await;
            self.remind_missed(&conn, agent).await;
        }
        if let Some(Presence::CameOnline(groups)) = presence {
            tracing::debug!(principal = ?identity.principal, "agent online");
            for group in groups {
                self.drain(&identity.tenant, &group).await;
            }
        }
        Ok((session, Outbox::new(Arc::clone(&conn.outlet))))
    }

    /// Lets `identity` in: a visitor seen for the first time gets a record; an agent must be known.
    async fn admit(&self, identity: &Identity) -> Result<(), RequestError> {
        let inner = &self.inner;
        match &identity.principal {
            Principal::Visitor(id) => {
                if inner.directory.visitor(&identity.tenant, id).await?.is_none() {
                    let visitor = Visitor::new(identity.tenant.clone(), id.clone(), inner.clock.now());
                    inner.directory.put_visitor(visitor).await?;
                }
            }
            Principal::Agent(id) => {
                if inner.routing.ledger.agent(&identity.tenant, id).is_none() {
                    return Err(RequestError::Forbidden(format!("unknown agent {id}")));
                }
            }
        }
        Ok(())
    }

    /// The conversations an `inbox` lists: a visitor's open ones then its most recent closed ones (a long
    /// history must not flood the session); an agent's assigned ones (bounded by its capacity).
    async fn inbox(&self, identity: &Identity) -> Result<Vec<Conversation>, RequestError> {
        let log = &self.inner.log;
        Ok(match &identity.principal {
            Principal::Visitor(id) => {
                let mut all = log.conversations_of_visitor(&identity.tenant, id).await?;
                all.sort_by_key(|c| !c.state.is_open());
                all.truncate(self.inner.limits.inbox_conversations);
                all
            }
            Principal::Agent(id) => log.conversations_of_agent(&identity.tenant, id).await?,
        })
    }

    /// Queues `inbox` on a new connection, then a visitor's queue positions or an agent's queue view.
    fn greet(&self, conn: &Conn, inbox: Vec<Conversation>) {
        let now = self.inner.clock.now();
        let ledger = &self.inner.routing.ledger;
        let positions: Vec<ServerFrame> = inbox
            .iter()
            .filter(|c| c.state == ConversationState::Queued)
            .filter(|_| matches!(conn.identity.principal, Principal::Visitor(_)))
            .filter_map(|c| {
                let (position, estimated_wait_ms) = ledger.position(&c.id, now)?;
                Some(ServerFrame::Position {
                    conversation: c.id,
                    position,
                    estimated_wait_ms,
                })
            })
            .collect();
        conn.outlet
            .push_unbounded(ServerFrame::Inbox { conversations: inbox }.encode());
        for frame in positions {
            conn.outlet.offer(frame.encode());
        }
        if let Principal::Agent(agent) = &conn.identity.principal {
            let conversations = self.queue_entries(&conn.identity.tenant, agent);
            if !conversations.is_empty() {
                let queue = ServerFrame::Queue {
                    id: None,
                    conversations,
                };
                conn.outlet.offer(queue.encode());
            }
        }
    }

    /// Accepts a connection from its first frame, which must be `hello`.
    pub async fn accept(&self, first_frame: &str) -> Result<(Session, Outbox), Rejection> {
        session::accept(self, first_frame).await
    }

    /// Ends every live connection (they are told [`CloseReason::Shutdown`] and resume elsewhere).
    pub fn shutdown(&self) {
        self.inner.sessions.close_all(CloseReason::Shutdown);
    }

    /// Bookkeeping when a session ends: subscriptions go, and an agent goes offline after the grace period.
    fn disconnect(&self, conn: &Arc<Conn>) {
        conn.outlet.close(CloseReason::Shutdown);
        for conversation in conn.subscriptions().drain() {
            self.inner.delivery.unsubscribe(conn.id, conversation);
        }
        self.inner.sessions.close(conn);
        let Principal::Agent(agent) = &conn.identity.principal else {
            return;
        };
        let tenant = &conn.identity.tenant;
        let Some(departure) = self.inner.routing.ledger.disconnect(tenant, agent) else {
            return;
        };
        let grace = self.inner.sessions.presence_grace;
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !grace.is_zero() => runtime,
            // No grace period, or no runtime to wait on: offline now.
            _ => {
                self.inner
                    .routing
                    .ledger
                    .offline_if_idle(tenant, agent, departure);
                return;
            }
        };
        let engine = self.clone();
        let (tenant, agent) = (tenant.clone(), agent.clone());
        // The deadline counts from the departure, not from when the timer task first runs.
        let deadline = tokio::time::Instant::now() + grace;
        runtime.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if engine
                .inner
                .routing
                .ledger
                .offline_if_idle(&tenant, &agent, departure)
            {
                tracing::debug!(%agent, "agent offline");
            }
        });
    }

    /// Whether an agent is online now (has a live connection, or lost its last one within the grace period).
    pub fn is_online(&self, tenant: &TenantId, agent: &AgentId) -> bool {
        self.inner.routing.ledger.is_online(tenant, agent)
    }

    /// Open conversations assigned to an agent now.
    pub fn agent_load(&self, tenant: &TenantId, agent: &AgentId) -> usize {
        self.inner.routing.ledger.load(tenant, agent)
    }

    /// The queued conversations of a group, oldest first.
    pub fn queue(&self, tenant: &TenantId, group: &GroupId) -> Vec<ConversationId> {
        self.inner.routing.ledger.queue(tenant, group)
    }

    /// The groups of a tenant as the engine routes them now (its cache of the stored records), ordered by id.
    pub fn groups(&self, tenant: &TenantId) -> Vec<Group> {
        self.inner.routing.ledger.groups(tenant)
    }

    /// One group as the engine routes it now; `None` for an unknown group.
    pub fn group(&self, tenant: &TenantId, group: &GroupId) -> Option<Group> {
        self.inner.routing.ledger.group(tenant, group)
    }

    /// An agent's record as the engine routes it now; `None` for an unknown agent.
    pub fn agent(&self, tenant: &TenantId, agent: &AgentId) -> Option<Agent> {
        self.inner.routing.ledger.agent(tenant, agent)
    }

    /// Creates or updates a group. Its queue drains if the change lets agents take more. Runs to the end even if
    /// the caller is dropped, so the store and the engine never disagree.
    pub async fn put_group(&self, group: Group) -> Result<(), RequestError> {
        let engine = self.clone();
        self.detached(async move {
            engine.inner.directory.put_group(group.clone()).await?;
            let (tenant, id) = (group.tenant.clone(), group.id.clone());
            engine.inner.routing.ledger.put_group(group);
            engine.drain(&tenant, &id).await;
            Ok(())
        })
        .await
    }

    /// The status an agent chose and its label (`None` for an unknown agent).
    pub fn agent_status(&self, tenant: &TenantId, agent: &AgentId) -> Option<(AgentStatus, Option<String>)> {
        self.inner.routing.ledger.status(tenant, agent)
    }

    /// Creates or updates an agent (groups, capacity). Queues drain if it can now take more. Runs to the end even
    /// if the caller is dropped.
    pub async fn put_agent(&self, agent: Agent) -> Result<(), RequestError> {
        let engine = self.clone();
        self.detached(async move {
            engine.inner.directory.put_agent(agent.clone()).await?;
            let tenant = agent.tenant.clone();
            for group in engine.inner.routing.ledger.put_agent(agent) {
                engine.drain(&tenant, &group).await;
            }
            Ok(())
        })
        .await
    }

    /// Pushes a `conversation` frame to the live connections of `identity` (all of them, or only those that
    /// follow all their conversations), and subscribes the followers from where their cursor left it.
    fn announce(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        frame: &bytes::Bytes,
        followers: bool,
    ) {
        for conn in self.inner.sessions.of(identity) {
            let after = conn.follow_position(conversation);
            if followers && after.is_none() {
                continue;
            }
            let _ = conn.outlet.push(frame.clone());
            if let Some(after) = after {
                self.subscribe_once(&conn, conversation, after);
            }
        }
    }

    /// Subscribes `conn` to a conversation unless it already is (a second subscription would replay again).
    fn subscribe_once(&self, conn: &Arc<Conn>, conversation: ConversationId, after: Seq) {
        if conn.subscriptions().insert(conversation) {
            self.inner
                .delivery
                .subscribe(Arc::clone(&self.inner.log), Arc::clone(conn), conversation, after);
        }
    }

    /// The record of a conversation `identity` may read: a visitor its own, an agent those of its tenant that
    /// are assigned to it, were assigned to it, or belong to one of its groups.
    async fn readable(&self, identity: &Identity, id: ConversationId) -> Result<Conversation, RequestError> {
        let conversation = match self.inner.routing.ledger.open_conversation(&id) {
            Some(conversation) => conversation,
            None => self
                .inner
                .log
                .conversation(id)
                .await?
                .ok_or_else(|| RequestError::NotFound(format!("conversation {id}")))?,
        };
        let not_found = || RequestError::NotFound(format!("conversation {id}"));
        if conversation.tenant != identity.tenant {
            return Err(not_found());
        }
        match &identity.principal {
            Principal::Visitor(visitor) if &conversation.visitor == visitor => Ok(conversation),
            Principal::Visitor(_) => Err(not_found()),
            Principal::Agent(agent) => {
                if conversation.state.agent() == Some(agent)
                    || conversation.last_agent.as_ref() == Some(agent)
                    || self
                        .inner
                        .routing
                        .ledger
                        .in_group(&identity.tenant, agent, &conversation.group)
                {
                    Ok(conversation)
                } else {
                    Err(RequestError::Forbidden(format!("conversation {id} is not yours")))
                }
            }
        }
    }

    /// The record of a conversation `identity` takes part in: the visitor, or the assigned agent.
    async fn participant(
        &self,
        identity: &Identity,
        id: ConversationId,
    ) -> Result<Conversation, RequestError> {
        let conversation = self.readable(identity, id).await?;
        if let Principal::Agent(agent) = &identity.principal
            && conversation.state.agent() != Some(agent)
        {
            return Err(RequestError::Forbidden(format!(
                "conversation {id} is not assigned to you"
            )));
        }
        Ok(conversation)
    }

    /// A visitor opens a conversation: with `group`, else through the entry point `entry`, else through the
    /// entry point whose page rule matches the visitor's current page, else with the default group (the order
    /// is documented on `docs/protocol.md` §7.2). Idempotent by client id; a visitor with a conversation
    /// already open in that group gets that one back.
    pub async fn open(
        &self,
        identity: &Identity,
        client_id: ClientId,
        group: Option<GroupId>,
        entry: Option<EntryPointId>,
    ) -> Result<Opened, RequestError> {
        let Principal::Visitor(visitor) = &identity.principal else {
            return Err(RequestError::Forbidden("only visitors open conversations".into()));
        };
        let tenant = &identity.tenant;
        let entry::Destination {
            group,
            entry,
            welcome,
        } = self.destination(tenant, visitor, group, entry)?;
        if !self.inner.routing.ledger.has_group(tenant, &group) {
            return Err(RequestError::NotFound(format!("group {group}")));
        }
        let offline = !self.is_group_open(tenant, &group);
        if let Some(existing) = self.waiting(tenant, visitor, &group, offline) {
            return self.existing(existing).await;
        }
        // An entry point's welcome replaces the group's; a message left gets none.
        let welcome = match offline {
            true => None,
            false => welcome.or_else(|| self.inner.routing.ledger.welcome(tenant, &group)),
        };
        let new = NewConversation {
            id: ConversationId::generate(),
            tenant: tenant.clone(),
            visitor: visitor.clone(),
            group,
            client_id,
            entry,
            at: self.inner.clock.now(),
        };
        let opening = Opening {
            new,
            offline,
            welcome,
        };
        let committed = self.commit(Command::Create(opening)).await?;
        if committed.duplicate {
            return self.existing(committed.conversation).await;
        }
        let conversation = self
            .inner
            .routing
            .ledger
            .open_conversation(&committed.conversation.id)
            .unwrap_or(committed.conversation);
        Ok(Opened {
            conversation,
            created: true,
        })
    }

    /// A conversation of the visitor already open in `group` (live, or outside hours a message left), which
    /// answers an `open` instead of a new one.
    fn waiting(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        group: &GroupId,
        offline: bool,
    ) -> Option<Conversation> {
        let ledger = &self.inner.routing.ledger;
        ledger.open_of_visitor(tenant, visitor, group, false).or_else(|| {
            offline
                .then(|| ledger.open_of_visitor(tenant, visitor, group, true))
                .flatten()
        })
    }

    /// The answer to an `open` that found a conversation already there: its stored record (copies held in memory
    /// are not updated per message).
    async fn existing(&self, conversation: Conversation) -> Result<Opened, RequestError> {
        let conversation = self
            .inner
            .log
            .conversation(conversation.id)
            .await?
            .unwrap_or(conversation);
        Ok(Opened {
            conversation,
            created: false,
        })
    }

    /// Sends a message. Returns once it is durably stored; a repeated client id returns the original seq.
    pub async fn send(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: ClientId,
        body: MessageBody,
    ) -> Result<Ack, RequestError> {
        let limit = self.inner.limits.max_text_bytes;
        if body.size() > limit {
            return Err(RequestError::TooLarge {
                size: body.size(),
                limit,
            });
        }
        let author = identity.principal.actor();
        if let Err(refused) = self.participant(identity, conversation).await {
            // A retry of a message stored before the conversation closed or moved on gets its original ack.
            return match refused {
                RequestError::Forbidden(_) | RequestError::InvalidState(_) => self
                    .stored_send(conversation, &author, &client_id)
                    .await?
                    .ok_or(refused),
                other => Err(other),
            };
        }
        let draft = EventDraft::message(
            conversation,
            author.clone(),
            Some(client_id.clone()),
            body,
            self.inner.clock.now(),
        );
        let appended = match self.commit(Command::append(draft.clone())).await {
            // A visitor writing to a closed conversation reopens it.
            Err(RequestError::InvalidState(_)) if matches!(identity.principal, Principal::Visitor(_)) => {
                self.reopen(conversation).await?;
                self.commit(Command::append(draft)).await?
            }
            Err(refused @ RequestError::InvalidState(_)) => {
                return self
                    .stored_send(conversation, &author, &client_id)
                    .await?
                    .ok_or(refused);
            }
            other => other?,
        };
        Ok(Ack {
            seq: appended.event.seq,
            duplicate: appended.duplicate,
        })
    }

    /// The ack of a message `author` already stored with `client_id` in `conversation`, if there is one.
    async fn stored_send(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Ack>, RequestError> {
        let stored = self
            .inner
            .log
            .event_by_client_id(conversation, author, client_id)
            .await?;
        Ok(stored.map(|event| Ack {
            seq: event.seq,
            duplicate: true,
        }))
    }

    /// Reopens a closed conversation (the reaction to `reopened` routes it). A concurrent reopen is not an
    /// error.
    async fn reopen(&self, conversation: ConversationId) -> Result<(), RequestError> {
        let draft = EventDraft::system(conversation, EventKind::Reopened, self.inner.clock.now());
        match self.commit(Command::append(draft)).await {
            Ok(_) | Err(RequestError::InvalidState(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Closes a conversation (its visitor or its assigned agent). Returns the seq of the `closed` event.
    /// Idempotent: closing a closed conversation answers with its current last seq.
    pub async fn close(
        &self,
        identity: &Identity,
        conversation: ConversationId,
    ) -> Result<Seq, RequestError> {
        let record = self.readable(identity, conversation).await?;
        if !record.state.is_open() {
            return Ok(record.last_seq);
        }
        if let Principal::Agent(agent) = &identity.principal
            && record.state.agent() != Some(agent)
        {
            return Err(RequestError::Forbidden(format!(
                "conversation {conversation} is not assigned to you"
            )));
        }
        if matches!(identity.principal, Principal::Visitor(_))
            && record.state == ConversationState::Queued
            && record.last_agent.is_none()
        {
            // Recorded before the close, so the `closed` event stays the log's last (a repeated close answers
            // its seq).
            self.missed(&record, MissedReason::Unanswered).await;
        }
        let author = identity.principal.actor();
        let draft = EventDraft::new(conversation, author, EventKind::Closed, self.inner.clock.now());
        match self.commit(Command::append(draft)).await {
            Ok(appended) => Ok(appended.event.seq),
            Err(RequestError::InvalidState(refused)) => {
                // Closed by someone else since we looked: that is the outcome asked for.
                match self.inner.log.conversation(conversation).await? {
                    Some(now) if !now.state.is_open() => Ok(now.last_seq),
                    _ => Err(RequestError::InvalidState(refused)),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Relays a typing signal to the conversation's other subscribers (ephemeral: never stored, may be dropped).
    async fn typing(
        &self,
        identity: &Identity,
        except_conn: u64,
        conversation: ConversationId,
        active: bool,
    ) -> Result<(), RequestError> {
        let record = self.participant(identity, conversation).await?;
        if !record.state.is_open() {
            return Err(TransitionError {
                state: record.state.name(),
                event: "typing",
            }
            .into());
        }
        let frame = ServerFrame::Typing {
            conversation,
            from: identity.principal.actor(),
            active,
        }
        .encode();
        self.inner.delivery.relay(conversation, except_conn, &frame);
        Ok(())
    }

    /// Relays a read receipt to the conversation's other subscribers (ephemeral, like typing).
    async fn read(
        &self,
        identity: &Identity,
        except_conn: u64,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<(), RequestError> {
        let record = self.readable(identity, conversation).await?;
        if seq == Seq::ZERO {
            return Err(RequestError::Invalid("`seq` must be at least 1".into()));
        }
        self.within_log(&record, seq).await?;
        if let Principal::Agent(agent) = &identity.principal
            && record.state.agent() != Some(agent)
            && record.last_agent.as_ref() != Some(agent)
        {
            return Err(RequestError::Forbidden(format!(
                "conversation {conversation} is not assigned to you"
            )));
        }
        let frame = ServerFrame::Read {
            conversation,
            from: identity.principal.actor(),
            seq,
        }
        .encode();
        self.inner.delivery.relay(conversation, except_conn, &frame);
        Ok(())
    }

    /// Subscribes a connection to a conversation after `after`; returns the cursor replay starts from.
    async fn subscribe(
        &self,
        conn: &Arc<Conn>,
        conversation: ConversationId,
        after: Seq,
        reset: bool,
        reply: impl FnOnce(Seq, bool, Seq) -> ServerFrame,
    ) -> Result<(), RequestError> {
        let record = self.readable(&conn.identity, conversation).await?;
        let after = if reset { Seq::ZERO } else { after };
        // The record may be an in-memory copy behind the log: `subscribed` announces the stored last seq.
        let record = self.inner.log.conversation(conversation).await?.unwrap_or(record);
        let last_seq = self.within_log(&record, after).await?;
        // The reply goes out before the replayed events, which the dispatcher queues after registering.
        let _ = conn.outlet.push(reply(after, reset, last_seq).encode());
        conn.subscriptions().insert(conversation);
        self.inner
            .delivery
            .subscribe(Arc::clone(&self.inner.log), Arc::clone(conn), conversation, after);
        Ok(())
    }

    /// Checks that `seq` (a cursor or a read receipt) is within the conversation's log; returns its last seq.
    /// The record may be an in-memory copy that lags the log, so a seq beyond it is checked against the store.
    async fn within_log(&self, record: &Conversation, seq: Seq) -> Result<Seq, RequestError> {
        if seq <= record.last_seq {
            return Ok(record.last_seq);
        }
        let last_seq = match self.inner.log.conversation(record.id).await? {
            Some(stored) => stored.last_seq,
            None => record.last_seq,
        };
        if seq > last_seq {
            return Err(RequestError::BadCursor(format!(
                "seq {} is beyond the last seq {} of conversation {}",
                seq.0, last_seq.0, record.id
            )));
        }
        Ok(last_seq)
    }

    /// Makes `conn` follow all its principal's conversations from `cursor` (see [`Session::follow`]).
    async fn follow(&self, conn: &Arc<Conn>, cursor: &Cursor) -> Result<(), RequestError> {
        let reset = cursor.is_stale(&self.inner.epoch);
        let cursor = if reset {
            Cursor::new(&self.inner.epoch)
        } else {
            cursor.clone()
        };
        // Register before listing, as `connect` does: a conversation that joins meanwhile is subscribed by
        // `announce` or found in the listing, and `subscribe_once` keeps it to one subscription.
        conn.start_following(cursor.clone());
        let _ = conn.outlet.push(ServerFrame::Following { reset }.encode());
        let identity = &conn.identity;
        let mut joined: Vec<Conversation> = match &identity.principal {
            Principal::Visitor(visitor) => {
                let mut all = self
                    .inner
                    .log
                    .conversations_of_visitor(&identity.tenant, visitor)
                    .await?;
                all.retain(|c| c.state.is_open());
                all
            }
            Principal::Agent(agent) => {
                self.inner
                    .log
                    .conversations_of_agent(&identity.tenant, agent)
                    .await?
            }
        };
        // Conversations the cursor knows that have left the listing (closed, transferred) still deliver what
        // happened to them since, so the client learns how they ended.
        for (conversation, position) in cursor.positions() {
            if joined.iter().any(|c| c.id == conversation) {
                continue;
            }
            match self.readable(identity, conversation).await {
                Ok(record) => {
                    self.within_log(&record, position).await?;
                    if record.last_seq > position {
                        joined.push(record);
                    }
                }
                Err(RequestError::NotFound(_) | RequestError::Forbidden(_)) => {}
                Err(error) => return Err(error),
            }
        }
        for conversation in &joined {
            self.within_log(conversation, cursor.position(conversation.id))
                .await?;
        }
        for conversation in joined {
            self.subscribe_once(conn, conversation.id, cursor.position(conversation.id));
        }
        Ok(())
    }

    fn unsubscribe(&self, conn: &Conn, conversation: ConversationId) {
        conn.subscriptions().remove(&conversation);
        self.inner.delivery.unsubscribe(conn.id, conversation);
    }
}

#[cfg(test)]
mod routing_tests;
#[cfg(test)]
mod tests;
