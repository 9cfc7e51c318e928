//! Starts the real demo app on 127.0.0.1:0 over a temporary data directory and talks to it like the pages do:
//! HTTP for the pages and tokens, the kf protocol over `/ws` and over SSE (`/sse`) for the conversation.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use kf_core::testkit::shop::{WAIT, seqs};
use kf_demo::Demo;
use kf_transport_ws::testkit::WsClient;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long a test's shutdown may take.
const GRACE: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    demo: Demo,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(dir: &Path) -> Server {
        let demo = Demo::open(dir).await.expect("demo opens");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = demo.router();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Server { addr, demo, task }
    }

    async fn stop(self) {
        self.demo.shutdown(GRACE).await.expect("store closes");
        self.task.abort();
        let _ = self.task.await;
        drop(self.demo);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough for this test.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> HttpResponse {
    let headers: Vec<(&str, &str)> = content_type
        .map(|value| ("Content-Type", value))
        .into_iter()
        .collect();
    http_with(addr, method, path, &headers, body).await
}

/// [`http`] with any request headers.
async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("utf-8 response");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_owned() };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        body.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    body
}

async fn post_json(addr: SocketAddr, path: &str, body: Value) -> HttpResponse {
    http(addr, "POST", path, Some("application/json"), &body.to_string()).await
}

/// Connects to `/ws` as the pages do (answering pings) and says hello; returns `welcome` and `inbox` too.
async fn connect(addr: SocketAddr, token: &str) -> (WsClient, Value, Value) {
    let mut client = WsClient::connect(addr).await.answering_pings();
    client.say_hello(token).await;
    let (welcome, inbox) = (client.welcome.clone(), client.inbox.clone());
    (client, welcome, inbox)
}

/// Collects the `event` frames of `conversation` until the one of seq `last` (other frames stay with the client).
async fn events_until(ws: &mut WsClient, conversation: &str, last: u64) -> Vec<Value> {
    let mut events = Vec::new();
    while events.last().and_then(|e: &Value| e["seq"].as_u64()) != Some(last) {
        let event = ws
            .next_where(|f| f["type"] == "event" && f["conversation"] == conversation)
            .await;
        events.push(event);
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_tokens_and_a_conversation_over_ws() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    let addr = server.addr;

    // Pages and assets.
    for path in ["/", "/agent"] {
        let page = http(addr, "GET", path, None, "").await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}"
        );
        assert!(page.body.contains("<!doctype html>"), "{path}");
    }
    // The pages' own script, and the client package they import, served by the widget crate.
    for path in [
        "/assets/ui.js",
        "/widget/client/index.js",
        "/widget/client/client.js",
    ] {
        let script = http(addr, "GET", path, None, "").await;
        assert_eq!(script.status, 200, "{path}");
        assert!(
            script
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/javascript")),
            "{path}"
        );
    }
    assert_eq!(http(addr, "GET", "/assets/nope.js", None, "").await.status, 404);
    let health = http(addr, "GET", "/healthz", None, "").await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, json!("ok"))
    );
    let missing = http(addr, "GET", "/nowhere", None, "").await;
    assert_eq!(
        (missing.status, missing.json()["error"].clone()),
        (404, json!("not_found"))
    );
    let wrong_method = http(addr, "GET", "/api/agent-login", None, "").await;
    assert_eq!(
        (wrong_method.status, wrong_method.json()["error"].clone()),
        (405, json!("method_not_allowed"))
    );

    // Visitor tokens (the widget's session endpoint): a new visitor, the same one again with its key.
    let generated = post_json(addr, "/widget/session", json!({"tenant": "demo"})).await;
    assert_eq!(generated.status, 200, "{}", generated.body);
    assert_eq!(generated.header("cache-control"), Some("no-store"));
    let visitor = generated.json();
    let visitor_id = visitor["visitor_id"].as_str().expect("id").to_owned();
    assert!(visitor_id.starts_with("v-"));
    assert_eq!(visitor["expires_in"], 86_400);
    let again = post_json(
        addr,
        "/widget/session",
        json!({"tenant": "demo", "visitor_id": visitor_id, "visitor_key": visitor["visitor_key"]}),
    )
    .await;
    assert_eq!(again.json()["visitor_id"], visitor_id.as_str());
    let visitor_token = visitor["token"].as_str().expect("token").to_owned();
    // Nobody is a visitor by naming it, and the demo's old endpoint that allowed it is gone.
    let chosen = post_json(
        addr,
        "/widget/session",
        json!({"tenant": "demo", "visitor_id": visitor_id}),
    )
    .await;
    assert_eq!(chosen.status, 401);
    let old = post_json(addr, "/api/visitor-token", json!({"visitor_id": visitor_id})).await;
    assert_eq!(old.status, 404);

    // The JSON API's bodies: malformed, not an object, too large, not JSON.
    let bad_json = http(
        addr,
        "POST",
        "/api/agent-login",
        Some("application/json"),
        "{nope",
    )
    .await;
    assert_eq!(bad_json.status, 400);
    assert!(
        bad_json.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid JSON"))
    );
    let array = http(addr, "POST", "/api/agent-login", Some("application/json"), "[1]").await;
    assert_eq!(array.status, 400);
    assert!(
        array.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("JSON object"))
    );
    let too_large = post_json(
        addr,
        "/api/agent-login",
        json!({"agent": "x".repeat(20_000), "password": ""}),
    )
    .await;
    assert_eq!(
        (too_large.status, too_large.json()["error"].clone()),
        (413, json!("too_large"))
    );
    let form = http(addr, "POST", "/api/agent-login", Some("text/plain"), "x").await;
    assert_eq!(
        (form.status, form.json()["error"].clone()),
        (415, json!("unsupported_media_type"))
    );

    // Agent login.
    let wrong = post_json(
        addr,
        "/api/agent-login",
        json!({"agent": "alice", "password": "nope"}),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    let unknown = post_json(
        addr,
        "/api/agent-login",
        json!({"agent": "mallory", "password": "alice-demo"}),
    )
    .await;
    assert_eq!(unknown.status, 401);
    let incomplete = post_json(addr, "/api/agent-login", json!({"agent": "alice"})).await;
    assert_eq!(incomplete.status, 400);
    assert!(
        incomplete.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("password"))
    );
    let login = post_json(
        addr,
        "/api/agent-login",
        json!({"agent": "alice", "password": "alice-demo"}),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let login = login.json();
    assert_eq!(
        (login["agent"].clone(), login["name"].clone()),
        (json!("alice"), json!("Alice"))
    );
    let agent_token = login["token"].as_str().expect("token").to_owned();

    // The agent comes online; the visitor opens a conversation, which is routed to her.
    let (mut agent, welcome, inbox) = connect(addr, &agent_token).await;
    assert_eq!(welcome["principal"], json!({"role": "agent", "id": "alice"}));
    assert_eq!(inbox["conversations"], json!([]));
    let epoch = welcome["epoch"].clone();
    let (mut visitor, welcome, _) = connect(addr, &visitor_token).await;
    assert_eq!(welcome["principal"], json!({"role": "visitor", "id": visitor_id}));
    visitor
        .send(json!({"type": "open", "id": "o1", "client_id": "open-1"}))
        .await;
    let opened = visitor.next_of("opened").await;
    assert_eq!(
        (opened["id"].clone(), opened["created"].clone()),
        (json!("o1"), json!(true))
    );
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();
    let assigned = agent.next_of("conversation").await;
    assert_eq!(assigned["conversation"]["id"], conversation.as_str());
    assert_eq!(assigned["conversation"]["agent"], "alice");

    // Both subscribe from the start and see created (1) and assigned (2).
    for ws in [&mut visitor, &mut agent] {
        ws.send(json!({"type": "subscribe", "id": "s1", "conversation": conversation, "after": 0, "epoch": epoch})).await;
        let subscribed = ws.next_of("subscribed").await;
        assert_eq!(subscribed["reset"], false);
        let events = events_until(ws, &conversation, 2).await;
        assert_eq!(seqs(&events), [1, 2]);
        assert_eq!(events[1]["data"], json!({"type": "assigned", "agent": "alice"}));
    }

    // Typing reaches the agent.
    visitor
        .send(json!({"type": "typing", "conversation": conversation, "active": true}))
        .await;
    let typing = agent.next_of("typing").await;
    assert_eq!(typing["from"], json!({"role": "visitor", "id": visitor_id}));

    // Visitor → agent, acknowledged; a resend with the same client id is a duplicate, not a second message.
    let hello = json!({"type": "send", "id": "m1", "conversation": conversation, "client_id": "c-1", "body": {"text": "Where is my order?"}});
    visitor.send(hello.clone()).await;
    let ack = visitor.next_of("ack").await;
    assert_eq!(
        (
            ack["seq"].clone(),
            ack["duplicate"].clone(),
            ack["client_id"].clone()
        ),
        (json!(3), json!(false), json!("c-1"))
    );
    let received = events_until(&mut agent, &conversation, 3).await;
    assert_eq!(received[0]["data"]["body"]["text"], "Where is my order?");
    assert_eq!(
        received[0]["author"],
        json!({"role": "visitor", "id": visitor_id})
    );
    visitor.send(hello).await;
    let again = visitor.next_of("ack").await;
    assert_eq!(
        (again["seq"].clone(), again["duplicate"].clone()),
        (json!(3), json!(true))
    );

    // Agent → visitor.
    agent.send(json!({"type": "send", "id": "a1", "conversation": conversation, "client_id": "a-1", "body": {"text": "It ships today."}})).await;
    let ack = agent.next_of("ack").await;
    assert_eq!(ack["seq"], 4);
    let received = events_until(&mut visitor, &conversation, 4).await;
    assert_eq!(
        received.last().expect("event")["data"]["body"]["text"],
        "It ships today."
    );
    assert_eq!(
        received.last().expect("event")["author"],
        json!({"role": "agent", "id": "alice"})
    );

    // The agent closes; the visitor sees it.
    agent
        .send(json!({"type": "close", "id": "c1", "conversation": conversation}))
        .await;
    let closed = agent.next_of("closed").await;
    assert_eq!(closed["seq"], 5);
    let received = events_until(&mut visitor, &conversation, 5).await;
    assert_eq!(received.last().expect("event")["data"]["type"], "closed");

    // A visitor that reconnects and resumes after seq 3 gets exactly 4 and 5.
    visitor.close().await;
    let (mut visitor, _, inbox) = connect(addr, &visitor_token).await;
    assert_eq!(inbox["conversations"][0]["id"], conversation.as_str());
    visitor
        .send(json!({"type": "subscribe", "conversation": conversation, "after": 3, "epoch": epoch}))
        .await;
    let events = events_until(&mut visitor, &conversation, 5).await;
    assert_eq!(seqs(&events), [4, 5]);
    visitor.close().await;
    agent.close().await;
    server.stop().await;

    // After a restart on the same data directory, old tokens still work and the history is still there.
    let server = Server::start(&data).await;
    let (mut visitor, welcome, inbox) = connect(server.addr, &visitor_token).await;
    assert_eq!(welcome["epoch"], epoch, "same store, same epoch");
    assert_eq!(inbox["conversations"][0]["id"], conversation.as_str());
    visitor
        .send(json!({"type": "subscribe", "conversation": conversation, "after": 0, "epoch": epoch}))
        .await;
    let events = events_until(&mut visitor, &conversation, 5).await;
    assert_eq!(seqs(&events), [1, 2, 3, 4, 5]);
    assert_eq!(events[2]["data"]["body"]["text"], "Where is my order?");
    let (_agent, welcome, _) = connect(server.addr, &agent_token).await;
    assert_eq!(welcome["principal"]["id"], "alice");
    server.stop().await;
}

/// An open `GET /sse/events` response, read as the raw bytes of an HTTP/1.0 response (no chunked framing).
struct EventStream {
    stream: TcpStream,
    buffer: String,
}

/// One server-sent event: its `id:` (if any) and its `data:` as JSON.
struct SseEvent {
    id: Option<String>,
    frame: Value,
}

impl EventStream {
    /// Opens the stream at `path` and returns the response's status and headers with it.
    async fn open(
        addr: SocketAddr,
        path: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, EventStream) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (name, value) in extra {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut events = EventStream {
            stream,
            buffer: String::new(),
        };
        while !events.buffer.contains("\r\n\r\n") {
            events.read_more().await;
        }
        let (head, rest) = events.buffer.split_once("\r\n\r\n").expect("header end");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
            .collect();
        events.buffer = rest.to_owned();
        (status, headers, events)
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("stream data in time")
            .expect("read");
        assert!(read > 0, "the stream ended; so far: {}", self.buffer);
        self.buffer
            .push_str(std::str::from_utf8(&chunk[..read]).expect("utf-8"));
    }

    /// The next event that carries data (comments and `retry:` are skipped).
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some((block, rest)) = self.buffer.split_once("\n\n") {
                let (block, rest) = (block.to_owned(), rest.to_owned());
                self.buffer = rest;
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim_start().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data = Some(value.trim_start().to_owned());
                    }
                }
                if let Some(data) = data {
                    let frame = serde_json::from_str(&data).expect("JSON data");
                    return SseEvent { id, frame };
                }
                continue;
            }
            self.read_more().await;
        }
    }

    /// Skips frames until the `event` frame of `conversation` with `seq`.
    async fn event(&mut self, conversation: &str, seq: u64) -> SseEvent {
        for _ in 0..50 {
            let event = self.next().await;
            if event.frame["type"] == "event" && event.frame["conversation"] == conversation {
                assert!(event.id.is_some(), "an event frame carries the cursor in `id:`");
                if event.frame["seq"] == seq {
                    return event;
                }
                assert!(
                    event.frame["seq"].as_u64() < Some(seq),
                    "past seq {seq}: {}",
                    event.frame
                );
            }
        }
        panic!("no event {seq} of {conversation}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sse_endpoints_are_mounted_and_resume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data")).await;
    let addr = server.addr;
    let session = post_json(addr, "/widget/session", json!({"tenant": "demo"}))
        .await
        .json();
    let visitor_token = session["token"].as_str().expect("token").to_owned();
    let visitor_id = session["visitor_id"].as_str().expect("id").to_owned();
    let agent_token = post_json(
        addr,
        "/api/agent-login",
        json!({"agent": "alice", "password": "alice-demo"}),
    )
    .await
    .json()["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let bearer = format!("Bearer {visitor_token}");

    // The agent's stream (it makes alice available for assignment) and the visitor's.
    let (status, headers, mut agent) =
        EventStream::open(addr, &format!("/sse/events?token={agent_token}"), &[]).await;
    assert_eq!(status, 200);
    for expected in ["welcome", "inbox", "following"] {
        assert_eq!(agent.next().await.frame["type"], expected);
    }
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    assert_eq!(content_type.map(|(_, v)| v.as_str()), Some("text/event-stream"));
    let (status, _, mut visitor) =
        EventStream::open(addr, &format!("/sse/events?token={visitor_token}"), &[]).await;
    assert_eq!(status, 200);
    let welcome = visitor.next().await.frame;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["principal"], json!({"role": "visitor", "id": visitor_id}));

    // Upstream over POST: open, then send (twice with the same client id: stored once).
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let opened = http_with(addr, "POST", "/sse/open", &auth, r#"{"client_id": "o-1"}"#).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let opened = opened.json();
    assert_eq!(opened["type"], "opened");
    let conversation = opened["conversation"]["id"].as_str().expect("id").to_owned();
    let first = visitor.event(&conversation, 1).await;
    let body = json!({"conversation": conversation, "client_id": "m-1", "body": {"text": "Hello over SSE"}})
        .to_string();
    let ack = http_with(addr, "POST", "/sse/send", &auth, &body).await;
    assert_eq!(ack.status, 200, "{}", ack.body);
    assert_eq!(ack.header("content-type"), Some("application/json"));
    let ack = ack.json();
    assert_eq!(
        (ack["type"].as_str(), ack["duplicate"].as_bool()),
        (Some("ack"), Some(false))
    );
    let seq = ack["seq"].as_u64().expect("seq");
    let message = visitor.event(&conversation, seq).await;
    assert_eq!(message.frame["data"]["body"]["text"], "Hello over SSE");
    let at_agent = agent.event(&conversation, seq).await;
    assert_eq!(
        at_agent.frame["author"],
        json!({"role": "visitor", "id": visitor_id})
    );
    let again = http_with(addr, "POST", "/sse/send", &auth, &body).await.json();
    assert_eq!(
        (again["seq"].as_u64(), again["duplicate"].as_bool()),
        (Some(seq), Some(true))
    );

    // The agent answers over POST; a request without a token is refused with 401.
    let agent_bearer = format!("Bearer {agent_token}");
    let reply = json!({"conversation": conversation, "client_id": "a-1", "body": {"text": "Hi from SSE"}})
        .to_string();
    let agent_auth = [
        ("Authorization", agent_bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let reply_ack = http_with(addr, "POST", "/sse/send", &agent_auth, &reply)
        .await
        .json();
    assert_eq!(reply_ack["seq"].as_u64(), Some(seq + 1), "{reply_ack}");
    visitor.event(&conversation, seq + 1).await;
    let anonymous = http_with(
        addr,
        "POST",
        "/sse/send",
        &[("Content-Type", "application/json")],
        &reply,
    )
    .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["code"], "invalid_token");

    // A new stream resumed from the first event's id (as a reconnecting EventSource would) replays only what
    // came after it; one resumed from the last event's id, nothing.
    drop(visitor);
    let last_event_id = first.id.expect("id");
    let (status, _, mut resumed) = EventStream::open(
        addr,
        &format!("/sse/events?token={visitor_token}"),
        &[("Last-Event-ID", last_event_id.as_str())],
    )
    .await;
    assert_eq!(status, 200);
    let mut replayed = Vec::new();
    while replayed.last() != Some(&(seq + 1)) {
        let event = resumed.next().await;
        if event.frame["type"] == "event" {
            replayed.push(event.frame["seq"].as_u64().expect("seq"));
        }
    }
    assert_eq!(replayed.first(), Some(&2), "resumed after seq 1: {replayed:?}");
    assert_eq!(replayed, (2..=seq + 1).collect::<Vec<_>>());
    let refused = http_with(addr, "GET", "/sse/events?token=forged", &[], "").await;
    assert_eq!(
        refused.status, 401,
        "a hopeless stream gets a status that stops EventSource"
    );
    drop((agent, resumed));
    server.stop().await;
}

/// The widget is mounted with the demo's entry points: a plain one, one with a pre-chat form, one whose group is
/// always closed (the offline form); a site given with `--allowed-origin` may use it, others may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_is_mounted_with_the_demo_entry_points() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = kf_demo::WidgetSettings {
        allowed_origins: vec!["http://127.0.0.1:5555".into()],
        identity_secret: Some("demo secret".into()),
    };
    let demo = Demo::open_with(dir.path(), settings).await.expect("demo opens");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = demo.router();
    let task = tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let site = [("Origin", "http://127.0.0.1:5555")];

    let web = http_with(addr, "GET", "/widget/config?tenant=demo&entry=web", &site, "").await;
    assert_eq!(web.status, 200, "{}", web.body);
    assert_eq!(
        (web.json()["open"].as_bool(), web.json()["prechat"].clone()),
        (Some(true), json!([]))
    );
    let form = http_with(
        addr,
        "GET",
        "/widget/config?tenant=demo&entry=web-prechat",
        &site,
        "",
    )
    .await;
    let names: Vec<Value> = form.json()["prechat"]
        .as_array()
        .expect("form")
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("name"), json!("email"), json!("order")]);
    let closed = http_with(
        addr,
        "GET",
        "/widget/config?tenant=demo&entry=after-hours",
        &site,
        "",
    )
    .await;
    assert_eq!(closed.json()["open"], false);
    let evil = [("Origin", "http://127.0.0.1:6666")];
    let refused = http_with(addr, "GET", "/widget/config?tenant=demo", &evil, "").await;
    assert_eq!(refused.status, 403);

    // A visitor through the closed entry point leaves an offline message.
    let session = http_with(
        addr,
        "POST",
        "/widget/session",
        &[site[0], ("Content-Type", "application/json")],
        r#"{"tenant": "demo"}"#,
    )
    .await;
    let token = session.json()["token"].as_str().expect("token").to_owned();
    let (mut ws, _, _) = connect(addr, &token).await;
    ws.send(json!({"type": "open", "id": "o", "client_id": "o-1", "entry": "after-hours", "fields": {"email": "ada@shop.example"}}))
        .await;
    let opened = ws.next_of_id("o").await;
    assert_eq!(opened["conversation"]["status"], "offline", "{opened}");
    task.abort();
    demo.shutdown(GRACE).await.expect("store closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_503_when_the_engine_shuts_down_and_liveness_when_it_has_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let addr = server.addr;
    let ready = http(addr, "GET", "/readyz", None, "").await;
    assert_eq!(
        (ready.status, ready.json()["status"].clone()),
        (200, json!("ready"))
    );
    let health = ready.json()["health"].clone();
    assert_eq!(
        (
            health["live"].clone(),
            health["ready"].clone(),
            health["store"]["reachable"].clone()
        ),
        (json!(true), json!(true), json!(true))
    );
    let live = http(addr, "GET", "/healthz", None, "").await;
    assert_eq!((live.status, live.json()["status"].clone()), (200, json!("ok")));
    // A client connected at the shutdown is told "going away".
    let token = server.demo.tokens.issue(
        &kf_core::auth::Identity::visitor(
            kf_core::model::TenantId::new(kf_demo::TENANT).expect("tenant"),
            kf_core::model::VisitorId::new("v-ready").expect("id"),
        ),
        Duration::from_secs(60),
    );
    let (mut ws, _, _) = connect(addr, &token).await;
    server.demo.engine.shutdown().await;
    ws.expect_close(1001).await;
    let ready = http(addr, "GET", "/readyz", None, "").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "not_ready");
    assert_eq!(ready.json()["health"]["shutting_down"], true);
    let live = http(addr, "GET", "/healthz", None, "").await;
    assert_eq!(
        (live.status, live.json()["status"].clone()),
        (503, json!("stopped"))
    );
    server.stop().await;
}

/// Percent-encodes a query value (UTF-8 bytes outside the unreserved set).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_search_and_export_are_for_agents() {
    use kf_core::auth::Identity;
    use kf_core::model::{ClientId, MessageBody, TenantId, VisitorId};

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data")).await;
    let addr = server.addr;
    let engine = &server.demo.engine;
    let visitor = Identity::visitor(
        TenantId::new("demo").expect("tenant"),
        VisitorId::new("v-history").expect("visitor"),
    );
    let opened = engine
        .open(
            &visitor,
            ClientId::new("open-h").expect("id"),
            None,
            None,
            Default::default(),
        )
        .await
        .expect("open");
    for (n, text) in ["请问什么时候发货？", "I need a <b>refund</b>, please", "thanks"]
        .into_iter()
        .enumerate()
    {
        engine
            .send(
                &visitor,
                opened.conversation.id,
                ClientId::new(format!("m-{n}")).expect("id"),
                MessageBody::text(text),
            )
            .await
            .expect("send");
    }
    let login = post_json(
        addr,
        "/api/agent-login",
        json!({"agent": "alice", "password": "alice-demo"}),
    )
    .await;
    let token = login.json()["token"].as_str().expect("token").to_owned();
    let bearer = format!("Bearer {token}");
    let agent = [("Authorization", bearer.as_str())];

    let search = http_with(
        addr,
        "GET",
        &format!("/api/history/search?q={}", encode("发货")),
        &agent,
        "",
    )
    .await;
    assert_eq!(search.status, 200, "{}", search.body);
    let page = search.json();
    assert_eq!(page["hits"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["hits"][0]["snippet"], "请问什么时候<mark>发货</mark>？");
    assert_eq!(
        page["hits"][0]["conversation"]["id"],
        opened.conversation.id.to_string()
    );
    assert_eq!(page["next"], Value::Null);
    let refund = http_with(addr, "GET", "/api/history/search?q=REFUND&state=open", &agent, "").await;
    assert_eq!(
        refund.json()["hits"][0]["snippet"],
        "I need a &lt;b&gt;<mark>refund</mark>&lt;/b&gt;, please"
    );
    let paged = http_with(addr, "GET", "/api/history/search?limit=2", &agent, "")
        .await
        .json();
    assert_eq!(paged["hits"].as_array().map(Vec::len), Some(2));
    let next = paged["next"].as_str().expect("a next page");
    let rest = http_with(
        addr,
        "GET",
        &format!("/api/history/search?limit=2&cursor={next}"),
        &agent,
        "",
    )
    .await
    .json();
    assert_eq!(rest["hits"][0]["text"], "请问什么时候发货？");
    let bad = http_with(addr, "GET", "/api/history/search?state=asleep", &agent, "").await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Only the tenant's agents.
    assert_eq!(
        http(addr, "GET", "/api/history/search?q=refund", None, "")
            .await
            .status,
        401
    );
    let visitor_token = server.demo.tokens.issue(&visitor, Duration::from_secs(60));
    let as_visitor = format!("Bearer {visitor_token}");
    let refused = http_with(
        addr,
        "GET",
        "/api/history/search?q=refund",
        &[("Authorization", as_visitor.as_str())],
        "",
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        http(addr, "GET", "/api/history/export", None, "").await.status,
        401
    );

    let csv = http_with(addr, "GET", "/api/history/export?format=csv", &agent, "").await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|line| !line.is_empty()).collect();
    assert_eq!(lines.len(), 4, "a header and three messages: {}", csv.body);
    assert!(lines[0].starts_with("conversation,seq,time,"));
    assert!(lines[1].ends_with(",请问什么时候发货？"));
    let jsonl = http_with(
        addr,
        "GET",
        &format!(
            "/api/history/export?format=jsonl&kind=conversations&q={}",
            encode("发货")
        ),
        &agent,
        "",
    )
    .await;
    assert_eq!(jsonl.status, 200);
    let rows: Vec<Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["conversation"], opened.conversation.id.to_string());
    server.stop().await;
}

/// An agent's `Authorization` header value (logged in through the token API).
async fn agent_bearer(addr: SocketAddr, agent: &str) -> String {
    let login = post_json(
        addr,
        "/api/agent-login",
        json!({"agent": agent, "password": format!("{agent}-demo")}),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    format!("Bearer {}", login.json()["token"].as_str().expect("token"))
}

#[tokio::test]
async fn statistics_and_the_monitor_are_served_to_agents_and_survive_a_restart() {
    use kf_core::auth::Identity;
    use kf_core::model::{ClientId, MessageBody, TenantId, VisitorId};

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    let addr = server.addr;
    let engine = &server.demo.engine;
    let visitor = Identity::visitor(
        TenantId::new("demo").expect("tenant"),
        VisitorId::new("v-stats").expect("visitor"),
    );
    // Nobody online: the conversation waits, and the visitor gives up.
    let opened = engine
        .open(
            &visitor,
            ClientId::new("open-s").expect("id"),
            None,
            None,
            Default::default(),
        )
        .await
        .expect("open");
    let id = opened.conversation.id;
    let group = opened.conversation.group.to_string();
    engine
        .send(
            &visitor,
            id,
            ClientId::new("m-s").expect("id"),
            MessageBody::text("hello?"),
        )
        .await
        .expect("send");
    // Statistics and the monitor are for supervisors and admins: the demo's admin.
    let bearer = agent_bearer(addr, "boss").await;
    let agent = [("Authorization", bearer.as_str())];

    // The monitor: the group's queue holds it; alice is not connected.
    let monitor = http_with(addr, "GET", "/api/monitor", &agent, "").await;
    assert_eq!(monitor.status, 200, "{}", monitor.body);
    assert_eq!(monitor.header("cache-control"), Some("no-store"));
    let monitor = monitor.json();
    let groups = monitor["groups"].as_array().expect("groups");
    let waiting = groups
        .iter()
        .find(|g| g["group"] == group.as_str())
        .expect("the group");
    assert_eq!(waiting["queued"], 1);
    assert!(waiting["longest_wait_ms"].as_u64().is_some());
    let alice = monitor["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent"] == "alice")
        .expect("alice")
        .clone();
    assert_eq!(
        (alice["online"].clone(), alice["load"].clone()),
        (json!(false), json!(0))
    );
    assert_eq!(monitor["visitors_online"], 0);

    engine.close(&visitor, id).await.expect("close");
    let stats = http_with(addr, "GET", "/api/stats?settle=true", &agent, "").await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let body = stats.json();
    let figures = &body["rows"][0]["figures"];
    assert_eq!(body["rows"][0]["dimension"], json!({"kind": "all"}));
    assert_eq!(figures["conversations"], 1);
    assert_eq!(figures["closed"], 1);
    assert_eq!(
        figures["unanswered_unassigned"], 1,
        "closed without an agent: {figures}"
    );
    assert_eq!(figures["resolution"]["count"], 1);
    let position = body["status"]["position"].as_u64().expect("position");
    assert!(position >= 3, "created, message, closed: {body}");
    let by_group = http_with(
        addr,
        "GET",
        "/api/stats?by=group&step=day&settle=true",
        &agent,
        "",
    )
    .await
    .json();
    assert_eq!(
        by_group["rows"][0]["dimension"],
        json!({"kind": "group", "id": group})
    );
    assert!(by_group["rows"][0]["start"].as_u64().is_some());
    for bad in [
        "/api/stats?by=planet",
        "/api/stats?step=minute",
        "/api/stats?from=10&to=5",
        "/api/stats?key=alice",
        "/api/stats?colour=red",
    ] {
        let refused = http_with(addr, "GET", bad, &agent, "").await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
    }
    // The demo's supervisor reads them too, but not the admin API.
    let carol = agent_bearer(addr, "carol").await;
    for (path, status) in [
        ("/api/stats", 200),
        ("/api/monitor", 200),
        ("/api/admin/agents", 403),
    ] {
        let reply = http_with(addr, "GET", path, &[("Authorization", carol.as_str())], "").await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
    }
    // Not for visitors, nor for agents below the supervisor role.
    let alice = agent_bearer(addr, "alice").await;
    for path in ["/api/stats", "/api/monitor"] {
        assert_eq!(http(addr, "GET", path, None, "").await.status, 401);
        let refused = http_with(addr, "GET", path, &[("Authorization", alice.as_str())], "").await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
        let visitor_token = server.demo.tokens.issue(&visitor, Duration::from_secs(60));
        let as_visitor = format!("Bearer {visitor_token}");
        let refused = http_with(addr, "GET", path, &[("Authorization", as_visitor.as_str())], "").await;
        assert_eq!(refused.status, 403);
    }
    server.stop().await;

    // Restarted on the same SQLite file: the figures come back from the checkpoint, not from a rescan.
    let server = Server::start(&data).await;
    let bearer = agent_bearer(server.addr, "boss").await;
    let agent = [("Authorization", bearer.as_str())];
    let again = http_with(server.addr, "GET", "/api/stats?settle=true", &agent, "")
        .await
        .json();
    assert_eq!(again["rows"], body["rows"]);
    assert_eq!(again["status"]["resumed_from"].as_u64(), Some(position));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_is_mounted_for_the_demo_admin_and_its_changes_outlive_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path()).await;
    let addr = server.addr;
    let login = |agent: &'static str, password: &'static str| async move {
        let reply = post_json(
            addr,
            "/api/agent-login",
            json!({"agent": agent, "password": password}),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    };
    let boss = login("boss", "boss-demo").await;
    assert_eq!(boss["role"], json!("admin"));
    let alice = login("alice", "alice-demo").await;
    assert_eq!(alice["role"], json!("agent"));
    let bearer = |login: &Value| format!("Bearer {}", login["token"].as_str().expect("token"));
    let boss_auth = bearer(&boss);
    let admin = |method: &'static str, path: &'static str| {
        let auth = boss_auth.clone();
        async move { http_with(addr, method, path, &[("Authorization", auth.as_str())], "").await }
    };
    let agents = admin("GET", "/api/admin/agents").await;
    assert_eq!(agents.status, 200, "{}", agents.body);
    let ids: Vec<String> = agents
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|agent| agent["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    let refused = http_with(
        addr,
        "GET",
        "/api/admin/agents",
        &[("Authorization", bearer(&alice).as_str())],
        "",
    )
    .await;
    assert_eq!(
        (refused.status, refused.json()["error"].clone()),
        (403, json!("forbidden"))
    );
    let document = http(addr, "GET", "/api/admin/openapi.json", None, "").await;
    assert_eq!(document.status, 200);
    assert!(document.json()["paths"]["/agents/{id}/deactivate"].is_object());
    let off = admin("POST", "/api/admin/agents/bob/deactivate").await;
    assert_eq!((off.status, off.json()["active"].clone()), (200, json!(false)));
    server.stop().await;

    // The demo's seed does not undo an admin's change.
    let server = Server::start(dir.path()).await;
    let addr = server.addr;
    let bob = http_with(
        addr,
        "GET",
        "/api/admin/agents/bob",
        &[("Authorization", boss_auth.as_str())],
        "",
    )
    .await;
    assert_eq!(
        (bob.status, bob.json()["active"].clone()),
        (200, json!(false)),
        "{}",
        bob.body
    );
    let audit = http_with(
        addr,
        "GET",
        "/api/admin/audit",
        &[("Authorization", boss_auth.as_str())],
        "",
    )
    .await;
    assert_eq!(audit.json()["entries"][0]["action"], json!("agent.deactivate"));
    server.stop().await;
}
