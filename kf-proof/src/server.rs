//! The server under test: the engine over a SQLite store in a data directory, with the WebSocket endpoint at
//! `/ws` and the SSE endpoints under `/sse` — composed as `examples/demo` does, from the public crates only.
//!
//! It knows tenant [`TENANT`], group [`GROUP`] (the default group) and agents [`agent_id`]`(0..agents)`, each
//! in that group. Tokens are signed with the key in `DIR/signing.key` (made on the first start), so a test mints
//! them with [`SignedTokens::from_key_file`] on the same file. The fault suite runs it in-process
//! ([`Server::start`]); the crash suite runs it as a child process (`kf-proof serve`, [`serve`]) that it can
//! `kill -9`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use kf_core::Engine;
use kf_core::auth::{Identity, SignedTokens};
use kf_core::clock::SystemClock;
use kf_core::engine::{EngineError, RequestError};
use kf_core::limits::Limits;
use kf_core::model::{Agent, AgentId, Group, GroupId, TenantId, VisitorId};
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The tenant.
pub const TENANT: &str = "proof";
/// The group every conversation goes to.
pub const GROUP: &str = "support";
/// The signing key's file name in the data directory.
pub const KEY_FILE: &str = "signing.key";
/// The SQLite database's file name in the data directory.
pub const DB_FILE: &str = "kf.sqlite3";

/// Agent number `index`'s id: `agent-000`, `agent-001`, …
pub fn agent_id(index: usize) -> String {
    format!("agent-{index:03}")
}

/// The server could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A file, directory or socket operation failed.
    #[error("{0}: {1}")]
    Io(&'static str, #[source] io::Error),
    /// The signing key could not be read or made.
    #[error(transparent)]
    Key(#[from] kf_core::signing_key::KeyFileError),
    /// The SQLite store failed.
    #[error("SQLite store: {0}")]
    Store(#[from] kf_store_sqlite::SqliteError),
    /// The engine could not load its state.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// Seeding the tenant's group and agents failed.
    #[error("seeding: {0}")]
    Seed(#[from] RequestError),
    /// An id did not validate.
    #[error("invalid id: {0}")]
    Id(String),
}

/// How the server is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// How many agents the tenant has ([`agent_id`]`(0..agents)`).
    pub agents: usize,
    /// Each agent's capacity (open conversations at once).
    pub capacity: u32,
    /// The engine's limits (the SSE heartbeat follows `ping_interval_ms`).
    pub limits: Limits,
}

impl ServerConfig {
    /// The proof suites' server: `agents` agents with room for `capacity` conversations each; the default limits
    /// but a ping interval of 500 ms and an idle timeout of 3 s (so that dead connections are found within the
    /// test's time), room for 1 000 requests per second and 64 connections per identity (one agent serves many
    /// conversations, and blackholed connections linger on the server until it notices them).
    pub fn proof(agents: usize, capacity: u32) -> ServerConfig {
        ServerConfig {
            agents,
            capacity,
            limits: Limits::default()
                .with_ping_interval_ms(500)
                .with_idle_timeout_ms(3_000)
                .with_requests_per_second(1_000)
                .with_connections_per_identity(64),
        }
    }
}

fn id<T>(made: Result<T, impl std::fmt::Display>) -> Result<T, ServerError> {
    made.map_err(|error| ServerError::Id(error.to_string()))
}

/// The tenant id.
pub fn tenant() -> TenantId {
    TenantId::new(TENANT).unwrap_or_else(|_| unreachable!("the tenant id is valid"))
}

/// A visitor's identity in [`TENANT`].
pub fn visitor(visitor: &str) -> Result<Identity, ServerError> {
    Ok(Identity::visitor(tenant(), id(VisitorId::new(visitor))?))
}

/// An agent's identity in [`TENANT`].
pub fn agent(agent: &str) -> Result<Identity, ServerError> {
    Ok(Identity::agent(tenant(), id(AgentId::new(agent))?))
}

/// The token authority of a data directory: the key in `DIR/signing.key` (made if missing).
pub fn tokens(data_dir: &Path) -> Result<SignedTokens, ServerError> {
    Ok(SignedTokens::from_key_file(
        data_dir.join(KEY_FILE),
        Arc::new(SystemClock),
    )?)
}

/// Opens the data directory (creating it if needed): its SQLite store and key; builds the engine and seeds the
/// group and agents (idempotently: a restart writes nothing).
pub async fn open(data_dir: &Path, config: &ServerConfig) -> Result<(Engine, Arc<SqliteStore>), ServerError> {
    std::fs::create_dir_all(data_dir).map_err(|e| ServerError::Io("creating the data directory", e))?;
    let tokens = tokens(data_dir)?;
    let store = Arc::new(SqliteStore::open(
        data_dir.join(DB_FILE),
        SqliteConfig::default(),
    )?);
    let group_id = id(GroupId::new(GROUP))?;
    let engine = Engine::builder(store.clone(), Arc::new(tokens))
        .limits(config.limits.clone())
        .default_group(group_id.clone())
        .build()
        .await?;
    let group = Group::new(tenant(), group_id.clone(), "Support");
    if engine.group(&group.tenant, &group.id).as_ref() != Some(&group) {
        engine.put_group(group).await?;
    }
    for index in 0..config.agents {
        let agent_id = id(AgentId::new(agent_id(index)))?;
        let agent = Agent::new(tenant(), agent_id.clone(), agent_id.as_str(), config.capacity)
            .with_groups([group_id.clone()]);
        if engine.agent(&agent.tenant, &agent.id).as_ref() != Some(&agent) {
            engine.put_agent(agent).await?;
        }
    }
    Ok((engine, store))
}

/// The HTTP application: `/ws` (WebSocket) and `/sse/events`, `POST /sse/{type}` (SSE, heartbeat after
/// `ping_interval_ms` of silence).
pub fn app(engine: &Engine) -> Router {
    let heartbeat = Duration::from_millis(engine.limits().ping_interval_ms);
    let ws = kf_transport_ws::route(engine.clone(), kf_transport_ws::WsConfig::default());
    let sse = kf_transport_sse::router(
        engine.clone(),
        kf_transport_sse::SseConfig::default().heartbeat(heartbeat),
    );
    Router::new().route("/ws", ws).nest("/sse", sse)
}

/// Serves [`app`] on `listener` until the future is dropped, as the demo does (`TCP_NODELAY`,
/// `TCP_USER_TIMEOUT`, slow consumers' connections dropped at once).
pub async fn run(listener: TcpListener, engine: &Engine) -> io::Result<()> {
    kf_transport_sse::serve_router(listener, app(engine), Some(Duration::from_secs(30))).await
}

/// A server running in this process (the fault suite's).
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    engine: Engine,
    store: Arc<SqliteStore>,
    data_dir: PathBuf,
    task: JoinHandle<()>,
}

impl Server {
    /// Opens `data_dir` ([`open`]) and serves it on `addr` (port 0: any).
    pub async fn start(
        data_dir: &Path,
        addr: SocketAddr,
        config: &ServerConfig,
    ) -> Result<Server, ServerError> {
        let (engine, store) = open(data_dir, config).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| ServerError::Io("binding", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServerError::Io("reading the bound address", e))?;
        let serving = engine.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = run(listener, &serving).await {
                tracing::error!(%error, "the server stopped");
            }
        });
        Ok(Server {
            addr,
            engine,
            store,
            data_dir: data_dir.to_path_buf(),
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Ends every connection, stops serving, waits for the engine's commits and closes the store (committing
    /// what is queued).
    pub async fn stop(self) -> Result<(), ServerError> {
        self.engine.shutdown().await;
        self.task.abort();
        self.store.close()?;
        Ok(())
    }
}

/// The `serve` subcommand: opens `data_dir`, binds `addr`, prints `listening on <address>` on stdout, and serves
/// until the process is killed (or gets SIGTERM / Ctrl-C: then it shuts down cleanly).
pub async fn serve(data_dir: &Path, addr: SocketAddr, config: &ServerConfig) -> Result<(), ServerError> {
    let (engine, store) = open(data_dir, config).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Io("binding", e))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServerError::Io("reading the bound address", e))?;
    {
        use std::io::Write;
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on {local}").map_err(|e| ServerError::Io("writing stdout", e))?;
        stdout.flush().map_err(|e| ServerError::Io("writing stdout", e))?;
    }
    tokio::select! {
        served = run(listener, &engine) => served.map_err(|e| ServerError::Io("serving", e))?,
        () = shutdown_signal() => {}
    }
    engine.shutdown().await;
    store.close()?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
