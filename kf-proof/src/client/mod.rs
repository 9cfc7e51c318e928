//! A resuming protocol client, for WebSocket and SSE, written from `docs/protocol.md` as a real client behaves.
//!
//! [`Client::spawn`] starts a task that keeps a session with the server for as long as the client lives:
//!
//! - **connect**: WebSocket: `hello` with the token, then `subscribe {after: last_applied, epoch}` for every
//!   conversation it follows (§17); SSE: `GET /events` with the last event `id:` it applied as the cursor (§21),
//!   requests as `POST /{type}`;
//! - **apply** events by the rule of §17: drop a seq it already applied, apply the next one, resubscribe (SSE:
//!   reopen the stream) on a gap; treat its own message's event as the acknowledgement of its send;
//! - **send** one message at a time per conversation (§16), each with a fresh client id kept until acknowledged:
//!   after a reconnect, or a retryable error (`rate_limited`, `unavailable`, `internal`, an unknown code, a lost
//!   POST), it is sent again with the **same** client id;
//! - **liveness** (§14): WebSocket: after `ping_interval_ms` without a frame it sends `ping`; a connection silent
//!   for [`ClientConfig::liveness_grace`] more is dead: it drops it and reconnects. SSE: a stream that delivered
//!   nothing (frame or heartbeat) for `ping_interval_ms` + the grace is dead;
//! - **reconnect** with exponential backoff and full jitter (§18): a random delay up to
//!   `min(cap, base × 2^attempt)`, the attempt count reset by every session that opened (`welcome`; SSE: the
//!   stream's `following`); after `too_many_connections` a longer one.
//!
//! Everything it sends, is acknowledged and applies goes into a [`Ledger`], and so does every violation of the
//! protocol it sees on the wire (an event repeated or out of order within one subscription or stream, a cursor
//! reset or refused, two acks of one client id with different seqs) even though its resume rules hide them from
//! its user.
//!
//! The user side is a handle: [`Client::open`] (visitors), [`Client::send`] (resolves when acknowledged),
//! [`Client::next_assigned`] (agents: conversations assigned to it), [`Client::wait_messages`] (until so many
//! messages of the other side were applied).

mod core;
mod sse;
mod ws;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::checker::Ledger;

/// The transport a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket, at `/ws`.
    Ws,
    /// SSE at `/sse/events`, requests as `POST /sse/{type}`.
    Sse,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
        })
    }
}

/// How a client connects and behaves. [`ClientConfig::new`] gives the protocol's defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server (or proxy) address.
    pub addr: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// The token for `hello` / every HTTP request.
    pub token: String,
    /// Who this is, as the checker names parties: `visitor:<id>` or `agent:<id>`.
    pub party: String,
    /// How long after its `ping` (WebSocket), or after `ping_interval_ms` of silence (SSE), a connection that
    /// stayed silent is dead. The protocol's rule is 10 s; tests make it shorter.
    pub liveness_grace: Duration,
    /// The backoff's first ceiling (§18: 0.5 s).
    pub backoff_base: Duration,
    /// The backoff's largest ceiling (§18: 5 s).
    pub backoff_cap: Duration,
    /// The delay after `too_many_connections` (§18: 10–30 s), as a range to draw from.
    pub too_many_delay: (Duration, Duration),
    /// How long connecting (TCP, handshake, `hello` until `welcome`) may take before the attempt counts as failed.
    pub connect_timeout: Duration,
    /// How long one SSE request (a POST on its own connection) may take before it counts as lost and is retried.
    pub request_timeout: Duration,
    /// Seeds the client's randomness (client ids, jitter).
    pub seed: u64,
}

impl ClientConfig {
    /// The protocol's defaults for `party` on `transport` at `addr` with `token`.
    pub fn new(addr: SocketAddr, transport: Transport, token: String, party: String) -> ClientConfig {
        ClientConfig {
            addr,
            transport,
            token,
            party,
            liveness_grace: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(5),
            too_many_delay: (Duration::from_secs(10), Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            seed: 0,
        }
    }
}

/// What a client went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Connection attempts.
    pub attempts: u64,
    /// Sessions that opened (`welcome`).
    pub sessions: u64,
    /// Connections it declared dead by the liveness rule.
    pub dead: u64,
    /// Sends written again with the same client id (after a reconnect, an error or a lost POST).
    pub resent: u64,
    /// Acks that said `duplicate: true` (the original had been stored).
    pub duplicate_acks: u64,
}

impl std::ops::AddAssign for ClientStats {
    fn add_assign(&mut self, other: ClientStats) {
        self.attempts += other.attempts;
        self.sessions += other.sessions;
        self.dead += other.dead;
        self.resent += other.resent;
        self.duplicate_acks += other.duplicate_acks;
    }
}

/// Why a request of the user was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server refused it for good (an error code that retrying cannot change).
    #[error("refused: {0}")]
    Refused(String),
    /// The client's task ended.
    #[error("the client stopped")]
    Stopped,
}

/// What the user asks of the client's task.
#[derive(Debug)]
enum Command {
    Open {
        reply: oneshot::Sender<Result<String, ClientError>>,
    },
    Send {
        conversation: String,
        text: String,
        reply: oneshot::Sender<Result<u64, ClientError>>,
    },
}

/// What the task tells the user side, read under a lock and announced by a [`Notify`].
#[derive(Debug, Default)]
struct Progress {
    /// Messages of other parties applied, per conversation.
    messages: HashMap<String, usize>,
    stats: ClientStats,
}

#[derive(Debug, Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Notify,
}

impl Shared {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) {
        change(&mut self.progress());
        self.changed.notify_waiters();
    }
}

/// A running resuming client (see the [module documentation](self)). Dropping it stops its task.
#[derive(Debug)]
pub struct Client {
    party: String,
    commands: mpsc::UnboundedSender<Command>,
    assigned: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Starts the client's task: it connects at once and keeps reconnecting until dropped.
    pub fn spawn(config: ClientConfig, ledger: Arc<Ledger>) -> Client {
        let (commands, receiver) = mpsc::unbounded_channel();
        let (assigned_tx, assigned) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let party = config.party.clone();
        let core = core::Core::new(config, ledger, shared.clone(), assigned_tx);
        let task = tokio::spawn(core.run(receiver));
        Client {
            party,
            commands,
            assigned: tokio::sync::Mutex::new(assigned),
            shared,
            task,
        }
    }

    /// Who this is (`visitor:<id>` or `agent:<id>`).
    pub fn party(&self) -> &str {
        &self.party
    }

    /// Opens a conversation (visitors), retrying with the same client id until the server answers `opened`;
    /// returns its id.
    pub async fn open(&self) -> Result<String, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Open { reply })
            .map_err(|_| ClientError::Stopped)?;
        answer.await.map_err(|_| ClientError::Stopped)?
    }

    /// Sends a message with a fresh client id, retrying with that id until acknowledged; returns its seq. Sends
    /// to one conversation go one at a time, in call order.
    pub async fn send(&self, conversation: &str, text: impl Into<String>) -> Result<u64, ClientError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Send {
            conversation: conversation.to_owned(),
            text: text.into(),
            reply,
        };
        self.commands.send(command).map_err(|_| ClientError::Stopped)?;
        answer.await.map_err(|_| ClientError::Stopped)?
    }

    /// The next conversation assigned to this agent (each once, as the client learns of it: `inbox` or
    /// `conversation` frame). `None` once the client stopped.
    pub async fn next_assigned(&self) -> Option<String> {
        self.assigned.lock().await.recv().await
    }

    /// Waits until this client has applied at least `count` messages of other parties in `conversation`.
    pub async fn wait_messages(&self, conversation: &str, count: usize) {
        loop {
            let changed = self.shared.changed.notified();
            if self.messages(conversation) >= count {
                return;
            }
            changed.await;
        }
    }

    /// Messages of other parties applied so far in `conversation`.
    pub fn messages(&self, conversation: &str) -> usize {
        self.shared
            .progress()
            .messages
            .get(conversation)
            .copied()
            .unwrap_or(0)
    }

    /// What the client went through so far.
    pub fn stats(&self) -> ClientStats {
        self.shared.progress().stats
    }
}
