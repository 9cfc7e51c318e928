//! The API's errors: a status and a JSON body `{"error": code, "message": text}`, as the demo's other API errors.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kf_core::auth::AuthError;
use kf_core::engine::RequestError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer: `400 invalid_request`, `401 unauthorized`, `403 forbidden`, `404 not_found`,
/// `409 conflict`, `503 unavailable`.
#[derive(Debug)]
pub struct AdminError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable error code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict` or `unavailable`.
    #[schema(example = "not_found")]
    pub error: String,
    /// What went wrong, for people.
    #[schema(example = "agent alice")]
    pub message: String,
}

impl AdminError {
    /// An error of `status` with `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// `400 invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl From<RequestError> for AdminError {
    fn from(error: RequestError) -> Self {
        let message = error.to_string();
        let (status, code) = match &error {
            RequestError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            RequestError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            RequestError::Invalid(_) | RequestError::TooLarge { .. } | RequestError::BadCursor(_) => {
                (StatusCode::BAD_REQUEST, "invalid_request")
            }
            RequestError::Conflict(_) | RequestError::InvalidState(_) => (StatusCode::CONFLICT, "conflict"),
            RequestError::Auth(AuthError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            RequestError::Auth(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
