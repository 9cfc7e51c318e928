//! [`Figures`]: what one bucket holds — counts and duration sums that merge by addition, so a query over a
//! date range adds up buckets instead of rereading events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Upper bounds (ms, inclusive) of the duration histogram's bins; a longer duration falls into the last,
/// open bin. Fixed, so histograms of any two buckets merge by adding bin counts.
pub const HISTOGRAM_BOUNDS_MS: [u64; 21] = [
    1_000,
    5_000,
    10_000,
    20_000,
    30_000,
    45_000,
    60_000,
    90_000,
    120_000,
    180_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    14_400_000,
    28_800_000,
    86_400_000,
    172_800_000,
    604_800_000,
];

/// A set of durations: how many, their sum and maximum, and a sparse histogram of them (bin index → count,
/// bins of [`HISTOGRAM_BOUNDS_MS`]) for medians and percentiles.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Durations {
    /// How many durations.
    pub count: u64,
    /// Their sum, in ms.
    pub sum_ms: u64,
    /// The longest, in ms.
    pub max_ms: u64,
    /// Bin index → count; bins without a duration are absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histogram: BTreeMap<u8, u64>,
}

impl Durations {
    /// Whether it holds no duration.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one duration.
    pub fn add(&mut self, ms: u64) {
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.max_ms = self.max_ms.max(ms);
        let bin = HISTOGRAM_BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(HISTOGRAM_BOUNDS_MS.len());
        *self
            .histogram
            .entry(u8::try_from(bin).unwrap_or(u8::MAX))
            .or_default() += 1;
    }

    /// Adds another set's durations.
    pub fn merge(&mut self, other: &Durations) {
        self.count += other.count;
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
        for (bin, count) in &other.histogram {
            *self.histogram.entry(*bin).or_default() += count;
        }
    }

    /// The mean in ms (rounded down); `None` without durations.
    pub fn average_ms(&self) -> Option<u64> {
        self.sum_ms.checked_div(self.count)
    }

    /// The `q`-quantile (0 < q ≤ 1) as the upper bound of the histogram bin it falls in, capped at the maximum:
    /// so the true value is at most this and more than the previous bound. `None` without durations.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        // The rank of the quantile, 1-based: ceil(q · count), at least 1.
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, count) in &self.histogram {
            seen += count;
            if seen >= rank {
                let bound = HISTOGRAM_BOUNDS_MS
                    .get(usize::from(*bin))
                    .copied()
                    .unwrap_or(u64::MAX);
                return Some(bound.min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }
}

/// One bucket's figures (one tenant, one dimension, one hour). Every field is a sum, so buckets merge by
/// addition ([`Figures::merge`]). The exact definition of each is in `docs/statistics.md`.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Figures {
    /// Conversations opened (`created`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conversations: u64,
    /// Conversations that became offline messages (`offline`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offline: u64,
    /// Assignments: `assigned`, and transfers straight to an agent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub assignments: u64,
    /// Transfers handed on (counted for the group and agent they left).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transfers: u64,
    /// Closes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub closed: u64,
    /// Reopens of a closed conversation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopened: u64,
    /// `missed` events with reason `waited`: waited in a queue past the group's `missed_after_ms`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missed_waited: u64,
    /// `missed` events with reason `unanswered`: the visitor closed it while it waited for an agent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missed_unanswered: u64,
    /// Closes of an episode (since the open or the last reopen) that no agent was assigned to and no agent
    /// wrote in.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unanswered_unassigned: u64,
    /// Closes of an episode that an agent was assigned to but no agent wrote in.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unanswered_assigned: u64,
    /// Ratings by score: index 0 counts 1s, index 4 counts 5s.
    #[serde(default, skip_serializing_if = "no_ratings")]
    pub ratings: [u64; 5],
    /// From the open to the first assignment (once per conversation).
    #[serde(default, skip_serializing_if = "Durations::is_empty")]
    pub first_assignment: Durations,
    /// The same, counting only the group's working hours.
    #[serde(default, skip_serializing_if = "Durations::is_empty")]
    pub first_assignment_working: Durations,
    /// From the open to the first message an agent wrote (once per conversation).
    #[serde(default, skip_serializing_if = "Durations::is_empty")]
    pub first_response: Durations,
    /// The same, counting only the group's working hours.
    #[serde(default, skip_serializing_if = "Durations::is_empty")]
    pub first_response_working: Durations,
    /// Each assignment period: from an agent's assignment to its end (close, transfer, snooze).
    #[serde(default, skip_serializing_if = "Durations::is_empty")]
    pub handle: Durations,
    /// The same, counting only the group's working hours.
    #[serde(default, skip_serializing_if = "Durations::is_empty")]
    pub handle_working: Durations,
    /// Each episode: from the open (or reopen) to the close.
    #[serde(default, skip_serializing_if = "Durations::is_empty")]
    pub resolution: Durations,
    /// The same, counting only the group's working hours.
    #[serde(default, skip_serializing_if = "Durations::is_empty")]
    pub resolution_working: Durations,
}

impl Figures {
    /// Adds another bucket's figures to these.
    pub fn merge(&mut self, other: &Figures) {
        self.conversations += other.conversations;
        self.offline += other.offline;
        self.assignments += other.assignments;
        self.transfers += other.transfers;
        self.closed += other.closed;
        self.reopened += other.reopened;
        self.missed_waited += other.missed_waited;
        self.missed_unanswered += other.missed_unanswered;
        self.unanswered_unassigned += other.unanswered_unassigned;
        self.unanswered_assigned += other.unanswered_assigned;
        for (mine, theirs) in self.ratings.iter_mut().zip(other.ratings) {
            *mine += theirs;
        }
        self.first_assignment.merge(&other.first_assignment);
        self.first_assignment_working
            .merge(&other.first_assignment_working);
        self.first_response.merge(&other.first_response);
        self.first_response_working.merge(&other.first_response_working);
        self.handle.merge(&other.handle);
        self.handle_working.merge(&other.handle_working);
        self.resolution.merge(&other.resolution);
        self.resolution_working.merge(&other.resolution_working);
    }

    /// The figures with what follows from them (averages, rates, medians), as a query answers them.
    pub fn report(&self) -> Report {
        let rated: u64 = self.ratings.iter().sum();
        let score_sum: u64 = self
            .ratings
            .iter()
            .zip(1u64..)
            .map(|(count, score)| count * score)
            .sum();
        let satisfied = self.ratings[3] + self.ratings[4];
        Report {
            conversations: self.conversations,
            offline: self.offline,
            assignments: self.assignments,
            transfers: self.transfers,
            closed: self.closed,
            reopened: self.reopened,
            reopen_rate: ratio(self.reopened, self.closed),
            missed_waited: self.missed_waited,
            missed_unanswered: self.missed_unanswered,
            unanswered_unassigned: self.unanswered_unassigned,
            unanswered_assigned: self.unanswered_assigned,
            ratings: self.ratings,
            rated,
            rating_average: ratio(score_sum, rated),
            satisfaction: ratio(satisfied, rated),
            first_assignment: DurationReport::of(&self.first_assignment),
            first_assignment_working: DurationReport::of(&self.first_assignment_working),
            first_response: DurationReport::of(&self.first_response),
            first_response_working: DurationReport::of(&self.first_response_working),
            handle: DurationReport::of(&self.handle),
            handle_working: DurationReport::of(&self.handle_working),
            resolution: DurationReport::of(&self.resolution),
            resolution_working: DurationReport::of(&self.resolution_working),
        }
    }
}

// A checkpoint leaves out what is zero: most buckets hold a few figures of the many.
fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn no_ratings(ratings: &[u64; 5]) -> bool {
    ratings.iter().all(|count| *count == 0)
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A set of durations as a query answers it.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DurationReport {
    /// How many.
    pub count: u64,
    /// The sum, in ms.
    pub total_ms: u64,
    /// The mean, in ms (absent without durations).
    pub average_ms: Option<u64>,
    /// The median as the upper bound of its histogram bin (see [`Durations::quantile_ms`]).
    pub median_ms: Option<u64>,
    /// The 90th percentile, the same way.
    pub p90_ms: Option<u64>,
    /// The longest, in ms (absent without durations).
    pub max_ms: Option<u64>,
}

impl DurationReport {
    fn of(durations: &Durations) -> Self {
        Self {
            count: durations.count,
            total_ms: durations.sum_ms,
            average_ms: durations.average_ms(),
            median_ms: durations.quantile_ms(0.5),
            p90_ms: durations.quantile_ms(0.9),
            max_ms: (durations.count > 0).then_some(durations.max_ms),
        }
    }
}

/// A bucket's (or a range's) figures with what follows from them: the answer of a statistics query.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// See [`Figures::conversations`].
    pub conversations: u64,
    /// See [`Figures::offline`].
    pub offline: u64,
    /// See [`Figures::assignments`].
    pub assignments: u64,
    /// See [`Figures::transfers`].
    pub transfers: u64,
    /// See [`Figures::closed`].
    pub closed: u64,
    /// See [`Figures::reopened`].
    pub reopened: u64,
    /// Reopens per close (absent without closes).
    pub reopen_rate: Option<f64>,
    /// See [`Figures::missed_waited`].
    pub missed_waited: u64,
    /// See [`Figures::missed_unanswered`].
    pub missed_unanswered: u64,
    /// See [`Figures::unanswered_unassigned`].
    pub unanswered_unassigned: u64,
    /// See [`Figures::unanswered_assigned`].
    pub unanswered_assigned: u64,
    /// Ratings by score (index 0: score 1).
    pub ratings: [u64; 5],
    /// How many ratings.
    pub rated: u64,
    /// The mean score (absent without ratings).
    pub rating_average: Option<f64>,
    /// The share of ratings of 4 or 5 (CSAT; absent without ratings).
    pub satisfaction: Option<f64>,
    /// See [`Figures::first_assignment`].
    pub first_assignment: DurationReport,
    /// See [`Figures::first_assignment_working`].
    pub first_assignment_working: DurationReport,
    /// See [`Figures::first_response`].
    pub first_response: DurationReport,
    /// See [`Figures::first_response_working`].
    pub first_response_working: DurationReport,
    /// See [`Figures::handle`].
    pub handle: DurationReport,
    /// See [`Figures::handle_working`].
    pub handle_working: DurationReport,
    /// See [`Figures::resolution`].
    pub resolution: DurationReport,
    /// See [`Figures::resolution_working`].
    pub resolution_working: DurationReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_merge_and_answer_quantiles_by_bin() {
        let mut a = Durations::default();
        for ms in [500, 4_000, 4_500, 70_000] {
            a.add(ms);
        }
        let mut b = Durations::default();
        b.add(1_000_000_000);
        a.merge(&b);
        assert_eq!((a.count, a.sum_ms, a.max_ms), (5, 1_000_079_000, 1_000_000_000));
        assert_eq!(a.average_ms(), Some(200_015_800));
        // Sorted: 500, 4000, 4500, 70000, 1e9 → the median (3rd) is in the 5 s bin.
        assert_eq!(a.quantile_ms(0.5), Some(5_000));
        assert_eq!(a.quantile_ms(0.2), Some(1_000));
        // The 5th lies in the open bin: the maximum.
        assert_eq!(a.quantile_ms(0.9), Some(1_000_000_000));
        assert_eq!(Durations::default().quantile_ms(0.5), None);
        let mut small = Durations::default();
        small.add(2_500);
        assert_eq!(small.quantile_ms(0.5), Some(2_500), "capped at the maximum");
    }
}
