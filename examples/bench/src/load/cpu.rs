//! `cpu`: CPU cost per delivered message, counted in instructions by `valgrind --tool=callgrind`, which
//! repeats to within a fraction of a percent on a noisy machine where time does not. Each server child runs
//! under callgrind twice on a fresh database: once with its conversations set up and no messages, once with the
//! same setup and a fixed number of messages sent closed loop (each conversation's visitor and agent take
//! turns; a side sends its next message after the other side received the previous one). The difference of
//! the two runs' total instructions (all threads), divided by the messages delivered, is the cost of one
//! message: startup, setup and shutdown cancel out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, TryStreamExt};

use super::child::{ChildSpec, ServerChild, Target, run_dir};
use super::client::{self, Ws};
use super::driver::{Tokens, open_visitor};
use super::{hex, proto, random_key};
use crate::sys::{Machine, load_average, thousands};

/// How long one closed-loop exchange may take under callgrind.
const LIMIT: Duration = Duration::from_secs(300);

/// Options of `cpu`.
#[derive(Debug, Clone, clap::Args)]
pub struct CpuArgs {
    /// Conversations (a visitor and an agent connection each).
    #[arg(long, default_value_t = 20)]
    pub conversations: usize,
    /// Messages per conversation (both sides together) in the measured run.
    #[arg(long, default_value_t = 150)]
    pub messages: usize,
    /// Agents.
    #[arg(long, default_value_t = 21)]
    pub agents: usize,
    /// Where the callgrind output files are kept (default: `target/bench-tmp/cpu`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Total instructions (`Ir`) of a callgrind output file (its `totals:` or `summary:` line).
pub fn total_instructions(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// One pair of connections of the closed loop.
struct Pair {
    conversation: String,
    visitor: Ws,
    agent: Ws,
}

async fn setup(addr: std::net::SocketAddr, tokens: &Tokens, conversations: usize) -> Result<Vec<Pair>> {
    let opened: Vec<_> = futures::stream::iter(0..conversations)
        .map(|i| open_visitor(addr, tokens, i))
        .buffered(4)
        .try_collect()
        .await?;
    let mut pairs = Vec::new();
    for (visitor, opened, _) in opened {
        let mut agent = client::connect(addr, opened.index + 3).await?;
        let epoch = client::hello(&mut agent, &tokens.agent(&opened.agent)?, LIMIT).await?;
        client::subscribe(&mut agent, &opened.conversation, 0, &epoch, LIMIT).await?;
        pairs.push(Pair {
            conversation: opened.conversation.to_string(),
            visitor,
            agent,
        });
    }
    Ok(pairs)
}

/// Visitor and agent take turns, `messages` in all; returns how many the other side received.
async fn closed_loop(pair: &mut Pair, messages: usize) -> Result<u64> {
    let mut delivered = 0;
    for k in 0..messages {
        let (from, to, role) = if k % 2 == 0 {
            (&mut pair.visitor, &mut pair.agent, "visitor")
        } else {
            (&mut pair.agent, &mut pair.visitor, "agent")
        };
        let client_id = proto::message_client_id(k as u64, 0);
        client::send(from, proto::send(&pair.conversation, &client_id, proto::TEXT)).await?;
        client::until(to, LIMIT, |f| {
            f.is_message()
                && f.client_id.as_deref() == Some(client_id.as_str())
                && f.author.as_ref().is_some_and(|a| a.role == role)
        })
        .await?;
        delivered += 1;
    }
    Ok(delivered)
}

/// One server run under callgrind: setup, `messages` per conversation, clean stop. Returns (Ir, delivered).
async fn measure(
    args: &CpuArgs,
    target: Target,
    key: &[u8],
    messages: usize,
    out: &Path,
) -> Result<(u64, u64)> {
    let dir = run_dir(out, &format!("{}-{messages}", target.name()))?;
    let file = out.join(format!("callgrind.{}.{messages}.out", target.name()));
    let spec = ChildSpec {
        target,
        db: dir.join("load.sqlite3"),
        agents: args.agents,
        key_hex: hex(key),
        callgrind_out: Some(file.clone()),
    };
    let server = ServerChild::spawn(&spec).await?;
    let tokens = Tokens::new(target, key)?;
    let result = async {
        // Agents online first (kf routes only to online agents), kept open to the end.
        let mut presence = Vec::new();
        for a in 0..args.agents {
            let mut ws = client::connect(server.addr, a).await?;
            client::hello(&mut ws, &tokens.agent(&super::agent_name(a))?, LIMIT).await?;
            presence.push(ws);
        }
        let mut pairs = setup(server.addr, &tokens, args.conversations).await?;
        let delivered: u64 = futures::stream::iter(pairs.iter_mut())
            .map(|pair| closed_loop(pair, messages))
            .buffer_unordered(args.conversations.max(1))
            .try_collect::<Vec<u64>>()
            .await?
            .into_iter()
            .sum();
        drop(pairs);
        drop(presence);
        anyhow::Ok(delivered)
    }
    .await;
    // Let the server see the connections close before it is told to stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped = server.stop(Duration::from_secs(600)).await;
    let _ = std::fs::remove_dir_all(&dir);
    let delivered = result?;
    stopped?;
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let Some(ir) = total_instructions(&text) else {
        bail!("no totals in {}", file.display());
    };
    Ok((ir, delivered))
}

pub async fn run(args: CpuArgs) -> Result<()> {
    ensure!(args.messages >= 2, "--messages must be at least 2");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp/cpu"));
    std::fs::create_dir_all(&out)?;
    Machine::read().print();
    println!(
        "cpu: valgrind --tool=callgrind on each server child; {} conversations, {} messages each (closed loop), minus a run with none",
        args.conversations, args.messages
    );
    let key = random_key()?;
    let mut per_message = Vec::new();
    for target in [Target::Kf, Target::Baseline] {
        let (base_ir, _) = measure(&args, target, &key, 0, &out).await?;
        let (ir, delivered) = measure(&args, target, &key, args.messages, &out).await?;
        ensure!(delivered > 0, "nothing delivered");
        let each = ir.saturating_sub(base_ir) as f64 / delivered as f64;
        println!(
            "{:<8} Ir with messages {} - without {} = {} over {} delivered messages: {} instructions per message [load {}]",
            target.name(),
            thousands(ir as f64),
            thousands(base_ir as f64),
            thousands(ir.saturating_sub(base_ir) as f64),
            delivered,
            thousands(each),
            load_average()
        );
        per_message.push(each);
    }
    println!("\n| figure | kf/baseline | kf | baseline |");
    println!("|---|---:|---:|---:|");
    println!(
        "| instructions per delivered message (callgrind Ir, all threads) | {:.2} | {} | {} |",
        per_message[0] / per_message[1],
        thousands(per_message[0]),
        thousands(per_message[1])
    );
    println!(
        "callgrind files (per function: callgrind_annotate FILE): {}",
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrind_totals() {
        let text = "events: Ir\nfn=main\n1 5\nsummary: 123456\ntotals: 123456\n";
        assert_eq!(total_instructions(text), Some(123_456));
        assert_eq!(total_instructions("events: Ir\n"), None);
    }
}
