//! Online backups (`SqliteStore::backup_to`): a copy taken while a writer appends is the database as of one
//! commit.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kf_core::model::{Actor, ClientId, ConversationId, MessageBody, Seq, Timestamp};
use kf_core::store::{ConversationLog, EventDraft, FeedPosition, NewConversation};
use kf_store_sqlite::{SCHEMA_VERSION, SqliteError, SqliteStore};
use rusqlite::{Connection, OpenFlags};

mod common;
use common::{id, runtime};

fn new_conversation(visitor: &str) -> NewConversation {
    NewConversation {
        id: ConversationId::generate(),
        tenant: id("t1"),
        visitor: id(visitor),
        group: id("sales"),
        client_id: id("open-1"),
        entry: None,
        fields: Default::default(),
        at: Timestamp(100),
    }
}

fn message(conversation: ConversationId, visitor: &str, n: u64) -> EventDraft {
    EventDraft::message(
        conversation,
        Actor::Visitor(id(visitor)),
        Some(id::<ClientId>(&format!("m-{n}"))),
        MessageBody::text(format!(
            "message {n} with some text to fill pages {}",
            "x".repeat(200)
        )),
        Timestamp(200 + n),
    )
}

async fn whole_feed(store: &SqliteStore) -> Vec<(u64, ConversationId, u64)> {
    let entries = store
        .feed_after(FeedPosition::ZERO, 1_000_000)
        .await
        .expect("feed");
    entries
        .into_iter()
        .map(|e| (e.position.0, e.event.conversation, e.event.seq.0))
        .collect()
}

#[test]
fn a_backup_taken_while_a_writer_appends_is_the_database_as_of_one_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let copy = dir.path().join("backups/kf-copy.sqlite3");
    std::fs::create_dir_all(dir.path().join("backups")).expect("backup dir");
    let rt = runtime();
    rt.block_on(async {
        let store = Arc::new(SqliteStore::open_default(&path).expect("open"));
        let mut conversations = Vec::new();
        for visitor in ["v1", "v2"] {
            let created = store
                .create_conversation(new_conversation(visitor))
                .await
                .expect("create");
            conversations.push((created.conversation.id, visitor));
        }

        // A writer appending without pause to both conversations, publishing how many appends were acked.
        let (acked, mut acks) = tokio::sync::watch::channel(0u64);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn({
            let (store, stop, conversations) = (Arc::clone(&store), Arc::clone(&stop), conversations.clone());
            async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (conversation, visitor) = conversations[(n % 2) as usize];
                    store
                        .append(message(conversation, visitor, n))
                        .await
                        .expect("append");
                    n += 1;
                    acked.send_replace(n);
                }
                n
            }
        });
        acks.wait_for(|n| *n >= 400).await.expect("writer running");
        let acked_before = *acks.borrow();
        // One page per step: many steps. Taken again (rarely needed) until the writer is seen committing while a
        // backup runs.
        let mut attempts = 0;
        let report = loop {
            attempts += 1;
            let feed_before = store.feed_head().await.expect("head");
            let report = store
                .backup_in_steps(&copy, NonZeroU32::MIN)
                .await
                .expect("backup");
            let feed_after = store.feed_head().await.expect("head");
            if feed_after > feed_before || attempts == 50 {
                assert!(
                    feed_after > feed_before,
                    "the writer never committed during a backup"
                );
                break report;
            }
        };
        stop.store(true, Ordering::Relaxed);
        let total = writer.await.expect("writer task");
        assert!(report.steps > 10 && report.pages > 10, "{report:?}");
        assert!(!dir.path().join("backups/kf-copy.sqlite3.partial").exists());

        // The copy, as SQLite sees it: intact, same schema version.
        {
            let raw =
                Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open copy");
            let check: String = raw
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .expect("check");
            assert_eq!(check, "ok");
            let version: i64 = raw
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .expect("version");
            assert_eq!(version, SCHEMA_VERSION);
        }

        // As a store: the same epoch; its feed is a prefix of the original's (one commit's snapshot, nothing
        // missing before it, nothing after it), holding at least every append acked before the backup began.
        let restored = SqliteStore::open_default(&copy).expect("open the copy as a store");
        assert_eq!(
            restored.epoch().await.expect("epoch"),
            store.epoch().await.expect("epoch")
        );
        let original = whole_feed(&store).await;
        let copied = whole_feed(&restored).await;
        assert_eq!(
            original.len() as u64,
            total + 2,
            "two `created` events and every append"
        );
        assert!(
            copied.len() as u64 >= acked_before + 2,
            "{} < {acked_before} + 2",
            copied.len()
        );
        assert_eq!(copied[..], original[..copied.len()], "a prefix of the feed");
        for (conversation, _) in &conversations {
            let events = restored
                .events_after(*conversation, Seq::ZERO, 1_000_000)
                .await
                .expect("events");
            let seqs: Vec<u64> = events.iter().map(|e| e.seq.0).collect();
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gapless");
            let originals = store
                .events_after(*conversation, Seq::ZERO, events.len())
                .await
                .expect("events");
            assert_eq!(events, originals, "the same events");
            let record = restored
                .conversation(*conversation)
                .await
                .expect("read")
                .expect("record");
            assert_eq!(record.last_seq.0, seqs.len() as u64, "the record matches its log");
        }
    });
}

#[test]
fn a_backup_replaces_its_destination_and_never_overwrites_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let copy = dir.path().join("copy.sqlite3");
    std::fs::write(&copy, b"an older backup").expect("old file");
    let rt = runtime();
    rt.block_on(async {
        let store = SqliteStore::open_default(&path).expect("open");
        store
            .create_conversation(new_conversation("v1"))
            .await
            .expect("create");
        store.backup_to(&copy).await.expect("backup");
        let restored = SqliteStore::open_default(&copy).expect("open the copy");
        assert_eq!(
            restored.feed_head().await.expect("head"),
            store.feed_head().await.expect("head")
        );
        let refused = store.backup_to(&path).await;
        assert!(
            matches!(refused, Err(SqliteError::BackupOntoItself(_))),
            "{refused:?}"
        );

        // From another process's point of view: a file, not a store (nothing is opened for writing).
        let other = dir.path().join("other.sqlite3");
        let report = kf_store_sqlite::backup_file(&path, &other).expect("backup_file");
        assert!(report.pages > 0);
        let restored = SqliteStore::open_default(&other).expect("open the copy");
        assert_eq!(
            restored.feed_head().await.expect("head"),
            store.feed_head().await.expect("head")
        );
        let missing = kf_store_sqlite::backup_file(dir.path().join("none.sqlite3"), &other);
        assert!(matches!(missing, Err(SqliteError::Backup { .. })), "{missing:?}");
    });
}

#[test]
fn a_restore_puts_the_copy_in_place_with_a_new_epoch_and_no_stale_wal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let copy = dir.path().join("kf-copy.sqlite3");
    let rt = runtime();
    let (epoch, conversation) = rt.block_on(async {
        let store = SqliteStore::open_default(&path).expect("open");
        let created = store
            .create_conversation(new_conversation("v1"))
            .await
            .expect("create");
        let conversation = created.conversation.id;
        for n in 0..3 {
            store
                .append(message(conversation, "v1", n))
                .await
                .expect("append");
        }
        store.backup_to(&copy).await.expect("backup");
        // Written after the backup: gone once it is restored.
        for n in 3..6 {
            store
                .append(message(conversation, "v1", n))
                .await
                .expect("append");
        }
        let epoch = store.epoch().await.expect("epoch");
        store.close().expect("close");
        (epoch, conversation)
    });
    // A stale WAL beside the database must not survive the restore.
    std::fs::write(dir.path().join("kf.sqlite3-wal"), b"stale").expect("wal");

    kf_store_sqlite::restore_file(&copy, &path).expect("restore");
    assert!(!dir.path().join("kf.sqlite3-wal").exists());
    assert!(!dir.path().join("kf.sqlite3.partial").exists());
    assert!(copy.exists(), "the backup is left as it was");

    rt.block_on(async {
        let restored = SqliteStore::open_default(&path).expect("open the restored database");
        assert_ne!(restored.epoch().await.expect("epoch"), epoch, "a new epoch");
        let seqs: Vec<u64> = restored
            .events_after(conversation, Seq::ZERO, 100)
            .await
            .expect("events")
            .iter()
            .map(|e| e.seq.0)
            .collect();
        assert_eq!(
            seqs,
            vec![1, 2, 3, 4],
            "created and the three messages before the backup"
        );
    });

    assert!(matches!(
        kf_store_sqlite::restore_file(dir.path().join("missing.sqlite3"), &path),
        Err(SqliteError::Backup { .. })
    ));
    assert!(matches!(
        kf_store_sqlite::restore_file(&path, &path),
        Err(SqliteError::BackupOntoItself(_))
    ));
}
