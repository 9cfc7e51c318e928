//! Dropping a stream's TCP connection at once when its client stopped reading.
//!
//! A stream the engine ends (slow consumer, shutdown) says so with a last `error` event. A client that stopped
//! reading never gets it: the socket's send buffer is full, hyper stops polling the response, and the connection
//! would stay until TCP gives up (`TCP_USER_TIMEOUT`). [`Abortable`] wraps a listener so that each connection
//! carries a [`Connection`] handle (as axum connect info); the stream handler uses it to drop the connection —
//! with a reset, freeing its buffers — when the end cannot be written within a second.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A listener whose connections the SSE transport can drop when their client stopped reading. Serve the app with
/// `into_make_service_with_connect_info::<Connection>()`:
///
/// ```no_run
/// # async fn run(engine: kf_core::Engine) -> std::io::Result<()> {
/// use kf_transport_sse::{Abortable, Connection, SseConfig};
///
/// let app = axum::Router::new().nest("/sse", kf_transport_sse::router(engine, SseConfig::default()));
/// let listener = Abortable::new(tokio::net::TcpListener::bind("127.0.0.1:8080").await?);
/// axum::serve(listener, app.into_make_service_with_connect_info::<Connection>()).await
/// # }
/// ```
///
/// Without it the transport works the same, but the socket of a client that stopped reading is only released
/// when TCP gives up on it.
#[derive(Debug)]
pub struct Abortable<L> {
    inner: L,
}

impl<L> Abortable<L> {
    /// Wraps `inner` (a `TcpListener`, or one tapped with [`axum::serve::ListenerExt::tap_io`]).
    pub fn new(inner: L) -> Self {
        Self { inner }
    }
}

impl<L> Listener for Abortable<L>
where
    L: Listener<Io = TcpStream>,
{
    type Io = AbortableIo;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = self.inner.accept().await;
        (AbortableIo::new(stream), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection accepted by [`Abortable`]: the handle its requests get as connect info.
#[derive(Debug, Clone)]
pub struct Connection(Arc<Abort>);

#[derive(Debug, Default)]
struct Abort {
    aborted: AtomicBool,
    /// The last write (or flush) could not complete: the client is not reading.
    write_blocked: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Connection {
    /// Whether the connection's last write is waiting for the client to read.
    pub(crate) fn write_blocked(&self) -> bool {
        self.0.write_blocked.load(Ordering::Acquire)
    }

    /// Drops the connection: every further read and write fails, and the socket is closed with a reset.
    pub(crate) fn abort(&self) {
        self.0.aborted.store(true, Ordering::Release);
        self.0.reader.wake();
        self.0.writer.wake();
    }
}

impl<L> Connected<IncomingStream<'_, Abortable<L>>> for Connection
where
    L: Listener<Io = TcpStream>,
{
    fn connect_info(stream: IncomingStream<'_, Abortable<L>>) -> Self {
        stream.io().connection.clone()
    }
}

/// The IO of an [`Abortable`] connection.
#[derive(Debug)]
pub struct AbortableIo {
    stream: TcpStream,
    connection: Connection,
}

impl AbortableIo {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            connection: Connection(Arc::default()),
        }
    }

    /// The handle that aborts this socket.
    pub(crate) fn connection(&self) -> Connection {
        self.connection.clone()
    }

    /// Fails once aborted, after arranging for the socket to close with a reset (nothing left to deliver).
    fn check(&self) -> io::Result<()> {
        if !self.connection.0.aborted.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Err(error) = socket2::SockRef::from(&self.stream).set_linger(Some(std::time::Duration::ZERO)) {
            tracing::debug!(%error, "cannot set SO_LINGER");
        }
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the client stopped reading",
        ))
    }

    fn track<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.connection
            .0
            .write_blocked
            .store(poll.is_pending(), Ordering::Release);
        poll
    }
}

impl AsyncRead for AbortableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.connection.0.reader.register(cx.waker());
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortableIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.connection.0.writer.register(cx.waker());
        self.check()?;
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.track(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.connection.0.writer.register(cx.waker());
        self.check()?;
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.track(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.connection.0.writer.register(cx.waker());
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
