//! `cargo run -p kf-bot [ADDR]`: a chat server whose visitors talk to an FAQ bot first; on "human" (or 人工) the
//! bot hands them over to the people of group `support` (agent `alice`). Prints a visitor's and alice's tokens;
//! speak the protocol on `ws://ADDR/` (`docs/protocol.md`) or see `docs/bots.md`.

use std::sync::Arc;
use std::time::Duration;

use kf_core::Engine;
use kf_core::auth::{Identity, SignedTokens};
use kf_core::clock::SystemClock;
use kf_core::model::{Agent, AgentId, Group, GroupId, TenantId, VisitorId};
use kf_core::store::MemoryStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8090".into());
    std::fs::create_dir_all("data")?;
    let tokens = SignedTokens::from_key_file("data/signing.key", Arc::new(SystemClock))?;
    let tenant = TenantId::new("shop")?;
    let (faq, support) = (GroupId::new("faq")?, GroupId::new("support")?);
    // Visitors open in the bot-first group `faq` (the default group here); the bot hands over to `support`.
    let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens.clone()))
        .default_group(faq.clone())
        .build()
        .await?;
    engine
        .put_group(Group::new(tenant.clone(), support.clone(), "Support"))
        .await?;
    let bot_first = Group::new(tenant.clone(), faq.clone(), "FAQ")
        .with_welcome("Hi! I'm the shop's bot. Ask me about shipping, returns or opening hours.")
        .with_handover(support.clone());
    engine.put_group(bot_first).await?;
    let bot = AgentId::new("faq-bot")?;
    engine
        .put_agent(Agent::new(tenant.clone(), bot.clone(), "FAQ bot", 1_000).with_groups([faq]))
        .await?;
    let alice = AgentId::new("alice")?;
    engine
        .put_agent(Agent::new(tenant.clone(), alice.clone(), "Alice", 3).with_groups([support]))
        .await?;

    let me = Identity::agent(tenant.clone(), bot);
    let running = tokio::spawn(kf_bot::run(engine.clone(), me, kf_bot::FaqBot::shop()));

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on ws://{}/", listener.local_addr()?);
    let hour = Duration::from_secs(3600);
    let visitor = Identity::visitor(tenant.clone(), VisitorId::new("visitor-1")?);
    println!("visitor token: {}", tokens.issue(&visitor, hour));
    println!(
        "alice's token: {}",
        tokens.issue(&Identity::agent(tenant, alice), hour)
    );
    tokio::select! {
        served = kf_transport_ws::serve(listener, engine, Default::default()) => served?,
        stopped = running => stopped??,
    }
    Ok(())
}
