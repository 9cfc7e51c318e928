//! The writer task: group commit of opens and appends, with seqs and feed positions assigned in the transaction.
//!
//! Write requests arrive on a channel. The writer takes everything pending (up to `batch_max`) and runs it in one
//! transaction on one pooled connection, then answers every request once `COMMIT` returned. A transaction:
//!
//! 1. **locks** the rows of every conversation the batch appends to, in id order (`SELECT … ORDER BY id FOR NO
//!    KEY UPDATE`), which reads their latest committed state. Any writer on any node does the same, so appends to
//!    one conversation are serialized across nodes, and the sorted order keeps two batches from deadlocking;
//! 2. looks up, pipelined (sent together, answered in one round trip), the events already stored under the drafts' client ids (under the lock, nobody else
//!    can add one meanwhile);
//! 3. runs the requests in order in memory — an open inserts its conversation row (`ON CONFLICT DO NOTHING`:
//!    the unique constraint settles a race between nodes), an append applies its event to the locked record with
//!    [`Conversation::apply`] (the one state machine of every store), which gives the next seq: gapless;
//! 4. writes the changed conversation rows (one statement) and, pipelined with it, every new event (one statement
//!    that first bumps the feed head, `kf_feed_head`, by their number): the positions are taken under that row's lock,
//!    held until the commit, so positions are committed in order and no reader ever sees a position before a
//!    smaller one (docs/architecture.md, "PostgreSQL");
//! 5. commits.
//!
//! A refused request (an illegal transition, an unknown conversation) stores nothing and leaves the rest of its
//! batch alone. A failing statement aborts the transaction: the batch is rolled back and every request runs
//! again in a transaction of its own, so only the culprit fails. A failed `COMMIT` fails the whole batch (whether
//! it reached the database is unknown).
//!
//! Every statement is prepared once per connection and kept (`rows::Cached`), so it costs one round trip.

use std::collections::HashMap;
use std::time::Instant;

use deadpool_postgres::ClientWrapper;
use deadpool_postgres::Pool;
use futures::future::{try_join, try_join_all};
use kf_core::model::{Conversation, ConversationId, Event, EventKind, Seq, TenantId};
use kf_core::store::{Appended, Created, EventDraft, NewConversation, StoreError};
use kf_core::telemetry::names;
use metrics::{Counter, Histogram};
use tokio::sync::{mpsc, oneshot};

use crate::PostgresError;
use crate::error::backend;
use crate::rows::{self, Cached, encode, owner, signed};

/// A write operation that goes through group commit.
#[derive(Debug)]
pub(crate) enum Op {
    Create(NewConversation),
    Append(EventDraft),
    /// Several appends, run in order in one transaction, each as `Append` would.
    AppendBatch(Vec<EventDraft>),
}

/// The result of a write operation.
#[derive(Debug)]
pub(crate) enum Outcome {
    Created(Created),
    Appended(Appended),
    /// One result per draft of an `AppendBatch`.
    Batch(Vec<Result<Appended, StoreError>>),
}

/// A write request and where to send its answer.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// `kf_store_commit_seconds`, `kf_store_batch_size` and `kf_store_batch_failures_total`, label
/// `store="postgres"` (docs/observability.md).
#[derive(Debug)]
struct Series {
    commit: Histogram,
    batch_size: Histogram,
    failures: Counter,
}

impl Series {
    fn new() -> Self {
        let labels = [("store", "postgres")];
        Self {
            commit: metrics::histogram!(names::STORE_COMMIT, &labels),
            batch_size: metrics::histogram!(names::STORE_BATCH_SIZE, &labels),
            failures: metrics::counter!(names::STORE_BATCH_FAILURES, &labels),
        }
    }
}

/// The writer task's body: runs until every sender is gone.
pub(crate) async fn run(pool: Pool, mut requests: mpsc::Receiver<Request>, batch_max: usize) {
    let series = Series::new();
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < batch_max {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        series.batch_size.record(batch.len() as f64);
        let started = Instant::now();
        if !commit(&pool, &mut batch).await {
            series.failures.increment(1);
        }
        series.commit.record(started.elapsed().as_secs_f64());
    }
    tracing::debug!("postgres writer stopped");
}

/// Runs a batch and answers its requests; false when the batch's transaction failed.
async fn commit(pool: &Pool, batch: &mut Vec<Request>) -> bool {
    let ops: Vec<&Op> = batch.iter().map(|request| &request.op).collect();
    match run_batch(pool, &ops).await {
        Ok(results) => {
            for (request, result) in batch.drain(..).zip(results) {
                // The caller may have given up waiting; the write stands anyway.
                let _ = request.reply.send(result);
            }
            true
        }
        Err(Failure::Retry(cause)) if batch.len() > 1 => {
            tracing::debug!(error = %cause, "postgres batch runs again, a transaction per request");
            for request in batch.drain(..) {
                let result = match run_batch(pool, &[&request.op]).await {
                    Ok(mut results) => results.pop().unwrap_or(Err(PostgresError::WriterStopped.into())),
                    Err(Failure::Retry(cause) | Failure::Lost(cause)) => Err(cause),
                };
                let _ = request.reply.send(result);
            }
            false
        }
        Err(Failure::Retry(cause) | Failure::Lost(cause)) => {
            tracing::warn!(error = %cause, requests = batch.len(), "postgres group commit failed");
            let cause: std::sync::Arc<dyn std::error::Error + Send + Sync> = std::sync::Arc::new(cause);
            for request in batch.drain(..) {
                let _ = request
                    .reply
                    .send(Err(PostgresError::Batch(std::sync::Arc::clone(&cause)).into()));
            }
            false
        }
    }
}

/// Why a batch did not commit.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Rolled back, nothing stored: the requests may run again.
    Retry(StoreError),
    /// `COMMIT` failed: whether the batch is stored is unknown.
    Lost(StoreError),
}

type Results = Vec<Result<Outcome, StoreError>>;

/// Runs `ops` in one transaction on a pooled connection and commits it.
pub(crate) async fn run_batch(pool: &Pool, ops: &[&Op]) -> Result<Results, Failure> {
    let client = pool.get().await.map_err(|error| Failure::Retry(backend(error)))?;
    if let Err(error) = client.batch_execute("BEGIN").await {
        discard(client);
        return Err(Failure::Retry(backend(error)));
    }
    let results = match run_in_transaction(&client, ops).await {
        Ok(results) => results,
        Err(error) => {
            if let Err(rollback) = client.batch_execute("ROLLBACK").await {
                tracing::warn!(error = %rollback, "postgres rollback failed");
                discard(client);
            }
            return Err(Failure::Retry(error));
        }
    };
    if let Err(error) = client.batch_execute("COMMIT").await {
        discard(client);
        return Err(Failure::Lost(backend(error)));
    }
    Ok(results)
}

/// Takes a connection whose transaction state is unknown out of the pool and closes it (the server then rolls
/// back whatever it still holds), so that no later request runs inside that transaction.
fn discard(client: deadpool_postgres::Object) {
    drop(deadpool_postgres::Object::take(client));
}

/// A conversation as the current batch sees it.
#[derive(Debug)]
struct Working {
    conversation: Conversation,
    /// The batch stored an event of it: its row is written before the commit.
    changed: bool,
}

/// An event's idempotency key.
type ClientKey = (ConversationId, &'static str, String, String);

fn client_key(
    event_conversation: ConversationId,
    draft_author: &kf_core::model::Actor,
    client_id: &str,
) -> ClientKey {
    (
        event_conversation,
        draft_author.role(),
        draft_author.id_str().to_string(),
        client_id.to_string(),
    )
}

/// What one transaction has done so far.
#[derive(Debug, Default)]
struct Batch {
    working: HashMap<ConversationId, Working>,
    /// New events with their tenant, in the order they get positions.
    pending: Vec<(Event, TenantId)>,
    /// Events stored under a client id: before the batch (read under the lock) or by it.
    sent: HashMap<ClientKey, Event>,
}

/// Runs the requests inside the open transaction (no `COMMIT`). The outer error aborts the transaction.
pub(crate) async fn run_in_transaction(client: &ClientWrapper, ops: &[&Op]) -> Result<Results, StoreError> {
    let mut batch = Batch::default();
    let drafts: Vec<&EventDraft> = ops
        .iter()
        .flat_map(|op| match op {
            Op::Append(draft) => std::slice::from_ref(draft),
            Op::AppendBatch(drafts) => drafts.as_slice(),
            Op::Create(_) => &[],
        })
        .collect();
    lock(client, &drafts, &mut batch).await?;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let result = match op {
            Op::Create(new) => create(client, new, &mut batch).await?.map(Outcome::Created),
            Op::Append(draft) => append(draft, &mut batch).map(Outcome::Appended),
            Op::AppendBatch(drafts) => Ok(Outcome::Batch(
                drafts.iter().map(|draft| append(draft, &mut batch)).collect(),
            )),
        };
        results.push(result);
    }
    write(client, &batch).await?;
    Ok(results)
}

/// Locks and reads the conversations the drafts append to, and the events stored under their client ids.
async fn lock(client: &ClientWrapper, drafts: &[&EventDraft], batch: &mut Batch) -> Result<(), StoreError> {
    if drafts.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<uuid::Uuid> = drafts.iter().map(|draft| draft.conversation.as_uuid()).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = client
        .cached_query(
            "SELECT data FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            &[&ids],
        )
        .await
        .map_err(backend)?;
    for row in &rows {
        let conversation = rows::conversation_from_row(row)?;
        batch.working.insert(
            conversation.id,
            Working {
                conversation,
                changed: false,
            },
        );
    }
    // Pipelined: the lookups go out together and their answers come back in one round trip.
    let lookups = drafts.iter().filter_map(|draft| {
        let client_id = draft.client_id.as_ref()?;
        batch
            .working
            .contains_key(&draft.conversation)
            .then(|| rows::event_by_client_id(client, draft.conversation, &draft.author, client_id))
    });
    for event in try_join_all(lookups).await?.into_iter().flatten() {
        if let Some(client_id) = &event.client_id {
            let key = client_key(event.conversation, &event.author, client_id.as_str());
            batch.sent.insert(key, event);
        }
    }
    Ok(())
}

/// Opens a conversation, or finds the one this client id opened. The outer error aborts the transaction.
async fn create(
    client: &ClientWrapper,
    new: &NewConversation,
    batch: &mut Batch,
) -> Result<Result<Created, StoreError>, StoreError> {
    let created_at = match signed(new.at.0, "timestamp") {
        Ok(at) => at,
        Err(refused) => return Ok(Err(refused)),
    };
    let conversation = Conversation::new(
        new.id,
        new.tenant.clone(),
        new.visitor.clone(),
        new.group.clone(),
        new.at,
    );
    let data = encode(&conversation, "conversation")?;
    // No conflict target: a taken id and a used (tenant, visitor, client id) both insert nothing. A concurrent
    // insert of the same key on another node makes this wait for that transaction's end.
    let inserted = client
        .cached_execute(
            "INSERT INTO conversations (id, tenant, visitor, open_client_id, state, agent, group_id, last_seq, \
                 created_at, data) \
             VALUES ($1, $2, $3, $4, 'queued', NULL, $5, 1, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &new.id.as_uuid(),
                &new.tenant.as_str(),
                &new.visitor.as_str(),
                &new.client_id.as_str(),
                &new.group.as_str(),
                &created_at,
                &data,
            ],
        )
        .await
        .map_err(backend)?;
    if inserted == 1 {
        let event = new.created_event();
        let key = client_key(new.id, &event.author, new.client_id.as_str());
        batch.sent.insert(key, event.clone());
        batch.pending.push((event.clone(), new.tenant.clone()));
        batch.working.insert(
            new.id,
            Working {
                conversation: conversation.clone(),
                changed: false,
            },
        );
        return Ok(Ok(Created {
            conversation,
            event,
            created: true,
        }));
    }
    let row = client
        .cached_query_opt(
            "SELECT data FROM conversations WHERE tenant = $1 AND visitor = $2 AND open_client_id = $3",
            &[
                &new.tenant.as_str(),
                &new.visitor.as_str(),
                &new.client_id.as_str(),
            ],
        )
        .await
        .map_err(backend)?;
    let Some(row) = row else {
        return Ok(Err(StoreError::Invalid(format!(
            "conversation {} already exists",
            new.id
        ))));
    };
    let mut conversation = rows::conversation_from_row(&row)?;
    if let Some(working) = batch.working.get(&conversation.id) {
        conversation = working.conversation.clone();
    }
    let pending = batch
        .pending
        .iter()
        .find(|(event, _)| event.conversation == conversation.id && event.seq == Seq(1))
        .map(|(event, _)| event.clone());
    let event = match pending {
        Some(event) => event,
        None => rows::event_at(client, conversation.id, Seq(1))
            .await?
            .ok_or(StoreError::ConversationNotFound(conversation.id))?,
    };
    Ok(Ok(Created {
        conversation,
        event,
        created: false,
    }))
}

/// An append, in memory: the batch's working copy of the locked conversation gives the seq.
fn append(draft: &EventDraft, batch: &mut Batch) -> Result<Appended, StoreError> {
    let Some(working) = batch.working.get_mut(&draft.conversation) else {
        return Err(StoreError::ConversationNotFound(draft.conversation));
    };
    if let Some(client_id) = &draft.client_id {
        let key = client_key(draft.conversation, &draft.author, client_id.as_str());
        if let Some(event) = batch.sent.get(&key) {
            return Ok(Appended {
                event: event.clone(),
                conversation: working.conversation.clone(),
                duplicate: true,
            });
        }
    }
    signed(draft.at.0, "timestamp")?;
    let seq = working.conversation.apply(&draft.data, draft.at)?;
    signed(seq.0, "seq")?;
    working.changed = true;
    let event = Event::new(
        draft.conversation,
        seq,
        draft.at,
        draft.author.clone(),
        draft.client_id.clone(),
        draft.data.clone(),
    );
    if let Some(client_id) = &draft.client_id {
        let key = client_key(draft.conversation, &draft.author, client_id.as_str());
        batch.sent.insert(key, event.clone());
    }
    batch
        .pending
        .push((event.clone(), working.conversation.tenant.clone()));
    Ok(Appended {
        event,
        conversation: working.conversation.clone(),
        duplicate: false,
    })
}

/// Writes the changed conversation rows and the new events with their feed positions: two statements,
/// pipelined (sent together, answered in one round trip).
async fn write(client: &ClientWrapper, batch: &Batch) -> Result<(), StoreError> {
    let changed: Vec<&Conversation> = batch
        .working
        .values()
        .filter(|working| working.changed)
        .map(|working| &working.conversation)
        .collect();
    try_join(
        update_conversations(client, &changed),
        insert_events(client, &batch.pending),
    )
    .await
    .map(drop)
}

/// Writes conversation rows (their state, owner, `last_seq`, the searchable columns and the record).
async fn update_conversations(client: &ClientWrapper, changed: &[&Conversation]) -> Result<(), StoreError> {
    if changed.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(changed.len());
    let mut states = Vec::with_capacity(changed.len());
    let mut agents = Vec::with_capacity(changed.len());
    let mut seqs = Vec::with_capacity(changed.len());
    let mut datas = Vec::with_capacity(changed.len());
    let mut groups = Vec::with_capacity(changed.len());
    let mut last_agents = Vec::with_capacity(changed.len());
    let mut ratings = Vec::with_capacity(changed.len());
    // Labels as one JSON array each: unnest cannot take an array of arrays of different lengths.
    let mut labels = Vec::with_capacity(changed.len());
    for conversation in changed {
        ids.push(conversation.id.as_uuid());
        states.push(conversation.state.name());
        agents.push(owner(&conversation.state));
        seqs.push(signed(conversation.last_seq.0, "seq")?);
        datas.push(encode(*conversation, "conversation")?);
        groups.push(conversation.group.as_str());
        last_agents.push(conversation.last_agent.as_ref().map(|agent| agent.as_str()));
        ratings.push(conversation.rating.map(i16::from));
        labels.push(encode(&conversation.labels, "labels")?);
    }
    client
        .cached_execute(
            "UPDATE conversations AS c SET state = u.state, agent = u.agent, last_seq = u.last_seq, \
                 data = u.data, group_id = u.group_id, last_agent = u.last_agent, rating = u.rating, \
                 labels = ARRAY(SELECT json_array_elements_text(u.labels::json)) \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], \
                 $7::text[], $8::smallint[], $9::text[]) \
                 AS u (id, state, agent, last_seq, data, group_id, last_agent, rating, labels) \
             WHERE c.id = u.id",
            &[
                &ids,
                &states,
                &agents,
                &seqs,
                &datas,
                &groups,
                &last_agents,
                &ratings,
                &labels,
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// Stores events with the next positions of the feed, in the order given. The feed head's row stays locked until
/// the transaction ends (see the module documentation): this is the last statement before the commit.
pub(crate) async fn insert_events(
    client: &ClientWrapper,
    events: &[(Event, TenantId)],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(events.len()).map_err(|_| StoreError::Invalid("too many events".into()))?;
    let mut conversations = Vec::with_capacity(events.len());
    let mut seqs = Vec::with_capacity(events.len());
    let mut ats = Vec::with_capacity(events.len());
    let mut roles = Vec::with_capacity(events.len());
    let mut authors = Vec::with_capacity(events.len());
    let mut client_ids = Vec::with_capacity(events.len());
    let mut kinds = Vec::with_capacity(events.len());
    let mut tenants = Vec::with_capacity(events.len());
    let mut datas = Vec::with_capacity(events.len());
    let mut search_texts = Vec::with_capacity(events.len());
    for (event, tenant) in events {
        search_texts.push(crate::history::search_text(&event.data));
        conversations.push(event.conversation.as_uuid());
        seqs.push(signed(event.seq.0, "seq")?);
        ats.push(signed(event.at.0, "timestamp")?);
        roles.push(event.author.role());
        authors.push(event.author.id_str());
        client_ids.push(event.client_id.as_ref().map(|id| id.as_str()));
        kinds.push(event.data.name());
        tenants.push(tenant.as_str());
        datas.push(encode::<EventKind>(&event.data, "event data")?);
    }
    client
        .cached_execute(
            "WITH head AS (UPDATE kf_feed_head SET position = position + $1 RETURNING position - $1 AS base) \
             INSERT INTO events (position, conversation, seq, at, author_role, author_id, client_id, kind, tenant, \
                 data, search_text) \
             SELECT head.base + e.n, e.conversation, e.seq, e.at, e.author_role, e.author_id, e.client_id, e.kind, \
                 e.tenant, e.data, e.search_text \
             FROM head, unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
                 $8::text[], $9::text[], $10::text[], $11::text[]) WITH ORDINALITY \
                 AS e (conversation, seq, at, author_role, author_id, client_id, kind, tenant, data, search_text, n)",
            &[
                &count,
                &conversations,
                &seqs,
                &ats,
                &roles,
                &authors,
                &client_ids,
                &kinds,
                &tenants,
                &datas,
                &search_texts,
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}
