//! Test helpers: an engine served over SSE on 127.0.0.1:0, and a small SSE + HTTP client over a raw socket
//! (it decodes chunked encoding and the event-stream format itself, as a browser would). Tenant, agents, tokens
//! and engines come from `kf_core::testkit::shop`.
#![allow(dead_code)]

use std::net::SocketAddr;

use kf_core::Engine;
use kf_core::auth::Identity;
use kf_core::testkit::shop::{WAIT, token};
use kf_transport_sse::SseConfig;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Serves `engine` over SSE on 127.0.0.1:0.
pub async fn start(engine: &Engine, config: SseConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(kf_transport_sse::serve(listener, engine.clone(), config));
    addr
}

/// An HTTP response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
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
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let auth = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    let content_type = content_type.map_or(String::new(), |value| format!("Content-Type: {value}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\n{auth}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader).await;
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        while let Some(chunk) = read_chunk(&mut reader).await {
            body.extend(chunk);
        }
    } else {
        reader.read_to_end(&mut body).await.expect("body");
    }
    Reply {
        status,
        headers,
        body,
    }
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

async fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    tokio::time::timeout(WAIT, reader.read_line(&mut line))
        .await
        .expect("a status line in time")
        .expect("read");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.expect("header");
        let header = line.trim_end();
        if header.is_empty() {
            return (status, headers);
        }
        if let Some((key, value)) = header.split_once(':') {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
}

/// One chunk of a chunked body; `None` at its end (or when the connection ends).
async fn read_chunk(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(line.trim(), 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).await.ok()?;
    chunk.truncate(size);
    Some(chunk)
}

/// What a stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An event with data (a JSON frame) and its id, if it had one.
    Frame { id: Option<String>, frame: Value },
    /// A `retry:` field.
    Retry(u64),
    /// A heartbeat: the event named `ping` (or a comment line, whose text this is).
    Comment(String),
    /// The response ended.
    End,
}

/// An open `GET /events` response, parsed as an `EventSource` would.
pub struct Stream {
    pub status: u16,
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
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self::over(stream, path_and_query, headers).await
    }

    /// `GET {path_and_query}` with extra headers over an already connected socket.
    pub async fn over(mut stream: TcpStream, path_and_query: &str, headers: &[(&str, &str)]) -> Stream {
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{extra}\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).await;
        let mut body = Vec::new();
        if status != 200 {
            let length = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            body.resize(length, 0);
            reader.read_exact(&mut body).await.expect("error body");
        }
        Stream {
            status,
            headers,
            reader,
            pending: Vec::new(),
            last_id: None,
            body,
        }
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

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The next item, within [`WAIT`].
    pub async fn next_item(&mut self) -> Item {
        tokio::time::timeout(WAIT, self.read_item())
            .await
            .expect("an SSE item in time")
    }

    async fn read_item(&mut self) -> Item {
        let (mut id, mut data, mut retry, mut comment) = (None, None::<String>, None, None);
        let mut name = None::<String>;
        loop {
            let Some(line) = self.line().await else {
                return Item::End;
            };
            if line.is_empty() {
                // The heartbeat: an event named `ping` (which `onmessage` never sees).
                if name.take().as_deref() == Some("ping") {
                    let data = data.take().unwrap_or_default();
                    assert_eq!(data, r#"{"type":"ping"}"#, "heartbeat data");
                    return Item::Comment("ping".into());
                }
                if let Some(data) = data.take() {
                    if id.is_some() {
                        self.last_id = id.clone();
                    }
                    let frame = serde_json::from_str(&data).expect("JSON data");
                    return Item::Frame { id, frame };
                }
                if let Some(retry) = retry.take() {
                    return Item::Retry(retry);
                }
                if let Some(comment) = comment.take() {
                    return Item::Comment(comment);
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

    /// The next line of the event stream, decoding chunks as they come.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(String::from_utf8(line).expect("UTF-8"));
            }
            let chunk = read_chunk(&mut self.reader).await?;
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

/// `(conversation, seq)` of event frames.
pub fn positions(events: &[Value]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| {
            (
                e["conversation"].as_str().expect("conversation").to_string(),
                e["seq"].as_u64().expect("seq"),
            )
        })
        .collect()
}

/// One HTTP/1.1 connection kept alive for many requests, each written with raw bytes (any header value, any
/// body), each response read whole (`Content-Length` bodies: every answer but a stream's).
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    pub async fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = TcpStream::connect(addr).await.expect("connect");
        KeepAlive {
            reader: BufReader::new(stream),
        }
    }

    /// `{method} {path}` with these headers and body; the response.
    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Reply {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n").into_bytes();
        for (name, value) in headers {
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request).await.expect("write");
        let (status, headers) = read_head(&mut self.reader).await;
        let length = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        tokio::time::timeout(WAIT, self.reader.read_exact(&mut body))
            .await
            .expect("a body in time")
            .expect("body");
        Reply {
            status,
            headers,
            body,
        }
    }
}
