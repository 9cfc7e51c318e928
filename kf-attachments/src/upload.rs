//! `POST /upload?conversation=…&name=…`: the request body is the file's bytes.
//!
//! The order keeps the promise "a refused or broken upload stores nothing": limits that can be checked before
//! a byte is read are checked first (the declared length, the conversation's room); the first bytes are sniffed
//! and a type not allowed is refused before anything is stored; the upload is recorded (`receiving`) before its
//! bytes go to the blob store, so a crash half-way leaves a record the cleanup pass finds; the blob store
//! enforces the size cap while it streams and stores nothing when it fails; an image is decoded for its size and
//! thumbnail; and only then is the upload marked `ready`, the conversation's limit checked in the same step.
//! Any failure after the record removes what was stored (and the cleanup pass anything that removal missed).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use kf_core::attachments::{file_key, thumbnail_key};
use kf_core::auth::Identity;
use kf_core::blob::{BlobError, once};
use kf_core::limits::MAX_ATTACHMENT_NAME_BYTES;
use kf_core::model::{Attachment, AttachmentId, ConversationId};
use kf_core::store::{Upload, Uploads};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::picture::picture;
use crate::{AttachmentError, Shared, authenticate};

/// How many leading bytes are read before the type is sniffed (every signature `infer` knows fits).
const SNIFF_BYTES: usize = 512;

/// The query of an upload.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    conversation: Option<String>,
    name: Option<String>,
    token: Option<String>,
}

/// The file name kept: its last path component, without control characters, trimmed, at most
/// [`MAX_ATTACHMENT_NAME_BYTES`] (cut at a character boundary); `file` when nothing is left.
pub(crate) fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    cleaned = cleaned.trim().to_owned();
    if cleaned.len() > MAX_ATTACHMENT_NAME_BYTES {
        let mut end = MAX_ATTACHMENT_NAME_BYTES;
        while !cleaned.is_char_boundary(end) {
            end -= 1;
        }
        cleaned.truncate(end);
    }
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// Reads up to [`SNIFF_BYTES`] from the body (fewer when it ends first).
async fn read_prefix<S>(body: &mut S) -> Result<Bytes, AttachmentError>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    let mut prefix = BytesMut::new();
    while prefix.len() < SNIFF_BYTES {
        match body.next().await {
            None => break,
            Some(Ok(chunk)) => prefix.extend_from_slice(&chunk),
            Some(Err(error)) => {
                return Err(AttachmentError::Invalid(format!("the upload broke off: {error}")));
            }
        }
    }
    Ok(prefix.freeze())
}

/// The sniffed media type of a file's first bytes, if it is one of `allowed`.
fn sniff(prefix: &[u8], shared: &Shared) -> Result<String, AttachmentError> {
    let allowed = &shared.engine.limits().attachments;
    let Some(kind) = infer::get(prefix) else {
        return Err(AttachmentError::UnsupportedType(format!(
            "the file's type is not recognised; accepted: {}",
            allowed.allowed_types.join(", ")
        )));
    };
    let mime = kind.mime_type();
    if !allowed.allows(mime) {
        return Err(AttachmentError::UnsupportedType(format!(
            "files of type {mime} are not accepted; accepted: {}",
            allowed.allowed_types.join(", ")
        )));
    }
    Ok(mime.to_owned())
}

pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), AttachmentError> {
    let identity = authenticate(&shared, &headers, query.token.as_deref()).await?;
    let conversation: ConversationId = query
        .conversation
        .as_deref()
        .ok_or_else(|| AttachmentError::Invalid("missing `conversation`".into()))?
        .parse()
        .map_err(|_| AttachmentError::Invalid("`conversation` is not a conversation id".into()))?;
    let name = clean_name(query.name.as_deref().unwrap_or_default());
    shared.engine.may_upload(&identity, conversation).await?;
    let uploads = shared.uploads()?;
    let limits = shared.engine.limits().attachments.clone();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_file_bytes) {
        return Err(AttachmentError::TooLarge {
            limit: limits.max_file_bytes,
        });
    }
    let used = uploads
        .conversation_upload_bytes(conversation)
        .await
        .map_err(|error| AttachmentError::failed("reading the conversation's uploads", error))?;
    let room = limits.max_conversation_bytes.saturating_sub(used);
    if room == 0 || declared.is_some_and(|length| length > room) {
        return Err(AttachmentError::ConversationFull {
            limit: limits.max_conversation_bytes,
        });
    }

    let mut body = body.into_data_stream();
    let prefix = read_prefix(&mut body).await?;
    if prefix.is_empty() {
        return Err(AttachmentError::Invalid("the file is empty".into()));
    }
    let content_type = sniff(&prefix, &shared)?;

    let id = AttachmentId::generate();
    let record = Upload::receiving(
        conversation,
        identity.principal.actor(),
        shared.engine.now(),
        id.clone(),
        name.clone(),
    );
    uploads
        .begin_upload(record)
        .await
        .map_err(|error| AttachmentError::failed("recording the upload", error))?;
    let stored = store(
        &shared,
        &identity,
        &*uploads,
        prefix,
        body,
        Stored {
            id: &id,
            name,
            content_type,
            room,
        },
    )
    .await;
    match stored {
        Ok(attachment) => Ok((StatusCode::CREATED, Json(json!({ "attachment": attachment })))),
        Err(error) => {
            discard(&shared, &*uploads, &id).await;
            Err(error)
        }
    }
}

/// What is known of an upload being stored.
struct Stored<'a> {
    id: &'a AttachmentId,
    name: String,
    content_type: String,
    /// The conversation's room left before this upload, in bytes.
    room: u64,
}

/// Streams the bytes into the blob store, decodes an image, and marks the upload ready.
async fn store<S>(
    shared: &Shared,
    identity: &Identity,
    uploads: &dyn Uploads,
    prefix: Bytes,
    rest: S,
    upload: Stored<'_>,
) -> Result<Attachment, AttachmentError>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Send + 'static,
{
    let limits = &shared.engine.limits().attachments;
    let cap = limits.max_file_bytes.min(upload.room);
    let key = file_key(upload.id).map_err(|error| AttachmentError::failed("naming the blob", error))?;
    let bytes = once(prefix)
        .chain(rest.map(|chunk| chunk.map_err(BlobError::source_failed)))
        .boxed();
    let size = match shared.blobs.put(&key, bytes, cap).await {
        Ok(size) => size,
        Err(BlobError::TooLarge { .. }) if cap < limits.max_file_bytes => {
            return Err(AttachmentError::ConversationFull {
                limit: limits.max_conversation_bytes,
            });
        }
        Err(BlobError::TooLarge { .. }) => {
            return Err(AttachmentError::TooLarge {
                limit: limits.max_file_bytes,
            });
        }
        Err(BlobError::Source(error)) => {
            return Err(AttachmentError::Invalid(format!("the upload broke off: {error}")));
        }
        Err(error) => return Err(AttachmentError::failed("storing the file", error)),
    };
    let mut attachment = Attachment::new(upload.id.clone(), upload.name, upload.content_type.clone(), size);
    if upload.content_type.starts_with("image/") {
        let blob = shared
            .blobs
            .get(&key)
            .await
            .map_err(|error| AttachmentError::failed("reading the image back", error))?
            .ok_or_else(|| AttachmentError::Unavailable("the image vanished while it was stored".into()))?;
        let bytes = blob
            .collect()
            .await
            .map_err(|error| AttachmentError::failed("reading the image back", error))?;
        let content_type = upload.content_type.clone();
        let decoded = tokio::task::spawn_blocking(move || picture(&content_type, &bytes))
            .await
            .map_err(|error| AttachmentError::failed("decoding the image", error))?;
        if let Some(decoded) = decoded {
            let picture = decoded.map_err(|error| {
                AttachmentError::UnsupportedType(format!("the image does not decode: {error}"))
            })?;
            let thumb = thumbnail_key(upload.id)
                .map_err(|error| AttachmentError::failed("naming the blob", error))?;
            let thumbnail_bytes = picture.thumbnail.len() as u64;
            shared
                .blobs
                .put(&thumb, once(picture.thumbnail), thumbnail_bytes)
                .await
                .map_err(|error| AttachmentError::failed("storing the thumbnail", error))?;
            attachment = attachment.with_image(picture.width, picture.height, true);
        }
    }
    let finished = uploads
        .finish_upload(attachment.clone(), limits.max_conversation_bytes)
        .await
        .map_err(|error| AttachmentError::failed("recording the upload", error))?;
    if !finished {
        return Err(AttachmentError::ConversationFull {
            limit: limits.max_conversation_bytes,
        });
    }
    tracing::debug!(attachment = %attachment.id, size, by = ?identity.principal, "upload stored");
    Ok(attachment)
}

/// Removes what a failed upload stored: its blobs and its record. What fails here, the cleanup pass removes.
async fn discard(shared: &Shared, uploads: &dyn Uploads, id: &AttachmentId) {
    for key in [thumbnail_key(id), file_key(id)].into_iter().flatten() {
        if let Err(error) = shared.blobs.delete(&key).await {
            tracing::warn!(%error, %id, "a failed upload's blob is left to the cleanup pass");
            return;
        }
    }
    if let Err(error) = uploads.delete_upload(id).await {
        tracing::warn!(%error, %id, "a failed upload's record is left to the cleanup pass");
    }
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("C:\\Users\\me\\photo.png"), "photo.png");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name(" a\u{0}b\n.pdf "), "ab.pdf");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name("dir/"), "file");
        let long = "é".repeat(150);
        let cleaned = clean_name(&long);
        assert!(cleaned.len() <= 200 && cleaned.chars().all(|c| c == 'é'));
    }
}
