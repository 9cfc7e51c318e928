//! # kf-store-sqlite
//!
//! A [`Store`](kf_core::store::Store) for the kf live-chat engine — a [`ConversationLog`], a [`Directory`] and
//! [`Settings`] — that keeps everything in one SQLite file (with a bundled SQLite, so nothing needs to be
//! installed).
//!
//! - **Durable acknowledgements.** The database runs in WAL mode with `synchronous=FULL` by default: when
//!   `create_conversation` or `append` returns `Ok`, the event is on disk.
//! - **Group commit.** One writer thread owns the only write connection. It takes every pending write request
//!   (up to [`SqliteConfig::batch_max`]), runs them in one transaction — a refused request (an illegal
//!   transition, an unknown conversation, a failing statement) stores nothing and the rest of the batch goes
//!   ahead — commits once, then answers them all. Durability costs one fsync per batch, not per message.
//!   [`SqliteStore::stats`] shows the batching. [`append_batch`](ConversationLog::append_batch) hands its drafts
//!   to the writer as one request, so they share a transaction.
//! - **Change feed.** An event's feed position is the integer id SQLite gives its row (the rowid: the largest so
//!   far plus one, chosen inside the write transaction), so storing an event costs the feed nothing and
//!   [`feed_after`](ConversationLog::feed_after) reads a range of the table in its own order. SQLite runs one
//!   write transaction at a time, so commit order is position order and a consumer never skips an event that
//!   commits later; rolled-back rows give their ids back unseen. Positions are 1, 2, 3… in practice, but only
//!   their order is promised.
//! - **Cheap appends.** The writer keeps the committed records of up to 16,384 recently used conversations in
//!   memory (a few hundred bytes each), so an append is one `INSERT` (the unique index does the idempotency
//!   check), and each conversation's row is written once per batch, however many of its events the batch holds.
//! - **Reads never wait for the writer.** A small pool of read-only connections serves reads on Tokio's blocking
//!   thread pool; WAL gives each read a snapshot of the last commit.
//! - **Migrations.** The schema is versioned with `PRAGMA user_version` and upgraded in one transaction when the
//!   file is opened; a file written by a newer version is refused ([`SqliteError::FutureSchema`]).
//! - **History search off the write path.** The FTS5 trigram index of message and note texts is kept by a search
//!   indexer thread that follows the log from its stored position ([`SqliteConfig::search_indexer`],
//!   [`SqliteStore::search_index`]); the writer's commit only wakes it. A search reads the index up to that
//!   position and scans the tail after it, in one snapshot, so it is read-your-writes however far the indexer lags.
//! - **Online backups.** [`SqliteStore::backup_to`] writes a consistent copy of the file while the store keeps
//!   writing (SQLite's online backup API over one read snapshot; `docs/operations.md`).
//! - **Epoch.** A random id made when the file is created and kept in it, so cursors stay valid across restarts
//!   and a fresh file tells clients to start over.
//!
//! Seqs are assigned inside the writer's transaction by applying each event to the stored conversation with
//! [`Conversation::apply`](kf_core::model::Conversation::apply): the same state machine as every other store.
//!
//! ```no_run
//! use std::sync::Arc;
//! use kf_core::store::Store;
//! use kf_store_sqlite::{SqliteConfig, SqliteStore, Synchronous};
//!
//! # fn main() -> Result<(), kf_store_sqlite::SqliteError> {
//! let config = SqliteConfig::default().with_synchronous(Synchronous::Full);
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open("data/kf.sqlite3", config)?);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backup;
mod config;
mod error;
mod indexer;
mod reader;
mod rows;
mod schema;
mod stats;
mod uploads;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use kf_core::context::ConversationContext;
use kf_core::entry::EntryPoint;
use kf_core::hours::WorkingHours;
use kf_core::labels::{AttributeDefinition, AttributeObject, Label};
use kf_core::model::{
    Actor, Agent, AgentId, ClientId, Conversation, ConversationId, EntryPointId, Epoch, Event, Group,
    GroupId, SeenMark, Seq, TenantId, Visitor, VisitorId,
};
use kf_core::quick_replies::{QuickReply, QuickReplyScope};
use kf_core::store::{
    Appended, AuditEntry, AuditLog, AuditPage, AuditQuery, ConversationLog, ConversationPage, Created,
    Directory, EventDraft, FeedEntry, FeedPosition, GroupHours, History, HistoryQuery, NewConversation,
    SearchPage, Settings, StoreError, TenantOrigins,
};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

pub use backup::{BACKUP_PAGES_PER_STEP, BackupReport, backup_file, restore_file};
pub use config::{SqliteConfig, Synchronous};
pub use error::{DatabaseError, SqliteError};
pub use schema::SCHEMA_VERSION;

use error::{Db, backend};
use reader::Readers;
use writer::{Batching, Counters, Op, Outcome, Request};

/// How many prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 64;

/// The connection settings SQLite reported for the writer connection right after they were applied.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Pragmas {
    /// `PRAGMA journal_mode` (always `wal`).
    pub journal_mode: String,
    /// `PRAGMA synchronous`.
    pub synchronous: Synchronous,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
    /// `PRAGMA busy_timeout`, in milliseconds.
    pub busy_timeout_ms: i64,
}

/// Counters of the writer thread since the store was opened.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct WriterStats {
    /// Transactions committed (one per batch).
    pub batches: u64,
    /// Write requests answered from committed batches (including refused and duplicate ones).
    pub requests: u64,
    /// Events newly stored (`Created` events and appends that were not duplicates).
    pub events: u64,
    /// Batches whose transaction failed as a whole (every request of it got an error).
    pub failed_batches: u64,
    /// The most requests one committed batch carried.
    pub largest_batch: u64,
}

/// A [`Store`](kf_core::store::Store) backed by one SQLite file. See the [crate docs](crate).
///
/// Dropping it (or calling [`close`](SqliteStore::close)) commits what is queued and stops the writer thread.
pub struct SqliteStore {
    path: PathBuf,
    epoch: Epoch,
    pragmas: Pragmas,
    sender: RwLock<Option<Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Readers,
    counters: Arc<Counters>,
    wake: Arc<indexer::Wake>,
    indexer: Mutex<Option<JoinHandle<()>>>,
    progress: Arc<indexer::Progress>,
}

/// The search indexer's progress since the store was opened ([`SqliteStore::search_index`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct SearchIndexStats {
    /// The change-feed position indexed so far: events up to it are found through the full-text index, those
    /// after it by a scan (searches are correct either way).
    pub position: u64,
    /// Events the indexer has read (those with a text were indexed).
    pub events: u64,
    /// Index transactions it has committed.
    pub batches: u64,
    /// Whether its thread runs (false when [`SqliteConfig::search_indexer`] is off, and after
    /// [`SqliteStore::close`]).
    pub running: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("epoch", &self.epoch)
            .field("pragmas", &self.pragmas)
            .field("closed", &self.is_closed())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed, with any missing parent directories) the database at `path`, migrates its
    /// schema, and starts the writer thread. Blocks while it does so.
    ///
    /// Fails with [`SqliteError::FutureSchema`] for a file written by a newer version of this crate, and with
    /// [`SqliteError::NotWal`] where WAL journaling is impossible (an in-memory database).
    pub fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<SqliteStore, SqliteError> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent).map_err(|source| SqliteError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }

        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).db()?;
        conn.busy_timeout(config.busy_timeout).db()?;
        // Refuse a newer schema before changing anything in the file (the journal mode is persistent).
        schema::check_version(schema::user_version(&conn)?)?;
        let journal_mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .db()?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(SqliteError::NotWal(journal_mode));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;",
            config.synchronous.as_str()
        ))
        .db()?;
        let epoch = schema::migrate(&mut conn)?;
        let pragmas = read_pragmas(&conn)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);

        let mut readers = Vec::with_capacity(config.readers);
        for _ in 0..config.readers {
            let reader = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .db()?;
            reader.busy_timeout(config.busy_timeout).db()?;
            reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            readers.push(reader);
        }

        let (sender, receiver) = std::sync::mpsc::channel();
        let counters = Arc::new(Counters::default());
        let batching = Batching {
            max: config.batch_max,
            window: config.batch_window,
        };
        let wake = Arc::new(indexer::Wake::default());
        let progress = Arc::new(indexer::Progress::default());
        progress
            .position
            .store(indexer::position(&conn).db()?, Ordering::Release);
        let indexer = if config.search_indexer {
            let index_conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .db()?;
            index_conn.busy_timeout(config.busy_timeout).db()?;
            // The index is derived data: a power loss may undo its last transactions, position included.
            index_conn.execute_batch("PRAGMA synchronous = NORMAL").db()?;
            let (wake, progress) = (Arc::clone(&wake), Arc::clone(&progress));
            progress.running.store(true, Ordering::Release);
            Some(
                std::thread::Builder::new()
                    .name("kf-sqlite-indexer".into())
                    .spawn(move || indexer::run(index_conn, wake, progress))
                    .map_err(SqliteError::SpawnIndexer)?,
            )
        } else {
            None
        };
        let writer_counters = Arc::clone(&counters);
        let writer_wake = Arc::clone(&wake);
        let writer = match std::thread::Builder::new()
            .name("kf-sqlite-writer".into())
            .spawn(move || writer::run(conn, receiver, batching, writer_counters, writer_wake))
        {
            Ok(writer) => writer,
            Err(error) => {
                wake.stop();
                if let Some(indexer) = indexer {
                    let _ = indexer.join();
                }
                return Err(SqliteError::SpawnWriter(error));
            }
        };
        tracing::info!(path = %path.display(), epoch = %epoch.0, "opened sqlite store");
        Ok(SqliteStore {
            path,
            epoch,
            pragmas,
            sender: RwLock::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            readers: Readers::new(readers),
            counters,
            wake,
            indexer: Mutex::new(indexer),
            progress,
        })
    }

    /// [`open`](SqliteStore::open) with the default [`SqliteConfig`].
    pub fn open_default(path: impl AsRef<Path>) -> Result<SqliteStore, SqliteError> {
        Self::open(path, SqliteConfig::default())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings SQLite reported for the writer connection.
    pub fn pragmas(&self) -> &Pragmas {
        &self.pragmas
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            batches: c.batches.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// The search indexer's progress: its position against [`feed_head`](ConversationLog::feed_head) is its lag.
    pub fn search_index(&self) -> SearchIndexStats {
        let p = &self.progress;
        SearchIndexStats {
            position: p.position.load(Ordering::Acquire),
            events: p.events.load(Ordering::Relaxed),
            batches: p.batches.load(Ordering::Relaxed),
            running: p.running.load(Ordering::Acquire),
        }
    }

    /// Whether [`close`](SqliteStore::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.sender
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_none()
    }

    /// Stops accepting requests, lets the writer commit and answer everything already queued, and waits for
    /// its thread to end; then stops the search indexer and waits for its thread; closes the read connections. Later calls on the store fail with
    /// [`StoreError::Closed`]. Blocks the calling thread for at most one commit; calling it again does nothing.
    pub fn close(&self) -> Result<(), SqliteError> {
        drop(
            self.sender
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take(),
        );
        self.readers.close();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let written = match writer {
            Some(writer) => writer.join().map_err(|_| SqliteError::WriterPanicked),
            None => Ok(()),
        };
        // Then the indexer: it stops after its current batch (what it has not indexed, it indexes at the next
        // open; searches scan it meanwhile).
        self.wake.stop();
        let indexer = self
            .indexer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let indexed = match indexer {
            Some(indexer) => indexer.join().map_err(|_| SqliteError::IndexerPanicked),
            None => Ok(()),
        };
        self.progress.running.store(false, Ordering::Release);
        written?;
        indexed?;
        tracing::info!(path = %self.path.display(), "closed sqlite store");
        Ok(())
    }

    /// Queues a write and waits for its answer, which comes after the commit.
    async fn write(&self, op: Op) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let sender = self
                .sender
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let sender = sender.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(Request { op, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(SqliteError::WriterStopped.into()),
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "closing the sqlite store failed");
        }
    }
}

fn read_pragmas(conn: &Connection) -> Result<Pragmas, SqliteError> {
    let journal_mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).db()?;
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).db()?;
    let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0)).db()?;
    let busy_timeout_ms: i64 = conn.query_row("PRAGMA busy_timeout", [], |row| row.get(0)).db()?;
    let synchronous = Synchronous::from_pragma(synchronous)
        .ok_or_else(|| error::database(rusqlite::Error::IntegralValueOutOfRange(0, synchronous)))?;
    Ok(Pragmas {
        journal_mode,
        synchronous,
        foreign_keys: foreign_keys != 0,
        busy_timeout_ms,
    })
}

/// A failure shared by every draft of a failed `append_batch`, after the first (which gets the error itself).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SameFailure(String);

/// The same error again, for another draft of a failed `append_batch`.
fn copy_of(error: &StoreError) -> StoreError {
    match error {
        StoreError::Closed => StoreError::Closed,
        StoreError::ConversationNotFound(id) => StoreError::ConversationNotFound(*id),
        StoreError::Invalid(message) => StoreError::Invalid(message.clone()),
        StoreError::Conflict(message) => StoreError::Conflict(message.clone()),
        other => StoreError::backend(SameFailure(other.to_string())),
    }
}

fn unexpected(outcome: Outcome) -> StoreError {
    StoreError::Invalid(format!("internal error: unexpected writer outcome {outcome:?}"))
}

#[async_trait]
impl ConversationLog for SqliteStore {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        Ok(self.epoch.clone())
    }

    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
        match self.write(Op::Create(new)).await? {
            Outcome::Created(created) => Ok(created),
            other => Err(unexpected(other)),
        }
    }

    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        match self.write(Op::Append(draft)).await? {
            Outcome::Appended(appended) => Ok(appended),
            other => Err(unexpected(other)),
        }
    }

    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.readers
            .run(move |conn| {
                let events = rows::events_after(conn, conversation, after, limit).map_err(backend)?;
                if events.is_empty() && !rows::conversation_exists(conn, conversation).map_err(backend)? {
                    return Err(StoreError::ConversationNotFound(conversation));
                }
                Ok(events)
            })
            .await
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.readers
            .run(move |conn| rows::conversation(conn, id).map_err(backend))
            .await
    }

    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let (tenant, visitor) = (tenant.clone(), visitor.clone());
        self.readers
            .run(move |conn| rows::conversations_of_visitor(conn, &tenant, &visitor).map_err(backend))
            .await
    }

    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let (tenant, agent) = (tenant.clone(), agent.clone());
        self.readers
            .run(move |conn| rows::conversations_of_agent(conn, &tenant, &agent).map_err(backend))
            .await
    }

    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.readers
            .run(|conn| rows::open_conversations(conn).map_err(backend))
            .await
    }

    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
        match self.write(Op::PutContext(Box::new(context))).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError> {
        self.readers
            .run(move |conn| rows::context(conn, conversation).map_err(backend))
            .await
    }

    async fn record_seen(&self, marks: Vec<SeenMark>) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        match self.write(Op::RecordSeen(marks)).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn seen(&self, conversations: &[ConversationId]) -> Result<Vec<SeenMark>, StoreError> {
        let conversations = conversations.to_vec();
        self.readers
            .run(move |conn| {
                let mut marks = Vec::new();
                for conversation in conversations {
                    marks.extend(rows::seen(conn, conversation).map_err(backend)?);
                }
                Ok(marks)
            })
            .await
    }

    async fn append_batch(&self, drafts: Vec<EventDraft>) -> Vec<Result<Appended, StoreError>> {
        let count = drafts.len();
        if count == 0 {
            return Vec::new();
        }
        match self.write(Op::AppendBatch(drafts)).await {
            Ok(Outcome::Batch(results)) if results.len() == count => results,
            Ok(other) => {
                let error = unexpected(other);
                (0..count)
                    .map(|_| Err(StoreError::Invalid(error.to_string())))
                    .collect()
            }
            // The whole group failed (closed store, failed commit): every draft gets the error.
            Err(error) => {
                let mut results: Vec<_> = (1..count).map(|_| Err(copy_of(&error))).collect();
                results.push(Err(error));
                results
            }
        }
    }

    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError> {
        let (author, client_id) = (author.clone(), client_id.clone());
        self.readers
            .run(move |conn| {
                rows::event_by_client_id(conn, conversation, &author, &client_id).map_err(backend)
            })
            .await
    }

    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.readers
            .run(move |conn| rows::feed_after(conn, after, limit).map_err(backend))
            .await
    }

    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        self.readers
            .run(|conn| rows::feed_head(conn).map(FeedPosition).map_err(backend))
            .await
    }
}

#[async_trait]
impl Directory for SqliteStore {
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError> {
        match self.write(Op::PutVisitor(visitor)).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn visitor(&self, tenant: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.readers
            .run(move |conn| rows::visitor(conn, &tenant, &id).map_err(backend))
            .await
    }

    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError> {
        match self.write(Op::PutAgent(agent)).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.readers
            .run(move |conn| rows::agent(conn, &tenant, &id).map_err(backend))
            .await
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.readers.run(|conn| rows::agents(conn).map_err(backend)).await
    }

    async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> Result<bool, StoreError> {
        let op = Op::DeleteAgent {
            tenant: tenant.clone(),
            id: id.clone(),
        };
        match self.write(op).await? {
            Outcome::Deleted(found) => Ok(found),
            other => Err(unexpected(other)),
        }
    }

    async fn put_group(&self, group: Group) -> Result<(), StoreError> {
        match self.write(Op::PutGroup(group)).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.readers.run(|conn| rows::groups(conn).map_err(backend)).await
    }

    async fn delete_group(&self, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError> {
        let op = Op::DeleteGroup {
            tenant: tenant.clone(),
            id: id.clone(),
        };
        match self.write(op).await? {
            Outcome::Deleted(found) => Ok(found),
            other => Err(unexpected(other)),
        }
    }

    async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError> {
        match self.write(Op::PutEntryPoint(entry)).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Result<bool, StoreError> {
        let op = Op::DeleteEntryPoint {
            tenant: tenant.clone(),
            id: id.clone(),
        };
        match self.write(op).await? {
            Outcome::Deleted(found) => Ok(found),
            other => Err(unexpected(other)),
        }
    }

    async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError> {
        self.readers
            .run(|conn| rows::entry_points(conn).map_err(backend))
            .await
    }
}

#[async_trait]
impl Settings for SqliteStore {
    async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), StoreError> {
        let op = Op::PutGroupHours {
            tenant: tenant.clone(),
            group: group.clone(),
            hours: hours.map(Box::new),
        };
        match self.write(op).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError> {
        self.readers
            .run(|conn| rows::group_hours(conn).map_err(backend))
            .await
    }

    async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError> {
        match self.write(Op::PutQuickReply(reply)).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let op = Op::DeleteQuickReply {
            tenant: tenant.clone(),
            id: id.to_owned(),
        };
        match self.write(op).await? {
            Outcome::Deleted(found) => Ok(found),
            other => Err(unexpected(other)),
        }
    }

    async fn quick_reply(&self, tenant: &TenantId, id: &str) -> Result<Option<QuickReply>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.readers
            .run(move |conn| rows::quick_reply(conn, &tenant, &id).map_err(backend))
            .await
    }

    async fn quick_replies(
        &self,
        tenant: &TenantId,
        scope: &QuickReplyScope,
    ) -> Result<Vec<QuickReply>, StoreError> {
        let (tenant, scope) = (tenant.clone(), scope.clone());
        self.readers
            .run(move |conn| rows::quick_replies(conn, &tenant, &scope).map_err(backend))
            .await
    }

    async fn put_label(&self, label: Label) -> Result<(), StoreError> {
        match self.write(Op::PutLabel(label)).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_label(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        let op = Op::DeleteLabel {
            tenant: tenant.clone(),
            name: name.to_owned(),
        };
        match self.write(op).await? {
            Outcome::Deleted(found) => Ok(found),
            other => Err(unexpected(other)),
        }
    }

    async fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .run(move |conn| rows::labels(conn, &tenant).map_err(backend))
            .await
    }

    async fn put_attribute_definition(&self, definition: AttributeDefinition) -> Result<(), StoreError> {
        match self.write(Op::PutAttributeDefinition(definition)).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_attribute_definition(
        &self,
        tenant: &TenantId,
        object: AttributeObject,
        key: &str,
    ) -> Result<bool, StoreError> {
        let op = Op::DeleteAttributeDefinition {
            tenant: tenant.clone(),
            object,
            key: key.to_owned(),
        };
        match self.write(op).await? {
            Outcome::Deleted(found) => Ok(found),
            other => Err(unexpected(other)),
        }
    }

    async fn attribute_definitions(&self, tenant: &TenantId) -> Result<Vec<AttributeDefinition>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .run(move |conn| rows::attribute_definitions(conn, &tenant).map_err(backend))
            .await
    }

    async fn put_allowed_origins(&self, tenant: &TenantId, origins: Vec<String>) -> Result<(), StoreError> {
        let op = Op::PutAllowedOrigins {
            tenant: tenant.clone(),
            origins,
        };
        match self.write(op).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn allowed_origins(&self) -> Result<Vec<TenantOrigins>, StoreError> {
        self.readers
            .run(|conn| rows::allowed_origins(conn).map_err(backend))
            .await
    }
}

/// Search and export through the read pool, over the full-text index of schema 9 and the tail the indexer has not reached (see `rows::history`): a
/// page is one statement on one read connection, so an export holds one page at a time.
#[async_trait]
impl History for SqliteStore {
    async fn search(&self, query: &HistoryQuery) -> Result<SearchPage, StoreError> {
        query.check()?;
        let query = query.clone();
        self.readers.run(move |conn| rows::search(conn, &query)).await
    }

    async fn conversations(&self, query: &HistoryQuery) -> Result<ConversationPage, StoreError> {
        query.check()?;
        let query = query.clone();
        self.readers
            .run(move |conn| rows::search_conversations(conn, &query))
            .await
    }

    /// The indexer's committed position (with the indexer off, where it stopped: searches scan the rest).
    fn indexed_position(&self) -> Option<FeedPosition> {
        Some(FeedPosition(self.progress.position.load(Ordering::Acquire)))
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, entry: AuditEntry) -> Result<u64, StoreError> {
        match self.write(Op::AppendAudit(Box::new(entry))).await? {
            Outcome::Id(id) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    async fn audit_entries(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        query.page_size()?;
        let query = query.clone();
        self.readers
            .run(move |conn| rows::audit_entries(conn, &query))
            .await
    }
}
