//! Working hours and offline messages (with a manual clock), visitor context and quick replies.

use super::*;
use crate::clock::ManualClock;
use crate::hours::WorkingHours;
use crate::model::Timestamp;
use crate::quick_replies::QuickReplyScope;

/// Monday 2026-11-23, 20:00 UTC: after hours for a Mon–Fri 09:00–17:00 UTC schedule.
const MONDAY_EVENING: u64 = 1_795_464_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn office_hours() -> WorkingHours {
    let mut hours = WorkingHours::new("UTC").expect("zone");
    for day in ["mon", "tue", "wed", "thu", "fri"] {
        hours = hours.with_day(day, &["09:00-17:00"]).expect("day");
    }
    hours
}

/// An engine on `store` whose clock stands on Monday evening, with office hours for "support" and alice.
async fn after_hours(store: Arc<dyn Store>) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(MONDAY_EVENING)));
    let engine = engine_from(builder(store).clock(clock.clone())).await;
    engine
        .put_group_hours(&tenant(), &group(), Some(office_hours()))
        .await
        .expect("hours");
    engine.put_agent(agent("alice", 2)).await.expect("agent");
    (engine, clock)
}

fn offline_list(frame: &ServerFrame) -> Vec<ConversationId> {
    match frame {
        ServerFrame::OfflineMessages { conversations } => conversations.iter().map(|c| c.id).collect(),
        other => panic!("expected offline_messages, got {other:?}"),
    }
}

#[tokio::test]
async fn outside_working_hours_a_visitor_leaves_an_offline_message_that_an_agent_takes() {
    let (engine, clock) = after_hours(Arc::new(MemoryStore::new())).await;
    assert!(!engine.is_group_open(&tenant(), &group()));
    let mut alice = Client::connect(&engine, agent_identity("alice")).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;

    let left = v1.open("o1").await;
    assert_eq!(
        left.state,
        ConversationState::Offline,
        "the visitor gets the offline form"
    );
    assert_eq!(left.last_seq, Seq(2));
    assert_eq!(
        engine.agent_load(&tenant(), &"alice".parse().expect("id")),
        0,
        "not routed"
    );
    assert!(engine.queue(&tenant(), &group()).is_empty());
    assert_eq!(
        offline_list(&alice.next().await),
        vec![left.id],
        "online agents are told"
    );
    // The visitor leaves a message; opening again returns the same offline message.
    v1.subscribe(left.id, 0).await;
    assert_eq!(v1.event().await.data.name(), "created");
    assert_eq!(v1.event().await.data, EventKind::Offline);
    let frames = [
        v1.send(left.id, "m1", "Please call me back").await,
        v1.next_reply().await,
    ];
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Ack { seq: Seq(3), .. })),
        "{frames:?}"
    );
    let again = v1.open("o2").await;
    assert_eq!(
        (again.id, again.state.clone()),
        (left.id, ConversationState::Offline)
    );

    // An agent connecting later finds it after its inbox.
    engine.put_agent(agent("bob", 2)).await.expect("agent");
    let mut bob = Client::connect(&engine, agent_identity("bob")).await;
    assert_eq!(offline_list(&bob.next().await), vec![left.id]);
    assert_eq!(engine.offline_messages(&tenant(), &group()), vec![left.id]);

    let taken = bob
        .request(serde_json::json!({"type": "take", "id": "t1", "conversation": left.id}))
        .await;
    let taken = match taken {
        ServerFrame::Conversation { .. } => bob.next_reply().await,
        other => other,
    };
    match &taken {
        ServerFrame::Taken { id, conversation } => {
            assert_eq!(id.as_deref(), Some("t1"));
            assert_eq!(conversation.state.agent().map(AgentId::as_str), Some("bob"));
        }
        other => panic!("expected taken, got {other:?}"),
    }
    assert_eq!(engine.agent_load(&tenant(), &"bob".parse().expect("id")), 1);
    assert!(engine.offline_messages(&tenant(), &group()).is_empty());
    let assigned = loop {
        let event = v1.event().await;
        if event.data.name() == "assigned" {
            break event;
        }
    };
    assert_eq!(assigned.author, Actor::Agent("bob".parse().expect("id")));
    // Taking it again is refused.
    let twice = alice
        .request(serde_json::json!({"type": "take", "conversation": left.id}))
        .await;
    assert_eq!(error_code(&twice), Some(ErrorCode::InvalidState));

    // Tuesday 09:00: open again, conversations are routed live.
    clock.advance(13 * HOUR);
    assert!(engine.is_group_open(&tenant(), &group()));
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let live = v2.open("o1").await;
    assert!(
        matches!(live.state, ConversationState::Assigned { .. }),
        "{live:?}"
    );
}

#[tokio::test]
async fn closing_hours_and_holidays_follow_the_clock() {
    let (engine, clock) = after_hours(Arc::new(MemoryStore::new())).await;
    clock.advance(13 * HOUR); // Tuesday 09:00
    assert!(engine.is_group_open(&tenant(), &group()));
    clock.advance(8 * HOUR); // 17:00
    assert!(!engine.is_group_open(&tenant(), &group()));
    let holiday = office_hours().with_holiday("2026-11-25", &[]).expect("holiday");
    engine
        .put_group_hours(&tenant(), &group(), Some(holiday))
        .await
        .expect("hours");
    clock.advance(16 * HOUR + HOUR); // Wednesday 10:00, a holiday
    assert!(!engine.is_group_open(&tenant(), &group()));
    engine
        .put_group_hours(&tenant(), &group(), None)
        .await
        .expect("no hours");
    assert!(engine.is_group_open(&tenant(), &group()), "no hours: always open");
    let unknown = engine
        .put_group_hours(&tenant(), &"nope".parse().expect("id"), None)
        .await;
    assert!(matches!(unknown, Err(RequestError::NotFound(_))));
}

#[tokio::test]
async fn offline_messages_survive_a_restart_and_are_not_routed() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (engine, _clock) = after_hours(store.clone()).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let left = v1.open("o1").await;
    drop(v1);
    drop(engine);
    // A new engine, in office hours, with alice online: the offline message waits to be taken.
    let clock = Arc::new(ManualClock::new(Timestamp(MONDAY_EVENING + 13 * 3_600_000)));
    let engine = builder(store).clock(clock).build().await.expect("engine");
    assert!(engine.is_group_open(&tenant(), &group()), "hours were loaded");
    assert_eq!(engine.offline_messages(&tenant(), &group()), vec![left.id]);
    let mut alice = Client::connect(&engine, agent_identity("alice")).await;
    assert_eq!(offline_list(&alice.next().await), vec![left.id]);
    assert_eq!(engine.agent_load(&tenant(), &"alice".parse().expect("id")), 0);
    // The visitor may close it.
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let closed = v1
        .request(serde_json::json!({"type": "close", "conversation": left.id}))
        .await;
    assert!(
        matches!(closed, ServerFrame::Closed { seq: Seq(3), .. }),
        "{closed:?}"
    );
    assert!(engine.offline_messages(&tenant(), &group()).is_empty());
}

#[tokio::test]
async fn only_agents_of_the_group_take_offline_messages() {
    let (engine, _clock) = after_hours(Arc::new(MemoryStore::new())).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let left = v1.open("o1").await;
    let by_visitor = v1
        .request(serde_json::json!({"type": "take", "conversation": left.id}))
        .await;
    assert_eq!(error_code(&by_visitor), Some(ErrorCode::Forbidden));
    let mut outsider = agent("carol", 2);
    outsider.groups = vec![];
    engine.put_agent(outsider).await.expect("agent");
    let mut carol = Client::connect(&engine, agent_identity("carol")).await;
    let refused = carol
        .request(serde_json::json!({"type": "take", "conversation": left.id}))
        .await;
    assert_eq!(error_code(&refused), Some(ErrorCode::Forbidden));
    let missing = carol
        .request(serde_json::json!({"type": "take", "conversation": ConversationId::generate()}))
        .await;
    assert_eq!(error_code(&missing), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn visitor_context_is_summarised_once_and_shown_to_agents_who_may_read() {
    let engine = engine().await;
    let (mut alice, mut v1, first) = assigned_chat(&engine).await;
    // The `closed` event and the reply come in either order (the event may still be replaying).
    v1.session
        .receive(&serde_json::json!({"type": "close", "conversation": first}).to_string())
        .await;
    loop {
        match v1.next_reply().await {
            ServerFrame::Event(_) => {}
            ServerFrame::Closed { .. } => break,
            other => panic!("expected the close's reply, got {other:?}"),
        }
    }
    let report = serde_json::json!({"type": "context", "id": "c", "referrer": "https://search.example/",
        "landing_page": "https://shop.example/?utm_source=news", "utm": {"source": "news"},
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"});
    v1.session.receive(&report.to_string()).await;
    v1.session
        .receive(r#"{"type":"page","id":"p1","url":"https://shop.example/shoes","title":"Shoes"}"#)
        .await;
    v1.session
        .receive(r#"{"type":"page","id":"p2","url":"not a url"}"#)
        .await;
    let mut replies = Vec::new();
    while replies.len() < 3 {
        match v1.next_reply().await {
            ServerFrame::Event(_) => {}
            frame => replies.push(frame),
        }
    }
    assert!(
        matches!(&replies[0], ServerFrame::Noted { id } if id.as_deref() == Some("c")),
        "{replies:?}"
    );
    assert!(matches!(&replies[1], ServerFrame::Noted { id } if id.as_deref() == Some("p1")));
    assert_eq!(error_code(&replies[2]), Some(ErrorCode::InvalidFrame));

    let second = v1.open("o2").await.id;
    let stored = engine
        .log()
        .conversation_context(second)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.device.browser.as_deref(), Some("Firefox"));
    assert_eq!(stored.page_count, 1);
    assert_eq!(
        engine.log().conversation_context(first).await.expect("read"),
        None
    );

    let view = engine
        .visitor_context(&agent_identity("alice"), second)
        .await
        .expect("view");
    assert_eq!(view.visitor.as_str(), "v1");
    assert_eq!(
        view.context.map(|c| c.source.utm.source),
        Some(Some("news".into()))
    );
    assert_eq!(view.trail.len(), 1);
    assert_eq!(
        view.past_conversations.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first]
    );
    let by_visitor = v1
        .request(serde_json::json!({"type": "visitor_context", "conversation": second}))
        .await;
    assert_eq!(error_code(&by_visitor), Some(ErrorCode::Forbidden));
    let by_agent_context = alice
        .request(serde_json::json!({"type": "context", "user_agent": "x"}))
        .await;
    let mut by_agent_context = by_agent_context;
    // What the visitor's moves announced to alice may come first.
    while matches!(
        by_agent_context,
        ServerFrame::Conversation { .. } | ServerFrame::Event(_)
    ) {
        by_agent_context = alice.next_reply().await;
    }
    assert_eq!(error_code(&by_agent_context), Some(ErrorCode::Forbidden));
}

#[tokio::test]
async fn agents_manage_their_own_quick_replies_and_see_their_groups() {
    let engine = engine().await;
    engine.put_agent(agent("alice", 2)).await.expect("agent");
    engine.put_agent(agent("bob", 2)).await.expect("agent");
    let group_reply = engine
        .put_quick_reply(
            &tenant(),
            QuickReplyScope::Group { group: group() },
            None,
            "hours".into(),
            "We are open 9 to 5.".into(),
        )
        .await
        .expect("group reply");
    let mut alice = Client::connect(&engine, agent_identity("alice")).await;
    let put = alice
        .request(
            serde_json::json!({"type": "put_quick_reply", "id": "q", "shortcut": "hi", "text": "Hello!"}),
        )
        .await;
    let mine = match put {
        ServerFrame::QuickReply { id, quick_reply } => {
            assert_eq!(id.as_deref(), Some("q"));
            quick_reply
        }
        other => panic!("expected quick_reply, got {other:?}"),
    };
    let clash = alice
        .request(serde_json::json!({"type": "put_quick_reply", "shortcut": "hi", "text": "Again"}))
        .await;
    assert_eq!(error_code(&clash), Some(ErrorCode::Conflict));
    let invalid = alice
        .request(serde_json::json!({"type": "put_quick_reply", "shortcut": "Hi There", "text": "x"}))
        .await;
    assert_eq!(error_code(&invalid), Some(ErrorCode::InvalidFrame));
    let list = alice.request(serde_json::json!({"type": "quick_replies"})).await;
    match list {
        ServerFrame::QuickReplies { quick_replies, .. } => {
            assert_eq!(quick_replies, vec![mine.clone(), group_reply.clone()]);
        }
        other => panic!("expected quick_replies, got {other:?}"),
    }
    // Bob may neither change nor delete alice's or the group's.
    let mut bob = Client::connect(&engine, agent_identity("bob")).await;
    for frame in [
        serde_json::json!({"type": "put_quick_reply", "reply_id": mine.id, "shortcut": "x", "text": "x"}),
        serde_json::json!({"type": "delete_quick_reply", "reply_id": mine.id}),
        serde_json::json!({"type": "delete_quick_reply", "reply_id": group_reply.id}),
    ] {
        assert_eq!(error_code(&bob.request(frame).await), Some(ErrorCode::Forbidden));
    }
    let missing = bob
        .request(serde_json::json!({"type": "delete_quick_reply", "reply_id": "nope"}))
        .await;
    assert_eq!(error_code(&missing), Some(ErrorCode::NotFound));
    let deleted = alice
        .request(serde_json::json!({"type": "delete_quick_reply", "reply_id": mine.id}))
        .await;
    assert!(
        matches!(deleted, ServerFrame::QuickReplyDeleted { .. }),
        "{deleted:?}"
    );
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let by_visitor = v1.request(serde_json::json!({"type": "quick_replies"})).await;
    assert_eq!(error_code(&by_visitor), Some(ErrorCode::Forbidden));
}
