//! Visitor context and quick replies over a real WebSocket, on a real SQLite file: a visitor reports its
//! context and pages, opens a conversation; the assigned agent reads the context (device, browser and OS parsed,
//! page trail, past conversations) and lists its quick replies; others are refused.

use std::sync::Arc;

use kf_core::limits::Limits;
use kf_core::model::{Agent, AgentId};
use kf_core::quick_replies::QuickReplyScope;
use kf_core::testkit::shop::*;
use kf_store_sqlite::SqliteStore;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::json;

const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_the_visitor_context_and_its_quick_replies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_default(dir.path().join("kf.sqlite3")).expect("open store");
    let engine = engine_with(Arc::new(store), Limits::default(), &["alice"]).await;
    // Carol works for another group: she may not read support's conversations.
    engine
        .put_agent(Agent::new(
            tenant(),
            AgentId::new("carol").expect("id"),
            "Carol",
            5,
        ))
        .await
        .expect("agent");
    let addr = start(&engine, WsConfig::default()).await;
    let mut alice = WsClient::as_identity(addr, &agent("alice")).await;

    // A visitor browses: context first, then two page views.
    let mut visitor = WsClient::as_identity(addr, &visitor("v-ctx")).await;
    visitor
        .send(
            json!({"type": "context", "id": "ctx", "referrer": "https://search.example/?q=boots",
            "landing_page": "https://shop.example/boots?utm_source=newsletter&utm_campaign=winter",
            "utm": {"source": "newsletter", "campaign": "winter"}, "user_agent": CHROME_WINDOWS,
            "screen": "1920x1080", "language": "de-DE"}),
        )
        .await;
    assert_eq!(visitor.expect("noted").await["id"], "ctx");
    for (n, path) in ["boots", "boots/alpine-42"].iter().enumerate() {
        visitor
            .send(json!({"type": "page", "id": format!("p{n}"), "url": format!("https://shop.example/{path}"), "title": path}))
            .await;
        assert_eq!(visitor.expect("noted").await["id"], format!("p{n}"));
    }
    visitor
        .send(json!({"type": "page", "id": "bad", "url": "javascript:alert(1)"}))
        .await;
    let refused = visitor.expect("error").await;
    assert_eq!(
        (refused["id"].as_str(), refused["code"].as_str()),
        (Some("bad"), Some("invalid_frame"))
    );

    // An earlier conversation, closed, then the current one.
    let old = open(&mut visitor, "open-old").await;
    alice.next_of("conversation").await;
    visitor
        .send(json!({"type": "close", "id": "c", "conversation": old}))
        .await;
    visitor.next_of("closed").await;
    let current = open(&mut visitor, "open-new").await;
    let assigned = alice.next_of("conversation").await;
    assert_eq!(assigned["conversation"]["id"], current.as_str());

    alice
        .send(json!({"type": "visitor_context", "id": "vc", "conversation": current}))
        .await;
    let context = alice.next_of("visitor_context").await;
    assert_eq!(context["id"], "vc");
    assert_eq!(context["visitor"], "v-ctx");
    let summary = &context["context"];
    assert_eq!(summary["device"]["type"], "desktop");
    assert_eq!(summary["device"]["browser"], "Chrome");
    assert_eq!(summary["device"]["os"], "Windows 10");
    assert_eq!(summary["source"]["referrer"], "https://search.example/?q=boots");
    assert_eq!(summary["source"]["utm"]["campaign"], "winter");
    assert_eq!(summary["language"], "de-DE");
    assert_eq!(summary["page_count"], 2);
    assert_eq!(
        summary["last_page"]["url"],
        "https://shop.example/boots/alpine-42"
    );
    let trail: Vec<&str> = context["trail"]
        .as_array()
        .expect("trail")
        .iter()
        .map(|page| page["url"].as_str().expect("url"))
        .collect();
    assert_eq!(
        trail,
        [
            "https://shop.example/boots",
            "https://shop.example/boots/alpine-42"
        ]
    );
    let past = context["past_conversations"].as_array().expect("past");
    assert_eq!(past.len(), 1);
    assert_eq!(
        (past[0]["id"].as_str(), past[0]["status"].as_str()),
        (Some(old.as_str()), Some("closed"))
    );

    // Quick replies: the group's (set by the host) and alice's own.
    engine
        .put_quick_reply(
            &tenant(),
            QuickReplyScope::Group {
                group: "support".parse().expect("id"),
            },
            None,
            "returns".into(),
            "You can return boots within 30 days.".into(),
        )
        .await
        .expect("group quick reply");
    alice
        .send(json!({"type": "put_quick_reply", "id": "q1", "shortcut": "hi", "text": "Hello, I am Alice."}))
        .await;
    let mine = alice.next_of("quick_reply").await;
    assert_eq!(mine["quick_reply"]["scope"], "agent");
    alice
        .send(json!({"type": "put_quick_reply", "id": "q2", "shortcut": "hi", "text": "Twice"}))
        .await;
    assert_eq!(alice.next_of("error").await["code"], "conflict");
    alice.send(json!({"type": "quick_replies", "id": "list"})).await;
    let listed = alice.next_of("quick_replies").await;
    let shortcuts: Vec<(&str, &str)> = listed["quick_replies"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            (
                r["scope"].as_str().expect("scope"),
                r["shortcut"].as_str().expect("shortcut"),
            )
        })
        .collect();
    assert_eq!(shortcuts, [("agent", "hi"), ("group", "returns")]);
    // The agent inserts one into the conversation.
    let text = listed["quick_replies"][1]["text"]
        .as_str()
        .expect("text")
        .to_owned();
    let ack = say(&mut alice, &current, "qr-1", &text).await;
    assert_eq!(ack["duplicate"], false);

    // Refusals: the visitor itself, another visitor, an agent outside the group, an unknown conversation.
    visitor
        .send(json!({"type": "visitor_context", "id": "own", "conversation": current}))
        .await;
    assert_eq!(visitor.next_of("error").await["code"], "forbidden");
    let mut stranger = WsClient::as_identity(addr, &kf_core::testkit::shop::visitor("v-other")).await;
    stranger
        .send(json!({"type": "visitor_context", "conversation": current}))
        .await;
    assert_eq!(stranger.expect("error").await["code"], "forbidden");
    stranger.send(json!({"type": "quick_replies"})).await;
    assert_eq!(stranger.expect("error").await["code"], "forbidden");
    let mut carol = WsClient::as_identity(addr, &agent("carol")).await;
    carol
        .send(json!({"type": "visitor_context", "conversation": current}))
        .await;
    assert_eq!(carol.expect("error").await["code"], "forbidden");
    carol
        .send(json!({"type": "visitor_context", "conversation": "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d"}))
        .await;
    assert_eq!(carol.expect("error").await["code"], "not_found");
    carol
        .send(json!({"type": "delete_quick_reply", "reply_id": mine["quick_reply"]["id"]}))
        .await;
    assert_eq!(carol.expect("error").await["code"], "forbidden");
}
