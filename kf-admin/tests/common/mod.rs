//! A live admin API over 127.0.0.1 with a SQLite file, tokens of each role, and a minimal HTTP client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kf_core::Engine;
use kf_core::auth::{Identity, Role, SignedTokens};
use kf_core::clock::SystemClock;
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const WAIT: Duration = Duration::from_secs(10);

/// A server: the engine, its store's directory, tokens, and the address of the admin API (`/api/admin`).
pub struct Server {
    pub engine: Engine,
    pub addr: SocketAddr,
    pub tokens: SignedTokens,
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
}

pub fn identity(tenant: &str, agent: &str, role: Role) -> Identity {
    Identity::agent(tenant.parse().expect("tenant"), agent.parse().expect("agent")).with_role(role)
}

impl Server {
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().expect("dir");
        Self::start_in(dir).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> Server {
        let store = Arc::new(
            SqliteStore::open(dir.path().join("kf.sqlite3"), SqliteConfig::default()).expect("store"),
        );
        let tokens = SignedTokens::new(&[5; 32], Arc::new(SystemClock)).expect("key");
        let engine = Engine::builder(store.clone(), Arc::new(tokens.clone()))
            .audit(store.clone())
            .presence_grace(Duration::ZERO)
            .build()
            .await
            .expect("engine");
        let app = axum::Router::new().nest("/api/admin", kf_admin::router(engine.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            engine,
            addr,
            tokens,
            dir,
            store,
        }
    }

    pub fn token(&self, tenant: &str, agent: &str, role: Role) -> String {
        self.tokens
            .issue(&identity(tenant, agent, role), Duration::from_secs(600))
    }

    /// The shop's admin.
    pub fn boss(&self) -> String {
        self.token("shop", "boss", Role::Admin)
    }

    pub async fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = format!(
            "{method} /api/admin{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
            .await
            .expect("answer in time")
            .expect("read");
        let raw = String::from_utf8(raw).expect("utf-8");
        let (head, rest) = raw.split_once("\r\n\r\n").expect("head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
        let body = if chunked { dechunk(rest) } else { rest.to_owned() };
        Reply { status, body }
    }

    /// As the shop's admin.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(Some(&self.boss()), method, path, body).await
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

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }

    /// The error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}
