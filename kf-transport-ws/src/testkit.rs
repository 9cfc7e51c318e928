//! WebSocket test helpers (feature `testkit`): the one WebSocket test client ([`WsClient`]), a server on
//! `127.0.0.1:0` ([`start`]), a few protocol steps on a client ([`open`], [`subscribe`], [`say`],
//! [`events_until`]), and the WebSocket adapter of kf-core's transport conformance suite
//! ([`kf_core::testkit::transport`]), [`Ws`], for this crate's tests and for other crates' mixed tests:
//!
//! ```ignore
//! kf_core::transport_conformance_tests!(std::sync::Arc::new(kf_transport_ws::testkit::Ws));
//! ```
//!
//! Tokens, identities and engines come from [`kf_core::testkit::shop`].
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
use kf_core::auth::Identity;
use kf_core::testkit::shop::{self, WAIT};
use kf_core::testkit::transport::{Client, Ending, Refusal, Served, Transport};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::WsConfig;

fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error:?}"),
    }
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code and reason.
    Close(u16, String),
    /// A close frame without a code.
    CloseWithoutCode,
    /// The socket ended without a close frame (or failed): why.
    Dropped(String),
}

/// A WebSocket test client over tokio-tungstenite, speaking the kf protocol as JSON text frames: connect (to
/// `/ws` or any path, optionally over a socket of the test's choosing), `hello` with a token, send frames (or
/// raw text, binary, any message), and read the next frame, the next of a type, the reply to a request id, or
/// everything until the connection ends and how (close code). Reads panic after [`WAIT`].
///
/// Frames skipped while waiting for another type or id are kept and handed out by later reads
/// ([`WsClient::next`], [`WsClient::next_of`]…); [`WsClient::receive_or_end`] reads the socket directly. Server
/// `ping` frames are frames like any other, unless [`WsClient::answering_pings`] is set (as a browser page does).
///
/// ```ignore
/// let addr = kf_transport_ws::testkit::start(&engine, WsConfig::default()).await;
/// let mut client = WsClient::hello(addr, &token(&visitor("v-1"))).await;
/// client.send(json!({"type": "open", "id": "o", "client_id": "open-1"})).await;
/// let opened = client.next_of_id("o").await;
/// ```
#[derive(Debug)]
pub struct WsClient {
    ws: WebSocketStream<TcpStream>,
    /// Frames received but not yet asked for (skipped while waiting for another type or id).
    pending: VecDeque<Value>,
    /// Whether server `ping` frames are answered with `pong` and skipped.
    answer_pings: bool,
    /// The `welcome` frame of the `hello` (null before it).
    pub welcome: Value,
    /// The `inbox` frame that followed `welcome` (null before it).
    pub inbox: Value,
}

impl WsClient {
    /// Connects to `ws://addr/path`.
    pub async fn connect_path(addr: SocketAddr, path: &str) -> WsClient {
        let stream = must(TcpStream::connect(addr).await, "tcp connect");
        Self::over(stream, addr, path).await
    }

    /// Connects to `ws://addr/ws`.
    pub async fn connect(addr: SocketAddr) -> WsClient {
        Self::connect_path(addr, "/ws").await
    }

    /// Runs the WebSocket handshake for `ws://addr/path` over an already connected stream (a socket with options
    /// of the test's choosing).
    pub async fn over(stream: TcpStream, addr: SocketAddr, path: &str) -> WsClient {
        must(Self::try_over(stream, addr, path).await, "websocket handshake")
    }

    /// [`WsClient::over`] that says why the handshake failed instead of panicking, for clients that expect a
    /// hostile network (the fault-injection suite's). It has no timeout of its own.
    pub async fn try_over(stream: TcpStream, addr: SocketAddr, path: &str) -> Result<WsClient, Ended> {
        let url = format!("ws://{addr}{path}");
        let (ws, response) = tokio_tungstenite::client_async(url, stream)
            .await
            .map_err(|error| Ended::Dropped(format!("websocket handshake: {error}")))?;
        if response.status() != 101 {
            return Err(Ended::Dropped(format!(
                "websocket handshake answered {}",
                response.status()
            )));
        }
        Ok(WsClient {
            ws,
            pending: VecDeque::new(),
            answer_pings: false,
            welcome: Value::Null,
            inbox: Value::Null,
        })
    }

    /// Connects to `ws://addr/ws` as a page of `origin` would (its handshake carries `Origin: origin`); says why
    /// the handshake failed (a refused origin gets `403`) instead of panicking.
    pub async fn try_connect_from(addr: SocketAddr, origin: &str) -> Result<WsClient, Ended> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::HeaderValue;

        let mut request = must(format!("ws://{addr}/ws").into_client_request(), "request");
        let origin = must(HeaderValue::from_str(origin), "origin header");
        request.headers_mut().insert("origin", origin);
        let stream = must(TcpStream::connect(addr).await, "tcp connect");
        let (ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|error| Ended::Dropped(format!("websocket handshake: {error}")))?;
        Ok(WsClient {
            ws,
            pending: VecDeque::new(),
            answer_pings: false,
            welcome: Value::Null,
            inbox: Value::Null,
        })
    }

    /// Connects to `ws://addr/ws` and says hello with `token` ([`WsClient::say_hello`]).
    pub async fn hello(addr: SocketAddr, token: &str) -> WsClient {
        Self::hello_path(addr, "/ws", token).await
    }

    /// Connects to `ws://addr/path` and says hello with `token` ([`WsClient::say_hello`]).
    pub async fn hello_path(addr: SocketAddr, path: &str, token: &str) -> WsClient {
        let mut client = Self::connect_path(addr, path).await;
        client.say_hello(token).await;
        client
    }

    /// Says hello with `token` over an already connected stream (`/ws`).
    pub async fn hello_over(stream: TcpStream, addr: SocketAddr, token: &str) -> WsClient {
        let mut client = Self::over(stream, addr, "/ws").await;
        client.say_hello(token).await;
        client
    }

    /// Connects as `identity`, with a token from [`shop::token`].
    pub async fn as_identity(addr: SocketAddr, identity: &Identity) -> WsClient {
        Self::hello(addr, &shop::token(identity)).await
    }

    /// Sends `hello` with `token`; expects `welcome` then `inbox` (kept in [`WsClient::welcome`] and
    /// [`WsClient::inbox`]).
    pub async fn say_hello(&mut self, token: &str) {
        self.send(json!({"type": "hello", "v": 1, "token": token})).await;
        self.welcome = self.expect("welcome").await;
        self.inbox = self.expect("inbox").await;
    }

    /// From now on, answers every server `ping` with `pong` and skips it, as a browser page does.
    #[must_use]
    pub fn answering_pings(mut self) -> Self {
        self.answer_pings = true;
        self
    }

    /// The TCP socket under the WebSocket (to probe it without reading).
    pub fn socket(&self) -> &TcpStream {
        self.ws.get_ref()
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends raw text as a text message.
    pub async fn send_text(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    /// Sends any WebSocket message.
    pub async fn send_message(&mut self, message: Message) {
        must(self.ws.send(message).await, "send");
    }

    /// Sends a frame; says how the connection ended when it cannot be written, instead of panicking.
    pub async fn try_send(&mut self, frame: &Value) -> Result<(), Ended> {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|error| Ended::Dropped(error.to_string()))
    }

    /// Sends a raw binary message.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.send_message(Message::Binary(Bytes::copy_from_slice(data)))
            .await;
    }

    /// The next frame from the server (pending ones first). Panics on the end of the connection or after
    /// [`WAIT`].
    pub async fn next(&mut self) -> Value {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        self.receive().await
    }

    async fn receive(&mut self) -> Value {
        match self.receive_or_end().await {
            Ok(frame) => frame,
            Err(ended) => panic!("the connection ended while waiting for a frame: {ended:?}"),
        }
    }

    /// The next text frame straight from the socket (pending ones are not looked at), or how the connection
    /// ended. Panics after [`WAIT`].
    pub async fn receive_or_end(&mut self) -> Result<Value, Ended> {
        match self.receive_within(WAIT).await {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => panic!("waiting for a frame failed: no frame within {WAIT:?}"),
            Err(ended) => Err(ended),
        }
    }

    /// The next text frame straight from the socket (pending ones are not looked at) if one comes within
    /// `timeout` (`Ok(None)` if none does), or how the connection ended — a frame that is not JSON or a binary
    /// message ends it too. Never panics. Cancel safe unless [`WsClient::answering_pings`] is set: a frame that
    /// was not returned stays in the socket's buffer.
    pub async fn receive_within(&mut self, timeout: std::time::Duration) -> Result<Option<Value>, Ended> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.ws.next()).await else {
                return Ok(None);
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str())
                        .map_err(|error| Ended::Dropped(format!("a frame that is not JSON: {error}")))?;
                    if self.answer_pings && frame["type"] == "ping" {
                        self.try_send(&json!({"type": "pong"})).await?;
                        continue;
                    }
                    return Ok(Some(frame));
                }
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return Err(Ended::Close(code.into(), reason.to_string()));
                }
                Some(Ok(Message::Close(None))) => return Err(Ended::CloseWithoutCode),
                Some(Ok(Message::Binary(_))) => {
                    return Err(Ended::Dropped("the server sent a binary frame".into()));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(Ended::Dropped(error.to_string())),
                None => return Err(Ended::Dropped("end of stream".into())),
            }
        }
    }

    /// The next frame matching `wanted`; other frames are kept for later calls.
    pub async fn next_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.pending.iter().position(&wanted)
            && let Some(frame) = self.pending.remove(index)
        {
            return frame;
        }
        loop {
            let frame = self.receive().await;
            if wanted(&frame) {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// The next frame of type `kind`; frames of other types are kept for later calls.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        self.next_where(|frame| frame["type"] == kind).await
    }

    /// The next frame answering request `id` (a reply or an error); other frames are kept for later calls.
    pub async fn next_of_id(&mut self, id: &str) -> Value {
        self.next_where(|frame| frame["id"] == id).await
    }

    /// The next frame of type `kind`, asserting that no other frame comes first (pending ones included).
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], kind, "expected `{kind}`, got {frame}");
        frame
    }

    /// The next `event` frame.
    pub async fn next_event(&mut self) -> Value {
        self.next_of("event").await
    }

    /// Sends `ping` and returns every frame received before the `pong` (pending ones included).
    pub async fn until_pong(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        loop {
            let frame = self.receive().await;
            if frame["type"] == "pong" {
                return frames;
            }
            frames.push(frame);
        }
    }

    /// Reads until the connection ends; returns the frames received before (pending ones included) and how it
    /// ended.
    pub async fn until_end(&mut self) -> (Vec<Value>, Ended) {
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        loop {
            match self.receive_or_end().await {
                Ok(frame) => frames.push(frame),
                Err(ended) => return (frames, ended),
            }
        }
    }

    /// Asserts that the server closes the connection with `code`; returns the frames received before.
    pub async fn expect_close(&mut self, code: u16) -> Vec<Value> {
        let (frames, ended) = self.until_end().await;
        match ended {
            Ended::Close(got, _) => assert_eq!(got, code, "close code (frames before: {frames:?})"),
            other => panic!("expected close {code}, got {other:?} (frames before: {frames:?})"),
        }
        frames
    }

    /// Sends a close frame with `code` and `reason` (without waiting for the server's answer); says how the
    /// connection ended when it cannot be written.
    pub async fn try_close(&mut self, code: u16, reason: &str) -> Result<(), Ended> {
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.to_owned().into(),
        };
        self.ws
            .send(Message::Close(Some(frame)))
            .await
            .map_err(|error| Ended::Dropped(error.to_string()))
    }

    /// Closes the connection politely (a close frame, then reads until the server's answer).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }

    /// Drops the TCP connection without a close frame.
    pub fn vanish(self) {
        drop(self);
    }
}

/// Serves `engine` on `127.0.0.1:0` with [`crate::serve`] and `config`, in a task that runs until the test's
/// runtime ends; returns the address.
pub async fn start(engine: &Engine, config: WsConfig) -> SocketAddr {
    let listener = must(TcpListener::bind("127.0.0.1:0").await, "bind");
    let addr = must(listener.local_addr(), "local address");
    let engine = engine.clone();
    tokio::spawn(async move { crate::serve(listener, engine, config).await });
    addr
}

/// Opens a conversation as a visitor (request id `open`); returns its id.
pub async fn open(client: &mut WsClient, client_id: &str) -> String {
    client
        .send(json!({"type": "open", "client_id": client_id, "id": "open"}))
        .await;
    let opened = client.next_of("opened").await;
    match opened["conversation"]["id"].as_str() {
        Some(id) => id.to_owned(),
        None => panic!("no conversation id in {opened}"),
    }
}

/// Subscribes after `after` (request id `sub`); waits for `subscribed`.
pub async fn subscribe(client: &mut WsClient, conversation: &str, after: u64) {
    client
        .send(json!({"type": "subscribe", "conversation": conversation, "after": after, "id": "sub"}))
        .await;
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["after"], after, "{subscribed}");
}

/// Sends a message (request id: its client id) and returns its `ack`.
pub async fn say(client: &mut WsClient, conversation: &str, client_id: &str, text: &str) -> Value {
    client
        .send(json!({"type": "send", "conversation": conversation, "client_id": client_id, "body": {"text": text}, "id": client_id}))
        .await;
    let ack = client.next_of("ack").await;
    assert_eq!(ack["client_id"], client_id, "{ack}");
    ack
}

/// Collects `event` frames (of any conversation) until one has seq `last`; other frames are kept.
pub async fn events_until(client: &mut WsClient, last: u64) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = client.next_event().await;
        let seq = match event["seq"].as_u64() {
            Some(seq) => seq,
            None => panic!("no seq in {event}"),
        };
        events.push(event);
        if seq >= last {
            return events;
        }
    }
}

/// Receive buffer of every client socket: small, so that a client that stops reading backs the server up soon.
const RECV_BUFFER: u32 = 8 * 1024;

/// Connects to `/ws` over a socket with a small receive buffer ([`RECV_BUFFER`]).
async fn open_small(addr: SocketAddr) -> WsClient {
    let socket = must(TcpSocket::new_v4(), "socket");
    must(socket.set_recv_buffer_size(RECV_BUFFER), "SO_RCVBUF");
    let stream = must(socket.connect(addr).await, "connect");
    WsClient::over(stream, addr, "/ws").await
}

/// The WebSocket transport, standalone ([`crate::serve`]) with its default settings, which take the
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
        let mut client = Session {
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

struct Session {
    addr: SocketAddr,
    token: String,
    conn: Option<WsClient>,
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

impl Session {
    /// Connects and says hello; reads `welcome` and everything up to `inbox`.
    async fn hello(&mut self) -> Result<(), Refusal> {
        let mut conn = open_small(self.addr).await;
        conn.send(json!({"type": "hello", "id": "hello", "v": 1, "token": self.token}))
            .await;
        self.pending.clear();
        let first = conn.receive_or_end().await;
        match first {
            Ok(frame) if frame["type"] == "welcome" => self.welcome = frame,
            Ok(frame) => {
                let close_code = match conn.receive_or_end().await {
                    Err(Ended::Close(code, _)) => Some(code),
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

    fn conn(&mut self) -> &mut WsClient {
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
impl Client for Session {
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
                Pulled::End(Ended::Close(code, _)) => break Some(code),
                Pulled::End(_) => break None,
            }
        };
        for frame in &frames {
            self.apply(frame);
        }
        Ending { frames, close_code }
    }
}

impl Session {
    /// The epoch this client's cursors count in: the first session's.
    fn epoch_for_cursors(&mut self) -> Value {
        if self.epoch.is_null() {
            self.epoch = self.welcome["epoch"].clone();
        }
        self.epoch.clone()
    }
}
