//! The connection loop shared by every way of accepting a WebSocket: hello, then a reader and a writer running
//! side by side in one task, then the closing handshake.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use kf_core::Engine;
use kf_core::engine::{Outbox, Outgoing, Session};
use kf_core::protocol::{CloseReason, ErrorCode, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::config::Settings;

/// WebSocket close code for a frame or message over the size limit.
const CLOSE_TOO_BIG: u16 = 1009;
/// WebSocket close code for a text frame that is not UTF-8.
const CLOSE_INVALID_DATA: u16 = 1007;
/// WebSocket close code for a broken framing protocol.
const CLOSE_PROTOCOL: u16 = 1002;

/// Frames written before a batch is flushed, at most.
const BATCH_FRAMES: usize = 64;
/// Bytes written before a batch is flushed, at most (besides the frame that crosses it).
const BATCH_BYTES: usize = 64 * 1024;
/// Bytes read and discarded while waiting for a closing client to hang up.
const LINGER_BYTES: usize = 1024 * 1024;
/// How long the close frame may take to be written. A client that does not read (a slow consumer whose socket is
/// full) would otherwise hold the connection for the whole close timeout, or until TCP gives up: past this bound
/// the connection is dropped without it.
const CLOSE_WRITE_BOUND: Duration = Duration::from_secs(1);

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The server closes: send a close frame with this code and reason, then wait for the client to hang up.
    Close(u16, &'static str),
    /// The client sent a close frame: flush the reply tungstenite queued, then hang up.
    PeerClosed,
    /// The connection is gone (reset, EOF, write failure): nothing more to say.
    Gone,
}

impl End {
    fn from_reason(reason: CloseReason) -> Self {
        End::Close(reason.websocket_code(), reason.as_str())
    }

    /// Maps a read error to how the connection ends.
    fn from_read_error(error: &WsError) -> Self {
        match error {
            WsError::Capacity(_) => End::Close(CLOSE_TOO_BIG, "frame too large"),
            WsError::Utf8(_) => End::Close(CLOSE_INVALID_DATA, "text frame is not valid UTF-8"),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Gone,
            WsError::Protocol(_) => End::Close(CLOSE_PROTOCOL, "protocol error"),
            _ => End::Gone,
        }
    }
}

/// The `kf.connection` span of a WebSocket connection (`transport="ws"`; the engine records `role`, `tenant`,
/// `identity` and `connection` when it accepts `hello`). The task that runs the connection enters it, and only
/// when it is enabled: a disabled span would still take its bytes in every idle connection's future.
pub(crate) fn span() -> tracing::Span {
    tracing::info_span!(
        "kf.connection",
        transport = "ws",
        role = tracing::field::Empty,
        tenant = tracing::field::Empty,
        identity = tracing::field::Empty,
        connection = tracing::field::Empty,
    )
}

/// Runs one WebSocket connection over `io`, whose HTTP upgrade is complete, until it ends.
///
/// The task's future is as large as its largest state, and an idle connection sits in it for hours: the states
/// that are short-lived but large (the hello and a refusal, a request in the engine, the closing handshake)
/// are boxed, so that an idle session keeps only its reader and writer loops.
///
/// `origin`: the `Origin` of a cross-origin handshake, which the token's tenant must allow.
///
/// The connection is counted in `kf_connections` while its session lives.
pub(crate) async fn run<S>(engine: Engine, settings: &Settings, io: S, origin: Option<Box<str>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(settings.websocket)).await;
    let Some((ws, session, outbox)) = Box::pin(greet(engine, settings, ws, origin)).await else {
        return;
    };
    // Split here rather than in `converse`: an argument keeps its slot in a future's state after it is moved.
    let (sink, stream) = ws.split();
    let (ws, end) = converse(sink, stream, session, outbox, settings).await;
    if let Some(ws) = ws {
        Box::pin(finish(ws, end, settings.close_timeout)).await;
    }
}

/// Waits for `hello` and opens the session, or refuses the connection and closes it (then `None`).
async fn greet<S>(
    engine: Engine,
    settings: &Settings,
    mut ws: WebSocketStream<S>,
    origin: Option<Box<str>>,
) -> Option<(WebSocketStream<S>, Session, Outbox)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A shutdown does not wait for the hello timeout of a connection that has not said `hello` yet.
    let shutdown = engine.shutdown_token();
    let first = tokio::select! {
        first = timeout(settings.hello_timeout, first_frame(&mut ws)) => first,
        () = shutdown.cancelled() => Ok(First::End(End::from_reason(CloseReason::Shutdown))),
    };
    drop(shutdown);
    let hello = match first {
        Ok(First::Text(text)) => text,
        Ok(First::Binary) => {
            let frame = ServerFrame::error(
                None,
                ErrorCode::HelloRequired,
                "the first frame must be a text `hello` frame",
            );
            // 4001, as for a connection that sends no `hello` at all (protocol.md §1).
            refuse(ws, settings, frame.encode(), CloseReason::Unauthenticated).await;
            return None;
        }
        Ok(First::End(end)) => {
            finish(ws, end, settings.close_timeout).await;
            return None;
        }
        Err(_elapsed) => {
            let message = format!("no `hello` within {} ms", settings.hello_timeout.as_millis());
            let frame = ServerFrame::error(None, ErrorCode::HelloRequired, message);
            refuse(ws, settings, frame.encode(), CloseReason::Unauthenticated).await;
            return None;
        }
    };
    match engine.accept_from(hello.as_str(), origin.as_deref()).await {
        Ok((session, mut outbox)) => {
            // (The engine recorded who it is on this connection's span.)
            tracing::debug!("session open");
            session.count_in(&settings.metrics);
            settings.metrics.received(&session.identity().principal);
            if let Err(end) = send_greeting(&mut ws, &mut outbox, settings).await {
                drop(session);
                finish(ws, end, settings.close_timeout).await;
                return None;
            }
            Some((ws, session, outbox))
        }
        Err(rejection) => {
            tracing::debug!(code = ?rejection.frame, "connection refused at hello");
            refuse(ws, settings, rejection.frame.encode(), rejection.reason).await;
            None
        }
    }
}

/// Writes the frames queued when the session opened (`welcome`, `inbox`, queue positions…) one write each. They
/// are the largest frames an idle session ever writes, and tungstenite keeps the capacity its write buffer
/// reached for the life of the connection: written as one batch, they would pin it at their sum.
async fn send_greeting<S>(
    ws: &mut WebSocketStream<S>,
    outbox: &mut Outbox,
    settings: &Settings,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(queued) = outbox.try_next() {
        let frame = match queued {
            Outgoing::Frame(frame) | Outgoing::Event { frame, .. } => frame,
            Outgoing::Close(reason) => return Err(End::from_reason(reason)),
        };
        if let Some(message) = text_message(frame) {
            guarded(ws.send(message), outbox, settings).await?;
        }
    }
    Ok(())
}

/// Runs the session's reader and writer side by side until one of them ends the connection. Returns the
/// reunited stream (for the closing handshake) and how the connection ends.
///
/// Not an `async fn`: its arguments would be kept in the future's state twice (as arguments and as the locals
/// they are moved into), and this is the state an idle connection sits in.
#[expect(
    clippy::manual_async_fn,
    reason = "an `async fn` keeps its arguments twice in its state (880 → 976 bytes per connection)"
)]
fn converse<'a, S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    mut stream: SplitStream<WebSocketStream<S>>,
    mut session: Session,
    mut outbox: Outbox,
    settings: &'a Settings,
) -> impl Future<Output = (Option<WebSocketStream<S>>, End)> + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
{
    async move {
        let end = {
            let reader_done = Notify::new();
            let writer_done = Notify::new();
            let reader = async {
                let end = read_loop(&mut stream, &mut session, settings, &writer_done).await;
                reader_done.notify_one();
                end
            };
            let writer = async {
                let end = tokio::select! {
                    end = write_loop(&mut sink, &mut outbox, settings) => Some(end),
                    () = reader_done.notified() => None,
                };
                writer_done.notify_one();
                end
            };
            // The reader is never cancelled, so a request the engine is handling (a store commit) runs to its end;
            // the writer is cancelled as soon as the reader ends.
            let (read_end, write_end) = tokio::join!(reader, writer);
            match (write_end, read_end) {
                (Some(end @ End::Close(..)), _) => end,
                (_, Some(end)) => end,
                (Some(end), None) => end,
                (None, None) => End::Gone,
            }
        };
        tracing::debug!(?end, "session ends");
        // Dropping the session ends its subscriptions and presence before the closing handshake.
        drop(session);
        drop(outbox);
        match sink.reunite(stream) {
            Ok(ws) => (Some(ws), end),
            Err(_) => {
                tracing::warn!("websocket halves did not match");
                (None, end)
            }
        }
    }
}

/// What the first frame of a connection was.
enum First {
    Text(Utf8Bytes),
    Binary,
    End(End),
}

/// Waits for the first data frame (control frames are answered by tungstenite and skipped).
async fn first_frame<S>(ws: &mut WebSocketStream<S>) -> First
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            None => return First::End(End::Gone),
            Some(Err(error)) => return First::End(End::from_read_error(&error)),
            Some(Ok(Message::Text(text))) => return First::Text(text),
            Some(Ok(Message::Binary(_))) => return First::Binary,
            Some(Ok(Message::Close(_))) => return First::End(End::PeerClosed),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
        }
    }
}

/// Sends an `error` frame, then closes the connection.
async fn refuse<S>(mut ws: WebSocketStream<S>, settings: &Settings, frame: Bytes, reason: CloseReason)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(message) = text_message(frame) {
        // `feed` only buffers; the close frame's flush sends both.
        if timeout(settings.close_timeout, ws.feed(message)).await.is_err() {
            return;
        }
    }
    finish(ws, End::from_reason(reason), settings.close_timeout).await;
}

/// Ends a connection: sends the close frame (or flushes the reply to the client's), shuts down the write side
/// and reads until the client hangs up, so that nothing it still sends turns our close into a reset that would
/// discard the close frame on its side. Bounded by `close_timeout` overall; a close frame that cannot be written
/// within [`CLOSE_WRITE_BOUND`] (the client stopped reading) drops the connection at once.
async fn finish<S>(mut ws: WebSocketStream<S>, end: End, close_timeout: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let closing = async {
        let sent = match end {
            End::Close(code, reason) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: Utf8Bytes::from_static(reason),
                };
                match timeout(
                    CLOSE_WRITE_BOUND.min(close_timeout),
                    ws.send(Message::Close(Some(frame))),
                )
                .await
                {
                    Ok(sent) => sent,
                    Err(_elapsed) => {
                        tracing::debug!(code, "close frame not written in time; dropping the connection");
                        return;
                    }
                }
            }
            End::PeerClosed => ws.flush().await,
            End::Gone => return,
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "close frame not sent");
        }
        // Read the raw socket from here on: after a framing error the WebSocket stream cannot be trusted.
        let io = ws.get_mut();
        let _ = io.shutdown().await;
        let mut discarded = 0;
        let mut buffer = [0_u8; 512];
        while discarded < LINGER_BYTES {
            match io.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => discarded += read,
            }
        }
    };
    let _ = timeout(close_timeout, closing).await;
}

/// Wraps an encoded frame (JSON, so UTF-8) in a text message.
fn text_message(frame: Bytes) -> Option<Message> {
    match Utf8Bytes::try_from(frame) {
        Ok(text) => Some(Message::Text(text)),
        Err(error) => {
            tracing::error!(%error, "engine produced a frame that is not UTF-8; dropped");
            None
        }
    }
}

/// Feeds the client's frames to the session, in order, one at a time; pings after silence and ends the
/// connection after the idle timeout. Returns `None` when told to stop because the writer ended.
async fn read_loop<S>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    session: &mut Session,
    settings: &Settings,
    stop: &Notify,
) -> Option<End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut last_heard = Instant::now();
    let mut next_ping = last_heard + settings.ping_interval;
    loop {
        let idle_at = last_heard + settings.idle_timeout;
        let received = tokio::select! {
            received = stream.next() => received,
            () = stop.notified() => return None,
            () = sleep_until(next_ping.min(idle_at)) => {
                let now = Instant::now();
                if now >= idle_at {
                    return Some(End::from_reason(CloseReason::IdleTimeout));
                }
                session.ping();
                next_ping = now + settings.ping_interval;
                continue;
            }
        };
        match received {
            None => return Some(End::Gone),
            Some(Err(error)) => {
                tracing::debug!(%error, "read failed");
                return Some(End::from_read_error(&error));
            }
            // Boxed: a request's future is large and lives only while the engine handles it.
            Some(Ok(Message::Text(text))) => Box::pin(session.receive(text.as_str())).await,
            Some(Ok(Message::Binary(_))) => session.receive_binary(),
            Some(Ok(Message::Close(_))) => return Some(End::PeerClosed),
            // Protocol-level pings are answered by tungstenite; any frame counts as a sign of life.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
        }
        // Silence counts from when the reader could listen again (a slow store does not make a client idle).
        last_heard = Instant::now();
        next_ping = last_heard + settings.ping_interval;
    }
}

/// Drains the outbox into the socket, batching the frames that are ready into one flush. Returns how the
/// connection should end: a close the engine asked for, or a failed write.
async fn write_loop<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    outbox: &mut Outbox,
    settings: &Settings,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let first = match outbox.next().await {
            Outgoing::Frame(frame) | Outgoing::Event { frame, .. } => frame,
            Outgoing::Close(reason) => return End::from_reason(reason),
        };
        // Boxed: writing holds timers and tungstenite's futures, which an idle connection need not keep.
        if let Err(end) = Box::pin(write_batch(sink, outbox, first, settings)).await {
            return end;
        }
    }
}

/// Writes `first` and the frames queued behind it (up to a batch), then flushes them together.
async fn write_batch<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    outbox: &mut Outbox,
    first: Bytes,
    settings: &Settings,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let batch_bytes = settings.write_buffer_size.max(BATCH_BYTES);
    let mut next = Some(first);
    let (mut frames, mut bytes) = (0, 0);
    while let Some(frame) = next.take() {
        frames += 1;
        bytes += frame.len();
        if let Some(message) = text_message(frame) {
            guarded(sink.feed(message), outbox, settings).await?;
        }
        if frames >= BATCH_FRAMES || bytes >= batch_bytes {
            break;
        }
        next = match outbox.try_next() {
            Some(Outgoing::Frame(frame) | Outgoing::Event { frame, .. }) => Some(frame),
            Some(Outgoing::Close(reason)) => return Err(End::from_reason(reason)),
            None => None,
        };
    }
    guarded(sink.flush(), outbox, settings).await
}

/// Runs one write operation, bounded by the write timeout, while watching the outbox: if the engine closes the
/// connection meanwhile (a slow consumer whose queue overflowed while this write was stalled, or a shutdown),
/// the write is abandoned at once.
///
/// A write stalled past the write timeout ends the connection as a slow consumer (counted in
/// `kf_slow_consumer_closes_total`).
async fn guarded<F>(op: F, outbox: &Outbox, settings: &Settings) -> Result<(), End>
where
    F: Future<Output = Result<(), WsError>>,
{
    tokio::select! {
        biased;
        result = op => result.map_err(|error| {
            tracing::debug!(%error, "write failed");
            End::Gone
        }),
        reason = outbox.closed() => Err(End::from_reason(reason)),
        () = sleep(settings.write_timeout) => {
            tracing::debug!("write stalled past the write timeout");
            settings.metrics.slow_consumer_closed();
            Err(End::from_reason(CloseReason::SlowConsumer))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kf_core::auth::SignedTokens;
    use kf_core::clock::SystemClock;
    use kf_core::store::MemoryStore;

    use super::*;
    use crate::WsConfig;

    /// The state a connection's task keeps besides its buffers: small, so idle connections stay cheap (about
    /// 900 bytes in debug builds; 4.6 KiB before the short-lived states were boxed; the
    /// `kf.connection` span is not in it unless a subscriber wants it, see `span`). The bound fails if a large state or buffer slips back into the idle
    /// future.
    #[tokio::test]
    async fn a_connection_future_is_small() {
        let tokens = SignedTokens::new(&[7; 32], Arc::new(SystemClock)).expect("key");
        let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens))
            .build()
            .await
            .expect("engine");
        let settings = WsConfig::default().resolve(&engine);
        let (server, _client) = tokio::io::duplex(64);
        let connection = run(engine, &settings, server, None);
        let size = std::mem::size_of_val(&connection);
        assert!(size <= 1024, "connection future is {size} bytes");
    }
}
