//! [`Uploads`] for [`SqliteStore`]: writes through the writer thread (so finishing an upload checks its
//! conversation's total and changes the record in one transaction), reads on the reader pool.

use async_trait::async_trait;
use kf_core::model::{Attachment, AttachmentId, ConversationId, Timestamp};
use kf_core::store::{StoreError, Upload, Uploads};

use crate::error::backend;
use crate::writer::{Op, Outcome};
use crate::{SqliteStore, rows, unexpected};

#[async_trait]
impl Uploads for SqliteStore {
    async fn begin_upload(&self, upload: Upload) -> Result<(), StoreError> {
        match self.write(Op::BeginUpload(Box::new(upload))).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn finish_upload(
        &self,
        attachment: Attachment,
        conversation_limit: u64,
    ) -> Result<bool, StoreError> {
        let op = Op::FinishUpload {
            attachment: Box::new(attachment),
            limit: conversation_limit,
        };
        match self.write(op).await? {
            Outcome::Finished(finished) => Ok(finished),
            other => Err(unexpected(other)),
        }
    }

    async fn upload(&self, id: &AttachmentId) -> Result<Option<Upload>, StoreError> {
        let id = id.clone();
        self.readers
            .run(move |conn| rows::upload_by_id(conn, &id).map_err(backend))
            .await
    }

    async fn conversation_upload_bytes(&self, conversation: ConversationId) -> Result<u64, StoreError> {
        self.readers
            .run(move |conn| rows::conversation_upload_bytes(conn, conversation).map_err(backend))
            .await
    }

    async fn commit_uploads(&self, ids: &[AttachmentId]) -> Result<(), StoreError> {
        match self.write(Op::CommitUploads(ids.to_vec())).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn stale_uploads(&self, before: Timestamp, limit: usize) -> Result<Vec<Upload>, StoreError> {
        self.readers
            .run(move |conn| rows::stale_uploads(conn, before, limit).map_err(backend))
            .await
    }

    async fn delete_upload(&self, id: &AttachmentId) -> Result<(), StoreError> {
        match self.write(Op::DeleteUpload(id.clone())).await? {
            Outcome::Deleted(_) => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
