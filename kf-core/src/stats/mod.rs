//! Statistics from the change feed: per tenant, agent, group, entry point and hour (or day) — conversations,
//! time to first assignment, first response, handle and resolution times (on the wall clock and inside the
//! group's working hours), missed and unanswered conversations, transfers, reopens, ratings.
//!
//! [`Aggregates::apply`] is a pure fold over committed events in feed order into hour buckets keyed by
//! (tenant, [`Dimension`], hour); each bucket holds sums, counts and small fixed histograms
//! ([`Figures`]), so a query ([`Aggregates::query`]) adds up the buckets of a range and never reads an event.
//! [`StatsKeeper`] keeps the aggregates up to date by following the change feed and checkpoints them (with the
//! feed position) through a [`StatsCheckpoints`](crate::store::StatsCheckpoints) store, so a restart resumes
//! where it stopped. Every figure's exact definition is in `docs/statistics.md`.

mod figures;
mod fold;
mod keeper;
mod query;

#[cfg(test)]
mod brute;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::hours::WorkingHours;
use crate::model::{AgentId, EntryPointId, GroupId, TenantId};

pub use figures::{DurationReport, Durations, Figures, HISTOGRAM_BOUNDS_MS, Report};
pub use fold::{Aggregates, BucketKey, Tracker};
pub use keeper::{StatsKeeper, StatsOptions, StatsStatus};
pub use query::{MAX_QUERY_HOURS, StatsBy, StatsError, StatsQuery, StatsRow, StatsStep};

/// Milliseconds in an hour: the width of a bucket.
pub const MS_PER_HOUR: u64 = 3_600_000;

/// What a bucket's figures are about: all of a tenant's conversations, or those of one agent, group or entry
/// point.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Dimension {
    /// Every conversation of the tenant.
    All,
    /// What concerns one agent.
    Agent(AgentId),
    /// The conversations of one group (the group they belonged to when the figure was counted).
    Group(GroupId),
    /// The conversations opened through one entry point.
    Entry(EntryPointId),
}

impl Dimension {
    /// The id of the agent, group or entry point; `None` for [`Dimension::All`].
    pub fn id(&self) -> Option<&str> {
        match self {
            Dimension::All => None,
            Dimension::Agent(id) => Some(id.as_str()),
            Dimension::Group(id) => Some(id.as_str()),
            Dimension::Entry(id) => Some(id.as_str()),
        }
    }
}

/// Where the fold finds a group's working hours, for the working-hours variants of the durations.
pub trait HoursLookup {
    /// `group`'s working hours; `None` when it has none (always open: a working-hours duration equals the
    /// wall-clock one).
    fn hours(&self, tenant: &TenantId, group: &GroupId) -> Option<WorkingHours>;
}

impl HoursLookup for HashMap<(TenantId, GroupId), WorkingHours> {
    fn hours(&self, tenant: &TenantId, group: &GroupId) -> Option<WorkingHours> {
        self.get(&(tenant.clone(), group.clone())).cloned()
    }
}

/// No group has working hours: every working-hours duration equals its wall-clock one.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysOpen;

impl HoursLookup for AlwaysOpen {
    fn hours(&self, _: &TenantId, _: &GroupId) -> Option<WorkingHours> {
        None
    }
}
