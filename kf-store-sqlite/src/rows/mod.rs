//! Rows: how conversations and events are laid out in the tables, and the statements that read and write them;
//! the other records (visitors, agents, groups, hours, contexts, quick replies, entry points) are in [`records`].

use std::str::FromStr;

use kf_core::model::{
    Actor, AgentId, ClientId, Conversation, ConversationId, ConversationState, Event, EventKind, MessageBody,
    Seq, TenantId, Timestamp, VisitorId,
};
use kf_core::store::{FeedEntry, FeedPosition, StoreError};
use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::SqliteError;

mod audit;
mod records;
mod seen;
mod stats;
mod uploads;

pub(crate) use audit::{append_audit, audit_entries};
pub(crate) use records::*;
pub(crate) use seen::{record_seen, seen};
pub(crate) use stats::*;
pub(crate) use uploads::*;

/// A conversation's columns. Its `last_seq` and `updated_at` are those of its newest event, read from the log (two
/// seeks in `events`' `(conversation, seq)` index): the row's own columns are written only when the
/// conversation's state changes, so that a message, the most common event by far, does not rewrite its
/// conversation's row in the same commit (`docs/benchmarks.md` §4). The row's values stand in only for a
/// conversation without events, which the store never makes (a conversation is created with its first event).
macro_rules! conversation_columns {
    () => {
        "conversations.id, tenant, visitor, group_id, state, agent, last_agent, \
         COALESCE((SELECT seq FROM events WHERE events.conversation = conversations.id \
                   ORDER BY seq DESC LIMIT 1), last_seq), \
         created_at, \
         COALESCE((SELECT at FROM events WHERE events.conversation = conversations.id \
                   ORDER BY seq DESC LIMIT 1), updated_at), \
         rating, labels, attributes, hold_until"
    };
}

/// An event's columns. A message whose body is its text alone keeps that text in `body` only and an empty `data`
/// (every other event: its `EventKind` as JSON in `data`), so a message's text is stored and encoded once.
macro_rules! event_columns {
    () => {
        "conversation, seq, at, author_role, author_id, client_id, data, body"
    };
}

type SqlResult<T> = rusqlite::Result<T>;

/// A conversation id as it is stored (its lowercase hyphenated UUID, the same text as its `Display`), formatted
/// on the stack: binding it allocates nothing, unlike `to_string()`.
#[derive(Clone, Copy)]
pub(crate) struct IdText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl IdText {
    pub(crate) fn new(id: ConversationId) -> Self {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        id.as_uuid().hyphenated().encode_lower(&mut text);
        Self(text)
    }
}

impl ToSql for IdText {
    fn to_sql(&self) -> SqlResult<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.0)))
    }
}

fn conversion(index: usize, error: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Corrupt(String);

fn parse<T>(row: &Row<'_>, index: usize) -> SqlResult<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(index)?;
    text.parse().map_err(|error| conversion(index, error))
}

fn parse_optional<T>(row: &Row<'_>, index: usize) -> SqlResult<Option<T>>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<String> = row.get(index)?;
    text.map(|text| text.parse().map_err(|error| conversion(index, error)))
        .transpose()
}

fn unsigned(row: &Row<'_>, index: usize) -> SqlResult<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// Converts a number for storage in an INTEGER column (SQLite integers are signed 64-bit).
pub(crate) fn signed(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is too large to store")))
}

/// The `agent` column: the owner while assigned, the agent who parked it while on hold.
fn owner(state: &ConversationState) -> Option<&str> {
    match state {
        ConversationState::Assigned { agent } | ConversationState::OnHold { agent, .. } => {
            Some(agent.as_str())
        }
        _ => None,
    }
}

/// A column holding JSON, decoded.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> SqlResult<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| conversion(index, Corrupt(error.to_string())))
}

fn conversation_from_row(row: &Row<'_>) -> SqlResult<Conversation> {
    let state: String = row.get(4)?;
    let agent: Option<AgentId> = parse_optional(row, 5)?;
    let state = match (state.as_str(), agent) {
        ("queued", _) => ConversationState::Queued,
        ("assigned", Some(agent)) => ConversationState::Assigned { agent },
        ("closed", _) => ConversationState::Closed,
        ("offline", _) => ConversationState::Offline,
        ("on_hold", Some(agent)) => ConversationState::OnHold {
            agent,
            until: row
                .get::<_, Option<i64>>(13)?
                .map(|ms| Timestamp(u64::try_from(ms).unwrap_or(0))),
        },
        (other, _) => {
            return Err(conversion(
                4,
                Corrupt(format!("unknown conversation state {other:?}")),
            ));
        }
    };
    let mut conversation = Conversation::new(
        parse(row, 0)?,
        parse(row, 1)?,
        parse(row, 2)?,
        parse(row, 3)?,
        Timestamp(unsigned(row, 8)?),
    );
    conversation.state = state;
    conversation.last_agent = parse_optional(row, 6)?;
    conversation.last_seq = Seq(unsigned(row, 7)?);
    conversation.updated_at = Timestamp(unsigned(row, 9)?);
    conversation.rating = row.get(10)?;
    conversation.labels = json_column(row, 11)?;
    conversation.attributes = json_column(row, 12)?;
    Ok(conversation)
}

fn event_from_row(row: &Row<'_>) -> SqlResult<Event> {
    let role: String = row.get(3)?;
    let author = match role.as_str() {
        "visitor" => Actor::Visitor(parse::<VisitorId>(row, 4)?),
        "agent" => Actor::Agent(parse::<AgentId>(row, 4)?),
        "system" => Actor::System,
        other => return Err(conversion(3, Corrupt(format!("unknown author role {other:?}")))),
    };
    let data: String = row.get(6)?;
    let data = if data.is_empty() {
        let text: Option<String> = row.get(7)?;
        let text = text.ok_or_else(|| conversion(7, Corrupt("an event without data nor text".into())))?;
        EventKind::Message {
            body: MessageBody::text(text),
        }
    } else {
        serde_json::from_str(&data).map_err(|error| conversion(6, error))?
    };
    Ok(Event::new(
        parse(row, 0)?,
        Seq(unsigned(row, 1)?),
        Timestamp(unsigned(row, 2)?),
        author,
        parse_optional(row, 5)?,
        data,
    ))
}

/// A conversation's record.
pub(crate) fn conversation(conn: &Connection, id: ConversationId) -> SqlResult<Option<Conversation>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE id = ?1"
    ))?;
    statement
        .query_row([IdText::new(id)], conversation_from_row)
        .optional()
}

/// Whether a conversation exists.
pub(crate) fn conversation_exists(conn: &Connection, id: ConversationId) -> SqlResult<bool> {
    let mut statement = conn.prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?;
    statement.exists([IdText::new(id)])
}

/// The conversation a visitor opened with this client id.
pub(crate) fn conversation_opened_by(
    conn: &Connection,
    tenant: &TenantId,
    visitor: &VisitorId,
    client_id: &ClientId,
) -> SqlResult<Option<Conversation>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE tenant = ?1 AND visitor = ?2 AND open_client_id = ?3"
    ))?;
    statement
        .query_row(
            params![tenant.as_str(), visitor.as_str(), client_id.as_str()],
            conversation_from_row,
        )
        .optional()
}

/// A visitor's conversations, newest first.
pub(crate) fn conversations_of_visitor(
    conn: &Connection,
    tenant: &TenantId,
    visitor: &VisitorId,
) -> SqlResult<Vec<Conversation>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE tenant = ?1 AND visitor = ?2 ORDER BY created_at DESC, id DESC"
    ))?;
    statement
        .query_map(params![tenant.as_str(), visitor.as_str()], conversation_from_row)?
        .collect()
}

/// The conversations assigned to an agent, oldest first.
pub(crate) fn conversations_of_agent(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
) -> SqlResult<Vec<Conversation>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE tenant = ?1 AND agent = ?2 ORDER BY created_at, id"
    ))?;
    statement
        .query_map(params![tenant.as_str(), agent.as_str()], conversation_from_row)?
        .collect()
}

/// Every open conversation, oldest first.
pub(crate) fn open_conversations(conn: &Connection) -> SqlResult<Vec<Conversation>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE state <> 'closed' ORDER BY created_at, id"
    ))?;
    statement.query_map([], conversation_from_row)?.collect()
}

/// The event at a seq.
pub(crate) fn event_at(
    conn: &Connection,
    conversation: ConversationId,
    seq: Seq,
) -> Result<Option<Event>, StoreError> {
    let seq = signed(seq.0, "seq")?;
    let mut statement = conn
        .prepare_cached(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE conversation = ?1 AND seq = ?2"
        ))
        .map_err(crate::error::backend)?;
    statement
        .query_row(params![IdText::new(conversation), seq], event_from_row)
        .optional()
        .map_err(crate::error::backend)
}

/// The event an author sent with a client id.
pub(crate) fn event_by_client_id(
    conn: &Connection,
    conversation: ConversationId,
    author: &Actor,
    client_id: &ClientId,
) -> SqlResult<Option<Event>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE conversation = ?1 AND author_role = ?2 AND author_id = ?3 AND client_id = ?4"
    ))?;
    statement
        .query_row(
            params![
                IdText::new(conversation),
                author.role(),
                author.id_str(),
                client_id.as_str()
            ],
            event_from_row,
        )
        .optional()
}

/// Up to `limit` events after `after`, in seq order.
pub(crate) fn events_after(
    conn: &Connection,
    conversation: ConversationId,
    after: Seq,
    limit: usize,
) -> SqlResult<Vec<Event>> {
    // Cursors and limits beyond what SQLite's integers hold mean "everything" / "nothing more".
    let after = i64::try_from(after.0).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE conversation = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))?;
    statement
        .query_map(params![IdText::new(conversation), after, limit], event_from_row)?
        .collect()
}

/// Stores a new event. SQLite gives it the next `id` (see [`FEED_AFTER`]).
pub(crate) fn insert_event(conn: &Connection, event: &Event) -> Result<(), StoreError> {
    execute_insert_event(
        conn,
        event,
        "INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map(|_| ())
}

/// Stores a new event unless its author already sent an event with its client id to its conversation; returns
/// whether it was stored. Any other conflict (a taken seq) is an error.
pub(crate) fn insert_event_unless_sent(conn: &Connection, event: &Event) -> Result<bool, StoreError> {
    execute_insert_event(
        conn,
        event,
        "INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (conversation, author_role, author_id, client_id) WHERE client_id IS NOT NULL DO NOTHING",
    )
    .map(|changed| changed == 1)
}

fn execute_insert_event(conn: &Connection, event: &Event, sql: &str) -> Result<usize, StoreError> {
    let seq = signed(event.seq.0, "seq")?;
    let at = signed(event.at.0, "timestamp")?;
    let text_only = match &event.data {
        EventKind::Message { body } => body.as_text_only(),
        _ => None,
    };
    let (body, data) = match (text_only, &event.data) {
        (Some(text), _) => (Some(text), String::new()),
        (None, data) => {
            let json = serde_json::to_string(data).map_err(|source| {
                StoreError::from(SqliteError::Encode {
                    what: "event data",
                    source,
                })
            })?;
            // `body` is the searchable text (the search indexer indexes it, schema 9): a message's, or a
            // private note's (which its `data` holds too).
            let body = match data {
                EventKind::Message { body } => Some(body.text.as_str()),
                EventKind::Note { text, .. } => Some(text.as_str()),
                _ => None,
            };
            (body, json)
        }
    };
    let mut statement = conn.prepare_cached(sql).map_err(crate::error::backend)?;
    statement
        .execute(params![
            IdText::new(event.conversation),
            seq,
            at,
            event.author.role(),
            event.author.id_str(),
            event.client_id.as_ref().map(ClientId::as_str),
            event.data.name(),
            body,
            data,
        ])
        .map_err(crate::error::backend)
}

/// The feed read: events after a position, each with its conversation's tenant.
///
/// An event's feed position is its `id`, the `INTEGER PRIMARY KEY` of `events` and so the rowid: the read is a
/// range of the table's own b-tree, in its order (no index, no sort), and storing an event costs nothing for the
/// feed. Why rowids are positions:
///
/// - **Commit order is rowid order.** An `INSERT` without an `id` gets the largest rowid in the table plus one,
///   chosen inside the write transaction. SQLite runs one write transaction at a time (and the store has one
///   writer thread besides), so every row of a transaction gets a larger rowid than every row committed before
///   it; a reader's snapshot therefore always holds a prefix of the feed, and a consumer that stored a position
///   misses nothing committed later.
/// - **Nothing is handed out twice.** Rows rolled back (a refused request, a lost batch) give their rowids back
///   before anyone could see them. Events are never deleted; were they ever (retention), deleting the newest
///   event would let its rowid be used again, so such a change needs `AUTOINCREMENT` or to keep the newest row.
///   `VACUUM` keeps the values of an `INTEGER PRIMARY KEY`. Past rowid 2^63 − 1 SQLite would pick unused
///   rowids at random: not reachable in practice.
/// - **Gaps are allowed.** In practice the ids are 1, 2, 3… but the feed promises only strictly increasing
///   positions (see [`ConversationLog`](kf_core::store::ConversationLog)), and consumers must rely on order
///   alone: a row written by another tool with an explicit `id` would leave a gap.
pub(crate) const FEED_AFTER: &str = concat!(
    "SELECT ",
    event_columns!(),
    ", events.id, conversations.tenant FROM events \
     JOIN conversations ON conversations.id = events.conversation \
     WHERE events.id > ?1 ORDER BY events.id LIMIT ?2"
);

/// Up to `limit` events of every conversation after a feed position, in position order, with their tenants.
pub(crate) fn feed_after(conn: &Connection, after: FeedPosition, limit: usize) -> SqlResult<Vec<FeedEntry>> {
    // Positions and limits beyond what SQLite's integers hold mean "nothing more" / "everything".
    let after = i64::try_from(after.0).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(FEED_AFTER)?;
    statement
        .query_map(params![after, limit], |row| {
            let event = event_from_row(row)?;
            Ok(FeedEntry::new(
                FeedPosition(unsigned(row, 8)?),
                parse(row, 9)?,
                event,
            ))
        })?
        .collect()
}

/// The position of the last stored event (0 when there is none): the largest `id` (see [`FEED_AFTER`]), read
/// from the end of the table's b-tree.
pub(crate) fn feed_head(conn: &Connection) -> SqlResult<u64> {
    let mut statement = conn.prepare_cached("SELECT coalesce(max(id), 0) FROM events")?;
    statement.query_row([], |row| unsigned(row, 0))
}

/// Stores a new conversation record.
pub(crate) fn insert_conversation(
    conn: &Connection,
    conversation: &Conversation,
    open_client_id: &ClientId,
) -> Result<(), StoreError> {
    let last_seq = signed(conversation.last_seq.0, "seq")?;
    let created_at = signed(conversation.created_at.0, "timestamp")?;
    let updated_at = signed(conversation.updated_at.0, "timestamp")?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
             last_seq, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            IdText::new(conversation.id),
            conversation.tenant.as_str(),
            conversation.visitor.as_str(),
            conversation.group.as_str(),
            open_client_id.as_str(),
            conversation.state.name(),
            conversation.state.agent().map(AgentId::as_str),
            conversation.last_agent.as_ref().map(AgentId::as_str),
            last_seq,
            created_at,
            updated_at,
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// Writes a conversation's state after an event was applied to it.
pub(crate) fn update_conversation(conn: &Connection, conversation: &Conversation) -> Result<(), StoreError> {
    let hold_until = match &conversation.state {
        ConversationState::OnHold {
            until: Some(until), ..
        } => Some(signed(until.0, "timestamp")?),
        _ => None,
    };
    let last_seq = signed(conversation.last_seq.0, "seq")?;
    let updated_at = signed(conversation.updated_at.0, "timestamp")?;
    let mut statement = conn
        .prepare_cached(
            "UPDATE conversations SET state = ?2, agent = ?3, last_agent = ?4, last_seq = ?5, updated_at = ?6, \
             group_id = ?7, rating = ?8, labels = ?9, attributes = ?10, hold_until = ?11 WHERE id = ?1",
        )
        .map_err(crate::error::backend)?;
    let changed = statement
        .execute(params![
            IdText::new(conversation.id),
            conversation.state.name(),
            owner(&conversation.state),
            conversation.last_agent.as_ref().map(AgentId::as_str),
            last_seq,
            updated_at,
            conversation.group.as_str(),
            conversation.rating,
            records::encode(&conversation.labels, "conversation labels")?,
            records::encode(&conversation.attributes, "conversation attributes")?,
            hold_until,
        ])
        .map_err(crate::error::backend)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::ConversationNotFound(conversation.id))
    }
}

// After the column macros, which it uses.
mod history;

#[cfg(test)]
pub(crate) use history::indexed_or_tail;
pub(crate) use history::{search, search_conversations};
