//! Conformance suites: the behaviour every backend must show, written once and run by each backend.
//!
//! Enable the `testkit` feature in a backend's `[dev-dependencies]` and stamp the suites into its tests. There
//! is one suite per store trait ([`log`], [`directory`], [`settings`]); a backend runs the ones for the traits
//! it implements, each macro taking an expression that builds a fresh, empty backend:
//!
//! ```ignore
//! kf_core::conversation_log_conformance_tests!(async { std::sync::Arc::new(MyLog::open_temporary().await) });
//! kf_core::directory_conformance_tests!(async { std::sync::Arc::new(MyDirectory::new()) });
//! kf_core::settings_conformance_tests!(async { std::sync::Arc::new(MySettings::new()) });
//! ```
//!
//! A backend implementing all three stamps them together:
//!
//! ```ignore
//! kf_core::store_conformance_tests!(async {
//!     let store = MyStore::open_temporary().await.expect("open a fresh store");
//!     std::sync::Arc::new(store) as std::sync::Arc<dyn kf_core::store::Store>
//! });
//! ```
//!
//! Transports stamp the transport suite the same way, from an adapter of their own ([`transport`]):
//!
//! ```ignore
//! kf_core::transport_conformance_tests!(std::sync::Arc::new(MyTransport));
//! ```
//!
//! Each suite function is also public, so a partner can call them from their own test harness.
//!
//! The fixtures the transport suite runs on ([`shop`]: tenant, groups, agents, tokens, engines) are public too,
//! for the transports' own tests and the demo's; `kf_transport_ws::testkit` adds a WebSocket test client.

pub mod audit;
pub mod blob;
pub mod corpus;
pub mod counting;
pub mod directory;
mod fixtures;
pub mod frames;
pub mod history;
pub mod log;
pub mod oracles;
mod seen;
pub mod settings;
pub mod shop;
pub mod stats;
pub mod store;
pub mod transport;
pub mod uploads;

use std::future::Future;

/// Runs a future to completion on a fresh multi-threaded Tokio runtime (used by the test macros, so backend
/// crates need no Tokio test setup of their own).
pub fn block_on<F: Future>(future: F) -> F::Output {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(future),
        Err(error) => panic!("cannot build a Tokio runtime for the conformance suite: {error}"),
    }
}
