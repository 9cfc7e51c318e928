//! Test helpers: an engine with a group and agents, a server on 127.0.0.1:0, and a small WebSocket client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kf_core::Engine;
use kf_core::auth::{Identity, SignedTokens};
use kf_core::clock::SystemClock;
use kf_core::limits::Limits;
use kf_core::model::{Agent, AgentId, Event, Group, GroupId, TenantId, VisitorId};
use kf_core::store::{MemoryStore, Store};
use kf_transport_ws::WsConfig;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// The key every test signs its tokens with.
pub const KEY: &[u8; 32] = b"kf-transport-ws-test-key-0123456";
/// How long a test waits for something it expects before failing.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn tenant() -> TenantId {
    TenantId::new("shop").expect("tenant id")
}

pub fn tokens() -> SignedTokens {
    SignedTokens::new(KEY, Arc::new(SystemClock)).expect("key")
}

/// Builds an engine over `store` with group "support" and agents `agents` (capacity 5) in tenant "shop".
pub async fn engine_with(store: Arc<dyn Store>, limits: Limits, agents: &[&str]) -> Engine {
    let engine = Engine::builder(store, Arc::new(tokens()))
        .limits(limits)
        .presence_grace(Duration::ZERO)
        .build()
        .await
        .expect("engine");
    let group = GroupId::new("support").expect("group id");
    engine
        .put_group(Group::new(tenant(), group.clone(), "Support"))
        .await
        .expect("group");
    for agent in agents {
        engine
            .put_agent(
                Agent::new(
                    tenant(),
                    AgentId::new(*agent).expect("agent id"),
                    agent.to_string(),
                    5,
                )
                .with_groups(vec![group.clone()]),
            )
            .await
            .expect("agent");
    }
    engine
}

/// An engine over a fresh [`MemoryStore`] with agent "alice".
pub async fn engine(limits: Limits) -> Engine {
    engine_with(Arc::new(MemoryStore::new()), limits, &["alice"]).await
}

/// Serves `engine` on 127.0.0.1:0 with [`kf_transport_ws::serve`]; returns the address.
pub async fn start(engine: &Engine, config: WsConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let engine = engine.clone();
    tokio::spawn(async move { kf_transport_ws::serve(listener, engine, config).await });
    addr
}

pub fn visitor(id: &str) -> Identity {
    Identity::visitor(tenant(), VisitorId::new(id).expect("visitor id"))
}

pub fn agent(id: &str) -> Identity {
    Identity::agent(tenant(), AgentId::new(id).expect("agent id"))
}

pub fn token(identity: &Identity) -> String {
    tokens().issue(identity, Duration::from_secs(3600))
}

/// The seqs of a list of `event` frames.
pub fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect()
}

/// Every event of a conversation in the store.
pub async fn stored(engine: &Engine, conversation: &str) -> Vec<Event> {
    kf_core::testkit::transport::stored(engine, conversation).await
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code and reason.
    Close(u16, String),
    /// A close frame without a code.
    CloseWithoutCode,
    /// The socket ended without a close frame (or failed).
    Dropped(String),
}

/// A test client over tokio-tungstenite.
pub struct Client {
    ws: WebSocketStream<TcpStream>,
    /// Frames received but not yet asked for (skipped while waiting for another type).
    pending: std::collections::VecDeque<Value>,
    /// The `inbox` frame that followed `welcome` (null before hello).
    pub inbox: Value,
}

impl Client {
    /// Connects to `ws://addr/path`.
    pub async fn connect_path(addr: SocketAddr, path: &str) -> Client {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        Self::over(stream, addr, path).await
    }

    /// Connects to `ws://addr/ws`.
    pub async fn connect(addr: SocketAddr) -> Client {
        Self::connect_path(addr, "/ws").await
    }

    /// Runs the WebSocket handshake over an already connected stream.
    pub async fn over(stream: TcpStream, addr: SocketAddr, path: &str) -> Client {
        let url = format!("ws://{addr}{path}");
        let (ws, response) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("websocket handshake");
        assert_eq!(response.status(), 101);
        Client {
            ws,
            pending: Default::default(),
            inbox: Value::Null,
        }
    }

    /// Connects and says hello with `token`; expects `welcome` then `inbox` (kept in [`Client::inbox`]).
    pub async fn hello(addr: SocketAddr, token: &str) -> Client {
        let mut client = Self::connect(addr).await;
        client
            .send(json!({"type": "hello", "v": 1, "token": token}))
            .await;
        client.expect("welcome").await;
        client.inbox = client.expect("inbox").await;
        client
    }

    /// Says hello with `token` over an already connected stream (a socket with options of the test's choosing).
    pub async fn hello_over(stream: TcpStream, addr: SocketAddr, token: &str) -> Client {
        let mut client = Self::over(stream, addr, "/ws").await;
        client
            .send(json!({"type": "hello", "v": 1, "token": token}))
            .await;
        client.expect("welcome").await;
        client.inbox = client.expect("inbox").await;
        client
    }

    /// The TCP socket under the WebSocket (to probe it without reading).
    pub fn socket(&self) -> &TcpStream {
        self.ws.get_ref()
    }

    /// Connects as `identity`.
    pub async fn as_identity(addr: SocketAddr, identity: &Identity) -> Client {
        Self::hello(addr, &token(identity)).await
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_message(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next frame from the server (pending ones first). Panics on close or after [`WAIT`].
    pub async fn next(&mut self) -> Value {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        self.receive().await
    }

    async fn receive(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("read failed");
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("server frame is JSON");
                }
                Message::Close(frame) => panic!("closed while waiting for a frame: {frame:?}"),
                Message::Binary(_) => panic!("the server sent a binary frame"),
                _ => {}
            }
        }
    }

    /// The next text frame straight from the socket (pending ones are not looked at), or how the connection
    /// ended. Panics after [`WAIT`].
    pub async fn receive_or_end(&mut self) -> Result<Value, Ended> {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(text.as_str()).expect("server frame is JSON"));
                }
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return Err(Ended::Close(code.into(), reason.to_string()));
                }
                Some(Ok(Message::Close(None))) => return Err(Ended::CloseWithoutCode),
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(Ended::Dropped(error.to_string())),
                None => return Err(Ended::Dropped("end of stream".into())),
            }
        }
    }

    /// The next frame of type `kind`; frames of other types are kept for later calls.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        if let Some(index) = self.pending.iter().position(|frame| frame["type"] == kind) {
            return self.pending.remove(index).expect("index");
        }
        loop {
            let frame = self.receive().await;
            if frame["type"] == kind {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// The next frame answering request `id` (a reply or an error); other frames are kept for later calls.
    pub async fn next_of_id(&mut self, id: &str) -> Value {
        if let Some(index) = self.pending.iter().position(|frame| frame["id"] == id) {
            return self.pending.remove(index).expect("index");
        }
        loop {
            let frame = self.receive().await;
            if frame["id"] == id {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// The next frame of type `kind`, asserting that no other frame comes first (pending ones included).
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], kind, "expected `{kind}`, got {frame}");
        frame
    }

    /// The next `event` frame of `conversation`.
    pub async fn next_event(&mut self) -> Value {
        self.next_of("event").await
    }

    /// Sends `ping` and returns every frame received before the `pong`.
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

    /// Reads until the connection ends; returns the data frames received before and how it ended.
    pub async fn until_end(&mut self) -> (Vec<Value>, Ended) {
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for the end");
            match next {
                Some(Ok(Message::Text(text))) => {
                    frames.push(serde_json::from_str(text.as_str()).expect("JSON"))
                }
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return (frames, Ended::Close(code.into(), reason.to_string()));
                }
                Some(Ok(Message::Close(None))) => return (frames, Ended::CloseWithoutCode),
                Some(Ok(_)) => {}
                Some(Err(error)) => return (frames, Ended::Dropped(error.to_string())),
                None => return (frames, Ended::Dropped("end of stream".into())),
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

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }

    /// Drops the TCP connection without a close frame.
    pub fn vanish(self) {
        drop(self);
    }

    /// Sends a raw binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .send(Message::Binary(Bytes::copy_from_slice(data)))
            .await
            .expect("send");
    }
}

/// Opens a conversation as a visitor; returns its id.
pub async fn open(client: &mut Client, client_id: &str) -> String {
    client
        .send(json!({"type": "open", "client_id": client_id, "id": "open"}))
        .await;
    let opened = client.next_of("opened").await;
    opened["conversation"]["id"]
        .as_str()
        .expect("conversation id")
        .to_owned()
}

/// Subscribes after `after`; waits for `subscribed`.
pub async fn subscribe(client: &mut Client, conversation: &str, after: u64) {
    client
        .send(json!({"type": "subscribe", "conversation": conversation, "after": after, "id": "sub"}))
        .await;
    let subscribed = client.next_of("subscribed").await;
    assert_eq!(subscribed["after"], after, "{subscribed}");
}

/// Sends a message and returns its `ack`.
pub async fn say(client: &mut Client, conversation: &str, client_id: &str, text: &str) -> Value {
    client
        .send(json!({"type": "send", "conversation": conversation, "client_id": client_id, "body": {"text": text}, "id": client_id}))
        .await;
    let ack = client.next_of("ack").await;
    assert_eq!(ack["client_id"], client_id, "{ack}");
    ack
}

/// Collects `event` frames until one has seq `last`; other frames are kept.
pub async fn events_until(client: &mut Client, last: u64) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = client.next_event().await;
        let seq = event["seq"].as_u64().expect("seq");
        events.push(event);
        if seq >= last {
            return events;
        }
    }
}

/// Polls `condition` every few milliseconds until it holds; panics after [`WAIT`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
