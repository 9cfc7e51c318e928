//! The standalone server: a TCP accept loop whose connections speak HTTP/1.1 just long enough to upgrade.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONNECTION, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use kf_core::Engine;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Settings, WsConfig};
use crate::upgrade::{plain, upgrade_with};

/// The first pause after an accept error that is not about one connection (out of file descriptors…).
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between accept attempts while such errors persist.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts WebSocket connections on `listener` and serves each on its own task, until the engine shuts down
/// (then it returns `Ok` once every connection has ended), the returned future is dropped, or the listener fails
/// for good (then the error is returned).
///
/// Every path is accepted unless [`WsConfig::path`] names one. The HTTP upgrade must complete within the hello
/// timeout. Accept errors that concern one connection are skipped; resource exhaustion (too many open files)
/// is logged and retried after a short pause that grows while it lasts, so the loop survives it.
///
/// Shutdown ([`Engine::shutdown`](kf_core::Engine::shutdown), or the host's token given to the engine's builder):
/// the listener is closed at once, connections still in their HTTP upgrade are ended, and upgraded sessions —
/// tasks of the engine's own ([`Engine::spawn`](kf_core::Engine::spawn)) — get the close 1001 ("going away")
/// and end; [`Engine::closed`](kf_core::Engine::closed) waits for them. Dropping the future instead stops
/// accepting but leaves connections running.
pub async fn serve(listener: TcpListener, engine: Engine, config: WsConfig) -> io::Result<()> {
    let settings = Arc::new(config.resolve(&engine));
    let shutdown = engine.shutdown_token();
    let connections = TaskTracker::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = FIRST_BACKOFF;
                accepted
            }
            Err(error) if is_per_connection(&error) => {
                tracing::debug!(%error, "accept failed for one connection");
                continue;
            }
            Err(error) if error.kind() == io::ErrorKind::InvalidInput => return Err(error),
            Err(error) => {
                tracing::warn!(%error, pause_ms = backoff.as_millis() as u64, "accept failed; pausing");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tracing::trace!(%peer, "accepted");
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        connections.spawn(serve_connection(
            stream,
            engine.clone(),
            Arc::clone(&settings),
            shutdown.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Errors of `accept` that concern only the connection being accepted.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Serves one TCP connection: the HTTP upgrade, then (on its own task, spawned by the upgrade) the WebSocket.
/// A shutdown ends a connection still in its upgrade (hyper's graceful shutdown: a request being answered is
/// answered first).
async fn serve_connection(
    stream: TcpStream,
    engine: Engine,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) {
    let service = {
        let settings = Arc::clone(&settings);
        service_fn(move |request: Request<Incoming>| {
            let response = respond(&engine, &settings, request);
            async move { Ok::<_, Infallible>(response) }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.hello_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%error, "HTTP connection failed before the upgrade");
    }
}

/// Upgrades the request, or refuses it and closes the connection (this server speaks nothing but WebSocket).
fn respond(engine: &Engine, settings: &Arc<Settings>, request: Request<Incoming>) -> Response<String> {
    let mut response = match &settings.path {
        Some(path) if request.uri().path() != path => {
            plain(StatusCode::NOT_FOUND, "no WebSocket endpoint at this path")
        }
        _ => upgrade_with(engine, settings, request),
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let close = match response.headers().get(CONNECTION) {
            Some(_) => HeaderValue::from_static("upgrade, close"),
            None => HeaderValue::from_static("close"),
        };
        response.headers_mut().insert(CONNECTION, close);
    }
    response
}
