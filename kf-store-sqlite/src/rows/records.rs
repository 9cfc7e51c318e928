//! The records beside the conversation logs: visitors, agents, groups with their routing settings and working
//! hours, conversations' visitor contexts, quick replies and entry points.

use kf_core::context::ConversationContext;
use kf_core::entry::{EntryPoint, PageRule};
use kf_core::hours::WorkingHours;
use kf_core::labels::{AttributeDefinition, AttributeKind, AttributeObject, Label};
use kf_core::model::{
    Agent, AgentId, ConversationId, EntryPointId, Group, GroupId, GroupTimers, Strategy, TenantId, Timestamp,
    Visitor, VisitorId,
};
use kf_core::prechat::PrechatField;
use kf_core::quick_replies::{QuickReply, QuickReplyScope};
use kf_core::store::{GroupHours, StoreError, TenantOrigins};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Corrupt, IdText, SqlResult, conversation_exists, conversion, parse, signed, unsigned};
use crate::SqliteError;

/// Creates or replaces a visitor record.
pub(crate) fn put_visitor(conn: &Connection, visitor: &Visitor) -> Result<(), StoreError> {
    let created_at = signed(visitor.created_at.0, "timestamp")?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO visitors (tenant, id, name, created_at, attributes) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, created_at = excluded.created_at, \
             attributes = excluded.attributes",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            visitor.tenant.as_str(),
            visitor.id.as_str(),
            visitor.name.as_deref(),
            created_at,
            encode(&visitor.attributes, "visitor attributes")?,
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// A visitor record.
pub(crate) fn visitor(conn: &Connection, tenant: &TenantId, id: &VisitorId) -> SqlResult<Option<Visitor>> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant, id, name, created_at, attributes FROM visitors WHERE tenant = ?1 AND id = ?2",
    )?;
    statement
        .query_row(params![tenant.as_str(), id.as_str()], |row| {
            let mut visitor = Visitor::new(parse(row, 0)?, parse(row, 1)?, Timestamp(unsigned(row, 3)?));
            visitor.name = row.get(2)?;
            visitor.attributes = super::json_column(row, 4)?;
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
            "INSERT INTO agents (tenant, id, name, groups, capacity, group_capacity, active) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, groups = excluded.groups, \
             capacity = excluded.capacity, group_capacity = excluded.group_capacity, active = excluded.active",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            agent.tenant.as_str(),
            agent.id.as_str(),
            agent.name,
            groups,
            i64::from(agent.capacity),
            group_capacity,
            agent.active
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
    agent.active = row.get(6)?;
    Ok(agent)
}

/// An agent record.
pub(crate) fn agent(conn: &Connection, tenant: &TenantId, id: &AgentId) -> SqlResult<Option<Agent>> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant, id, name, groups, capacity, group_capacity, active FROM agents \
         WHERE tenant = ?1 AND id = ?2",
    )?;
    statement
        .query_row(params![tenant.as_str(), id.as_str()], agent_from_row)
        .optional()
}

/// Every agent, ordered by (tenant, id).
pub(crate) fn agents(conn: &Connection) -> SqlResult<Vec<Agent>> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant, id, name, groups, capacity, group_capacity, active FROM agents ORDER BY tenant, id",
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handover: Option<GroupId>,
}

/// Creates or replaces a group record.
pub(crate) fn put_group(conn: &Connection, group: &Group) -> Result<(), StoreError> {
    let routing = GroupRouting {
        strategy: group.strategy.clone(),
        max_active: group.max_active,
        welcome: group.welcome.clone(),
        timers: group.timers.clone(),
        handover: group.handover.clone(),
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
            group.handover = routing.handover;
            Ok(group)
        })?
        .collect()
}

pub(crate) fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String, StoreError> {
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
    let prechat = encode(&entry.prechat, "pre-chat form")?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO entry_points (tenant, id, group_id, welcome, pages, prechat) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (tenant, id) DO UPDATE SET group_id = excluded.group_id, welcome = excluded.welcome, \
             pages = excluded.pages, prechat = excluded.prechat",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            entry.tenant.as_str(),
            entry.id.as_str(),
            entry.group.as_str(),
            entry.welcome,
            pages,
            prechat
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// Deletes an agent record; whether there was one.
pub(crate) fn delete_agent(conn: &Connection, tenant: &TenantId, id: &AgentId) -> Result<bool, StoreError> {
    delete_where(
        conn,
        "DELETE FROM agents WHERE tenant = ?1 AND id = ?2",
        tenant,
        id.as_str(),
    )
}

/// Deletes a group record; whether there was one.
pub(crate) fn delete_group(conn: &Connection, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError> {
    delete_where(
        conn,
        "DELETE FROM skill_groups WHERE tenant = ?1 AND id = ?2",
        tenant,
        id.as_str(),
    )
}

fn delete_where(conn: &Connection, sql: &str, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(crate::error::backend)?;
    let deleted = statement
        .execute(params![tenant.as_str(), id])
        .map_err(crate::error::backend)?;
    Ok(deleted > 0)
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
        "SELECT tenant, id, group_id, welcome, pages, prechat FROM entry_points ORDER BY tenant, id",
    )?;
    statement
        .query_map([], |row| {
            let pages: String = row.get(4)?;
            let pages: Vec<PageRule> = serde_json::from_str(&pages).map_err(|error| conversion(4, error))?;
            let prechat: String = row.get(5)?;
            let prechat: Vec<PrechatField> =
                serde_json::from_str(&prechat).map_err(|error| conversion(5, error))?;
            let mut entry = EntryPoint::new(parse(row, 0)?, parse(row, 1)?, parse(row, 2)?)
                .with_pages(pages)
                .with_prechat(prechat);
            entry.welcome = row.get(3)?;
            Ok(entry)
        })?
        .collect()
}

/// Creates or replaces a label definition.
pub(crate) fn put_label(conn: &Connection, label: &Label) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO labels (tenant, name, color) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tenant, name) DO UPDATE SET color = excluded.color",
    )
    .and_then(|mut statement| statement.execute(params![label.tenant.as_str(), label.name, label.color]))
    .map_err(crate::error::backend)?;
    Ok(())
}

/// Deletes a label definition; false when there was none.
pub(crate) fn delete_label(conn: &Connection, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM labels WHERE tenant = ?1 AND name = ?2")
        .and_then(|mut statement| statement.execute(params![tenant.as_str(), name]))
        .map_err(crate::error::backend)?;
    Ok(deleted > 0)
}

/// A tenant's label definitions, by name.
pub(crate) fn labels(conn: &Connection, tenant: &TenantId) -> SqlResult<Vec<Label>> {
    let mut statement =
        conn.prepare_cached("SELECT tenant, name, color FROM labels WHERE tenant = ?1 ORDER BY name")?;
    statement
        .query_map(params![tenant.as_str()], |row| {
            Ok(Label::new(
                parse(row, 0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?
        .collect()
}

fn object_name(object: AttributeObject) -> &'static str {
    object.name()
}

/// Creates or replaces an attribute definition.
pub(crate) fn put_attribute_definition(
    conn: &Connection,
    definition: &AttributeDefinition,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO attribute_definitions (tenant, object, key, kind, name) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (tenant, object, key) DO UPDATE SET kind = excluded.kind, name = excluded.name",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            definition.tenant.as_str(),
            object_name(definition.object),
            definition.key,
            definition.kind.name(),
            definition.name,
        ])
    })
    .map_err(crate::error::backend)?;
    Ok(())
}

/// Deletes an attribute definition; false when there was none.
pub(crate) fn delete_attribute_definition(
    conn: &Connection,
    tenant: &TenantId,
    object: AttributeObject,
    key: &str,
) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM attribute_definitions WHERE tenant = ?1 AND object = ?2 AND key = ?3")
        .and_then(|mut statement| statement.execute(params![tenant.as_str(), object_name(object), key]))
        .map_err(crate::error::backend)?;
    Ok(deleted > 0)
}

/// A tenant's attribute definitions, visitor's first, then by key.
pub(crate) fn attribute_definitions(
    conn: &Connection,
    tenant: &TenantId,
) -> SqlResult<Vec<AttributeDefinition>> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant, object, key, kind, name FROM attribute_definitions WHERE tenant = ?1 \
         ORDER BY CASE object WHEN 'visitor' THEN 0 ELSE 1 END, key",
    )?;
    statement
        .query_map(params![tenant.as_str()], |row| {
            let object = match row.get::<_, String>(1)?.as_str() {
                "visitor" => AttributeObject::Visitor,
                "conversation" => AttributeObject::Conversation,
                other => {
                    return Err(super::conversion(
                        1,
                        Corrupt(format!("unknown attribute object {other:?}")),
                    ));
                }
            };
            let kind = match row.get::<_, String>(3)?.as_str() {
                "string" => AttributeKind::String,
                "number" => AttributeKind::Number,
                "bool" => AttributeKind::Bool,
                "date" => AttributeKind::Date,
                other => {
                    return Err(super::conversion(
                        3,
                        Corrupt(format!("unknown attribute type {other:?}")),
                    ));
                }
            };
            let mut definition =
                AttributeDefinition::new(parse(row, 0)?, object, row.get::<_, String>(2)?, kind);
            definition.name = row.get(4)?;
            Ok(definition)
        })?
        .collect()
}

/// Sets a tenant's allowed origins (replacing its list).
pub(crate) fn put_allowed_origins(
    conn: &Connection,
    tenant: &TenantId,
    origins: &[String],
) -> Result<(), StoreError> {
    let origins = serde_json::to_string(origins).map_err(|source| {
        StoreError::from(SqliteError::Encode {
            what: "allowed origins",
            source,
        })
    })?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO allowed_origins (tenant, origins) VALUES (?1, ?2) \
             ON CONFLICT (tenant) DO UPDATE SET origins = excluded.origins",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![tenant.as_str(), origins])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// Every tenant's allowed origins, ordered by tenant.
pub(crate) fn allowed_origins(conn: &Connection) -> SqlResult<Vec<TenantOrigins>> {
    let mut statement = conn.prepare_cached("SELECT tenant, origins FROM allowed_origins ORDER BY tenant")?;
    statement
        .query_map([], |row| {
            Ok(TenantOrigins {
                tenant: parse(row, 0)?,
                origins: super::json_column(row, 1)?,
            })
        })?
        .collect()
}
