//! A fault-injecting TCP proxy under test control.
//!
//! [`Proxy::start`] listens on `127.0.0.1:0` and forwards every accepted connection to an upstream address
//! (which [`Proxy::set_upstream`] can change, e.g. to a restarted server's new port). Each connection can be
//! hurt in four ways, alone or together:
//!
//! | Fault | What the proxy does | What the client sees |
//! |---|---|---|
//! | **cut** | closes both sides at once | the connection ends (EOF / reset), like a dropped network |
//! | **blackhole** | stops forwarding both ways without closing; after [`Plan::blackhole_hold`] it drops both sides, as a kernel whose retransmissions time out would | silence: only the protocol's heartbeat rules can tell the connection is dead |
//! | **delay** | holds every chunk for a latency before writing it (pipelined: throughput is kept) | a slow network |
//! | **slice** | writes every chunk one byte at a time | every frame split across many TCP segments |
//!
//! Faults are injected by a [`Plan`] set globally with [`Proxy::set_plan`], drawn from a seeded RNG (latency and
//! slicing per connection; a cut or a blackhole at the end of random 100–1000 ms windows); or by hand, per connection
//! ([`Proxy::connections`], [`Connection::cut`], [`Connection::blackhole`], [`Connection::set_delay`],
//! [`Connection::set_slice`]) or for all at once ([`Proxy::cut_all`], [`Proxy::blackhole_all`]). [`Proxy::stats`]
//! counts what was injected.
//!
//! ```no_run
//! # async fn run(server: std::net::SocketAddr) -> std::io::Result<()> {
//! use kf_proof::proxy::{Plan, Proxy};
//!
//! let proxy = Proxy::start(server, 7).await?;
//! proxy.set_plan(Plan::mixed());
//! // Clients connect to proxy.addr() instead of the server.
//! # let _ = proxy.addr();
//! # Ok(()) }
//! ```
//!
//! The draws are determined by the seed and the order in which connections are accepted and windows end; the
//! moments at which traffic meets a fault depend on scheduling, so a suite that uses the proxy must check
//! outcomes (nothing lost, nothing twice, order kept), not timings.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the proxy tries to reach the upstream for a new connection before it closes the client's side.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Most chunks one direction of a connection holds while they wait out their delay; beyond it the proxy stops
/// reading that side (back-pressure, as a real network's window).
const MAX_QUEUED_CHUNKS: usize = 64;

/// The faults drawn for each new connection. Delay and slicing are drawn once per connection. Cut and blackhole
/// are drawn per window: a connection draws a time in [`Plan::fault_after`] and, with the probabilities
/// [`Plan::cut`] and [`Plan::blackhole`], what strikes then; if nothing does, it draws the next window at that
/// moment — so a long-lived connection is hit again and again (on average every `fault_after` mean ÷
/// (`cut` + `blackhole`)), not just in its first second.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Probability that a connection is cut at the end of a window.
    pub cut: f64,
    /// Probability that a connection is blackholed at the end of a window.
    pub blackhole: f64,
    /// The length of a window (uniform in the range): when a drawn cut or blackhole strikes.
    pub fault_after: Range<Duration>,
    /// Probability that a connection gets latency, drawn uniformly from [`Plan::delay_by`].
    pub delay: f64,
    /// The latency range of a delayed connection (each direction).
    pub delay_by: Range<Duration>,
    /// Probability that a connection's writes are sliced into 1-byte pieces (both directions).
    pub slice: f64,
    /// How long a blackholed connection stays open (silent) before the proxy drops both sides.
    pub blackhole_hold: Duration,
}

impl Plan {
    /// No faults: the proxy forwards faithfully.
    pub fn none() -> Plan {
        Plan {
            cut: 0.0,
            blackhole: 0.0,
            fault_after: Duration::from_millis(100)..Duration::from_millis(1000),
            delay: 0.0,
            delay_by: Duration::from_millis(5)..Duration::from_millis(50),
            slice: 0.0,
            blackhole_hold: Duration::from_secs(5),
        }
    }

    /// Every fault kind: windows of 100–1000 ms ending in a cut with probability 35 % and a blackhole with 10 %
    /// (a connection lives about 1.2 s on average), 25 % of connections delayed by 5–50 ms, 15 % sliced into
    /// 1-byte writes; blackholes held 5 s.
    pub fn mixed() -> Plan {
        Plan {
            cut: 0.35,
            blackhole: 0.10,
            delay: 0.25,
            slice: 0.15,
            ..Plan::none()
        }
    }
}

impl Default for Plan {
    /// [`Plan::none`].
    fn default() -> Self {
        Plan::none()
    }
}

/// What the proxy did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections whose upstream could not be reached (closed at once).
    pub refused: u64,
    /// Cuts injected (planned ones that struck while the connection was open, and manual ones).
    pub cuts: u64,
    /// Blackholes injected.
    pub blackholes: u64,
    /// Connections that were given latency.
    pub delayed: u64,
    /// Connections whose writes were sliced.
    pub sliced: u64,
    /// Bytes forwarded (both directions).
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    cuts: AtomicU64,
    blackholes: AtomicU64,
    delayed: AtomicU64,
    sliced: AtomicU64,
    bytes: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a connection's pumps are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Blackhole,
    Cut,
}

/// The live settings of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    mode: Mode,
    delay: Duration,
    slice: bool,
}

#[derive(Debug)]
struct Shared {
    upstream: Mutex<SocketAddr>,
    plan: Mutex<Plan>,
    rng: Mutex<ChaCha8Rng>,
    connections: Mutex<HashMap<u64, Connection>>,
    counters: Counters,
    next_id: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves nothing half-changed: keep going.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fault-injecting TCP proxy on `127.0.0.1` (see the [module documentation](self)). Dropping it stops accepting;
/// connections already open end with their clients or upstream.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One proxied connection, to hurt by hand. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Connection {
    id: u64,
    peer: SocketAddr,
    control: watch::Sender<Settings>,
    shared: Arc<Shared>,
}

impl Connection {
    /// The proxy's number for this connection (accept order, from 0).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Closes both sides now.
    pub fn cut(&self) {
        self.set_mode(Mode::Cut);
    }

    /// Stops forwarding both ways without closing (dropped after the plan's `blackhole_hold`).
    pub fn blackhole(&self) {
        self.set_mode(Mode::Blackhole);
    }

    /// Holds every chunk for `delay` before writing it (zero: none). Applies to chunks read from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.control.send_modify(|settings| settings.delay = delay);
    }

    /// Writes chunks one byte at a time (or whole again).
    pub fn set_slice(&self, slice: bool) {
        self.control.send_modify(|settings| settings.slice = slice);
    }

    fn set_mode(&self, mode: Mode) {
        let mut changed = false;
        self.control.send_if_modified(|settings| {
            if settings.mode == Mode::Forward {
                settings.mode = mode;
                changed = true;
            }
            changed
        });
        if changed {
            let counters = &self.shared.counters;
            Counters::bump(match mode {
                Mode::Cut => &counters.cuts,
                _ => &counters.blackholes,
            });
        }
    }
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`, with no faults until [`Proxy::set_plan`]; `seed` seeds
    /// the RNG that draws each connection's faults.
    pub async fn start(upstream: SocketAddr, seed: u64) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            plan: Mutex::new(Plan::none()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            connections: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            next_id: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy { addr, shared, accept })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forwards new connections to `upstream` from now on (open ones keep theirs).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// The faults drawn for connections accepted from now on.
    pub fn set_plan(&self, plan: Plan) {
        *lock(&self.shared.plan) = plan;
    }

    /// The open connections, oldest first.
    pub fn connections(&self) -> Vec<Connection> {
        let mut connections: Vec<Connection> = lock(&self.shared.connections).values().cloned().collect();
        connections.sort_by_key(Connection::id);
        connections
    }

    /// Cuts every open connection.
    pub fn cut_all(&self) {
        for connection in self.connections() {
            connection.cut();
        }
    }

    /// Blackholes every open connection.
    pub fn blackhole_all(&self) {
        for connection in self.connections() {
            connection.blackhole();
        }
    }

    /// What was injected so far.
    pub fn stats(&self) -> Stats {
        let counters = &self.shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            accepted: read(&counters.accepted),
            refused: read(&counters.refused),
            cuts: read(&counters.cuts),
            blackholes: read(&counters.blackholes),
            delayed: read(&counters.delayed),
            sliced: read(&counters.sliced),
            bytes: read(&counters.bytes),
        }
    }
}

/// The faults one connection drew when accepted.
#[derive(Debug, Clone, Copy)]
struct Drawn {
    delay: Duration,
    slice: bool,
}

fn between(rng: &mut ChaCha8Rng, range: &Range<Duration>) -> Duration {
    if range.end > range.start {
        rng.random_range(range.clone())
    } else {
        range.start
    }
}

fn draw(shared: &Shared) -> Drawn {
    let plan = lock(&shared.plan).clone();
    let mut rng = lock(&shared.rng);
    let latency = between(&mut rng, &plan.delay_by);
    let delay_roll: f64 = rng.random();
    let slice_roll: f64 = rng.random();
    Drawn {
        delay: if delay_roll < plan.delay {
            latency
        } else {
            Duration::ZERO
        },
        slice: slice_roll < plan.slice,
    }
}

/// The next window of a connection: when it ends, and what strikes then (if anything); and the blackhole hold.
fn draw_window(shared: &Shared) -> (Instant, Option<Mode>, Duration) {
    let plan = lock(&shared.plan).clone();
    let mut rng = lock(&shared.rng);
    let after = between(&mut rng, &plan.fault_after);
    let roll: f64 = rng.random();
    let strike = if roll < plan.cut {
        Some(Mode::Cut)
    } else if roll < plan.cut + plan.blackhole {
        Some(Mode::Blackhole)
    } else {
        None
    };
    (Instant::now() + after, strike, plan.blackhole_hold)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(%error, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        Counters::bump(&shared.counters.accepted);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let drawn = draw(&shared);
        if !drawn.delay.is_zero() {
            Counters::bump(&shared.counters.delayed);
        }
        if drawn.slice {
            Counters::bump(&shared.counters.sliced);
        }
        let (control, _) = watch::channel(Settings {
            mode: Mode::Forward,
            delay: drawn.delay,
            slice: drawn.slice,
        });
        let connection = Connection {
            id,
            peer,
            control,
            shared: shared.clone(),
        };
        lock(&shared.connections).insert(id, connection.clone());
        let shared = shared.clone();
        tokio::spawn(async move {
            run_connection(client, &connection).await;
            lock(&shared.connections).remove(&id);
        });
    }
}

async fn run_connection(client: TcpStream, connection: &Connection) {
    let shared = &connection.shared;
    let upstream = *lock(&shared.upstream);
    let server = match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(server)) => server,
        _ => {
            Counters::bump(&shared.counters.refused);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut upward = tokio::spawn(pump(
        client_read,
        server_write,
        connection.control.subscribe(),
        shared.clone(),
    ));
    let mut downward = tokio::spawn(pump(
        server_read,
        client_write,
        connection.control.subscribe(),
        shared.clone(),
    ));
    let mut settings = connection.control.subscribe();
    let (mut strike_at, mut strike, mut hold) = draw_window(shared);
    let (mut up_done, mut down_done) = (false, false);
    let end = loop {
        if up_done && down_done {
            break Mode::Forward;
        }
        let mode = settings.borrow_and_update().mode;
        if mode != Mode::Forward {
            break mode;
        }
        tokio::select! {
            _ = &mut upward, if !up_done => up_done = true,
            _ = &mut downward, if !down_done => down_done = true,
            changed = settings.changed() => if changed.is_err() { break Mode::Cut },
            () = tokio::time::sleep_until(strike_at) => match strike {
                Some(Mode::Cut) => connection.cut(),
                Some(_) => connection.blackhole(),
                None => (strike_at, strike, hold) = draw_window(shared),
            }
        }
    };
    if end == Mode::Blackhole {
        // The pumps saw the mode and went silent; keep both sockets open (unread) for the hold, then drop them.
        tokio::time::sleep(hold).await;
    }
    upward.abort();
    downward.abort();
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Forwards one direction: reads chunks, holds each for the connection's delay, writes it (whole or byte by
/// byte). Goes silent for good on a blackhole; returns at the end of the stream (after passing the EOF on) or on
/// an error.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut settings: watch::Receiver<Settings>,
    shared: Arc<Shared>,
) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buffer = vec![0u8; 16 * 1024];
    let mut eof = false;
    loop {
        let current = *settings.borrow_and_update();
        match current.mode {
            Mode::Forward => {}
            Mode::Blackhole => std::future::pending::<()>().await,
            Mode::Cut => return,
        }
        if eof && queue.is_empty() {
            let _ = to.shutdown().await;
            return;
        }
        let due = queue.front().map(|(due, _)| *due);
        tokio::select! {
            read = from.read(&mut buffer), if !eof && queue.len() < MAX_QUEUED_CHUNKS => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => queue.push_back((Instant::now() + current.delay, buffer[..n].to_vec())),
            },
            () = sleep_until(due) => {
                if let Some((_, chunk)) = queue.pop_front() {
                    let written = if current.slice {
                        write_sliced(&mut to, &chunk, &mut settings).await
                    } else {
                        to.write_all(&chunk).await.is_ok()
                    };
                    if !written {
                        return;
                    }
                    shared.counters.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
            changed = settings.changed() => if changed.is_err() { return },
        }
    }
}

/// Writes `chunk` one byte per write (each its own TCP segment: the sockets have `TCP_NODELAY`); stops early when
/// the connection stops forwarding. Whether it was all written.
async fn write_sliced(
    to: &mut OwnedWriteHalf,
    chunk: &[u8],
    settings: &mut watch::Receiver<Settings>,
) -> bool {
    for byte in chunk {
        if settings.borrow().mode != Mode::Forward {
            return false;
        }
        if to.write_all(std::slice::from_ref(byte)).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, text: &[u8]) -> Vec<u8> {
        stream.write_all(text).await.expect("write");
        let mut back = vec![0; text.len()];
        stream.read_exact(&mut back).await.expect("read");
        back
    }

    #[tokio::test]
    async fn forwards_faithfully_without_a_plan() {
        let proxy = Proxy::start(echo_server().await, 1).await.expect("proxy");
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut stream, b"hello").await, b"hello");
        assert_eq!(proxy.stats().accepted, 1);
        assert_eq!(proxy.connections().len(), 1);
    }

    #[tokio::test]
    async fn slices_and_delays_keep_the_bytes() {
        let proxy = Proxy::start(echo_server().await, 2).await.expect("proxy");
        proxy.set_plan(Plan {
            slice: 1.0,
            delay: 1.0,
            ..Plan::none()
        });
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        let text: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(round_trip(&mut stream, &text).await, text);
        let stats = proxy.stats();
        assert_eq!((stats.sliced, stats.delayed), (1, 1));
    }

    #[tokio::test]
    async fn a_cut_ends_the_connection() {
        let proxy = Proxy::start(echo_server().await, 3).await.expect("proxy");
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut stream, b"x").await, b"x");
        proxy.cut_all();
        let mut buffer = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("the cut is seen");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(proxy.stats().cuts, 1);
    }

    #[tokio::test]
    async fn a_blackhole_is_silent_then_dropped() {
        let proxy = Proxy::start(echo_server().await, 4).await.expect("proxy");
        proxy.set_plan(Plan {
            blackhole_hold: Duration::from_millis(300),
            ..Plan::none()
        });
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut stream, b"x").await, b"x");
        proxy.blackhole_all();
        stream.write_all(b"lost").await.expect("write");
        let mut buffer = [0u8; 8];
        let silent = tokio::time::timeout(Duration::from_millis(150), stream.read(&mut buffer)).await;
        assert!(
            silent.is_err(),
            "nothing comes back through a blackhole: {silent:?}"
        );
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("dropped after the hold");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(proxy.stats().blackholes, 1);
    }

    #[tokio::test]
    async fn planned_cuts_strike_within_the_window() {
        let proxy = Proxy::start(echo_server().await, 5).await.expect("proxy");
        proxy.set_plan(Plan {
            cut: 1.0,
            fault_after: Duration::from_millis(100)..Duration::from_millis(200),
            ..Plan::none()
        });
        let started = Instant::now();
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        let mut buffer = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("cut");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(proxy.stats().cuts, 1);
    }
}
