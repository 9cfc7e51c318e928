//! Ratings after the close and private notes with mentions (engine/workspace.rs).

use super::*;

fn rate(conversation: ConversationId, client_id: &str, score: u8) -> serde_json::Value {
    serde_json::json!({"type": "rate", "conversation": conversation, "client_id": client_id, "score": score,
        "comment": "Quick and kind"})
}

fn note(conversation: ConversationId, client_id: &str, text: &str, mentions: &[&str]) -> serde_json::Value {
    serde_json::json!({"type": "note", "conversation": conversation, "client_id": client_id, "text": text,
        "mentions": mentions})
}

fn ack_seq(frame: &ServerFrame) -> Option<(Seq, bool)> {
    match frame {
        ServerFrame::Ack { seq, duplicate, .. } => Some((*seq, *duplicate)),
        _ => None,
    }
}

#[tokio::test]
async fn a_visitor_rates_its_closed_conversation_once_and_agents_see_it_live_and_on_replay() {
    let engine = engine().await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;
    let early = v1.request(rate(conversation, "r-1", 5)).await;
    assert_eq!(
        error_code(&early),
        Some(ErrorCode::InvalidState),
        "only once closed"
    );
    let by_agent = alice.request(rate(conversation, "r-1", 5)).await;
    assert_eq!(error_code(&by_agent), Some(ErrorCode::Forbidden));

    let closed = alice
        .request(serde_json::json!({"type": "close", "conversation": conversation}))
        .await;
    assert!(
        matches!(closed, ServerFrame::Closed { seq: Seq(3), .. }),
        "{closed:?}"
    );
    assert_eq!(alice.event().await.data, EventKind::Closed);
    assert_eq!(v1.event().await.data, EventKind::Closed);

    let out_of_range = v1.request(rate(conversation, "r-0", 6)).await;
    assert_eq!(error_code(&out_of_range), Some(ErrorCode::InvalidFrame));
    let mut stranger = Client::connect(&engine, visitor("v2")).await;
    let not_theirs = stranger.request(rate(conversation, "r-1", 5)).await;
    assert_eq!(error_code(&not_theirs), Some(ErrorCode::NotFound));

    let rated = v1.request(rate(conversation, "r-1", 4)).await;
    assert_eq!(ack_seq(&rated), Some((Seq(4), false)), "{rated:?}");
    let expected = EventKind::Rated {
        score: 4,
        comment: Some("Quick and kind".into()),
    };
    let live = alice.event().await;
    assert_eq!(
        (live.seq, &live.data),
        (Seq(4), &expected),
        "the agent sees it live"
    );
    assert_eq!(v1.event().await.data, expected);
    // The same client id is the same rating; another one is refused and stores nothing.
    let repeat = v1.request(rate(conversation, "r-1", 1)).await;
    assert_eq!(ack_seq(&repeat), Some((Seq(4), true)), "{repeat:?}");
    let second = v1.request(rate(conversation, "r-2", 1)).await;
    assert_eq!(error_code(&second), Some(ErrorCode::InvalidState), "{second:?}");
    let record = engine
        .inner
        .log
        .conversation(conversation)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!((record.rating, record.last_seq), (Some(4), Seq(4)));

    let mut console = Client::connect(&engine, agent_identity("alice")).await;
    console.subscribe(conversation, 3).await;
    let replayed = console.event().await;
    assert_eq!((replayed.seq, replayed.data), (Seq(4), expected), "and on replay");
}

#[tokio::test]
async fn notes_never_reach_the_visitor_and_mentioned_agents_are_notified() {
    let engine = engine().await;
    engine.put_agent(agent("bob", 2)).await.expect("agent");
    let mut bob = Client::connect(&engine, agent_identity("bob")).await;
    let (mut alice, mut v1, conversation) = assigned_chat(&engine).await;
    const SECRET: &str = "VIP: refund without asking, @bob knows them";

    let written = alice
        .request(note(conversation, "n-1", SECRET, &["bob", "bob"]))
        .await;
    assert_eq!(ack_seq(&written), Some((Seq(3), false)), "{written:?}");
    let seen = alice.event().await;
    assert_eq!(
        seen.data,
        EventKind::Note {
            text: SECRET.into(),
            mentions: vec!["bob".parse().expect("id")],
        }
    );
    // The visitor gets the seq and nothing else.
    let hidden = v1.event().await;
    assert_eq!(
        (hidden.seq, &hidden.data, &hidden.author, &hidden.client_id),
        (Seq(3), &EventKind::Hidden, &Actor::System, &None)
    );
    let mentioned = loop {
        match bob.next_reply().await {
            ServerFrame::Mentioned {
                conversation: record,
                seq,
                author,
                text,
            } => break (record.id, seq, author, text),
            _ => continue,
        }
    };
    assert_eq!(
        mentioned,
        (
            conversation,
            Seq(3),
            Actor::Agent("alice".parse().expect("id")),
            SECRET.to_string()
        )
    );
    let repeat = alice.request(note(conversation, "n-1", "again", &[])).await;
    assert_eq!(ack_seq(&repeat), Some((Seq(3), true)));

    // The visitor's log goes on gapless, live and on replay, without the note.
    v1.send(conversation, "m-1", "still there?").await;
    let mut replay = Client::connect(&engine, visitor("v1")).await;
    replay.subscribe(conversation, 0).await;
    let mut seqs = Vec::new();
    for _ in 0..4 {
        let event = replay.event().await;
        let json = serde_json::to_string(&event).expect("json");
        assert!(!json.contains("VIP") && !json.contains("note"), "{json}");
        seqs.push(event.seq.0);
    }
    assert_eq!(seqs, vec![1, 2, 3, 4]);

    let by_visitor = v1.request(note(conversation, "n-2", "mine", &[])).await;
    assert_eq!(error_code(&by_visitor), Some(ErrorCode::Forbidden));
    let not_assigned = bob.request(note(conversation, "n-2", "mine", &[])).await;
    assert_eq!(error_code(&not_assigned), Some(ErrorCode::Forbidden));
    let unknown = alice.request(note(conversation, "n-3", "hi", &["nobody"])).await;
    assert_eq!(error_code(&unknown), Some(ErrorCode::NotFound));
    let blank = alice.request(note(conversation, "n-3", "  ", &[])).await;
    assert_eq!(error_code(&blank), Some(ErrorCode::InvalidFrame));
}
