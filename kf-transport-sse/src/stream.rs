//! `GET {base}/events`: the event stream, resumed from `Last-Event-ID` or `?cursor=`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, HeaderName};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use kf_core::Engine;
use kf_core::cursor::Cursor;
use kf_core::engine::{Outbox, Outgoing, RequestError, Session};
use kf_core::protocol::{CloseReason, ErrorCode, ServerFrame};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::abort::Connection;
use crate::input::{self, StreamStart};
use crate::{Shared, reply};

/// Opens the stream: authenticate, connect, follow (or watch one conversation) from the cursor, then stream the
/// connection's outbox.
pub(crate) async fn events(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    connection: Option<Extension<ConnectInfo<Connection>>>,
    headers: HeaderMap,
) -> Response {
    let query = match input::query(query.as_deref()) {
        Ok(query) => query,
        Err(error) => return reply::refused(&error),
    };
    let identity = match reply::authenticate(&shared, &headers, &query).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    // A reconnect's `Last-Event-ID` is newer than the cursor the page was first opened with.
    let StreamStart { cursor, conversation } = match input::stream_start(&headers, &query) {
        Ok(start) => start,
        Err(error) => return reply::refused(&error),
    };
    let engine = &shared.engine;
    let retry = shared.config.retry;
    // The engine records `role`, `tenant`, `identity` and `connection` when it connects the stream.
    let span = tracing::info_span!(
        "kf.connection",
        transport = "sse",
        role = tracing::field::Empty,
        tenant = tracing::field::Empty,
        identity = tracing::field::Empty,
        connection = tracing::field::Empty,
    );
    let started = async {
        let (mut session, outbox) = engine.connect(identity).await?;
        session.count_in(&shared.metrics);
        match conversation {
            Some(conversation) => session.watch(conversation, &cursor).await?,
            None => session.follow(&cursor).await?,
        }
        Ok::<_, RequestError>((session, outbox))
    };
    let (session, outbox) = match started.instrument(span.clone()).await {
        Ok(started) => started,
        Err(error) => return refused(&error, retry),
    };
    // Positions of a stale cursor mean nothing: the stream starts a new one (the `following`/`subscribed`
    // frame says `reset`).
    let cursor = if cursor.is_stale(engine.epoch()) || cursor.positions().len() == 0 {
        Cursor::new(engine.epoch())
    } else {
        cursor
    };
    let stream = EventStream {
        _session: SessionGuard::spawn(
            engine,
            session,
            connection.map(|Extension(ConnectInfo(c))| c),
            span.clone(),
        ),
        _span: span,
        outbox,
        cursor,
        retry: Some(retry),
        ended: false,
    };
    // A named event, so that a browser can see it (`addEventListener("ping", …)`; comments never reach it) and
    // tell a live stream from a dead one, while `onmessage` handlers never do; at most the ping interval apart.
    let heartbeat = shared
        .config
        .heartbeat
        .min(std::time::Duration::from_millis(engine.limits().ping_interval_ms));
    let ping = Event::default()
        .event("ping")
        .data(String::from_utf8_lossy(&ServerFrame::Ping.encode()));
    let keep_alive = KeepAlive::new().interval(heartbeat).event(ping);
    let mut response = Sse::new(stream.into_stream())
        .keep_alive(keep_alive)
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, no-transform"),
    );
    // Tells nginx-style proxies not to buffer the response.
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// A stream that cannot start: an error status when retrying cannot help, otherwise a stream that says why
/// and ends, so the browser retries after `retry`.
fn refused(error: &RequestError, retry: std::time::Duration) -> Response {
    match error.code() {
        ErrorCode::Unavailable | ErrorCode::Internal => {
            let frame = error.to_frame(None);
            let events = [Event::default().retry(retry), data(&frame.encode())];
            Sse::new(futures::stream::iter(events.map(Ok::<_, Infallible>))).into_response()
        }
        _ => reply::frame(&error.to_frame(None)),
    }
}

/// An SSE event carrying one JSON frame.
fn data(frame: &Bytes) -> Event {
    // Frames are serde_json output: UTF-8 with no raw newlines, as `data:` requires.
    Event::default().data(String::from_utf8_lossy(frame))
}

/// Keeps a stream's session alive on a small task of its own until the stream is dropped (the client went
/// away) or the engine closes the connection. The second matters for a client that stopped reading: hyper then
/// stops polling the stream, which would otherwise keep the session — and the agent's presence — until the
/// socket times out. On a connection of an [`Abortable`](crate::Abortable) listener, a stream the engine ended
/// whose end could not be written within [`CLOSE_WRITE_BOUND`] also has its connection dropped.
struct SessionGuard {
    _dropped: oneshot::Sender<()>,
}

/// How long the end of a stream (its last `error` event) may wait for a client that stopped reading before its
/// connection is dropped.
const CLOSE_WRITE_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

impl SessionGuard {
    /// The task is one of the engine's (a shutdown waits for it: it ends when the engine closes the session).
    fn spawn(engine: &Engine, session: Session, connection: Option<Connection>, span: tracing::Span) -> Self {
        let (dropped, stream_gone) = oneshot::channel::<()>();
        let guard = async move {
            let ended_by_engine = tokio::select! {
                _ = session.closed() => true,
                _ = stream_gone => false,
            };
            drop(session);
            if let (true, Some(connection)) = (ended_by_engine, connection) {
                tokio::time::sleep(CLOSE_WRITE_BOUND).await;
                if connection.write_blocked() {
                    tracing::debug!("stream end not written in time; dropping the connection");
                    connection.abort();
                }
            }
        };
        engine.spawn(guard.instrument(span));
        Self { _dropped: dropped }
    }
}

/// The state of one open stream.
struct EventStream {
    _session: SessionGuard,
    /// The stream's `kf.connection` span, open as long as the stream.
    _span: tracing::Span,
    outbox: Outbox,
    cursor: Cursor,
    retry: Option<std::time::Duration>,
    ended: bool,
}

impl EventStream {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        futures::stream::unfold(self, |mut stream| async move {
            let event = stream.next().await?;
            Some((Ok(event), stream))
        })
    }

    async fn next(&mut self) -> Option<Event> {
        if let Some(retry) = self.retry.take() {
            return Some(Event::default().retry(retry));
        }
        if self.ended {
            return None;
        }
        let outgoing = self.outbox.next().await;
        match outgoing {
            Outgoing::Frame(frame) => Some(data(&frame)),
            Outgoing::Event {
                frame,
                conversation,
                seq,
            } => {
                self.cursor.advance(conversation, seq);
                Some(data(&frame).id(self.cursor.encode()))
            }
            Outgoing::Close(reason) => {
                self.ended = true;
                let (code, message) = match reason {
                    CloseReason::SlowConsumer => (
                        ErrorCode::SlowConsumer,
                        "the client fell behind; reconnect and resume",
                    ),
                    _ => (ErrorCode::Unavailable, reason.as_str()),
                };
                Some(data(&ServerFrame::error(None, code, message).encode()))
            }
        }
    }
}
