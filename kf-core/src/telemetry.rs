//! Metrics and traces: the names of kf's metric series, their descriptions, and the handles the engine and the
//! transports count with. Every series and span is documented in `docs/observability.md`.
//!
//! kf counts through the [`metrics`] facade and logs through [`tracing`]; it installs neither a recorder nor a
//! subscriber. A host that wants the series installs a recorder (the demo uses `metrics-exporter-prometheus`)
//! **before** it builds the store, the engine, the transports and the webhook worker: their handles are
//! registered when they are built and kept, so that counting costs no lookup and no allocation per message.
//! Without a recorder every handle is a no-op that costs one branch.
//!
//! Labels are few and bounded: `transport` (`ws`, `sse`), `role` (`visitor`, `agent`), `tenant` and `group` on
//! the queue series, `consumer` on the change-feed lag. Conversation and visitor ids are never labels; they are
//! span fields (`conversation`, `identity`), so one conversation can be followed through the logs.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::auth::Principal;
use crate::model::{GroupId, TenantId};

/// The names of kf's metric series (Prometheus conventions: `_total` for counters, `_seconds` for durations).
pub mod names {
    /// Gauge, labels `transport`, `role`: live connections (WebSocket connections, SSE event streams).
    pub const CONNECTIONS: &str = "kf_connections";
    /// Counter, labels `transport`, `role`: protocol frames received from clients (WebSocket text and binary
    /// messages, SSE POST requests).
    pub const FRAMES_RECEIVED: &str = "kf_frames_received_total";
    /// Counter, labels `transport`, `role`: protocol frames written to clients (WebSocket messages, SSE events).
    pub const FRAMES_SENT: &str = "kf_frames_sent_total";
    /// Counter: events committed by the engine's pipeline (every kind; duplicates are not counted).
    pub const EVENTS_COMMITTED: &str = "kf_events_committed_total";
    /// Counter: `message` events committed (its rate is the messages committed per second).
    pub const MESSAGES_COMMITTED: &str = "kf_messages_committed_total";
    /// Counter, label `role`: requests refused with `rate_limited`.
    pub const RATE_LIMITED: &str = "kf_rate_limited_total";
    /// Counter: connections closed because their outbound queue overflowed (`slow_consumer`).
    pub const SLOW_CONSUMER_CLOSES: &str = "kf_slow_consumer_closes_total";
    /// Gauge, labels `tenant`, `group`: conversations waiting in the group's queue.
    pub const QUEUE_LENGTH: &str = "kf_queue_length";
    /// Histogram, labels `tenant`, `group`: seconds a conversation waited in the queue before it was assigned.
    pub const QUEUE_WAIT: &str = "kf_queue_wait_seconds";
    /// Histogram, label `store`: seconds one group commit (transaction and fsync) took.
    pub const STORE_COMMIT: &str = "kf_store_commit_seconds";
    /// Histogram, label `store`: write requests in one group commit.
    pub const STORE_BATCH_SIZE: &str = "kf_store_batch_size";
    /// Counter, label `store`: group commits that failed (every request of the batch failed).
    pub const STORE_BATCH_FAILURES: &str = "kf_store_batch_failures_total";
    /// Gauge, label `consumer`: committed events a change-feed consumer has not taken yet (head − position).
    pub const FEED_LAG: &str = "kf_feed_lag_events";
    /// Counter: webhook deliveries the receiver accepted (2xx).
    pub const WEBHOOK_DELIVERED: &str = "kf_webhook_deliveries_total";
    /// Counter: webhook attempts that failed (an error, a timeout or a non-2xx answer).
    pub const WEBHOOK_FAILED: &str = "kf_webhook_failures_total";
    /// Counter: webhook deliveries that became dead letters (their last attempt failed).
    pub const WEBHOOK_DEAD_LETTERS: &str = "kf_webhook_dead_letters_total";
    /// Histogram: seconds one webhook attempt took (request and answer, or the timeout).
    pub const WEBHOOK_ATTEMPT: &str = "kf_webhook_attempt_seconds";
}

/// Describes every kf series to the installed recorder (help text and unit; a Prometheus exporter prints them as
/// `# HELP`). Call it once after installing the recorder; without one it does nothing.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_gauge!(
        CONNECTIONS,
        "Live connections (WebSocket connections, SSE event streams)."
    );
    describe_counter!(FRAMES_RECEIVED, "Protocol frames received from clients.");
    describe_counter!(FRAMES_SENT, "Protocol frames written to clients.");
    describe_counter!(EVENTS_COMMITTED, "Events committed to conversation logs.");
    describe_counter!(
        MESSAGES_COMMITTED,
        "Message events committed to conversation logs."
    );
    describe_counter!(RATE_LIMITED, "Requests refused with rate_limited.");
    describe_counter!(
        SLOW_CONSUMER_CLOSES,
        "Connections closed because their outbound queue overflowed."
    );
    describe_gauge!(QUEUE_LENGTH, "Conversations waiting in a group's queue.");
    describe_histogram!(
        QUEUE_WAIT,
        Unit::Seconds,
        "Time a conversation waited in its group's queue before it was assigned."
    );
    describe_histogram!(
        STORE_COMMIT,
        Unit::Seconds,
        "Time one group commit of the store took."
    );
    describe_histogram!(STORE_BATCH_SIZE, "Write requests in one group commit.");
    describe_counter!(STORE_BATCH_FAILURES, "Group commits that failed.");
    describe_gauge!(
        FEED_LAG,
        "Committed events a change-feed consumer has not taken yet."
    );
    describe_counter!(
        WEBHOOK_DELIVERED,
        "Webhook deliveries accepted by their receiver."
    );
    describe_counter!(WEBHOOK_FAILED, "Webhook attempts that failed.");
    describe_counter!(
        WEBHOOK_DEAD_LETTERS,
        "Webhook deliveries that became dead letters."
    );
    describe_histogram!(WEBHOOK_ATTEMPT, Unit::Seconds, "Time one webhook attempt took.");
}

/// The `role` label (and span field) of a principal: `visitor` or `agent`.
pub fn role(principal: &Principal) -> &'static str {
    match principal {
        Principal::Visitor(_) => "visitor",
        Principal::Agent(_) => "agent",
    }
}

/// The `identity` span field of a principal, displayed as `visitor:<id>` or `agent:<id>` (no allocation).
pub fn identity(principal: &Principal) -> IdentityField<'_> {
    IdentityField(principal)
}

/// How a principal appears in the `identity` span field: `visitor:<id>` or `agent:<id>`. See [`identity`].
#[derive(Clone, Copy, Debug)]
pub struct IdentityField<'a>(&'a Principal);

impl std::fmt::Display for IdentityField<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Principal::Visitor(id) => write!(f, "visitor:{id}"),
            Principal::Agent(id) => write!(f, "agent:{id}"),
        }
    }
}

/// The series of one role on one transport.
#[derive(Clone, Debug)]
struct RoleSeries {
    connections: Gauge,
    received: Counter,
    sent: Counter,
}

impl RoleSeries {
    fn new(transport: &'static str, role: &'static str) -> Self {
        let labels = [("transport", transport), ("role", role)];
        Self {
            connections: metrics::gauge!(names::CONNECTIONS, &labels),
            received: metrics::counter!(names::FRAMES_RECEIVED, &labels),
            sent: metrics::counter!(names::FRAMES_SENT, &labels),
        }
    }
}

/// The connection and frame series of one transport (`kf_connections`, `kf_frames_received_total`,
/// `kf_frames_sent_total`), registered once when the transport is built. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TransportMetrics {
    visitor: Arc<RoleSeries>,
    agent: Arc<RoleSeries>,
    slow_consumer_closes: Counter,
}

impl TransportMetrics {
    /// The series of `transport` (its label value: `ws`, `sse`), registered with the recorder installed now.
    pub fn new(transport: &'static str) -> Self {
        Self {
            visitor: Arc::new(RoleSeries::new(transport, "visitor")),
            agent: Arc::new(RoleSeries::new(transport, "agent")),
            slow_consumer_closes: metrics::counter!(names::SLOW_CONSUMER_CLOSES),
        }
    }

    fn of(&self, principal: &Principal) -> &Arc<RoleSeries> {
        match principal {
            Principal::Visitor(_) => &self.visitor,
            Principal::Agent(_) => &self.agent,
        }
    }

    /// Counts a live connection of `principal` until the returned guard is dropped.
    pub(crate) fn connected(&self, principal: &Principal) -> ConnectionMetrics {
        let series = self.of(principal).clone();
        series.connections.increment(1.0);
        ConnectionMetrics { series }
    }

    /// Counts one frame received outside a session's [`receive`](crate::engine::Session::receive) (a `hello`, an
    /// SSE POST).
    pub fn received(&self, principal: &Principal) {
        self.of(principal).received.increment(1);
    }

    /// Counts a connection the transport cut off as a slow consumer by itself (a write that stalled past its
    /// timeout); the engine counts those whose outbound queue overflowed.
    pub fn slow_consumer_closed(&self) {
        self.slow_consumer_closes.increment(1);
    }
}

/// One live connection's series: counts it in `kf_connections` until dropped, and its frames.
#[derive(Debug)]
pub(crate) struct ConnectionMetrics {
    series: Arc<RoleSeries>,
}

impl ConnectionMetrics {
    /// Counts one frame received from the client.
    pub(crate) fn received(&self) {
        self.series.received.increment(1);
    }

    /// Counts `frames` frames written to the client.
    pub(crate) fn sent(&self, frames: u64) {
        self.series.sent.increment(frames);
    }
}

impl Drop for ConnectionMetrics {
    fn drop(&mut self) {
        self.series.connections.decrement(1.0);
    }
}

/// The engine's own series, registered when the engine is built.
#[derive(Clone, Debug)]
pub(crate) struct EngineMetrics {
    pub(crate) events_committed: Counter,
    pub(crate) messages_committed: Counter,
    rate_limited_visitor: Counter,
    rate_limited_agent: Counter,
    pub(crate) slow_consumer_closes: Counter,
}

impl EngineMetrics {
    pub(crate) fn new() -> Self {
        Self {
            events_committed: metrics::counter!(names::EVENTS_COMMITTED),
            messages_committed: metrics::counter!(names::MESSAGES_COMMITTED),
            rate_limited_visitor: metrics::counter!(names::RATE_LIMITED, "role" => "visitor"),
            rate_limited_agent: metrics::counter!(names::RATE_LIMITED, "role" => "agent"),
            slow_consumer_closes: metrics::counter!(names::SLOW_CONSUMER_CLOSES),
        }
    }

    pub(crate) fn rate_limited(&self, principal: &Principal) {
        match principal {
            Principal::Visitor(_) => self.rate_limited_visitor.increment(1),
            Principal::Agent(_) => self.rate_limited_agent.increment(1),
        }
    }
}

/// One group's queue series (`kf_queue_length`, `kf_queue_wait_seconds`), registered when the group's queue is
/// first used.
#[derive(Clone, Debug)]
pub(crate) struct QueueMetrics {
    pub(crate) length: Gauge,
    pub(crate) wait: Histogram,
}

impl QueueMetrics {
    pub(crate) fn new(tenant: &TenantId, group: &GroupId) -> Self {
        let labels = [
            ("tenant", tenant.as_str().to_owned()),
            ("group", group.as_str().to_owned()),
        ];
        Self {
            length: metrics::gauge!(names::QUEUE_LENGTH, &labels),
            wait: metrics::histogram!(names::QUEUE_WAIT, &labels),
        }
    }
}

/// The change-feed lag series of one consumer (`kf_feed_lag_events{consumer}`).
#[derive(Clone, Debug)]
pub struct FeedLag {
    gauge: Gauge,
}

impl FeedLag {
    /// The lag series of `consumer` (its label value, e.g. `webhooks`), registered with the recorder installed
    /// now.
    pub fn new(consumer: impl Into<String>) -> Self {
        Self {
            gauge: metrics::gauge!(names::FEED_LAG, "consumer" => consumer.into()),
        }
    }

    /// Records that the consumer has taken everything up to `position` of a feed whose head is `head`.
    pub fn set(&self, head: u64, position: u64) {
        self.gauge.set(head.saturating_sub(position) as f64);
    }
}
