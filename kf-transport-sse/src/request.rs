//! `POST {base}/{type}`: one request, answered with its reply frame.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kf_core::protocol::ErrorCode;
use kf_core::telemetry;
use tracing::Instrument;

use crate::input::{self, InputError};
use crate::{Shared, reply};

/// Runs the request named by the path with the body's fields: the same decoding, limits and error codes as
/// the WebSocket frame of that `type`.
pub(crate) async fn request(
    State(shared): State<Arc<Shared>>,
    kind: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = match input::query(query.as_deref()) {
        Ok(query) => query,
        Err(error) => return reply::refused(&error),
    };
    let identity = match reply::authenticate(&shared, &headers, &query).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let Ok(Path(kind)) = kind else {
        return reply::refused(&InputError::BadPath);
    };
    let limit = shared.engine.limits().max_frame_bytes;
    let Ok(body) = to_bytes(body, limit).await else {
        return reply::error(
            ErrorCode::TooLarge,
            format!("request body larger than {limit} bytes (or cut short)"),
        );
    };
    let request = match input::request_frame(&kind, &headers, &body) {
        Ok(request) => request,
        Err(error) => return reply::refused(&error),
    };
    shared.metrics.received(&identity.principal);
    let span = tracing::debug_span!(
        "kf.post",
        transport = "sse",
        role = telemetry::role(&identity.principal),
        tenant = %identity.tenant,
        identity = %telemetry::identity(&identity.principal),
    );
    // No spawn needed: a client hanging up drops this future, and the engine finishes or undoes what it began.
    match shared
        .engine
        .request_decoded(&identity, request)
        .instrument(span)
        .await
    {
        Some(frame) => reply::frame(&frame),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}
