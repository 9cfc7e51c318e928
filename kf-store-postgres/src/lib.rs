//! # kf-store-postgres
//!
//! A [`Store`](kf_core::store::Store) for the kf live-chat engine — a [`ConversationLog`], a [`Directory`] and
//! [`Settings`] — in PostgreSQL, for several engine nodes sharing one database.
//!
//! - **Gapless seqs across nodes.** An append locks its conversation's row (`FOR NO KEY UPDATE`) in the
//!   transaction that stores the event and takes the next seq from it, so appends to one conversation from any
//!   number of nodes at once get 1, 2, 3… with no gap and no repeat.
//! - **Idempotency by unique constraint.** One event per (conversation, author, client id) and one conversation
//!   per (tenant, visitor, open client id), enforced by unique indexes whichever node writes.
//! - **Group commit.** A writer task per store takes every pending open and append (up to
//!   [`PostgresConfig::batch_max`]) into one transaction; its statements are set-based (one statement writes all
//!   the batch's conversation rows, one all its events) and the duplicate look-ups are pipelined. A refused
//!   request stores nothing and leaves the rest of its batch alone.
//! - **A change feed that never skips a late commit.** Feed positions are taken, as a transaction's last
//!   statement, from a one-row counter whose lock is held until the commit: positions are committed in order, so
//!   a consumer never passes a position that a transaction still in flight will take (docs/architecture.md,
//!   "PostgreSQL").
//! - **Versioned migrations**, applied under an advisory lock when a store opens ([`SCHEMA_VERSION`]); a
//!   database written by a newer build is refused.
//! - The same limits as the SQLite store: numbers beyond a signed 64-bit integer are refused as invalid.
//!
//! - **History search** ([`History`]): every message's and note's text, ASCII letters lowercased, is stored
//!   with it and searched with `LIKE`, narrowed by a `pg_trgm` trigram index for queries of three characters or
//!   more (the `pg_trgm` extension, in Debian's `postgresql` package, is created by the first migration).
//! - **The audit log** ([`AuditLog`](kf_core::store::AuditLog)): admin changes with ids from an identity column,
//!   increasing whichever node appends, listed per tenant newest first.
//! - **The statistics checkpoint** ([`StatsCheckpoints`](kf_core::store::StatsCheckpoints)): one row, replaced
//!   whole by each save in one `INSERT … ON CONFLICT DO UPDATE`.
//! - **Upload records** ([`Uploads`](kf_core::store::Uploads)): finishing an upload checks its conversation's
//!   byte limit and marks it ready in one transaction holding an advisory lock on the conversation, so finishes
//!   on several nodes at once never overrun the limit together.
//!
//! ```no_run
//! use std::sync::Arc;
//! use kf_core::store::Store;
//! use kf_store_postgres::{PostgresConfig, PostgresStore};
//!
//! # async fn run() -> Result<(), kf_store_postgres::PostgresError> {
//! let config = PostgresConfig::new("postgres://kf@localhost/kf");
//! let store: Arc<dyn Store> = Arc::new(PostgresStore::open(config).await?);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod audit;
mod config;
mod error;
mod history;
mod records;
mod rows;
mod schema;
mod seen;
mod stats;
#[cfg(feature = "testing")]
pub mod testing;
mod uploads;
mod writer;

use std::str::FromStr;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
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
    Appended, ConversationLog, ConversationPage, Created, Directory, EventDraft, FeedEntry, FeedPosition,
    GroupHours, History, HistoryQuery, NewConversation, SearchPage, Settings, StoreError,
};
use tokio::sync::{mpsc, oneshot};

pub use config::PostgresConfig;
pub use error::PostgresError;
pub use schema::SCHEMA_VERSION;

use error::backend;
use records::Table;
use writer::{Op, Outcome, Request};

/// The kf store in PostgreSQL. Open it with [`PostgresStore::open`]; several stores (on several nodes) may share
/// one database. Must be opened inside a Tokio runtime (its writer is a task).
#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
    writer: mpsc::Sender<Request>,
    epoch: Epoch,
}

impl PostgresStore {
    /// Connects, brings the schema up to date and starts the writer task.
    pub async fn open(config: PostgresConfig) -> Result<Self, PostgresError> {
        config.validate()?;
        tokio::runtime::Handle::try_current().map_err(|_| PostgresError::NoRuntime)?;
        let pg_config = tokio_postgres::Config::from_str(&config.url).map_err(PostgresError::InvalidUrl)?;
        let manager = Manager::from_config(
            pg_config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|error| PostgresError::InvalidConfig(build_error(error)))?;
        let epoch = {
            let mut client = pool.get().await?;
            schema::migrate(&mut client).await?
        };
        let (sender, receiver) = mpsc::channel(config.batch_max.saturating_mul(4).max(16));
        tokio::runtime::Handle::try_current()
            .map_err(|_| PostgresError::NoRuntime)?
            .spawn(writer::run(pool.clone(), receiver, config.batch_max));
        Ok(Self {
            pool,
            writer: sender,
            epoch,
        })
    }

    /// A pooled connection.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(backend)
    }

    /// Hands a request to the writer and waits for its answer.
    async fn write(&self, op: Op) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Request { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer
            .await
            .map_err(|_| StoreError::from(PostgresError::WriterStopped))?
    }
}

#[cfg(feature = "testing")]
impl PostgresStore {
    /// Appends `draft` exactly as [`append`](ConversationLog::append) does — seq, feed position and all — in a
    /// transaction of its own that stays open until [`OpenTransaction::commit`](testing::OpenTransaction::commit)
    /// (dropping it rolls back). For tests of what other writers and readers see meanwhile.
    pub async fn append_uncommitted(
        &self,
        draft: EventDraft,
    ) -> Result<(Appended, testing::OpenTransaction), StoreError> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await.map_err(backend)?;
        let mut results = writer::run_in_transaction(&client, &[&Op::Append(draft)]).await?;
        let open = testing::OpenTransaction::new(client);
        match results.pop() {
            Some(Ok(Outcome::Appended(appended))) => Ok((appended, open)),
            Some(Err(error)) => Err(error),
            Some(Ok(other)) => Err(unexpected(other)),
            None => Err(StoreError::Invalid("internal error: no result".into())),
        }
    }
}

fn build_error(error: deadpool_postgres::BuildError) -> &'static str {
    match error {
        deadpool_postgres::BuildError::NoRuntimeSpecified => "no runtime for the connection pool",
    }
}

fn unexpected(outcome: Outcome) -> StoreError {
    StoreError::Invalid(format!("internal error: unexpected writer outcome {outcome:?}"))
}

#[async_trait]
impl ConversationLog for PostgresStore {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
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

    async fn append_batch(&self, drafts: Vec<EventDraft>) -> Vec<Result<Appended, StoreError>> {
        let count = drafts.len();
        match self.write(Op::AppendBatch(drafts)).await {
            Ok(Outcome::Batch(results)) => results,
            Ok(other) => {
                let error = unexpected(other).to_string();
                (0..count)
                    .map(|_| Err(StoreError::Invalid(error.clone())))
                    .collect()
            }
            Err(StoreError::Closed) => (0..count).map(|_| Err(StoreError::Closed)).collect(),
            // Every draft failed for the same reason: each gets it.
            Err(error) => {
                let cause: std::sync::Arc<dyn std::error::Error + Send + Sync> = std::sync::Arc::new(error);
                (0..count)
                    .map(|_| Err(PostgresError::Batch(std::sync::Arc::clone(&cause)).into()))
                    .collect()
            }
        }
    }

    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        rows::events_after(&*self.client().await?, conversation, after, limit).await
    }

    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError> {
        rows::event_by_client_id(&*self.client().await?, conversation, author, client_id).await
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        rows::conversation(&*self.client().await?, id).await
    }

    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError> {
        rows::conversations_of_visitor(&*self.client().await?, tenant.as_str(), visitor.as_str()).await
    }

    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError> {
        rows::conversations_of_agent(&*self.client().await?, tenant.as_str(), agent.as_str()).await
    }

    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        rows::open_conversations(&*self.client().await?).await
    }

    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
        records::put_context(&*self.client().await?, &context).await
    }

    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError> {
        records::context(&*self.client().await?, conversation).await
    }

    async fn record_seen(&self, marks: Vec<SeenMark>) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        seen::record_seen(&*self.client().await?, &marks).await
    }

    async fn seen(&self, conversations: &[ConversationId]) -> Result<Vec<SeenMark>, StoreError> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        seen::seen(&*self.client().await?, conversations).await
    }

    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        rows::feed_after(&*self.client().await?, after, limit).await
    }

    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        rows::feed_head(&*self.client().await?).await
    }
}

#[async_trait]
impl History for PostgresStore {
    async fn search(&self, query: &HistoryQuery) -> Result<SearchPage, StoreError> {
        history::search(&*self.client().await?, query).await
    }

    async fn conversations(&self, query: &HistoryQuery) -> Result<ConversationPage, StoreError> {
        history::conversations(&*self.client().await?, query).await
    }
}

#[async_trait]
impl Directory for PostgresStore {
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError> {
        records::put_visitor(&*self.client().await?, &visitor).await
    }

    async fn visitor(&self, tenant: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError> {
        records::get(&*self.client().await?, Table::Visitors, tenant, id.as_str()).await
    }

    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError> {
        records::put_agent(&*self.client().await?, &agent).await
    }

    async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        records::get(&*self.client().await?, Table::Agents, tenant, id.as_str()).await
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        records::all(&*self.client().await?, Table::Agents).await
    }

    async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> Result<bool, StoreError> {
        records::delete(&*self.client().await?, Table::Agents, tenant, id.as_str()).await
    }

    async fn delete_group(&self, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError> {
        records::delete(&*self.client().await?, Table::Groups, tenant, id.as_str()).await
    }

    async fn put_group(&self, group: Group) -> Result<(), StoreError> {
        records::put_group(&*self.client().await?, &group).await
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        records::all(&*self.client().await?, Table::Groups).await
    }

    async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError> {
        records::put_entry_point(&*self.client().await?, &entry).await
    }

    async fn delete_entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Result<bool, StoreError> {
        records::delete(&*self.client().await?, Table::EntryPoints, tenant, id.as_str()).await
    }

    async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError> {
        records::all(&*self.client().await?, Table::EntryPoints).await
    }
}

#[async_trait]
impl Settings for PostgresStore {
    async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), StoreError> {
        records::put_group_hours(&*self.client().await?, tenant, group, hours.as_ref()).await
    }

    async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError> {
        records::group_hours(&*self.client().await?).await
    }

    async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError> {
        records::put_quick_reply(&*self.client().await?, &reply).await
    }

    async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        records::delete_quick_reply(&*self.client().await?, tenant, id).await
    }

    async fn quick_reply(&self, tenant: &TenantId, id: &str) -> Result<Option<QuickReply>, StoreError> {
        records::quick_reply(&*self.client().await?, tenant, id).await
    }

    async fn quick_replies(
        &self,
        tenant: &TenantId,
        scope: &QuickReplyScope,
    ) -> Result<Vec<QuickReply>, StoreError> {
        records::quick_replies(&*self.client().await?, tenant, scope).await
    }

    async fn put_label(&self, label: Label) -> Result<(), StoreError> {
        records::put_label(&*self.client().await?, &label).await
    }

    async fn delete_label(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        records::delete_label(&*self.client().await?, tenant, name).await
    }

    async fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>, StoreError> {
        records::labels(&*self.client().await?, tenant).await
    }

    async fn put_attribute_definition(&self, definition: AttributeDefinition) -> Result<(), StoreError> {
        records::put_attribute_definition(&*self.client().await?, &definition).await
    }

    async fn delete_attribute_definition(
        &self,
        tenant: &TenantId,
        object: AttributeObject,
        key: &str,
    ) -> Result<bool, StoreError> {
        records::delete_attribute_definition(&*self.client().await?, tenant, object, key).await
    }

    async fn attribute_definitions(&self, tenant: &TenantId) -> Result<Vec<AttributeDefinition>, StoreError> {
        records::attribute_definitions(&*self.client().await?, tenant).await
    }

    async fn put_allowed_origins(&self, tenant: &TenantId, origins: Vec<String>) -> Result<(), StoreError> {
        records::put_allowed_origins(&*self.client().await?, tenant, &origins).await
    }

    async fn allowed_origins(&self) -> Result<Vec<kf_core::store::TenantOrigins>, StoreError> {
        records::allowed_origins(&*self.client().await?).await
    }
}
