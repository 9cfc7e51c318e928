//! Malformed requests, over a real socket (127.0.0.1, port 0) and through the pure parsing functions
//! (`kf_transport_sse::input`): every mutation of every client frame kind that the decoder refuses, as a POST body
//! (`kf_core::testkit::frames`); requests the engine refuses; random bodies, queries and headers; the regression
//! corpora `tests/corpus/{requests,streams}/`. Each gets the error code, request id and HTTP status of
//! `docs/protocol.md` §21; after them the transport still serves, and nothing was stored (nor streamed) but the
//! one valid message sent last.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use common::*;
use kf_core::Engine;
use kf_core::limits::Limits;
use kf_core::protocol::ErrorCode;
use kf_core::testkit::corpus::{self, Case};
use kf_core::testkit::frames::{self, Expected, FRAMES};
use kf_core::testkit::shop::*;
use kf_transport_sse::SseConfig;
use kf_transport_sse::input::{self, InputError};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

fn small_limits() -> Limits {
    limits().with_max_text_bytes(1024).with_max_frame_bytes(16 * 1024)
}

/// The HTTP status of an error code (protocol.md §21.3).
fn status_of(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::InvalidToken | ErrorCode::TokenExpired => 401,
        ErrorCode::Forbidden => 403,
        ErrorCode::NotFound => 404,
        ErrorCode::InvalidState
        | ErrorCode::Conflict
        | ErrorCode::AtCapacity
        | ErrorCode::AgentUnavailable => 409,
        ErrorCode::TooLarge => 413,
        ErrorCode::RateLimited | ErrorCode::TooManyConnections => 429,
        ErrorCode::Unavailable => 503,
        ErrorCode::Internal => 500,
        _ => 400,
    }
}

/// The outcome of a reply: its error code and id, or `ok`.
fn outcome(reply: &Reply) -> (u16, String, Option<String>) {
    let body: Value = if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    };
    let code = match body["type"].as_str() {
        Some("error") => body["code"].as_str().unwrap_or_default().to_owned(),
        _ => "ok".to_owned(),
    };
    (reply.status, code, body["id"].as_str().map(str::to_owned))
}

struct Setup {
    engine: Engine,
    addr: SocketAddr,
    token: String,
    conversation: String,
}

async fn setup() -> Setup {
    let engine = engine(small_limits()).await;
    let addr = start(&engine, SseConfig::default()).await;
    let token = token(&visitor("v1"));
    let (status, opened) = request(addr, &token, "open", json!({"client_id": "o1"})).await;
    assert_eq!(status, 200, "{opened}");
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();
    Setup {
        engine,
        addr,
        token,
        conversation,
    }
}

fn json_headers(token: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("Authorization", format!("Bearer {token}").into_bytes()),
        ("Content-Type", b"application/json".to_vec()),
    ]
}

/// POSTs `body` to `/{kind}` on `connection`; checks status, code and id.
async fn expect_refused(
    connection: &mut KeepAlive,
    token: &str,
    kind: &str,
    body: &str,
    expected: &Expected,
) {
    let headers = json_headers(token);
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    let reply = connection
        .send("POST", &format!("/{kind}"), &headers, body.as_bytes())
        .await;
    let Expected::Error { code, id } = expected else {
        panic!("not a refusal: {expected:?}");
    };
    assert_eq!(
        outcome(&reply),
        (status_of(*code), code.as_str().to_owned(), id.clone()),
        "POST /{kind} {}",
        &body[..body.len().min(200)]
    );
}

/// Replaces the corpus's placeholders.
fn fill(text: &str, setup: &Setup) -> String {
    text.replace("{token}", &setup.token)
        .replace("{conversation}", &setup.conversation)
}

fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// The headers of a corpus case: `Authorization` (default: the visitor's bearer token; `none` for none),
/// `Content-Type`, `Last-Event-ID` (or `last-event-id-hex` for bytes that are not text).
fn case_headers(case: &Case, setup: &Setup) -> Vec<(&'static str, Vec<u8>)> {
    let mut headers = Vec::new();
    match case.header("authorization") {
        Some("none") => {}
        Some(value) => headers.push(("Authorization", fill(value, setup).into_bytes())),
        None => headers.push(("Authorization", format!("Bearer {}", setup.token).into_bytes())),
    }
    if let Some(value) = case.header("content-type") {
        headers.push(("Content-Type", value.as_bytes().to_vec()));
    }
    if let Some(value) = case.header("last-event-id") {
        headers.push(("Last-Event-ID", value.as_bytes().to_vec()));
    }
    if let Some(hex) = case.header("last-event-id-hex") {
        let bytes = corpus::parse("hex", format!("encoding: hex\n---\n{hex}").as_bytes()).input;
        headers.push(("Last-Event-ID", bytes));
    }
    headers
}

fn header_map(headers: &[(&str, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            let name: axum::http::HeaderName = name.to_ascii_lowercase().parse().expect("a header name");
            map.insert(name, value);
        }
    }
    map
}

#[tokio::test]
async fn malformed_posts_get_their_codes_and_statuses_and_nothing_is_stored() {
    let setup = setup().await;
    let before = stored(&setup.engine, &setup.conversation).await;
    let last_seq = before.len() as u64;
    // A following stream: it must see nothing of the refused requests.
    let mut stream = Stream::follow(setup.addr, &visitor("v1"), None).await;
    stream.next_of("following").await;
    let mut connection = KeepAlive::connect(setup.addr).await;

    // Every decode-refused mutation of every frame kind, as the body of `POST /{kind}` (`type` is the path's;
    // a mutation of the body's own `type` is ignored, so it is not one of these).
    let mut checked = 0;
    for spec in FRAMES {
        let mut valid = frames::valid(spec);
        valid.as_object_mut().expect("an object").remove("type");
        for mutation in frames::mutations(spec) {
            let (body, expected) = frames::apply(&valid, &mutation, spec);
            if matches!(
                mutation,
                frames::Mutation::TypeMissing | frames::Mutation::Type(_)
            ) || mutation == frames::Mutation::Duplicate("type")
                || !matches!(expected, Expected::Error { .. })
            {
                continue;
            }
            if body.trim().is_empty() {
                continue; // An empty body is `{}` (protocol.md §21.3).
            }
            let body = body.replace(frames::CONVERSATION, &setup.conversation);
            // The pure function says the same as the server.
            let parsed = input::request_frame(
                spec.kind,
                &header_map(&json_headers(&setup.token)),
                body.as_bytes(),
            );
            let Err(InputError::Frame(error)) = parsed else {
                panic!("{}: {mutation:?} parsed as {parsed:?}", spec.kind);
            };
            assert_eq!(Expected::of(&Err(error)), expected, "{}: {mutation:?}", spec.kind);
            expect_refused(&mut connection, &setup.token, spec.kind, &body, &expected).await;
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked}");

    // The engine's refusals.
    for (mut frame, code) in frames::refused_requests(&setup.conversation, last_seq, 1024) {
        let fields = frame.as_object_mut().expect("an object");
        let kind = fields
            .remove("type")
            .and_then(|kind| kind.as_str().map(str::to_owned))
            .expect("type");
        let id = fields.get("id").and_then(Value::as_str).map(str::to_owned);
        let expected = Expected::Error { code, id };
        expect_refused(
            &mut connection,
            &setup.token,
            &kind,
            &frame.to_string(),
            &expected,
        )
        .await;
    }

    // Random bodies, declared JSON or not: the server answers what the pure function predicts.
    let mut runner = TestRunner::deterministic();
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        "[{}\\[\\]\":,0-9a-z_ ]{0,40}".prop_map(String::into_bytes),
        "\\{\"(id|client_id|conversation|seq|body|text)\":[^\\x00-\\x1f]{0,12}\\}"
            .prop_map(String::into_bytes),
    ];
    let strategy = (
        prop::sample::select(vec!["send", "read", "open", "ping", "close", "context", "dance"]),
        any::<bool>(),
        bodies,
    );
    for _ in 0..48 {
        let (kind, declared, body) = strategy.new_tree(&mut runner).expect("a case").current();
        let mut headers = vec![("Authorization", format!("Bearer {}", setup.token).into_bytes())];
        if declared {
            headers.push(("Content-Type", b"application/json; charset=utf-8".to_vec()));
        }
        let Err(error) = input::request_frame(kind, &header_map(&headers), &body) else {
            continue; // It decodes: the engine would act on it.
        };
        let borrowed: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let reply = connection
            .send("POST", &format!("/{kind}"), &borrowed, &body)
            .await;
        assert_eq!(
            outcome(&reply),
            (
                error.status().as_u16(),
                error.code().as_str().to_owned(),
                error.id().map(str::to_owned)
            ),
            "POST /{kind} {:?}",
            String::from_utf8_lossy(&body)
        );
    }

    // A body over max_frame_bytes.
    let huge = json!({"conversation": setup.conversation, "client_id": "huge", "body": {"text": "x".repeat(20_000)}});
    let mut fresh = KeepAlive::connect(setup.addr).await;
    let headers = json_headers(&setup.token);
    let borrowed: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    let reply = fresh
        .send("POST", "/send", &borrowed, huge.to_string().as_bytes())
        .await;
    assert_eq!(outcome(&reply), (413, "too_large".to_owned(), None));

    // Still serving: a valid message is stored, it is the only thing stored, and the stream's next event.
    let (status, ack) = request(
        setup.addr,
        &setup.token,
        "send",
        json!({"conversation": setup.conversation, "client_id": "valid", "body": {"text": "fine now"}}),
    )
    .await;
    assert_eq!((status, ack["seq"].as_u64()), (200, Some(last_seq + 1)), "{ack}");
    let after = stored(&setup.engine, &setup.conversation).await;
    assert_eq!(after[..before.len()], before[..], "the log before is intact");
    assert_eq!(after.len(), before.len() + 1, "only the valid message was stored");
    let events = stream.events(last_seq as usize + 1).await;
    let seqs: Vec<u64> = events.iter().filter_map(|event| event["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=last_seq + 1).collect::<Vec<_>>(),
        "the stream saw only the stored events"
    );
}

/// `tests/corpus/requests/`: `path` (with its query), headers, the body as input; `expect` (`ok` or a code),
/// `status`, `id`.
#[tokio::test]
async fn the_request_corpus_gets_its_expected_codes_and_statuses() {
    let setup = setup().await;
    let before = stored(&setup.engine, &setup.conversation).await;
    for case in corpus::read(corpus_dir("requests")) {
        let path = fill(case.header("path").expect("a path"), &setup);
        let body = fill(&String::from_utf8_lossy(&case.input), &setup);
        let body = if case.header("encoding") == Some("hex") {
            case.input.clone()
        } else {
            body.into_bytes()
        };
        let headers = case_headers(&case, &setup);
        let borrowed: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let mut connection = KeepAlive::connect(setup.addr).await;
        let reply = connection.send("POST", &path, &borrowed, &body).await;
        let expected = (
            case.header("status")
                .and_then(|s| s.parse().ok())
                .expect("a status"),
            case.expect().to_owned(),
            case.header("id").map(str::to_owned),
        );
        assert_eq!(outcome(&reply), expected, "{}", case.name);
        if reply.status != 200 && reply.status != 204 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{}",
                case.name
            );
        }
        // What the pure function can tell (a simple path, a refusal before the engine), it tells alike.
        let kind = path.trim_start_matches('/');
        if !kind.contains(['%', '?'])
            && ["bad_json", "unknown_type", "invalid_frame"].contains(&case.expect())
            && let Err(error) = input::request_frame(kind, &header_map(&headers), &body)
        {
            assert_eq!(
                (error.status().as_u16(), error.code().as_str()),
                (expected.0, case.expect()),
                "{}",
                case.name
            );
        }
    }
    assert_eq!(
        stored(&setup.engine, &setup.conversation).await,
        before,
        "nothing was stored"
    );
}

/// `tests/corpus/streams/`: the query string as input, headers; `expect` (`ok` or a code) and `status`.
#[tokio::test]
async fn the_stream_corpus_gets_its_expected_codes_and_statuses() {
    let setup = setup().await;
    for case in corpus::read(corpus_dir("streams")) {
        let query = fill(case.text(), &setup);
        let mut headers = case_headers(&case, &setup);
        if case.header("authorization").is_none() {
            headers.retain(|(name, _)| *name != "Authorization");
        }
        let borrowed: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let mut connection = KeepAlive::connect(setup.addr).await;
        let reply = connection
            .send("GET", &format!("/events?{query}"), &borrowed, b"")
            .await;
        let status: u16 = case
            .header("status")
            .and_then(|s| s.parse().ok())
            .expect("a status");
        if case.expect() == "ok" {
            assert_eq!(
                reply.status,
                200,
                "{}: {}",
                case.name,
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(
                reply.header("content-type"),
                Some("text/event-stream"),
                "{}",
                case.name
            );
        } else {
            assert_eq!(
                outcome(&reply),
                (status, case.expect().to_owned(), None),
                "{}",
                case.name
            );
        }
        // The pure functions agree on what is theirs to refuse.
        let map = header_map(&headers);
        let parsed = input::query(Some(&query)).and_then(|query| {
            input::token(&map, &query)?;
            input::stream_start(&map, &query)
        });
        if let Err(error) = parsed {
            assert_eq!(
                (error.status().as_u16(), error.code().as_str()),
                (status, case.expect()),
                "{}",
                case.name
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any query string, `Authorization` and `Last-Event-ID`: read or refused with the documented code and status.
    #[test]
    fn any_query_and_headers_are_read_or_refused(
        query in "[a-z=&%+.:0-9A-F_-]{0,40}|(token|cursor|conversation)=[ -~]{0,30}(&(token|cursor|conversation)=[ -~]{0,10})?",
        authorization in prop::option::of(prop::collection::vec(any::<u8>(), 0..24)),
        bearer in prop::option::of("(?i:bearer)[ \t]{0,2}[ -~]{0,16}"),
        last_event_id in prop::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..24),
            "1\\.[A-Za-z0-9_-]{0,11}(\\.[A-Za-z0-9_-]{22}:[0-9]{1,17})?".prop_map(String::into_bytes),
        ]),
    ) {
        let mut headers = HeaderMap::new();
        for value in [authorization, bearer.map(String::into_bytes)].into_iter().flatten() {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.insert(AUTHORIZATION, value);
            }
        }
        if let Some(value) = last_event_id.and_then(|bytes| HeaderValue::from_bytes(&bytes).ok()) {
            headers.insert(input::LAST_EVENT_ID, value);
        }
        match input::query(Some(&query)) {
            Err(error) => prop_assert_eq!((error.code(), error.status().as_u16()), (ErrorCode::InvalidFrame, 400)),
            Ok(query) => {
                match input::token(&headers, &query) {
                    Ok(token) => prop_assert!(!token.is_empty() && token.trim() == token),
                    Err(error) => prop_assert_eq!((error.code(), error.status().as_u16()), (ErrorCode::InvalidToken, 401)),
                }
                if let Err(error) = input::stream_start(&headers, &query) {
                    prop_assert_eq!((error.code(), error.status().as_u16()), (ErrorCode::InvalidFrame, 400));
                }
            }
        }
    }

    /// Any body and `Content-Type`: decoded as the path's frame, or refused with a decoding code (400) or 415.
    #[test]
    fn any_body_is_decoded_or_refused(
        kind in prop::sample::select(vec!["send", "open", "ping", "read", "dance", ""]),
        content_type in prop::option::of(prop_oneof![
            Just(b"application/json".to_vec()),
            Just(b"APPLICATION/JSON ; charset=x".to_vec()),
            prop::collection::vec(any::<u8>(), 0..20),
        ]),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            "[ \t\r\n]{0,3}\\{[ -~]{0,30}\\}".prop_map(String::into_bytes),
        ],
    ) {
        let mut headers = HeaderMap::new();
        if let Some(value) = content_type.and_then(|bytes| HeaderValue::from_bytes(&bytes).ok()) {
            headers.insert(CONTENT_TYPE, value);
        }
        match input::request_frame(kind, &headers, &body) {
            Ok(request) => prop_assert_eq!(request.frame.name(), kind),
            Err(InputError::NotJson) => prop_assert!(!body.iter().all(u8::is_ascii_whitespace)),
            Err(error) => {
                prop_assert!(matches!(error.code(), ErrorCode::BadJson | ErrorCode::UnknownType | ErrorCode::InvalidFrame));
                prop_assert_eq!(error.status().as_u16(), 400);
            }
        }
    }
}
