//! The demo's authentication flags, as `--token-key`, `--retired-key` and `--jwt-config` set them: a key rotation
//! over restarts (a token of the old key works during it and is refused after it; tokens from before key ids keep
//! working while their key is named), and JWTs of a host's issuer beside kf's tokens, over the real `/ws`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use kf_core::auth::{Identity, KeyId};
use kf_core::model::{TenantId, VisitorId};
use kf_demo::{AuthSettings, Demo, TENANT, WidgetSettings};
use kf_transport_ws::testkit::WsClient;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const JWT_SECRET: &str = "the demo host's shared JWT secret, test only";

/// Opens the demo over `dir` as `auth` says, serves it on 127.0.0.1:0, runs `check` with its address, stops it.
async fn with_demo<F, Fut>(dir: &Path, auth: AuthSettings, check: F) -> Demo
where
    F: FnOnce(std::net::SocketAddr, Demo) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let demo = Demo::open_configured(dir, WidgetSettings::default(), auth)
        .await
        .expect("demo opens");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = demo.router();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    check(addr, demo.clone()).await;
    demo.shutdown(std::time::Duration::from_secs(5))
        .await
        .expect("store closes");
    task.abort();
    let _ = task.await;
    demo
}

fn key(id: &str, dir: &Path) -> (KeyId, std::path::PathBuf) {
    AuthSettings::parse_token_key(&format!("{id}:{}", dir.join(format!("{id}.key")).display()))
        .expect("ID:FILE")
}

fn visitor(id: &str) -> Identity {
    Identity::visitor(
        TenantId::new(TENANT).expect("tenant"),
        VisitorId::new(id).expect("visitor"),
    )
}

/// Says hello with `token`; `Ok(welcome)` or `Err(error code)` (then the connection closes with 4001).
async fn hello(addr: std::net::SocketAddr, token: &str) -> Result<Value, String> {
    let mut client = WsClient::connect(addr).await;
    client
        .send(json!({"type": "hello", "v": 1, "token": token}))
        .await;
    let frame = client.next().await;
    if frame["type"] == "welcome" {
        return Ok(frame);
    }
    client.expect_close(4001).await;
    Err(frame["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_keys_rotate_over_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let keys = dir.path();

    // Before key ids: the data directory's signing.key, `kf1.` tokens.
    let mut legacy_token = String::new();
    with_demo(&data, AuthSettings::default(), |_, demo| {
        legacy_token = demo.tokens.issue(&visitor("v-legacy"), Duration::from_secs(3600));
        async {}
    })
    .await;
    assert!(legacy_token.starts_with("kf1."), "{legacy_token}");

    // --token-key old:FILE --token-key legacy:data/signing.key: the old key signs, the legacy one is named.
    let legacy_key = AuthSettings::parse_token_key(&format!("legacy:{}", data.join("signing.key").display()))
        .expect("ID:FILE");
    let auth = AuthSettings {
        token_keys: vec![key("old", keys), legacy_key.clone()],
        ..AuthSettings::default()
    };
    let mut old_token = String::new();
    with_demo(&data, auth, |addr, demo| {
        old_token = demo.tokens.issue(&visitor("v-old"), Duration::from_secs(3600));
        let legacy_token = legacy_token.clone();
        async move {
            assert_eq!(
                hello(addr, &legacy_token).await.expect("legacy")["principal"]["id"],
                "v-legacy"
            );
        }
    })
    .await;
    assert!(old_token.starts_with("kf2.old."), "{old_token}");
    assert!(keys.join("old.key").exists(), "the key file is made on first use");

    // During the rotation: --token-key new:FILE --token-key old:FILE.
    let auth = AuthSettings {
        token_keys: vec![key("new", keys), key("old", keys)],
        ..AuthSettings::default()
    };
    let mut new_token = String::new();
    with_demo(&data, auth, |addr, demo| {
        new_token = demo.tokens.issue(&visitor("v-new"), Duration::from_secs(3600));
        let (old_token, new_token, legacy_token) =
            (old_token.clone(), new_token.clone(), legacy_token.clone());
        async move {
            assert_eq!(
                hello(addr, &old_token).await.expect("old")["principal"]["id"],
                "v-old"
            );
            assert_eq!(
                hello(addr, &new_token).await.expect("new")["principal"]["id"],
                "v-new"
            );
            // The legacy key was left out: its tokens are refused.
            assert_eq!(
                hello(addr, &legacy_token).await.expect_err("legacy"),
                "invalid_token"
            );
        }
    })
    .await;

    // After it: --retired-key old (its --token-key may stay).
    let auth = AuthSettings {
        token_keys: vec![key("new", keys), key("old", keys)],
        retired_keys: vec![KeyId::new("old").expect("id")],
        ..AuthSettings::default()
    };
    let demo = with_demo(&data, auth, |addr, _| {
        let (old_token, new_token) = (old_token.clone(), new_token.clone());
        async move {
            assert_eq!(
                hello(addr, &old_token).await.expect_err("retired"),
                "invalid_token"
            );
            assert_eq!(
                hello(addr, &new_token).await.expect("new")["principal"]["id"],
                "v-new"
            );
        }
    })
    .await;
    assert_eq!(
        demo.tokens.keys().ids().map(KeyId::as_str).collect::<Vec<_>>(),
        ["new"]
    );

    // The current key cannot be retired; arguments are checked.
    let auth = AuthSettings {
        token_keys: vec![key("new", keys)],
        retired_keys: vec![KeyId::new("new").expect("id")],
        ..AuthSettings::default()
    };
    assert!(
        Demo::open_configured(&data, WidgetSettings::default(), auth)
            .await
            .is_err()
    );
    for bad in ["nokey", "id:", "bad id:file", ":file"] {
        assert!(AuthSettings::parse_token_key(bad).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_config_file_lets_the_hosts_tokens_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_file = dir.path().join("jwt.json");
    let config = json!({
        "issuer": "https://id.demo.example/",
        "audience": "kf-demo",
        "algorithms": ["HS256"],
        "keys": [{"kid": "demo-1", "hs256_secret": JWT_SECRET}],
        "claims": {"tenant": {"value": TENANT}, "role": {"claim": "kf_role", "default": "visitor"}}
    });
    std::fs::write(&config_file, config.to_string()).expect("write");
    let auth = AuthSettings {
        jwt: Some(AuthSettings::read_jwt_config(&config_file).expect("config")),
        ..AuthSettings::default()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let sign = |claims: Value| {
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("demo-1".to_owned());
        encode(&header, &claims, &EncodingKey::from_secret(JWT_SECRET.as_bytes())).expect("encode")
    };
    let base = json!({"iss": "https://id.demo.example/", "aud": "kf-demo", "exp": now + 600});
    let mut visitor = base.clone();
    visitor["sub"] = json!("customer-7");
    let mut agent = base.clone();
    agent["sub"] = json!("alice");
    agent["kf_role"] = json!("agent");
    let mut stale = visitor.clone();
    stale["exp"] = json!(now - 3600);
    let (visitor, agent, stale) = (sign(visitor), sign(agent), sign(stale));
    with_demo(&dir.path().join("data"), auth, |addr, demo| {
        let kf_token = demo
            .tokens
            .issue(&self::visitor("v-kf"), Duration::from_secs(600));
        async move {
            let welcome = hello(addr, &visitor).await.expect("visitor JWT");
            assert_eq!(
                welcome["principal"],
                json!({"role": "visitor", "id": "customer-7"})
            );
            assert_eq!(welcome["tenant"], TENANT);
            let welcome = hello(addr, &agent).await.expect("agent JWT");
            assert_eq!(welcome["principal"], json!({"role": "agent", "id": "alice"}));
            assert_eq!(hello(addr, &stale).await.expect_err("expired"), "token_expired");
            assert_eq!(
                hello(addr, &kf_token).await.expect("kf token")["principal"]["id"],
                "v-kf"
            );
        }
    })
    .await;

    std::fs::write(&config_file, "{\"issuer\": 1}").expect("write");
    assert!(AuthSettings::read_jwt_config(&config_file).is_err());
    assert!(AuthSettings::read_jwt_config(&dir.path().join("missing.json")).is_err());
}
