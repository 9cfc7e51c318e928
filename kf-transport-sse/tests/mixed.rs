//! The transport conformance suite across transports: one engine served over SSE and WebSocket at once, every
//! visitor on SSE + HTTP POST, every agent on WebSocket ([`kf_core::testkit::transport::Mixed`]).

mod adapter;
mod common;

use std::sync::Arc;

use adapter::Sse;
use kf_core::testkit::transport::{Mixed, Transport};
use kf_transport_ws::testkit::Ws;

fn visitor_on_sse_agent_on_websocket() -> Arc<dyn Transport> {
    Arc::new(Mixed::new(Arc::new(Sse), Arc::new(Ws)))
}

kf_core::transport_conformance_tests!(visitor_on_sse_agent_on_websocket());
