//! Timers: the deadlines of routing and lifecycle (max wait, missed, answer, inactivity), armed on Tokio time and
//! checked again when they fire (see `docs/routing.md`, timers).

use std::time::Duration;

use super::*;

/// A deadline armed by the engine: when it passes, the engine checks that the situation it was armed for still
/// holds and acts (see `docs/routing.md`, timers).
#[derive(Debug, Clone)]
pub(super) enum Timer {
    /// Queued too long: move to the group's fallback.
    MaxWait {
        conversation: ConversationId,
        entry: u64,
    },
    /// Queued past the missed threshold: record and remind.
    MissedWait {
        conversation: ConversationId,
        entry: u64,
    },
    /// The assigned agent has not written since `since`: give the conversation to someone else.
    Answer {
        conversation: ConversationId,
        agent: AgentId,
        since: Seq,
    },
    /// The visitor has not written since `since`: close.
    Inactive {
        conversation: ConversationId,
        since: Seq,
    },
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl Engine {
    /// Runs `timer` after `after` (on the current Tokio runtime; without one, timers are off).
    pub(super) fn arm(&self, after: Duration, timer: Timer) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let engine = self.clone();
        let deadline = tokio::time::Instant::now() + after;
        runtime.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            engine.fire(timer).await;
        });
    }

    pub(super) fn timers(&self, conversation: &Conversation) -> crate::model::GroupTimers {
        self.inner
            .router
            .group(&conversation.tenant, &conversation.group)
            .map(|g| g.timers)
            .unwrap_or_default()
    }

    /// What is left of `ms` milliseconds counted from `since` (the event that started the wait).
    pub(super) fn left_of(&self, ms: u64, since: crate::model::Timestamp) -> Duration {
        let elapsed = self
            .inner
            .clock
            .now()
            .as_millis()
            .saturating_sub(since.as_millis());
        millis(ms.saturating_sub(elapsed))
    }

    /// A conversation entered a queue (at its `updated_at`): its group's max-wait and missed timers start.
    pub(super) fn arm_queued(&self, conversation: &Conversation) {
        let timers = self.timers(conversation);
        let Some(entry) = self.inner.router.queue_entry(&conversation.id) else {
            return;
        };
        let id = conversation.id;
        if let Some(ms) = timers.max_wait_ms {
            self.arm(
                self.left_of(ms, conversation.updated_at),
                Timer::MaxWait {
                    conversation: id,
                    entry,
                },
            );
        }
        if let Some(ms) = timers.missed_after_ms {
            self.arm(
                self.left_of(ms, conversation.updated_at),
                Timer::MissedWait {
                    conversation: id,
                    entry,
                },
            );
        }
    }

    /// A conversation was assigned: the answer and inactivity timers start.
    pub(super) fn arm_assigned(&self, conversation: &Conversation, agent: &AgentId) {
        let timers = self.timers(conversation);
        if let Some(ms) = timers.answer_timeout_ms {
            let timer = Timer::Answer {
                conversation: conversation.id,
                agent: agent.clone(),
                since: conversation.last_seq,
            };
            self.arm(self.left_of(ms, conversation.updated_at), timer);
        }
        self.arm_inactivity(conversation, conversation.last_seq);
    }

    pub(super) fn arm_inactivity(&self, conversation: &Conversation, since: Seq) {
        if let Some(ms) = self.timers(conversation).inactivity_close_ms {
            let timer = Timer::Inactive {
                conversation: conversation.id,
                since,
            };
            self.arm(self.left_of(ms, conversation.updated_at), timer);
        }
    }

    /// Whether `author` wrote a message to the conversation after `since` (reads one page of its log).
    pub(super) async fn wrote_since(
        &self,
        conversation: ConversationId,
        since: Seq,
        author: &Actor,
    ) -> Option<bool> {
        let events = self
            .inner
            .store
            .events_after(conversation, since, 1_000)
            .await
            .ok()?;
        Some(
            events
                .iter()
                .any(|e| matches!(e.data, EventKind::Message { .. }) && &e.author == author),
        )
    }

    /// A timer's deadline passed: act if what it was armed for still holds.
    pub(super) async fn fire(&self, timer: Timer) {
        let router = &self.inner.router;
        let now = self.inner.clock.now();
        match timer {
            Timer::MaxWait { conversation, entry } | Timer::MissedWait { conversation, entry }
                if router.queue_entry(&conversation) != Some(entry) => {}
            Timer::MaxWait { conversation, .. } => {
                let Some(record) = router.open_conversation(&conversation) else {
                    return;
                };
                // To the fallback group when there is one, else a message left for the group's agents.
                let kind = match self.timers(&record).fallback {
                    Some(fallback)
                        if fallback != record.group && router.has_group(&record.tenant, &fallback) =>
                    {
                        EventKind::Transferred {
                            from: None,
                            agent: None,
                            group: fallback,
                            note: Some("waited longer than the group's maximum".into()),
                        }
                    }
                    _ => EventKind::Offline,
                };
                match self.commit(EventDraft::system(conversation, kind, now)).await {
                    Ok(appended) if appended.conversation.state == ConversationState::Offline => {
                        self.notify_offline_message(&appended.conversation);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%conversation, %error, "max wait: moving the conversation on failed");
                    }
                }
            }
            Timer::MissedWait { conversation, .. } => {
                if let Some(record) = router.open_conversation(&conversation) {
                    self.missed(&record, MissedReason::Waited).await;
                }
            }
            Timer::Answer {
                conversation,
                agent,
                since,
            } => {
                let Some(record) = router.open_conversation(&conversation) else {
                    return;
                };
                if record.state.agent() != Some(&agent)
                    || self
                        .wrote_since(conversation, since, &Actor::Agent(agent.clone()))
                        .await
                        != Some(false)
                {
                    return;
                }
                router.avoid(conversation, agent.clone());
                let kind = EventKind::Transferred {
                    from: Some(agent),
                    agent: None,
                    group: record.group.clone(),
                    note: Some("not answered in time".into()),
                };
                if let Err(error) = self.commit(EventDraft::system(conversation, kind, now)).await {
                    tracing::debug!(%conversation, %error, "answer timeout: reassignment not stored");
                }
            }
            Timer::Inactive { conversation, since } => {
                let Some(record) = router.open_conversation(&conversation) else {
                    return;
                };
                if record.state.agent().is_none()
                    || self
                        .wrote_since(conversation, since, &Actor::Visitor(record.visitor.clone()))
                        .await
                        != Some(false)
                {
                    return;
                }
                if let Err(error) = self
                    .commit(EventDraft::system(conversation, EventKind::Closed, now))
                    .await
                {
                    tracing::debug!(%conversation, %error, "inactivity: close not stored");
                }
            }
        }
    }

    /// Records a missed conversation in its log and reminds the group's connected agents.
    pub(super) async fn missed(&self, conversation: &Conversation, reason: MissedReason) {
        let draft = EventDraft::system(
            conversation.id,
            EventKind::Missed { reason },
            self.inner.clock.now(),
        );
        // Not `commit`: a record frees no capacity, so there is nothing to drain (and no recursion).
        let record = match self.inner.store.append(draft).await {
            Ok(appended) => {
                self.inner.dispatcher.publish(&self.inner.store, &appended.event);
                self.inner.router.update(&appended.conversation);
                appended.conversation
            }
            Err(error) => {
                tracing::warn!(conversation = %conversation.id, %error, "missed conversation not recorded");
                return;
            }
        };
        let frame = ServerFrame::Missed {
            conversation: record,
            reason,
        }
        .encode();
        let agents = self
            .inner
            .router
            .connected_agents(&conversation.tenant, &conversation.group);
        let connections = self.connections();
        for agent in agents {
            let identity = Identity {
                tenant: conversation.tenant.clone(),
                principal: Principal::Agent(agent),
            };
            for conn in connections.get(&identity).into_iter().flatten() {
                conn.outlet.offer(frame.clone());
            }
        }
    }
}
