//! `serve-kf`: the kf server the load scenarios measure. An `Engine` over a `SqliteStore` on disk with
//! `SqliteConfig::default()` (WAL, `synchronous=FULL`, group commit), behind `kf_transport_ws::serve` with
//! `WsConfig::default()`; tenant `bench` with one group (`support`) and agents `a0`..`a{N-1}`.
//!
//! Two limits are raised, because one process plays hundreds of users: the per-identity request rate (an agent
//! here answers in up to hundreds of conversations) and connections per identity (one agent connection per
//! conversation). Agents take any number of conversations. Everything else is the engine's default.

use std::sync::Arc;

use anyhow::{Context, Result};
use kf_core::Engine;
use kf_core::auth::SignedTokens;
use kf_core::clock::SystemClock;
use kf_core::limits::Limits;
use kf_core::model::{Agent, AgentId, Group, GroupId, TenantId};
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use kf_transport_ws::WsConfig;

use super::ServeLoadArgs;
use super::child::{KEY_VAR, listen, parent_gone};
use crate::load::{GROUP, TENANT, agent_name, unhex};

pub async fn serve(args: ServeLoadArgs) -> Result<()> {
    let key = unhex(&std::env::var(KEY_VAR).with_context(|| format!("{KEY_VAR} is not set"))?)?;
    let tokens = SignedTokens::new(&key, Arc::new(SystemClock)).context("weak signing key")?;
    let store =
        Arc::new(SqliteStore::open(&args.db, SqliteConfig::default()).context("cannot open the store")?);
    let limits = Limits::default()
        .with_requests_per_second(1_000_000)
        .with_connections_per_identity(1_000_000);
    let tenant = TenantId::new(TENANT)?;
    let group = GroupId::new(GROUP)?;
    let engine = Engine::builder(store.clone(), Arc::new(tokens))
        .limits(limits)
        .default_group(group.clone())
        .build()
        .await
        .context("cannot start the engine")?;
    engine
        .put_group(Group::new(tenant.clone(), group.clone(), "Support"))
        .await
        .context("cannot create the group")?;
    for i in 0..args.agents {
        let id = AgentId::new(agent_name(i))?;
        let agent = Agent::new(tenant.clone(), id, agent_name(i), u32::MAX).with_groups([group.clone()]);
        engine.put_agent(agent).await.context("cannot create an agent")?;
    }
    let listener = listen(args.addr)?;
    println!("ready port={}", listener.local_addr()?.port());
    tokio::select! {
        result = kf_transport_ws::serve(listener, engine.clone(), WsConfig::default()) => {
            result.context("the WebSocket server failed")?;
        }
        () = parent_gone() => {}
    }
    engine.shutdown().await;
    tokio::task::spawn_blocking(move || store.close())
        .await
        .context("the store's close panicked")?
        .context("cannot close the store")?;
    std::process::exit(0)
}
