//! The WebSocket adapter of kf-core's transport conformance suite ([`kf_core::testkit::transport`]), for this
//! crate's tests and for other crates' mixed tests (feature `testkit`):
//!
//! ```ignore
//! kf_core::transport_conformance_tests!(std::sync::Arc::new(kf_transport_ws::testkit::Ws));
//! ```
//!
//! The adapter is a client as `docs/protocol.md` §17 describes it: `hello` on connect, `subscribe` per watched
//! conversation, `pong` to every server `ping`, and on resume `hello` again plus `subscribe` after the last seq it
//! applied of each watched conversation (with the epoch of its cursors). It panics (failing the scenario) when the
//! server does not behave.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use kf_core::Engine;
use kf_core::testkit::transport::{Client, Ending, Refusal, Served, Transport, WAIT};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::WsConfig;

fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error:?}"),
    }
}

/// How a connection ended, seen from the client.
#[derive(Debug)]
enum Ended {
    /// A close frame with this code.
    Close(u16),
    /// A close frame without a code, or the socket ended without one (why: shown in panic messages).
    Dropped(#[allow(dead_code)] String),
}

/// One WebSocket connection of the adapter.
struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let socket = must(TcpSocket::new_v4(), "socket");
        must(socket.set_recv_buffer_size(RECV_BUFFER), "SO_RCVBUF");
        let stream = must(socket.connect(addr).await, "connect");
        let (ws, response) = must(
            tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream).await,
            "websocket handshake",
        );
        assert_eq!(response.status(), 101);
        Conn { ws }
    }

    async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        must(self.ws.send(Message::text(text)).await, "send");
    }

    /// The next text frame, or how the connection ended. Panics after [`WAIT`].
    async fn receive_or_end(&mut self) -> Result<Value, Ended> {
        loop {
            let next = must(
                tokio::time::timeout(WAIT, self.ws.next()).await,
                "waiting for a frame",
            );
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Ok(must(serde_json::from_str(text.as_str()), "JSON frame"));
                }
                Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => {
                    return Err(Ended::Close(code.into()));
                }
                Some(Ok(Message::Close(None))) => return Err(Ended::Dropped("close without a code".into())),
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(Ended::Dropped(error.to_string())),
                None => return Err(Ended::Dropped("end of stream".into())),
            }
        }
    }
}

/// Receive buffer of every client socket: small, so that a client that stops reading backs the server up soon.
const RECV_BUFFER: u32 = 8 * 1024;

/// The WebSocket transport, standalone ([`kf_transport_ws::serve`]) with its default settings, which take the
/// engine's limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ws;

#[async_trait]
impl Transport for Ws {
    async fn serve(&self, engine: Engine) -> Box<dyn Served> {
        let listener = must(TcpListener::bind("127.0.0.1:0").await, "bind");
        let addr = must(listener.local_addr(), "local address");
        let server = tokio::spawn(async move {
            let _ = crate::serve(listener, engine, WsConfig::default()).await;
        });
        Box::new(WsServed { addr, server })
    }
}

struct WsServed {
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for WsServed {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[async_trait]
impl Served for WsServed {
    async fn connect(&self, token: &str) -> Result<Box<dyn Client>, Refusal> {
        let mut client = WsClient {
            addr: self.addr,
            token: token.to_owned(),
            conn: None,
            pending: VecDeque::new(),
            welcome: Value::Null,
            inbox: Value::Null,
            epoch: Value::Null,
            applied: HashMap::new(),
            watched: Vec::new(),
            next_id: 0,
        };
        client.hello().await?;
        Ok(Box::new(client))
    }
}

/// What one read from the socket gave.
enum Pulled {
    Frame(Value),
    /// A server `ping` (already answered).
    Heartbeat,
    End(Ended),
}

struct WsClient {
    addr: SocketAddr,
    token: String,
    conn: Option<Conn>,
    /// Frames read but not handed out yet.
    pending: VecDeque<Value>,
    welcome: Value,
    inbox: Value,
    /// The epoch the applied seqs count in.
    epoch: Value,
    /// The last applied seq of each conversation.
    applied: HashMap<String, u64>,
    /// Conversations to resubscribe on resume, in the order they were watched.
    watched: Vec<String>,
    next_id: u64,
}

impl WsClient {
    /// Connects and says hello; reads `welcome` and everything up to `inbox`.
    async fn hello(&mut self) -> Result<(), Refusal> {
        let mut conn = Conn::open(self.addr).await;
        conn.send(json!({"type": "hello", "id": "hello", "v": 1, "token": self.token}))
            .await;
        self.pending.clear();
        let first = conn.receive_or_end().await;
        match first {
            Ok(frame) if frame["type"] == "welcome" => self.welcome = frame,
            Ok(frame) => {
                let close_code = match conn.receive_or_end().await {
                    Err(Ended::Close(code)) => Some(code),
                    Err(_) => None,
                    Ok(next) => panic!("frames after a refused hello: {frame} then {next}"),
                };
                return Err(Refusal {
                    error: frame,
                    close_code,
                    status: None,
                });
            }
            Err(ended) => panic!("connection ended before welcome: {ended:?}"),
        }
        self.conn = Some(conn);
        loop {
            match self.pull().await {
                Pulled::Frame(frame) if frame["type"] == "inbox" => {
                    self.inbox = frame;
                    break;
                }
                // Agents may receive `conversation` frames before the inbox.
                Pulled::Frame(frame) => self.pending.push_back(frame),
                Pulled::Heartbeat => {}
                Pulled::End(ended) => panic!("connection ended before inbox: {ended:?}"),
            }
        }
        Ok(())
    }

    fn conn(&mut self) -> &mut Conn {
        match self.conn.as_mut() {
            Some(conn) => conn,
            None => panic!("not connected (resume after a cut or an end)"),
        }
    }

    async fn pull(&mut self) -> Pulled {
        match self.conn().receive_or_end().await {
            Ok(frame) if frame["type"] == "ping" => {
                self.conn().send(json!({"type": "pong"})).await;
                Pulled::Heartbeat
            }
            Ok(frame) => Pulled::Frame(frame),
            Err(ended) => {
                self.conn = None;
                Pulled::End(ended)
            }
        }
    }

    /// Records the event frames about to be handed out as applied.
    fn apply(&mut self, frame: &Value) {
        if frame["type"] == "event"
            && let (Some(conversation), Some(seq)) = (frame["conversation"].as_str(), frame["seq"].as_u64())
        {
            let applied = self.applied.entry(conversation.to_owned()).or_default();
            *applied = (*applied).max(seq);
        }
    }

    /// Sends `text`, then a `ping` (unless `text` is the ping), and reads until the `pong`: replies come in request
    /// order, so the answer to `text`, if any, is among the frames before it. Returns those frames.
    async fn round_trip(&mut self, text: &str, is_ping: bool) -> Vec<Value> {
        self.conn().send_text(text).await;
        if !is_ping {
            self.conn().send(json!({"type": "ping"})).await;
        }
        let mut frames = Vec::new();
        loop {
            match self.pull().await {
                Pulled::Frame(frame) if frame["type"] == "pong" => {
                    if is_ping {
                        frames.push(frame);
                    }
                    return frames;
                }
                Pulled::Frame(frame) => frames.push(frame),
                Pulled::Heartbeat => {}
                Pulled::End(ended) => panic!("connection ended during a request: {ended:?} after {frames:?}"),
            }
        }
    }

    /// Takes the reply out of `frames` (the frame carrying `id`, or for a request without one the first `error`
    /// without id / the `pong`); the rest stays for `next_frame`.
    fn take_reply(&mut self, frames: Vec<Value>, id: Option<&str>) -> Option<Value> {
        let mut reply = None;
        for frame in frames {
            let matches = match id {
                Some(id) => frame["id"] == id && frame["type"] != "event",
                None => frame["id"].is_null() && (frame["type"] == "error" || frame["type"] == "pong"),
            };
            if matches && reply.is_none() {
                reply = Some(frame);
            } else {
                self.pending.push_back(frame);
            }
        }
        reply
    }
}

#[async_trait]
impl Client for WsClient {
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
        let id = frame["id"].as_str().unwrap_or_default().to_owned();
        let is_ping = frame["type"] == "ping";
        let frames = self.round_trip(&frame.to_string(), is_ping).await;
        // `pong` carries no id.
        self.take_reply(frames, if is_ping { None } else { Some(&id) })
    }

    async fn request_text(&mut self, text: &str) -> Option<Value> {
        let frames = self.round_trip(text, false).await;
        self.take_reply(frames, None)
    }

    async fn watch(&mut self, conversation: &str) -> Result<(), Value> {
        let after = self.applied.get(conversation).copied().unwrap_or(0);
        let subscribe = json!({"type": "subscribe", "conversation": conversation, "after": after,
                               "epoch": self.epoch_for_cursors()});
        match self.request(subscribe).await {
            Some(reply) if reply["type"] == "subscribed" => {
                assert_eq!(reply["after"], after, "{reply}");
                if !self.watched.iter().any(|c| c == conversation) {
                    self.watched.push(conversation.to_owned());
                }
                Ok(())
            }
            Some(error) if error["type"] == "error" => Err(error),
            other => panic!("subscribe answered {other:?}"),
        }
    }

    async fn replay(&mut self, conversation: &str, after: u64) -> Result<(Value, Vec<Value>), Value> {
        let subscribe = json!({"type": "subscribe", "conversation": conversation, "after": after,
                               "epoch": self.welcome["epoch"]});
        let subscribed = match self.request(subscribe).await {
            Some(reply) if reply["type"] == "subscribed" => reply,
            Some(error) if error["type"] == "error" => return Err(error),
            other => panic!("subscribe answered {other:?}"),
        };
        let last = subscribed["last_seq"].as_u64().unwrap_or_default();
        // The events of the replay may already be among the frames read with the reply.
        let mut events = Vec::new();
        let mut rest = VecDeque::new();
        while let Some(frame) = self.pending.pop_front() {
            if frame["type"] == "event" && frame["conversation"] == conversation {
                events.push(frame);
            } else {
                rest.push_back(frame);
            }
        }
        self.pending = rest;
        while events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(after) < last {
            match self.pull().await {
                Pulled::Frame(frame) if frame["type"] == "event" && frame["conversation"] == conversation => {
                    events.push(frame)
                }
                Pulled::Frame(frame) => self.pending.push_back(frame),
                Pulled::Heartbeat => {}
                Pulled::End(ended) => panic!("connection ended during a replay: {ended:?}"),
            }
        }
        Ok((subscribed, events))
    }

    async fn next_frame(&mut self) -> Value {
        let frame = match self.pending.pop_front() {
            Some(frame) => frame,
            None => loop {
                match self.pull().await {
                    Pulled::Frame(frame) => break frame,
                    Pulled::Heartbeat => {}
                    Pulled::End(ended) => panic!("connection ended while waiting for a frame: {ended:?}"),
                }
            },
        };
        self.apply(&frame);
        frame
    }

    async fn drain(&mut self) -> Vec<Value> {
        let frames = self.round_trip(&json!({"type": "ping"}).to_string(), true).await;
        self.take_reply(frames, None);
        let frames: Vec<Value> = self.pending.drain(..).collect();
        for frame in &frames {
            self.apply(frame);
        }
        frames
    }

    async fn heartbeat(&mut self) {
        loop {
            match self.pull().await {
                Pulled::Heartbeat => return,
                Pulled::Frame(frame) => self.pending.push_back(frame),
                Pulled::End(ended) => panic!("connection ended while waiting for a heartbeat: {ended:?}"),
            }
        }
    }

    async fn cut(&mut self) {
        // Dropping the stream closes the TCP connection without a WebSocket close handshake.
        self.conn = None;
        self.pending.clear();
    }

    async fn resume(&mut self) {
        self.conn = None;
        let epoch = self.epoch_for_cursors();
        if let Err(refusal) = self.hello().await {
            panic!("resume refused: {refusal:?}");
        }
        for conversation in self.watched.clone() {
            let after = self.applied.get(&conversation).copied().unwrap_or(0);
            let subscribe =
                json!({"type": "subscribe", "conversation": conversation, "after": after, "epoch": epoch});
            match self.request(subscribe).await {
                Some(reply) if reply["type"] == "subscribed" => {
                    assert_eq!(reply["reset"], false, "{reply}");
                    assert_eq!(reply["after"], after, "{reply}");
                }
                other => panic!("resubscribe answered {other:?}"),
            }
        }
    }

    async fn stall(&mut self) {
        // Simply read nothing until `end`.
    }

    async fn end(&mut self) -> Ending {
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        let close_code = loop {
            if self.conn.is_none() {
                break None;
            }
            match self.pull().await {
                Pulled::Frame(frame) => frames.push(frame),
                Pulled::Heartbeat => {}
                Pulled::End(Ended::Close(code)) => break Some(code),
                Pulled::End(_) => break None,
            }
        };
        for frame in &frames {
            self.apply(frame);
        }
        Ending { frames, close_code }
    }
}

impl WsClient {
    /// The epoch this client's cursors count in: the first session's.
    fn epoch_for_cursors(&mut self) -> Value {
        if self.epoch.is_null() {
            self.epoch = self.welcome["epoch"].clone();
        }
        self.epoch.clone()
    }
}
