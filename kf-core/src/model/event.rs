//! The events of a conversation's log: who did what.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labels::{AttributeObject, AttributeValue};

use super::{
    AgentId, AttachmentId, ClientId, ConversationId, EntryPointId, GroupId, Seq, Timestamp, VisitorId,
};

/// Who did something: a visitor, an agent, or the system itself (routing, timers).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "role", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A website visitor.
    Visitor(VisitorId),
    /// A support agent.
    Agent(AgentId),
    /// kf itself.
    System,
}

impl Actor {
    /// A short stable name of the actor's role, used as a storage key.
    pub fn role(&self) -> &'static str {
        match self {
            Actor::Visitor(_) => "visitor",
            Actor::Agent(_) => "agent",
            Actor::System => "system",
        }
    }

    /// The id of the visitor or agent; empty for the system.
    pub fn id_str(&self) -> &str {
        match self {
            Actor::Visitor(id) => id.as_str(),
            Actor::Agent(id) => id.as_str(),
            Actor::System => "",
        }
    }
}

/// The content of a chat message: text, attachments, or both. Fields added later are optional, so existing
/// clients and stored rows stay valid.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageBody {
    /// The message text (UTF-8); may be empty when the message carries attachments.
    pub text: String,
    /// Files sent with the message, described as the server recorded them at upload (never as a client claims).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl MessageBody {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            attachments: Vec::new(),
        }
    }

    /// The same body with attachments.
    pub fn with_attachments(mut self, attachments: Vec<Attachment>) -> Self {
        self.attachments = attachments;
        self
    }

    /// Size of the body's text in bytes, as counted against the message size limit (attachments have limits
    /// of their own, [`crate::limits::Limits::attachments`]).
    pub fn size(&self) -> usize {
        self.text.len()
    }

    /// The text, when the body is nothing but its text: then a store may keep the text alone and rebuild the
    /// body with [`MessageBody::text`]. A body with attachments gives `None`.
    pub fn as_text_only(&self) -> Option<&str> {
        let Self { text, attachments } = self;
        attachments.is_empty().then_some(text.as_str())
    }
}

/// A file sent with a message: what the server found at upload. Its bytes are in the host's blob store, read
/// through a signed download link (`docs/protocol.md`, "Attachments").
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attachment {
    /// The upload's id.
    pub id: AttachmentId,
    /// The file name the sender gave (cleaned of paths and control characters).
    pub name: String,
    /// The media type sniffed from the bytes (never the one the sender declared).
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// An image's width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// An image's height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Whether a thumbnail (PNG, at most 320 pixels a side) was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub thumbnail: bool,
}

impl Attachment {
    /// An attachment of a file that is not an image.
    pub fn new(
        id: AttachmentId,
        name: impl Into<String>,
        content_type: impl Into<String>,
        size: u64,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            content_type: content_type.into(),
            size,
            width: None,
            height: None,
            thumbnail: false,
        }
    }

    /// The same attachment with an image's dimensions and whether it has a thumbnail.
    pub fn with_image(mut self, width: u32, height: u32, thumbnail: bool) -> Self {
        self.width = Some(width);
        self.height = Some(height);
        self.thumbnail = thumbnail;
        self
    }

    /// Whether the sniffed type is an image.
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

/// What happened in a conversation. Every kind is an entry in the conversation's log and gets a [`Seq`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The conversation was opened by a visitor for a group. Always seq 1.
    Created {
        /// The group the conversation was opened for.
        group: GroupId,
        /// The entry point the visitor came through, if any (absent in logs written before entry points).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry: Option<EntryPointId>,
        /// The visitor's answers to the entry point's pre-chat form, by field name (absent: none).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fields: BTreeMap<String, String>,
    },
    /// A chat message.
    Message {
        /// Its content.
        body: MessageBody,
    },
    /// The conversation was assigned to an agent.
    Assigned {
        /// The agent who now owns the conversation.
        agent: AgentId,
    },
    /// The conversation was closed.
    Closed,
    /// A closed conversation was opened again and waits for an agent.
    Reopened,
    /// The conversation was handed on: to another agent, to another group's queue, or back to the queue.
    Transferred {
        /// The agent who owned it before, if it was assigned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<AgentId>,
        /// The new owner; absent when the conversation went (back) to a queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<AgentId>,
        /// The group the conversation belongs to from now on.
        group: GroupId,
        /// A note for the next agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// A hand-over: a bot passed the conversation to people (`docs/bots.md`). Absent (false) for a transfer
        /// between agents or by a timer.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        handover: bool,
    },
    /// The conversation was not routed — opened outside its group's working hours, or nobody took it within the
    /// group's max wait — and waits as an offline message (the visitor may still write) until an agent takes it
    /// (`assigned`) or it is closed.
    Offline,
    /// The conversation was missed: recorded for the group's agents (it changes nothing else).
    Missed {
        /// Why.
        reason: MissedReason,
    },
    /// The visitor rated the closed conversation (customer satisfaction): once per conversation.
    Rated {
        /// From 1 (bad) to 5 (excellent).
        score: u8,
        /// What the visitor wrote with it, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// A private note an agent wrote: for agents only, never sent to a visitor (see [`Event::for_visitors`]).
    Note {
        /// The note.
        text: String,
        /// The agents of the tenant it mentions (`@alice`), who are notified.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<AgentId>,
    },
    /// An agent put one of the tenant's labels on the conversation: for agents only (see
    /// [`Event::for_visitors`]).
    Labeled {
        /// The label's name.
        label: String,
    },
    /// An agent took a label off the conversation: for agents only.
    Unlabeled {
        /// The label's name.
        label: String,
    },
    /// An attribute of the conversation, or of its visitor, was set or removed: for agents only. A visitor's
    /// attribute is kept on the visitor's record; the event records the change where it was made.
    AttributeSet {
        /// What the attribute is kept on.
        object: AttributeObject,
        /// The key.
        key: String,
        /// The new value; absent when the attribute was removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<AttributeValue>,
    },
    /// The agent parked the assigned conversation (`on_hold`) until `until` or the visitor's next message.
    Snoozed {
        /// When it wakes by itself (ms since the epoch); absent: at the visitor's next message only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
    /// A conversation on hold woke: it is queued, and goes back to the agent who parked it when that agent can
    /// take it (an `assigned` follows).
    Woken {
        /// What woke it.
        reason: WakeReason,
    },
    /// What a visitor receives in place of an event for agents only (a note): its seq, without its content, so
    /// that the visitor's log stays gapless. Never stored: [`Conversation::check`](super::Conversation::check)
    /// refuses it.
    Hidden,
}

/// What woke a conversation on hold.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WakeReason {
    /// Its time came.
    Timer,
    /// The visitor wrote.
    Visitor,
    /// The agent took it back early (`wake`).
    Agent,
}

/// Why a conversation counts as missed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MissedReason {
    /// It waited in a queue past the group's `missed_after_ms`.
    Waited,
    /// The visitor closed it while it was still waiting for an agent.
    Unanswered,
}

impl EventKind {
    /// The stable snake_case name of the kind (the `type` field on the wire).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Created { .. } => "created",
            EventKind::Message { .. } => "message",
            EventKind::Assigned { .. } => "assigned",
            EventKind::Closed => "closed",
            EventKind::Reopened => "reopened",
            EventKind::Transferred { .. } => "transferred",
            EventKind::Missed { .. } => "missed",
            EventKind::Offline => "offline",
            EventKind::Rated { .. } => "rated",
            EventKind::Note { .. } => "note",
            EventKind::Hidden => "hidden",
            EventKind::Snoozed { .. } => "snoozed",
            EventKind::Woken { .. } => "woken",
            EventKind::Labeled { .. } => "labeled",
            EventKind::Unlabeled { .. } => "unlabeled",
            EventKind::AttributeSet { .. } => "attribute_set",
        }
    }
}

/// One committed entry of a conversation's log. The engine and the stores produce events; a store backend
/// rebuilds them with [`Event::new`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The conversation this event belongs to.
    pub conversation: ConversationId,
    /// Its position in the conversation's log.
    pub seq: Seq,
    /// When it was committed (server clock).
    pub at: Timestamp,
    /// Who caused it.
    pub author: Actor,
    /// The idempotency key the author sent with it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// What happened.
    pub data: EventKind,
}

impl Event {
    /// An event as committed: `seq` in `conversation`'s log at `at`, by `author` (with the idempotency key it
    /// sent, if any).
    ///
    /// ```
    /// use kf_core::model::{Actor, ConversationId, Event, EventKind, MessageBody, Seq, Timestamp, VisitorId};
    ///
    /// let author = Actor::Visitor(VisitorId::new("v1").unwrap());
    /// let data = EventKind::Message { body: MessageBody::text("hi") };
    /// let event = Event::new(ConversationId::generate(), Seq(2), Timestamp(1), author, None, data);
    /// assert_eq!(event.data.name(), "message");
    /// ```
    pub fn new(
        conversation: ConversationId,
        seq: Seq,
        at: Timestamp,
        author: Actor,
        client_id: Option<ClientId>,
        data: EventKind,
    ) -> Self {
        Self {
            conversation,
            seq,
            at,
            author,
            client_id,
            data,
        }
    }

    /// The event as a visitor may see it, when that differs: a transfer's `note` is for agents only, and a
    /// private note, a label and an attribute change are each replaced whole by a [`EventKind::Hidden`] placeholder (by the system, without client id)
    /// that keeps its seq and time, so a visitor's log is still gapless and its resume cursor still exact.
    pub fn for_visitors(&self) -> Option<Event> {
        match &self.data {
            EventKind::Transferred {
                from,
                agent,
                group,
                note: Some(_),
                handover,
            } => Some(Event {
                data: EventKind::Transferred {
                    from: from.clone(),
                    agent: agent.clone(),
                    group: group.clone(),
                    note: None,
                    handover: *handover,
                },
                ..self.clone()
            }),
            EventKind::Note { .. }
            | EventKind::Hidden
            | EventKind::Labeled { .. }
            | EventKind::Unlabeled { .. }
            | EventKind::AttributeSet { .. } => Some(Event {
                conversation: self.conversation,
                seq: self.seq,
                at: self.at,
                author: Actor::System,
                client_id: None,
                data: EventKind::Hidden,
            }),
            _ => None,
        }
    }
}
