//! The wire protocol shared by every transport: JSON frames, one per WebSocket text message (or SSE event / HTTP
//! body). `docs/protocol.md` is the client author's reference; this module is its source of truth.
//!
//! Every frame is an object with a `type`. Client requests may carry an `id` (a string of at most 64 bytes)
//! that the server echoes in the reply or error, so a client can match them.

mod client;
mod codes;
mod object;
mod server;

pub use client::*;
pub use codes::*;
pub use server::*;

pub(crate) use object::object_only;

/// The protocol version this crate speaks (`v` in `hello` and `welcome`).
pub const PROTOCOL_VERSION: u32 = 1;

#[cfg(test)]
mod tests;
