//! Pages of other sites over a real WebSocket: a handshake from an origin no tenant allows gets `403` and no
//! connection; an origin allowed by another tenant than the token's is refused at `hello` (`forbidden`); the
//! tenant's own origins, the server's own origin and clients without `Origin` connect.

use std::sync::Arc;

use kf_core::Engine;
use kf_core::limits::Limits;
use kf_core::model::TenantId;
use kf_core::origin::AllowedOrigins;
use kf_core::store::MemoryStore;
use kf_core::testkit::shop::*;
use kf_transport_ws::WsConfig;
use kf_transport_ws::testkit::*;
use serde_json::json;

async fn engine() -> Engine {
    let origins = AllowedOrigins::new()
        .allow(&tenant(), "https://shop.example")
        .and_then(|o| o.allow(&TenantId::new("other").expect("id"), "https://other.example"))
        .expect("origins");
    Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens()))
        .limits(Limits::default())
        .allowed_origins(origins)
        .build()
        .await
        .expect("engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_origins_connect() {
    let engine = engine().await;
    let addr = start(&engine, WsConfig::default()).await;
    let token = token(&visitor("v-1"));

    match WsClient::try_connect_from(addr, "https://evil.example").await {
        Err(Ended::Dropped(why)) => assert!(why.contains("403"), "{why}"),
        other => panic!("a refused origin must get no connection: {other:?}"),
    }

    let mut foreign = WsClient::try_connect_from(addr, "https://other.example")
        .await
        .expect("another tenant's origin passes the handshake");
    foreign
        .send(json!({"type": "hello", "id": "h", "v": 1, "token": token}))
        .await;
    let (frames, _end) = foreign.until_end().await;
    let error = frames.first().expect("an error before the close");
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "forbidden", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("https://other.example")),
        "{error}"
    );

    for origin in ["https://shop.example", &format!("http://{addr}")] {
        let mut page = WsClient::try_connect_from(addr, origin).await.expect("handshake");
        page.say_hello(&token).await;
        assert_eq!(page.welcome["tenant"], "shop", "from {origin}");
    }
    let app = WsClient::hello(addr, &token).await;
    assert_eq!(app.welcome["tenant"], "shop");
}
