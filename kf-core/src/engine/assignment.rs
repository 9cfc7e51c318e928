//! Assignment: queues drained through the group's routing policy, claims, transfers, agent status and the queue
//! view. Every check-and-change of capacity happens in the router under its lock; commits go through the pipeline, which owns the reservation until it is settled.

use futures::future::BoxFuture;

use super::pipeline::{Command, Hold};
use super::router::Refusal;
use super::{Engine, RequestError};
use crate::auth::{Identity, Principal};
use crate::model::{
    Actor, AgentId, AgentStatus, Conversation, ConversationId, EventKind, GroupId, Seq, Strategy, TenantId,
    TransitionError,
};
use crate::protocol::{QueueEntry, ServerFrame};
use crate::routing::RoutingPolicy;
use crate::store::EventDraft;

/// A transfer request (see [`Engine::transfer`]): [`Transfer::default`] puts the conversation back in its
/// group's queue; the `with_…` setters name an agent, another group, a note.
///
/// ```
/// use kf_core::engine::Transfer;
/// use kf_core::model::GroupId;
///
/// let transfer = Transfer::default().with_group(GroupId::new("billing").unwrap()).with_note("refund");
/// assert_eq!(transfer.agent, None);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct Transfer {
    /// Hand the conversation to this agent (online, accepting, with capacity); `None` puts it in a queue.
    pub agent: Option<AgentId>,
    /// The group it belongs to from now on (default: its current group).
    pub group: Option<GroupId>,
    /// A note for the next agent, recorded in the `transferred` event.
    pub note: Option<String>,
    /// A bot hands the conversation over to people: marked on the `transferred` event, and without a `group`
    /// it goes to the conversation's group's hand-over group ([`Group::handover`](crate::model::Group::handover)).
    pub handover: bool,
}

impl Transfer {
    /// Hands the conversation to this agent.
    #[must_use]
    pub fn with_agent(mut self, agent: AgentId) -> Self {
        self.agent = Some(agent);
        self
    }

    /// Moves the conversation to this group.
    #[must_use]
    pub fn with_group(mut self, group: GroupId) -> Self {
        self.group = Some(group);
        self
    }

    /// Leaves a note for the next agent.
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Marks the transfer as a bot's hand-over to people (see [`Transfer::handover`]).
    #[must_use]
    pub fn handover(mut self) -> Self {
        self.handover = true;
        self
    }
}

impl Refusal {
    /// The error a refused reservation of `agent` in `group` answers with.
    pub(super) fn into_error(self, agent: &AgentId, group: &GroupId) -> RequestError {
        match self {
            Refusal::Unknown => RequestError::NotFound(format!("agent {agent}")),
            Refusal::NotInGroup => RequestError::AgentUnavailable(format!("{agent} is not in group {group}")),
            Refusal::NotAccepting => {
                RequestError::AgentUnavailable(format!("{agent} is offline or not taking new conversations"))
            }
            Refusal::AgentFull => {
                RequestError::AtCapacity(format!("{agent} has no spare capacity in {group}"))
            }
            Refusal::GroupFull => RequestError::AtCapacity(format!("group {group} is at its cap")),
            Refusal::NotQueued => RequestError::InvalidState(TransitionError {
                state: "not queued",
                event: "claim",
            }),
        }
    }
}

impl Engine {
    /// The agent who served this visitor last: the conversation's own last agent (reopened, transferred), else
    /// that of the visitor's most recent other conversation with one.
    pub(super) async fn previous_agent(&self, conversation: &Conversation) -> Option<AgentId> {
        if let Some(agent) = &conversation.last_agent {
            return Some(agent.clone());
        }
        let past = self
            .inner
            .log
            .conversations_of_visitor(&conversation.tenant, &conversation.visitor)
            .await
            .ok()?;
        past.into_iter()
            .filter(|c| c.id != conversation.id)
            .find_map(|c| c.last_agent)
    }

    /// Tells a group's waiting visitors their new positions and its connected agents their queue view
    /// (ephemeral: dropped where it does not fit).
    pub(super) fn announce_queue(&self, tenant: &TenantId, group: &GroupId) {
        let now = self.inner.clock.now();
        let Some(change) = self.inner.routing.ledger.queue_change(tenant, group, now) else {
            return;
        };
        let mut frames = Vec::with_capacity(change.positions.len() + change.agents.len());
        for (conversation, visitor, position, estimated_wait_ms) in change.positions {
            let frame = ServerFrame::Position {
                conversation,
                position,
                estimated_wait_ms,
            };
            frames.push((Principal::Visitor(visitor), frame.encode()));
        }
        for agent in change.agents {
            let conversations = self.queue_entries(tenant, &agent);
            let frame = ServerFrame::Queue {
                id: None,
                conversations,
            };
            frames.push((Principal::Agent(agent), frame.encode()));
        }
        for (principal, frame) in frames {
            let identity = Identity::new(tenant.clone(), principal);
            self.inner.sessions.offer(&identity, &frame);
        }
    }

    pub(super) fn queue_entries(&self, tenant: &TenantId, agent: &AgentId) -> Vec<QueueEntry> {
        let now = self.inner.clock.now();
        self.inner
            .routing
            .ledger
            .queue_view(tenant, agent, self.inner.limits.queue_view_per_group, now)
            .into_iter()
            .map(|waiting| QueueEntry {
                conversation: waiting.conversation,
                position: waiting.position,
                estimated_wait_ms: waiting.estimated_wait_ms,
            })
            .collect()
    }

    /// Assigns queued conversations of a group while agents have capacity, then announces the queue. Runs on
    /// its own task: a caller that is dropped does not leave a queue half drained.
    pub(super) fn drain(&self, tenant: &TenantId, group: &GroupId) -> BoxFuture<'static, ()> {
        let (engine, tenant, group) = (self.clone(), tenant.clone(), group.clone());
        let drained = self.detached(async move {
            let strategy = engine.inner.routing.ledger.strategy(&tenant, &group);
            if let Some(policy) = engine.inner.routing.policy(&strategy) {
                engine
                    .assign_queued(&tenant, &group, &strategy, policy.as_ref())
                    .await;
            }
            engine.announce_queue(&tenant, &group);
            Ok(())
        });
        Box::pin(async move {
            let _ = drained.await;
        })
    }

    pub(super) async fn assign_queued(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        strategy: &Strategy,
        policy: &dyn RoutingPolicy,
    ) {
        let router = &self.inner.routing.ledger;
        while let Some(pending) = router.take_next(tenant, group) {
            let conversation = pending.conversation;
            let mut candidates = pending.candidates;
            if let Some(avoided) = router.avoided(&conversation.id)
                && candidates.iter().any(|c| c.agent != avoided)
            {
                candidates.retain(|c| c.agent != avoided);
            }
            if matches!(strategy, Strategy::Sticky | Strategy::External(_))
                && let Some(previous) = self.previous_agent(&conversation).await
            {
                for candidate in &mut candidates {
                    candidate.previous = candidate.agent == previous;
                }
            }
            let choice = policy.choose(&conversation, &candidates).await;
            let Some(agent) = choice.filter(|agent| candidates.iter().any(|c| &c.agent == agent)) else {
                router.requeue(&conversation);
                return;
            };
            let now = self.inner.clock.now();
            if router
                .reserve(tenant, conversation.id, &agent, group, now)
                .is_err()
            {
                // Capacity went elsewhere between the snapshot and now: look again.
                router.requeue(&conversation);
                continue;
            }
            let assigned = EventKind::Assigned { agent: agent.clone() };
            let draft = EventDraft::system(conversation.id, assigned, self.inner.clock.now());
            let hold = Hold::new(tenant, conversation.id, &agent).requeue(conversation.clone());
            match self.commit(Command::hand_over(draft, hold)).await {
                // Refused: closed or moved meanwhile, nothing to assign.
                Ok(_) | Err(RequestError::InvalidState(_)) => {}
                Err(error) => {
                    tracing::warn!(conversation = %conversation.id, %error, "assignment not stored; requeued");
                    return;
                }
            }
        }
    }

    /// An agent claims a queued conversation of one of its groups (any strategy; the way manual groups are
    /// served). Of concurrent claims exactly one wins; the others get `invalid_state`. Claiming ignores the
    /// agent's status but not its capacity or the group's cap.
    pub async fn claim(
        &self,
        identity: &Identity,
        conversation: ConversationId,
    ) -> Result<Conversation, RequestError> {
        let Principal::Agent(agent) = &identity.principal else {
            return Err(RequestError::Forbidden("only agents claim conversations".into()));
        };
        let record = self.readable(identity, conversation).await?;
        let tenant = &identity.tenant;
        let router = &self.inner.routing.ledger;
        let claimed = router
            .claim(tenant, agent, conversation, self.inner.clock.now(), true)
            .map_err(|refusal| refusal.into_error(agent, &record.group))?;
        let assigned = EventKind::Assigned { agent: agent.clone() };
        let draft = EventDraft::new(
            conversation,
            Actor::Agent(agent.clone()),
            assigned,
            self.inner.clock.now(),
        );
        let hold = Hold::new(tenant, conversation, agent).requeue(claimed.clone());
        match self.commit(Command::hand_over(draft, hold)).await {
            Ok(committed) => Ok(committed.conversation),
            Err(error) => {
                self.drain(tenant, &claimed.group).await;
                Err(error)
            }
        }
    }

    /// The assigned agent hands a conversation on: to another agent (who must be online, accepting and have
    /// capacity in the target group — otherwise refused with `agent_unavailable` or `at_capacity`), or to a
    /// group's queue, or back to its own queue. Recorded as a `transferred` event; returns its seq. A bot's
    /// hand-over ([`Transfer::handover`]) without a group goes to its group's hand-over group (`Invalid` when
    /// there is none).
    pub async fn transfer(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        transfer: Transfer,
    ) -> Result<Seq, RequestError> {
        let Principal::Agent(me) = &identity.principal else {
            return Err(RequestError::Forbidden(
                "only agents transfer conversations".into(),
            ));
        };
        if let Some(note) = &transfer.note
            && note.len() > self.inner.limits.max_text_bytes
        {
            return Err(RequestError::TooLarge {
                size: note.len(),
                limit: self.inner.limits.max_text_bytes,
            });
        }
        let record = self.participant(identity, conversation).await?;
        let tenant = &identity.tenant;
        let group = match transfer.group {
            Some(group) => group,
            None if transfer.handover => self
                .inner
                .routing
                .ledger
                .group(tenant, &record.group)
                .and_then(|group| group.handover)
                .ok_or_else(|| {
                    RequestError::Invalid(format!(
                        "group {} has no hand-over group: name the `group` to hand over to",
                        record.group
                    ))
                })?,
            None => record.group.clone(),
        };
        if !self.inner.routing.ledger.has_group(tenant, &group) {
            return Err(RequestError::NotFound(format!("group {group}")));
        }
        let hold = self.hand_to(tenant, conversation, me, transfer.agent.as_ref(), &group)?;
        let kind = EventKind::Transferred {
            from: Some(me.clone()),
            agent: transfer.agent.clone(),
            group,
            note: transfer.note,
            handover: transfer.handover,
        };
        let draft = EventDraft::new(
            conversation,
            Actor::Agent(me.clone()),
            kind,
            self.inner.clock.now(),
        );
        let command = match hold {
            Some(hold) => Command::hand_over(draft, hold),
            None => Command::append(draft),
        };
        match self.commit(command).await {
            Ok(appended) => Ok(appended.event.seq),
            Err(error) => {
                if let Some(target) = &transfer.agent {
                    let ledger = &self.inner.routing.ledger;
                    for group in ledger.agent(tenant, target).map(|a| a.groups).unwrap_or_default() {
                        self.drain(tenant, &group).await;
                    }
                }
                Err(error)
            }
        }
    }

    /// Where a transfer by `me` hands the conversation: to `target` (reserved now, within its capacity in
    /// `group`; the hold goes with the commit), or back to a queue, where another agent should take it and `me`
    /// only if nobody else can.
    fn hand_to(
        &self,
        tenant: &TenantId,
        conversation: ConversationId,
        me: &AgentId,
        target: Option<&AgentId>,
        group: &GroupId,
    ) -> Result<Option<Hold>, RequestError> {
        let ledger = &self.inner.routing.ledger;
        let Some(target) = target else {
            ledger.avoid(conversation, me.clone());
            return Ok(None);
        };
        if target == me {
            return Err(RequestError::Invalid(
                "a conversation cannot be transferred to its owner".into(),
            ));
        }
        ledger
            .reserve(tenant, conversation, target, group, self.inner.clock.now())
            .map_err(|refusal| refusal.into_error(target, group))?;
        Ok(Some(Hold::new(tenant, conversation, target)))
    }

    /// An agent sets its status. Only `online` takes new conversations; the others keep their conversations.
    /// Going back to `online` drains the agent's groups.
    ///
    /// Every live connection of the agent is told (a `status` frame without `id`), so its other tabs and devices
    /// show the same status.
    pub async fn set_status(
        &self,
        identity: &Identity,
        status: AgentStatus,
        label: Option<String>,
    ) -> Result<(), RequestError> {
        self.change_status(identity, 0, status, label).await
    }

    /// [`Engine::set_status`] from connection `except` (0: none), which gets the reply instead of the push.
    pub(super) async fn change_status(
        &self,
        identity: &Identity,
        except: u64,
        status: AgentStatus,
        label: Option<String>,
    ) -> Result<(), RequestError> {
        let Principal::Agent(agent) = &identity.principal else {
            return Err(RequestError::Forbidden("only agents have a status".into()));
        };
        if let Some(label) = &label
            && label.len() > crate::limits::MAX_ID_LEN
        {
            return Err(RequestError::Invalid(format!(
                "a status label has at most {} bytes",
                crate::limits::MAX_ID_LEN
            )));
        }
        let groups = self
            .inner
            .routing
            .ledger
            .set_status(&identity.tenant, agent, status, label.clone())
            .ok_or_else(|| RequestError::NotFound(format!("agent {agent}")))?;
        let pushed = ServerFrame::Status {
            id: None,
            status,
            label,
        };
        self.inner
            .sessions
            .push_except(identity, except, &pushed.encode());
        for group in groups {
            self.drain(&identity.tenant, &group).await;
        }
        Ok(())
    }

    /// The queued conversations of an agent's groups.
    pub fn queue_view(&self, identity: &Identity) -> Result<Vec<QueueEntry>, RequestError> {
        let Principal::Agent(agent) = &identity.principal else {
            return Err(RequestError::Forbidden("only agents see the queue".into()));
        };
        Ok(self.queue_entries(&identity.tenant, agent))
    }
}
