//! Routing: which agent gets a conversation.
//!
//! The engine keeps the capacity ledger and does the assignment atomically; a [`RoutingPolicy`] only chooses
//! among the candidates it is shown — online agents of the conversation's group that have spare capacity. If the
//! chosen agent's capacity is gone by the time the engine re-checks it, the engine asks again.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::model::{AgentId, Conversation, Timestamp};

/// An agent that could take a conversation now.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Candidate {
    /// The agent.
    pub agent: AgentId,
    /// Open conversations assigned to the agent now.
    pub active: u32,
    /// The agent's capacity (always greater than `active` for a candidate).
    pub capacity: u32,
    /// When the agent was last given a conversation, if ever (since the engine started).
    pub last_assigned: Option<Timestamp>,
}

impl Candidate {
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

/// The agent with the most spare capacity; ties go to the agent assigned least recently (never-assigned
/// first), then to the smallest agent id, so the choice is deterministic.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeastBusy;

#[async_trait]
impl RoutingPolicy for LeastBusy {
    async fn choose(&self, _conversation: &Conversation, candidates: &[Candidate]) -> Option<AgentId> {
        candidates
            .iter()
            .min_by(|a, b| {
                b.spare()
                    .cmp(&a.spare())
                    .then(a.last_assigned.cmp(&b.last_assigned))
                    .then(a.agent.cmp(&b.agent))
            })
            .map(|c| c.agent.clone())
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
        }
    }

    async fn choose(candidates: &[Candidate]) -> Option<String> {
        let conversation = Conversation::new(
            ConversationId::generate(),
            TenantId::new("t").expect("id"),
            VisitorId::new("v").expect("id"),
            GroupId::new("g").expect("id"),
            Timestamp(0),
        );
        LeastBusy
            .choose(&conversation, candidates)
            .await
            .map(|a| a.as_str().to_owned())
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
