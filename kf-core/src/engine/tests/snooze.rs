//! On hold (engine/snooze.rs): parking frees the agent's capacity; the conversation wakes at its time or at the
//! visitor's next message, back to its agent when that agent can take it, else queued.

use super::*;
use crate::model::{Timestamp, WakeReason};

fn snooze(conversation: ConversationId, client_id: &str, until: Option<u64>) -> serde_json::Value {
    match until {
        Some(until) => {
            serde_json::json!({"type": "snooze", "conversation": conversation, "client_id": client_id,
            "until": until})
        }
        None => serde_json::json!({"type": "snooze", "conversation": conversation, "client_id": client_id}),
    }
}

/// The next event on the client's stream whose kind is `kind` (other events and notices are skipped).
async fn next_of(client: &mut Client, kind: &str) -> Event {
    loop {
        if let ServerFrame::Event(event) = client.next_reply().await
            && event.data.name() == kind
        {
            return event;
        }
    }
}

/// The reply to a request: `conversation` notices it caused are skipped, events kept for `next_of`.
async fn answer(client: &mut Client, json: serde_json::Value) -> ServerFrame {
    let mut frame = client.request(json).await;
    let mut events = Vec::new();
    loop {
        match frame {
            ServerFrame::Conversation { .. } => {}
            ServerFrame::Event(event) => events.push(ServerFrame::Event(event)),
            reply => {
                client.held.extend(events);
                return reply;
            }
        }
        frame = client.next_reply().await;
    }
}

#[tokio::test]
async fn a_parked_conversation_frees_capacity_and_wakes_at_its_time_back_to_its_agent_when_it_can() {
    let engine = engine().await;
    engine.put_agent(agent("alice", 1)).await.expect("agent");
    let mut alice = Client::connect(&engine, agent_identity("alice")).await;
    let mut v1 = Client::connect(&engine, visitor("v1")).await;
    let c1 = v1.open("o1").await.id;
    assert!(matches!(alice.next().await, ServerFrame::Conversation { .. }));
    alice.subscribe(c1, 2).await;

    let past = v1.request(snooze(c1, "s-0", Some(1))).await;
    assert_eq!(
        error_code(&past),
        Some(ErrorCode::Forbidden),
        "a visitor: {past:?}"
    );
    let in_the_past = alice.request(snooze(c1, "s-0", Some(1))).await;
    assert_eq!(error_code(&in_the_past), Some(ErrorCode::InvalidFrame));
    let until = Timestamp::now().0 + 400;
    let parked = alice.request(snooze(c1, "s-1", Some(until))).await;
    assert!(
        matches!(
            parked,
            ServerFrame::Ack {
                seq: Seq(3),
                duplicate: false,
                ..
            }
        ),
        "{parked:?}"
    );
    let repeat = alice.request(snooze(c1, "s-1", Some(until))).await;
    assert!(
        matches!(
            repeat,
            ServerFrame::Ack {
                seq: Seq(3),
                duplicate: true,
                ..
            }
        ),
        "{repeat:?}"
    );
    let record = engine
        .inner
        .log
        .conversation(c1)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        record.state,
        ConversationState::OnHold {
            agent: "alice".parse().expect("id"),
            until: Some(Timestamp(until))
        }
    );
    let write = alice.send(c1, "m-1", "still there?").await;
    assert_eq!(
        error_code(&write),
        Some(ErrorCode::Forbidden),
        "parked: {write:?}"
    );
    // Alice's one seat is free: the next visitor gets her.
    let mut v2 = Client::connect(&engine, visitor("v2")).await;
    let c2 = v2.open("o2").await.id;
    let assigned = loop {
        if let ServerFrame::Conversation { conversation } = alice.next_reply().await
            && conversation.id == c2
        {
            break conversation;
        }
    };
    assert_eq!(assigned.state.agent().map(AgentId::as_str), Some("alice"));
    // Its time comes while alice is full: it wakes into the queue, and comes back to her when she has room.
    let woken = next_of(&mut alice, "woken").await;
    assert_eq!(
        woken.data,
        EventKind::Woken {
            reason: WakeReason::Timer
        }
    );
    assert_eq!(
        engine
            .inner
            .routing
            .ledger
            .open_conversation(&c1)
            .map(|c| c.state),
        Some(ConversationState::Queued)
    );
    let closed = answer(
        &mut alice,
        serde_json::json!({"type": "close", "conversation": c2}),
    )
    .await;
    assert!(matches!(closed, ServerFrame::Closed { .. }), "{closed:?}");
    let back = next_of(&mut alice, "assigned").await;
    assert_eq!(
        back.data,
        EventKind::Assigned {
            agent: "alice".parse().expect("id")
        }
    );
}

#[tokio::test]
async fn the_visitors_next_message_wakes_it_and_the_agent_may_take_it_back_early() {
    let engine = engine().await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;
    let parked = alice.request(snooze(conversation, "s-1", None)).await;
    assert!(
        matches!(parked, ServerFrame::Ack { seq: Seq(3), .. }),
        "{parked:?}"
    );
    assert_eq!(v1.event().await.data, EventKind::Snoozed { until: None });
    let ack = v1
        .send(conversation, "m-1", "I found my order number: 1042")
        .await;
    assert!(matches!(ack, ServerFrame::Ack { seq: Seq(4), .. }), "{ack:?}");
    assert_eq!(
        next_of(&mut alice, "woken").await.data,
        EventKind::Woken {
            reason: WakeReason::Visitor
        }
    );
    let back = next_of(&mut alice, "assigned").await;
    assert_eq!(
        back.data,
        EventKind::Assigned {
            agent: "alice".parse().expect("id")
        }
    );
    // Parked again, then taken back by its agent before any message.
    let parked = answer(
        &mut alice,
        snooze(conversation, "s-2", Some(Timestamp::now().0 + 3_600_000)),
    )
    .await;
    assert!(matches!(parked, ServerFrame::Ack { .. }), "{parked:?}");
    let wake = serde_json::json!({"type": "wake", "conversation": conversation, "client_id": "w-1"});
    let by_visitor = v1.request(wake.clone()).await;
    assert_eq!(error_code(&by_visitor), Some(ErrorCode::Forbidden));
    let woken = answer(&mut alice, wake.clone()).await;
    assert!(
        matches!(woken, ServerFrame::Ack { duplicate: false, .. }),
        "{woken:?}"
    );
    assert_eq!(
        next_of(&mut alice, "woken").await.data,
        EventKind::Woken {
            reason: WakeReason::Agent
        }
    );
    next_of(&mut alice, "assigned").await;
    let again = answer(
        &mut alice,
        serde_json::json!({"type": "wake", "conversation": conversation, "client_id": "w-2"}),
    )
    .await;
    assert_eq!(
        error_code(&again),
        Some(ErrorCode::InvalidState),
        "not on hold: {again:?}"
    );
    let record = engine
        .inner
        .log
        .conversation(conversation)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(record.state.agent().map(AgentId::as_str), Some("alice"));
}
