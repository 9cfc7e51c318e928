//! `storm`: a reconnect storm. As many clients as the open-file limit allows (the server child and this
//! generator each have their own limit) hold a conversation each: one visitor connection per conversation and
//! one connection per agent following all of that agent's conversations. Then every connection is dropped at
//! the same instant and every client reconnects at once, as kf's resume algorithm says (`docs/protocol.md`
//! §17–18): `hello`, `subscribe` from its cursor, and each visitor sends the message it had pending. Measured:
//! the time from the drop until every client is back (`welcome`), and until every agent has received every
//! visitor's new message with no gap in any conversation's seqs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

use super::child::{ChildSpec, ServerChild, Target, run_dir};
use super::client::{self, Ws};
use super::driver::{Opened, Tokens, open_visitor};
use super::proto::{self, Applied, Frame};
use super::{agent_name, hex, random_key};
use crate::sys::{Machine, load_average, median, open_files_limit, thousands};

/// Open files kept free in each process besides the clients.
const HEADROOM: u64 = 200;
/// Conversations opened at once during setup.
const SETUP_CONCURRENCY: usize = 200;

/// Options of `storm`.
#[derive(Debug, Clone, clap::Args)]
pub struct StormArgs {
    /// Visitor clients (default: the open-file limit minus the agents and headroom).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Agents (one connection each).
    #[arg(long, default_value_t = 21)]
    pub agents: usize,
    /// Runs of each server (kf, baseline, kf, …).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Give up on a storm after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub deadline_s: u64,
    /// Each client waits a random time up to this before its first reconnect (0: all at the same instant).
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Directory for the database files (default: `target/bench-tmp`).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// A small deterministic random number generator (xorshift) for backoff jitter.
fn jitter(seed: u64, ceiling: Duration) -> Duration {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ceiling.mul_f64((x % 10_000) as f64 / 10_000.0)
}

/// The protocol's reconnect delay after `attempt` failed attempts: random(0, min(5 s, 0.5 s × 2^attempt)).
fn backoff(seed: u64, attempt: u32) -> Duration {
    let ceiling = Duration::from_millis(500)
        .saturating_mul(1 << attempt.min(4))
        .min(Duration::from_secs(5));
    jitter(seed, ceiling)
}

/// What one agent connection follows: per conversation, the cursor and whether the visitor's new message came.
#[derive(Debug, Default)]
struct Following {
    cursors: HashMap<Arc<str>, u64>,
    got_post: HashMap<Arc<str>, bool>,
    gaps: u64,
    duplicates: u64,
}

impl Following {
    fn apply(&mut self, frame: &Frame) {
        let (Some(conversation), Some(seq)) = (frame.conversation_id(), frame.seq) else {
            return;
        };
        let Some((key, cursor)) = self.cursors.get_key_value(conversation) else {
            return;
        };
        let (key, mut cursor) = (Arc::clone(key), *cursor);
        match proto::apply(&mut cursor, seq) {
            Applied::Next => {}
            Applied::Gap => self.gaps += 1,
            Applied::Duplicate => {
                self.duplicates += 1;
                return;
            }
        }
        self.cursors.insert(Arc::clone(&key), cursor);
        if frame.is_message()
            && frame
                .client_id
                .as_deref()
                .is_some_and(|id| id.starts_with("post-"))
        {
            self.got_post.insert(key, true);
        }
    }

    fn all_posted(&self) -> bool {
        self.got_post.values().all(|&got| got)
    }
}

/// Subscribes to every followed conversation (pipelined) and reads until each replay is applied; with
/// `until_posted`, also until every visitor's new message arrived.
async fn follow(
    ws: &mut Ws,
    following: &mut Following,
    epoch: &str,
    until_posted: bool,
    limit: Duration,
) -> Result<()> {
    let conversations: Vec<(Arc<str>, u64)> = following
        .cursors
        .iter()
        .map(|(c, n)| (Arc::clone(c), *n))
        .collect();
    for (conversation, cursor) in &conversations {
        client::send(ws, proto::subscribe(conversation, *cursor, epoch)).await?;
    }
    let mut targets: HashMap<Arc<str>, u64> = HashMap::new();
    let read = async {
        loop {
            let caught_up = targets.len() == conversations.len()
                && targets
                    .iter()
                    .all(|(c, last)| following.cursors.get(c).is_some_and(|n| n >= last));
            if caught_up && (!until_posted || following.all_posted()) {
                return Ok(());
            }
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame = Frame::parse(text.as_str())?;
                    match frame.kind.as_str() {
                        "event" => following.apply(&frame),
                        "subscribed" => {
                            if let Some(c) = frame.conversation_id()
                                && let Some((key, _)) = following.cursors.get_key_value(c)
                            {
                                targets.insert(Arc::clone(key), frame.last_seq.unwrap_or(0));
                            }
                        }
                        "error" => bail!("error frame: {text}"),
                        "ping" => client::send(ws, proto::PONG.to_owned()).await?,
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(close))) => bail!("closed: {close:?}"),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
                None => bail!("connection ended"),
            }
        }
    };
    timeout(limit, read).await.context("not caught up in time")?
}

/// One client's storm outcome: when it was back (welcome), when it was done, attempts made.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    welcomed: Option<Duration>,
    done: Option<Duration>,
    attempts: u32,
}

/// One storm on one server: setup, drop, reconnect; returns the outcomes and the agents' gap/dup counts.
async fn storm_once(
    args: &StormArgs,
    target: Target,
    key: &[u8],
    clients: usize,
    dir: &std::path::Path,
) -> Result<Report> {
    let run_dir = run_dir(dir, &format!("{}-storm", target.name()))?;
    let spec = ChildSpec {
        target,
        db: run_dir.join("load.sqlite3"),
        agents: args.agents,
        key_hex: hex(key),
        callgrind_out: None,
    };
    let server = ServerChild::spawn(&spec).await?;
    let result = storm_on(args, &server, target, key, clients).await;
    let stopped = server.stop(Duration::from_secs(60)).await;
    let _ = std::fs::remove_dir_all(&run_dir);
    let report = result?;
    stopped?;
    Ok(report)
}

#[derive(Debug)]
struct Report {
    setup: Duration,
    visitors: Vec<Outcome>,
    agents: Vec<Outcome>,
    gaps: u64,
    duplicates: u64,
    rss_mib: f64,
    load: String,
}

async fn storm_on(
    args: &StormArgs,
    server: &ServerChild,
    target: Target,
    key: &[u8],
    clients: usize,
) -> Result<Report> {
    let addr = server.addr;
    let tokens = Arc::new(Tokens::new(target, key)?);
    let limit = Duration::from_secs(args.deadline_s);
    let started = Instant::now();
    // Agents first (kf routes to online agents); their connections are drained while the visitors open.
    let mut agent_tasks = Vec::new();
    for a in 0..args.agents {
        let mut ws = client::connect(addr, a).await?;
        let epoch = client::hello(&mut ws, &tokens.agent(&agent_name(a))?, limit).await?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = ws.next() => match message {
                        Some(Ok(Message::Text(text))) if text.as_str().contains(r#""type":"ping""#) => {
                            client::send(&mut ws, proto::PONG.to_owned()).await?;
                        }
                        Some(Ok(_)) => {}
                        _ => bail!("an agent connection ended during setup"),
                    },
                    _ = &mut stopped => return anyhow::Ok((ws, epoch)),
                }
            }
        });
        agent_tasks.push((stop, task));
    }
    sleep(Duration::from_millis(500)).await;
    let visitors: Vec<(Ws, Opened, u64)> = futures::stream::iter(0..clients)
        .map(|i| {
            let tokens = Arc::clone(&tokens);
            async move { open_visitor(addr, &tokens, i).await }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .context("cannot open the conversations")?;
    let mut agents = Vec::new();
    for (stop, task) in agent_tasks {
        let _ = stop.send(());
        agents.push(task.await??);
    }
    let mut following: Vec<Following> = (0..args.agents).map(|_| Following::default()).collect();
    let agent_index: HashMap<String, usize> = (0..args.agents).map(|a| (agent_name(a), a)).collect();
    for (_, opened, _) in &visitors {
        let a = *agent_index
            .get(&opened.agent)
            .with_context(|| format!("unknown agent {}", opened.agent))?;
        following[a].cursors.insert(Arc::clone(&opened.conversation), 0);
        following[a]
            .got_post
            .insert(Arc::clone(&opened.conversation), false);
    }
    let agents: Vec<(Ws, Following)> = futures::stream::iter(agents.into_iter().zip(following))
        .map(|((mut ws, epoch), mut following)| async move {
            follow(&mut ws, &mut following, &epoch, false, limit).await?;
            anyhow::Ok((ws, following))
        })
        .buffer_unordered(args.agents.max(1))
        .try_collect()
        .await
        .context("the agents could not follow their conversations")?;
    let setup = started.elapsed();
    println!(
        "  {}: {clients} visitors and {} agents connected, each conversation followed, in {:.1} s; server RSS {:.0} MiB",
        target.name(),
        args.agents,
        setup.as_secs_f64(),
        server.memory()?.rss_kib as f64 / 1024.0
    );

    // The storm: every connection dropped at once, then every client back at once.
    let mut visitor_state = Vec::with_capacity(visitors.len());
    for (ws, opened, cursor) in visitors {
        drop(ws);
        visitor_state.push((opened, cursor));
    }
    let mut agent_state = Vec::with_capacity(agents.len());
    for (ws, following) in agents {
        drop(ws);
        agent_state.push(following);
    }
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(args.deadline_s);
    let jitter_max = Duration::from_millis(args.jitter_ms);
    let mut visitor_tasks = Vec::with_capacity(visitor_state.len());
    for (opened, cursor) in visitor_state {
        let tokens = Arc::clone(&tokens);
        visitor_tasks.push(tokio::spawn(async move {
            let seed = opened.index as u64;
            sleep(jitter(seed ^ 0xabcd, jitter_max)).await;
            let mut outcome = Outcome {
                welcomed: None,
                done: None,
                attempts: 0,
            };
            let client_id = format!("post-{}", opened.index);
            while Instant::now() < deadline {
                outcome.attempts += 1;
                let attempt = async {
                    let mut ws = client::connect(addr, opened.index).await?;
                    let epoch = client::hello(&mut ws, &tokens.visitor(opened.index)?, limit).await?;
                    outcome.welcomed.get_or_insert(t0.elapsed());
                    client::subscribe(&mut ws, &opened.conversation, cursor, &epoch, limit).await?;
                    client::send(
                        &mut ws,
                        proto::send(&opened.conversation, &client_id, proto::TEXT),
                    )
                    .await?;
                    client::until(&mut ws, limit, |f| {
                        f.kind == "ack" && f.client_id.as_deref() == Some(&client_id)
                    })
                    .await?;
                    anyhow::Ok(ws)
                };
                match timeout(deadline.saturating_duration_since(Instant::now()), attempt).await {
                    Ok(Ok(ws)) => {
                        outcome.done = Some(t0.elapsed());
                        // Stay connected until the end of the storm, as a client would.
                        return (outcome, Some(ws));
                    }
                    Ok(Err(_)) => sleep(backoff(seed + u64::from(outcome.attempts), outcome.attempts)).await,
                    Err(_) => break,
                }
            }
            (outcome, None)
        }));
    }
    let mut agent_tasks = Vec::with_capacity(agent_state.len());
    for (a, mut following) in agent_state.into_iter().enumerate() {
        let tokens = Arc::clone(&tokens);
        agent_tasks.push(tokio::spawn(async move {
            sleep(jitter(a as u64 ^ 0x1234, jitter_max)).await;
            let mut outcome = Outcome {
                welcomed: None,
                done: None,
                attempts: 0,
            };
            while Instant::now() < deadline {
                outcome.attempts += 1;
                let attempt = async {
                    let mut ws = client::connect(addr, a).await?;
                    let epoch = client::hello(&mut ws, &tokens.agent(&agent_name(a))?, limit).await?;
                    outcome.welcomed.get_or_insert(t0.elapsed());
                    follow(&mut ws, &mut following, &epoch, true, limit).await?;
                    anyhow::Ok(ws)
                };
                match timeout(deadline.saturating_duration_since(Instant::now()), attempt).await {
                    Ok(Ok(ws)) => {
                        outcome.done = Some(t0.elapsed());
                        return (outcome, following, Some(ws));
                    }
                    Ok(Err(error)) => {
                        eprintln!("agent a{a}: attempt {} failed: {error:#}", outcome.attempts);
                        sleep(backoff(a as u64 + u64::from(outcome.attempts), outcome.attempts)).await;
                    }
                    Err(_) => break,
                }
            }
            (outcome, following, None)
        }));
    }
    let mut visitors = Vec::new();
    let mut held = Vec::new();
    for task in visitor_tasks {
        let (outcome, ws) = task.await?;
        visitors.push(outcome);
        held.extend(ws);
    }
    let mut agents = Vec::new();
    let (mut gaps, mut duplicates) = (0, 0);
    for task in agent_tasks {
        let (outcome, following, ws) = task.await?;
        agents.push(outcome);
        gaps += following.gaps;
        duplicates += following.duplicates;
        held.extend(ws);
    }
    let rss_mib = server.memory()?.rss_kib as f64 / 1024.0;
    drop(held);
    Ok(Report {
        setup,
        visitors,
        agents,
        gaps,
        duplicates,
        rss_mib,
        load: load_average(),
    })
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_owned(), |d| format!("{:.2}", d.as_secs_f64()))
}

/// The latest of the clients' times, `None` if any client never got there.
fn all_by(outcomes: &[Outcome], get: impl Fn(&Outcome) -> Option<Duration>) -> Option<Duration> {
    outcomes
        .iter()
        .map(get)
        .try_fold(Duration::ZERO, |acc, t| t.map(|t| acc.max(t)))
}

pub async fn run(args: StormArgs) -> Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let limit = open_files_limit().context("cannot read the open-files limit")?;
    let most = limit.saturating_sub(HEADROOM + args.agents as u64) as usize;
    let clients = args.clients.unwrap_or(most);
    ensure!(
        clients >= 1 && clients <= most,
        "{clients} clients need more than the open-file limit {limit} allows (at most {most})"
    );
    Machine::read().print();
    println!(
        "storm: {clients} visitors (one conversation and connection each) + {} agent connections, open-file limit {limit} per process; \
         all dropped at once, all reconnect {} (backoff after a failure as protocol.md §18), deadline {} s",
        args.agents,
        if args.jitter_ms == 0 {
            "at the same instant".to_owned()
        } else {
            format!("within {} ms", args.jitter_ms)
        },
        args.deadline_s
    );
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp")
    });
    std::fs::create_dir_all(&dir)?;
    let key = random_key()?;
    let mut totals: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 1..=args.runs {
        for (t, target) in [Target::Kf, Target::Baseline].into_iter().enumerate() {
            let report = storm_once(&args, target, &key, clients, &dir).await?;
            let everyone: Vec<Outcome> = report.visitors.iter().chain(&report.agents).copied().collect();
            let welcomed = all_by(&everyone, |o| o.welcomed);
            let visitors_done = all_by(&report.visitors, |o| o.done);
            let all_done = all_by(&everyone, |o| o.done);
            let failed = everyone.iter().filter(|o| o.done.is_none()).count();
            let retries: u32 = everyone.iter().map(|o| o.attempts.saturating_sub(1)).sum();
            let welcome_times: Vec<f64> = everyone
                .iter()
                .filter_map(|o| o.welcomed)
                .map(|d| d.as_secs_f64())
                .collect();
            println!(
                "run {run} {:<8} setup {:.1} s; after the drop: all {} clients back (welcome) in {} s (median {:.2} s), \
                 all visitors' new messages acked in {} s, all resumed gapless (every agent has every new message) in {} s; \
                 not done {failed}, retries {retries}, gaps {}, repeats {}; server RSS {:.0} MiB [load {}]",
                target.name(),
                report.setup.as_secs_f64(),
                thousands(everyone.len() as f64),
                secs(welcomed),
                median(&welcome_times),
                secs(visitors_done),
                secs(all_done),
                report.gaps,
                report.duplicates,
                report.rss_mib,
                report.load
            );
            totals[t].push(all_done.map_or(f64::INFINITY, |d| d.as_secs_f64()));
        }
    }
    println!("\n| figure | kf/baseline | kf | baseline |");
    println!("|---|---:|---:|---:|");
    println!(
        "| {clients} visitors + {} agents dropped at once: s until all resumed gapless | {:.2} | {:.2} | {:.2} |",
        args.agents,
        super::stats::paired_ratio(&totals[0], &totals[1]),
        median(&totals[0]),
        median(&totals[1])
    );
    println!("load average at the end: {}", load_average());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_protocol() {
        for seed in 0..100 {
            assert!(backoff(seed, 0) <= Duration::from_millis(500));
            assert!(backoff(seed, 2) <= Duration::from_secs(2));
            assert!(backoff(seed, 30) <= Duration::from_secs(5));
        }
        assert_eq!(jitter(7, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn all_by_needs_every_client() {
        let done = |s: Option<u64>| Outcome {
            welcomed: None,
            done: s.map(Duration::from_secs),
            attempts: 1,
        };
        assert_eq!(
            all_by(&[done(Some(1)), done(Some(3))], |o| o.done),
            Some(Duration::from_secs(3))
        );
        assert_eq!(all_by(&[done(Some(1)), done(None)], |o| o.done), None);
    }
}
