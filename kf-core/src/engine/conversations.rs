//! The conversation operations a visitor or agent asks for: open, send, close, typing, read receipts.

use std::collections::BTreeMap;

use super::pipeline::{Command, Opening};
use super::{Engine, RequestError};
use crate::auth::{Identity, Principal};
use crate::model::{
    Actor, ClientId, Conversation, ConversationId, ConversationState, EntryPointId, EventKind, GroupId,
    MessageBody, MissedReason, SeenMark, Seq, TenantId, TransitionError, VisitorId,
};
use crate::protocol::ServerFrame;
use crate::store::{EventDraft, NewConversation};

/// Result of [`Engine::open`].
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The conversation as it is now.
    pub conversation: Conversation,
    /// False when an existing conversation was returned (same client id, or already open in that group).
    pub created: bool,
}

/// Result of [`Engine::send`]: the message is durably stored.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Ack {
    /// The message's seq.
    pub seq: Seq,
    /// True when this client id was sent before and the original seq is returned.
    pub duplicate: bool,
}

impl Ack {
    /// The `ack` frame that answers request `id`, which wrote `client_id` into `conversation`.
    pub(crate) fn reply(
        self,
        id: Option<String>,
        conversation: ConversationId,
        client_id: ClientId,
    ) -> ServerFrame {
        ServerFrame::Ack {
            id,
            conversation,
            client_id,
            seq: self.seq,
            duplicate: self.duplicate,
        }
    }
}

impl Engine {
    /// A visitor opens a conversation: with `group`, else through the entry point `entry`, else through the
    /// entry point whose page rule matches the visitor's current page, else with the default group (the order
    /// is documented on `docs/protocol.md` §7.2). Idempotent by client id; a visitor with a conversation
    /// already open in that group gets that one back.
    ///
    /// `fields` are the visitor's answers to the pre-chat form of the entry point named by `entry`
    /// ([`check_answers`](crate::prechat::check_answers); `Invalid` when they do not fit it, or when they are
    /// given without naming an entry point); a new conversation records them on its `created` event.
    pub async fn open(
        &self,
        identity: &Identity,
        client_id: ClientId,
        group: Option<GroupId>,
        entry: Option<EntryPointId>,
        fields: BTreeMap<String, String>,
    ) -> Result<Opened, RequestError> {
        let Principal::Visitor(visitor) = &identity.principal else {
            return Err(RequestError::Forbidden("only visitors open conversations".into()));
        };
        let tenant = &identity.tenant;
        let named = entry.is_some();
        let super::entry::Destination {
            group,
            entry,
            welcome,
            prechat,
        } = self.destination(tenant, visitor, group, entry)?;
        // A form is answered in the widget of the entry point that asks it: only a named one's counts.
        let fields = match (named, fields.is_empty()) {
            (true, _) => crate::prechat::check_answers(&prechat, fields)
                .map_err(|error| RequestError::Invalid(error.to_string()))?,
            (false, true) => fields,
            (false, false) => {
                return Err(RequestError::Invalid(
                    "pre-chat `fields` need the `entry` whose form they answer".into(),
                ));
            }
        };
        if !self.inner.routing.ledger.has_group(tenant, &group) {
            return Err(RequestError::NotFound(format!("group {group}")));
        }
        // A bot-first group without a bot online: straight to its people, with their group's welcome.
        let (group, welcome) = match self.inner.routing.ledger.unstaffed_handover(tenant, &group) {
            Some(handover) => (handover, None),
            None => (group, welcome),
        };
        let offline = !self.is_group_open(tenant, &group);
        if let Some(existing) = self.waiting(tenant, visitor, &group, offline) {
            return self.existing(existing).await;
        }
        // An entry point's welcome replaces the group's; a message left gets none.
        let welcome = match offline {
            true => None,
            false => welcome.or_else(|| self.inner.routing.ledger.welcome(tenant, &group)),
        };
        let answers = fields.clone();
        let new = NewConversation {
            id: ConversationId::generate(),
            tenant: tenant.clone(),
            visitor: visitor.clone(),
            group,
            client_id,
            entry,
            fields,
            at: self.inner.clock.now(),
        };
        let opening = Opening {
            new,
            offline,
            welcome,
        };
        let committed = self.commit(Command::Create(opening)).await?;
        if committed.duplicate {
            return self.existing(committed.conversation).await;
        }
        self.keep_prechat_answers(tenant, visitor, &answers).await;
        let conversation = self
            .inner
            .routing
            .ledger
            .open_conversation(&committed.conversation.id)
            .unwrap_or(committed.conversation);
        Ok(Opened {
            conversation,
            created: true,
        })
    }

    /// A conversation of the visitor already open in `group` (live, or outside hours a message left), which
    /// answers an `open` instead of a new one.
    pub(super) fn waiting(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        group: &GroupId,
        offline: bool,
    ) -> Option<Conversation> {
        let ledger = &self.inner.routing.ledger;
        ledger.open_of_visitor(tenant, visitor, group, false).or_else(|| {
            offline
                .then(|| ledger.open_of_visitor(tenant, visitor, group, true))
                .flatten()
        })
    }

    /// The answer to an `open` that found a conversation already there: its stored record (copies held in memory
    /// are not updated per message).
    pub(super) async fn existing(&self, conversation: Conversation) -> Result<Opened, RequestError> {
        let conversation = self
            .inner
            .log
            .conversation(conversation.id)
            .await?
            .unwrap_or(conversation);
        Ok(Opened {
            conversation,
            created: false,
        })
    }

    /// Sends a message. Returns once it is durably stored; a repeated client id returns the original seq.
    pub async fn send(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: ClientId,
        body: MessageBody,
    ) -> Result<Ack, RequestError> {
        let limit = self.inner.limits.max_text_bytes;
        if body.size() > limit {
            return Err(RequestError::TooLarge {
                size: body.size(),
                limit,
            });
        }
        if let Some(ack) = self
            .participant_or_stored(identity, conversation, &client_id)
            .await?
        {
            return Ok(ack);
        }
        let author = identity.principal.actor();
        let draft = EventDraft::message(
            conversation,
            author.clone(),
            Some(client_id.clone()),
            body,
            self.inner.clock.now(),
        );
        let appended = match self.commit(Command::append(draft.clone())).await {
            // A visitor writing to a closed conversation reopens it.
            Err(RequestError::InvalidState(_)) if matches!(identity.principal, Principal::Visitor(_)) => {
                self.reopen(conversation).await?;
                self.commit(Command::append(draft)).await?
            }
            Err(refused @ RequestError::InvalidState(_)) => {
                return self
                    .stored_send(conversation, &author, &client_id)
                    .await?
                    .ok_or(refused);
            }
            other => other?,
        };
        Ok(Ack {
            seq: appended.event.seq,
            duplicate: appended.duplicate,
        })
    }

    /// Checks that `identity` takes part in `conversation` before a request of its own is committed. When it no
    /// longer does (the conversation closed or moved on: `Forbidden`, `InvalidState`), a retry of a request
    /// stored before that gets its original ack, `Some`; any other request gets the refusal.
    pub(super) async fn participant_or_stored(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: &ClientId,
    ) -> Result<Option<Ack>, RequestError> {
        let Err(refused) = self.participant(identity, conversation).await else {
            return Ok(None);
        };
        match refused {
            RequestError::Forbidden(_) | RequestError::InvalidState(_) => self
                .stored_send(conversation, &identity.principal.actor(), client_id)
                .await?
                .ok_or(refused)
                .map(Some),
            other => Err(other),
        }
    }

    /// The ack of a message `author` already stored with `client_id` in `conversation`, if there is one.
    pub(super) async fn stored_send(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Ack>, RequestError> {
        let stored = self
            .inner
            .log
            .event_by_client_id(conversation, author, client_id)
            .await?;
        Ok(stored.map(|event| Ack {
            seq: event.seq,
            duplicate: true,
        }))
    }

    /// Reopens a closed conversation (the reaction to `reopened` routes it). A concurrent reopen is not an
    /// error.
    pub(super) async fn reopen(&self, conversation: ConversationId) -> Result<(), RequestError> {
        let draft = EventDraft::system(conversation, EventKind::Reopened, self.inner.clock.now());
        match self.commit(Command::append(draft)).await {
            Ok(_) | Err(RequestError::InvalidState(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Closes a conversation (its visitor or its assigned agent). Returns the seq of the `closed` event.
    /// Idempotent: closing a closed conversation answers with its current last seq.
    pub async fn close(
        &self,
        identity: &Identity,
        conversation: ConversationId,
    ) -> Result<Seq, RequestError> {
        let record = self.readable(identity, conversation).await?;
        if !record.state.is_open() {
            return Ok(record.last_seq);
        }
        if let Principal::Agent(agent) = &identity.principal
            && record.state.agent() != Some(agent)
        {
            return Err(RequestError::Forbidden(format!(
                "conversation {conversation} is not assigned to you"
            )));
        }
        let now = self.inner.clock.now();
        let mut drafts = Vec::with_capacity(2);
        if matches!(identity.principal, Principal::Visitor(_))
            && record.state == ConversationState::Queued
            && record.last_agent.is_none()
        {
            // A visitor leaving before anyone took it: missed. Logged with the close, in one batch, and before
            // it, so the `closed` event stays the log's last (a repeated close answers its seq).
            let missed = EventKind::Missed {
                reason: MissedReason::Unanswered,
            };
            drafts.push(EventDraft::system(conversation, missed, now));
        }
        let author = identity.principal.actor();
        drafts.push(EventDraft::new(conversation, author, EventKind::Closed, now));
        match self.commit(Command::Batch(drafts)).await {
            Ok(appended) => Ok(appended.event.seq),
            Err(RequestError::InvalidState(refused)) => {
                // Closed by someone else since we looked: that is the outcome asked for.
                match self.inner.log.conversation(conversation).await? {
                    Some(now) if !now.state.is_open() => Ok(now.last_seq),
                    _ => Err(RequestError::InvalidState(refused)),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Relays a typing signal to the conversation's other subscribers (ephemeral: never stored, may be dropped).
    pub(super) async fn typing(
        &self,
        identity: &Identity,
        except_conn: u64,
        conversation: ConversationId,
        active: bool,
    ) -> Result<(), RequestError> {
        let record = self.participant(identity, conversation).await?;
        if !record.state.is_open() {
            return Err(TransitionError {
                state: record.state.name(),
                event: "typing",
            }
            .into());
        }
        let frame = ServerFrame::Typing {
            conversation,
            from: identity.principal.actor(),
            active,
        }
        .encode();
        self.inner.delivery.relay(conversation, except_conn, &frame);
        Ok(())
    }

    /// Relays a read receipt to the conversation's other subscribers (ephemeral, like typing).
    pub(super) async fn read(
        &self,
        identity: &Identity,
        except_conn: u64,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<(), RequestError> {
        let record = self.readable(identity, conversation).await?;
        if seq == Seq::ZERO {
            return Err(RequestError::Invalid("`seq` must be at least 1".into()));
        }
        self.within_log(&record, seq).await?;
        if let Principal::Agent(agent) = &identity.principal
            && record.state.agent() != Some(agent)
            && record.last_agent.as_ref() != Some(agent)
        {
            return Err(RequestError::Forbidden(format!(
                "conversation {conversation} is not assigned to you"
            )));
        }
        let frame = ServerFrame::Read {
            conversation,
            from: identity.principal.actor(),
            seq,
        }
        .encode();
        self.inner.delivery.relay(conversation, except_conn, &frame);
        self.note_seen(SeenMark::new(conversation, identity.principal.actor(), seq));
        Ok(())
    }
}
