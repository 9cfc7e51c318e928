//! The steady-load scenarios, each running kf and the baseline interleaved (kf, baseline, kf, baseline …) in
//! one invocation and reporting kf/baseline ratios first: `seed` (a fixed load for a fixed time), `max-rate`
//! (the highest rate whose p99 stays under a bound), `soak` (the seed load for long, memory sampled).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, ensure};

use super::bisect::RateSearch;
use super::child::{ChildSpec, Target, run_dir};
use super::driver::{Session, SessionSpec, StepResult};
use super::stats::{paired_ratio, slope};
use super::{hex, random_key};
use crate::sys::{Machine, load_average, median, thousands};

/// How long a stopping child may take to shut down and exit.
const STOP_PATIENCE: Duration = Duration::from_secs(60);

/// Options every load scenario shares.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Runs of each server (kf, baseline, kf, baseline …); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Conversations, each with a visitor connection and an agent connection.
    #[arg(long, default_value_t = 300)]
    pub conversations: usize,
    /// Agents (one idle presence connection each, plus one connection per conversation they were given).
    #[arg(long, default_value_t = 21)]
    pub agents: usize,
    /// Messages per second, in all conversations together, both directions.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds measured (per run; for `max-rate` per step).
    #[arg(long, default_value_t = 20)]
    pub duration_s: u64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 3)]
    pub warmup_s: u64,
    /// Seconds to wait after the window for its last messages.
    #[arg(long, default_value_t = 5)]
    pub drain_s: u64,
    /// Directory for the database files (default: `target/bench-tmp` of the workspace).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl LoadArgs {
    fn dir(&self) -> Result<PathBuf> {
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp"));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn session(&self) -> SessionSpec {
        SessionSpec {
            conversations: self.conversations,
            agents: self.agents,
        }
    }
}

/// Starts a session of `target` on a fresh database, runs `body` on it, stops it and removes the files.
async fn with_session<T>(
    args: &LoadArgs,
    dir: &Path,
    target: Target,
    key: &[u8],
    label: &str,
    body: impl AsyncFnOnce(&Session) -> Result<T>,
) -> Result<T> {
    let run_dir = run_dir(dir, &format!("{}-{label}", target.name()))?;
    let spec = ChildSpec {
        target,
        db: run_dir.join("load.sqlite3"),
        agents: args.agents,
        key_hex: hex(key),
        callgrind_out: None,
    };
    let session = Session::start(&spec, &args.session(), key).await?;
    println!(
        "  {} ready: {} conversations set up in {:.1} s",
        target.name(),
        args.conversations,
        session.setup.as_secs_f64()
    );
    let result = body(&session).await;
    let stopped = session.stop(STOP_PATIENCE).await;
    let _ = std::fs::remove_dir_all(&run_dir);
    let value = result?;
    stopped?;
    Ok(value)
}

fn header(args: &LoadArgs, what: &str) {
    Machine::read().print();
    println!(
        "{what}: {} conversations (a visitor and an agent connection each), {} agents; kf: serve-kf child \
         (Engine + SqliteStore, SqliteConfig::default(), kf-transport-ws, WsConfig::default()); baseline: \
         serve-baseline child (tokio-tungstenite + one SQLite group-commit writer thread, WAL, synchronous=FULL)",
        args.conversations, args.agents
    );
}

const TARGETS: [Target; 2] = [Target::Kf, Target::Baseline];

/// `seed`: the same fixed load on both servers, `--runs` times each, interleaved.
pub async fn seed(args: LoadArgs) -> Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    header(&args, "seed");
    println!(
        "load: {} msg/s for {} s (+{} s warm-up), open loop, latency from each message's due time to its delivery at the other side",
        args.rate, args.duration_s, args.warmup_s
    );
    let dir = args.dir()?;
    let key = random_key()?;
    let mut results: [Vec<StepResult>; 2] = [Vec::new(), Vec::new()];
    for run in 1..=args.runs {
        for (t, target) in TARGETS.into_iter().enumerate() {
            let result = with_session(&args, &dir, target, &key, &run.to_string(), async |session| {
                session
                    .step(
                        args.rate,
                        Duration::from_secs(args.warmup_s),
                        Duration::from_secs(args.duration_s),
                        Duration::from_secs(args.drain_s),
                    )
                    .await
            })
            .await?;
            println!("run {run} {:<8} {}", target.name(), result.describe());
            results[t].push(result);
        }
    }
    print_table(&results, args.runs);
    Ok(())
}

fn print_table(results: &[Vec<StepResult>; 2], runs: usize) {
    type Metric = (&'static str, fn(&StepResult) -> f64, usize);
    let metrics: [Metric; 11] = [
        ("p50 ms", |r| r.latency.p50, 2),
        ("p90 ms", |r| r.latency.p90, 2),
        ("p99 ms", |r| r.latency.p99, 2),
        ("p99.9 ms", |r| r.latency.p999, 2),
        ("max ms", |r| r.latency.max, 2),
        ("delivered msg/s", |r| r.delivered_rate, 0),
        ("server CPU % of a core", |r| r.server_cpu, 1),
        ("server RSS MiB", |r| r.server_memory.rss_kib as f64 / 1024.0, 1),
        ("generator CPU %", |r| r.generator_cpu, 1),
        ("generator send lag p99 ms", |r| r.lag_p99, 2),
        (
            "undelivered + errors + repeated",
            |r| (r.undelivered + r.errors + r.duplicates) as f64,
            0,
        ),
    ];
    println!("\nsummary (medians of {runs} runs each; ratio = median of the per-run kf/baseline ratios):");
    println!("| figure | kf/baseline | kf | baseline |");
    println!("|---|---:|---:|---:|");
    for (name, get, decimals) in metrics {
        let kf: Vec<f64> = results[0].iter().map(get).collect();
        let base: Vec<f64> = results[1].iter().map(get).collect();
        let ratio = paired_ratio(&kf, &base);
        let ratio = if ratio.is_nan() {
            "–".to_owned()
        } else {
            format!("{ratio:.2}")
        };
        println!(
            "| {name} | {ratio} | {:.*} | {:.*} |",
            decimals,
            median(&kf),
            decimals,
            median(&base)
        );
    }
    let loads: Vec<&str> = results
        .iter()
        .flatten()
        .map(|r| r.load.split_whitespace().next().unwrap_or("?"))
        .collect();
    println!("1-minute load averages during the runs: {}", loads.join(", "));
}

/// Options of `max-rate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MaxRateArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// The latency goal: p99 below this many milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub p99_ms: f64,
    /// The first rate tried (msg/s).
    #[arg(long, default_value_t = 2000.0)]
    pub start: f64,
    /// Step factor until the goal is missed.
    #[arg(long, default_value_t = 2.0)]
    pub factor: f64,
    /// Bisect until the pass and the failure are this close (relative).
    #[arg(long, default_value_t = 0.05)]
    pub precision: f64,
    /// Most rates tried per run.
    #[arg(long, default_value_t = 12)]
    pub max_steps: usize,
}

/// `max-rate`: per server and run, step up and bisect for the highest rate whose p99 (undelivered messages
/// counted as late as the drain) stays below `--p99-ms`, on one server process and one set of conversations.
pub async fn max_rate(args: MaxRateArgs) -> Result<()> {
    let load = &args.load;
    ensure!(load.runs >= 1, "--runs must be at least 1");
    header(load, "max-rate");
    println!(
        "search: start {} msg/s, x{} until p99 >= {} ms, then bisect to {}%; each step {} s measured after {} s warm-up",
        args.start,
        args.factor,
        args.p99_ms,
        args.precision * 100.0,
        load.duration_s,
        load.warmup_s
    );
    let dir = load.dir()?;
    let key = random_key()?;
    let mut best: [Vec<StepResult>; 2] = [Vec::new(), Vec::new()];
    for run in 1..=load.runs {
        for (t, target) in TARGETS.into_iter().enumerate() {
            let found = with_session(load, &dir, target, &key, &format!("max{run}"), async |session| {
                let mut search = RateSearch::new(args.start, args.factor, args.precision, args.max_steps);
                let mut best: Option<StepResult> = None;
                while let Some(rate) = search.next() {
                    let step = session
                        .step(
                            rate.round(),
                            Duration::from_secs(load.warmup_s),
                            Duration::from_secs(load.duration_s),
                            Duration::from_secs(load.drain_s),
                        )
                        .await?;
                    let passed = step.latency.p99 < args.p99_ms && step.undelivered == 0 && step.errors == 0;
                    println!(
                        "  run {run} {:<8} {} {}",
                        target.name(),
                        if passed { "PASS" } else { "fail" },
                        step.describe()
                    );
                    search.record(rate.round(), passed);
                    if passed && best.as_ref().is_none_or(|b| b.rate < step.rate) {
                        best = Some(step);
                    }
                    // Let a backlog drain before the next step.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                anyhow::Ok(best)
            })
            .await?;
            match found {
                Some(step) => {
                    println!(
                        "run {run} {:<8} highest rate with p99 < {} ms: {} msg/s (p99 {:.2} ms, server CPU {:.0}%) [load {}]",
                        target.name(),
                        args.p99_ms,
                        thousands(step.rate),
                        step.latency.p99,
                        step.server_cpu,
                        load_average()
                    );
                    best[t].push(step);
                }
                None => println!("run {run} {:<8} no rate met the goal", target.name()),
            }
        }
    }
    let rate = |r: &StepResult| r.rate;
    let kf: Vec<f64> = best[0].iter().map(rate).collect();
    let base: Vec<f64> = best[1].iter().map(rate).collect();
    println!("\nsummary (medians over runs):");
    println!("| figure | kf/baseline | kf | baseline |");
    println!("|---|---:|---:|---:|");
    println!(
        "| highest rate with p99 < {} ms, msg/s | {:.2} | {} | {} |",
        args.p99_ms,
        paired_ratio(&kf, &base),
        thousands(median(&kf)),
        thousands(median(&base))
    );
    let p99 = |r: &StepResult| r.latency.p99;
    let cpu = |r: &StepResult| r.server_cpu;
    for (name, get) in [
        ("p99 at that rate, ms", p99 as fn(&StepResult) -> f64),
        ("server CPU % at that rate", cpu),
    ] {
        let kf: Vec<f64> = best[0].iter().map(get).collect();
        let base: Vec<f64> = best[1].iter().map(get).collect();
        println!(
            "| {name} | {:.2} | {:.1} | {:.1} |",
            paired_ratio(&kf, &base),
            median(&kf),
            median(&base)
        );
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}

/// Options of `soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Total seconds of load per server (documented runs: 1,800).
    #[arg(long, default_value_t = 1800)]
    pub total_s: u64,
    /// Seconds per sample (one measured step each; RSS read at its end).
    #[arg(long, default_value_t = 60)]
    pub sample_s: u64,
}

/// `soak`: the seed load for `--total-s` per server, as consecutive steps of `--sample-s`, each reporting its
/// latency, errors and the server's RSS.
pub async fn soak(args: SoakArgs) -> Result<()> {
    let load = &args.load;
    ensure!(
        args.sample_s >= 1 && args.total_s >= args.sample_s,
        "--total-s must be at least --sample-s"
    );
    header(load, "soak");
    let samples = args.total_s / args.sample_s;
    println!(
        "load: {} msg/s for {} samples of {} s per server, runs {}",
        load.rate, samples, args.sample_s, load.runs
    );
    let dir = load.dir()?;
    let key = random_key()?;
    let mut rows = Vec::new();
    for run in 1..=load.runs {
        for target in TARGETS {
            let series = with_session(load, &dir, target, &key, &format!("soak{run}"), async |session| {
                let mut series = Vec::new();
                let start = std::time::Instant::now();
                for i in 0..samples {
                    let warmup = if i == 0 { load.warmup_s } else { 0 };
                    let step = session
                        .step(
                            load.rate,
                            Duration::from_secs(warmup),
                            Duration::from_secs(args.sample_s),
                            Duration::from_secs(load.drain_s),
                        )
                        .await?;
                    let minutes = start.elapsed().as_secs_f64() / 60.0;
                    println!("  {:<8} t={minutes:.1} min {}", target.name(), step.describe());
                    series.push((minutes, step));
                }
                anyhow::Ok(series)
            })
            .await?;
            rows.push((run, target, series));
        }
    }
    println!("\nsummary per run:");
    println!(
        "| run | server | RSS first sample MiB | RSS last MiB | RSS max MiB | RSS slope, 2nd half, MiB/h | p99 median of samples ms | p99 worst sample ms | delivered msg/s median | errors + repeated + undelivered + disconnects |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (run, target, series) in &rows {
        let mib = |s: &StepResult| s.server_memory.rss_kib as f64 / 1024.0;
        let half: Vec<(f64, f64)> = series[series.len() / 2..]
            .iter()
            .map(|(m, s)| (*m / 60.0, mib(s)))
            .collect();
        let p99s: Vec<f64> = series.iter().map(|(_, s)| s.latency.p99).collect();
        let rates: Vec<f64> = series.iter().map(|(_, s)| s.delivered_rate).collect();
        let trouble: u64 = series
            .iter()
            .map(|(_, s)| s.errors + s.duplicates + s.undelivered + s.disconnects)
            .sum();
        println!(
            "| {run} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.0} | {trouble} |",
            target.name(),
            series.first().map_or(0.0, |(_, s)| mib(s)),
            series.last().map_or(0.0, |(_, s)| mib(s)),
            series.iter().map(|(_, s)| mib(s)).fold(0.0, f64::max),
            slope(&half),
            median(&p99s),
            p99s.iter().copied().fold(0.0, f64::max),
            median(&rates)
        );
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}
