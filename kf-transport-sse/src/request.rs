//! `POST {base}/{type}`: one request, answered with its reply frame.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kf_core::protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Shared, reply};

#[derive(Debug, Deserialize)]
pub(crate) struct RequestQuery {
    token: Option<String>,
}

/// Runs the request named by the path with the body's fields: the same decoding, limits and error codes as
/// the WebSocket frame of that `type`.
pub(crate) async fn request(
    State(shared): State<Arc<Shared>>,
    Path(kind): Path<String>,
    Query(query): Query<RequestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let identity = match reply::authenticate(&shared, &headers, query.token.as_deref()).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let limit = shared.engine.limits().max_frame_bytes;
    let Ok(body) = to_bytes(body, limit).await else {
        return reply::error(
            ErrorCode::TooLarge,
            format!("request body larger than {limit} bytes (or cut short)"),
        );
    };
    let empty = body.iter().all(u8::is_ascii_whitespace);
    if !empty && !is_json(&headers) {
        return reply::error_with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadJson,
            "send the body as `Content-Type: application/json`",
        );
    }
    let mut fields = if empty {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return reply::error(ErrorCode::BadJson, "the body must be a JSON object"),
            Err(error) => return reply::error(ErrorCode::BadJson, format!("not a JSON object: {error}")),
        }
    };
    // The path names the frame; a `type` in the body would be a second, conflicting name.
    fields.insert("type".into(), Value::String(kind));
    let text = Value::Object(fields).to_string();
    // No spawn needed: a client hanging up drops this future, and the engine finishes or undoes what it began.
    match shared.engine.request(&identity, &text).await {
        Some(frame) => reply::frame(&frame),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Whether the request says its body is JSON: `application/json`, with or without parameters (`charset`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}
