//! `store`: the SQLite store's durable append rate through the `Store` trait, next to raw rusqlite baselines
//! measured in the same run on the same disk.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, TryStreamExt};
use kf_core::model::{
    Actor, ClientId, ConversationId, EventKind, GroupId, MessageBody, TenantId, Timestamp, VisitorId,
};
use kf_core::store::{ConversationLog, EventDraft, NewConversation};
use kf_store_sqlite::{SqliteConfig, SqliteStore, Synchronous};
use rusqlite::{Connection, params};
use tokio::sync::Barrier;

use crate::sys::{self, FileSystem, Machine, median, ms, percentile, thousands};

/// Options of `kf-bench store`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Messages appended per timed run (runs with a single writer use `--single-writer-messages`).
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Concurrent writer tasks; a comma-separated list runs each. A run with one writer is always added.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub writers: Vec<usize>,
    /// Timed runs per configuration; medians are reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Conversations the messages are spread over (created before the timed part).
    #[arg(long, default_value_t = 1_000)]
    pub conversations: usize,
    /// Messages per run with a single writer (every append is one commit, so this is slow).
    #[arg(long, default_value_t = 2_000)]
    pub single_writer_messages: usize,
    /// Rows per transaction of the raw rusqlite baseline.
    #[arg(long, default_value_t = 200)]
    pub raw_batch: usize,
    /// Also time the store with its search indexer off (`SqliteConfig::search_indexer`), interleaved with the
    /// normal runs: what the indexer, which follows the log on its own thread, costs the writes, measured in the
    /// same run; and report the indexer's lag and rate.
    #[arg(long)]
    pub search_index_cost: bool,
    /// Events the search indexer's catch-up is timed on (with `--search-index-cost`): a store written with the
    /// indexer off, then reopened with it on, as after the migration that adds the index.
    #[arg(long, default_value_t = 100_000)]
    pub catch_up_events: usize,
    /// Directory for the database files (must be on the disk you want to measure, not a tmpfs). Default:
    /// `target/bench-tmp` of the workspace.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The text of every benchmark message (about 100 bytes, a typical chat line).
fn body(i: usize) -> String {
    format!("bench message {i:08}: the quick brown fox jumps over the lazy dog while the agent types a reply")
}

static FILE_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory for one run's database under `root`.
fn fresh_dir(root: &Path, what: &str) -> Result<PathBuf> {
    let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = root.join(format!("{what}-{}-{n}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn remove_dir(dir: &Path) {
    if let Err(error) = fs::remove_dir_all(dir) {
        eprintln!("warning: cannot remove {}: {error}", dir.display());
    }
}

/// One timed run of the store.
#[derive(Debug)]
struct StoreRun {
    elapsed: Duration,
    messages: usize,
    p50: Duration,
    p99: Duration,
    batches: u64,
    requests: u64,
    /// With the indexer on: how it kept up.
    index: Option<IndexRun>,
}

/// The search indexer during a timed run.
#[derive(Debug)]
struct IndexRun {
    /// Events it had not indexed when the last append was acknowledged.
    lag: u64,
    /// How long it then took to index them.
    drain: Duration,
    /// Events it indexed from the start of the timed part until it caught up, per second of that time.
    rate: f64,
}

impl StoreRun {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    fn mean_batch(&self) -> f64 {
        self.requests as f64 / self.batches.max(1) as f64
    }
}

/// How a timed store run keeps the search index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Indexing {
    /// The store's search indexer, following the log on its own thread.
    Indexer,
    /// Nothing: the indexer off.
    Off,
    /// An `AFTER INSERT` trigger in the writer's commit (how the index was first kept), for comparison.
    Triggers,
}

/// Opens a fresh store, creates the conversations, then has `writers` tasks append `messages` messages (each
/// append awaited: acknowledged after its commit), spread over the conversations.
async fn store_run(
    root: &Path,
    conversations: usize,
    writers: usize,
    messages: usize,
    index: Indexing,
) -> Result<StoreRun> {
    let search_index = index == Indexing::Indexer;
    let dir = fresh_dir(root, "store")?;
    let path = dir.join("kf.sqlite3");
    let store = Arc::new(
        SqliteStore::open(&path, SqliteConfig::default().with_search_indexer(search_index))
            .with_context(|| format!("cannot open the store at {}", path.display()))?,
    );
    ensure!(
        store.search_index().running == search_index,
        "the search indexer is not as asked"
    );
    if index == Indexing::Triggers {
        // What this branch did before the indexer: triggers that index each event inside the writer's commit
        // (the writer's connection sees the schema change at its next statement).
        let conn = Connection::open(&path)?;
        conn.execute_batch(
            "CREATE TRIGGER events_fts_insert AFTER INSERT ON events WHEN new.body IS NOT NULL BEGIN \
                 INSERT INTO events_fts (rowid, body) VALUES (new.id, new.body); \
             END;",
        )
        .context("cannot create the search index trigger")?;
    }
    let pragmas = store.pragmas();
    ensure!(
        pragmas.synchronous == Synchronous::Full && pragmas.journal_mode.eq_ignore_ascii_case("wal"),
        "the store is not in WAL with synchronous=FULL: {pragmas:?}"
    );

    let tenant = TenantId::new("bench")?;
    let group = GroupId::new("support")?;
    let targets: Vec<(ConversationId, VisitorId)> = futures::stream::iter(0..conversations)
        .map(|k| {
            let store = Arc::clone(&store);
            let (tenant, group) = (tenant.clone(), group.clone());
            async move {
                let visitor = VisitorId::new(format!("v{k}"))?;
                let created = store
                    .create_conversation(NewConversation {
                        id: ConversationId::generate(),
                        tenant,
                        visitor: visitor.clone(),
                        group,
                        client_id: ClientId::new("open")?,
                        entry: None,
                        fields: Default::default(),
                        at: Timestamp::now(),
                    })
                    .await
                    .context("create_conversation failed")?;
                anyhow::Ok((created.conversation.id, visitor))
            }
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    let targets = Arc::new(targets);

    let before = store.stats();
    let indexed_before = store.search_index().events;
    let barrier = Arc::new(Barrier::new(writers + 1));
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let (store, targets, barrier) = (Arc::clone(&store), Arc::clone(&targets), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            // Prepare this writer's drafts before the clock starts.
            let drafts = (w..messages)
                .step_by(writers)
                .map(|i| {
                    let (conversation, visitor) = &targets[i % targets.len()];
                    Ok(EventDraft::message(
                        *conversation,
                        Actor::Visitor(visitor.clone()),
                        Some(ClientId::new(format!("m{i}"))?),
                        MessageBody::text(body(i)),
                        Timestamp::now(),
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut latencies = Vec::with_capacity(drafts.len());
            barrier.wait().await;
            for draft in drafts {
                let start = Instant::now();
                let appended = store.append(draft).await.context("append failed")?;
                latencies.push(start.elapsed());
                ensure!(!appended.duplicate, "a fresh client id was taken for a duplicate");
            }
            anyhow::Ok(latencies)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(messages);
    for task in tasks {
        latencies.extend(task.await.context("a writer task panicked")??);
    }
    let elapsed = start.elapsed();
    let after = store.stats();
    let index = if search_index {
        let head = store.feed_head().await.context("feed_head failed")?.0;
        let lag = head.saturating_sub(store.search_index().position);
        let deadline = Instant::now() + Duration::from_secs(120);
        while store.search_index().position < head {
            ensure!(Instant::now() < deadline, "the search indexer did not catch up");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let took = start.elapsed();
        Some(IndexRun {
            lag,
            drain: took.saturating_sub(elapsed),
            rate: (store.search_index().events - indexed_before) as f64 / took.as_secs_f64(),
        })
    } else {
        None
    };
    ensure!(
        after.events - before.events == messages as u64,
        "the store counted {} new events, expected {messages}",
        after.events - before.events
    );
    store.close().context("closing the store failed")?;
    drop(store);
    remove_dir(&dir);

    latencies.sort();
    Ok(StoreRun {
        elapsed,
        messages,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        batches: after.batches - before.batches,
        requests: after.requests - before.requests,
        index,
    })
}

/// The tables an append touches, as `kf-store-sqlite`'s first migration creates them (kept in step by hand:
/// the baseline must write the same rows into the same indexes). The change feed adds nothing here: an event's
/// feed position is its rowid `id`, which every row already gets.
const RAW_SCHEMA: &str = r#"
    CREATE TABLE conversations (
        id             TEXT PRIMARY KEY NOT NULL,
        tenant         TEXT NOT NULL,
        visitor        TEXT NOT NULL,
        group_id       TEXT NOT NULL,
        open_client_id TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('queued', 'assigned', 'closed')),
        agent          TEXT,
        last_agent     TEXT,
        last_seq       INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        CHECK ((state = 'assigned') = (agent IS NOT NULL)),
        UNIQUE (tenant, visitor, open_client_id)
    );
    CREATE INDEX conversations_by_visitor ON conversations (tenant, visitor, created_at, id);
    CREATE INDEX conversations_by_agent ON conversations (tenant, agent, created_at, id) WHERE agent IS NOT NULL;
    CREATE INDEX conversations_open ON conversations (created_at, id) WHERE state <> 'closed';
    CREATE TABLE events (
        id           INTEGER PRIMARY KEY,
        conversation TEXT NOT NULL REFERENCES conversations (id),
        seq          INTEGER NOT NULL,
        at           INTEGER NOT NULL,
        author_role  TEXT NOT NULL,
        author_id    TEXT NOT NULL,
        client_id    TEXT,
        kind         TEXT NOT NULL,
        body         TEXT,
        data         TEXT NOT NULL,
        UNIQUE (conversation, seq)
    );
    CREATE UNIQUE INDEX events_by_client_id ON events (conversation, author_role, author_id, client_id)
        WHERE client_id IS NOT NULL;
"#;

/// What the raw baseline does per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RawMode {
    /// Only the event row's INSERT.
    Insert,
    /// The statements the store's writer runs per append: a savepoint, read the conversation, look up the
    /// client id, insert the event, update the conversation, release.
    Mirror,
}

#[derive(Debug)]
struct RawRun {
    elapsed: Duration,
    messages: usize,
}

impl RawRun {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// The median over runs of store rate / baseline rate, each pair measured back to back.
fn median_ratio(stores: &[StoreRun], baselines: &[RawRun]) -> f64 {
    median(
        &stores
            .iter()
            .zip(baselines)
            .map(|(s, r)| s.rate() / r.rate())
            .collect::<Vec<_>>(),
    )
}

/// Inserts the same event rows with plain rusqlite, `batch` rows per transaction, on one thread, in a fresh
/// WAL file with `synchronous=FULL`.
fn raw_run(
    root: &Path,
    conversations: usize,
    messages: usize,
    batch: usize,
    mode: RawMode,
) -> Result<RawRun> {
    let dir = fresh_dir(root, "raw")?;
    let path = dir.join("raw.sqlite3");
    let conn = Connection::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let journal: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    ensure!(
        journal.eq_ignore_ascii_case("wal"),
        "cannot use WAL: journal_mode is {journal}"
    );
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.execute_batch(RAW_SCHEMA)
        .context("cannot create the baseline schema")?;

    let now = i64::try_from(Timestamp::now().as_millis())?;
    let mut targets = Vec::with_capacity(conversations);
    conn.execute_batch("BEGIN")?;
    for k in 0..conversations {
        let id = ConversationId::generate().to_string();
        let visitor = format!("v{k}");
        conn.execute(
            "INSERT INTO conversations (id, tenant, visitor, group_id, open_client_id, state, agent, last_agent, \
             last_seq, created_at, updated_at) VALUES (?1, 'bench', ?2, 'support', 'open', 'queued', NULL, NULL, \
             1, ?3, ?3)",
            params![id, visitor, now],
        )?;
        targets.push((id, visitor, 1_i64));
    }
    conn.execute_batch("COMMIT")?;

    let insert_sql = "INSERT INTO events (conversation, seq, at, author_role, author_id, client_id, kind, body, \
                      data) VALUES (?1, ?2, ?3, 'visitor', ?4, ?5, 'message', ?6, ?7)";
    let start = Instant::now();
    let mut i = 0;
    while i < messages {
        let end = (i + batch).min(messages);
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        for i in i..end {
            let k = i % targets.len();
            let text = body(i);
            let data = serde_json::to_string(&EventKind::Message {
                body: MessageBody::text(text.clone()),
            })?;
            let client_id = format!("m{i}");
            let at = i64::try_from(Timestamp::now().as_millis())?;
            let (conversation, visitor, last_seq) = &mut targets[k];
            let (conversation, visitor) = (conversation.as_str(), visitor.as_str());
            if mode == RawMode::Mirror {
                conn.prepare_cached("SAVEPOINT request")?.execute([])?;
                let stored: i64 = conn
                    .prepare_cached(
                        "SELECT id, tenant, visitor, group_id, state, agent, last_agent, last_seq, created_at, \
                         updated_at FROM conversations WHERE id = ?1",
                    )?
                    .query_row([conversation], |row| row.get(7))?;
                ensure!(stored == *last_seq, "baseline seq out of step");
                let duplicate = conn
                    .prepare_cached(
                        "SELECT conversation, seq, at, author_role, author_id, client_id, data FROM events \
                         WHERE conversation = ?1 AND author_role = 'visitor' AND author_id = ?2 AND client_id = ?3",
                    )?
                    .exists(params![conversation, visitor, client_id])?;
                ensure!(!duplicate, "baseline client id reused");
            }
            *last_seq += 1;
            conn.prepare_cached(insert_sql)?.execute(params![
                conversation,
                *last_seq,
                at,
                visitor,
                client_id,
                text,
                data
            ])?;
            if mode == RawMode::Mirror {
                conn.prepare_cached(
                    "UPDATE conversations SET state = ?2, agent = ?3, last_agent = ?4, last_seq = ?5, \
                     updated_at = ?6 WHERE id = ?1",
                )?
                .execute(params![
                    conversation,
                    "queued",
                    None::<&str>,
                    None::<&str>,
                    *last_seq,
                    at
                ])?;
                conn.prepare_cached("RELEASE request")?.execute([])?;
            }
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        i = end;
    }
    let elapsed = start.elapsed();
    drop(conn);
    remove_dir(&dir);
    Ok(RawRun { elapsed, messages })
}

async fn raw(
    root: &Path,
    conversations: usize,
    messages: usize,
    batch: usize,
    mode: RawMode,
) -> Result<RawRun> {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || raw_run(&root, conversations, messages, batch, mode))
        .await
        .context("the baseline thread panicked")?
}

/// The default directory for database files: `target/bench-tmp` in the workspace.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp")
}

/// Writes `events` messages (over 1,000 conversations, 500 per `append_batch`) into a store with the search
/// indexer off, closes it, reopens it with the indexer on and times how long the indexer takes to reach the head
/// of the log: its throughput when it has a backlog (after the migration that adds the index, or a long stop).
async fn catch_up_run(root: &Path, events: usize) -> Result<(u64, Duration)> {
    let dir = fresh_dir(root, "catch-up")?;
    let path = dir.join("kf.sqlite3");
    let tenant = TenantId::new("bench")?;
    let group = GroupId::new("support")?;
    {
        let store = SqliteStore::open(&path, SqliteConfig::default().with_search_indexer(false))
            .with_context(|| format!("cannot open the store at {}", path.display()))?;
        let mut targets = Vec::new();
        for k in 0..1_000 {
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
                .await
                .context("create_conversation failed")?;
            targets.push((created.conversation.id, visitor));
        }
        let mut i = 0;
        while i < events {
            let end = (i + 500).min(events);
            let drafts = (i..end)
                .map(|i| {
                    let (conversation, visitor) = &targets[i % targets.len()];
                    Ok(EventDraft::message(
                        *conversation,
                        Actor::Visitor(visitor.clone()),
                        Some(ClientId::new(format!("m{i}"))?),
                        MessageBody::text(body(i)),
                        Timestamp::now(),
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            for result in store.append_batch(drafts).await {
                result.context("append failed")?;
            }
            i = end;
        }
        store.close().context("closing the store failed")?;
    }
    let start = Instant::now();
    let store = SqliteStore::open_default(&path).context("cannot reopen the store")?;
    let head = store.feed_head().await.context("feed_head failed")?.0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while store.search_index().position < head {
        ensure!(Instant::now() < deadline, "the search indexer did not catch up");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = start.elapsed();
    let indexed = store.search_index().events;
    store.close().context("closing the store failed")?;
    drop(store);
    remove_dir(&dir);
    Ok((indexed, took))
}

pub async fn run(args: StoreArgs) -> Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(args.conversations >= 1, "--conversations must be at least 1");
    ensure!(args.raw_batch >= 1, "--raw-batch must be at least 1");
    ensure!(args.messages >= 1, "--messages must be at least 1");
    let root = args.dir.clone().unwrap_or_else(default_dir);
    fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let root = root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", root.display()))?;
    let fs = FileSystem::of(&root)?;
    if fs.fs_type == "tmpfs" || fs.fs_type == "ramfs" {
        bail!(
            "{} is on {}: durable-write figures need a real disk (pass --dir)",
            root.display(),
            fs.fs_type
        );
    }
    Machine::read().print();
    println!("database files: {} ({})", root.display(), fs.describe());
    let fsync = sys::fsync_latency(&root, 200)?;
    println!("fdatasync of a 4 KiB append, median of 200: {} ms", ms(fsync));
    println!(
        "store: SqliteStore, WAL, synchronous=FULL, group commit (batch_max 200, window 0); {} conversations; \
         {} runs per configuration",
        args.conversations, args.runs
    );
    println!();

    let mut writer_counts = args.writers.clone();
    if !writer_counts.contains(&1) {
        writer_counts.insert(0, 1);
    }
    let mut summary = Vec::new();
    for &writers in &writer_counts {
        ensure!(writers >= 1, "--writers must be at least 1");
        let messages = if writers == 1 {
            args.single_writer_messages.min(args.messages).max(1)
        } else {
            args.messages
        };
        println!("== {writers} writer(s), {messages} messages per run ==");
        let mut stores = Vec::new();
        let mut raws = Vec::new();
        let mut mirrors = Vec::new();
        let mut singles = Vec::new();
        let mut unindexed_runs = Vec::new();
        let mut triggered_runs = Vec::new();
        for r in 1..=args.runs {
            // Interleaved so that each baseline sees the same background load as the store.
            let store = store_run(&root, args.conversations, writers, messages, Indexing::Indexer).await?;
            let (unindexed, triggered) = if args.search_index_cost {
                (
                    Some(store_run(&root, args.conversations, writers, messages, Indexing::Off).await?),
                    Some(store_run(&root, args.conversations, writers, messages, Indexing::Triggers).await?),
                )
            } else {
                (None, None)
            };
            let raw_insert = raw(
                &root,
                args.conversations,
                messages,
                args.raw_batch,
                RawMode::Insert,
            )
            .await?;
            let mirror = raw(
                &root,
                args.conversations,
                messages,
                args.raw_batch,
                RawMode::Mirror,
            )
            .await?;
            let single = if writers == 1 {
                Some(raw(&root, args.conversations, messages, 1, RawMode::Insert).await?)
            } else {
                None
            };
            print!(
                "run {r}: store {:>9}/s (p50 {} ms, p99 {} ms, {} batches, mean {:.1}/batch) | raw {:>9}/s | \
                 raw-mirror {:>9}/s",
                thousands(store.rate()),
                ms(store.p50),
                ms(store.p99),
                store.batches,
                store.mean_batch(),
                thousands(raw_insert.rate()),
                thousands(mirror.rate()),
            );
            if let Some(single) = &single {
                print!(" | raw 1/txn {:>7}/s", thousands(single.rate()));
            }
            if let Some(unindexed) = &unindexed {
                print!(
                    " | store with the indexer off {:>9}/s (p50 {} ms, p99 {} ms)",
                    thousands(unindexed.rate()),
                    ms(unindexed.p50),
                    ms(unindexed.p99)
                );
            }
            if let Some(triggered) = &triggered {
                print!(
                    " | store with index triggers in the commit {:>9}/s (p50 {} ms, p99 {} ms)",
                    thousands(triggered.rate()),
                    ms(triggered.p50),
                    ms(triggered.p99)
                );
            }
            if let Some(index) = &store.index {
                print!(
                    " | indexer: {} events behind at the last ack, caught up {} ms later, {}/s",
                    index.lag,
                    ms(index.drain),
                    thousands(index.rate)
                );
            }
            println!("  [load {}]", sys::load_average());
            stores.push(store);
            raws.push(raw_insert);
            mirrors.push(mirror);
            singles.extend(single);
            unindexed_runs.extend(unindexed);
            triggered_runs.extend(triggered);
        }
        if !unindexed_runs.is_empty() {
            let rate = median(&unindexed_runs.iter().map(StoreRun::rate).collect::<Vec<_>>());
            let ratio = median(
                &stores
                    .iter()
                    .zip(&unindexed_runs)
                    .map(|(with, without)| with.rate() / without.rate())
                    .collect::<Vec<_>>(),
            );
            println!(
                "median with the indexer off: {}/s; on/off (median of per-run ratios) {ratio:.3}",
                thousands(rate)
            );
        }
        if !triggered_runs.is_empty() {
            let rate = median(&triggered_runs.iter().map(StoreRun::rate).collect::<Vec<_>>());
            let ratio = median(
                &triggered_runs
                    .iter()
                    .zip(&unindexed_runs)
                    .map(|(with, without)| with.rate() / without.rate())
                    .collect::<Vec<_>>(),
            );
            println!(
                "median with index triggers in the commit: {}/s; triggers/off (median of per-run ratios) {ratio:.3}",
                thousands(rate)
            );
        }
        let indexes: Vec<&IndexRun> = stores.iter().filter_map(|s| s.index.as_ref()).collect();
        if !indexes.is_empty() {
            println!(
                "indexer (medians): {} events behind at the last ack, caught up {:.1} ms later, {}/s",
                thousands(median(&indexes.iter().map(|i| i.lag as f64).collect::<Vec<_>>())),
                median(
                    &indexes
                        .iter()
                        .map(|i| i.drain.as_secs_f64() * 1e3)
                        .collect::<Vec<_>>()
                ),
                thousands(median(&indexes.iter().map(|i| i.rate).collect::<Vec<_>>()))
            );
        }
        let rate = median(&stores.iter().map(StoreRun::rate).collect::<Vec<_>>());
        let raw_rate = median(&raws.iter().map(RawRun::rate).collect::<Vec<_>>());
        let mirror_rate = median(&mirrors.iter().map(RawRun::rate).collect::<Vec<_>>());
        let ratio = median_ratio(&stores, &raws);
        let mirror_ratio = median_ratio(&stores, &mirrors);
        let single_rate = median(&singles.iter().map(RawRun::rate).collect::<Vec<_>>());
        let single_ratio = median_ratio(&stores, &singles);
        let p50 = median(
            &stores
                .iter()
                .map(|s| s.p50.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        );
        let p99 = median(
            &stores
                .iter()
                .map(|s| s.p99.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        );
        let batches = median(&stores.iter().map(|s| s.batches as f64).collect::<Vec<_>>());
        let mean_batch = median(&stores.iter().map(StoreRun::mean_batch).collect::<Vec<_>>());
        println!(
            "median: store {}/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {} batches, mean batch {mean_batch:.1}; \
             raw ({} rows/txn) {}/s; raw-mirror {}/s",
            thousands(rate),
            thousands(batches),
            args.raw_batch,
            thousands(raw_rate),
            thousands(mirror_rate),
        );
        print!("ratio store/raw {ratio:.3}, store/raw-mirror {mirror_ratio:.3}");
        if writers == 1 {
            print!(
                "; raw with one row per transaction {}/s, store/that {single_ratio:.3}",
                thousands(single_rate)
            );
        }
        println!("\n");
        summary.push((
            writers,
            rate,
            p50,
            p99,
            mean_batch,
            raw_rate,
            ratio,
            mirror_rate,
            mirror_ratio,
        ));
    }

    if args.search_index_cost {
        let mut rates = Vec::new();
        for r in 1..=args.runs {
            let (indexed, took) = catch_up_run(&root, args.catch_up_events).await?;
            let rate = indexed as f64 / took.as_secs_f64();
            println!(
                "catch-up run {r}: the indexer indexed a backlog of {} events in {:.2} s from the open: {}/s  [load {}]",
                thousands(indexed as f64),
                took.as_secs_f64(),
                thousands(rate),
                sys::load_average()
            );
            rates.push(rate);
        }
        println!("catch-up (median): {}/s\n", thousands(median(&rates)));
    }
    println!("summary (medians of {} runs):", args.runs);
    println!(
        "| writers | store msg/s | p50 ms | p99 ms | mean batch | raw msg/s ({}/txn) | store/raw | raw-mirror msg/s | store/raw-mirror |",
        args.raw_batch
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (writers, rate, p50, p99, mean_batch, raw_rate, ratio, mirror_rate, mirror_ratio) in summary {
        println!(
            "| {writers} | {} | {p50:.2} | {p99:.2} | {mean_batch:.1} | {} | {ratio:.3} | {} | {mirror_ratio:.3} |",
            thousands(rate),
            thousands(raw_rate),
            thousands(mirror_rate)
        );
    }
    println!("load average at the end: {}", sys::load_average());
    Ok(())
}
