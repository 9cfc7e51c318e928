//! Rows: how conversations and events are laid out in the tables, and the statements that read them. The writer
//! (`writer.rs`) writes them; the other records are in `records.rs`.

use kf_core::model::{
    Actor, ClientId, Conversation, ConversationId, ConversationState, Event, EventKind, Seq, Timestamp,
};
use kf_core::store::{FeedEntry, FeedPosition, StoreError};
use std::future::Future;

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::PostgresError;
use crate::error::backend;

/// Statements of a pooled connection, each prepared once per connection and kept (deadpool's statement cache):
/// a statement costs one round trip instead of two (parse, then bind and execute).
pub(crate) trait Cached {
    /// The rows of `sql`.
    fn cached_query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a;

    /// The row of `sql`, if any (an error when there are several).
    fn cached_query_opt<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, tokio_postgres::Error>> + Send + 'a;

    /// The one row of `sql`.
    fn cached_query_one<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send + 'a;

    /// Runs `sql`; the number of rows it changed.
    fn cached_execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a;
}

impl Cached for ClientWrapper {
    async fn cached_query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.query(&self.prepare_cached(sql).await?, params).await
    }

    async fn cached_query_opt<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        self.query_opt(&self.prepare_cached(sql).await?, params).await
    }

    async fn cached_query_one<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        self.query_one(&self.prepare_cached(sql).await?, params).await
    }

    async fn cached_execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        self.execute(&self.prepare_cached(sql).await?, params).await
    }
}

/// An event's columns, as [`event_from_row`] reads them.
pub(crate) const EVENT_COLUMNS: &str = "conversation, seq, at, author_role, author_id, client_id, data";

/// Encodes a value as JSON text for a `data` column.
pub(crate) fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| PostgresError::Encode { what, source }.into())
}

/// Decodes the JSON text of a `data` column.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    text: &str,
    table: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| corrupt(table, error.to_string()))
}

pub(crate) fn corrupt(table: &'static str, reason: impl Into<String>) -> StoreError {
    PostgresError::Corrupt {
        table,
        reason: reason.into(),
    }
    .into()
}

/// Converts a number for storage in a BIGINT column (signed 64-bit), as the SQLite store does.
pub(crate) fn signed(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is too large to store")))
}

fn unsigned(value: i64, table: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("negative number {value}")))
}

/// The `agent` column: the owner while assigned, the agent who parked it while on hold.
pub(crate) fn owner(state: &ConversationState) -> Option<&str> {
    match state {
        ConversationState::Assigned { agent } | ConversationState::OnHold { agent, .. } => {
            Some(agent.as_str())
        }
        _ => None,
    }
}

pub(crate) fn conversation_from_row(row: &Row) -> Result<Conversation, StoreError> {
    let data: &str = row.try_get(0).map_err(backend)?;
    decode(data, "conversations")
}

pub(crate) fn event_from_row(row: &Row) -> Result<Event, StoreError> {
    let conversation: uuid::Uuid = row.try_get(0).map_err(backend)?;
    let seq: i64 = row.try_get(1).map_err(backend)?;
    let at: i64 = row.try_get(2).map_err(backend)?;
    let role: &str = row.try_get(3).map_err(backend)?;
    let author_id: &str = row.try_get(4).map_err(backend)?;
    let client_id: Option<&str> = row.try_get(5).map_err(backend)?;
    let data: &str = row.try_get(6).map_err(backend)?;
    let invalid = |error: kf_core::model::InvalidId| corrupt("events", error.to_string());
    let author = match role {
        "visitor" => Actor::Visitor(author_id.parse().map_err(invalid)?),
        "agent" => Actor::Agent(author_id.parse().map_err(invalid)?),
        "system" => Actor::System,
        other => return Err(corrupt("events", format!("unknown author role {other:?}"))),
    };
    let client_id = client_id
        .map(|id| id.parse::<ClientId>().map_err(invalid))
        .transpose()?;
    let data: EventKind = decode(data, "events")?;
    Ok(Event::new(
        ConversationId::from_uuid(conversation),
        Seq(unsigned(seq, "events")?),
        Timestamp(unsigned(at, "events")?),
        author,
        client_id,
        data,
    ))
}

fn conversations(rows: Vec<Row>) -> Result<Vec<Conversation>, StoreError> {
    rows.iter().map(conversation_from_row).collect()
}

fn events(rows: Vec<Row>) -> Result<Vec<Event>, StoreError> {
    rows.iter().map(event_from_row).collect()
}

/// A conversation's record.
pub(crate) async fn conversation(
    client: &ClientWrapper,
    id: ConversationId,
) -> Result<Option<Conversation>, StoreError> {
    let row = client
        .cached_query_opt("SELECT data FROM conversations WHERE id = $1", &[&id.as_uuid()])
        .await
        .map_err(backend)?;
    row.as_ref().map(conversation_from_row).transpose()
}

/// A visitor's conversations, newest first.
pub(crate) async fn conversations_of_visitor(
    client: &ClientWrapper,
    tenant: &str,
    visitor: &str,
) -> Result<Vec<Conversation>, StoreError> {
    let rows = client
        .cached_query(
            "SELECT data FROM conversations WHERE tenant = $1 AND visitor = $2 ORDER BY created_at DESC, id DESC",
            &[&tenant, &visitor],
        )
        .await
        .map_err(backend)?;
    conversations(rows)
}

/// The conversations an agent owns or parked, oldest first.
pub(crate) async fn conversations_of_agent(
    client: &ClientWrapper,
    tenant: &str,
    agent: &str,
) -> Result<Vec<Conversation>, StoreError> {
    let rows = client
        .cached_query(
            "SELECT data FROM conversations WHERE tenant = $1 AND agent = $2 ORDER BY created_at, id",
            &[&tenant, &agent],
        )
        .await
        .map_err(backend)?;
    conversations(rows)
}

/// Every open conversation, oldest first.
pub(crate) async fn open_conversations(client: &ClientWrapper) -> Result<Vec<Conversation>, StoreError> {
    let rows = client
        .cached_query(
            "SELECT data FROM conversations WHERE state <> 'closed' ORDER BY created_at, id",
            &[],
        )
        .await
        .map_err(backend)?;
    conversations(rows)
}

/// The event at a seq.
pub(crate) async fn event_at(
    client: &ClientWrapper,
    conversation: ConversationId,
    seq: Seq,
) -> Result<Option<Event>, StoreError> {
    let seq = signed(seq.0, "seq")?;
    let row = client
        .cached_query_opt(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE conversation = $1 AND seq = $2"),
            &[&conversation.as_uuid(), &seq],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(event_from_row).transpose()
}

/// The event an author sent with a client id.
pub(crate) async fn event_by_client_id(
    client: &ClientWrapper,
    conversation: ConversationId,
    author: &Actor,
    client_id: &ClientId,
) -> Result<Option<Event>, StoreError> {
    let row = client
        .cached_query_opt(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events \
                 WHERE conversation = $1 AND author_role = $2 AND author_id = $3 AND client_id = $4"
            ),
            &[
                &conversation.as_uuid(),
                &author.role(),
                &author.id_str(),
                &client_id.as_str(),
            ],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(event_from_row).transpose()
}

/// Up to `limit` events after `after`, in seq order.
pub(crate) async fn events_after(
    client: &ClientWrapper,
    conversation: ConversationId,
    after: Seq,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    // Cursors and limits beyond what a BIGINT holds mean "everything" / "nothing more".
    let after = i64::try_from(after.0).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .cached_query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE conversation = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ),
            &[&conversation.as_uuid(), &after, &limit],
        )
        .await
        .map_err(backend)?;
    events(rows)
}

/// The feed read: committed events after a position, in position order, each with its tenant.
///
/// Reading in position order from any snapshot is safe because positions are assigned under the lock of
/// `kf_feed_head`, which a writing transaction takes as its last statement and keeps until it commits: a
/// snapshot that sees position `p` committed also sees every smaller one (docs/architecture.md, "PostgreSQL").
pub(crate) async fn feed_after(
    client: &ClientWrapper,
    after: FeedPosition,
    limit: usize,
) -> Result<Vec<FeedEntry>, StoreError> {
    let Ok(after) = i64::try_from(after.0) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .cached_query(
            &format!(
                "SELECT {EVENT_COLUMNS}, position, tenant FROM events WHERE position > $1 \
                 ORDER BY position LIMIT $2"
            ),
            &[&after, &limit],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| {
            let event = event_from_row(row)?;
            let position: i64 = row.try_get(7).map_err(backend)?;
            let tenant: &str = row.try_get(8).map_err(backend)?;
            let tenant = tenant
                .parse()
                .map_err(|error: kf_core::model::InvalidId| corrupt("events", error.to_string()))?;
            Ok(FeedEntry::new(
                FeedPosition(unsigned(position, "events")?),
                tenant,
                event,
            ))
        })
        .collect()
}

/// The position of the last committed event.
pub(crate) async fn feed_head(client: &ClientWrapper) -> Result<FeedPosition, StoreError> {
    let row = client
        .cached_query_one("SELECT COALESCE(MAX(position), 0) FROM events", &[])
        .await
        .map_err(backend)?;
    let head: i64 = row.try_get(0).map_err(backend)?;
    Ok(FeedPosition(unsigned(head, "events")?))
}
