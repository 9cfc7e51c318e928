//! The crash suite: the server as a separate process (`kf-proof serve --data DIR`), killed with SIGKILL at
//! seeded moments under load and restarted on the same data directory, several times in a row.
//!
//! The clients reach the server through a [`Proxy`] that forwards without faults: when a new server process
//! comes up on a new port the proxy is pointed at it, and the clients, which only know the proxy, reconnect to
//! it by their own rules. The kill moments are drawn from the seed as points of the load (after so many
//! messages were acknowledged, plus up to 100 ms), so that every kill strikes mid-load whatever the machine's
//! speed. When the load is done the last server is killed too, its SQLite file is opened and read through the
//! store API, and the [`Ledger`] is checked against it: every acknowledged message is stored at its seq, every
//! log is gapless, and each end applied every message exactly once, in order.
//!
//! ```text
//! cargo test -p kf-proof --test crash                       # the short profile
//! cargo run --release -p kf-proof -- crash --profile long   # the long one
//! ```

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::checker::Ledger;
use crate::fault::capacity_for;
use crate::proxy::{Plan, Proxy};
use crate::report::{ProofError, Report, read_logs};
use crate::server;
use crate::workload::{self, Workload};

/// How long a server process may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A crash suite profile.
#[derive(Debug, Clone, PartialEq)]
pub struct CrashProfile {
    /// Its name (`short`, `long`).
    pub name: String,
    /// The load.
    pub workload: Workload,
    /// How many times the server is killed under load (the final stop is one more).
    pub kills: usize,
    /// Faults the proxy adds (none by default: the kills are the faults).
    pub plan: Plan,
    /// Seeds the kill moments (the load has its own seed in [`Workload::seed`]).
    pub seed: u64,
}

impl CrashProfile {
    /// The profile `cargo test` runs: 3 kills under 12 conversations × 25 messages each way, 4 agents.
    pub fn short() -> CrashProfile {
        CrashProfile {
            name: "short".into(),
            workload: Workload {
                conversations: 12,
                messages: 25,
                agents: 4,
                think: (Duration::from_millis(10), Duration::from_millis(60)),
                liveness_grace: Duration::from_secs(1),
                request_timeout: Duration::from_secs(3),
                deadline: Duration::from_secs(120),
                seed: 11,
                progress: None,
            },
            kills: 3,
            plan: Plan::none(),
            seed: 11,
        }
    }

    /// The long profile: 20 kills under 400 conversations × 100 messages each way, 10 agents — 40 conversations
    /// each, so that the SSE agents' cursors (which remember 32) forget some and their streams replay those
    /// from the start.
    pub fn long() -> CrashProfile {
        CrashProfile {
            name: "long".into(),
            workload: Workload {
                conversations: 400,
                messages: 100,
                agents: 10,
                think: (Duration::from_millis(5), Duration::from_millis(50)),
                liveness_grace: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
                deadline: Duration::from_secs(1_800),
                seed: 12,
                progress: None,
            },
            kills: 20,
            plan: Plan::none(),
            seed: 12,
        }
    }

    /// The profile called `name`.
    pub fn named(name: &str) -> Option<CrashProfile> {
        match name {
            "short" => Some(CrashProfile::short()),
            "long" => Some(CrashProfile::long()),
            _ => None,
        }
    }

    /// The same profile with another seed (for the kills and the load).
    pub fn with_seed(mut self, seed: u64) -> CrashProfile {
        self.seed = seed;
        self.workload.seed = seed;
        self
    }
}

/// A server process (`kf-proof serve`).
struct ServerProcess {
    child: Child,
    addr: std::net::SocketAddr,
}

impl ServerProcess {
    /// Starts `binary serve` on `data_dir` and reads the address it prints.
    async fn start(binary: &Path, data_dir: &Path, workload: &Workload) -> Result<ServerProcess, ProofError> {
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--data")
            .arg(data_dir)
            .args(["--addr", "127.0.0.1:0"])
            .args(["--agents", &workload.agents.to_string()])
            .args(["--capacity", &capacity_for(workload).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ProofError::Io("starting the server process", e))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ProofError::Process("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| ProofError::Process("no address printed in time".into()))?
            .map_err(|e| ProofError::Io("reading the server's stdout", e))?
            .ok_or_else(|| ProofError::Process("the server exited before listening".into()))?;
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|addr| addr.trim().parse().ok())
            .ok_or_else(|| ProofError::Process(format!("unexpected first line {line:?}")))?;
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProcess { child, addr })
    }

    /// SIGKILL, then waits for the process to be gone.
    async fn kill(mut self) -> Result<(), ProofError> {
        self.child
            .start_kill()
            .map_err(|e| ProofError::Io("killing the server", e))?;
        self.child
            .wait()
            .await
            .map_err(|e| ProofError::Io("waiting for the killed server", e))?;
        Ok(())
    }
}

/// Runs the suite with the server binary `binary` (the `kf-proof` executable: `env!("CARGO_BIN_EXE_kf-proof")`
/// in its tests, `std::env::current_exe()` in itself).
pub async fn run(profile: &CrashProfile, binary: &Path) -> Result<Report, ProofError> {
    let dir = tempfile::tempdir().map_err(|e| ProofError::Io("creating a temporary directory", e))?;
    let data_dir = dir.path().join("data");
    let workload = &profile.workload;
    let mut server = ServerProcess::start(binary, &data_dir, workload).await?;
    let tokens = server::tokens(&data_dir)?;
    let proxy = Proxy::start(server.addr, profile.seed)
        .await
        .map_err(|e| ProofError::Io("starting the proxy", e))?;
    proxy.set_plan(profile.plan.clone());
    // Kill points: after so many acknowledged messages (5–90 % of the load), plus a pause of up to 100 ms.
    let mut rng = ChaCha8Rng::seed_from_u64(profile.seed);
    let total = workload.total_messages();
    let mut points: Vec<(u64, Duration)> = (0..profile.kills)
        .map(|_| {
            let at = rng.random_range(total / 20..=total * 9 / 10);
            (at, Duration::from_millis(rng.random_range(0..=100)))
        })
        .collect();
    points.sort();
    let ledger = Arc::new(Ledger::new());
    let started = Instant::now();
    let load = workload::run(workload, proxy.addr(), &tokens, &ledger);
    tokio::pin!(load);
    let mut kills = 0;
    let mut points = points.into_iter();
    let mut next = points.next();
    let outcome = loop {
        let strike = async {
            match next {
                Some((at, pause)) => {
                    ledger.wait_acked(at).await;
                    tokio::time::sleep(pause).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            outcome = &mut load => break outcome?,
            () = strike => {
                server.kill().await?;
                kills += 1;
                server = ServerProcess::start(binary, &data_dir, workload).await?;
                proxy.set_upstream(server.addr);
                next = points.next();
            }
        }
    };
    let duration = started.elapsed();
    // The final stop is a kill too.
    server.kill().await?;
    kills += 1;
    let faults = proxy.stats();
    drop(proxy);
    let conversations = ledger.conversations();
    let logs = read_logs(&data_dir, &conversations).await?;
    Ok(Report {
        suite: "crash",
        profile: profile.name.clone(),
        seed: profile.seed,
        verdict: ledger.verify(&logs),
        completed: outcome.completed,
        unfinished: outcome.unfinished,
        faults,
        kills,
        clients: outcome.clients,
        duration,
    })
}
