//! [`StatsCheckpoints`] for [`PostgresStore`]: the one statistics checkpoint (`stats_checkpoint`, schema 3),
//! replaced whole by each save in one statement.

use async_trait::async_trait;
use kf_core::model::Epoch;
use kf_core::store::{FeedPosition, StatsCheckpoint, StatsCheckpoints, StoreError};

use crate::PostgresStore;
use crate::error::backend;
use crate::rows::{Cached, corrupt, signed};

#[async_trait]
impl StatsCheckpoints for PostgresStore {
    async fn load_stats_checkpoint(&self) -> Result<Option<StatsCheckpoint>, StoreError> {
        let client = self.client().await?;
        let row = client
            .cached_query_opt("SELECT epoch, position, state FROM stats_checkpoint", &[])
            .await
            .map_err(backend)?;
        row.map(|row| {
            let epoch: String = row.try_get(0).map_err(backend)?;
            let position: i64 = row.try_get(1).map_err(backend)?;
            let state: Vec<u8> = row.try_get(2).map_err(backend)?;
            let position = u64::try_from(position)
                .map_err(|_| corrupt("stats_checkpoint", format!("negative feed position {position}")))?;
            Ok(StatsCheckpoint::new(Epoch(epoch), FeedPosition(position), state))
        })
        .transpose()
    }

    async fn save_stats_checkpoint(&self, checkpoint: StatsCheckpoint) -> Result<(), StoreError> {
        let position = signed(checkpoint.position.0, "feed position")?;
        self.client()
            .await?
            .cached_execute(
                "INSERT INTO stats_checkpoint (epoch, position, state) VALUES ($1, $2, $3) \
                 ON CONFLICT (singleton) DO UPDATE SET epoch = excluded.epoch, position = excluded.position, \
                 state = excluded.state",
                &[&checkpoint.epoch.0, &position, &checkpoint.state],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }
}
