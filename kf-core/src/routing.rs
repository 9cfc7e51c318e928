//! Routing: which agent gets a conversation.
//!
//! The engine keeps the capacity ledger and does the assignment atomically; a [`RoutingPolicy`] only chooses
//! among the candidates it is shown — online agents of the conversation's group that have spare capacity. If the
//! chosen agent's capacity is gone by the time the engine re-checks it, the engine asks again.
//!
//! Built in: [`LeastBusy`], [`RoundRobin`], [`Sticky`]; manual groups use no policy (agents claim). A group
//! chooses its strategy with [`Strategy`](crate::model::Strategy); `docs/routing.md` states each fairness rule.

use std::cmp::Ordering;
use std::fmt::Debug;

use async_trait::async_trait;

use crate::model::{AgentId, Conversation, Timestamp};

/// An agent that could take a conversation now. The engine builds candidates; [`Candidate::new`] is for tests
/// of a [`RoutingPolicy`].
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Candidate {
    /// The agent.
    pub agent: AgentId,
    /// Open conversations assigned to the agent now (of every group).
    pub active: u32,
    /// The agent's capacity for the conversation's group (its per-group override, else its capacity); always
    /// greater than `active` for a candidate.
    pub capacity: u32,
    /// When the agent was last given a conversation, if ever (since the engine started).
    pub last_assigned: Option<Timestamp>,
    /// The engine-wide number of the agent's last assignment (0: never since the engine started). Unlike
    /// `last_assigned` it never ties, so "least recently assigned" is exact even within one millisecond.
    pub last_assignment: u64,
    /// This agent served the conversation's visitor last (filled in for sticky and external policies).
    pub previous: bool,
}

impl Candidate {
    /// A candidate with `active` of `capacity` conversations, never assigned since the engine started and not
    /// the visitor's previous agent.
    ///
    /// ```
    /// use kf_core::model::AgentId;
    /// use kf_core::routing::Candidate;
    ///
    /// let candidate = Candidate::new(AgentId::new("alice").unwrap(), 1, 3).with_last_assignment(7, None);
    /// assert_eq!(candidate.spare(), 2);
    /// ```
    pub fn new(agent: AgentId, active: u32, capacity: u32) -> Self {
        Self {
            agent,
            active,
            capacity,
            last_assigned: None,
            last_assignment: 0,
            previous: false,
        }
    }

    /// Sets the engine-wide number of the agent's last assignment and when it was.
    #[must_use]
    pub fn with_last_assignment(mut self, number: u64, at: Option<Timestamp>) -> Self {
        self.last_assignment = number;
        self.last_assigned = at;
        self
    }

    /// Marks the agent as the one who served the conversation's visitor last.
    #[must_use]
    pub fn with_previous(mut self, previous: bool) -> Self {
        self.previous = previous;
        self
    }

    /// Conversations the agent can still take.
    pub fn spare(&self) -> u32 {
        self.capacity.saturating_sub(self.active)
    }
}

/// Chooses an agent for a conversation. Object safe; held as `Arc<dyn RoutingPolicy>`.
///
/// Policies may be asynchronous (a host's external policy may ask another service). Return `None` to leave the
/// conversation queued.
#[async_trait]
pub trait RoutingPolicy: Send + Sync + Debug + 'static {
    /// Picks one of `candidates` (never empty) for `conversation`.
    async fn choose(&self, conversation: &Conversation, candidates: &[Candidate]) -> Option<AgentId>;
}

fn least_recent(a: &Candidate, b: &Candidate) -> Ordering {
    a.last_assignment
        .cmp(&b.last_assignment)
        .then_with(|| a.agent.cmp(&b.agent))
}

/// The agent with the most spare capacity; ties go to the agent assigned least recently (never-assigned
/// first), then to the smallest agent id, so the choice is deterministic.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeastBusy;

impl LeastBusy {
    fn pick(candidates: &[Candidate]) -> Option<AgentId> {
        candidates
            .iter()
            .min_by(|a, b| b.spare().cmp(&a.spare()).then_with(|| least_recent(a, b)))
            .map(|c| c.agent.clone())
    }
}

#[async_trait]
impl RoutingPolicy for LeastBusy {
    async fn choose(&self, _conversation: &Conversation, candidates: &[Candidate]) -> Option<AgentId> {
        Self::pick(candidates)
    }
}

/// The agent assigned least recently (never-assigned first) among those with spare capacity, then the smallest
/// agent id: agents take turns whatever their load.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoundRobin;

#[async_trait]
impl RoutingPolicy for RoundRobin {
    async fn choose(&self, _conversation: &Conversation, candidates: &[Candidate]) -> Option<AgentId> {
        candidates
            .iter()
            .min_by(|a, b| least_recent(a, b))
            .map(|c| c.agent.clone())
    }
}

/// The agent who served the visitor last, when it is a candidate (online, accepting, with spare capacity);
/// otherwise [`LeastBusy`]'s choice.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sticky;

#[async_trait]
impl RoutingPolicy for Sticky {
    async fn choose(&self, _conversation: &Conversation, candidates: &[Candidate]) -> Option<AgentId> {
        match candidates.iter().find(|c| c.previous) {
            Some(previous) => Some(previous.agent.clone()),
            None => LeastBusy::pick(candidates),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversationId, GroupId, TenantId, VisitorId};

    fn candidate(agent: &str, active: u32, capacity: u32, last: Option<u64>) -> Candidate {
        Candidate {
            agent: AgentId::new(agent).expect("id"),
            active,
            capacity,
            last_assigned: last.map(Timestamp),
            last_assignment: last.unwrap_or(0),
            previous: false,
        }
    }

    async fn choose_with(policy: &dyn RoutingPolicy, candidates: &[Candidate]) -> Option<String> {
        let conversation = Conversation::new(
            ConversationId::generate(),
            TenantId::new("t").expect("id"),
            VisitorId::new("v").expect("id"),
            GroupId::new("g").expect("id"),
            Timestamp(0),
        );
        policy
            .choose(&conversation, candidates)
            .await
            .map(|a| a.as_str().to_owned())
    }

    #[tokio::test]
    async fn round_robin_takes_turns_whatever_the_load() {
        let picked = choose_with(
            &RoundRobin,
            &[
                candidate("a", 0, 3, Some(7)),
                candidate("b", 2, 3, Some(3)),
                candidate("c", 1, 3, Some(5)),
            ],
        )
        .await;
        assert_eq!(
            picked.as_deref(),
            Some("b"),
            "least recently assigned, though the busiest"
        );
        let picked = choose_with(
            &RoundRobin,
            &[candidate("b", 0, 3, Some(1)), candidate("c", 2, 3, None)],
        )
        .await;
        assert_eq!(picked.as_deref(), Some("c"), "never assigned comes first");
        let picked = choose_with(
            &RoundRobin,
            &[candidate("c", 0, 1, None), candidate("b", 0, 9, None)],
        )
        .await;
        assert_eq!(picked.as_deref(), Some("b"), "ties go to the smallest id");
        assert_eq!(choose_with(&RoundRobin, &[]).await, None);
    }

    #[tokio::test]
    async fn sticky_prefers_the_previous_agent_else_least_busy() {
        let mut previous = candidate("b", 2, 3, Some(9));
        previous.previous = true;
        let picked = choose_with(&Sticky, &[candidate("a", 0, 3, None), previous.clone()]).await;
        assert_eq!(picked.as_deref(), Some("b"), "the previous agent, though busier");
        let picked = choose_with(
            &Sticky,
            &[candidate("a", 1, 3, Some(2)), candidate("c", 1, 3, Some(1))],
        )
        .await;
        assert_eq!(
            picked.as_deref(),
            Some("c"),
            "no previous agent: least busy, ties to least recent"
        );
    }

    async fn choose(candidates: &[Candidate]) -> Option<String> {
        choose_with(&LeastBusy, candidates).await
    }

    #[tokio::test]
    async fn most_spare_capacity_wins() {
        let picked = choose(&[
            candidate("a", 1, 3, None),
            candidate("b", 0, 3, Some(5)),
            candidate("c", 2, 3, None),
        ])
        .await;
        assert_eq!(picked.as_deref(), Some("b"));
        // Spare capacity, not fewest active: c has 3 active of 10.
        let picked = choose(&[candidate("a", 0, 2, None), candidate("c", 3, 10, None)]).await;
        assert_eq!(picked.as_deref(), Some("c"));
    }

    #[tokio::test]
    async fn ties_go_to_least_recently_assigned_then_id() {
        let picked = choose(&[candidate("a", 1, 3, Some(20)), candidate("b", 1, 3, Some(10))]).await;
        assert_eq!(picked.as_deref(), Some("b"));
        let picked = choose(&[candidate("a", 1, 3, Some(20)), candidate("b", 1, 3, None)]).await;
        assert_eq!(picked.as_deref(), Some("b"), "never assigned comes first");
        let picked = choose(&[candidate("b", 1, 3, None), candidate("a", 1, 3, None)]).await;
        assert_eq!(picked.as_deref(), Some("a"));
        assert_eq!(choose(&[]).await, None);
    }
}
