//! Reading a request: its query string, its headers and its body, turned into what the engine takes — a token, a
//! resume cursor, a decoded frame — or into the error that refuses it (`docs/protocol.md` §21).
//!
//! Pure functions, with no I/O and no engine: the handlers of [`router`](crate::router) call them, and the fuzz
//! target `sse_request` (`fuzz/`, `docs/fuzzing.md`) and the crate's tests call them directly.
//!
//! ```
//! use axum::http::{HeaderMap, HeaderValue, header::{AUTHORIZATION, CONTENT_TYPE}};
//! use kf_transport_sse::input;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer kf1.abc.def"));
//! headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
//! let query = input::query(Some("token=ignored-when-a-header-has-one"))?;
//! assert_eq!(input::token(&headers, &query)?, "kf1.abc.def");
//! let request = input::request_frame("close", &headers, br#"{"conversation":"0190a5b0-0000-7000-8000-000000000001"}"#)?;
//! assert_eq!(request.frame.name(), "close");
//! let refused = input::request_frame("close", &headers, b"{\"conversation\": 7}").unwrap_err();
//! assert_eq!((refused.status().as_u16(), refused.code().as_str()), (400, "invalid_frame"));
//! # Ok::<(), input::InputError>(())
//! ```

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use kf_core::cursor::{Cursor, InvalidCursor};
use kf_core::model::ConversationId;
use kf_core::protocol::{DecodeError, ErrorCode, Request, decode_body};
use serde::Deserialize;

use crate::reply::status_of;

/// The header a browser's `EventSource` sends when it reconnects: the last event `id` it received.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// Why a request was refused before it reached the engine. Each has the error code and the HTTP status of
/// `docs/protocol.md` §21.3–21.5; the response's body is the `error` frame ([`InputError::code`], the message).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// No token: neither `Authorization: Bearer <token>` nor `?token=` (`invalid_token`, 401).
    #[error("missing token: send `Authorization: Bearer <token>` or `?token=`")]
    MissingToken,
    /// The query string cannot be read: a parameter given twice (`invalid_frame`, 400).
    #[error("malformed query string: {0}")]
    BadQuery(String),
    /// The path names no frame type: it is not UTF-8 once percent-decoded (`unknown_type`, 400).
    #[error("the path does not name a frame type")]
    BadPath,
    /// A body that is not declared `application/json` (`bad_json`, 415).
    #[error("send the body as `Content-Type: application/json`")]
    NotJson,
    /// A body that is not UTF-8 (`bad_json`, 400).
    #[error("not a JSON object: the body is not UTF-8")]
    NotUtf8,
    /// The body is not the JSON object of a frame of the path's type: the decoding error of
    /// [`decode_body`] (`bad_json`, `unknown_type` or `invalid_frame`, 400).
    #[error("{}", .0.message)]
    Frame(DecodeError),
    /// `Last-Event-ID` or `?cursor=` is not a cursor (`invalid_frame`, 400).
    #[error("{0}")]
    BadCursor(#[from] InvalidCursor),
    /// A `Last-Event-ID` header that is not even text (`invalid_frame`, 400).
    #[error("invalid cursor: `Last-Event-ID` is not visible ASCII")]
    LastEventIdNotText,
    /// `?conversation=` is not a UUID (`invalid_frame`, 400).
    #[error("`conversation` is not a UUID")]
    BadConversation,
}

impl InputError {
    /// The error code of the `error` frame that answers it.
    pub fn code(&self) -> ErrorCode {
        match self {
            InputError::MissingToken => ErrorCode::InvalidToken,
            InputError::BadPath => ErrorCode::UnknownType,
            InputError::NotJson | InputError::NotUtf8 => ErrorCode::BadJson,
            InputError::Frame(error) => error.code,
            InputError::BadQuery(_)
            | InputError::BadCursor(_)
            | InputError::LastEventIdNotText
            | InputError::BadConversation => ErrorCode::InvalidFrame,
        }
    }

    /// The request id the error carries: the body's `id`, when it could be read.
    pub fn id(&self) -> Option<&str> {
        match self {
            InputError::Frame(error) => error.id.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of the response: the code's (§21.3), but 415 for a body not declared JSON.
    pub fn status(&self) -> StatusCode {
        match self {
            InputError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            other => status_of(other.code()),
        }
    }
}

/// The query parameters kf reads (others are ignored).
#[derive(Clone, PartialEq, Eq, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct Query {
    /// `token`: the token, when the request has no `Authorization: Bearer` header.
    pub token: Option<String>,
    /// `cursor` (`GET /events`): where to resume, when the request has no `Last-Event-ID` header.
    pub cursor: Option<String>,
    /// `conversation` (`GET /events`): the one conversation to watch.
    pub conversation: Option<String>,
}

/// Reads a request's query string (without its `?`; `None` when the URL has none). Percent-encoding that is not
/// UTF-8 is read lossily; a parameter kf reads given twice is [`InputError::BadQuery`].
pub fn query(raw: Option<&str>) -> Result<Query, InputError> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|error| InputError::BadQuery(error.to_string()))
}

/// The token of a request: `Authorization: Bearer <token>` (the scheme in any case), else `?token=`; surrounding
/// whitespace is no part of it (`?token=+` is none), and an empty one is none.
pub fn token<'a>(headers: &'a HeaderMap, query: &'a Query) -> Result<&'a str, InputError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let query = query
        .token
        .as_deref()
        .map(str::trim)
        .filter(|token| !token.is_empty());
    bearer.or(query).ok_or(InputError::MissingToken)
}

/// Where a stream starts.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct StreamStart {
    /// The cursor to resume from: `Last-Event-ID` when the request has the header (even empty), else `?cursor=`,
    /// else the empty cursor.
    pub cursor: Cursor,
    /// The one conversation to watch (`?conversation=`), or `None` to follow all of the principal's.
    pub conversation: Option<ConversationId>,
}

/// Reads where `GET /events` starts from its headers and query.
pub fn stream_start(headers: &HeaderMap, query: &Query) -> Result<StreamStart, InputError> {
    let cursor = match headers.get(LAST_EVENT_ID) {
        Some(value) => value.to_str().map_err(|_| InputError::LastEventIdNotText)?,
        None => query.cursor.as_deref().unwrap_or_default(),
    };
    let cursor = Cursor::parse(cursor)?;
    let conversation = match query.conversation.as_deref() {
        None => None,
        Some(text) => Some(text.parse().map_err(|_| InputError::BadConversation)?),
    };
    Ok(StreamStart { cursor, conversation })
}

/// Reads the frame of `POST /{kind}` from its headers and body (at most `limits.max_frame_bytes`, which the
/// handler enforces as it reads it): an empty body (or only whitespace) is `{}`; any other must be declared
/// `Content-Type: application/json` (parameters allowed) and be the JSON object of the frame's other fields, decoded
/// as [`decode_body`] does — with the same errors as the WebSocket frame.
pub fn request_frame(kind: &str, headers: &HeaderMap, body: &[u8]) -> Result<Request, InputError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        "{}"
    } else if !is_json(headers) {
        return Err(InputError::NotJson);
    } else {
        std::str::from_utf8(body).map_err(|_| InputError::NotUtf8)?
    };
    decode_body(kind, body).map_err(InputError::Frame)
}

/// Whether the request says its body is JSON: `application/json`, with or without parameters (`charset`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}
