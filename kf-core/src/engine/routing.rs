//! The routing component's state: the ledger of agents, groups, queues and assignments ([`Router`]), the
//! policies that choose among candidates, and what the timers keep between firings. The code that acts on it is
//! in `assignment.rs` (drains, claims, transfers, status) and `timers.rs` (deadlines).

use std::collections::HashMap;
use std::sync::Arc;

use super::router::Router;
use super::timers::{RecentMissed, Silences};
use crate::model::{GroupId, Strategy};
use crate::routing::{LeastBusy, RoundRobin, RoutingPolicy, Sticky};

/// Routing state.
#[derive(Debug)]
pub(crate) struct Routing {
    /// Agents, groups, presence, queues and capacity: every check-and-change happens under its lock.
    pub(crate) ledger: Router,
    /// The policy of groups whose strategy names none the engine knows.
    default_policy: Arc<dyn RoutingPolicy>,
    /// Host policies by name, for `Strategy::External`.
    policies: HashMap<String, Arc<dyn RoutingPolicy>>,
    /// Where an `open` that names no group (and matches no entry point) goes; else the tenant's first group.
    pub(crate) default_group: Option<GroupId>,
    /// Visitors' last signs of life, for the inactivity timers.
    pub(crate) silences: Silences,
    /// Recent missed conversations per group, for agents who connect later.
    pub(crate) recent_missed: RecentMissed,
}

impl Routing {
    pub(crate) fn new(
        default_policy: Arc<dyn RoutingPolicy>,
        policies: HashMap<String, Arc<dyn RoutingPolicy>>,
        default_group: Option<GroupId>,
        missed_reminders: usize,
    ) -> Self {
        Routing {
            ledger: Router::default(),
            default_policy,
            policies,
            default_group,
            silences: Silences::default(),
            recent_missed: RecentMissed::new(missed_reminders),
        }
    }

    /// The policy of a group's strategy; `None` for manual groups (agents claim).
    pub(crate) fn policy(&self, strategy: &Strategy) -> Option<Arc<dyn RoutingPolicy>> {
        match strategy {
            Strategy::Manual => None,
            Strategy::LeastBusy => Some(Arc::new(LeastBusy)),
            Strategy::RoundRobin => Some(Arc::new(RoundRobin)),
            Strategy::Sticky => Some(Arc::new(Sticky)),
            Strategy::External(name) => match self.policies.get(name) {
                Some(policy) => Some(Arc::clone(policy)),
                None => {
                    tracing::warn!(policy = %name, "routing policy not registered; using the default");
                    Some(Arc::clone(&self.default_policy))
                }
            },
            _ => Some(Arc::clone(&self.default_policy)),
        }
    }
}
