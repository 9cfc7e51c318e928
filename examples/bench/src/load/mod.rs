//! End-to-end load: a kf server and a minimal baseline server, each in a child process, driven over real
//! WebSockets by one open-loop generator, interleaved in the same invocation (kf, baseline, kf, baseline …).
//!
//! - `child`: starting, reading and stopping the server children; `serve_kf` and `baseline`: the children.
//! - `proto`: the frames both speak; `client`: one connection; `driver`: conversations and steps of load.
//! - `schedule`, `stats`, `bisect`: the pure parts (when messages are due, what is recorded and reported,
//!   the rate search).
//! - `scenarios`: `seed`, `max-rate`, `soak`; `storm`: the reconnect storm; `cpu`: instructions per message
//!   under callgrind.

mod baseline;
mod bisect;
mod child;
mod client;
mod cpu;
mod driver;
mod proto;
mod scenarios;
mod schedule;
mod serve_kf;
mod stats;
mod storm;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};

pub use baseline::serve as serve_baseline;
pub use cpu::{CpuArgs, run as cpu};
pub use scenarios::{LoadArgs, MaxRateArgs, SoakArgs, max_rate, seed, soak};
pub use serve_kf::serve as serve_kf;
pub use storm::{StormArgs, run as storm};

/// The tenant of every load client.
pub const TENANT: &str = "bench";
/// The one group conversations are opened with.
pub const GROUP: &str = "support";

/// Agent `i`'s id.
pub fn agent_name(i: usize) -> String {
    format!("a{i}")
}

/// Options of the hidden `serve-kf` and `serve-baseline` subcommands (the server children).
#[derive(Debug, clap::Args)]
pub struct ServeLoadArgs {
    /// Where to listen (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// The SQLite database file.
    #[arg(long)]
    pub db: PathBuf,
    /// Agents `a0`..`a{N-1}`.
    #[arg(long, default_value_t = 21)]
    pub agents: usize,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

pub fn unhex(text: &str) -> Result<Vec<u8>> {
    ensure!(text.len().is_multiple_of(2), "odd-length hex key");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).context("invalid hex key"))
        .collect()
}

pub fn random_key() -> Result<Vec<u8>> {
    let mut key = vec![0_u8; 32];
    let mut urandom = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut urandom, &mut key).context("cannot read /dev/urandom")?;
    Ok(key)
}
