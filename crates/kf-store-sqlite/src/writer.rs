//! The writer thread: one connection, group commit.
//!
//! Write requests arrive on a channel. The writer takes everything pending (up to `batch_max`, waiting up to
//! `batch_window` for more), runs the batch in one `BEGIN IMMEDIATE` transaction with a savepoint around each
//! request (a refused request is rolled back alone), commits once and only then answers every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use kf_core::model::{Actor, Agent, Conversation, Event, EventKind, Group, Seq, Visitor};
use kf_core::store::{Appended, Created, EventDraft, NewConversation, StoreError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::backend;
use crate::{SqliteError, rows};

/// A write operation.
#[derive(Debug)]
pub(crate) enum Op {
    Create(NewConversation),
    Append(EventDraft),
    PutVisitor(Visitor),
    PutAgent(Agent),
    PutGroup(Group),
}

/// The result of a write operation.
#[derive(Debug)]
pub(crate) enum Outcome {
    Created(Created),
    Appended(Appended),
    Done,
}

impl Outcome {
    /// Events newly stored by this outcome.
    fn new_events(&self) -> u64 {
        match self {
            Outcome::Created(created) => u64::from(created.created),
            Outcome::Appended(appended) => u64::from(!appended.duplicate),
            Outcome::Done => 0,
        }
    }
}

/// A write request and where to send its answer.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// Counters the writer keeps.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
}

/// How batches are formed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batching {
    pub(crate) max: usize,
    pub(crate) window: Duration,
}

/// The writer thread's body: runs until every sender is gone and the queue is drained.
pub(crate) fn run(
    conn: Connection,
    requests: Receiver<Request>,
    batching: Batching,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(batching.max);
    while let Ok(first) = requests.recv() {
        batch.push(first);
        gather(&requests, &mut batch, batching);
        commit(&conn, &mut batch, &counters);
    }
    tracing::debug!("sqlite writer stopped");
}

/// Adds whatever is pending to the batch, waiting up to the window for more.
fn gather(requests: &Receiver<Request>, batch: &mut Vec<Request>, batching: Batching) {
    while batch.len() < batching.max {
        match requests.try_recv() {
            Ok(request) => batch.push(request),
            Err(_) => break,
        }
    }
    if batching.window.is_zero() {
        return;
    }
    let deadline = Instant::now() + batching.window;
    while batch.len() < batching.max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match requests.recv_timeout(left) {
            Ok(request) => batch.push(request),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// Runs a batch in one transaction and answers its requests after the commit.
fn commit(conn: &Connection, batch: &mut Vec<Request>, counters: &Counters) {
    match run_batch(conn, batch) {
        Ok(results) => {
            let events: u64 = results
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(Outcome::new_events)
                .sum();
            let size = u64::try_from(batch.len()).unwrap_or(u64::MAX);
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters.requests.fetch_add(size, Ordering::Relaxed);
            counters.events.fetch_add(events, Ordering::Relaxed);
            counters.largest_batch.fetch_max(size, Ordering::Relaxed);
            for (request, result) in batch.drain(..).zip(results) {
                // The caller may have given up waiting; the write stands anyway.
                let _ = request.reply.send(result);
            }
        }
        Err(cause) => {
            if !conn.is_autocommit()
                && let Err(error) = conn.execute_batch("ROLLBACK")
            {
                tracing::error!(%error, "sqlite rollback after a failed batch failed");
            }
            tracing::warn!(error = %cause, requests = batch.len(), "sqlite group commit failed");
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
            let cause: Arc<dyn std::error::Error + Send + Sync> = Arc::from(cause);
            for request in batch.drain(..) {
                let _ = request
                    .reply
                    .send(Err(SqliteError::Batch(Arc::clone(&cause)).into()));
            }
        }
    }
}

/// Executes one of the fixed transaction-control statements.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The batch's transaction. `Err` means nothing of the batch is stored.
fn run_batch(
    conn: &Connection,
    batch: &[Request],
) -> Result<Vec<Result<Outcome, StoreError>>, Box<dyn std::error::Error + Send + Sync>> {
    control(conn, "BEGIN IMMEDIATE")?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        control(conn, "SAVEPOINT request")?;
        let result = match apply(conn, &request.op) {
            // SQLite rolled the whole transaction back (a full disk, an I/O error): the batch is lost.
            Err(error) if conn.is_autocommit() => return Err(Box::new(error)),
            Err(error) => {
                control(conn, "ROLLBACK TO request")?;
                Err(error)
            }
            ok => ok,
        };
        control(conn, "RELEASE request")?;
        results.push(result);
    }
    control(conn, "COMMIT")?;
    Ok(results)
}

fn apply(conn: &Connection, op: &Op) -> Result<Outcome, StoreError> {
    match op {
        Op::Create(new) => create(conn, new).map(Outcome::Created),
        Op::Append(draft) => append(conn, draft).map(Outcome::Appended),
        Op::PutVisitor(visitor) => rows::put_visitor(conn, visitor).map(|()| Outcome::Done),
        Op::PutAgent(agent) => rows::put_agent(conn, agent).map(|()| Outcome::Done),
        Op::PutGroup(group) => rows::put_group(conn, group).map(|()| Outcome::Done),
    }
}

fn create(conn: &Connection, new: &NewConversation) -> Result<Created, StoreError> {
    let opened =
        rows::conversation_opened_by(conn, &new.tenant, &new.visitor, &new.client_id).map_err(backend)?;
    if let Some(conversation) = opened {
        let event = rows::event_at(conn, conversation.id, Seq(1))?
            .ok_or(StoreError::ConversationNotFound(conversation.id))?;
        return Ok(Created {
            conversation,
            event,
            created: false,
        });
    }
    if rows::conversation_exists(conn, new.id).map_err(backend)? {
        return Err(StoreError::Invalid(format!(
            "conversation {} already exists",
            new.id
        )));
    }
    let conversation = Conversation::new(
        new.id,
        new.tenant.clone(),
        new.visitor.clone(),
        new.group.clone(),
        new.at,
    );
    let event = Event {
        conversation: new.id,
        seq: Seq(1),
        at: new.at,
        author: Actor::Visitor(new.visitor.clone()),
        client_id: Some(new.client_id.clone()),
        data: EventKind::Created {
            group: new.group.clone(),
        },
    };
    rows::insert_conversation(conn, &conversation, &new.client_id)?;
    rows::insert_event(conn, &event)?;
    Ok(Created {
        conversation,
        event,
        created: true,
    })
}

fn append(conn: &Connection, draft: &EventDraft) -> Result<Appended, StoreError> {
    let mut conversation = rows::conversation(conn, draft.conversation)
        .map_err(backend)?
        .ok_or(StoreError::ConversationNotFound(draft.conversation))?;
    if let Some(client_id) = &draft.client_id
        && let Some(event) =
            rows::event_by_client_id(conn, draft.conversation, &draft.author, client_id).map_err(backend)?
    {
        return Ok(Appended {
            event,
            conversation,
            duplicate: true,
        });
    }
    let seq = conversation.apply(&draft.data, draft.at)?;
    let event = Event {
        conversation: draft.conversation,
        seq,
        at: draft.at,
        author: draft.author.clone(),
        client_id: draft.client_id.clone(),
        data: draft.data.clone(),
    };
    rows::insert_event(conn, &event)?;
    rows::update_conversation(conn, &conversation)?;
    Ok(Appended {
        event,
        conversation,
        duplicate: false,
    })
}

#[cfg(test)]
mod tests {
    use kf_core::model::{ClientId, ConversationId, MessageBody, Timestamp};
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

    type Answer = oneshot::Receiver<Result<Outcome, StoreError>>;

    fn request(op: Op) -> (Request, Answer) {
        let (reply, answer) = oneshot::channel();
        (Request { op, reply }, answer)
    }

    fn run(conn: &Connection, counters: &Counters, ops: Vec<Op>) -> Vec<Result<Outcome, StoreError>> {
        let (mut batch, answers): (Vec<_>, Vec<_>) = ops.into_iter().map(request).unzip();
        commit(conn, &mut batch, counters);
        answers
            .into_iter()
            .map(|mut answer| answer.try_recv().expect("answered"))
            .collect()
    }

    fn open(conn: &Connection, counters: &Counters) -> ConversationId {
        let new = NewConversation {
            id: ConversationId::generate(),
            tenant: id("t1"),
            visitor: id("v1"),
            group: id("sales"),
            client_id: id("open"),
            at: Timestamp(1),
        };
        match run(conn, counters, vec![Op::Create(new)]).pop() {
            Some(Ok(Outcome::Created(created))) => created.conversation.id,
            other => panic!("create failed: {other:?}"),
        }
    }

    fn text(conversation: ConversationId, client_id: Option<&str>, text: &str) -> Op {
        Op::Append(EventDraft {
            conversation,
            author: Actor::Visitor(id("v1")),
            client_id: client_id.map(id::<ClientId>),
            at: Timestamp(2),
            data: EventKind::Message {
                body: MessageBody::text(text),
            },
        })
    }

    fn log_len(conn: &Connection, conversation: ConversationId) -> usize {
        rows::events_after(conn, conversation, Seq::ZERO, 100)
            .expect("events")
            .len()
    }

    #[test]
    fn a_batch_commits_around_a_refused_request() {
        let dir = tempfile::tempdir().expect("dir");
        let conn = connection(&dir);
        let counters = Counters::default();
        let c = open(&conn, &counters);
        let closed = Op::Append(EventDraft {
            conversation: c,
            author: Actor::System,
            client_id: None,
            at: Timestamp(3),
            data: EventKind::Reopened,
        });
        let results = run(
            &conn,
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
        assert_eq!(log_len(&conn, c), 3);
        assert_eq!(counters.batches.load(Ordering::Relaxed), 2);
        assert_eq!(counters.events.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_failing_statement_is_rolled_back_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let conn = connection(&dir);
        let counters = Counters::default();
        let c = open(&conn, &counters);
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.events WHEN NEW.body = 'refuse' \
             BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;",
        )
        .expect("trigger");
        let results = run(
            &conn,
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
        assert_eq!(log_len(&conn, c), 3);
    }

    #[test]
    fn a_lost_transaction_fails_the_whole_batch() {
        let dir = tempfile::tempdir().expect("dir");
        let conn = connection(&dir);
        let counters = Counters::default();
        let c = open(&conn, &counters);
        conn.execute_batch(
            "CREATE TEMP TRIGGER lose BEFORE INSERT ON main.events WHEN NEW.body = 'lose' \
             BEGIN SELECT RAISE(ROLLBACK, 'transaction rolled back by a test trigger'); END;",
        )
        .expect("trigger");
        let results = run(
            &conn,
            &counters,
            vec![text(c, None, "a"), text(c, None, "lose"), text(c, None, "b")],
        );
        for result in &results {
            assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
        }
        assert_eq!(log_len(&conn, c), 1, "nothing of the batch was stored");
        assert_eq!(counters.failed_batches.load(Ordering::Relaxed), 1);
        assert!(conn.is_autocommit());
        // The writer carries on with the next batch.
        let results = run(&conn, &counters, vec![text(c, None, "a")]);
        assert!(matches!(&results[0], Ok(Outcome::Appended(a)) if a.event.seq == Seq(2)));
    }

    #[test]
    fn a_failed_commit_fails_every_request() {
        let dir = tempfile::tempdir().expect("dir");
        let conn = connection(&dir);
        let counters = Counters::default();
        let c = open(&conn, &counters);
        // A deferred foreign key is only checked at COMMIT, which then fails.
        conn.execute_batch(
            "CREATE TEMP TABLE parent (id TEXT PRIMARY KEY); \
             CREATE TEMP TABLE child (parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED); \
             CREATE TEMP TRIGGER orphan AFTER INSERT ON main.events WHEN NEW.body = 'orphan' \
             BEGIN INSERT INTO child VALUES ('missing'); END;",
        )
        .expect("setup");
        let results = run(
            &conn,
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
        assert!(conn.is_autocommit(), "the failed transaction was rolled back");
        assert_eq!(log_len(&conn, c), 1);
        assert_eq!(counters.failed_batches.load(Ordering::Relaxed), 1);
    }
}
