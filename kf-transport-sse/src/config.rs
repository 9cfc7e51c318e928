//! [`SseConfig`]: heartbeat, reconnect delay and dead-peer detection of the SSE transport.

use std::time::Duration;

/// Settings of the SSE transport. Start from [`SseConfig::default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use kf_transport_sse::SseConfig;
///
/// let config = SseConfig::default().heartbeat(Duration::from_secs(10));
/// ```
///
/// Limits (frame size, message size, queue bound, rate) are the engine's
/// [`Limits`](kf_core::limits::Limits), the same as on WebSocket.
#[derive(Clone, Debug)]
pub struct SseConfig {
    pub(crate) heartbeat: Duration,
    pub(crate) retry: Duration,
    pub(crate) tcp_user_timeout: Option<Duration>,
}

impl Default for SseConfig {
    /// A heartbeat after 15 s of silence, clients told to reconnect after 2 s, and a socket whose sent
    /// data stays unacknowledged for 30 s is dropped.
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_secs(2),
            tcp_user_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl SseConfig {
    /// After this much silence on a stream, a heartbeat is sent — an SSE event named `ping` with data
    /// `{"type":"ping"}`: it keeps proxies from closing an idle response, lets the server notice a vanished client
    /// and lets the client tell a live stream from a dead one (default 15 s; never more than the engine's
    /// `ping_interval_ms`, which clients count on).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// The `retry:` sent at the start of each stream: how long a browser waits before reconnecting (default 2 s).
    pub fn retry(mut self, after: Duration) -> Self {
        self.retry = after;
        self
    }

    /// `TCP_USER_TIMEOUT` for connections accepted by [`serve`](crate::serve): how long sent data may stay
    /// unacknowledged before the connection is dropped (default 30 s; `None` keeps the system's default, which
    /// is many minutes). Linux only; ignored elsewhere.
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.tcp_user_timeout = timeout;
        self
    }
}
