//! The records a host keeps in the directory: visitors, agents and their status, groups and their timers, and the
//! store's epoch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labels::AttributeValue;

use super::{AgentId, GroupId, TenantId, Timestamp, VisitorId};

/// A visitor record.
///
/// ```
/// use kf_core::model::{TenantId, Timestamp, Visitor, VisitorId};
///
/// let visitor = Visitor::new(TenantId::new("shop").unwrap(), VisitorId::new("v1").unwrap(), Timestamp(0))
///     .with_name("Ada");
/// assert_eq!(visitor.name.as_deref(), Some("Ada"));
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Visitor {
    /// The tenant.
    pub tenant: TenantId,
    /// The visitor's id.
    pub id: VisitorId,
    /// A display name, when the visitor gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// First seen.
    pub created_at: Timestamp,
    /// Its custom attributes, by key (set by the host, the pre-chat form and agents; for agents only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeValue>,
}

impl Visitor {
    /// A visitor first seen at `created_at`, without a name.
    pub fn new(tenant: TenantId, id: VisitorId, created_at: Timestamp) -> Self {
        Self {
            tenant,
            id,
            name: None,
            created_at,
            attributes: BTreeMap::new(),
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// An agent record: who they are and how much they can take.
///
/// ```
/// use kf_core::model::{Agent, AgentId, GroupId, TenantId};
///
/// let support = GroupId::new("support").unwrap();
/// let agent = Agent::new(TenantId::new("shop").unwrap(), AgentId::new("alice").unwrap(), "Alice", 5)
///     .with_groups([support.clone()])
///     .with_group_capacity(support.clone(), 2);
/// assert_eq!(agent.capacity_in(&support), 2);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Agent {
    /// The tenant.
    pub tenant: TenantId,
    /// The agent's id.
    pub id: AgentId,
    /// Display name shown to visitors.
    pub name: String,
    /// Skill groups the agent takes conversations from.
    pub groups: Vec<GroupId>,
    /// Maximum number of open conversations assigned at once.
    pub capacity: u32,
    /// Per-group overrides of `capacity`: the agent takes a conversation of such a group only while it has
    /// fewer open conversations (of any group) than the override.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_capacity: BTreeMap<GroupId, u32>,
    /// False once an admin deactivated the agent: it takes no conversation and cannot connect, but its record
    /// and its past conversations stay (see `Engine::deactivate_agent`).
    #[serde(default = "active_default", skip_serializing_if = "is_active")]
    pub active: bool,
}

fn active_default() -> bool {
    true
}

fn is_active(active: &bool) -> bool {
    *active
}

impl Agent {
    /// An agent of no group yet, taking up to `capacity` open conversations at once.
    pub fn new(tenant: TenantId, id: AgentId, name: impl Into<String>, capacity: u32) -> Self {
        Self {
            tenant,
            id,
            name: name.into(),
            groups: Vec::new(),
            capacity,
            group_capacity: BTreeMap::new(),
            active: true,
        }
    }

    /// Sets whether the agent is active (takes conversations and may connect).
    #[must_use]
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = active;
        self
    }

    /// Sets the groups the agent takes conversations from.
    #[must_use]
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = GroupId>) -> Self {
        self.groups = groups.into_iter().collect();
        self
    }

    /// Sets the agent's capacity.
    #[must_use]
    pub fn with_capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Overrides the capacity for conversations of `group` (see [`Agent::group_capacity`]).
    #[must_use]
    pub fn with_group_capacity(mut self, group: GroupId, capacity: u32) -> Self {
        self.group_capacity.insert(group, capacity);
        self
    }

    /// The capacity that applies when the agent takes a conversation of `group`.
    pub fn capacity_in(&self, group: &GroupId) -> u32 {
        self.group_capacity.get(group).copied().unwrap_or(self.capacity)
    }
}

/// The availability an agent chose. Whatever it chose, an agent without a live connection is offline; only an
/// `online` agent with a live connection gets new conversations. The others keep the ones they have.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentStatus {
    /// Takes new conversations.
    #[default]
    Online,
    /// Away from the desk.
    Away,
    /// Busy with something else.
    Busy,
    /// Appears offline while connected.
    Offline,
    /// A status of the agent's own wording (its label travels next to it).
    Custom,
}

impl AgentStatus {
    /// Whether an agent with this status takes new conversations.
    pub fn accepts(self) -> bool {
        self == AgentStatus::Online
    }
}

/// How a group chooses the agent for a conversation. `docs/routing.md` gives each one's fairness rule.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// The engine's default policy (`EngineBuilder::routing`, least-busy unless the host set another).
    #[default]
    Default,
    /// Most spare capacity; ties to the least recently assigned, then the smallest id.
    LeastBusy,
    /// The least recently assigned agent with spare capacity; ties to the smallest id.
    RoundRobin,
    /// Nobody is assigned automatically: agents claim conversations from the shared queue.
    Manual,
    /// A returning visitor goes to the agent who served it last if that agent can take it; otherwise least-busy.
    Sticky,
    /// A policy the host registered on the engine builder under this name.
    External(String),
}

/// A skill group (department).
///
/// ```
/// use kf_core::model::{Group, GroupId, GroupTimers, Strategy, TenantId};
///
/// let group = Group::new(TenantId::new("shop").unwrap(), GroupId::new("sales").unwrap(), "Sales")
///     .with_strategy(Strategy::RoundRobin)
///     .with_welcome("Hi! Someone from sales will be with you shortly.")
///     .with_timers(GroupTimers::default().with_missed_after_ms(60_000));
/// assert_eq!(group.max_active, None);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Group {
    /// The tenant.
    pub tenant: TenantId,
    /// The group's id.
    pub id: GroupId,
    /// Display name.
    pub name: String,
    /// How an agent is chosen for the group's conversations.
    #[serde(default)]
    pub strategy: Strategy,
    /// Most conversations of this group assigned at once, over all its agents (no cap when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<u32>,
    /// A message kf posts (as the system) in every new conversation of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<String>,
    /// Timers of the group's conversations (all off by default).
    #[serde(default, skip_serializing_if = "GroupTimers::is_off")]
    pub timers: GroupTimers,
    /// Makes this a **bot-first** group whose agents are bots (`docs/bots.md`): the group of people its
    /// conversations are handed over to. A `transfer` with `handover` and no target goes there, and a
    /// conversation opened while no agent of this group is online and accepting is opened there directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<GroupId>,
}

/// A group's timers, in milliseconds. Each runs from the event it names; `None` turns it off. Start from
/// [`GroupTimers::default`] (all off) and turn on what you need with the `with_…` setters.
///
/// ```
/// use kf_core::model::{GroupId, GroupTimers};
///
/// let timers = GroupTimers::default()
///     .with_max_wait_ms(120_000)
///     .with_fallback(GroupId::new("general").unwrap());
/// assert!(!timers.is_off());
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupTimers {
    /// Longest a conversation waits in the queue: then it moves to `fallback`, or without one becomes a message
    /// left for the group's agents (state `offline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_ms: Option<u64>,
    /// The group a conversation moves to after `max_wait_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<GroupId>,
    /// A conversation waiting this long in the queue is recorded as missed and agents are reminded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_after_ms: Option<u64>,
    /// An assigned agent that has not written within this long loses the conversation to another agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_timeout_ms: Option<u64>,
    /// An assigned conversation whose visitor has not written for this long is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_close_ms: Option<u64>,
}

impl GroupTimers {
    /// Sets [`max_wait_ms`](Self::max_wait_ms).
    #[must_use]
    pub fn with_max_wait_ms(mut self, ms: u64) -> Self {
        self.max_wait_ms = Some(ms);
        self
    }

    /// Sets [`fallback`](Self::fallback).
    #[must_use]
    pub fn with_fallback(mut self, group: GroupId) -> Self {
        self.fallback = Some(group);
        self
    }

    /// Sets [`missed_after_ms`](Self::missed_after_ms).
    #[must_use]
    pub fn with_missed_after_ms(mut self, ms: u64) -> Self {
        self.missed_after_ms = Some(ms);
        self
    }

    /// Sets [`answer_timeout_ms`](Self::answer_timeout_ms).
    #[must_use]
    pub fn with_answer_timeout_ms(mut self, ms: u64) -> Self {
        self.answer_timeout_ms = Some(ms);
        self
    }

    /// Sets [`inactivity_close_ms`](Self::inactivity_close_ms).
    #[must_use]
    pub fn with_inactivity_close_ms(mut self, ms: u64) -> Self {
        self.inactivity_close_ms = Some(ms);
        self
    }

    /// Whether every timer is off.
    pub fn is_off(&self) -> bool {
        self == &GroupTimers::default()
    }
}

impl Group {
    /// A group with the default strategy and no cap.
    pub fn new(tenant: TenantId, id: GroupId, name: impl Into<String>) -> Self {
        Self {
            tenant,
            id,
            name: name.into(),
            strategy: Strategy::default(),
            max_active: None,
            welcome: None,
            timers: GroupTimers::default(),
            handover: None,
        }
    }

    /// Sets how an agent is chosen.
    #[must_use]
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Caps the conversations of the group assigned at once.
    #[must_use]
    pub fn with_max_active(mut self, max_active: u32) -> Self {
        self.max_active = Some(max_active);
        self
    }

    /// Sets the message posted in every new conversation of the group.
    #[must_use]
    pub fn with_welcome(mut self, welcome: impl Into<String>) -> Self {
        self.welcome = Some(welcome.into());
        self
    }

    /// Sets the group's timers.
    #[must_use]
    pub fn with_timers(mut self, timers: GroupTimers) -> Self {
        self.timers = timers;
        self
    }

    /// Makes this a bot-first group handing its conversations over to `group` (see [`Group::handover`]).
    #[must_use]
    pub fn with_handover(mut self, group: GroupId) -> Self {
        self.handover = Some(group);
        self
    }
}

/// Identifies one incarnation of a store. Seqs (cursors) and feed positions only mean something within one
/// epoch: a client holding a cursor from another epoch must start over from [`Seq::ZERO`](super::Seq::ZERO).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub String);
