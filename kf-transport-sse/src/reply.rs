//! HTTP answers: frames as JSON bodies, error codes as statuses, and the token of a request.

use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kf_core::auth::Identity;
use kf_core::protocol::{ErrorCode, ServerFrame};

use crate::Shared;

/// The HTTP status that goes with an error code.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidToken | ErrorCode::TokenExpired => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InvalidState
        | ErrorCode::Conflict
        | ErrorCode::AtCapacity
        | ErrorCode::AgentUnavailable => StatusCode::CONFLICT,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited | ErrorCode::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable | ErrorCode::SlowConsumer => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A frame as a JSON response: `error` frames with their status, others with 200.
pub(crate) fn frame(frame: &ServerFrame) -> Response {
    let status = match frame {
        ServerFrame::Error { code, .. } => status_of(*code),
        _ => StatusCode::OK,
    };
    let mut response = (status, frame.encode()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An `error` frame response.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    frame(&ServerFrame::error(None, code, message))
}

/// An `error` frame response with a status of its own (one no error code maps to, such as 415).
pub(crate) fn error_with_status(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    let mut response = frame(&ServerFrame::error(None, code, message));
    *response.status_mut() = status;
    response
}

/// The token of a request: `Authorization: Bearer …`, else the `token` query parameter.
fn token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    bearer.or(query).filter(|token| !token.is_empty())
}

/// Authenticates a request, or answers it with 401 (a status that makes `EventSource` stop retrying).
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Identity, Response> {
    let Some(token) = token(headers, query) else {
        return Err(error(
            ErrorCode::InvalidToken,
            "missing token: send `Authorization: Bearer <token>` or `?token=`",
        ));
    };
    shared
        .engine
        .authenticate(token)
        .await
        .map_err(|refused| frame(&refused.to_frame(None)))
}
