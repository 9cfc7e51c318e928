use std::sync::Arc;
use std::time::Duration;

use kf_core::Engine;
use kf_core::auth::{Identity, SignedTokens};
use kf_core::clock::SystemClock;
use kf_core::model::{Group, GroupId, TenantId, VisitorId};
use kf_store_sqlite::{SqliteConfig, SqliteStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    std::fs::create_dir_all("data")?;
    let store = Arc::new(SqliteStore::open("data/kf.sqlite3", SqliteConfig::default())?);
    // Signed with a key made on the first run and kept beside the database.
    let tokens = SignedTokens::from_key_file("data/signing.key", Arc::new(SystemClock))?;
    let engine = Engine::builder(store, Arc::new(tokens.clone())).build().await?;
    // Visitors talk to a group; agents join it with `engine.put_agent`.
    let tenant = TenantId::new("shop")?;
    let support = Group::new(tenant.clone(), GroupId::new("support")?, "Support");
    engine.put_group(support).await?;

    let app = axum::Router::new()
        .route("/ws", kf_transport_ws::route(engine.clone(), Default::default()))
        .nest("/sse", kf_transport_sse::router(engine, Default::default()));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    // Your backend gives each visitor a token like this one when its page loads.
    let visitor = Identity::visitor(tenant, VisitorId::new("visitor-1")?);
    println!(
        "visitor token: {}",
        tokens.issue(&visitor, Duration::from_secs(3600))
    );
    axum::serve(listener, app).await?;
    Ok(())
}
