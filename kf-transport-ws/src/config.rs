//! [`WsConfig`]: buffer sizes, limits and timeouts of the WebSocket transport.

use std::time::Duration;

use kf_core::Engine;
use kf_core::telemetry::TransportMetrics;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Settings of the WebSocket transport. Start from [`WsConfig::default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use kf_transport_ws::WsConfig;
///
/// let config = WsConfig::default().path("/chat").hello_timeout(Duration::from_secs(5));
/// ```
///
/// Values left unset come from the engine's [`Limits`](kf_core::limits::Limits) (frame size, ping interval,
/// idle timeout), so that what the server enforces is what `welcome` announces.
#[derive(Clone, Debug)]
pub struct WsConfig {
    path: Option<String>,
    read_buffer_size: usize,
    write_buffer_size: usize,
    max_frame_bytes: Option<usize>,
    hello_timeout: Duration,
    ping_interval: Option<Duration>,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    close_timeout: Duration,
}

impl Default for WsConfig {
    /// A 512-byte read buffer, a 4 KiB write buffer, a 10 s hello timeout, a 5 s close timeout, and the engine's
    /// limits for the rest. (An idle session then costs about 7.3 KiB of server memory: `docs/benchmarks.md`.)
    fn default() -> Self {
        Self {
            path: None,
            read_buffer_size: 512,
            write_buffer_size: 4 * 1024,
            max_frame_bytes: None,
            hello_timeout: Duration::from_secs(10),
            ping_interval: None,
            idle_timeout: None,
            write_timeout: None,
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl WsConfig {
    /// The only path [`serve`](crate::serve) accepts upgrades on (others get 404). Default: any path. Mounted
    /// endpoints ([`route`](crate::route), [`upgrade`](crate::upgrade)) leave routing to the host.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Bytes allocated per connection for reading frames, and read per system call (default 512 bytes; a larger
    /// frame grows the buffer while it is read). It is most of what an idle connection costs: chat frames are
    /// small, so a small buffer keeps many idle connections cheap at little cost in throughput.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes;
        self
    }

    /// Bytes of outgoing frames gathered before they are written to the socket within one batch (default 4 KiB).
    /// Every batch is flushed at its end whatever its size.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Largest frame (and message) the server reads; a larger one closes the connection with 1009.
    /// Default: the engine's `max_frame_bytes`.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = Some(bytes);
        self
    }

    /// How long a new connection has to complete the HTTP upgrade (standalone) and then send `hello`
    /// (default 10 s). A connection that does not is closed with 4001.
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    /// After this much silence from the client the server sends a `ping` frame. Default: the engine's
    /// `ping_interval_ms`.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = Some(interval);
        self
    }

    /// A client silent for this long is closed with 4002. Default: the engine's `idle_timeout_ms`.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// How long one write to the socket may stall before the client is treated as a slow consumer and closed
    /// with 4008. Default: the idle timeout. (A client that falls behind by more than the engine's
    /// `outbound_queue_bytes` is closed sooner, by the engine.)
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = Some(timeout);
        self
    }

    /// How long the server waits for its close frame to be written and for the client to end the connection
    /// before dropping it (default 5 s). A close frame that cannot be written within 1 s (or this timeout, if
    /// shorter) — a client that stopped reading — drops the connection at once.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The settings in force for connections of `engine`.
    pub(crate) fn resolve(&self, engine: &Engine) -> Settings {
        let limits = engine.limits();
        let max_frame = self.max_frame_bytes.unwrap_or(limits.max_frame_bytes).max(1);
        let ping_interval = self
            .ping_interval
            .unwrap_or(Duration::from_millis(limits.ping_interval_ms));
        let idle_timeout = self
            .idle_timeout
            .unwrap_or(Duration::from_millis(limits.idle_timeout_ms));
        // tungstenite panics unless max_write_buffer_size > write_buffer_size: keep the write buffer below it.
        let write_buffer_size = self.write_buffer_size.min(usize::MAX / 2);
        let websocket = WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size.max(256))
            .write_buffer_size(write_buffer_size)
            .max_write_buffer_size(usize::MAX)
            .max_frame_size(Some(max_frame))
            .max_message_size(Some(max_frame));
        Settings {
            path: self.path.clone(),
            websocket,
            write_buffer_size,
            hello_timeout: self.hello_timeout,
            ping_interval: ping_interval.max(Duration::from_millis(1)),
            idle_timeout: idle_timeout.max(Duration::from_millis(1)),
            write_timeout: self
                .write_timeout
                .unwrap_or(idle_timeout)
                .max(Duration::from_millis(1)),
            close_timeout: self.close_timeout,
            metrics: TransportMetrics::new("ws"),
        }
    }
}

/// [`WsConfig`] resolved against an engine's limits: what a connection uses.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) path: Option<String>,
    pub(crate) websocket: WebSocketConfig,
    pub(crate) write_buffer_size: usize,
    pub(crate) hello_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) close_timeout: Duration,
    /// `kf_connections` and the frame counters, `transport="ws"`.
    pub(crate) metrics: TransportMetrics,
}
