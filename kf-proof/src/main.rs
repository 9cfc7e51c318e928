//! `kf-proof`: the proof suites' command line, and the server process of the crash suite.
//!
//! ```text
//! kf-proof fault [--profile short|long] [--seed N] [--conversations N] [--messages N] [--agents N]
//! kf-proof crash [--profile short|long] [--seed N] [--kills N] [--faults] [--conversations N] [--messages N] [--agents N]
//! kf-proof serve --data DIR [--addr 127.0.0.1:0] [--agents N] [--capacity N]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kf_proof::crash::CrashProfile;
use kf_proof::fault::FaultProfile;
use kf_proof::proxy::Plan;
use kf_proof::report::Report;
use kf_proof::server::{self, ServerConfig};
use kf_proof::workload::Workload;
use tracing_subscriber::EnvFilter;

/// kf's proof suites: fault injection through a TCP proxy, and kill -9 crashes of a server process, checked
/// against the delivery contract.
#[derive(Debug, Parser)]
#[command(name = "kf-proof", version)]
struct Args {
    #[command(subcommand)]
    command: Commands,
}

/// Changes to a profile's load.
#[derive(Debug, clap::Args)]
struct Load {
    /// The profile: `short` (what `cargo test` runs) or `long`.
    #[arg(long, default_value = "short")]
    profile: String,
    /// Seed of the faults, kill moments and load (default: the profile's).
    #[arg(long)]
    seed: Option<u64>,
    /// Conversations (default: the profile's).
    #[arg(long)]
    conversations: Option<usize>,
    /// Messages each way per conversation (default: the profile's).
    #[arg(long)]
    messages: Option<usize>,
    /// Agents (default: the profile's).
    #[arg(long)]
    agents: Option<usize>,
}

impl Load {
    fn apply(&self, workload: &mut Workload) {
        workload.progress = Some(std::time::Duration::from_secs(10));
        if let Some(conversations) = self.conversations {
            workload.conversations = conversations;
        }
        if let Some(messages) = self.messages {
            workload.messages = messages;
        }
        if let Some(agents) = self.agents {
            workload.agents = agents;
        }
    }
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// The fault-injection suite: a server in this process, clients behind a proxy that cuts, blackholes,
    /// delays and slices their connections.
    Fault {
        #[command(flatten)]
        load: Load,
    },
    /// The crash suite: a server process killed with SIGKILL under load and restarted on its data directory.
    Crash {
        #[command(flatten)]
        load: Load,
        /// Kills under load (default: the profile's).
        #[arg(long)]
        kills: Option<usize>,
        /// Also hurt the connections as the fault suite does (`Plan::mixed`, blackholes held 3 s).
        #[arg(long)]
        faults: bool,
    },
    /// The crash suite's server: SQLite in `--data`, WebSocket at `/ws`, SSE under `/sse`; prints
    /// `listening on <address>` and serves until killed (SIGTERM / Ctrl-C: a clean stop).
    Serve {
        /// Data directory (SQLite database and token signing key; created if missing).
        #[arg(long)]
        data: PathBuf,
        /// Address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// Agents of the tenant (`agent-000`, …).
        #[arg(long, default_value_t = 4)]
        agents: usize,
        /// Each agent's capacity.
        #[arg(long, default_value_t = 100)]
        capacity: u32,
    },
}

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kf-proof: cannot start a Tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Args::parse().command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("kf-proof: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command; whether it passed.
async fn run(command: Commands) -> Result<bool, Box<dyn std::error::Error>> {
    match command {
        Commands::Serve {
            data,
            addr,
            agents,
            capacity,
        } => {
            server::serve(&data, addr, &ServerConfig::proof(agents, capacity)).await?;
            Ok(true)
        }
        Commands::Fault { load } => {
            let mut profile =
                FaultProfile::named(&load.profile).ok_or_else(|| format!("no profile `{}`", load.profile))?;
            if let Some(seed) = load.seed {
                profile = profile.with_seed(seed);
            }
            load.apply(&mut profile.workload);
            Ok(print(&kf_proof::fault::run(&profile).await?))
        }
        Commands::Crash { load, kills, faults } => {
            let mut profile =
                CrashProfile::named(&load.profile).ok_or_else(|| format!("no profile `{}`", load.profile))?;
            if let Some(seed) = load.seed {
                profile = profile.with_seed(seed);
            }
            load.apply(&mut profile.workload);
            if let Some(kills) = kills {
                profile.kills = kills;
            }
            if faults {
                profile.plan = Plan {
                    blackhole_hold: std::time::Duration::from_secs(3),
                    ..Plan::mixed()
                };
            }
            let binary = std::env::current_exe()?;
            Ok(print(&kf_proof::crash::run(&profile, &binary).await?))
        }
    }
}

fn print(report: &Report) -> bool {
    println!("{report}");
    report.is_clean()
}
