//! [`StatsKeeper`]: the aggregates kept up to date by following the change feed, checkpointed through a
//! [`StatsCheckpoints`] store so that a restart resumes from the checkpoint instead of folding the feed again.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Aggregates, HoursLookup, StatsError, StatsQuery, StatsRow};
use crate::model::Epoch;
use crate::store::{FeedEntry, FeedPosition, StatsCheckpoint, StatsCheckpoints, StoreError};

/// The version of the checkpoint's format; a checkpoint of another version is ignored (rebuilt from the feed).
const FORMAT: u32 = 1;

/// How the keeper checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsOptions {
    /// The longest time between a change and its checkpoint (default 10 s).
    pub checkpoint_interval: Duration,
    /// Checkpoint after this many events at the latest, also while catching up (default 100,000).
    pub checkpoint_events: u64,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            checkpoint_interval: Duration::from_secs(10),
            checkpoint_events: 100_000,
        }
    }
}

impl StatsOptions {
    /// With another checkpoint interval.
    pub fn with_checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    /// With another event count between checkpoints (at least 1).
    pub fn with_checkpoint_events(mut self, events: u64) -> Self {
        self.checkpoint_events = events.max(1);
        self
    }
}

/// Where the keeper stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[non_exhaustive]
pub struct StatsStatus {
    /// Every event up to this feed position is in the figures.
    pub position: FeedPosition,
    /// The position of the checkpoint the keeper started from ([`FeedPosition::ZERO`]: from the beginning).
    pub resumed_from: FeedPosition,
    /// The position of the last checkpoint saved.
    pub checkpointed: FeedPosition,
    /// How many hour buckets there are.
    pub buckets: usize,
    /// How many conversations are tracked.
    pub conversations: usize,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    format: u32,
    aggregates: Aggregates,
}

#[derive(Debug)]
struct State {
    aggregates: Aggregates,
    position: FeedPosition,
    resumed_from: FeedPosition,
    checkpointed: FeedPosition,
}

/// The statistics, kept up to date from the change feed: [`StatsKeeper::run`] folds each committed event into
/// the aggregates and checkpoints them; [`StatsKeeper::query`] reads them (never the feed).
#[derive(Debug)]
pub struct StatsKeeper {
    state: RwLock<State>,
    epoch: Epoch,
    checkpoints: Arc<dyn StatsCheckpoints>,
    options: StatsOptions,
    reached: watch::Sender<FeedPosition>,
}

impl StatsKeeper {
    /// A keeper that starts from the saved checkpoint when it is of `epoch` and readable, else from the
    /// beginning of the feed (empty aggregates).
    pub async fn load(
        checkpoints: Arc<dyn StatsCheckpoints>,
        epoch: Epoch,
        options: StatsOptions,
    ) -> Result<StatsKeeper, StoreError> {
        let saved = checkpoints.load_stats_checkpoint().await?;
        let resumed = saved.and_then(|checkpoint| {
            if checkpoint.epoch != epoch {
                tracing::warn!("statistics checkpoint of another store epoch: rebuilding from the feed");
                return None;
            }
            match serde_json::from_slice::<Saved>(&checkpoint.state) {
                Ok(saved) if saved.format == FORMAT => Some((saved.aggregates, checkpoint.position)),
                _ => {
                    tracing::warn!("statistics checkpoint in an unknown format: rebuilding from the feed");
                    None
                }
            }
        });
        let (aggregates, position) = resumed.unwrap_or_default();
        Ok(StatsKeeper {
            state: RwLock::new(State {
                aggregates,
                position,
                resumed_from: position,
                checkpointed: position,
            }),
            epoch,
            checkpoints,
            options,
            reached: watch::channel(position).0,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A fold never panics halfway through a bucket update it could not finish; keep using a poisoned lock.
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The feed position to follow from: the one every event up to is folded in.
    pub fn position(&self) -> FeedPosition {
        self.read().position
    }

    /// Where the keeper stands.
    pub fn status(&self) -> StatsStatus {
        let state = self.read();
        StatsStatus {
            position: state.position,
            resumed_from: state.resumed_from,
            checkpointed: state.checkpointed,
            buckets: state.aggregates.bucket_count(),
            conversations: state.aggregates.conversation_count(),
        }
    }

    /// Answers a query from the aggregates.
    pub fn query(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, StatsError> {
        self.read().aggregates.query(query)
    }

    /// Waits until every event up to `position` is folded in.
    pub async fn reached(&self, position: FeedPosition) {
        let mut reached = self.reached.subscribe();
        // The sender lives as long as `self`: the wait cannot end with an error while we borrow it.
        let _ = reached.wait_for(|at| *at >= position).await;
    }

    /// Folds one entry of the feed in.
    pub fn apply(&self, entry: &FeedEntry, hours: &dyn HoursLookup) {
        let mut state = self.write();
        if entry.position <= state.position {
            return;
        }
        state.aggregates.apply(&entry.tenant, &entry.event, hours);
        state.position = entry.position;
        drop(state);
        self.reached.send_replace(entry.position);
    }

    /// Saves the aggregates and their position now (nothing when nothing changed since the last save).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let (position, bytes) = {
            let state = self.read();
            if state.position == state.checkpointed {
                return Ok(());
            }
            let saved = SavedRef {
                format: FORMAT,
                aggregates: &state.aggregates,
            };
            let bytes = serde_json::to_vec(&saved).map_err(|e| StoreError::Invalid(e.to_string()))?;
            (state.position, bytes)
        };
        let checkpoint = StatsCheckpoint::new(self.epoch.clone(), position, bytes);
        self.checkpoints.save_stats_checkpoint(checkpoint).await?;
        let mut state = self.write();
        state.checkpointed = state.checkpointed.max(position);
        Ok(())
    }

    /// Follows `feed` (which must start after [`position`](Self::position)) until `stop` is cancelled: folds
    /// each entry in, checkpoints after [`StatsOptions::checkpoint_events`] events or
    /// [`StatsOptions::checkpoint_interval`] after a change, and once more when stopped. A failed read or save
    /// is logged and retried (the feed stream retries by itself; a save at the next occasion).
    pub async fn run(
        &self,
        mut feed: BoxStream<'static, Result<FeedEntry, StoreError>>,
        hours: Arc<dyn HoursLookup + Send + Sync>,
        stop: CancellationToken,
    ) {
        let mut since_save: u64 = 0;
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => break,
                next = tokio::time::timeout(self.options.checkpoint_interval, feed.next()) => next,
            };
            match next {
                Ok(Some(Ok(entry))) => {
                    self.apply(&entry, hours.as_ref());
                    since_save += 1;
                    if since_save >= self.options.checkpoint_events {
                        since_save = self.save_logged().await;
                    }
                }
                Ok(Some(Err(error))) => tracing::warn!(%error, "statistics: reading the change feed failed"),
                Ok(None) => break,
                // Quiet for an interval: save what changed.
                Err(_) => since_save = self.save_logged().await,
            }
        }
        self.save_logged().await;
    }

    /// Checkpoints, logging a failure; gives the new count of unsaved events (0: a failed save is retried at the
    /// next interval or count anyway).
    async fn save_logged(&self) -> u64 {
        if let Err(error) = self.checkpoint().await {
            tracing::warn!(%error, "statistics: saving the checkpoint failed");
        }
        0
    }
}

#[derive(Serialize)]
struct SavedRef<'a> {
    format: u32,
    aggregates: &'a Aggregates,
}
