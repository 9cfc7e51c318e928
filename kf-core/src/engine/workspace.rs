//! What a conversation gathers besides its messages: the visitor's rating after the close (customer
//! satisfaction) and the agents' private notes, with the notices of those they mention. Both are events of the
//! conversation's log, committed through the pipeline like every other.

use super::conversations::Ack;
use super::pipeline::Command;
use super::{Engine, RequestError};
use crate::auth::{Identity, Principal};
use crate::limits::{MAX_NOTE_MENTIONS, MAX_RATING_COMMENT_BYTES};
use crate::model::{Actor, AgentId, ClientId, Conversation, ConversationId, Event, EventKind};
use crate::protocol::ServerFrame;
use crate::store::EventDraft;

/// The lowest and highest rating a visitor may give.
const SCORES: std::ops::RangeInclusive<u8> = 1..=5;

impl Engine {
    /// The visitor rates its closed conversation: `score` from 1 to 5 and an optional comment (at most
    /// [`MAX_RATING_COMMENT_BYTES`], no control characters but newlines; a blank one counts as none). Once per
    /// conversation: a repeat with the same client id gets the original ack, another rating `InvalidState`, as
    /// does a rating of a conversation that is not closed.
    pub async fn rate(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: ClientId,
        score: u8,
        comment: Option<String>,
    ) -> Result<Ack, RequestError> {
        if !matches!(identity.principal, Principal::Visitor(_)) {
            return Err(RequestError::Forbidden(
                "only the conversation's visitor rates it".into(),
            ));
        }
        if !SCORES.contains(&score) {
            return Err(RequestError::Invalid(format!(
                "`score` must be from {} to {}, not {score}",
                SCORES.start(),
                SCORES.end()
            )));
        }
        let comment = comment_of(comment)?;
        self.readable(identity, conversation).await?;
        let draft = EventDraft {
            client_id: Some(client_id),
            ..EventDraft::new(
                conversation,
                identity.principal.actor(),
                EventKind::Rated { score, comment },
                self.inner.clock.now(),
            )
        };
        let appended = self.commit(Command::append(draft)).await?;
        Ok(Ack {
            seq: appended.event.seq,
            duplicate: appended.duplicate,
        })
    }

    /// An agent writes a private note in a conversation assigned to it: never sent to the visitor, and each
    /// agent of the tenant it mentions gets a `mentioned` notice on its live connections. The text follows a
    /// message's rules (not blank, at most `max_text_bytes`); at most [`MAX_NOTE_MENTIONS`] agents, each one the
    /// tenant has (`NotFound` otherwise). Idempotent by client id, like a message.
    pub async fn note(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: ClientId,
        text: String,
        mentions: Vec<AgentId>,
    ) -> Result<Ack, RequestError> {
        if !matches!(identity.principal, Principal::Agent(_)) {
            return Err(RequestError::Forbidden("only agents write notes".into()));
        }
        let limit = self.inner.limits.max_text_bytes;
        if text.len() > limit {
            return Err(RequestError::TooLarge {
                size: text.len(),
                limit,
            });
        }
        if text.trim().is_empty() {
            return Err(RequestError::Invalid("a note needs a `text`".into()));
        }
        let mentions = self.mentionable(&identity.tenant, mentions)?;
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
                EventKind::Note { text, mentions },
                self.inner.clock.now(),
            )
        };
        let appended = self.commit(Command::append(draft)).await?;
        Ok(Ack {
            seq: appended.event.seq,
            duplicate: appended.duplicate,
        })
    }

    /// The mentions of a note, each once, in the order given; every one an agent of the tenant.
    fn mentionable(
        &self,
        tenant: &crate::model::TenantId,
        mentions: Vec<AgentId>,
    ) -> Result<Vec<AgentId>, RequestError> {
        let mut unique: Vec<AgentId> = Vec::with_capacity(mentions.len());
        for agent in mentions {
            if !unique.contains(&agent) {
                unique.push(agent);
            }
        }
        if unique.len() > MAX_NOTE_MENTIONS {
            return Err(RequestError::Invalid(format!(
                "a note mentions at most {MAX_NOTE_MENTIONS} agents"
            )));
        }
        if let Some(unknown) = unique
            .iter()
            .find(|agent| self.inner.routing.ledger.agent(tenant, agent).is_none())
        {
            return Err(RequestError::NotFound(format!("agent {unknown}")));
        }
        Ok(unique)
    }

    /// Tells each agent a committed note mentions (but its author) on its live connections: `mentioned`.
    pub(super) fn notify_mentioned(&self, note: &Event, conversation: &Conversation) {
        let EventKind::Note { text, mentions } = &note.data else {
            return;
        };
        let frame = ServerFrame::Mentioned {
            conversation: conversation.clone(),
            seq: note.seq,
            author: note.author.clone(),
            text: text.clone(),
        }
        .encode();
        for agent in mentions {
            if note.author == Actor::Agent(agent.clone()) {
                continue;
            }
            let identity = Identity::agent(conversation.tenant.clone(), agent.clone());
            self.inner.sessions.offer(&identity, &frame);
        }
    }
}

/// A rating's comment as stored: `None` when absent or blank; refused when too long or holding control
/// characters other than newlines.
fn comment_of(comment: Option<String>) -> Result<Option<String>, RequestError> {
    let Some(comment) = comment else {
        return Ok(None);
    };
    if comment.len() > MAX_RATING_COMMENT_BYTES {
        return Err(RequestError::TooLarge {
            size: comment.len(),
            limit: MAX_RATING_COMMENT_BYTES,
        });
    }
    if comment.chars().any(|c| c.is_control() && c != '\n') {
        return Err(RequestError::Invalid(
            "a rating's `comment` may hold no control characters but newlines".into(),
        ));
    }
    let trimmed = comment.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::comment_of;
    use crate::engine::RequestError;
    use crate::limits::MAX_RATING_COMMENT_BYTES;

    #[test]
    fn rating_comments_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(comment_of(None).ok(), Some(None));
        assert_eq!(comment_of(Some("  \n ".into())).ok(), Some(None));
        assert_eq!(
            comment_of(Some(" Quick,\nthanks! ".into())).ok(),
            Some(Some("Quick,\nthanks!".into()))
        );
        assert!(matches!(
            comment_of(Some("a\tb".into())),
            Err(RequestError::Invalid(_))
        ));
        assert!(matches!(
            comment_of(Some("é".repeat(MAX_RATING_COMMENT_BYTES / 2 + 1))),
            Err(RequestError::TooLarge { .. })
        ));
        assert!(comment_of(Some("é".repeat(MAX_RATING_COMMENT_BYTES / 2))).is_ok());
    }
}
