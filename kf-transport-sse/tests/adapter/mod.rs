//! The SSE adapter of kf-core's transport conformance suite ([`kf_core::testkit::transport`]), over the raw-socket
//! SSE client of `common`.
//!
//! A client is one `GET /events` stream that follows all its principal's conversations (token in
//! `Authorization: Bearer`), and HTTP POSTs for requests. It remembers the `id:` of the last event it handed to
//! the scenario, and resumes by reconnecting with it as `Last-Event-ID`, as a browser's `EventSource` does.
//! Besides what the suite asserts, it checks what is particular to HTTP: the stream's content type and opening
//! (`retry:`, `welcome`, `inbox`, `following`), and that every reply has the status its error code calls for.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use kf_core::Engine;
use kf_core::cursor::Cursor;
use kf_core::model::Epoch;
use kf_core::model::{ConversationId, Seq};
use kf_core::testkit::transport::{Client, Ending, Refusal, Served, Transport};
use kf_transport_sse::SseConfig;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

use crate::common::{Item, Stream, post};

/// Receive buffer of every stream socket: small, so that a client that stops reading backs the server up soon.
const RECV_BUFFER: u32 = 8 * 1024;

/// The SSE transport, standalone ([`kf_transport_sse::serve`]), its heartbeat set to the engine's ping interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sse;

#[async_trait]
impl Transport for Sse {
    async fn serve(&self, engine: Engine) -> Box<dyn Served> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heartbeat = Duration::from_millis(engine.limits().ping_interval_ms);
        let config = SseConfig::default().heartbeat(heartbeat);
        let server = tokio::spawn(async move {
            let _ = kf_transport_sse::serve(listener, engine, config).await;
        });
        Box::new(SseServed { addr, server })
    }
}

struct SseServed {
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for SseServed {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[async_trait]
impl Served for SseServed {
    async fn connect(&self, token: &str) -> Result<Box<dyn Client>, Refusal> {
        let mut client = SseClient {
            addr: self.addr,
            token: token.to_owned(),
            stream: None,
            pending: VecDeque::new(),
            welcome: Value::Null,
            inbox: Value::Null,
            last_id: None,
            next_id: 0,
        };
        client.open().await?;
        Ok(Box::new(client))
    }
}

/// The HTTP status an `error` frame of `code` must come with.
fn status_of(code: &str) -> u16 {
    match code {
        "invalid_token" | "token_expired" => 401,
        "forbidden" => 403,
        "not_found" => 404,
        "invalid_state" => 409,
        "too_large" => 413,
        "rate_limited" | "too_many_connections" => 429,
        "unavailable" | "slow_consumer" => 503,
        "internal" => 500,
        _ => 400,
    }
}

enum Pulled {
    Frame(Option<String>, Value),
    Heartbeat,
    End,
}

struct SseClient {
    addr: SocketAddr,
    token: String,
    stream: Option<Stream>,
    /// Frames read but not handed out yet, with their event ids.
    pending: VecDeque<(Option<String>, Value)>,
    welcome: Value,
    inbox: Value,
    /// The id of the last event handed out: the resume cursor.
    last_id: Option<String>,
    next_id: u64,
}

impl SseClient {
    /// `GET /events` (with `Last-Event-ID` when resuming); reads the opening up to `following`.
    async fn open(&mut self) -> Result<(), Refusal> {
        self.stream = None;
        self.pending.clear();
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(RECV_BUFFER).expect("SO_RCVBUF");
        let tcp = socket.connect(self.addr).await.expect("connect");
        let bearer = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", bearer.as_str())];
        if let Some(id) = &self.last_id {
            headers.push(("Last-Event-ID", id.as_str()));
        }
        let mut stream = Stream::over(tcp, "/events", &headers).await;
        if stream.status != 200 {
            let error: Value = serde_json::from_slice(&stream.body).unwrap_or_else(|error| {
                panic!(
                    "refusal body is not JSON ({error}): {}",
                    String::from_utf8_lossy(&stream.body)
                )
            });
            let code = error["code"].as_str().unwrap_or_default();
            assert_eq!(
                stream.status,
                status_of(code),
                "status of a refused stream: {error}"
            );
            return Err(Refusal {
                error,
                close_code: None,
                status: Some(stream.status),
            });
        }
        assert_eq!(stream.header("content-type"), Some("text/event-stream"));
        assert!(
            matches!(stream.next_item().await, Item::Retry(_)),
            "the stream starts with retry:"
        );
        self.welcome = match stream.next_item().await {
            Item::Frame { frame, .. } if frame["type"] == "welcome" => frame,
            other => panic!("expected `welcome`, got {other:?}"),
        };
        self.stream = Some(stream);
        let mut inbox = false;
        loop {
            match self.pull().await {
                Pulled::Frame(_, frame) if frame["type"] == "inbox" && !inbox => {
                    self.inbox = frame;
                    inbox = true;
                }
                Pulled::Frame(_, frame) if frame["type"] == "following" => {
                    assert!(inbox, "`following` before `inbox`");
                    assert_eq!(frame["reset"], false, "{frame}");
                    return Ok(());
                }
                // Agents may receive `conversation` frames around the inbox.
                Pulled::Frame(id, frame) => self.pending.push_back((id, frame)),
                Pulled::Heartbeat => {}
                Pulled::End => panic!("the stream ended in its opening"),
            }
        }
    }

    async fn pull(&mut self) -> Pulled {
        let Some(stream) = self.stream.as_mut() else {
            panic!("no stream (resume after a cut or an end)");
        };
        loop {
            match stream.next_item().await {
                Item::Frame { id, frame } => return Pulled::Frame(id, frame),
                Item::Comment(_) => return Pulled::Heartbeat,
                Item::Retry(_) => {}
                Item::End => {
                    self.stream = None;
                    return Pulled::End;
                }
            }
        }
    }

    /// Hands a frame out: an event's id becomes the resume cursor.
    fn apply(&mut self, (id, frame): (Option<String>, Value)) -> Value {
        if frame["type"] == "event" {
            assert!(id.is_some(), "an `event` without `id:`: {frame}");
        }
        if id.is_some() {
            self.last_id = id;
        }
        frame
    }

    /// POSTs `fields` to `/{kind}`; returns the reply, checking its status.
    async fn post(&mut self, kind: &str, body: &str) -> Option<Value> {
        let reply = post(self.addr, &format!("/{kind}"), Some(&self.token), body).await;
        if reply.body.is_empty() {
            assert_eq!(reply.status, 204, "an empty reply to {kind} {body}");
            return None;
        }
        let frame = reply.json();
        let expected = match frame["type"].as_str() {
            Some("error") => status_of(frame["code"].as_str().unwrap_or_default()),
            _ => 200,
        };
        assert_eq!(
            reply.status, expected,
            "status of {frame} answering {kind} {body}"
        );
        Some(frame)
    }
}

#[async_trait]
impl Client for SseClient {
    fn welcome(&self) -> &Value {
        &self.welcome
    }

    fn inbox(&self) -> &Value {
        &self.inbox
    }

    async fn request(&mut self, mut frame: Value) -> Option<Value> {
        if frame["id"].is_null() {
            self.next_id += 1;
            frame["id"] = json!(format!("r-{}", self.next_id));
        }
        let Value::Object(mut fields) = frame else {
            panic!("a request is a JSON object");
        };
        let Some(Value::String(kind)) = fields.remove("type") else {
            panic!("a request has a string `type`");
        };
        self.post(&kind, &Value::Object(fields).to_string()).await
    }

    async fn request_text(&mut self, text: &str) -> Option<Value> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(mut fields)) if fields.get("type").is_some_and(Value::is_string) => {
                let Some(Value::String(kind)) = fields.remove("type") else {
                    unreachable!("checked above");
                };
                self.post(&kind, &Value::Object(fields).to_string()).await
            }
            // No type to put in the path: posted as a `send`.
            _ => self.post("send", text).await,
        }
    }

    async fn watch(&mut self, conversation: &str) -> Result<(), Value> {
        // The stream follows every conversation of its principal already. Check that this principal may watch
        // this one: a stream of just that conversation must open, or be refused with the error the suite expects.
        let socket = TcpSocket::new_v4().expect("socket");
        let tcp = socket.connect(self.addr).await.expect("connect");
        let bearer = format!("Bearer {}", self.token);
        let path = format!("/events?conversation={conversation}");
        let mut probe = Stream::over(tcp, &path, &[("Authorization", bearer.as_str())]).await;
        if probe.status != 200 {
            let error: Value = serde_json::from_slice(&probe.body).expect("JSON error body");
            let code = error["code"].as_str().unwrap_or_default();
            assert_eq!(
                probe.status,
                status_of(code),
                "status of a refused watch: {error}"
            );
            return Err(error);
        }
        let subscribed = probe.next_of("subscribed").await;
        assert_eq!(subscribed["conversation"], conversation, "{subscribed}");
        Ok(())
    }

    async fn replay(&mut self, conversation: &str, after: u64) -> Result<(Value, Vec<Value>), Value> {
        // A stream of just that conversation, resumed from a cursor at `after` (as a page that kept one would).
        let epoch = Epoch(self.welcome["epoch"].as_str().unwrap_or_default().to_owned());
        let mut cursor = Cursor::new(&epoch);
        let id: ConversationId = conversation.parse().expect("conversation id");
        cursor.advance(id, Seq(after));
        let socket = TcpSocket::new_v4().expect("socket");
        let tcp = socket.connect(self.addr).await.expect("connect");
        let bearer = format!("Bearer {}", self.token);
        let path = format!("/events?conversation={conversation}&cursor={}", cursor.encode());
        let mut stream = Stream::over(tcp, &path, &[("Authorization", bearer.as_str())]).await;
        if stream.status != 200 {
            let error: Value = serde_json::from_slice(&stream.body).expect("JSON error body");
            let code = error["code"].as_str().unwrap_or_default();
            assert_eq!(
                stream.status,
                status_of(code),
                "status of a refused replay: {error}"
            );
            return Err(error);
        }
        let subscribed = stream.next_of("subscribed").await;
        let last = subscribed["last_seq"].as_u64().unwrap_or_default();
        let mut events = Vec::new();
        while events
            .last()
            .and_then(|e: &Value| e["seq"].as_u64())
            .unwrap_or(after)
            < last
        {
            let frame = stream.next_of("event").await;
            assert_eq!(frame["conversation"], conversation, "{frame}");
            events.push(frame);
        }
        Ok((subscribed, events))
    }

    async fn next_frame(&mut self) -> Value {
        let next = match self.pending.pop_front() {
            Some(next) => next,
            None => loop {
                match self.pull().await {
                    Pulled::Frame(id, frame) => break (id, frame),
                    Pulled::Heartbeat => {}
                    Pulled::End => panic!("the stream ended while waiting for a frame"),
                }
            },
        };
        self.apply(next)
    }

    async fn drain(&mut self) -> Vec<Value> {
        let mut heartbeats = 0;
        while heartbeats < 2 {
            match self.pull().await {
                Pulled::Frame(id, frame) => self.pending.push_back((id, frame)),
                Pulled::Heartbeat => heartbeats += 1,
                Pulled::End => panic!("the stream ended while draining"),
            }
        }
        let pending: Vec<_> = self.pending.drain(..).collect();
        pending.into_iter().map(|next| self.apply(next)).collect()
    }

    async fn heartbeat(&mut self) {
        loop {
            match self.pull().await {
                Pulled::Heartbeat => return,
                Pulled::Frame(id, frame) => self.pending.push_back((id, frame)),
                Pulled::End => panic!("the stream ended while waiting for a heartbeat"),
            }
        }
    }

    async fn cut(&mut self) {
        self.stream = None;
        self.pending.clear();
    }

    async fn resume(&mut self) {
        if let Err(refusal) = self.open().await {
            panic!("resume refused: {refusal:?}");
        }
    }

    async fn stall(&mut self) {
        // Simply read nothing until `end`.
    }

    async fn end(&mut self) -> Ending {
        let mut frames: Vec<(Option<String>, Value)> = self.pending.drain(..).collect();
        while self.stream.is_some() {
            match self.pull().await {
                Pulled::Frame(id, frame) => frames.push((id, frame)),
                Pulled::Heartbeat | Pulled::End => {}
            }
        }
        let frames = frames.into_iter().map(|next| self.apply(next)).collect();
        Ending {
            frames,
            close_code: None,
        }
    }
}
