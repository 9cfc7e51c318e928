//! The search indexer: it follows the log outside the write path, searches are read-your-writes however far it
//! lags, it resumes where it stopped, its index equals a full rebuild, and `close` stops it.

use std::path::Path;
use std::time::{Duration, Instant};

use kf_core::model::{Actor, ConversationId, MessageBody, TenantId, Timestamp};
use kf_core::store::{ConversationLog, EventDraft, History, HistoryQuery, NewConversation};
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use rusqlite::Connection;

mod common;
use common::{id, runtime};

fn tenant() -> TenantId {
    id("shop")
}

fn without_indexer() -> SqliteConfig {
    SqliteConfig::default().with_search_indexer(false)
}

async fn conversation(store: &SqliteStore, visitor: &str) -> ConversationId {
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: tenant(),
        visitor: id(visitor),
        group: id("sales"),
        client_id: id(&format!("open-{visitor}")),
        entry: None,
        fields: Default::default(),
        at: Timestamp(1),
    };
    store
        .create_conversation(new)
        .await
        .expect("create")
        .conversation
        .id
}

async fn say(store: &SqliteStore, conversation: ConversationId, visitor: &str, text: &str) {
    let draft = EventDraft::message(
        conversation,
        Actor::Visitor(id(visitor)),
        None,
        MessageBody::text(text),
        Timestamp(2),
    );
    store.append(draft).await.expect("append");
}

/// The texts found for `text`, every page, sorted.
async fn found(store: &SqliteStore, text: &str) -> Vec<String> {
    let mut query = HistoryQuery::new(tenant()).text(text);
    query.limit = 500;
    let mut texts = Vec::new();
    loop {
        let page = store.search(&query).await.expect("search");
        texts.extend(page.hits.iter().map(|hit| hit.text.clone()));
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    texts.sort();
    texts
}

/// Waits until the indexer has reached the head of the feed.
async fn caught_up(store: &SqliteStore) {
    let head = store.feed_head().await.expect("head").0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.search_index().position < head {
        assert!(
            Instant::now() < deadline,
            "the indexer did not catch up: {:?}",
            store.search_index()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).expect("open raw")
}

/// The rows the index gives for a query (with external content, `SELECT rowid FROM events_fts` alone would read
/// `events`, not the index).
fn indexed_rows(conn: &Connection, query: &str) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM events_fts WHERE events_fts MATCH ?1",
        [query],
        |r| r.get(0),
    )
    .expect("count")
}

/// Compares the store's index with one rebuilt from scratch, and checks it against the texts.
fn assert_index_equals_a_rebuild(conn: &Connection, queries: &[&str]) {
    conn.execute_batch("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')")
        .expect("the index holds exactly the texts of the events");
    conn.execute_batch(
        "CREATE VIRTUAL TABLE rebuilt USING fts5 (body, content = 'events', content_rowid = 'id', \
             tokenize = 'trigram', detail = 'none', columnsize = 0); \
         INSERT INTO rebuilt (rebuilt) VALUES ('rebuild');",
    )
    .expect("rebuild");
    for query in queries {
        let rows = |table: &str| -> Vec<i64> {
            conn.prepare(&format!(
                "SELECT rowid FROM {table} WHERE {table} MATCH ?1 ORDER BY rowid"
            ))
            .expect("prepare")
            .query_map([query], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
        };
        assert_eq!(rows("events_fts"), rows("rebuilt"), "query {query}");
    }
    conn.execute_batch("DROP TABLE rebuilt").expect("drop");
}

#[test]
fn a_message_is_found_the_moment_it_is_acknowledged_with_the_indexer_stopped() {
    let dir = tempfile::tempdir().expect("dir");
    runtime().block_on(async {
        let store = SqliteStore::open(dir.path().join("kf.sqlite3"), without_indexer()).expect("open");
        assert!(!store.search_index().running);
        let c = conversation(&store, "v1").await;
        say(&store, c, "v1", "您的订单已发货，发货单号是 SF123").await;
        // Nothing is indexed, and the message is found by every length of query: the tail scan.
        assert_eq!(store.search_index().position, 0);
        for query in ["发", "发货", "发货单", "SF123", "sf12"] {
            assert_eq!(found(&store, query).await.len(), 1, "{query}");
        }
        store.close().expect("close");
    });
    let conn = raw(&dir.path().join("kf.sqlite3"));
    let fts: i64 = conn
        .query_row(
            "SELECT count(*) FROM events_fts WHERE events_fts MATCH '\"发货单\"'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(fts, 0, "the write path indexed nothing");
}

#[test]
fn a_message_is_found_right_after_its_append_while_the_indexer_runs() {
    let dir = tempfile::tempdir().expect("dir");
    runtime().block_on(async {
        let store = SqliteStore::open_default(dir.path().join("kf.sqlite3")).expect("open");
        assert!(store.search_index().running);
        let c = conversation(&store, "v1").await;
        for n in 0..200 {
            let text = format!("order number {n:04} shipped");
            say(&store, c, "v1", &text).await;
            // Whether the indexer has reached it or not, the message is there at once.
            assert_eq!(found(&store, &format!("number {n:04}")).await, vec![text]);
        }
        caught_up(&store).await;
        assert_eq!(found(&store, "shipped").await.len(), 200);
        let stats = store.search_index();
        assert!(stats.events >= 201 && stats.batches >= 1, "{stats:?}");
        store.close().expect("close");
    });
}

#[test]
fn the_indexer_resumes_where_it_stopped_after_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("kf.sqlite3");
    let texts: Vec<String> = (0..3_000)
        .map(|n| format!("message {n} about refund {}", n % 7))
        .collect();
    runtime().block_on(async {
        let store = SqliteStore::open(&path, without_indexer()).expect("open");
        let c = conversation(&store, "v1").await;
        for text in &texts {
            say(&store, c, "v1", text).await;
        }
        store.close().expect("close");
    });
    // What an indexer stopped mid-way leaves: the first 1,000 events indexed and its position, committed together.
    let conn = raw(&path);
    conn.execute_batch(
        "BEGIN; \
         INSERT INTO events_fts (rowid, body) SELECT id, body FROM events WHERE id <= 1000 AND body IS NOT NULL; \
         INSERT INTO meta (key, value) VALUES ('search_indexed', '1000'); \
         COMMIT;",
    )
    .expect("half indexed");
    drop(conn);
    runtime().block_on(async {
        let store = SqliteStore::open_default(&path).expect("reopen");
        // Searches are right during the catch-up …
        assert_eq!(
            found(&store, "refund 3").await.len(),
            texts.iter().filter(|t| t.ends_with("refund 3")).count()
        );
        caught_up(&store).await;
        // … and after it.
        assert_eq!(
            found(&store, "refund 3").await.len(),
            texts.iter().filter(|t| t.ends_with("refund 3")).count()
        );
        assert_eq!(
            found(&store, "message 2999").await,
            vec!["message 2999 about refund 3".to_owned()]
        );
        let stats = store.search_index();
        assert_eq!(
            stats.events, 2_001,
            "it read only the events after its position: {stats:?}"
        );
        store.close().expect("close");
    });
    let conn = raw(&path);
    assert_index_equals_a_rebuild(&conn, &["\"ref\"", "\"ssa\" AND \"ge \"", "\"299\""]);
    assert_eq!(indexed_rows(&conn, "\"mes\""), 3_000);
}

#[test]
fn after_random_appends_the_index_equals_a_full_rebuild() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("kf.sqlite3");
    let words = [
        "发货", "退款", "订单", "refund", "Order", "shipped", "到账", "hello", "谢谢", "SF123",
    ];
    // A fixed linear congruential sequence: the same "random" texts on every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |below: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap_or(0) % below
    };
    let mut texts = Vec::new();
    for _ in 0..1_500 {
        let len = 1 + next(6);
        let text: Vec<&str> = (0..len).map(|_| words[next(words.len())]).collect();
        texts.push(text.join(if next(2) == 0 { " " } else { "" }));
    }
    runtime().block_on(async {
        let store = std::sync::Arc::new(SqliteStore::open_default(&path).expect("open"));
        let mut conversations = Vec::new();
        for v in 0..8 {
            conversations.push(conversation(&store, &format!("v{v}")).await);
        }
        // Eight writers at once, so commits, wakes and index batches interleave.
        let mut tasks = Vec::new();
        for (v, chunk) in texts.chunks(texts.len() / 8 + 1).enumerate() {
            let (store, chunk, c) = (std::sync::Arc::clone(&store), chunk.to_vec(), conversations[v]);
            tasks.push(tokio::spawn(async move {
                for text in chunk {
                    say(&store, c, &format!("v{v}"), &text).await;
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
        caught_up(&store).await;
        for word in words {
            let expected = texts
                .iter()
                .filter(|t| t.to_ascii_lowercase().contains(&word.to_ascii_lowercase()))
                .count();
            assert_eq!(found(&store, word).await.len(), expected, "{word}");
        }
        store.close().expect("close");
    });
    let conn = raw(&path);
    assert_index_equals_a_rebuild(
        &conn,
        &[
            "\"发货\"",
            "\"退款订\"",
            "\"ref\" AND \"fun\"",
            "\"ord\"",
            "\"ped\"",
            "\"F12\"",
            "\"到账\"",
        ],
    );
}

#[test]
fn close_stops_the_indexer_and_the_next_open_continues() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("kf.sqlite3");
    runtime().block_on(async {
        let store = SqliteStore::open_default(&path).expect("open");
        assert!(store.search_index().running);
        let c = conversation(&store, "v1").await;
        for n in 0..50 {
            say(&store, c, "v1", &format!("before close {n}")).await;
        }
        store.close().expect("close");
        assert!(!store.search_index().running, "the indexer's thread has ended");
        store.close().expect("closing again does nothing");
        let store = SqliteStore::open_default(&path).expect("reopen");
        caught_up(&store).await;
        assert_eq!(found(&store, "before close").await.len(), 50);
        store.close().expect("close");
    });
    assert_index_equals_a_rebuild(&raw(&path), &["\"clo\" AND \"ose\""]);
}

/// The engine's health reports the indexer as the `search_index` consumer: behind by every event while it is
/// off, at the head once it has caught up.
#[test]
fn health_reports_the_indexers_lag() {
    use std::sync::Arc;

    use kf_core::auth::SignedTokens;
    use kf_core::clock::SystemClock;
    use kf_core::engine::{Engine, SEARCH_INDEX_CONSUMER};

    async fn search_index(path: &Path, config: SqliteConfig, messages: usize) -> (u64, Option<u64>) {
        let store = Arc::new(SqliteStore::open(path, config).expect("open"));
        let c = conversation(&store, "v1").await;
        for n in 0..messages {
            say(&store, c, "v1", &format!("parcel {n}")).await;
        }
        if store.search_index().running {
            caught_up(&store).await;
        }
        let tokens = SignedTokens::new(&[7; 32], Arc::new(SystemClock)).expect("key");
        let engine = Engine::builder(store.clone(), Arc::new(tokens))
            .history(store.clone())
            .build()
            .await
            .expect("engine");
        let health = engine.health().await;
        let consumer = health
            .feed
            .consumers
            .iter()
            .find(|consumer| consumer.name == SEARCH_INDEX_CONSUMER)
            .expect("the search index is reported")
            .clone();
        engine.shutdown().await;
        store.close().expect("close");
        (consumer.position, consumer.lag)
    }

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("kf.sqlite3");
    runtime().block_on(async {
        // Off: nothing indexed, every event (the creation and five messages) behind.
        assert_eq!(search_index(&path, without_indexer(), 5).await, (0, Some(6)));
        // On: it catches up, over the first store's events too (the open is the same one again: one more message).
        assert_eq!(
            search_index(&path, SqliteConfig::default(), 1).await,
            (7, Some(0))
        );
    });
}
