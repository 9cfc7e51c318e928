//! The widget's sessions through a rotation of kf's token key: an anonymous visitor's key made with the old key
//! is still accepted during the rotation and handed back made with the new one; after the old key is retired,
//! only the new key brings the visitor back. Real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;

use kf_core::Engine;
use kf_core::auth::{KeyId, SignedTokens, TokenKeys};
use kf_core::clock::SystemClock;
use kf_core::model::{Group, GroupId};
use kf_core::origin::AllowedOrigins;
use kf_core::store::MemoryStore;
use kf_core::testkit::shop::tenant;
use kf_transport_sse::testkit::{Reply, exchange};
use kf_transport_ws::testkit::WsClient;
use kf_widget::WidgetConfig;
use serde_json::{Value, json};

const SHOP: &str = "https://shop.example";
const OLD: &[u8; 32] = b"widget-rotation-test-key-old-001";
const NEW: &[u8; 32] = b"widget-rotation-test-key-new-002";

fn id(id: &str) -> KeyId {
    KeyId::new(id).expect("key id")
}

async fn serve(tokens: SignedTokens) -> SocketAddr {
    let origins = AllowedOrigins::new().allow(&tenant(), SHOP).expect("origins");
    let support = GroupId::new("support").expect("id");
    let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens.clone()))
        .allowed_origins(origins)
        .default_group(support.clone())
        .build()
        .await
        .expect("engine");
    engine
        .put_group(Group::new(tenant(), support, "Support"))
        .await
        .expect("group");
    let app = axum::Router::new()
        .route("/ws", kf_transport_ws::route(engine.clone(), Default::default()))
        .nest(
            "/widget",
            kf_widget::router(engine, tokens, WidgetConfig::default()),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn session(addr: SocketAddr, body: Value) -> Reply {
    let headers = [("Origin", SHOP), ("Content-Type", "application/json")];
    exchange(addr, "POST", "/widget/session", &headers, &body.to_string()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_are_rekeyed_during_a_rotation() {
    let tokens = SignedTokens::with_keys(
        TokenKeys::new(id("old"), OLD).expect("old"),
        Arc::new(SystemClock),
    );
    let addr = serve(tokens.clone()).await;

    let first = session(addr, json!({"tenant": "shop"})).await.json();
    let visitor = first["visitor_id"].as_str().expect("id").to_owned();
    let old_key = first["visitor_key"].as_str().expect("key").to_owned();
    assert!(
        first["token"].as_str().is_some_and(|t| t.starts_with("kf2.old.")),
        "{first}"
    );

    // During the rotation: the old key's visitor key still brings the visitor back, with a key of the new one.
    let ring = TokenKeys::new(id("new"), NEW)
        .expect("new")
        .accept(id("old"), OLD)
        .expect("old");
    tokens.set_keys(ring.clone());
    let back = session(
        addr,
        json!({"tenant": "shop", "visitor_id": visitor, "visitor_key": old_key}),
    )
    .await;
    assert_eq!(back.status, 200, "{}", String::from_utf8_lossy(&back.body));
    let back = back.json();
    assert_eq!(back["visitor_id"], visitor.as_str());
    let new_key = back["visitor_key"].as_str().expect("key").to_owned();
    assert_ne!(new_key, old_key, "re-keyed with the current key");
    let token = back["token"].as_str().expect("token");
    assert!(token.starts_with("kf2.new."), "{token}");
    let client = WsClient::hello(addr, token).await;
    assert_eq!(
        client.welcome["principal"],
        json!({"role": "visitor", "id": visitor})
    );

    // After it: the old visitor key is refused (the widget then starts a new visitor), the new one works.
    tokens.set_keys(ring.retire(&id("old")).expect("retire"));
    let refused = session(
        addr,
        json!({"tenant": "shop", "visitor_id": visitor, "visitor_key": old_key}),
    )
    .await;
    assert_eq!(
        (refused.status, refused.json()["error"].clone()),
        (401, json!("invalid_visitor_key"))
    );
    let back = session(
        addr,
        json!({"tenant": "shop", "visitor_id": visitor, "visitor_key": new_key}),
    )
    .await;
    assert_eq!(back.json()["visitor_id"], visitor.as_str());
}
