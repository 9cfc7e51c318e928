//! `idle-ws` and `idle-sse`: server memory per idle, authenticated session (a WebSocket after `welcome`, or an
//! SSE stream after `following`), next to a baseline of bare TCP sockets each held by a tokio task. The servers
//! run in child processes (`serve-ws`, `serve-sse`, `serve-tcp`) so that the client side's sockets count against
//! the parent's open-file limit, not the server's, and so that the server's RSS is its own.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{SinkExt, StreamExt, TryStreamExt};
use kf_core::Engine;
use kf_core::auth::{Identity, SignedTokens};
use kf_core::clock::SystemClock;
use kf_core::limits::Limits;
use kf_core::model::{TenantId, Timestamp, Visitor, VisitorId};
use kf_core::store::{Directory, MemoryStore};
use kf_transport_ws::WsConfig;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::sys::{self, Machine, ProcMemory, median, open_files_limit, proc_memory, thousands};

/// The environment variable that hands the token signing key (hex) to the server child.
const KEY_VAR: &str = "KF_BENCH_KEY";
/// The tenant every benchmark visitor belongs to.
const TENANT: &str = "bench";
/// How long one connection may take to be established (TCP, upgrade, hello, welcome).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a child has to start and report its port.
const CHILD_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Open files kept free besides the connections (listener, stdio, runtime, /proc reads).
const FD_HEADROOM: u64 = 64;

/// The transport whose idle sessions are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// kf-transport-ws: an upgraded WebSocket after `hello`/`welcome`.
    Ws,
    /// kf-transport-sse: a `GET /events` stream that follows the visitor's conversations.
    Sse,
    /// Baseline for `Sse`: a bare axum SSE response (one event, then idle with axum's keep-alive), no kf.
    AxumSse,
}

impl Transport {
    fn child(self) -> &'static str {
        match self {
            Transport::Ws => "serve-ws",
            Transport::Sse => "serve-sse",
            Transport::AxumSse => "serve-axum-sse",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Transport::Ws => {
                "kf-bench serve-ws child (Engine on MemoryStore, kf-transport-ws serve(), WsConfig::default())"
            }
            Transport::Sse => {
                "kf-bench serve-sse child (Engine on MemoryStore, kf-transport-sse serve(), SseConfig::default())"
            }
            Transport::AxumSse => {
                "kf-bench serve-axum-sse child (a bare axum Sse response with KeepAlive, no kf)"
            }
        }
    }
}

/// Options of `kf-bench idle-ws` and `idle-sse`.
#[derive(Debug, clap::Args)]
pub struct IdleArgs {
    /// Idle connections to hold; a comma-separated list measures each.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub connections: Vec<usize>,
    /// Runs per connection count (a fresh server process each); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Connections being set up at once, at most.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Let each `hello` create its visitor record in the store (as a first visit does) instead of creating the
    /// records before the "before" reading; the difference is the store's cost per visitor, not the session's.
    #[arg(long)]
    pub fresh_visitors: bool,
    /// The server's ping interval (default: the engine's; for SSE the heartbeat, default 15 s). WebSocket clients
    /// answer every `ping` with `pong`.
    #[arg(long)]
    pub ping_ms: Option<u64>,
    /// Also read the server's memory once every connection has been through a ping/pong round (waits one ping
    /// interval more).
    #[arg(long)]
    pub after_ping: bool,
    /// Pause before each memory reading, so the server finishes what it was doing.
    #[arg(long, default_value_t = 2_000)]
    pub settle_ms: u64,
    /// The server's WebSocket read buffer (`WsConfig::read_buffer_size`); default: `WsConfig::default()`'s.
    #[arg(long)]
    pub ws_read_buffer: Option<usize>,
    /// Rounds of the leak check: after the first round's sessions close, the same number is opened again (and
    /// closed) this many times, and the server's memory read with each round open.
    #[arg(long, default_value_t = 1)]
    pub leak_rounds: usize,
    /// Skip the bare TCP baseline.
    #[arg(long)]
    pub no_baseline: bool,
}

/// Options of the hidden `serve-ws` and `serve-tcp` subcommands (the server children).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where to listen (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Visitor records `v0`..`v{N-1}` of tenant `bench` to create before reporting ready (`serve-ws` only).
    #[arg(long, default_value_t = 0)]
    pub prepopulate: usize,
    /// The ping interval the engine announces and the transport uses (the heartbeat for `serve-sse`).
    #[arg(long)]
    pub ping_ms: Option<u64>,
    /// `WsConfig::read_buffer_size` (`serve-ws` only).
    #[arg(long)]
    pub read_buffer: Option<usize>,
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    ensure!(text.len().is_multiple_of(2), "odd-length hex key");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).context("invalid hex key"))
        .collect()
}

fn random_key() -> Result<Vec<u8>> {
    let mut key = vec![0_u8; 32];
    let mut urandom = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut urandom, &mut key).context("cannot read /dev/urandom")?;
    Ok(key)
}

/// Ends this child process when its parent closes our stdin (also when the parent dies), so no server is left
/// behind.
fn exit_with_parent() {
    tokio::spawn(async {
        let mut stdin = tokio::io::stdin();
        let mut sink = [0_u8; 64];
        while let Ok(n) = stdin.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
        std::process::exit(0);
    });
}

fn check_loopback(addr: SocketAddr) -> Result<()> {
    ensure!(
        addr.ip().is_loopback(),
        "the benchmark servers listen on loopback only, not {addr}"
    );
    Ok(())
}

/// `serve-ws` / `serve-sse`: a kf engine on a `MemoryStore` behind the transport's standalone server.
pub async fn serve_session(args: ServeArgs, transport: Transport) -> Result<()> {
    check_loopback(args.addr)?;
    let key = unhex(&std::env::var(KEY_VAR).with_context(|| format!("{KEY_VAR} is not set"))?)?;
    let tokens = SignedTokens::new(&key, Arc::new(SystemClock)).context("weak signing key")?;
    let store = Arc::new(MemoryStore::new());
    let before = proc_memory(std::process::id())?;
    let tenant = TenantId::new(TENANT)?;
    for i in 0..args.prepopulate {
        store
            .put_visitor(Visitor::new(
                tenant.clone(),
                VisitorId::new(format!("v{i}"))?,
                Timestamp::now(),
            ))
            .await?;
    }
    let after = proc_memory(std::process::id())?;
    let mut limits = Limits::default();
    if let Some(ping_ms) = args.ping_ms {
        limits.ping_interval_ms = ping_ms.max(1);
        limits.idle_timeout_ms = limits.idle_timeout_ms.max(ping_ms.saturating_mul(3));
    }
    let engine = Engine::builder(store, Arc::new(tokens))
        .limits(limits)
        .build()
        .await
        .context("cannot start the engine")?;
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let port = listener.local_addr()?.port();
    exit_with_parent();
    println!(
        "ready port={port} visitors={} visitors_before_kib={} visitors_after_kib={}",
        args.prepopulate, before.rss_kib, after.rss_kib
    );
    match transport {
        Transport::Ws => {
            let mut config = WsConfig::default();
            if let Some(bytes) = args.read_buffer {
                config = config.read_buffer_size(bytes);
            }
            kf_transport_ws::serve(listener, engine, config)
                .await
                .context("the WebSocket server failed")
        }
        Transport::AxumSse => {
            use axum::response::sse::{Event, KeepAlive, Sse};
            let app = axum::Router::new().route(
                "/events",
                axum::routing::get(|| async {
                    let first = futures::stream::once(async {
                        Ok::<_, std::convert::Infallible>(Event::default().data(r#"{"type":"following"}"#))
                    });
                    Sse::new(first.chain(futures::stream::pending())).keep_alive(KeepAlive::new())
                }),
            );
            axum::serve(listener, app).await.context("the axum server failed")
        }
        Transport::Sse => {
            let mut config = kf_transport_sse::SseConfig::default();
            if let Some(ping_ms) = args.ping_ms {
                config = config.heartbeat(Duration::from_millis(ping_ms.max(1)));
            }
            kf_transport_sse::serve(listener, engine, config)
                .await
                .context("the SSE server failed")
        }
    }
}

/// `serve-tcp`: the baseline. Accepts TCP connections and holds each in a task that writes one byte (so the
/// client knows it was accepted) and then waits for the client to hang up.
pub async fn serve_tcp(args: ServeArgs) -> Result<()> {
    check_loopback(args.addr)?;
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let port = listener.local_addr()?.port();
    exit_with_parent();
    println!("ready port={port} visitors=0 visitors_before_kib=0 visitors_after_kib=0");
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("serve-tcp: accept failed: {error}");
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            if stream.write_all(b"!").await.is_err() {
                return;
            }
            let mut byte = [0_u8; 1];
            while let Ok(1) = stream.read(&mut byte).await {}
        });
    }
}

/// A server child and the port it listens on.
struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    /// RSS growth while the child created its visitor records, in KiB.
    visitors_kib: i64,
}

impl Server {
    async fn spawn(
        kind: &str,
        key: &str,
        prepopulate: usize,
        ping_ms: Option<u64>,
        read_buffer: Option<usize>,
    ) -> Result<Server> {
        let exe = std::env::current_exe().context("cannot find the benchmark's own executable")?;
        let mut command = Command::new(exe);
        command
            .arg(kind)
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--prepopulate")
            .arg(prepopulate.to_string())
            .env(KEY_VAR, key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(ping_ms) = ping_ms {
            command.arg("--ping-ms").arg(ping_ms.to_string());
        }
        if let Some(bytes) = read_buffer {
            command.arg("--read-buffer").arg(bytes.to_string());
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start the {kind} child"))?;
        let pid = child.id().context("the child has no pid")?;
        let stdout = child.stdout.take().context("the child's stdout is not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = timeout(CHILD_START_TIMEOUT, lines.next_line())
            .await
            .with_context(|| format!("the {kind} child did not report ready in time"))?
            .with_context(|| format!("cannot read the {kind} child's output"))?
            .with_context(|| format!("the {kind} child exited before it was ready"))?;
        let field = |name: &str| -> Result<u64> {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .with_context(|| format!("no {name} in the {kind} child's ready line: {line:?}"))?
                .parse::<u64>()
                .with_context(|| format!("bad {name} in {line:?}"))
        };
        let port = u16::try_from(field("port")?).context("port out of range")?;
        let visitors_kib = signed_kib(field("visitors_after_kib")?, field("visitors_before_kib")?);
        Ok(Server {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            visitors_kib,
        })
    }

    fn memory(&self) -> Result<ProcMemory> {
        proc_memory(self.pid)
    }

    async fn stop(mut self) -> Result<()> {
        self.child.kill().await.context("cannot stop the server child")?;
        Ok(())
    }
}

/// Opens an authenticated SSE stream (`GET /events`, read up to `following`) and leaves it idle in a task that
/// reads (and drops) heartbeats, until `shutdown` fires.
async fn open_stream(
    addr: SocketAddr,
    token: String,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let mut stream = TcpStream::connect(addr).await.context("TCP connect failed")?;
    stream.set_nodelay(true)?;
    let request =
        format!("GET /events?token={token} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .context("cannot send the request")?;
    let mut seen = Vec::with_capacity(2048);
    let mut buffer = [0_u8; 1024];
    const FOLLOWING: &[u8] = br#""type":"following""#;
    while !seen.windows(FOLLOWING.len()).any(|w| w == FOLLOWING) {
        let n = stream
            .read(&mut buffer)
            .await
            .context("read failed before `following`")?;
        if n == 0 {
            bail!("closed before `following`: {}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buffer[..n]);
        ensure!(
            seen.starts_with(b"HTTP/1.1 200") || seen.len() < 12,
            "refused: {}",
            String::from_utf8_lossy(&seen)
        );
    }
    Ok(tokio::spawn(async move {
        let mut buffer = [0_u8; 256];
        loop {
            tokio::select! {
                read = stream.read(&mut buffer) => match read {
                    Ok(n) if n > 0 => {}
                    _ => break,
                },
                _ = shutdown.changed() => break,
            }
        }
    }))
}

/// Opens an authenticated WebSocket session (upgrade, `hello`, `welcome`) and leaves it idle in a task that
/// answers the server's pings, until `shutdown` fires.
async fn open_session(
    addr: SocketAddr,
    token: String,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let stream = TcpStream::connect(addr).await.context("TCP connect failed")?;
    stream.set_nodelay(true)?;
    // Small client buffers: the client's memory is not measured, but 19,000 of tungstenite's 128 KiB
    // default read buffers would be 2.4 GiB.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(format!("ws://{addr}/"), stream, Some(config))
            .await
            .context("WebSocket handshake failed")?;
    let hello =
        serde_json::json!({"type": "hello", "v": kf_core::protocol::PROTOCOL_VERSION, "token": token});
    ws.send(Message::text(hello.to_string()))
        .await
        .context("cannot send hello")?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: serde_json::Value = serde_json::from_str(text.as_str()).context("bad frame")?;
                match frame.get("type").and_then(|t| t.as_str()) {
                    Some("welcome") => break,
                    Some("error") => bail!("hello refused: {text}"),
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error).context("read failed before welcome"),
            None => bail!("closed before welcome"),
        }
    }
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(Message::Text(text))) if text.as_str().contains(r#""type":"ping""#) => {
                        let pong = Message::text(r#"{"type":"pong"}"#);
                        if ws.send(pong).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                _ = shutdown.changed() => break,
            }
        }
    }))
}

/// Opens a TCP connection and waits for the server's byte that says a task holds it.
async fn open_tcp(addr: SocketAddr) -> Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.context("TCP connect failed")?;
    let mut byte = [0_u8; 1];
    stream.read_exact(&mut byte).await.context("no accept byte")?;
    Ok(stream)
}

/// Runs `open(i)` for `0..n` with at most `concurrency` in flight, each bounded by [`CONNECT_TIMEOUT`], the
/// whole bounded too; fails on the first failure.
/// Opens `n` authenticated visitor sessions (`v0`, `v1`, …) that stay idle until `shutdown` turns true.
async fn open_visitors(
    transport: Transport,
    addr: SocketAddr,
    tokens: &SignedTokens,
    tenant: &TenantId,
    n: usize,
    concurrency: usize,
    shutdown: &watch::Receiver<bool>,
) -> Result<(Vec<JoinHandle<()>>, Duration)> {
    let open = |i: usize| {
        let (tenant, shutdown) = (tenant.clone(), shutdown.clone());
        async move {
            let identity = Identity::visitor(tenant, VisitorId::new(format!("v{i}"))?);
            let token = tokens.issue(&identity, Duration::from_secs(3600));
            match transport {
                Transport::Ws => open_session(addr, token, shutdown).await,
                Transport::Sse | Transport::AxumSse => open_stream(addr, token, shutdown).await,
            }
        }
    };
    open_all(n, concurrency, open).await
}

async fn open_all<T, F, Fut>(n: usize, concurrency: usize, open: F) -> Result<(Vec<T>, Duration)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let overall = Duration::from_secs(60) + Duration::from_millis(n as u64 * 5);
    let all = futures::stream::iter(0..n)
        .map(|i| {
            let attempt = open(i);
            async move {
                timeout(CONNECT_TIMEOUT, attempt)
                    .await
                    .with_context(|| format!("connection {i} not established within {CONNECT_TIMEOUT:?}"))?
                    .with_context(|| format!("connection {i} failed"))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<T>>();
    let opened = timeout(overall, all)
        .await
        .with_context(|| format!("{n} connections not established within {overall:?}"))??;
    Ok((opened, start.elapsed()))
}

/// One run's readings of the server child.
#[derive(Debug)]
struct Reading {
    connections: usize,
    setup: Duration,
    visitors_kib: i64,
    before: ProcMemory,
    established: ProcMemory,
    after_ping: Option<ProcMemory>,
    after_close: ProcMemory,
    /// With the same number of sessions open again in the same server, once per later round (leak check).
    reopened: Vec<ProcMemory>,
    kernel_pages: Option<i64>,
}

impl Reading {
    fn per_connection(&self, kib_after: u64, kib_before: u64) -> f64 {
        (kib_after as f64 - kib_before as f64) * 1024.0 / self.connections as f64
    }

    fn rss(&self) -> f64 {
        self.per_connection(self.established.rss_kib, self.before.rss_kib)
    }

    fn anon(&self) -> f64 {
        self.per_connection(self.established.anon_kib, self.before.anon_kib)
    }

    fn rss_after_ping(&self) -> Option<f64> {
        self.after_ping
            .map(|m| self.per_connection(m.rss_kib, self.before.rss_kib))
    }

    fn retained(&self) -> f64 {
        self.per_connection(self.after_close.rss_kib, self.before.rss_kib)
    }

    /// Growth of the second round over the memory held after the first one closed: about zero when the
    /// memory of closed sessions is reused.
    fn second_round(&self) -> Option<f64> {
        self.reopened
            .first()
            .map(|m| self.per_connection(m.rss_kib, self.established.rss_kib))
    }

    /// Each later round's RSS with its sessions open, over the first round's, per connection.
    fn rounds(&self) -> Vec<f64> {
        self.reopened
            .iter()
            .map(|m| self.per_connection(m.rss_kib, self.established.rss_kib))
            .collect()
    }

    fn kernel(&self) -> Option<f64> {
        self.kernel_pages
            .map(|pages| pages as f64 * 4096.0 / self.connections as f64)
    }

    fn describe(&self) -> String {
        let mut out = format!(
            "{} B/conn RSS ({} B anon), set up in {:.1} s; RSS {} -> {} KiB",
            thousands(self.rss()),
            thousands(self.anon()),
            self.setup.as_secs_f64(),
            thousands(self.before.rss_kib as f64),
            thousands(self.established.rss_kib as f64),
        );
        if let Some(after_ping) = self.rss_after_ping() {
            let _ = write!(out, "; after a ping round {} B/conn", thousands(after_ping));
        }
        let _ = write!(
            out,
            "; still held after close {} B/conn",
            thousands(self.retained())
        );
        let rounds = self.rounds();
        if !rounds.is_empty() {
            let rounds: Vec<String> = rounds.iter().map(|b| thousands(*b)).collect();
            let _ = write!(
                out,
                "; later rounds of {} sessions open: +{} B/conn over the first",
                self.connections,
                rounds.join(", +")
            );
        }
        if let Some(kernel) = self.kernel() {
            let _ = write!(
                out,
                "; kernel TCP buffer pages (both ends) {} B/conn",
                thousands(kernel)
            );
        }
        out
    }
}

fn signed_kib(after: u64, before: u64) -> i64 {
    after as i64 - before as i64
}

/// One session run: a fresh server child, `n` idle sessions, readings.
async fn ws_run(args: &IdleArgs, n: usize, key: &[u8], transport: Transport) -> Result<Reading> {
    let key_hex = hex(key);
    let prepopulate = if args.fresh_visitors { 0 } else { n };
    let server = Server::spawn(
        transport.child(),
        &key_hex,
        prepopulate,
        args.ping_ms,
        args.ws_read_buffer,
    )
    .await?;
    let result = ws_measure(args, n, key, &server, transport).await;
    server.stop().await?;
    result
}

async fn ws_measure(
    args: &IdleArgs,
    n: usize,
    key: &[u8],
    server: &Server,
    transport: Transport,
) -> Result<Reading> {
    let settle = Duration::from_millis(args.settle_ms);
    let tokens = SignedTokens::new(key, Arc::new(SystemClock)).context("weak signing key")?;
    let tenant = TenantId::new(TENANT)?;
    sleep(settle).await;
    let before = server.memory()?;
    let kernel_before = sys::tcp_kernel_pages();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let addr = server.addr;
    let (holders, setup) = open_visitors(
        transport,
        addr,
        &tokens,
        &tenant,
        n,
        args.concurrency,
        &shutdown_rx,
    )
    .await?;
    sleep(settle).await;
    let established = server.memory()?;
    let kernel_after = sys::tcp_kernel_pages();
    let after_ping = if args.after_ping {
        let ping = Duration::from_millis(args.ping_ms.unwrap_or(Limits::default().ping_interval_ms));
        sleep(ping + settle).await;
        Some(server.memory()?)
    } else {
        None
    };
    let alive = holders.iter().filter(|h| !h.is_finished()).count();
    ensure!(
        alive == n,
        "only {alive} of {n} sessions were still open at the end of the run"
    );
    let _ = shutdown.send(true);
    for holder in holders {
        let _ = timeout(CONNECT_TIMEOUT, holder).await;
    }
    sleep(settle).await;
    let after_close = server.memory()?;
    // Leak check: the same number of sessions again, in the memory the first round freed, `leak_rounds` times.
    let mut reopened = Vec::new();
    for _ in 0..args.leak_rounds {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (holders, _) = open_visitors(
            transport,
            addr,
            &tokens,
            &tenant,
            n,
            args.concurrency,
            &shutdown_rx,
        )
        .await?;
        sleep(settle).await;
        reopened.push(server.memory()?);
        let _ = shutdown.send(true);
        for holder in holders {
            let _ = timeout(CONNECT_TIMEOUT, holder).await;
        }
        sleep(settle).await;
    }
    Ok(Reading {
        connections: n,
        setup,
        visitors_kib: server.visitors_kib,
        before,
        established,
        after_ping,
        after_close,
        reopened,
        kernel_pages: kernel_before
            .zip(kernel_after)
            .map(|(before, after)| signed_kib(after, before)),
    })
}

/// One baseline run: a fresh `serve-tcp` child holding `n` bare sockets, each in a task.
async fn tcp_run(args: &IdleArgs, n: usize) -> Result<Reading> {
    let server = Server::spawn("serve-tcp", "", 0, None, None).await?;
    let settle = Duration::from_millis(args.settle_ms);
    let result = async {
        sleep(settle).await;
        let before = server.memory()?;
        let kernel_before = sys::tcp_kernel_pages();
        let (streams, setup) = open_all(n, args.concurrency, |_| open_tcp(server.addr)).await?;
        sleep(settle).await;
        let established = server.memory()?;
        let kernel_after = sys::tcp_kernel_pages();
        drop(streams);
        sleep(settle).await;
        let after_close = server.memory()?;
        anyhow::Ok(Reading {
            connections: n,
            setup,
            visitors_kib: 0,
            before,
            established,
            after_ping: None,
            after_close,
            reopened: Vec::new(),
            kernel_pages: kernel_before
                .zip(kernel_after)
                .map(|(before, after)| signed_kib(after, before)),
        })
    }
    .await;
    server.stop().await?;
    result
}

pub async fn run(args: IdleArgs, transport: Transport) -> Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let limit = open_files_limit().context("cannot read the open-files limit")?;
    for &n in &args.connections {
        ensure!(n >= 1, "--connections must be at least 1");
        ensure!(
            n as u64 + FD_HEADROOM <= limit,
            "{n} connections need {n} open files in each process plus headroom, but the limit is {limit}"
        );
    }
    Machine::read().print();
    println!(
        "server: {}; \
         baseline: serve-tcp child (tokio listener, one task per socket); tokio multi-thread runtime in both; \
         visitor records {}; open-files limit {limit}",
        transport.describe(),
        if args.fresh_visitors {
            "created by each hello (counted)"
        } else {
            "created before the first reading (not counted)"
        }
    );
    let key = random_key()?;
    let mut rows = Vec::new();
    for &n in &args.connections {
        println!("\n== {n} idle connections, {} runs ==", args.runs);
        let mut ws = Vec::new();
        let mut tcp = Vec::new();
        for r in 1..=args.runs {
            let reading = ws_run(&args, n, &key, transport).await?;
            println!(
                "run {r} kf session: {}  [load {}]",
                reading.describe(),
                sys::load_average()
            );
            ws.push(reading);
            if !args.no_baseline {
                let reading = tcp_run(&args, n).await?;
                println!(
                    "run {r} bare tcp:   {}  [load {}]",
                    reading.describe(),
                    sys::load_average()
                );
                tcp.push(reading);
            }
        }
        let ws_rss = median(&ws.iter().map(Reading::rss).collect::<Vec<_>>());
        let ws_anon = median(&ws.iter().map(Reading::anon).collect::<Vec<_>>());
        let ws_retained = median(&ws.iter().map(Reading::retained).collect::<Vec<_>>());
        let ws_second = median(&ws.iter().filter_map(Reading::second_round).collect::<Vec<_>>());
        let ws_ping = ws.iter().filter_map(Reading::rss_after_ping).collect::<Vec<_>>();
        let tcp_rss = median(&tcp.iter().map(Reading::rss).collect::<Vec<_>>());
        let overhead = median(
            &ws.iter()
                .zip(&tcp)
                .map(|(w, t)| w.rss() - t.rss())
                .collect::<Vec<_>>(),
        );
        let visitors = median(
            &ws.iter()
                .map(|r| r.visitors_kib as f64 * 1024.0 / n as f64)
                .collect::<Vec<_>>(),
        );
        print!(
            "median: kf session {} B/conn RSS ({} B anon)",
            thousands(ws_rss),
            thousands(ws_anon)
        );
        if !ws_ping.is_empty() {
            print!(", after a ping round {} B/conn", thousands(median(&ws_ping)));
        }
        print!(
            ", held after close {} B/conn, second round with sessions open +{} B/conn over the first",
            thousands(ws_retained),
            thousands(ws_second)
        );
        if !args.fresh_visitors {
            print!(
                "; visitor records (created before, not counted) {} B each",
                thousands(visitors)
            );
        }
        if !tcp.is_empty() {
            print!(
                "; bare TCP socket + task {} B/conn; kf above the bare socket {} B/conn",
                thousands(tcp_rss),
                thousands(overhead)
            );
        }
        println!();
        rows.push((n, ws_rss, ws_anon, tcp_rss, overhead));
    }
    println!(
        "\nsummary (medians of {} runs, bytes of server RSS per idle connection):",
        args.runs
    );
    println!("| connections | kf session | kf session (anon) | bare TCP + task | kf above bare |");
    println!("|---:|---:|---:|---:|---:|");
    for (n, ws_rss, ws_anon, tcp_rss, overhead) in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            thousands(n as f64),
            thousands(ws_rss),
            thousands(ws_anon),
            thousands(tcp_rss),
            thousands(overhead)
        );
    }
    println!("load average at the end: {}", sys::load_average());
    Ok(())
}
