//! Building an engine: its stores, authentication, policies, clock and limits; loading its state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::catalog::Catalog;
use super::dispatch::Dispatcher;
use super::lifecycle::{self, Lifecycle};
use super::routing::Routing;
use super::seen::SeenBook;
use super::sessions::Sessions;
use super::{Engine, EngineError, Inner};
use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::limits::Limits;
use crate::model::{ConversationState, GroupId};
use crate::origin::{AllowedOrigins, OriginPattern};
use crate::routing::{LeastBusy, RoutingPolicy};
use crate::stats::{StatsKeeper, StatsOptions};
use crate::store::{AuditLog, History, MemoryStore, StatsCheckpoints, Stores, Uploads};
use crate::telemetry::EngineMetrics;
use tokio_util::sync::CancellationToken;

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
    origins: AllowedOrigins,
    history: Option<Arc<dyn History>>,
    uploads: Option<Arc<dyn Uploads>>,
    statistics: Option<(Arc<dyn StatsCheckpoints>, StatsOptions)>,
    audit: Option<Arc<dyn AuditLog>>,
    shutdown: Option<CancellationToken>,
}

impl EngineBuilder {
    /// Where [`Engine::search_history`] and [`Engine::export_history`] read (default: none, and they answer
    /// [`StoreError::Unsupported`](crate::store::StoreError::Unsupported)); usually the same store as the log,
    /// `Engine::builder(store.clone(), tokens).history(store)`.
    pub fn history(mut self, history: Arc<dyn History>) -> Self {
        self.history = Some(history);
        self
    }

    /// Where the records of uploaded files are kept (default: none, and messages with attachments are refused
    /// as `unsupported`); usually the same store as the log, `.uploads(store)`. The upload endpoint
    /// (`kf-attachments`) records uploads there; the engine checks and commits them when a message carries them.
    pub fn uploads(mut self, uploads: Arc<dyn Uploads>) -> Self {
        self.uploads = Some(uploads);
        self
    }

    /// Keeps statistics ([`Engine::stats`]): a task follows the change feed, folds every committed event into
    /// the aggregates and checkpoints them in `checkpoints` (usually the same store as the log), so a restart
    /// resumes from the checkpoint (`docs/statistics.md`). Default: no statistics ([`Engine::stats`] answers
    /// [`StatsError::NotKept`](crate::stats::StatsError::NotKept)).
    pub fn statistics(mut self, checkpoints: Arc<dyn StatsCheckpoints>, options: StatsOptions) -> Self {
        self.statistics = Some((checkpoints, options));
        self
    }

    /// Where the admin operations ([`Engine::admin`]) write the audit log (the SQLite store, a host's own
    /// backend…). Without one the log is kept in memory and lost at a restart.
    pub fn audit(mut self, audit: Arc<dyn AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The host's shutdown token (default: the engine has a token of its own). When the host cancels it, the
    /// engine shuts down as by [`Engine::shutdown`] (await [`Engine::closed`] for the end); the engine watches
    /// a child of it, so its own shutdown cancels nothing of the host's.
    pub fn shutdown_token(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

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

    /// The web origins each tenant allows for cross-origin browser connections (default: none; see
    /// [`origin`](crate::origin)). A tenant whose list an admin set ([`Admin::put_allowed_origins`]) has the
    /// stored list instead.
    ///
    /// [`Admin::put_allowed_origins`]: crate::engine::Admin::put_allowed_origins
    pub fn allowed_origins(mut self, origins: AllowedOrigins) -> Self {
        self.origins = origins;
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
        let stats = match self.statistics {
            Some((checkpoints, options)) => Some(Arc::new(
                StatsKeeper::load(checkpoints, epoch.clone(), options).await?,
            )),
            None => None,
        };
        let mut origins = self.origins;
        for stored in settings.allowed_origins().await? {
            // Checked when they were set; one that no longer reads (a stricter build) is left out, not fatal.
            let patterns = stored
                .origins
                .iter()
                .filter_map(|pattern| match OriginPattern::new(pattern) {
                    Ok(pattern) => Some(pattern),
                    Err(error) => {
                        tracing::warn!(tenant = %stored.tenant, %error, "stored allowed origin left out");
                        None
                    }
                })
                .collect();
            origins = origins.with_patterns(&stored.tenant, patterns);
        }
        let lifecycle = Lifecycle::new(self.shutdown);
        let metrics = EngineMetrics::new();
        let engine = Engine {
            inner: Arc::new(Inner {
                log,
                directory,
                settings,
                authenticator: self.authenticator,
                clock: self.clock,
                sessions: Sessions::new(&self.limits, self.presence_grace, &metrics),
                limits: self.limits,
                epoch,
                delivery: Dispatcher::new(lifecycle.background.clone()),
                routing,
                catalog,
                origins: std::sync::RwLock::new(Arc::new(origins)),
                history: self.history,
                uploads: self.uploads,
                stats,
                audit: self.audit.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                lifecycle,
                metrics,
                seen: SeenBook::default(),
            }),
        };
        lifecycle::watch(&engine);
        engine.start_statistics();
        // Timers count from the conversation's last event (`updated_at`), so a wait or a silence that began before
        // the restart keeps what it had already used up (a message since the queue entry only lengthens it).
        for conversation in &open {
            match &conversation.state {
                ConversationState::Queued => engine.arm_queued(conversation),
                ConversationState::Assigned { agent } => engine.arm_assigned(conversation, agent),
                ConversationState::OnHold { until, .. } => engine.arm_snooze(conversation, *until),
                ConversationState::Closed | ConversationState::Offline => {}
            }
        }
        Ok(engine)
    }
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
            origins: AllowedOrigins::new(),
            history: None,
            uploads: None,
            statistics: None,
            audit: None,
            shutdown: None,
        }
    }
}
