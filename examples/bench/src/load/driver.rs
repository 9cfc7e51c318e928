//! The load generator proper: a server child, the conversations set up on it (a visitor connection and an
//! agent connection each, plus one idle presence connection per agent), and open-loop steps of load at a given
//! rate, each measured in a window after a warm-up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{SinkExt, StreamExt, TryStreamExt};
use kf_core::auth::{Identity, SignedTokens};
use kf_core::clock::SystemClock;
use kf_core::model::{AgentId, TenantId, VisitorId};
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_tungstenite::tungstenite::Message;

use super::child::{ChildSpec, ServerChild, Target, proc_cpu_ticks};
use super::client::{self, WsSink, WsSource};
use super::proto::{self, Frame};
use super::schedule::{Schedule, Side};
use super::stats::{Percentiles, Recorder, cpu_percent};
use super::{GROUP, TENANT, agent_name};
use crate::sys::{self, ProcMemory};

/// Connections being set up at once.
const SETUP_CONCURRENCY: usize = 32;
/// How long one setup exchange may take.
const SETUP_LIMIT: Duration = Duration::from_secs(60);

/// Issues the tokens each server accepts.
#[derive(Clone, Debug)]
pub enum Tokens {
    Kf(SignedTokens, TenantId),
    Baseline,
}

impl Tokens {
    pub fn new(target: Target, key: &[u8]) -> Result<Tokens> {
        Ok(match target {
            Target::Kf => Tokens::Kf(
                SignedTokens::new(key, Arc::new(SystemClock)).context("weak signing key")?,
                TenantId::new(TENANT)?,
            ),
            Target::Baseline => Tokens::Baseline,
        })
    }

    pub fn visitor(&self, i: usize) -> Result<String> {
        Ok(match self {
            Tokens::Kf(tokens, tenant) => tokens.issue(
                &Identity::visitor(tenant.clone(), VisitorId::new(format!("v{i}"))?),
                Duration::from_secs(24 * 3600),
            ),
            Tokens::Baseline => format!("visitor:v{i}"),
        })
    }

    pub fn agent(&self, name: &str) -> Result<String> {
        Ok(match self {
            Tokens::Kf(tokens, tenant) => tokens.issue(
                &Identity::agent(tenant.clone(), AgentId::new(name)?),
                Duration::from_secs(24 * 3600),
            ),
            Tokens::Baseline => format!("agent:{name}"),
        })
    }
}

/// A conversation opened by visitor `v{index}`, assigned to `agent`.
#[derive(Clone, Debug)]
pub struct Opened {
    pub index: usize,
    pub conversation: Arc<str>,
    pub agent: String,
}

/// Opens visitor `v{i}`'s connection and conversation and subscribes to it; returns the connection with its
/// cursor.
pub async fn open_visitor(
    addr: std::net::SocketAddr,
    tokens: &Tokens,
    i: usize,
) -> Result<(client::Ws, Opened, u64)> {
    let mut ws = client::connect(addr, i).await?;
    let epoch = client::hello(&mut ws, &tokens.visitor(i)?, SETUP_LIMIT).await?;
    client::send(&mut ws, proto::open("o", &format!("open-{i}"), GROUP)).await?;
    let opened = client::until(&mut ws, SETUP_LIMIT, |f| f.kind == "opened").await?;
    let conversation: Arc<str> = opened
        .conversation_id()
        .context("`opened` without a conversation id")?
        .into();
    let mut assigned = opened.assigned_agent().map(str::to_owned);
    let mut cursor = client::subscribe_with(&mut ws, &conversation, 0, &epoch, SETUP_LIMIT, |event| {
        if let Some(agent) = event.data.as_ref().and_then(|d| d.agent.clone()) {
            assigned = Some(agent);
        }
    })
    .await?;
    let agent = match assigned {
        Some(agent) => agent,
        None => {
            // Queued: wait for its `assigned` event (an agent's presence may still be on its way).
            let event = client::until(&mut ws, SETUP_LIMIT, |f| {
                f.kind == "event" && f.data.as_ref().is_some_and(|d| d.kind == "assigned")
            })
            .await
            .with_context(|| format!("conversation {conversation} was not assigned"))?;
            cursor = cursor.max(event.seq.unwrap_or(0));
            event
                .data
                .and_then(|d| d.agent)
                .context("`assigned` without an agent")?
        }
    };
    Ok((
        ws,
        Opened {
            index: i,
            conversation,
            agent,
        },
        cursor,
    ))
}

/// One side of a conversation under load.
#[derive(Debug)]
struct LoadConn {
    sink: Arc<AsyncMutex<WsSink>>,
    reader: JoinHandle<()>,
}

/// The parameters of a load session.
#[derive(Clone, Debug)]
pub struct SessionSpec {
    pub conversations: usize,
    pub agents: usize,
}

/// A server child with its conversations set up, ready for steps of load.
#[derive(Debug)]
pub struct Session {
    pub server: ServerChild,
    origin: Instant,
    recorder: Arc<Mutex<Recorder>>,
    /// Per conversation: the conversation id, the visitor's and the agent's connection.
    pairs: Vec<(Arc<str>, LoadConn, LoadConn)>,
    presence: Vec<LoadConn>,
    ticks_per_second: u64,
    pub setup: Duration,
}

/// What one step measured.
#[derive(Clone, Debug)]
pub struct StepResult {
    pub rate: f64,
    pub latency: Percentiles,
    /// The generator's own lateness (send time minus due time), p99, ms.
    pub lag_p99: f64,
    pub scheduled: u64,
    pub delivered: u64,
    pub undelivered: u64,
    /// Deliveries per second during the window.
    pub delivered_rate: f64,
    pub server_cpu: f64,
    pub generator_cpu: f64,
    pub server_memory: ProcMemory,
    pub errors: u64,
    pub duplicates: u64,
    pub disconnects: u64,
    pub load: String,
}

impl StepResult {
    pub fn describe(&self) -> String {
        let l = &self.latency;
        format!(
            "rate {:.0}/s: p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ms; delivered {:.0}/s ({} of {} due, {} late past the drain); \
             server CPU {:.0}% RSS {:.1} MiB; generator CPU {:.0}%, send lag p99 {:.2} ms; errors {} repeated {} disconnects {} [load {}]",
            self.rate,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.delivered_rate,
            self.delivered,
            self.scheduled,
            self.undelivered,
            self.server_cpu,
            self.server_memory.rss_kib as f64 / 1024.0,
            self.generator_cpu,
            self.lag_p99,
            self.errors,
            self.duplicates,
            self.disconnects,
            self.load
        )
    }
}

fn micros(since: Instant, origin: Instant) -> u64 {
    since.saturating_duration_since(origin).as_micros() as u64
}

impl Session {
    /// Starts the child and sets up `conversations` (presence connections first, then the visitors' opens,
    /// then one agent connection per conversation).
    pub async fn start(spec: &ChildSpec, session: &SessionSpec, key: &[u8]) -> Result<Session> {
        let server = ServerChild::spawn(spec).await?;
        let started = Instant::now();
        let tokens = Tokens::new(spec.target, key)?;
        let origin = Instant::now();
        let recorder = Arc::new(Mutex::new(Recorder::new(0, 0)));
        let addr = server.addr;
        let mut presence = Vec::new();
        for a in 0..session.agents {
            let mut ws = client::connect(addr, a).await?;
            client::hello(&mut ws, &tokens.agent(&agent_name(a))?, SETUP_LIMIT).await?;
            presence.push(spawn_idle(ws));
        }
        // Let the engine register the agents as online before the first conversation is routed.
        sleep(Duration::from_millis(500)).await;
        let visitors: Vec<(client::Ws, Opened, u64)> = futures::stream::iter(0..session.conversations)
            .map(|i| open_visitor(addr, &tokens, i))
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
            .context("cannot open the conversations")?;
        let agents: Vec<(client::Ws, u64)> = futures::stream::iter(visitors.iter())
            .map(|(_, opened, _)| {
                let tokens = &tokens;
                async move {
                    let mut ws = client::connect(addr, opened.index + 3).await?;
                    let epoch = client::hello(&mut ws, &tokens.agent(&opened.agent)?, SETUP_LIMIT).await?;
                    let cursor =
                        client::subscribe(&mut ws, &opened.conversation, 0, &epoch, SETUP_LIMIT).await?;
                    anyhow::Ok((ws, cursor))
                }
            })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
            .context("cannot connect the agents")?;
        let mut pairs = Vec::new();
        for ((visitor, opened, v_cursor), (agent, a_cursor)) in visitors.into_iter().zip(agents) {
            let v = spawn_reader(visitor, Side::Visitor, v_cursor, &recorder, origin);
            let a = spawn_reader(agent, Side::Agent, a_cursor, &recorder, origin);
            pairs.push((opened.conversation, v, a));
        }
        Ok(Session {
            server,
            origin,
            recorder,
            pairs,
            presence,
            ticks_per_second: super::child::ticks_per_second(),
            setup: started.elapsed(),
        })
    }

    /// One step: `rate` messages per second for `warmup + duration`, measured over `duration`; then waits up
    /// to `drain` for the window's messages to arrive.
    pub async fn step(
        &self,
        rate: f64,
        warmup: Duration,
        duration: Duration,
        drain: Duration,
    ) -> Result<StepResult> {
        let schedule = Schedule::new(rate, self.pairs.len());
        // Whole microseconds after the generator's origin, so due times and the window agree exactly.
        let step_us = micros(Instant::now(), self.origin) + 100_000;
        let window = (
            step_us + warmup.as_micros() as u64,
            step_us + (warmup + duration).as_micros() as u64,
        );
        let end_rel = window.1 - step_us;
        *self.recorder.lock().unwrap_or_else(|p| p.into_inner()) = Recorder::new(window.0, window.1);
        let mut senders = Vec::with_capacity(self.pairs.len() * 2);
        for (c, (conversation, visitor, agent)) in self.pairs.iter().enumerate() {
            for (side, conn) in [(Side::Visitor, visitor), (Side::Agent, agent)] {
                senders.push(tokio::spawn(send_loop(
                    Arc::clone(&conn.sink),
                    Arc::clone(conversation),
                    schedule,
                    c,
                    side,
                    self.origin,
                    step_us,
                    end_rel,
                    Arc::clone(&self.recorder),
                )));
            }
        }
        let at = |us: u64| self.origin + Duration::from_micros(us);
        sleep_until(at(window.0)).await;
        let server_before = self.server.cpu_ticks()?;
        let self_before = proc_cpu_ticks(std::process::id())?;
        let measured_from = Instant::now();
        sleep_until(at(window.1)).await;
        let elapsed = measured_from.elapsed();
        let server_cpu = cpu_percent(
            server_before,
            self.server.cpu_ticks()?,
            self.ticks_per_second,
            elapsed,
        );
        let generator_cpu = cpu_percent(
            self_before,
            proc_cpu_ticks(std::process::id())?,
            self.ticks_per_second,
            elapsed,
        );
        let server_memory = self.server.memory()?;
        let load = sys::load_average();
        let scheduled = schedule.due_between(window.0 - step_us, window.1 - step_us);
        let drain_until = Instant::now() + drain;
        loop {
            let delivered = self.recorder.lock().unwrap_or_else(|p| p.into_inner()).delivered;
            if delivered >= scheduled || Instant::now() >= drain_until {
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        for sender in senders {
            sender.abort();
            let _ = sender.await;
        }
        let now = micros(Instant::now(), self.origin);
        let mut recorder = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        let undelivered = scheduled.saturating_sub(recorder.delivered);
        recorder.undelivered(undelivered, now);
        let result = StepResult {
            rate,
            latency: Percentiles::of(&recorder.latency),
            lag_p99: Percentiles::of(&recorder.lag).p99,
            scheduled,
            delivered: recorder.delivered,
            undelivered,
            delivered_rate: recorder.delivered_during as f64 / duration.as_secs_f64(),
            server_cpu,
            generator_cpu,
            server_memory,
            errors: recorder.errors,
            duplicates: recorder.duplicates,
            disconnects: recorder.disconnects,
            load,
        };
        // Whatever arrives from now on belongs to no window.
        *recorder = Recorder::new(0, 0);
        Ok(result)
    }

    /// Closes the connections and stops the child cleanly.
    pub async fn stop(self, patience: Duration) -> Result<()> {
        for (_, visitor, agent) in self.pairs {
            visitor.reader.abort();
            agent.reader.abort();
        }
        for conn in self.presence {
            conn.reader.abort();
        }
        self.server.stop(patience).await
    }
}

/// Keeps an idle connection alive: answers pings, drops everything else.
fn spawn_idle(ws: client::Ws) -> LoadConn {
    let (sink, mut source) = ws.split();
    let sink = Arc::new(AsyncMutex::new(sink));
    let pong_sink = Arc::clone(&sink);
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = source.next().await {
            if let Message::Text(text) = message
                && text.as_str().contains(r#""type":"ping""#)
                && pong_sink
                    .lock()
                    .await
                    .send(Message::text(proto::PONG))
                    .await
                    .is_err()
            {
                break;
            }
        }
    });
    LoadConn { sink, reader }
}

fn spawn_reader(
    ws: client::Ws,
    side: Side,
    cursor: u64,
    recorder: &Arc<Mutex<Recorder>>,
    origin: Instant,
) -> LoadConn {
    let (sink, source) = ws.split();
    let sink = Arc::new(AsyncMutex::new(sink));
    let reader = tokio::spawn(read_loop(
        source,
        Arc::clone(&sink),
        side,
        cursor,
        Arc::clone(recorder),
        origin,
    ));
    LoadConn { sink, reader }
}

/// Reads one side's connection: records the other side's messages (latency from their due time), acks,
/// errors, and events that repeat or go back in seq (a lost message shows as undelivered); answers pings.
async fn read_loop(
    mut source: WsSource,
    sink: Arc<AsyncMutex<WsSink>>,
    side: Side,
    mut cursor: u64,
    recorder: Arc<Mutex<Recorder>>,
    origin: Instant,
) {
    let other = side.other().role();
    while let Some(message) = source.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let now = micros(Instant::now(), origin);
        let Ok(frame) = Frame::parse(text.as_str()) else {
            continue;
        };
        match frame.kind.as_str() {
            "event" => {
                // Own messages are not checked: kf echoes them, the baseline does not (the ack tells their seq).
                let own = frame.author.as_ref().is_some_and(|a| a.role == side.role());
                if own {
                    continue;
                }
                let mut recorder = recorder.lock().unwrap_or_else(|p| p.into_inner());
                match frame.seq {
                    Some(seq) if seq <= cursor => {
                        recorder.duplicates += 1;
                        continue;
                    }
                    Some(seq) => cursor = seq,
                    None => {}
                }
                if frame.is_message()
                    && frame.author.as_ref().is_some_and(|a| a.role == other)
                    && let Some(due) = frame.client_id.as_deref().and_then(proto::due_of)
                {
                    recorder.delivered(due, now);
                }
            }
            "ack" => recorder.lock().unwrap_or_else(|p| p.into_inner()).acks += 1,
            "error" => {
                let mut recorder = recorder.lock().unwrap_or_else(|p| p.into_inner());
                if recorder.errors < 5 {
                    eprintln!("error frame: {text}");
                }
                recorder.errors += 1;
            }
            "ping" if sink.lock().await.send(Message::text(proto::PONG)).await.is_err() => break,
            _ => {}
        }
    }
    recorder.lock().unwrap_or_else(|p| p.into_inner()).disconnects += 1;
}

/// Sends one side's messages of a step at their due times (never waiting for answers).
#[allow(clippy::too_many_arguments)]
async fn send_loop(
    sink: Arc<AsyncMutex<WsSink>>,
    conversation: Arc<str>,
    schedule: Schedule,
    index: usize,
    side: Side,
    origin: Instant,
    step_us: u64,
    end_rel_us: u64,
    recorder: Arc<Mutex<Recorder>>,
) {
    for k in schedule.sender(index, side) {
        let due_rel = schedule.due_micros(k);
        if due_rel >= end_rel_us {
            break;
        }
        let due = step_us + due_rel;
        sleep_until(origin + Duration::from_micros(due)).await;
        let frame = proto::send(&conversation, &proto::message_client_id(k, due), proto::TEXT);
        if sink.lock().await.send(Message::text(frame)).await.is_err() {
            break;
        }
        let now = micros(Instant::now(), origin);
        recorder.lock().unwrap_or_else(|p| p.into_inner()).sent(due, now);
    }
}
