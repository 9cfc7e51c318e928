//! # kf-transport-sse
//!
//! Carries the kf protocol over Server-Sent Events: one `text/event-stream` response downstream, HTTP POST
//! upstream. It goes through proxies and webviews that break WebSockets, and gives the same guarantees: every
//! event once, in order, resumed after any cut.
//!
//! - `GET {base}/events` — the stream. Every server frame is one SSE event whose `data:` is the frame's JSON
//!   (the same frames as on WebSocket). An `event` frame also carries `id:`, a [`Cursor`] over every
//!   conversation of the stream, so the browser's automatic reconnect (`Last-Event-ID`) resumes all of them
//!   at once. A fresh page passes the cursor it kept as `?cursor=`. Without `?conversation=` the stream follows
//!   all of its principal's conversations (a visitor's open ones, an agent's assigned ones, and each one that
//!   joins later); with it, just that one.
//! - `POST {base}/{type}` — a request (`open`, `send`, `typing`, `read`, `close`, `ping`): the frame's other
//!   fields as a JSON body, answered with the reply frame as JSON, `204 No Content` when there is none, or the
//!   `error` frame with a matching HTTP status.
//!
//! Pages of other sites may use the endpoints when the token's tenant allows their origin
//! ([`kf_core::origin`]): CORS preflights are answered for them, and a request from an origin the tenant does not
//! allow gets `403 forbidden`.
//!
//! Tokens go in `Authorization: Bearer <token>` or `?token=` (an `EventSource` cannot set headers). A request
//! that can never succeed (bad or expired token, unknown agent, a malformed cursor) gets a 4xx status, which
//! makes `EventSource` stop; transient trouble (store unavailable, server shutting down, slow consumer) ends an
//! opened stream with an `error` event instead, and the browser reconnects after `retry`.
//!
//! Mount [`router`] under a prefix of a host's axum app, or run [`serve`] on its own listener:
//!
//! ```no_run
//! # async fn run(engine: kf_core::Engine) -> std::io::Result<()> {
//! use kf_transport_sse::SseConfig;
//!
//! let app = axum::Router::new().nest("/kf/sse", kf_transport_sse::router(engine, SseConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! `docs/protocol.md` §21 is the client author's reference.
//!
//! [`Cursor`]: kf_core::cursor::Cursor
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod abort;
mod config;
pub mod input;
mod reply;
mod request;
mod server;
mod stream;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use kf_core::Engine;
use kf_core::telemetry::TransportMetrics;
use tokio::net::TcpListener;

pub use abort::{Abortable, AbortableIo, Connection};
pub use config::SseConfig;

/// What every handler shares.
#[derive(Debug)]
struct Shared {
    engine: Engine,
    config: SseConfig,
    /// `kf_connections` and the frame counters, `transport="sse"`.
    metrics: TransportMetrics,
}

/// The SSE endpoints as an axum router: `GET /events` and `POST /{type}`. Nest it under a prefix of your app.
pub fn router<S>(engine: Engine, config: SseConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let cors = cors(&engine);
    let shared = Arc::new(Shared {
        engine,
        config,
        metrics: TransportMetrics::new("sse"),
    });
    Router::new()
        .route("/events", get(stream::events))
        .route("/{kind}", post(request::request))
        .layer(cors)
        .with_state(shared)
}

/// CORS for pages of other sites: preflights answered, and responses readable, for origins some tenant allows
/// ([`Engine::allowed_origins`]); the token's tenant is checked on the request itself. Credentials are never
/// allowed: tokens travel in `Authorization` or `?token=`, not in cookies.
fn cors(engine: &Engine) -> tower_http::cors::CorsLayer {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};

    let engine = engine.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|origin| engine.allowed_origins().allows_some_tenant(origin))
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

/// Serves [`router`] at the root of `listener` until the future is dropped or the listener fails for good.
///
/// Accepted sockets get `TCP_NODELAY` and the configured [`SseConfig::tcp_user_timeout`], so a client that
/// vanished without closing (a laptop lid, a dropped mobile link) is noticed once heartbeats go unacknowledged;
/// and they are [`Abortable`], so the connection of a client that stopped reading is dropped as soon as its stream
/// is cut off (slow consumer), not when TCP gives up.
/// It stops when the engine shuts down ([`Engine::shutdown`], or the host's token given to the engine's builder):
/// the listener is closed, open streams end with an `unavailable` `error` event (the browser reconnects
/// elsewhere, or here after the restart, with `Last-Event-ID`), idle connections are closed, and it returns `Ok`
/// once every connection has ended.
///
/// An event stream is written by kf on the socket rather than through hyper, which would keep 16 KiB of buffers
/// for the stream's lifetime; other requests go through hyper as usual. [`serve_router`] does the same for a
/// host's whole app.
pub async fn serve(listener: TcpListener, engine: Engine, config: SseConfig) -> io::Result<()> {
    let user_timeout = config.tcp_user_timeout;
    let shutdown = engine.shutdown_token();
    serve_router_until(listener, router(engine, config), user_timeout, shutdown).await
}

/// Serves a host's axum app (with [`router`] nested in it) on `listener` the way [`serve`] serves kf's
/// endpoints alone: event streams written on the socket without hyper's buffers, everything else (WebSocket
/// upgrades, POSTs, pages) through hyper with HTTP/1.1, each request given the [`Connection`] that
/// [`Abortable`] would give. Accepted sockets are [`tune`]d with `tcp_user_timeout`. Runs until the future is
/// dropped (connections already open keep running) or the listener fails for good.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    tcp_user_timeout: Option<std::time::Duration>,
) -> io::Result<()> {
    let never = tokio_util::sync::CancellationToken::new();
    server::serve(listener, app, move |stream| tune(stream, tcp_user_timeout), never).await
}

/// [`serve_router`] until `shutdown` is cancelled — usually [`Engine::shutdown_token`], so that the server
/// stops with the engine: the listener is closed, connections between requests are closed (a request in progress
/// is answered first), and it returns `Ok` once every connection has ended. kf's event streams end when the
/// engine closes their sessions; a host's own long responses end when the host ends them (bound the wait with
/// a timeout).
pub async fn serve_router_until(
    listener: TcpListener,
    app: Router,
    tcp_user_timeout: Option<std::time::Duration>,
    shutdown: tokio_util::sync::CancellationToken,
) -> io::Result<()> {
    server::serve(
        listener,
        app,
        move |stream| tune(stream, tcp_user_timeout),
        shutdown,
    )
    .await
}

/// Socket options for a stream connection. Hosts serving [`router`] from their own listener can call this from
/// `tap_io` too.
pub fn tune(stream: &tokio::net::TcpStream, user_timeout: Option<std::time::Duration>) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    #[cfg(target_os = "linux")]
    if let Some(timeout) = user_timeout
        && let Err(error) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout))
    {
        tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = user_timeout;
}
