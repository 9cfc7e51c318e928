//! The [`Store`] conformance suite. Each function takes a fresh, empty store and panics on a violation.

use std::collections::HashSet;
use std::sync::Arc;

use crate::context::{ConversationContext, Device, DeviceType, PageView, Source, Utm};
use crate::entry::{EntryPoint, PageRule};
use crate::hours::WorkingHours;
use crate::model::{
    Actor, Agent, AgentId, ConversationId, ConversationState, EventKind, Group, GroupId, GroupTimers,
    MessageBody, MissedReason, Seq, Strategy, TenantId, Timestamp, Visitor,
};
use crate::quick_replies::{QuickReply, QuickReplyScope};
use crate::store::{EventDraft, NewConversation, Store, StoreError};

fn id<T: std::str::FromStr>(value: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    match value.parse() {
        Ok(id) => id,
        Err(error) => panic!("bad test id {value:?}: {error:?}"),
    }
}

fn tenant() -> TenantId {
    id("tenant-1")
}

fn visitor(name: &str) -> Actor {
    Actor::Visitor(id(name))
}

fn text(author: Actor, conversation: ConversationId, client_id: Option<&str>, text: &str) -> EventDraft {
    EventDraft::message(
        conversation,
        author,
        client_id.map(id),
        MessageBody::text(text),
        Timestamp(1_000),
    )
}

fn system(conversation: ConversationId, data: EventKind) -> EventDraft {
    EventDraft::system(conversation, data, Timestamp(2_000))
}

async fn open(store: &dyn Store, visitor: &str, client_id: &str) -> ConversationId {
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id(visitor),
        group: id("sales"),
        client_id: id(client_id),
        entry: None,
        at: Timestamp(500),
    };
    match store.create_conversation(new).await {
        Ok(created) => created.conversation.id,
        Err(error) => panic!("create_conversation failed: {error}"),
    }
}

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error}"),
    }
}

/// `create_conversation` opens a queued conversation whose log starts with `Created` at seq 1.
pub async fn create_starts_a_log_at_seq_one(store: Arc<dyn Store>) {
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id("v1"),
        group: id("sales"),
        client_id: id("open-1"),
        entry: None,
        at: Timestamp(500),
    };
    let created = ok(store.create_conversation(new.clone()).await, "create");
    assert!(created.created);
    assert_eq!(created.conversation.id, new.id);
    assert_eq!(created.conversation.state, ConversationState::Queued);
    assert_eq!(created.conversation.last_seq, Seq(1));
    assert_eq!(created.event.seq, Seq(1));
    assert_eq!(
        created.event.data,
        EventKind::Created {
            group: id("sales"),
            entry: None,
        }
    );
    assert_eq!(created.event.author, visitor("v1"));
    let events = ok(store.events_after(new.id, Seq::ZERO, 10).await, "events_after");
    assert_eq!(events, vec![created.event.clone()]);
    let stored = ok(store.conversation(new.id).await, "conversation");
    assert_eq!(stored, Some(created.conversation));
}

/// Opening again with the same (tenant, visitor, client id) returns the first conversation.
pub async fn create_is_idempotent_per_visitor_client_id(store: Arc<dyn Store>) {
    let first = open(&*store, "v1", "open-1").await;
    let again = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id("v1"),
        group: id("sales"),
        client_id: id("open-1"),
        entry: None,
        at: Timestamp(900),
    };
    let repeated = ok(store.create_conversation(again).await, "create");
    assert!(!repeated.created);
    assert_eq!(repeated.conversation.id, first);
    assert_eq!(repeated.event.seq, Seq(1));
    // Client ids share one key space per author: the open's id reused for a message returns `Created`.
    let reused = ok(
        store
            .append(text(visitor("v1"), first, Some("open-1"), "hi"))
            .await,
        "append",
    );
    assert!(reused.duplicate);
    assert_eq!(reused.event.seq, Seq(1));
    assert_eq!(
        reused.event.data,
        EventKind::Created {
            group: id("sales"),
            entry: None,
        }
    );
    // The same client id from another visitor is another conversation.
    let other = open(&*store, "v2", "open-1").await;
    assert_ne!(other, first);
}

/// Appends get seqs 2, 3, 4… in order.
pub async fn appends_get_gapless_seqs(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    for n in 2..=20u64 {
        let appended = ok(
            store.append(text(visitor("v1"), c, None, &format!("m{n}"))).await,
            "append",
        );
        assert_eq!(appended.event.seq, Seq(n));
        assert!(!appended.duplicate);
        assert_eq!(appended.conversation.last_seq, Seq(n));
    }
    let events = ok(store.events_after(c, Seq::ZERO, 100).await, "events_after");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
}

/// A repeated (conversation, author, client id) returns the original event; other authors have their own keys.
pub async fn append_is_idempotent_per_author_and_client_id(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    let first = ok(
        store.append(text(visitor("v1"), c, Some("m-1"), "hello")).await,
        "append",
    );
    for _ in 0..3 {
        let again = ok(
            store.append(text(visitor("v1"), c, Some("m-1"), "hello")).await,
            "append",
        );
        assert!(again.duplicate);
        assert_eq!(again.event, first.event);
    }
    // Even with a different body, the key wins: the original is returned, nothing new is stored.
    let changed = ok(
        store.append(text(visitor("v1"), c, Some("m-1"), "changed")).await,
        "append",
    );
    assert!(changed.duplicate);
    assert_eq!(changed.event, first.event);
    let agent = Actor::Agent(id("a1"));
    let other = ok(store.append(text(agent, c, Some("m-1"), "hi")).await, "append");
    assert!(!other.duplicate);
    assert_eq!(other.event.seq, first.event.seq.next());
    let events = ok(store.events_after(c, Seq::ZERO, 100).await, "events_after");
    assert_eq!(events.len(), 3);
}

/// An event the state does not allow is refused with `Transition`, and nothing is stored.
pub async fn refused_transitions_store_nothing(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    let agent: AgentId = id("a1");
    ok(
        store
            .append(system(c, EventKind::Assigned { agent: agent.clone() }))
            .await,
        "assign",
    );
    let twice = store
        .append(system(c, EventKind::Assigned { agent: id("a2") }))
        .await;
    assert!(
        matches!(twice, Err(StoreError::Transition(_))),
        "second assign: {twice:?}"
    );
    let recreate = store
        .append(system(
            c,
            EventKind::Created {
                group: id("sales"),
                entry: None,
            },
        ))
        .await;
    assert!(recreate.is_err(), "a second Created must be refused");
    let before = ok(
        store.append(text(visitor("v1"), c, Some("before"), "hi")).await,
        "append",
    );
    ok(store.append(system(c, EventKind::Closed)).await, "close");
    // A retry of a send that was stored before the close is a duplicate, not a refused transition.
    let retry = ok(
        store.append(text(visitor("v1"), c, Some("before"), "hi")).await,
        "append",
    );
    assert!(retry.duplicate);
    assert_eq!(retry.event, before.event);
    let late = store.append(text(visitor("v1"), c, Some("late"), "late")).await;
    assert!(
        matches!(late, Err(StoreError::Transition(_))),
        "message to closed: {late:?}"
    );
    let events = ok(store.events_after(c, Seq::ZERO, 100).await, "events_after");
    assert_eq!(events.len(), 4, "created, assigned, message, closed");
    let conversation = ok(store.conversation(c).await, "conversation");
    assert_eq!(conversation.map(|c| c.last_seq), Some(Seq(4)));
    // The refused key was not consumed: after a reopen the same client id is a new message.
    ok(store.append(system(c, EventKind::Reopened)).await, "reopen");
    let retry = ok(
        store.append(text(visitor("v1"), c, Some("late"), "late")).await,
        "append",
    );
    assert!(!retry.duplicate);
    assert_eq!(retry.event.seq, Seq(6));
}

/// The conversation record follows its log: assigned, closed, reopened, last agent kept.
pub async fn state_follows_the_log(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    let agent: AgentId = id("a1");
    let assigned = ok(
        store
            .append(system(c, EventKind::Assigned { agent: agent.clone() }))
            .await,
        "assign",
    );
    assert_eq!(
        assigned.conversation.state,
        ConversationState::Assigned { agent: agent.clone() }
    );
    let closed = ok(store.append(system(c, EventKind::Closed)).await, "close");
    assert_eq!(closed.conversation.state, ConversationState::Closed);
    assert_eq!(closed.conversation.last_agent, Some(agent.clone()));
    assert_eq!(closed.conversation.updated_at, Timestamp(2_000));
    let stored = ok(store.conversation(c).await, "conversation");
    assert_eq!(stored.as_ref(), Some(&closed.conversation));
    let reopened = ok(store.append(system(c, EventKind::Reopened)).await, "reopen");
    assert_eq!(reopened.conversation.state, ConversationState::Queued);
    assert_eq!(reopened.conversation.last_agent, Some(agent));
    assert_eq!(reopened.conversation.last_seq, Seq(4));
}

/// `events_after` returns events strictly after the cursor, at most `limit`, in seq order.
pub async fn events_after_pages_in_order(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    for n in 0..9 {
        ok(
            store.append(text(visitor("v1"), c, None, &format!("m{n}"))).await,
            "append",
        );
    }
    let mut cursor = Seq::ZERO;
    let mut seen = Vec::new();
    loop {
        let page = ok(store.events_after(c, cursor, 4).await, "events_after");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        seen.extend(page.iter().map(|e| e.seq.0));
    }
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    let tail = ok(store.events_after(c, Seq(10), 4).await, "events_after");
    assert!(tail.is_empty());
    let beyond = ok(store.events_after(c, Seq(1_000), 4).await, "events_after");
    assert!(beyond.is_empty());
    let message = ok(store.events_after(c, Seq(1), 1).await, "events_after");
    assert_eq!(
        message[0].data,
        EventKind::Message {
            body: MessageBody::text("m0")
        }
    );
}

/// Unknown conversations: `None` from `conversation`, `ConversationNotFound` from `append`.
pub async fn unknown_conversation_is_not_found(store: Arc<dyn Store>) {
    let missing = ConversationId::generate();
    assert_eq!(ok(store.conversation(missing).await, "conversation"), None);
    let append = store.append(text(visitor("v1"), missing, Some("x"), "hi")).await;
    assert!(
        matches!(append, Err(StoreError::ConversationNotFound(id)) if id == missing),
        "{append:?}"
    );
    let read = store.events_after(missing, Seq::ZERO, 10).await;
    assert!(
        matches!(read, Err(StoreError::ConversationNotFound(_))) || matches!(read, Ok(ref v) if v.is_empty())
    );
}

/// Many concurrent appends to one conversation (some of them repeats) give unique, gapless seqs.
pub async fn concurrent_appends_stay_gapless(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..25 {
                // Every message is sent twice, the second time as a retry.
                let key = format!("k-{task}-{n}");
                let first = store.append(text(visitor("v1"), c, Some(&key), "x")).await;
                let again = store.append(text(visitor("v1"), c, Some(&key), "x")).await;
                match (first, again) {
                    (Ok(first), Ok(again)) => {
                        assert_eq!(first.event.seq, again.event.seq);
                        assert!(again.duplicate);
                        seqs.push(first.event.seq.0);
                    }
                    (first, again) => panic!("append failed: {first:?} {again:?}"),
                }
            }
            seqs
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        match task.await {
            Ok(seqs) => all.extend(seqs),
            Err(error) => panic!("append task failed: {error}"),
        }
    }
    assert_eq!(all.len(), 200);
    let events = ok(store.events_after(c, Seq::ZERO, 1_000).await, "events_after");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, (1..=201).collect::<Vec<_>>());
}

/// Listings: a visitor's conversations newest first, an agent's open ones oldest first, all open ones.
pub async fn listings_filter_and_order(store: Arc<dyn Store>) {
    let first = open(&*store, "v1", "open-1").await;
    let second = open(&*store, "v1", "open-2").await;
    let others = open(&*store, "v2", "open-1").await;
    let agent: AgentId = id("a1");
    ok(
        store
            .append(system(first, EventKind::Assigned { agent: agent.clone() }))
            .await,
        "assign",
    );
    ok(
        store
            .append(system(second, EventKind::Assigned { agent: agent.clone() }))
            .await,
        "assign",
    );
    ok(store.append(system(second, EventKind::Closed)).await, "close");

    let mine = ok(
        store.conversations_of_visitor(&tenant(), &id("v1")).await,
        "of visitor",
    );
    assert_eq!(mine.iter().map(|c| c.id).collect::<Vec<_>>(), vec![second, first]);
    let elsewhere = ok(
        store.conversations_of_visitor(&id("tenant-2"), &id("v1")).await,
        "of visitor",
    );
    assert!(elsewhere.is_empty(), "tenants are isolated");

    let assigned = ok(store.conversations_of_agent(&tenant(), &agent).await, "of agent");
    assert_eq!(
        assigned.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first],
        "closed ones are not listed"
    );

    let open_ones = ok(store.open_conversations().await, "open");
    assert_eq!(
        open_ones.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first, others]
    );
}

/// Visitor, agent and group records are stored, replaced and listed.
pub async fn records_round_trip(store: Arc<dyn Store>) {
    let visitor = Visitor {
        tenant: tenant(),
        id: id("v1"),
        name: Some("Ada".into()),
        created_at: Timestamp(7),
    };
    ok(store.put_visitor(visitor.clone()).await, "put_visitor");
    assert_eq!(
        ok(store.visitor(&tenant(), &id("v1")).await, "visitor"),
        Some(visitor)
    );
    assert_eq!(ok(store.visitor(&tenant(), &id("nobody")).await, "visitor"), None);

    let mut agent = Agent {
        tenant: tenant(),
        id: id("a1"),
        name: "Alice".into(),
        groups: vec![id("sales"), id("support")],
        capacity: 3,
        group_capacity: Default::default(),
    };
    ok(store.put_agent(agent.clone()).await, "put_agent");
    agent.capacity = 5;
    ok(store.put_agent(agent.clone()).await, "put_agent");
    let other = Agent {
        tenant: id("tenant-0"),
        id: id("a9"),
        name: "Zed".into(),
        groups: vec![],
        capacity: 1,
        group_capacity: Default::default(),
    };
    ok(store.put_agent(other.clone()).await, "put_agent");
    assert_eq!(
        ok(store.agent(&tenant(), &id("a1")).await, "agent"),
        Some(agent.clone())
    );
    assert_eq!(ok(store.agents().await, "agents"), vec![other, agent]);

    let sales = Group {
        tenant: tenant(),
        id: id("sales"),
        name: "Sales".into(),
        strategy: Default::default(),
        max_active: None,
        welcome: None,
        timers: Default::default(),
    };
    let support = Group {
        tenant: tenant(),
        id: id("support"),
        name: "Support".into(),
        strategy: Default::default(),
        max_active: None,
        welcome: None,
        timers: Default::default(),
    };
    ok(store.put_group(support.clone()).await, "put_group");
    ok(store.put_group(sales.clone()).await, "put_group");
    let renamed = Group {
        name: "Sales team".into(),
        ..sales
    };
    ok(store.put_group(renamed.clone()).await, "put_group");
    let groups: Vec<GroupId> = ok(store.groups().await, "groups")
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(groups, vec![id("sales"), id("support")]);
    assert_eq!(ok(store.groups().await, "groups")[0], renamed);
}

/// Routing settings survive a round trip: per-group capacity overrides of agents, groups' strategy and cap.
pub async fn routing_settings_round_trip(store: Arc<dyn Store>) {
    let mut agent = Agent {
        tenant: tenant(),
        id: id("a1"),
        name: "Alice".into(),
        groups: vec![id("sales"), id("support")],
        capacity: 3,
        group_capacity: [(id("sales"), 1)].into_iter().collect(),
    };
    ok(store.put_agent(agent.clone()).await, "put_agent");
    assert_eq!(
        ok(store.agent(&tenant(), &id("a1")).await, "agent"),
        Some(agent.clone())
    );
    agent.group_capacity.insert(id("support"), 6);
    ok(store.put_agent(agent.clone()).await, "put_agent");
    assert_eq!(ok(store.agents().await, "agents"), vec![agent]);

    let mut groups = Vec::new();
    for (name, strategy, max_active) in [
        ("a-default", Strategy::Default, None),
        ("b-least", Strategy::LeastBusy, Some(4)),
        ("c-round", Strategy::RoundRobin, None),
        ("d-manual", Strategy::Manual, Some(1)),
        ("e-sticky", Strategy::Sticky, None),
        ("f-external", Strategy::External("crm".into()), Some(9)),
    ] {
        let group = Group {
            strategy,
            max_active,
            ..Group::new(tenant(), id(name), name)
        };
        ok(store.put_group(group.clone()).await, "put_group");
        groups.push(group);
    }
    assert_eq!(ok(store.groups().await, "groups"), groups);
    let changed = Group {
        strategy: Strategy::Manual,
        max_active: None,
        welcome: Some("Hello! How can we help?".into()),
        timers: GroupTimers {
            max_wait_ms: Some(60_000),
            fallback: Some(id("support")),
            missed_after_ms: Some(120_000),
            answer_timeout_ms: Some(30_000),
            inactivity_close_ms: Some(600_000),
        },
        ..groups[1].clone()
    };
    ok(store.put_group(changed.clone()).await, "put_group");
    assert_eq!(ok(store.groups().await, "groups")[1], changed);
}

/// A `Transferred` event moves the record to its new owner or queue and group, in the log and the listings.
pub async fn transfers_move_owner_and_group(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    let (a1, a2): (AgentId, AgentId) = (id("a1"), id("a2"));
    ok(
        store
            .append(system(c, EventKind::Assigned { agent: a1.clone() }))
            .await,
        "assign",
    );
    let to_agent = EventKind::Transferred {
        from: Some(a1.clone()),
        agent: Some(a2.clone()),
        group: id("sales"),
        note: Some("VIP".into()),
    };
    let moved = ok(
        store
            .append(EventDraft::new(
                c,
                Actor::Agent(a1.clone()),
                to_agent.clone(),
                Timestamp(3_000),
            ))
            .await,
        "transfer",
    );
    assert_eq!(moved.event.seq, Seq(3));
    assert_eq!(moved.event.data, to_agent);
    assert_eq!(
        moved.conversation.state,
        ConversationState::Assigned { agent: a2.clone() }
    );
    assert_eq!(moved.conversation.last_agent, Some(a2.clone()));
    assert!(ok(store.conversations_of_agent(&tenant(), &a1).await, "of agent").is_empty());
    assert_eq!(
        ok(store.conversations_of_agent(&tenant(), &a2).await, "of agent").len(),
        1
    );

    let to_group = EventKind::Transferred {
        from: Some(a2.clone()),
        agent: None,
        group: id("support"),
        note: None,
    };
    let queued = ok(
        store
            .append(EventDraft::new(
                c,
                Actor::Agent(a2.clone()),
                to_group.clone(),
                Timestamp(4_000),
            ))
            .await,
        "transfer",
    );
    assert_eq!(queued.conversation.state, ConversationState::Queued);
    assert_eq!(queued.conversation.group, id::<GroupId>("support"));
    assert_eq!(queued.conversation.last_agent, Some(a2.clone()));
    let stored = ok(store.conversation(c).await, "conversation");
    assert_eq!(stored.as_ref(), Some(&queued.conversation));
    let open_ones = ok(store.open_conversations().await, "open");
    assert_eq!(open_ones, vec![queued.conversation.clone()]);
    let events = ok(store.events_after(c, Seq(2), 10).await, "events_after");
    assert_eq!(
        events.iter().map(|e| e.data.clone()).collect::<Vec<_>>(),
        vec![to_agent, to_group]
    );
    ok(store.append(system(c, EventKind::Closed)).await, "close");
    let missed = ok(
        store
            .append(system(
                c,
                EventKind::Missed {
                    reason: MissedReason::Unanswered,
                },
            ))
            .await,
        "missed",
    );
    assert_eq!(
        missed.conversation.state,
        ConversationState::Closed,
        "a record changes no state"
    );
    let late = store
        .append(system(
            c,
            EventKind::Transferred {
                from: None,
                agent: Some(a1),
                group: id("sales"),
                note: None,
            },
        ))
        .await;
    assert!(matches!(late, Err(StoreError::Transition(_))), "{late:?}");
}

/// The epoch does not change while the store is open.
pub async fn epoch_is_stable(store: Arc<dyn Store>) {
    let first = ok(store.epoch().await, "epoch");
    assert!(!first.0.is_empty());
    open(&*store, "v1", "open-1").await;
    assert_eq!(ok(store.epoch().await, "epoch"), first);
}

/// An `offline` event moves a queued conversation to `Offline`, which keeps messages, counts as open, is
/// stored and read back as such, and can be taken (assigned) or closed.
pub async fn offline_state_round_trips(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    let offline = ok(store.append(system(c, EventKind::Offline)).await, "offline");
    assert_eq!(offline.event.seq, Seq(2));
    assert_eq!(offline.conversation.state, ConversationState::Offline);
    let stored = ok(store.conversation(c).await, "conversation");
    assert_eq!(stored.as_ref(), Some(&offline.conversation));
    let message = ok(
        store.append(text(visitor("v1"), c, Some("m"), "call me")).await,
        "append",
    );
    assert_eq!(message.conversation.state, ConversationState::Offline);
    let again = store.append(system(c, EventKind::Offline)).await;
    assert!(matches!(again, Err(StoreError::Transition(_))), "{again:?}");
    let open_ones = ok(store.open_conversations().await, "open_conversations");
    assert_eq!(open_ones.iter().map(|c| c.id).collect::<Vec<_>>(), vec![c]);
    assert_eq!(open_ones[0].state, ConversationState::Offline);
    let agent: AgentId = id("a1");
    let taken = ok(
        store
            .append(EventDraft::new(
                c,
                Actor::Agent(agent.clone()),
                EventKind::Assigned { agent: agent.clone() },
                Timestamp(3_000),
            ))
            .await,
        "take",
    );
    assert_eq!(
        taken.conversation.state,
        ConversationState::Assigned { agent: agent.clone() }
    );
    let of_agent = ok(
        store.conversations_of_agent(&tenant(), &agent).await,
        "conversations_of_agent",
    );
    assert_eq!(of_agent.len(), 1);
    // Offline → closed directly is allowed too.
    let other = open(&*store, "v2", "open-1").await;
    ok(store.append(system(other, EventKind::Offline)).await, "offline");
    let closed = ok(store.append(system(other, EventKind::Closed)).await, "close");
    assert_eq!(closed.conversation.state, ConversationState::Closed);
}

/// Working hours per group: set, listed by (tenant, group), replaced, removed.
pub async fn group_hours_round_trip(store: Arc<dyn Store>) {
    assert!(ok(store.group_hours().await, "group_hours").is_empty());
    let berlin = match WorkingHours::new("Europe/Berlin").and_then(|h| h.with_day("mon", &["09:00-17:00"])) {
        Ok(hours) => hours,
        Err(error) => panic!("hours: {error}"),
    };
    let utc = match WorkingHours::new("UTC").and_then(|h| h.with_holiday("2026-12-25", &[])) {
        Ok(hours) => hours,
        Err(error) => panic!("hours: {error}"),
    };
    let (sales, support): (GroupId, GroupId) = (id("sales"), id("support"));
    ok(
        store
            .put_group_hours(&tenant(), &support, Some(utc.clone()))
            .await,
        "put",
    );
    ok(
        store.put_group_hours(&tenant(), &sales, Some(utc.clone())).await,
        "put",
    );
    ok(
        store
            .put_group_hours(&tenant(), &sales, Some(berlin.clone()))
            .await,
        "replace",
    );
    let listed = ok(store.group_hours().await, "group_hours");
    let listed: Vec<(GroupId, WorkingHours)> = listed.into_iter().map(|g| (g.group, g.hours)).collect();
    assert_eq!(listed, vec![(sales.clone(), berlin), (support.clone(), utc)]);
    ok(store.put_group_hours(&tenant(), &sales, None).await, "remove");
    ok(
        store.put_group_hours(&tenant(), &sales, None).await,
        "remove again",
    );
    let listed = ok(store.group_hours().await, "group_hours");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].group, support);
}

fn context_of(conversation: ConversationId, pages: u32) -> ConversationContext {
    ConversationContext {
        conversation,
        tenant: tenant(),
        visitor: id("v1"),
        source: Source {
            referrer: Some("https://search.example/?q=shoes".into()),
            landing_page: Some("https://shop.example/".into()),
            utm: Utm {
                source: Some("newsletter".into()),
                ..Utm::default()
            },
        },
        device: Device {
            kind: DeviceType::Mobile,
            browser: Some("Safari".into()),
            browser_version: Some("17.1".into()),
            os: Some("iPhone".into()),
            os_version: Some("17.1".into()),
        },
        user_agent: Some("Mozilla/5.0 (iPhone)".into()),
        screen: None,
        language: Some("de-DE".into()),
        first_page: Some(PageView {
            url: "https://shop.example/".into(),
            title: None,
            at: Timestamp(10),
        }),
        last_page: Some(PageView {
            url: "https://shop.example/cart".into(),
            title: Some("Cart".into()),
            at: Timestamp(20),
        }),
        page_count: pages,
        captured_at: Timestamp(30),
    }
}

/// A conversation's visitor-context summary is stored, read back and replaced; an unknown conversation has none
/// and cannot get one.
pub async fn conversation_context_round_trips(store: Arc<dyn Store>) {
    let c = open(&*store, "v1", "open-1").await;
    assert_eq!(ok(store.conversation_context(c).await, "context"), None);
    ok(store.put_conversation_context(context_of(c, 3)).await, "put");
    assert_eq!(
        ok(store.conversation_context(c).await, "context"),
        Some(context_of(c, 3))
    );
    ok(store.put_conversation_context(context_of(c, 4)).await, "replace");
    assert_eq!(
        ok(store.conversation_context(c).await, "context"),
        Some(context_of(c, 4))
    );
    let missing = ConversationId::generate();
    let refused = store.put_conversation_context(context_of(missing, 1)).await;
    assert!(
        matches!(refused, Err(StoreError::ConversationNotFound(_))),
        "{refused:?}"
    );
    assert_eq!(ok(store.conversation_context(missing).await, "context"), None);
}

fn quick(reply_id: &str, scope: QuickReplyScope, shortcut: &str, text: &str) -> QuickReply {
    QuickReply {
        id: reply_id.into(),
        tenant: tenant(),
        scope,
        shortcut: shortcut.into(),
        text: text.into(),
    }
}

/// Quick replies: listed per scope by shortcut, a shortcut unique per scope (`Conflict`, nothing stored),
/// replaced by id, deleted.
pub async fn quick_replies_are_scoped_and_unique(store: Arc<dyn Store>) {
    let alice = QuickReplyScope::Agent { agent: id("alice") };
    let bob = QuickReplyScope::Agent { agent: id("bob") };
    let support = QuickReplyScope::Group { group: id("support") };
    ok(
        store
            .put_quick_reply(quick("q1", alice.clone(), "thanks", "Thank you!"))
            .await,
        "put",
    );
    ok(
        store
            .put_quick_reply(quick("q2", alice.clone(), "hello", "Hello!"))
            .await,
        "put",
    );
    ok(
        store
            .put_quick_reply(quick("q3", bob.clone(), "hello", "Hi there"))
            .await,
        "put",
    );
    ok(
        store
            .put_quick_reply(quick("q4", support.clone(), "hello", "Welcome"))
            .await,
        "put",
    );
    let clash = store
        .put_quick_reply(quick("q5", alice.clone(), "hello", "Again"))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert_eq!(ok(store.quick_reply(&tenant(), "q5").await, "get"), None);
    let listed = ok(store.quick_replies(&tenant(), &alice).await, "list");
    let shortcuts: Vec<&str> = listed.iter().map(|r| r.shortcut.as_str()).collect();
    assert_eq!(shortcuts, ["hello", "thanks"]);
    // Replacing by id may keep or change the shortcut.
    ok(
        store
            .put_quick_reply(quick("q2", alice.clone(), "hello", "Hello again!"))
            .await,
        "replace",
    );
    ok(
        store
            .put_quick_reply(quick("q1", alice.clone(), "ty", "Thank you!"))
            .await,
        "rename",
    );
    let q2 = ok(store.quick_reply(&tenant(), "q2").await, "get");
    assert_eq!(q2.map(|r| r.text), Some("Hello again!".into()));
    let listed = ok(store.quick_replies(&tenant(), &alice).await, "list");
    let shortcuts: Vec<&str> = listed.iter().map(|r| r.shortcut.as_str()).collect();
    assert_eq!(shortcuts, ["hello", "ty"]);
    let group = ok(store.quick_replies(&tenant(), &support).await, "list");
    assert_eq!(group, vec![quick("q4", support.clone(), "hello", "Welcome")]);
    assert!(ok(store.delete_quick_reply(&tenant(), "q2").await, "delete"));
    assert!(!ok(
        store.delete_quick_reply(&tenant(), "q2").await,
        "delete again"
    ));
    assert_eq!(ok(store.quick_replies(&tenant(), &alice).await, "list").len(), 1);
    // Another tenant sees none of them.
    let other: TenantId = id("tenant-2");
    assert!(ok(store.quick_replies(&other, &alice).await, "list").is_empty());
    assert_eq!(ok(store.quick_reply(&other, "q1").await, "get"), None);
}

/// Entry points are stored per tenant, listed in (tenant, id) order with their rules in order, replaced by
/// id and deleted.
pub async fn entry_points_round_trip(store: Arc<dyn Store>) {
    let rules = |rules: &[&str]| -> Vec<PageRule> {
        rules
            .iter()
            .map(|rule| match PageRule::new(*rule) {
                Ok(rule) => rule,
                Err(error) => panic!("bad test rule: {error}"),
            })
            .collect()
    };
    let mut widget = EntryPoint::new(tenant(), id("widget"), id("sales"));
    widget.welcome = Some("Hi from the widget!".into());
    let mut pricing = EntryPoint::new(tenant(), id("pricing"), id("billing"));
    pricing.pages = rules(&["https://shop.example/pricing*", "shop.example/plans"]);
    let other = EntryPoint::new(id("tenant-0"), id("widget"), id("sales"));
    for entry in [widget.clone(), pricing.clone(), other.clone()] {
        ok(store.put_entry_point(entry).await, "put");
    }
    let listed = ok(store.entry_points().await, "list");
    assert_eq!(listed, vec![other.clone(), pricing.clone(), widget.clone()]);
    // Replacing by id changes everything else.
    let mut replaced = widget.clone();
    replaced.group = id("support");
    replaced.welcome = None;
    replaced.pages = rules(&["*/help"]);
    ok(store.put_entry_point(replaced.clone()).await, "replace");
    let listed = ok(store.entry_points().await, "list");
    assert_eq!(listed, vec![other.clone(), pricing.clone(), replaced]);
    assert!(ok(
        store.delete_entry_point(&tenant(), &id("widget")).await,
        "delete"
    ));
    assert!(!ok(
        store.delete_entry_point(&tenant(), &id("widget")).await,
        "delete again"
    ));
    assert_eq!(ok(store.entry_points().await, "list"), vec![other, pricing]);
}

/// The `Created` event records the entry point the conversation was opened through, also when the same open
/// is repeated; without one it has none.
pub async fn created_events_record_their_entry_point(store: Arc<dyn Store>) {
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id("v-entry"),
        group: id("billing"),
        client_id: id("open-entry"),
        entry: Some(id("pricing")),
        at: Timestamp(500),
    };
    let created = ok(store.create_conversation(new.clone()).await, "create");
    let expected = EventKind::Created {
        group: id("billing"),
        entry: Some(id("pricing")),
    };
    assert_eq!(created.event.data, expected);
    let again = ok(store.create_conversation(new).await, "create again");
    assert!(!again.created);
    assert_eq!(again.event.data, expected);
    let events = ok(
        store.events_after(created.conversation.id, Seq::ZERO, 10).await,
        "events",
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data, expected);
    let plain = open(store.as_ref(), "v-plain", "open-plain").await;
    let events = ok(store.events_after(plain, Seq::ZERO, 10).await, "events");
    assert_eq!(
        events[0].data,
        EventKind::Created {
            group: id("sales"),
            entry: None
        }
    );
}

/// Stamps the store conformance suite into the calling crate as `#[test]` functions.
///
/// The argument is an expression evaluating to a future that yields a fresh, empty `Arc<dyn Store>` (it is
/// evaluated once per test, inside a Tokio runtime).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@tests $make;
            create_starts_a_log_at_seq_one,
            create_is_idempotent_per_visitor_client_id,
            appends_get_gapless_seqs,
            append_is_idempotent_per_author_and_client_id,
            refused_transitions_store_nothing,
            state_follows_the_log,
            events_after_pages_in_order,
            unknown_conversation_is_not_found,
            concurrent_appends_stay_gapless,
            listings_filter_and_order,
            records_round_trip,
            epoch_is_stable,
            routing_settings_round_trip,
            transfers_move_owner_and_group,
            offline_state_round_trips,
            group_hours_round_trip,
            conversation_context_round_trips,
            quick_replies_are_scoped_and_unique,
            entry_points_round_trip,
            created_events_record_their_entry_point,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let store: ::std::sync::Arc<dyn $crate::store::Store> = $make.await;
                    $crate::testkit::store::$name(store).await;
                });
            }
        )*
    };
}
