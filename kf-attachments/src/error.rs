//! The errors of the attachment endpoints, each with its code and HTTP status (`docs/protocol.md`,
//! "Attachments").

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kf_core::engine::RequestError;
use serde_json::json;
use thiserror::Error;

/// Why an upload, a link or a download was refused. The response is `{"type": "error", "code", "message"}`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// No token, or one that does not verify (401 `invalid_token`; 401 `token_expired` for an expired one).
    #[error("{message}")]
    Unauthenticated {
        /// `invalid_token` or `token_expired`.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The conversation or attachment is unknown, or not the caller's to see (404 `not_found`).
    #[error("{0} not found")]
    NotFound(String),
    /// The caller may see the conversation but not do this (403 `forbidden`), or the page's origin is not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The file is larger than the limit per file (413 `too_large`); nothing was stored.
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit per file, in bytes.
        limit: u64,
    },
    /// The conversation's files would exceed the limit per conversation (413 `conversation_full`); nothing was
    /// stored.
    #[error("the conversation's files would exceed {limit} bytes")]
    ConversationFull {
        /// The limit per conversation, in bytes.
        limit: u64,
    },
    /// The bytes are of a type not allowed, or of no type recognised (415 `unsupported_type`); nothing stored.
    #[error("{0}")]
    UnsupportedType(String),
    /// The request is malformed: a missing or invalid parameter, an empty or broken upload (400
    /// `invalid_request`).
    #[error("{0}")]
    Invalid(String),
    /// A download link that is malformed, forged or expired (403 `bad_link`).
    #[error("{0}")]
    BadLink(String),
    /// The server keeps no upload records, or a store failed; retry later (503 `unavailable`).
    #[error("{0}")]
    Unavailable(String),
}

impl AttachmentError {
    /// The error's code.
    pub fn code(&self) -> &'static str {
        match self {
            AttachmentError::Unauthenticated { code, .. } => code,
            AttachmentError::NotFound(_) => "not_found",
            AttachmentError::Forbidden(_) => "forbidden",
            AttachmentError::TooLarge { .. } => "too_large",
            AttachmentError::ConversationFull { .. } => "conversation_full",
            AttachmentError::UnsupportedType(_) => "unsupported_type",
            AttachmentError::Invalid(_) => "invalid_request",
            AttachmentError::BadLink(_) => "bad_link",
            AttachmentError::Unavailable(_) => "unavailable",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AttachmentError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AttachmentError::NotFound(_) => StatusCode::NOT_FOUND,
            AttachmentError::Forbidden(_) | AttachmentError::BadLink(_) => StatusCode::FORBIDDEN,
            AttachmentError::TooLarge { .. } | AttachmentError::ConversationFull { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            AttachmentError::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AttachmentError::Invalid(_) => StatusCode::BAD_REQUEST,
            AttachmentError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A store or blob store failure, logged and answered as `unavailable`.
    pub(crate) fn failed(what: &str, error: impl std::fmt::Display) -> Self {
        tracing::warn!(%error, "attachments: {what} failed");
        AttachmentError::Unavailable(format!("{what} failed; retry later"))
    }
}

impl From<RequestError> for AttachmentError {
    fn from(error: RequestError) -> Self {
        let message = error.to_string();
        match error {
            RequestError::NotFound(what) => AttachmentError::NotFound(what),
            RequestError::Forbidden(_) => AttachmentError::Forbidden(message),
            RequestError::Auth(_) => AttachmentError::Unauthenticated {
                code: match error.code() {
                    kf_core::protocol::ErrorCode::TokenExpired => "token_expired",
                    _ => "invalid_token",
                },
                message,
            },
            RequestError::Invalid(_) => AttachmentError::Invalid(message),
            _ => AttachmentError::Unavailable(message),
        }
    }
}

impl IntoResponse for AttachmentError {
    fn into_response(self) -> Response {
        let body = json!({"type": "error", "code": self.code(), "message": self.to_string()});
        (self.status(), Json(body)).into_response()
    }
}
