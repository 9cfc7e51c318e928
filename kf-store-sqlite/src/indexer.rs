//! The search indexer: keeps `events_fts` (schema 9) in step with `events` from the change feed, outside the
//! write path.
//!
//! The writer's commit writes nothing for search: after each commit it only wakes the indexer (`Wake`). The
//! indexer, on its own thread and connection, reads the events after its position (`meta` key
//! `search_indexed`, the feed position of the last event it has indexed), inserts the texts of those that have
//! one (messages and notes: `events.body`) into `events_fts`, and stores its new position, all in one
//! transaction, so the position and the index rows it covers commit (or roll back) together. It indexes up to
//! [`BATCH`] events per transaction and coalesces wakes for [`COALESCE`], so a busy writer costs it one short
//! transaction per interval rather than one per commit. The index is derived data, so its connection commits with
//! `synchronous = NORMAL` (a power loss may roll back its last transactions, position included, and it indexes
//! them again).
//!
//! Searches stay read-your-writes without waiting for it (`rows::history`): events up to the position are found
//! through the index, the tail after it by a `LIKE` scan, in one statement (one snapshot). After the migration
//! that created the index, the position is 0 and the indexer catches up in the background.
//!
//! kf never deletes an event nor changes its text (the log is append-only), so the index only ever grows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use kf_core::engine::SEARCH_INDEX_CONSUMER;
use kf_core::telemetry::FeedLag;
use rusqlite::{Connection, OptionalExtension, params};

/// The `meta` key of the indexer's position.
pub(crate) const POSITION_KEY: &str = "search_indexed";

/// The most events one index transaction covers.
pub(crate) const BATCH: usize = 5_000;

/// How long the indexer lets commits accumulate after a wake before it indexes them.
pub(crate) const COALESCE: Duration = Duration::from_millis(20);

/// How long the indexer sleeps without a wake before it looks anyway (a commit by another process).
const IDLE: Duration = Duration::from_secs(1);

/// The writer's signal to the indexer: something was committed; or stop.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    state: Mutex<WakeState>,
    signal: Condvar,
}

#[derive(Debug, Default)]
struct WakeState {
    pending: bool,
    stop: bool,
}

impl Wake {
    /// Something was committed.
    pub(crate) fn notify(&self) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !state.pending {
            state.pending = true;
            self.signal.notify_one();
        }
    }

    /// Asks the indexer to stop.
    pub(crate) fn stop(&self) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.stop = true;
        self.signal.notify_one();
    }

    /// Waits for a wake (or `IDLE`); false once asked to stop.
    fn wait(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !state.pending && !state.stop {
            state = match self.signal.wait_timeout(state, IDLE) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.pending = false;
        !state.stop
    }

    /// Sleeps for `COALESCE` unless asked to stop; false once asked to stop.
    fn linger(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.stop {
            return false;
        }
        let state = match self
            .signal
            .wait_timeout_while(state, COALESCE, |state| !state.stop)
        {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        };
        !state.stop
    }
}

/// What the store sees of its indexer.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// The position indexed so far (as last committed by the indexer).
    pub(crate) position: AtomicU64,
    /// Events read and index transactions committed since the store was opened.
    pub(crate) events: AtomicU64,
    pub(crate) batches: AtomicU64,
    /// Whether the thread runs.
    pub(crate) running: AtomicBool,
}

/// The indexed position stored in `meta` (0 when the indexer never ran).
pub(crate) fn position(conn: &Connection) -> rusqlite::Result<u64> {
    let value: Option<i64> = conn
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1",
            [POSITION_KEY],
            |row| row.get(0),
        )
        .optional()?;
    Ok(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

/// What one [`index_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Batch {
    /// The position indexed up to now.
    pub(crate) position: u64,
    /// Events read (0: it had caught up).
    pub(crate) read: usize,
    /// The feed's head when the batch committed.
    pub(crate) head: u64,
}

/// Indexes up to `limit` events after the stored position in one transaction.
pub(crate) fn index_batch(conn: &mut Connection, limit: usize) -> rusqlite::Result<Batch> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let from = position(&tx)?;
    let mut last = from;
    let mut read = 0;
    {
        let mut events =
            tx.prepare_cached("SELECT id, body FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let mut insert = tx.prepare_cached("INSERT INTO events_fts (rowid, body) VALUES (?1, ?2)")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let mut rows = events.query(params![from, limit])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let body: Option<String> = row.get(1)?;
            if let Some(body) = body {
                insert.execute(params![id, body])?;
            }
            last = u64::try_from(id).unwrap_or(last);
            read += 1;
        }
    }
    if read > 0 {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![POSITION_KEY, last.to_string()],
        )?;
    }
    let head: Option<i64> = tx.query_row("SELECT max(id) FROM events", [], |row| row.get(0))?;
    tx.commit()?;
    Ok(Batch {
        position: last,
        read,
        head: head.and_then(|head| u64::try_from(head).ok()).unwrap_or(0),
    })
}

/// The indexer thread's body: indexes what is there, then what each wake brings, until asked to stop.
pub(crate) fn run(mut conn: Connection, wake: Arc<Wake>, progress: Arc<Progress>) {
    progress.running.store(true, Ordering::Release);
    let lag = FeedLag::new(SEARCH_INDEX_CONSUMER);
    loop {
        loop {
            match index_batch(&mut conn, BATCH) {
                Ok(Batch { position, read, head }) => {
                    progress.position.store(position, Ordering::Release);
                    lag.set(head, position);
                    if read == 0 {
                        break;
                    }
                    progress.events.fetch_add(read as u64, Ordering::Relaxed);
                    progress.batches.fetch_add(1, Ordering::Relaxed);
                    if read < BATCH {
                        break;
                    }
                }
                Err(error) => {
                    // A busy database or a full disk: the next wake (or IDLE) tries again.
                    tracing::warn!(%error, "search indexer: batch failed");
                    break;
                }
            }
        }
        if !wake.wait() || !wake.linger() {
            break;
        }
    }
    progress.running.store(false, Ordering::Release);
    tracing::debug!("search indexer stopped");
}
