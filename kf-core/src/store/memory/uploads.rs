//! [`Uploads`] in memory: the records of uploaded files, beside the conversations they belong to.

use async_trait::async_trait;

use super::{MemoryStore, State};
use crate::model::{Attachment, AttachmentId, ConversationId, Timestamp};
use crate::store::{StoreError, Upload, UploadState, Uploads};

#[async_trait]
impl Uploads for MemoryStore {
    async fn begin_upload(&self, upload: Upload) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.uploads.contains_key(upload.id()) {
            return Err(StoreError::Conflict(format!("upload {} exists", upload.id())));
        }
        state.uploads.insert(upload.id().clone(), upload);
        Ok(())
    }

    async fn finish_upload(
        &self,
        attachment: Attachment,
        conversation_limit: u64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let conversation = match state.uploads.get(&attachment.id) {
            Some(upload) if upload.state == UploadState::Receiving => upload.conversation,
            _ => {
                return Err(StoreError::Invalid(format!(
                    "no upload {} receiving",
                    attachment.id
                )));
            }
        };
        let used = state.upload_bytes(conversation);
        if used.saturating_add(attachment.size) > conversation_limit {
            return Ok(false);
        }
        if let Some(upload) = state.uploads.get_mut(&attachment.id) {
            upload.state = UploadState::Ready;
            upload.attachment = attachment;
        }
        Ok(true)
    }

    async fn upload(&self, id: &AttachmentId) -> Result<Option<Upload>, StoreError> {
        Ok(self.state().uploads.get(id).cloned())
    }

    async fn conversation_upload_bytes(&self, conversation: ConversationId) -> Result<u64, StoreError> {
        Ok(self.state().upload_bytes(conversation))
    }

    async fn commit_uploads(&self, ids: &[AttachmentId]) -> Result<(), StoreError> {
        let mut state = self.state();
        for id in ids {
            if let Some(upload) = state.uploads.get_mut(id)
                && upload.state == UploadState::Ready
            {
                upload.state = UploadState::Committed;
            }
        }
        Ok(())
    }

    async fn stale_uploads(&self, before: Timestamp, limit: usize) -> Result<Vec<Upload>, StoreError> {
        let state = self.state();
        let mut stale: Vec<Upload> = state
            .uploads
            .values()
            .filter(|upload| upload.state != UploadState::Committed && upload.created_at < before)
            .cloned()
            .collect();
        stale.sort_by(|a, b| (a.created_at, a.id()).cmp(&(b.created_at, b.id())));
        stale.truncate(limit);
        Ok(stale)
    }

    async fn delete_upload(&self, id: &AttachmentId) -> Result<(), StoreError> {
        self.state().uploads.remove(id);
        Ok(())
    }
}

impl State {
    /// The bytes of a conversation's ready and committed uploads.
    fn upload_bytes(&self, conversation: ConversationId) -> u64 {
        self.uploads
            .values()
            .filter(|upload| upload.conversation == conversation && upload.state != UploadState::Receiving)
            .map(|upload| upload.attachment.size)
            .sum()
    }
}
