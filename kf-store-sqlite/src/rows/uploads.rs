//! The records of uploaded files (schema 10, `uploads`).

use kf_core::model::{Actor, AgentId, Attachment, AttachmentId, ConversationId, Timestamp, VisitorId};
use kf_core::store::{StoreError, Upload, UploadState};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Corrupt, IdText, SqlResult, conversion, json_column, parse, signed, unsigned};
use crate::rows::encode;

const UPLOAD_COLUMNS: &str = "conversation, owner_role, owner_id, created_at, state, attachment";

fn upload_from_row(row: &Row<'_>) -> SqlResult<Upload> {
    let role: String = row.get(1)?;
    let owner = match role.as_str() {
        "visitor" => Actor::Visitor(parse::<VisitorId>(row, 2)?),
        "agent" => Actor::Agent(parse::<AgentId>(row, 2)?),
        other => {
            return Err(conversion(
                1,
                Corrupt(format!("unknown upload owner role {other:?}")),
            ));
        }
    };
    let state: String = row.get(4)?;
    let state = UploadState::parse(&state)
        .ok_or_else(|| conversion(4, Corrupt(format!("unknown upload state {state:?}"))))?;
    let attachment: Attachment = json_column(row, 5)?;
    let conversation: ConversationId = parse(row, 0)?;
    let mut upload = Upload::receiving(
        conversation,
        owner,
        Timestamp(unsigned(row, 3)?),
        attachment.id.clone(),
        "",
    );
    upload.state = state;
    upload.attachment = attachment;
    Ok(upload)
}

/// Records a new upload; `Conflict` when its id is taken.
pub(crate) fn begin_upload(conn: &Connection, upload: &Upload) -> Result<(), StoreError> {
    if upload_by_id(conn, upload.id())
        .map_err(crate::error::backend)?
        .is_some()
    {
        return Err(StoreError::Conflict(format!("upload {} exists", upload.id())));
    }
    if matches!(upload.owner, Actor::System) {
        return Err(StoreError::Invalid(
            "an upload is owned by a visitor or an agent".into(),
        ));
    }
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO uploads (id, conversation, owner_role, owner_id, created_at, state, size, attachment) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            upload.id().as_str(),
            IdText::new(upload.conversation),
            upload.owner.role(),
            upload.owner.id_str(),
            signed(upload.created_at.0, "timestamp")?,
            upload.state.as_str(),
            signed(upload.attachment.size, "size")?,
            encode(&upload.attachment, "attachment")?,
        ])
        .map_err(crate::error::backend)?;
    Ok(())
}

/// Marks a receiving upload ready unless the conversation would go over `limit` bytes; returns whether it did.
pub(crate) fn finish_upload(
    conn: &Connection,
    attachment: &Attachment,
    limit: u64,
) -> Result<bool, StoreError> {
    let upload = upload_by_id(conn, &attachment.id).map_err(crate::error::backend)?;
    let conversation = match upload {
        Some(upload) if upload.state == UploadState::Receiving => upload.conversation,
        _ => {
            return Err(StoreError::Invalid(format!(
                "no upload {} receiving",
                attachment.id
            )));
        }
    };
    let used = conversation_upload_bytes(conn, conversation).map_err(crate::error::backend)?;
    if used.saturating_add(attachment.size) > limit {
        return Ok(false);
    }
    let mut statement = conn
        .prepare_cached("UPDATE uploads SET state = 'ready', size = ?2, attachment = ?3 WHERE id = ?1")
        .map_err(crate::error::backend)?;
    statement
        .execute(params![
            attachment.id.as_str(),
            signed(attachment.size, "size")?,
            encode(attachment, "attachment")?
        ])
        .map_err(crate::error::backend)?;
    Ok(true)
}

/// Marks ready uploads committed.
pub(crate) fn commit_uploads(conn: &Connection, ids: &[AttachmentId]) -> Result<(), StoreError> {
    let mut statement = conn
        .prepare_cached("UPDATE uploads SET state = 'committed' WHERE id = ?1 AND state = 'ready'")
        .map_err(crate::error::backend)?;
    for id in ids {
        statement.execute([id.as_str()]).map_err(crate::error::backend)?;
    }
    Ok(())
}

/// Removes an upload's record; whether there was one.
pub(crate) fn delete_upload(conn: &Connection, id: &AttachmentId) -> Result<bool, StoreError> {
    let mut statement = conn
        .prepare_cached("DELETE FROM uploads WHERE id = ?1")
        .map_err(crate::error::backend)?;
    let deleted = statement.execute([id.as_str()]).map_err(crate::error::backend)?;
    Ok(deleted > 0)
}

/// An upload's record.
pub(crate) fn upload_by_id(conn: &Connection, id: &AttachmentId) -> SqlResult<Option<Upload>> {
    conn.prepare_cached(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1"))?
        .query_row([id.as_str()], upload_from_row)
        .optional()
}

/// The bytes of a conversation's ready and committed uploads.
pub(crate) fn conversation_upload_bytes(conn: &Connection, conversation: ConversationId) -> SqlResult<u64> {
    let total: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(size), 0) FROM uploads WHERE conversation = ?1 AND state <> 'receiving'",
        )?
        .query_row([IdText::new(conversation)], |row| row.get(0))?;
    Ok(u64::try_from(total).unwrap_or(0))
}

/// Uploads not committed that started before `before`, oldest first.
pub(crate) fn stale_uploads(conn: &Connection, before: Timestamp, limit: usize) -> SqlResult<Vec<Upload>> {
    let before = i64::try_from(before.0).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.prepare_cached(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE state <> 'committed' AND created_at < ?1 \
         ORDER BY created_at, id LIMIT ?2"
    ))?
    .query_map(params![before, limit], upload_from_row)?
    .collect()
}
