//! Attachments' bytes and their cleanup: the blob keys of an upload and the pass that removes uploads no
//! message carries.
//!
//! The life of an upload: the upload endpoint records it ([`Uploads::begin_upload`], state `receiving`)
//! before it stores a byte, streams the bytes into the [`BlobStore`] under [`file_key`] (and an image's
//! thumbnail under [`thumbnail_key`]), then marks it `ready` with what it found. A message that carries it is
//! committed through the pipeline ([`Engine::send_with_attachments`](crate::Engine::send_with_attachments)),
//! which then marks it `committed`. [`cleanup`] removes what never got there: uploads older than a TTL that are
//! not committed, blobs first, then the record, so a pass that stops half-way is finished by the next one.

use thiserror::Error;

use crate::blob::{BlobError, BlobKey, BlobStore};
use crate::model::{AttachmentId, EventKind, Seq, Timestamp};
use crate::store::{ConversationLog, EVENTS_PAGE, StoreError, Upload, UploadState, Uploads};

/// How many stale uploads one round of [`cleanup`] reads at a time.
const CLEANUP_BATCH: usize = 100;

/// The blob key of an attachment's file.
pub fn file_key(id: &AttachmentId) -> Result<BlobKey, BlobError> {
    BlobKey::new(id.as_str())
}

/// The blob key of an image attachment's thumbnail.
pub fn thumbnail_key(id: &AttachmentId) -> Result<BlobKey, BlobError> {
    BlobKey::new(format!("{id}.thumb"))
}

/// What a [`cleanup`] pass did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Uploads removed with their blobs.
    pub removed: usize,
    /// Uploads found carried by a committed message (whose commit mark was lost) and marked committed.
    pub recovered: usize,
}

/// A [`cleanup`] pass failed; what it removed before stays removed, and the next pass goes on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CleanupError {
    /// The upload records or the conversation log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Removes the uploads that started before `before` and that no message carries, with their blobs. An upload
/// found in a committed message of its conversation (the engine crashed between the commit and the mark) is
/// marked committed instead. Run it periodically with `before` = now −
/// [`pending_ttl_ms`](crate::limits::AttachmentLimits::pending_ttl_ms)
/// ([`Engine::clean_up_uploads`](crate::Engine::clean_up_uploads) does).
pub async fn cleanup(
    uploads: &dyn Uploads,
    log: &dyn ConversationLog,
    blobs: &dyn BlobStore,
    before: Timestamp,
) -> Result<CleanupReport, CleanupError> {
    let mut report = CleanupReport::default();
    loop {
        let stale = uploads.stale_uploads(before, CLEANUP_BATCH).await?;
        if stale.is_empty() {
            return Ok(report);
        }
        for upload in stale {
            if upload.state == UploadState::Ready && carried(log, &upload).await? {
                uploads.commit_uploads(std::slice::from_ref(upload.id())).await?;
                report.recovered += 1;
                continue;
            }
            // A key that is not valid was never used for a blob.
            if let Ok(key) = thumbnail_key(upload.id()) {
                blobs.delete(&key).await?;
            }
            if let Ok(key) = file_key(upload.id()) {
                blobs.delete(&key).await?;
            }
            uploads.delete_upload(upload.id()).await?;
            report.removed += 1;
        }
    }
}

/// Whether a message of the upload's conversation carries it.
async fn carried(log: &dyn ConversationLog, upload: &Upload) -> Result<bool, StoreError> {
    let mut after = Seq(0);
    loop {
        let events = log.events_after(upload.conversation, after, EVENTS_PAGE).await?;
        let Some(last) = events.last() else {
            return Ok(false);
        };
        after = last.seq;
        let found = events.iter().any(|event| match &event.data {
            EventKind::Message { body } => body.attachments.iter().any(|a| &a.id == upload.id()),
            _ => false,
        });
        if found {
            return Ok(true);
        }
    }
}
