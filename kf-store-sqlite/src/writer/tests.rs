//! The writer's own tests: batches around refused and failed requests, rollbacks, its bounded cache of
//! conversations, feed positions through retries.

use kf_core::model::{Actor, ClientId, ConversationState, MessageBody, Timestamp};
use kf_core::store::FeedPosition;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::*;
use crate::schema;

fn id<T: std::str::FromStr>(value: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    value.parse().expect("valid id")
}

fn connection(dir: &tempfile::TempDir) -> Connection {
    let mut conn = Connection::open(dir.path().join("kf.sqlite3")).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
        .expect("pragmas");
    schema::migrate(&mut conn).expect("migrate");
    conn
}

fn writer(dir: &tempfile::TempDir) -> Writer {
    Writer::new(connection(dir), 64)
}

/// A writer on a fresh file with one open conversation; the directory keeps the file alive.
fn fixture() -> (tempfile::TempDir, Writer, Counters, ConversationId) {
    let dir = tempfile::tempdir().expect("dir");
    let mut w = writer(&dir);
    let counters = Counters::default();
    let c = open(&mut w, &counters);
    (dir, w, counters, c)
}

type Answer = oneshot::Receiver<Result<Outcome, StoreError>>;

fn request(op: Op) -> (Request, Answer) {
    let (reply, answer) = oneshot::channel();
    (Request { op, reply }, answer)
}

fn run(w: &mut Writer, counters: &Counters, ops: Vec<Op>) -> Vec<Result<Outcome, StoreError>> {
    let (mut batch, answers): (Vec<_>, Vec<_>) = ops.into_iter().map(request).unzip();
    w.commit(&mut batch, counters);
    answers
        .into_iter()
        .map(|mut answer| answer.try_recv().expect("answered"))
        .collect()
}

fn open(w: &mut Writer, counters: &Counters) -> ConversationId {
    open_for(w, counters, "v1")
}

/// Opens a conversation of `visitor` (in group `sales` of tenant `t1`).
fn open_for(w: &mut Writer, counters: &Counters, visitor: &str) -> ConversationId {
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: id("t1"),
        visitor: id(visitor),
        group: id("sales"),
        client_id: id("open"),
        entry: None,
        fields: Default::default(),
        at: Timestamp(1),
    };
    match run(w, counters, vec![Op::Create(new)]).pop() {
        Some(Ok(Outcome::Created(created))) => created.conversation.id,
        other => panic!("create failed: {other:?}"),
    }
}

fn text(conversation: ConversationId, client_id: Option<&str>, text: &str) -> Op {
    let author = Actor::Visitor(id("v1"));
    let body = MessageBody::text(text);
    Op::Append(EventDraft::message(
        conversation,
        author,
        client_id.map(id::<ClientId>),
        body,
        Timestamp(2),
    ))
}

fn log_len(conn: &Connection, conversation: ConversationId) -> usize {
    rows::events_after(conn, conversation, Seq::ZERO, 100)
        .expect("events")
        .len()
}

#[test]
fn a_batch_commits_around_a_refused_request() {
    let (_dir, mut w, counters, c) = fixture();
    let closed = Op::Append(EventDraft::system(c, EventKind::Reopened, Timestamp(3)));
    let results = run(
        &mut w,
        &counters,
        vec![
            text(c, Some("k1"), "a"),
            closed,
            text(c, Some("k1"), "b"),
            text(c, None, "c"),
        ],
    );
    assert!(matches!(&results[0], Ok(Outcome::Appended(a)) if a.event.seq == Seq(2) && !a.duplicate));
    assert!(
        matches!(&results[1], Err(StoreError::Transition(_))),
        "{:?}",
        results[1]
    );
    assert!(matches!(&results[2], Ok(Outcome::Appended(a)) if a.event.seq == Seq(2) && a.duplicate));
    assert!(matches!(&results[3], Ok(Outcome::Appended(a)) if a.event.seq == Seq(3)));
    assert_eq!(log_len(&w.conn, c), 3);
    assert_eq!(counters.batches.load(Ordering::Relaxed), 2);
    assert_eq!(counters.events.load(Ordering::Relaxed), 3);
}

#[test]
fn a_failing_statement_is_rolled_back_alone() {
    let (_dir, mut w, counters, c) = fixture();
    w.conn
        .execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.events WHEN NEW.body = 'refuse' \
         BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;",
        )
        .expect("trigger");
    let results = run(
        &mut w,
        &counters,
        vec![text(c, None, "a"), text(c, None, "refuse"), text(c, None, "b")],
    );
    assert!(results[0].is_ok());
    assert!(
        matches!(&results[1], Err(StoreError::Backend(_))),
        "{:?}",
        results[1]
    );
    assert!(matches!(&results[2], Ok(Outcome::Appended(a)) if a.event.seq == Seq(3)));
    assert_eq!(log_len(&w.conn, c), 3);
}

#[test]
fn a_lost_transaction_fails_the_whole_batch() {
    let (_dir, mut w, counters, c) = fixture();
    w.conn
        .execute_batch(
            "CREATE TEMP TRIGGER lose BEFORE INSERT ON main.events WHEN NEW.body = 'lose' \
         BEGIN SELECT RAISE(ROLLBACK, 'transaction rolled back by a test trigger'); END;",
        )
        .expect("trigger");
    let results = run(
        &mut w,
        &counters,
        vec![text(c, None, "a"), text(c, None, "lose"), text(c, None, "b")],
    );
    for result in &results {
        assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
    }
    assert_eq!(log_len(&w.conn, c), 1, "nothing of the batch was stored");
    assert_eq!(counters.failed_batches.load(Ordering::Relaxed), 1);
    assert!(w.conn.is_autocommit());
    // The writer carries on with the next batch.
    let results = run(&mut w, &counters, vec![text(c, None, "a")]);
    assert!(matches!(&results[0], Ok(Outcome::Appended(a)) if a.event.seq == Seq(2)));
}

#[test]
fn a_failed_commit_fails_every_request() {
    let (_dir, mut w, counters, c) = fixture();
    // A deferred foreign key is only checked at COMMIT, which then fails.
    w.conn
        .execute_batch(
            "CREATE TEMP TABLE parent (id TEXT PRIMARY KEY); \
         CREATE TEMP TABLE child (parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED); \
         CREATE TEMP TRIGGER orphan AFTER INSERT ON main.events WHEN NEW.body = 'orphan' \
         BEGIN INSERT INTO child VALUES ('missing'); END;",
        )
        .expect("setup");
    let results = run(
        &mut w,
        &counters,
        vec![text(c, None, "a"), text(c, None, "orphan")],
    );
    for result in &results {
        match result {
            Err(StoreError::Backend(error)) => {
                assert!(error.to_string().contains("group commit failed"), "{error}");
            }
            other => panic!("expected a batch failure, got {other:?}"),
        }
    }
    assert!(w.conn.is_autocommit(), "the failed transaction was rolled back");
    assert_eq!(log_len(&w.conn, c), 1);
    assert_eq!(counters.failed_batches.load(Ordering::Relaxed), 1);
}

fn stored(w: &Writer, c: ConversationId) -> Conversation {
    rows::conversation(&w.conn, c).expect("read").expect("exists")
}

fn appended(result: &Result<Outcome, StoreError>) -> &Appended {
    match result {
        Ok(Outcome::Appended(appended)) => appended,
        other => panic!("expected an append, got {other:?}"),
    }
}

#[test]
fn the_cache_is_bounded_and_keeps_recent_records() {
    let mut cache = Cache::new(4);
    let conversation = |n: u128| {
        Conversation::new(
            ConversationId::from_uuid(uuid::Uuid::from_u128(n)),
            id("t1"),
            id("v1"),
            id("sales"),
            Timestamp(1),
        )
    };
    for n in 1..=10 {
        cache.insert(conversation(n));
        // Keep using the first one: it is never the least recently used.
        assert!(cache.get(conversation(1).id).is_some(), "after {n}");
        assert!(cache.len() <= 4, "{} records", cache.len());
    }
    assert!(cache.get(conversation(10).id).is_some());
    assert!(cache.get(conversation(2).id).is_none());
    let mut newer = conversation(10);
    newer.last_seq = Seq(7);
    cache.insert(newer);
    assert_eq!(cache.get(conversation(10).id).map(|c| c.last_seq), Some(Seq(7)));
    cache.clear();
    assert_eq!(cache.len(), 0);
}

#[test]
fn conversation_rows_get_the_batch_final_state() {
    let (_dir, mut w, counters, c) = fixture();
    let assign = Op::Append(EventDraft::system(
        c,
        EventKind::Assigned { agent: id("a1") },
        Timestamp(5),
    ));
    let results = run(
        &mut w,
        &counters,
        vec![text(c, Some("k1"), "a"), assign, text(c, Some("k2"), "b")],
    );
    assert_eq!(appended(&results[2]).conversation.last_seq, Seq(4));
    let row = stored(&w, c);
    assert_eq!(row.last_seq, Seq(4));
    assert_eq!(row.state, ConversationState::Assigned { agent: id("a1") });
    assert_eq!(row.last_agent, Some(id("a1")));
    assert_eq!(row.updated_at, Timestamp(2), "the last event's time");
    assert_eq!(&row, &appended(&results[2]).conversation);
    // The next batch starts from the cached record, which matches the row.
    let results = run(
        &mut w,
        &counters,
        vec![text(c, Some("k1"), "a again"), text(c, None, "c")],
    );
    assert!(appended(&results[0]).duplicate);
    assert_eq!(appended(&results[0]).event.seq, Seq(2));
    assert_eq!(appended(&results[1]).event.seq, Seq(5));
    assert_eq!(stored(&w, c).last_seq, Seq(5));
}

#[test]
fn the_cache_is_not_ahead_after_a_refused_request() {
    let (_dir, mut w, counters, c) = fixture();
    w.conn
        .execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.events WHEN NEW.body = 'refuse' \
             BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;",
        )
        .expect("trigger");
    let reopen = Op::Append(EventDraft::system(c, EventKind::Reopened, Timestamp(3)));
    let results = run(
        &mut w,
        &counters,
        vec![text(c, None, "refuse"), reopen, text(c, Some("k"), "refuse")],
    );
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert_eq!(stored(&w, c).last_seq, Seq(1));
    let results = run(&mut w, &counters, vec![text(c, Some("k"), "a")]);
    let first = appended(&results[0]);
    assert_eq!((first.event.seq, first.duplicate), (Seq(2), false));
    assert_eq!(stored(&w, c).last_seq, Seq(2));
    assert_eq!(log_len(&w.conn, c), 2);
}

#[test]
fn the_cache_is_not_ahead_after_a_failed_batch() {
    let (_dir, mut w, counters, c) = fixture();
    // Warm the cache.
    assert_eq!(
        appended(&run(&mut w, &counters, vec![text(c, None, "a")])[0])
            .event
            .seq,
        Seq(2)
    );
    w.conn
        .execute_batch(
            "CREATE TEMP TABLE parent (id TEXT PRIMARY KEY); \
             CREATE TEMP TABLE child (parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED); \
             CREATE TEMP TRIGGER orphan AFTER INSERT ON main.events WHEN NEW.body = 'orphan' \
             BEGIN INSERT INTO child VALUES ('missing'); END;",
        )
        .expect("setup");
    let results = run(
        &mut w,
        &counters,
        vec![
            text(c, None, "b"),
            text(c, Some("k"), "orphan"),
            text(c, None, "c"),
        ],
    );
    assert!(results.iter().all(Result::is_err), "{results:?}");
    let results = run(
        &mut w,
        &counters,
        vec![text(c, Some("k"), "b"), text(c, None, "c")],
    );
    let retried = appended(&results[0]);
    assert_eq!((retried.event.seq, retried.duplicate), (Seq(3), false));
    assert_eq!(appended(&results[1]).event.seq, Seq(4));
    assert_eq!(stored(&w, c).last_seq, Seq(4));
    assert_eq!(log_len(&w.conn, c), 4);
}

#[test]
fn a_failing_conversation_update_fails_only_its_requests() {
    let (_dir, mut w, counters, c) = fixture();
    let other = open_for(&mut w, &counters, "v2");
    w.conn
        .execute_batch(&format!(
            "CREATE TEMP TRIGGER stuck BEFORE UPDATE ON main.conversations WHEN NEW.id = '{c}' \
             BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;"
        ))
        .expect("trigger");
    let assign = |conversation| {
        Op::Append(EventDraft::system(
            conversation,
            EventKind::Assigned { agent: id("a1") },
            Timestamp(5),
        ))
    };
    // An assignment rewrites its conversation's row (a message does not: its seq and time are read from the
    // log), so the refused update fails c's requests of the batch, and only those.
    let results = run(
        &mut w,
        &counters,
        vec![
            assign(c),
            text(other, None, "b"),
            text(c, None, "c"),
            assign(other),
        ],
    );
    assert!(
        matches!(&results[0], Err(StoreError::Backend(_))),
        "{:?}",
        results[0]
    );
    assert!(
        matches!(&results[2], Err(StoreError::Backend(_))),
        "{:?}",
        results[2]
    );
    assert_eq!(appended(&results[1]).event.seq, Seq(2));
    assert_eq!(appended(&results[3]).event.seq, Seq(3));
    assert_eq!((log_len(&w.conn, c), stored(&w, c).last_seq), (1, Seq(1)));
    assert_eq!(stored(&w, c).state, ConversationState::Queued);
    let other_row = stored(&w, other);
    assert_eq!((log_len(&w.conn, other), other_row.last_seq), (3, Seq(3)));
    assert_eq!(other_row.state, ConversationState::Assigned { agent: id("a1") });
    w.conn.execute_batch("DROP TRIGGER stuck").expect("drop trigger");
    let results = run(&mut w, &counters, vec![assign(c), text(other, None, "f")]);
    assert_eq!(appended(&results[0]).event.seq, Seq(2));
    assert_eq!(appended(&results[1]).event.seq, Seq(4));
    assert_eq!(stored(&w, c).last_seq, Seq(2));
    assert_eq!(
        stored(&w, c).state,
        ConversationState::Assigned { agent: id("a1") }
    );
}

#[test]
fn a_write_by_another_connection_empties_the_cache() {
    let (dir, mut w, counters, c) = fixture();
    assert_eq!(
        appended(&run(&mut w, &counters, vec![text(c, None, "a")])[0])
            .event
            .seq,
        Seq(2)
    );
    let outside = connection(&dir);
    let mut conversation = rows::conversation(&outside, c).expect("read").expect("exists");
    let seq = conversation
        .apply(
            &EventKind::Message {
                body: MessageBody::text("outside"),
            },
            Timestamp(9),
        )
        .expect("apply");
    rows::insert_event(
        &outside,
        &Event::new(
            c,
            seq,
            Timestamp(9),
            Actor::Visitor(id("v1")),
            None,
            EventKind::Message {
                body: MessageBody::text("outside"),
            },
        ),
    )
    .expect("insert");
    rows::update_conversation(&outside, &conversation).expect("update");
    let results = run(&mut w, &counters, vec![text(c, None, "b")]);
    assert_eq!(appended(&results[0]).event.seq, Seq(4));
    assert_eq!(stored(&w, c).last_seq, Seq(4));
    // The outside event took the next position; the writer's event the one after it.
    assert_eq!(positions(&w), vec![(1, 1), (2, 2), (3, 3), (4, 4)]);
}

/// (position, seq) of every stored event, in position order.
fn positions(w: &Writer) -> Vec<(u64, u64)> {
    rows::feed_after(&w.conn, FeedPosition::ZERO, 1_000)
        .expect("feed")
        .into_iter()
        .map(|entry| (entry.position.0, entry.event.seq.0))
        .collect()
}

#[test]
fn feed_positions_follow_commits_through_refusals_and_retries() {
    let (_dir, mut w, counters, c) = fixture();
    let reopen = Op::Append(EventDraft::system(c, EventKind::Reopened, Timestamp(3)));
    // A refused request and a duplicate take no position. (SQLite gives the rowids 1, 2, 3…; the feed only
    // promises their order, these tests pin down that rolled-back rows leave no gaps either.)
    run(
        &mut w,
        &counters,
        vec![
            text(c, Some("k1"), "a"),
            reopen,
            text(c, Some("k1"), "a"),
            text(c, None, "b"),
        ],
    );
    assert_eq!(positions(&w), vec![(1, 1), (2, 2), (3, 3)]);
    // A failing statement sends the batch down the careful path; the rows it rolls back give their rowids
    // back.
    w.conn
        .execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.events WHEN NEW.body = 'refuse' \
             BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;",
        )
        .expect("trigger");
    let results = run(
        &mut w,
        &counters,
        vec![
            text(c, None, "c"),
            text(c, None, "refuse"),
            Op::AppendBatch(vec![
                text_draft(c, None, "d"),
                text_draft(c, None, "refuse"),
                text_draft(c, None, "e"),
            ]),
            Op::Create(NewConversation {
                id: ConversationId::generate(),
                tenant: id("t1"),
                visitor: id("v9"),
                group: id("sales"),
                client_id: id("open"),
                entry: None,
                fields: Default::default(),
                at: Timestamp(4),
            }),
        ],
    );
    assert!(results[1].is_err());
    match &results[2] {
        Ok(Outcome::Batch(batch)) => {
            assert_eq!(batch.len(), 3);
            assert!(batch[1].is_err(), "{:?}", batch[1]);
            assert_eq!(batch[2].as_ref().map(|a| a.event.seq).ok(), Some(Seq(6)));
        }
        other => panic!("expected a batch outcome, got {other:?}"),
    }
    let feed = positions(&w);
    assert_eq!(
        feed.iter().map(|(position, _)| *position).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    // A lost batch gives back its rowids.
    w.conn
        .execute_batch(
            "CREATE TEMP TRIGGER lose BEFORE INSERT ON main.events WHEN NEW.body = 'lose' \
             BEGIN SELECT RAISE(ROLLBACK, 'transaction rolled back by a test trigger'); END;",
        )
        .expect("trigger");
    let results = run(&mut w, &counters, vec![text(c, None, "f"), text(c, None, "lose")]);
    assert!(results.iter().all(Result::is_err));
    run(&mut w, &counters, vec![text(c, None, "g")]);
    let feed = positions(&w);
    assert_eq!(feed.last(), Some(&(8, 7)));
}

fn text_draft(conversation: ConversationId, client_id: Option<&str>, text: &str) -> EventDraft {
    EventDraft::message(
        conversation,
        Actor::Visitor(id("v1")),
        client_id.map(id::<ClientId>),
        MessageBody::text(text),
        Timestamp(2),
    )
}

#[test]
fn reopening_with_the_same_client_id_in_a_batch_sees_its_appends() {
    let dir = tempfile::tempdir().expect("dir");
    let mut w = writer(&dir);
    let counters = Counters::default();
    let new = NewConversation {
        id: ConversationId::generate(),
        tenant: id("t1"),
        visitor: id("v1"),
        group: id("sales"),
        client_id: id("open"),
        entry: None,
        fields: Default::default(),
        at: Timestamp(1),
    };
    let c = new.id;
    let results = run(
        &mut w,
        &counters,
        vec![Op::Create(new.clone()), text(c, None, "a"), Op::Create(new)],
    );
    match &results[2] {
        Ok(Outcome::Created(created)) => {
            assert!(!created.created);
            assert_eq!(created.conversation.last_seq, Seq(2));
            assert_eq!(created.event.seq, Seq(1));
        }
        other => panic!("expected the existing conversation, got {other:?}"),
    }
    assert_eq!(stored(&w, c).last_seq, Seq(2));
}
