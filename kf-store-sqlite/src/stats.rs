//! [`StatsCheckpoints`] for the SQLite store: the statistics checkpoint in its one-row table (`rows::stats`),
//! written through the writer thread like every other write.

use async_trait::async_trait;
use kf_core::store::{StatsCheckpoint, StatsCheckpoints, StoreError};

use crate::writer::{Op, Outcome};
use crate::{SqliteStore, rows, unexpected};

#[async_trait]
impl StatsCheckpoints for SqliteStore {
    async fn load_stats_checkpoint(&self) -> Result<Option<StatsCheckpoint>, StoreError> {
        self.readers.run(rows::stats_checkpoint).await
    }

    async fn save_stats_checkpoint(&self, checkpoint: StatsCheckpoint) -> Result<(), StoreError> {
        match self.write(Op::SaveStatsCheckpoint(Box::new(checkpoint))).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
