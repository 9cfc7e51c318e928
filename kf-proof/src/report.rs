//! What a suite run found: the checker's [`Verdict`] with the faults injected, the clients' reconnects and the
//! duration; and reading the conversations' logs back from a stopped server's SQLite file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use kf_core::model::{ConversationId, Seq};
use kf_core::store::ConversationLog;
use kf_store_sqlite::{SqliteConfig, SqliteStore};

use crate::checker::{Seen, Verdict};
use crate::client::ClientStats;
use crate::proxy;
use crate::server::{DB_FILE, ServerError};

/// A suite could not run (as opposed to: it ran and found a violation, which its [`Report`] says).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The server failed to start or stop.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A file, process or socket operation failed.
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// The server process misbehaved (did not say where it listens, …).
    #[error("server process: {0}")]
    Process(String),
    /// Reading the logs back failed.
    #[error("reading the store: {0}")]
    Store(String),
}

/// What one run of a suite found.
#[derive(Debug, Clone)]
pub struct Report {
    /// `fault` or `crash`.
    pub suite: &'static str,
    /// The profile's name.
    pub profile: String,
    /// The seed.
    pub seed: u64,
    /// The checker's counts.
    pub verdict: Verdict,
    /// Whether the load finished before its deadline.
    pub completed: bool,
    /// What had not finished, in words.
    pub unfinished: Vec<String>,
    /// The proxy's counts (faults injected).
    pub faults: proxy::Stats,
    /// Server processes killed with SIGKILL (crash suite).
    pub kills: u64,
    /// The clients' statistics, summed.
    pub clients: ClientStats,
    /// Wall-clock time of the load.
    pub duration: Duration,
}

impl Report {
    /// Whether the run passed: the load finished and the contract held.
    pub fn is_clean(&self) -> bool {
        self.completed && self.verdict.is_clean()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = &self.verdict;
        writeln!(
            f,
            "kf-proof {} --profile {} (seed {}): {}",
            self.suite,
            self.profile,
            self.seed,
            if self.is_clean() { "PASS" } else { "FAIL" }
        )?;
        writeln!(f, "  duration:        {:.1} s", self.duration.as_secs_f64())?;
        writeln!(
            f,
            "  conversations:   {} ({} events stored)",
            verdict.conversations, verdict.events_in_store
        )?;
        writeln!(f, "  sent:            {}", verdict.sent)?;
        writeln!(f, "  acked:           {}", verdict.acked)?;
        writeln!(f, "  delivered:       {}", verdict.delivered)?;
        writeln!(f, "  lost:            {}", verdict.lost)?;
        writeln!(f, "  duplicated:      {}", verdict.duplicated)?;
        writeln!(f, "  reordered:       {}", verdict.reordered)?;
        writeln!(
            f,
            "  other:           {} mismatched, {} gaps, {} protocol violations",
            verdict.mismatched, verdict.gaps, verdict.protocol
        )?;
        let faults = &self.faults;
        writeln!(
            f,
            "  faults:          {} cuts, {} blackholes, {} delayed, {} sliced ({} connections, {} refused)",
            faults.cuts, faults.blackholes, faults.delayed, faults.sliced, faults.accepted, faults.refused
        )?;
        if self.suite == "crash" {
            writeln!(f, "  kills (SIGKILL): {}", self.kills)?;
        }
        let clients = &self.clients;
        write!(
            f,
            "  clients:         {} sessions, {} dead connections detected, {} resends, {} duplicate acks",
            clients.sessions, clients.dead, clients.resent, clients.duplicate_acks
        )?;
        for line in verdict.described.iter().chain(&self.unfinished) {
            write!(f, "\n  ! {line}")?;
        }
        Ok(())
    }
}

/// Opens the SQLite file of a stopped server's data directory and reads each of `conversations` through the
/// store API, in seq order.
pub async fn read_logs(
    data_dir: &Path,
    conversations: &[String],
) -> Result<BTreeMap<String, Vec<Seen>>, ProofError> {
    let store = SqliteStore::open(data_dir.join(DB_FILE), SqliteConfig::default())
        .map_err(|error| ProofError::Store(error.to_string()))?;
    let mut logs = BTreeMap::new();
    for conversation in conversations {
        let id: ConversationId = conversation
            .parse()
            .map_err(|_| ProofError::Store(format!("not a conversation id: {conversation}")))?;
        let events = store
            .events_after(id, Seq::ZERO, 10_000_000)
            .await
            .map_err(|error| ProofError::Store(error.to_string()))?;
        let mut seen = Vec::with_capacity(events.len());
        for event in events {
            let value = serde_json::to_value(&event).map_err(|error| ProofError::Store(error.to_string()))?;
            if let Some(event) = Seen::from_event(&value) {
                seen.push(event);
            }
        }
        logs.insert(conversation.clone(), seen);
    }
    store
        .close()
        .map_err(|error| ProofError::Store(error.to_string()))?;
    Ok(logs)
}
