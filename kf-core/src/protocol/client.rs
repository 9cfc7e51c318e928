//! What clients send: request frames, their envelope, and the two-step decoder with precise errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::context::ContextReport;
use crate::labels::{AttributeObject, AttributeValue};
use crate::limits::MAX_REQUEST_ID_LEN;
use crate::model::Epoch;
use crate::model::{
    AgentId, AgentStatus, AttachmentId, ClientId, ConversationId, EntryPointId, GroupId, MessageBody, Seq,
    Timestamp,
};

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
        /// The visitor's answers to the pre-chat form of `entry`, by field name.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fields: BTreeMap<String, String>,
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
        #[serde(deserialize_with = "super::object_only")]
        body: MessageBody,
        /// Files to send with it: ids of uploads the sender made to this conversation (`docs/protocol.md`,
        /// "Attachments"). The message carries them as the server recorded them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentId>,
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
        /// A bot hands the conversation over to people: recorded on the `transferred` event; without `agent`
        /// and `group`, the conversation goes to its group's hand-over group (`docs/bots.md`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        handover: bool,
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
    /// Visitor: rate a closed conversation of its own, once (1–5, an optional comment); answered `ack`.
    Rate {
        /// The conversation.
        conversation: ConversationId,
        /// Idempotency key: a repeat gets the original `ack`.
        client_id: ClientId,
        /// From 1 (bad) to 5 (excellent).
        score: u8,
        /// What the visitor wants to say with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// Agent: write a private note (never shown to the visitor) in a conversation assigned to it; answered
    /// `ack`.
    Note {
        /// The conversation.
        conversation: ConversationId,
        /// Idempotency key: a repeat gets the original `ack`.
        client_id: ClientId,
        /// The note.
        text: String,
        /// Agents of the tenant to notify (`mentioned`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<AgentId>,
    },
    /// Agent: the tenant's labels and attribute definitions; answered `definitions`.
    Definitions,
    /// Agent: put one of the tenant's labels on a conversation it may read; answered `ack`.
    Label {
        /// The conversation.
        conversation: ConversationId,
        /// Idempotency key: a repeat gets the original `ack`.
        client_id: ClientId,
        /// The label's name.
        label: String,
    },
    /// Agent: take a label off a conversation it may read; answered `ack`.
    Unlabel {
        /// The conversation.
        conversation: ConversationId,
        /// Idempotency key: a repeat gets the original `ack`.
        client_id: ClientId,
        /// The label's name.
        label: String,
    },
    /// Agent: set (or, without `value`, remove) a declared attribute of a conversation it may read or of that
    /// conversation's visitor; answered `ack`.
    SetAttribute {
        /// The conversation (for a visitor's attribute: the conversation it is set from).
        conversation: ConversationId,
        /// Idempotency key: a repeat gets the original `ack`.
        client_id: ClientId,
        /// What the attribute is kept on.
        object: AttributeObject,
        /// The key.
        key: String,
        /// The typed value; absent or null to remove the attribute.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<AttributeValue>,
    },
    /// Agent: put a conversation assigned to it on hold until `until` or the visitor's next message; answered
    /// `ack`.
    Snooze {
        /// The conversation.
        conversation: ConversationId,
        /// Idempotency key: a repeat gets the original `ack`.
        client_id: ClientId,
        /// When it wakes by itself (ms since the epoch); absent: at the visitor's next message only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
    /// Agent: take back a conversation it put on hold, before its time; answered `ack`.
    Wake {
        /// The conversation.
        conversation: ConversationId,
        /// Idempotency key: a repeat gets the original `ack`.
        client_id: ClientId,
    },
}

impl ClientFrame {
    /// The conversation the frame acts on, if it names one.
    pub fn conversation(&self) -> Option<ConversationId> {
        match self {
            ClientFrame::Subscribe { conversation, .. }
            | ClientFrame::Unsubscribe { conversation }
            | ClientFrame::Send { conversation, .. }
            | ClientFrame::Typing { conversation, .. }
            | ClientFrame::Close { conversation }
            | ClientFrame::Read { conversation, .. }
            | ClientFrame::VisitorContext { conversation }
            | ClientFrame::Take { conversation }
            | ClientFrame::Claim { conversation }
            | ClientFrame::Transfer { conversation, .. }
            | ClientFrame::Rate { conversation, .. }
            | ClientFrame::Note { conversation, .. }
            | ClientFrame::Label { conversation, .. }
            | ClientFrame::Unlabel { conversation, .. }
            | ClientFrame::SetAttribute { conversation, .. }
            | ClientFrame::Snooze { conversation, .. }
            | ClientFrame::Wake { conversation, .. } => Some(*conversation),
            ClientFrame::Definitions
            | ClientFrame::Hello { .. }
            | ClientFrame::Open { .. }
            | ClientFrame::Ping
            | ClientFrame::Pong
            | ClientFrame::Context { .. }
            | ClientFrame::Page { .. }
            | ClientFrame::QuickReplies
            | ClientFrame::PutQuickReply { .. }
            | ClientFrame::DeleteQuickReply { .. }
            | ClientFrame::Status { .. }
            | ClientFrame::Queue => None,
        }
    }

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
            ClientFrame::Rate { .. } => "rate",
            ClientFrame::Note { .. } => "note",
            ClientFrame::Definitions => "definitions",
            ClientFrame::Label { .. } => "label",
            ClientFrame::Unlabel { .. } => "unlabel",
            ClientFrame::SetAttribute { .. } => "set_attribute",
            ClientFrame::Snooze { .. } => "snooze",
            ClientFrame::Wake { .. } => "wake",
        }
    }
}

/// Every `type` a client may send, for error messages.
pub(crate) const CLIENT_FRAME_TYPES: &str = "hello, open, subscribe, unsubscribe, send, typing, read, close, ping, pong, \
context, page, visitor_context, take, quick_replies, put_quick_reply, delete_quick_reply, claim, transfer, status, \
queue, rate, note, definitions, label, unlabel, set_attribute, snooze, wake";

/// The same names one by one, for looking a type up (the list above is for messages; a test keeps them equal).
pub(crate) const CLIENT_FRAME_TYPE_NAMES: [&str; 29] = [
    "hello",
    "open",
    "subscribe",
    "unsubscribe",
    "send",
    "typing",
    "read",
    "close",
    "ping",
    "pong",
    "context",
    "page",
    "visitor_context",
    "take",
    "quick_replies",
    "put_quick_reply",
    "delete_quick_reply",
    "claim",
    "transfer",
    "status",
    "queue",
    "rate",
    "note",
    "definitions",
    "label",
    "unlabel",
    "set_attribute",
    "snooze",
    "wake",
];

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

/// The envelope of a body whose frame type is given apart ([`decode_body`]): a `type` in it is ignored.
#[derive(Deserialize)]
struct BodyEnvelope {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// Decodes one client frame from JSON text.
///
/// Decoding happens in two steps so that errors are precise: first the envelope (`type` and `id`), then the
/// frame's own fields. Unknown extra fields are ignored (newer clients stay compatible). `docs/protocol.md` §3
/// lists the errors: `bad_json` for text that is not a JSON object (or nests deeper than 128 levels),
/// `unknown_type`, `invalid_frame`.
pub fn decode(text: &str) -> Result<Request, DecodeError> {
    let envelope: Envelope<'_> = read_envelope(text)?;
    let id = request_id(envelope.id)?;
    let Some(kind) = envelope.kind else {
        return Err(DecodeError {
            id,
            code: ErrorCode::InvalidFrame,
            message: "missing field `type`".into(),
        });
    };
    let id = known_type(&kind, id)?;
    let frame = serde_json::from_str::<ClientFrame>(text);
    check_frame(&kind, id, frame)
}

/// Decodes a client frame whose `type` is given apart from its other fields: an HTTP request names the frame in
/// its path and sends the rest as a JSON object in its body (`POST /send` with `{"conversation": …}`,
/// `docs/protocol.md` §21.3).
///
/// The same decoding and the same errors as [`decode`] of the whole frame, so that both transports answer a
/// malformed request alike: `body` must be a JSON object (`bad_json`, also when nested deeper than 128 levels),
/// `kind` a client frame type (`unknown_type`), and the fields those of that frame (`invalid_frame`, a field given
/// twice included). A `type` in the body is ignored: the path names the frame.
///
/// ```
/// use kf_core::protocol::{ClientFrame, ErrorCode, decode_body};
///
/// let request = decode_body("typing", r#"{"id": "t1", "conversation": "0190a5b0-0000-7000-8000-000000000001", "active": true}"#)?;
/// assert!(matches!(request.frame, ClientFrame::Typing { active: true, .. }));
/// assert_eq!(decode_body("dance", "{}").map_err(|e| e.code), Err(ErrorCode::UnknownType));
/// assert_eq!(decode_body("ping", "[]").map_err(|e| e.code), Err(ErrorCode::BadJson));
/// # Ok::<(), kf_core::protocol::DecodeError>(())
/// ```
pub fn decode_body(kind: &str, body: &str) -> Result<Request, DecodeError> {
    let envelope: BodyEnvelope = read_envelope(body)?;
    let id = request_id(envelope.id)?;
    let id = known_type(kind, id)?;
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let frame = ClientFrame::deserialize(typed::WithType::new(kind, &mut deserializer))
        .and_then(|frame| deserializer.end().map(|()| frame));
    check_frame(kind, id, frame)
}

/// Longest message of a [`DecodeError`], in bytes: serde's errors quote the value they refused, which may be as
/// long as the frame (a 60 KB string where a seq belongs), and a message is for people.
pub const MAX_DECODE_MESSAGE_BYTES: usize = 512;

const MAX_MESSAGE_BYTES: usize = MAX_DECODE_MESSAGE_BYTES;

/// `text` cut to at most `max` bytes (at a character boundary, `…` marking the cut).
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Reads the envelope of a frame: `bad_json` unless `text` is one JSON object.
fn read_envelope<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, DecodeError> {
    let bad_json = |message: String| DecodeError {
        id: None,
        code: ErrorCode::BadJson,
        message,
    };
    // Serde reads a struct from a JSON array too (its fields in order): only an object is a frame.
    if !text.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('{') {
        return Err(bad_json("not a JSON object".into()));
    }
    serde_json::from_str(text)
        .map_err(|error| bad_json(bounded(&format!("not a JSON object: {error}"), MAX_MESSAGE_BYTES)))
}

/// The request id of an envelope: absent (or `null`), or a string of at most [`MAX_REQUEST_ID_LEN`] bytes.
fn request_id(id: Option<serde_json::Value>) -> Result<Option<String>, DecodeError> {
    match id {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(id)) if id.len() <= MAX_REQUEST_ID_LEN => Ok(Some(id)),
        Some(_) => Err(DecodeError {
            id: None,
            code: ErrorCode::InvalidFrame,
            message: format!("`id` must be a string of at most {MAX_REQUEST_ID_LEN} bytes"),
        }),
    }
}

/// `unknown_type` unless `kind` is a client frame type.
fn known_type(kind: &str, id: Option<String>) -> Result<Option<String>, DecodeError> {
    if CLIENT_FRAME_TYPE_NAMES.contains(&kind) {
        Ok(id)
    } else {
        Err(DecodeError {
            id,
            code: ErrorCode::UnknownType,
            message: format!(
                "unknown frame type `{}`; expected one of: {CLIENT_FRAME_TYPES}",
                bounded(kind, 64)
            ),
        })
    }
}

/// The second step: the frame's own fields, read by serde, then the bounds serde does not know.
fn check_frame(
    kind: &str,
    id: Option<String>,
    frame: Result<ClientFrame, serde_json::Error>,
) -> Result<Request, DecodeError> {
    match frame {
        // JSON the parser refuses as such (nested deeper than it goes) is not a frame at all, wherever it sits.
        Err(error) if !error.is_data() => Err(DecodeError {
            id,
            code: ErrorCode::BadJson,
            message: bounded(
                &format!("not a JSON object the server can read: {error}"),
                MAX_MESSAGE_BYTES,
            ),
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
            message: bounded(&format!("invalid `{kind}` frame: {error}"), MAX_MESSAGE_BYTES),
        }),
    }
}

/// A deserializer that reads a JSON object as a frame whose `type` comes from elsewhere: it yields `type` first,
/// then the object's own fields but its `type`.
mod typed {
    use std::fmt;

    use serde::de::value::StrDeserializer;
    use serde::de::{DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};

    pub(super) struct WithType<'k, D> {
        kind: &'k str,
        inner: D,
    }

    impl<'k, D> WithType<'k, D> {
        pub(super) fn new(kind: &'k str, inner: D) -> Self {
            Self { kind, inner }
        }
    }

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for WithType<'_, D> {
        type Error = D::Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.deserialize_map(Typed {
                kind: self.kind,
                visitor,
            })
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
        }
    }

    struct Typed<'k, V> {
        kind: &'k str,
        visitor: V,
    }

    impl<'de, V: Visitor<'de>> Visitor<'de> for Typed<'_, V> {
        type Value = V::Value;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
            self.visitor.visit_map(TypedMap {
                kind: Some(self.kind),
                kind_value: None,
                map,
            })
        }
    }

    struct TypedMap<'k, A> {
        /// The `type` key, until it was yielded.
        kind: Option<&'k str>,
        /// Its value, until it was yielded.
        kind_value: Option<&'k str>,
        map: A,
    }

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for TypedMap<'_, A> {
        type Error = A::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
            if let Some(kind) = self.kind.take() {
                self.kind_value = Some(kind);
                return seed
                    .deserialize(StrDeserializer::<A::Error>::new("type"))
                    .map(Some);
            }
            while let Some(key) = self.map.next_key::<String>()? {
                if key == "type" {
                    // Skipped, but read as a value: nesting too deep is refused here too.
                    self.map.next_value::<serde_json::Value>()?;
                    continue;
                }
                return seed.deserialize(key.into_deserializer()).map(Some);
            }
            Ok(None)
        }

        fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
            match self.kind_value.take() {
                Some(kind) => seed.deserialize(StrDeserializer::<A::Error>::new(kind)),
                None => self.map.next_value_seed(seed),
            }
        }
    }
}
