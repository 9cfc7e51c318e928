//! Webhooks for the [kf](https://example.invalid/kf) live-chat engine, read from its change feed.
//!
//! A tenant subscribes a URL to event types ([`EventType`]: conversation created, assigned, transferred, closed,
//! reopened, offline, missed, rated; message created; note created — agents' private notes, opt-in). The delivery worker ([`Webhooks::run`]) follows the change feed
//! of a [`ConversationLog`](kf_core::store::ConversationLog), queues each wanted event in a durable
//! [`WebhookState`] (in memory or SQLite) and POSTs it as JSON with a signature
//! (`X-Kf-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, [`signature`]) and a stable
//! delivery id (`X-Kf-Delivery: <subscription>:<feed position>`):
//!
//! - **at-least-once**: a delivery leaves the state only after a 2xx answer; a crash, a timeout or a restart
//!   sends it again (receivers deduplicate by the delivery id);
//! - **per-conversation order**: a conversation's later event is not sent before its earlier one succeeded or
//!   was given up as a dead letter;
//! - **retries** with exponential backoff and full jitter, their count and next time kept in the state (they
//!   survive a restart), a **dead letter** after [`WebhookConfig::max_attempts`], and manual replay of dead
//!   letters or from a feed position;
//! - **isolation**: each subscription has its own slots ([`WebhookConfig::concurrency_per_endpoint`]) and its
//!   own bounded queue, so a slow or dead receiver holds back nobody else.
//!
//! Nothing here is in the engine's write path: the worker reads committed events like any other consumer.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use kf_core::model::TenantId;
//! # use kf_webhooks::{EventType, SqliteState, SubscriptionSpec, WebhookConfig, Webhooks};
//! # async fn demo(store: Arc<kf_store_sqlite::SqliteStore>) -> Result<(), Box<dyn std::error::Error>> {
//! let state = Arc::new(SqliteState::open("data/webhooks.sqlite3")?);
//! let webhooks = Webhooks::new(store, state, WebhookConfig::default());
//! let shop = TenantId::new("shop")?;
//! let spec = SubscriptionSpec::new(
//!     "https://crm.example/hooks/kf",
//!     "a-long-random-shared-secret",
//!     [EventType::ConversationCreated, EventType::MessageCreated],
//! );
//! webhooks.create(&shop, spec).await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let worker = tokio::spawn({
//!     let webhooks = webhooks.clone();
//!     async move { webhooks.run(async { let _ = stopped.await; }).await }
//! });
//! // … on shutdown:
//! let _ = stop.send(());
//! worker.await??;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod signature;
mod sqlite;
pub mod state;
mod subscription;
#[cfg(feature = "testkit")]
pub mod testkit;
mod worker;

use kf_core::store::StoreError;
use thiserror::Error;

pub use sqlite::SqliteState;
pub use state::{Delivery, MemoryState, NewDelivery, SubscriptionState, WebhookState};
pub use subscription::{EventType, MIN_SECRET_LEN, Subscription, SubscriptionId, SubscriptionSpec};
pub use worker::{WebhookConfig, Webhooks, payload};

/// Errors of webhooks.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument: URL, secret, event types, id.
    #[error("invalid: {0}")]
    Invalid(String),
    /// No such subscription (in that tenant).
    #[error("no such subscription")]
    NotFound,
    /// The subscription exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The webhook state failed.
    #[error("webhook state: {0}")]
    State(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The change feed could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(String),
}
