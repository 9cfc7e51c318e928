//! What clients send: request frames, their envelope, and the two-step decoder with precise errors.

use serde::{Deserialize, Serialize};

use crate::context::ContextReport;
use crate::limits::MAX_REQUEST_ID_LEN;
use crate::model::Epoch;
use crate::model::{AgentId, AgentStatus, ClientId, ConversationId, EntryPointId, GroupId, MessageBody, Seq};

use super::{ErrorCode, ServerFrame};

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
