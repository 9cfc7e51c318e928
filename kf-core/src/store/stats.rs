//! [`StatsCheckpoints`]: where the statistics keeper saves its aggregates and the change-feed position they
//! reach, so a restart resumes from there instead of folding the whole feed again.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use super::{FeedPosition, StoreError};
use crate::model::Epoch;

/// A saved state of the statistics ([`StatsKeeper`](crate::stats::StatsKeeper)): opaque bytes (the keeper's
/// serialized aggregates), the feed position they include every event up to, and the store epoch that position
/// belongs to (a checkpoint of another epoch is ignored: positions mean nothing across epochs).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct StatsCheckpoint {
    /// The epoch of the store whose feed was followed.
    pub epoch: Epoch,
    /// Every event up to this position is in `state`.
    pub position: FeedPosition,
    /// The serialized aggregates (the keeper's format; a store keeps the bytes as they are).
    pub state: Vec<u8>,
}

impl StatsCheckpoint {
    /// A checkpoint.
    pub fn new(epoch: Epoch, position: FeedPosition, state: Vec<u8>) -> Self {
        Self {
            epoch,
            position,
            state,
        }
    }
}

/// Keeps the one statistics checkpoint. Object safe; given to the engine with
/// [`EngineBuilder::statistics`](crate::engine::EngineBuilder::statistics). A save is durable when it returns
/// `Ok` and replaces the previous checkpoint whole (never half of one). Backends run
/// `stats_checkpoints_conformance_tests!` (feature `testkit`).
#[async_trait]
pub trait StatsCheckpoints: Send + Sync + Debug + 'static {
    /// The saved checkpoint; `None` before the first save.
    async fn load_stats_checkpoint(&self) -> Result<Option<StatsCheckpoint>, StoreError>;

    /// Replaces the saved checkpoint.
    async fn save_stats_checkpoint(&self, checkpoint: StatsCheckpoint) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: ?Sized + StatsCheckpoints> StatsCheckpoints for Arc<T> {
    async fn load_stats_checkpoint(&self) -> Result<Option<StatsCheckpoint>, StoreError> {
        (**self).load_stats_checkpoint().await
    }

    async fn save_stats_checkpoint(&self, checkpoint: StatsCheckpoint) -> Result<(), StoreError> {
        (**self).save_stats_checkpoint(checkpoint).await
    }
}
