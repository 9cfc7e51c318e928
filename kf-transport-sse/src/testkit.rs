//! SSE test helpers (feature `testkit`): an engine served over SSE on `127.0.0.1:0` ([`start`]), and a small SSE +
//! HTTP client over a raw socket that decodes chunked encoding and the event-stream format itself, as a browser
//! would: [`Stream`] (a `GET /events` response, item by item) and [`post`] (one request on a connection of its own).
//!
//! This crate's tests and the fault-injection suite (`kf-proof`) share it. Each operation comes twice: the plain
//! one panics on anything unexpected and gives up after [`WAIT`] (what a test wants); the `try_` one returns an
//! [`io::Result`] and has no timeout of its own (what a client on a hostile network wants: it decides itself how
//! long to wait, and treats a failure as the end of the connection).
//!
//! Tenant, agents, tokens and engines come from [`kf_core::testkit::shop`].
//!
//! ```ignore
//! let addr = kf_transport_sse::testkit::start(&engine, SseConfig::default()).await;
//! let mut stream = Stream::follow(addr, &visitor("v-1"), None).await;
//! assert_eq!(stream.next().await["type"], "welcome");
//! ```

use std::io;
use std::net::SocketAddr;

use kf_core::Engine;
use kf_core::auth::Identity;
use kf_core::testkit::shop::{WAIT, token};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::SseConfig;

fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error:?}"),
    }
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Serves `engine` over SSE ([`crate::serve`]) on `127.0.0.1:0`, in a task that runs until the test's runtime
/// ends; returns the address.
pub async fn start(engine: &Engine, config: SseConfig) -> SocketAddr {
    let listener = must(TcpListener::bind("127.0.0.1:0").await, "bind");
    let addr = must(listener.local_addr(), "local address");
    tokio::spawn(crate::serve(listener, engine.clone(), config));
    addr
}

/// An HTTP response read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding decoded).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        must(self.try_json(), "a JSON body")
    }

    /// The body as JSON.
    pub fn try_json(&self) -> io::Result<Value> {
        serde_json::from_slice(&self.body).map_err(|error| {
            invalid(format!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            ))
        })
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// `POST {path}` with a JSON `body` and optional bearer token, on a connection of its own.
pub async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> Reply {
    post_typed(addr, path, token, Some("application/json"), body).await
}

/// `POST {path}` with `body` declared as `content_type` (no `Content-Type` header when `None`).
pub async fn post_typed(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Reply {
    let stream = must(TcpStream::connect(addr).await, "connect");
    let reply = tokio::time::timeout(WAIT, try_post_over(stream, path, token, content_type, body)).await;
    must(must(reply, "a reply in time"), "POST")
}

/// `POST {path}` over an already connected socket (`Connection: close`: the socket is used for this request
/// only). Fails on any I/O error or malformed response; no timeout of its own.
pub async fn try_post_over(
    mut stream: TcpStream,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> io::Result<Reply> {
    let auth = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    let content_type = content_type.map_or(String::new(), |value| format!("Content-Type: {value}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\n{auth}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    read_reply(stream).await
}

/// Any request: `method path` with `headers` (besides `Host: test` and `Connection: close`) and `body`, on a
/// connection of its own (CORS preflights, requests with an `Origin`).
pub async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = tokio::time::timeout(WAIT, async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        read_reply(stream).await
    })
    .await;
    must(must(reply, "a reply in time"), "request")
}

/// Reads a whole response (`Connection: close`).
async fn read_reply(stream: TcpStream) -> io::Result<Reply> {
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader).await?;
    let chunked = header(&headers, "transfer-encoding").is_some_and(|value| value.contains("chunked"));
    let length = header(&headers, "content-length").and_then(|value| value.parse::<usize>().ok());
    let mut body = Vec::new();
    if chunked {
        while let Some(chunk) = read_chunk(&mut reader).await? {
            body.extend(chunk);
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    } else {
        reader.read_to_end(&mut body).await?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Sends a request of `type` with `fields` as `identity`'s token; returns status and JSON body (Null for 204).
pub async fn request(addr: SocketAddr, token: &str, kind: &str, fields: Value) -> (u16, Value) {
    let reply = post(addr, &format!("/{kind}"), Some(token), &fields.to_string()).await;
    let body = if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    };
    (reply.status, body)
}

/// Reads an HTTP response head: its status and headers (names as sent).
pub async fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a status line",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the headers",
            ));
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok((status, headers));
        }
        if let Some((key, value)) = header.split_once(':') {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
}

/// One chunk of a chunked body; `None` at its end (the last chunk, or the connection closed between chunks).
async fn read_chunk(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let size = usize::from_str_radix(line.trim(), 16)
        .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
    if size == 0 {
        return Ok(None);
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).await?;
    chunk.truncate(size);
    Ok(Some(chunk))
}

/// What a stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An event with data (a JSON frame) and its id, if it had one.
    Frame {
        /// The event's `id:` field.
        id: Option<String>,
        /// The event's `data:`, parsed.
        frame: Value,
    },
    /// A `retry:` field.
    Retry(u64),
    /// A heartbeat: the event named `ping` (or a comment line, whose text this is).
    Comment(String),
    /// The response ended.
    End,
}

/// An open `GET /events` response, parsed as an `EventSource` would.
#[derive(Debug)]
pub struct Stream {
    /// The response's status.
    pub status: u16,
    /// The response's headers.
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
    /// The last event id seen (what a browser sends back as `Last-Event-ID`).
    pub last_id: Option<String>,
    /// Body of a non-200 answer.
    pub body: Vec<u8>,
}

impl Stream {
    /// `GET {path_and_query}` with extra headers.
    pub async fn open(addr: SocketAddr, path_and_query: &str, headers: &[(&str, &str)]) -> Stream {
        let stream = must(TcpStream::connect(addr).await, "connect");
        Self::over(stream, path_and_query, headers).await
    }

    /// `GET {path_and_query}` with extra headers over an already connected socket.
    pub async fn over(stream: TcpStream, path_and_query: &str, headers: &[(&str, &str)]) -> Stream {
        let opened = tokio::time::timeout(WAIT, Self::try_over(stream, path_and_query, headers)).await;
        must(must(opened, "a response in time"), "GET")
    }

    /// [`Stream::over`] that returns an error instead of panicking, with no timeout of its own. A non-200
    /// answer is not an error: its body is read into [`Stream::body`].
    pub async fn try_over(
        mut stream: TcpStream,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Stream> {
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{extra}\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).await?;
        let mut body = Vec::new();
        if status != 200 {
            let length = header(&headers, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            body.resize(length, 0);
            reader.read_exact(&mut body).await?;
        }
        Ok(Stream {
            status,
            headers,
            reader,
            pending: Vec::new(),
            last_id: None,
            body,
        })
    }

    /// The socket under the stream (to probe it without reading).
    pub fn socket(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Follows all of `identity`'s conversations from `cursor` (token and cursor in the query).
    pub async fn follow(addr: SocketAddr, identity: &Identity, cursor: Option<&str>) -> Stream {
        let mut path = format!("/events?token={}", token(identity));
        if let Some(cursor) = cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let stream = Stream::open(addr, &path, &[]).await;
        assert_eq!(stream.status, 200, "{}", String::from_utf8_lossy(&stream.body));
        stream
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The next item, within [`WAIT`]. A read error (the server dropped the connection) is the end too.
    pub async fn next_item(&mut self) -> Item {
        let item = tokio::time::timeout(WAIT, self.try_next_item()).await;
        must(item, "an SSE item in time").unwrap_or(Item::End)
    }

    /// The next item, or the error that broke the stream. Not cancel safe (a partly read event is lost): run it
    /// to completion, or drop the stream.
    pub async fn try_next_item(&mut self) -> io::Result<Item> {
        let (mut id, mut data, mut retry, mut comment) = (None, None::<String>, None, None);
        let mut name = None::<String>;
        loop {
            let Some(line) = self.line().await? else {
                return Ok(Item::End);
            };
            if line.is_empty() {
                // The heartbeat: an event named `ping` (which `onmessage` never sees).
                if name.take().as_deref() == Some("ping") {
                    let data = data.take().unwrap_or_default();
                    if data != r#"{"type":"ping"}"# {
                        return Err(invalid(format!("heartbeat data {data:?}")));
                    }
                    return Ok(Item::Comment("ping".into()));
                }
                if let Some(data) = data.take() {
                    if id.is_some() {
                        self.last_id = id.clone();
                    }
                    let frame = serde_json::from_str(&data)
                        .map_err(|error| invalid(format!("event data that is not JSON: {error}")))?;
                    return Ok(Item::Frame { id, frame });
                }
                if let Some(retry) = retry.take() {
                    return Ok(Item::Retry(retry));
                }
                if let Some(comment) = comment.take() {
                    return Ok(Item::Comment(comment));
                }
                continue;
            }
            if let Some(text) = line.strip_prefix(':') {
                comment = Some(text.trim().to_string());
            } else if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                data = Some(match data {
                    Some(previous) => format!("{previous}\n{value}"),
                    None => value.to_string(),
                });
            } else if let Some(value) = line.strip_prefix("event:") {
                name = Some(value.trim().to_string());
            } else if let Some(value) = line.strip_prefix("id:") {
                id = Some(value.strip_prefix(' ').unwrap_or(value).to_string());
            } else if let Some(value) = line.strip_prefix("retry:") {
                retry = value.trim().parse().ok();
            }
        }
    }

    /// The next line of the event stream, decoding chunks as they come; `None` at the end of the response.
    async fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return String::from_utf8(line)
                    .map(Some)
                    .map_err(|_| invalid("a line that is not UTF-8"));
            }
            let Some(chunk) = read_chunk(&mut self.reader).await? else {
                return Ok(None);
            };
            self.pending.extend(chunk);
        }
    }

    /// The next frame, skipping comments and `retry:`.
    pub async fn next(&mut self) -> Value {
        loop {
            match self.next_item().await {
                Item::Frame { frame, .. } => return frame,
                Item::End => panic!("the stream ended"),
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Reads until the stream has delivered `n` more events; returns them.
    pub async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let frame = self.next().await;
            if frame["type"] == "event" {
                events.push(frame);
            }
        }
        events
    }

    /// Frames until the response ends.
    pub async fn until_end(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            match self.next_item().await {
                Item::Frame { frame, .. } => frames.push(frame),
                Item::End => return frames,
                _ => {}
            }
        }
    }
}
