//! The engine's lifecycle: graceful shutdown and health.
//!
//! **Shutdown.** Every task the engine starts is tracked: commits (the pipeline's tasks, which also run their
//! reactions) in one [`TaskTracker`], everything else — timers, history catch-ups, presence graces, and the
//! connection tasks transports register with [`Engine::spawn`] — in another. Nothing is detached. The engine
//! stops when its [`CancellationToken`] is cancelled: a host's token given to
//! [`EngineBuilder::shutdown_token`](super::EngineBuilder::shutdown_token) (the engine watches a child of it, so
//! cancelling the host's token stops the engine, and stopping the engine cancels nothing of the host's), or
//! [`Engine::shutdown`]. Then, in this order:
//!
//! 1. new connections are refused (`hello` → `unavailable`, close 1013 on WebSocket), and every live connection
//!    is closed with [`CloseReason::Shutdown`] (WebSocket close 1001 "going away"; an SSE stream ends with an
//!    `unavailable` `error` event) — frames still queued are discarded, clients resume from their cursors;
//! 2. timers and presence graces stop without firing (they re-arm from the store at the next start), history
//!    catch-ups end with their connections; transports stop accepting (their `serve` functions watch the same
//!    token) and their connection tasks end once the close is written;
//! 3. commits already started run to their end — their append is durable and their reactions ran — so every
//!    request that was (or is about to be) acknowledged is in the store;
//! 4. [`Engine::closed`] resolves when both trackers are empty; from then on every write fails with
//!    [`RequestError::ShuttingDown`]. The host then closes its store (SQLite: `SqliteStore::close` commits what
//!    is still queued and joins the writer thread).
//!
//! **Health.** [`Engine::health`] reports liveness (the engine runs: not yet closed) apart from readiness (it
//! should get traffic: not shutting down, and the store answered a cheap read in time), with what an operator
//! wants beside them: commits in flight (the write queue as the engine sees it), background tasks, live
//! connections, the change feed's head and each registered consumer's lag.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use super::{Engine, Inner, RequestError};
use crate::protocol::CloseReason;

/// How long [`Engine::health`] waits for the store's answer before it calls the store unreachable.
pub const HEALTH_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The engine's shutdown state and its tasks.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// The engine's token: a child of the host's, cancelled by [`Engine::shutdown`] or when the engine is dropped.
    token: CancellationToken,
    /// Cancels `token` when the engine's last handle is dropped, so the watcher task ends too.
    _guard: DropGuard,
    /// The pipeline's commit tasks.
    pub(crate) commits: TaskTracker,
    /// Every other task: timers, catch-ups, presence graces, transports' connections, the watcher.
    pub(crate) background: TaskTracker,
    /// Set once the shutdown began (read on the request path: one relaxed load).
    shutting_down: AtomicBool,
    /// Set once every tracked task ended: writes are refused from then on.
    drained: AtomicBool,
    /// The change-feed consumers that report their position.
    consumers: Mutex<Vec<Weak<ConsumerState>>>,
}

impl Lifecycle {
    /// A lifecycle under `parent` (the host's token), or a token of its own.
    pub(crate) fn new(parent: Option<CancellationToken>) -> Self {
        let token = match parent {
            Some(parent) => parent.child_token(),
            None => CancellationToken::new(),
        };
        let commits = TaskTracker::new();
        let background = TaskTracker::new();
        Lifecycle {
            _guard: token.clone().drop_guard(),
            token,
            commits,
            background,
            shutting_down: AtomicBool::new(false),
            drained: AtomicBool::new(false),
            consumers: Mutex::default(),
        }
    }

    /// Whether the shutdown began.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Whether writes are refused (every tracked task ended).
    pub(crate) fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    fn consumers(&self) -> std::sync::MutexGuard<'_, Vec<Weak<ConsumerState>>> {
        self.consumers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts the task that turns a cancellation of the engine's token (by the host) into the shutdown. It holds the
/// engine weakly, and ends when the token is cancelled — also when the engine is dropped (its guard cancels it).
pub(crate) fn watch(engine: &Engine) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let token = engine.inner.lifecycle.token.clone();
    let weak: Weak<Inner> = Arc::downgrade(&engine.inner);
    engine.inner.lifecycle.background.spawn_on(
        async move {
            token.cancelled().await;
            if let Some(inner) = weak.upgrade() {
                Engine { inner }.begin_shutdown();
            }
        },
        &runtime,
    );
}

impl Engine {
    /// Shuts the engine down and waits until it has stopped:
    ///
    /// 1. new connections are refused (`hello` → `unavailable`, WebSocket close 1013) and every live one is
    ///    closed with [`CloseReason::Shutdown`] (WebSocket 1001 "going away"; an SSE stream ends with an
    ///    `unavailable` `error` event) — frames still queued are discarded, clients resume from their cursors;
    /// 2. timers and presence graces stop without firing (they count from the conversation's last event, so the
    ///    next start arms them with what is left); the transports' `serve` functions stop accepting (they watch
    ///    [`Engine::shutdown_token`]) and their connections end once the close is written;
    /// 3. commits already started run to their end (append, reactions), so every acknowledged request is stored;
    /// 4. it returns when every tracked task has ended ([`Engine::tracked_tasks`] is 0); from then on every
    ///    write fails with [`RequestError::ShuttingDown`]. Close the store after it (SQLite: `SqliteStore::close`
    ///    commits what is still queued and joins the writer thread).
    ///
    /// Idempotent; cancelling the token given to
    /// [`EngineBuilder::shutdown_token`](super::EngineBuilder::shutdown_token) starts the same shutdown (then
    /// await [`Engine::closed`]). Bound the wait with `tokio::time::timeout` for a grace period: connections of
    /// transports that are not the engine's own may take until their close is written.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        self.closed().await;
    }

    /// Resolves once the engine has shut down (by [`Engine::shutdown`] or the host's token) and every task it
    /// tracks has ended. Pending until a shutdown begins.
    pub async fn closed(&self) {
        let lifecycle = &self.inner.lifecycle;
        lifecycle.token.cancelled().await;
        // Commits may start catch-ups (reactions); background tasks start no commits once cancelled.
        // Loop until both are empty at once, in case a task started another as the first wait ended.
        loop {
            lifecycle.commits.wait().await;
            lifecycle.background.wait().await;
            if lifecycle.commits.is_empty() && lifecycle.background.is_empty() {
                break;
            }
        }
        lifecycle.drained.store(true, Ordering::Release);
    }

    /// Whether the engine is shutting down (or has shut down).
    pub fn is_shutting_down(&self) -> bool {
        self.inner.lifecycle.is_shutting_down()
    }

    /// The engine's cancellation token: cancelled when the engine shuts down. Transports stop accepting
    /// connections on it; a host's own tasks may watch it too. Cancelling it shuts the engine down, like
    /// [`Engine::shutdown`].
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.lifecycle.token.clone()
    }

    /// How many tasks the engine tracks now: commits in flight and background tasks (timers, catch-ups,
    /// transports' connections). 0 once [`Engine::closed`] has resolved.
    pub fn tracked_tasks(&self) -> usize {
        let lifecycle = &self.inner.lifecycle;
        lifecycle.commits.len() + lifecycle.background.len()
    }

    /// Runs `task` on the current Tokio runtime as one of the engine's tracked tasks: [`Engine::closed`] waits
    /// for it. Transports run each connection through it, so that no connection outlives the engine. The task
    /// should end soon after [`Engine::shutdown_token`] is cancelled (a session ends when the engine closes it).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, like `tokio::spawn`.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.lifecycle.background.spawn(task)
    }

    /// Starts the shutdown (steps 1–2 of the module docs) without waiting for it.
    pub(crate) fn begin_shutdown(&self) {
        let inner = &self.inner;
        if inner.lifecycle.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!(
            commits = inner.lifecycle.commits.len(),
            tasks = inner.lifecycle.background.len(),
            "engine shutting down"
        );
        inner.lifecycle.token.cancel();
        inner.sessions.close_all(CloseReason::Shutdown);
        inner.lifecycle.commits.close();
        inner.lifecycle.background.close();
    }

    /// Runs `work` on a tracked background task that is dropped, unrun, when the engine shuts down first: a
    /// timer. Without a Tokio runtime, nothing runs (timers are off).
    pub(crate) fn spawn_until_shutdown(&self, work: impl Future<Output = ()> + Send + 'static) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let lifecycle = &self.inner.lifecycle;
        if lifecycle.is_shutting_down() {
            return;
        }
        let token = lifecycle.token.clone();
        lifecycle.background.spawn_on(
            async move {
                token.run_until_cancelled_owned(work).await;
            },
            &runtime,
        );
    }

    /// Refuses a write once the engine has shut down.
    pub(crate) fn check_open(&self) -> Result<(), RequestError> {
        if self.inner.lifecycle.is_drained() {
            return Err(RequestError::ShuttingDown);
        }
        Ok(())
    }

    /// Registers a consumer of the change feed under `name`, so that [`Engine::health`] reports its lag: the
    /// consumer calls [`FeedConsumer::record`] with the position of each entry it has handled.
    /// [`Engine::follow_feed`] streams are registered by themselves (as `follow_feed`). A consumer is
    /// forgotten when its handle is dropped.
    pub fn feed_consumer(&self, name: impl Into<String>) -> FeedConsumer {
        let state = Arc::new(ConsumerState {
            name: name.into(),
            position: AtomicU64::new(0),
        });
        let mut consumers = self.inner.lifecycle.consumers();
        consumers.retain(|consumer| consumer.strong_count() > 0);
        consumers.push(Arc::downgrade(&state));
        FeedConsumer { state }
    }

    /// The engine's health: liveness, readiness and what explains them (see [`Health`]). Reads the store once
    /// (the change feed's head), waiting at most [`HEALTH_STORE_TIMEOUT`].
    pub async fn health(&self) -> Health {
        let inner = &self.inner;
        let started = Instant::now();
        let head = tokio::time::timeout(HEALTH_STORE_TIMEOUT, inner.log.feed_head()).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (head, error) = match head {
            Ok(Ok(head)) => (Some(head.0), None),
            Ok(Err(error)) => (None, Some(error.to_string())),
            Err(_elapsed) => (
                None,
                Some(format!(
                    "no answer within {} ms",
                    HEALTH_STORE_TIMEOUT.as_millis()
                )),
            ),
        };
        let reachable = head.is_some();
        let consumer = |name: &str, position: u64| FeedConsumerHealth {
            name: name.to_owned(),
            position,
            lag: head.map(|head| head.saturating_sub(position)),
        };
        let mut consumers: Vec<_> = inner
            .lifecycle
            .consumers()
            .iter()
            .filter_map(Weak::upgrade)
            .map(|state| consumer(&state.name, state.position.load(Ordering::Relaxed)))
            .collect();
        if let Some(indexed) = inner
            .history
            .as_ref()
            .and_then(|history| history.indexed_position())
        {
            consumers.push(consumer(SEARCH_INDEX_CONSUMER, indexed.0));
        }
        let lifecycle = &inner.lifecycle;
        let shutting_down = lifecycle.is_shutting_down();
        let live = !lifecycle.is_drained();
        Health {
            live,
            ready: live && !shutting_down && reachable,
            shutting_down,
            store: StoreHealth {
                reachable,
                latency_ms,
                error,
            },
            commits_in_flight: lifecycle.commits.len(),
            background_tasks: lifecycle.background.len(),
            connections: inner.sessions.count(),
            feed: FeedHealth { head, consumers },
            epoch: inner.epoch.0.clone(),
        }
    }
}

/// The name under which [`Health`] reports a history backend's background search index
/// ([`History::indexed_position`](crate::store::History::indexed_position)).
pub const SEARCH_INDEX_CONSUMER: &str = "search_index";

/// A change-feed consumer's handle (see [`Engine::feed_consumer`]): it reports the consumer's position.
#[derive(Debug, Clone)]
pub struct FeedConsumer {
    state: Arc<ConsumerState>,
}

impl FeedConsumer {
    /// Records that the consumer has handled every entry up to `position`.
    pub fn record(&self, position: crate::store::FeedPosition) {
        self.state.position.fetch_max(position.0, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct ConsumerState {
    name: String,
    position: AtomicU64,
}

/// The engine's health ([`Engine::health`]), serializable for a host's health endpoints.
///
/// - **Liveness** (`live`): the engine runs — false only once it has shut down and every task ended. A
///   liveness probe (`/healthz`) restarts the process when it is false; a slow or unreachable store does not
///   make an engine dead (restarting would not help it).
/// - **Readiness** (`ready`): it should get new traffic — live, not shutting down, and the store answered a
///   cheap read (the change feed's head) within [`HEALTH_STORE_TIMEOUT`]. A readiness probe (`/readyz`)
///   answers 503 when it is false, so a load balancer sends clients elsewhere.
///
/// The other fields explain them; none of them changes readiness by itself (thresholds are the operator's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// The engine runs (see above).
    pub live: bool,
    /// The engine should get new traffic (see above).
    pub ready: bool,
    /// A shutdown has begun.
    pub shutting_down: bool,
    /// The store's answer to the health read.
    pub store: StoreHealth,
    /// Commits in flight: requests whose append the pipeline has started and not finished (waiting for the
    /// store's durable commit, or running its reactions) — the write queue as the engine sees it. A number that
    /// keeps growing means the store is slower than the traffic.
    pub commits_in_flight: usize,
    /// The engine's other tasks: armed timers, history catch-ups, presence graces, transports' connections.
    pub background_tasks: usize,
    /// Live connections (sessions) of all transports.
    pub connections: usize,
    /// The change feed and its registered consumers.
    pub feed: FeedHealth,
    /// The store's epoch.
    pub epoch: String,
}

/// The store's part of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreHealth {
    /// The health read succeeded within [`HEALTH_STORE_TIMEOUT`].
    pub reachable: bool,
    /// How long the health read took (until the timeout).
    pub latency_ms: u64,
    /// Why the read failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The change feed's part of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FeedHealth {
    /// The feed's last position (`None` when the store did not answer).
    pub head: Option<u64>,
    /// Each registered consumer ([`Engine::feed_consumer`], [`Engine::follow_feed`]), and the history backend's
    /// search index when it indexes in the background ([`SEARCH_INDEX_CONSUMER`]).
    pub consumers: Vec<FeedConsumerHealth>,
}

/// One change-feed consumer's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FeedConsumerHealth {
    /// Its name.
    pub name: String,
    /// The last position it reported.
    pub position: u64,
    /// Entries it is behind the head (positions, which in the built-in stores are consecutive); `None` when
    /// the head is unknown.
    pub lag: Option<u64>,
}
