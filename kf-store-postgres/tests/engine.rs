//! The engine over PostgreSQL: conversations opened and written through `Engine`, then a new store and engine on
//! the same database (a restart) that find them, and the host's event stream (`Engine::follow_feed`) resumed from
//! a stored position, live commits included.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kf_core::Engine;
use kf_core::model::{ClientId, ConversationId, MessageBody, Seq};
use kf_core::store::{
    ConversationLog, ConversationLogExt, FeedEntry, FeedPosition, FollowOptions, StoreError,
};
use kf_core::testkit::shop::{WAIT, engine_with, limits, visitor};

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
    stream: &mut (impl futures::Stream<Item = Result<FeedEntry, StoreError>> + Unpin),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_restarted_on_the_database_resumes_its_logs_and_the_host_stream() {
    let url = common::fresh_database().await;
    // A slow poll interval: live events must arrive through the engine's wake-up.
    let options = FollowOptions::default()
        .with_page(5)
        .with_poll_interval(Duration::from_secs(30));

    let (first, stored) = {
        let store = Arc::new(common::open(&url).await);
        let engine = engine_with(store.clone(), limits(), &["alice"]).await;
        let mut events = engine.follow_feed(FeedPosition::ZERO, options.clone());
        let first = chat(&engine, "a", 2, 3).await;
        let handled = take(&mut events, 6).await;
        (first, handled.last().expect("six").position)
    };

    let store = Arc::new(common::open(&url).await);
    let engine = engine_with(store.clone(), limits(), &["alice"]).await;
    // The logs written by the first engine, gapless, and the conversations still open.
    for id in &first {
        let log = store.all_events_after(*id, Seq::ZERO).await.expect("log");
        assert_eq!(
            log.iter().map(|event| event.seq.0).collect::<Vec<_>>(),
            (1..=log.len() as u64).collect::<Vec<_>>()
        );
        assert!(log.len() >= 4, "created and three messages at least: {log:?}");
    }
    let open = store.open_conversations().await.expect("open");
    assert!(first.iter().all(|id| open.iter().any(|c| c.id == *id)));

    let mut events = engine.follow_feed(stored, options);
    let expected = store.feed_after(stored, usize::MAX).await.expect("feed");
    let mut got = take(&mut events, expected.len()).await;
    assert_eq!(
        got, expected,
        "every event after the stored position, once, in order"
    );
    let head = store.feed_head().await.expect("head");
    chat(&engine, "b", 1, 2).await;
    let live = store.feed_after(head, usize::MAX).await.expect("feed");
    assert!(!live.is_empty());
    got.extend(take(&mut events, live.len()).await);
    assert_eq!(got, store.feed_after(stored, usize::MAX).await.expect("feed"));
}
