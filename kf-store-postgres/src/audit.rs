//! [`AuditLog`] for [`PostgresStore`]: the admin changes in `audit_log` (schema 3), ids from an identity column
//! (increasing whichever node appends), listed per tenant newest first by one statement whose absent filters
//! are NULL parameters.

use async_trait::async_trait;
use deadpool_postgres::ClientWrapper;
use kf_core::model::Timestamp;
use kf_core::store::{AuditEntry, AuditLog, AuditPage, AuditQuery, StoreError};
use tokio_postgres::Row;

use crate::PostgresStore;
use crate::error::backend;
use crate::rows::{Cached, corrupt, decode, encode, signed};

#[async_trait]
impl AuditLog for PostgresStore {
    async fn append_audit(&self, entry: AuditEntry) -> Result<u64, StoreError> {
        append_audit(&*self.client().await?, &entry).await
    }

    async fn audit_entries(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        audit_entries(&*self.client().await?, query).await
    }
}

/// An entry's object before or after the change as JSON text; `None` stays NULL.
fn encode_object(value: Option<&serde_json::Value>) -> Result<Option<String>, StoreError> {
    value
        .map(|value| encode(value, "an audit entry's object"))
        .transpose()
}

/// Appends an entry; returns its id.
async fn append_audit(client: &ClientWrapper, entry: &AuditEntry) -> Result<u64, StoreError> {
    let at = signed(entry.at.0, "time")?;
    let row = client
        .cached_query_one(
            "INSERT INTO audit_log (tenant, actor, at, action, object_kind, object_id, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &entry.tenant.as_str(),
                &entry.actor.as_str(),
                &at,
                &entry.action,
                &entry.object_kind,
                &entry.object_id,
                &encode_object(entry.before.as_ref())?,
                &encode_object(entry.after.as_ref())?,
            ],
        )
        .await
        .map_err(backend)?;
    let id: i64 = row.try_get(0).map_err(backend)?;
    u64::try_from(id).map_err(|_| corrupt("audit_log", format!("negative id {id}")))
}

/// A bound of a filter on a BIGINT column: numbers past its range hold every stored value below them.
fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One page of the entries `query` matches, newest first.
async fn audit_entries(client: &ClientWrapper, query: &AuditQuery) -> Result<AuditPage, StoreError> {
    let size = query.page_size()?;
    let tenant = query
        .tenant
        .as_ref()
        .ok_or_else(|| StoreError::Invalid("an audit query names its tenant".into()))?;
    let actor = query.actor.as_ref().map(|actor| actor.as_str());
    let since = query.since.map(|at| clamp(at.0));
    let until = query.until.map(|at| clamp(at.0));
    let before = query.before.map(clamp);
    let limit = clamp(size as u64 + 1);
    let rows = client
        .cached_query(
            "SELECT id, tenant, actor, at, action, object_kind, object_id, before, after FROM audit_log \
             WHERE tenant = $1 \
               AND ($2::text IS NULL OR actor = $2) \
               AND ($3::text IS NULL OR object_kind = $3) \
               AND ($4::text IS NULL OR object_id = $4) \
               AND ($5::text IS NULL OR action = $5) \
               AND ($6::bigint IS NULL OR at >= $6) \
               AND ($7::bigint IS NULL OR at < $7) \
               AND ($8::bigint IS NULL OR id < $8) \
             ORDER BY id DESC LIMIT $9",
            &[
                &tenant.as_str(),
                &actor,
                &query.object_kind,
                &query.object_id,
                &query.action,
                &since,
                &until,
                &before,
                &limit,
            ],
        )
        .await
        .map_err(backend)?;
    let entries = rows.iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(AuditPage::of(entries, size))
}

fn entry_from_row(row: &Row) -> Result<AuditEntry, StoreError> {
    let number = |index: usize| -> Result<u64, StoreError> {
        let value: i64 = row.try_get(index).map_err(backend)?;
        u64::try_from(value).map_err(|_| corrupt("audit_log", format!("negative number {value}")))
    };
    let text = |index: usize| -> Result<String, StoreError> { row.try_get(index).map_err(backend) };
    let object = |index: usize| -> Result<Option<serde_json::Value>, StoreError> {
        let json: Option<&str> = row.try_get(index).map_err(backend)?;
        json.map(|json| decode(json, "audit_log")).transpose()
    };
    let invalid = |error: kf_core::model::InvalidId| corrupt("audit_log", error.to_string());
    let mut entry = AuditEntry::new(
        text(1)?.parse().map_err(invalid)?,
        text(2)?.parse().map_err(invalid)?,
        Timestamp(number(3)?),
        text(4)?,
        text(5)?,
        text(6)?,
        object(7)?,
        object(8)?,
    );
    entry.id = number(0)?;
    Ok(entry)
}
