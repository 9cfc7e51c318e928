//! Engine behaviour through sessions and outboxes, without a network (transports test the same over sockets).

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::auth::{Identity, Principal, SignedTokens};
use crate::clock::SystemClock;
use crate::cursor::Cursor;
use crate::limits::Limits;
use crate::model::{
    Actor, Agent, AgentId, AgentStatus, ClientId, Conversation, ConversationId, ConversationState,
    EntryPointId, Event, EventKind, Group, GroupId, MessageBody, Seq, TenantId,
};
use crate::protocol::{CloseReason, ErrorCode, ServerFrame};
use crate::store::{MemoryStore, Store};

const TENANT: &str = "shop";

fn tenant() -> TenantId {
    TenantId::new(TENANT).expect("id")
}

fn visitor(id: &str) -> Identity {
    Identity {
        tenant: tenant(),
        principal: Principal::Visitor(id.parse().expect("id")),
        role: crate::auth::Role::Agent,
    }
}

fn agent_identity(id: &str) -> Identity {
    Identity {
        tenant: tenant(),
        principal: Principal::Agent(id.parse().expect("id")),
        role: crate::auth::Role::Agent,
    }
}

fn agent(id: &str, capacity: u32) -> Agent {
    Agent {
        tenant: tenant(),
        id: id.parse().expect("id"),
        name: id.into(),
        groups: vec![group()],
        capacity,
        group_capacity: Default::default(),
        active: true,
    }
}

fn group() -> GroupId {
    GroupId::new("support").expect("id")
}

fn client_id(id: &str) -> ClientId {
    ClientId::new(id).expect("id")
}

fn tokens() -> SignedTokens {
    SignedTokens::new(&[42; 32], Arc::new(SystemClock)).expect("key")
}

/// A builder over `store` with no presence grace period (tests that need one set it).
fn builder(store: Arc<dyn Store>) -> EngineBuilder {
    Engine::builder(store, Arc::new(tokens())).presence_grace(Duration::ZERO)
}

/// Builds the engine and creates the "support" group.
async fn engine_from(builder: EngineBuilder) -> Engine {
    let engine = builder.build().await.expect("engine");
    engine
        .put_group(Group {
            tenant: tenant(),
            id: group(),
            name: "Support".into(),
            strategy: Default::default(),
            max_active: None,
            welcome: None,
            timers: Default::default(),
            handover: None,
        })
        .await
        .expect("group");
    engine
}

async fn engine_with(store: Arc<dyn Store>, limits: Limits) -> Engine {
    engine_from(builder(store).limits(limits)).await
}

async fn engine() -> Engine {
    engine_with(Arc::new(MemoryStore::new()), Limits::default()).await
}

/// A connected client: its session and outbox.
struct Client {
    session: Session,
    outbox: Outbox,
    /// Frames read while looking for a reply (events may come before or after it), handed out next.
    held: std::collections::VecDeque<ServerFrame>,
}

impl Client {
    async fn connect(engine: &Engine, identity: Identity) -> Client {
        let (session, outbox) = engine.connect(identity).await.expect("connect");
        let mut client = Client {
            session,
            outbox,
            held: Default::default(),
        };
        assert!(matches!(client.next().await, ServerFrame::Welcome { .. }));
        assert!(matches!(client.next().await, ServerFrame::Inbox { .. }));
        client
    }

    async fn next(&mut self) -> ServerFrame {
        if let Some(frame) = self.held.pop_front() {
            return frame;
        }
        match tokio::time::timeout(Duration::from_secs(5), self.outbox.next()).await {
            Ok(Outgoing::Frame(bytes) | Outgoing::Event { frame: bytes, .. }) => {
                serde_json::from_slice(&bytes).expect("server frame")
            }
            Ok(Outgoing::Close(reason)) => panic!("closed: {reason:?}"),
            Err(_) => panic!("no frame within 5 s"),
        }
    }

    /// The next frame that is not an ephemeral signal.
    async fn next_reply(&mut self) -> ServerFrame {
        loop {
            match self.next().await {
                ServerFrame::Typing { .. }
                | ServerFrame::Ping
                | ServerFrame::Position { .. }
                | ServerFrame::Queue { id: None, .. } => continue,
                frame => return frame,
            }
        }
    }

    /// The next `n` non-ephemeral frames (replies may follow the events and notices a request caused).
    async fn replies(&mut self, n: usize) -> Vec<ServerFrame> {
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            frames.push(self.next_reply().await);
        }
        frames
    }

    /// Sends a request; returns its reply. Events read meanwhile (they may come before or after it) are held
    /// for the next reads.
    async fn request(&mut self, json: serde_json::Value) -> ServerFrame {
        self.session.receive(&json.to_string()).await;
        let mut events = Vec::new();
        let reply = loop {
            match self.next_reply().await {
                ServerFrame::Event(event) => events.push(ServerFrame::Event(event)),
                reply => break reply,
            }
        };
        self.held.extend(events);
        reply
    }

    async fn event(&mut self) -> Event {
        match self.next_reply().await {
            ServerFrame::Event(event) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    async fn open(&mut self, id: &str) -> Conversation {
        match self
            .request(serde_json::json!({"type": "open", "client_id": id}))
            .await
        {
            ServerFrame::Opened { conversation, .. } => conversation,
            other => panic!("expected opened, got {other:?}"),
        }
    }

    async fn subscribe(&mut self, conversation: ConversationId, after: u64) {
        let frame = self
            .request(serde_json::json!({"type": "subscribe", "conversation": conversation, "after": after}))
            .await;
        assert!(matches!(frame, ServerFrame::Subscribed { .. }), "{frame:?}");
    }

    async fn send(&mut self, conversation: ConversationId, id: &str, text: &str) -> ServerFrame {
        self.request(serde_json::json!({"type": "send", "conversation": conversation, "client_id": id, "body": {"text": text}}))
            .await
    }
}

/// Agent alice (capacity 2) online and visitor v1 with a conversation assigned to her, both subscribed after the
/// `created` and `assigned` events.
async fn assigned_chat(engine: &Engine) -> (Client, Client, ConversationId) {
    engine.put_agent(agent("alice", 2)).await.expect("agent");
    let mut alice = Client::connect(engine, agent_identity("alice")).await;
    let mut v1 = Client::connect(engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    assert!(matches!(alice.next().await, ServerFrame::Conversation { .. }));
    v1.subscribe(conversation, 2).await;
    alice.subscribe(conversation, 2).await;
    (alice, v1, conversation)
}

fn error_code(frame: &ServerFrame) -> Option<ErrorCode> {
    match frame {
        ServerFrame::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn a_new_conversation_goes_to_the_least_busy_online_agent() {
    let engine = engine().await;
    engine.put_agent(agent("alice", 2)).await.expect("agent");
    engine.put_agent(agent("bob", 2)).await.expect("agent");
    let mut alice = Client::connect(&engine, agent_identity("alice")).await;
    let mut bob = Client::connect(&engine, agent_identity("bob")).await;

    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let first = v1.open("o1").await;
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let second = v2.open("o1").await;

    // Ties on spare capacity go to the never-assigned agent, then by id: alice first, then bob.
    assert_eq!(first.state.agent().map(AgentId::as_str), Some("alice"));
    assert_eq!(second.state.agent().map(AgentId::as_str), Some("bob"));
    assert!(
        matches!(alice.next_reply().await, ServerFrame::Conversation { conversation } if conversation.id == first.id)
    );
    assert!(
        matches!(bob.next().await, ServerFrame::Conversation { conversation } if conversation.id == second.id)
    );

    v1.subscribe(first.id, 0).await;
    let created = v1.event().await;
    assert_eq!((created.seq, created.data.name()), (Seq(1), "created"));
    let assigned = v1.event().await;
    assert_eq!(assigned.seq, Seq(2));
    assert_eq!(
        assigned.data,
        EventKind::Assigned {
            agent: "alice".parse().expect("id")
        }
    );
    assert_eq!(assigned.author, Actor::System);
}

#[tokio::test]
async fn messages_flow_both_ways_and_are_acked_with_their_seq() {
    let engine = engine().await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;

    // The sender gets the ack and sees its own message in the log (in either order).
    let first = v1.send(conversation, "m1", "hello").await;
    let frames = [first, v1.next_reply().await];
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Event(Event { seq: Seq(3), .. }))),
        "{frames:?}"
    );
    assert!(
        frames.iter().any(|f| matches!(
            f,
            ServerFrame::Ack {
                seq: Seq(3),
                duplicate: false,
                ..
            }
        )),
        "{frames:?}"
    );
    let received = alice.event().await;
    assert_eq!(
        received.data,
        EventKind::Message {
            body: MessageBody::text("hello")
        }
    );
    assert_eq!(received.author, Actor::Visitor("v1".parse().expect("id")));

    let first = alice.send(conversation, "r1", "hi, how can I help?").await;
    let frames = [first, alice.next_reply().await];
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Event(Event { seq: Seq(4), .. }))),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Ack { seq: Seq(4), .. })),
        "{frames:?}"
    );
    assert_eq!(
        v1.event().await.author,
        Actor::Agent("alice".parse().expect("id"))
    );
}

#[tokio::test]
async fn the_queue_drains_when_an_agent_comes_online_and_when_capacity_frees() {
    let engine = engine().await;
    engine.put_agent(agent("alice", 1)).await.expect("agent");
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let first = v1.open("o1").await;
    let second = v2.open("o1").await;
    assert_eq!(first.state, ConversationState::Queued, "nobody online");
    assert_eq!(engine.queue(&tenant(), &group()), vec![first.id, second.id]);

    let mut alice = Client::connect(&engine, agent_identity("alice")).await;
    assert!(
        matches!(alice.next_reply().await, ServerFrame::Conversation { conversation } if conversation.id == first.id)
    );
    assert_eq!(
        engine.queue(&tenant(), &group()),
        vec![second.id],
        "capacity 1: the second waits"
    );
    assert_eq!(engine.agent_load(&tenant(), &"alice".parse().expect("id")), 1);

    // Closing frees the capacity: the next queued conversation is assigned before the close is answered.
    alice
        .session
        .receive(&serde_json::json!({"type": "close", "conversation": first.id}).to_string())
        .await;
    let frames = alice.replies(2).await;
    assert!(
        matches!(&frames[0], ServerFrame::Conversation { conversation } if conversation.id == second.id),
        "{frames:?}"
    );
    assert!(
        matches!(frames[1], ServerFrame::Closed { seq: Seq(3), .. }),
        "{frames:?}"
    );
    assert!(engine.queue(&tenant(), &group()).is_empty());
}

#[tokio::test]
async fn an_agent_without_connections_gets_no_new_conversations() {
    let engine = engine().await;
    engine.put_agent(agent("alice", 5)).await.expect("agent");
    let alice = Client::connect(&engine, agent_identity("alice")).await;
    let alice_id: AgentId = "alice".parse().expect("id");
    assert!(engine.is_online(&tenant(), &alice_id));
    drop(alice);
    assert!(
        !engine.is_online(&tenant(), &alice_id),
        "grace period is zero in this test"
    );
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    assert_eq!(v1.open("o1").await.state, ConversationState::Queued);
}

#[tokio::test]
async fn a_presence_grace_period_keeps_a_reconnecting_agent_online() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine_from(builder(store).presence_grace(Duration::from_secs(30))).await;
    engine.put_agent(agent("alice", 5)).await.expect("agent");
    let alice_id: AgentId = "alice".parse().expect("id");
    tokio::time::pause();
    let step = |secs| async move {
        // Let timer tasks spawned just now start waiting before the clock moves.
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_secs(secs)).await;
        tokio::task::yield_now().await;
    };
    // t=0: the last connection goes; offline is due at t=30 unless alice comes back.
    drop(Client::connect(&engine, agent_identity("alice")).await);
    step(10).await;
    assert!(engine.is_online(&tenant(), &alice_id), "within the grace period");
    // t=10: back; t=20: gone again, so offline is now due at t=50.
    let again = Client::connect(&engine, agent_identity("alice")).await;
    step(10).await;
    drop(again);
    // t=35: the first departure's timer (t=30) must not cut the second grace period short.
    step(15).await;
    assert!(
        engine.is_online(&tenant(), &alice_id),
        "each departure gets its own grace period"
    );
    step(16).await;
    assert!(
        !engine.is_online(&tenant(), &alice_id),
        "offline once the second grace period is over"
    );
}

#[tokio::test]
async fn resubscribing_after_a_cursor_replays_exactly_what_was_missed() {
    let engine = engine().await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    for n in 0..300 {
        // More than one store page (256) of history.
        let ack = engine
            .send(
                &visitor("v1"),
                conversation,
                client_id(&format!("m{n}")),
                MessageBody::text("x"),
            )
            .await;
        let ack = ack.expect("send");
        assert!(!ack.duplicate);
    }
    let mut reader = Client::connect(&engine, visitor("v1")).await;
    reader.subscribe(conversation, 7).await;
    for expected in 8..=301 {
        assert_eq!(reader.event().await.seq, Seq(expected));
    }
    engine
        .send(
            &visitor("v1"),
            conversation,
            client_id("live"),
            MessageBody::text("live"),
        )
        .await
        .expect("send");
    assert_eq!(
        reader.event().await.seq,
        Seq(302),
        "then live, without a gap or a repeat"
    );
}

#[tokio::test]
async fn concurrent_sends_reach_a_subscriber_in_order_without_gaps() {
    let engine = engine().await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    let mut reader = Client::connect(&engine, visitor("v1")).await;
    reader.subscribe(conversation, 0).await;
    let mut senders = Vec::new();
    for task in 0..4 {
        let engine = engine.clone();
        senders.push(tokio::spawn(async move {
            for n in 0..50 {
                let id = client_id(&format!("t{task}-{n}"));
                engine
                    .send(&visitor("v1"), conversation, id, MessageBody::text("x"))
                    .await
                    .expect("send");
            }
        }));
    }
    for expected in 1..=201 {
        assert_eq!(reader.event().await.seq, Seq(expected));
    }
    for sender in senders {
        sender.await.expect("task");
    }
}

#[tokio::test]
async fn repeated_sends_store_one_message() {
    let engine = engine().await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    let first = v1.send(conversation, "m1", "hello").await;
    let second = v1.send(conversation, "m1", "hello").await;
    assert!(
        matches!(
            first,
            ServerFrame::Ack {
                seq: Seq(2),
                duplicate: false,
                ..
            }
        ),
        "{first:?}"
    );
    assert!(
        matches!(
            second,
            ServerFrame::Ack {
                seq: Seq(2),
                duplicate: true,
                ..
            }
        ),
        "{second:?}"
    );
    let log = engine
        .log()
        .events_after(conversation, Seq::ZERO, 10)
        .await
        .expect("log");
    assert_eq!(log.len(), 2);
}

#[tokio::test]
async fn visitors_and_tenants_are_isolated() {
    let engine = engine().await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let outsider = Identity {
        tenant: TenantId::new("other").expect("id"),
        principal: Principal::Visitor("v1".parse().expect("id")),
        role: crate::auth::Role::Agent,
    };
    let mut v1_elsewhere = Client::connect(&engine, outsider).await;
    for client in [&mut v2, &mut v1_elsewhere] {
        let subscribe = client
            .request(serde_json::json!({"type": "subscribe", "conversation": conversation}))
            .await;
        assert_eq!(error_code(&subscribe), Some(ErrorCode::NotFound));
        let send = client.send(conversation, "x", "let me in").await;
        assert_eq!(error_code(&send), Some(ErrorCode::NotFound));
        let typing = client
            .request(serde_json::json!({"type": "typing", "conversation": conversation, "active": true}))
            .await;
        assert_eq!(error_code(&typing), Some(ErrorCode::NotFound));
    }
    // An agent of the tenant who does not own the conversation cannot write to it.
    engine
        .put_agent(Agent {
            groups: vec![],
            ..agent("mallory", 1)
        })
        .await
        .expect("agent");
    let mut mallory = Client::connect(&engine, agent_identity("mallory")).await;
    let send = mallory.send(conversation, "x", "hi").await;
    assert_eq!(error_code(&send), Some(ErrorCode::Forbidden));
    let log = engine
        .log()
        .events_after(conversation, Seq::ZERO, 10)
        .await
        .expect("log");
    assert_eq!(log.len(), 1, "nothing stored");
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_store_nothing() {
    let engine = engine_with(
        Arc::new(MemoryStore::new()),
        Limits {
            max_text_bytes: 10,
            ..Limits::default()
        },
    )
    .await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    v1.session.receive("{not json").await;
    assert_eq!(error_code(&v1.next().await), Some(ErrorCode::BadJson));
    v1.session.receive(r#"{"type":"fly","id":"r1"}"#).await;
    assert!(
        matches!(v1.next().await, ServerFrame::Error { code: ErrorCode::UnknownType, id: Some(id), .. } if id == "r1")
    );
    let too_large = v1.send(conversation, "big", "eleven byte").await;
    assert_eq!(error_code(&too_large), Some(ErrorCode::TooLarge));
    let hello = v1
        .request(serde_json::json!({"type": "hello", "v": 1, "token": "x"}))
        .await;
    assert_eq!(error_code(&hello), Some(ErrorCode::HelloRequired));
    v1.session.receive_binary();
    assert_eq!(error_code(&v1.next().await), Some(ErrorCode::UnsupportedData));
    let unknown = v1.send(ConversationId::generate(), "m", "hi").await;
    assert_eq!(error_code(&unknown), Some(ErrorCode::NotFound));
    let closed = v1
        .request(serde_json::json!({"type": "close", "conversation": conversation}))
        .await;
    assert!(matches!(closed, ServerFrame::Closed { .. }));
    // (A visitor's message to the closed conversation would reopen it: `routing_tests` covers that.)
    let again = v1
        .request(serde_json::json!({"type": "close", "conversation": conversation}))
        .await;
    assert!(
        matches!(again, ServerFrame::Closed { seq: Seq(3), .. }),
        "closing twice is not an error: {again:?}"
    );
    let log = engine
        .log()
        .events_after(conversation, Seq::ZERO, 10)
        .await
        .expect("log");
    assert_eq!(
        log.iter().map(|e| e.data.name()).collect::<Vec<_>>(),
        vec!["created", "missed", "closed"],
        "left before any agent took it: recorded as missed"
    );
    assert!(
        matches!(
            v1.request(serde_json::json!({"type": "ping"})).await,
            ServerFrame::Pong
        ),
        "still usable"
    );
}

#[tokio::test]
async fn hello_is_checked() {
    let engine = engine().await;
    let identity = visitor("v1");
    let token = tokens().issue(&identity, Duration::from_secs(60));
    let accepted = engine
        .accept(&format!(r#"{{"type":"hello","v":1,"token":"{token}"}}"#))
        .await;
    assert_eq!(
        accepted.map(|(session, _)| session.identity().clone()).ok(),
        Some(identity.clone())
    );
    let cases = [
        (
            r#"{"type":"ping"}"#.to_owned(),
            ErrorCode::HelloRequired,
            CloseReason::ProtocolError,
        ),
        (
            format!(r#"{{"type":"hello","v":2,"token":"{token}"}}"#),
            ErrorCode::UnsupportedVersion,
            CloseReason::ProtocolError,
        ),
        (
            r#"{"type":"hello","v":1,"token":"kf1.forged.token"}"#.to_owned(),
            ErrorCode::InvalidToken,
            CloseReason::Unauthenticated,
        ),
        (
            "garbage".to_owned(),
            ErrorCode::BadJson,
            CloseReason::ProtocolError,
        ),
    ];
    for (frame, code, reason) in cases {
        let rejection = engine.accept(&frame).await.expect_err("rejected");
        assert_eq!(error_code(&rejection.frame), Some(code), "{frame}");
        assert_eq!(rejection.reason, reason, "{frame}");
    }
    let expired = SignedTokens::new(
        &[42; 32],
        Arc::new(crate::clock::ManualClock::new(crate::model::Timestamp(0))),
    )
    .expect("key")
    .issue(&identity, Duration::from_secs(60));
    let rejection = engine
        .accept(&format!(r#"{{"type":"hello","v":1,"token":"{expired}"}}"#))
        .await
        .expect_err("expired");
    assert_eq!(error_code(&rejection.frame), Some(ErrorCode::TokenExpired));
    assert_eq!(rejection.reason, CloseReason::Unauthenticated);
}

#[tokio::test]
async fn unknown_agents_and_too_many_connections_are_refused() {
    let engine = engine_with(
        Arc::new(MemoryStore::new()),
        Limits {
            connections_per_identity: 2,
            ..Limits::default()
        },
    )
    .await;
    let refused = engine.connect(agent_identity("ghost")).await.map(|_| ());
    assert!(matches!(refused, Err(RequestError::Forbidden(_))), "{refused:?}");
    let _one = Client::connect(&engine, visitor("v1")).await;
    let two = Client::connect(&engine, visitor("v1")).await;
    let third = engine.connect(visitor("v1")).await.map(|_| ());
    assert!(
        matches!(third, Err(RequestError::TooManyConnections(2))),
        "{third:?}"
    );
    drop(two);
    assert!(
        engine.connect(visitor("v1")).await.is_ok(),
        "a closed connection frees its place"
    );
}

#[tokio::test]
async fn sends_are_rate_limited() {
    let engine = engine_with(
        Arc::new(MemoryStore::new()),
        Limits {
            requests_per_second: 2,
            ..Limits::default()
        },
    )
    .await;
    tokio::time::pause();
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    let mut limited = 0;
    for n in 0..6 {
        if error_code(&v1.send(conversation, &format!("m{n}"), "x").await) == Some(ErrorCode::RateLimited) {
            limited += 1;
        }
    }
    assert_eq!(limited, 3, "burst of 4 (open + 3 sends), then refused");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(matches!(
        v1.send(conversation, "later", "x").await,
        ServerFrame::Ack { .. }
    ));
}

#[tokio::test]
async fn typing_is_relayed_to_the_others_only() {
    let engine = engine().await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;
    v1.session
        .receive(
            &serde_json::json!({"type": "typing", "conversation": conversation, "active": true}).to_string(),
        )
        .await;
    let typing = alice.next().await;
    assert!(
        matches!(
            typing,
            ServerFrame::Typing {
                active: true,
                from: Actor::Visitor(_),
                ..
            }
        ),
        "{typing:?}"
    );
    assert!(v1.outbox.try_next().is_none(), "not echoed to the typist");
    let log = engine
        .log()
        .events_after(conversation, Seq::ZERO, 10)
        .await
        .expect("log");
    assert_eq!(log.len(), 2, "typing is never stored");
}

#[tokio::test]
async fn a_stale_epoch_resets_the_cursor() {
    let engine = engine().await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    let frame = v1
        .request(serde_json::json!({"type": "subscribe", "conversation": conversation, "after": 40, "epoch": "old"}))
        .await;
    assert!(
        matches!(
            frame,
            ServerFrame::Subscribed {
                after: Seq(0),
                reset: true,
                ..
            }
        ),
        "{frame:?}"
    );
    assert_eq!(v1.event().await.seq, Seq(1));
}

#[tokio::test]
async fn a_client_that_does_not_read_is_cut_off_and_resumes() {
    let limits = Limits {
        outbound_queue_bytes: 4 * 1024,
        ..Limits::default()
    };
    let engine = engine_with(Arc::new(MemoryStore::new()), limits).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    let mut stalled = Client::connect(&engine, visitor("v1")).await;
    stalled.subscribe(conversation, 1).await;
    engine
        .send(
            &visitor("v1"),
            conversation,
            client_id("first"),
            MessageBody::text("x"),
        )
        .await
        .expect("send");
    assert_eq!(stalled.event().await.seq, Seq(2));
    // Let the replay task see it has caught up and switch to live delivery.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let text = "y".repeat(1_000);
    for n in 0..20 {
        engine
            .send(
                &visitor("v1"),
                conversation,
                client_id(&format!("m{n}")),
                MessageBody::text(&text),
            )
            .await
            .expect("send");
        assert!(
            stalled.outbox.queued_bytes() <= 4 * 1024,
            "the queue never exceeds its bound"
        );
    }
    let mut frames = 0;
    let reason = loop {
        let next = tokio::time::timeout(Duration::from_secs(5), stalled.outbox.next()).await;
        match next.expect("closed within 5 s") {
            Outgoing::Frame(_) | Outgoing::Event { .. } => frames += 1,
            Outgoing::Close(reason) => break reason,
        }
    };
    assert_eq!(
        (frames, reason),
        (0, CloseReason::SlowConsumer),
        "queued frames are dropped on close"
    );
    drop(stalled);
    let mut resumed = Client::connect(&engine, visitor("v1")).await;
    resumed.subscribe(conversation, 1).await;
    for expected in 2..=22 {
        assert_eq!(resumed.event().await.seq, Seq(expected));
    }
}

#[tokio::test]
async fn an_engine_restarted_on_the_same_store_restores_queues_and_loads() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = engine_with(Arc::clone(&store), Limits::default()).await;
    engine.put_agent(agent("alice", 1)).await.expect("agent");
    let alice = Client::connect(&engine, agent_identity("alice")).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let first = v1.open("o1").await;
    let second = v2.open("o1").await;
    assert!(first.state.agent().is_some());
    drop((alice, v1, v2));
    drop(engine);

    let restarted = engine_with(store, Limits::default()).await;
    let alice_id: AgentId = "alice".parse().expect("id");
    assert_eq!(restarted.agent_load(&tenant(), &alice_id), 1);
    assert_eq!(restarted.queue(&tenant(), &group()), vec![second.id]);
    let mut alice = Client::connect(&restarted, agent_identity("alice")).await;
    alice
        .session
        .receive(&serde_json::json!({"type": "close", "conversation": first.id}).to_string())
        .await;
    let frames = alice.replies(2).await;
    assert!(
        matches!(&frames[0], ServerFrame::Conversation { conversation } if conversation.id == second.id),
        "{frames:?}"
    );
    assert!(matches!(frames[1], ServerFrame::Closed { .. }), "{frames:?}");
}

#[tokio::test]
async fn a_close_racing_an_assignment_leaves_no_capacity_behind() {
    // The close commits first, then the (stale) assignment snapshot arrives: the router must not resurrect it.
    let engine = engine().await;
    engine.put_agent(agent("alice", 1)).await.expect("agent");
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await;
    let alice_id: AgentId = "alice".parse().expect("id");
    let _alice = Client::connect(&engine, agent_identity("alice")).await;
    let assigned = engine
        .log()
        .conversation(conversation.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(assigned.state.agent(), Some(&alice_id));
    let closed_seq = engine
        .close(&visitor("v1"), conversation.id)
        .await
        .expect("close");
    assert_eq!(engine.agent_load(&tenant(), &alice_id), 0);
    assert!(engine.inner.routing.ledger.update(&assigned).is_empty());
    assert_eq!(
        engine.agent_load(&tenant(), &alice_id),
        0,
        "a stale snapshot is ignored"
    );
    assert!(
        engine
            .inner
            .routing
            .ledger
            .open_conversation(&conversation.id)
            .is_none()
    );
    let reopened = v1.open("o2").await;
    assert_ne!(
        reopened.id, conversation.id,
        "the visitor can open a new conversation"
    );
    assert_eq!(closed_seq, Seq(3));
}

#[tokio::test]
async fn a_long_history_does_not_flood_the_inbox() {
    let limits = Limits {
        outbound_queue_bytes: 4 * 1024,
        ..Limits::default()
    };
    let engine = engine_with(Arc::new(MemoryStore::new()), limits).await;
    let me = visitor("v1");
    for n in 0..60 {
        let opened = engine
            .open(&me, client_id(&format!("o{n}")), None, None, Default::default())
            .await
            .expect("open");
        engine.close(&me, opened.conversation.id).await.expect("close");
    }
    let open = engine
        .open(&me, client_id("current"), None, None, Default::default())
        .await
        .expect("open")
        .conversation;
    let (_session, mut outbox) = engine
        .connect(me)
        .await
        .expect("a long inbox is not a slow consumer");
    assert!(matches!(outbox.next().await, Outgoing::Frame(_)), "welcome");
    let Outgoing::Frame(inbox) = outbox.next().await else {
        panic!("inbox expected")
    };
    let ServerFrame::Inbox { conversations, .. } = serde_json::from_slice(&inbox).expect("frame") else {
        panic!("inbox expected")
    };
    assert_eq!(conversations.len(), Limits::default().inbox_conversations);
    assert_eq!(conversations[0].id, open.id, "open conversations come first");
    assert!(
        conversations[1..]
            .iter()
            .all(|c| c.state == ConversationState::Closed)
    );
}

#[tokio::test]
async fn typing_in_a_closed_conversation_is_refused() {
    let engine = engine().await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let conversation = v1.open("o1").await.id;
    engine.close(&visitor("v1"), conversation).await.expect("close");
    let typing = v1
        .request(serde_json::json!({"type": "typing", "conversation": conversation, "active": true}))
        .await;
    assert_eq!(error_code(&typing), Some(ErrorCode::InvalidState));
}

/// A connection that follows all its principal's conversations, keeping the cursor an SSE stream would send.
struct Follower {
    _session: Session,
    outbox: Outbox,
    cursor: Cursor,
    events: Vec<(ConversationId, u64)>,
}

impl Follower {
    /// Connects, follows from `cursor`, and returns with the `following` frame's `reset`.
    async fn start(engine: &Engine, identity: Identity, cursor: Cursor) -> (Follower, bool) {
        let (mut session, outbox) = engine.connect(identity).await.expect("connect");
        session.follow(&cursor).await.expect("follow");
        let mut follower = Follower {
            _session: session,
            outbox,
            cursor,
            events: Vec::new(),
        };
        loop {
            if let ServerFrame::Following { reset } = follower.next().await {
                return (follower, reset);
            }
        }
    }

    async fn next(&mut self) -> ServerFrame {
        let outgoing = tokio::time::timeout(Duration::from_secs(5), self.outbox.next())
            .await
            .expect("a frame within 5 s");
        if let Outgoing::Event {
            conversation, seq, ..
        } = &outgoing
        {
            self.cursor.advance(*conversation, *seq);
            self.events.push((*conversation, seq.0));
        }
        let frame = outgoing.frame().expect("not closed");
        serde_json::from_slice(frame).expect("server frame")
    }

    /// Reads frames until `n` events have arrived in total.
    async fn until_events(&mut self, n: usize) {
        while self.events.len() < n {
            self.next().await;
        }
    }
}

#[tokio::test]
async fn an_agent_resumes_all_its_conversations_with_one_cursor() {
    let engine = engine().await;
    engine.put_agent(agent("alice", 3)).await.expect("agent");
    let (mut alice, reset) =
        Follower::start(&engine, agent_identity("alice"), Cursor::new(engine.epoch())).await;
    assert!(!reset);
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let one = v1.open("o1").await.id;
    let two = v2.open("o1").await.id;
    // Assigned conversations join the stream by themselves, from their start.
    alice.until_events(4).await;
    assert_eq!(alice.events, [(one, 1), (one, 2), (two, 1), (two, 2)]);

    let cursor = alice.cursor.clone();
    drop(alice);
    v1.send(one, "m1", "first").await;
    v2.send(two, "m1", "second").await;
    v1.send(one, "m2", "third").await;
    v2.request(serde_json::json!({"type": "close", "conversation": two}))
        .await;

    let (mut alice, reset) = Follower::start(&engine, agent_identity("alice"), cursor).await;
    assert!(!reset);
    alice.until_events(4).await;
    let mut missed = alice.events.clone();
    missed.sort();
    let mut expected = vec![(one, 3), (one, 4), (two, 3), (two, 4)];
    expected.sort();
    assert_eq!(
        missed, expected,
        "exactly what was missed, the closed conversation's end included"
    );
    v1.send(one, "m3", "live").await;
    alice.until_events(5).await;
    assert_eq!(alice.events[4], (one, 5));
}

#[tokio::test]
async fn a_cursor_of_another_epoch_resets_and_replays_from_the_start() {
    let engine = engine().await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let one = v1.open("o1").await.id;
    v1.send(one, "m1", "hello").await;
    let mut stale = Cursor::new(&Epoch("another store".into()));
    stale.advance(one, Seq(2));
    let (mut follower, reset) = Follower::start(&engine, visitor("v1"), stale).await;
    assert!(reset);
    follower.until_events(2).await;
    assert_eq!(follower.events, [(one, 1), (one, 2)]);
    // A conversation the visitor opens later joins the stream.
    let mut other_tab = Client::connect(&engine, visitor("v1")).await;
    engine
        .put_group(Group {
            tenant: tenant(),
            id: GroupId::new("sales").expect("id"),
            name: "Sales".into(),
            strategy: Default::default(),
            max_active: None,
            welcome: None,
            timers: Default::default(),
            handover: None,
        })
        .await
        .expect("group");
    let opened = other_tab
        .request(serde_json::json!({"type": "open", "client_id": "o2", "group": "sales"}))
        .await;
    let ServerFrame::Opened { conversation, .. } = opened else {
        panic!("opened expected, got {opened:?}")
    };
    follower.until_events(3).await;
    assert_eq!(follower.events[2], (conversation.id, 1));
}

#[tokio::test]
async fn requests_without_a_connection_get_the_same_replies_and_errors() {
    let engine = engine().await;
    let (_alice, mut v1, conversation) = assigned_chat(&engine).await;
    let me = visitor("v1");
    let send = serde_json::json!({"type": "send", "id": "r1", "conversation": conversation, "client_id": "h1", "body": {"text": "over http"}});
    let reply = engine.request(&me, &send.to_string()).await;
    assert!(
        matches!(
            reply,
            Some(ServerFrame::Ack {
                seq: Seq(3),
                duplicate: false,
                ..
            })
        ),
        "{reply:?}"
    );
    let again = engine.request(&me, &send.to_string()).await;
    assert!(
        matches!(
            again,
            Some(ServerFrame::Ack {
                seq: Seq(3),
                duplicate: true,
                ..
            })
        ),
        "{again:?}"
    );
    assert!(matches!(v1.event().await.data, EventKind::Message { .. }));

    let typing = serde_json::json!({"type": "typing", "conversation": conversation, "active": true});
    assert_eq!(engine.request(&me, &typing.to_string()).await, None);
    assert!(
        matches!(v1.next().await, ServerFrame::Typing { .. }),
        "no connection sent it, so every subscriber gets it"
    );
    let read = serde_json::json!({"type": "read", "conversation": conversation, "seq": 3});
    assert_eq!(engine.request(&me, &read.to_string()).await, None);
    assert!(matches!(v1.next().await, ServerFrame::Read { seq: Seq(3), .. }));

    for (frame, code) in [
        (
            serde_json::json!({"type": "subscribe", "conversation": conversation}),
            ErrorCode::InvalidFrame,
        ),
        (
            serde_json::json!({"type": "hello", "v": 1, "token": "x"}),
            ErrorCode::HelloRequired,
        ),
        (
            serde_json::json!({"type": "read", "conversation": conversation, "seq": 0}),
            ErrorCode::InvalidFrame,
        ),
        (serde_json::json!({"type": "dance"}), ErrorCode::UnknownType),
    ] {
        let reply = engine.request(&me, &frame.to_string()).await.expect("a reply");
        assert_eq!(error_code(&reply), Some(code), "{frame}");
    }
    let stranger = engine
        .request(&visitor("v2"), &send.to_string())
        .await
        .expect("a reply");
    assert_eq!(error_code(&stranger), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn the_rate_limit_is_per_identity_across_connections() {
    let limits = Limits {
        requests_per_second: 2,
        ..Limits::default()
    };
    let engine = engine_with(Arc::new(MemoryStore::new()), limits).await;
    let (_alice, mut v1, conversation) = assigned_chat(&engine).await;
    let mut second_tab = Client::connect(&engine, visitor("v1")).await;
    let typing = serde_json::json!({"type": "typing", "conversation": conversation, "active": true});
    // The open used one token of the burst of 4; two connections and HTTP share the rest.
    v1.session.receive(&typing.to_string()).await;
    second_tab.session.receive(&typing.to_string()).await;
    assert_eq!(engine.request(&visitor("v1"), &typing.to_string()).await, None);
    let limited = engine
        .request(&visitor("v1"), &typing.to_string())
        .await
        .expect("refused");
    assert_eq!(error_code(&limited), Some(ErrorCode::RateLimited));
}
// Working hours, offline messages, visitor context and quick replies.
mod extras;
// Entry points and how open resolves its group.
mod entry;
// Protocol promises: retried sends after the conversation moved on, cursors beyond the log, end of replay.
mod protocol;
// The one write path: every kind of event reaches the log, the subscribers and the change feed.
mod pipeline;
// Ratings and private notes.
mod workspace;
// Shutdown and health.
mod lifecycle;
// Labels and custom attributes.
mod tagging;
// On hold (snoozed).
mod snooze;
// Seen marks: read receipts kept across reconnects and restarts.
mod seen;
// Statistics from the change feed, and the live monitor.
mod stats;
