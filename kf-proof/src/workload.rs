//! The load both suites put on a server: conversations between visitors and agents, messages both ways, half
//! the visitors and half the agents on WebSocket, the other halves on SSE.
//!
//! Each visitor opens one conversation and sends [`Workload::messages`] messages into it, one at a time with a
//! random pause before each; each agent, for every conversation assigned to it, does the same. A conversation is
//! done when both sides' messages are acknowledged and each side has applied all of the other's. Everything goes
//! through [`Client`]s into one [`Ledger`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kf_core::auth::SignedTokens;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::checker::Ledger;
use crate::client::{Client, ClientConfig, ClientStats, Transport};
use crate::server::{self, ServerError};

/// How long the suites' tokens are valid.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The shape of the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Conversations (one visitor each).
    pub conversations: usize,
    /// Messages each way per conversation.
    pub messages: usize,
    /// Agents ([`server::agent_id`]`(0..agents)`); the server must know them.
    pub agents: usize,
    /// The pause before each send, drawn uniformly from `[low, high]`.
    pub think: (Duration, Duration),
    /// The clients' liveness grace ([`ClientConfig::liveness_grace`]).
    pub liveness_grace: Duration,
    /// The clients' SSE request timeout ([`ClientConfig::request_timeout`]).
    pub request_timeout: Duration,
    /// How long the whole load may take before the run gives up on what is unfinished.
    pub deadline: Duration,
    /// Seeds every client's and driver's randomness.
    pub seed: u64,
    /// Print a progress line (messages acknowledged so far) on stderr this often; `None`: quiet.
    pub progress: Option<Duration>,
}

impl Workload {
    /// Messages the load sends in all (both ways).
    pub fn total_messages(&self) -> u64 {
        (self.conversations * self.messages * 2) as u64
    }
}

/// What the load did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Whether every conversation finished before the deadline.
    pub completed: bool,
    /// What had not finished, in words (empty when completed).
    pub unfinished: Vec<String>,
    /// The clients' statistics, summed.
    pub clients: ClientStats,
}

fn transport_of(index: usize) -> Transport {
    if index.is_multiple_of(2) {
        Transport::Ws
    } else {
        Transport::Sse
    }
}

fn pause(rng: &mut ChaCha8Rng, (low, high): (Duration, Duration)) -> Duration {
    if high <= low {
        low
    } else {
        rng.random_range(low..=high)
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A finished conversation of one side: who, which conversation, and an error if it went wrong.
type Done = (String, Option<String>, Option<String>);

/// Runs the load against `addr` (a server or a proxy in front of it), with tokens from `tokens`, recording into
/// `ledger`. Returns when every conversation is done or the workload's deadline passed; stops every client.
pub async fn run(
    workload: &Workload,
    addr: SocketAddr,
    tokens: &SignedTokens,
    ledger: &Arc<Ledger>,
) -> Result<Outcome, ServerError> {
    let config = |transport, token, party, seed| ClientConfig {
        liveness_grace: workload.liveness_grace,
        request_timeout: workload.request_timeout,
        connect_timeout: Duration::from_secs(5),
        seed,
        ..ClientConfig::new(addr, transport, token, party)
    };
    let (done_tx, mut done) = mpsc::unbounded_channel::<Done>();
    let mut clients: Vec<Arc<Client>> = Vec::new();
    let mut drivers = JoinSet::new();
    for index in 0..workload.agents {
        let id = server::agent_id(index);
        let token = tokens.issue(&server::agent(&id)?, TOKEN_TTL);
        let seed = workload.seed.wrapping_mul(1_000_003).wrapping_add(index as u64);
        let client = Arc::new(Client::spawn(
            config(transport_of(index), token, format!("agent:{id}"), seed),
            ledger.clone(),
        ));
        clients.push(client.clone());
        drivers.spawn(agent_driver(client, workload.clone(), seed, done_tx.clone()));
    }
    for index in 0..workload.conversations {
        let id = format!("v-{index:05}");
        let token = tokens.issue(&server::visitor(&id)?, TOKEN_TTL);
        let seed = workload.seed.wrapping_mul(7_000_003).wrapping_add(index as u64);
        let client = Arc::new(Client::spawn(
            config(transport_of(index), token, format!("visitor:{id}"), seed),
            ledger.clone(),
        ));
        clients.push(client.clone());
        drivers.spawn(visitor_driver(client, workload.clone(), seed, done_tx.clone()));
    }
    drop(done_tx);
    let _reporter = workload.progress.map(|every| {
        let (ledger, total, started) = (ledger.clone(), workload.total_messages(), Instant::now());
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let elapsed = started.elapsed().as_secs_f64();
                eprintln!(
                    "[{elapsed:7.1} s] {} of {total} messages acknowledged",
                    ledger.acked_count()
                );
            }
        }))
    });
    let expected = workload.conversations * 2;
    let deadline = Instant::now() + workload.deadline;
    let mut finished = 0;
    let mut outcome = Outcome::default();
    while finished < expected {
        match tokio::time::timeout_at(deadline, done.recv()).await {
            Ok(Some((party, conversation, error))) => {
                finished += 1;
                if let Some(error) = error {
                    outcome
                        .unfinished
                        .push(format!("{party} {conversation:?}: {error}"));
                }
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    outcome.completed = finished == expected && outcome.unfinished.is_empty();
    if finished < expected {
        outcome.unfinished.push(format!(
            "{} of {expected} conversation sides unfinished at the deadline",
            expected - finished
        ));
        for client in &clients {
            let stats = client.stats();
            outcome.unfinished.push(format!("{} {stats:?}", client.party()));
            if outcome.unfinished.len() > 40 {
                break;
            }
        }
    }
    drivers.abort_all();
    for client in &clients {
        outcome.clients += client.stats();
    }
    Ok(outcome)
}

/// A visitor: open, send its messages one at a time, wait for the agent's.
async fn visitor_driver(
    client: Arc<Client>,
    workload: Workload,
    seed: u64,
    done: mpsc::UnboundedSender<Done>,
) {
    let party = client.party().to_owned();
    let conversation = match client.open().await {
        Ok(conversation) => conversation,
        Err(error) => {
            let _ = done.send((party, None, Some(format!("open: {error}"))));
            return;
        }
    };
    let error = converse(&client, &conversation, &workload, seed).await.err();
    let _ = done.send((party, Some(conversation), error));
}

/// An agent: for each conversation assigned to it, the same as a visitor after its open.
async fn agent_driver(client: Arc<Client>, workload: Workload, seed: u64, done: mpsc::UnboundedSender<Done>) {
    let mut conversations = JoinSet::new();
    let mut count = 0u64;
    while let Some(conversation) = client.next_assigned().await {
        count += 1;
        let (client, workload, done) = (client.clone(), workload.clone(), done.clone());
        conversations.spawn(async move {
            let error = converse(&client, &conversation, &workload, seed.wrapping_add(count << 32))
                .await
                .err();
            let _ = done.send((client.party().to_owned(), Some(conversation), error));
        });
    }
}

/// Sends this side's messages one at a time (the next once the previous is acknowledged), then waits until the
/// other side's have all been applied.
async fn converse(client: &Client, conversation: &str, workload: &Workload, seed: u64) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for number in 0..workload.messages {
        tokio::time::sleep(pause(&mut rng, workload.think)).await;
        let text = format!("{} says #{number}", client.party());
        client
            .send(conversation, text)
            .await
            .map_err(|error| format!("send #{number}: {error}"))?;
    }
    client.wait_messages(conversation, workload.messages).await;
    Ok(())
}
