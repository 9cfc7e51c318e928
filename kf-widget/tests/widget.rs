//! The widget's endpoints over real sockets, beside the kf WebSocket endpoint: config per entry point, visitor
//! sessions (anonymous visitors come back only with their key; a host's verified user is the same visitor on
//! every device; forged hashes refused), and origins (allowed, refused, readable errors).

use std::net::SocketAddr;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use kf_core::Engine;
use kf_core::entry::EntryPoint;
use kf_core::hours::WorkingHours;
use kf_core::limits::Limits;
use kf_core::model::{EntryPointId, Group, GroupId, TenantId};
use kf_core::origin::AllowedOrigins;
use kf_core::prechat::{FieldKind, PrechatField};
use kf_core::store::MemoryStore;
use kf_core::testkit::shop::*;
use kf_transport_sse::testkit::{Reply, exchange};
use kf_transport_ws::testkit::WsClient;
use kf_widget::WidgetConfig;
use serde_json::{Value, json};
use sha2::Sha256;

const SHOP: &str = "https://shop.example";
const SECRET: &[u8] = b"shop identity secret";

async fn serve() -> (SocketAddr, Engine) {
    let origins = AllowedOrigins::new()
        .allow(&tenant(), SHOP)
        .and_then(|o| o.allow(&TenantId::new("other").expect("id"), "https://other.example"))
        .expect("origins");
    let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens()))
        .limits(Limits::default())
        .allowed_origins(origins)
        .default_group(GroupId::new("support").expect("id"))
        .build()
        .await
        .expect("engine");
    let support = GroupId::new("support").expect("id");
    let night = GroupId::new("night").expect("id");
    engine
        .put_group(Group::new(tenant(), support.clone(), "Support").with_welcome("Hi! How can we help?"))
        .await
        .expect("group");
    engine
        .put_group(Group::new(tenant(), night.clone(), "Night"))
        .await
        .expect("group");
    let never = WorkingHours::new("UTC").expect("zone");
    engine
        .put_group_hours(&tenant(), &night, Some(never))
        .await
        .expect("hours");
    let form = EntryPoint::new(tenant(), EntryPointId::new("form").expect("id"), support)
        .with_welcome("Tell us who you are.")
        .with_prechat([
            PrechatField::new("name", "Your name", FieldKind::Text).required(),
            PrechatField::new("topic", "Topic", FieldKind::Select).with_options(["Orders", "Returns"]),
        ]);
    engine.put_entry_point(form).await.expect("entry");
    let closed = EntryPoint::new(tenant(), EntryPointId::new("closed").expect("id"), night);
    engine.put_entry_point(closed).await.expect("entry");

    let config = WidgetConfig::default().identity_secret(tenant(), SECRET.to_vec());
    let app = axum::Router::new()
        .route("/ws", kf_transport_ws::route(engine.clone(), Default::default()))
        .nest("/widget", kf_widget::router(engine.clone(), tokens(), config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, engine)
}

async fn get(addr: SocketAddr, path: &str, origin: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
    exchange(addr, "GET", path, &headers, "").await
}

async fn session(addr: SocketAddr, origin: &str, body: Value) -> Reply {
    let headers = [("Origin", origin), ("Content-Type", "application/json")];
    exchange(addr, "POST", "/widget/session", &headers, &body.to_string()).await
}

fn user_hash(user: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("key");
    mac.update(user.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn error_of(reply: &Reply) -> (u16, String) {
    let code = reply.json()["error"].as_str().unwrap_or_default().to_owned();
    (reply.status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_describes_the_entry_point_for_allowed_pages() {
    let (addr, _engine) = serve().await;
    let reply = get(addr, "/widget/config?tenant=shop&entry=form", Some(SHOP)).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let config = reply.json();
    assert_eq!(config["group"], "support");
    assert_eq!(config["group_name"], "Support");
    assert_eq!(config["welcome"], "Tell us who you are.");
    assert_eq!(config["open"], true);
    assert_eq!(config["next_opening"], Value::Null);
    assert_eq!(config["ws_path"], "/ws");
    assert_eq!(config["sse_path"], "/sse");
    assert_eq!(
        config["prechat"],
        json!([
            {"name": "name", "label": "Your name", "kind": "text", "required": true},
            {"name": "topic", "label": "Topic", "kind": "select", "required": false, "options": ["Orders", "Returns"]}
        ])
    );
    // Without an entry point: the default group, its welcome, no form.
    let plain = get(addr, "/widget/config?tenant=shop", None).await.json();
    assert_eq!(plain["group"], "support");
    assert_eq!(plain["welcome"], "Hi! How can we help?");
    assert_eq!(plain["prechat"], json!([]));
    // A group outside its working hours: the widget shows the offline form.
    let closed = get(addr, "/widget/config?tenant=shop&entry=closed", Some(SHOP))
        .await
        .json();
    assert_eq!(closed["open"], false);

    for (path, status, code) in [
        ("/widget/config?tenant=nobody", 404, "not_found"),
        ("/widget/config?tenant=shop&entry=nope", 404, "not_found"),
        ("/widget/config?entry=form", 400, "invalid_request"),
        ("/widget/config?tenant=", 400, "invalid_request"),
    ] {
        // (From a server, without `Origin`: a page of another site would learn no more than 403.)
        let reply = get(addr, path, None).await;
        assert_eq!(error_of(&reply), (status, code.to_owned()), "{path}");
    }
    // Another site's page gets no configuration, but can read why.
    for origin in ["https://evil.example", "https://other.example"] {
        let refused = get(addr, "/widget/config?tenant=shop", Some(origin)).await;
        assert_eq!(error_of(&refused), (403, "forbidden_origin".to_owned()));
        assert_eq!(refused.header("access-control-allow-origin"), Some(origin));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_come_back_only_with_their_key() {
    let (addr, _engine) = serve().await;
    let preflight = exchange(
        addr,
        "OPTIONS",
        "/widget/session",
        &[
            ("Origin", SHOP),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        "",
    )
    .await;
    assert!(preflight.status < 300, "{}", preflight.status);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(preflight.header("access-control-allow-credentials"), None);

    let first = session(addr, SHOP, json!({"tenant": "shop"})).await;
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    let first = first.json();
    assert_eq!(first["identified"], false);
    let visitor = first["visitor_id"].as_str().expect("id");
    let key = first["visitor_key"].as_str().expect("key");
    assert!(visitor.starts_with("v-"));
    let client = WsClient::hello(addr, first["token"].as_str().expect("token")).await;
    assert_eq!(
        client.welcome["principal"],
        json!({"role": "visitor", "id": visitor})
    );

    let again = json!({"tenant": "shop", "visitor_id": visitor, "visitor_key": key});
    assert_eq!(session(addr, SHOP, again).await.json()["visitor_id"], visitor);

    let other = session(addr, SHOP, json!({"tenant": "shop"})).await.json();
    assert_ne!(other["visitor_id"], visitor);
    for forged in [
        json!({"tenant": "shop", "visitor_id": visitor}),
        json!({"tenant": "shop", "visitor_id": visitor, "visitor_key": other["visitor_key"]}),
        json!({"tenant": "shop", "visitor_id": "u-0123", "visitor_key": key}),
    ] {
        let refused = session(addr, SHOP, forged.clone()).await;
        assert_eq!(
            error_of(&refused),
            (401, "invalid_visitor_key".to_owned()),
            "{forged}"
        );
    }
    let refused = session(addr, "https://evil.example", json!({"tenant": "shop"})).await;
    assert_eq!(error_of(&refused), (403, "forbidden_origin".to_owned()));
    let json_type = [("Content-Type", "application/json")];
    let bad = exchange(addr, "POST", "/widget/session", &json_type, "{\"tenant\": 5}").await;
    assert_eq!(error_of(&bad), (422, "invalid_request".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_user_is_the_same_visitor_on_every_device() {
    let (addr, _engine) = serve().await;
    let user =
        json!({"tenant": "shop", "user_id": "ada@shop.example", "user_hash": user_hash("ada@shop.example")});
    let laptop = session(addr, SHOP, user.clone()).await;
    assert_eq!(laptop.status, 200, "{}", String::from_utf8_lossy(&laptop.body));
    let laptop = laptop.json();
    assert_eq!(laptop["identified"], true);
    assert_eq!(laptop["visitor_key"], Value::Null);
    let visitor = laptop["visitor_id"].as_str().expect("id").to_owned();
    assert!(visitor.starts_with("u-") && !visitor.contains("ada"));

    let mut first = WsClient::hello(addr, laptop["token"].as_str().expect("token")).await;
    first
        .send(json!({"type": "open", "id": "o", "client_id": "open-1", "entry": "form", "fields": {"name": "Ada"}}))
        .await;
    let opened = first.next_of_id("o").await;
    assert_eq!(opened["type"], "opened", "{opened}");

    let phone = session(addr, SHOP, user).await.json();
    assert_eq!(phone["visitor_id"], visitor.as_str());
    let second = WsClient::hello(addr, phone["token"].as_str().expect("token")).await;
    let listed = second.inbox["conversations"].as_array().expect("list");
    assert_eq!(listed.len(), 1, "{}", second.inbox);
    assert_eq!(listed[0]["id"], opened["conversation"]["id"]);

    let forged =
        json!({"tenant": "shop", "user_id": "ada@shop.example", "user_hash": user_hash("bob@shop.example")});
    let refused = session(addr, SHOP, forged).await;
    assert_eq!(error_of(&refused), (401, "invalid_identity".to_owned()));
    let half = session(
        addr,
        SHOP,
        json!({"tenant": "shop", "user_id": "ada@shop.example"}),
    )
    .await;
    assert_eq!(error_of(&half), (400, "invalid_request".to_owned()));
}

/// The browser files are served compiled in: the client package's entry module, with a strong ETag that
/// answers a current copy with `304`, gzipped for browsers that take it, importable from any page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_package_is_served_with_validators_and_gzip() {
    let (addr, _engine) = serve().await;
    let plain = get(addr, "/widget/client/index.js", Some(SHOP)).await;
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(plain.header("access-control-allow-origin"), Some("*"));
    assert!(String::from_utf8_lossy(&plain.body).contains("export"));
    let etag = plain.header("etag").expect("etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let current = exchange(
        addr,
        "GET",
        "/widget/client/index.js",
        &[("If-None-Match", &etag)],
        "",
    )
    .await;
    assert_eq!(current.status, 304);
    assert!(current.body.is_empty());
    let client = get(addr, "/widget/client/client.js", None).await;
    let zipped = exchange(
        addr,
        "GET",
        "/widget/client/client.js",
        &[("Accept-Encoding", "gzip, br")],
        "",
    )
    .await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(
        zipped.body.len() * 2 < client.body.len(),
        "{} vs {}",
        zipped.body.len(),
        client.body.len()
    );
    let missing = get(addr, "/widget/client/nope.js", None).await;
    assert_eq!(error_of(&missing), (404, "not_found".to_owned()));
}
