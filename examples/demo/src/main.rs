//! kf demo server: visitor page, agent page, SQLite store.
//!
//! `cargo run -p kf-demo -- --addr 127.0.0.1:8080 --data ./data`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kf_demo::{AuthSettings, DEMO_ADMIN, DEMO_AGENTS, DEMO_SUPERVISOR, Demo, GROUP, TENANT, WidgetSettings};
use tracing_subscriber::EnvFilter;

/// kf demo server: a visitor page and an agent page talking over the kf WebSocket protocol, stored in SQLite.
#[derive(Debug, Parser)]
#[command(name = "kf-demo", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Directory for the SQLite database and the token signing key (created if missing).
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// An origin whose pages may embed the widget (`http://127.0.0.1:5555`, `https://*.shop.example`); repeat
    /// for more. The demo's own pages are always allowed.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// The secret with which the embedding site signs its users' ids (`user_hash`, hex HMAC-SHA256), so that a
    /// logged-in user is the same visitor everywhere. Also read from KF_IDENTITY_SECRET.
    #[arg(long, env = "KF_IDENTITY_SECRET", hide_env_values = true)]
    identity_secret: Option<String>,
    /// Deliver every event of tenant `demo` as webhooks (kf-webhooks) to this URL; the state is kept in
    /// `<data>/webhooks.sqlite3`.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// The webhooks' signing secret (default: the one stored with the subscription, else a new random one,
    /// printed at start-up). Also read from KF_WEBHOOK_SECRET.
    #[arg(long, env = "KF_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// A key of kf's own tokens, `ID:FILE` (the file holds 32 random bytes, made if missing); repeat for a key
    /// rotation: the first signs new tokens, the others are still accepted. Default: `<data>/signing.key`
    /// without an id (name it here, e.g. `legacy:data/signing.key`, to keep its tokens valid after a rotation).
    #[arg(long = "token-key", value_name = "ID:FILE")]
    token_keys: Vec<String>,
    /// A key id whose tokens are refused from now on (the end of a rotation); repeat for more.
    #[arg(long = "retired-key", value_name = "ID")]
    retired_keys: Vec<String>,
    /// Also accept the JWTs of another issuer, as this JSON file says (kf-auth-jwt's `JwtConfig`: issuer,
    /// audience, keys or JWKS, leeway, claims).
    #[arg(long = "jwt-config", value_name = "FILE")]
    jwt_config: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C: how many seconds to wait for live connections to be closed and commits in flight
    /// to finish before the store is closed anyway.
    #[arg(long, value_name = "SECONDS", default_value_t = kf_demo::SHUTDOWN_GRACE.as_secs())]
    grace: u64,
}

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Demo(#[from] kf_demo::DemoError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("webhooks: {0}")]
    Webhooks(#[from] kf_webhooks::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kf-demo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), MainError> {
    let widget = WidgetSettings {
        allowed_origins: args.allowed_origins,
        identity_secret: args.identity_secret,
    };
    let auth = AuthSettings {
        token_keys: args
            .token_keys
            .iter()
            .map(|arg| AuthSettings::parse_token_key(arg))
            .collect::<Result<_, _>>()?,
        retired_keys: args
            .retired_keys
            .iter()
            .map(|id| kf_core::auth::KeyId::new(id.as_str()).map_err(kf_demo::DemoError::from))
            .collect::<Result<_, _>>()?,
        jwt: match &args.jwt_config {
            Some(path) => Some(AuthSettings::read_jwt_config(path)?),
            None => None,
        },
    };
    let jwt_line = auth.jwt.as_ref().map(|jwt| {
        format!(
            "accepted from {} for {} ({})",
            jwt.issuer.values().join(", "),
            jwt.audience.values().join(", "),
            args.jwt_config
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        )
    });
    let demo = Demo::open_configured(&args.data, widget, auth).await?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|source| MainError::Bind {
            addr: args.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| MainError::Bind {
        addr: args.addr,
        source,
    })?;
    let webhooks = match &args.webhook {
        Some(url) => Some(start_webhooks(&demo, url, args.webhook_secret).await?),
        None => None,
    };
    let webhook_line = webhooks.as_ref().map(|(_, _, line)| line.as_str());
    print_banner(local, &demo, webhook_line, jwt_line.as_deref());
    let engine = demo.engine.clone();
    // Event streams are written by kf on the socket (no HTTP buffers held per idle stream), everything else
    // goes through hyper; sockets get TCP_NODELAY and are dropped when sent data stays unacknowledged for 30 s
    // (a vanished SSE client). The server stops with the engine.
    let server = kf_transport_sse::serve_router_until(
        listener,
        demo.router(),
        Some(Duration::from_secs(30)),
        engine.shutdown_token(),
    );
    let mut server = std::pin::pin!(server);
    let serving = tokio::select! {
        served = server.as_mut() => served.map_err(MainError::Serve),
        () = shutdown_signal() => Ok(()),
    };
    // The engine's shutdown: new connections refused, live ones closed (WebSocket 1001; SSE streams end with an
    // `unavailable` event and browsers reconnect by themselves), timers stopped, commits in flight finished;
    // the server closes its listener and idle connections. All of it within the grace period.
    let grace = Duration::from_secs(args.grace);
    tracing::info!(grace_s = args.grace, "shutting down");
    let stopped = tokio::time::timeout(grace, async {
        engine.shutdown().await;
        if serving.is_ok() {
            let _ = server.await;
        }
    })
    .await;
    if stopped.is_err() {
        tracing::warn!(
            tasks = engine.tracked_tasks(),
            "not every connection ended within the grace period"
        );
    }
    if let Some((stop, worker, _)) = webhooks {
        // Attempts in flight finish (each within its timeout) and are recorded before the store closes.
        let _ = stop.send(());
        if let Ok(Err(error)) = worker.await {
            tracing::warn!(%error, "webhook worker");
        }
    }
    // Commits what the store still has queued and stops its writer thread.
    demo.shutdown(Duration::ZERO).await?;
    tracing::info!("stopped");
    serving
}

/// Subscribes `url` to every event type of tenant `demo` (once; later runs update the stored subscription) and
/// starts the delivery worker. Returns its stop signal, its task and a line for the banner.
async fn start_webhooks(
    demo: &Demo,
    url: &str,
    secret: Option<String>,
) -> Result<
    (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), kf_webhooks::Error>>,
        String,
    ),
    MainError,
> {
    use kf_webhooks::{EventType, SqliteState, SubscriptionSpec, WebhookConfig, Webhooks};
    let state = SqliteState::open(demo.data_dir.join("webhooks.sqlite3"))?;
    let webhooks = Webhooks::new(
        demo.store.clone(),
        std::sync::Arc::new(state),
        WebhookConfig::default(),
    );
    let tenant = kf_core::model::TenantId::new(TENANT)
        .map_err(|error| kf_webhooks::Error::Invalid(error.to_string()))?;
    let existing = webhooks
        .list(&tenant)
        .await?
        .into_iter()
        .find(|state| state.subscription.spec.url == url);
    let secret = match (secret, &existing) {
        (Some(secret), _) => secret,
        (None, Some(state)) => state.subscription.spec.secret.clone(),
        (None, None) => SubscriptionSpec::random_secret()?,
    };
    let spec = SubscriptionSpec::new(url, secret.clone(), EventType::ALL);
    match existing {
        Some(state) => webhooks.update(&tenant, &state.subscription.id, spec).await?,
        None => webhooks.create(&tenant, spec).await?,
    };
    let line = format!("every event of `{TENANT}` to {url} (X-Kf-Signature secret {secret})");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let wake = demo.engine.feed_wake();
    let worker = tokio::spawn(async move {
        webhooks
            .run_woken(
                async {
                    let _ = stopped.await;
                },
                Some(wake),
            )
            .await
    });
    Ok((stop, worker, line))
}

fn print_banner(local: SocketAddr, demo: &Demo, webhooks: Option<&str>, jwts: Option<&str>) {
    let shown = if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local.port())
    } else {
        local
    };
    let base = format!("http://{shown}");
    println!();
    println!("kf demo is running (tenant `{TENANT}`, group `{GROUP}`)");
    println!("  visitor page:  {base}/");
    println!("  agent page:    {base}/agent");
    println!(
        "  widget:        <script src=\"{base}/widget/widget.js\" data-tenant=\"{TENANT}\" data-entry=\"web\" async></script>"
    );
    if !demo.widget.allowed_origins.is_empty() {
        println!("  embeddable on: {}", demo.widget.allowed_origins.join(", "));
    }
    let logins: Vec<String> = DEMO_AGENTS
        .iter()
        .map(|agent| format!("{} / {}", agent.id, agent.password))
        .collect();
    println!("  agent logins:  {}", logins.join(", "));
    println!(
        "  supervisor:    {} / {} (statistics {base}/api/stats, live monitor {base}/api/monitor)",
        DEMO_SUPERVISOR.id, DEMO_SUPERVISOR.password
    );
    println!(
        "  admin API:     {base}/api/admin (log in as {} / {}; document: {base}/api/admin/openapi.json)",
        DEMO_ADMIN.id, DEMO_ADMIN.password
    );
    if let Some(webhooks) = webhooks {
        println!("  webhooks:      {webhooks}");
    }
    let keys = demo.tokens.keys();
    if let Some(current) = keys.current() {
        let accepted: Vec<&str> = keys.ids().skip(1).map(|id| id.as_str()).collect();
        let retired: Vec<&str> = keys.retired().iter().map(|id| id.as_str()).collect();
        println!(
            "  token keys:    {current} signs; accepted: {}; retired: {}",
            or_none(&accepted),
            or_none(&retired)
        );
    }
    if let Some(jwts) = jwts {
        println!("  JWTs:          {jwts}");
    }
    println!("  data:          {}", demo.data_dir.display());
    println!("  press Ctrl-C to stop");
    println!();
}

fn or_none(ids: &[&str]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
