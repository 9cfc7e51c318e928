//! The ledger's side of the admin API: listing a tenant's agents, taking agents and groups out, and what must be
//! handed on first.

use super::Router;
use crate::model::{Agent, AgentId, Conversation, GroupId, TenantId};

/// Why a group cannot be removed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupInUse {
    /// These agents still list it among their groups.
    Agents(Vec<AgentId>),
    /// Open conversations still belong to it.
    Conversations(usize),
    /// Another group falls back or hands over to it.
    Referenced(GroupId),
}

impl Router {
    /// A tenant's agents, ordered by id.
    pub(crate) fn agents(&self, tenant: &TenantId) -> Vec<Agent> {
        let mut agents: Vec<Agent> = self
            .state()
            .agents
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, slot)| slot.agent.clone())
            .collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        agents
    }

    /// The open conversations assigned to an agent (those it parked on hold wake to the queue once it cannot take
    /// them).
    pub(crate) fn owned_by(&self, tenant: &TenantId, agent: &AgentId) -> Vec<Conversation> {
        let state = self.state();
        let mut owned: Vec<Conversation> = state
            .open
            .values()
            .filter(|c| &c.tenant == tenant && c.state.agent() == Some(agent))
            .cloned()
            .collect();
        owned.sort_by_key(|c| c.id);
        owned
    }

    /// Forgets an agent. Refused (with its load) while conversations still count against it.
    pub(crate) fn remove_agent(&self, tenant: &TenantId, agent: &AgentId) -> Result<bool, usize> {
        let mut state = self.state();
        let key = (tenant.clone(), agent.clone());
        match state.agents.get(&key) {
            None => Ok(false),
            Some(slot) if !slot.active.is_empty() => Err(slot.active.len()),
            Some(_) => {
                state.agents.remove(&key);
                Ok(true)
            }
        }
    }

    /// Forgets a group, if nothing needs it any more: no agent lists it, no open conversation belongs to it, no
    /// other group falls back or hands over to it.
    pub(crate) fn remove_group(&self, tenant: &TenantId, group: &GroupId) -> Result<bool, GroupInUse> {
        let mut state = self.state();
        let key = (tenant.clone(), group.clone());
        if !state.groups.contains_key(&key) {
            return Ok(false);
        }
        let mut members: Vec<AgentId> = state
            .agents
            .iter()
            .filter(|((t, _), slot)| t == tenant && slot.agent.groups.contains(group))
            .map(|((_, agent), _)| agent.clone())
            .collect();
        if !members.is_empty() {
            members.sort();
            return Err(GroupInUse::Agents(members));
        }
        let open = state
            .open
            .values()
            .filter(|c| &c.tenant == tenant && &c.group == group)
            .count();
        if open > 0 {
            return Err(GroupInUse::Conversations(open));
        }
        let referring = state.groups.iter().find(|((t, id), other)| {
            t == tenant
                && id != group
                && (other.timers.fallback.as_ref() == Some(group) || other.handover.as_ref() == Some(group))
        });
        if let Some(((_, id), _)) = referring {
            return Err(GroupInUse::Referenced(id.clone()));
        }
        state.groups.remove(&key);
        state.queues.remove(&key);
        state.announced.remove(&key);
        Ok(true)
    }
}
