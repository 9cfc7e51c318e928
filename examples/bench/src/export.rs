//! `export`: the memory an export of a large history costs. Seeds a SQLite store with messages (Chinese and
//! English), then, in a child process of its own for each mode, opens the store, notes its resident memory,
//! exports every message to a file and reports its peak resident memory (`VmHWM`) against that baseline:
//! `stream` writes each chunk as it comes (what the engine's `export_history` gives an HTTP body), `buffer`
//! collects the whole export in memory first (what a non-streaming export would cost), for comparison.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use kf_core::model::{Actor, ClientId, ConversationId, GroupId, MessageBody, TenantId, Timestamp, VisitorId};
use kf_core::store::{
    ConversationLog, EventDraft, ExportFormat, ExportKind, History, HistoryQuery, NewConversation,
};
use kf_store_sqlite::{SqliteConfig, SqliteStore};

use crate::sys::{self, thousands};

/// Options of `kf-bench export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Messages seeded (and exported).
    #[arg(long, default_value_t = 100_000)]
    pub messages: usize,
    /// Conversations they are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub conversations: usize,
    /// `csv` or `jsonl`.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Directory for the database and export files. Default: `target/bench-tmp` of the workspace.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Options of the (internal) child that runs one export.
#[derive(Debug, clap::Args)]
pub struct ExportChildArgs {
    /// The seeded database.
    #[arg(long)]
    pub db: PathBuf,
    /// Where the export is written.
    #[arg(long)]
    pub out: PathBuf,
    /// `csv` or `jsonl`.
    #[arg(long)]
    pub format: String,
    /// `stream` or `buffer`.
    #[arg(long)]
    pub mode: String,
}

fn text(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("message {i:08}: 您好，请问我的订单什么时候发货？订单号 {i}")
    } else {
        format!("message {i:08}: I would like a refund for order {i}, the parcel never arrived")
    }
}

/// `VmRSS`, `VmHWM` (peak resident size) and `RssAnon` of this process, in KiB.
fn own_memory() -> Result<(u64, u64, u64)> {
    let status = fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("no {name} line"))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("cannot parse {line:?}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?, field("RssAnon:")?))
}

async fn seed(path: &Path, conversations: usize, messages: usize) -> Result<()> {
    let store = SqliteStore::open(path, SqliteConfig::default())
        .with_context(|| format!("cannot open {}", path.display()))?;
    let tenant = TenantId::new("bench")?;
    let group = GroupId::new("support")?;
    let mut targets = Vec::with_capacity(conversations);
    for k in 0..conversations {
        let visitor = VisitorId::new(format!("v{k}"))?;
        let created = store
            .create_conversation(NewConversation {
                id: ConversationId::generate(),
                tenant: tenant.clone(),
                visitor: visitor.clone(),
                group: group.clone(),
                client_id: ClientId::new("open")?,
                entry: None,
                fields: Default::default(),
                at: Timestamp::now(),
            })
            .await?;
        targets.push((created.conversation.id, visitor));
    }
    let mut i = 0;
    while i < messages {
        let end = (i + 500).min(messages);
        let drafts = (i..end)
            .map(|i| {
                let (conversation, visitor) = &targets[i % targets.len()];
                EventDraft::message(
                    *conversation,
                    Actor::Visitor(visitor.clone()),
                    None,
                    MessageBody::text(text(i)),
                    Timestamp::now(),
                )
            })
            .collect();
        for result in store.append_batch(drafts).await {
            result.context("seeding append failed")?;
        }
        i = end;
    }
    store.close()?;
    Ok(())
}

pub async fn run(args: ExportArgs) -> Result<()> {
    // Checked here; the children parse it again.
    args.format.parse::<ExportFormat>()?;
    ensure!(args.conversations >= 1, "--conversations must be at least 1");
    let root = args.dir.clone().unwrap_or_else(crate::store::default_dir);
    fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let dir = root.join(format!("export-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    sys::Machine::read().print();
    let db = dir.join("kf.sqlite3");
    let start = Instant::now();
    seed(&db, args.conversations, args.messages).await?;
    let db_bytes = fs::metadata(&db)?.len()
        + fs::metadata(dir.join("kf.sqlite3-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "seeded {} messages over {} conversations in {:.1} s; database {:.1} MiB",
        thousands(args.messages as f64),
        thousands(args.conversations as f64),
        start.elapsed().as_secs_f64(),
        db_bytes as f64 / 1_048_576.0
    );
    let exe = std::env::current_exe().context("cannot find the benchmark's own executable")?;
    for mode in ["stream", "buffer"] {
        let out = dir.join(format!("export-{mode}.{}", args.format));
        let output = tokio::process::Command::new(&exe)
            .arg("export-child")
            .arg("--db")
            .arg(&db)
            .arg("--out")
            .arg(&out)
            .arg("--format")
            .arg(&args.format)
            .arg("--mode")
            .arg(mode)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .await
            .context("cannot run the export child")?;
        if !output.status.success() {
            bail!("the export child failed: {}", output.status);
        }
        print!("{}", String::from_utf8_lossy(&output.stdout));
        fs::remove_file(&out).ok();
    }
    println!("load average at the end: {}", sys::load_average());
    fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// The child: open the store, note the memory, export everything, report.
pub async fn child(args: ExportChildArgs) -> Result<()> {
    let format: ExportFormat = args.format.parse()?;
    let store = Arc::new(SqliteStore::open(&args.db, SqliteConfig::default())?);
    let history: Arc<dyn History> = store.clone();
    // Warm up: one page read, so the baseline includes the read connection and its statements.
    let query = HistoryQuery::new(TenantId::new("bench")?);
    history.search(&query).await?;
    let (baseline_rss, _, baseline_anon) = own_memory()?;
    let start = Instant::now();
    let mut stream = kf_core::store::export(history, query, ExportKind::Messages, format);
    let mut file = std::io::BufWriter::new(fs::File::create(&args.out)?);
    let (mut bytes, mut chunks, mut peak_anon) = (0u64, 0u64, baseline_anon);
    let mut buffered = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        chunks += 1;
        if args.mode == "buffer" {
            buffered.push(chunk);
        } else {
            file.write_all(&chunk)?;
        }
        if chunks.is_multiple_of(20) {
            peak_anon = peak_anon.max(own_memory()?.2);
        }
    }
    for chunk in &buffered {
        file.write_all(chunk)?;
    }
    file.flush()?;
    let elapsed = start.elapsed();
    let (rss, peak_rss, anon) = own_memory()?;
    let peak_anon = peak_anon.max(anon);
    drop(buffered);
    let lines = fs::read(&args.out)?.iter().filter(|&&b| b == b'\n').count();
    println!(
        "{:>6} {}: {} bytes in {} chunks, {} lines, {:.2} s ({} rows/s); RSS before {} KiB, peak {} KiB \
         (+{} KiB), at the end {} KiB; anonymous before {} KiB, peak sampled {} KiB (+{} KiB)",
        args.mode,
        args.format,
        thousands(bytes as f64),
        thousands(chunks as f64),
        thousands(lines as f64),
        elapsed.as_secs_f64(),
        thousands(lines as f64 / elapsed.as_secs_f64()),
        thousands(baseline_rss as f64),
        thousands(peak_rss as f64),
        thousands(peak_rss.saturating_sub(baseline_rss) as f64),
        thousands(rss as f64),
        thousands(baseline_anon as f64),
        thousands(peak_anon as f64),
        thousands(peak_anon.saturating_sub(baseline_anon) as f64),
    );
    store.close()?;
    Ok(())
}
