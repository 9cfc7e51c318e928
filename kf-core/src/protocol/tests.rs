//! The protocol's unit tests: decoding, encoding, codes.

use super::*;

#[test]
fn decodes_frames_with_ids() {
    let request = decode(r#"{"type":"send","id":"r1","conversation":"0190a5b0-0000-7000-8000-000000000000","client_id":"c1","body":{"text":"hi"}}"#)
        .expect("valid");
    assert_eq!(request.id.as_deref(), Some("r1"));
    assert!(matches!(request.frame, ClientFrame::Send { .. }));
    let ping = decode(r#"{"type":"ping","extra":1}"#).expect("unknown fields are ignored");
    assert_eq!(ping.frame, ClientFrame::Ping);
}

#[test]
fn decodes_the_context_and_quick_reply_frames() {
    let context = decode(r#"{"type":"context","id":"c1","referrer":"https://a.example/","utm":{"source":"news"},"user_agent":"UA"}"#)
        .expect("valid");
    let ClientFrame::Context { report } = context.frame else {
        panic!("not context: {context:?}");
    };
    assert_eq!(report.referrer.as_deref(), Some("https://a.example/"));
    assert_eq!(report.utm.source.as_deref(), Some("news"));
    assert_eq!(report.user_agent.as_deref(), Some("UA"));
    let empty = decode(r#"{"type":"context"}"#).expect("every field is optional");
    assert_eq!(empty.frame.name(), "context");
    let page = decode(r#"{"type":"page","url":"https://a.example/x","title":"X"}"#).expect("valid");
    assert_eq!(page.frame.name(), "page");
    assert_eq!(
        decode(r#"{"type":"page"}"#).map_err(|e| e.code),
        Err(ErrorCode::InvalidFrame)
    );
    let put = decode(r#"{"type":"put_quick_reply","shortcut":"hi","text":"Hello"}"#).expect("valid");
    assert!(matches!(
        put.frame,
        ClientFrame::PutQuickReply { reply_id: None, .. }
    ));
    for kind in ["quick_replies", "delete_quick_reply", "visitor_context", "take"] {
        let error = decode(&format!(r#"{{"type":"{kind}"}}"#));
        assert_ne!(error.map_err(|e| e.code), Err(ErrorCode::UnknownType), "{kind}");
    }
}

#[test]
fn decode_errors_are_precise() {
    assert_eq!(decode("nope").map_err(|e| e.code), Err(ErrorCode::BadJson));
    assert_eq!(decode("[1,2]").map_err(|e| e.code), Err(ErrorCode::BadJson));
    assert_eq!(
        decode(r#"{"id":"x"}"#).map_err(|e| e.code),
        Err(ErrorCode::InvalidFrame)
    );
    let unknown = decode(r#"{"type":"dance","id":"r9"}"#).expect_err("unknown");
    assert_eq!(
        (unknown.code, unknown.id.as_deref()),
        (ErrorCode::UnknownType, Some("r9"))
    );
    let wrong = decode(
        r#"{"type":"typing","id":"r2","conversation":"0190a5b0-0000-7000-8000-000000000000","active":"yes"}"#,
    )
    .expect_err("wrong type");
    assert_eq!(wrong.code, ErrorCode::InvalidFrame);
    assert_eq!(wrong.id.as_deref(), Some("r2"));
    assert!(wrong.message.contains("invalid type"), "{}", wrong.message);
    let long_id = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(65));
    assert_eq!(decode(&long_id).map_err(|e| e.code), Err(ErrorCode::InvalidFrame));
    let empty_client_id = decode(r#"{"type":"open","client_id":""}"#).expect_err("empty id");
    assert_eq!(empty_client_id.code, ErrorCode::InvalidFrame);
}

#[test]
fn nesting_deeper_than_the_parser_goes_is_bad_json() {
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for text in [
        deep(200),
        format!(r#"{{"type":"ping","extra":{}}}"#, deep(200)),
        format!(
            r#"{{"type":"send","id":"r1","conversation":"0190a5b0-0000-7000-8000-000000000000","client_id":"c1","body":{{"text":"hi","x":{}}}}}"#,
            deep(200)
        ),
        format!(
            r#"{{"id":"r1","type":"open","client_id":"c1","group":{}}}"#,
            deep(200)
        ),
    ] {
        let error = decode(&text).expect_err("too deep");
        assert_eq!(
            error.code,
            ErrorCode::BadJson,
            "{}: {}",
            &text[..60.min(text.len())],
            error.message
        );
    }
    // Within the limit, a wrong type is still `invalid_frame`.
    let shallow = format!(
        r#"{{"id":"r1","type":"open","client_id":"c1","group":{}}}"#,
        deep(3)
    );
    assert_eq!(decode(&shallow).map_err(|e| e.code), Err(ErrorCode::InvalidFrame));
}

#[test]
fn error_codes_serialize_as_their_names() {
    for code in [
        ErrorCode::BadJson,
        ErrorCode::SlowConsumer,
        ErrorCode::TooManyConnections,
        ErrorCode::Internal,
    ] {
        let json = serde_json::to_string(&code).expect("json");
        assert_eq!(json, format!("\"{}\"", code.as_str()));
    }
}

#[test]
fn server_frames_have_a_flat_shape() {
    let frame = ServerFrame::error(Some("r1".into()), ErrorCode::NotFound, "no such conversation");
    let json: serde_json::Value = serde_json::from_slice(&frame.encode()).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"type":"error","id":"r1","code":"not_found","message":"no such conversation"})
    );
    let ping: serde_json::Value = serde_json::from_slice(&ServerFrame::Ping.encode()).expect("json");
    assert_eq!(ping, serde_json::json!({"type":"ping"}));
}

#[test]
fn an_event_frame_encodes_the_same_borrowed_or_owned() {
    use crate::model::{
        Actor, AgentId, ClientId, ConversationId, Event, EventKind, MessageBody, Seq, Timestamp,
    };
    let author = Actor::Agent(AgentId::new("alice").expect("id"));
    let client_id = Some(ClientId::new("c1").expect("id"));
    let data = EventKind::Message {
        body: MessageBody::text("hi \"there\"\n"),
    };
    let event = Event::new(
        ConversationId::generate(),
        Seq(7),
        Timestamp(42),
        author,
        client_id,
        data,
    );
    assert_eq!(
        ServerFrame::encode_event(&event),
        ServerFrame::Event(event.clone()).encode()
    );
}

/// serde's errors quote the value they refuse, and an unknown type is quoted too: messages are cut to
/// `MAX_DECODE_MESSAGE_BYTES` so that a 60 KB string where a seq belongs does not come back whole (found by
/// review of the fuzz targets' outputs).
#[test]
fn error_messages_are_bounded() {
    let long = "é".repeat(30_000);
    for text in [
        format!(
            r#"{{"type":"read","id":"r","conversation":"0190a5b0-0000-7000-8000-000000000000","seq":"{long}"}}"#
        ),
        format!(r#"{{"type":"{long}","id":"r"}}"#),
        format!(r#"{{"type":"status","id":"r","status":"{long}"}}"#),
    ] {
        let error = decode(&text).expect_err("refused");
        assert!(
            error.message.len() <= MAX_DECODE_MESSAGE_BYTES,
            "{}",
            error.message.len()
        );
        assert!(error.message.contains('…'), "{}", error.message);
    }
}

/// A `send` over WebSocket (`decode`) and over SSE (`decode_body`, the type in the path) gives the same request, or
/// the same error (code, id and message), whatever is wrong with it.
#[test]
fn a_send_decodes_alike_on_both_transports() {
    let conversation = r#""0190a5b0-0000-7000-8000-000000000000""#;
    let long_id = "x".repeat(129);
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let frames = [
        format!(
            r#"{{"type":"send","id":"r1","conversation":{conversation},"client_id":"c1","body":{{"text":"hi"}}}}"#
        ),
        format!(
            r#"{{"conversation":{conversation},"type":"send","client_id":"c1","body":{{"text":"h\u00e9 \"q\"\n"}},"extra":[1,{{"a":null}}]}}"#
        ),
        format!(
            r#"{{"type":"send","conversation":{conversation},"conversation":{conversation},"client_id":"c1","body":{{"text":"hi"}}}}"#
        ),
        format!(r#"{{"type":"send","conversation":{conversation},"client_id":"c1","body":["hi"]}}"#),
        format!(r#"{{"type":"send","conversation":{conversation},"client_id":"c1"}}"#),
        format!(r#"{{"type":"send","conversation":{conversation},"client_id":"c1","body":{{"text":7}}}}"#),
        format!(
            r#"{{"type":"send","conversation":{conversation},"client_id":"c1","body":{{"text":"a","text":"b"}}}}"#
        ),
        format!(
            r#"{{"type":"send","conversation":{conversation},"client_id":"c1","body":{{"text":"a","more":true}}}}"#
        ),
        r#"{"type":"send","conversation":"not-a-uuid","client_id":"c1","body":{"text":"hi"}}"#.to_string(),
        format!(r#"{{"type":"send","conversation":{conversation},"client_id":"","body":{{"text":"hi"}}}}"#),
        format!(
            r#"{{"type":"send","conversation":{conversation},"client_id":"{long_id}","body":{{"text":"hi"}}}}"#
        ),
        format!(
            r#"{{"type":"send","id":"r2","conversation":{conversation},"client_id":"c1","body":{{"text":"hi"}},"x":{deep}}}"#
        ),
        format!(
            r#"{{"type":"send","id":null,"conversation":{conversation},"client_id":"c\u0001","body":{{"text":"hi"}}}}"#
        ),
        format!(
            r#"{{"type":"send","conversation":{conversation},"client_id":"c1","body":{{"text":"hi"}}}} trailing"#
        ),
    ];
    for frame in &frames {
        assert_eq!(decode(frame), decode_body("send", frame), "{frame}");
    }
    assert!(decode(&frames[0]).is_ok() && decode(&frames[1]).is_ok() && decode(&frames[7]).is_ok());
}

#[test]
fn the_client_frame_type_lists_agree() {
    assert_eq!(CLIENT_FRAME_TYPE_NAMES.join(", "), CLIENT_FRAME_TYPES);
}
