//! The capacity ledger: agents' presence, status and load, the per-group queues, and the open conversations.
//!
//! Every check-and-change happens under one lock, so "no agent above capacity", "no group above its cap" and
//! "no conversation with two owners" hold however requests interleave. The lock is never held across an
//! `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::model::{
    Agent, AgentId, AgentStatus, Conversation, ConversationId, ConversationState, Group, GroupId, Seq,
    Strategy, TenantId, Timestamp, VisitorId,
};
use crate::routing::Candidate;
use crate::telemetry::QueueMetrics;

mod monitor;

type AgentKey = (TenantId, AgentId);
type GroupKey = (TenantId, GroupId);

/// Assignments remembered per group for the estimated wait.
const THROUGHPUT_WINDOW: usize = 20;

#[derive(Debug)]
struct Slot {
    agent: Agent,
    connections: usize,
    online: bool,
    /// Counts the times the agent lost its last connection: a grace timer only acts for the loss it started on.
    departures: u64,
    status: AgentStatus,
    label: Option<String>,
    /// Conversations counted against the agent, with the group each one counts in.
    active: HashMap<ConversationId, GroupId>,
    last_assigned: Option<Timestamp>,
    last_assignment: u64,
}

impl Slot {
    fn accepts(&self) -> bool {
        self.online && self.agent.active && self.status.accepts()
    }

    fn has_room(&self, group: &GroupId) -> bool {
        self.agent.groups.contains(group) && self.active.len() < self.agent.capacity_in(group) as usize
    }
}

/// Why an agent cannot take a conversation now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such agent or conversation.
    Unknown,
    /// The agent is not in the group.
    NotInGroup,
    /// The agent has no live connection, or a status other than online.
    NotAccepting,
    /// The agent is at its capacity for the group.
    AgentFull,
    /// The group is at its cap.
    GroupFull,
    /// The conversation is not waiting in a queue (already assigned, claimed or closed).
    NotQueued,
}

/// A queue's change since it was last announced.
#[derive(Debug, Default)]
pub(crate) struct QueueChange {
    /// Conversations whose position changed (or that are new in the queue): (id, visitor, position, wait).
    pub(crate) positions: Vec<(ConversationId, VisitorId, u32, Option<u64>)>,
    /// Agents of the group with a live connection, to be sent their queue view.
    pub(crate) agents: Vec<AgentId>,
}

/// One queued conversation as an agent's queue view shows it.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) conversation: Conversation,
    pub(crate) position: u32,
    pub(crate) estimated_wait_ms: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<GroupKey, Group>,
    agents: HashMap<AgentKey, Slot>,
    queues: HashMap<GroupKey, VecDeque<ConversationId>>,
    open: HashMap<ConversationId, Conversation>,
    /// Assignments made since start: numbers each one, for round robin's "least recently assigned".
    assignments: u64,
    /// Times of each group's recent assignments, oldest first.
    throughput: HashMap<GroupKey, VecDeque<Timestamp>>,
    /// Each queue as it was last announced.
    announced: HashMap<GroupKey, Vec<ConversationId>>,
    /// Numbers each entry into a queue, so a timer armed at one entry can tell it is still the same wait.
    entries: u64,
    entry: HashMap<ConversationId, u64>,
    /// An agent a conversation should go to only if nobody else can take it (it let the conversation go).
    avoid: HashMap<ConversationId, AgentId>,
    /// Conversations that recently closed, with the seq of their close, so that a snapshot older than that (a
    /// request racing it to `update`) cannot bring one back; a reopen is newer. Oldest first, bounded.
    departed: VecDeque<(ConversationId, Seq)>,
    /// Each group's queue series (`kf_queue_length`, `kf_queue_wait_seconds`), registered on first use.
    queue_metrics: HashMap<GroupKey, QueueMetrics>,
    /// When each queued conversation entered its queue, for `kf_queue_wait_seconds`.
    queued_since: HashMap<ConversationId, Instant>,
}

/// Departures remembered by [`State::departed`]: far more than can race at once.
const DEPARTURES_REMEMBERED: usize = 4096;

impl State {
    fn depart(&mut self, conversation: &Conversation) {
        self.open.remove(&conversation.id);
        self.entry.remove(&conversation.id);
        if self.departed.len() == DEPARTURES_REMEMBERED {
            self.departed.pop_front();
        }
        self.departed.push_back((conversation.id, conversation.last_seq));
    }

    fn group_load(&self, tenant: &TenantId, group: &GroupId) -> usize {
        self.agents
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, slot)| slot.active.values().filter(|g| *g == group).count())
            .sum()
    }

    fn group_full(&self, tenant: &TenantId, group: &GroupId) -> bool {
        self.groups
            .get(&(tenant.clone(), group.clone()))
            .and_then(|g| g.max_active)
            .is_some_and(|cap| self.group_load(tenant, group) >= cap as usize)
    }

    fn candidates(&self, tenant: &TenantId, group: &GroupId) -> Vec<Candidate> {
        if self.group_full(tenant, group) {
            return Vec::new();
        }
        let mut candidates: Vec<Candidate> = self
            .agents
            .iter()
            .filter(|((t, _), slot)| t == tenant && slot.accepts() && slot.has_room(group))
            .map(|(_, slot)| Candidate {
                agent: slot.agent.id.clone(),
                active: u32::try_from(slot.active.len()).unwrap_or(u32::MAX),
                capacity: slot.agent.capacity_in(group),
                last_assigned: slot.last_assigned,
                last_assignment: slot.last_assignment,
                previous: false,
            })
            .collect();
        candidates.sort_by(|a, b| a.agent.cmp(&b.agent));
        candidates
    }

    /// Whether `agent` may take a conversation of `group` now; `explicit` (a claim) ignores the agent's status.
    fn fits(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        group: &GroupId,
        explicit: bool,
    ) -> Result<(), Refusal> {
        let slot = self
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .ok_or(Refusal::Unknown)?;
        if !slot.agent.groups.contains(group) {
            return Err(Refusal::NotInGroup);
        }
        if !slot.online || !slot.agent.active || (!explicit && !slot.status.accepts()) {
            return Err(Refusal::NotAccepting);
        }
        if !slot.has_room(group) {
            return Err(Refusal::AgentFull);
        }
        if self.group_full(tenant, group) {
            return Err(Refusal::GroupFull);
        }
        Ok(())
    }

    /// Counts `conversation` against the agent (checked by `fits` just before).
    fn take(
        &mut self,
        tenant: &TenantId,
        agent: &AgentId,
        conversation: ConversationId,
        group: &GroupId,
        now: Timestamp,
    ) {
        self.assignments += 1;
        let order = self.assignments;
        if let Some(slot) = self.agents.get_mut(&(tenant.clone(), agent.clone())) {
            slot.active.insert(conversation, group.clone());
            slot.last_assigned = Some(now);
            slot.last_assignment = order;
        }
        let times = self
            .throughput
            .entry((tenant.clone(), group.clone()))
            .or_default();
        times.push_back(now);
        if times.len() > THROUGHPUT_WINDOW {
            times.pop_front();
        }
    }

    /// Estimated wait at `position`: the group's recent pace (time since the oldest remembered assignment over
    /// the assignments since), times the position. `None` before the group has assigned anything.
    fn estimate(&self, tenant: &TenantId, group: &GroupId, position: u32, now: Timestamp) -> Option<u64> {
        let times = self.throughput.get(&(tenant.clone(), group.clone()))?;
        let oldest = times.front()?;
        let span = now.as_millis().saturating_sub(oldest.as_millis());
        let per_assignment = span / u64::try_from(times.len()).unwrap_or(u64::MAX).max(1);
        Some(per_assignment.saturating_mul(u64::from(position)))
    }

    fn dequeue(&mut self, tenant: &TenantId, group: &GroupId, conversation: &ConversationId) {
        let key = (tenant.clone(), group.clone());
        if let Some(queue) = self.queues.get_mut(&key) {
            queue.retain(|id| id != conversation);
            self.measure_queue(&key);
        }
    }

    fn enqueue(&mut self, conversation: &Conversation) {
        let key = (conversation.tenant.clone(), conversation.group.clone());
        let queue = self.queues.entry(key.clone()).or_default();
        if !queue.contains(&conversation.id) {
            queue.push_back(conversation.id);
            self.entries += 1;
            self.entry.insert(conversation.id, self.entries);
            self.queued_since
                .entry(conversation.id)
                .or_insert_with(Instant::now);
            self.measure_queue(&key);
        }
    }

    /// Sets a group's `kf_queue_length` to its queue's length now.
    fn measure_queue(&mut self, key: &GroupKey) {
        let length = self.queues.get(key).map_or(0, VecDeque::len);
        self.queue_metrics
            .entry(key.clone())
            .or_insert_with(|| QueueMetrics::new(&key.0, &key.1))
            .length
            .set(length as f64);
    }

    /// A conversation left its queue for good: assigned (its wait is recorded in `kf_queue_wait_seconds`),
    /// closed, or turned into a message left.
    fn left_queue(&mut self, conversation: &Conversation) {
        let Some(since) = self.queued_since.remove(&conversation.id) else {
            return;
        };
        if conversation.state.agent().is_some() {
            let key = (conversation.tenant.clone(), conversation.group.clone());
            self.queue_metrics
                .entry(key)
                .or_insert_with(|| QueueMetrics::new(&conversation.tenant, &conversation.group))
                .wait
                .record(since.elapsed().as_secs_f64());
        }
    }

    /// Stops counting a conversation against an agent; returns the agent's groups (their queues may drain).
    /// Puts a conversation in the place its new state gives it (a queue, an agent's load, the departed); returns
    /// the groups whose capacity that freed.
    fn place(&mut self, conversation: &Conversation) -> Vec<GroupId> {
        let tenant = &conversation.tenant;
        let mut freed = Vec::new();
        if conversation.state != ConversationState::Queued {
            self.left_queue(conversation);
        }
        match &conversation.state {
            ConversationState::Closed => {
                self.depart(conversation);
                self.avoid.remove(&conversation.id);
                self.dequeue(tenant, &conversation.group, &conversation.id);
                // Whoever held it is its last agent, even if its assignment has not been recorded here yet.
                if let Some(agent) = &conversation.last_agent {
                    freed = self.release(tenant, agent, &conversation.id);
                }
            }
            ConversationState::Assigned { agent } => {
                // Untracked and not departed: a reopened conversation assigned before its `reopened` snapshot
                // got here. It counts against its agent like any other.
                self.dequeue(tenant, &conversation.group, &conversation.id);
                if let Some(slot) = self.agents.get_mut(&(tenant.clone(), agent.clone())) {
                    slot.active.insert(conversation.id, conversation.group.clone());
                }
                self.open.insert(conversation.id, conversation.clone());
            }
            ConversationState::Queued => {
                self.enqueue(conversation);
                self.open.insert(conversation.id, conversation.clone());
            }
            ConversationState::Offline => {
                // Open but not routed (see `track`); `update` took it out of its queue. `take` assigns it.
                self.entry.remove(&conversation.id);
                self.open.insert(conversation.id, conversation.clone());
            }
            ConversationState::OnHold { agent, .. } => {
                // Parked: open, in no queue, and not counted against its agent (`update` released it).
                self.dequeue(tenant, &conversation.group, &conversation.id);
                self.entry.remove(&conversation.id);
                freed = self.release(tenant, agent, &conversation.id);
                self.open.insert(conversation.id, conversation.clone());
            }
        }
        freed
    }

    fn release(&mut self, tenant: &TenantId, agent: &AgentId, conversation: &ConversationId) -> Vec<GroupId> {
        let Some(slot) = self.agents.get_mut(&(tenant.clone(), agent.clone())) else {
            return Vec::new();
        };
        if slot.active.remove(conversation).is_some() {
            slot.agent.groups.clone()
        } else {
            Vec::new()
        }
    }
}

/// A queued conversation taken for routing, with the agents that could take it now.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) conversation: Conversation,
    pub(crate) candidates: Vec<Candidate>,
}

/// What connecting an agent did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    /// The agent went from offline to online: its groups' queues should drain.
    CameOnline(Vec<GroupId>),
    /// The agent was online already.
    AlreadyOnline,
}

#[derive(Debug, Default)]
pub(crate) struct Router {
    state: Mutex<State>,
}

impl Router {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn put_group(&self, group: Group) {
        self.state()
            .groups
            .insert((group.tenant.clone(), group.id.clone()), group);
    }

    pub(crate) fn has_group(&self, tenant: &TenantId, group: &GroupId) -> bool {
        self.state().groups.contains_key(&(tenant.clone(), group.clone()))
    }

    /// The group's strategy (the default one for an unknown group).
    pub(crate) fn strategy(&self, tenant: &TenantId, group: &GroupId) -> Strategy {
        self.state()
            .groups
            .get(&(tenant.clone(), group.clone()))
            .map(|g| g.strategy.clone())
            .unwrap_or_default()
    }

    /// The group's record.
    pub(crate) fn groups(&self, tenant: &TenantId) -> Vec<Group> {
        let mut groups: Vec<Group> = self
            .state()
            .groups
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, group)| group.clone())
            .collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        groups
    }

    pub(crate) fn group(&self, tenant: &TenantId, group: &GroupId) -> Option<Group> {
        self.state().groups.get(&(tenant.clone(), group.clone())).cloned()
    }

    /// The number of the conversation's current queue entry, while it waits in a queue.
    pub(crate) fn queue_entry(&self, id: &ConversationId) -> Option<u64> {
        let state = self.state();
        let conversation = state.open.get(id)?;
        if conversation.state != ConversationState::Queued {
            return None;
        }
        state.entry.get(id).copied()
    }

    /// Prefers others over `agent` for this conversation from now on (it let the conversation go).
    pub(crate) fn avoid(&self, conversation: ConversationId, agent: AgentId) {
        self.state().avoid.insert(conversation, agent);
    }

    /// The agent this conversation should go to only as a last resort.
    pub(crate) fn avoided(&self, conversation: &ConversationId) -> Option<AgentId> {
        self.state().avoid.get(conversation).cloned()
    }

    /// The connected agents of a group.
    pub(crate) fn connected_agents(&self, tenant: &TenantId, group: &GroupId) -> Vec<AgentId> {
        let mut agents: Vec<AgentId> = self
            .state()
            .agents
            .iter()
            .filter(|((t, _), slot)| t == tenant && slot.connections > 0 && slot.agent.groups.contains(group))
            .map(|((_, agent), _)| agent.clone())
            .collect();
        agents.sort();
        agents
    }

    /// Where a conversation opened in `group` goes instead: the group's hand-over group, when `group` is a
    /// bot-first group (it has one, and that group exists) and none of its agents is online and accepting.
    pub(crate) fn unstaffed_handover(&self, tenant: &TenantId, group: &GroupId) -> Option<GroupId> {
        let state = self.state();
        let handover = state
            .groups
            .get(&(tenant.clone(), group.clone()))?
            .handover
            .clone()
            .filter(|handover| handover != group)?;
        if !state.groups.contains_key(&(tenant.clone(), handover.clone())) {
            return None;
        }
        let staffed = state
            .agents
            .iter()
            .any(|((t, _), slot)| t == tenant && slot.agent.groups.contains(group) && slot.accepts());
        (!staffed).then_some(handover)
    }

    /// The group's welcome message, if it has one.
    pub(crate) fn welcome(&self, tenant: &TenantId, group: &GroupId) -> Option<String> {
        self.state()
            .groups
            .get(&(tenant.clone(), group.clone()))
            .and_then(|g| g.welcome.clone())
    }

    /// The tenant's first group by id, used when a visitor names none and no default is configured.
    pub(crate) fn first_group(&self, tenant: &TenantId) -> Option<GroupId> {
        self.state()
            .groups
            .keys()
            .filter(|(t, _)| t == tenant)
            .map(|(_, g)| g.clone())
            .min()
    }

    /// Adds or updates an agent's record, keeping its presence and load. Returns its groups.
    pub(crate) fn put_agent(&self, agent: Agent) -> Vec<GroupId> {
        let mut state = self.state();
        let key = (agent.tenant.clone(), agent.id.clone());
        let groups = agent.groups.clone();
        match state.agents.get_mut(&key) {
            Some(slot) => slot.agent = agent,
            None => {
                let slot = Slot {
                    agent,
                    connections: 0,
                    online: false,
                    departures: 0,
                    status: AgentStatus::Online,
                    label: None,
                    active: HashMap::new(),
                    last_assigned: None,
                    last_assignment: 0,
                };
                state.agents.insert(key, slot);
            }
        }
        groups
    }

    /// Whether the agent exists and belongs to `group`.
    pub(crate) fn in_group(&self, tenant: &TenantId, agent: &AgentId, group: &GroupId) -> bool {
        self.state()
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .is_some_and(|slot| slot.agent.groups.contains(group))
    }

    pub(crate) fn agent(&self, tenant: &TenantId, agent: &AgentId) -> Option<Agent> {
        self.state()
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .map(|slot| slot.agent.clone())
    }

    /// Records an open conversation (at start-up or when created): queued ones join their group's queue,
    /// assigned ones count against their agent.
    pub(crate) fn track(&self, conversation: Conversation) {
        let mut state = self.state();
        if state
            .open
            .get(&conversation.id)
            .is_some_and(|tracked| tracked.last_seq >= conversation.last_seq)
        {
            return;
        }
        let tenant = conversation.tenant.clone();
        match &conversation.state {
            ConversationState::Queued => state.enqueue(&conversation),
            ConversationState::Assigned { agent } => {
                if let Some(slot) = state.agents.get_mut(&(tenant, agent.clone())) {
                    slot.active.insert(conversation.id, conversation.group.clone());
                }
            }
            // Offline messages are open but not routed: in no queue, until an agent takes one. A conversation on
            // hold neither: it counts against nobody until it wakes.
            ConversationState::Offline | ConversationState::OnHold { .. } => {}
            ConversationState::Closed => return,
        }
        state.open.insert(conversation.id, conversation);
    }

    /// The current record of an open conversation.
    pub(crate) fn open_conversation(&self, id: &ConversationId) -> Option<Conversation> {
        self.state().open.get(id).cloned()
    }

    /// An open conversation of this visitor in this group, if any: a live one (queued or assigned), or with
    /// `offline`, a message it left.
    pub(crate) fn open_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        group: &GroupId,
        offline: bool,
    ) -> Option<Conversation> {
        self.state()
            .open
            .values()
            .filter(|c| &c.tenant == tenant && &c.visitor == visitor && &c.group == group)
            .filter(|c| (c.state == ConversationState::Offline) == offline)
            .min_by_key(|c| (c.created_at, c.id))
            .cloned()
    }

    /// The offline messages of these groups waiting to be taken, oldest first, at most `limit`.
    pub(crate) fn offline_messages(
        &self,
        tenant: &TenantId,
        groups: &[GroupId],
        limit: usize,
    ) -> Vec<ConversationId> {
        let mut ids: Vec<ConversationId> = self
            .state()
            .open
            .values()
            .filter(|c| {
                &c.tenant == tenant && c.state == ConversationState::Offline && groups.contains(&c.group)
            })
            .map(|c| c.id)
            .collect();
        // Conversation ids are UUIDv7: in creation order.
        ids.sort();
        ids.truncate(limit);
        ids
    }

    /// Takes the head of a group's queue for routing, if an agent could take it now.
    pub(crate) fn take_next(&self, tenant: &TenantId, group: &GroupId) -> Option<Pending> {
        let mut state = self.state();
        let candidates = state.candidates(tenant, group);
        if candidates.is_empty() {
            return None;
        }
        let key = (tenant.clone(), group.clone());
        let queue = state.queues.get_mut(&key)?;
        let id = queue.pop_front()?;
        state.measure_queue(&key);
        let conversation = state.open.get(&id).cloned()?;
        Some(Pending {
            conversation,
            candidates,
        })
    }

    /// Puts a conversation taken by [`Router::take_next`] back at the head of its queue.
    pub(crate) fn requeue(&self, conversation: &Conversation) {
        let mut state = self.state();
        if !state
            .open
            .get(&conversation.id)
            .is_some_and(|c| c.state == ConversationState::Queued)
        {
            return;
        }
        let key = (conversation.tenant.clone(), conversation.group.clone());
        let queue = state.queues.entry(key.clone()).or_default();
        if !queue.contains(&conversation.id) {
            queue.push_front(conversation.id);
            state.measure_queue(&key);
        }
    }

    /// Reserves capacity in `group` for `conversation` with `agent`, if the agent is online, accepting, in the
    /// group and below capacity, and the group below its cap.
    pub(crate) fn reserve(
        &self,
        tenant: &TenantId,
        conversation: ConversationId,
        agent: &AgentId,
        group: &GroupId,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let mut state = self.state();
        state.fits(tenant, agent, group, false)?;
        state.take(tenant, agent, conversation, group, now);
        Ok(())
    }

    /// As [`Router::reserve`], for an agent's own request (taking an offline message): its status is ignored.
    pub(crate) fn reserve_explicit(
        &self,
        tenant: &TenantId,
        conversation: ConversationId,
        agent: &AgentId,
        group: &GroupId,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let mut state = self.state();
        state.fits(tenant, agent, group, true)?;
        state.take(tenant, agent, conversation, group, now);
        Ok(())
    }

    /// An agent claims a queued conversation: under the lock, so of concurrent claims exactly one wins. The
    /// conversation leaves its queue and counts against the agent; commit the assignment next (or
    /// [`Router::unreserve`] and [`Router::requeue`] it). An `explicit` claim (the agent's own) ignores the
    /// agent's status; the engine's (a reopened conversation back to its agent) does not.
    pub(crate) fn claim(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        conversation: ConversationId,
        now: Timestamp,
        explicit: bool,
    ) -> Result<Conversation, Refusal> {
        let mut state = self.state();
        let record = state.open.get(&conversation).cloned().ok_or(Refusal::NotQueued)?;
        if &record.tenant != tenant {
            return Err(Refusal::Unknown);
        }
        let queued = state
            .queues
            .get(&(tenant.clone(), record.group.clone()))
            .is_some_and(|queue| queue.contains(&conversation));
        if !queued {
            return Err(Refusal::NotQueued);
        }
        state.fits(tenant, agent, &record.group, explicit)?;
        state.dequeue(tenant, &record.group, &conversation);
        state.take(tenant, agent, conversation, &record.group, now);
        Ok(record)
    }

    /// Gives back a reservation whose assignment was not committed (unless the agent owns the conversation).
    pub(crate) fn unreserve(&self, tenant: &TenantId, conversation: ConversationId, agent: &AgentId) {
        let mut state = self.state();
        if state
            .open
            .get(&conversation)
            .is_some_and(|c| c.state.agent() == Some(agent))
        {
            return;
        }
        state.release(tenant, agent, &conversation);
    }

    /// Records a committed state change. Returns the groups whose queues may now drain or changed.
    ///
    /// Snapshots can arrive out of commit order (two requests racing from their commits to here), so only one
    /// newer than what is tracked counts, and a closed conversation is never brought back by a stale one.
    pub(crate) fn update(&self, conversation: &Conversation) -> Vec<GroupId> {
        let mut state = self.state();
        let state = &mut *state;
        let tenant = &conversation.tenant;
        let tracked = state.open.get(&conversation.id).cloned();
        if tracked
            .as_ref()
            .is_some_and(|tracked| tracked.last_seq >= conversation.last_seq)
        {
            return Vec::new();
        }
        let departed_since =
            |(id, seq): &(ConversationId, Seq)| id == &conversation.id && *seq >= conversation.last_seq;
        if tracked.is_none() && state.departed.iter().any(departed_since) {
            // Older than the close already recorded: history.
            return Vec::new();
        }
        if let Some(tracked) = &tracked
            && tracked.state == conversation.state
            && tracked.group == conversation.group
        {
            // Same place (a `missed` record): keep its place in the queue.
            state.open.insert(conversation.id, conversation.clone());
            return Vec::new();
        }
        let mut groups = vec![conversation.group.clone()];
        if let Some(tracked) = &tracked {
            // Leave the old place: its queue, and its owner unless the owner stays.
            state.dequeue(tenant, &tracked.group, &conversation.id);
            groups.push(tracked.group.clone());
            if let Some(owner) = tracked.state.agent()
                && conversation.state.agent() != Some(owner)
            {
                groups.extend(state.release(tenant, owner, &conversation.id));
            }
        }
        groups.extend(state.place(conversation));
        let mut seen = HashSet::new();
        groups.retain(|g| seen.insert(g.clone()));
        groups
    }

    /// Counts a new connection of an agent. `None` when the agent is unknown.
    pub(crate) fn connect(&self, tenant: &TenantId, agent: &AgentId) -> Option<Presence> {
        let mut state = self.state();
        let slot = state.agents.get_mut(&(tenant.clone(), agent.clone()))?;
        slot.connections += 1;
        if slot.online {
            return Some(Presence::AlreadyOnline);
        }
        slot.online = true;
        Some(Presence::CameOnline(slot.agent.groups.clone()))
    }

    /// Counts a closed connection. When it was the agent's last one, returns the departure to pass to
    /// [`Router::offline_if_idle`] once the grace period is over.
    pub(crate) fn disconnect(&self, tenant: &TenantId, agent: &AgentId) -> Option<u64> {
        let mut state = self.state();
        let slot = state.agents.get_mut(&(tenant.clone(), agent.clone()))?;
        slot.connections = slot.connections.saturating_sub(1);
        if slot.connections > 0 {
            return None;
        }
        slot.departures += 1;
        Some(slot.departures)
    }

    /// Marks the agent offline if it has had no connection since `departure` (a reconnect and a later loss
    /// start a new grace period of their own).
    pub(crate) fn offline_if_idle(&self, tenant: &TenantId, agent: &AgentId, departure: u64) -> bool {
        let mut state = self.state();
        let Some(slot) = state.agents.get_mut(&(tenant.clone(), agent.clone())) else {
            return false;
        };
        if slot.connections == 0 && slot.online && slot.departures == departure {
            slot.online = false;
            return true;
        }
        false
    }

    /// Sets the status an agent chose. Returns its groups when it now takes new conversations and did not
    /// before (their queues should drain); `None` for an unknown agent.
    pub(crate) fn set_status(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        status: AgentStatus,
        label: Option<String>,
    ) -> Option<Vec<GroupId>> {
        let mut state = self.state();
        let slot = state.agents.get_mut(&(tenant.clone(), agent.clone()))?;
        let before = slot.accepts();
        slot.status = status;
        slot.label = label;
        Some(if !before && slot.accepts() {
            slot.agent.groups.clone()
        } else {
            Vec::new()
        })
    }

    /// The status an agent chose and its label.
    pub(crate) fn status(&self, tenant: &TenantId, agent: &AgentId) -> Option<(AgentStatus, Option<String>)> {
        self.state()
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .map(|slot| (slot.status, slot.label.clone()))
    }

    /// Whether the agent is online (for tests and the host).
    pub(crate) fn is_online(&self, tenant: &TenantId, agent: &AgentId) -> bool {
        self.state()
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .is_some_and(|slot| slot.online)
    }

    /// Queued conversations of a group, in order.
    pub(crate) fn queue(&self, tenant: &TenantId, group: &GroupId) -> Vec<ConversationId> {
        self.state()
            .queues
            .get(&(tenant.clone(), group.clone()))
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// What changed in a group's queue since it was last announced; `None` when nothing did.
    pub(crate) fn queue_change(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        now: Timestamp,
    ) -> Option<QueueChange> {
        let mut state = self.state();
        let key = (tenant.clone(), group.clone());
        let current: Vec<ConversationId> = state
            .queues
            .get(&key)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default();
        let before = state.announced.get(&key).cloned().unwrap_or_default();
        if before == current {
            return None;
        }
        let mut change = QueueChange::default();
        for (index, id) in current.iter().enumerate() {
            if before.get(index) == Some(id) {
                continue;
            }
            let Some(conversation) = state.open.get(id) else {
                continue;
            };
            let position = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let wait = state.estimate(tenant, group, position, now);
            change
                .positions
                .push((*id, conversation.visitor.clone(), position, wait));
        }
        change.agents = state
            .agents
            .iter()
            .filter(|((t, _), slot)| t == tenant && slot.connections > 0 && slot.agent.groups.contains(group))
            .map(|((_, agent), _)| agent.clone())
            .collect();
        change.agents.sort();
        state.announced.insert(key, current);
        Some(change)
    }

    /// The queued conversation's position and estimated wait, if it is queued.
    pub(crate) fn position(&self, id: &ConversationId, now: Timestamp) -> Option<(u32, Option<u64>)> {
        let state = self.state();
        let conversation = state.open.get(id)?;
        let queue = state
            .queues
            .get(&(conversation.tenant.clone(), conversation.group.clone()))?;
        let index = queue.iter().position(|queued| queued == id)?;
        let position = u32::try_from(index + 1).unwrap_or(u32::MAX);
        Some((
            position,
            state.estimate(&conversation.tenant, &conversation.group, position, now),
        ))
    }

    /// The queued conversations of every group of `agent`, group by group (by id), each in queue order.
    pub(crate) fn queue_view(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        per_group: usize,
        now: Timestamp,
    ) -> Vec<Waiting> {
        let state = self.state();
        let Some(slot) = state.agents.get(&(tenant.clone(), agent.clone())) else {
            return Vec::new();
        };
        let mut groups = slot.agent.groups.clone();
        groups.sort();
        groups.dedup();
        let mut view = Vec::new();
        for group in groups {
            let Some(queue) = state.queues.get(&(tenant.clone(), group.clone())) else {
                continue;
            };
            // The head of each queue: what an agent can act on, and a frame that stays small however long
            // the queue grows.
            for (index, id) in queue.iter().enumerate().take(per_group) {
                if let Some(conversation) = state.open.get(id) {
                    let position = u32::try_from(index + 1).unwrap_or(u32::MAX);
                    view.push(Waiting {
                        conversation: conversation.clone(),
                        position,
                        estimated_wait_ms: state.estimate(tenant, &group, position, now),
                    });
                }
            }
        }
        view
    }

    /// Open conversations assigned to an agent.
    pub(crate) fn load(&self, tenant: &TenantId, agent: &AgentId) -> usize {
        self.state()
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .map_or(0, |slot| slot.active.len())
    }

    /// Every open conversation as tracked.
    #[cfg(test)]
    pub(crate) fn open_snapshot(&self) -> Vec<Conversation> {
        self.state().open.values().cloned().collect()
    }

    /// Checks the ledger's invariants; returns the first violation found. `limits` holds, per agent, the most
    /// conversations it may hold (its load may exceed its capacity only if it did before a capacity cut).
    #[cfg(test)]
    pub(crate) fn violation(&self, limits: &HashMap<AgentId, usize>) -> Option<String> {
        let state = self.state();
        let mut owners: HashMap<ConversationId, &AgentId> = HashMap::new();
        for ((_, agent), slot) in &state.agents {
            if slot.active.len() > limits.get(agent).copied().unwrap_or(usize::MAX) {
                return Some(format!("{agent} holds {} conversations", slot.active.len()));
            }
            for id in slot.active.keys() {
                if let Some(other) = owners.insert(*id, agent) {
                    return Some(format!("{id} is counted against {agent} and {other}"));
                }
            }
        }
        for conversation in state.open.values() {
            let counted = owners.get(&conversation.id).copied();
            match &conversation.state {
                ConversationState::Assigned { agent } if counted != Some(agent) => {
                    return Some(format!(
                        "{} is assigned to {agent} but counted against {counted:?}",
                        conversation.id
                    ));
                }
                ConversationState::Queued if counted.is_some() => {
                    return Some(format!(
                        "queued {} is counted against {counted:?}",
                        conversation.id
                    ));
                }
                _ => {}
            }
        }
        for ((tenant, group), queue) in &state.queues {
            if queue.is_empty() {
                continue;
            }
            let manual = state
                .groups
                .get(&(tenant.clone(), group.clone()))
                .is_some_and(|g| g.strategy == Strategy::Manual);
            if !manual && !state.candidates(tenant, group).is_empty() {
                return Some(format!(
                    "{} conversations wait in {group} while an agent has room",
                    queue.len()
                ));
            }
        }
        None
    }
}

mod admin;
pub(crate) use admin::GroupInUse;
#[cfg(test)]
mod tests;
