//! kf demo server: visitor page, agent page, SQLite store.
//!
//! `cargo run -p kf-demo -- --addr 127.0.0.1:8080 --data ./data`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kf_demo::{DEMO_AGENTS, Demo, GROUP, TENANT, WidgetSettings};
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
    let demo = Demo::open_with(&args.data, widget).await?;
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
    print_banner(local, &demo);
    let engine = demo.engine.clone();
    // Event streams are written by kf on the socket (no HTTP buffers held per idle stream), everything else
    // goes through hyper; sockets get TCP_NODELAY and are dropped when sent data stays unacknowledged for 30 s
    // (a vanished SSE client).
    let serving = kf_transport_sse::serve_router(listener, demo.router(), Some(Duration::from_secs(30)));
    let serving = tokio::select! {
        served = serving => served.map_err(MainError::Serve),
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            // Tell live WebSocket clients to resume later (close code 1001); SSE streams end with an `error`
            // event, and browsers reconnect them by themselves.
            engine.shutdown();
            Ok(())
        }
    };
    // Give upgraded connections a moment to write their close frames, then commit what is queued.
    tokio::time::sleep(Duration::from_millis(200)).await;
    demo.shutdown()?;
    serving
}

fn print_banner(local: SocketAddr, demo: &Demo) {
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
    println!("  data:          {}", demo.data_dir.display());
    println!("  press Ctrl-C to stop");
    println!();
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
