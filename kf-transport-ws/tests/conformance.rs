//! The transport conformance suite of `kf_core::testkit::transport`, run over WebSocket with this crate's
//! adapter ([`kf_transport_ws::testkit::Ws`]).

use std::sync::Arc;

use kf_core::testkit::transport::Transport;
use kf_transport_ws::testkit::Ws;

fn ws() -> Arc<dyn Transport> {
    Arc::new(Ws)
}

kf_core::transport_conformance_tests!(ws());
