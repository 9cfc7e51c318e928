//! Routing through the engine: each strategy's choice on constructed cases, claims, transfers, statuses, queue
//! announcements, and a property test of the ledger's invariants under random interleavings.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::auth::{Identity, Principal, SignedTokens};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::limits::Limits;
use crate::model::{
    Actor, Agent, AgentId, AgentStatus, ClientId, Conversation, ConversationId, ConversationState, Event,
    EventKind, Group, GroupId, MessageBody, MissedReason, Seq, Strategy, TenantId, Timestamp,
};
use crate::protocol::{ErrorCode, ServerFrame};
use crate::routing::{Candidate, RoutingPolicy};
use crate::store::{EventDraft, MemoryStore, Store, StoreError, Stores};

const TENANT: &str = "shop";

fn tenant() -> TenantId {
    TenantId::new(TENANT).expect("id")
}

fn gid(id: &str) -> GroupId {
    GroupId::new(id).expect("id")
}

fn aid(id: &str) -> AgentId {
    AgentId::new(id).expect("id")
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
        principal: Principal::Agent(aid(id)),
        role: crate::auth::Role::Agent,
    }
}

fn agent(id: &str, groups: &[&str], capacity: u32) -> Agent {
    Agent {
        tenant: tenant(),
        id: aid(id),
        name: id.into(),
        groups: groups.iter().map(|g| gid(g)).collect(),
        capacity,
        group_capacity: BTreeMap::new(),
        active: true,
    }
}

fn group(id: &str, strategy: Strategy) -> Group {
    Group {
        strategy,
        ..Group::new(tenant(), gid(id), id)
    }
}

/// An engine with a manual clock, no presence grace, and `groups`.
async fn engine_with(
    groups: Vec<Group>,
    builder: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> (Engine, Arc<ManualClock>) {
    engine_over(Stores::from(Arc::new(MemoryStore::new())), groups, builder).await
}

/// [`engine_with`] over the given stores.
async fn engine_over(
    stores: Stores,
    groups: Vec<Group>,
    builder: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let tokens = SignedTokens::new(&[7; 32], Arc::new(SystemClock)).expect("key");
    let base = Engine::builder(stores, Arc::new(tokens))
        .presence_grace(Duration::ZERO)
        .clock(Arc::clone(&clock) as Arc<dyn Clock>);
    let engine = builder(base).build().await.expect("engine");
    for group in groups {
        engine.put_group(group).await.expect("group");
    }
    (engine, clock)
}

/// A live connection; dropping it disconnects.
struct Live {
    _session: Session,
    outbox: Outbox,
}

impl Live {
    /// Every frame queued so far (without waiting).
    fn drain(&mut self) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        while let Some(outgoing) = self.outbox.try_next() {
            let Some(bytes) = outgoing.frame() else { break };
            frames.push(serde_json::from_slice(bytes).expect("frame"));
        }
        frames
    }
}

async fn connect(engine: &Engine, identity: Identity) -> Live {
    let (session, outbox) = engine.connect(identity).await.expect("connect");
    Live {
        _session: session,
        outbox,
    }
}

async fn open(engine: &Engine, who: &str, group: &str) -> Conversation {
    engine
        .open(
            &visitor(who),
            ClientId::new(format!("open-{who}-{group}")).expect("id"),
            Some(gid(group)),
            None,
            Default::default(),
        )
        .await
        .expect("open")
        .conversation
}

fn owner(engine: &Engine, id: ConversationId) -> Option<String> {
    engine
        .inner
        .routing
        .ledger
        .open_conversation(&id)
        .and_then(|c| c.state.agent().map(|a| a.as_str().to_owned()))
}

#[tokio::test]
async fn round_robin_takes_turns_and_least_busy_balances() {
    let (engine, clock) = engine_with(
        vec![
            group("rr", Strategy::RoundRobin),
            group("lb", Strategy::LeastBusy),
        ],
        |b| b,
    )
    .await;
    for (name, capacity) in [("a", 5), ("b", 5), ("c", 2)] {
        engine
            .put_agent(agent(name, &["rr", "lb"], capacity))
            .await
            .expect("agent");
    }
    let _live: Vec<Live> =
        futures::future::join_all(["a", "b", "c"].map(|a| connect(&engine, agent_identity(a)))).await;
    let mut owners = Vec::new();
    for n in 0..5 {
        clock.advance(Duration::from_millis(1));
        let c = open(&engine, &format!("v{n}"), "rr").await;
        owners.push(owner(&engine, c.id).expect("assigned"));
    }
    // Never-assigned first (by id), then the least recently assigned; c is full after two.
    assert_eq!(owners, ["a", "b", "c", "a", "b"]);

    // Least busy: loads are a 2, b 2, c 1 of capacity 5, 5, 2 → spare 3, 3, 1.
    let c = open(&engine, "w0", "lb").await;
    assert_eq!(
        owner(&engine, c.id).as_deref(),
        Some("a"),
        "a tie on spare goes to the least recently assigned"
    );
    let c = open(&engine, "w1", "lb").await;
    assert_eq!(owner(&engine, c.id).as_deref(), Some("b"), "most spare capacity");
    let c = open(&engine, "w2", "lb").await;
    assert_eq!(
        owner(&engine, c.id).as_deref(),
        Some("a"),
        "spare 2 and 2: a was assigned before b"
    );
}

#[tokio::test]
async fn sticky_returns_a_visitor_to_its_previous_agent_when_it_can() {
    let (engine, _clock) = engine_with(vec![group("st", Strategy::Sticky)], |b| b).await;
    engine.put_agent(agent("a", &["st"], 3)).await.expect("agent");
    engine.put_agent(agent("b", &["st"], 3)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let b = connect(&engine, agent_identity("b")).await;
    let first = open(&engine, "v1", "st").await;
    assert_eq!(owner(&engine, first.id).as_deref(), Some("a"));
    let other = open(&engine, "v2", "st").await;
    assert_eq!(owner(&engine, other.id).as_deref(), Some("b"));
    engine.close(&visitor("v1"), first.id).await.expect("close");
    // b is less busy than a now (1 vs 0 — a's only one closed… give a another one first).
    let filler = open(&engine, "v3", "st").await;
    assert_eq!(owner(&engine, filler.id).as_deref(), Some("a"));
    let again = engine
        .open(
            &visitor("v1"),
            ClientId::new("again").expect("id"),
            Some(gid("st")),
            None,
            Default::default(),
        )
        .await
        .expect("open")
        .conversation;
    assert_eq!(
        owner(&engine, again.id).as_deref(),
        Some("a"),
        "back to its previous agent, though as busy as b"
    );
    engine.close(&visitor("v1"), again.id).await.expect("close");
    engine.close(&visitor("v2"), other.id).await.expect("close");
    // The previous agent cannot take it (b is offline): least busy decides.
    drop(b);
    let v2 = engine
        .open(
            &visitor("v2"),
            ClientId::new("again").expect("id"),
            Some(gid("st")),
            None,
            Default::default(),
        )
        .await
        .expect("open")
        .conversation;
    assert_eq!(owner(&engine, v2.id).as_deref(), Some("a"));
}

/// A host policy: the candidate whose id is last, or nobody when told so.
#[derive(Debug)]
struct LastById {
    refuse: bool,
}

#[async_trait]
impl RoutingPolicy for LastById {
    async fn choose(&self, _conversation: &Conversation, candidates: &[Candidate]) -> Option<AgentId> {
        if self.refuse {
            return None;
        }
        candidates.iter().map(|c| c.agent.clone()).max()
    }
}

#[tokio::test]
async fn external_policies_are_resolved_by_name() {
    let (engine, _clock) = engine_with(
        vec![
            group("ext", Strategy::External("last".into())),
            group("no", Strategy::External("nobody".into())),
            group("missing", Strategy::External("unregistered".into())),
        ],
        |b| {
            b.policy("last", Arc::new(LastById { refuse: false }))
                .policy("nobody", Arc::new(LastById { refuse: true }))
        },
    )
    .await;
    for name in ["a", "b", "c"] {
        engine
            .put_agent(agent(name, &["ext", "no", "missing"], 3))
            .await
            .expect("agent");
    }
    let _live: Vec<Live> =
        futures::future::join_all(["a", "b", "c"].map(|a| connect(&engine, agent_identity(a)))).await;
    let c = open(&engine, "v1", "ext").await;
    assert_eq!(owner(&engine, c.id).as_deref(), Some("c"));
    let waiting = open(&engine, "v2", "no").await;
    assert_eq!(
        owner(&engine, waiting.id),
        None,
        "a policy that answers None leaves it queued"
    );
    assert_eq!(engine.queue(&tenant(), &gid("no")), vec![waiting.id]);
    let fallback = open(&engine, "v3", "missing").await;
    assert_eq!(
        owner(&engine, fallback.id).as_deref(),
        Some("a"),
        "an unregistered name uses the default policy"
    );
}

#[tokio::test]
async fn manual_groups_wait_for_a_claim_and_exactly_one_claim_wins() {
    let (engine, _clock) = engine_with(vec![group("desk", Strategy::Manual)], |b| b).await;
    engine.put_agent(agent("a", &["desk"], 2)).await.expect("agent");
    engine.put_agent(agent("b", &["desk"], 2)).await.expect("agent");
    let mut a = connect(&engine, agent_identity("a")).await;
    let _b = connect(&engine, agent_identity("b")).await;
    a.drain();
    let c = open(&engine, "v1", "desk").await;
    assert_eq!(owner(&engine, c.id), None, "nobody is assigned automatically");
    let pushed = a.drain();
    assert!(
        pushed.iter().any(
            |f| matches!(f, ServerFrame::Queue { id: None, conversations } if conversations.len() == 1
            && conversations[0].conversation.id == c.id && conversations[0].position == 1)
        ),
        "agents of the group see the queue change: {pushed:?}"
    );
    assert_eq!(engine.queue_view(&agent_identity("b")).expect("view").len(), 1);
    let (ia, ib) = (agent_identity("a"), agent_identity("b"));
    let (first, second) = tokio::join!(engine.claim(&ia, c.id), engine.claim(&ib, c.id));
    let wins = [&first, &second].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{first:?} {second:?}");
    let loser = if first.is_ok() { second } else { first };
    assert_eq!(
        loser.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::InvalidState)
    );
    assert!(owner(&engine, c.id).is_some());
    assert!(engine.queue_view(&agent_identity("b")).expect("view").is_empty());
    // Capacity holds for claims too.
    let (x, y) = (
        open(&engine, "v2", "desk").await,
        open(&engine, "v3", "desk").await,
    );
    let claimer = owner(&engine, c.id).expect("owner");
    engine
        .claim(&agent_identity(&claimer), x.id)
        .await
        .expect("second claim");
    let full = engine.claim(&agent_identity(&claimer), y.id).await;
    assert_eq!(full.map(|_| ()).map_err(|e| e.code()), Err(ErrorCode::AtCapacity));
    let visitor_claim = engine.claim(&visitor("v3"), y.id).await;
    assert_eq!(
        visitor_claim.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::Forbidden)
    );
}

#[tokio::test]
async fn per_group_capacity_overrides_and_group_caps_are_respected() {
    let (engine, _clock) = engine_with(
        vec![
            group("chat", Strategy::LeastBusy),
            Group {
                max_active: Some(1),
                ..group("vip", Strategy::LeastBusy)
            },
        ],
        |b| b,
    )
    .await;
    let mut a = agent("a", &["chat", "vip"], 3);
    a.group_capacity.insert(gid("chat"), 1);
    engine.put_agent(a.clone()).await.expect("agent");
    engine.put_agent(agent("b", &["vip"], 3)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let _b = connect(&engine, agent_identity("b")).await;
    let first = open(&engine, "v1", "chat").await;
    assert_eq!(owner(&engine, first.id).as_deref(), Some("a"));
    let second = open(&engine, "v2", "chat").await;
    assert_eq!(
        owner(&engine, second.id),
        None,
        "a takes chat only while it holds fewer than 1"
    );
    let vip = open(&engine, "v3", "vip").await;
    assert!(owner(&engine, vip.id).is_some());
    let vip2 = open(&engine, "v4", "vip").await;
    assert_eq!(
        owner(&engine, vip2.id),
        None,
        "vip is capped at 1 assigned conversation"
    );
    // Raising the override drains chat at once.
    a.group_capacity.insert(gid("chat"), 3);
    engine.put_agent(a).await.expect("agent");
    assert_eq!(owner(&engine, second.id).as_deref(), Some("a"));
    // Raising the cap drains vip.
    engine
        .put_group(Group {
            max_active: Some(2),
            ..group("vip", Strategy::LeastBusy)
        })
        .await
        .expect("group");
    assert!(owner(&engine, vip2.id).is_some());
}

#[tokio::test]
async fn away_agents_keep_their_chats_but_take_no_new_ones_until_back_online() {
    let (engine, _clock) = engine_with(vec![group("chat", Strategy::Default)], |b| b).await;
    engine.put_agent(agent("a", &["chat"], 3)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let kept = open(&engine, "v1", "chat").await;
    assert_eq!(owner(&engine, kept.id).as_deref(), Some("a"));
    for status in [
        AgentStatus::Away,
        AgentStatus::Busy,
        AgentStatus::Offline,
        AgentStatus::Custom,
    ] {
        engine
            .set_status(&agent_identity("a"), status, Some("lunch".into()))
            .await
            .expect("status");
        let waiting = open(&engine, &format!("w-{status:?}"), "chat").await;
        assert_eq!(owner(&engine, waiting.id), None, "{status:?} takes nothing new");
        assert_eq!(
            owner(&engine, kept.id).as_deref(),
            Some("a"),
            "{status:?} keeps its chats"
        );
        engine
            .close(&visitor(&format!("w-{status:?}")), waiting.id)
            .await
            .expect("close");
    }
    assert_eq!(
        engine.agent_status(&tenant(), &aid("a")),
        Some((AgentStatus::Custom, Some("lunch".into())))
    );
    let waiting = open(&engine, "w", "chat").await;
    assert_eq!(owner(&engine, waiting.id), None);
    engine
        .set_status(&agent_identity("a"), AgentStatus::Online, None)
        .await
        .expect("status");
    assert_eq!(
        owner(&engine, waiting.id).as_deref(),
        Some("a"),
        "back online drains the queue"
    );
    let refused = engine.set_status(&visitor("v1"), AgentStatus::Online, None).await;
    assert_eq!(refused.map_err(|e| e.code()), Err(ErrorCode::Forbidden));
}

#[tokio::test]
async fn a_conversation_handed_back_to_the_queue_goes_to_another_agent_when_one_can_take_it() {
    let (engine, _clock) = engine_with(vec![group("chat", Strategy::Default)], |b| b).await;
    engine.put_agent(agent("a", &["chat"], 5)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let handed = open(&engine, "v1", "chat").await;
    assert_eq!(owner(&engine, handed.id).as_deref(), Some("a"));
    engine.put_agent(agent("b", &["chat"], 1)).await.expect("agent");
    let _b = connect(&engine, agent_identity("b")).await;
    // Least busy would pick `a` again (5 free against b's 1); `a` let it go, so `b` gets it.
    engine
        .transfer(&agent_identity("a"), handed.id, Transfer::default())
        .await
        .expect("back to the queue");
    assert_eq!(owner(&engine, handed.id).as_deref(), Some("b"));
    // Handed back again, by `b`: `a` is the only other agent and takes it.
    engine
        .transfer(&agent_identity("b"), handed.id, Transfer::default())
        .await
        .expect("back to the queue");
    assert_eq!(owner(&engine, handed.id).as_deref(), Some("a"));
    // With nobody else able to take it, it comes back to the agent who let it go.
    engine
        .put_agent(agent("b", &["other"], 1))
        .await
        .expect("b leaves the group");
    engine
        .transfer(&agent_identity("a"), handed.id, Transfer::default())
        .await
        .expect("back to the queue");
    assert_eq!(
        owner(&engine, handed.id).as_deref(),
        Some("a"),
        "nobody else can take it"
    );
}

#[tokio::test]
async fn a_transfer_note_is_for_agents_only() {
    let (engine, _clock) = engine_with(vec![group("chat", Strategy::Default)], |b| b).await;
    engine.put_agent(agent("a", &["chat"], 1)).await.expect("agent");
    engine.put_agent(agent("b", &["chat"], 1)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let c = open(&engine, "v1", "chat").await;
    let mut watchers = Vec::new();
    for identity in [visitor("v1"), agent_identity("b")] {
        let mut live = connect(&engine, identity).await;
        let subscribe = serde_json::json!({"type": "subscribe", "conversation": c.id, "after": 2});
        live._session.receive(&subscribe.to_string()).await;
        watchers.push(live);
    }
    let note = "VIP customer, be gentle";
    let to_b = Transfer {
        agent: Some(aid("b")),
        group: None,
        note: Some(note.into()),
        handover: false,
    };
    engine
        .transfer(&agent_identity("a"), c.id, to_b)
        .await
        .expect("transfer");
    let mut notes = Vec::new();
    for live in &mut watchers {
        notes.push(transfer_note(live).await);
    }
    assert_eq!(
        notes,
        [None, Some(note.to_string())],
        "the visitor sees the transfer, not the note"
    );
    // A visitor replaying the log later does not see it either.
    let mut later = connect(&engine, visitor("v1")).await;
    let subscribe = serde_json::json!({"type": "subscribe", "conversation": c.id, "after": 0});
    later._session.receive(&subscribe.to_string()).await;
    assert_eq!(transfer_note(&mut later).await, None);
}

/// The note of the next `transferred` event a connection receives.
async fn transfer_note(live: &mut Live) -> Option<String> {
    loop {
        let outgoing = tokio::time::timeout(Duration::from_secs(5), live.outbox.next())
            .await
            .expect("a frame within 5 s");
        let frame: ServerFrame = serde_json::from_slice(outgoing.frame().expect("open")).expect("frame");
        if let ServerFrame::Event(Event {
            data: EventKind::Transferred { note, .. },
            ..
        }) = frame
        {
            return note;
        }
    }
}

#[tokio::test]
async fn transfers_are_checked_logged_and_free_capacity() {
    let (engine, _clock) = engine_with(
        vec![
            group("chat", Strategy::Default),
            group("billing", Strategy::Default),
        ],
        |b| b,
    )
    .await;
    engine.put_agent(agent("a", &["chat"], 1)).await.expect("agent");
    engine.put_agent(agent("b", &["chat"], 1)).await.expect("agent");
    engine
        .put_agent(agent("c", &["billing"], 1))
        .await
        .expect("agent");
    engine.put_agent(agent("d", &["chat"], 1)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let _b = connect(&engine, agent_identity("b")).await;
    let mut c_live = connect(&engine, agent_identity("c")).await;
    let first = open(&engine, "v1", "chat").await;
    let second = open(&engine, "v2", "chat").await;
    let third = open(&engine, "v3", "chat").await;
    assert_eq!(owner(&engine, first.id).as_deref(), Some("a"));
    assert_eq!(owner(&engine, second.id).as_deref(), Some("b"));
    assert_eq!(owner(&engine, third.id), None);
    let to = |agent: Option<&str>, group: Option<&str>| Transfer {
        agent: agent.map(aid),
        group: group.map(gid),
        note: Some("see order 42".into()),
        handover: false,
    };
    let code = |r: Result<Seq, RequestError>| r.map_err(|e| e.code());
    let a = agent_identity("a");
    assert_eq!(
        code(engine.transfer(&a, first.id, to(Some("b"), None)).await),
        Err(ErrorCode::AtCapacity)
    );
    assert_eq!(
        code(engine.transfer(&a, first.id, to(Some("d"), None)).await),
        Err(ErrorCode::AgentUnavailable)
    );
    assert_eq!(
        code(engine.transfer(&a, first.id, to(Some("c"), None)).await),
        Err(ErrorCode::AgentUnavailable)
    );
    assert_eq!(
        code(engine.transfer(&a, first.id, to(Some("zed"), None)).await),
        Err(ErrorCode::NotFound)
    );
    assert_eq!(
        code(engine.transfer(&a, second.id, to(None, None)).await),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(engine.transfer(&a, first.id, to(Some("a"), None)).await),
        Err(ErrorCode::InvalidFrame)
    );
    let handover = Transfer {
        handover: true,
        ..to(None, None)
    };
    assert_eq!(
        code(engine.transfer(&a, first.id, handover).await),
        Err(ErrorCode::InvalidFrame),
        "a hand-over without a group, from a group without a hand-over group"
    );
    assert_eq!(
        owner(&engine, first.id).as_deref(),
        Some("a"),
        "refusals change nothing"
    );

    // To another group with an agent there: a's capacity frees and the queued third goes to a at once.
    c_live.drain();
    let seq = engine
        .transfer(&a, first.id, to(Some("c"), Some("billing")))
        .await
        .expect("transfer");
    assert_eq!(owner(&engine, first.id).as_deref(), Some("c"));
    assert_eq!(
        owner(&engine, third.id).as_deref(),
        Some("a"),
        "the freed capacity pulls the next queued"
    );
    assert!(
        c_live
            .drain()
            .iter()
            .any(|f| matches!(f, ServerFrame::Conversation { conversation } if conversation.id == first.id)),
        "the new owner is told"
    );
    let log = engine
        .log()
        .events_after(first.id, Seq::ZERO, 10)
        .await
        .expect("log");
    assert_eq!(log.last().map(|e| e.seq), Some(seq));
    assert_eq!(
        log.last().map(|e| e.data.clone()),
        Some(EventKind::Transferred {
            from: Some(aid("a")),
            agent: Some(aid("c")),
            group: gid("billing"),
            note: Some("see order 42".into()),
            handover: false,
        })
    );

    // Back to the queue: b's capacity frees; with nobody else free the conversation comes back to b.
    let b = agent_identity("b");
    engine
        .transfer(&b, second.id, to(None, None))
        .await
        .expect("requeue");
    assert_eq!(owner(&engine, second.id).as_deref(), Some("b"));
    let log = engine
        .log()
        .events_after(second.id, Seq(2), 10)
        .await
        .expect("log");
    let kinds: Vec<&str> = log.iter().map(|e| e.data.name()).collect();
    assert_eq!(kinds, ["transferred", "assigned"]);
    // To a group whose agents are busy: it waits there.
    engine
        .transfer(&b, second.id, to(None, Some("billing")))
        .await
        .expect("to group");
    assert_eq!(owner(&engine, second.id), None);
    assert_eq!(engine.queue(&tenant(), &gid("billing")), vec![second.id]);
    assert_eq!(engine.agent_load(&tenant(), &aid("b")), 0);
}

#[tokio::test]
async fn queue_positions_are_announced_as_they_shrink_with_an_estimated_wait() {
    let (engine, clock) = engine_with(vec![group("chat", Strategy::Default)], |b| b).await;
    engine.put_agent(agent("a", &["chat"], 1)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let mut visitors = Vec::new();
    let mut conversations = Vec::new();
    for n in 0..4 {
        let name = format!("v{n}");
        let mut live = connect(&engine, visitor(&name)).await;
        live.drain();
        clock.advance(Duration::from_secs(10));
        conversations.push(open(&engine, &name, "chat").await);
        visitors.push(live);
    }
    let position = |frames: Vec<ServerFrame>| {
        frames.into_iter().rev().find_map(|f| match f {
            ServerFrame::Position {
                position,
                estimated_wait_ms,
                ..
            } => Some((position, estimated_wait_ms)),
            _ => None,
        })
    };
    assert_eq!(position(visitors[0].drain()), None, "assigned at once");
    // Each was told its position when it arrived: v1 10 s after the one assignment (10 s per conversation),
    // v3 30 s after it.
    assert_eq!(position(visitors[1].drain()), Some((1, Some(10_000))));
    assert_eq!(position(visitors[3].drain()), Some((3, Some(90_000))));
    clock.advance(Duration::from_secs(30));
    engine
        .close(&visitor("v0"), conversations[0].id)
        .await
        .expect("close");
    assert_eq!(owner(&engine, conversations[1].id).as_deref(), Some("a"));
    assert_eq!(position(visitors[1].drain()), None, "assigned, no position");
    // Two assignments, the first 60 s ago: 30 s per conversation.
    assert_eq!(position(visitors[2].drain()), Some((1, Some(30_000))));
    assert_eq!(position(visitors[3].drain()), Some((2, Some(60_000))));
    // A visitor reconnecting learns its position right after `inbox`.
    let again = connect(&engine, visitor("v3")).await;
    let mut again = again;
    let frames = again.drain();
    assert!(matches!(frames.get(1), Some(ServerFrame::Inbox { .. })));
    assert_eq!(position(frames), Some((2, Some(60_000))));
}

#[tokio::test]
async fn welcome_messages_and_reopening_a_closed_conversation() {
    let (engine, _clock) = engine_with(
        vec![Group {
            welcome: Some("Hi! An agent will be with you shortly.".into()),
            ..group("chat", Strategy::Default)
        }],
        |b| b,
    )
    .await;
    engine.put_agent(agent("a", &["chat"], 1)).await.expect("agent");
    engine.put_agent(agent("b", &["chat"], 1)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let c = open(&engine, "v1", "chat").await;
    let kinds = |log: &[Event]| log.iter().map(|e| e.data.name()).collect::<Vec<_>>();
    let log = engine.log().events_after(c.id, Seq::ZERO, 20).await.expect("log");
    assert_eq!(kinds(&log), ["created", "message", "assigned"]);
    assert_eq!(log[1].author, Actor::System);
    assert_eq!(
        log[1].data,
        EventKind::Message {
            body: MessageBody::text("Hi! An agent will be with you shortly.")
        }
    );

    let say = |n: u32| {
        (
            ClientId::new(format!("m{n}")).expect("id"),
            MessageBody::text("hello again"),
        )
    };
    engine.close(&agent_identity("a"), c.id).await.expect("close");
    let (id, body) = say(1);
    let refused = engine.send(&agent_identity("a"), c.id, id, body).await;
    assert_eq!(
        refused.map_err(|e| e.code()),
        Err(ErrorCode::Forbidden),
        "agents do not reopen"
    );
    let (id, body) = say(2);
    let ack = engine
        .send(&visitor("v1"), c.id, id.clone(), body.clone())
        .await
        .expect("send");
    assert_eq!(
        owner(&engine, c.id).as_deref(),
        Some("a"),
        "back to its previous agent"
    );
    let log = engine.log().events_after(c.id, Seq(3), 20).await.expect("log");
    assert_eq!(kinds(&log), ["closed", "reopened", "assigned", "message"]);
    assert_eq!(log[3].seq, ack.seq);
    let again = engine.send(&visitor("v1"), c.id, id, body).await.expect("retry");
    assert!(again.duplicate);

    // The previous agent is away now: the reopened conversation goes to someone who can take it.
    engine.close(&visitor("v1"), c.id).await.expect("close");
    engine
        .set_status(&agent_identity("a"), AgentStatus::Away, None)
        .await
        .expect("status");
    let _b = connect(&engine, agent_identity("b")).await;
    let (id, body) = say(3);
    engine.send(&visitor("v1"), c.id, id, body).await.expect("send");
    assert_eq!(owner(&engine, c.id).as_deref(), Some("b"));
}

fn timers(f: impl FnOnce(&mut crate::model::GroupTimers)) -> crate::model::GroupTimers {
    let mut timers = crate::model::GroupTimers::default();
    f(&mut timers);
    timers
}

async fn kinds(engine: &Engine, id: ConversationId) -> Vec<&'static str> {
    let log = engine.log().events_after(id, Seq::ZERO, 100).await.expect("log");
    log.iter().map(|e| e.data.name()).collect()
}

#[tokio::test(start_paused = true)]
async fn waiting_too_long_is_recorded_as_missed_then_moves_to_the_fallback_group() {
    let front = Group {
        timers: timers(|t| {
            t.missed_after_ms = Some(30_000);
            t.max_wait_ms = Some(60_000);
            t.fallback = Some(gid("back"));
        }),
        ..group("front", Strategy::Default)
    };
    let (engine, _clock) = engine_with(vec![front, group("back", Strategy::Default)], |b| b).await;
    engine.put_agent(agent("x", &["front"], 1)).await.expect("agent");
    engine.put_agent(agent("y", &["back"], 1)).await.expect("agent");
    let mut x = connect(&engine, agent_identity("x")).await;
    let served = open(&engine, "v1", "front").await;
    let waiting = open(&engine, "v2", "front").await;
    assert_eq!(owner(&engine, served.id).as_deref(), Some("x"));
    x.drain();

    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(
        x.drain().iter().any(
            |f| matches!(f, ServerFrame::Missed { conversation, reason: MissedReason::Waited }
            if conversation.id == waiting.id)
        ),
        "the group's agents are reminded"
    );
    assert_eq!(kinds(&engine, waiting.id).await, ["created", "missed"]);
    assert_eq!(
        engine.queue(&tenant(), &gid("front")),
        [waiting.id],
        "still waiting, same place"
    );

    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        kinds(&engine, waiting.id).await,
        ["created", "missed", "transferred"]
    );
    assert_eq!(engine.queue(&tenant(), &gid("back")), [waiting.id]);
    let _y = connect(&engine, agent_identity("y")).await;
    assert_eq!(owner(&engine, waiting.id).as_deref(), Some("y"));
    assert_eq!(
        owner(&engine, served.id).as_deref(),
        Some("x"),
        "the served one never moved"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_begun_before_a_restart_keeps_what_it_used_up() {
    let chat = Group {
        timers: timers(|t| t.max_wait_ms = Some(60_000)),
        ..group("chat", Strategy::Default)
    };
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let tokens = Arc::new(SignedTokens::new(&[7; 32], Arc::new(SystemClock)).expect("key"));
    let build = || {
        Engine::builder(Arc::clone(&store), tokens.clone())
            .presence_grace(Duration::ZERO)
            .clock(Arc::clone(&clock) as Arc<dyn Clock>)
            .build()
    };
    let before = build().await.expect("engine");
    before.put_group(chat).await.expect("group");
    let c = open(&before, "v1", "chat").await;
    // 50 s of the 60 s wait pass (on the clock), then the server restarts. (The first engine's timer task is
    // still 60 s of Tokio time away, past the end of this test.)
    clock.advance(Duration::from_secs(50));
    drop(before);
    let after = build().await.expect("engine after the restart");
    tokio::time::sleep(Duration::from_secs(11)).await;
    let record = store.conversation(c.id).await.expect("read").expect("stored");
    assert_eq!(
        record.state,
        ConversationState::Offline,
        "the wait ends 60 s after it began, not 60 s after the restart"
    );
    assert_eq!(after.offline_messages(&tenant(), &gid("chat")), [c.id]);
}

#[tokio::test(start_paused = true)]
async fn without_a_fallback_a_long_wait_becomes_a_message_left_for_the_group() {
    let chat = Group {
        timers: timers(|t| t.max_wait_ms = Some(60_000)),
        ..group("chat", Strategy::Default)
    };
    let (engine, _clock) = engine_with(vec![chat], |b| b).await;
    engine.put_agent(agent("a", &["chat"], 1)).await.expect("agent");
    let mut v1 = connect(&engine, visitor("v1")).await;
    let c = open(&engine, "v1", "chat").await;
    v1.drain();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let record = engine
        .log()
        .conversation(c.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(record.state, ConversationState::Offline);
    assert_eq!(engine.offline_messages(&tenant(), &gid("chat")), [c.id]);
    assert!(engine.queue(&tenant(), &gid("chat")).is_empty());
    // The visitor leaves its message.
    let body = MessageBody::text("Please call me back on 555-0100.");
    engine
        .send(&visitor("v1"), c.id, ClientId::new("m1").expect("id"), body)
        .await
        .expect("a message left");
    assert_eq!(kinds(&engine, c.id).await, ["created", "offline", "message"]);
    // An agent of the group coming online is shown it (as offline messages are) and takes it.
    let mut a = connect(&engine, agent_identity("a")).await;
    assert_eq!(
        owner(&engine, c.id),
        None,
        "a message left is not assigned automatically"
    );
    let shown = a.drain().into_iter().find_map(|f| match f {
        ServerFrame::OfflineMessages { conversations } => Some(conversations),
        _ => None,
    });
    let shown = shown.expect("offline messages after inbox");
    assert_eq!(shown.iter().map(|c| c.id).collect::<Vec<_>>(), [c.id]);
    engine.take(&agent_identity("a"), c.id).await.expect("take");
    assert_eq!(owner(&engine, c.id).as_deref(), Some("a"));
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_assignment_goes_to_another_agent_and_an_idle_visitor_is_closed() {
    let chat = Group {
        timers: timers(|t| {
            t.answer_timeout_ms = Some(20_000);
            t.inactivity_close_ms = Some(300_000);
        }),
        ..group("chat", Strategy::Default)
    };
    let (engine, _clock) = engine_with(vec![chat], |b| b).await;
    engine.put_agent(agent("a", &["chat"], 2)).await.expect("agent");
    engine.put_agent(agent("b", &["chat"], 2)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let _b = connect(&engine, agent_identity("b")).await;
    let c = open(&engine, "v1", "chat").await;
    assert_eq!(owner(&engine, c.id).as_deref(), Some("a"));
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert_eq!(
        owner(&engine, c.id).as_deref(),
        Some("b"),
        "a did not answer: someone else gets it"
    );
    assert_eq!(
        kinds(&engine, c.id).await,
        ["created", "assigned", "transferred", "assigned"]
    );
    let body = MessageBody::text("Hello, I am here.");
    engine
        .send(&agent_identity("b"), c.id, ClientId::new("b1").expect("id"), body)
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert_eq!(owner(&engine, c.id).as_deref(), Some("b"), "b answered: it stays");

    // The visitor writes at 42 s, then goes quiet: closed 300 s later, not before.
    let body = MessageBody::text("Thanks, one question");
    engine
        .send(&visitor("v1"), c.id, ClientId::new("v1").expect("id"), body)
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert!(
        engine.inner.routing.ledger.open_conversation(&c.id).is_some(),
        "not yet"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        engine.inner.routing.ledger.open_conversation(&c.id).is_none(),
        "closed for inactivity"
    );
    let log = engine
        .log()
        .events_after(c.id, Seq::ZERO, 100)
        .await
        .expect("log");
    let last = log.last().expect("event");
    assert_eq!((last.data.name(), &last.author), ("closed", &Actor::System));
    assert_eq!(engine.agent_load(&tenant(), &aid("b")), 0);
}

#[tokio::test(start_paused = true)]
async fn a_chatty_visitor_keeps_one_inactivity_timer_that_counts_from_its_last_message() {
    let chat = Group {
        timers: timers(|t| t.inactivity_close_ms = Some(60_000)),
        ..group("chat", Strategy::Default)
    };
    let (engine, _clock) = engine_with(vec![chat], |b| b).await;
    engine.put_agent(agent("a", &["chat"], 2)).await.expect("agent");
    let _a = connect(&engine, agent_identity("a")).await;
    let c = open(&engine, "v1", "chat").await;
    for (i, pause) in [10, 20, 20, 5].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(pause)).await;
        let body = MessageBody::text(format!("still here {i}"));
        let id = ClientId::new(format!("m{i}")).expect("id");
        engine.send(&visitor("v1"), c.id, id, body).await.expect("send");
    }
    assert_eq!(
        engine.inner.routing.silences.lock().len(),
        1,
        "one timer for the conversation, not one per message"
    );
    // Last message at 55 s: still open at 114 s, closed after 115 s.
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(
        engine.inner.routing.ledger.open_conversation(&c.id).is_some(),
        "not yet"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        engine.inner.routing.ledger.open_conversation(&c.id).is_none(),
        "closed for inactivity"
    );
    assert!(
        engine.inner.routing.silences.lock().is_empty(),
        "forgotten once closed"
    );
}

#[tokio::test]
async fn the_queue_view_lists_the_head_of_each_queue() {
    let limit = 7;
    let (engine, _clock) = engine_with(vec![group("desk", Strategy::Manual)], |b| {
        b.limits(Limits::default().with_queue_view_per_group(limit))
    })
    .await;
    engine.put_agent(agent("a", &["desk"], 1)).await.expect("agent");
    for i in 0..limit + 5 {
        open(&engine, &format!("v{i}"), "desk").await;
    }
    assert_eq!(engine.queue(&tenant(), &gid("desk")).len(), limit + 5);
    let view = engine.queue_view(&agent_identity("a")).expect("view");
    let positions: Vec<u32> = view.iter().map(|entry| entry.position).collect();
    assert_eq!(positions, (1..=limit as u32).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_visitor_leaving_before_any_agent_took_it_is_a_missed_conversation() {
    let (engine, _clock) = engine_with(vec![group("chat", Strategy::Default)], |b| b).await;
    engine.put_agent(agent("a", &["chat"], 1)).await.expect("agent");
    let mut a = connect(&engine, agent_identity("a")).await;
    let _busy = open(&engine, "v1", "chat").await;
    let left = open(&engine, "v2", "chat").await;
    a.drain();
    engine.close(&visitor("v2"), left.id).await.expect("close");
    assert_eq!(kinds(&engine, left.id).await, ["created", "missed", "closed"]);
    assert!(a.drain().iter().any(|f| matches!(
        f,
        ServerFrame::Missed {
            reason: MissedReason::Unanswered,
            ..
        }
    )));
    // An agent of the group who connects later is reminded of it too, with the conversation as it is now.
    engine.put_agent(agent("b", &["chat"], 1)).await.expect("agent");
    let mut b = connect(&engine, agent_identity("b")).await;
    let reminded: Vec<_> = b
        .drain()
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Missed { conversation, reason } => {
                Some((conversation.id, conversation.state, reason))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        reminded,
        [(left.id, ConversationState::Closed, MissedReason::Unanswered)]
    );
}

mod properties {
    //! Random interleavings of arrivals, claims, transfers, closes, (dis)connections, status, capacity and cap
    //! changes; after every step: no agent above capacity, no group above its cap, no conversation with two
    //! owners, no queued conversation while an eligible agent has room.

    use proptest::prelude::{TestCaseError, any, prop_assert, prop_assert_eq, prop_oneof};
    use proptest::strategy::Strategy as _;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use super::*;
    use crate::context::ConversationContext;
    use crate::model::{Epoch, Event, Seq, VisitorId};
    use crate::store::{Appended, ConversationLog, Created, FeedEntry, FeedPosition, NewConversation};

    const AGENTS: [&str; 4] = ["a0", "a1", "a2", "a3"];
    const GROUPS: [&str; 4] = ["least", "round", "manual", "sticky"];
    const VISITORS: u8 = 10;

    #[derive(Clone, Debug)]
    enum Op {
        Arrive {
            visitor: u8,
            group: u8,
        },
        Claim {
            agent: u8,
            pick: usize,
        },
        Transfer {
            pick: usize,
            to_agent: Option<u8>,
            to_group: Option<u8>,
        },
        Close {
            pick: usize,
            by_agent: bool,
        },
        Connect {
            agent: u8,
        },
        Disconnect {
            agent: u8,
        },
        Status {
            agent: u8,
            online: bool,
        },
        Capacity {
            agent: u8,
            capacity: u32,
            override_group: Option<(u8, u32)>,
        },
        Cap {
            group: u8,
            cap: Option<u32>,
        },
        /// A queued conversation's max wait passes: it becomes a message left.
        LeaveMessage {
            pick: usize,
        },
        /// An agent takes a message left.
        Take {
            agent: u8,
            pick: usize,
        },
        /// The owner of an assigned conversation puts it on hold (until a time, or until the visitor writes).
        Snooze {
            pick: usize,
            timed: bool,
        },
        /// A conversation on hold wakes: its timer fires, its visitor writes, or its agent takes it back.
        Wake {
            pick: usize,
            how: u8,
        },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        let agent = 0..AGENTS.len() as u8;
        let group = 0..GROUPS.len() as u8;
        prop_oneof![
            6 => (0..VISITORS, group.clone()).prop_map(|(visitor, group)| Op::Arrive { visitor, group }),
            2 => (agent.clone(), any::<usize>()).prop_map(|(agent, pick)| Op::Claim { agent, pick }),
            2 => (any::<usize>(), proptest::option::of(agent.clone()), proptest::option::of(group.clone()))
                .prop_map(|(pick, to_agent, to_group)| Op::Transfer { pick, to_agent, to_group }),
            4 => (any::<usize>(), any::<bool>()).prop_map(|(pick, by_agent)| Op::Close { pick, by_agent }),
            2 => agent.clone().prop_map(|agent| Op::Connect { agent }),
            2 => agent.clone().prop_map(|agent| Op::Disconnect { agent }),
            1 => (agent.clone(), any::<bool>()).prop_map(|(agent, online)| Op::Status { agent, online }),
            1 => (agent, 0..4u32, proptest::option::of((group.clone(), 0..4u32)))
                .prop_map(|(agent, capacity, override_group)| Op::Capacity { agent, capacity, override_group }),
            1 => (group, proptest::option::of(0..4u32)).prop_map(|(group, cap)| Op::Cap { group, cap }),
            1 => any::<usize>().prop_map(|pick| Op::LeaveMessage { pick }),
            1 => (0..AGENTS.len() as u8, any::<usize>()).prop_map(|(agent, pick)| Op::Take { agent, pick }),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, timed)| Op::Snooze { pick, timed }),
            2 => (any::<usize>(), 0..3u8).prop_map(|(pick, how)| Op::Wake { pick, how }),
        ]
    }

    fn strategies() -> [Strategy; 4] {
        [
            Strategy::LeastBusy,
            Strategy::RoundRobin,
            Strategy::Manual,
            Strategy::Sticky,
        ]
    }

    struct World {
        engine: Engine,
        clock: Arc<ManualClock>,
        agents: HashMap<String, Agent>,
        caps: HashMap<String, Option<u32>>,
        live: HashMap<String, Vec<Live>>,
        opened: u64,
    }

    impl World {
        async fn new() -> World {
            World::with(Stores::from(Arc::new(MemoryStore::new()))).await
        }

        async fn with(stores: Stores) -> World {
            let groups = GROUPS
                .iter()
                .zip(strategies())
                .map(|(name, strategy)| group(name, strategy))
                .collect();
            let (engine, clock) = engine_over(stores, groups, |b| b).await;
            let mut agents = HashMap::new();
            for (n, name) in AGENTS.iter().enumerate() {
                // Every agent in two or three groups, so groups overlap.
                let groups: Vec<&str> = GROUPS
                    .iter()
                    .copied()
                    .enumerate()
                    .filter(|(g, _)| g % 4 != n % 4 || n == 0)
                    .map(|(_, g)| g)
                    .collect();
                let record = agent(name, &groups, 2);
                engine.put_agent(record.clone()).await.expect("agent");
                agents.insert(name.to_string(), record);
            }
            World {
                engine,
                clock,
                agents,
                caps: HashMap::new(),
                live: HashMap::new(),
                opened: 0,
            }
        }

        fn open_ones(&self) -> Vec<Conversation> {
            let mut open: Vec<Conversation> = self.engine.inner.routing.ledger.open_snapshot();
            open.sort_by_key(|c| c.id);
            open
        }

        async fn step(&mut self, op: &Op) {
            let engine = self.engine.clone();
            self.clock.advance(Duration::from_millis(250));
            match op {
                Op::Arrive { visitor: v, group } => {
                    self.opened += 1;
                    let client = ClientId::new(format!("open-{}", self.opened)).expect("id");
                    let group = gid(GROUPS[*group as usize]);
                    let _ = engine
                        .open(
                            &visitor(&format!("v{v}")),
                            client,
                            Some(group),
                            None,
                            Default::default(),
                        )
                        .await;
                }
                Op::LeaveMessage { pick } => {
                    let queued: Vec<Conversation> = self
                        .open_ones()
                        .into_iter()
                        .filter(|c| c.state == ConversationState::Queued)
                        .collect();
                    if let Some(c) = queued.get(pick % queued.len().max(1)) {
                        let draft = EventDraft::system(c.id, EventKind::Offline, self.clock.now());
                        let _ = engine.commit(pipeline::Command::append(draft)).await;
                    }
                }
                Op::Take { agent, pick } => {
                    let offline: Vec<ConversationId> = GROUPS
                        .iter()
                        .flat_map(|g| engine.offline_messages(&tenant(), &gid(g)))
                        .collect();
                    if let Some(id) = offline.get(pick % offline.len().max(1)) {
                        let _ = engine.take(&agent_identity(AGENTS[*agent as usize]), *id).await;
                    }
                }
                Op::Claim { agent, pick } => {
                    let queued: Vec<Conversation> = self
                        .open_ones()
                        .into_iter()
                        .filter(|c| matches!(c.state, ConversationState::Queued | ConversationState::Offline))
                        .collect();
                    if let Some(c) = queued.get(pick % queued.len().max(1)) {
                        let _ = engine.claim(&agent_identity(AGENTS[*agent as usize]), c.id).await;
                    }
                }
                Op::Transfer {
                    pick,
                    to_agent,
                    to_group,
                } => {
                    let assigned: Vec<Conversation> = self
                        .open_ones()
                        .into_iter()
                        .filter(|c| c.state.agent().is_some())
                        .collect();
                    if let Some(c) = assigned.get(pick % assigned.len().max(1)) {
                        let owner = c.state.agent().expect("assigned").as_str().to_owned();
                        let transfer = Transfer {
                            agent: to_agent.map(|a| aid(AGENTS[a as usize])),
                            group: to_group.map(|g| gid(GROUPS[g as usize])),
                            note: None,
                            handover: false,
                        };
                        let _ = engine.transfer(&agent_identity(&owner), c.id, transfer).await;
                    }
                }
                Op::Snooze { pick, timed } => {
                    let assigned: Vec<Conversation> = self
                        .open_ones()
                        .into_iter()
                        .filter(|c| c.state.agent().is_some())
                        .collect();
                    if let Some(c) = assigned.get(pick % assigned.len().max(1)) {
                        let owner = c.state.agent().expect("assigned").as_str().to_owned();
                        self.opened += 1;
                        let client = ClientId::new(format!("snooze-{}", self.opened)).expect("id");
                        let until = timed.then(|| Timestamp(self.clock.now().0 + 60_000));
                        let _ = engine.snooze(&agent_identity(&owner), c.id, client, until).await;
                    }
                }
                Op::Wake { pick, how } => {
                    let parked: Vec<Conversation> = self
                        .open_ones()
                        .into_iter()
                        .filter(|c| matches!(c.state, ConversationState::OnHold { .. }))
                        .collect();
                    if let Some(c) = parked.get(pick % parked.len().max(1)) {
                        self.opened += 1;
                        let client = ClientId::new(format!("wake-{}", self.opened)).expect("id");
                        match (how, &c.state) {
                            (0, _) => engine.wake(c.id, crate::model::WakeReason::Timer).await,
                            (1, _) => {
                                let body = MessageBody::text("back");
                                let _ = engine
                                    .send(&visitor(c.visitor.as_str()), c.id, client, body)
                                    .await;
                            }
                            (_, ConversationState::OnHold { agent, .. }) => {
                                let _ = engine
                                    .wake_up(&agent_identity(agent.as_str()), c.id, client)
                                    .await;
                            }
                            _ => {}
                        }
                    }
                }
                Op::Close { pick, by_agent } => {
                    let open = self.open_ones();
                    if let Some(c) = open.get(pick % open.len().max(1)) {
                        let who = match (by_agent, c.state.agent()) {
                            (true, Some(agent)) => agent_identity(agent.as_str()),
                            _ => visitor(c.visitor.as_str()),
                        };
                        engine.close(&who, c.id).await.expect("close");
                    }
                }
                Op::Connect { agent } => {
                    let name = AGENTS[*agent as usize];
                    // A few connections per agent are enough to count them as one.
                    if self.live.get(name).is_none_or(|live| live.len() < 3) {
                        let live = connect(&engine, agent_identity(name)).await;
                        self.live.entry(name.to_owned()).or_default().push(live);
                    }
                }
                Op::Disconnect { agent } => {
                    if let Some(live) = self.live.get_mut(AGENTS[*agent as usize]) {
                        live.pop();
                    }
                }
                Op::Status { agent, online } => {
                    let status = if *online {
                        AgentStatus::Online
                    } else {
                        AgentStatus::Away
                    };
                    engine
                        .set_status(&agent_identity(AGENTS[*agent as usize]), status, None)
                        .await
                        .expect("status");
                }
                Op::Capacity {
                    agent,
                    capacity,
                    override_group,
                } => {
                    let name = AGENTS[*agent as usize];
                    let mut record = self.agents[name].clone();
                    record.capacity = *capacity;
                    record.group_capacity.clear();
                    if let Some((group, capacity)) = override_group {
                        record
                            .group_capacity
                            .insert(gid(GROUPS[*group as usize]), *capacity);
                    }
                    engine.put_agent(record.clone()).await.expect("agent");
                    self.agents.insert(name.to_owned(), record);
                }
                Op::Cap { group: g, cap } => {
                    let name = GROUPS[*g as usize];
                    let record = Group {
                        max_active: *cap,
                        ..group(name, strategies()[*g as usize].clone())
                    };
                    engine.put_group(record).await.expect("group");
                    self.caps.insert(name.to_owned(), *cap);
                }
            }
        }

        /// Loads per agent and per group now.
        fn loads(&self) -> (HashMap<AgentId, usize>, HashMap<GroupId, usize>) {
            let mut agents = HashMap::new();
            let mut groups = HashMap::new();
            for c in self.open_ones() {
                if let Some(agent) = c.state.agent() {
                    *agents.entry(agent.clone()).or_default() += 1;
                    *groups.entry(c.group.clone()).or_default() += 1;
                }
            }
            (agents, groups)
        }

        /// Checks every invariant after a step that started from `before` loads.
        fn check(
            &self,
            before: &(HashMap<AgentId, usize>, HashMap<GroupId, usize>),
            step: usize,
            op: &Op,
        ) -> Result<(), String> {
            let (agents, groups) = self.loads();
            let mut limits = HashMap::new();
            for record in self.agents.values() {
                let most = record
                    .groups
                    .iter()
                    .map(|g| record.capacity_in(g) as usize)
                    .max()
                    .unwrap_or(0);
                // A capacity cut does not take conversations away: what an agent held before stays allowed.
                let held = before.0.get(&record.id).copied().unwrap_or(0);
                limits.insert(record.id.clone(), most.max(held));
            }
            if let Some(violation) = self.engine.inner.routing.ledger.violation(&limits) {
                return Err(format!("step {step} {op:?}: {violation}"));
            }
            for (name, cap) in &self.caps {
                let id = gid(name);
                let load = groups.get(&id).copied().unwrap_or(0);
                let held = before.1.get(&id).copied().unwrap_or(0);
                if let Some(cap) = cap
                    && load > (*cap as usize).max(held)
                {
                    return Err(format!(
                        "step {step} {op:?}: group {name} holds {load} above its cap {cap}"
                    ));
                }
            }
            let _ = agents;
            Ok(())
        }
    }

    impl World {
        /// Takes the agents' and groups' settings from the engine (a dropped step may have applied its change or
        /// not).
        fn resync(&mut self) {
            let router = &self.engine.inner.routing.ledger;
            for name in AGENTS {
                if let Some(record) = router.agent(&tenant(), &aid(name)) {
                    self.agents.insert(name.to_owned(), record);
                }
            }
            for name in GROUPS {
                if let Some(record) = router.group(&tenant(), &gid(name)) {
                    self.caps.insert(name.to_owned(), record.max_active);
                }
            }
        }

        /// The ledger agrees with the store (offline messages included: open, in no queue), every agent's load
        /// is what the store has assigned to it (no reservation leaked), and every log is gapless.
        async fn agrees_with_store(&self) -> Result<(), TestCaseError> {
            let store = self.engine.log();
            let stored = store.open_conversations().await.expect("open");
            let mut states: Vec<(ConversationId, ConversationState)> =
                stored.iter().map(|c| (c.id, c.state.clone())).collect();
            states.sort_by_key(|(id, _)| *id);
            let tracked: Vec<(ConversationId, ConversationState)> =
                self.open_ones().into_iter().map(|c| (c.id, c.state)).collect();
            prop_assert_eq!(states, tracked);
            // A visitor's close of an untaken conversation logs `missed` and `closed` together: never a
            // `missed` left behind by a close that stopped half way, to be logged again by the next try (this
            // world never reopens a conversation, which could be missed again).
            let feed = store
                .feed_after(FeedPosition::ZERO, usize::MAX)
                .await
                .expect("feed");
            let mut missed: HashMap<ConversationId, usize> = HashMap::new();
            for entry in &feed {
                if matches!(entry.event.data, EventKind::Missed { .. }) {
                    *missed.entry(entry.event.conversation).or_default() += 1;
                }
            }
            prop_assert!(missed.values().all(|n| *n == 1), "missed twice: {:?}", missed);
            for name in AGENTS {
                let assigned = stored
                    .iter()
                    .filter(|c| c.state.agent().is_some_and(|a| a.as_str() == name))
                    .count();
                prop_assert_eq!(
                    self.engine.agent_load(&tenant(), &aid(name)),
                    assigned,
                    "load of {}",
                    name
                );
            }
            for conversation in stored {
                let log = store
                    .events_after(conversation.id, Seq::ZERO, usize::MAX)
                    .await
                    .expect("log");
                let seqs: Vec<u64> = log.iter().map(|e| e.seq.0).collect();
                let expected: Vec<u64> = (1..=conversation.last_seq.0).collect();
                prop_assert_eq!(seqs, expected, "log of {}", conversation.id);
            }
            Ok(())
        }
    }

    async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut world = World::new().await;
        for (step, op) in ops.iter().enumerate() {
            let before = world.loads();
            world.step(op).await;
            world.check(&before, step, op).map_err(TestCaseError::fail)?;
        }
        world.agrees_with_store().await
    }

    /// A log whose every call yields to the runtime before and after the store's work, as a database's I/O
    /// would: the points where a dropped request could stop half way if the engine did not protect them.
    #[derive(Debug)]
    struct Yielding(Arc<MemoryStore>);

    macro_rules! yielding {
        ($self:ident.$method:ident($($arg:expr),*)) => {{
            tokio::task::yield_now().await;
            let result = $self.0.$method($($arg),*).await;
            tokio::task::yield_now().await;
            result
        }};
    }

    #[async_trait]
    impl ConversationLog for Yielding {
        async fn epoch(&self) -> Result<Epoch, StoreError> {
            yielding!(self.epoch())
        }
        async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
            yielding!(self.create_conversation(new))
        }
        async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
            yielding!(self.append(draft))
        }
        async fn events_after(
            &self,
            conversation: ConversationId,
            after: Seq,
            limit: usize,
        ) -> Result<Vec<Event>, StoreError> {
            yielding!(self.events_after(conversation, after, limit))
        }
        async fn event_by_client_id(
            &self,
            conversation: ConversationId,
            author: &Actor,
            client_id: &ClientId,
        ) -> Result<Option<Event>, StoreError> {
            yielding!(self.event_by_client_id(conversation, author, client_id))
        }
        async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
            yielding!(self.conversation(id))
        }
        async fn conversations_of_visitor(
            &self,
            tenant: &TenantId,
            visitor: &VisitorId,
        ) -> Result<Vec<Conversation>, StoreError> {
            yielding!(self.conversations_of_visitor(tenant, visitor))
        }
        async fn conversations_of_agent(
            &self,
            tenant: &TenantId,
            agent: &AgentId,
        ) -> Result<Vec<Conversation>, StoreError> {
            yielding!(self.conversations_of_agent(tenant, agent))
        }
        async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
            yielding!(self.open_conversations())
        }
        async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
            yielding!(self.put_conversation_context(context))
        }
        async fn conversation_context(
            &self,
            conversation: ConversationId,
        ) -> Result<Option<ConversationContext>, StoreError> {
            yielding!(self.conversation_context(conversation))
        }
        async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
            yielding!(self.feed_after(after, limit))
        }
        async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
            yielding!(self.feed_head())
        }
        async fn record_seen(&self, marks: Vec<crate::model::SeenMark>) -> Result<(), StoreError> {
            yielding!(self.record_seen(marks))
        }
        async fn seen(
            &self,
            conversations: &[ConversationId],
        ) -> Result<Vec<crate::model::SeenMark>, StoreError> {
            yielding!(self.seen(conversations))
        }
    }

    /// Polls `future` up to `polls` times, yielding to the runtime in between, then drops it if it is not done:
    /// a client that vanishes at that point of its request.
    async fn poll_then_drop(future: impl Future<Output = ()>, polls: u8) {
        let mut future = std::pin::pin!(future);
        for _ in 0..polls {
            if futures::poll!(future.as_mut()).is_ready() {
                return;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Waits until every task is idle: with paused time, the runtime moves its clock only then.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    async fn run_dropping(ops: Vec<(Op, u8)>) -> Result<(), TestCaseError> {
        let memory = Arc::new(MemoryStore::new());
        let log: Arc<dyn ConversationLog> = Arc::new(Yielding(Arc::clone(&memory)));
        let mut world = World::with(Stores::new(log, memory.clone(), memory)).await;
        for (step, (op, polls)) in ops.iter().enumerate() {
            let before = world.loads();
            poll_then_drop(world.step(op), *polls).await;
            settle().await;
            world.resync();
            world.check(&before, step, op).map_err(TestCaseError::fail)?;
        }
        world.agrees_with_store().await
    }

    /// Requests dropped at random points (after 0 to 5 polls, or run to the end) leave no gap, no half-applied
    /// state and no leaked reservation: the pipeline finishes or undoes what it started.
    #[test]
    fn dropped_requests_leave_no_gap_and_no_half_applied_state() {
        let config = Config {
            cases: 12,
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let polls = prop_oneof![1 => proptest::strategy::Just(u8::MAX), 2 => 0..6u8];
        let result = runner.run(&proptest::collection::vec((op(), polls), 300..600), |ops| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("runtime");
            runtime.block_on(run_dropping(ops))
        });
        if let Err(error) = result {
            panic!("{error}");
        }
    }

    #[test]
    fn routing_invariants_hold_under_random_interleavings() {
        let config = Config {
            cases: 16,
            failure_persistence: None,
            ..Config::default()
        };
        // A fixed seed: the same cases on every run and in CI.
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[42; 32]);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&proptest::collection::vec(op(), 1_000..2_000), |ops| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("runtime");
            runtime.block_on(run(ops))
        });
        if let Err(error) = result {
            panic!("{error}");
        }
    }
}
