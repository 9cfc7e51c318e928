//! Test helpers: the SSE test client and server of `kf_transport_sse::testkit`, and a reader of event positions.
//! Tenant, agents, tokens and engines come from `kf_core::testkit::shop`.
#![allow(dead_code)]

use serde_json::Value;

pub use kf_transport_sse::testkit::*;

/// `(conversation, seq)` of event frames.
pub fn positions(events: &[Value]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| {
            (
                e["conversation"].as_str().expect("conversation").to_string(),
                e["seq"].as_u64().expect("seq"),
            )
        })
        .collect()
}
