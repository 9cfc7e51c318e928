//! The wire protocol shared by every transport: JSON frames, one per WebSocket text message (or SSE event / HTTP
//! body). `docs/protocol.md` is the client author's reference; this module is its source of truth.
//!
//! Every frame is an object with a `type`. Client requests may carry an `id` (a string of at most 64 bytes)
//! that the server echoes in the reply or error, so a client can match them.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::context::{ContextReport, ConversationContext, PageView};
use crate::limits::{ClientLimits, MAX_REQUEST_ID_LEN};
use crate::model::Epoch;
use crate::model::{
    Actor, AgentId, AgentStatus, ClientId, Conversation, ConversationId, EntryPointId, Event, GroupId,
    MessageBody, MissedReason, Seq, TenantId, VisitorId,
};
use crate::quick_replies::QuickReply;

/// The protocol version this crate speaks (`v` in `hello` and `welcome`).
pub const PROTOCOL_VERSION: u32 = 1;

/// A frame sent by a client.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientFrame {
    /// The first frame of a connection: protocol version and credentials.
    Hello {
        /// Protocol version the client speaks.
        v: u32,
        /// A visitor or agent token.
        token: String,
    },
    /// Visitor: open a conversation (or get the one already opened with this client id).
    Open {
        /// Idempotency key.
        client_id: ClientId,
        /// The group to talk to; when absent, the entry point's group (see `entry`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupId>,
        /// The entry point (widget, channel) the visitor came through; when absent too, the entry point whose
        /// page rule matches the visitor's current page, else the engine's default group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry: Option<EntryPointId>,
    },
    /// Receive a conversation's events with seq greater than `after`, then its live events.
    Subscribe {
        /// The conversation.
        conversation: ConversationId,
        /// The last seq the client has applied (0 for everything).
        #[serde(default)]
        after: Seq,
        /// The epoch the cursor came from; when it is not the server's, the server replays from 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<Epoch>,
    },
    /// Stop receiving a conversation's events.
    Unsubscribe {
        /// The conversation.
        conversation: ConversationId,
    },
    /// Send a message. Acknowledged with `ack` once it is durably stored.
    Send {
        /// The conversation.
        conversation: ConversationId,
        /// Idempotency key: resending the same id never stores a second message.
        client_id: ClientId,
        /// The message.
        body: MessageBody,
    },
    /// The sender started or stopped typing (ephemeral, relayed to the other participants).
    Typing {
        /// The conversation.
        conversation: ConversationId,
        /// Typing now or not.
        active: bool,
    },
    /// Close a conversation.
    Close {
        /// The conversation.
        conversation: ConversationId,
    },
    /// The sender has read the conversation up to `seq` (ephemeral, relayed to the other participants).
    Read {
        /// The conversation.
        conversation: ConversationId,
        /// The last seq the sender has shown to its user.
        seq: Seq,
    },
    /// Liveness probe; the server answers `pong`.
    Ping,
    /// Answer to the server's `ping`.
    Pong,
    /// Visitor: what the page knows about the visit (source, user agent…). Kept in memory; answered `noted`.
    Context {
        /// The report.
        #[serde(flatten)]
        report: ContextReport,
    },
    /// Visitor: a page view, as the visitor browses. Kept in memory (bounded); answered `noted`.
    Page {
        /// The page's absolute http(s) URL.
        url: String,
        /// Its title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// Agent: the visitor context of a conversation it may read; answered `visitor_context`.
    VisitorContext {
        /// The conversation.
        conversation: ConversationId,
    },
    /// Agent: take an offline message of one of its groups; answered `taken`.
    Take {
        /// The offline conversation.
        conversation: ConversationId,
    },
    /// Agent: its quick replies (its own and its groups'); answered `quick_replies`.
    QuickReplies,
    /// Agent: create or change one of its own quick replies; answered `quick_reply`.
    PutQuickReply {
        /// The quick reply to change; a new one gets an id from the server when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_id: Option<String>,
        /// Its shortcut (a-z, 0-9, `-`, `_`; unique among the agent's own).
        shortcut: String,
        /// Its text.
        text: String,
    },
    /// Agent: delete one of its own quick replies; answered `quick_reply_deleted`.
    DeleteQuickReply {
        /// The quick reply.
        reply_id: String,
    },
    /// Agent: take a queued conversation of one of its groups. Of concurrent claims exactly one wins.
    Claim {
        /// The conversation.
        conversation: ConversationId,
    },
    /// Agent: hand an assigned conversation on — to `agent`, to `group`'s queue, or (neither) back to the queue.
    Transfer {
        /// The conversation.
        conversation: ConversationId,
        /// The agent to hand it to (online, accepting, with capacity), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<AgentId>,
        /// The group it belongs to from now on (default: its group).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupId>,
        /// A note for the next agent, recorded in the log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Agent: set its status; only `online` takes new conversations.
    Status {
        /// The status.
        status: AgentStatus,
        /// Free text shown next to the status (for `custom`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Agent: list the queued conversations of its groups.
    Queue,
}

impl ClientFrame {
    /// The frame's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            ClientFrame::Hello { .. } => "hello",
            ClientFrame::Open { .. } => "open",
            ClientFrame::Subscribe { .. } => "subscribe",
            ClientFrame::Unsubscribe { .. } => "unsubscribe",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Close { .. } => "close",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Ping => "ping",
            ClientFrame::Pong => "pong",
            ClientFrame::Context { .. } => "context",
            ClientFrame::Page { .. } => "page",
            ClientFrame::VisitorContext { .. } => "visitor_context",
            ClientFrame::Take { .. } => "take",
            ClientFrame::QuickReplies => "quick_replies",
            ClientFrame::PutQuickReply { .. } => "put_quick_reply",
            ClientFrame::DeleteQuickReply { .. } => "delete_quick_reply",
            ClientFrame::Claim { .. } => "claim",
            ClientFrame::Transfer { .. } => "transfer",
            ClientFrame::Status { .. } => "status",
            ClientFrame::Queue => "queue",
        }
    }
}

/// Every `type` a client may send, for error messages.
pub(crate) const CLIENT_FRAME_TYPES: &str = "hello, open, subscribe, unsubscribe, send, typing, read, close, ping, pong, \
context, page, visitor_context, take, quick_replies, put_quick_reply, delete_quick_reply, claim, transfer, status, \
queue";

/// A decoded client frame with its optional request id.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Request {
    /// The request id to echo, if the client sent one.
    pub id: Option<String>,
    /// The frame.
    pub frame: ClientFrame,
}

/// Why a client frame could not be decoded: the error frame to answer with.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
#[non_exhaustive]
pub struct DecodeError {
    /// The request id, when it could be read.
    pub id: Option<String>,
    /// `bad_json`, `unknown_type` or `invalid_frame`.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

impl DecodeError {
    /// The `error` frame that answers this failure.
    pub fn to_frame(&self) -> ServerFrame {
        ServerFrame::Error {
            id: self.id.clone(),
            code: self.code,
            message: self.message.clone(),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// Decodes one client frame from JSON text.
///
/// Decoding happens in two steps so that errors are precise: first the envelope (`type` and `id`), then the
/// frame's own fields. Unknown extra fields are ignored (newer clients stay compatible).
pub fn decode(text: &str) -> Result<Request, DecodeError> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|error| DecodeError {
        id: None,
        code: ErrorCode::BadJson,
        message: format!("not a JSON object: {error}"),
    })?;
    let id = match envelope.id {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(id)) if id.len() <= MAX_REQUEST_ID_LEN => Some(id),
        Some(_) => {
            return Err(DecodeError {
                id: None,
                code: ErrorCode::InvalidFrame,
                message: format!("`id` must be a string of at most {MAX_REQUEST_ID_LEN} bytes"),
            });
        }
    };
    let Some(kind) = envelope.kind else {
        return Err(DecodeError {
            id,
            code: ErrorCode::InvalidFrame,
            message: "missing field `type`".into(),
        });
    };
    if !CLIENT_FRAME_TYPES.split(", ").any(|known| known == kind) {
        return Err(DecodeError {
            id,
            code: ErrorCode::UnknownType,
            message: format!("unknown frame type `{kind}`; expected one of: {CLIENT_FRAME_TYPES}"),
        });
    }
    match serde_json::from_str::<ClientFrame>(text) {
        // JSON the parser refuses as such (nested deeper than it goes) is not a frame at all, wherever it sits.
        Err(error) if !error.is_data() => Err(DecodeError {
            id,
            code: ErrorCode::BadJson,
            message: format!("not a JSON object the server can read: {error}"),
        }),
        Ok(ClientFrame::Subscribe { after: seq, .. } | ClientFrame::Read { seq, .. })
            if seq.0 > crate::limits::MAX_SEQ =>
        {
            Err(DecodeError {
                id,
                code: ErrorCode::InvalidFrame,
                message: format!("invalid `{kind}` frame: seq {} is above 2^53 - 1", seq.0),
            })
        }
        Ok(frame) => Ok(Request { id, frame }),
        Err(error) => Err(DecodeError {
            id,
            code: ErrorCode::InvalidFrame,
            message: format!("invalid `{kind}` frame: {error}"),
        }),
    }
}

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
        match serde_json::to_vec(self) {
            Ok(json) => Bytes::from(json),
            // Every field is a plain string, number, bool or map with string keys: this cannot fail.
            Err(error) => Bytes::from(format!(
                "{{\"type\":\"error\",\"code\":\"internal\",\"message\":\"encoding failed: {error}\"}}"
            )),
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

/// Stable error codes of `error` frames. Clients branch on these; messages are for people.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not a JSON object.
    BadJson,
    /// The frame's `type` is not one the server knows.
    UnknownType,
    /// A field is missing or has the wrong type.
    InvalidFrame,
    /// Binary frames are not part of the protocol.
    UnsupportedData,
    /// The `hello` asked for a protocol version the server does not speak.
    UnsupportedVersion,
    /// The first frame was not `hello`, or `hello` was sent twice.
    HelloRequired,
    /// The token is malformed, forged or unknown.
    InvalidToken,
    /// The token has expired.
    TokenExpired,
    /// The principal may not do this (another visitor's conversation, another tenant, not the owner…).
    Forbidden,
    /// No such conversation (or group).
    NotFound,
    /// The conversation's state does not allow this (a message to a closed conversation…).
    InvalidState,
    /// The message is larger than `max_text_bytes`.
    TooLarge,
    /// Too many requests; slow down.
    RateLimited,
    /// Too many live connections for this visitor or agent.
    TooManyConnections,
    /// The client did not read its frames fast enough and is disconnected; it should reconnect and resume.
    SlowConsumer,
    /// The store is unavailable; retry later with the same client id.
    Unavailable,
    /// A seq the client gave (`subscribe.after`, `read.seq`, a stream cursor's position) is beyond the
    /// conversation's last seq: the client's cursor does not describe this log.
    BadCursor,
    /// An unexpected server error.
    Internal,
    /// The request clashes with existing data (a quick reply shortcut already taken).
    Conflict,
    /// The agent (the claiming one, or a transfer's target) has no spare capacity, or the group is at its cap.
    AtCapacity,
    /// A transfer's target cannot take conversations now: not connected, a status other than online, or not in
    /// the group.
    AgentUnavailable,
}

impl ErrorCode {
    /// The code's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::UnsupportedData => "unsupported_data",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::Internal => "internal",
            ErrorCode::Conflict => "conflict",
            ErrorCode::AtCapacity => "at_capacity",
            ErrorCode::AgentUnavailable => "agent_unavailable",
        }
    }
}

/// Why the server ends a connection. Each transport maps it to its own signal (a WebSocket close code, an SSE
/// error event); see [`CloseReason::websocket_code`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client did not read fast enough; it should reconnect and resume.
    SlowConsumer,
    /// No `hello`, or a `hello` that failed authentication.
    Unauthenticated,
    /// Nothing received within the idle timeout.
    IdleTimeout,
    /// The server is shutting down; reconnect elsewhere or later.
    Shutdown,
    /// The client broke the protocol in a way that ends the connection (including a `hello` that is not valid).
    ProtocolError,
    /// The identity already holds [`Limits::connections_per_identity`](crate::limits::Limits::connections_per_identity) connections.
    TooManyConnections,
    /// The store could not serve the connection; reconnect after a pause and resume.
    Unavailable,
}

impl CloseReason {
    /// The WebSocket close code: 4008 slow consumer, 4001 unauthenticated, 4002 idle timeout, 4029 too many
    /// connections, 1001 shutdown, 1002 protocol error, 1013 unavailable (try again later).
    pub fn websocket_code(self) -> u16 {
        match self {
            CloseReason::SlowConsumer => 4008,
            CloseReason::Unauthenticated => 4001,
            CloseReason::IdleTimeout => 4002,
            CloseReason::TooManyConnections => 4029,
            CloseReason::Shutdown => 1001,
            CloseReason::ProtocolError => 1002,
            CloseReason::Unavailable => 1013,
        }
    }

    /// How to close a connection whose `hello` failed with `code`.
    pub fn for_rejected_hello(code: ErrorCode) -> CloseReason {
        match code {
            ErrorCode::InvalidToken | ErrorCode::TokenExpired | ErrorCode::Forbidden => {
                CloseReason::Unauthenticated
            }
            ErrorCode::TooManyConnections => CloseReason::TooManyConnections,
            ErrorCode::Unavailable | ErrorCode::Internal => CloseReason::Unavailable,
            _ => CloseReason::ProtocolError,
        }
    }

    /// A short text for the close frame.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::Unauthenticated => "unauthenticated",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::Shutdown => "server shutdown",
            CloseReason::ProtocolError => "protocol error",
            CloseReason::TooManyConnections => "too many connections",
            CloseReason::Unavailable => "try again later",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_frames_with_ids() {
        let request = decode(r#"{"type":"send","id":"r1","conversation":"0190a5b0-0000-7000-8000-000000000000","client_id":"c1","body":{"text":"hi"}}"#)
            .expect("valid");
        assert_eq!(request.id.as_deref(), Some("r1"));
        assert!(matches!(request.frame, ClientFrame::Send { .. }));
        let ping = decode(r#"{"type":"ping","extra":1}"#).expect("unknown fields are ignored");
        assert_eq!(ping.frame, ClientFrame::Ping);
    }

    #[test]
    fn decodes_the_context_and_quick_reply_frames() {
        let context = decode(r#"{"type":"context","id":"c1","referrer":"https://a.example/","utm":{"source":"news"},"user_agent":"UA"}"#)
            .expect("valid");
        let ClientFrame::Context { report } = context.frame else {
            panic!("not context: {context:?}");
        };
        assert_eq!(report.referrer.as_deref(), Some("https://a.example/"));
        assert_eq!(report.utm.source.as_deref(), Some("news"));
        assert_eq!(report.user_agent.as_deref(), Some("UA"));
        let empty = decode(r#"{"type":"context"}"#).expect("every field is optional");
        assert_eq!(empty.frame.name(), "context");
        let page = decode(r#"{"type":"page","url":"https://a.example/x","title":"X"}"#).expect("valid");
        assert_eq!(page.frame.name(), "page");
        assert_eq!(
            decode(r#"{"type":"page"}"#).map_err(|e| e.code),
            Err(ErrorCode::InvalidFrame)
        );
        let put = decode(r#"{"type":"put_quick_reply","shortcut":"hi","text":"Hello"}"#).expect("valid");
        assert!(matches!(
            put.frame,
            ClientFrame::PutQuickReply { reply_id: None, .. }
        ));
        for kind in ["quick_replies", "delete_quick_reply", "visitor_context", "take"] {
            let error = decode(&format!(r#"{{"type":"{kind}"}}"#));
            assert_ne!(error.map_err(|e| e.code), Err(ErrorCode::UnknownType), "{kind}");
        }
    }

    #[test]
    fn decode_errors_are_precise() {
        assert_eq!(decode("nope").map_err(|e| e.code), Err(ErrorCode::BadJson));
        assert_eq!(decode("[1,2]").map_err(|e| e.code), Err(ErrorCode::BadJson));
        assert_eq!(
            decode(r#"{"id":"x"}"#).map_err(|e| e.code),
            Err(ErrorCode::InvalidFrame)
        );
        let unknown = decode(r#"{"type":"dance","id":"r9"}"#).expect_err("unknown");
        assert_eq!(
            (unknown.code, unknown.id.as_deref()),
            (ErrorCode::UnknownType, Some("r9"))
        );
        let wrong = decode(r#"{"type":"typing","id":"r2","conversation":"0190a5b0-0000-7000-8000-000000000000","active":"yes"}"#)
            .expect_err("wrong type");
        assert_eq!(wrong.code, ErrorCode::InvalidFrame);
        assert_eq!(wrong.id.as_deref(), Some("r2"));
        assert!(wrong.message.contains("invalid type"), "{}", wrong.message);
        let long_id = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(65));
        assert_eq!(decode(&long_id).map_err(|e| e.code), Err(ErrorCode::InvalidFrame));
        let empty_client_id = decode(r#"{"type":"open","client_id":""}"#).expect_err("empty id");
        assert_eq!(empty_client_id.code, ErrorCode::InvalidFrame);
    }

    #[test]
    fn nesting_deeper_than_the_parser_goes_is_bad_json() {
        let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for text in [
            deep(200),
            format!(r#"{{"type":"ping","extra":{}}}"#, deep(200)),
            format!(
                r#"{{"type":"send","id":"r1","conversation":"0190a5b0-0000-7000-8000-000000000000","client_id":"c1","body":{{"text":"hi","x":{}}}}}"#,
                deep(200)
            ),
            format!(
                r#"{{"id":"r1","type":"open","client_id":"c1","group":{}}}"#,
                deep(200)
            ),
        ] {
            let error = decode(&text).expect_err("too deep");
            assert_eq!(
                error.code,
                ErrorCode::BadJson,
                "{}: {}",
                &text[..60.min(text.len())],
                error.message
            );
        }
        // Within the limit, a wrong type is still `invalid_frame`.
        let shallow = format!(
            r#"{{"id":"r1","type":"open","client_id":"c1","group":{}}}"#,
            deep(3)
        );
        assert_eq!(decode(&shallow).map_err(|e| e.code), Err(ErrorCode::InvalidFrame));
    }

    #[test]
    fn error_codes_serialize_as_their_names() {
        for code in [
            ErrorCode::BadJson,
            ErrorCode::SlowConsumer,
            ErrorCode::TooManyConnections,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).expect("json");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn server_frames_have_a_flat_shape() {
        let frame = ServerFrame::error(Some("r1".into()), ErrorCode::NotFound, "no such conversation");
        let json: serde_json::Value = serde_json::from_slice(&frame.encode()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"type":"error","id":"r1","code":"not_found","message":"no such conversation"})
        );
        let ping: serde_json::Value = serde_json::from_slice(&ServerFrame::Ping.encode()).expect("json");
        assert_eq!(ping, serde_json::json!({"type":"ping"}));
    }
}
