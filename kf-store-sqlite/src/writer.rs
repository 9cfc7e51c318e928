//! The writer thread: one connection, group commit.
//!
//! Write requests arrive on a channel. The writer takes everything pending (up to `batch_max`, waiting up to
//! `batch_window` for more), runs the batch in one `BEGIN IMMEDIATE` transaction, commits once and only then
//! answers every request. A refused request (an illegal transition, an unknown conversation, a failing
//! statement) stores nothing and leaves the rest of its batch alone.
//!
//! The hot path, an append, costs one statement: the writer keeps the committed conversation records in a
//! bounded [`Cache`], applies each event to a working copy held for the batch, inserts the event with the
//! idempotency check left to the unique index (`ON CONFLICT DO NOTHING`), and writes each changed conversation
//! row once, just before the commit. An append needs no savepoint: its only statement either applies or is
//! undone by SQLite alone (else see below), and the working copy only changes after it applied. Requests that
//! run several statements (opening a conversation) keep a savepoint each. If an append's statement or the
//! writing of the conversation rows fails (and SQLite did not end the transaction), the batch is rolled back
//! and run again the careful way: a savepoint per request and the conversation row read and written by every
//! append, so that only the requests concerned fail and no partial effect of a statement is ever committed.
//!
//! The writer does nothing for the change feed: an event's feed position is the rowid SQLite gives its row
//! (the largest so far plus one, inside the write transaction), so commit order is position order and a
//! reader's snapshot always holds a prefix of the feed (see `rows::FEED_AFTER`).
//!
//! The cache only ever holds what was committed: a batch's working copies reach it after its `COMMIT` returned;
//! a failed batch drops them and empties the cache. Should another connection write the file,
//! `PRAGMA data_version` changes and the cache is emptied before the next batch uses it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use kf_core::context::ConversationContext;
use kf_core::entry::EntryPoint;
use kf_core::hours::WorkingHours;
use kf_core::labels::{AttributeDefinition, AttributeObject, Label};
use kf_core::model::{
    Agent, AgentId, Attachment, AttachmentId, Conversation, ConversationId, EntryPointId, Event, EventKind,
    Group, GroupId, SeenMark, Seq, TenantId, Visitor,
};
use kf_core::quick_replies::QuickReply;
use kf_core::store::{
    Appended, AuditEntry, Created, EventDraft, NewConversation, StatsCheckpoint, StoreError, Upload,
};
use kf_core::telemetry::names;
use metrics::{Counter, Histogram};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::backend;
use crate::{SqliteError, rows};

/// How many conversation records the writer keeps in memory at most.
pub(crate) const CACHE_CAPACITY: usize = 16 * 1024;

/// A write operation.
#[derive(Debug)]
pub(crate) enum Op {
    Create(NewConversation),
    Append(EventDraft),
    /// Several appends, run in order in one transaction, each as `Append` would.
    AppendBatch(Vec<EventDraft>),
    PutVisitor(Visitor),
    PutAgent(Agent),
    DeleteAgent {
        tenant: TenantId,
        id: AgentId,
    },
    PutGroup(Group),
    DeleteGroup {
        tenant: TenantId,
        id: GroupId,
    },
    /// Boxed: an entry holds two JSON objects.
    AppendAudit(Box<AuditEntry>),
    PutAllowedOrigins {
        tenant: TenantId,
        origins: Vec<String>,
    },
    PutGroupHours {
        tenant: TenantId,
        group: GroupId,
        /// Boxed: a schedule is large next to the other requests.
        hours: Option<Box<WorkingHours>>,
    },
    PutContext(Box<ConversationContext>),
    /// Seen marks to raise (a batch the engine coalesced).
    RecordSeen(Vec<SeenMark>),
    PutQuickReply(QuickReply),
    DeleteQuickReply {
        tenant: TenantId,
        id: String,
    },
    PutEntryPoint(EntryPoint),
    DeleteEntryPoint {
        tenant: TenantId,
        id: EntryPointId,
    },
    PutLabel(Label),
    SaveStatsCheckpoint(Box<StatsCheckpoint>),
    DeleteLabel {
        tenant: TenantId,
        name: String,
    },
    PutAttributeDefinition(AttributeDefinition),
    DeleteAttributeDefinition {
        tenant: TenantId,
        object: AttributeObject,
        key: String,
    },
    /// Boxed: an upload is large next to the other requests.
    BeginUpload(Box<Upload>),
    FinishUpload {
        attachment: Box<Attachment>,
        limit: u64,
    },
    CommitUploads(Vec<AttachmentId>),
    DeleteUpload(AttachmentId),
}

/// The result of a write operation.
#[derive(Debug)]
pub(crate) enum Outcome {
    Created(Created),
    Appended(Appended),
    /// One result per draft of an `AppendBatch`.
    Batch(Vec<Result<Appended, StoreError>>),
    Done,
    /// Whether a delete found its record.
    Deleted(bool),
    /// Whether an upload was finished (not over its conversation's limit).
    Finished(bool),
    /// The id a new row was given.
    Id(u64),
}

impl Outcome {
    /// Events newly stored by this outcome.
    fn new_events(&self) -> u64 {
        match self {
            Outcome::Created(created) => u64::from(created.created),
            Outcome::Appended(appended) => u64::from(!appended.duplicate),
            Outcome::Batch(results) => results
                .iter()
                .filter(|result| matches!(result, Ok(appended) if !appended.duplicate))
                .count() as u64,
            Outcome::Done | Outcome::Deleted(_) | Outcome::Finished(_) | Outcome::Id(_) => 0,
        }
    }
}

/// A write request and where to send its answer.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// Counters the writer keeps ([`SqliteStore::stats`](crate::SqliteStore::stats)), and the metric series it
/// publishes the same batches to (`docs/observability.md`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
    series: Series,
}

/// `kf_store_commit_seconds`, `kf_store_batch_size` and `kf_store_batch_failures_total`, label `store="sqlite"`,
/// registered when the store is opened.
#[derive(Debug)]
struct Series {
    commit: Histogram,
    batch_size: Histogram,
    failures: Counter,
}

impl Default for Series {
    fn default() -> Self {
        let labels = [("store", "sqlite")];
        Self {
            commit: metrics::histogram!(names::STORE_COMMIT, &labels),
            batch_size: metrics::histogram!(names::STORE_BATCH_SIZE, &labels),
            failures: metrics::counter!(names::STORE_BATCH_FAILURES, &labels),
        }
    }
}

impl Counters {
    /// A batch of `size` requests committed `events` new events in `took`.
    fn committed(&self, size: u64, events: u64, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(size, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        self.largest_batch.fetch_max(size, Ordering::Relaxed);
        self.series.commit.record(took.as_secs_f64());
        self.series.batch_size.record(size as f64);
    }

    /// A batch failed as a whole.
    fn failed(&self) {
        self.failed_batches.fetch_add(1, Ordering::Relaxed);
        self.series.failures.increment(1);
    }
}

/// How batches are formed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batching {
    pub(crate) max: usize,
    pub(crate) window: Duration,
}

/// Committed conversation records, bounded: two generations of at most half the capacity each. A hit in the
/// older generation moves the record to the younger one; when the younger one is full it becomes the older one
/// and the previous older one is dropped, so the records used least recently go first.
#[derive(Debug)]
pub(crate) struct Cache {
    young: HashMap<ConversationId, Conversation>,
    old: HashMap<ConversationId, Conversation>,
    half: usize,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
            half: (capacity / 2).max(1),
        }
    }

    fn get(&mut self, id: ConversationId) -> Option<&Conversation> {
        if !self.young.contains_key(&id) {
            let conversation = self.old.remove(&id)?;
            self.insert(conversation);
        }
        self.young.get(&id)
    }

    fn insert(&mut self, conversation: Conversation) {
        if self.young.len() >= self.half && !self.young.contains_key(&conversation.id) {
            self.old = std::mem::take(&mut self.young);
        }
        self.old.remove(&conversation.id);
        self.young.insert(conversation.id, conversation);
    }

    fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

/// A conversation as the current batch sees it.
#[derive(Debug)]
struct Working {
    conversation: Conversation,
    /// The batch changed its state or last agent (not only its seq and time): its row is written before the
    /// commit.
    state_changed: bool,
}

/// Why a batch's transaction did not commit.
enum Failure {
    /// Nothing of the batch is stored; its requests fail.
    Lost(Box<dyn std::error::Error + Send + Sync>),
    /// Nothing of the batch is stored; running it again with a savepoint per request isolates the culprit.
    Retry(Box<dyn std::error::Error + Send + Sync>),
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Lost(Box::new(error))
    }
}

type Results = Vec<Result<Outcome, StoreError>>;

/// The writer thread's connection and what it remembers between batches.
pub(crate) struct Writer {
    conn: Connection,
    cache: Cache,
    /// `PRAGMA data_version` after the last batch: it changes when another connection commits.
    data_version: Option<i64>,
    /// The current batch's conversations, by id.
    working: HashMap<ConversationId, Working>,
}

/// The writer thread's body: runs until every sender is gone and the queue is drained.
pub(crate) fn run(
    conn: Connection,
    requests: Receiver<Request>,
    batching: Batching,
    counters: Arc<Counters>,
    wake: Arc<crate::indexer::Wake>,
) {
    let mut writer = Writer::new(conn, CACHE_CAPACITY);
    let mut batch = Vec::with_capacity(batching.max);
    while let Ok(first) = requests.recv() {
        batch.push(first);
        gather(&requests, &mut batch, batching);
        writer.commit(&mut batch, &counters);
        // The search indexer follows the log; this is all the commit does for it.
        wake.notify();
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

/// Executes one of the fixed transaction-control statements.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

impl Writer {
    pub(crate) fn new(conn: Connection, cache_capacity: usize) -> Self {
        Self {
            conn,
            cache: Cache::new(cache_capacity),
            data_version: None,
            working: HashMap::new(),
        }
    }

    /// Runs a batch in one transaction and answers its requests after the commit.
    pub(crate) fn commit(&mut self, batch: &mut Vec<Request>, counters: &Counters) {
        let started = Instant::now();
        let result = match self.run_batch(batch) {
            Err(Failure::Retry(cause)) => {
                self.rollback();
                tracing::debug!(error = %cause, "sqlite batch runs again with a savepoint per request");
                self.run_careful(batch)
            }
            Err(Failure::Lost(cause)) => Err(cause),
            Ok(results) => Ok(results),
        };
        match result {
            Ok(results) => {
                let events: u64 = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .map(Outcome::new_events)
                    .sum();
                let size = u64::try_from(batch.len()).unwrap_or(u64::MAX);
                counters.committed(size, events, started.elapsed());
                for (request, result) in batch.drain(..).zip(results) {
                    // The caller may have given up waiting; the write stands anyway.
                    let _ = request.reply.send(result);
                }
            }
            Err(cause) => {
                self.rollback();
                tracing::warn!(error = %cause, requests = batch.len(), "sqlite group commit failed");
                counters.failed();
                let cause: Arc<dyn std::error::Error + Send + Sync> = Arc::from(cause);
                for request in batch.drain(..) {
                    let _ = request
                        .reply
                        .send(Err(SqliteError::Batch(Arc::clone(&cause)).into()));
                }
            }
        }
    }

    /// Ends a failed transaction, if SQLite has not already, and forgets the batch's working copies and the
    /// cache: after a failed `COMMIT` whether the batch reached the file is not certain, so the records are read
    /// again from the file.
    fn rollback(&mut self) {
        self.working.clear();
        self.cache.clear();
        if !self.conn.is_autocommit()
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "sqlite rollback after a failed batch failed");
        }
    }

    /// Starts the batch's transaction and empties the cache if another connection wrote the file since.
    fn begin(&mut self) -> rusqlite::Result<()> {
        control(&self.conn, "BEGIN IMMEDIATE")?;
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        if self.data_version != Some(version) {
            self.cache.clear();
            self.data_version = Some(version);
        }
        Ok(())
    }

    /// The batch's transaction, fast path: savepoints only around multi-statement requests, conversation rows
    /// written once each before the commit.
    fn run_batch(&mut self, batch: &[Request]) -> Result<Results, Failure> {
        self.working.clear();
        self.begin()?;
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let result = match &request.op {
                Op::Append(draft) => self.append_fast(draft)?.map(Outcome::Appended),
                Op::AppendBatch(drafts) => {
                    let mut results = Vec::with_capacity(drafts.len());
                    for draft in drafts {
                        results.push(self.append_fast(draft)?);
                        if self.conn.is_autocommit() {
                            break;
                        }
                    }
                    Ok(Outcome::Batch(results))
                }
                op => {
                    control(&self.conn, "SAVEPOINT request")?;
                    let result = match op {
                        Op::Create(new) => self.create(new),
                        other => apply_record(&self.conn, other),
                    };
                    if result.is_err() && !self.conn.is_autocommit() {
                        control(&self.conn, "ROLLBACK TO request")?;
                    }
                    if !self.conn.is_autocommit() {
                        control(&self.conn, "RELEASE request")?;
                    }
                    result
                }
            };
            // SQLite rolled the whole transaction back (a full disk, an I/O error): the batch is lost.
            if self.conn.is_autocommit() {
                self.working.clear();
                return Err(Failure::Lost(match result {
                    Err(error) => Box::new(error) as Box<dyn std::error::Error + Send + Sync>,
                    Ok(_) => "sqlite ended the transaction".into(),
                }));
            }
            results.push(result);
        }
        // Only a change of state or last agent is written to a conversation's row: its seq and time are read
        // from the log (see `rows::conversation_columns`).
        for working in self.working.values().filter(|w| w.state_changed) {
            if let Err(error) = rows::update_conversation(&self.conn, &working.conversation) {
                if self.conn.is_autocommit() {
                    return Err(Failure::Lost(Box::new(error)));
                }
                return Err(Failure::Retry(Box::new(error)));
            }
        }
        control(&self.conn, "COMMIT")?;
        for (_, working) in self.working.drain() {
            self.cache.insert(working.conversation);
        }
        Ok(results)
    }

    /// The batch's transaction, careful path: a savepoint around every request, and every append reads and
    /// writes its conversation row. Leaves the cache empty (the batch's working copies are not kept).
    fn run_careful(
        &mut self,
        batch: &[Request],
    ) -> Result<Results, Box<dyn std::error::Error + Send + Sync>> {
        self.working.clear();
        self.cache.clear();
        self.begin()?;
        let conn = &self.conn;
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            control(conn, "SAVEPOINT request")?;
            let result = match &request.op {
                Op::Create(new) => create(conn, new, None),
                Op::Append(draft) => append_careful(conn, draft).map(Outcome::Appended),
                Op::AppendBatch(drafts) => Ok(Outcome::Batch(append_batch_careful(conn, drafts)?)),
                other => apply_record(conn, other),
            };
            let result = match result {
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

    /// Loads a conversation into the batch's working set (from the cache, else its row); false if unknown.
    fn load(&mut self, id: ConversationId) -> Result<bool, StoreError> {
        if self.working.contains_key(&id) {
            return Ok(true);
        }
        let conversation = match self.cache.get(id) {
            Some(conversation) => conversation.clone(),
            None => match rows::conversation(&self.conn, id).map_err(backend)? {
                Some(conversation) => conversation,
                None => return Ok(false),
            },
        };
        self.working.insert(
            id,
            Working {
                conversation,
                state_changed: false,
            },
        );
        Ok(true)
    }

    fn create(&mut self, new: &NewConversation) -> Result<Outcome, StoreError> {
        let outcome = create(&self.conn, new, Some(&self.working))?;
        if let Outcome::Created(created) = &outcome
            && created.created
        {
            self.working.insert(
                created.conversation.id,
                Working {
                    conversation: created.conversation.clone(),
                    state_changed: false,
                },
            );
        }
        Ok(outcome)
    }

    /// An append on the fast path. The outer error asks for the batch to run again the careful way: a statement
    /// failed and, unless SQLite undid the whole transaction (checked by the caller), no partial effect of it (a
    /// trigger's) may be kept.
    fn append_fast(&mut self, draft: &EventDraft) -> Result<Result<Appended, StoreError>, Failure> {
        match self.append(draft) {
            Err(StoreError::Backend(error)) if !self.conn.is_autocommit() => Err(Failure::Retry(error)),
            result => Ok(result),
        }
    }

    fn append(&mut self, draft: &EventDraft) -> Result<Appended, StoreError> {
        if !self.load(draft.conversation)? {
            return Err(StoreError::ConversationNotFound(draft.conversation));
        }
        let conn = &self.conn;
        let Some(working) = self.working.get_mut(&draft.conversation) else {
            return Err(StoreError::ConversationNotFound(draft.conversation));
        };
        if let Err(refused) = working.conversation.check(&draft.data) {
            // A repeat of an accepted send is a duplicate even where the event would no longer apply.
            return match duplicate(conn, draft, &working.conversation)? {
                Some(appended) => Ok(appended),
                None => Err(refused.into()),
            };
        }
        // The seq `apply` assigns below, once the event is stored.
        let seq = working.conversation.last_seq.next();
        let event = Event::new(
            draft.conversation,
            seq,
            draft.at,
            draft.author.clone(),
            draft.client_id.clone(),
            draft.data.clone(),
        );
        if !rows::insert_event_unless_sent(conn, &event)? {
            return match duplicate(conn, draft, &working.conversation)? {
                Some(appended) => Ok(appended),
                None => Err(StoreError::Invalid(format!(
                    "internal error: event {seq:?} of conversation {} was neither stored nor found",
                    draft.conversation
                ))),
            };
        }
        // `apply` gives the seq computed above (`last_seq.next()`), and cannot refuse what `check` accepted; were
        // it to, the backend error makes the batch run again the careful way.
        if let Err(refused) = working.conversation.apply(&draft.data, draft.at) {
            return Err(StoreError::backend(refused));
        }
        // Only a message leaves the state and last agent as they were.
        working.state_changed |= !matches!(draft.data, EventKind::Message { .. });
        Ok(Appended {
            event,
            conversation: working.conversation.clone(),
            duplicate: false,
        })
    }
}

/// The event this draft's client id already stored, if any, with the conversation as it stands.
fn duplicate(
    conn: &Connection,
    draft: &EventDraft,
    conversation: &Conversation,
) -> Result<Option<Appended>, StoreError> {
    let Some(client_id) = &draft.client_id else {
        return Ok(None);
    };
    let event =
        rows::event_by_client_id(conn, draft.conversation, &draft.author, client_id).map_err(backend)?;
    Ok(event.map(|event| Appended {
        event,
        conversation: conversation.clone(),
        duplicate: true,
    }))
}

/// A request that writes one record with one statement.
fn apply_record(conn: &Connection, op: &Op) -> Result<Outcome, StoreError> {
    match op {
        Op::PutVisitor(visitor) => rows::put_visitor(conn, visitor).map(|()| Outcome::Done),
        Op::PutAgent(agent) => rows::put_agent(conn, agent).map(|()| Outcome::Done),
        Op::PutGroup(group) => rows::put_group(conn, group).map(|()| Outcome::Done),
        Op::DeleteAgent { tenant, id } => rows::delete_agent(conn, tenant, id).map(Outcome::Deleted),
        Op::DeleteGroup { tenant, id } => rows::delete_group(conn, tenant, id).map(Outcome::Deleted),
        Op::AppendAudit(entry) => rows::append_audit(conn, entry).map(Outcome::Id),
        Op::PutAllowedOrigins { tenant, origins } => {
            rows::put_allowed_origins(conn, tenant, origins).map(|()| Outcome::Done)
        }
        Op::PutGroupHours { tenant, group, hours } => {
            rows::put_group_hours(conn, tenant, group, hours.as_deref()).map(|()| Outcome::Done)
        }
        Op::PutContext(context) => rows::put_context(conn, context).map(|()| Outcome::Done),
        Op::RecordSeen(marks) => rows::record_seen(conn, marks).map(|()| Outcome::Done),
        Op::PutQuickReply(reply) => rows::put_quick_reply(conn, reply).map(|()| Outcome::Done),
        Op::DeleteQuickReply { tenant, id } => {
            rows::delete_quick_reply(conn, tenant, id).map(Outcome::Deleted)
        }
        Op::PutEntryPoint(entry) => rows::put_entry_point(conn, entry).map(|()| Outcome::Done),
        Op::DeleteEntryPoint { tenant, id } => {
            rows::delete_entry_point(conn, tenant, id).map(Outcome::Deleted)
        }
        Op::PutLabel(label) => rows::put_label(conn, label).map(|()| Outcome::Done),
        Op::SaveStatsCheckpoint(checkpoint) => {
            rows::save_stats_checkpoint(conn, checkpoint).map(|()| Outcome::Done)
        }
        Op::DeleteLabel { tenant, name } => rows::delete_label(conn, tenant, name).map(Outcome::Deleted),
        Op::PutAttributeDefinition(definition) => {
            rows::put_attribute_definition(conn, definition).map(|()| Outcome::Done)
        }
        Op::DeleteAttributeDefinition { tenant, object, key } => {
            rows::delete_attribute_definition(conn, tenant, *object, key).map(Outcome::Deleted)
        }
        Op::BeginUpload(upload) => rows::begin_upload(conn, upload).map(|()| Outcome::Done),
        Op::FinishUpload { attachment, limit } => {
            rows::finish_upload(conn, attachment, *limit).map(Outcome::Finished)
        }
        Op::CommitUploads(ids) => rows::commit_uploads(conn, ids).map(|()| Outcome::Done),
        Op::DeleteUpload(id) => rows::delete_upload(conn, id).map(Outcome::Deleted),
        Op::Create(_) | Op::Append(_) | Op::AppendBatch(_) => {
            Err(StoreError::Invalid("internal error: not a record request".into()))
        }
    }
}

/// Opens a conversation, or finds the one this client id opened. `working` holds the batch's newer state of
/// conversations whose rows are not written yet.
fn create(
    conn: &Connection,
    new: &NewConversation,
    working: Option<&HashMap<ConversationId, Working>>,
) -> Result<Outcome, StoreError> {
    let opened =
        rows::conversation_opened_by(conn, &new.tenant, &new.visitor, &new.client_id).map_err(backend)?;
    if let Some(mut conversation) = opened {
        if let Some(working) = working.and_then(|working| working.get(&conversation.id)) {
            conversation = working.conversation.clone();
        }
        let event = rows::event_at(conn, conversation.id, Seq(1))?
            .ok_or(StoreError::ConversationNotFound(conversation.id))?;
        return Ok(Outcome::Created(Created {
            conversation,
            event,
            created: false,
        }));
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
    let event = new.created_event();
    rows::insert_conversation(conn, &conversation, &new.client_id)?;
    rows::insert_event(conn, &event)?;
    Ok(Outcome::Created(Created {
        conversation,
        event,
        created: true,
    }))
}

/// The drafts of an `AppendBatch` on the careful path, each in a savepoint of its own (inside the request's).
/// The outer error means SQLite ended the transaction.
fn append_batch_careful(
    conn: &Connection,
    drafts: &[EventDraft],
) -> Result<Vec<Result<Appended, StoreError>>, Box<dyn std::error::Error + Send + Sync>> {
    let mut results = Vec::with_capacity(drafts.len());
    for draft in drafts {
        control(conn, "SAVEPOINT draft")?;
        let result = match append_careful(conn, draft) {
            Err(error) if conn.is_autocommit() => return Err(Box::new(error)),
            Err(error) => {
                control(conn, "ROLLBACK TO draft")?;
                Err(error)
            }
            ok => ok,
        };
        control(conn, "RELEASE draft")?;
        results.push(result);
    }
    Ok(results)
}

/// An append that reads and writes its conversation row itself (the careful path).
fn append_careful(conn: &Connection, draft: &EventDraft) -> Result<Appended, StoreError> {
    let mut conversation = rows::conversation(conn, draft.conversation)
        .map_err(backend)?
        .ok_or(StoreError::ConversationNotFound(draft.conversation))?;
    if let Some(appended) = duplicate(conn, draft, &conversation)? {
        return Ok(appended);
    }
    let seq = conversation.apply(&draft.data, draft.at)?;
    let event = Event::new(
        draft.conversation,
        seq,
        draft.at,
        draft.author.clone(),
        draft.client_id.clone(),
        draft.data.clone(),
    );
    rows::insert_event(conn, &event)?;
    rows::update_conversation(conn, &conversation)?;
    Ok(Appended {
        event,
        conversation,
        duplicate: false,
    })
}

#[cfg(test)]
mod tests;
