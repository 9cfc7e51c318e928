//! Rows: how records and events are laid out in the tables, and the statements that read and write them.

use std::str::FromStr;

use kf_core::context::ConversationContext;
use kf_core::entry::{EntryPoint, PageRule};
use kf_core::hours::WorkingHours;
use kf_core::model::{
    Actor, Agent, AgentId, ClientId, Conversation, ConversationId, ConversationState, EntryPointId, Event,
    EventKind, Group, GroupId, GroupTimers, MessageBody, Seq, Strategy, TenantId, Timestamp, Visitor,
    VisitorId,
};
use kf_core::quick_replies::{QuickReply, QuickReplyScope};
use kf_core::store::{FeedEntry, FeedPosition, GroupHours, StoreError};
use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::SqliteError;

/// A conversation's columns. Its `last_seq` and `updated_at` are those of its newest event, read from the log (two
/// seeks in `events`' `(conversation, seq)` index): the row's own columns are written only when the
/// conversation's state changes, so that a message, the most common event by far, does not rewrite its
/// conversation's row in the same commit (`docs/benchmarks.md` §4). The row's values stand in only for a
/// conversation without events, which the store never makes (a conversation is created with its first event).
macro_rules! conversation_columns {
    () => {
        "id, tenant, visitor, group_id, state, agent, last_agent, \
         COALESCE((SELECT seq FROM events WHERE events.conversation = conversations.id \
                   ORDER BY seq DESC LIMIT 1), last_seq), \
         created_at, \
         COALESCE((SELECT at FROM events WHERE events.conversation = conversations.id \
                   ORDER BY seq DESC LIMIT 1), updated_at)"
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

fn conversation_from_row(row: &Row<'_>) -> SqlResult<Conversation> {
    let state: String = row.get(4)?;
    let agent: Option<AgentId> = parse_optional(row, 5)?;
    let state = match (state.as_str(), agent) {
        ("queued", _) => ConversationState::Queued,
        ("assigned", Some(agent)) => ConversationState::Assigned { agent },
        ("closed", _) => ConversationState::Closed,
        ("offline", _) => ConversationState::Offline,
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
            let body = match data {
                EventKind::Message { body } => Some(body.text.as_str()),
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
    let last_seq = signed(conversation.last_seq.0, "seq")?;
    let updated_at = signed(conversation.updated_at.0, "timestamp")?;
    let mut statement = conn
        .prepare_cached(
            "UPDATE conversations SET state = ?2, agent = ?3, last_agent = ?4, last_seq = ?5, updated_at = ?6, \
             group_id = ?7 WHERE id = ?1",
        )
        .map_err(crate::error::backend)?;
    let changed = statement
        .execute(params![
            IdText::new(conversation.id),
            conversation.state.name(),
            conversation.state.agent().map(AgentId::as_str),
            conversation.last_agent.as_ref().map(AgentId::as_str),
            last_seq,
            updated_at,
            conversation.group.as_str(),
        ])
        .map_err(crate::error::backend)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::ConversationNotFound(conversation.id))
    }
}

/// Creates or replaces a visitor record.
pub(crate) fn put_visitor(conn: &Connection, visitor: &Visitor) -> Result<(), StoreError> {
    let created_at = signed(visitor.created_at.0, "timestamp")?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO visitors (tenant, id, name, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, created_at = excluded.created_at",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            visitor.tenant.as_str(),
            visitor.id.as_str(),
            visitor.name.as_deref(),
            created_at
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// A visitor record.
pub(crate) fn visitor(conn: &Connection, tenant: &TenantId, id: &VisitorId) -> SqlResult<Option<Visitor>> {
    let mut statement = conn
        .prepare_cached("SELECT tenant, id, name, created_at FROM visitors WHERE tenant = ?1 AND id = ?2")?;
    statement
        .query_row(params![tenant.as_str(), id.as_str()], |row| {
            let mut visitor = Visitor::new(parse(row, 0)?, parse(row, 1)?, Timestamp(unsigned(row, 3)?));
            visitor.name = row.get(2)?;
            Ok(visitor)
        })
        .optional()
}

/// Creates or replaces an agent record.
pub(crate) fn put_agent(conn: &Connection, agent: &Agent) -> Result<(), StoreError> {
    let groups = serde_json::to_string(&agent.groups).map_err(|source| {
        StoreError::from(SqliteError::Encode {
            what: "agent groups",
            source,
        })
    })?;
    let group_capacity = serde_json::to_string(&agent.group_capacity).map_err(|source| {
        StoreError::from(SqliteError::Encode {
            what: "agent group capacities",
            source,
        })
    })?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO agents (tenant, id, name, groups, capacity, group_capacity) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, groups = excluded.groups, \
             capacity = excluded.capacity, group_capacity = excluded.group_capacity",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            agent.tenant.as_str(),
            agent.id.as_str(),
            agent.name,
            groups,
            i64::from(agent.capacity),
            group_capacity
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

fn agent_from_row(row: &Row<'_>) -> SqlResult<Agent> {
    let groups: String = row.get(3)?;
    let groups: Vec<GroupId> = serde_json::from_str(&groups).map_err(|error| conversion(3, error))?;
    let capacity: i64 = row.get(4)?;
    let group_capacity: String = row.get(5)?;
    let group_capacity = serde_json::from_str(&group_capacity).map_err(|error| conversion(5, error))?;
    let capacity =
        u32::try_from(capacity).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(4, capacity))?;
    let mut agent =
        Agent::new(parse(row, 0)?, parse(row, 1)?, row.get::<_, String>(2)?, capacity).with_groups(groups);
    agent.group_capacity = group_capacity;
    Ok(agent)
}

/// An agent record.
pub(crate) fn agent(conn: &Connection, tenant: &TenantId, id: &AgentId) -> SqlResult<Option<Agent>> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant, id, name, groups, capacity, group_capacity FROM agents WHERE tenant = ?1 AND id = ?2",
    )?;
    statement
        .query_row(params![tenant.as_str(), id.as_str()], agent_from_row)
        .optional()
}

/// Every agent, ordered by (tenant, id).
pub(crate) fn agents(conn: &Connection) -> SqlResult<Vec<Agent>> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant, id, name, groups, capacity, group_capacity FROM agents ORDER BY tenant, id",
    )?;
    statement.query_map([], agent_from_row)?.collect()
}

/// A group's routing settings, stored as one JSON object so a new setting needs no new column.
#[derive(serde::Serialize, serde::Deserialize)]
struct GroupRouting {
    #[serde(default)]
    strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_active: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    welcome: Option<String>,
    #[serde(default, skip_serializing_if = "GroupTimers::is_off")]
    timers: GroupTimers,
}

/// Creates or replaces a group record.
pub(crate) fn put_group(conn: &Connection, group: &Group) -> Result<(), StoreError> {
    let routing = GroupRouting {
        strategy: group.strategy.clone(),
        max_active: group.max_active,
        welcome: group.welcome.clone(),
        timers: group.timers.clone(),
    };
    let routing = serde_json::to_string(&routing).map_err(|source| {
        StoreError::from(SqliteError::Encode {
            what: "group routing",
            source,
        })
    })?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO skill_groups (tenant, id, name, routing) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, routing = excluded.routing",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            group.tenant.as_str(),
            group.id.as_str(),
            group.name,
            routing
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// Every group, ordered by (tenant, id).
pub(crate) fn groups(conn: &Connection) -> SqlResult<Vec<Group>> {
    let mut statement =
        conn.prepare_cached("SELECT tenant, id, name, routing FROM skill_groups ORDER BY tenant, id")?;
    statement
        .query_map([], |row| {
            let routing: String = row.get(3)?;
            let routing: GroupRouting =
                serde_json::from_str(&routing).map_err(|error| conversion(3, error))?;
            let mut group = Group::new(parse(row, 0)?, parse(row, 1)?, row.get::<_, String>(2)?)
                .with_strategy(routing.strategy)
                .with_timers(routing.timers);
            group.max_active = routing.max_active;
            group.welcome = routing.welcome;
            Ok(group)
        })?
        .collect()
}

fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::from(SqliteError::Encode { what, source }))
}

/// Sets or removes a group's working hours.
pub(crate) fn put_group_hours(
    conn: &Connection,
    tenant: &TenantId,
    group: &GroupId,
    hours: Option<&WorkingHours>,
) -> Result<(), StoreError> {
    let Some(hours) = hours else {
        let mut statement = conn
            .prepare_cached("DELETE FROM group_hours WHERE tenant = ?1 AND group_id = ?2")
            .map_err(crate::error::backend)?;
        statement
            .execute(params![tenant.as_str(), group.as_str()])
            .map_err(crate::error::backend)?;
        return Ok(());
    };
    let json = encode(hours, "working hours")?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO group_hours (tenant, group_id, hours) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tenant, group_id) DO UPDATE SET hours = excluded.hours",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![tenant.as_str(), group.as_str(), json])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// Every group's working hours, ordered by (tenant, group).
pub(crate) fn group_hours(conn: &Connection) -> SqlResult<Vec<GroupHours>> {
    let mut statement =
        conn.prepare_cached("SELECT tenant, group_id, hours FROM group_hours ORDER BY tenant, group_id")?;
    statement
        .query_map([], |row| {
            let json: String = row.get(2)?;
            Ok(GroupHours {
                tenant: parse(row, 0)?,
                group: parse(row, 1)?,
                hours: serde_json::from_str(&json).map_err(|error| conversion(2, error))?,
            })
        })?
        .collect()
}

/// Creates or replaces a conversation's context summary.
pub(crate) fn put_context(conn: &Connection, context: &ConversationContext) -> Result<(), StoreError> {
    if !conversation_exists(conn, context.conversation).map_err(crate::error::backend)? {
        return Err(StoreError::ConversationNotFound(context.conversation));
    }
    let json = encode(context, "visitor context")?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO conversation_contexts (conversation, data) VALUES (?1, ?2) \
             ON CONFLICT (conversation) DO UPDATE SET data = excluded.data",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![IdText::new(context.conversation), json])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// A conversation's context summary.
pub(crate) fn context(conn: &Connection, id: ConversationId) -> SqlResult<Option<ConversationContext>> {
    let mut statement =
        conn.prepare_cached("SELECT data FROM conversation_contexts WHERE conversation = ?1")?;
    statement
        .query_row([IdText::new(id)], |row| {
            let json: String = row.get(0)?;
            serde_json::from_str(&json).map_err(|error| conversion(0, error))
        })
        .optional()
}

fn scope_columns(scope: &QuickReplyScope) -> (&'static str, &str) {
    match scope {
        QuickReplyScope::Agent { agent } => ("agent", agent.as_str()),
        QuickReplyScope::Group { group } => ("group", group.as_str()),
    }
}

fn quick_reply_from_row(row: &Row<'_>) -> SqlResult<QuickReply> {
    let scope: String = row.get(2)?;
    let scope = match scope.as_str() {
        "agent" => QuickReplyScope::Agent {
            agent: parse(row, 3)?,
        },
        "group" => QuickReplyScope::Group {
            group: parse(row, 3)?,
        },
        other => {
            return Err(conversion(
                2,
                Corrupt(format!("unknown quick reply scope {other:?}")),
            ));
        }
    };
    Ok(QuickReply::new(
        parse(row, 0)?,
        row.get::<_, String>(1)?,
        scope,
        row.get::<_, String>(4)?,
        row.get::<_, String>(5)?,
    ))
}

/// Creates or replaces a quick reply; `Conflict` when its shortcut is taken by another one of its scope.
pub(crate) fn put_quick_reply(conn: &Connection, reply: &QuickReply) -> Result<(), StoreError> {
    let (scope, owner) = scope_columns(&reply.scope);
    let taken = conn
        .prepare_cached(
            "SELECT 1 FROM quick_replies WHERE tenant = ?1 AND scope = ?2 AND owner = ?3 AND shortcut = ?4 \
             AND id <> ?5",
        )
        .and_then(|mut statement| {
            statement.exists(params![
                reply.tenant.as_str(),
                scope,
                owner,
                reply.shortcut,
                reply.id
            ])
        })
        .map_err(crate::error::backend)?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "shortcut {:?} is already taken in this scope",
            reply.shortcut
        )));
    }
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO quick_replies (tenant, id, scope, owner, shortcut, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (tenant, id) DO UPDATE SET scope = excluded.scope, owner = excluded.owner, \
             shortcut = excluded.shortcut, text = excluded.text",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            reply.tenant.as_str(),
            reply.id,
            scope,
            owner,
            reply.shortcut,
            reply.text
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// Deletes a quick reply; whether there was one.
pub(crate) fn delete_quick_reply(conn: &Connection, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    let mut statement = conn
        .prepare_cached("DELETE FROM quick_replies WHERE tenant = ?1 AND id = ?2")
        .map_err(crate::error::backend)?;
    let deleted = statement
        .execute(params![tenant.as_str(), id])
        .map_err(crate::error::backend)?;
    Ok(deleted > 0)
}

/// A quick reply by id.
pub(crate) fn quick_reply(conn: &Connection, tenant: &TenantId, id: &str) -> SqlResult<Option<QuickReply>> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant, id, scope, owner, shortcut, text FROM quick_replies WHERE tenant = ?1 AND id = ?2",
    )?;
    statement
        .query_row(params![tenant.as_str(), id], quick_reply_from_row)
        .optional()
}

/// The quick replies of a scope, ordered by shortcut.
pub(crate) fn quick_replies(
    conn: &Connection,
    tenant: &TenantId,
    scope: &QuickReplyScope,
) -> SqlResult<Vec<QuickReply>> {
    let (scope, owner) = scope_columns(scope);
    let mut statement = conn.prepare_cached(
        "SELECT tenant, id, scope, owner, shortcut, text FROM quick_replies \
         WHERE tenant = ?1 AND scope = ?2 AND owner = ?3 ORDER BY shortcut",
    )?;
    statement
        .query_map(params![tenant.as_str(), scope, owner], quick_reply_from_row)?
        .collect()
}

/// Creates or replaces an entry point.
pub(crate) fn put_entry_point(conn: &Connection, entry: &EntryPoint) -> Result<(), StoreError> {
    let pages = encode(&entry.pages, "page rules")?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO entry_points (tenant, id, group_id, welcome, pages) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant, id) DO UPDATE SET group_id = excluded.group_id, welcome = excluded.welcome, \
             pages = excluded.pages",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            entry.tenant.as_str(),
            entry.id.as_str(),
            entry.group.as_str(),
            entry.welcome,
            pages
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// Deletes an entry point; whether there was one.
pub(crate) fn delete_entry_point(
    conn: &Connection,
    tenant: &TenantId,
    id: &EntryPointId,
) -> Result<bool, StoreError> {
    let mut statement = conn
        .prepare_cached("DELETE FROM entry_points WHERE tenant = ?1 AND id = ?2")
        .map_err(crate::error::backend)?;
    let deleted = statement
        .execute(params![tenant.as_str(), id.as_str()])
        .map_err(crate::error::backend)?;
    Ok(deleted > 0)
}

/// Every entry point, ordered by (tenant, id).
pub(crate) fn entry_points(conn: &Connection) -> SqlResult<Vec<EntryPoint>> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant, id, group_id, welcome, pages FROM entry_points ORDER BY tenant, id",
    )?;
    statement
        .query_map([], |row| {
            let pages: String = row.get(4)?;
            let pages: Vec<PageRule> = serde_json::from_str(&pages).map_err(|error| conversion(4, error))?;
            let mut entry = EntryPoint::new(parse(row, 0)?, parse(row, 1)?, parse(row, 2)?).with_pages(pages);
            entry.welcome = row.get(3)?;
            Ok(entry)
        })?
        .collect()
}
