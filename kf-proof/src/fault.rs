//! The fault-injection suite: a real server (engine + SQLite in a temporary directory + WebSocket + SSE) in this
//! process, every client connected through the [`Proxy`], which cuts, blackholes, delays
//! and slices their connections by a seeded [`Plan`]. When the load is done the server stops, its SQLite file is
//! read back through the store API, and the [`Ledger`] is checked against it.
//!
//! ```text
//! cargo test -p kf-proof --test fault                       # the short profile
//! cargo run --release -p kf-proof -- fault --profile long   # the long one
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::checker::Ledger;
use crate::proxy::{Plan, Proxy};
use crate::report::{ProofError, Report, read_logs};
use crate::server::{self, Server, ServerConfig};
use crate::workload::{self, Workload};

/// A fault suite profile: the load, the faults, the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultProfile {
    /// Its name (`short`, `long`).
    pub name: String,
    /// The load.
    pub workload: Workload,
    /// The faults each new connection draws.
    pub plan: Plan,
    /// Seeds the proxy (the load has its own seed in [`Workload::seed`]).
    pub seed: u64,
}

impl FaultProfile {
    /// The profile `cargo test` runs: 20 conversations × 30 messages each way, 4 agents (2 on WebSocket, 2 on
    /// SSE), visitors alternating between the transports; [`Plan::mixed`] faults with blackholes held 3 s; the
    /// clients declare a connection dead after the ping interval (500 ms) + 1 s of silence.
    pub fn short() -> FaultProfile {
        FaultProfile {
            name: "short".into(),
            workload: Workload {
                conversations: 20,
                messages: 30,
                agents: 4,
                think: (Duration::from_millis(50), Duration::from_millis(250)),
                liveness_grace: Duration::from_secs(1),
                request_timeout: Duration::from_secs(3),
                deadline: Duration::from_secs(120),
                seed: 1,
                progress: None,
            },
            plan: Plan {
                blackhole_hold: Duration::from_secs(3),
                ..Plan::mixed()
            },
            seed: 1,
        }
    }

    /// The long profile: 1 000 conversations × 200 messages each way, 40 agents; the same faults; a 2 s liveness
    /// grace (a loaded server answers later).
    pub fn long() -> FaultProfile {
        FaultProfile {
            name: "long".into(),
            workload: Workload {
                conversations: 1_000,
                messages: 200,
                agents: 40,
                think: (Duration::from_millis(10), Duration::from_millis(100)),
                liveness_grace: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
                deadline: Duration::from_secs(3_600),
                seed: 2,
                progress: None,
            },
            plan: Plan {
                blackhole_hold: Duration::from_secs(5),
                ..Plan::mixed()
            },
            seed: 2,
        }
    }

    /// The profile called `name`.
    pub fn named(name: &str) -> Option<FaultProfile> {
        match name {
            "short" => Some(FaultProfile::short()),
            "long" => Some(FaultProfile::long()),
            _ => None,
        }
    }

    /// The same profile with another seed (for the proxy and the load).
    pub fn with_seed(mut self, seed: u64) -> FaultProfile {
        self.seed = seed;
        self.workload.seed = seed;
        self
    }
}

/// The server's agents need room for every conversation that may land on them.
pub(crate) fn capacity_for(workload: &Workload) -> u32 {
    let per_agent = workload.conversations.div_ceil(workload.agents.max(1));
    u32::try_from(per_agent * 2 + 4).unwrap_or(u32::MAX)
}

/// Runs the suite: starts the server and the proxy, runs the load through the faults, stops the server, and
/// checks what the clients saw against the store.
pub async fn run(profile: &FaultProfile) -> Result<Report, ProofError> {
    let dir = tempfile::tempdir().map_err(|e| ProofError::Io("creating a temporary directory", e))?;
    let data_dir = dir.path().join("data");
    let workload = &profile.workload;
    let config = ServerConfig::proof(workload.agents, capacity_for(workload));
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = Server::start(&data_dir, any_port, &config).await?;
    let tokens = server::tokens(&data_dir)?;
    let proxy = Proxy::start(server.addr(), profile.seed)
        .await
        .map_err(|e| ProofError::Io("starting the proxy", e))?;
    proxy.set_plan(profile.plan.clone());
    let ledger = Arc::new(Ledger::new());
    let started = Instant::now();
    let outcome = workload::run(workload, proxy.addr(), &tokens, &ledger).await?;
    let duration = started.elapsed();
    let faults = proxy.stats();
    drop(proxy);
    server.stop().await?;
    let conversations = ledger.conversations();
    let logs = read_logs(&data_dir, &conversations).await?;
    Ok(Report {
        suite: "fault",
        profile: profile.name.clone(),
        seed: profile.seed,
        verdict: ledger.verify(&logs),
        completed: outcome.completed,
        unfinished: outcome.unfinished,
        faults,
        kills: 0,
        clients: outcome.clients,
        duration,
    })
}
