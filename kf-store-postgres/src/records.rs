//! The directory's and the settings' records (visitors, agents, groups, entry points, working hours, quick
//! replies, labels, attribute definitions) and conversation contexts. Each write is one statement in a
//! transaction of its own: they need no seq or feed position, so they skip the writer's group commit.

use deadpool_postgres::ClientWrapper;
use kf_core::context::ConversationContext;
use kf_core::entry::EntryPoint;
use kf_core::hours::WorkingHours;
use kf_core::labels::{AttributeDefinition, AttributeObject, Label};
use kf_core::model::{Agent, ConversationId, Group, GroupId, TenantId, Visitor};
use kf_core::quick_replies::{QuickReply, QuickReplyScope};
use kf_core::store::{GroupHours, StoreError, TenantOrigins};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::error::{backend, sqlstate};
use crate::rows::{Cached, corrupt, decode, encode};

/// The tables of records kept whole as JSON under (tenant, id).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Table {
    Visitors,
    Agents,
    Groups,
    EntryPoints,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Visitors => "visitors",
            Table::Agents => "agents",
            Table::Groups => "skill_groups",
            Table::EntryPoints => "entry_points",
        }
    }
}

async fn execute(
    client: &ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    client.cached_execute(sql, params).await.map_err(backend)
}

async fn query(
    client: &ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    client.cached_query(sql, params).await.map_err(backend)
}

fn decode_rows<T: serde::de::DeserializeOwned>(
    rows: &[Row],
    table: &'static str,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|row| {
            let data: &str = row.try_get(0).map_err(backend)?;
            decode(data, table)
        })
        .collect()
}

/// Creates or replaces a record of a (tenant, id) table.
pub(crate) async fn put<T: serde::Serialize>(
    client: &ClientWrapper,
    table: Table,
    tenant: &TenantId,
    id: &str,
    record: &T,
) -> Result<(), StoreError> {
    let data = encode(record, table.name())?;
    let sql = format!(
        "INSERT INTO {} (tenant, id, data) VALUES ($1, $2, $3) ON CONFLICT (tenant, id) DO UPDATE SET data = excluded.data",
        table.name()
    );
    execute(client, &sql, &[&tenant.as_str(), &id, &data])
        .await
        .map(drop)
}

/// A record of a (tenant, id) table.
pub(crate) async fn get<T: serde::de::DeserializeOwned>(
    client: &ClientWrapper,
    table: Table,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<T>, StoreError> {
    let sql = format!("SELECT data FROM {} WHERE tenant = $1 AND id = $2", table.name());
    let rows = query(client, &sql, &[&tenant.as_str(), &id]).await?;
    Ok(decode_rows(&rows, table.name())?.pop())
}

/// Every record of a (tenant, id) table, ordered by (tenant, id).
pub(crate) async fn all<T: serde::de::DeserializeOwned>(
    client: &ClientWrapper,
    table: Table,
) -> Result<Vec<T>, StoreError> {
    let sql = format!("SELECT data FROM {} ORDER BY tenant, id", table.name());
    let rows = query(client, &sql, &[]).await?;
    decode_rows(&rows, table.name())
}

/// Deletes a record of a (tenant, id) table; whether there was one.
pub(crate) async fn delete(
    client: &ClientWrapper,
    table: Table,
    tenant: &TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let sql = format!("DELETE FROM {} WHERE tenant = $1 AND id = $2", table.name());
    Ok(execute(client, &sql, &[&tenant.as_str(), &id]).await? > 0)
}

pub(crate) async fn put_visitor(client: &ClientWrapper, visitor: &Visitor) -> Result<(), StoreError> {
    put(
        client,
        Table::Visitors,
        &visitor.tenant,
        visitor.id.as_str(),
        visitor,
    )
    .await
}

pub(crate) async fn put_agent(client: &ClientWrapper, agent: &Agent) -> Result<(), StoreError> {
    put(client, Table::Agents, &agent.tenant, agent.id.as_str(), agent).await
}

pub(crate) async fn put_group(client: &ClientWrapper, group: &Group) -> Result<(), StoreError> {
    put(client, Table::Groups, &group.tenant, group.id.as_str(), group).await
}

pub(crate) async fn put_entry_point(client: &ClientWrapper, entry: &EntryPoint) -> Result<(), StoreError> {
    put(
        client,
        Table::EntryPoints,
        &entry.tenant,
        entry.id.as_str(),
        entry,
    )
    .await
}

/// Sets or removes a group's working hours.
pub(crate) async fn put_group_hours(
    client: &ClientWrapper,
    tenant: &TenantId,
    group: &GroupId,
    hours: Option<&WorkingHours>,
) -> Result<(), StoreError> {
    let Some(hours) = hours else {
        let sql = "DELETE FROM group_hours WHERE tenant = $1 AND group_id = $2";
        return execute(client, sql, &[&tenant.as_str(), &group.as_str()])
            .await
            .map(drop);
    };
    let data = encode(hours, "working hours")?;
    execute(
        client,
        "INSERT INTO group_hours (tenant, group_id, data) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant, group_id) DO UPDATE SET data = excluded.data",
        &[&tenant.as_str(), &group.as_str(), &data],
    )
    .await
    .map(drop)
}

/// Every group's working hours, ordered by (tenant, group).
pub(crate) async fn group_hours(client: &ClientWrapper) -> Result<Vec<GroupHours>, StoreError> {
    let rows = query(
        client,
        "SELECT tenant, group_id, data FROM group_hours ORDER BY tenant, group_id",
        &[],
    )
    .await?;
    rows.iter()
        .map(|row| {
            let tenant: &str = row.try_get(0).map_err(backend)?;
            let group: &str = row.try_get(1).map_err(backend)?;
            let data: &str = row.try_get(2).map_err(backend)?;
            let invalid = |error: kf_core::model::InvalidId| corrupt("group_hours", error.to_string());
            Ok(GroupHours {
                tenant: tenant.parse().map_err(invalid)?,
                group: group.parse().map_err(invalid)?,
                hours: decode(data, "group_hours")?,
            })
        })
        .collect()
}

/// Creates or replaces a conversation's context summary; not found for an unknown conversation (the foreign
/// key decides, so a conversation committed by another node counts).
pub(crate) async fn put_context(
    client: &ClientWrapper,
    context: &ConversationContext,
) -> Result<(), StoreError> {
    let data = encode(context, "visitor context")?;
    let result = client
        .cached_execute(
            "INSERT INTO conversation_contexts (conversation, data) VALUES ($1, $2) \
             ON CONFLICT (conversation) DO UPDATE SET data = excluded.data",
            &[&context.conversation.as_uuid(), &data],
        )
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if sqlstate(&error) == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
            Err(StoreError::ConversationNotFound(context.conversation))
        }
        Err(error) => Err(backend(error)),
    }
}

/// A conversation's context summary.
pub(crate) async fn context(
    client: &ClientWrapper,
    id: ConversationId,
) -> Result<Option<ConversationContext>, StoreError> {
    let rows = query(
        client,
        "SELECT data FROM conversation_contexts WHERE conversation = $1",
        &[&id.as_uuid()],
    )
    .await?;
    Ok(decode_rows(&rows, "conversation_contexts")?.pop())
}

fn scope_columns(scope: &QuickReplyScope) -> (&'static str, &str) {
    match scope {
        QuickReplyScope::Agent { agent } => ("agent", agent.as_str()),
        QuickReplyScope::Group { group } => ("group", group.as_str()),
    }
}

/// Creates or replaces a quick reply; `Conflict` when its shortcut is taken by another one of its scope (the
/// unique constraint decides, also between nodes).
pub(crate) async fn put_quick_reply(client: &ClientWrapper, reply: &QuickReply) -> Result<(), StoreError> {
    let (scope, owner) = scope_columns(&reply.scope);
    let data = encode(reply, "quick reply")?;
    let result = client
        .cached_execute(
            "INSERT INTO quick_replies (tenant, id, scope, owner, shortcut, data) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant, id) DO UPDATE SET scope = excluded.scope, owner = excluded.owner, \
             shortcut = excluded.shortcut, data = excluded.data",
            &[&reply.tenant.as_str(), &reply.id, &scope, &owner, &reply.shortcut, &data],
        )
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error)
            if sqlstate(&error) == Some(&SqlState::UNIQUE_VIOLATION)
                && error
                    .as_db_error()
                    .and_then(|db| db.constraint())
                    .is_some_and(|name| name == "quick_replies_shortcut") =>
        {
            Err(StoreError::Conflict(format!(
                "shortcut {:?} is already taken in this scope",
                reply.shortcut
            )))
        }
        Err(error) => Err(backend(error)),
    }
}

/// Deletes a quick reply; whether there was one.
pub(crate) async fn delete_quick_reply(
    client: &ClientWrapper,
    tenant: &TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM quick_replies WHERE tenant = $1 AND id = $2";
    Ok(execute(client, sql, &[&tenant.as_str(), &id]).await? > 0)
}

/// A quick reply by id.
pub(crate) async fn quick_reply(
    client: &ClientWrapper,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<QuickReply>, StoreError> {
    let rows = query(
        client,
        "SELECT data FROM quick_replies WHERE tenant = $1 AND id = $2",
        &[&tenant.as_str(), &id],
    )
    .await?;
    Ok(decode_rows(&rows, "quick_replies")?.pop())
}

/// The quick replies of a scope, ordered by shortcut.
pub(crate) async fn quick_replies(
    client: &ClientWrapper,
    tenant: &TenantId,
    scope: &QuickReplyScope,
) -> Result<Vec<QuickReply>, StoreError> {
    let (scope, owner) = scope_columns(scope);
    let rows = query(
        client,
        "SELECT data FROM quick_replies WHERE tenant = $1 AND scope = $2 AND owner = $3 ORDER BY shortcut",
        &[&tenant.as_str(), &scope, &owner],
    )
    .await?;
    decode_rows(&rows, "quick_replies")
}

/// Creates or replaces a label definition.
pub(crate) async fn put_label(client: &ClientWrapper, label: &Label) -> Result<(), StoreError> {
    let data = encode(label, "label")?;
    execute(
        client,
        "INSERT INTO labels (tenant, name, data) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant, name) DO UPDATE SET data = excluded.data",
        &[&label.tenant.as_str(), &label.name, &data],
    )
    .await
    .map(drop)
}

/// Deletes a label definition; whether there was one.
pub(crate) async fn delete_label(
    client: &ClientWrapper,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM labels WHERE tenant = $1 AND name = $2";
    Ok(execute(client, sql, &[&tenant.as_str(), &name]).await? > 0)
}

/// A tenant's label definitions, by name.
pub(crate) async fn labels(client: &ClientWrapper, tenant: &TenantId) -> Result<Vec<Label>, StoreError> {
    let rows = query(
        client,
        "SELECT data FROM labels WHERE tenant = $1 ORDER BY name",
        &[&tenant.as_str()],
    )
    .await?;
    decode_rows(&rows, "labels")
}

/// Creates or replaces an attribute definition.
pub(crate) async fn put_attribute_definition(
    client: &ClientWrapper,
    definition: &AttributeDefinition,
) -> Result<(), StoreError> {
    let data = encode(definition, "attribute definition")?;
    execute(
        client,
        "INSERT INTO attribute_definitions (tenant, object, key, data) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant, object, key) DO UPDATE SET data = excluded.data",
        &[
            &definition.tenant.as_str(),
            &definition.object.name(),
            &definition.key,
            &data,
        ],
    )
    .await
    .map(drop)
}

/// Deletes an attribute definition; whether there was one.
pub(crate) async fn delete_attribute_definition(
    client: &ClientWrapper,
    tenant: &TenantId,
    object: AttributeObject,
    key: &str,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM attribute_definitions WHERE tenant = $1 AND object = $2 AND key = $3";
    Ok(execute(client, sql, &[&tenant.as_str(), &object.name(), &key]).await? > 0)
}

/// A tenant's attribute definitions, visitor's first, then by key.
pub(crate) async fn attribute_definitions(
    client: &ClientWrapper,
    tenant: &TenantId,
) -> Result<Vec<AttributeDefinition>, StoreError> {
    let rows = query(
        client,
        "SELECT data FROM attribute_definitions WHERE tenant = $1 \
         ORDER BY CASE object WHEN 'visitor' THEN 0 ELSE 1 END, key",
        &[&tenant.as_str()],
    )
    .await?;
    decode_rows(&rows, "attribute_definitions")
}

/// Sets a tenant's allowed origins (replacing its list).
pub(crate) async fn put_allowed_origins(
    client: &ClientWrapper,
    tenant: &TenantId,
    origins: &[String],
) -> Result<(), StoreError> {
    let data = encode(&origins, "allowed_origins")?;
    execute(
        client,
        "INSERT INTO allowed_origins (tenant, data) VALUES ($1, $2) \
         ON CONFLICT (tenant) DO UPDATE SET data = excluded.data",
        &[&tenant.as_str(), &data],
    )
    .await
    .map(drop)
}

/// Every tenant's allowed origins, ordered by tenant.
pub(crate) async fn allowed_origins(client: &ClientWrapper) -> Result<Vec<TenantOrigins>, StoreError> {
    let rows = query(
        client,
        "SELECT tenant, data FROM allowed_origins ORDER BY tenant",
        &[],
    )
    .await?;
    rows.iter()
        .map(|row| {
            let tenant: &str = row.try_get(0).map_err(backend)?;
            let data: &str = row.try_get(1).map_err(backend)?;
            Ok(TenantOrigins {
                tenant: tenant.parse().map_err(|error: kf_core::model::InvalidId| {
                    corrupt("allowed_origins", error.to_string())
                })?,
                origins: decode(data, "allowed_origins")?,
            })
        })
        .collect()
}
