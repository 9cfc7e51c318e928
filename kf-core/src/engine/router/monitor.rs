//! The ledger's part of the live monitor: each group's queue and waits, each agent's status and load.

use std::collections::BTreeMap;

use super::Router;
use crate::engine::monitor::{AgentNow, GroupNow};
use crate::model::{ConversationState, TenantId};

impl Router {
    /// A tenant's groups (by id) with their queues now, and its agents (by id) with their status and load.
    pub(crate) fn monitor(&self, tenant: &TenantId) -> (Vec<GroupNow>, Vec<AgentNow>) {
        let state = self.state();
        let mut groups: BTreeMap<_, GroupNow> = state
            .groups
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, id), group)| {
                let queue = state.queues.get(&(tenant.clone(), id.clone()));
                // Waits since each conversation entered the queue (in this process: a restart starts them over).
                let waits: Vec<u64> = queue
                    .into_iter()
                    .flatten()
                    .filter_map(|conversation| state.queued_since.get(conversation))
                    .map(|since| u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX))
                    .collect();
                let accepting = state
                    .agents
                    .iter()
                    .filter(|((t, _), slot)| t == tenant && slot.agent.groups.contains(id) && slot.accepts())
                    .count();
                let now = GroupNow {
                    group: id.clone(),
                    name: group.name.clone(),
                    queued: queue.map_or(0, |q| q.len()),
                    longest_wait_ms: waits.iter().copied().max(),
                    average_wait_ms: (!waits.is_empty())
                        .then(|| waits.iter().sum::<u64>() / waits.len() as u64),
                    active: state.group_load(tenant, id),
                    offline: 0,
                    on_hold: 0,
                    agents_accepting: accepting,
                };
                (id.clone(), now)
            })
            .collect();
        for conversation in state.open.values().filter(|c| &c.tenant == tenant) {
            if let Some(group) = groups.get_mut(&conversation.group) {
                match conversation.state {
                    ConversationState::Offline => group.offline += 1,
                    ConversationState::OnHold { .. } => group.on_hold += 1,
                    _ => {}
                }
            }
        }
        let mut agents: Vec<AgentNow> = state
            .agents
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, id), slot)| AgentNow {
                agent: id.clone(),
                name: slot.agent.name.clone(),
                online: slot.online,
                connections: slot.connections,
                status: slot.status,
                label: slot.label.clone(),
                load: slot.active.len(),
                capacity: slot.agent.capacity,
                groups: slot.agent.groups.clone(),
            })
            .collect();
        agents.sort_by(|a, b| a.agent.cmp(&b.agent));
        (groups.into_values().collect(), agents)
    }
}
