//! The engine: connections, requests, routing, and the persist → publish → push event flow.
//!
//! Transports hand the engine decoded frames through a [`Session`] and write what comes out of its [`Outbox`];
//! hosts call the same operations directly ([`Engine::send`], [`Engine::open`]…) from their own endpoints.
//! Nothing in here knows a socket, an HTTP type or a database.

mod admin;
mod agent_tools;
mod assignment;
mod attachments;
mod builder;
mod catalog;
mod connect;
mod connection;
mod conversations;
mod dispatch;
mod entry;
mod error;
mod lifecycle;
mod limiter;
mod monitor;
mod offline;
mod outbox;
mod permissions;
mod pipeline;
mod reactions;
mod request;
mod router;
mod routing;
mod seen;
mod session;
mod sessions;
mod snooze;
mod stats;
mod subscriptions;
mod tagging;
mod timers;
mod workspace;

use std::fmt;
use std::sync::Arc;

use crate::auth::{Authenticator, Identity, Principal};
use crate::clock::Clock;
use crate::limits::Limits;
use crate::model::{
    Agent, AgentId, AgentStatus, Conversation, ConversationId, Epoch, Group, GroupId, TenantId,
};
use crate::origin::AllowedOrigins;
use crate::store::{
    self, AuditLog, ConversationLog, ConversationPage, Directory, ExportFormat, ExportKind, FeedEntry,
    FeedPosition, FeedWake, FollowOptions, History, HistoryQuery, SearchPage, Settings, StoreError, Uploads,
};
use crate::telemetry::EngineMetrics;
use futures::stream::BoxStream;

use catalog::Catalog;
use dispatch::Dispatcher;
use lifecycle::Lifecycle;
use routing::Routing;
use seen::SeenBook;
use sessions::Sessions;

pub use admin::{Admin, MAX_AGENT_CAPACITY, MAX_NAME_BYTES, MAX_ORIGINS};
pub use agent_tools::VisitorContextView;
pub use assignment::Transfer;
pub use builder::EngineBuilder;
pub use conversations::{Ack, Opened};
pub use error::{EngineError, RequestError};
pub use lifecycle::{
    FeedConsumer, FeedConsumerHealth, FeedHealth, HEALTH_STORE_TIMEOUT, Health, SEARCH_INDEX_CONSUMER,
    StoreHealth,
};
pub use monitor::{AgentNow, GroupNow, MONITOR_VISITORS, Monitor, VisitorNow};
pub use outbox::{Outbox, Outgoing};
pub use permissions::require_role;
pub use seen::SEEN_FLUSH_DELAY;
pub use session::{Rejection, Session};
pub use snooze::MAX_SNOOZE_MS;

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
/// let opened = engine.open(&visitor, ClientId::new("open-1")?, None, None, Default::default()).await?;
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
    /// Which web origins each tenant allows: the builder's, with each tenant's stored list over it; replaced
    /// whole when an admin changes a tenant's list (`admin.rs`).
    origins: std::sync::RwLock<Arc<AllowedOrigins>>,
    /// Search and export of past conversations, when the host gave a backend for it.
    history: Option<Arc<dyn History>>,
    /// The records of uploaded files, when the host gave a backend for them.
    uploads: Option<Arc<dyn Uploads>>,
    /// The statistics, when the host asked for them (`stats.rs`).
    stats: Option<Arc<crate::stats::StatsKeeper>>,
    /// Every admin change (`admin.rs`).
    audit: Arc<dyn AuditLog>,
    /// The shutdown token and the tracked tasks (`lifecycle.rs`).
    lifecycle: Lifecycle,
    /// The engine's metric series (`docs/observability.md`).
    metrics: EngineMetrics,
    /// Read receipts not yet written to the log's seen marks (`seen.rs`).
    seen: SeenBook,
}

impl Engine {
    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The store's epoch.
    pub fn epoch(&self) -> &Epoch {
        &self.inner.epoch
    }

    /// A signal raised after every event this engine commits: a consumer of the change feed of its own (e.g.
    /// `kf-webhooks`' worker) waits on it instead of polling. It only says "read the feed"; it carries nothing.
    pub fn feed_wake(&self) -> FeedWake {
        self.inner.delivery.committed()
    }

    /// Every committed event after the change-feed position `after`, as an endless stream — for a host that
    /// integrates in process (see [`store::follow`]). Each [`FeedEntry`] carries its
    /// position, tenant and event (conversation, seq); a host stores the position of the last entry it handled
    /// and, after a restart, follows again from it: every later event once, in commit order. The stream reads a
    /// page at a time when polled (back-pressure: the consumer's pace, one page of memory), and is woken by this
    /// engine's commits when it has caught up (and every `options.poll_interval` for commits by others). It reads
    /// the change feed only; nothing is added to the write path but the wake-up.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use futures::StreamExt;
    /// # use kf_core::auth::{Identity, SignedTokens};
    /// # use kf_core::clock::SystemClock;
    /// # use kf_core::model::{ClientId, Group, GroupId, TenantId};
    /// # use kf_core::store::{FeedPosition, FollowOptions, MemoryStore};
    /// # use kf_core::Engine;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tokens = SignedTokens::new(&[7; 32], Arc::new(SystemClock))?;
    /// # let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens)).build().await?;
    /// # let shop = TenantId::new("shop")?;
    /// # engine.put_group(Group::new(shop.clone(), GroupId::new("support")?, "Support")).await?;
    /// let stored = FeedPosition::ZERO; // what the host kept of its last run
    /// let mut events = engine.follow_feed(stored, FollowOptions::default());
    /// let visitor = Identity::visitor(shop, "v-1".parse()?);
    /// engine.open(&visitor, ClientId::new("open-1")?, None, None, Default::default()).await?;
    /// let entry = events.next().await.expect("endless")?;
    /// assert_eq!((entry.tenant.as_str(), entry.event.seq.0), ("shop", 1));
    /// // … handle it, then store entry.position
    /// # Ok(())
    /// # }
    /// ```
    pub fn follow_feed(
        &self,
        after: FeedPosition,
        options: FollowOptions,
    ) -> BoxStream<'static, Result<FeedEntry, StoreError>> {
        let consumer = self.feed_consumer("follow_feed");
        consumer.record(after);
        let stream = store::follow(
            self.inner.log.clone(),
            after,
            options,
            Some(self.inner.delivery.committed()),
        );
        // The position an entry carries is handled once the consumer asks for the next one; recording it as
        // yielded is the closest the stream can tell (the lag in `health` is then at most one entry short).
        Box::pin(futures::StreamExt::inspect(stream, move |entry| {
            if let Ok(entry) = entry {
                consumer.record(entry.position);
            }
        }))
    }

    fn history(&self) -> Result<&Arc<dyn History>, StoreError> {
        self.inner.history.as_ref().ok_or_else(|| {
            StoreError::Unsupported(
                "no history backend was given to the engine (EngineBuilder::history)".into(),
            )
        })
    }

    /// One page of a tenant's messages matching `query` — full-text, filtered, with highlighted snippets (see
    /// [`store::History`] for the rules). The caller authorizes: agents and admins of `query.tenant` only, and
    /// `query.notes` only for agents. [`StoreError::Unsupported`] without a history backend
    /// ([`EngineBuilder::history`](crate::engine::EngineBuilder::history)).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use kf_core::{Engine, auth::{Identity, SignedTokens}, clock::SystemClock};
    /// # use kf_core::model::{ClientId, Group, GroupId, TenantId};
    /// # use kf_core::store::{HistoryQuery, MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tokens = SignedTokens::new(&[7; 32], Arc::new(SystemClock))?;
    /// let store = Arc::new(MemoryStore::new());
    /// let engine = Engine::builder(store.clone(), Arc::new(tokens)).history(store).build().await?;
    /// # let shop = TenantId::new("shop")?;
    /// # engine.put_group(Group::new(shop.clone(), GroupId::new("support")?, "Support")).await?;
    /// # let visitor = Identity::visitor(shop.clone(), "v-1".parse()?);
    /// # let opened = engine.open(&visitor, ClientId::new("open-1")?, None, None, Default::default()).await?;
    /// # let body = kf_core::model::MessageBody::text("我的订单什么时候发货？");
    /// # engine.send(&visitor, opened.conversation.id, ClientId::new("m-1")?, body).await?;
    /// let page = engine.search_history(&HistoryQuery::new(shop).text("发货")).await?;
    /// assert_eq!(page.hits[0].snippet.as_deref(), Some("我的订单什么时候<mark>发货</mark>？"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn search_history(&self, query: &HistoryQuery) -> Result<SearchPage, StoreError> {
        self.history()?.search(query).await
    }

    /// One page of a tenant's conversations matching `query`, oldest first (see
    /// [`store::History::conversations`]). Authorized by the caller, as
    /// [`search_history`](Self::search_history).
    pub async fn history_conversations(&self, query: &HistoryQuery) -> Result<ConversationPage, StoreError> {
        self.history()?.conversations(query).await
    }

    /// An export of a tenant's messages or conversations matching `query`'s filters, as CSV or JSON Lines: a
    /// stream of byte chunks read page by page ([`store::export`]), in bounded memory, to hand to an HTTP body
    /// or a file. Authorized by the caller, as [`search_history`](Self::search_history).
    pub fn export_history(
        &self,
        query: HistoryQuery,
        kind: ExportKind,
        format: ExportFormat,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, StoreError>>, StoreError> {
        query.check()?;
        Ok(store::export(Arc::clone(self.history()?), query, kind, format))
    }

    /// The web origins each tenant allows now (a snapshot: an admin's change makes a new one).
    pub fn allowed_origins(&self) -> Arc<AllowedOrigins> {
        Arc::clone(
            &self
                .inner
                .origins
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replaces the origins a tenant allows, in memory (the admin operation stores them first).
    fn set_allowed_origins(&self, tenant: &TenantId, patterns: Vec<crate::origin::OriginPattern>) {
        let mut origins = self
            .inner
            .origins
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *origins = Arc::new((**origins).clone().with_patterns(tenant, patterns));
    }

    /// Refuses a cross-origin browser request (`origin`: the request's `Origin` when it is cross-origin, see
    /// [`origin::cross_origin`](crate::origin::cross_origin)) that `tenant` does not allow.
    pub fn check_origin(&self, tenant: &TenantId, origin: Option<&str>) -> Result<(), RequestError> {
        match origin {
            Some(origin) if !self.allowed_origins().allows(tenant, origin) => {
                Err(RequestError::Forbidden(format!(
                    "pages of {} may not connect to tenant {tenant}",
                    // A header can be long; an error message is for people.
                    origin.chars().take(200).collect::<String>()
                )))
            }
            _ => Ok(()),
        }
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

    /// The group an `open` naming no group or entry point goes to when no page rule matches: the engine's
    /// default group, else the tenant's first group by id (`None`: the tenant has no group).
    pub fn default_group(&self, tenant: &TenantId) -> Option<GroupId> {
        let routing = &self.inner.routing;
        routing
            .default_group
            .clone()
            .or_else(|| routing.ledger.first_group(tenant))
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

    /// A conversation's record, as `identity` may read it: a visitor its own (without agent-only labels and
    /// attributes), an agent those of its groups and its own, a supervisor or an admin every conversation of its
    /// tenant. Another tenant's conversation is `NotFound`.
    pub async fn conversation(
        &self,
        identity: &Identity,
        id: ConversationId,
    ) -> Result<Conversation, RequestError> {
        let conversation = self.readable(identity, id).await?;
        Ok(match identity.principal {
            Principal::Visitor(_) => conversation.for_visitors(),
            Principal::Agent(_) => conversation,
        })
    }

    /// The record of a conversation `identity` may read: a visitor its own, an agent those of its tenant that
    /// are assigned to it, were assigned to it, or belong to one of its groups; a supervisor or an admin every
    /// conversation of its tenant (writing as a participant still needs the assignment: [`Engine::participant`]).
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
            Principal::Agent(_) if permissions::reads_whole_tenant(identity) => Ok(conversation),
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
}

#[cfg(test)]
mod routing_tests;
#[cfg(test)]
mod tests;
