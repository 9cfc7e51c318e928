//! The transport conformance suite: the delivery contract as a client sees it over a real socket, written once
//! against a small client adapter and run by every transport (WebSocket, SSE + HTTP POST).
//!
//! A transport's test crate implements three small traits:
//!
//! - [`Transport::serve`] starts a real server for an engine on `127.0.0.1:0` (honouring the engine's
//!   [`Limits`]: frame size, ping interval / heartbeat, idle timeout, outbound queue);
//! - [`Served::connect`] opens a session with a token, or reports how it was refused ([`Refusal`]);
//! - [`Client`] is one client of that session: requests upstream, frames downstream, and the moves the scenarios
//!   need (cut the connection, resume from what was applied, stop reading, wait for a heartbeat).
//!
//! then stamps the scenarios into its tests:
//!
//! ```ignore
//! kf_core::transport_conformance_tests!(std::sync::Arc::new(MyTransport));
//! ```
//!
//! The scenarios build their own engines from the [`shop`](super::shop) fixtures ([`engine`]: a
//! [`MemoryStore`](crate::store::MemoryStore), [`SignedTokens`] with [`KEY`], groups `support` with agents `alice`
//! and `bob` and `billing` with agent `carol`, tenant `shop`) and mint their own tokens ([`token`]). Timeouts
//! ([`WAIT`](super::shop::WAIT)) are failure guards only: every scenario waits for events, not for time.
//!
//! **What "applied" means.** An `event` frame is applied once the adapter has handed it to the scenario (from
//! [`Client::next_frame`], [`Client::drain`] or [`Client::end`]); frames the adapter had read but not handed out
//! when the connection was cut are lost, as they would be for a real client. [`Client::resume`] continues from
//! exactly what was applied: the WebSocket adapter resubscribes each watched conversation after its last applied
//! seq, the SSE adapter reconnects with the `id:` of the last applied event as `Last-Event-ID`.
//!
//! Adapters: `kf_transport_ws::testkit::Ws` (feature `testkit` of kf-transport-ws) and the SSE one in
//! `kf-transport-sse/tests/adapter/`. [`Mixed`] serves one engine on two transports at once, visitors on
//! one and agents on the other, so the same scenarios run across transports.

mod attachments;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::shop::{KEY, agent, engine, limits, must, seqs, stored, tenant, token, tokens, visitor};
use crate::Engine;
use crate::auth::{Identity, Principal, SignedTokens};
use crate::clock::{ManualClock, SystemClock};
use crate::limits::Limits;
use crate::model::{
    AgentId, ClientId, ConversationId, Event, EventKind, MessageBody, Seq, TenantId, Timestamp, VisitorId,
};

pub use attachments::attachments_travel_both_ways;

/// Starts servers of one transport.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Serves `engine` on `127.0.0.1:0` with a real server, until the returned handle is dropped (or the test
    /// ends). The transport must take its limits from the engine (frame size, ping interval as the heartbeat
    /// interval, idle timeout).
    async fn serve(&self, engine: Engine) -> Box<dyn Served>;
}

/// A running server.
#[async_trait]
pub trait Served: Send + Sync {
    /// Opens a session with `token` and returns once it is open (`welcome` and `inbox` read, and on a stream that
    /// follows all its conversations, `following`); or how the server refused it.
    async fn connect(&self, token: &str) -> Result<Box<dyn Client>, Refusal>;
}

/// How a server refused a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The `error` frame that explained it.
    pub error: Value,
    /// WebSocket: the close code that followed.
    pub close_code: Option<u16>,
    /// HTTP transports: the response status.
    pub status: Option<u16>,
}

impl Refusal {
    /// The error code.
    pub fn code(&self) -> &str {
        self.error["code"].as_str().unwrap_or_default()
    }
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ending {
    /// The frames received before the end (heartbeats excluded), including a final `error` frame if one came.
    pub frames: Vec<Value>,
    /// WebSocket: the close code, if a close frame came.
    pub close_code: Option<u16>,
}

impl Ending {
    /// The code of the last `error` frame before the end, if any.
    pub fn error_code(&self) -> Option<&str> {
        self.frames
            .iter()
            .rev()
            .find(|frame| frame["type"] == "error")
            .and_then(|frame| frame["code"].as_str())
    }

    /// Whether the server ended the connection for `code` (`slow_consumer`, `unavailable`): with a close frame,
    /// by the WebSocket close code the protocol gives it (4008, 1013); without one (SSE), by a last `error` frame
    /// of that code.
    pub fn is(&self, code: &str) -> bool {
        match self.close_code {
            Some(close) => {
                let expected = match code {
                    "slow_consumer" => 4008,
                    "unavailable" => 1013,
                    _ => return false,
                };
                close == expected
            }
            None => self
                .frames
                .last()
                .is_some_and(|frame| frame["type"] == "error" && frame["code"] == code),
        }
    }
}

/// One client of a session. Methods panic (failing the scenario) when the server does not answer within
/// [`WAIT`](super::shop::WAIT) or the connection ends where a frame was expected.
#[async_trait]
pub trait Client: Send {
    /// The `welcome` frame of the current connection.
    fn welcome(&self) -> &Value;

    /// The `inbox` frame of the current connection.
    fn inbox(&self) -> &Value;

    /// Sends a request frame (with an `id`; the adapter adds one if missing) and returns its reply: the frame
    /// answering it (`opened`, `ack`, `closed`, `pong`, an `error`…), or `None` for a request that has none
    /// (`typing` accepted). WebSocket: sent on the socket, the reply matched by `id` (frames arriving meanwhile
    /// stay for [`Client::next_frame`]). SSE: an HTTP POST whose response body is the reply.
    async fn request(&mut self, frame: Value) -> Option<Value>;

    /// Sends raw text as a request (for bad input) and returns the reply, as [`Client::request`]. (SSE: text that
    /// is not a JSON object with a string `type` is posted as a `send`.)
    async fn request_text(&mut self, text: &str) -> Option<Value>;

    /// Makes a conversation's events flow on this client's downstream, from after the last seq applied (0 for a
    /// new one). WebSocket: `subscribe`; SSE: the stream follows all its principal's conversations already, and
    /// the adapter only checks that the server would let this principal watch it. Refused: the `error` frame.
    async fn watch(&mut self, conversation: &str) -> Result<(), Value>;

    /// Subscribes to one conversation from `after`, as a client resuming from its cursor does, and reads its
    /// replay: returns the `subscribed` frame and the events up to its `last_seq` (the end of the replay), or the
    /// `error` that refused it. WebSocket: a `subscribe` on this connection; SSE: a stream of its own with
    /// `?conversation=` and a cursor at `after`. Does not change what this client has applied.
    async fn replay(&mut self, conversation: &str, after: u64) -> Result<(Value, Vec<Value>), Value>;

    /// The next frame from the downstream (WebSocket message, SSE `data:`), heartbeats excluded. Events count as
    /// applied once returned.
    async fn next_frame(&mut self) -> Value;

    /// Every frame the server sent so far and this client has not read (so that a scenario can assert that
    /// nothing more comes). WebSocket: what arrives before the answer to a `ping`; SSE: what arrives before the
    /// second heartbeat from now.
    async fn drain(&mut self) -> Vec<Value>;

    /// Waits for the next heartbeat (WebSocket: a server `ping`, which the adapter answers with `pong` as a
    /// client should; SSE: a `:` comment line). Frames read meanwhile stay for [`Client::next_frame`].
    async fn heartbeat(&mut self);

    /// Drops the connection abruptly (no close handshake), forgetting frames read but not handed out.
    async fn cut(&mut self);

    /// Reconnects with the same token and resumes from what was applied (see the module docs). Returns once the
    /// new session is open and the resumption requested.
    async fn resume(&mut self);

    /// Stops reading the downstream (for the slow-consumer scenario) until [`Client::end`].
    async fn stall(&mut self);

    /// Reads the downstream until the server ends it; returns what came before the end and how it ended.
    async fn end(&mut self) -> Ending;
}

async fn connect(served: &dyn Served, identity: &Identity) -> Box<dyn Client> {
    match served.connect(&token(identity)).await {
        Ok(client) => client,
        Err(refusal) => panic!("{identity:?} refused: {refusal:?}"),
    }
}

fn str_of<'a>(frame: &'a Value, field: &str) -> &'a str {
    match frame[field].as_str() {
        Some(text) => text,
        None => panic!("`{field}` is not a string in {frame}"),
    }
}

fn seq_of(frame: &Value) -> u64 {
    match frame["seq"].as_u64() {
        Some(seq) => seq,
        None => panic!("no seq in {frame}"),
    }
}

fn events_of<'a>(frames: impl IntoIterator<Item = &'a Value>, conversation: &str) -> Vec<Value> {
    frames
        .into_iter()
        .filter(|frame| frame["type"] == "event" && frame["conversation"] == conversation)
        .cloned()
        .collect()
}

/// Reads frames until one of type `kind`, skipping others (use where nothing else matters).
pub async fn next_of(client: &mut dyn Client, kind: &str) -> Value {
    loop {
        let frame = client.next_frame().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Collects the `event` frames of `conversation` until one has seq `last` (other frames are skipped).
pub async fn events_until(client: &mut dyn Client, conversation: &str, last: u64) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let frame = client.next_frame().await;
        if frame["type"] != "event" || frame["conversation"] != conversation {
            continue;
        }
        let seq = seq_of(&frame);
        events.push(frame);
        if seq >= last {
            return events;
        }
    }
}

/// Sends a request that must be answered with a frame of type `kind`.
async fn answered(client: &mut dyn Client, frame: Value, kind: &str) -> Value {
    let sent = frame.to_string();
    match client.request(frame).await {
        Some(reply) if reply["type"] == kind => reply,
        other => panic!("{sent} answered {other:?}, expected `{kind}`"),
    }
}

/// Sends a request that must be refused; returns the error code (and checks the reply carries the request id).
async fn refused(client: &mut dyn Client, frame: Value) -> String {
    let sent = frame.to_string();
    let id = frame["id"].clone();
    match client.request(frame).await {
        Some(reply) if reply["type"] == "error" => {
            if !id.is_null() {
                assert_eq!(reply["id"], id, "the error answering {sent} carries its id");
            }
            str_of(&reply, "code").to_owned()
        }
        other => panic!("{sent} answered {other:?}, expected an `error`"),
    }
}

/// A visitor opens a conversation; returns its id and the `opened` reply.
pub async fn open(client: &mut dyn Client, client_id: &str) -> (String, Value) {
    let opened = answered(
        client,
        json!({"type": "open", "id": format!("open-{client_id}"), "client_id": client_id}),
        "opened",
    )
    .await;
    (str_of(&opened["conversation"], "id").to_owned(), opened)
}

/// Sends a message; returns its `ack`.
pub async fn say(client: &mut dyn Client, conversation: &str, client_id: &str, text: &str) -> Value {
    let ack = answered(
        client,
        json!({"type": "send", "id": format!("say-{client_id}"), "conversation": conversation,
               "client_id": client_id, "body": {"text": text}}),
        "ack",
    )
    .await;
    assert_eq!(ack["client_id"], client_id, "{ack}");
    assert_eq!(ack["conversation"], conversation, "{ack}");
    ack
}

async fn watch(client: &mut dyn Client, conversation: &str) {
    if let Err(error) = client.watch(conversation).await {
        panic!("watching {conversation} refused: {error}");
    }
}

/// Asserts that nothing more of `conversation` comes to `client` (events, or anything else `unexpected` says).
async fn nothing_more(client: &mut dyn Client, what: &str, unexpected: impl Fn(&Value) -> bool) {
    let extra: Vec<Value> = client
        .drain()
        .await
        .into_iter()
        .filter(|f| unexpected(f))
        .collect();
    assert!(extra.is_empty(), "{what}: {extra:?}");
}

/// The visitor `v-1` and agent `alice`, both connected and watching a conversation the visitor opened (assigned
/// to alice), caught up to seq 2.
async fn conversation(served: &dyn Served) -> (Box<dyn Client>, Box<dyn Client>, String) {
    let mut alice = connect(served, &agent("alice")).await;
    let mut visitor = connect(served, &visitor("v-1")).await;
    let (conversation, _) = open(&mut *visitor, "open-1").await;
    let assigned = next_of(&mut *alice, "conversation").await;
    assert_eq!(assigned["conversation"]["id"], conversation.as_str());
    watch(&mut *visitor, &conversation).await;
    watch(&mut *alice, &conversation).await;
    assert_eq!(seqs(&events_until(&mut *visitor, &conversation, 2).await), [1, 2]);
    assert_eq!(seqs(&events_until(&mut *alice, &conversation, 2).await), [1, 2]);
    (visitor, alice, conversation)
}

/// A visitor and an agent converse both ways: `opened` (assigned at once), the agent's `conversation` frame,
/// `created`/`assigned` at seqs 1 and 2, messages at 3 and 4 reaching both sides, acks only after the commit,
/// typing relayed and not stored.
pub async fn converse_both_ways(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let mut alice = connect(&*served, &agent("alice")).await;
    assert_eq!(
        alice.welcome()["principal"],
        json!({"role": "agent", "id": "alice"})
    );
    assert_eq!(alice.inbox()["conversations"], json!([]));
    let mut visitor = connect(&*served, &visitor("v-1")).await;
    assert_eq!(visitor.welcome()["tenant"], "shop");
    assert_eq!(visitor.welcome()["epoch"], engine.epoch().0.as_str());

    let (conversation, opened) = open(&mut *visitor, "open-1").await;
    assert_eq!(opened["created"], true, "{opened}");
    assert_eq!(opened["conversation"]["status"], "assigned", "{opened}");
    assert_eq!(opened["conversation"]["agent"], "alice", "{opened}");
    let assigned = next_of(&mut *alice, "conversation").await;
    assert_eq!(
        assigned["conversation"]["id"],
        conversation.as_str(),
        "{assigned}"
    );
    assert_eq!(assigned["conversation"]["agent"], "alice", "{assigned}");

    watch(&mut *visitor, &conversation).await;
    watch(&mut *alice, &conversation).await;
    for side in [&mut visitor, &mut alice] {
        let history = events_until(&mut **side, &conversation, 2).await;
        assert_eq!(seqs(&history), [1, 2]);
        assert_eq!(history[0]["data"], json!({"type": "created", "group": "support"}));
        assert_eq!(history[0]["client_id"], "open-1");
        assert_eq!(history[1]["data"], json!({"type": "assigned", "agent": "alice"}));
    }

    // Visitor → agent: acked once committed, delivered to both sides.
    let ack = say(&mut *visitor, &conversation, "m-1", "Hello, is my order shipped?").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["duplicate"].as_bool()),
        (Some(3), Some(false))
    );
    assert_eq!(
        stored(&engine, &conversation).await.len(),
        3,
        "acked after the commit"
    );
    let event = events_until(&mut *alice, &conversation, 3).await.remove(0);
    assert_eq!(event["seq"], 3);
    assert_eq!(event["author"], json!({"role": "visitor", "id": "v-1"}));
    assert_eq!(event["client_id"], "m-1");
    assert_eq!(event["data"]["body"]["text"], "Hello, is my order shipped?");
    assert_eq!(
        seqs(&events_until(&mut *visitor, &conversation, 3).await),
        [3],
        "the sender sees its own message in the log"
    );

    // Agent → visitor.
    let ack = say(&mut *alice, &conversation, "a-1", "It left this morning.").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["duplicate"].as_bool()),
        (Some(4), Some(false))
    );
    assert_eq!(
        stored(&engine, &conversation).await.len(),
        4,
        "acked after the commit"
    );
    let event = events_until(&mut *visitor, &conversation, 4).await.remove(0);
    assert_eq!(event["seq"], 4);
    assert_eq!(event["author"], json!({"role": "agent", "id": "alice"}));
    assert_eq!(event["data"]["body"]["text"], "It left this morning.");
    assert_eq!(seqs(&events_until(&mut *alice, &conversation, 4).await), [4]);

    // Typing is relayed to the other side, not stored.
    let typing = json!({"type": "typing", "id": "t-1", "conversation": conversation, "active": true});
    assert_eq!(alice.request(typing).await, None, "typing has no reply");
    let typing = next_of(&mut *visitor, "typing").await;
    assert_eq!(typing["from"], json!({"role": "agent", "id": "alice"}));
    assert_eq!(typing["active"], true);

    let log = stored(&engine, &conversation).await;
    let kinds: Vec<(u64, &str)> = log.iter().map(|event| (event.seq.0, event.data.name())).collect();
    assert_eq!(
        kinds,
        [(1, "created"), (2, "assigned"), (3, "message"), (4, "message")]
    );
    nothing_more(&mut *visitor, "events after the last one", |f| {
        f["type"] == "event"
    })
    .await;
    nothing_more(&mut *alice, "events after the last one", |f| f["type"] == "event").await;
}

/// A visitor that applied up to seq k is cut; the agent writes meanwhile, and a burst is committed while the
/// visitor reconnects and resumes. It receives exactly k+1..=n, each once, in order, then live events.
pub async fn resume_after_a_cut_gets_exactly_what_was_missed(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;

    say(&mut *visitor, &conversation, "v-1", "one").await;
    say(&mut *visitor, &conversation, "v-2", "two").await;
    assert_eq!(seqs(&events_until(&mut *visitor, &conversation, 4).await), [3, 4]);
    let k = 4;
    visitor.cut().await;

    // Messages k+1..=7 while it is away.
    for n in 1..=3 {
        let ack = say(
            &mut *alice,
            &conversation,
            &format!("a-{n}"),
            &format!("away {n}"),
        )
        .await;
        assert_eq!(ack["seq"], k + n);
    }
    // A burst committed concurrently with the reconnect and the resume: seqs 8..=17.
    let burst = tokio::spawn({
        let engine = engine.clone();
        let id: ConversationId = must(conversation.parse(), "conversation id");
        async move {
            let mut acks = Vec::new();
            for n in 0..10 {
                let client_id = must(ClientId::new(format!("burst-{n}")), "client id");
                let body = MessageBody::text(format!("burst {n}"));
                let ack = must(
                    engine.send(&agent("alice"), id, client_id, body).await,
                    "burst send",
                );
                acks.push(ack.seq.0);
                tokio::task::yield_now().await;
            }
            acks
        }
    });
    visitor.resume().await;
    assert_eq!(must(burst.await, "burst task"), (8..=17).collect::<Vec<_>>());

    let mut received = events_until(&mut *visitor, &conversation, 17).await;
    // Then live.
    let ack = say(&mut *alice, &conversation, "a-live", "live").await;
    assert_eq!(ack["seq"], 18);
    received.extend(events_until(&mut *visitor, &conversation, 18).await);
    nothing_more(&mut *visitor, "events after the last one", |f| {
        f["type"] == "event"
    })
    .await;
    assert_eq!(
        seqs(&received),
        (k + 1..=18).collect::<Vec<_>>(),
        "exactly k+1..=n then live, each once, in order"
    );
    assert_eq!(received[0]["data"]["body"]["text"], "away 1");
    assert_eq!(received[3]["data"]["body"]["text"], "burst 0");
    assert_eq!(received[13]["data"]["body"]["text"], "live");
}

/// The same client id sent three times — twice on one connection, once after a cut and resume — stores one
/// message; the repeats are acked with the original seq and `duplicate: true`, and the message is delivered once.
pub async fn a_repeated_send_is_stored_once(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let mut visitor = connect(&*served, &visitor("v-1")).await;
    let (conversation, _) = open(&mut *visitor, "open-1").await;
    watch(&mut *visitor, &conversation).await;

    let first = say(&mut *visitor, &conversation, "dup-1", "only once").await;
    assert_eq!(first["duplicate"], false, "{first}");
    let seq = seq_of(&first);
    let second = say(&mut *visitor, &conversation, "dup-1", "only once").await;
    assert_eq!(
        (second["seq"].as_u64(), second["duplicate"].as_bool()),
        (Some(seq), Some(true))
    );
    let delivered = events_until(&mut *visitor, &conversation, seq).await;
    assert_eq!(seqs(&delivered), (1..=seq).collect::<Vec<_>>());

    // After a cut and resume (as if the first ack had been lost), with a different body: the first one wins.
    visitor.cut().await;
    visitor.resume().await;
    let third = say(&mut *visitor, &conversation, "dup-1", "only once, really").await;
    assert_eq!(
        (third["seq"].as_u64(), third["duplicate"].as_bool()),
        (Some(seq), Some(true))
    );
    nothing_more(&mut *visitor, "the repeats delivered nothing", |f| {
        f["type"] == "event"
    })
    .await;

    let log = stored(&engine, &conversation).await;
    let messages: Vec<&Event> = log
        .iter()
        .filter(|event| matches!(event.data, EventKind::Message { .. }))
        .collect();
    assert_eq!(messages.len(), 1, "{log:?}");
    assert_eq!(messages[0].seq, Seq(seq));
    assert_eq!(
        messages[0].client_id.as_ref().map(ClientId::as_str),
        Some("dup-1")
    );
    assert!(matches!(&messages[0].data, EventKind::Message { body } if body.text == "only once"));
}

/// Another visitor and a visitor of another tenant get `not_found` for a conversation that is not theirs; an
/// agent of the group it is not assigned to gets `forbidden` for writing, an agent of another group for
/// everything. Nothing is stored or leaked, and the owner sees none of it.
pub async fn visitors_tenants_and_agents_are_isolated(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let mut alice = connect(&*served, &agent("alice")).await;
    let mut owner = connect(&*served, &visitor("v-a")).await;
    let (conversation, opened) = open(&mut *owner, "open-a").await;
    assert_eq!(opened["conversation"]["agent"], "alice", "{opened}");
    watch(&mut *owner, &conversation).await;
    say(&mut *owner, &conversation, "m-1", "my address is secret").await;
    next_of(&mut *alice, "conversation").await;
    let before = stored(&engine, &conversation).await;

    let requests = |conversation: &str| {
        [
            json!({"type": "send", "id": "m", "conversation": conversation, "client_id": "x", "body": {"text": "hi"}}),
            json!({"type": "typing", "id": "t", "conversation": conversation, "active": true}),
            json!({"type": "close", "id": "c", "conversation": conversation}),
        ]
    };
    let other_tenant = Identity {
        tenant: must(TenantId::new("elsewhere"), "tenant id"),
        principal: Principal::Visitor(must(VisitorId::new("v-a"), "visitor id")),
        role: crate::auth::Role::Agent,
    };
    // Outsiders: another visitor, the same visitor id in another tenant, an agent of another group.
    for (intruder, code) in [
        (visitor("v-b"), "not_found"),
        (other_tenant, "not_found"),
        (agent("carol"), "forbidden"),
    ] {
        let mut client = connect(&*served, &intruder).await;
        match client.watch(&conversation).await {
            Err(error) => assert_eq!(error["code"], code, "{intruder:?} watching: {error}"),
            Ok(()) => panic!("{intruder:?} may watch another's conversation"),
        }
        for request in requests(&conversation) {
            let sent = request.to_string();
            assert_eq!(refused(&mut *client, request).await, code, "{intruder:?}: {sent}");
        }
        nothing_more(&mut *client, "leaked to an intruder", |f| f["type"] != "error").await;
    }
    // An agent of the group that it is not assigned to may read but not write.
    let mut bob = connect(&*served, &agent("bob")).await;
    for request in requests(&conversation) {
        let sent = request.to_string();
        assert_eq!(refused(&mut *bob, request).await, "forbidden", "bob: {sent}");
    }

    assert_eq!(
        stored(&engine, &conversation).await,
        before,
        "nothing stored by intruders"
    );
    nothing_more(&mut *owner, "the owner saw the intruders", |f| {
        f["type"] == "typing" || (f["type"] == "event" && seq_of(f) > 3)
    })
    .await;
}

/// Bad input is answered with precise errors — `bad_json`, `unknown_type`, `invalid_frame`, `too_large` — stores
/// nothing, and the client goes on: a ping is answered and a valid message goes through.
pub async fn bad_input_is_refused_and_the_client_goes_on(transport: Arc<dyn Transport>) {
    let engine = engine(Limits {
        max_text_bytes: 1024,
        max_frame_bytes: 8 * 1024,
        ..limits()
    })
    .await;
    let served = transport.serve(engine.clone()).await;
    let mut client = connect(&*served, &visitor("v-1")).await;
    let (conversation, _) = open(&mut *client, "open-1").await;
    watch(&mut *client, &conversation).await;
    let before = stored(&engine, &conversation).await;

    for text in ["this is not JSON", "[1, 2, 3]", "{\"conversation\": "] {
        match client.request_text(text).await {
            Some(error) if error["type"] == "error" => {
                assert_eq!(error["code"], "bad_json", "{text}: {error}")
            }
            other => panic!("{text} answered {other:?}"),
        }
    }
    assert_eq!(
        refused(&mut *client, json!({"type": "dance", "id": "d"})).await,
        "unknown_type"
    );
    let wrong_types =
        json!({"type": "send", "id": "w", "conversation": 42, "client_id": "c-1", "body": {"text": 7}});
    assert_eq!(refused(&mut *client, wrong_types).await, "invalid_frame");
    let missing =
        json!({"type": "send", "id": "n", "conversation": conversation, "body": {"text": "no client id"}});
    assert_eq!(refused(&mut *client, missing).await, "invalid_frame");
    let bad_id = json!({"type": "send", "id": "b", "conversation": "not-a-uuid", "client_id": "c-1", "body": {"text": "x"}});
    assert_eq!(refused(&mut *client, bad_id).await, "invalid_frame");
    let too_long = json!({"type": "send", "id": "big", "conversation": conversation, "client_id": "c-2",
                          "body": {"text": "x".repeat(2000)}});
    assert_eq!(refused(&mut *client, too_long).await, "too_large");
    assert_eq!(stored(&engine, &conversation).await, before, "nothing stored");

    // Still usable.
    answered(&mut *client, json!({"type": "ping", "id": "p"}), "pong").await;
    let ack = say(&mut *client, &conversation, "c-3", "fine now").await;
    assert_eq!(ack["duplicate"], false);
    let seq = seq_of(&ack);
    let events = events_until(&mut *client, &conversation, seq).await;
    assert_eq!(seqs(&events), (1..=seq).collect::<Vec<_>>());
    assert_eq!(
        events.last().map(|e| e["data"]["body"]["text"].clone()),
        Some(json!("fine now"))
    );
    let log = stored(&engine, &conversation).await;
    assert_eq!(
        log.len(),
        before.len() + 1,
        "only the valid message was stored: {log:?}"
    );
}

/// Forged, expired and malformed tokens are refused before a session opens (WebSocket: an `error` then close
/// 4001; HTTP: status 401 with the `error` frame as body); a valid token still works.
pub async fn bad_tokens_are_refused(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;

    let forger = must(SignedTokens::new(&[9; 32], Arc::new(SystemClock)), "key");
    let forged = forger.issue(&visitor("v-a"), Duration::from_secs(3600));
    let an_hour_ago = Timestamp(Timestamp::now().as_millis().saturating_sub(3_600_000));
    let past = must(
        SignedTokens::new(KEY, Arc::new(ManualClock::new(an_hour_ago))),
        "key",
    );
    let expired = past.issue(&visitor("v-a"), Duration::from_secs(60));
    let unknown_agent = token(&agent("mallory"));
    for (token, code) in [
        (forged.as_str(), "invalid_token"),
        (expired.as_str(), "token_expired"),
        ("nonsense", "invalid_token"),
        (unknown_agent.as_str(), "forbidden"),
    ] {
        let refusal = match served.connect(token).await {
            Err(refusal) => refusal,
            Ok(client) => panic!("{code} token accepted: {}", client.welcome()),
        };
        assert_eq!(refusal.error["type"], "error", "{refusal:?}");
        assert_eq!(refusal.code(), code, "{refusal:?}");
        match (refusal.close_code, refusal.status) {
            (Some(close), None) => assert_eq!(close, 4001, "{refusal:?}"),
            (None, Some(status)) => {
                let expected = if code == "forbidden" { 403 } else { 401 };
                assert_eq!(status, expected, "{refusal:?}")
            }
            _ => panic!("a refusal is either a close code or an HTTP status: {refusal:?}"),
        }
    }
    assert!(!engine.is_online(&tenant(), &must(AgentId::new("mallory"), "agent id")));
    let client = connect(&*served, &visitor("v-a")).await;
    assert_eq!(
        client.welcome()["principal"],
        json!({"role": "visitor", "id": "v-a"})
    );
}

/// An agent that stops reading while its conversation is busy is cut off as a slow consumer: its session ends
/// (it goes offline) instead of the server buffering for it; what it had received is an unbroken prefix of the
/// log, and a resume delivers the rest exactly once.
pub async fn a_slow_consumer_is_cut_off_and_resumes(transport: Arc<dyn Transport>) {
    let engine = engine(Limits {
        outbound_queue_bytes: 16 * 1024,
        ..limits()
    })
    .await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut slow, conversation) = conversation(&*served).await;
    slow.stall().await;

    // Publish until the server gives up on it (its session ends: the agent goes offline), at the pace of a client
    // that does read (the visitor), so that it is the socket that backs up, not a burst.
    let alice = must(AgentId::new("alice"), "agent id");
    let id: ConversationId = must(conversation.parse(), "conversation id");
    let text = "m".repeat(2048);
    let mut published = 0_u64;
    while engine.is_online(&tenant(), &alice) {
        assert!(
            published < 50_000,
            "the server kept buffering for a client that does not read"
        );
        let client_id = must(ClientId::new(format!("m-{published}")), "client id");
        let body = MessageBody::text(text.clone());
        must(
            engine.send(&self::visitor("v-1"), id, client_id, body).await,
            "send",
        );
        published += 1;
        let event = events_until(&mut *visitor, &conversation, published + 2).await;
        assert_eq!(seqs(&event), [published + 2]);
    }
    let last = published + 2;

    // What it gets when it reads again: an unbroken prefix of the log, then the slow-consumer end.
    let ending = slow.end().await;
    assert!(
        ending.is("slow_consumer"),
        "ended for a slow consumer: close {:?}, error {:?}",
        ending.close_code,
        ending.error_code()
    );
    let events = events_of(&ending.frames, &conversation);
    let received = seqs(&events);
    let expected: Vec<u64> = (3..3 + received.len() as u64).collect();
    assert_eq!(received, expected, "a prefix of the log, in order");
    let applied = received.last().copied().unwrap_or(2);
    assert!(
        applied < last,
        "the server dropped what did not fit instead of buffering it ({applied} of {last})"
    );

    // Resume from what it applied: everything it missed, exactly once.
    slow.resume().await;
    let missed = events_until(&mut *slow, &conversation, last).await;
    assert_eq!(seqs(&missed), (applied + 1..=last).collect::<Vec<_>>());
    nothing_more(&mut *slow, "events after the last one", |f| f["type"] == "event").await;
    assert!(engine.is_online(&tenant(), &alice), "back online");
}

/// An agent's `send` whose ack was lost is retried after the visitor closed the conversation: the retry gets
/// the original ack (same seq, `duplicate: true`), not `forbidden`; a message never stored is still refused,
/// and nothing new is stored.
pub async fn a_retried_send_after_the_close_gets_its_ack(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;
    let first = say(&mut *alice, &conversation, "a-1", "it shipped").await;
    let seq = seq_of(&first);
    answered(
        &mut *visitor,
        json!({"type": "close", "id": "c", "conversation": conversation}),
        "closed",
    )
    .await;
    let before = stored(&engine, &conversation).await;

    let retry = answered(
        &mut *alice,
        json!({"type": "send", "id": "again", "conversation": conversation, "client_id": "a-1",
               "body": {"text": "it shipped"}}),
        "ack",
    )
    .await;
    assert_eq!(
        (retry["seq"].as_u64(), retry["duplicate"].as_bool()),
        (Some(seq), Some(true)),
        "{retry}"
    );
    let fresh = json!({"type": "send", "id": "new", "conversation": conversation, "client_id": "a-2",
                       "body": {"text": "anything else?"}});
    assert_eq!(refused(&mut *alice, fresh).await, "forbidden");
    assert_eq!(stored(&engine, &conversation).await, before, "nothing stored");
}

/// A seq beyond the conversation's last one is refused with `bad_cursor` — a subscription's cursor (which would
/// otherwise swallow the live events up to it) and a read receipt (which would be relayed) — and a seq above
/// 2^53 − 1 with `invalid_frame`; the client goes on.
pub async fn a_cursor_beyond_the_log_is_refused(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;
    let mut other = connect(&*served, &self::visitor("v-1")).await;
    match other.replay(&conversation, 9).await {
        Err(error) => assert_eq!(error["code"], "bad_cursor", "{error}"),
        Ok(replay) => panic!("a cursor beyond the log was accepted: {replay:?}"),
    }
    let beyond = json!({"type": "read", "id": "r", "conversation": conversation, "seq": 3});
    assert_eq!(refused(&mut *visitor, beyond).await, "bad_cursor");
    let huge = json!({"type": "read", "id": "h", "conversation": conversation, "seq": 1_u64 << 53});
    assert_eq!(refused(&mut *visitor, huge).await, "invalid_frame");
    nothing_more(&mut *alice, "a refused read was relayed", |f| f["type"] == "read").await;

    // Still usable: a read within the log is relayed, and the live events flow.
    assert_eq!(
        visitor
            .request(json!({"type": "read", "id": "ok", "conversation": conversation, "seq": 2}))
            .await,
        None
    );
    assert_eq!(next_of(&mut *alice, "read").await["seq"], 2);
    let ack = say(&mut *alice, &conversation, "a-1", "hello").await;
    assert_eq!(
        seqs(&events_until(&mut *visitor, &conversation, seq_of(&ack)).await),
        [seq_of(&ack)]
    );
}

/// `subscribed` carries the conversation's last seq: the replay after the cursor ends there (what follows is
/// live), with a cursor in the middle of the log, at its end, and at 0.
pub async fn subscribed_says_where_the_replay_ends(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let (_visitor, mut alice, conversation) = conversation(&*served).await;
    let ack = say(&mut *alice, &conversation, "a-1", "one").await;
    let last = seq_of(&ack);
    let mut other = connect(&*served, &visitor("v-1")).await;
    for after in [0, 1, last] {
        let (subscribed, replayed) = match other.replay(&conversation, after).await {
            Ok(replay) => replay,
            Err(error) => panic!("replay from {after} refused: {error}"),
        };
        assert_eq!(subscribed["after"], after, "{subscribed}");
        assert_eq!(subscribed["last_seq"], last, "{subscribed}");
        assert_eq!(seqs(&replayed), (after + 1..=last).collect::<Vec<_>>());
    }
}

/// With a short ping interval, an idle client sees heartbeats, and a client that behaves (answers pings on
/// WebSocket; SSE needs nothing) stays connected well past the idle timeout: events and requests still flow.
pub async fn heartbeats_keep_an_idle_client_alive(transport: Arc<dyn Transport>) {
    let engine = engine(Limits {
        ping_interval_ms: 100,
        idle_timeout_ms: 400,
        ..limits()
    })
    .await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;

    // Six heartbeats span more than the idle timeout. (Both clients keep listening, as real ones do.)
    for _ in 0..6 {
        visitor.heartbeat().await;
        alice.heartbeat().await;
    }
    let ack = say(&mut *alice, &conversation, "a-1", "still there?").await;
    let seq = seq_of(&ack);
    assert_eq!(
        seqs(&events_until(&mut *visitor, &conversation, seq).await),
        [seq]
    );
    answered(&mut *visitor, json!({"type": "ping", "id": "p"}), "pong").await;
    say(&mut *visitor, &conversation, "v-1", "yes").await;
    assert_eq!(
        seqs(&events_until(&mut *alice, &conversation, seq + 1).await),
        [seq, seq + 1]
    );
}

/// An agent's private note never reaches the visitor — not live, not on a replay from 0, not after a cut and a
/// resume, not in the inbox: the visitor gets a `hidden` placeholder at the note's seq (its log stays gapless),
/// while the agents watching get the note and the agent it mentions a `mentioned` notice.
pub async fn a_note_never_reaches_the_visitor(transport: Arc<dyn Transport>) {
    const SECRET: &str = "Internal: refund approved by @bob";
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let mut bob = connect(&*served, &agent("bob")).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;
    let secret_in = |frames: &[Value]| frames.iter().any(|frame| frame.to_string().contains("refund"));

    let ack = answered(
        &mut *alice,
        json!({"type": "note", "id": "n", "conversation": conversation, "client_id": "note-1", "text": SECRET,
               "mentions": ["bob"]}),
        "ack",
    )
    .await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["duplicate"].as_bool()),
        (Some(3), Some(false))
    );
    let note = events_until(&mut *alice, &conversation, 3).await.remove(0);
    assert_eq!(
        note["data"],
        json!({"type": "note", "text": SECRET, "mentions": ["bob"]})
    );
    let mentioned = next_of(&mut *bob, "mentioned").await;
    assert_eq!(
        (
            &mentioned["conversation"]["id"],
            &mentioned["seq"],
            &mentioned["text"]
        ),
        (&json!(conversation), &json!(3), &json!(SECRET)),
        "{mentioned}"
    );
    assert_eq!(mentioned["author"], json!({"role": "agent", "id": "alice"}));

    let live = events_until(&mut *visitor, &conversation, 3).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["data"], json!({"type": "hidden"}), "{}", live[0]);
    assert_eq!(live[0]["author"], json!({"role": "system"}));
    assert!(live[0].get("client_id").is_none(), "{}", live[0]);
    // The visitor goes on, gapless.
    let said = say(&mut *visitor, &conversation, "v-1", "thanks").await;
    assert_eq!(seq_of(&said), 4);
    assert_eq!(seqs(&events_until(&mut *visitor, &conversation, 4).await), [4]);
    let replay = match visitor.replay(&conversation, 0).await {
        Ok((subscribed, replayed)) => {
            assert_eq!(subscribed["last_seq"], 4, "{subscribed}");
            replayed
        }
        Err(error) => panic!("replay refused: {error}"),
    };
    assert_eq!(seqs(&replay), [1, 2, 3, 4]);
    assert!(!secret_in(&replay), "{replay:?}");
    visitor.cut().await;
    say(&mut *alice, &conversation, "a-1", "you are welcome").await;
    visitor.resume().await;
    assert!(!secret_in(&[visitor.inbox().clone()]));
    let resumed = events_until(&mut *visitor, &conversation, 5).await;
    assert_eq!(seqs(&resumed), [5]);
    let rest = visitor.drain().await;
    assert!(!secret_in(&rest) && !secret_in(&resumed), "{rest:?}");
    assert!(matches!(
        &stored(&engine, &conversation).await[2].data,
        EventKind::Note { text, .. } if text == SECRET
    ));
}

/// After the agent closes, the visitor rates once: the rating is acked, reaches the agent live, a repeat with the
/// same client id gets the same ack (`duplicate`), another rating `invalid_state`; the log holds one `rated`.
pub async fn a_rating_counts_once(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;
    let rate = |client_id: &str, score: u8| {
        json!({"type": "rate", "id": format!("rate-{client_id}"), "conversation": conversation,
               "client_id": client_id, "score": score, "comment": "Fast, thanks"})
    };
    assert_eq!(
        refused(&mut *visitor, rate("r-0", 5)).await,
        "invalid_state",
        "not closed yet"
    );
    answered(
        &mut *alice,
        json!({"type": "close", "id": "c", "conversation": conversation}),
        "closed",
    )
    .await;
    assert_eq!(seqs(&events_until(&mut *visitor, &conversation, 3).await), [3]);
    let ack = answered(&mut *visitor, rate("r-1", 5), "ack").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["duplicate"].as_bool()),
        (Some(4), Some(false))
    );
    let rated = events_until(&mut *alice, &conversation, 4).await.pop();
    assert_eq!(
        rated.map(|event| event["data"].clone()),
        Some(json!({"type": "rated", "score": 5, "comment": "Fast, thanks"}))
    );
    let repeat = answered(&mut *visitor, rate("r-1", 2), "ack").await;
    assert_eq!(
        (repeat["seq"].as_u64(), repeat["duplicate"].as_bool()),
        (Some(4), Some(true))
    );
    assert_eq!(refused(&mut *visitor, rate("r-2", 1)).await, "invalid_state");
    assert_eq!(refused(&mut *alice, rate("r-3", 1)).await, "forbidden");
    let ratings: Vec<Event> = stored(&engine, &conversation)
        .await
        .into_iter()
        .filter(|event| matches!(event.data, EventKind::Rated { .. }))
        .collect();
    assert_eq!(ratings.len(), 1, "counted once: {ratings:?}");
    assert_eq!(ratings[0].client_id.as_ref().map(ClientId::as_str), Some("r-1"));
}

/// What the scripted bot of the bot scenarios answers a visitor's message: `None` for a request for a person
/// (then it hands over), else a canned answer.
fn scripted_bot(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    if lower.contains("human") || text.contains("人工") {
        None
    } else if lower.contains("order") {
        Some("You can follow your order under Account → Orders.")
    } else {
        Some("I can help with orders and returns. Say \"human\" to talk to a person.")
    }
}

/// The next visitor message of `conversation` that `bot` receives (other events and frames skipped).
async fn next_visitor_message(bot: &mut dyn Client, conversation: &str) -> (u64, String) {
    loop {
        let frame = next_of(bot, "event").await;
        if frame["conversation"] == conversation
            && frame["author"]["role"] == "visitor"
            && frame["data"]["type"] == "message"
        {
            return (seq_of(&frame), str_of(&frame["data"]["body"], "text").to_owned());
        }
    }
}

/// A scripted bot answers first and hands over (`docs/bots.md`): the visitor opens in the bot-first group `bot`
/// and gets its bot `faq-bot` (an agent of that group); the bot answers, and on "human" says so and transfers with
/// `handover` and no group, so the conversation goes to the group's hand-over group `support`, whose agent
/// `alice` gets it with the whole history (visitor and bot messages, seq 1 onwards) and answers. The visitor's
/// stream stays one gapless log without duplicates across the hand-over, and sees the hand-over without its
/// note; the bot can no longer write.
pub async fn a_bot_answers_first_and_hands_over(transport: Arc<dyn Transport>) {
    let engine = super::shop::engine_with_bot(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let mut alice = connect(&*served, &agent("alice")).await;
    let mut bot = connect(&*served, &agent("faq-bot")).await;
    let mut visitor = connect(&*served, &visitor("v-1")).await;

    let opened = answered(
        &mut *visitor,
        json!({"type": "open", "id": "open", "client_id": "open-1", "group": "bot"}),
        "opened",
    )
    .await;
    let conversation = str_of(&opened["conversation"], "id").to_owned();
    assert_eq!(opened["conversation"]["agent"], "faq-bot", "{opened}");
    let assigned = next_of(&mut *bot, "conversation").await;
    assert_eq!(assigned["conversation"]["id"], conversation.as_str());
    watch(&mut *bot, &conversation).await;
    watch(&mut *visitor, &conversation).await;
    let mut seen = events_until(&mut *visitor, &conversation, 2).await;

    // The bot answers what it can, then hands over when asked for a person.
    let mut handed_over = None;
    for (n, text) in ["Where is my order?", "I want a human please"]
        .into_iter()
        .enumerate()
    {
        say(&mut *visitor, &conversation, &format!("v-{n}"), text).await;
        let (seq, heard) = next_visitor_message(&mut *bot, &conversation).await;
        assert_eq!(heard, text);
        let answer = scripted_bot(&heard).unwrap_or("Let me connect you with a colleague.");
        let ack = say(&mut *bot, &conversation, &format!("b-{n}"), answer).await;
        assert_eq!(seq_of(&ack), seq + 1, "the bot answers right after the visitor");
        if scripted_bot(&heard).is_none() {
            let transfer = json!({"type": "transfer", "id": "handover", "conversation": conversation,
                                  "handover": true, "note": "asked for a human"});
            handed_over = Some(seq_of(&answered(&mut *bot, transfer, "transferred").await));
        }
    }
    let handed_over = must(handed_over.ok_or("no hand-over"), "the hand-over");
    assert_eq!(handed_over, 7);

    // The person gets it with the whole history, in seq order.
    let assigned = next_of(&mut *alice, "conversation").await;
    assert_eq!(assigned["conversation"]["id"], conversation.as_str());
    assert_eq!(assigned["conversation"]["group"], "support");
    watch(&mut *alice, &conversation).await;
    let history = events_until(&mut *alice, &conversation, 8).await;
    assert_eq!(seqs(&history), (1..=8).collect::<Vec<_>>());
    let authors: Vec<String> = history
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["author"]["id"].as_str().unwrap_or("system"),
                e["data"]["type"]
            )
        })
        .collect();
    assert_eq!(
        authors,
        [
            "v-1:\"created\"",
            "system:\"assigned\"",
            "v-1:\"message\"",
            "faq-bot:\"message\"",
            "v-1:\"message\"",
            "faq-bot:\"message\"",
            "faq-bot:\"transferred\"",
            "system:\"assigned\"",
        ]
    );
    assert_eq!(history[1]["data"]["agent"], "faq-bot");
    assert_eq!(
        history[6]["data"],
        json!({"type": "transferred", "from": "faq-bot", "group": "support",
               "note": "asked for a human", "handover": true})
    );
    assert_eq!(history[7]["data"], json!({"type": "assigned", "agent": "alice"}));
    say(
        &mut *alice,
        &conversation,
        "a-1",
        "Hi, Alice here. Let me look at your order.",
    )
    .await;

    // The visitor: one gapless log, each seq once, the hand-over without its note.
    seen.extend(events_until(&mut *visitor, &conversation, 9).await);
    nothing_more(&mut *visitor, "events after the last one", |f| {
        f["type"] == "event"
    })
    .await;
    assert_eq!(seqs(&seen), (1..=9).collect::<Vec<_>>());
    assert_eq!(
        seen[6]["data"],
        json!({"type": "transferred", "from": "faq-bot", "group": "support", "handover": true})
    );
    assert_eq!(seen[8]["author"], json!({"role": "agent", "id": "alice"}));

    // The bot saw its hand-over and may no longer write.
    let mine = events_until(&mut *bot, &conversation, 7).await;
    assert_eq!(
        mine.last().map(|e| e["data"]["type"].clone()),
        Some(json!("transferred"))
    );
    let late = json!({"type": "send", "id": "late", "conversation": conversation, "client_id": "b-late",
                      "body": {"text": "still here"}});
    assert_eq!(refused(&mut *bot, late).await, "forbidden");
    let log = stored(&engine, &conversation).await;
    assert_eq!(log.len(), 9);
}

/// A bot-first group whose bot is not there sends visitors to people directly: with `faq-bot` offline, and
/// later away, a conversation opened in group `bot` is created in its hand-over group `support` and assigned to
/// `alice`; with the bot online and accepting it goes to the bot.
pub async fn a_bot_first_group_without_its_bot_goes_to_people(transport: Arc<dyn Transport>) {
    let engine = super::shop::engine_with_bot(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let mut alice = connect(&*served, &agent("alice")).await;
    let open_in_bot = |n: u32| json!({"type": "open", "id": format!("open-{n}"), "client_id": format!("open-{n}"), "group": "bot"});

    let mut first = connect(&*served, &visitor("v-1")).await;
    let opened = answered(&mut *first, open_in_bot(1), "opened").await;
    assert_eq!(opened["conversation"]["group"], "support", "{opened}");
    assert_eq!(opened["conversation"]["agent"], "alice", "{opened}");
    let conversation = str_of(&opened["conversation"], "id").to_owned();
    assert_eq!(
        next_of(&mut *alice, "conversation").await["conversation"]["id"],
        conversation.as_str()
    );
    let log = stored(&engine, &conversation).await;
    assert_eq!(
        log[0].data,
        EventKind::Created {
            group: must(crate::model::GroupId::new("support"), "group id"),
            entry: None,
            fields: Default::default(),
        }
    );

    // The bot comes: the next visitor gets it.
    let mut bot = connect(&*served, &agent("faq-bot")).await;
    let mut second = connect(&*served, &visitor("v-2")).await;
    let opened = answered(&mut *second, open_in_bot(2), "opened").await;
    assert_eq!(opened["conversation"]["group"], "bot", "{opened}");
    assert_eq!(opened["conversation"]["agent"], "faq-bot", "{opened}");
    next_of(&mut *bot, "conversation").await;

    // The bot stops taking conversations: people again.
    answered(
        &mut *bot,
        json!({"type": "status", "id": "away", "status": "away"}),
        "status",
    )
    .await;
    let mut third = connect(&*served, &visitor("v-3")).await;
    let opened = answered(&mut *third, open_in_bot(3), "opened").await;
    assert_eq!(opened["conversation"]["group"], "support", "{opened}");
    assert_eq!(opened["conversation"]["agent"], "alice", "{opened}");
}

/// Labels and attributes are for agents only: an agent's `label`, `unlabel` and `set_attribute` are acked
/// (`definitions` lists the tenant's labels first; an unknown label is `not_found`, a mistyped value
/// `invalid_frame`) and reach the agents watching whole, while the visitor gets a `hidden` placeholder at each
/// seq — live, on a replay from 0, after a cut and a resume — and its inbox carries neither labels nor attributes.
pub async fn labels_and_attributes_never_reach_the_visitor(transport: Arc<dyn Transport>) {
    use crate::labels::{AttributeDefinition, AttributeKind, AttributeObject, Label};
    let engine = engine(limits()).await;
    let tenant = super::shop::tenant;
    if let Err(error) = engine
        .put_label(Label::new(tenant(), "Escalated", "#dc2626"))
        .await
    {
        panic!("label: {error}");
    }
    let plan = AttributeDefinition::new(tenant(), AttributeObject::Visitor, "plan", AttributeKind::String);
    let order = AttributeDefinition::new(
        tenant(),
        AttributeObject::Conversation,
        "order",
        AttributeKind::Number,
    );
    for definition in [plan, order] {
        if let Err(error) = engine.put_attribute_definition(definition).await {
            panic!("definition: {error}");
        }
    }
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;
    let leaked = |frames: &[Value]| {
        frames.iter().any(|frame| {
            let text = frame.to_string();
            text.contains("Escalated") || text.contains("Platinum") || text.contains("1042")
        })
    };
    let definitions = answered(
        &mut *alice,
        json!({"type": "definitions", "id": "d"}),
        "definitions",
    )
    .await;
    assert_eq!(definitions["labels"][0]["name"], "Escalated", "{definitions}");
    assert_eq!(
        definitions["attributes"].as_array().map(Vec::len),
        Some(2),
        "{definitions}"
    );
    assert_eq!(
        refused(&mut *visitor, json!({"type": "definitions", "id": "d"})).await,
        "forbidden"
    );
    let requests = [
        json!({"type": "label", "id": "l", "conversation": conversation, "client_id": "l-1", "label": "Escalated"}),
        json!({"type": "set_attribute", "id": "a", "conversation": conversation, "client_id": "a-1",
               "object": "conversation", "key": "order", "value": {"number": 1042}}),
        json!({"type": "set_attribute", "id": "b", "conversation": conversation, "client_id": "a-2",
               "object": "visitor", "key": "plan", "value": {"string": "Platinum"}}),
        json!({"type": "unlabel", "id": "u", "conversation": conversation, "client_id": "u-1", "label": "Escalated"}),
    ];
    for (n, request) in requests.into_iter().enumerate() {
        let ack = answered(&mut *alice, request, "ack").await;
        assert_eq!(ack["seq"].as_u64(), Some(3 + n as u64), "{ack}");
    }
    assert_eq!(
        refused(
            &mut *alice,
            json!({"type": "label", "id": "x", "conversation": conversation, "client_id": "l-2", "label": "Nope"})
        )
        .await,
        "not_found"
    );
    assert_eq!(
        refused(
            &mut *alice,
            json!({"type": "set_attribute", "id": "y", "conversation": conversation, "client_id": "a-3",
                   "object": "conversation", "key": "order", "value": {"string": "1042"}})
        )
        .await,
        "invalid_frame"
    );
    let seen = events_until(&mut *alice, &conversation, 6).await;
    assert_eq!(seen[0]["data"], json!({"type": "labeled", "label": "Escalated"}));
    assert_eq!(
        seen[1]["data"],
        json!({"type": "attribute_set", "object": "conversation", "key": "order", "value": {"number": 1042}})
    );
    let live = events_until(&mut *visitor, &conversation, 6).await;
    assert_eq!(seqs(&live), [3, 4, 5, 6]);
    assert!(
        live.iter()
            .all(|event| event["data"] == json!({"type": "hidden"})),
        "{live:?}"
    );
    let replay = match visitor.replay(&conversation, 0).await {
        Ok((_, replayed)) => replayed,
        Err(error) => panic!("replay refused: {error}"),
    };
    assert_eq!(seqs(&replay), [1, 2, 3, 4, 5, 6]);
    assert!(!leaked(&replay), "{replay:?}");
    // A label again, while the visitor is away: its resume and inbox show nothing of it.
    visitor.cut().await;
    answered(
        &mut *alice,
        json!({"type": "label", "id": "l2", "conversation": conversation, "client_id": "l-3", "label": "Escalated"}),
        "ack",
    )
    .await;
    visitor.resume().await;
    let inbox = visitor.inbox().clone();
    assert!(!leaked(std::slice::from_ref(&inbox)), "{inbox}");
    let resumed = events_until(&mut *visitor, &conversation, 7).await;
    assert_eq!(seqs(&resumed), [7]);
    let rest = visitor.drain().await;
    assert!(!leaked(&resumed) && !leaked(&rest), "{rest:?}");
    let stored = stored(&engine, &conversation).await;
    assert!(matches!(&stored[6].data, EventKind::Labeled { label } if label == "Escalated"));
}

/// An agent puts its conversation on hold (`snooze`, acked, a repeat `duplicate`; a visitor `forbidden`): both
/// sides get `snoozed`; the visitor's next message wakes it (`woken`) and it comes back to the agent (`assigned`);
/// then parked again and taken back early with `wake`.
pub async fn a_snoozed_conversation_wakes_at_the_visitors_message(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor, mut alice, conversation) = conversation(&*served).await;
    let snooze = |client_id: &str| json!({"type": "snooze", "id": format!("s-{client_id}"), "conversation": conversation, "client_id": client_id});
    assert_eq!(refused(&mut *visitor, snooze("s-0")).await, "forbidden");
    let ack = answered(&mut *alice, snooze("s-1"), "ack").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["duplicate"].as_bool()),
        (Some(3), Some(false))
    );
    let repeat = answered(&mut *alice, snooze("s-1"), "ack").await;
    assert_eq!(repeat["duplicate"].as_bool(), Some(true));
    let parked = events_until(&mut *visitor, &conversation, 3).await;
    assert_eq!(parked[0]["data"], json!({"type": "snoozed"}));
    events_until(&mut *alice, &conversation, 3).await;
    say(
        &mut *visitor,
        &conversation,
        "v-1",
        "Here is my order number: 1042",
    )
    .await;
    let woke = events_until(&mut *alice, &conversation, 6).await;
    let kinds: Vec<&Value> = woke.iter().map(|event| &event["data"]["type"]).collect();
    assert_eq!(
        kinds,
        [&json!("message"), &json!("woken"), &json!("assigned")],
        "{woke:?}"
    );
    assert_eq!(woke[1]["data"]["reason"], "visitor");
    assert_eq!(woke[2]["data"]["agent"], "alice");
    let until = crate::model::Timestamp::now().0 + 3_600_000;
    answered(
        &mut *alice,
        json!({"type": "snooze", "id": "s2", "conversation": conversation, "client_id": "s-2", "until": until}),
        "ack",
    )
    .await;
    let wake = json!({"type": "wake", "id": "w", "conversation": conversation, "client_id": "w-1"});
    answered(&mut *alice, wake, "ack").await;
    let back = events_until(&mut *alice, &conversation, 9).await;
    let kinds: Vec<&Value> = back.iter().map(|event| &event["data"]["type"]).collect();
    assert_eq!(
        kinds,
        [&json!("snoozed"), &json!("woken"), &json!("assigned")],
        "{back:?}"
    );
    assert_eq!(back[0]["data"]["until"], json!(until));
}

/// The next `read` frame from a participant of `role`.
async fn read_from(client: &mut dyn Client, role: &str) -> Value {
    loop {
        let frame = next_of(client, "read").await;
        if frame["from"]["role"] == role {
            return frame;
        }
    }
}

/// Read receipts are kept: the visitor and the agent each send `read` (relayed live to the other side); a lower
/// receipt later changes nothing. Both sides reconnect (a reload): the new connections' `inbox` and the
/// `subscribed` reply carry both marks, so each side shows "seen" again.
pub async fn seen_marks_survive_a_reconnect(transport: Arc<dyn Transport>) {
    let engine = engine(limits()).await;
    let served = transport.serve(engine.clone()).await;
    let (mut visitor_tab, mut alice, conversation) = conversation(&*served).await;
    say(&mut *visitor_tab, &conversation, "v-1", "Where is my parcel?").await;
    say(&mut *alice, &conversation, "a-1", "Let me look it up.").await;
    let read = |seq: u64| json!({"type": "read", "conversation": conversation, "seq": seq});
    assert_eq!(alice.request(read(3)).await, None, "a read has no reply");
    // (Over HTTP POST a receipt comes from no connection: the sender's own stream gets it too.)
    let relayed = read_from(&mut *visitor_tab, "agent").await;
    assert_eq!(
        (&relayed["from"], &relayed["seq"]),
        (&json!({"role": "agent", "id": "alice"}), &json!(3))
    );
    assert_eq!(visitor_tab.request(read(4)).await, None);
    assert_eq!(read_from(&mut *alice, "visitor").await["seq"], 4);
    assert_eq!(
        visitor_tab.request(read(2)).await,
        None,
        "a lower receipt is relayed, but lowers nothing"
    );
    read_from(&mut *alice, "visitor").await;
    let expected = json!([
        {"conversation": conversation, "from": {"role": "agent", "id": "alice"}, "seq": 3},
        {"conversation": conversation, "from": {"role": "visitor", "id": "v-1"}, "seq": 4},
    ]);
    let by_role = |marks: &Value| {
        let mut marks = marks.as_array().cloned().unwrap_or_default();
        marks.sort_by_key(|mark| mark["from"]["role"].as_str().map(str::to_owned));
        Value::Array(marks)
    };
    drop((visitor_tab, alice));
    for identity in [visitor("v-1"), agent("alice")] {
        let mut again = connect(&*served, &identity).await;
        assert_eq!(by_role(&again.inbox()["seen"]), expected, "inbox of {identity:?}");
        let (subscribed, _) = match again.replay(&conversation, 0).await {
            Ok(replay) => replay,
            Err(error) => panic!("replay refused: {error}"),
        };
        assert_eq!(
            by_role(&subscribed["seen"]),
            expected,
            "subscribed of {identity:?}"
        );
    }
}

/// Stamps one `#[test]` per transport scenario. `$make` is an expression giving an
/// `Arc<dyn kf_core::testkit::transport::Transport>` (evaluated once per test):
///
/// ```ignore
/// kf_core::transport_conformance_tests!(std::sync::Arc::new(MyTransport));
/// ```
#[macro_export]
macro_rules! transport_conformance_tests {
    ($make:expr) => {
        $crate::transport_conformance_tests!(@tests $make;
            converse_both_ways,
            resume_after_a_cut_gets_exactly_what_was_missed,
            a_repeated_send_is_stored_once,
            visitors_tenants_and_agents_are_isolated,
            bad_input_is_refused_and_the_client_goes_on,
            bad_tokens_are_refused,
            a_slow_consumer_is_cut_off_and_resumes,
            heartbeats_keep_an_idle_client_alive,
            a_retried_send_after_the_close_gets_its_ack,
            a_cursor_beyond_the_log_is_refused,
            subscribed_says_where_the_replay_ends,
            a_note_never_reaches_the_visitor,
            a_rating_counts_once,
            a_bot_answers_first_and_hands_over,
            a_bot_first_group_without_its_bot_goes_to_people,
            labels_and_attributes_never_reach_the_visitor,
            a_snoozed_conversation_wakes_at_the_visitors_message,
            seen_marks_survive_a_reconnect,
            attachments_travel_both_ways,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let transport: ::std::sync::Arc<dyn $crate::testkit::transport::Transport> = $make;
                    $crate::testkit::transport::$name(transport).await;
                });
            }
        )*
    };
}

/// Serves one engine on two transports: visitors connect through one, agents through the other (the token
/// decides; a token the suite cannot read goes to the visitors' transport). Runs the suite across transports,
/// e.g. the visitor on SSE and the agent on WebSocket.
#[derive(Clone)]
pub struct Mixed {
    visitors: Arc<dyn Transport>,
    agents: Arc<dyn Transport>,
}

impl std::fmt::Debug for Mixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixed").finish_non_exhaustive()
    }
}

impl Mixed {
    /// Visitors through `visitors`, agents through `agents`.
    pub fn new(visitors: Arc<dyn Transport>, agents: Arc<dyn Transport>) -> Self {
        Self { visitors, agents }
    }
}

struct MixedServed {
    visitors: Box<dyn Served>,
    agents: Box<dyn Served>,
}

#[async_trait]
impl Transport for Mixed {
    async fn serve(&self, engine: Engine) -> Box<dyn Served> {
        Box::new(MixedServed {
            visitors: self.visitors.serve(engine.clone()).await,
            agents: self.agents.serve(engine).await,
        })
    }
}

#[async_trait]
impl Served for MixedServed {
    async fn connect(&self, token: &str) -> Result<Box<dyn Client>, Refusal> {
        match tokens().verify(token) {
            Ok(Identity {
                principal: Principal::Agent(_),
                ..
            }) => self.agents.connect(token).await,
            _ => self.visitors.connect(token).await,
        }
    }
}
