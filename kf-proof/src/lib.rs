//! # kf-proof
//!
//! The proof suites of kf: they hold the delivery contract — nothing acknowledged is lost, nothing is shown
//! twice, order holds — against a real server while the network and the process misbehave.
//!
//! - [`fault`]: the fault-injection suite. A real server (engine + SQLite on disk + WebSocket + SSE) in this
//!   process; visitors and agents on both transports talk through a [`proxy`] that cuts, blackholes, delays and
//!   slices their connections.
//! - [`crash`]: the crash suite. The server as a separate process (`kf-proof serve`), killed with SIGKILL under
//!   load and restarted on the same data directory, again and again.
//!
//! Both drive the same load ([`workload`]) through the same resuming protocol [`client`], written from
//! `docs/protocol.md` (hello/resume, sends retried with the same client id, liveness by heartbeat, jittered
//! backoff), and judge the run with the same [`checker`] against the store read back through its API. A suite's
//! result is a [`Report`](report::Report).
//!
//! ```text
//! cargo test -p kf-proof                                    # both short profiles
//! cargo run --release -p kf-proof -- fault --profile long
//! cargo run --release -p kf-proof -- crash --profile long
//! ```
//!
//! `docs/proof.md` describes what each suite does and checks.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod checker;
pub mod client;
pub mod crash;
pub mod fault;
pub mod proxy;
pub mod report;
pub mod server;
pub mod workload;
