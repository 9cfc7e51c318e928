//! What the server sends: reply, event and notice frames.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::context::{ConversationContext, PageView};
use crate::labels::{AttributeDefinition, AttributeValue, Label};
use crate::limits::ClientLimits;
use crate::model::Epoch;
use crate::model::{
    Actor, AgentStatus, ClientId, Conversation, ConversationId, Event, EventKind, MissedReason, SeenMark,
    Seq, TenantId, VisitorId,
};
use crate::quick_replies::QuickReply;

use super::ErrorCode;

/// A frame sent by the server.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// The answer to `hello`: the session is open.
    Welcome {
        /// Protocol version.
        v: u32,
        /// The tenant.
        tenant: TenantId,
        /// Who the connection belongs to.
        principal: Principal,
        /// The store epoch cursors belong to.
        epoch: Epoch,
        /// The limits in force that clients must respect.
        limits: ClientLimits,
    },
    /// The conversations of this principal: a visitor's conversations, or an agent's open assigned ones.
    /// Sent right after `welcome`.
    Inbox {
        /// The conversations with their state and `last_seq`.
        conversations: Vec<Conversation>,
        /// How far each participant has seen these conversations (absent when nobody has sent a `read` yet).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        seen: Vec<SeenMark>,
    },
    /// A conversation of this principal changed (for an agent: one was assigned to it).
    Conversation {
        /// The conversation as it is now.
        conversation: Conversation,
    },
    /// The answer to `open`.
    Opened {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// False when the client id (or an already open conversation) was reused.
        created: bool,
        /// The conversation.
        conversation: Conversation,
    },
    /// The answer to `subscribe`; the conversation's events follow.
    Subscribed {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The conversation.
        conversation: ConversationId,
        /// Events with seq greater than this follow (0 when the epoch did not match).
        after: Seq,
        /// True when the client's epoch was stale: it must drop what it holds and rebuild from seq 1.
        reset: bool,
        /// The conversation's last seq when the subscription started: once the client has applied it, the
        /// history is replayed and what follows is live (0 for an empty log, or when `after` already is it).
        last_seq: Seq,
        /// How far each participant has seen the conversation (absent when nobody has sent a `read` yet).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        seen: Vec<SeenMark>,
    },
    /// The answer to `unsubscribe`.
    Unsubscribed {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The conversation.
        conversation: ConversationId,
    },
    /// One committed event of a subscribed conversation.
    Event(Event),
    /// A `send` was durably stored.
    Ack {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The conversation.
        conversation: ConversationId,
        /// The client id of the send.
        client_id: ClientId,
        /// The message's seq.
        seq: Seq,
        /// True when this client id had been sent before: the original seq is returned, nothing new stored.
        duplicate: bool,
    },
    /// The answer to `close`.
    Closed {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The conversation.
        conversation: ConversationId,
        /// The seq of the `closed` event.
        seq: Seq,
    },
    /// Someone in the conversation started or stopped typing.
    Typing {
        /// The conversation.
        conversation: ConversationId,
        /// Who.
        from: Actor,
        /// Typing or not.
        active: bool,
    },
    /// Someone in the conversation has read it up to `seq`.
    Read {
        /// The conversation.
        conversation: ConversationId,
        /// Who.
        from: Actor,
        /// The last seq they have read.
        seq: Seq,
    },
    /// A stream that follows all of its principal's conversations (SSE) has started; their events follow.
    Following {
        /// True when the client's cursor was from another store epoch: drop what it holds and rebuild.
        reset: bool,
    },
    /// Liveness probe: answer with `pong`.
    Ping,
    /// Answer to the client's `ping`.
    Pong,
    /// The answer to `context` and `page`: the report was taken.
    Noted {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// Agents: offline messages (conversations left outside working hours) of the agent's groups, waiting to be
    /// taken. Sent after `inbox` when there are any, and live when a new one is left.
    OfflineMessages {
        /// The offline conversations, oldest first.
        conversations: Vec<Conversation>,
    },
    /// The answer to `take`: the offline message is now assigned to the agent.
    Taken {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The conversation as it is now.
        conversation: Conversation,
    },
    /// The answer to `visitor_context`.
    VisitorContext {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The conversation.
        conversation: ConversationId,
        /// Its visitor.
        visitor: VisitorId,
        /// The summary stored when the conversation was opened (or, when none was, taken now); null when the
        /// visitor reported nothing.
        context: Option<Box<ConversationContext>>,
        /// The visitor's most recent pages, oldest first (from memory: empty after a restart).
        trail: Vec<PageView>,
        /// The visitor's other conversations, newest first.
        past_conversations: Vec<Conversation>,
        /// The visitor's custom attributes, by key (absent: none).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        attributes: BTreeMap<String, AttributeValue>,
    },
    /// The answer to `definitions`: the tenant's labels and attribute definitions.
    Definitions {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The labels agents may put on conversations, by name.
        labels: Vec<Label>,
        /// The declared attributes, the visitor's first, then by key.
        attributes: Vec<AttributeDefinition>,
    },
    /// The answer to `quick_replies`.
    QuickReplies {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The agent's own quick replies, then its groups', each ordered by shortcut.
        quick_replies: Vec<QuickReply>,
    },
    /// The answer to `put_quick_reply`.
    QuickReply {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The quick reply as stored.
        quick_reply: QuickReply,
    },
    /// The answer to `delete_quick_reply`.
    QuickReplyDeleted {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The deleted quick reply.
        reply_id: String,
    },
    /// The answer to `claim`: the conversation is now assigned to the claiming agent.
    Claimed {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The conversation as it is now.
        conversation: Conversation,
    },
    /// The answer to `transfer`.
    Transferred {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The conversation.
        conversation: ConversationId,
        /// The seq of the `transferred` event.
        seq: Seq,
    },
    /// The answer to `status`.
    Status {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The status now in force.
        status: AgentStatus,
        /// Its label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Agent: the queued conversations of its groups. Answers `queue`, and is pushed (without `id`) whenever the
    /// queue of one of its groups changes.
    Queue {
        /// The request id (absent when pushed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Group by group (by id), each in queue order.
        conversations: Vec<QueueEntry>,
    },
    /// Visitor: where its queued conversation stands (ephemeral; sent when it changes).
    Position {
        /// The conversation.
        conversation: ConversationId,
        /// 1 for the head of the queue.
        position: u32,
        /// The estimated wait from the group's recent pace; absent while there is no pace to go by.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimated_wait_ms: Option<u64>,
    },
    /// Agents of the group: a conversation was missed (waited too long, or left unanswered). A reminder;
    /// ephemeral. The same fact is in the conversation's log as a `missed` event.
    Missed {
        /// The conversation as it is now.
        conversation: Conversation,
        /// Why it counts as missed.
        reason: MissedReason,
    },
    /// Agent: a colleague mentioned it in a private note (ephemeral; the note is in the conversation's log).
    Mentioned {
        /// The conversation as it is now.
        conversation: Conversation,
        /// The note's seq.
        seq: Seq,
        /// Who wrote the note.
        author: Actor,
        /// The note's text.
        text: String,
    },
    /// A request failed, or the connection is about to close.
    Error {
        /// The id of the failed request, if it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation (not stable).
        message: String,
    },
}

impl ServerFrame {
    /// Serializes the frame to its JSON text.
    pub fn encode(&self) -> Bytes {
        encode_json(self)
    }

    /// The `event` frame of `event`, the same text as `ServerFrame::Event(event.clone()).encode()` without the
    /// copy: the frame every subscriber of a conversation gets for every committed event.
    pub fn encode_event(event: &Event) -> Bytes {
        /// `ServerFrame`'s `event` variant, borrowing.
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum EventFrame<'a> {
            Event(&'a Event),
        }
        // Sized for the frame's fields and a message's text, so the buffer is not grown while it is written.
        let text = match &event.data {
            EventKind::Message { body } => body.text.len(),
            _ => 0,
        };
        let mut json = Vec::with_capacity(EVENT_FRAME_FIELDS + text + text / 8);
        match serde_json::to_writer(&mut json, &EventFrame::Event(event)) {
            Ok(()) => Bytes::from(json),
            Err(_) => encode_json(&EventFrame::Event(event)),
        }
    }

    /// An error frame.
    pub fn error(id: Option<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            id,
            code,
            message: message.into(),
        }
    }
}

/// About the bytes of an `event` frame besides a message's text: type, conversation, seq, time, author, client id.
const EVENT_FRAME_FIELDS: usize = 256;

fn encode_json(frame: &impl Serialize) -> Bytes {
    match serde_json::to_vec(frame) {
        Ok(json) => Bytes::from(json),
        // Every field is a plain string, number, bool or map with string keys: this cannot fail.
        Err(error) => Bytes::from(format!(
            "{{\"type\":\"error\",\"code\":\"internal\",\"message\":\"encoding failed: {error}\"}}"
        )),
    }
}

/// One queued conversation in an agent's `queue` frame.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueueEntry {
    /// The conversation.
    pub conversation: Conversation,
    /// Its position in its group's queue (1 is next).
    pub position: u32,
    /// The estimated wait from the group's recent pace, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_ms: Option<u64>,
}
