//! The SSE transport's request parsing (`kf_transport_sse::input`): an arbitrary path type, query string,
//! `Authorization`, `Content-Type` and `Last-Event-ID` headers and body, or a body made from a valid frame of
//! the path's type. Every refusal has the code and the status of protocol.md §21.3–21.5, and a body gets the same
//! outcome as the WebSocket frame with the same fields (`decode` of `{"type": <path>, …body}`).
#![no_main]

use arbitrary::Arbitrary;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use kf_core::protocol::{ErrorCode, decode};
use kf_core::testkit::frames::{self, Expected, FRAMES};
use kf_transport_sse::input::{self, InputError, LAST_EVENT_ID};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
enum Kind {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum ContentType {
    Json,
    JsonWithCharset,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Body {
    Raw(Vec<u8>),
    /// The fields of a valid frame of the path's type, one of them replaced by arbitrary text.
    Frame {
        field: u8,
        value: String,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: Kind,
    query: Option<String>,
    authorization: Option<Vec<u8>>,
    content_type: Option<ContentType>,
    last_event_id: Option<Vec<u8>>,
    body: Body,
}

fuzz_target!(|input: Input| {
    let kind = match &input.kind {
        Kind::Known(index) => FRAMES[usize::from(*index) % FRAMES.len()].kind.to_owned(),
        Kind::Other(kind) => kind.clone(),
    };
    let mut headers = HeaderMap::new();
    let mut set = |name, bytes: &[u8]| {
        if let Ok(value) = HeaderValue::from_bytes(bytes) {
            headers.insert(name, value);
        }
    };
    if let Some(bytes) = &input.authorization {
        set(AUTHORIZATION, bytes);
    }
    match &input.content_type {
        Some(ContentType::Json) => set(CONTENT_TYPE, b"application/json"),
        Some(ContentType::JsonWithCharset) => set(CONTENT_TYPE, b"Application/JSON; charset=utf-8"),
        Some(ContentType::Raw(bytes)) => set(CONTENT_TYPE, bytes),
        None => {}
    }
    if let Some(bytes) = &input.last_event_id {
        set(http::HeaderName::from_static(LAST_EVENT_ID), bytes);
    }

    // The query string: refused with 400 `invalid_frame` or read.
    let query = match input::query(input.query.as_deref()) {
        Ok(query) => query,
        Err(error) => {
            assert_eq!(
                (error.code(), error.status().as_u16()),
                (ErrorCode::InvalidFrame, 400)
            );
            input::query(None).expect("no query is an empty one")
        }
    };
    // The token: a non-empty one, or 401 `invalid_token`.
    match input::token(&headers, &query) {
        Ok(token) => assert!(!token.is_empty() && token.trim() == token, "{token:?}"),
        Err(error) => {
            assert_eq!(error, InputError::MissingToken);
            assert_eq!(
                (error.code(), error.status().as_u16()),
                (ErrorCode::InvalidToken, 401)
            );
        }
    }
    // Where a stream starts: a cursor and maybe a conversation, or 400 `invalid_frame`.
    if let Err(error) = input::stream_start(&headers, &query) {
        assert_eq!(
            (error.code(), error.status().as_u16()),
            (ErrorCode::InvalidFrame, 400),
            "{error}"
        );
    }

    // The body.
    let body = match &input.body {
        Body::Raw(bytes) => bytes.clone(),
        Body::Frame { field, value } => {
            let spec = frames::spec(&kind).unwrap_or(&FRAMES[0]);
            let mut frame = frames::valid(spec);
            let names: Vec<&str> = spec.fields.iter().map(|f| f.name).chain(["id", "type"]).collect();
            let name = names[usize::from(*field) % names.len()];
            if let Value::Object(fields) = &mut frame {
                fields.remove("type");
                let value = serde_json::from_str(value).unwrap_or(Value::String(value.clone()));
                fields.insert(name.to_owned(), value);
            }
            frame.to_string().into_bytes()
        }
    };
    let result = input::request_frame(&kind, &headers, &body);
    match &result {
        Ok(request) => assert_eq!(request.frame.name(), kind),
        Err(InputError::NotJson) => {
            assert_eq!(result.as_ref().unwrap_err().status().as_u16(), 415);
            assert!(!body.iter().all(u8::is_ascii_whitespace));
        }
        Err(error) => {
            assert!(
                matches!(
                    error.code(),
                    ErrorCode::BadJson | ErrorCode::UnknownType | ErrorCode::InvalidFrame
                ),
                "{error:?}"
            );
            assert_eq!(error.status().as_u16(), 400);
        }
    }
    // The same fields over WebSocket: the same outcome.
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        Some("{}")
    } else {
        std::str::from_utf8(&body).ok()
    };
    let Some(text) = text.filter(|_| !matches!(result, Err(InputError::NotJson))) else {
        return;
    };
    let Some(rest) = text.trim_start_matches([' ', '\t', '\n', '\r']).strip_prefix('{') else {
        return;
    };
    let kind_json = serde_json::to_string(&kind).expect("a string");
    let whole = if rest.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('}') {
        format!("{{\"type\":{kind_json}{rest}")
    } else {
        format!("{{\"type\":{kind_json},{rest}")
    };
    let over_websocket = Expected::of(&decode(&whole));
    let over_sse = match &result {
        Ok(request) => Expected::Ok {
            kind: request.frame.name().to_owned(),
            id: request.id.clone(),
        },
        Err(InputError::Frame(error)) => Expected::Error {
            code: error.code,
            id: error.id.clone(),
        },
        Err(other) => panic!("{other:?} for a UTF-8 body declared JSON"),
    };
    match serde_json::from_str::<Value>(text) {
        // A body without `type` of its own: exactly the same outcome, ids included.
        Ok(Value::Object(fields)) if !fields.contains_key("type") => {
            assert_eq!(over_sse, over_websocket, "{whole}");
        }
        // Not readable JSON: the same code.
        Err(_) => assert_eq!(over_sse.code(), over_websocket.code(), "{whole}"),
        _ => {}
    }
});
