//! The records of uploaded files: who uploaded what to which conversation, and whether a message carries it.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{Actor, Attachment, AttachmentId, ConversationId, Timestamp};

use super::StoreError;

/// Where an upload is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UploadState {
    /// Its bytes are being received; its attachment's type and size are not known yet.
    Receiving,
    /// Received and checked; it waits for a message to carry it.
    Ready,
    /// A committed message carries it: it is part of the conversation and is never cleaned up.
    Committed,
}

impl UploadState {
    /// A short stable name, used as a storage key.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Receiving => "receiving",
            UploadState::Ready => "ready",
            UploadState::Committed => "committed",
        }
    }

    /// The state of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "receiving" => Some(UploadState::Receiving),
            "ready" => Some(UploadState::Ready),
            "committed" => Some(UploadState::Committed),
            _ => None,
        }
    }
}

/// One uploaded file. Recorded (as [`UploadState::Receiving`]) before its first byte is stored, so a blob never
/// exists without a record that the cleanup pass finds.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Upload {
    /// The conversation it was uploaded to (only a message of this conversation may carry it).
    pub conversation: ConversationId,
    /// Who uploaded it (only they may send it).
    pub owner: Actor,
    /// When the upload started.
    pub created_at: Timestamp,
    /// Where it is in its life.
    pub state: UploadState,
    /// What was found: while receiving, only the id and name are meaningful.
    pub attachment: Attachment,
}

impl Upload {
    /// A new upload, receiving.
    pub fn receiving(
        conversation: ConversationId,
        owner: Actor,
        created_at: Timestamp,
        id: AttachmentId,
        name: impl Into<String>,
    ) -> Self {
        Self {
            conversation,
            owner,
            created_at,
            state: UploadState::Receiving,
            attachment: Attachment::new(id, name, "", 0),
        }
    }

    /// Its id.
    pub fn id(&self) -> &AttachmentId {
        &self.attachment.id
    }
}

/// The records of uploads. Object safe, held as `Arc<dyn Uploads>`; [`MemoryStore`](super::MemoryStore) and
/// the SQLite store implement it, and `kf_core::uploads_conformance_tests!` checks a backend.
///
/// Like [`History`](super::History) it is kept out of [`Store`](super::Store): an engine without it refuses
/// messages with attachments (`unsupported`).
#[async_trait]
pub trait Uploads: Send + Sync + Debug {
    /// Records a new upload ([`UploadState::Receiving`]). An id already recorded is a
    /// [`StoreError::Conflict`].
    async fn begin_upload(&self, upload: Upload) -> Result<(), StoreError>;

    /// Marks a receiving upload ready with what was found. Refused (returns `false`, nothing changes) when the
    /// conversation's ready and committed uploads plus this one would exceed `conversation_limit` bytes; the
    /// check and the change are one atomic step, so concurrent uploads cannot overrun the limit together.
    /// Not found, or not receiving: [`StoreError::Invalid`].
    async fn finish_upload(
        &self,
        attachment: Attachment,
        conversation_limit: u64,
    ) -> Result<bool, StoreError>;

    /// An upload's record.
    async fn upload(&self, id: &AttachmentId) -> Result<Option<Upload>, StoreError>;

    /// The bytes of a conversation's ready and committed uploads.
    async fn conversation_upload_bytes(&self, conversation: ConversationId) -> Result<u64, StoreError>;

    /// Marks uploads committed (a committed message carries them). Ids not found, or not ready, are left as
    /// they are (a repeat is not an error).
    async fn commit_uploads(&self, ids: &[AttachmentId]) -> Result<(), StoreError>;

    /// Uploads not committed that started before `before`, oldest first, at most `limit`: what a cleanup pass
    /// removes.
    async fn stale_uploads(&self, before: Timestamp, limit: usize) -> Result<Vec<Upload>, StoreError>;

    /// Removes an upload's record; a missing one is not an error.
    async fn delete_upload(&self, id: &AttachmentId) -> Result<(), StoreError>;
}
