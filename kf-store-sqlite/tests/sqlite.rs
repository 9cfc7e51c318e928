//! Behaviour specific to the SQLite store: restart, group commit, migrations, settings.

use std::sync::Arc;
use std::time::Duration;

use kf_core::model::{
    Actor, Agent, AgentId, ClientId, ConversationId, ConversationState, EventKind, Group, MessageBody, Seq,
    TenantId, Timestamp, Visitor, VisitorId,
};
use kf_core::store::{ConversationLog, Directory, EventDraft, NewConversation, StoreError};
use kf_store_sqlite::{SCHEMA_VERSION, SqliteConfig, SqliteError, SqliteStore, Synchronous};

mod common;
use common::{id, runtime};

fn new_conversation(visitor: &str, client_id: &str) -> NewConversation {
    NewConversation {
        id: ConversationId::generate(),
        tenant: id("t1"),
        visitor: id(visitor),
        group: id("sales"),
        client_id: id(client_id),
        entry: None,
        fields: Default::default(),
        at: Timestamp(100),
    }
}

fn message(conversation: ConversationId, client_id: Option<&str>, text: &str) -> EventDraft {
    let author = Actor::Visitor(id("v1"));
    EventDraft::message(
        conversation,
        author,
        client_id.map(id::<ClientId>),
        MessageBody::text(text),
        Timestamp(200),
    )
}

fn system(conversation: ConversationId, data: EventKind) -> EventDraft {
    EventDraft::system(conversation, data, Timestamp(300))
}

#[test]
fn restart_keeps_history_seqs_and_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/dir/kf.sqlite3");
    let rt = runtime();
    let (conversation, epoch) = rt.block_on(async {
        let store = SqliteStore::open_default(&path).expect("open");
        let epoch = store.epoch().await.expect("epoch");
        let c = store
            .create_conversation(new_conversation("v1", "open-1"))
            .await
            .expect("create")
            .conversation
            .id;
        for n in 0..5 {
            store
                .append(message(c, Some(&format!("m{n}")), &format!("hello {n}")))
                .await
                .expect("append");
        }
        store
            .append(system(c, EventKind::Assigned { agent: id("a1") }))
            .await
            .expect("assign");
        let agent = Agent::new(id("t1"), id("a1"), "Alice", 2).with_groups(vec![id("sales")]);
        store.put_agent(agent).await.expect("put agent");
        store.close().expect("close");
        assert!(store.is_closed());
        (c, epoch)
    });

    let store = SqliteStore::open_default(&path).expect("reopen");
    rt.block_on(async {
        assert_eq!(
            store.epoch().await.expect("epoch"),
            epoch,
            "the epoch survives a restart"
        );
        let events = store
            .events_after(conversation, Seq::ZERO, 100)
            .await
            .expect("events");
        assert_eq!(
            events.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
            (1..=7).collect::<Vec<_>>()
        );
        assert_eq!(
            events[3].data,
            EventKind::Message {
                body: MessageBody::text("hello 2")
            }
        );
        let stored = store
            .conversation(conversation)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(stored.last_seq, Seq(7));
        assert_eq!(stored.state, ConversationState::Assigned { agent: id("a1") });

        // Idempotency keys survive too.
        let repeat = store
            .append(message(conversation, Some("m1"), "hello 1"))
            .await
            .expect("append");
        assert!(repeat.duplicate);
        assert_eq!(repeat.event.seq, Seq(3));
        let next = store
            .append(message(conversation, Some("m-new"), "after restart"))
            .await
            .expect("append");
        assert!(!next.duplicate);
        assert_eq!(next.event.seq, Seq(8), "the next seq continues the log");
        let again = store
            .create_conversation(new_conversation("v1", "open-1"))
            .await
            .expect("create");
        assert!(!again.created);
        assert_eq!(again.conversation.id, conversation);
        assert_eq!(store.agents().await.expect("agents").len(), 1);
    });
    drop(store);

    // A different file is a different epoch.
    let other = SqliteStore::open_default(dir.path().join("other.sqlite3")).expect("open other");
    rt.block_on(async {
        assert_ne!(other.epoch().await.expect("epoch"), epoch);
    });
}

#[test]
fn closed_store_refuses_requests() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_default(dir.path().join("kf.sqlite3")).expect("open");
    runtime().block_on(async {
        let c = store
            .create_conversation(new_conversation("v1", "o"))
            .await
            .expect("create")
            .conversation
            .id;
        store.close().expect("close");
        store.close().expect("closing twice is fine");
        let append = store.append(message(c, None, "late")).await;
        assert!(matches!(append, Err(StoreError::Closed)), "{append:?}");
        let read = store.conversation(c).await;
        assert!(matches!(read, Err(StoreError::Closed)), "{read:?}");
        assert!(matches!(store.epoch().await, Err(StoreError::Closed)));
    });
}

#[test]
fn concurrent_appends_are_group_committed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open_default(dir.path().join("kf.sqlite3")).expect("open"));
    runtime().block_on(async {
        let c = store
            .create_conversation(new_conversation("v1", "o"))
            .await
            .expect("create")
            .conversation
            .id;
        let before = store.stats();
        let mut tasks = Vec::new();
        for task in 0..16 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for n in 0..25 {
                    store
                        .append(message(c, Some(&format!("{task}-{n}")), "x"))
                        .await
                        .expect("append");
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let after = store.stats();
        let events = after.events - before.events;
        let batches = after.batches - before.batches;
        assert_eq!(events, 400);
        assert!(batches < events, "400 concurrent appends took {batches} commits");
        assert!(after.largest_batch > 1);
        let log = store.events_after(c, Seq::ZERO, 1_000).await.expect("events");
        assert_eq!(
            log.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
            (1..=401).collect::<Vec<_>>()
        );
    });
}

#[test]
fn one_refused_request_does_not_fail_its_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let rt = runtime();
    let c = rt.block_on(async {
        let store = SqliteStore::open_default(&path).expect("open");
        let c = store
            .create_conversation(new_conversation("v1", "o"))
            .await
            .expect("create")
            .conversation
            .id;
        store
            .append(system(c, EventKind::Assigned { agent: id("a1") }))
            .await
            .expect("assign");
        c
    });
    // The writer waits (at most a second) until it holds 6 requests, so the 6 below share one transaction.
    let config = SqliteConfig::default()
        .with_batch_max(6)
        .with_batch_window(Duration::from_secs(1));
    let store = SqliteStore::open(&path, config).expect("open");
    rt.block_on(async {
        let before = store.stats();
        let (first, twice, duplicate, unknown, huge, second) = tokio::join!(
            store.append(message(c, Some("k1"), "one")),
            store.append(system(c, EventKind::Assigned { agent: id("a2") })),
            store.append(message(c, Some("k1"), "one again")),
            store.append(message(ConversationId::generate(), None, "nobody")),
            store.append(EventDraft {
                at: Timestamp(u64::MAX),
                ..message(c, None, "far future")
            }),
            store.append(message(c, Some("k2"), "two")),
        );
        let after = store.stats();
        assert_eq!(
            after.batches - before.batches,
            1,
            "the six requests were one transaction"
        );
        assert_eq!(after.largest_batch, 6);
        assert_eq!(after.events - before.events, 2);

        let first = first.expect("first append");
        let second = second.expect("second append");
        assert!(matches!(twice, Err(StoreError::Transition(_))), "{twice:?}");
        assert!(
            matches!(unknown, Err(StoreError::ConversationNotFound(_))),
            "{unknown:?}"
        );
        assert!(matches!(huge, Err(StoreError::Invalid(_))), "{huge:?}");
        let duplicate = duplicate.expect("duplicate");
        assert!(
            duplicate.duplicate,
            "a repeat inside the same batch is a duplicate"
        );
        assert_eq!(duplicate.event, first.event);
        let mut seqs = [first.event.seq.0, second.event.seq.0];
        seqs.sort_unstable();
        assert_eq!(seqs, [3, 4]);

        let log = store.events_after(c, Seq::ZERO, 100).await.expect("events");
        assert_eq!(log.len(), 4, "created, assigned and the two messages");
        let stored = store.conversation(c).await.expect("read").expect("exists");
        assert_eq!(stored.state, ConversationState::Assigned { agent: id("a1") });
        assert_eq!(stored.last_seq, Seq(4));
    });
}

#[test]
fn an_empty_file_is_migrated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.sqlite3");
    std::fs::File::create(&path).expect("create empty file");
    let store = SqliteStore::open_default(&path).expect("open");
    runtime().block_on(async {
        store
            .put_group(Group::new(id("t1"), id("sales"), "Sales"))
            .await
            .expect("put");
        assert_eq!(store.groups().await.expect("groups").len(), 1);
    });
    store.close().expect("close");
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal");
    assert_eq!(journal, "wal");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('meta', 'conversations', 'events', 'visitors', 'agents', 'skill_groups')",
            [],
            |row| row.get(0),
        )
        .expect("tables");
    assert_eq!(tables, 6);
    drop(conn);
    // Opening a current file again applies nothing and keeps the data.
    let store = SqliteStore::open_default(&path).expect("reopen");
    runtime().block_on(async {
        assert_eq!(store.groups().await.expect("groups").len(), 1);
    });
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("future.sqlite3");
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch(&format!(
            "CREATE TABLE future (x); PRAGMA user_version = {};",
            SCHEMA_VERSION + 1
        ))
        .expect("prepare");
    }
    match SqliteStore::open_default(&path) {
        Err(SqliteError::FutureSchema { found, supported }) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        other => panic!("expected FutureSchema, got {other:?}"),
    }
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal");
    assert_eq!(journal, "delete", "the refused file was not switched to WAL");
}

#[test]
fn synchronous_setting_is_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, wanted) in [
        ("full", Synchronous::Full),
        ("normal", Synchronous::Normal),
        ("off", Synchronous::Off),
    ] {
        let config = SqliteConfig::default().with_synchronous(wanted);
        let store = SqliteStore::open(dir.path().join(format!("{name}.sqlite3")), config).expect("open");
        let pragmas = store.pragmas();
        assert_eq!(pragmas.synchronous, wanted);
        assert_eq!(pragmas.journal_mode, "wal");
        assert!(pragmas.foreign_keys);
    }
    let store = SqliteStore::open_default(dir.path().join("default.sqlite3")).expect("open");
    assert_eq!(
        store.pragmas().synchronous,
        Synchronous::Full,
        "FULL is the default"
    );
    assert_eq!(store.pragmas().busy_timeout_ms, 5_000);
}

#[test]
fn invalid_configuration_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let zero_batch = SqliteStore::open(&path, SqliteConfig::default().with_batch_max(0));
    assert!(
        matches!(zero_batch, Err(SqliteError::InvalidConfig(_))),
        "{zero_batch:?}"
    );
    let zero_readers = SqliteStore::open(&path, SqliteConfig::default().with_readers(0));
    assert!(
        matches!(zero_readers, Err(SqliteError::InvalidConfig(_))),
        "{zero_readers:?}"
    );
    let memory = SqliteStore::open(":memory:", SqliteConfig::default());
    assert!(matches!(memory, Err(SqliteError::NotWal(_))), "{memory:?}");
}

#[test]
fn records_and_message_bodies_are_stored_queryably() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let store = SqliteStore::open_default(&path).expect("open");
    let c = runtime().block_on(async {
        let c = store
            .create_conversation(new_conversation("v1", "o"))
            .await
            .expect("create")
            .conversation
            .id;
        store
            .append(message(c, None, "where is my parcel?"))
            .await
            .expect("append");
        let visitor = Visitor::new(id("t1"), id("v1"), Timestamp(5));
        store.put_visitor(visitor.clone()).await.expect("put visitor");
        let tenant: TenantId = id("t1");
        let v: VisitorId = id("v1");
        assert_eq!(store.visitor(&tenant, &v).await.expect("visitor"), Some(visitor));
        let a: AgentId = id("nobody");
        assert_eq!(store.agent(&tenant, &a).await.expect("agent"), None);
        c
    });
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let (kind, body): (String, String) = conn
        .query_row(
            "SELECT kind, body FROM events WHERE conversation = ?1 AND seq = 2",
            [c.to_string()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("row");
    assert_eq!((kind.as_str(), body.as_str()), ("message", "where is my parcel?"));
}

#[test]
fn reads_share_a_small_pool_and_work_without_tokio() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SqliteConfig::default().with_readers(2);
    let store = Arc::new(SqliteStore::open(dir.path().join("kf.sqlite3"), config).expect("open"));
    // Outside any Tokio runtime (another executor), writes and reads still work.
    let c = futures::executor::block_on(async {
        let c = store
            .create_conversation(new_conversation("v1", "o"))
            .await
            .expect("create")
            .conversation
            .id;
        assert_eq!(
            store.conversation(c).await.expect("read").map(|c| c.last_seq),
            Some(Seq(1))
        );
        c
    });
    runtime().block_on(async {
        let reads = (0..50).map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.events_after(c, Seq::ZERO, 10).await })
        });
        for read in futures::future::join_all(reads).await {
            assert_eq!(read.expect("task").expect("read").len(), 1);
        }
    });
}

#[test]
fn the_feed_survives_a_restart_and_append_batch_is_one_commit() {
    use kf_core::store::FeedPosition;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let rt = runtime();
    let (c, head) = rt.block_on(async {
        let store = SqliteStore::open_default(&path).expect("open");
        let c = store
            .create_conversation(new_conversation("v1", "o"))
            .await
            .expect("create")
            .conversation
            .id;
        let before = store.stats();
        let drafts = (0..5).map(|n| message(c, Some(&format!("b{n}")), "x")).collect();
        let results = store.append_batch(drafts).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let after = store.stats();
        assert_eq!(after.batches - before.batches, 1, "one group commit");
        assert_eq!(after.events - before.events, 5);
        let head = store.feed_head().await.expect("head");
        assert_eq!(head, FeedPosition(6));
        store.close().expect("close");
        let refused = store
            .append_batch(vec![message(c, None, "late"), message(c, None, "later")])
            .await;
        assert!(
            refused.iter().all(|r| matches!(r, Err(StoreError::Closed))),
            "{refused:?}"
        );
        (c, head)
    });
    let store = SqliteStore::open_default(&path).expect("reopen");
    rt.block_on(async {
        assert_eq!(store.feed_head().await.expect("head"), head);
        let next = store
            .append(message(c, None, "after restart"))
            .await
            .expect("append");
        let rest = store.feed_after(head, 10).await.expect("feed");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].position, head.next());
        assert_eq!(rest[0].event, next.event);
        assert_eq!(rest[0].tenant, id::<TenantId>("t1"));
    });
}

/// A message's text is stored once (in `body`, with an empty `data`); rows written with the text in both (as
/// before) read the same.
#[test]
fn a_message_text_is_stored_once_and_old_rows_still_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let store = SqliteStore::open_default(&path).expect("open");
    let (c, stored) = runtime().block_on(async {
        let c = store
            .create_conversation(new_conversation("v1", "o"))
            .await
            .expect("create")
            .conversation
            .id;
        let appended = store
            .append(message(c, Some("m1"), "hé \"quoted\"\n"))
            .await
            .expect("append");
        (c, appended.event)
    });
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let (data, body): (String, String) = conn
        .query_row(
            "SELECT data, body FROM events WHERE conversation = ?1 AND seq = 2",
            [c.to_string()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("row");
    assert_eq!((data.as_str(), body.as_str()), ("", "hé \"quoted\"\n"));
    // The same message as an older version wrote it: its EventKind as JSON in `data` too.
    let json = serde_json::to_string(&stored.data).expect("json");
    conn.execute(
        "UPDATE events SET data = ?2 WHERE conversation = ?1 AND seq = 2",
        rusqlite::params![c.to_string(), json],
    )
    .expect("rewrite");
    drop(conn);
    runtime().block_on(async {
        let events = store.events_after(c, Seq(0), 10).await.expect("read");
        assert_eq!(events.get(1), Some(&stored));
        let again = store
            .append(message(c, Some("m1"), "hé \"quoted\"\n"))
            .await
            .expect("resend");
        assert!(again.duplicate);
        assert_eq!(again.event, stored);
    });
}
