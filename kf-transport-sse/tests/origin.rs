//! Pages of other sites over real sockets: CORS preflights answered for origins a tenant allows (never with
//! credentials), requests and streams from an origin the token's tenant does not allow refused with `403`.

use std::sync::Arc;

use kf_core::Engine;
use kf_core::limits::Limits;
use kf_core::model::TenantId;
use kf_core::origin::AllowedOrigins;
use kf_core::store::MemoryStore;
use kf_core::testkit::shop::*;
use kf_transport_sse::SseConfig;
use kf_transport_sse::testkit::*;

const SHOP: &str = "https://shop.example";

async fn engine() -> Engine {
    let origins = AllowedOrigins::new()
        .allow(&tenant(), SHOP)
        .and_then(|o| o.allow(&TenantId::new("other").expect("id"), "https://other.example"))
        .expect("origins");
    Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens()))
        .limits(Limits::default())
        .allowed_origins(origins)
        .build()
        .await
        .expect("engine")
}

fn preflight(origin: &str) -> [(&str, &str); 3] {
    [
        ("Origin", origin),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "authorization, content-type"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_are_answered_for_allowed_origins_only() {
    let engine = engine().await;
    let addr = start(&engine, SseConfig::default()).await;

    let allowed = exchange(addr, "OPTIONS", "/send", &preflight(SHOP), "").await;
    assert!(allowed.status < 300, "{}", allowed.status);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(SHOP));
    let headers = allowed
        .header("access-control-allow-headers")
        .expect("allowed headers");
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(
        allowed
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST"))
    );
    assert_eq!(allowed.header("access-control-allow-credentials"), None);

    let refused = exchange(addr, "OPTIONS", "/send", &preflight("https://evil.example"), "").await;
    assert_eq!(refused.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_streams_need_an_origin_of_the_tokens_tenant() {
    let engine = engine().await;
    let addr = start(&engine, SseConfig::default()).await;
    let token = token(&visitor("v-1"));
    let bearer = format!("Bearer {token}");
    let json = ("Content-Type", "application/json");

    let pong = exchange(
        addr,
        "POST",
        "/ping",
        &[("Origin", SHOP), ("Authorization", &bearer), json],
        "{}",
    )
    .await;
    assert_eq!(pong.status, 200, "{}", String::from_utf8_lossy(&pong.body));
    assert_eq!(pong.json()["type"], "pong");
    assert_eq!(pong.header("access-control-allow-origin"), Some(SHOP));

    // Another tenant allows it, so the browser may ask, but this token's tenant does not.
    let foreign = exchange(
        addr,
        "POST",
        "/ping",
        &[
            ("Origin", "https://other.example"),
            ("Authorization", &bearer),
            json,
        ],
        "{}",
    )
    .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.json()["code"], "forbidden");

    let path = format!("/events?token={token}");
    let evil = Stream::open(addr, &path, &[("Origin", "https://evil.example")]).await;
    assert_eq!(evil.status, 403);
    let body: serde_json::Value = serde_json::from_slice(&evil.body).expect("json body");
    assert_eq!(body["code"], "forbidden", "{body}");

    let mut page = Stream::open(addr, &path, &[("Origin", SHOP)]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(page.next().await["type"], "welcome");
}
