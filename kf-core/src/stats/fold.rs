//! The fold: [`Aggregates::apply`] takes one committed event at a time, in feed order, and adds what it
//! completes to the hour buckets of its tenant. Each conversation has a small [`Tracker`] (its group, entry
//! point, when its episode began, who has it) so an event's figures need nothing but the tracker and the event.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::figures::Figures;
use super::{Dimension, HoursLookup, MS_PER_HOUR};
use crate::model::{
    Actor, AgentId, ConversationId, EntryPointId, Event, EventKind, GroupId, MissedReason, TenantId,
    Timestamp,
};

/// Where a bucket's figures are kept: a tenant, a dimension, and an hour (ms since the epoch / 3,600,000, UTC).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct BucketKey {
    /// The tenant.
    pub tenant: TenantId,
    /// All of the tenant's conversations, or one agent, group or entry point.
    pub dimension: Dimension,
    /// The hour, counted from the epoch (UTC).
    pub hour: u64,
}

/// What the fold remembers of one conversation between its events.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Tracker {
    tenant: TenantId,
    group: GroupId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry: Option<EntryPointId>,
    created_at: Timestamp,
    /// When the current episode began: the open, or the last reopen.
    episode_start: Timestamp,
    /// The conversation's first assignment has been counted.
    #[serde(default)]
    first_assigned: bool,
    /// The conversation's first agent message has been counted.
    #[serde(default)]
    first_responded: bool,
    /// The last agent assigned in the current episode (kept after the assignment ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    episode_agent: Option<AgentId>,
    /// An agent wrote in the current episode.
    #[serde(default)]
    episode_replied: bool,
    /// The running assignment period: its agent and start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<(AgentId, Timestamp)>,
    /// The last agent the conversation was assigned to, ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_agent: Option<AgentId>,
}

/// Every tenant's statistics: the hour buckets, and the trackers of the conversations seen. Built by applying
/// committed events in feed order ([`Aggregates::apply`]); read by [`Aggregates::query`](super::StatsQuery).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Aggregates {
    #[serde(with = "pairs")]
    pub(super) buckets: BTreeMap<BucketKey, Figures>,
    #[serde(with = "pairs")]
    pub(super) conversations: HashMap<ConversationId, Tracker>,
}

/// Which dimensions a figure of a conversation counts in: all, its group and entry point, and an agent.
struct Targets<'a> {
    tenant: &'a TenantId,
    group: &'a GroupId,
    entry: Option<&'a EntryPointId>,
    agent: Option<&'a AgentId>,
    hour: u64,
}

impl Aggregates {
    /// Empty aggregates.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many hour buckets there are.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// How many conversations are tracked.
    pub fn conversation_count(&self) -> usize {
        self.conversations.len()
    }

    /// The figures of one bucket, if it has any.
    pub fn bucket(&self, key: &BucketKey) -> Option<&Figures> {
        self.buckets.get(key)
    }

    /// Every bucket, in key order.
    pub fn buckets(&self) -> impl Iterator<Item = (&BucketKey, &Figures)> {
        self.buckets.iter()
    }

    /// Applies one committed event of `tenant`: the next in feed order. An event of a conversation whose
    /// `created` was not seen (a feed followed from the middle) is skipped. Never fails: what an event cannot
    /// tell (a rating out of 1–5) is left out.
    pub fn apply(&mut self, tenant: &TenantId, event: &Event, hours: &dyn HoursLookup) {
        let at = event.at;
        if let EventKind::Created { group, entry, .. } = &event.data {
            let tracker = Tracker {
                tenant: tenant.clone(),
                group: group.clone(),
                entry: entry.clone(),
                created_at: at,
                episode_start: at,
                first_assigned: false,
                first_responded: false,
                episode_agent: None,
                episode_replied: false,
                owner: None,
                last_agent: None,
            };
            self.add(&tracker.targets(None, at), |f| f.conversations += 1);
            self.conversations.insert(event.conversation, tracker);
            return;
        }
        let Some(mut tracker) = self.conversations.remove(&event.conversation) else {
            return;
        };
        self.step(&mut tracker, event, hours);
        self.conversations.insert(event.conversation, tracker);
    }

    fn step(&mut self, tracker: &mut Tracker, event: &Event, hours: &dyn HoursLookup) {
        let at = event.at;
        match &event.data {
            EventKind::Message { .. } => {
                if let Actor::Agent(agent) = &event.author {
                    if !tracker.first_responded {
                        tracker.first_responded = true;
                        let (wall, working) = tracker.durations(tracker.created_at, at, hours);
                        self.add(&tracker.targets(Some(agent), at), |f| {
                            f.first_response.add(wall);
                            f.first_response_working.add(working);
                        });
                    }
                    tracker.episode_replied = true;
                }
            }
            EventKind::Assigned { agent } => self.assign(tracker, agent, at, hours),
            EventKind::Transferred {
                from, agent, group, ..
            } => {
                self.add(&tracker.targets(from.as_ref(), at), |f| f.transfers += 1);
                self.end_period(tracker, at, hours);
                tracker.group = group.clone();
                if let Some(agent) = agent {
                    self.assign(tracker, agent, at, hours);
                }
            }
            EventKind::Snoozed { .. } => self.end_period(tracker, at, hours),
            EventKind::Closed => {
                self.end_period(tracker, at, hours);
                let agent = tracker.episode_agent.clone();
                let (wall, working) = tracker.durations(tracker.episode_start, at, hours);
                let replied = tracker.episode_replied;
                self.add(&tracker.targets(agent.as_ref(), at), |f| {
                    f.closed += 1;
                    f.resolution.add(wall);
                    f.resolution_working.add(working);
                    match (replied, &agent) {
                        (true, _) => {}
                        (false, Some(_)) => f.unanswered_assigned += 1,
                        (false, None) => f.unanswered_unassigned += 1,
                    }
                });
            }
            EventKind::Reopened => {
                self.add(&tracker.targets(tracker.last_agent.as_ref(), at), |f| {
                    f.reopened += 1
                });
                tracker.episode_start = at;
                tracker.episode_agent = None;
                tracker.episode_replied = false;
                tracker.owner = None;
            }
            EventKind::Offline => self.add(&tracker.targets(None, at), |f| f.offline += 1),
            EventKind::Missed { reason } => {
                let reason = *reason;
                self.add(&tracker.targets(None, at), |f| match reason {
                    MissedReason::Waited => f.missed_waited += 1,
                    MissedReason::Unanswered => f.missed_unanswered += 1,
                });
            }
            EventKind::Rated { score, .. } => {
                let Some(index) = usize::from(*score).checked_sub(1).filter(|i| *i < 5) else {
                    return;
                };
                self.add(&tracker.targets(tracker.last_agent.as_ref(), at), |f| {
                    f.ratings[index] += 1
                });
            }
            // Woken: queued again, an `assigned` follows. The rest changes no figure.
            _ => {}
        }
    }

    /// An agent takes the conversation: an assignment, maybe its first, and a new handling period.
    fn assign(&mut self, tracker: &mut Tracker, agent: &AgentId, at: Timestamp, hours: &dyn HoursLookup) {
        let first = (!tracker.first_assigned).then(|| tracker.durations(tracker.created_at, at, hours));
        tracker.first_assigned = true;
        self.add(&tracker.targets(Some(agent), at), |f| {
            f.assignments += 1;
            if let Some((wall, working)) = first {
                f.first_assignment.add(wall);
                f.first_assignment_working.add(working);
            }
        });
        tracker.owner = Some((agent.clone(), at));
        tracker.episode_agent = Some(agent.clone());
        tracker.last_agent = Some(agent.clone());
    }

    /// The running handling period ends (close, transfer, snooze): its time counts for its agent.
    fn end_period(&mut self, tracker: &mut Tracker, at: Timestamp, hours: &dyn HoursLookup) {
        if let Some((agent, start)) = tracker.owner.take() {
            let (wall, working) = tracker.durations(start, at, hours);
            self.add(&tracker.targets(Some(&agent), at), |f| {
                f.handle.add(wall);
                f.handle_working.add(working);
            });
        }
    }

    /// Adds to the buckets of every dimension a figure counts in.
    fn add(&mut self, targets: &Targets<'_>, change: impl Fn(&mut Figures)) {
        for dimension in targets.dimensions() {
            let key = BucketKey {
                tenant: targets.tenant.clone(),
                dimension,
                hour: targets.hour,
            };
            change(self.buckets.entry(key).or_default());
        }
    }

    /// Adds one figure change to one bucket (the brute-force recomputation's way in).
    #[cfg(test)]
    pub(super) fn add_to(&mut self, key: BucketKey, change: impl Fn(&mut Figures)) {
        change(self.buckets.entry(key).or_default());
    }
}

impl Tracker {
    fn targets<'a>(&'a self, agent: Option<&'a AgentId>, at: Timestamp) -> Targets<'a> {
        Targets {
            tenant: &self.tenant,
            group: &self.group,
            entry: self.entry.as_ref(),
            agent,
            hour: at.0 / MS_PER_HOUR,
        }
    }

    /// `from` to `to` in ms: on the wall clock, and inside the current group's working hours.
    fn durations(&self, from: Timestamp, to: Timestamp, hours: &dyn HoursLookup) -> (u64, u64) {
        working_durations(&self.tenant, &self.group, from, to, hours)
    }
}

/// `from` to `to` in ms: on the wall clock, and inside `group`'s working hours (all of it without hours).
pub(super) fn working_durations(
    tenant: &TenantId,
    group: &GroupId,
    from: Timestamp,
    to: Timestamp,
    hours: &dyn HoursLookup,
) -> (u64, u64) {
    let wall = to.0.saturating_sub(from.0);
    let working = match hours.hours(tenant, group) {
        Some(schedule) => schedule.open_millis(from, to),
        None => wall,
    };
    (wall, working)
}

impl Targets<'_> {
    fn dimensions(&self) -> impl Iterator<Item = Dimension> + '_ {
        [
            Some(Dimension::All),
            Some(Dimension::Group(self.group.clone())),
            self.entry.cloned().map(Dimension::Entry),
            self.agent.cloned().map(Dimension::Agent),
        ]
        .into_iter()
        .flatten()
    }
}

/// Serializes a map as a list of pairs, so that keys need not be strings (JSON).
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<'a, M, K, V, S>(map: &'a M, serializer: S) -> Result<S::Ok, S::Error>
    where
        &'a M: IntoIterator<Item = (&'a K, &'a V)>,
        K: Serialize + 'a,
        V: Serialize + 'a,
        S: Serializer,
    {
        serializer.collect_seq(map)
    }

    pub(super) fn deserialize<'de, M, K, V, D>(deserializer: D) -> Result<M, D::Error>
    where
        M: FromIterator<(K, V)>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}
