//! The SSE transport over real sockets: stream shape, resume from `Last-Event-ID`, requests by POST, errors.

mod common;

use std::time::Duration;

use common::*;
use kf_core::limits::Limits;
use kf_core::testkit::shop::*;
use kf_transport_sse::SseConfig;
use serde_json::json;

#[tokio::test]
async fn a_stream_has_the_right_headers_and_opens_with_retry_welcome_inbox_following() {
    let engine = engine(Limits::default()).await;
    let addr = start(&engine, SseConfig::default().retry(Duration::from_millis(1500))).await;
    let mut stream = Stream::follow(addr, &visitor("v1"), None).await;
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    let cache = stream.header("cache-control").expect("cache-control");
    assert!(
        cache.contains("no-cache") && cache.contains("no-transform"),
        "{cache}"
    );
    assert_eq!(stream.header("x-accel-buffering"), Some("no"));
    assert_eq!(stream.next_item().await, Item::Retry(1500));
    assert_eq!(stream.next().await["type"], "welcome");
    assert_eq!(stream.next().await["type"], "inbox");
    let following = stream.next().await;
    assert_eq!(following, json!({"type": "following", "reset": false}));
}

#[tokio::test]
async fn visitor_and_agent_converse_over_sse_and_post() {
    let engine = engine(Limits::default()).await;
    let addr = start(&engine, SseConfig::default()).await;
    let (alice_token, v1_token) = (token(&agent("alice")), token(&visitor("v1")));
    let mut alice = Stream::follow(addr, &agent("alice"), None).await;
    alice.next_of("following").await;
    let mut v1 = Stream::follow(addr, &visitor("v1"), None).await;
    v1.next_of("following").await;

    let (status, opened) = request(addr, &v1_token, "open", json!({"client_id": "o1", "id": "r1"})).await;
    assert_eq!(
        (status, opened["type"].as_str(), opened["id"].as_str()),
        (200, Some("opened"), Some("r1"))
    );
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_string();
    // Both streams follow the new conversation by themselves: created (1) and assigned (2).
    assert_eq!(
        positions(&v1.events(2).await),
        [(conversation.clone(), 1), (conversation.clone(), 2)]
    );
    assert_eq!(
        alice.next_of("conversation").await["conversation"]["id"],
        conversation.as_str()
    );
    assert_eq!(
        positions(&alice.events(2).await),
        [(conversation.clone(), 1), (conversation.clone(), 2)]
    );

    let (status, ack) = request(
        addr,
        &v1_token,
        "send",
        json!({"conversation": conversation, "client_id": "m1", "body": {"text": "hello"}}),
    )
    .await;
    assert_eq!(
        (status, ack["type"].as_str(), ack["seq"].as_u64()),
        (200, Some("ack"), Some(3))
    );
    let event = alice.next_of("event").await;
    assert_eq!(event["data"]["body"]["text"], "hello");
    let (status, reply) = request(
        addr,
        &alice_token,
        "send",
        json!({"conversation": conversation, "client_id": "a1", "body": {"text": "hi, how can I help?"}}),
    )
    .await;
    assert_eq!((status, reply["seq"].as_u64()), (200, Some(4)));
    let events = v1.events(2).await;
    assert_eq!(events[1]["data"]["body"]["text"], "hi, how can I help?");

    // Typing and read receipts are relayed; they have no reply body.
    let (status, body) = request(
        addr,
        &alice_token,
        "typing",
        json!({"conversation": conversation, "active": true}),
    )
    .await;
    assert_eq!((status, body), (204, serde_json::Value::Null));
    assert_eq!(
        v1.next_of("typing").await["from"],
        json!({"role": "agent", "id": "alice"})
    );
    let (status, _) = request(
        addr,
        &v1_token,
        "read",
        json!({"conversation": conversation, "seq": 4}),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(alice.next_of("read").await["seq"], 4);
    let (status, closed) = request(addr, &alice_token, "close", json!({"conversation": conversation})).await;
    assert_eq!(
        (status, closed["type"].as_str(), closed["seq"].as_u64()),
        (200, Some("closed"), Some(5))
    );
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_gets_every_missed_event_once() {
    let engine = engine(Limits::default()).await;
    let addr = start(&engine, SseConfig::default()).await;
    let mut conversations = Vec::new();
    for name in ["v1", "v2"] {
        let (_, opened) = request(addr, &token(&visitor(name)), "open", json!({"client_id": "o1"})).await;
        conversations.push(opened["conversation"]["id"].as_str().expect("id").to_string());
    }
    let mut alice = Stream::follow(addr, &agent("alice"), None).await;
    let first = positions(&alice.events(4).await);
    assert_eq!(first.len(), 4);
    let cursor = alice.last_id.clone().expect("events carry ids");
    drop(alice);

    // A burst on both conversations while the agent is away.
    let mut sent = Vec::new();
    for round in 0..5 {
        for (name, conversation) in ["v1", "v2"].iter().zip(&conversations) {
            let (status, ack) = request(
                addr,
                &token(&visitor(name)),
                "send",
                json!({"conversation": conversation, "client_id": format!("m{round}"), "body": {"text": format!("{name} {round}")}}),
            )
            .await;
            assert_eq!(status, 200);
            sent.push((conversation.clone(), ack["seq"].as_u64().expect("seq")));
        }
    }
    let path = format!("/events?token={}", token(&agent("alice")));
    let mut alice = Stream::open(addr, &path, &[("Last-Event-ID", &cursor)]).await;
    assert_eq!(alice.next_of("following").await["reset"], false);
    let mut missed = positions(&alice.events(10).await);
    // Order holds within each conversation; between conversations there is none to keep.
    for conversation in &conversations {
        let seqs: Vec<u64> = missed
            .iter()
            .filter(|(c, _)| c == conversation)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(seqs, [3, 4, 5, 6, 7]);
    }
    missed.sort();
    sent.sort();
    assert_eq!(missed, sent);
    // And then live, with nothing repeated.
    request(
        addr,
        &token(&visitor("v1")),
        "send",
        json!({"conversation": conversations[0], "client_id": "late", "body": {"text": "still there?"}}),
    )
    .await;
    assert_eq!(positions(&alice.events(1).await), [(conversations[0].clone(), 8)]);

    // A fresh page passes the same cursor as a query parameter.
    let cursor = alice.last_id.clone().expect("id");
    let mut page = Stream::follow(addr, &agent("alice"), Some(&cursor)).await;
    page.next_of("following").await;
    request(
        addr,
        &token(&visitor("v2")),
        "send",
        json!({"conversation": conversations[1], "client_id": "after", "body": {"text": "x"}}),
    )
    .await;
    assert_eq!(positions(&page.events(1).await), [(conversations[1].clone(), 8)]);
}

#[tokio::test]
async fn one_conversation_can_be_watched_alone() {
    let engine = engine(Limits::default()).await;
    let addr = start(&engine, SseConfig::default()).await;
    let v1 = token(&visitor("v1"));
    let (_, opened) = request(addr, &v1, "open", json!({"client_id": "o1"})).await;
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_string();
    let path = format!("/events?token={v1}&conversation={conversation}");
    let mut stream = Stream::open(addr, &path, &[]).await;
    assert_eq!(stream.status, 200, "{}", String::from_utf8_lossy(&stream.body));
    let subscribed = stream.next_of("subscribed").await;
    assert_eq!(
        (subscribed["after"].as_u64(), subscribed["reset"].as_bool()),
        (Some(0), Some(false))
    );
    assert_eq!(
        positions(&stream.events(1).await),
        [(conversation.clone(), 1)],
        "queued: only `created` so far"
    );
    // Someone else's conversation: refused with a status, so EventSource stops.
    let other = format!(
        "/events?token={}&conversation={conversation}",
        token(&visitor("v2"))
    );
    let refused = Stream::open(addr, &other, &[]).await;
    assert_eq!(refused.status, 404);
}

#[tokio::test]
async fn hopeless_requests_get_error_statuses_with_json_bodies() {
    let limits = Limits::default().with_max_text_bytes(10);
    let engine = engine(limits).await;
    let addr = start(&engine, SseConfig::default()).await;
    let no_token = Stream::open(addr, "/events", &[]).await;
    assert_eq!(no_token.status, 401);
    let body: serde_json::Value = serde_json::from_slice(&no_token.body).expect("json");
    assert_eq!(body["code"], "invalid_token");
    let forged = Stream::open(addr, "/events", &[("Authorization", "Bearer kf1.forged.token")]).await;
    assert_eq!(forged.status, 401);
    let bad_cursor = Stream::open(
        addr,
        &format!("/events?token={}&cursor=nope", token(&visitor("v1"))),
        &[],
    )
    .await;
    assert_eq!(bad_cursor.status, 400);
    let unknown_agent = Stream::open(addr, &format!("/events?token={}", token(&agent("mallory"))), &[]).await;
    assert_eq!(unknown_agent.status, 403);

    let v1 = token(&visitor("v1"));
    let (_, opened) = request(addr, &v1, "open", json!({"client_id": "o1"})).await;
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_string();
    let cases = [
        (post(addr, "/send", Some(&v1), "not json").await, 400, "bad_json"),
        (post(addr, "/send", Some(&v1), "[1]").await, 400, "bad_json"),
        (post(addr, "/dance", Some(&v1), "{}").await, 400, "unknown_type"),
        (post(addr, "/send", Some(&v1), r#"{"conversation": 5}"#).await, 400, "invalid_frame"),
        (post(addr, "/subscribe", Some(&v1), &json!({"conversation": conversation}).to_string()).await, 400, "invalid_frame"),
        (post(addr, "/send", None, "{}").await, 401, "invalid_token"),
        (
            post(addr, "/send", Some(&v1), &json!({"conversation": conversation, "client_id": "m1", "body": {"text": "far too long for the limit"}}).to_string()).await,
            413,
            "too_large",
        ),
        (
            post(addr, "/send", Some(&token(&visitor("v2"))), &json!({"conversation": conversation, "client_id": "m1", "body": {"text": "hi"}}).to_string()).await,
            404,
            "not_found",
        ),
        (
            post(addr, "/send", Some(&token(&agent("alice"))), &json!({"conversation": uuid_of(7), "client_id": "m1", "body": {"text": "hi"}}).to_string()).await,
            404,
            "not_found",
        ),
    ];
    for (reply, status, code) in cases {
        assert_eq!(reply.status, status, "{}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.json()["code"], code);
    }
    let stored = stored(&engine, &conversation).await;
    assert_eq!(
        stored.len(),
        1,
        "nothing but `created`: the refused requests stored nothing"
    );
}

/// A body that is not declared `application/json` is refused with 415 (and stores nothing); one that is, with or
/// without a charset, goes through; a request without a body needs no `Content-Type`.
#[tokio::test]
async fn a_body_not_declared_json_gets_415() {
    let engine = engine(Limits::default()).await;
    let addr = start(&engine, SseConfig::default()).await;
    let v1 = token(&visitor("v1"));
    let body = json!({"client_id": "o1"}).to_string();
    for content_type in [
        None,
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
    ] {
        let reply = post_typed(addr, "/open", Some(&v1), content_type, &body).await;
        assert_eq!(
            reply.status,
            415,
            "{content_type:?}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.json()["code"], "bad_json", "{content_type:?}");
    }
    // The first accepted open creates the conversation (so no refused one did); the second finds it.
    for (content_type, created) in [
        ("application/json", true),
        ("Application/JSON; charset=utf-8", false),
    ] {
        let reply = post_typed(addr, "/open", Some(&v1), Some(content_type), &body).await;
        assert_eq!(
            reply.status,
            200,
            "{content_type}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["created"], created, "{content_type}");
    }
    let pong = post_typed(addr, "/ping", Some(&v1), None, "").await;
    assert_eq!(pong.status, 200);
    assert_eq!(pong.json()["type"], "pong");
}

fn uuid_of(n: u8) -> String {
    format!("0190a5b0-0000-7000-8000-0000000000{n:02}")
}

#[tokio::test]
async fn idle_streams_get_heartbeats_and_shutdown_ends_them_resumably() {
    let engine = engine(Limits::default()).await;
    let addr = start(&engine, SseConfig::default().heartbeat(Duration::from_millis(50))).await;
    let mut stream = Stream::follow(addr, &visitor("v1"), None).await;
    stream.next_of("following").await;
    loop {
        if let Item::Comment(text) = stream.next_item().await {
            assert_eq!(text, "ping");
            break;
        }
    }
    engine.shutdown().await;
    let frames = stream.until_end().await;
    let last = frames.last().expect("an error frame before the end");
    assert_eq!(
        (last["type"].as_str(), last["code"].as_str()),
        (Some("error"), Some("unavailable"))
    );
}

/// Whether the server has let go of the connection under `socket`, seen without reading from it: a write reaches a
/// socket the server closed, which answers with a reset (a live server just buffers it).
fn server_let_go(socket: &tokio::net::TcpStream) -> bool {
    if let Ok(Some(_)) = socket.take_error() {
        return true;
    }
    match socket.try_write(b"x") {
        _ if socket.take_error().ok().flatten().is_some() => true,
        Ok(_) => false,
        Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// An agent's stream whose client never reads (a small receive buffer, so the server's socket fills): its queue
/// overflows, its session ends at once (offline), and the server drops the TCP connection within a second or two
/// — although the last `error` event cannot be written — instead of holding it until TCP gives up.
#[tokio::test]
async fn a_stream_that_is_never_read_is_dropped_promptly() {
    let engine = engine(limits().with_outbound_queue_bytes(16 * 1024)).await;
    let addr = start(&engine, SseConfig::default()).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("SO_RCVBUF");
    let tcp = socket.connect(addr).await.expect("connect");
    let path = format!("/events?token={}", token(&agent("alice")));
    let mut alice = Stream::over(tcp, &path, &[]).await;
    assert_eq!(alice.status, 200);
    alice.next_of("following").await;
    let (_, opened) = request(addr, &token(&visitor("v-1")), "open", json!({"client_id": "o-1"})).await;
    let conversation: kf_core::model::ConversationId = opened["conversation"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    // From here on alice reads nothing.
    let alice_id = kf_core::model::AgentId::new("alice").expect("id");
    let tenant = tenant();
    let mut published = 0;
    while engine.is_online(&tenant, &alice_id) {
        assert!(published < 10_000, "the server kept buffering");
        let client_id = kf_core::model::ClientId::new(format!("m-{published}")).expect("id");
        engine
            .send(
                &visitor("v-1"),
                conversation,
                client_id,
                kf_core::model::MessageBody::text("m".repeat(2048)),
            )
            .await
            .expect("send");
        published += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cut_at = tokio::time::Instant::now();
    while !server_let_go(alice.socket()) {
        assert!(
            cut_at.elapsed() < Duration::from_secs(3),
            "the server still holds the connection {:?} after cutting the session",
            cut_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A following stream whose cursor puts a conversation beyond its last seq is refused with 400 `bad_cursor` (an
/// `EventSource` stops; the client starts without the cursor), and so is one watching that conversation alone.
#[tokio::test]
async fn a_cursor_beyond_the_log_is_refused_with_400() {
    let engine = engine(Limits::default()).await;
    let addr = start(&engine, SseConfig::default()).await;
    let v1 = token(&visitor("v1"));
    let (_, opened) = request(addr, &v1, "open", json!({"client_id": "o1"})).await;
    let id = opened["conversation"]["id"].as_str().expect("id").to_string();
    let last = opened["conversation"]["last_seq"].as_u64().expect("last_seq");
    let cursor_at = |seq: u64| {
        let mut cursor = kf_core::cursor::Cursor::new(engine.epoch());
        cursor.advance(id.parse().expect("uuid"), kf_core::model::Seq(seq));
        cursor.encode()
    };
    for query in [
        format!("/events?token={v1}&cursor={}", cursor_at(last + 5)),
        format!(
            "/events?token={v1}&conversation={id}&cursor={}",
            cursor_at(last + 5)
        ),
    ] {
        let refused = Stream::open(addr, &query, &[]).await;
        assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(&refused.body));
        let body: serde_json::Value = serde_json::from_slice(&refused.body).expect("json");
        assert_eq!(body["code"], "bad_cursor", "{body}");
    }
    // At the end of the log it resumes; `subscribed` says where the replay ends.
    let mut watching = Stream::open(
        addr,
        &format!("/events?token={v1}&conversation={id}&cursor={}", cursor_at(last)),
        &[],
    )
    .await;
    assert_eq!(watching.status, 200);
    let subscribed = watching.next_of("subscribed").await;
    assert_eq!(subscribed["last_seq"], last, "{subscribed}");
}

/// Reads one HTTP response with a `content-length` body from `stream`: its status and body.
async fn read_sized_response(stream: &mut tokio::net::TcpStream) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let head_end = loop {
        let mut chunk = [0_u8; 1024];
        let read = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(
            read > 0,
            "connection closed: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&chunk[..read]);
        if let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let status = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .expect("content-length")
        .trim()
        .parse()
        .expect("length");
    while bytes.len() < head_end + length {
        let mut chunk = [0_u8; 1024];
        let read = stream.read(&mut chunk).await.expect("read");
        assert!(read > 0, "body cut short");
        bytes.extend_from_slice(&chunk[..read]);
    }
    (
        status,
        String::from_utf8_lossy(&bytes[head_end..head_end + length]).into_owned(),
    )
}

#[tokio::test]
async fn a_connection_goes_on_after_a_plain_get_with_a_sized_answer() {
    use tokio::io::AsyncWriteExt;
    let engine = engine(Limits::default()).await;
    let addr = start(&engine, SseConfig::default()).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The first request is a plain GET, answered by kf's own writer; the POST after it on the same connection
    // is hyper's.
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: kf\r\n\r\n")
        .await
        .expect("write");
    let (status, body) = read_sized_response(&mut stream).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["code"],
        "invalid_token"
    );
    let token = token(&visitor("v1"));
    let body = r#"{"id":"p1"}"#;
    let post = format!(
        "POST /ping HTTP/1.1\r\nHost: kf\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(post.as_bytes()).await.expect("write");
    let (status, body) = read_sized_response(&mut stream).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["type"],
        "pong"
    );
}
