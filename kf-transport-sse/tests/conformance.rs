//! The transport conformance suite of `kf_core::testkit::transport`, run over SSE + HTTP POST with the adapter in
//! `adapter/`.

mod adapter;
mod common;

use std::sync::Arc;

use adapter::Sse;
use kf_core::testkit::transport::Transport;

fn sse() -> Arc<dyn Transport> {
    Arc::new(Sse)
}

kf_core::transport_conformance_tests!(sse());
