//! The standalone server behind [`serve`](crate::serve) and [`serve_router`](crate::serve_router): event
//! streams written by kf straight onto the socket, everything else through hyper.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for as long as a connection lives, and an event
//! stream lives for hours while it is mostly idle: through hyper, those 16 KiB were 84% of an idle stream's
//! memory. So the first request of every connection is read here: a plain `GET` (no body, no upgrade) is
//! answered by the app as usual, and its response is written here: a stream with chunked encoding and one
//! write per event, holding no buffer between events, after which the connection closes; a sized response
//! with its length, after which the connection goes on with hyper. Every other request, and every request
//! after the first, is hyper's.

use std::convert::Infallible;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::abort::AbortableIo;

/// How long a client may take to send its request head (hyper's default too).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// The first read of a request head; a larger head grows the buffer up to [`MAX_HEAD`].
const FIRST_READ: usize = 1024;
/// The largest request head read here; a larger one is left to hyper, which refuses it.
const MAX_HEAD: usize = 16 * 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;
/// The first pause after an accept error that is not about one connection (out of file descriptors…).
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between accept attempts while such errors persist.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `app` on `listener`; see the module's documentation. `tune` is applied to every accepted socket.
///
/// When `shutdown` is cancelled, the listener is closed, connections waiting for a request head or idle between
/// requests are ended (hyper's graceful shutdown answers a request in progress first), and it returns once every
/// connection has ended — an event stream ends when the engine closes its session.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tune: impl Fn(&tokio::net::TcpStream) + Send + 'static,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let connections = TaskTracker::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff = FIRST_BACKOFF;
                stream
            }
            Err(error) if is_per_connection(&error) => continue,
            Err(error) if error.kind() == io::ErrorKind::InvalidInput => return Err(error),
            Err(error) => {
                tracing::warn!(%error, pause_ms = backoff.as_millis() as u64, "accept failed; pausing");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tune(&stream);
        connections.spawn(serve_connection(
            AbortableIo::new(stream),
            app.clone(),
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

/// Serves one connection: its first request here if it is a plain `GET`, the rest through hyper.
///
/// The short-lived, large states (reading the head, the app answering it, hyper) are boxed: the task's future
/// is as large as its largest state, and an event stream's task sits in the smallest one for hours.
async fn serve_connection(mut io: AbortableIo, app: Router, shutdown: CancellationToken) {
    let head = tokio::select! {
        head = Box::pin(timeout(HEAD_TIMEOUT, read_head(&mut io))) => head,
        () = shutdown.cancelled() => return,
    };
    let head = match head {
        Ok(Ok(head)) => head,
        Ok(Err(error)) => {
            tracing::debug!(%error, "reading a request head failed");
            return;
        }
        Err(_elapsed) => return,
    };
    let Some((length, mut request)) = parse_plain_get(&head) else {
        return Box::pin(serve_with_hyper(Rewind::new(head, io), app, shutdown)).await;
    };
    let leftover = head[length..].to_vec();
    drop(head);
    let closes = request
        .headers()
        .get_all(CONNECTION)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
    request.extensions_mut().insert(ConnectInfo(io.connection()));
    let Ok(response) = Box::pin(app.clone().oneshot(request)).await;
    let (parts, body) = response.into_parts();
    let framing = Framing::of(parts.status, body.size_hint().exact());
    let head = response_head(&parts.status, &parts.headers, framing, closes);
    drop(parts);
    if let Err(error) = Box::pin(io.write_all(&head)).await {
        tracing::debug!(%error, "writing a response head failed");
        return;
    }
    drop(head);
    let written = match framing {
        Framing::Chunked => {
            stream_body(&mut io, body).await;
            let _ = io.shutdown().await;
            return;
        }
        Framing::Length(_) => Box::pin(write_sized_body(&mut io, body)).await.is_ok(),
        Framing::None => true,
    };
    if written {
        if closes {
            let _ = io.shutdown().await;
        } else {
            Box::pin(serve_with_hyper(Rewind::new(leftover, io), app, shutdown)).await;
        }
    }
}

/// How a response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body at all, whatever the app gave: 1xx, `204 No Content` and `304 Not Modified` (RFC 9110 §6.4.1).
    None,
    /// A body of this many bytes (`content-length`).
    Length(u64),
    /// A body of unknown length, an event stream: chunked encoding, then the connection closes.
    Chunked,
}

impl Framing {
    fn of(status: http::StatusCode, length: Option<u64>) -> Self {
        if status.is_informational()
            || status == http::StatusCode::NO_CONTENT
            || status == http::StatusCode::NOT_MODIFIED
        {
            return Framing::None;
        }
        length.map_or(Framing::Chunked, Framing::Length)
    }
}

/// Reads until the end of a request head (or [`MAX_HEAD`] bytes, or the end of the connection); the bytes
/// read may go past the head.
async fn read_head(io: &mut AbortableIo) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(FIRST_READ);
    loop {
        if bytes.len() == bytes.capacity() {
            if bytes.len() >= MAX_HEAD {
                return Ok(bytes);
            }
            bytes.reserve(bytes.len());
        }
        let searched = bytes.len().saturating_sub(3);
        if io.read_buf(&mut bytes).await? == 0 {
            return Ok(bytes);
        }
        if bytes[searched..].windows(4).any(|window| window == b"\r\n\r\n") {
            return Ok(bytes);
        }
    }
}

/// Parses `bytes` as a complete HTTP/1.1 `GET` request head without a body or upgrade, returning its length
/// and the request. Anything else (another method or version, a body, an upgrade, a malformed head) is `None`:
/// hyper's to answer.
fn parse_plain_get(bytes: &[u8]) -> Option<(usize, Request<Body>)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(length) = parsed.parse(bytes).ok()? else {
        return None;
    };
    if parsed.method? != "GET" || parsed.version? != 1 {
        return None;
    }
    let uri: Uri = parsed.path?.parse().ok()?;
    let mut map = HeaderMap::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "upgrade" | "expect"
        ) {
            return None;
        }
        map.append(name, HeaderValue::from_bytes(header.value).ok()?);
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = map;
    Some((length, request))
}

/// The status line and headers of a response written here: with its length when known, else chunked and
/// closing the connection after it (as when the client asked to `close`).
fn response_head(status: &http::StatusCode, headers: &HeaderMap, framing: Framing, closes: bool) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if [CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION, DATE].contains(name) {
            continue;
        }
        push_header(&mut head, name.as_str(), value.as_bytes());
    }
    push_header(
        &mut head,
        "date",
        httpdate::fmt_http_date(SystemTime::now()).as_bytes(),
    );
    match framing {
        Framing::None => {}
        Framing::Length(length) => push_header(&mut head, "content-length", length.to_string().as_bytes()),
        Framing::Chunked => push_header(&mut head, "transfer-encoding", b"chunked"),
    }
    if closes || framing == Framing::Chunked {
        push_header(&mut head, "connection", b"close");
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn push_header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// Writes a body of known length whole.
async fn write_sized_body(io: &mut AbortableIo, body: Body) -> io::Result<()> {
    let bytes = body
        .collect()
        .await
        .map_err(|error| io::Error::other(error.to_string()))?
        .to_bytes();
    io.write_all(&bytes).await?;
    io.flush().await
}

/// Writes a body of unknown length (an event stream) in chunked encoding, one write per frame, until it ends or
/// the client goes away (EOF or a reset, noticed by reading: a client sends nothing after its `GET`).
async fn stream_body(io: &mut AbortableIo, body: Body) {
    let mut body = pin!(body);
    let mut discard = [0_u8; 64];
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            read = io.read(&mut discard) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
        };
        let data = match frame {
            None => {
                let _ = io.write_all(b"0\r\n\r\n").await;
                return;
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "event stream failed");
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        if let Err(error) = write_chunk(io, &data).await {
            tracing::debug!(%error, "writing an event failed");
            return;
        }
    }
}

/// Writes one chunk of chunked encoding.
async fn write_chunk(io: &mut AbortableIo, data: &Bytes) -> io::Result<()> {
    let mut chunk = Vec::with_capacity(data.len() + 12);
    chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(b"\r\n");
    io.write_all(&chunk).await?;
    io.flush().await
}

/// Serves the rest of a connection with hyper, each request given the connection's [`ConnectInfo`].
async fn serve_with_hyper(io: Rewind, app: Router, shutdown: CancellationToken) {
    let connection = io.io.connection();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(connection.clone()));
        let app = app.clone();
        async move {
            let Ok(response) = app.oneshot(request).await;
            Ok::<Response<Body>, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%error, "HTTP connection failed");
    }
}

/// A socket whose first bytes were already read: they are read again first.
struct Rewind {
    read: Bytes,
    io: AbortableIo,
}

impl Rewind {
    fn new(read: Vec<u8>, io: AbortableIo) -> Self {
        Self {
            read: Bytes::from(read),
            io,
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let length = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read.split_to(length));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_get_is_parsed_with_its_length() {
        let bytes = b"GET /events?token=t HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\nleftover";
        let (length, request) = parse_plain_get(bytes).expect("a plain GET");
        assert_eq!(&bytes[length..], b"leftover");
        assert_eq!(request.uri().path(), "/events");
        assert_eq!(request.uri().query(), Some("token=t"));
        assert_eq!(request.headers()["accept"], "text/event-stream");
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        for head in [
            &b"POST /send HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"[..],
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"GET /events HTTP/1.0\r\n\r\n",
            b"GET /events HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"GET /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /events HTTP/1.1\r\nHost: x\r\n",
            b"HEAD /events HTTP/1.1\r\n\r\n",
            b"GET /ev ents HTTP/1.1\r\n\r\n",
            b"\x00\x01garbage\r\n\r\n",
        ] {
            assert!(
                parse_plain_get(head).is_none(),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn a_stream_head_is_chunked_and_closes() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/event-stream"));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        let head = String::from_utf8(response_head(
            &http::StatusCode::OK,
            &headers,
            Framing::Chunked,
            false,
        ))
        .expect("UTF-8");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("content-type: text/event-stream\r\n"), "{head}");
        assert!(
            head.contains("transfer-encoding: chunked\r\nconnection: close\r\n\r\n"),
            "{head}"
        );
        assert!(!head.contains("keep-alive"), "{head}");
        let sized = String::from_utf8(response_head(
            &http::StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            Framing::Length(5),
            false,
        ))
        .expect("UTF-8");
        assert!(sized.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{sized}");
        assert!(sized.ends_with("content-length: 5\r\n\r\n"), "{sized}");
    }

    #[test]
    fn no_content_and_not_modified_have_no_body_nor_length() {
        use http::StatusCode;
        assert_eq!(Framing::of(StatusCode::NO_CONTENT, Some(0)), Framing::None);
        assert_eq!(Framing::of(StatusCode::NOT_MODIFIED, None), Framing::None);
        assert_eq!(Framing::of(StatusCode::OK, Some(0)), Framing::Length(0));
        assert_eq!(Framing::of(StatusCode::OK, None), Framing::Chunked);
        let head = String::from_utf8(response_head(
            &StatusCode::NOT_MODIFIED,
            &HeaderMap::new(),
            Framing::None,
            false,
        ))
        .expect("UTF-8");
        assert!(head.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{head}");
        assert!(
            !head.contains("content-length") && !head.contains("transfer-encoding"),
            "{head}"
        );
    }
}
