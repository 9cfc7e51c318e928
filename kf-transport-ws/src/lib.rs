//! # kf-transport-ws
//!
//! The WebSocket transport of kf: it carries the JSON frames of [`kf_core::protocol`] over WebSocket
//! connections, one frame per text message, and hands them to an [`Engine`](kf_core::Engine).
//!
//! Two ways to run it, one connection loop behind both:
//!
//! - **Standalone**: [`serve`] accepts connections on a [`TcpListener`](tokio::net::TcpListener) of its own.
//! - **Mounted** in a host's server: [`route`] (feature `axum`, on by default) gives an axum
//!   [`MethodRouter`](axum::routing::MethodRouter) for the host's router, and [`upgrade`] does the same for any
//!   hyper-based server. Both answer the HTTP upgrade themselves through hyper, so a host compiles one WebSocket
//!   stack (tokio-tungstenite, which stays out of this crate's public API).
//!
//! ```no_run
//! # async fn run(engine: kf_core::Engine) -> std::io::Result<()> {
//! use kf_transport_ws::{WsConfig, serve};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, engine, WsConfig::default()).await
//! # }
//! ```
//!
//! ## What a connection does
//!
//! The client's first text frame must arrive within the hello timeout and is handed to
//! [`Engine::accept`](kf_core::Engine::accept); a refusal is answered with its `error` frame and a close frame
//! whose code the engine chose (4001 for bad credentials, 1002 for a first frame that is not `hello`…); no
//! `hello` within the timeout closes with 4001. Then every text frame goes to
//! [`Session::receive`](kf_core::engine::Session::receive), in order, while a writer drains the connection's
//! [`Outbox`](kf_core::engine::Outbox), batching whatever is ready into one flush. After a silence of the ping interval the server sends an application-level `ping`; a client silent for
//! the idle timeout is closed (4002). A frame over the size limit closes the connection with 1009, a text frame
//! that is not UTF-8 with 1007, and a client that does not read fast enough is closed with 4008 (it resumes from
//! its cursor). When the connection ends, the session is dropped, which ends its subscriptions and presence.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod connection;
mod server;
mod upgrade;

#[cfg(feature = "axum")]
mod axum_route;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::WsConfig;
pub use server::serve;
pub use upgrade::upgrade;

#[cfg(feature = "axum")]
pub use axum_route::route;
