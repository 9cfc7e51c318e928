//! `GET /link/{attachment}` (a signed link for whoever may read the conversation) and `GET /blob/{key}` (the
//! download the link points at).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kf_core::attachments::{file_key, thumbnail_key};
use kf_core::blob::BlobKey;
use kf_core::model::{AttachmentId, Timestamp};
use kf_core::store::{Upload, UploadState};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AttachmentError, Shared, authenticate};

/// The suffix of a thumbnail's blob key (`kf_core::attachments::thumbnail_key`).
const THUMBNAIL_SUFFIX: &str = ".thumb";

#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LinkQuery {
    expires: Option<u64>,
    sig: Option<String>,
}

/// The upload `id` names, if `identity` may download it: a sent file to whoever may read its conversation, a
/// file not sent yet to its uploader only. Everything else is `not_found` (a file of someone else's
/// conversation does not exist for the caller).
pub(crate) async fn link(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Value>, AttachmentError> {
    let identity = authenticate(&shared, &headers, query.token.as_deref()).await?;
    let not_found = || AttachmentError::NotFound(format!("attachment {id}"));
    let attachment: AttachmentId = id.parse().map_err(|_| not_found())?;
    let upload = shared
        .uploads()?
        .upload(&attachment)
        .await
        .map_err(|error| AttachmentError::failed("reading the upload", error))?
        .ok_or_else(not_found)?;
    let allowed = match upload.state {
        UploadState::Committed => shared
            .engine
            .may_read(&identity, upload.conversation)
            .await
            .is_ok(),
        UploadState::Ready => upload.owner == identity.principal.actor(),
        _ => false,
    };
    if !allowed {
        return Err(not_found());
    }
    let expires = Timestamp(
        shared
            .now()
            .0
            .saturating_add(shared.engine.limits().attachments.link_ttl_ms),
    );
    let url_of = |key: BlobKey| {
        format!(
            "{}/blob/{key}?{}",
            shared.config.base_path,
            shared.config.link_key.query(&key, expires)
        )
    };
    let key = file_key(&attachment).map_err(|_| not_found())?;
    let mut reply = json!({
        "attachment": upload.attachment,
        "url": url_of(key),
        "expires_at": expires.0,
    });
    if upload.attachment.thumbnail {
        let thumb = thumbnail_key(&attachment).map_err(|_| not_found())?;
        reply["thumbnail_url"] = json!(url_of(thumb));
    }
    Ok(Json(reply))
}

/// The download a signed link points at: the bytes with their sniffed type, the name the sender gave, and
/// headers that keep a browser from running them (`nosniff`, a sandboxing CSP).
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    Query(query): Query<LinkQuery>,
) -> Result<Response, AttachmentError> {
    let bad = |what: &str| AttachmentError::BadLink(format!("the link {what}"));
    let key = BlobKey::new(key).map_err(|_| bad("names no file"))?;
    let (Some(expires), Some(sig)) = (query.expires, query.sig.as_deref()) else {
        return Err(bad("lacks `expires` or `sig`"));
    };
    shared.config.link_key.check(&key, expires, sig, shared.now())?;
    let (id, thumbnail) = match key.as_str().strip_suffix(THUMBNAIL_SUFFIX) {
        Some(id) => (id, true),
        None => (key.as_str(), false),
    };
    let gone = || AttachmentError::NotFound("the file".into());
    let id: AttachmentId = id.parse().map_err(|_| gone())?;
    let upload: Upload = shared
        .uploads()?
        .upload(&id)
        .await
        .map_err(|error| AttachmentError::failed("reading the upload", error))?
        .ok_or_else(gone)?;
    let blob = shared
        .blobs
        .get(&key)
        .await
        .map_err(|error| AttachmentError::failed("reading the file", error))?
        .ok_or_else(gone)?;
    let content_type = if thumbnail {
        "image/png".to_owned()
    } else {
        upload.attachment.content_type.clone()
    };
    let mut response = Body::from_stream(blob.bytes).into_response();
    let headers = response.headers_mut();
    let value = |text: &str| {
        HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, value(&content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if content_type.starts_with("image/") || content_type == "application/pdf" {
            "inline"
        } else {
            "attachment"
        },
        encode_rfc5987(&upload.attachment.name)
    );
    if let Ok(disposition) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// Percent-encodes a file name for `filename*` (RFC 5987: everything but its `attr-char`s).
fn encode_rfc5987(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::encode_rfc5987;

    #[test]
    fn file_names_are_encoded_for_the_header() {
        assert_eq!(encode_rfc5987("a b.pdf"), "a%20b.pdf");
        assert_eq!(encode_rfc5987("退款.png"), "%E9%80%80%E6%AC%BE.png");
        assert_eq!(encode_rfc5987("x\"y;z"), "x%22y%3Bz");
    }
}
