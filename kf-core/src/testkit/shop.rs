//! Fixtures for engine and transport tests: tenant `shop`, its groups and agents, a token authority with a fixed
//! key, and engines built over them. The transport conformance suite ([`super::transport`]) runs on them, and so
//! do the transports' own tests and the demo's, so that every test speaks of the same shop.
//!
//! - identities: [`tenant`], [`visitor`], [`agent`]; tokens: [`tokens`] (signing with [`KEY`]), [`token`];
//! - engines: [`engine`] (the suite's shop: groups `support` and `billing`, agents `alice`, `bob`, `carol`),
//!   [`engine_with`] (group `support` and the agents you name, over the store you give),
//!   [`engine_with_alice`] (group `support`, agent `alice`, a fresh [`MemoryStore`]), [`engine_with_origins`]
//!   (the shop of [`engine`] whose pages are on [`SHOP_ORIGIN`]; tenant `other`'s on [`OTHER_ORIGIN`]),
//!   [`engine_with_bot`] (the shop of [`engine`] with a bot-first group `bot` and its bot `faq-bot`);
//! - [`limits`] for scenarios, [`WAIT`] as the failure guard, and a few readers ([`seqs`], [`stored`],
//!   [`eventually`]).
//!
//! ```ignore
//! use kf_core::testkit::shop::{engine_with_alice, token, visitor};
//! let engine = engine_with_alice(kf_core::limits::Limits::default()).await;
//! let token = token(&visitor("v-1"));
//! ```
//!
//! Functions panic (failing the test) on anything unexpected, so tests need no error handling of their own.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::Engine;
use crate::auth::{Identity, SignedTokens};
use crate::clock::SystemClock;
use crate::limits::Limits;
use crate::model::{Agent, AgentId, ConversationId, Event, Group, GroupId, Seq, TenantId, VisitorId};
use crate::origin::AllowedOrigins;
use crate::store::{MemoryStore, Store};

/// How long a test (a scenario, an adapter, a test client) waits for something it expects before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// The key [`tokens`] signs with.
pub const KEY: &[u8; 32] = b"kf-transport-conformance-key-001";

/// Tenant `shop`, where the tests happen.
pub fn tenant() -> TenantId {
    must(TenantId::new("shop"), "tenant id")
}

/// A visitor of tenant `shop`.
pub fn visitor(id: &str) -> Identity {
    Identity::visitor(tenant(), must(VisitorId::new(id), "visitor id"))
}

/// An agent of tenant `shop`.
pub fn agent(id: &str) -> Identity {
    Identity::agent(tenant(), must(AgentId::new(id), "agent id"))
}

/// The tests' token authority: [`SignedTokens`] with [`KEY`] on the system clock.
pub fn tokens() -> SignedTokens {
    must(SignedTokens::new(KEY, Arc::new(SystemClock)), "token key")
}

/// A valid token (one hour) for `identity`.
pub fn token(identity: &Identity) -> String {
    tokens().issue(identity, Duration::from_secs(3600))
}

/// Limits for the transport scenarios: the defaults with the rate limit out of the way, and a ping interval
/// (heartbeat) of 200 ms, so that an SSE client can tell quickly that nothing more is coming.
pub fn limits() -> Limits {
    Limits {
        requests_per_second: 10_000,
        ping_interval_ms: 200,
        ..Limits::default()
    }
}

/// The web origin tenant `shop` allows in [`engine_with_origins`].
pub const SHOP_ORIGIN: &str = "https://shop.example";

/// The web origin tenant `other` allows in [`engine_with_origins`] (and `shop` does not).
pub const OTHER_ORIGIN: &str = "https://other.example";

/// [`engine`] with default limits, whose tenant `shop` allows pages of [`SHOP_ORIGIN`] and tenant `other` pages
/// of [`OTHER_ORIGIN`] (`kf_core::origin`).
pub async fn engine_with_origins() -> Engine {
    let other = must(TenantId::new("other"), "tenant id");
    let origins = must(
        AllowedOrigins::new()
            .allow(&tenant(), SHOP_ORIGIN)
            .and_then(|origins| origins.allow(&other, OTHER_ORIGIN)),
        "origins",
    );
    shop(Limits::default(), origins).await
}

/// The transport suite's shop: an engine over a fresh [`MemoryStore`] (its uploads too) with [`tokens`], group `support` (agents
/// `alice`, `bob`; the default group) and group `billing` (agent `carol`), capacity 5 each, no presence grace
/// period.
pub async fn engine(limits: Limits) -> Engine {
    shop(limits, AllowedOrigins::new()).await
}

async fn shop(limits: Limits, origins: AllowedOrigins) -> Engine {
    let support = must(GroupId::new("support"), "group id");
    let store = Arc::new(MemoryStore::new());
    let engine = must(
        Engine::builder(store.clone(), Arc::new(tokens()))
            .uploads(store)
            .limits(limits)
            .presence_grace(Duration::ZERO)
            .default_group(support.clone())
            .allowed_origins(origins)
            .build()
            .await,
        "engine",
    );
    let billing = must(GroupId::new("billing"), "group id");
    for (group, name) in [(&support, "Support"), (&billing, "Billing")] {
        let group = Group::new(tenant(), group.clone(), name);
        must(engine.put_group(group).await, "put group");
    }
    for (id, group) in [("alice", &support), ("bob", &support), ("carol", &billing)] {
        put_agent(&engine, id, group).await;
    }
    engine
}

/// The bot-first shop: [`engine`] plus group `bot` ("FAQ bot"), a bot-first group handing over to `support`
/// ([`Group::with_handover`]), and its agent `faq-bot` (capacity 100). Visitors reach it with `open` naming group
/// `bot` (`docs/bots.md`).
pub async fn engine_with_bot(limits: Limits) -> Engine {
    let engine = engine(limits).await;
    let bot = must(GroupId::new("bot"), "group id");
    let support = must(GroupId::new("support"), "group id");
    let group = Group::new(tenant(), bot.clone(), "FAQ bot").with_handover(support);
    must(engine.put_group(group).await, "put group");
    let faq = Agent::new(
        tenant(),
        must(AgentId::new("faq-bot"), "agent id"),
        "FAQ bot",
        100,
    )
    .with_groups([bot]);
    must(engine.put_agent(faq).await, "put agent");
    engine
}

/// An engine over `store` with [`tokens`] and `limits`, no presence grace period, and in tenant `shop` group
/// `support` (no default group set) with `agents` (capacity 5 each). The store may hold what an earlier engine
/// left (a restart).
pub async fn engine_with(store: Arc<dyn Store>, limits: Limits, agents: &[&str]) -> Engine {
    let engine = must(
        Engine::builder(store, Arc::new(tokens()))
            .limits(limits)
            .presence_grace(Duration::ZERO)
            .build()
            .await,
        "engine",
    );
    let support = must(GroupId::new("support"), "group id");
    must(
        engine
            .put_group(Group::new(tenant(), support.clone(), "Support"))
            .await,
        "put group",
    );
    for id in agents {
        put_agent(&engine, id, &support).await;
    }
    engine
}

/// An engine with a group and an agent: [`engine_with`] a fresh [`MemoryStore`] and agent `alice`.
pub async fn engine_with_alice(limits: Limits) -> Engine {
    engine_with(Arc::new(MemoryStore::new()), limits, &["alice"]).await
}

/// Puts agent `id` (display name `id`, capacity 5) of tenant `shop` in `group`.
async fn put_agent(engine: &Engine, id: &str, group: &GroupId) {
    let agent =
        Agent::new(tenant(), must(AgentId::new(id), "agent id"), id, 5).with_groups(vec![group.clone()]);
    must(engine.put_agent(agent).await, "put agent");
}

/// The seqs of a list of `event` frames (panics on a frame without one).
pub fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|event| match event["seq"].as_u64() {
            Some(seq) => seq,
            None => panic!("no seq in {event}"),
        })
        .collect()
}

/// Every event of a conversation (its id as the protocol writes it) in the engine's log.
pub async fn stored(engine: &Engine, conversation: &str) -> Vec<Event> {
    let id: ConversationId = must(conversation.parse(), "conversation id");
    must(
        engine.log().events_after(id, Seq::ZERO, 100_000).await,
        "read the log",
    )
}

/// Polls `condition` every few milliseconds until it holds; panics after [`WAIT`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Unwraps `result`, panicking with `what` and the error.
pub(crate) fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error:?}"),
    }
}
