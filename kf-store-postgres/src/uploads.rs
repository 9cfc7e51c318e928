//! [`Uploads`] for [`PostgresStore`]: the records of uploaded files (`uploads`, schema 3). Finishing an upload
//! checks its conversation's total and marks it ready in one transaction holding a lock on the conversation's
//! uploads, so concurrent finishes on any number of nodes cannot overrun the limit together.

use async_trait::async_trait;
use kf_core::model::{Actor, Attachment, AttachmentId, ConversationId, Timestamp};
use kf_core::store::{StoreError, Upload, UploadState, Uploads};
use tokio_postgres::Row;

use crate::PostgresStore;
use crate::error::backend;
use crate::rows::{Cached, corrupt, decode, encode, signed};

/// An upload's columns, as [`upload_from_row`] reads them.
const UPLOAD_COLUMNS: &str = "conversation, owner_role, owner_id, created_at, state, attachment";

/// The bytes a conversation's ready and committed uploads take (`SUM` of a BIGINT is a NUMERIC: cast back).
const CONVERSATION_BYTES: &str =
    "SELECT COALESCE(SUM(size), 0)::BIGINT FROM uploads WHERE conversation = $1 AND state <> 'receiving'";

#[async_trait]
impl Uploads for PostgresStore {
    async fn begin_upload(&self, upload: Upload) -> Result<(), StoreError> {
        if matches!(upload.owner, Actor::System) {
            return Err(StoreError::Invalid(
                "an upload is owned by a visitor or an agent".into(),
            ));
        }
        let inserted = self
            .client()
            .await?
            .cached_execute(
                "INSERT INTO uploads (id, conversation, owner_role, owner_id, created_at, state, size, attachment) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                &[
                    &upload.id().as_str(),
                    &upload.conversation.as_uuid(),
                    &upload.owner.role(),
                    &upload.owner.id_str(),
                    &signed(upload.created_at.0, "timestamp")?,
                    &upload.state.as_str(),
                    &signed(upload.attachment.size, "size")?,
                    &encode(&upload.attachment, "attachment")?,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!("upload {} exists", upload.id())));
        }
        Ok(())
    }

    async fn finish_upload(
        &self,
        attachment: Attachment,
        conversation_limit: u64,
    ) -> Result<bool, StoreError> {
        let size = signed(attachment.size, "size")?;
        let data = encode(&attachment, "attachment")?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let statement = tx
            .prepare_cached("SELECT conversation, state FROM uploads WHERE id = $1 FOR UPDATE")
            .await
            .map_err(backend)?;
        let row = tx
            .query_opt(&statement, &[&attachment.id.as_str()])
            .await
            .map_err(backend)?;
        let conversation: uuid::Uuid = match row {
            Some(row) if row.try_get::<_, &str>(1).map_err(backend)? == UploadState::Receiving.as_str() => {
                row.try_get(0).map_err(backend)?
            }
            _ => {
                return Err(StoreError::Invalid(format!(
                    "no upload {} receiving",
                    attachment.id
                )));
            }
        };
        // One finish per conversation at a time, whichever node runs it: the sum below then sees every finish
        // committed before, and none can commit between it and the update. (A hash collision only makes two
        // conversations wait for each other.) The first key is the one the migrations' lock uses ("kf").
        let statement = tx
            .prepare_cached("SELECT pg_advisory_xact_lock(27494, hashtext('uploads:' || $1::uuid::text))")
            .await
            .map_err(backend)?;
        tx.execute(&statement, &[&conversation]).await.map_err(backend)?;
        let statement = tx.prepare_cached(CONVERSATION_BYTES).await.map_err(backend)?;
        let used: i64 = tx
            .query_one(&statement, &[&conversation])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(backend)?;
        let used = u64::try_from(used).map_err(|_| corrupt("uploads", format!("negative total {used}")))?;
        if used.saturating_add(attachment.size) > conversation_limit {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        let statement = tx
            .prepare_cached("UPDATE uploads SET state = 'ready', size = $2, attachment = $3 WHERE id = $1")
            .await
            .map_err(backend)?;
        tx.execute(&statement, &[&attachment.id.as_str(), &size, &data])
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn upload(&self, id: &AttachmentId) -> Result<Option<Upload>, StoreError> {
        let row = self
            .client()
            .await?
            .cached_query_opt(
                &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"),
                &[&id.as_str()],
            )
            .await
            .map_err(backend)?;
        row.as_ref().map(upload_from_row).transpose()
    }

    async fn conversation_upload_bytes(&self, conversation: ConversationId) -> Result<u64, StoreError> {
        let used: i64 = self
            .client()
            .await?
            .cached_query_one(CONVERSATION_BYTES, &[&conversation.as_uuid()])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(backend)?;
        u64::try_from(used).map_err(|_| corrupt("uploads", format!("negative total {used}")))
    }

    async fn commit_uploads(&self, ids: &[AttachmentId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = ids.iter().map(AttachmentId::as_str).collect();
        self.client()
            .await?
            .cached_execute(
                "UPDATE uploads SET state = 'committed' WHERE id = ANY ($1) AND state = 'ready'",
                &[&ids],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn stale_uploads(&self, before: Timestamp, limit: usize) -> Result<Vec<Upload>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let before = i64::try_from(before.0).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .cached_query(
                &format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE state <> 'committed' AND created_at < $1 \
                     ORDER BY created_at, id LIMIT $2"
                ),
                &[&before, &limit],
            )
            .await
            .map_err(backend)?;
        rows.iter().map(upload_from_row).collect()
    }

    async fn delete_upload(&self, id: &AttachmentId) -> Result<(), StoreError> {
        self.client()
            .await?
            .cached_execute("DELETE FROM uploads WHERE id = $1", &[&id.as_str()])
            .await
            .map_err(backend)?;
        Ok(())
    }
}

fn upload_from_row(row: &Row) -> Result<Upload, StoreError> {
    let conversation: uuid::Uuid = row.try_get(0).map_err(backend)?;
    let role: &str = row.try_get(1).map_err(backend)?;
    let id: &str = row.try_get(2).map_err(backend)?;
    let created_at: i64 = row.try_get(3).map_err(backend)?;
    let state: &str = row.try_get(4).map_err(backend)?;
    let attachment: &str = row.try_get(5).map_err(backend)?;
    let invalid = |error: kf_core::model::InvalidId| corrupt("uploads", error.to_string());
    let owner = match role {
        "visitor" => Actor::Visitor(id.parse().map_err(invalid)?),
        "agent" => Actor::Agent(id.parse().map_err(invalid)?),
        other => return Err(corrupt("uploads", format!("unknown upload owner role {other:?}"))),
    };
    let state = UploadState::parse(state)
        .ok_or_else(|| corrupt("uploads", format!("unknown upload state {state:?}")))?;
    let created_at =
        u64::try_from(created_at).map_err(|_| corrupt("uploads", format!("negative time {created_at}")))?;
    let attachment: Attachment = decode(attachment, "uploads")?;
    let mut upload = Upload::receiving(
        ConversationId::from_uuid(conversation),
        owner,
        Timestamp(created_at),
        attachment.id.clone(),
        "",
    );
    upload.state = state;
    upload.attachment = attachment;
    Ok(upload)
}
