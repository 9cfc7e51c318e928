//! Configuration of a [`SqliteStore`](crate::SqliteStore).

use std::time::Duration;

use crate::SqliteError;

/// SQLite's `synchronous` setting: how hard a commit waits for the disk.
///
/// With WAL journaling, [`Full`](Synchronous::Full) makes every acknowledged commit survive a power loss (one
/// fsync per group commit); [`Normal`](Synchronous::Normal) keeps the database consistent but may lose the last
/// commits on power loss (not on a process crash); [`Off`](Synchronous::Off) leaves flushing to the OS.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=OFF`.
    Off,
    /// `synchronous=NORMAL`.
    Normal,
    /// `synchronous=FULL`: durable acknowledgements (the default).
    #[default]
    Full,
    /// `synchronous=EXTRA`: `FULL` plus a sync of the directory after a journal is deleted.
    Extra,
}

impl Synchronous {
    /// The value as written in a `PRAGMA synchronous` statement.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }

    /// The setting for the number `PRAGMA synchronous` reports (0 to 3).
    pub fn from_pragma(value: i64) -> Option<Synchronous> {
        match value {
            0 => Some(Synchronous::Off),
            1 => Some(Synchronous::Normal),
            2 => Some(Synchronous::Full),
            3 => Some(Synchronous::Extra),
            _ => None,
        }
    }
}

/// How a [`SqliteStore`](crate::SqliteStore) uses its database. Build it from [`Default`] and the `with_*`
/// methods.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The `synchronous` setting of the writer connection. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// The most write requests one group commit carries. Default 200.
    pub batch_max: usize,
    /// How long the writer waits for more requests once it has one, before it commits. Default zero: the writer
    /// takes whatever is pending when it starts a batch (requests that arrive during a commit form the next
    /// batch, so batches grow by themselves under load without adding latency when idle). At most one second.
    ///
    /// Measured on a 2-core VM with an ext4 disk and `synchronous=FULL` (a debug build, before the writer's
    /// cache; `docs/benchmarks.md` has current release figures): windows of 0.1, 0.5 and 2 ms never raised
    /// throughput and lowered it for few clients (2 ms: 380 appends/s for one sequential client against 2,760
    /// with no window), because a commit already takes long enough for the next batch to gather.
    pub batch_window: Duration,
    /// The number of read-only connections reads are spread over. Default 4.
    pub readers: usize,
    /// How long a connection waits for a lock held by another process before failing. Default 5 s.
    pub busy_timeout: Duration,
    /// Whether the store runs its search indexer, which keeps the history search index in step with the log
    /// from the change feed, on its own thread and outside the writer's commits. Default true. Without it,
    /// searches stay correct (the events it has not indexed are scanned) but get slower as the log grows; turn
    /// it off for a store nobody searches, or to measure what it costs.
    pub search_indexer: bool,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            batch_max: 200,
            batch_window: Duration::ZERO,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            search_indexer: true,
        }
    }
}

impl SqliteConfig {
    /// Sets [`synchronous`](SqliteConfig::synchronous).
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`batch_max`](SqliteConfig::batch_max).
    pub fn with_batch_max(mut self, batch_max: usize) -> Self {
        self.batch_max = batch_max;
        self
    }

    /// Sets [`batch_window`](SqliteConfig::batch_window).
    pub fn with_batch_window(mut self, batch_window: Duration) -> Self {
        self.batch_window = batch_window;
        self
    }

    /// Sets [`readers`](SqliteConfig::readers).
    pub fn with_readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// Sets [`busy_timeout`](SqliteConfig::busy_timeout).
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// Sets [`search_indexer`](SqliteConfig::search_indexer).
    pub fn with_search_indexer(mut self, search_indexer: bool) -> Self {
        self.search_indexer = search_indexer;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), SqliteError> {
        if self.batch_max == 0 {
            return Err(SqliteError::InvalidConfig("batch_max must be at least 1"));
        }
        if self.readers == 0 {
            return Err(SqliteError::InvalidConfig("readers must be at least 1"));
        }
        if self.batch_window > Duration::from_secs(1) {
            return Err(SqliteError::InvalidConfig(
                "batch_window must be at most one second",
            ));
        }
        Ok(())
    }
}
