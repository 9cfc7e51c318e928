//! `kf-proof`: the proof suites' command line.
//!
//! ```text
//! kf-proof fault [--profile short|long] [--seed N] [--conversations N] [--messages N]
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kf_proof::fault::FaultProfile;
use kf_proof::report::Report;
use kf_proof::workload::Workload;
use tracing_subscriber::EnvFilter;

/// kf's proof suites: fault injection through a TCP proxy, checked against the delivery contract.
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
}

impl Load {
    fn apply(&self, workload: &mut Workload) {
        if let Some(conversations) = self.conversations {
            workload.conversations = conversations;
        }
        if let Some(messages) = self.messages {
            workload.messages = messages;
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
        Commands::Fault { load } => {
            let mut profile =
                FaultProfile::named(&load.profile).ok_or_else(|| format!("no profile `{}`", load.profile))?;
            if let Some(seed) = load.seed {
                profile = profile.with_seed(seed);
            }
            load.apply(&mut profile.workload);
            Ok(print(&kf_proof::fault::run(&profile).await?))
        }
    }
}

fn print(report: &Report) -> bool {
    println!("{report}");
    report.is_clean()
}
