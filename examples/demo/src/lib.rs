//! # kf-demo
//!
//! A small, complete kf server: a visitor page, an agent page, a token API and the kf WebSocket and SSE
//! endpoints, over a SQLite store. `cargo run -p kf-demo` starts it; this library part exists so that tests can
//! start the very same server on any port.
//!
//! ```text
//! GET  /                   visitor page (`/?transport=sse`: the same page over SSE instead of WebSocket)
//! GET  /agent              agent page
//! GET  /assets/{file}      the pages' CSS and JavaScript
//! POST /api/agent-login    {"agent", "password"} -> {"token", "agent", "name", "role", "expires_in"} or 401
//! GET  /ws                 the kf WebSocket protocol
//! GET  /sse/events         the kf protocol over SSE: the event stream (`?token=`, `?cursor=`, `Last-Event-ID`)
//! POST /sse/{type}         its requests (open, send, typing, read, close, ping), `Authorization: Bearer`
//! GET  /healthz            liveness: 200 {"status": "ok", "epoch", "health": {...}} while the engine runs
//! GET  /readyz             readiness: 200 {"status": "ready", ...}, or 503 {"status": "not_ready", ...} while
//!                          shutting down or when the store does not answer (kf_core::engine::Health)
//! GET  /metrics            Prometheus text format: kf's series (docs/observability.md)
//! GET  /api/history/search history search for agents (`Authorization: Bearer` agent token): `?q=` text and the
//!                          filters below -> {"hits": [...], "next": cursor or null}
//! GET  /api/history/export the same filters, `format=csv|jsonl`, `kind=messages|conversations`: the export,
//!                          streamed
//!                          filters: agent, group, label, state (queued|assigned|closed|offline|open),
//!                          min_rating, max_rating, from, until (ms since the epoch), limit, cursor, notes
//! GET  /api/stats        statistics for supervisors and admins (`Authorization: Bearer` token; log in as `boss`): `?from=&to=` (ms since
//!                          the epoch; default the last 7 days), `by=all|agent|group|entry`, `key=`,
//!                          `step=total|day|hour`, `settle=true` -> {"rows": [...], "status": {...}}
//!                          (docs/statistics.md)
//! GET  /api/monitor        the live monitor for supervisors and admins: queues and waits, agents' status and load, visitors
//!                          connected now
//! …    /api/admin/…        the admin API (crate kf-admin, `docs/admin.md`): agents, groups, hours, entry points,
//!                          quick replies, labels, the audit log; `Authorization: Bearer` admin token (log in as
//!                          `boss`); its OpenAPI document at `/api/admin/openapi.json`
//! GET  /widget/…           the embeddable widget, the browser client package, the widget's config and sessions
//!                          (crate kf-widget; entry points `web`, `web-prechat`, `after-hours`)
//! ```
//!
//! Visitors get their tokens from the widget's session endpoint (`POST /widget/session`, crate kf-widget): a new
//! visitor gets an id and a key only this server can make, so nobody becomes another visitor by choosing its id.
//! Trust model for agents: this is a demo, their passwords are the constants in [`DEMO_AGENTS`] (the
//! supervisor's in [`DEMO_SUPERVISOR`], the admin's in [`DEMO_ADMIN`]).
//!
//! What the demo seeds (groups, agents, hours, entry points) is created when missing and never overwritten: once
//! an admin changed it through the admin API, a restart keeps the change.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kf_core::Engine;
use kf_core::auth::{Authenticator, FirstOf, KeyId, KeyRingError, SignedTokens, TokenKeys};
use kf_core::blob::{BlobStore, FsBlobStore};
use kf_core::clock::SystemClock;
use kf_core::engine::{EngineError, RequestError};
use kf_core::entry::EntryPoint;
use kf_core::hours::WorkingHours;
use kf_core::labels::{AttributeDefinition, AttributeKind, AttributeObject, Label};
use kf_core::model::{Agent, AgentId, EntryPointId, Group, GroupId, TenantId};
use kf_core::origin::AllowedOrigins;
use kf_core::prechat::{FieldKind, PrechatField};
use kf_core::stats::StatsOptions;
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use serde::Deserialize;
use serde_json::json;
use thiserror::Error;

mod accounts;
mod assets;
mod history_api;
pub mod observability;
mod stats_api;

pub use accounts::{DEMO_ADMIN, DEMO_AGENTS, DEMO_SUPERVISOR, DemoAgent};

/// The demo's tenant.
pub const TENANT: &str = "demo";
/// The demo's only group, which every visitor talks to.
pub const GROUP: &str = "support";
/// The display name of [`GROUP`].
pub const GROUP_NAME: &str = "Support";
/// The group of [`ENTRY_AFTER_HOURS`]: it has working hours that never open, so every conversation through it
/// is an offline message ("leave us a message").
pub const AFTER_HOURS_GROUP: &str = "after-hours";
/// The widget's entry point without a pre-chat form (group [`GROUP`]).
pub const ENTRY_WEB: &str = "web";
/// The widget's entry point with a pre-chat form: name and email required, order number optional.
pub const ENTRY_PRECHAT: &str = "web-prechat";
/// The widget's entry point to [`AFTER_HOURS_GROUP`].
pub const ENTRY_AFTER_HOURS: &str = "after-hours";
/// The signing key's file name inside the data directory.
pub const KEY_FILE: &str = "signing.key";
/// The SQLite database's file name inside the data directory.
pub const DB_FILE: &str = "kf.sqlite3";

/// The directory in the data directory where attachments' bytes are kept ([`FsBlobStore`]).
pub const ATTACHMENTS_DIR: &str = "attachments";

/// The file in the data directory holding the key that signs attachment download links.
pub const LINK_KEY_FILE: &str = "attachment-link.key";

/// How often the cleanup pass removes uploads no message carries (older than the pending TTL).
const ATTACHMENT_CLEANUP_EVERY: Duration = Duration::from_secs(600);
/// The `retry:` the SSE stream gives browsers: how long an `EventSource` waits before it reconnects.
pub const SSE_RETRY: Duration = Duration::from_secs(1);
/// How long an agent token is valid.
pub const AGENT_TOKEN_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// How long the demo's shutdown (SIGTERM, Ctrl-C) waits for the engine to stop — connections closed, commits
/// in flight finished — before it closes the store anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Largest request body the JSON API reads.
pub const MAX_API_BODY_BYTES: usize = 16 * 1024;
/// The demo failed to start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A file or directory could not be created or read.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The signing key could not be read or made.
    #[error(transparent)]
    Key(#[from] kf_core::signing_key::KeyFileError),
    /// The SQLite store could not be opened.
    #[error("cannot open the SQLite store: {0}")]
    Store(#[from] kf_store_sqlite::SqliteError),
    /// The attachments' directory could not be opened.
    #[error("cannot open the attachments' directory: {0}")]
    Blobs(#[from] kf_core::blob::BlobError),
    /// The engine could not load its state.
    #[error("cannot start the engine: {0}")]
    Engine(#[from] EngineError),
    /// An allowed origin is not an origin.
    #[error(transparent)]
    Origin(#[from] kf_core::origin::OriginError),
    /// Seeding the demo group and agents failed.
    #[error("cannot seed the demo group and agents: {0}")]
    Seed(#[from] RequestError),
    /// The token keys (`--token-key`, `--retired-key`) do not make a key ring.
    #[error("token keys: {0}")]
    KeyRing(#[from] KeyRingError),
    /// A `--token-key` is not `ID:FILE`.
    #[error("--token-key {0:?}: expected ID:FILE (a key id, a colon, the key's file)")]
    TokenKeyArg(String),
    /// The JWT configuration cannot be used.
    #[error("JWT configuration: {0}")]
    Jwt(#[from] kf_auth_jwt::ConfigError),
    /// The JWT configuration file cannot be read.
    #[error("JWT configuration {}: {reason}", path.display())]
    JwtFile {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DemoError {
    let path = path.to_path_buf();
    move |source| DemoError::Io { action, path, source }
}

/// Creates the data directory (and its parents) if missing; on Unix a new directory is private to its owner.
pub fn create_data_dir(dir: &Path) -> Result<(), DemoError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(io_error("cannot create the data directory", dir))
}

fn tenant() -> TenantId {
    TenantId::new(TENANT).unwrap_or_else(|_| unreachable!("the demo tenant id is valid"))
}

fn group_id() -> GroupId {
    GroupId::new(GROUP).unwrap_or_else(|_| unreachable!("the demo group id is valid"))
}

fn agent_id(agent: &DemoAgent) -> AgentId {
    AgentId::new(agent.id).unwrap_or_else(|_| unreachable!("the demo agent ids are valid"))
}

/// Creates the demo group and agents, or brings them back to their demo settings. Idempotent: records that
/// already match are not written again.
pub async fn seed(engine: &Engine) -> Result<(), RequestError> {
    let tenant = tenant();
    let after_hours = GroupId::new(AFTER_HOURS_GROUP).unwrap_or_else(|_| unreachable!("a valid id"));
    for group in [
        Group::new(tenant.clone(), group_id(), GROUP_NAME),
        Group::new(tenant.clone(), after_hours.clone(), "After hours"),
    ] {
        if engine.group(&tenant, &group.id).is_none() {
            engine.put_group(group).await?;
        }
    }
    // A schedule without a single opening hour: always closed.
    let never = WorkingHours::new("UTC").unwrap_or_else(|_| unreachable!("UTC is a time zone"));
    if engine.group_hours(&tenant, &after_hours).is_none() {
        engine.put_group_hours(&tenant, &after_hours, Some(never)).await?;
    }
    for demo in DEMO_AGENTS {
        let agent = Agent::new(tenant.clone(), agent_id(demo), demo.name, demo.capacity)
            .with_groups([group_id(), after_hours.clone()]);
        if engine.agent(&tenant, &agent.id).is_none() {
            engine.put_agent(agent).await?;
        }
    }
    let entry = |id: &str, group: &GroupId| {
        EntryPoint::new(
            tenant.clone(),
            EntryPointId::new(id).unwrap_or_else(|_| unreachable!("a valid id")),
            group.clone(),
        )
    };
    let entries = [
        entry(ENTRY_WEB, &group_id()),
        entry(ENTRY_PRECHAT, &group_id()).with_prechat([
            PrechatField::new("name", "Your name", FieldKind::Text).required(),
            PrechatField::new("email", "Email", FieldKind::Email).required(),
            PrechatField::new("order", "Order number", FieldKind::Text),
        ]),
        entry(ENTRY_AFTER_HOURS, &after_hours).with_prechat([PrechatField::new(
            "email",
            "Email",
            FieldKind::Email,
        )
        .required()]),
    ];
    for entry in entries {
        if engine.entry_point(&tenant, &entry.id).is_none() {
            engine.put_entry_point(entry).await?;
        }
    }
    seed_labels(engine, &tenant).await
}

/// The demo tenant's labels and attribute definitions (what the console's pickers and typed inputs offer).
async fn seed_labels(engine: &Engine, tenant: &TenantId) -> Result<(), RequestError> {
    let labels = engine.labels(tenant).await?;
    for (name, color) in DEMO_LABELS {
        let label = Label::new(tenant.clone(), *name, *color);
        if !labels.contains(&label) {
            engine.put_label(label).await?;
        }
    }
    let definitions = engine.attribute_definitions(tenant).await?;
    let define = |object, key: &str, kind, name: &str| {
        AttributeDefinition::new(tenant.clone(), object, key, kind).with_name(name)
    };
    for definition in [
        define(AttributeObject::Visitor, "plan", AttributeKind::String, "Plan"),
        define(
            AttributeObject::Visitor,
            "newsletter",
            AttributeKind::Bool,
            "Newsletter",
        ),
        define(
            AttributeObject::Conversation,
            "order",
            AttributeKind::Number,
            "Order number",
        ),
        define(
            AttributeObject::Conversation,
            "follow_up",
            AttributeKind::Date,
            "Follow up on",
        ),
    ] {
        if !definitions.contains(&definition) {
            engine.put_attribute_definition(definition).await?;
        }
    }
    Ok(())
}

/// The labels the demo seeds: name and colour.
const DEMO_LABELS: &[(&str, &str)] = &[
    ("VIP", "#b45309"),
    ("Billing", "#1d4ed8"),
    ("Bug", "#b91c1c"),
    ("Follow-up", "#15803d"),
];

/// A started demo: the engine over the SQLite store of a data directory, and the token issuer.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The engine.
    pub engine: Engine,
    /// Issues the visitor and agent tokens the engine accepts.
    pub tokens: SignedTokens,
    /// The SQLite store under the engine.
    pub store: Arc<SqliteStore>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// What the widget allows.
    pub widget: WidgetSettings,
    /// Where attachments' bytes are kept (`data_dir/attachments`).
    pub blobs: Arc<dyn BlobStore>,
    /// The key that signs attachment download links.
    link_key: [u8; 32],
}

/// What the demo's widget allows: the sites that may embed it and the identity secret of their users.
#[derive(Debug, Clone, Default)]
pub struct WidgetSettings {
    /// Origins (`http://127.0.0.1:5555`, `https://*.shop.example`) whose pages may embed the widget.
    pub allowed_origins: Vec<String>,
    /// The secret with which the embedding site signs its users' ids (`user_hash`); `None`: no verified users.
    pub identity_secret: Option<String>,
}

/// How the demo authenticates: its own tokens' keys and, optionally, the JWTs of another issuer.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// kf token keys as `(id, file)`: the first signs new tokens, the others are still accepted. Each file holds
    /// 32 random bytes, made on first use (like [`KEY_FILE`]). Empty: the one key of [`KEY_FILE`], without an id.
    pub token_keys: Vec<(KeyId, PathBuf)>,
    /// Key ids whose tokens are refused (the end of a rotation), whether or not they are in `token_keys`.
    pub retired_keys: Vec<KeyId>,
    /// JWTs accepted beside kf's tokens (crate `kf-auth-jwt`).
    pub jwt: Option<kf_auth_jwt::JwtConfig>,
}

impl AuthSettings {
    /// Parses a `--token-key` argument, `ID:FILE`.
    pub fn parse_token_key(arg: &str) -> Result<(KeyId, PathBuf), DemoError> {
        let (id, file) = arg
            .split_once(':')
            .filter(|(_, file)| !file.is_empty())
            .ok_or_else(|| DemoError::TokenKeyArg(arg.to_owned()))?;
        Ok((KeyId::new(id)?, PathBuf::from(file)))
    }

    /// Reads a JWT configuration ([`kf_auth_jwt::JwtConfig`]) from a JSON file.
    pub fn read_jwt_config(path: &Path) -> Result<kf_auth_jwt::JwtConfig, DemoError> {
        let jwt_error = |reason: String| DemoError::JwtFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = fs::read_to_string(path).map_err(|error| jwt_error(error.to_string()))?;
        serde_json::from_str(&text).map_err(|error| jwt_error(error.to_string()))
    }

    /// The token issuer: a ring of the keys of `token_keys` (files made when missing) less the retired ones, or
    /// the data directory's [`KEY_FILE`].
    fn tokens(&self, data_dir: &Path) -> Result<SignedTokens, DemoError> {
        let Some(((current, file), others)) = self.token_keys.split_first() else {
            return Ok(SignedTokens::from_key_file(
                data_dir.join(KEY_FILE),
                Arc::new(SystemClock),
            )?);
        };
        let mut ring = TokenKeys::new(current.clone(), &kf_core::signing_key::load_or_create(file)?)?;
        for (id, file) in others {
            if !self.retired_keys.contains(id) {
                ring = ring.accept(id.clone(), &kf_core::signing_key::load_or_create(file)?)?;
            }
        }
        for id in &self.retired_keys {
            ring = ring.retire(id)?;
        }
        Ok(SignedTokens::with_keys(ring, Arc::new(SystemClock)))
    }

    /// kf's tokens, then the JWTs when configured.
    fn authenticator(&self, tokens: &SignedTokens) -> Result<Arc<dyn Authenticator>, DemoError> {
        let Some(config) = &self.jwt else {
            return Ok(Arc::new(tokens.clone()));
        };
        let jwt = kf_auth_jwt::JwtAuthenticator::new(config.clone(), Arc::new(SystemClock))?;
        Ok(Arc::new(
            FirstOf::new().with(Arc::new(tokens.clone())).with(Arc::new(jwt)),
        ))
    }
}

impl Demo {
    /// Opens (creating if needed) the data directory: its signing key and SQLite database; builds the engine and
    /// seeds the demo tenant, group and agents. Only the demo's own pages may use it.
    pub async fn open(data_dir: impl Into<PathBuf>) -> Result<Demo, DemoError> {
        Self::open_with(data_dir, WidgetSettings::default()).await
    }

    /// [`Demo::open`], with the widget embeddable as `widget` says.
    pub async fn open_with(data_dir: impl Into<PathBuf>, widget: WidgetSettings) -> Result<Demo, DemoError> {
        Self::open_configured(data_dir, widget, AuthSettings::default()).await
    }

    /// [`Demo::open_with`], authenticating as `auth` says (token keys for rotation, JWTs).
    pub async fn open_configured(
        data_dir: impl Into<PathBuf>,
        widget: WidgetSettings,
        auth: AuthSettings,
    ) -> Result<Demo, DemoError> {
        let mut origins = AllowedOrigins::new();
        for origin in &widget.allowed_origins {
            origins = origins.allow(&tenant(), origin)?;
        }
        let data_dir = data_dir.into();
        create_data_dir(&data_dir)?;
        // Before the store and the engine: they register their metric series when they are built.
        observability::prometheus();
        let tokens = auth.tokens(&data_dir)?;
        let authenticator = auth.authenticator(&tokens)?;
        let store = Arc::new(SqliteStore::open(
            data_dir.join(DB_FILE),
            SqliteConfig::default(),
        )?);
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(data_dir.join(ATTACHMENTS_DIR)).await?);
        let link_key = kf_core::signing_key::load_or_create(&data_dir.join(LINK_KEY_FILE))?;
        let engine = Engine::builder(store.clone(), authenticator)
            .history(store.clone())
            .uploads(store.clone())
            .statistics(store.clone(), StatsOptions::default())
            .audit(store.clone())
            .default_group(group_id())
            .allowed_origins(origins)
            .build()
            .await?;
        seed(&engine).await?;
        tokio::spawn(kf_attachments::cleanup_task(
            engine.clone(),
            blobs.clone(),
            ATTACHMENT_CLEANUP_EVERY,
        ));
        Ok(Demo {
            engine,
            tokens,
            store,
            data_dir,
            widget,
            blobs,
            link_key,
        })
    }

    /// Shuts the engine down — new connections refused, live ones closed with the protocol's shutdown close
    /// (WebSocket 1001; SSE: an `unavailable` `error` event), timers stopped, commits in flight finished — waiting
    /// at most `grace` for it ([`Engine::shutdown`]), then closes the store, committing whatever is still queued
    /// (blocks for at most one commit). Returns whether the engine had stopped within `grace`.
    pub async fn shutdown(&self, grace: Duration) -> Result<bool, DemoError> {
        let stopped = tokio::time::timeout(grace, self.engine.shutdown()).await.is_ok();
        if !stopped {
            tracing::warn!(
                tasks = self.engine.tracked_tasks(),
                grace_ms = grace.as_millis() as u64,
                "the engine did not stop within the grace period; closing the store"
            );
        }
        self.store.close()?;
        Ok(stopped)
    }

    /// The demo's HTTP application (see [`app`]).
    pub fn router(&self) -> Router {
        let mut widget = kf_widget::WidgetConfig::default();
        if let Some(secret) = &self.widget.identity_secret {
            widget = widget.identity_secret(tenant(), secret.as_bytes().to_vec());
        }
        let files = kf_attachments::router(
            self.engine.clone(),
            self.blobs.clone(),
            kf_attachments::AttachmentsConfig::new(self.link_key),
        );
        app(self.engine.clone(), self.tokens.clone(), widget).nest("/files", files)
    }
}

#[derive(Clone)]
struct AppState {
    engine: Engine,
    tokens: SignedTokens,
    tenant: TenantId,
}

/// Lets the demo's own handlers take `kf_admin::Caller` (and `caller.require(Role::Supervisor)?`) for endpoints
/// behind a role.
impl axum::extract::FromRef<AppState> for Engine {
    fn from_ref(state: &AppState) -> Engine {
        state.engine.clone()
    }
}

/// The demo's HTTP application: the two pages, their assets, the token API, `/healthz`, `/metrics`, the kf WebSocket
/// endpoint at `/ws`, the kf SSE endpoints under `/sse` and the widget under `/widget`. `tokens` must be the
/// issuer whose key the engine's authenticator verifies.
pub fn app(engine: Engine, tokens: SignedTokens, widget: kf_widget::WidgetConfig) -> Router {
    let ws = kf_transport_ws::route(engine.clone(), kf_transport_ws::WsConfig::default());
    let sse = kf_transport_sse::router(
        engine.clone(),
        kf_transport_sse::SseConfig::default().retry(SSE_RETRY),
    );
    let widget = kf_widget::router(engine.clone(), tokens.clone(), widget);
    let admin = kf_admin::router(engine.clone());
    let state = AppState {
        engine,
        tokens,
        tenant: tenant(),
    };
    let api = Router::new()
        .route("/api/agent-login", post(accounts::agent_login))
        .route("/api/history/search", get(history_api::history_search))
        .route("/api/history/export", get(history_api::history_export))
        .route("/api/stats", get(stats_api::stats))
        .route("/api/monitor", get(stats_api::monitor))
        .layer(DefaultBodyLimit::max(MAX_API_BODY_BYTES));
    Router::new()
        .route("/", get(assets::visitor_page))
        .route("/agent", get(assets::agent_page))
        .route("/assets/{file}", get(assets::asset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(observability::metrics_endpoint))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .route("/ws", ws)
        .nest("/sse", sse)
        .nest("/widget", widget)
        .nest("/api/admin", admin)
}

/// Liveness: 200 while the engine runs (also while it shuts down, and when the store is slow: restarting the
/// process would not help either), 503 once it has stopped.
async fn healthz(State(state): State<AppState>) -> Response {
    let health = state.engine.health().await;
    let (status, word) = match health.live {
        true => (StatusCode::OK, "ok"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "stopped"),
    };
    let body = json!({"status": word, "epoch": state.engine.epoch(), "health": health});
    (status, axum::Json(body)).into_response()
}

/// Readiness: 200 when the engine should get traffic, 503 while it shuts down or when the store does not answer
/// (a load balancer then sends clients elsewhere).
async fn readyz(State(state): State<AppState>) -> Response {
    let health = state.engine.health().await;
    let (status, word) = match health.ready {
        true => (StatusCode::OK, "ready"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
    };
    let body = json!({"status": word, "epoch": state.engine.epoch(), "health": health});
    (status, axum::Json(body)).into_response()
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// A JSON error: `{"error": code, "message": text}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Parses a JSON request body. An empty body is `None`; a body with a content type other than JSON, or that
/// does not parse, is a clear 4xx error.
fn json_body<T: for<'de> Deserialize<'de>>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Option<T>, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "invalid_request"
        };
        ApiError::new(
            status,
            code,
            format!("cannot read the request body: {}", rejection.body_text()),
        )
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send a JSON body with `Content-Type: application/json` (got `{essence}`)"),
            ));
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|error| ApiError::bad_request(format!("invalid request: {error}")))
}

fn token_response(body: serde_json::Value) -> Response {
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The README's code blocks, compiled as doctests so the embedding example cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
