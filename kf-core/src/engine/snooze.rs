//! On hold (snoozed): an agent parks an assigned conversation until a time or the visitor's next message,
//! whichever comes first. Parked, it counts against nobody's capacity; when it wakes it is queued and goes back to
//! the agent who parked it if that agent can take it (online, accepting, with room), else to whoever the group's
//! routing picks (`docs/routing.md` §on hold). Every step is an event of the log, through the pipeline.

use super::conversations::Ack;
use super::pipeline::Command;
use super::{Engine, RequestError};
use crate::auth::{Identity, Principal};
use crate::model::{ClientId, ConversationId, ConversationState, EventKind, Timestamp, WakeReason};
use crate::store::EventDraft;

/// The longest an agent may park a conversation: 30 days.
pub const MAX_SNOOZE_MS: u64 = 30 * 24 * 60 * 60 * 1000;

impl Engine {
    /// An agent parks a conversation assigned to it until `until` (ms since the epoch, in the future, at most
    /// [`MAX_SNOOZE_MS`] ahead) or, without one, until the visitor writes. Idempotent by client id.
    pub async fn snooze(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: ClientId,
        until: Option<Timestamp>,
    ) -> Result<Ack, RequestError> {
        if !matches!(identity.principal, Principal::Agent(_)) {
            return Err(RequestError::Forbidden(
                "only agents put conversations on hold".into(),
            ));
        }
        let now = self.inner.clock.now().as_millis();
        if let Some(until) = until
            && (until.as_millis() <= now || until.as_millis() - now > MAX_SNOOZE_MS)
        {
            return Err(RequestError::Invalid(format!(
                "`until` must be in the future and at most {} days ahead",
                MAX_SNOOZE_MS / 86_400_000
            )));
        }
        if let Some(ack) = self
            .participant_or_stored(identity, conversation, &client_id)
            .await?
        {
            return Ok(ack);
        }
        let author = identity.principal.actor();
        let draft = EventDraft {
            client_id: Some(client_id),
            ..EventDraft::new(
                conversation,
                author,
                EventKind::Snoozed { until },
                self.inner.clock.now(),
            )
        };
        let appended = self.commit(Command::append(draft)).await?;
        Ok(Ack {
            seq: appended.event.seq,
            duplicate: appended.duplicate,
        })
    }

    /// The agent who parked a conversation takes it back before its time (`wake`): it wakes as by its timer.
    pub async fn wake_up(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: ClientId,
    ) -> Result<Ack, RequestError> {
        let Principal::Agent(agent) = &identity.principal else {
            return Err(RequestError::Forbidden("only agents wake conversations".into()));
        };
        let author = identity.principal.actor();
        let record = self.readable(identity, conversation).await?;
        match &record.state {
            ConversationState::OnHold { agent: owner, .. } if owner == agent => {}
            ConversationState::OnHold { .. } => {
                return Err(RequestError::Forbidden(format!(
                    "conversation {conversation} was put on hold by another agent"
                )));
            }
            _ => {
                return self
                    .stored_send(conversation, &author, &client_id)
                    .await?
                    .ok_or_else(|| {
                        RequestError::InvalidState(crate::model::TransitionError {
                            state: record.state.name(),
                            event: "woken",
                        })
                    });
            }
        }
        let draft = EventDraft {
            client_id: Some(client_id),
            ..EventDraft::new(
                conversation,
                author,
                EventKind::Woken {
                    reason: WakeReason::Agent,
                },
                self.inner.clock.now(),
            )
        };
        let appended = self.commit(Command::append(draft)).await?;
        Ok(Ack {
            seq: appended.event.seq,
            duplicate: appended.duplicate,
        })
    }

    /// Wakes a conversation on hold (its timer, or its visitor wrote): a `woken` event by the system. A
    /// conversation no longer on hold is left alone (the refused transition is logged at debug level).
    pub(super) async fn wake(&self, conversation: ConversationId, reason: WakeReason) {
        let draft = EventDraft::system(conversation, EventKind::Woken { reason }, self.inner.clock.now());
        if let Err(error) = self.commit(Command::append(draft)).await {
            tracing::debug!(%conversation, %error, "not woken");
        }
    }
}
