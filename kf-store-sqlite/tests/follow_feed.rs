//! The host's event stream (`Engine::follow_feed`) over a SQLite file: resumed from a stored position after a
//! restart (a new store and a new engine on the same file), it yields every later event once, in order, and then
//! follows live commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kf_core::Engine;
use kf_core::limits::Limits;
use kf_core::model::{ClientId, ConversationId, MessageBody, Seq};
use kf_core::store::{ConversationLog, FeedEntry, FeedPosition, FollowOptions};
use kf_core::testkit::shop::{WAIT, engine_with, limits, visitor};
use kf_store_sqlite::SqliteStore;

/// Opens `conversations` conversations (visitors `{tag}-0…`) and sends `messages` messages in each.
async fn chat(engine: &Engine, tag: &str, conversations: usize, messages: usize) -> Vec<ConversationId> {
    let mut ids = Vec::new();
    for n in 0..conversations {
        let who = visitor(&format!("{tag}-{n}"));
        let opened = engine
            .open(
                &who,
                ClientId::new(format!("open-{tag}-{n}")).expect("id"),
                None,
                None,
                Default::default(),
            )
            .await
            .expect("open");
        for m in 0..messages {
            let client_id = ClientId::new(format!("m-{tag}-{n}-{m}")).expect("id");
            engine
                .send(
                    &who,
                    opened.conversation.id,
                    client_id,
                    MessageBody::text(format!("{tag} {m}")),
                )
                .await
                .expect("send");
        }
        ids.push(opened.conversation.id);
    }
    ids
}

/// Takes `count` entries from `stream`, failing after `WAIT`.
async fn take(
    stream: &mut (impl futures::Stream<Item = Result<FeedEntry, kf_core::store::StoreError>> + Unpin),
    count: usize,
) -> Vec<FeedEntry> {
    let mut entries = Vec::new();
    while entries.len() < count {
        let entry = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("the stream yields in time")
            .expect("the stream is endless")
            .expect("read");
        entries.push(entry);
    }
    entries
}

fn engine_limits() -> Limits {
    limits()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_stream_resumed_after_a_restart_yields_every_later_event_once_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    // A slow poll interval: live events must arrive through the engine's wake-up.
    let options = FollowOptions::default()
        .with_page(7)
        .with_poll_interval(Duration::from_secs(30));

    // First run: the host handles the first 10 events and stores the position of the last one.
    let stored = {
        let store = Arc::new(SqliteStore::open_default(&path).expect("open"));
        let engine = engine_with(store.clone(), engine_limits(), &["alice"]).await;
        let mut events = engine.follow_feed(FeedPosition::ZERO, options.clone());
        chat(&engine, "a", 3, 4).await;
        let handled = take(&mut events, 10).await;
        assert!(handled.windows(2).all(|pair| pair[0].position < pair[1].position));
        let stored = handled.last().expect("ten").position;
        drop(events);
        drop(engine);
        store.close().expect("close");
        stored
    };

    // Second run, a new store and engine on the same file: more events are committed before and after the
    // host follows again from its stored position.
    let store = Arc::new(SqliteStore::open_default(&path).expect("reopen"));
    let engine = engine_with(store.clone(), engine_limits(), &["alice"]).await;
    chat(&engine, "b", 2, 3).await;
    let mut events = engine.follow_feed(stored, options);
    let before_head = store.feed_head().await.expect("head");
    let expected_now = store.feed_after(stored, usize::MAX).await.expect("feed");
    assert!(expected_now.last().map(|entry| entry.position) == Some(before_head));
    let mut got = take(&mut events, expected_now.len()).await;
    assert_eq!(
        got, expected_now,
        "every event after the stored position, once, in order"
    );
    // Live: committed while the stream waits (woken by the engine, not by the 30 s poll).
    chat(&engine, "c", 2, 2).await;
    let live = store.feed_after(before_head, usize::MAX).await.expect("feed");
    assert!(!live.is_empty());
    got.extend(take(&mut events, live.len()).await);

    // Together: exactly the feed after the stored position — no event twice, none missing, commit order, and
    // each conversation's seqs rising without gaps from where the first run stopped.
    let all_after = store.feed_after(stored, usize::MAX).await.expect("feed");
    assert_eq!(got, all_after);
    let unique: HashSet<(ConversationId, Seq)> = got
        .iter()
        .map(|entry| (entry.event.conversation, entry.event.seq))
        .collect();
    assert_eq!(unique.len(), got.len());
    let everything = store
        .feed_after(FeedPosition::ZERO, usize::MAX)
        .await
        .expect("feed");
    let mut last: HashMap<ConversationId, Seq> = HashMap::new();
    for entry in &everything {
        let seq = last.entry(entry.event.conversation).or_insert(Seq::ZERO);
        assert_eq!(entry.event.seq.0, seq.0 + 1, "each log in seq order in the feed");
        *seq = entry.event.seq;
    }
    assert_eq!(
        everything.iter().filter(|entry| entry.position <= stored).count() + got.len(),
        everything.len()
    );
    // Nothing more is pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), events.next())
            .await
            .is_err()
    );
    drop(events);
    drop(engine);
    store.close().expect("close");
}
