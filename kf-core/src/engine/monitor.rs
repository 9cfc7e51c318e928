//! The live monitor: what a supervisor watches now — each group's queue and waits, each agent's status and
//! load, the visitors connected — read from the engine's memory (the routing ledger and the sessions), never
//! from the store.

use serde::Serialize;

use super::Engine;
use crate::model::{AgentId, AgentStatus, GroupId, TenantId, Timestamp, VisitorId};

/// The most visitors [`Monitor::visitors`] lists (by id); [`Monitor::visitors_online`] counts them all.
pub const MONITOR_VISITORS: usize = 1000;

/// A tenant's live state ([`Engine::monitor`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[non_exhaustive]
pub struct Monitor {
    /// The tenant.
    pub tenant: TenantId,
    /// When it was taken (the engine's clock).
    pub at: Timestamp,
    /// Each group, by id.
    pub groups: Vec<GroupNow>,
    /// Each agent, by id.
    pub agents: Vec<AgentNow>,
    /// How many visitors have a live connection.
    pub visitors_online: usize,
    /// The first [`MONITOR_VISITORS`] of them, by id.
    pub visitors: Vec<VisitorNow>,
}

/// A group now.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[non_exhaustive]
pub struct GroupNow {
    /// The group.
    pub group: GroupId,
    /// Its name.
    pub name: String,
    /// Conversations waiting in its queue.
    pub queued: usize,
    /// The longest current wait in the queue, in ms (since the conversation entered the queue in this process:
    /// a restart starts the count over). Absent when nobody waits.
    pub longest_wait_ms: Option<u64>,
    /// The mean current wait in the queue, in ms.
    pub average_wait_ms: Option<u64>,
    /// Conversations assigned to its agents now (counted in this group).
    pub active: usize,
    /// Offline messages waiting for an agent.
    pub offline: usize,
    /// Conversations on hold (snoozed).
    pub on_hold: usize,
    /// Its agents who take conversations now (online, status online).
    pub agents_accepting: usize,
}

/// An agent now.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[non_exhaustive]
pub struct AgentNow {
    /// The agent.
    pub agent: AgentId,
    /// Its display name.
    pub name: String,
    /// Has a live connection (or lost its last one within the grace period).
    pub online: bool,
    /// Its live connections.
    pub connections: usize,
    /// The status it chose.
    pub status: AgentStatus,
    /// The status's label, if it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Conversations assigned to it now.
    pub load: usize,
    /// How many it may hold (its default capacity).
    pub capacity: u32,
    /// Its groups.
    pub groups: Vec<GroupId>,
}

/// A visitor connected now.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[non_exhaustive]
pub struct VisitorNow {
    /// The visitor.
    pub visitor: VisitorId,
    /// Its live connections (tabs).
    pub connections: usize,
    /// The page it reported last (`page` frames, or the landing page of its context), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

impl Engine {
    /// A tenant's live state: queues and waits per group, agents with status and load, visitors connected now
    /// with their current page. From memory only (cheap; no store read). The caller authorizes (agents or
    /// supervisors of `tenant`).
    pub fn monitor(&self, tenant: &TenantId) -> Monitor {
        let (groups, agents) = self.inner.routing.ledger.monitor(tenant);
        let connected = self.inner.sessions.visitors(tenant);
        let visitors = connected
            .iter()
            .take(MONITOR_VISITORS)
            .map(|(visitor, connections)| VisitorNow {
                page: self.inner.sessions.trails.current_page(tenant, visitor),
                visitor: visitor.clone(),
                connections: *connections,
            })
            .collect();
        Monitor {
            tenant: tenant.clone(),
            at: self.inner.clock.now(),
            groups,
            agents,
            visitors_online: connected.len(),
            visitors,
        }
    }
}
