//! The client's state, shared by both transports: followed conversations and their cursors, the sends not yet
//! acknowledged, the reconnect loop, and what an arriving frame means.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::sse::PostResult;
use super::{ClientConfig, ClientError, Command, Shared, Transport};
use crate::checker::{Ledger, Seen, Violation};

/// Error codes after which a request is retried with the same client id (§10; an unknown code too, §2).
fn is_final(code: &str) -> bool {
    matches!(
        code,
        "bad_json"
            | "unknown_type"
            | "invalid_frame"
            | "forbidden"
            | "not_found"
            | "invalid_state"
            | "too_large"
            | "conflict"
            | "at_capacity"
            | "agent_unavailable"
            | "unsupported_version"
            | "hello_required"
    )
}

/// A send not yet acknowledged.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) client_id: String,
    pub(super) text: String,
    reply: Option<oneshot::Sender<Result<u64, ClientError>>>,
    /// Times it was written.
    pub(super) written: u32,
}

/// One conversation the client follows.
#[derive(Debug, Default)]
pub(super) struct Conv {
    /// Whether it is followed (learnt from `opened`, `inbox` or a `conversation` frame), not just heard of.
    pub(super) followed: bool,
    /// The last seq applied (§17).
    pub(super) last_applied: u64,
    /// Sends in user order; the head is the one being sent.
    pub(super) outbox: VecDeque<Pending>,
    /// Whether the head is written and unanswered.
    pub(super) in_flight: bool,
    /// Not before this may the head be written again (after a retryable error).
    pub(super) retry_at: Option<Instant>,
    /// Retryable failures of the head in a row (its backoff).
    pub(super) retries: u32,
    /// WebSocket: whether a `subscribe` went out on this connection.
    pub(super) subscribe_sent: bool,
    /// The seq this connection's subscription (WebSocket) or stream (SSE) must deliver next, once known.
    pub(super) wire_next: Option<u64>,
}

/// An open not yet answered.
#[derive(Debug)]
pub(super) struct PendingOpen {
    pub(super) client_id: String,
    reply: Option<oneshot::Sender<Result<String, ClientError>>>,
    pub(super) in_flight: bool,
    pub(super) retry_at: Option<Instant>,
    pub(super) retries: u32,
    pub(super) written: u32,
}

/// How a session (one connection) ended.
#[derive(Debug)]
pub(super) enum End {
    /// It never opened or it broke; reconnect after the usual backoff.
    Broken(String),
    /// The liveness rule declared it dead.
    Dead,
    /// `too_many_connections`: reconnect after the long delay.
    TooMany,
}

#[derive(Debug)]
pub(super) struct Core {
    pub(super) config: ClientConfig,
    pub(super) ledger: Arc<Ledger>,
    shared: Arc<Shared>,
    assigned: mpsc::UnboundedSender<String>,
    pub(super) rng: ChaCha8Rng,
    /// The epoch the cursors count in (§17).
    pub(super) epoch: Option<String>,
    pub(super) convs: BTreeMap<String, Conv>,
    pub(super) open: Option<PendingOpen>,
    /// Failed connection attempts since the last session that opened (§18).
    attempt: u32,
    next_client_id: u64,
    /// SSE: the `id:` of the last event applied — the stream's resume cursor.
    pub(super) cursor: Option<String>,
    /// SSE: where finished POSTs report.
    pub(super) replies: mpsc::UnboundedSender<PostResult>,
    replies_rx: Option<mpsc::UnboundedReceiver<PostResult>>,
}

impl Core {
    pub(super) fn new(
        config: ClientConfig,
        ledger: Arc<Ledger>,
        shared: Arc<Shared>,
        assigned: mpsc::UnboundedSender<String>,
    ) -> Core {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let (replies, replies_rx) = mpsc::unbounded_channel();
        Core {
            replies,
            replies_rx: Some(replies_rx),
            config,
            ledger,
            shared,
            assigned,
            rng,
            epoch: None,
            convs: BTreeMap::new(),
            open: None,
            attempt: 0,
            next_client_id: 0,
            cursor: None,
        }
    }

    /// The reconnect loop (§18): a session, then a jittered delay, for ever. Commands that arrive meanwhile are
    /// queued.
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let Some(mut replies) = self.replies_rx.take() else {
            return;
        };
        loop {
            self.shared.update(|p| p.stats.attempts += 1);
            let end = match self.config.transport {
                Transport::Ws => self.ws_session(&mut commands).await,
                Transport::Sse => self.sse_session(&mut commands, &mut replies).await,
            };
            let delay = match &end {
                End::TooMany => {
                    let (low, high) = self.config.too_many_delay;
                    self.between(low, high)
                }
                End::Dead | End::Broken(_) => {
                    let ceiling = self
                        .config
                        .backoff_base
                        .saturating_mul(1 << self.attempt.min(16))
                        .min(self.config.backoff_cap);
                    self.between(Duration::ZERO, ceiling)
                }
            };
            if let End::Dead = end {
                self.shared.update(|p| p.stats.dead += 1);
            }
            let why = match &end {
                End::Broken(reason) => reason.as_str(),
                End::Dead => "dead (liveness)",
                End::TooMany => "too many connections",
            };
            tracing::debug!(party = %self.config.party, why, ?delay, "session ended");
            self.attempt = self.attempt.saturating_add(1);
            let until = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    command = commands.recv() => match command {
                        Some(command) => self.accept(command),
                        None => return,
                    },
                }
            }
        }
    }

    /// A uniformly random duration in `[low, high]`.
    pub(super) fn between(&mut self, low: Duration, high: Duration) -> Duration {
        if high <= low {
            return low;
        }
        self.rng.random_range(low..=high)
    }

    /// The backoff before retrying a request that failed `retries` times in a row (same shape as reconnecting).
    pub(super) fn retry_delay(&mut self, retries: u32) -> Duration {
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1 << retries.min(16))
            .min(self.config.backoff_cap);
        self.between(Duration::ZERO, ceiling)
    }

    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_client_id += 1;
        let salt: u32 = self.rng.random();
        format!("{prefix}-{}-{salt:08x}", self.next_client_id)
    }

    /// Queues a user command (written when the connection allows).
    pub(super) fn accept(&mut self, command: Command) {
        match command {
            Command::Open { reply } => {
                let client_id = self.fresh_id("o");
                self.open = Some(PendingOpen {
                    client_id,
                    reply: Some(reply),
                    in_flight: false,
                    retry_at: None,
                    retries: 0,
                    written: 0,
                });
            }
            Command::Send {
                conversation,
                text,
                reply,
            } => {
                let client_id = self.fresh_id("m");
                // Recorded before it is written (§17: pending before the socket).
                self.ledger.sent(&self.config.party, &conversation, &client_id);
                self.convs
                    .entry(conversation)
                    .or_default()
                    .outbox
                    .push_back(Pending {
                        client_id,
                        text,
                        reply: Some(reply),
                        written: 0,
                    });
            }
        }
    }

    /// A session opened: `welcome` (§17 steps 1–2, §18: the backoff starts over).
    pub(super) fn on_welcome(&mut self, welcome: &Value) {
        self.attempt = 0;
        self.shared.update(|p| p.stats.sessions += 1);
        let epoch = welcome["epoch"].as_str().map(str::to_owned);
        if let (Some(stored), Some(now)) = (&self.epoch, &epoch)
            && stored != now
        {
            let detail = format!("the epoch changed from {stored} to {now}");
            self.ledger
                .violation(Violation::Reset, &self.config.party, detail);
        }
    }

    /// The epoch to send with cursors: the stored one (§17 step 4), else the session's.
    pub(super) fn epoch_for_cursors(&mut self, welcome: &Value) -> Value {
        if self.epoch.is_none() {
            self.epoch = welcome["epoch"].as_str().map(str::to_owned);
        }
        self.epoch.clone().map_or(Value::Null, Value::String)
    }

    /// An `inbox` entry or `conversation` frame: follow what is ours to follow. Agents follow every conversation
    /// assigned to them (and tell the user of new ones); visitors their open ones.
    pub(super) fn upsert(&mut self, conversation: &Value) {
        let Some(id) = conversation["id"].as_str() else {
            return;
        };
        if self.convs.get(id).is_some_and(|conv| conv.followed) {
            return;
        }
        let mine = match self.config.party.strip_prefix("agent:") {
            Some(agent) => {
                conversation["status"] == "assigned" && conversation["agent"].as_str() == Some(agent)
            }
            None => conversation["status"] != "closed",
        };
        if mine {
            self.follow(id);
        }
    }

    /// Starts following `id` (agents: the user learns of it).
    pub(super) fn follow(&mut self, id: &str) {
        let conv = self.convs.entry(id.to_owned()).or_default();
        if conv.followed {
            return;
        }
        conv.followed = true;
        if self.config.party.starts_with("agent:") {
            let _ = self.assigned.send(id.to_owned());
        }
    }

    /// Checks an event's seq against what this subscription or stream must deliver next, and records a violation
    /// if it is not that. `first` is what the server may start with when nothing is known yet (None: anything).
    pub(super) fn check_wire(&mut self, conversation: &str, seq: u64, transport: &str) {
        let party = self.config.party.clone();
        let conv = self.convs.entry(conversation.to_owned()).or_default();
        if let Some(next) = conv.wire_next {
            if seq < next {
                let kind = if seq + 1 == next {
                    Violation::Duplicate
                } else {
                    Violation::Reorder
                };
                let detail = format!("{transport} {conversation}: seq {seq} after seq {}", next - 1);
                self.ledger.violation(kind, &party, detail);
                return;
            }
            if seq > next {
                let detail = format!("{transport} {conversation}: seq {seq} when {next} was due");
                self.ledger.violation(Violation::Gap, &party, detail);
            }
        }
        conv.wire_next = Some(seq + 1);
    }

    /// An `event` frame, by the rule of §17 step 6. Whether it was applied (`Some(false)`: dropped as already
    /// applied; `None`: a gap — the caller resubscribes or reopens the stream).
    pub(super) fn on_event(&mut self, frame: &Value) -> Option<bool> {
        let (Some(conversation), Some(seq)) = (frame["conversation"].as_str(), frame["seq"].as_u64()) else {
            self.ledger.violation(
                Violation::Other,
                &self.config.party,
                format!("an event without conversation or seq: {frame}"),
            );
            return Some(false);
        };
        let conversation = conversation.to_owned();
        let party = self.config.party.clone();
        let last = self.convs.entry(conversation.clone()).or_default().last_applied;
        if seq <= last {
            return Some(false);
        }
        if seq > last + 1 {
            return None;
        }
        let Some(seen) = Seen::from_event(frame) else {
            return Some(false);
        };
        let from_other = seen.kind == "message" && seen.author != party && seen.author != "system";
        let own = seen.author == party;
        let client_id = seen.client_id.clone();
        self.ledger.applied(&party, &conversation, seen);
        if let Some(conv) = self.convs.get_mut(&conversation) {
            conv.last_applied = seq;
        }
        if from_other {
            self.shared
                .update(|p| *p.messages.entry(conversation.clone()).or_default() += 1);
        }
        // §17 step 6: our own message's event acknowledges its send.
        if own && let Some(client_id) = client_id {
            self.acknowledge(&conversation, &client_id, seq, false);
        }
        Some(true)
    }

    /// An `ack` (or our own message's event): records it, and if it answers the head of the outbox, resolves it
    /// and lets the next send go.
    pub(super) fn acknowledge(&mut self, conversation: &str, client_id: &str, seq: u64, duplicate: bool) {
        let party = self.config.party.clone();
        if client_id.starts_with("o-") {
            // The `created` event of our own open carries the open's client id.
            return;
        }
        self.ledger.acked(&party, conversation, client_id, seq);
        if duplicate {
            self.shared.update(|p| p.stats.duplicate_acks += 1);
        }
        let Some(conv) = self.convs.get_mut(conversation) else {
            return;
        };
        if conv
            .outbox
            .front()
            .is_some_and(|head| head.client_id == client_id)
        {
            if let Some(mut head) = conv.outbox.pop_front()
                && let Some(reply) = head.reply.take()
            {
                let _ = reply.send(Ok(seq));
            }
            conv.in_flight = false;
            conv.retry_at = None;
            conv.retries = 0;
        }
    }

    /// An `error` answering the send of `client_id`: retried later, or given up (a violation: the message will
    /// never be stored).
    pub(super) fn send_failed(&mut self, conversation: &str, client_id: &str, code: &str, message: &str) {
        let party = self.config.party.clone();
        let retries = match self.convs.get(conversation) {
            Some(conv)
                if conv
                    .outbox
                    .front()
                    .is_some_and(|head| head.client_id == client_id) =>
            {
                conv.retries
            }
            _ => return,
        };
        let final_error = is_final(code);
        let delay = self.retry_delay(retries);
        let Some(conv) = self.convs.get_mut(conversation) else {
            return;
        };
        conv.in_flight = false;
        if final_error {
            if let Some(mut head) = conv.outbox.pop_front()
                && let Some(reply) = head.reply.take()
            {
                let _ = reply.send(Err(ClientError::Refused(format!("{code}: {message}"))));
            }
            conv.retries = 0;
            conv.retry_at = None;
            let detail = format!("send {client_id} in {conversation} refused: {code} ({message})");
            self.ledger.violation(Violation::Refused, &party, detail);
        } else {
            conv.retries += 1;
            conv.retry_at = Some(Instant::now() + delay);
        }
    }

    /// The head of `conversation`'s outbox if it may be written now; marks it in flight.
    pub(super) fn next_send(&mut self, conversation: &str) -> Option<(String, String)> {
        let now = Instant::now();
        let conv = self.convs.get_mut(conversation)?;
        if conv.in_flight || conv.retry_at.is_some_and(|at| at > now) {
            return None;
        }
        let head = conv.outbox.front_mut()?;
        head.written += 1;
        let resend = head.written > 1;
        let picked = (head.client_id.clone(), head.text.clone());
        conv.in_flight = true;
        if resend {
            self.shared.update(|p| p.stats.resent += 1);
        }
        Some(picked)
    }

    /// The pending open if it may be written now; marks it in flight.
    pub(super) fn next_open(&mut self) -> Option<String> {
        let now = Instant::now();
        let open = self.open.as_mut()?;
        if open.in_flight || open.retry_at.is_some_and(|at| at > now) {
            return None;
        }
        open.in_flight = true;
        open.written += 1;
        Some(open.client_id.clone())
    }

    /// `opened`: follow the conversation and tell the user.
    pub(super) fn opened(&mut self, reply: &Value) {
        let Some(id) = reply["conversation"]["id"].as_str() else {
            self.ledger.violation(
                Violation::Other,
                &self.config.party,
                format!("`opened` without a conversation: {reply}"),
            );
            return;
        };
        let id = id.to_owned();
        self.follow(&id);
        if let Some(mut open) = self.open.take()
            && let Some(reply) = open.reply.take()
        {
            let _ = reply.send(Ok(id));
        }
    }

    /// An `error` answering the open.
    pub(super) fn open_failed(&mut self, code: &str, message: &str) {
        let delay = self.retry_delay(self.open.as_ref().map_or(0, |open| open.retries));
        let party = self.config.party.clone();
        let Some(open) = self.open.as_mut() else {
            return;
        };
        open.in_flight = false;
        if is_final(code) {
            if let Some(mut open) = self.open.take()
                && let Some(reply) = open.reply.take()
            {
                let _ = reply.send(Err(ClientError::Refused(format!("{code}: {message}"))));
            }
            self.ledger.violation(
                Violation::Refused,
                &party,
                format!("open refused: {code} ({message})"),
            );
        } else {
            open.retries += 1;
            open.retry_at = Some(Instant::now() + delay);
        }
    }

    /// The earliest moment a request waiting out a retry delay may go.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        let sends = self
            .convs
            .values()
            .filter(|conv| !conv.in_flight && !conv.outbox.is_empty())
            .filter_map(|conv| conv.retry_at);
        let open = self
            .open
            .as_ref()
            .filter(|open| !open.in_flight)
            .and_then(|open| open.retry_at);
        sends.chain(open).min()
    }
}

/// Sleeps until `at`, or for ever.
pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
