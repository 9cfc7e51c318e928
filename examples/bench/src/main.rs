//! kf benchmarks: the SQLite store's durable append rate, the server memory per idle WebSocket connection, and
//! end-to-end load against a minimal baseline server.
//!
//! ```text
//! cargo run --release -p kf-bench -- store [--messages N] [--writers W[,W…]] [--runs R]
//! cargo run --release -p kf-bench -- idle-ws --connections 10000[,19000] [--runs R]
//! cargo run --release -p kf-bench -- idle-sse --connections 10000[,19000] [--runs R]
//! cargo run --release -p kf-bench -- seed [--runs R] [--rate N] [--duration-s S]
//! cargo run --release -p kf-bench -- max-rate [--runs R] [--p99-ms 50]
//! cargo run --release -p kf-bench -- storm [--clients N]
//! cargo run --release -p kf-bench -- soak [--total-s 1800] [--sample-s 60]
//! cargo run --release -p kf-bench -- cpu [--conversations C] [--messages M]
//! ```
//!
//! Every figure comes with a baseline measured in the same run on the same machine; `docs/benchmarks.md`
//! says how to read them.

mod export;
mod idle;
mod load;
mod store;
mod sys;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kf-bench",
    about = "kf benchmarks: durable append rate, memory per idle connection, end-to-end load"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Durable append rate of the SQLite store (Store trait, group commit) next to raw rusqlite baselines.
    Store(store::StoreArgs),
    /// Memory of an export of a large history (100,000 messages by default), streamed and buffered.
    Export(export::ExportArgs),
    /// (internal) One export in a process of its own, for `export`.
    #[command(hide = true)]
    ExportChild(export::ExportChildArgs),
    /// Server memory per idle authenticated WebSocket session, next to bare TCP sockets held by tasks.
    IdleWs(idle::IdleArgs),
    /// Server memory per idle authenticated SSE stream, next to bare TCP sockets held by tasks.
    IdleSse(idle::IdleArgs),
    /// (internal) The WebSocket server child of `idle-ws`.
    #[command(hide = true)]
    ServeWs(idle::ServeArgs),
    /// (internal) The SSE server child of `idle-sse`.
    #[command(hide = true)]
    ServeSse(idle::ServeArgs),
    /// Baseline for `idle-sse`: memory per idle bare axum SSE response (no kf), next to bare TCP sockets.
    IdleAxumSse(idle::IdleArgs),
    /// (internal) The bare axum SSE server child of `idle-axum-sse`.
    #[command(hide = true)]
    ServeAxumSse(idle::ServeArgs),
    /// End-to-end load, kf against a minimal baseline: 300 conversations at a fixed rate, latency percentiles,
    /// delivered rate, server CPU and memory.
    Seed(load::LoadArgs),
    /// End-to-end load: the highest rate whose p99 stays under a bound (step and bisect), kf and baseline.
    MaxRate(load::MaxRateArgs),
    /// End-to-end load: the seed load for a long time, server memory sampled, errors counted.
    Soak(load::SoakArgs),
    /// Reconnect storm: as many clients as the file limit allows drop and resume at once, kf and baseline.
    Storm(load::StormArgs),
    /// Instructions per delivered message under callgrind, kf and baseline.
    Cpu(load::CpuArgs),
    /// (internal) The kf server child of the load scenarios.
    #[command(hide = true)]
    ServeKf(load::ServeLoadArgs),
    /// (internal) The baseline server child of the load scenarios.
    #[command(hide = true)]
    ServeBaseline(load::ServeLoadArgs),
    /// (internal) The bare TCP server child of `idle-ws`.
    #[command(hide = true)]
    ServeTcp(idle::ServeArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Store(args) => store::run(args).await,
            Command::Export(args) => export::run(args).await,
            Command::ExportChild(args) => export::child(args).await,
            Command::IdleWs(args) => idle::run(args, idle::Transport::Ws).await,
            Command::IdleSse(args) => idle::run(args, idle::Transport::Sse).await,
            Command::ServeWs(args) => idle::serve_session(args, idle::Transport::Ws).await,
            Command::ServeSse(args) => idle::serve_session(args, idle::Transport::Sse).await,
            Command::IdleAxumSse(args) => idle::run(args, idle::Transport::AxumSse).await,
            Command::ServeAxumSse(args) => idle::serve_session(args, idle::Transport::AxumSse).await,
            Command::ServeTcp(args) => idle::serve_tcp(args).await,
            Command::Seed(args) => load::seed(args).await,
            Command::MaxRate(args) => load::max_rate(args).await,
            Command::Soak(args) => load::soak(args).await,
            Command::Storm(args) => load::storm(args).await,
            Command::Cpu(args) => load::cpu(args).await,
            Command::ServeKf(args) => load::serve_kf(args).await,
            Command::ServeBaseline(args) => load::serve_baseline(args).await,
        }
    })
}
