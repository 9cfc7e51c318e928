//! The capacity ledger: agents' presence and load, the per-group queues, and the open conversations.
//!
//! Every check-and-change happens under one lock, so "no agent above capacity" and "no conversation with two
//! owners" hold however requests interleave. The lock is never held across an `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::model::{
    Agent, AgentId, Conversation, ConversationId, ConversationState, Group, GroupId, TenantId, Timestamp,
    VisitorId,
};
use crate::routing::Candidate;

type AgentKey = (TenantId, AgentId);
type GroupKey = (TenantId, GroupId);

#[derive(Debug)]
struct Slot {
    agent: Agent,
    connections: usize,
    online: bool,
    /// Counts the times the agent lost its last connection: a grace timer only acts for the loss it started on.
    departures: u64,
    active: HashSet<ConversationId>,
    last_assigned: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<GroupKey, Group>,
    agents: HashMap<AgentKey, Slot>,
    queues: HashMap<GroupKey, VecDeque<ConversationId>>,
    open: HashMap<ConversationId, Conversation>,
}

impl State {
    fn candidates(&self, tenant: &TenantId, group: &GroupId) -> Vec<Candidate> {
        let mut candidates: Vec<Candidate> = self
            .agents
            .values()
            .filter(|slot| {
                &slot.agent.tenant == tenant
                    && slot.online
                    && slot.agent.groups.contains(group)
                    && slot.active.len() < slot.agent.capacity as usize
            })
            .map(|slot| Candidate {
                agent: slot.agent.id.clone(),
                active: u32::try_from(slot.active.len()).unwrap_or(u32::MAX),
                capacity: slot.agent.capacity,
                last_assigned: slot.last_assigned,
            })
            .collect();
        candidates.sort_by(|a, b| a.agent.cmp(&b.agent));
        candidates
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
                    active: HashSet::new(),
                    last_assigned: None,
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
            ConversationState::Queued => {
                let queue = state
                    .queues
                    .entry((tenant, conversation.group.clone()))
                    .or_default();
                if !queue.contains(&conversation.id) {
                    queue.push_back(conversation.id);
                }
            }
            ConversationState::Assigned { agent } => {
                if let Some(slot) = state.agents.get_mut(&(tenant, agent.clone())) {
                    slot.active.insert(conversation.id);
                }
            }
            // Offline messages are not routed: an agent takes them explicitly.
            ConversationState::Closed | ConversationState::Offline => return,
        }
        state.open.insert(conversation.id, conversation);
    }

    /// The current record of an open conversation.
    pub(crate) fn open_conversation(&self, id: &ConversationId) -> Option<Conversation> {
        self.state().open.get(id).cloned()
    }

    /// An open conversation of this visitor in this group, if any.
    pub(crate) fn open_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        group: &GroupId,
    ) -> Option<Conversation> {
        self.state()
            .open
            .values()
            .filter(|c| &c.tenant == tenant && &c.visitor == visitor && &c.group == group)
            .min_by_key(|c| (c.created_at, c.id))
            .cloned()
    }

    /// Takes the head of a group's queue for routing, if an agent could take it now.
    pub(crate) fn take_next(&self, tenant: &TenantId, group: &GroupId) -> Option<Pending> {
        let mut state = self.state();
        let candidates = state.candidates(tenant, group);
        if candidates.is_empty() {
            return None;
        }
        let queue = state.queues.get_mut(&(tenant.clone(), group.clone()))?;
        let id = queue.pop_front()?;
        let conversation = state.open.get(&id).cloned()?;
        Some(Pending {
            conversation,
            candidates,
        })
    }

    /// Puts a conversation taken by [`Router::take_next`] back at the head of its queue.
    pub(crate) fn requeue(&self, conversation: &Conversation) {
        let mut state = self.state();
        if !state.open.contains_key(&conversation.id) {
            return;
        }
        let queue = state
            .queues
            .entry((conversation.tenant.clone(), conversation.group.clone()))
            .or_default();
        if !queue.contains(&conversation.id) {
            queue.push_front(conversation.id);
        }
    }

    /// Reserves capacity for `conversation` with `agent` if the agent is online, in the group and below capacity.
    pub(crate) fn reserve(&self, conversation: &Conversation, agent: &AgentId, now: Timestamp) -> bool {
        let mut state = self.state();
        let Some(slot) = state
            .agents
            .get_mut(&(conversation.tenant.clone(), agent.clone()))
        else {
            return false;
        };
        let fits = slot.online
            && slot.agent.groups.contains(&conversation.group)
            && slot.active.len() < slot.agent.capacity as usize;
        if fits {
            slot.active.insert(conversation.id);
            slot.last_assigned = Some(now);
        }
        fits
    }

    /// Gives back a reservation whose assignment was not committed.
    pub(crate) fn unreserve(&self, conversation: &Conversation, agent: &AgentId) {
        if let Some(slot) = self
            .state()
            .agents
            .get_mut(&(conversation.tenant.clone(), agent.clone()))
        {
            slot.active.remove(&conversation.id);
        }
    }

    /// Records a committed state change. Returns the groups whose queues may now drain (capacity was freed).
    ///
    /// Snapshots can arrive out of commit order (two requests racing from their commits to here), so only one
    /// newer than what is tracked counts, and a closed conversation is never brought back by a stale one.
    pub(crate) fn update(&self, conversation: &Conversation) -> Vec<GroupId> {
        let mut state = self.state();
        let tracked_seq = state.open.get(&conversation.id).map(|tracked| tracked.last_seq);
        if tracked_seq.is_some_and(|seq| seq >= conversation.last_seq) {
            return Vec::new();
        }
        let key = |agent: &AgentId| (conversation.tenant.clone(), agent.clone());
        match &conversation.state {
            ConversationState::Closed => {
                state.open.remove(&conversation.id);
                if let Some(queue) = state
                    .queues
                    .get_mut(&(conversation.tenant.clone(), conversation.group.clone()))
                {
                    queue.retain(|id| id != &conversation.id);
                }
                // Whoever held it is its last agent, even if its assignment has not been recorded here yet.
                let Some(slot) = conversation
                    .last_agent
                    .as_ref()
                    .and_then(|agent| state.agents.get_mut(&key(agent)))
                else {
                    return Vec::new();
                };
                slot.active.remove(&conversation.id);
                slot.agent.groups.clone()
            }
            ConversationState::Assigned { agent } => {
                if tracked_seq.is_none() {
                    // Closed meanwhile: this assignment is history.
                    return Vec::new();
                }
                if let Some(slot) = state.agents.get_mut(&key(agent)) {
                    slot.active.insert(conversation.id);
                }
                state.open.insert(conversation.id, conversation.clone());
                Vec::new()
            }
            ConversationState::Queued => {
                drop(state);
                self.track(conversation.clone());
                vec![conversation.group.clone()]
            }
            ConversationState::Offline => {
                // Not routed (see `track`); forget it should it have been queued first.
                state.open.remove(&conversation.id);
                if let Some(queue) = state
                    .queues
                    .get_mut(&(conversation.tenant.clone(), conversation.group.clone()))
                {
                    queue.retain(|id| id != &conversation.id);
                }
                Vec::new()
            }
        }
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

    /// Counts a closed connection. Returns true when the agent has no connection left.
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

    /// Open conversations assigned to an agent.
    pub(crate) fn load(&self, tenant: &TenantId, agent: &AgentId) -> usize {
        self.state()
            .agents
            .get(&(tenant.clone(), agent.clone()))
            .map_or(0, |slot| slot.active.len())
    }
}
