//! The brute-force recomputation the fold is checked against: every figure straight from its definition in
//! `docs/statistics.md`, over each conversation's whole list of events, looking back and forward as the
//! definition says — no state carried from event to event.

use std::collections::BTreeMap;

use super::fold::{Aggregates, BucketKey, working_durations};
use super::{Dimension, Figures, HoursLookup, MS_PER_HOUR};
use crate::model::{
    Actor, AgentId, ConversationId, EntryPointId, Event, EventKind, GroupId, MissedReason, TenantId,
};

/// The statistics of a raw log (`(tenant, event)` in feed order), recomputed from scratch.
pub(super) fn recompute(log: &[(TenantId, Event)], hours: &dyn HoursLookup) -> Aggregates {
    let mut by_conversation: BTreeMap<ConversationId, (TenantId, Vec<&Event>)> = BTreeMap::new();
    for (tenant, event) in log {
        by_conversation
            .entry(event.conversation)
            .or_insert_with(|| (tenant.clone(), Vec::new()))
            .1
            .push(event);
    }
    let mut out = Aggregates::new();
    for (tenant, events) in by_conversation.values() {
        // A conversation is counted only from its `created` on (the feed is read from its start).
        if !matches!(events.first().map(|e| &e.data), Some(EventKind::Created { .. })) {
            continue;
        }
        conversation(&mut out, tenant, events, hours);
    }
    out
}

/// The group the conversation belongs to at event `index`, before the event: the last transfer's before it, else
/// the one it was opened for (the `created` event's own, at index 0).
fn group_before(events: &[&Event], index: usize) -> GroupId {
    events[..index.max(1)]
        .iter()
        .rev()
        .find_map(|e| match &e.data {
            EventKind::Transferred { group, .. } | EventKind::Created { group, .. } => Some(group.clone()),
            _ => None,
        })
        .unwrap_or_else(unreachable_group)
}

fn unreachable_group() -> GroupId {
    GroupId::new("none").expect("valid id")
}

/// The agent an event hands the conversation to, if it does.
fn assignee(event: &Event) -> Option<&AgentId> {
    match &event.data {
        EventKind::Assigned { agent } => Some(agent),
        EventKind::Transferred {
            agent: Some(agent), ..
        } => Some(agent),
        _ => None,
    }
}

/// Where the episode of event `index` began: the last `created` or `reopened` at or before it.
fn episode_start(events: &[&Event], index: usize) -> usize {
    (0..=index)
        .rev()
        .find(|i| matches!(events[*i].data, EventKind::Created { .. } | EventKind::Reopened))
        .unwrap_or(0)
}

fn conversation(out: &mut Aggregates, tenant: &TenantId, events: &[&Event], hours: &dyn HoursLookup) {
    let entry: Option<EntryPointId> = match &events[0].data {
        EventKind::Created { entry, .. } => entry.clone(),
        _ => None,
    };
    let created_at = events[0].at;
    // Adds `change` to every dimension the figure counts in, at event `index` (group as of just after it for
    // everything but a transfer, which counts for the group it left).
    let mut count = |index: usize, group: GroupId, agent: Option<&AgentId>, change: &dyn Fn(&mut Figures)| {
        let hour = events[index].at.0 / MS_PER_HOUR;
        let mut dimensions = vec![Dimension::All, Dimension::Group(group)];
        dimensions.extend(entry.clone().map(Dimension::Entry));
        dimensions.extend(agent.cloned().map(Dimension::Agent));
        for dimension in dimensions {
            let key = BucketKey {
                tenant: tenant.clone(),
                dimension,
                hour,
            };
            out.add_to(key, change);
        }
    };
    let first_assignment = events.iter().position(|e| assignee(e).is_some());
    let first_response = events
        .iter()
        .position(|e| matches!((&e.author, &e.data), (Actor::Agent(_), EventKind::Message { .. })));
    for (i, event) in events.iter().enumerate() {
        let at = event.at;
        let group = group_before(events, i);
        match &event.data {
            EventKind::Created { .. } => count(i, group.clone(), None, &|f| f.conversations += 1),
            EventKind::Offline => count(i, group.clone(), None, &|f| f.offline += 1),
            EventKind::Missed { reason } => {
                let waited = *reason == MissedReason::Waited;
                count(i, group.clone(), None, &|f| {
                    if waited {
                        f.missed_waited += 1
                    } else {
                        f.missed_unanswered += 1
                    }
                })
            }
            EventKind::Transferred { from, .. } => {
                count(i, group.clone(), from.as_ref(), &|f| f.transfers += 1)
            }
            EventKind::Reopened => {
                let last = events[..i].iter().rev().find_map(|e| assignee(e));
                count(i, group.clone(), last, &|f| f.reopened += 1)
            }
            EventKind::Rated { score, .. } if (1..=5).contains(score) => {
                let last = events[..i].iter().rev().find_map(|e| assignee(e));
                let index = usize::from(*score) - 1;
                count(i, group.clone(), last, &|f| f.ratings[index] += 1)
            }
            EventKind::Closed => {
                let start = episode_start(events, i);
                let episode = &events[start..i];
                let agent = episode.iter().rev().find_map(|e| assignee(e));
                let replied = episode
                    .iter()
                    .any(|e| matches!((&e.author, &e.data), (Actor::Agent(_), EventKind::Message { .. })));
                let (wall, working) = working_durations(tenant, &group, events[start].at, at, hours);
                let assigned = agent.is_some();
                count(i, group.clone(), agent, &|f| {
                    f.closed += 1;
                    f.resolution.add(wall);
                    f.resolution_working.add(working);
                    if !replied && assigned {
                        f.unanswered_assigned += 1;
                    }
                    if !replied && !assigned {
                        f.unanswered_unassigned += 1;
                    }
                });
            }
            _ => {}
        }
        // After the event: the group it leaves the conversation in.
        let group_after = group_before(events, i + 1);
        if let Some(agent) = assignee(event) {
            let first = first_assignment == Some(i);
            let (wall, working) = working_durations(tenant, &group_after, created_at, at, hours);
            count(i, group_after.clone(), Some(agent), &|f| {
                f.assignments += 1;
                if first {
                    f.first_assignment.add(wall);
                    f.first_assignment_working.add(working);
                }
            });
            // The period ends at the next close, transfer, snooze or reopen; a reopen ends nothing (a closed
            // conversation has no owner), and so a period ends only with one of the first three.
            if let Some(end) = (i + 1..events.len()).find(|j| {
                matches!(
                    events[*j].data,
                    EventKind::Closed | EventKind::Transferred { .. } | EventKind::Snoozed { .. }
                )
            }) {
                let group_at_end = group_before(events, end);
                let (wall, working) = working_durations(tenant, &group_at_end, at, events[end].at, hours);
                count(end, group_at_end, Some(agent), &|f| {
                    f.handle.add(wall);
                    f.handle_working.add(working);
                });
            }
        }
        if first_response == Some(i)
            && let Actor::Agent(agent) = &event.author
        {
            let (wall, working) = working_durations(tenant, &group, created_at, at, hours);
            count(i, group.clone(), Some(agent), &|f| {
                f.first_response.add(wall);
                f.first_response_working.add(working);
            });
        }
    }
}
