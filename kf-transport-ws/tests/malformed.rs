//! Malformed input over a real socket (127.0.0.1, port 0): every mutation of every client frame kind that the
//! decoder refuses (`kf_core::testkit::frames`), requests the engine refuses, the regression corpus of frames
//! (`kf-core/tests/corpus/frames/`), random mutations, random binary and invalid UTF-8 messages, malformed first
//! frames and handshakes. Each gets the error code (and request id) or the close code `docs/protocol.md` gives it;
//! after the errors the connection is still usable, and nothing was stored but the one valid message sent last.

use std::path::PathBuf;

use http::{Method, Request};
use kf_core::Engine;
use kf_core::limits::Limits;
use kf_core::protocol::decode;
use kf_core::testkit::corpus;
use kf_core::testkit::frames::{self, Expected, FRAMES};
use kf_core::testkit::shop::*;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

fn small_limits() -> Limits {
    limits().with_max_text_bytes(1024).with_max_frame_bytes(16 * 1024)
}

/// A visitor connected, with one conversation of its own: (engine, address, client, conversation).
async fn visitor_with_a_conversation() -> (Engine, std::net::SocketAddr, WsClient, String) {
    let engine = engine_with_alice(small_limits()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let mut client = WsClient::as_identity(addr, &visitor("v-1")).await;
    let conversation = open(&mut client, "open-1").await;
    (engine, addr, client, conversation)
}

/// Sends frames in batches (replies come back in request order) and checks that each gets the error `expected`.
async fn expect_errors(client: &mut WsClient, cases: &[(String, Expected)]) {
    for batch in cases.chunks(32) {
        for (text, _) in batch {
            client.send_text(text).await;
        }
        for (text, expected) in batch {
            let error = client.next_of("error").await;
            let got = Expected::Error {
                code: serde_json::from_value(error["code"].clone()).expect("a known code"),
                id: error["id"].as_str().map(str::to_owned),
            };
            assert_eq!(&got, expected, "{}", &text[..text.len().min(200)]);
        }
    }
}

/// Every decode-refused mutation of every frame kind, aimed at the visitor's own conversation.
fn refused_mutations(conversation: &str) -> Vec<(String, Expected)> {
    let mut cases = Vec::new();
    for spec in FRAMES {
        let valid = frames::valid(spec);
        for mutation in frames::mutations(spec) {
            let (text, expected) = frames::apply(&valid, &mutation, spec);
            if matches!(expected, Expected::Error { .. }) {
                cases.push((text.replace(frames::CONVERSATION, conversation), expected));
            }
        }
    }
    cases
}

/// Random texts from structure-aware mutations (several fields set to random JSON, maybe cut), kept when the
/// decoder refuses them; deterministic, so that a failure repeats.
fn random_refused(conversation: &str, count: usize) -> Vec<(String, Expected)> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    let value = scalar.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{1,4}", inner), 0..3)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    });
    let strategy = (
        0..FRAMES.len(),
        prop::collection::vec((0usize..8, value), 1..4),
        prop::option::of(any::<usize>()),
    );
    let mut runner = TestRunner::deterministic();
    let mut cases = Vec::new();
    while cases.len() < count {
        let (index, sets, cut) = strategy.new_tree(&mut runner).expect("a case").current();
        let spec = &FRAMES[index];
        let mut frame = frames::valid(spec);
        let names: Vec<&str> = spec.fields.iter().map(|f| f.name).chain(["type", "id"]).collect();
        for (field, value) in sets {
            frame[names[field % names.len()]] = value;
        }
        let mut text = frame.to_string().replace(frames::CONVERSATION, conversation);
        if let Some(at) = cut {
            let mut end = at % text.len();
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        if let Err(error) = decode(&text) {
            cases.push((
                text,
                Expected::Error {
                    code: error.code,
                    id: error.id,
                },
            ));
        }
    }
    cases
}

/// A fresh connection of the visitor: the conversations its inbox lists.
async fn inbox_of(addr: std::net::SocketAddr) -> Vec<Value> {
    let client = WsClient::as_identity(addr, &visitor("v-1")).await;
    let conversations = client.inbox["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    client.close().await;
    conversations
}

#[tokio::test]
async fn malformed_frames_get_their_codes_the_connection_stays_usable_and_nothing_is_stored() {
    let (engine, addr, mut client, conversation) = visitor_with_a_conversation().await;
    let before = stored(&engine, &conversation).await;
    let last_seq = before.len() as u64;

    // The decoder's refusals: every mutation of every frame kind, then random ones.
    let mutations = refused_mutations(&conversation);
    assert!(mutations.len() > 500, "{}", mutations.len());
    expect_errors(&mut client, &mutations).await;
    expect_errors(&mut client, &random_refused(&conversation, 64)).await;

    // The regression corpus, where it is refused.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kf-core/tests/corpus/frames");
    let corpus: Vec<(String, Expected)> = corpus::read(dir)
        .into_iter()
        .filter(|case| case.expect() != "ok" && !case.input.is_empty())
        .map(|case| {
            let code = serde_json::from_value(json!(case.expect())).expect("an error code");
            let id = case.header("id").filter(|id| *id != "none").map(str::to_owned);
            (case.text().to_owned(), Expected::Error { code, id })
        })
        .collect();
    expect_errors(&mut client, &corpus).await;

    // The engine's refusals (also a subscription beyond the log).
    let mut refused: Vec<(String, Expected)> = frames::refused_requests(&conversation, last_seq, 1024)
        .into_iter()
        .map(|(frame, code)| {
            let id = frame["id"].as_str().map(str::to_owned);
            (frame.to_string(), Expected::Error { code, id })
        })
        .collect();
    refused.push((
        json!({"type": "subscribe", "id": "sub", "conversation": conversation, "after": last_seq + 1})
            .to_string(),
        Expected::error(kf_core::protocol::ErrorCode::BadCursor, Some("sub")),
    ));
    expect_errors(&mut client, &refused).await;

    // Binary messages of any bytes: `unsupported_data`, the session stays open.
    let mut runner = TestRunner::deterministic();
    for _ in 0..16 {
        let bytes = prop::collection::vec(any::<u8>(), 0..64)
            .new_tree(&mut runner)
            .expect("bytes")
            .current();
        client.send_binary(&bytes).await;
        assert_eq!(client.next_of("error").await["code"], "unsupported_data");
    }

    // Still usable: a ping is answered, a valid message is stored, and it is the only thing stored.
    client.until_pong().await;
    let ack = say(&mut client, &conversation, "c-valid", "fine now").await;
    assert_eq!(
        (ack["duplicate"].as_bool(), ack["seq"].as_u64()),
        (Some(false), Some(last_seq + 1))
    );
    let after = stored(&engine, &conversation).await;
    assert_eq!(after[..before.len()], before[..], "the log before is intact");
    assert_eq!(after.len(), before.len() + 1, "only the valid message was stored");
    client.close().await;
    assert_eq!(inbox_of(addr).await.len(), 1, "no other conversation was opened");
}

#[tokio::test]
async fn a_text_message_split_across_frames_is_one_frame_even_inside_a_character() {
    let (_engine, _addr, mut client, _conversation) = visitor_with_a_conversation().await;
    let text = r#"{"type":"ping","x":"é"}"#.as_bytes();
    let split = text.iter().position(|b| *b == 0xc3).expect("é") + 1;
    client
        .send_message(Message::Frame(Frame::message(
            text[..split].to_vec(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await;
    client
        .send_message(Message::Frame(Frame::message(
            text[split..].to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .await;
    client.next_of("pong").await;
    client.close().await;
}

/// Invalid UTF-8 in a text message closes with 1007, before `hello` and after, wherever it sits (one frame, or a
/// fragment of a message); what was stored stays, and the server carries on.
#[tokio::test]
async fn invalid_utf8_closes_with_1007_and_loses_nothing() {
    let (engine, addr, client, conversation) = visitor_with_a_conversation().await;
    client.close().await;
    let before = stored(&engine, &conversation).await;
    let mut runner = TestRunner::deterministic();
    let invalid = (
        prop::collection::vec(any::<u8>(), 0..24),
        prop::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(head, tail)| {
            // A byte that never starts nor continues UTF-8, somewhere in a frame.
            [head, vec![0xff], tail].concat()
        });
    for round in 0..6 {
        let bytes = invalid.new_tree(&mut runner).expect("bytes").current();
        let mut client = if round % 2 == 0 {
            WsClient::as_identity(addr, &visitor("v-1")).await
        } else {
            WsClient::connect(addr).await
        };
        if round == 5 {
            // In the second fragment of a message.
            let first = Frame::message(b"{\"type\":".to_vec(), OpCode::Data(Data::Text), false);
            client.send_message(Message::Frame(first)).await;
            let rest = Frame::message(bytes, OpCode::Data(Data::Continue), true);
            client.send_message(Message::Frame(rest)).await;
        } else {
            let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
            client.send_message(Message::Frame(frame)).await;
        }
        client.expect_close(1007).await;
    }
    assert_eq!(stored(&engine, &conversation).await, before);
    WsClient::as_identity(addr, &visitor("v-1")).await.close().await;
}

/// A first frame that is not a valid `hello` gets its `error` and the close code of protocol.md §7.1: 1002 for
/// what the decoder refuses (and for a frame that is not `hello`), 4001 for a binary one.
#[tokio::test]
async fn malformed_first_frames_close_with_their_documented_codes() {
    let engine = engine_with_alice(small_limits()).await;
    let addr = start(&engine, WsConfig::default()).await;
    let hello = frames::spec("hello").expect("hello");
    let mut cases: Vec<(String, String, Option<String>)> = Vec::new();
    for mutation in frames::mutations(hello) {
        let (text, expected) = frames::apply(&frames::valid(hello), &mutation, hello);
        if let Expected::Error { code, id } = expected {
            cases.push((text, code.as_str().to_owned(), id));
        }
    }
    // Every eighth, and the not-a-hello frames: a connection each.
    let mut cases: Vec<_> = cases.into_iter().step_by(8).collect();
    cases.push((
        json!({"type": "ping", "id": "p"}).to_string(),
        "hello_required".into(),
        Some("p".into()),
    ));
    cases.push((
        json!({"type": "send", "id": 5}).to_string(),
        "invalid_frame".into(),
        None,
    ));
    cases.push(("[\"hello\", null, 1, \"token\"]".into(), "bad_json".into(), None));
    for (text, code, id) in cases {
        let mut client = WsClient::connect(addr).await;
        client.send_text(&text).await;
        let frames = client.expect_close(1002).await;
        assert_eq!(frames.len(), 1, "{text}: {frames:?}");
        assert_eq!(frames[0]["code"].as_str(), Some(code.as_str()), "{text}");
        assert_eq!(frames[0]["id"].as_str(), id.as_deref(), "{text}");
    }
    let mut client = WsClient::connect(addr).await;
    client.send_binary(b"{\"type\":\"hello\"}").await;
    let frames = client.expect_close(4001).await;
    assert_eq!(frames[0]["code"], "hello_required");
    WsClient::as_identity(addr, &visitor("v-1")).await.close().await;
}

/// The upgrade request's method and headers, whatever they are: a 4xx that says why, never a panic; a valid
/// upgrade only for GET with the WebSocket headers (without a hyper connection, 426: it cannot be upgraded).
#[tokio::test]
async fn any_upgrade_request_is_answered() {
    let engine = engine_with_alice(small_limits()).await;
    let header_value = prop_oneof![
        Just("websocket".to_owned()),
        Just("Upgrade".to_owned()),
        Just("13".to_owned()),
        Just("dGhlIHNhbXBsZSBub25jZQ==".to_owned()),
        "[ -~]{0,30}",
    ];
    let header_name = prop::sample::select(vec![
        "upgrade",
        "connection",
        "sec-websocket-version",
        "sec-websocket-key",
        "sec-websocket-protocol",
        "origin",
    ]);
    let strategy = (
        prop::sample::select(vec![Method::GET, Method::POST, Method::HEAD, Method::OPTIONS]),
        prop::collection::vec((header_name, header_value), 0..6),
    );
    let mut runner = TestRunner::deterministic();
    for _ in 0..128 {
        let (method, headers) = strategy.new_tree(&mut runner).expect("a request").current();
        let mut request = Request::builder().method(method.clone()).uri("/ws");
        for (name, value) in &headers {
            request = request.header(*name, value.as_str());
        }
        let request = request.body(()).expect("a request");
        let response = kf_transport_ws::upgrade(&engine, &WsConfig::default(), request);
        let status = response.status().as_u16();
        let expected: &[u16] = if method == Method::GET {
            &[400, 426]
        } else {
            &[405]
        };
        assert!(expected.contains(&status), "{method} {headers:?}: {status}");
        assert!(!response.body().is_empty(), "{status} says why");
    }
}

/// Garbage where an HTTP upgrade should be: the server answers (or hangs up) and carries on.
#[tokio::test]
async fn garbage_instead_of_a_handshake_leaves_the_server_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let engine = engine_with_alice(small_limits()).await;
    // The handshake has the hello timeout: a request that never ends is dropped after it.
    let config = WsConfig::default().hello_timeout(std::time::Duration::from_millis(300));
    let addr = start(&engine, config).await;
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\n\r\n\r\n",
        &[0xff; 256][..],
    ] {
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        socket.write_all(garbage).await.expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(WAIT, socket.read_to_end(&mut answer)).await;
        if !answer.is_empty() {
            let head = String::from_utf8_lossy(&answer);
            assert!(head.starts_with("HTTP/1.1 4"), "{head}");
        }
    }
    WsClient::as_identity(addr, &visitor("v-1")).await.close().await;
}

/// `max_frame_bytes` exactly is read; one byte more closes with 1009 — as one frame or as fragments of one
/// message — and what was stored stays.
#[tokio::test]
async fn a_message_of_max_frame_bytes_is_read_and_one_byte_more_closes_with_1009() {
    let (engine, addr, mut client, conversation) = visitor_with_a_conversation().await;
    let before = stored(&engine, &conversation).await;
    let limit = small_limits().max_frame_bytes;
    let padded = |size: usize| {
        let frame = json!({"type": "ping", "pad": ""}).to_string();
        let pad = "x".repeat(size - frame.len());
        json!({"type": "ping", "pad": pad}).to_string()
    };
    let exact = padded(limit);
    assert_eq!(exact.len(), limit);
    client.send_text(&exact).await;
    client.next_of("pong").await;
    client.send_text(&padded(limit + 1)).await;
    client.expect_close(1009).await;

    let mut client = WsClient::as_identity(addr, &visitor("v-1")).await;
    let over = padded(limit + 1).into_bytes();
    let half = over.len() / 2;
    let first = Frame::message(over[..half].to_vec(), OpCode::Data(Data::Text), false);
    client.send_message(Message::Frame(first)).await;
    let rest = Frame::message(over[half..].to_vec(), OpCode::Data(Data::Continue), true);
    client.send_message(Message::Frame(rest)).await;
    client.expect_close(1009).await;
    assert_eq!(stored(&engine, &conversation).await, before);
}
