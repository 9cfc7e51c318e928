//! Seen marks (engine/seen.rs): `read` receipts are kept, coalesced, written to the store, and handed to a
//! client in `inbox` and `subscribed` — before the flush (from memory), after it, and by a new engine on the same
//! store (a restart).

use super::*;
use crate::model::SeenMark;

/// Connects and returns the client with its `inbox` frame.
async fn connect_with_inbox(engine: &Engine, identity: Identity) -> (Client, Vec<SeenMark>) {
    let (session, mut outbox) = engine.connect(identity).await.expect("connect");
    let mut frames = Vec::new();
    while frames.len() < 2 {
        if let Outgoing::Frame(bytes) = outbox.next().await {
            frames.push(serde_json::from_slice::<ServerFrame>(&bytes).expect("frame"));
        }
    }
    let ServerFrame::Inbox { seen, .. } = frames.remove(1) else {
        panic!("no inbox: {frames:?}");
    };
    let client = Client {
        session,
        outbox,
        held: Default::default(),
    };
    (client, seen)
}

/// The `seen` of a `subscribed` reply.
async fn subscribed_seen(client: &mut Client, conversation: ConversationId) -> Vec<SeenMark> {
    let frame = client
        .request(serde_json::json!({"type": "subscribe", "conversation": conversation, "after": 0}))
        .await;
    match frame {
        ServerFrame::Subscribed { seen, .. } => sorted(seen),
        other => panic!("expected subscribed, got {other:?}"),
    }
}

fn sorted(mut marks: Vec<SeenMark>) -> Vec<SeenMark> {
    marks.sort_by(|a, b| a.from.role().cmp(b.from.role()));
    marks
}

#[tokio::test]
async fn seen_marks_reach_a_new_connection_and_survive_a_restart() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine_with(store.clone(), Limits::default()).await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;
    v1.send(conversation, "m1", "hello").await;
    alice.send(conversation, "m2", "hi, how can I help?").await;
    let read = |seq: u64| serde_json::json!({"type": "read", "conversation": conversation, "seq": seq});
    v1.session.receive(&read(4).to_string()).await;
    v1.session.receive(&read(2).to_string()).await; // lower: ignored, marks never move back
    alice.session.receive(&read(3).to_string()).await;
    let expected = sorted(vec![
        SeenMark::new(conversation, Actor::Agent("alice".parse().expect("id")), Seq(3)),
        SeenMark::new(conversation, Actor::Visitor("v1".parse().expect("id")), Seq(4)),
    ]);

    // A reload right away (before the flush): the marks come from memory.
    let (mut reloaded, inbox_seen) = connect_with_inbox(&engine, visitor("v1")).await;
    assert_eq!(sorted(inbox_seen), expected);
    assert_eq!(subscribed_seen(&mut reloaded, conversation).await, expected);
    let (mut agent_tab, inbox_seen) = connect_with_inbox(&engine, agent_identity("alice")).await;
    assert_eq!(sorted(inbox_seen), expected);
    assert_eq!(subscribed_seen(&mut agent_tab, conversation).await, expected);

    // The shutdown flushes them to the store, in one write; a new engine on the store hands them out.
    drop((alice, v1, reloaded, agent_tab));
    engine.shutdown().await;
    assert_eq!(sorted(store.seen(&[conversation]).await.expect("seen")), expected);
    let restarted = engine_with(store, Limits::default()).await;
    let (mut visitor_again, inbox_seen) = connect_with_inbox(&restarted, visitor("v1")).await;
    assert_eq!(sorted(inbox_seen), expected);
    assert_eq!(subscribed_seen(&mut visitor_again, conversation).await, expected);
}

#[tokio::test(start_paused = true)]
async fn receipts_are_written_together_after_the_flush_delay() {
    let store = Arc::new(crate::testkit::counting::CountingStore::new());
    let engine = engine_from(builder(store.clone())).await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;
    for n in 0..5 {
        v1.send(conversation, &format!("m{n}"), "hello").await;
    }
    for seq in 3..=7 {
        let read = serde_json::json!({"type": "read", "conversation": conversation, "seq": seq});
        v1.session.receive(&read.to_string()).await;
        alice.session.receive(&read.to_string()).await;
    }
    assert_eq!(
        store.calls_of("record_seen"),
        0,
        "nothing written before the delay"
    );
    tokio::time::sleep(crate::engine::SEEN_FLUSH_DELAY * 2).await;
    assert_eq!(store.calls_of("record_seen"), 1, "ten receipts, one write");
    let marks = store.seen(&[conversation]).await.expect("seen");
    assert!(marks.iter().all(|m| m.seq == Seq(7)), "{marks:?}");
}
