//! # kf-core
//!
//! The core of kf, an embeddable live-chat engine: the domain model, the wire protocol, the traits a host or
//! partner implements ([`ConversationLog`](store::ConversationLog), [`Directory`](store::Directory) and
//! [`Settings`](store::Settings), together a [`Store`](store::Store); [`RoutingPolicy`](routing::RoutingPolicy),
//! [`Authenticator`](auth::Authenticator)) and the [`Engine`] that ties them together.
//!
//! It knows no transport, HTTP stack or database: `kf-transport-ws` carries frames over WebSocket,
//! `kf-store-sqlite` persists logs to SQLite, and [`MemoryStore`](store::MemoryStore) keeps them in memory.
//!
//! The delivery contract: every event of a conversation gets a gapless `seq` in the same durable commit that
//! stores it; sends are idempotent by client id; a send is acknowledged only after its commit; a client that
//! resubscribes after its last seq gets exactly what it missed, in order, then live events.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod attachments;
pub mod auth;
pub mod blob;
pub mod clock;
pub mod context;
pub mod cursor;
pub mod engine;
pub mod entry;
pub mod hours;
pub mod labels;
pub mod limits;
pub mod model;
pub mod origin;
pub mod prechat;
pub mod protocol;
pub mod quick_replies;
pub mod routing;
pub mod signing_key;
pub mod stats;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use engine::{Engine, EngineBuilder};
pub use limits::Limits;
