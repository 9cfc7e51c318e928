//! The engine's statistics: the keeper's follower task on the change feed, and the host API that reads the
//! aggregates (`docs/statistics.md`).

use std::sync::{Arc, Weak};

use super::{Engine, Inner};
use crate::hours::WorkingHours;
use crate::model::{GroupId, TenantId};
use crate::stats::{HoursLookup, StatsError, StatsQuery, StatsRow, StatsStatus};
use crate::store::{FollowOptions, StoreError};

/// The working hours the fold uses: the engine's catalogue (the hours in force when an event is folded). Holds
/// the engine weakly, so the follower task does not keep a dropped engine alive.
struct CatalogHours(Weak<Inner>);

impl HoursLookup for CatalogHours {
    fn hours(&self, tenant: &TenantId, group: &GroupId) -> Option<WorkingHours> {
        self.0.upgrade()?.catalog.hours_of(tenant, group)
    }
}

impl Engine {
    /// Starts the follower task when the host asked for statistics: from the checkpoint's position, until the
    /// engine shuts down (it checkpoints once more then).
    pub(crate) fn start_statistics(&self) {
        let Some(keeper) = self.inner.stats.clone() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let feed = self.follow_feed(keeper.position(), FollowOptions::default().with_page(1024));
        let hours = Arc::new(CatalogHours(Arc::downgrade(&self.inner)));
        let stop = self.shutdown_token();
        self.spawn(async move { keeper.run(feed, hours, stop).await });
    }

    fn keeper(&self) -> Result<&Arc<crate::stats::StatsKeeper>, StatsError> {
        self.inner.stats.as_ref().ok_or(StatsError::NotKept)
    }

    /// A tenant's statistics (see [`StatsQuery`]), read from the aggregates the follower keeps — never from
    /// the log; events committed in the last moments may not be in them yet ([`Engine::stats_settled`]). The
    /// caller authorizes (agents or admins of `query.tenant`). [`StatsError::NotKept`] without
    /// [`EngineBuilder::statistics`](super::EngineBuilder::statistics).
    pub fn stats(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, StatsError> {
        self.keeper()?.query(query)
    }

    /// Where the statistics stand (feed position reached, checkpoint, size).
    pub fn stats_status(&self) -> Result<StatsStatus, StatsError> {
        Ok(self.keeper()?.status())
    }

    /// Waits until every event committed before the call is in the statistics (tests, and a host that wants
    /// figures that include its own last write).
    pub async fn stats_settled(&self) -> Result<(), StoreError> {
        let Ok(keeper) = self.keeper() else {
            return Ok(());
        };
        let head = self.inner.log.feed_head().await?;
        keeper.reached(head).await;
        Ok(())
    }
}
