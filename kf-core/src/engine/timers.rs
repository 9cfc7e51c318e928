//! Timers: the deadlines of routing and lifecycle (max wait, missed, answer, inactivity), armed on Tokio time and
//! checked again when they fire (see `docs/routing.md`, timers).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::pipeline::Command;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::Engine;
use super::connection::Conn;
use crate::model::{
    Actor, AgentId, Conversation, ConversationId, ConversationState, EventKind, GroupId, GroupTimers,
    MissedReason, Seq, TenantId, Timestamp, WakeReason,
};
use crate::protocol::ServerFrame;
use crate::store::EventDraft;

type MissedByGroup = HashMap<(TenantId, GroupId), VecDeque<(ConversationId, MissedReason)>>;

/// The most recent missed conversations of each group, newest last: the ones an agent is reminded of when it
/// connects (`Limits::missed_reminders_per_group` per group; the log keeps every `missed` event for good).
#[derive(Debug)]
pub(super) struct RecentMissed {
    by_group: Mutex<MissedByGroup>,
    per_group: usize,
}

impl RecentMissed {
    pub(super) fn new(per_group: usize) -> Self {
        Self {
            by_group: Mutex::default(),
            per_group,
        }
    }

    fn lock(&self) -> MutexGuard<'_, MissedByGroup> {
        self.by_group
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn record(&self, conversation: &Conversation, reason: MissedReason) {
        let mut by_group = self.lock();
        let recent = by_group
            .entry((conversation.tenant.clone(), conversation.group.clone()))
            .or_default();
        recent.retain(|(id, _)| *id != conversation.id);
        while !recent.is_empty() && recent.len() >= self.per_group {
            recent.pop_front();
        }
        if self.per_group > 0 {
            recent.push_back((conversation.id, reason));
        }
    }

    /// The recent missed conversations of these groups, oldest first within each group.
    fn of(&self, tenant: &TenantId, groups: &[GroupId]) -> Vec<(ConversationId, MissedReason)> {
        let by_group = self.lock();
        groups
            .iter()
            .filter_map(|group| by_group.get(&(tenant.clone(), group.clone())))
            .flatten()
            .copied()
            .collect()
    }
}

/// The visitor's last sign of life (its last message, or the assignment) in each assigned conversation of a group
/// with `inactivity_close_ms`. A conversation here has exactly one inactivity timer armed: a message only moves
/// the time, and the timer, when it fires early, sleeps again for the rest. So a busy conversation costs one
/// entry and one sleeping task, not one task per message.
#[derive(Debug, Default)]
pub(super) struct Silences {
    since: Mutex<HashMap<ConversationId, Instant>>,
}

impl Silences {
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<ConversationId, Instant>> {
        self.since.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records life at `at`; true when the conversation had no timer yet (the caller arms one).
    fn touch(&self, conversation: ConversationId, at: Instant) -> bool {
        let mut since = self.lock();
        match since.get_mut(&conversation) {
            Some(last) => {
                *last = (*last).max(at);
                false
            }
            None => {
                since.insert(conversation, at);
                true
            }
        }
    }

    fn last(&self, conversation: &ConversationId) -> Option<Instant> {
        self.lock().get(conversation).copied()
    }

    fn forget(&self, conversation: &ConversationId) {
        self.lock().remove(conversation);
    }
}

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
    /// The visitor may have been silent for the group's `inactivity_close_ms` (see [`Silences`]): close.
    Inactive { conversation: ConversationId },
    /// A conversation on hold until `until`: wake it, if it is still parked until then.
    Snooze {
        conversation: ConversationId,
        until: Timestamp,
    },
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl Engine {
    /// Runs `timer` after `after` (on the current Tokio runtime; without one, timers are off).
    pub(super) fn arm(&self, after: Duration, timer: Timer) {
        self.arm_at(Instant::now() + after, timer);
    }

    /// Runs `timer` at `deadline` (on the current Tokio runtime; without one, timers are off). A timer that has
    /// not fired when the engine shuts down never fires: its deadline counts from the conversation's last event,
    /// so the next start arms it again with what is left.
    fn arm_at(&self, deadline: Instant, timer: Timer) {
        let engine = self.clone();
        self.spawn_until_shutdown(async move {
            tokio::time::sleep_until(deadline).await;
            engine.fire(timer).await;
        });
    }

    pub(super) fn timers(&self, conversation: &Conversation) -> GroupTimers {
        self.inner
            .routing
            .ledger
            .group(&conversation.tenant, &conversation.group)
            .map(|g| g.timers)
            .unwrap_or_default()
    }

    /// What is left of `ms` milliseconds counted from `since` (the event that started the wait).
    pub(super) fn left_of(&self, ms: u64, since: Timestamp) -> Duration {
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
        let Some(entry) = self.inner.routing.ledger.queue_entry(&conversation.id) else {
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

    /// A conversation was put on hold until `until` (if anything): its wake-up is armed.
    pub(super) fn arm_snooze(&self, conversation: &Conversation, until: Option<Timestamp>) {
        let Some(until) = until else {
            return;
        };
        let left = until
            .as_millis()
            .saturating_sub(self.inner.clock.now().as_millis());
        let timer = Timer::Snooze {
            conversation: conversation.id,
            until,
        };
        self.arm(millis(left), timer);
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
        self.arm_inactivity(conversation);
    }

    /// The visitor showed life in an assigned conversation (at its `updated_at`): its silence starts over.
    pub(super) fn arm_inactivity(&self, conversation: &Conversation) {
        let Some(ms) = self.timers(conversation).inactivity_close_ms else {
            return;
        };
        // On Tokio's clock, like every deadline: now, less what the engine's clock says has passed since.
        let elapsed = millis(
            self.inner
                .clock
                .now()
                .as_millis()
                .saturating_sub(conversation.updated_at.as_millis()),
        );
        let at = Instant::now().checked_sub(elapsed).unwrap_or_else(Instant::now);
        if self.inner.routing.silences.touch(conversation.id, at) {
            let timer = Timer::Inactive {
                conversation: conversation.id,
            };
            self.arm_at(at + millis(ms), timer);
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
            .log
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
        let ledger = &self.inner.routing.ledger;
        match timer {
            Timer::MaxWait { conversation, entry } | Timer::MissedWait { conversation, entry }
                if ledger.queue_entry(&conversation) != Some(entry) => {}
            Timer::MaxWait { conversation, .. } => self.waited_too_long(conversation).await,
            Timer::MissedWait { conversation, .. } => {
                if let Some(record) = ledger.open_conversation(&conversation) {
                    self.missed(&record, MissedReason::Waited).await;
                }
            }
            Timer::Answer {
                conversation,
                agent,
                since,
            } => self.unanswered(conversation, agent, since).await,
            Timer::Inactive { conversation } => self.silent(conversation).await,
            Timer::Snooze { conversation, until } => {
                let parked = ledger.open_conversation(&conversation).is_some_and(|record| {
                    matches!(record.state, ConversationState::OnHold { until: Some(at), .. } if at == until)
                });
                if parked {
                    self.wake(conversation, WakeReason::Timer).await;
                }
            }
        }
    }

    /// Queued past the group's maximum: to the fallback group when there is one, else a message left for the
    /// group's agents.
    async fn waited_too_long(&self, conversation: ConversationId) {
        let ledger = &self.inner.routing.ledger;
        let Some(record) = ledger.open_conversation(&conversation) else {
            return;
        };
        let kind = match self.timers(&record).fallback {
            Some(fallback) if fallback != record.group && ledger.has_group(&record.tenant, &fallback) => {
                EventKind::Transferred {
                    from: None,
                    agent: None,
                    group: fallback,
                    note: Some("waited longer than the group's maximum".into()),
                    handover: false,
                }
            }
            _ => EventKind::Offline,
        };
        let draft = EventDraft::system(conversation, kind, self.inner.clock.now());
        if let Err(error) = self.commit(Command::append(draft)).await {
            tracing::warn!(%conversation, %error, "max wait: moving the conversation on failed");
        }
    }

    /// The assigned agent has not written since `since`: back to the queue, preferably for someone else.
    async fn unanswered(&self, conversation: ConversationId, agent: AgentId, since: Seq) {
        let ledger = &self.inner.routing.ledger;
        let Some(record) = ledger.open_conversation(&conversation) else {
            return;
        };
        let author = Actor::Agent(agent.clone());
        if record.state.agent() != Some(&agent)
            || self.wrote_since(conversation, since, &author).await != Some(false)
        {
            return;
        }
        ledger.avoid(conversation, agent.clone());
        let kind = EventKind::Transferred {
            from: Some(agent),
            agent: None,
            group: record.group.clone(),
            note: Some("not answered in time".into()),
            handover: false,
        };
        let draft = EventDraft::system(conversation, kind, self.inner.clock.now());
        if let Err(error) = self.commit(Command::append(draft)).await {
            tracing::debug!(%conversation, %error, "answer timeout: reassignment not stored");
        }
    }

    /// The visitor may have been silent for the group's `inactivity_close_ms`: close, or sleep for the rest if it
    /// wrote since the timer was armed.
    async fn silent(&self, conversation: ConversationId) {
        let silences = &self.inner.routing.silences;
        let Some(since) = silences.last(&conversation) else {
            return;
        };
        let record = self.inner.routing.ledger.open_conversation(&conversation);
        let limit = record.as_ref().and_then(|r| self.timers(r).inactivity_close_ms);
        let (Some(record), Some(ms)) = (record, limit) else {
            silences.forget(&conversation);
            return;
        };
        if record.state.agent().is_none() {
            silences.forget(&conversation);
            return;
        }
        let deadline = since + millis(ms);
        if Instant::now() < deadline {
            self.arm_at(deadline, Timer::Inactive { conversation });
            return;
        }
        silences.forget(&conversation);
        let draft = EventDraft::system(conversation, EventKind::Closed, self.inner.clock.now());
        if let Err(error) = self.commit(Command::append(draft)).await {
            tracing::debug!(%conversation, %error, "inactivity: close not stored");
        }
    }

    /// Reminds an agent that just connected of its groups' recent missed conversations (as they are now).
    pub(super) async fn remind_missed(&self, conn: &Conn, agent: &AgentId) {
        let tenant = &conn.identity.tenant;
        let Some(record) = self.inner.routing.ledger.agent(tenant, agent) else {
            return;
        };
        for (id, reason) in self.inner.routing.recent_missed.of(tenant, &record.groups) {
            let conversation = match self.inner.routing.ledger.open_conversation(&id) {
                Some(open) => Some(open),
                None => self.inner.log.conversation(id).await.ok().flatten(),
            };
            if let Some(conversation) = conversation {
                conn.outlet
                    .offer(ServerFrame::Missed { conversation, reason }.encode());
            }
        }
    }

    /// Records a missed conversation in its log (the reaction reminds the group's connected agents).
    pub(super) async fn missed(&self, conversation: &Conversation, reason: MissedReason) {
        let draft = EventDraft::system(
            conversation.id,
            EventKind::Missed { reason },
            self.inner.clock.now(),
        );
        if let Err(error) = self.commit(Command::append(draft)).await {
            tracing::warn!(conversation = %conversation.id, %error, "missed conversation not recorded");
        }
    }
}
