//! Queries: a tenant's figures over a time range, per dimension and step, added up from the hour buckets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::fold::Aggregates;
use super::{Dimension, Figures, MS_PER_HOUR, Report};
use crate::model::{AgentId, EntryPointId, GroupId, TenantId, Timestamp};

/// The longest range a query may span, in hours (400 days), and the most rows an hourly query may answer per
/// dimension (31 days).
pub const MAX_QUERY_HOURS: u64 = 400 * 24;
const MAX_HOURLY_HOURS: u64 = 31 * 24;

/// Which dimension a query reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsBy {
    /// The tenant as a whole.
    #[default]
    All,
    /// Each agent (or the one of [`StatsQuery::key`]).
    Agent,
    /// Each group.
    Group,
    /// Each entry point.
    Entry,
}

/// How a query divides its range.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsStep {
    /// One row for the whole range.
    #[default]
    Total,
    /// A row per UTC day.
    Day,
    /// A row per hour.
    Hour,
}

/// A statistics query: `tenant`'s figures from `from` to `to` (hours whose start is in `[from, to)`; both are
/// rounded down to the hour), by dimension and step.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct StatsQuery {
    /// The tenant.
    pub tenant: TenantId,
    /// The dimension.
    pub by: StatsBy,
    /// Only this agent, group or entry point (with [`StatsBy::All`] it must be absent).
    pub key: Option<String>,
    /// The start of the range (inclusive).
    pub from: Timestamp,
    /// The end of the range (exclusive).
    pub to: Timestamp,
    /// Rows per hour, per day, or one for the range.
    pub step: StatsStep,
}

impl StatsQuery {
    /// The tenant's totals from `from` to `to`.
    pub fn new(tenant: TenantId, from: Timestamp, to: Timestamp) -> Self {
        Self {
            tenant,
            by: StatsBy::All,
            key: None,
            from,
            to,
            step: StatsStep::Total,
        }
    }

    /// Per dimension `by`.
    pub fn by(mut self, by: StatsBy) -> Self {
        self.by = by;
        self
    }

    /// Only one agent, group or entry point.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Rows per `step`.
    pub fn step(mut self, step: StatsStep) -> Self {
        self.step = step;
        self
    }

    /// The dimension the key names, checked.
    fn dimension(&self) -> Result<Option<Dimension>, StatsError> {
        let invalid = |e: crate::model::InvalidId| StatsError::Invalid(e.to_string());
        let Some(key) = &self.key else {
            return Ok(match self.by {
                StatsBy::All => Some(Dimension::All),
                _ => None,
            });
        };
        Ok(Some(match self.by {
            StatsBy::All => {
                return Err(StatsError::Invalid(
                    "a key needs by=agent, by=group or by=entry".into(),
                ));
            }
            StatsBy::Agent => Dimension::Agent(AgentId::new(key.clone()).map_err(invalid)?),
            StatsBy::Group => Dimension::Group(GroupId::new(key.clone()).map_err(invalid)?),
            StatsBy::Entry => Dimension::Entry(EntryPointId::new(key.clone()).map_err(invalid)?),
        }))
    }

    fn matches(&self, dimension: &Dimension) -> bool {
        matches!(
            (self.by, dimension),
            (StatsBy::All, Dimension::All)
                | (StatsBy::Agent, Dimension::Agent(_))
                | (StatsBy::Group, Dimension::Group(_))
                | (StatsBy::Entry, Dimension::Entry(_))
        )
    }
}

/// Why a query was refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum StatsError {
    /// The query itself is invalid (empty or too long a range, a bad key).
    #[error("invalid statistics query: {0}")]
    Invalid(String),
    /// The engine keeps no statistics (no [`EngineBuilder::statistics`](crate::engine::EngineBuilder::statistics)).
    #[error("statistics are not kept by this engine")]
    NotKept,
}

/// One row of a query's answer: a dimension's figures over one step of the range.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatsRow {
    /// Whose figures.
    pub dimension: Dimension,
    /// The start of the step (absent for [`StatsStep::Total`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    /// The figures.
    pub figures: Report,
}

impl Aggregates {
    /// The figures `query` asks for, added up from the hour buckets: one row per dimension and step that has
    /// any, ordered by dimension then start. A dimension with no bucket in the range has no row.
    pub fn query(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, StatsError> {
        let (from, to) = (query.from.0 / MS_PER_HOUR, query.to.0.div_ceil(MS_PER_HOUR));
        if query.to <= query.from {
            return Err(StatsError::Invalid("`to` must be after `from`".into()));
        }
        if to - from > MAX_QUERY_HOURS {
            return Err(StatsError::Invalid(format!(
                "the range may span at most {} days",
                MAX_QUERY_HOURS / 24
            )));
        }
        if query.step == StatsStep::Hour && to - from > MAX_HOURLY_HOURS {
            return Err(StatsError::Invalid(format!(
                "an hourly query may span at most {} days",
                MAX_HOURLY_HOURS / 24
            )));
        }
        let step_of = |hour: u64| match query.step {
            StatsStep::Total => None,
            StatsStep::Day => Some(Timestamp(hour / 24 * 24 * MS_PER_HOUR)),
            StatsStep::Hour => Some(Timestamp(hour * MS_PER_HOUR)),
        };
        let mut rows: BTreeMap<(Dimension, Option<Timestamp>), Figures> = BTreeMap::new();
        let mut add = |dimension: &Dimension, hour: u64, figures: &Figures| {
            rows.entry((dimension.clone(), step_of(hour)))
                .or_default()
                .merge(figures);
        };
        match query.dimension()? {
            // One dimension: its buckets of the range are contiguous in key order.
            Some(dimension) => {
                let start = super::BucketKey {
                    tenant: query.tenant.clone(),
                    dimension: dimension.clone(),
                    hour: from,
                };
                let end = super::BucketKey {
                    hour: to,
                    ..start.clone()
                };
                for (key, figures) in self.buckets.range(start..end) {
                    add(&key.dimension, key.hour, figures);
                }
            }
            // Every agent (group, entry point): the tenant's buckets of that kind in the range.
            None => {
                let start = super::BucketKey {
                    tenant: query.tenant.clone(),
                    dimension: Dimension::All,
                    hour: 0,
                };
                for (key, figures) in self
                    .buckets
                    .range(start..)
                    .take_while(|(key, _)| key.tenant == query.tenant)
                    .filter(|(key, _)| query.matches(&key.dimension) && (from..to).contains(&key.hour))
                {
                    add(&key.dimension, key.hour, figures);
                }
            }
        }
        Ok(rows
            .into_iter()
            .map(|((dimension, start), figures)| StatsRow {
                dimension,
                start,
                figures: figures.report(),
            })
            .collect())
    }
}
