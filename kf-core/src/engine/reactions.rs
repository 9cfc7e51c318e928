//! What a committed event sets in motion, by kind: it is published to the conversation's subscribers and
//! applied to the engine's state (router, timers), announced to who must know, and queues whose capacity it
//! freed drain. Run by the pipeline right after the commit, on the commit's own task.

use super::Engine;
use super::pipeline::{Command, Hold};
use crate::auth::{Identity, Principal};
use crate::model::{Actor, AgentId, Conversation, ConversationState, EventKind, MessageBody, MissedReason};
use crate::protocol::ServerFrame;
use crate::store::{Appended, EventDraft};

impl Engine {
    /// Reacts to a committed event (not a duplicate).
    pub(super) async fn react(&self, committed: &Appended) {
        let Appended {
            event, conversation, ..
        } = committed;
        self.inner.delivery.publish(&self.inner.log, event);
        match &event.data {
            EventKind::Message { .. } => {
                // Copies of the record held in memory are not updated per message.
                if matches!(event.author, Actor::Visitor(_)) && conversation.state.agent().is_some() {
                    self.arm_inactivity(conversation);
                }
                // The visitor's next message wakes a conversation on hold.
                if matches!(event.author, Actor::Visitor(_))
                    && matches!(conversation.state, ConversationState::OnHold { .. })
                {
                    self.wake(conversation.id, crate::model::WakeReason::Visitor)
                        .await;
                }
            }
            EventKind::Snoozed { until } => {
                // Parked: its agent's capacity is free for others until it wakes.
                let groups = self.inner.routing.ledger.update(conversation);
                self.arm_snooze(conversation, *until);
                for group in groups {
                    self.drain(&conversation.tenant, &group).await;
                }
            }
            // Back to the agent who parked it when it can, else queued: the path of a reopen.
            EventKind::Woken { .. } => self.reopened(conversation).await,
            EventKind::Assigned { agent } => {
                self.inner.routing.ledger.update(conversation);
                self.notify_agent(agent, conversation);
                self.arm_assigned(conversation, agent);
                self.announce_queue(&conversation.tenant, &conversation.group);
            }
            EventKind::Missed { reason } => {
                // A record: it frees no capacity, so nothing drains.
                self.inner.routing.ledger.update(conversation);
                self.remind_group(conversation, *reason);
            }
            EventKind::Reopened => self.reopened(conversation).await,
            // Records: they move nothing in the router (a rating follows the close; a note changes no owner).
            EventKind::Rated { .. } => {}
            EventKind::Note { .. } => self.notify_mentioned(event, conversation),
            // Labels and attributes move nothing either; an open conversation's copy in the router takes them.
            EventKind::Labeled { .. } | EventKind::Unlabeled { .. } | EventKind::AttributeSet { .. } => {
                if conversation.state.is_open() {
                    self.inner.routing.ledger.update(conversation);
                }
            }
            _ => {
                let groups = self.inner.routing.ledger.update(conversation);
                match (&event.data, &conversation.state) {
                    (EventKind::Transferred { .. }, ConversationState::Assigned { agent }) => {
                        self.notify_agent(agent, conversation);
                        self.arm_assigned(conversation, agent);
                    }
                    (EventKind::Transferred { .. }, ConversationState::Queued) => {
                        self.arm_queued(conversation)
                    }
                    (EventKind::Offline, _) => self.notify_offline_message(conversation),
                    _ => {}
                }
                for group in groups {
                    self.drain(&conversation.tenant, &group).await;
                }
            }
        }
    }

    /// A conversation was created: its visitor's context is stored with it, its `created` event published, and
    /// it is routed (after its welcome message) or, outside its group's hours, left as a message.
    pub(super) async fn opened(&self, committed: &Appended, offline: bool, welcome: Option<String>) {
        let conversation = &committed.conversation;
        self.store_visitor_context(conversation).await;
        self.inner.delivery.publish(&self.inner.log, &committed.event);
        let visitor = Identity {
            tenant: conversation.tenant.clone(),
            principal: Principal::Visitor(conversation.visitor.clone()),
            role: crate::auth::Role::Agent,
        };
        if offline {
            // Not in the router until it is offline, so it is never routed. Should this commit fail, the
            // conversation stays queued in the store and is routed at the next start.
            let draft = EventDraft::system(conversation.id, EventKind::Offline, self.inner.clock.now());
            match self.commit(Command::append(draft)).await {
                Ok(offline) => self.announce_conversation(&visitor, &offline.conversation),
                Err(error) => {
                    tracing::warn!(conversation = %conversation.id, %error, "message left not stored")
                }
            }
            return;
        }
        self.inner.routing.ledger.track(conversation.clone());
        self.announce_conversation(&visitor, conversation);
        if let Some(welcome) = welcome {
            let draft = EventDraft::message(
                conversation.id,
                Actor::System,
                None,
                MessageBody::text(welcome),
                self.inner.clock.now(),
            );
            // The conversation exists whether or not its welcome could be stored.
            if let Err(error) = self.commit(Command::append(draft)).await {
                tracing::warn!(conversation = %conversation.id, %error, "welcome message not stored");
            }
        }
        self.arm_queued(conversation);
        self.drain(&conversation.tenant, &conversation.group).await;
    }

    /// A closed conversation was reopened: back to its last agent when that agent is online, accepting and has
    /// capacity, else queued in its group.
    async fn reopened(&self, reopened: &Conversation) {
        let router = &self.inner.routing.ledger;
        let tenant = &reopened.tenant;
        let groups = router.update(reopened);
        self.arm_queued(reopened);
        let now = self.inner.clock.now();
        if let Some(previous) = &reopened.last_agent
            && router.claim(tenant, previous, reopened.id, now, false).is_ok()
        {
            let assigned = EventKind::Assigned {
                agent: previous.clone(),
            };
            let draft = EventDraft::system(reopened.id, assigned, now);
            let hold = Hold::new(tenant, reopened.id, previous).requeue(reopened.clone());
            if let Err(error) = self.commit(Command::hand_over(draft, hold)).await {
                tracing::debug!(conversation = %reopened.id, %error, "reopened: back to the last agent failed");
            }
        }
        for group in groups {
            self.drain(tenant, &group).await;
        }
    }

    /// Tells a visitor's connections of a conversation just opened: all of them learn of it from `opened`'s
    /// answer; one that follows all its conversations (SSE) is subscribed here.
    fn announce_conversation(&self, visitor: &Identity, conversation: &Conversation) {
        let frame = ServerFrame::Conversation {
            conversation: conversation.for_visitors(),
        }
        .encode();
        self.announce(visitor, conversation.id, &frame, true);
    }

    /// Tells an agent's connections of a conversation handed to it.
    fn notify_agent(&self, agent: &AgentId, conversation: &Conversation) {
        let identity = Identity {
            tenant: conversation.tenant.clone(),
            principal: Principal::Agent(agent.clone()),
            role: crate::auth::Role::Agent,
        };
        let frame = ServerFrame::Conversation {
            conversation: conversation.clone(),
        }
        .encode();
        self.announce(&identity, conversation.id, &frame, false);
    }

    /// Remembers a missed conversation and reminds the group's connected agents.
    fn remind_group(&self, conversation: &Conversation, reason: MissedReason) {
        self.inner.routing.recent_missed.record(conversation, reason);
        let frame = ServerFrame::Missed {
            conversation: conversation.clone(),
            reason,
        }
        .encode();
        let agents = self
            .inner
            .routing
            .ledger
            .connected_agents(&conversation.tenant, &conversation.group);
        for agent in agents {
            let identity = Identity::agent(conversation.tenant.clone(), agent);
            self.inner.sessions.offer(&identity, &frame);
        }
    }
}
