//! The [`ConversationLog`] conformance suite: logs, seqs, idempotency, state, listings, contexts, the change feed
//! and the extension methods. Each function takes a fresh, empty log and panics on a violation.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;

use super::fixtures::{context_of, id, ok, open, system, tenant, text, visitor};
use crate::model::{
    Actor, AgentId, ClientId, ConversationId, ConversationState, EventKind, GroupId, MessageBody,
    MissedReason, Seq, TenantId, Timestamp,
};
use crate::store::{
    ConversationLog, ConversationLogExt, EVENTS_PAGE, EventDraft, FeedEntry, FeedPosition, NewConversation,
    StoreError,
};

pub use super::seen::seen_marks_only_move_forward;

/// `create_conversation` opens a queued conversation whose log starts with `Created` at seq 1.
pub async fn create_starts_a_log_at_seq_one(store: Arc<dyn ConversationLog>) {
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id("v1"),
        group: id("sales"),
        client_id: id("open-1"),
        entry: None,
        fields: BTreeMap::new(),
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
            fields: Default::default(),
        }
    );
    assert_eq!(created.event.author, visitor("v1"));
    let events = ok(store.events_after(new.id, Seq::ZERO, 10).await, "events_after");
    assert_eq!(events, vec![created.event.clone()]);
    let stored = ok(store.conversation(new.id).await, "conversation");
    assert_eq!(stored, Some(created.conversation));
}

/// Opening again with the same (tenant, visitor, client id) returns the first conversation.
pub async fn create_is_idempotent_per_visitor_client_id(store: Arc<dyn ConversationLog>) {
    let first = open(&*store, "v1", "open-1").await;
    let again = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id("v1"),
        group: id("sales"),
        client_id: id("open-1"),
        entry: None,
        fields: BTreeMap::new(),
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
            fields: Default::default(),
        }
    );
    // The same client id from another visitor is another conversation.
    let other = open(&*store, "v2", "open-1").await;
    assert_ne!(other, first);
}

/// Appends get seqs 2, 3, 4… in order.
pub async fn appends_get_gapless_seqs(store: Arc<dyn ConversationLog>) {
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
pub async fn append_is_idempotent_per_author_and_client_id(store: Arc<dyn ConversationLog>) {
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
pub async fn refused_transitions_store_nothing(store: Arc<dyn ConversationLog>) {
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
                fields: Default::default(),
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
pub async fn state_follows_the_log(store: Arc<dyn ConversationLog>) {
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
pub async fn events_after_pages_in_order(store: Arc<dyn ConversationLog>) {
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
pub async fn unknown_conversation_is_not_found(store: Arc<dyn ConversationLog>) {
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
pub async fn concurrent_appends_stay_gapless(store: Arc<dyn ConversationLog>) {
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
pub async fn listings_filter_and_order(store: Arc<dyn ConversationLog>) {
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

/// The epoch does not change while the store is open.
pub async fn epoch_is_stable(store: Arc<dyn ConversationLog>) {
    let first = ok(store.epoch().await, "epoch");
    assert!(!first.0.is_empty());
    open(&*store, "v1", "open-1").await;
    assert_eq!(ok(store.epoch().await, "epoch"), first);
}

/// A `Transferred` event moves the record to its new owner or queue and group, in the log and the listings.
pub async fn transfers_move_owner_and_group(store: Arc<dyn ConversationLog>) {
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
        handover: false,
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
        handover: true,
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
                handover: false,
            },
        ))
        .await;
    assert!(matches!(late, Err(StoreError::Transition(_))), "{late:?}");
}

/// An `offline` event moves a queued conversation to `Offline`, which keeps messages, counts as open, is
/// stored and read back as such, and can be taken (assigned) or closed.
pub async fn offline_state_round_trips(store: Arc<dyn ConversationLog>) {
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

/// A `rated` event is appended to a closed conversation only, once: the record keeps the score (also across a
/// reopen and a second close, and when read back), the event its score and comment; the same client id again is
/// the original event, another rating a refused transition that stores nothing.
pub async fn ratings_round_trip_once(store: Arc<dyn ConversationLog>) {
    let c = open(&*store, "v1", "open-1").await;
    let rate = |client_id: &str, score: u8, comment: Option<&str>| EventDraft {
        client_id: Some(id(client_id)),
        ..EventDraft::new(
            c,
            visitor("v1"),
            EventKind::Rated {
                score,
                comment: comment.map(str::to_owned),
            },
            Timestamp(5_000),
        )
    };
    let early = store.append(rate("r-0", 5, None)).await;
    assert!(matches!(early, Err(StoreError::Transition(_))), "open: {early:?}");
    ok(store.append(system(c, EventKind::Closed)).await, "close");
    let rated = ok(
        store.append(rate("r-1", 4, Some("Quick,\nthank you"))).await,
        "rate",
    );
    assert!(!rated.duplicate);
    assert_eq!(rated.event.seq, Seq(3));
    assert_eq!(rated.conversation.rating, Some(4));
    assert_eq!(rated.conversation.state, ConversationState::Closed);
    let repeat = ok(store.append(rate("r-1", 1, None)).await, "repeat");
    assert!(repeat.duplicate);
    assert_eq!(repeat.event, rated.event, "the first rating wins");
    let second = store.append(rate("r-2", 1, None)).await;
    assert!(matches!(second, Err(StoreError::Transition(_))), "{second:?}");
    // A reopen keeps the rating, and a second close takes none.
    ok(store.append(system(c, EventKind::Reopened)).await, "reopen");
    ok(store.append(system(c, EventKind::Closed)).await, "close again");
    let after_reopen = store.append(rate("r-3", 2, None)).await;
    assert!(
        matches!(after_reopen, Err(StoreError::Transition(_))),
        "{after_reopen:?}"
    );
    let stored = ok(store.conversation(c).await, "conversation");
    let kept = stored.as_ref().map(|record| (record.rating, record.last_seq));
    assert_eq!(kept, Some((Some(4), Seq(5))), "{stored:?}");
    let events = ok(store.events_after(c, Seq(2), 10).await, "events_after");
    assert_eq!(events.first(), Some(&rated.event));
    let rated_events = events
        .iter()
        .filter(|event| matches!(event.data, EventKind::Rated { .. }))
        .count();
    assert_eq!(rated_events, 1, "counted once");
    let of_visitor = ok(
        store.conversations_of_visitor(&tenant(), &id("v1")).await,
        "conversations_of_visitor",
    );
    assert_eq!(of_visitor.first().and_then(|c| c.rating), Some(4));
}

/// A `note` (text and mentions, idempotent by its author's client id) is appended in any state without changing
/// it, and reads back whole — mentions included, and without them when there are none.
pub async fn notes_round_trip(store: Arc<dyn ConversationLog>) {
    let c = open(&*store, "v1", "open-1").await;
    let alice: AgentId = id("alice");
    ok(
        store
            .append(system(c, EventKind::Assigned { agent: alice.clone() }))
            .await,
        "assign",
    );
    let note = |client_id: &str, text: &str, mentions: Vec<AgentId>| EventDraft {
        client_id: Some(id(client_id)),
        ..EventDraft::new(
            c,
            Actor::Agent(alice.clone()),
            EventKind::Note {
                text: text.into(),
                mentions,
            },
            Timestamp(6_000),
        )
    };
    let first = ok(
        store
            .append(note("n-1", "VIP customer, @bob knows them", vec![id("bob")]))
            .await,
        "note",
    );
    assert_eq!(first.event.seq, Seq(3));
    assert_eq!(
        first.conversation.state,
        ConversationState::Assigned { agent: alice.clone() }
    );
    let repeat = ok(store.append(note("n-1", "changed", vec![])).await, "repeat");
    assert!(repeat.duplicate);
    assert_eq!(repeat.event, first.event);
    ok(store.append(system(c, EventKind::Closed)).await, "close");
    let after_close = ok(
        store.append(note("n-2", "Follow up on Monday", vec![])).await,
        "note",
    );
    assert_eq!(after_close.conversation.state, ConversationState::Closed);
    let events = ok(store.events_after(c, Seq(2), 10).await, "events_after");
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], first.event);
    assert_eq!(events[2], after_close.event);
    assert_eq!(
        events[2].data,
        EventKind::Note {
            text: "Follow up on Monday".into(),
            mentions: vec![],
        }
    );
    let by_id = ok(
        store
            .event_by_client_id(c, &Actor::Agent(alice), &id("n-1"))
            .await,
        "event_by_client_id",
    );
    assert_eq!(by_id, Some(first.event));
    // A visitor's placeholder is never stored.
    let hidden = store.append(system(c, EventKind::Hidden)).await;
    assert!(matches!(hidden, Err(StoreError::Transition(_))), "{hidden:?}");
}

/// `labeled`, `unlabeled` and `attribute_set` events are appended in any state without changing it; the record
/// keeps the labels and the conversation's attributes (not the visitor's: they are kept on the visitor) and reads
/// them back, from `conversation` and the listings; a label twice, a label it lacks taken off, are refused
/// transitions that store nothing; the events read back whole and by client id.
pub async fn labels_and_attributes_round_trip(store: Arc<dyn ConversationLog>) {
    use crate::labels::{AttributeObject, AttributeValue};
    let c = open(&*store, "v1", "open-1").await;
    let alice: AgentId = id("alice");
    ok(
        store
            .append(system(c, EventKind::Assigned { agent: alice.clone() }))
            .await,
        "assign",
    );
    let by_alice = |client_id: &str, data: EventKind| EventDraft {
        client_id: Some(id(client_id)),
        ..EventDraft::new(c, Actor::Agent(alice.clone()), data, Timestamp(7_000))
    };
    let label = |name: &str| EventKind::Labeled { label: name.into() };
    let set = |object, key: &str, value: Option<AttributeValue>| EventKind::AttributeSet {
        object,
        key: key.into(),
        value,
    };
    let vip = ok(store.append(by_alice("l-1", label("VIP"))).await, "label");
    assert_eq!(vip.event.seq, Seq(3));
    assert!(vip.conversation.labels.contains("VIP"));
    assert_eq!(
        vip.conversation.state,
        ConversationState::Assigned { agent: alice.clone() }
    );
    let repeat = ok(store.append(by_alice("l-1", label("VIP"))).await, "repeat");
    assert!(repeat.duplicate);
    assert_eq!(repeat.event, vip.event);
    let twice = store.append(by_alice("l-2", label("VIP"))).await;
    assert!(matches!(twice, Err(StoreError::Transition(_))), "{twice:?}");
    ok(
        store.append(by_alice("l-3", label("Billing issue"))).await,
        "label",
    );
    let order = AttributeValue::Number(1042.into());
    ok(
        store
            .append(by_alice(
                "a-1",
                set(AttributeObject::Conversation, "order", Some(order.clone())),
            ))
            .await,
        "set",
    );
    let due = AttributeValue::date("2026-12-24").unwrap_or(AttributeValue::Bool(false));
    ok(
        store
            .append(by_alice(
                "a-2",
                set(AttributeObject::Conversation, "due", Some(due.clone())),
            ))
            .await,
        "set",
    );
    ok(
        store
            .append(by_alice(
                "a-3",
                set(
                    AttributeObject::Visitor,
                    "plan",
                    Some(AttributeValue::String("pro".into())),
                ),
            ))
            .await,
        "visitor's attribute",
    );
    ok(store.append(system(c, EventKind::Closed)).await, "close");
    // Closed: labels and attributes still change (a team labels after the fact).
    ok(
        store
            .append(by_alice("u-1", EventKind::Unlabeled { label: "VIP".into() }))
            .await,
        "unlabel",
    );
    let absent = store
        .append(by_alice("u-2", EventKind::Unlabeled { label: "VIP".into() }))
        .await;
    assert!(matches!(absent, Err(StoreError::Transition(_))), "{absent:?}");
    let removed = ok(
        store
            .append(by_alice("a-4", set(AttributeObject::Conversation, "due", None)))
            .await,
        "remove",
    );
    assert_eq!(removed.conversation.state, ConversationState::Closed);
    let expected_labels: std::collections::BTreeSet<String> = ["Billing issue".to_owned()].into();
    let expected_attributes = BTreeMap::from([("order".to_owned(), order)]);
    for (what, record) in [
        ("append", Some(removed.conversation.clone())),
        ("conversation", ok(store.conversation(c).await, "conversation")),
        (
            "conversations_of_visitor",
            ok(
                store.conversations_of_visitor(&tenant(), &id("v1")).await,
                "listing",
            )
            .first()
            .cloned(),
        ),
    ] {
        let record = record.unwrap_or_else(|| panic!("{what}: no record"));
        assert_eq!(record.labels, expected_labels, "{what}");
        assert_eq!(record.attributes, expected_attributes, "{what}");
        assert_eq!(record.last_seq, Seq(10), "{what}");
    }
    let events = ok(store.events_after(c, Seq(2), 20).await, "events_after");
    assert_eq!(events.len(), 8);
    assert_eq!(events[0], vip.event);
    assert_eq!(
        events[3].data,
        set(AttributeObject::Conversation, "due", Some(due))
    );
    assert_eq!(
        events[4].data,
        set(
            AttributeObject::Visitor,
            "plan",
            Some(AttributeValue::String("pro".into()))
        )
    );
    assert_eq!(events[7].data, set(AttributeObject::Conversation, "due", None));
    let by_id = ok(
        store
            .event_by_client_id(c, &Actor::Agent(alice), &id("u-1"))
            .await,
        "event_by_client_id",
    );
    assert_eq!(
        by_id.map(|e| e.data),
        Some(EventKind::Unlabeled { label: "VIP".into() })
    );
}

/// `snoozed` parks an assigned conversation (`on_hold`, with its agent and wake time, or none) and `woken` queues
/// it again; the record reads back on hold from `conversation`, `open_conversations` and the agent's listing; a
/// visitor's message is taken on hold; a transfer is refused; a close ends it.
pub async fn on_hold_round_trips(store: Arc<dyn ConversationLog>) {
    use crate::model::WakeReason;
    let c = open(&*store, "v1", "open-1").await;
    let alice: AgentId = id("alice");
    ok(
        store
            .append(system(c, EventKind::Assigned { agent: alice.clone() }))
            .await,
        "assign",
    );
    let snooze = |client_id: &str, until: Option<Timestamp>| EventDraft {
        client_id: Some(id(client_id)),
        ..EventDraft::new(
            c,
            Actor::Agent(alice.clone()),
            EventKind::Snoozed { until },
            Timestamp(8_000),
        )
    };
    let parked = ok(
        store.append(snooze("s-1", Some(Timestamp(90_000)))).await,
        "snooze",
    );
    let on_hold = ConversationState::OnHold {
        agent: alice.clone(),
        until: Some(Timestamp(90_000)),
    };
    assert_eq!(parked.conversation.state, on_hold);
    let again = store.append(snooze("s-2", None)).await;
    assert!(matches!(again, Err(StoreError::Transition(_))), "{again:?}");
    let transfer = EventKind::Transferred {
        from: Some(alice.clone()),
        agent: None,
        group: id("sales"),
        note: None,
        handover: false,
    };
    let refused = store.append(system(c, transfer)).await;
    assert!(matches!(refused, Err(StoreError::Transition(_))), "{refused:?}");
    ok(
        store
            .append(text(visitor("v1"), c, Some("m-1"), "still there?"))
            .await,
        "message on hold",
    );
    let read = ok(store.conversation(c).await, "conversation");
    assert_eq!(read.map(|r| r.state), Some(on_hold.clone()));
    let open_ones = ok(store.open_conversations().await, "open");
    assert_eq!(
        open_ones.iter().find(|r| r.id == c).map(|r| r.state.clone()),
        Some(on_hold.clone())
    );
    let of_agent = ok(store.conversations_of_agent(&tenant(), &alice).await, "of agent");
    assert_eq!(
        of_agent.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![c],
        "the agent's own, parked"
    );
    let woken = ok(
        store
            .append(system(
                c,
                EventKind::Woken {
                    reason: WakeReason::Visitor,
                },
            ))
            .await,
        "wake",
    );
    assert_eq!(woken.conversation.state, ConversationState::Queued);
    assert_eq!(woken.conversation.last_agent, Some(alice.clone()));
    ok(
        store
            .append(system(c, EventKind::Assigned { agent: alice.clone() }))
            .await,
        "back",
    );
    ok(store.append(snooze("s-3", None)).await, "snooze without a time");
    let read = ok(store.conversation(c).await, "conversation");
    assert_eq!(
        read.map(|r| r.state),
        Some(ConversationState::OnHold {
            agent: alice.clone(),
            until: None
        })
    );
    let closed = ok(store.append(system(c, EventKind::Closed)).await, "close on hold");
    assert_eq!(closed.conversation.state, ConversationState::Closed);
    assert!(ok(store.conversations_of_agent(&tenant(), &alice).await, "of agent").is_empty());
    let events = ok(store.events_after(c, Seq(2), 20).await, "events");
    assert_eq!(
        events[0].data,
        EventKind::Snoozed {
            until: Some(Timestamp(90_000))
        }
    );
    assert_eq!(
        events[2].data,
        EventKind::Woken {
            reason: WakeReason::Visitor
        }
    );
}

/// A conversation's visitor-context summary is stored, read back and replaced; an unknown conversation has none
/// and cannot get one.
pub async fn conversation_context_round_trips(store: Arc<dyn ConversationLog>) {
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

/// The `Created` event records the entry point the conversation was opened through and the visitor's pre-chat
/// answers, also when the same open is repeated; without them it has none.
pub async fn created_events_record_their_entry_point(store: Arc<dyn ConversationLog>) {
    let fields: BTreeMap<String, String> = [("name", "Ada Lovelace"), ("order", "A-1042 \u{1F4E6}")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id("v-entry"),
        group: id("billing"),
        client_id: id("open-entry"),
        entry: Some(id("pricing")),
        fields: fields.clone(),
        at: Timestamp(500),
    };
    let created = ok(store.create_conversation(new.clone()).await, "create");
    let expected = EventKind::Created {
        group: id("billing"),
        entry: Some(id("pricing")),
        fields,
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
            entry: None,
            fields: BTreeMap::new(),
        }
    );
}

fn positions(entries: &[FeedEntry]) -> Vec<u64> {
    entries.iter().map(|entry| entry.position.0).collect()
}

async fn whole_feed(store: &dyn ConversationLog) -> Vec<FeedEntry> {
    ok(store.feed_after(FeedPosition::ZERO, 100_000).await, "feed_after")
}

/// Asserts that feed positions strictly increase.
fn assert_increasing(entries: &[FeedEntry]) {
    for pair in entries.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "feed positions must strictly increase: {:?} then {:?}",
            pair[0].position,
            pair[1].position
        );
    }
}

/// The feed holds every committed event exactly once — `Created` events, messages and system events — in
/// commit order, with strictly increasing positions and each event's tenant; an empty store's feed is empty.
pub async fn feed_covers_every_committed_event_once(store: Arc<dyn ConversationLog>) {
    assert!(whole_feed(&*store).await.is_empty());
    assert_eq!(ok(store.feed_head().await, "feed_head"), FeedPosition::ZERO);
    let first = open(&*store, "v1", "open-1").await;
    let mut committed = vec![ok(store.events_after(first, Seq::ZERO, 1).await, "events_after")[0].clone()];
    let message = ok(
        store.append(text(visitor("v1"), first, Some("m1"), "hi")).await,
        "append",
    );
    committed.push(message.event);
    let other_tenant = NewConversation {
        id: ConversationId::generate(),
        tenant: id("tenant-2"),
        visitor: id("v9"),
        group: id("support"),
        client_id: id("open-9"),
        entry: None,
        fields: BTreeMap::new(),
        at: Timestamp(600),
    };
    let second = ok(store.create_conversation(other_tenant).await, "create");
    committed.push(second.event.clone());
    let assigned = ok(
        store
            .append(system(first, EventKind::Assigned { agent: id("a1") }))
            .await,
        "assign",
    );
    committed.push(assigned.event);
    let reply = ok(
        store
            .append(text(Actor::Agent(id("a1")), first, Some("r1"), "hello"))
            .await,
        "reply",
    );
    committed.push(reply.event);
    let closed = ok(
        store
            .append(system(second.conversation.id, EventKind::Closed))
            .await,
        "close",
    );
    committed.push(closed.event);

    let feed = whole_feed(&*store).await;
    assert_increasing(&feed);
    assert!(feed[0].position > FeedPosition::ZERO);
    let events: Vec<_> = feed.iter().map(|entry| entry.event.clone()).collect();
    assert_eq!(events, committed, "every committed event once, in commit order");
    let tenants: Vec<TenantId> = feed.iter().map(|entry| entry.tenant.clone()).collect();
    let (t1, t2): (TenantId, TenantId) = (tenant(), id("tenant-2"));
    assert_eq!(
        tenants,
        vec![t1.clone(), t1.clone(), t2.clone(), t1.clone(), t1, t2]
    );
}

/// Duplicates (of an open or an append), refused appends and appends to unknown conversations add nothing to
/// the feed.
pub async fn feed_ignores_duplicates_and_refusals(store: Arc<dyn ConversationLog>) {
    let c = open(&*store, "v1", "open-1").await;
    ok(
        store.append(text(visitor("v1"), c, Some("m1"), "hi")).await,
        "append",
    );
    ok(store.append(system(c, EventKind::Closed)).await, "close");
    let head = ok(store.feed_head().await, "feed_head");
    let before = whole_feed(&*store).await;
    assert_eq!(before.len(), 3);

    let again = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id("v1"),
        group: id("sales"),
        client_id: id("open-1"),
        entry: None,
        fields: BTreeMap::new(),
        at: Timestamp(900),
    };
    assert!(!ok(store.create_conversation(again).await, "create again").created);
    let duplicate = ok(
        store.append(text(visitor("v1"), c, Some("m1"), "hi")).await,
        "append",
    );
    assert!(duplicate.duplicate);
    let refused = store.append(text(visitor("v1"), c, Some("late"), "late")).await;
    assert!(matches!(refused, Err(StoreError::Transition(_))), "{refused:?}");
    let twice = store.append(system(c, EventKind::Closed)).await;
    assert!(twice.is_err(), "{twice:?}");
    let missing = store
        .append(text(visitor("v1"), ConversationId::generate(), None, "nobody"))
        .await;
    assert!(missing.is_err(), "{missing:?}");

    assert_eq!(ok(store.feed_head().await, "feed_head"), head);
    assert_eq!(whole_feed(&*store).await, before);
    assert!(ok(store.feed_after(head, 10).await, "feed_after").is_empty());
}

/// A consumer that stored a position gets exactly the rest of the feed after it, also in small pages and after
/// more events were committed; reading past the head gives nothing.
pub async fn feed_resumes_after_a_stored_position(store: Arc<dyn ConversationLog>) {
    let c = open(&*store, "v1", "open-1").await;
    for n in 0..6 {
        ok(
            store.append(text(visitor("v1"), c, None, &format!("m{n}"))).await,
            "append",
        );
    }
    let all = whole_feed(&*store).await;
    assert_eq!(all.len(), 7);
    for (index, entry) in all.iter().enumerate() {
        let rest = ok(store.feed_after(entry.position, 100).await, "feed_after");
        assert_eq!(rest, all[index + 1..].to_vec(), "after {:?}", entry.position);
    }
    // Page through it the way a consumer would, storing the last position it handled.
    let mut stored = FeedPosition::ZERO;
    let mut seen = Vec::new();
    loop {
        let page = ok(store.feed_after(stored, 3).await, "feed_after");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        stored = last.position;
        seen.extend(page);
    }
    assert_eq!(seen, all);
    // More events arrive; resuming from the stored position gets exactly them.
    let other = open(&*store, "v2", "open-1").await;
    let later = ok(
        store.append(text(visitor("v2"), other, None, "later")).await,
        "append",
    );
    let rest = ok(store.feed_after(stored, 100).await, "feed_after");
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].event.conversation, other);
    assert_eq!(rest[0].event.seq, Seq(1));
    assert_eq!(rest[1].event, later.event);
    assert!(rest[0].position > stored);
    assert_increasing(&rest);
    let head = ok(store.feed_head().await, "feed_head");
    assert!(ok(store.feed_after(head, 10).await, "feed_after").is_empty());
    assert!(ok(store.feed_after(FeedPosition(u64::MAX), 10).await, "feed_after").is_empty());
    assert!(ok(store.feed_after(FeedPosition::ZERO, 0).await, "feed_after").is_empty());
}

/// Concurrent appends from several tasks to several conversations (with retries) all appear in the feed exactly
/// once, in an order consistent with each conversation's seqs.
pub async fn feed_orders_concurrent_appends(store: Arc<dyn ConversationLog>) {
    let mut conversations = Vec::new();
    for n in 0..4 {
        conversations.push(open(&*store, &format!("v{n}"), "open").await);
    }
    let mut tasks = Vec::new();
    for task in 0..8usize {
        let store = Arc::clone(&store);
        let conversations = conversations.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..20usize {
                let c = conversations[(task + n) % conversations.len()];
                let key = format!("k-{task}-{n}");
                let author = Actor::Agent(id("a1"));
                for _ in 0..2 {
                    if let Err(error) = store.append(text(author.clone(), c, Some(&key), "x")).await {
                        panic!("append failed: {error}");
                    }
                }
            }
        }));
    }
    for task in tasks {
        if let Err(error) = task.await {
            panic!("append task failed: {error}");
        }
    }
    let feed = whole_feed(&*store).await;
    assert_eq!(feed.len(), 4 + 8 * 20);
    assert_increasing(&feed);
    let unique: HashSet<(ConversationId, u64)> = feed
        .iter()
        .map(|entry| (entry.event.conversation, entry.event.seq.0))
        .collect();
    assert_eq!(unique.len(), feed.len(), "no event twice");
    for c in &conversations {
        let seqs: Vec<u64> = feed
            .iter()
            .filter(|entry| entry.event.conversation == *c)
            .map(|entry| entry.event.seq.0)
            .collect();
        let log = ok(store.events_after(*c, Seq::ZERO, 1_000).await, "events_after");
        assert_eq!(
            seqs,
            (1..=log.len() as u64).collect::<Vec<_>>(),
            "seq order in the feed"
        );
    }
    assert_eq!(
        ok(store.feed_head().await, "feed_head"),
        feed[feed.len() - 1].position
    );
}

/// `feed_head` is zero for an empty store and then always the position of the last committed event.
pub async fn feed_head_is_the_last_position(store: Arc<dyn ConversationLog>) {
    assert_eq!(ok(store.feed_head().await, "feed_head"), FeedPosition::ZERO);
    let c = open(&*store, "v1", "open-1").await;
    for n in 0..3 {
        let feed = whole_feed(&*store).await;
        let last = feed.last().map(|entry| entry.position);
        assert_eq!(Some(ok(store.feed_head().await, "feed_head")), last);
        ok(
            store
                .append(text(visitor("v1"), c, Some(&format!("m{n}")), "x"))
                .await,
            "append",
        );
    }
    let feed = whole_feed(&*store).await;
    assert_eq!(feed.len(), 4);
    assert_eq!(ok(store.feed_head().await, "feed_head"), feed[3].position);
    assert_eq!(positions(&feed).len(), 4);
}

/// `event_by_client_id` finds an author's event by its client id (the `Created` event under the open's id),
/// also after the conversation closed; other authors, other ids and unknown conversations find nothing.
pub async fn event_by_client_id_finds_the_original(store: Arc<dyn ConversationLog>) {
    let c = open(&*store, "v1", "open-1").await;
    let sent = ok(
        store.append(text(visitor("v1"), c, Some("m1"), "hi")).await,
        "append",
    );
    let agent = Actor::Agent(id("a1"));
    let reply = ok(
        store.append(text(agent.clone(), c, Some("m1"), "hello")).await,
        "reply",
    );
    ok(store.append(system(c, EventKind::Closed)).await, "close");
    let find = |author: Actor, key: &str| {
        let store = Arc::clone(&store);
        let key: ClientId = id(key);
        async move {
            ok(
                store.event_by_client_id(c, &author, &key).await,
                "event_by_client_id",
            )
        }
    };
    assert_eq!(find(visitor("v1"), "m1").await, Some(sent.event));
    assert_eq!(find(agent, "m1").await, Some(reply.event));
    let created = find(visitor("v1"), "open-1").await;
    assert_eq!(created.map(|event| event.seq), Some(Seq(1)));
    assert_eq!(find(visitor("v1"), "m2").await, None);
    assert_eq!(find(visitor("v2"), "m1").await, None);
    assert_eq!(find(Actor::System, "m1").await, None);
    let missing = ok(
        store
            .event_by_client_id(ConversationId::generate(), &visitor("v1"), &id("m1"))
            .await,
        "event_by_client_id",
    );
    assert_eq!(missing, None);
}

/// `append_batch` appends in order, each draft as `append` would: later drafts see earlier ones (seqs, the
/// state, duplicates within the batch), a refused draft stores nothing and does not stop the others, and the
/// feed gets each stored event once, in order.
pub async fn append_batch_appends_in_order(store: Arc<dyn ConversationLog>) {
    let c = open(&*store, "v1", "open-1").await;
    let other = open(&*store, "v2", "open-1").await;
    let head = ok(store.feed_head().await, "feed_head");
    assert!(store.append_batch(Vec::new()).await.is_empty());
    let results = store
        .append_batch(vec![
            text(visitor("v1"), c, Some("b1"), "one"),
            system(c, EventKind::Assigned { agent: id("a1") }),
            text(visitor("v2"), other, None, "elsewhere"),
            system(c, EventKind::Assigned { agent: id("a2") }),
            text(visitor("v1"), c, Some("b1"), "one again"),
            text(visitor("v1"), ConversationId::generate(), None, "nobody"),
            system(c, EventKind::Closed),
            text(visitor("v1"), c, Some("b2"), "too late"),
        ])
        .await;
    assert_eq!(results.len(), 8);
    let appended = |index: usize| match &results[index] {
        Ok(appended) => appended.clone(),
        Err(error) => panic!("draft {index} failed: {error}"),
    };
    assert_eq!((appended(0).event.seq, appended(0).duplicate), (Seq(2), false));
    assert_eq!(appended(1).event.seq, Seq(3));
    assert_eq!(
        appended(1).conversation.state,
        ConversationState::Assigned { agent: id("a1") }
    );
    assert_eq!(appended(2).event.seq, Seq(2));
    assert!(
        matches!(results[3], Err(StoreError::Transition(_))),
        "{:?}",
        results[3]
    );
    assert!(appended(4).duplicate);
    assert_eq!(appended(4).event, appended(0).event);
    assert!(
        matches!(results[5], Err(StoreError::ConversationNotFound(_))),
        "{:?}",
        results[5]
    );
    assert_eq!(appended(6).event.seq, Seq(4));
    assert_eq!(appended(6).conversation.state, ConversationState::Closed);
    assert!(
        matches!(results[7], Err(StoreError::Transition(_))),
        "{:?}",
        results[7]
    );

    let log = ok(store.events_after(c, Seq::ZERO, 100).await, "events_after");
    assert_eq!(log.len(), 4);
    assert_eq!(log[1], appended(0).event);
    let stored = ok(store.conversation(c).await, "conversation");
    assert_eq!(stored, Some(appended(6).conversation));
    let feed = ok(store.feed_after(head, 100).await, "feed_after");
    let events: Vec<_> = feed.into_iter().map(|entry| entry.event).collect();
    assert_eq!(
        events,
        vec![
            appended(0).event,
            appended(1).event,
            appended(2).event,
            appended(6).event
        ]
    );
}

/// The extension methods: `all_events_after` reads a long log to its end, `feed_stream` reads the feed in
/// pages until caught up and ends.
pub async fn extension_methods_read_to_the_end(store: Arc<dyn ConversationLog>) {
    let c = open(&*store, "v1", "open-1").await;
    let count = EVENTS_PAGE + 20;
    let drafts = (0..count)
        .map(|n| text(visitor("v1"), c, None, &format!("m{n}")))
        .collect();
    for result in store.append_batch(drafts).await {
        ok(result, "append");
    }
    let all = ok(store.all_events_after(c, Seq::ZERO).await, "all_events_after");
    assert_eq!(all.len(), count + 1);
    assert!(all.iter().zip(1u64..).all(|(event, seq)| event.seq == Seq(seq)));
    let rest = ok(store.all_events_after(c, Seq(10)).await, "all_events_after");
    assert_eq!(rest.first().map(|event| event.seq), Some(Seq(11)));
    assert_eq!(rest.len(), count + 1 - 10);

    let feed = whole_feed(&*store).await;
    for page in [1, 7, 1_000] {
        let streamed: Vec<FeedEntry> = store
            .feed_stream(FeedPosition::ZERO, page)
            .map(|entry| ok(entry, "feed_stream"))
            .collect()
            .await;
        assert_eq!(streamed, feed, "page of {page}");
    }
    let resumed: Vec<FeedEntry> = store
        .feed_stream(feed[99].position, 25)
        .map(|entry| ok(entry, "feed_stream"))
        .collect()
        .await;
    assert_eq!(resumed, feed[100..].to_vec());
    let caught_up = ok(store.feed_head().await, "feed_head");
    assert_eq!(store.feed_stream(caught_up, 10).count().await, 0);
}

/// Stamps the [`ConversationLog`] conformance suite into the calling crate as `#[test]` functions.
///
/// The argument is an expression evaluating to a future that yields a fresh, empty backend as an `Arc` of a
/// type that coerces to `Arc<dyn ConversationLog>` (an `Arc<MyStore>`, an `Arc<dyn Store>`…). It is evaluated
/// once per test, inside a Tokio runtime.
#[macro_export]
macro_rules! conversation_log_conformance_tests {
    ($make:expr) => {
        $crate::conversation_log_conformance_tests!(@tests $make;
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
            epoch_is_stable,
            transfers_move_owner_and_group,
            offline_state_round_trips,
            ratings_round_trip_once,
            notes_round_trip,
            labels_and_attributes_round_trip,
            on_hold_round_trips,
            conversation_context_round_trips,
            seen_marks_only_move_forward,
            created_events_record_their_entry_point,
            feed_covers_every_committed_event_once,
            feed_ignores_duplicates_and_refusals,
            feed_resumes_after_a_stored_position,
            feed_orders_concurrent_appends,
            feed_head_is_the_last_position,
            event_by_client_id_finds_the_original,
            append_batch_appends_in_order,
            extension_methods_read_to_the_end,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let backend: ::std::sync::Arc<dyn $crate::store::ConversationLog> = $make.await;
                    $crate::testkit::log::$name(backend).await;
                });
            }
        )*
    };
}
