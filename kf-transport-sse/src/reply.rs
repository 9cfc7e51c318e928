//! HTTP answers: frames as JSON bodies, error codes as statuses, and the token of a request.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kf_core::auth::Identity;
use kf_core::protocol::{ErrorCode, ServerFrame};

use crate::Shared;
use crate::input::{self, InputError, Query};

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

/// The response to a request refused before it reached the engine: its `error` frame, with its status.
pub(crate) fn refused(error: &InputError) -> Response {
    let mut response = frame(&ServerFrame::error(
        error.id().map(str::to_owned),
        error.code(),
        error.to_string(),
    ));
    *response.status_mut() = error.status();
    response
}

/// Authenticates a request, or answers it with 401 (a status that makes `EventSource` stop retrying); a page
/// of another site whose origin the token's tenant does not allow gets 403 `forbidden`.
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    query: &Query,
) -> Result<Identity, Response> {
    let token = input::token(headers, query).map_err(|error| refused(&error))?;
    let identity = shared
        .engine
        .authenticate(token)
        .await
        .map_err(|refused| frame(&refused.to_frame(None)))?;
    shared
        .engine
        .check_origin(&identity.tenant, cross_origin(headers))
        .map_err(|refusal| error(refusal.code(), refusal.to_string()))?;
    Ok(identity)
}

/// The request's `Origin` when it comes from a page of another site.
pub(crate) fn cross_origin(headers: &HeaderMap) -> Option<&str> {
    kf_core::origin::cross_origin(
        headers.get(ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(HOST).and_then(|v| v.to_str().ok()),
    )
}
