//! Working hours and offline messages.
//!
//! A group with [`WorkingHours`] takes live conversations only while open. Outside its hours, `open` creates
//! the conversation and moves it at once to [`ConversationState::Offline`] (an `offline` event at seq 2): it is
//! never routed, the visitor may still write into it (the offline form), and agents of the group are shown it
//! (`offline_messages` after their `inbox`, and live) until one `take`s it, which assigns it like a routed
//! conversation, or it is closed.
//!
//! The engine keeps the hours in memory, loaded at start-up from `group_hours`; offline messages are open
//! conversations in the router (loaded from `open_conversations` like the others), in no queue.

use std::sync::Arc;

use super::connection::Conn;
use super::pipeline::{Command, Hold};
use super::{Engine, RequestError};
use crate::auth::{Identity, Principal};
use crate::hours::WorkingHours;
use crate::model::{
    Actor, AgentId, Conversation, ConversationId, ConversationState, EventKind, GroupId, TenantId,
    TransitionError,
};
use crate::protocol::ServerFrame;
use crate::store::EventDraft;

impl Engine {
    /// Sets a group's working hours (`None`: always open, the default). Takes effect for the next `open`.
    pub async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), RequestError> {
        if !self.inner.routing.ledger.has_group(tenant, group) {
            return Err(RequestError::NotFound(format!("group {group}")));
        }
        // Store and cache together, even if the caller is dropped in between.
        let (engine, tenant, group) = (self.clone(), tenant.clone(), group.clone());
        self.detached(async move {
            let settings = &engine.inner.settings;
            settings.put_group_hours(&tenant, &group, hours.clone()).await?;
            engine.inner.catalog.set_hours(&tenant, &group, hours);
            Ok(())
        })
        .await
    }

    /// A group's working hours; `None` when it has none (always open).
    pub fn group_hours(&self, tenant: &TenantId, group: &GroupId) -> Option<WorkingHours> {
        self.inner.catalog.hours_of(tenant, group)
    }

    /// Whether a group takes live conversations now (by the engine's clock): true without working hours.
    pub fn is_group_open(&self, tenant: &TenantId, group: &GroupId) -> bool {
        self.inner.catalog.is_open(tenant, group, self.inner.clock.now())
    }

    /// When a group that is closed now opens next (by the engine's clock); `None` when it is open, has no
    /// working hours, or never opens again.
    pub fn next_opening(&self, tenant: &TenantId, group: &GroupId) -> Option<crate::model::Timestamp> {
        let now = self.inner.clock.now();
        let hours = self.inner.catalog.hours_of(tenant, group)?;
        if hours.is_open(now) {
            return None;
        }
        hours.next_opening(now)
    }

    /// The offline messages of a group waiting to be taken, oldest first.
    pub fn offline_messages(&self, tenant: &TenantId, group: &GroupId) -> Vec<ConversationId> {
        let groups = std::slice::from_ref(group);
        self.inner
            .routing
            .ledger
            .offline_messages(tenant, groups, self.limits().offline_messages_listed)
    }

    /// Tells the online agents of the conversation's group that an offline message is waiting.
    pub(super) fn notify_offline_message(&self, conversation: &Conversation) {
        let frame = ServerFrame::OfflineMessages {
            conversations: vec![conversation.clone()],
        }
        .encode();
        let ledger = &self.inner.routing.ledger;
        let in_group = |agent: &AgentId| ledger.in_group(&conversation.tenant, agent, &conversation.group);
        self.inner
            .sessions
            .push_to_agents(&conversation.tenant, in_group, &frame);
    }

    /// After an agent's `inbox`: the offline messages of its groups, when there are any.
    pub(super) async fn announce_offline_messages(&self, conn: &Arc<Conn>) {
        let Principal::Agent(agent) = &conn.identity.principal else {
            return;
        };
        let tenant = &conn.identity.tenant;
        let Some(record) = self.inner.routing.ledger.agent(tenant, agent) else {
            return;
        };
        let ids = self.inner.routing.ledger.offline_messages(
            tenant,
            &record.groups,
            self.limits().offline_messages_listed,
        );
        let mut conversations = Vec::with_capacity(ids.len());
        for id in ids {
            match self.inner.log.conversation(id).await {
                Ok(Some(conversation)) if conversation.state == ConversationState::Offline => {
                    conversations.push(conversation);
                }
                Ok(_) => {}
                // The list is a convenience: the agent still gets live ones and the next connect's list.
                Err(error) => {
                    tracing::warn!(%error, "offline messages not listed");
                    return;
                }
            }
        }
        if !conversations.is_empty() {
            let _ = conn
                .outlet
                .push(ServerFrame::OfflineMessages { conversations }.encode());
        }
    }

    /// An agent takes an offline message of one of its groups: it is assigned to the agent (within capacity).
    pub async fn take(&self, identity: &Identity, id: ConversationId) -> Result<Conversation, RequestError> {
        let Principal::Agent(agent) = &identity.principal else {
            return Err(RequestError::Forbidden(
                "only agents take offline messages".into(),
            ));
        };
        let record = self.readable(identity, id).await?;
        let router = &self.inner.routing.ledger;
        if !router.in_group(&identity.tenant, agent, &record.group) {
            return Err(RequestError::Forbidden(format!(
                "conversation {id} is not in one of your groups"
            )));
        }
        if record.state != ConversationState::Offline {
            return Err(TransitionError {
                state: record.state.name(),
                event: "take",
            }
            .into());
        }
        if router
            .reserve_explicit(&identity.tenant, id, agent, &record.group, self.inner.clock.now())
            .is_err()
        {
            return Err(RequestError::Forbidden(
                "you are at capacity (or offline); close a conversation first".into(),
            ));
        }
        let assigned = EventKind::Assigned { agent: agent.clone() };
        let draft = EventDraft::new(id, Actor::Agent(agent.clone()), assigned, self.inner.clock.now());
        let hold = Hold::new(&identity.tenant, id, agent);
        let committed = self.commit(Command::hand_over(draft, hold)).await?;
        Ok(committed.conversation)
    }
}
