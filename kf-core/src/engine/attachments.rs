//! Messages with attachments: the engine's side of uploads. The upload endpoint (`kf-attachments`) records
//! an upload and stores its bytes; a message carries it only when the engine has checked that its sender
//! uploaded it to this conversation, and commits the message through the pipeline like any other.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Ack, Engine, RequestError};
use crate::attachments::{CleanupError, CleanupReport, cleanup};
use crate::auth::{Identity, Principal};
use crate::blob::BlobStore;
use crate::limits::MAX_ATTACHMENTS_PER_MESSAGE;
use crate::model::{
    Attachment, AttachmentId, ClientId, Conversation, ConversationId, MessageBody, Timestamp,
};
use crate::store::{UploadState, Uploads};

impl Engine {
    /// The records of uploads, when the host gave a backend for them
    /// ([`EngineBuilder::uploads`](crate::EngineBuilder::uploads)).
    pub fn uploads(&self) -> Option<&Arc<dyn Uploads>> {
        self.inner.uploads.as_ref()
    }

    /// Runs the cleanup pass ([`crate::attachments::cleanup`]) on the engine's upload records and log: uploads
    /// older than [`pending_ttl_ms`](crate::limits::AttachmentLimits::pending_ttl_ms) that no message carries
    /// are removed with their blobs. Nothing to do without upload records.
    pub async fn clean_up_uploads(&self, blobs: &dyn BlobStore) -> Result<CleanupReport, CleanupError> {
        let Some(uploads) = &self.inner.uploads else {
            return Ok(CleanupReport::default());
        };
        let ttl = self.inner.limits.attachments.pending_ttl_ms;
        let before = Timestamp(self.now().0.saturating_sub(ttl));
        cleanup(&**uploads, &*self.inner.log, blobs, before).await
    }

    /// The time on the engine's clock (upload records and link expiries use it, so tests can drive it).
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The conversation `identity` may upload files to: a visitor's own (a closed one too, as writing to it
    /// reopens it), an agent's assigned one.
    pub async fn may_upload(
        &self,
        identity: &Identity,
        conversation: ConversationId,
    ) -> Result<Conversation, RequestError> {
        match identity.principal {
            Principal::Visitor(_) => self.readable(identity, conversation).await,
            Principal::Agent(_) => self.participant(identity, conversation).await,
        }
    }

    /// The conversation whose files `identity` may download: one it may read (its visitor, its assigned or
    /// former agent, the agents of its group).
    pub async fn may_read(
        &self,
        identity: &Identity,
        conversation: ConversationId,
    ) -> Result<Conversation, RequestError> {
        self.readable(identity, conversation).await
    }

    /// Sends a message carrying uploaded files (and `body`'s text, which may be empty). Each id must name an
    /// upload that `identity` made to this conversation and that finished; the message carries the attachments
    /// as they were recorded at upload. A repeat of the client id returns the original ack, like
    /// [`Engine::send`].
    pub async fn send_with_attachments(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: ClientId,
        body: MessageBody,
        attachments: &[AttachmentId],
    ) -> Result<Ack, RequestError> {
        if attachments.is_empty() {
            return self.send(identity, conversation, client_id, body).await;
        }
        let uploads = self
            .inner
            .uploads
            .clone()
            .ok_or_else(|| RequestError::Invalid("this server takes no attachments".into()))?;
        let found = self
            .uploaded(&*uploads, identity, conversation, attachments)
            .await?;
        let ack = self
            .send(identity, conversation, client_id, body.with_attachments(found))
            .await?;
        // Committed after the message: a crash between the two leaves the uploads ready, and the cleanup pass
        // finds them in the log before it removes anything (`kf_core::attachments::cleanup`).
        if let Err(error) = uploads.commit_uploads(attachments).await {
            tracing::warn!(%error, %conversation, "uploads of a committed message not marked committed");
        }
        Ok(ack)
    }

    /// The attachments of `ids`, checked: known, uploaded by `identity` to `conversation`, finished.
    async fn uploaded(
        &self,
        uploads: &dyn Uploads,
        identity: &Identity,
        conversation: ConversationId,
        ids: &[AttachmentId],
    ) -> Result<Vec<Attachment>, RequestError> {
        if ids.len() > MAX_ATTACHMENTS_PER_MESSAGE {
            return Err(RequestError::Invalid(format!(
                "{} attachments; a message carries at most {MAX_ATTACHMENTS_PER_MESSAGE}",
                ids.len()
            )));
        }
        let distinct: HashSet<&AttachmentId> = ids.iter().collect();
        if distinct.len() != ids.len() {
            return Err(RequestError::Invalid("an attachment is listed twice".into()));
        }
        let sender = identity.principal.actor();
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let upload = uploads
                .upload(id)
                .await?
                .filter(|upload| upload.conversation == conversation && upload.owner == sender)
                .ok_or_else(|| RequestError::NotFound(format!("attachment {id}")))?;
            if upload.state == UploadState::Receiving {
                return Err(RequestError::Invalid(format!(
                    "attachment {id} is still uploading"
                )));
            }
            found.push(upload.attachment);
        }
        Ok(found)
    }
}
