//! The audit log's rows (`audit_log`, schema 10): appended by the writer, listed by readers.

use kf_core::model::Timestamp;
use kf_core::store::{AuditEntry, AuditPage, AuditQuery, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};

use super::{Corrupt, SqlResult, conversion, parse};
use crate::SqliteError;

fn encode(value: &Option<serde_json::Value>) -> Result<Option<String>, StoreError> {
    value
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|source| {
            StoreError::from(SqliteError::Encode {
                what: "an audit entry's object",
                source,
            })
        })
}

/// Appends an entry; returns its id (the rowid SQLite gives it: larger than every id before).
pub(crate) fn append_audit(conn: &Connection, entry: &AuditEntry) -> Result<u64, StoreError> {
    let at = i64::try_from(entry.at.0)
        .map_err(|_| StoreError::Invalid(format!("time {} is out of range", entry.at.0)))?;
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO audit_log (tenant, actor, at, action, object_kind, object_id, before, after) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            entry.tenant.as_str(),
            entry.actor.as_str(),
            at,
            entry.action,
            entry.object_kind,
            entry.object_id,
            encode(&entry.before)?,
            encode(&entry.after)?,
        ])
        .map_err(crate::error::backend)?;
    u64::try_from(conn.last_insert_rowid()).map_err(|_| StoreError::Invalid("negative audit id".into()))
}

fn json(row: &Row<'_>, index: usize) -> SqlResult<Option<serde_json::Value>> {
    let text: Option<String> = row.get(index)?;
    text.map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|error| conversion(index, Corrupt(error.to_string())))
}

fn entry_from_row(row: &Row<'_>) -> SqlResult<AuditEntry> {
    let id: i64 = row.get(0)?;
    let at: i64 = row.get(3)?;
    let mut entry = AuditEntry::new(
        parse(row, 1)?,
        parse(row, 2)?,
        Timestamp(u64::try_from(at).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(3, at))?),
        row.get::<_, String>(4)?,
        row.get::<_, String>(5)?,
        row.get::<_, String>(6)?,
        json(row, 7)?,
        json(row, 8)?,
    );
    entry.id = u64::try_from(id).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, id))?;
    Ok(entry)
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One page of the entries `query` matches, newest first.
pub(crate) fn audit_entries(conn: &Connection, query: &AuditQuery) -> Result<AuditPage, StoreError> {
    let size = query.page_size()?;
    let tenant = query
        .tenant
        .as_ref()
        .ok_or_else(|| StoreError::Invalid("an audit query names its tenant".into()))?;
    let mut sql = String::from(
        "SELECT id, tenant, actor, at, action, object_kind, object_id, before, after FROM audit_log \
         WHERE tenant = ?",
    );
    let mut values: Vec<Value> = vec![Value::Text(tenant.as_str().to_owned())];
    let text_filters = [
        (
            "actor",
            query.actor.as_ref().map(|actor| actor.as_str().to_owned()),
        ),
        ("object_kind", query.object_kind.clone()),
        ("object_id", query.object_id.clone()),
        ("action", query.action.clone()),
    ];
    for (column, value) in text_filters {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            values.push(Value::Text(value));
        }
    }
    let number_filters = [
        ("at >= ?", query.since.map(|t| t.0)),
        ("at < ?", query.until.map(|t| t.0)),
        ("id < ?", query.before),
    ];
    for (condition, value) in number_filters {
        if let Some(value) = value {
            sql.push_str(" AND ");
            sql.push_str(condition);
            values.push(Value::Integer(clamp(value)));
        }
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    values.push(Value::Integer(clamp(size as u64 + 1)));
    let mut statement = conn.prepare(&sql).map_err(crate::error::backend)?;
    let entries = statement
        .query_map(params_from_iter(values), entry_from_row)
        .and_then(|rows| rows.collect::<SqlResult<Vec<_>>>())
        .map_err(crate::error::backend)?;
    Ok(AuditPage::of(entries, size))
}
