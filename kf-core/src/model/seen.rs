//! Seen marks: how far each participant of a conversation has read its log.

use serde::{Deserialize, Serialize};

use super::{Actor, ConversationId, Seq};

/// How far one participant (the visitor, or an agent) has seen a conversation: every event up to `seq`.
///
/// The engine keeps the highest mark each participant reported with a `read` frame; a store keeps it durably
/// ([`ConversationLog::record_seen`](crate::store::ConversationLog::record_seen)) and never lowers it. Clients
/// get the marks in `inbox` and `subscribed`, so "seen" survives a reconnect or a reload.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SeenMark {
    /// The conversation.
    pub conversation: ConversationId,
    /// Who has seen it (a visitor or an agent, never `system`).
    pub from: Actor,
    /// The last seq they have seen.
    pub seq: Seq,
}

impl SeenMark {
    /// The mark of `from` in `conversation` at `seq`.
    pub fn new(conversation: ConversationId, from: Actor, seq: Seq) -> Self {
        Self {
            conversation,
            from,
            seq,
        }
    }
}
