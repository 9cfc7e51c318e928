//! Every limit of kf in one place.
//!
//! - [`Limits`]: what a host tunes, handed to [`EngineBuilder::limits`](crate::EngineBuilder::limits) and read
//!   back with [`Engine::limits`](crate::Engine::limits). The engine and the transports consult it at run time.
//! - [`ClientLimits`]: the part of [`Limits`] clients must respect, announced in the `welcome` frame
//!   (`welcome.limits` in `docs/protocol.md` §12).
//! - The `const`s below: fixed bounds of the protocol and of the records' formats (identifier lengths, the
//!   validation of records a host or client builds). They are part of the wire contract or of the stored formats,
//!   so they are not tunable.

use serde::{Deserialize, Serialize};

/// Longest accepted identifier (tenant, visitor, agent, group, entry point, client id, status label), in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Longest accepted request `id` of a client frame, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// The largest seq on the wire: 2^53 − 1, the largest integer a JavaScript number holds exactly. The server
/// refuses a larger client-supplied seq with `invalid_frame`.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// Most conversations an SSE [`Cursor`](crate::cursor::Cursor) remembers a position for; the least recently
/// updated one is forgotten first.
pub const MAX_CURSOR_POSITIONS: usize = 32;

/// Shortest signing key [`SignedTokens`](crate::auth::SignedTokens) accepts, in bytes.
pub const MIN_SIGNING_KEY_LEN: usize = 32;

/// Longest URL in a visitor's `context` or `page` report, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Longest short text (page title, UTM value, language, …) in a visitor's `context` or `page` report, in bytes.
pub const MAX_CONTEXT_TEXT_BYTES: usize = 256;

/// Longest user agent in a visitor's `context` report, in bytes.
pub const MAX_USER_AGENT_BYTES: usize = 512;

/// Longest page rule of an [`EntryPoint`](crate::entry::EntryPoint), in bytes.
pub const MAX_PAGE_RULE_BYTES: usize = 512;

/// Most page rules of one [`EntryPoint`](crate::entry::EntryPoint).
pub const MAX_PAGE_RULES: usize = 20;

/// Longest welcome message of an [`EntryPoint`](crate::entry::EntryPoint), in bytes.
pub const MAX_ENTRY_WELCOME_BYTES: usize = 4096;

/// Most fields of a pre-chat form (and options of one select field).
pub const MAX_PRECHAT_FIELDS: usize = 20;

/// Longest label or option of a pre-chat field, in bytes.
pub const MAX_PRECHAT_LABEL_BYTES: usize = 256;

/// Longest answer to a pre-chat field, in bytes.
pub const MAX_PRECHAT_ANSWER_BYTES: usize = 1024;

/// Longest [`QuickReply`](crate::quick_replies::QuickReply) shortcut, in bytes.
pub const MAX_SHORTCUT_BYTES: usize = 32;

/// Longest [`QuickReply`](crate::quick_replies::QuickReply) text, in bytes.
pub const MAX_QUICK_REPLY_BYTES: usize = 4096;

/// Longest [`QuickReply`](crate::quick_replies::QuickReply) id, in bytes.
pub const MAX_QUICK_REPLY_ID_BYTES: usize = 64;

/// Most opening intervals of one day (weekday or holiday) in [`WorkingHours`](crate::hours::WorkingHours).
pub const MAX_INTERVALS_PER_DAY: usize = 8;

/// Most holidays in one [`WorkingHours`](crate::hours::WorkingHours).
pub const MAX_HOLIDAYS: usize = 1_000;

/// Longest comment of a visitor's rating (`rate`), in bytes.
pub const MAX_RATING_COMMENT_BYTES: usize = 1_000;

/// Most agents one private note (`note`) mentions.
pub const MAX_NOTE_MENTIONS: usize = 20;

/// Longest [`Label`](crate::labels::Label) name, in bytes.
pub const MAX_LABEL_NAME_BYTES: usize = 32;

/// Most labels one tenant defines.
pub const MAX_LABELS_PER_TENANT: usize = 200;

/// Most labels on one conversation.
pub const MAX_LABELS_PER_CONVERSATION: usize = 20;

/// Longest attribute key, in bytes.
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 64;

/// Longest string attribute value, in bytes.
pub const MAX_ATTRIBUTE_STRING_BYTES: usize = 1_000;

/// Most attributes on one visitor or one conversation.
pub const MAX_ATTRIBUTES_PER_OBJECT: usize = 50;

/// Most attribute definitions one tenant declares.
pub const MAX_ATTRIBUTE_DEFINITIONS: usize = 200;

/// The limits a host tunes. Start from [`Limits::default`] and change what you need with the `with_…` setters.
///
/// | Field | Default | What it bounds |
/// |---|---|---|
/// | [`max_frame_bytes`](Self::max_frame_bytes) | 65 536 | Largest frame the server reads; a larger one closes the connection (WebSocket 1009) or is refused (HTTP POST). Announced to clients. |
/// | [`max_text_bytes`](Self::max_text_bytes) | 16 384 | Largest message text; a larger `send` is refused with `too_large`. Announced to clients. |
/// | [`outbound_queue_bytes`](Self::outbound_queue_bytes) | 262 144 | Bytes queued for a client that is not reading before it is disconnected as a slow consumer (4008). Announced to clients. |
/// | [`requests_per_second`](Self::requests_per_second) | 20 | Sustained rate-limited frames per second per visitor or agent (bursts up to twice this). Announced to clients. |
/// | [`connections_per_identity`](Self::connections_per_identity) | 16 | Live connections one visitor or agent may hold at once. Announced to clients. |
/// | [`ping_interval_ms`](Self::ping_interval_ms) | 25 000 | The server pings after this much silence. Announced to clients. |
/// | [`idle_timeout_ms`](Self::idle_timeout_ms) | 60 000 | A connection silent this long is closed (4002). Announced to clients. |
/// | [`inbox_conversations`](Self::inbox_conversations) | 50 | Most conversations in a visitor's `inbox` (open ones first, then the most recent closed ones). |
/// | [`past_conversations`](Self::past_conversations) | 20 | Most past conversations of the visitor in a `visitor_context` reply. |
/// | [`offline_messages_listed`](Self::offline_messages_listed) | 100 | Most offline messages in one `offline_messages` frame (the oldest first). |
/// | [`queue_view_per_group`](Self::queue_view_per_group) | 50 | Most waiting conversations per group in a `queue` reply (the head of each queue). |
/// | [`missed_reminders_per_group`](Self::missed_reminders_per_group) | 20 | Missed conversations per group an agent is reminded of when it connects (the most recent since the engine started). |
/// | [`quick_replies_per_scope`](Self::quick_replies_per_scope) | 200 | Most quick replies per agent or group. |
/// | [`trail_pages`](Self::trail_pages) | 50 | Page views kept in memory per visitor (the most recent). |
/// | [`tracked_visitors`](Self::tracked_visitors) | 10 000 | Visitors whose context and trail are kept in memory (the least recently heard from is forgotten first). |
/// | [`attachments`](Self::attachments) | see [`AttachmentLimits`] | Uploaded files: size per file and per conversation, types, how long an unsent upload is kept. |
///
/// The fixed bounds of the protocol and the record formats are the `const`s of [this module](self).
///
/// # Example
///
/// ```
/// use kf_core::limits::Limits;
///
/// let limits = Limits::default()
///     .with_max_text_bytes(4 * 1024)
///     .with_requests_per_second(5)
///     .with_inbox_conversations(20);
/// assert_eq!(limits.max_text_bytes, 4096);
/// assert_eq!(limits.ping_interval_ms, 25_000, "the others keep their defaults");
/// // let engine = kf_core::Engine::builder(store, authenticator).limits(limits).build().await?;
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Largest frame the server reads, in bytes; a larger one closes the connection (WebSocket code 1009).
    pub max_frame_bytes: usize,
    /// Largest message text, in bytes; a larger one is refused with `too_large`.
    pub max_text_bytes: usize,
    /// Bytes the server queues for a client that is not reading before it disconnects it as a slow consumer.
    pub outbound_queue_bytes: usize,
    /// Sustained rate-limited frames (`send`, `open`, `typing`, `context`, `page`, `take`, quick reply changes,
    /// routing requests) per second per visitor or agent (bursts up to twice this).
    pub requests_per_second: u32,
    /// Live connections one visitor or agent may hold at once.
    pub connections_per_identity: usize,
    /// The server pings after this much silence, in milliseconds.
    pub ping_interval_ms: u64,
    /// A connection silent for this long is closed, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Most conversations in a visitor's `inbox`: the open ones first, then the most recent closed ones.
    pub inbox_conversations: usize,
    /// Most past conversations of the visitor listed in a `visitor_context` reply.
    pub past_conversations: usize,
    /// Most offline messages listed in one `offline_messages` frame (the oldest first).
    pub offline_messages_listed: usize,
    /// Most waiting conversations per group in a `queue` reply (the head of each queue).
    pub queue_view_per_group: usize,
    /// Missed conversations per group an agent is reminded of when it connects: the most recent ones since the
    /// engine started (the log keeps every `missed` event).
    pub missed_reminders_per_group: usize,
    /// Most quick replies per agent or per group.
    pub quick_replies_per_scope: usize,
    /// Page views kept in memory per visitor (the most recent ones).
    pub trail_pages: usize,
    /// Visitors whose context and page trail are kept in memory; when full, the visitor heard from least
    /// recently is forgotten.
    pub tracked_visitors: usize,
    /// The limits of uploaded files ([`AttachmentLimits`]).
    pub attachments: AttachmentLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_text_bytes: 16 * 1024,
            outbound_queue_bytes: 256 * 1024,
            requests_per_second: 20,
            connections_per_identity: 16,
            ping_interval_ms: 25_000,
            idle_timeout_ms: 60_000,
            inbox_conversations: 50,
            past_conversations: 20,
            offline_messages_listed: 100,
            queue_view_per_group: 50,
            missed_reminders_per_group: 20,
            quick_replies_per_scope: 200,
            trail_pages: 50,
            tracked_visitors: 10_000,
            attachments: AttachmentLimits::default(),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $setter:ident => $field:ident: $ty:ty;)*) => {
        impl Limits {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $setter(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`max_frame_bytes`](Self::max_frame_bytes).
    with_max_frame_bytes => max_frame_bytes: usize;
    /// Sets [`max_text_bytes`](Self::max_text_bytes).
    with_max_text_bytes => max_text_bytes: usize;
    /// Sets [`outbound_queue_bytes`](Self::outbound_queue_bytes).
    with_outbound_queue_bytes => outbound_queue_bytes: usize;
    /// Sets [`requests_per_second`](Self::requests_per_second).
    with_requests_per_second => requests_per_second: u32;
    /// Sets [`connections_per_identity`](Self::connections_per_identity).
    with_connections_per_identity => connections_per_identity: usize;
    /// Sets [`ping_interval_ms`](Self::ping_interval_ms).
    with_ping_interval_ms => ping_interval_ms: u64;
    /// Sets [`idle_timeout_ms`](Self::idle_timeout_ms).
    with_idle_timeout_ms => idle_timeout_ms: u64;
    /// Sets [`inbox_conversations`](Self::inbox_conversations).
    with_inbox_conversations => inbox_conversations: usize;
    /// Sets [`past_conversations`](Self::past_conversations).
    with_past_conversations => past_conversations: usize;
    /// Sets [`offline_messages_listed`](Self::offline_messages_listed).
    with_offline_messages_listed => offline_messages_listed: usize;
    /// Sets [`queue_view_per_group`](Self::queue_view_per_group).
    with_queue_view_per_group => queue_view_per_group: usize;
    /// Sets [`missed_reminders_per_group`](Self::missed_reminders_per_group).
    with_missed_reminders_per_group => missed_reminders_per_group: usize;
    /// Sets [`quick_replies_per_scope`](Self::quick_replies_per_scope).
    with_quick_replies_per_scope => quick_replies_per_scope: usize;
    /// Sets [`trail_pages`](Self::trail_pages).
    with_trail_pages => trail_pages: usize;
    /// Sets [`tracked_visitors`](Self::tracked_visitors).
    with_tracked_visitors => tracked_visitors: usize;
    /// Sets [`Limits::attachments`].
    with_attachments => attachments: AttachmentLimits;
}

impl Limits {
    /// The part of the limits clients must respect, as announced in `welcome`.
    pub fn for_clients(&self) -> ClientLimits {
        ClientLimits::from(self)
    }
}

/// The limits announced to clients in the `welcome` frame (`welcome.limits`, `docs/protocol.md` §12): the part of
/// [`Limits`] a client must respect. Built by the engine from its [`Limits`]; clients and tests read it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientLimits {
    /// See [`Limits::max_frame_bytes`].
    pub max_frame_bytes: usize,
    /// See [`Limits::max_text_bytes`].
    pub max_text_bytes: usize,
    /// See [`Limits::outbound_queue_bytes`].
    pub outbound_queue_bytes: usize,
    /// See [`Limits::requests_per_second`].
    pub requests_per_second: u32,
    /// See [`Limits::connections_per_identity`].
    pub connections_per_identity: usize,
    /// See [`Limits::ping_interval_ms`].
    pub ping_interval_ms: u64,
    /// See [`Limits::idle_timeout_ms`].
    pub idle_timeout_ms: u64,
}

impl From<&Limits> for ClientLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            max_frame_bytes: limits.max_frame_bytes,
            max_text_bytes: limits.max_text_bytes,
            outbound_queue_bytes: limits.outbound_queue_bytes,
            requests_per_second: limits.requests_per_second,
            connections_per_identity: limits.connections_per_identity,
            ping_interval_ms: limits.ping_interval_ms,
            idle_timeout_ms: limits.idle_timeout_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_welcome_limits_keep_their_wire_shape() {
        let json = serde_json::to_value(Limits::default().for_clients()).expect("encode");
        assert_eq!(
            json,
            serde_json::json!({
                "max_frame_bytes": 65536,
                "max_text_bytes": 16384,
                "outbound_queue_bytes": 262144,
                "requests_per_second": 20,
                "connections_per_identity": 16,
                "ping_interval_ms": 25000,
                "idle_timeout_ms": 60000,
            })
        );
    }

    #[test]
    fn setters_change_one_limit_each() {
        let limits = Limits::default()
            .with_queue_view_per_group(3)
            .with_tracked_visitors(7);
        assert_eq!(limits.queue_view_per_group, 3);
        assert_eq!(limits.tracked_visitors, 7);
        assert_eq!(
            Limits {
                queue_view_per_group: 50,
                tracked_visitors: 10_000,
                ..limits
            },
            Limits::default()
        );
    }
}

/// Most attachments one message carries.
pub const MAX_ATTACHMENTS_PER_MESSAGE: usize = 10;

/// Longest side of an image's thumbnail, in pixels.
pub const THUMBNAIL_MAX_SIDE: u32 = 320;

/// Longest attachment file name kept, in bytes (a longer one is cut at a character boundary).
pub const MAX_ATTACHMENT_NAME_BYTES: usize = 200;

/// The limits of uploaded files (part of [`Limits`]).
///
/// | Field | Default | What it bounds |
/// |---|---|---|
/// | [`max_file_bytes`](Self::max_file_bytes) | 10 MiB | Largest file; a larger upload is refused (`too_large`) while it streams, and nothing is stored. |
/// | [`max_conversation_bytes`](Self::max_conversation_bytes) | 50 MiB | All files uploaded to one conversation (sent or waiting to be sent). |
/// | [`allowed_types`](Self::allowed_types) | PNG, JPEG, GIF, WebP, PDF | Media types accepted, as sniffed from the bytes (`unsupported_type` otherwise). |
/// | [`pending_ttl_ms`](Self::pending_ttl_ms) | 1 hour | An upload no message carries is removed by the cleanup pass after this. |
/// | [`link_ttl_ms`](Self::link_ttl_ms) | 5 minutes | How long a signed download link works. |
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct AttachmentLimits {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes of files in one conversation.
    pub max_conversation_bytes: u64,
    /// Media types accepted (as sniffed).
    pub allowed_types: Vec<String>,
    /// How long an upload waits for a message before the cleanup pass removes it, in milliseconds.
    pub pending_ttl_ms: u64,
    /// How long a signed download link works, in milliseconds.
    pub link_ttl_ms: u64,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 * 1024 * 1024,
            max_conversation_bytes: 50 * 1024 * 1024,
            allowed_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
            ]
            .map(String::from)
            .to_vec(),
            pending_ttl_ms: 60 * 60 * 1000,
            link_ttl_ms: 5 * 60 * 1000,
        }
    }
}

impl AttachmentLimits {
    /// Sets [`AttachmentLimits::max_file_bytes`].
    #[must_use]
    pub fn with_max_file_bytes(mut self, value: u64) -> Self {
        self.max_file_bytes = value;
        self
    }

    /// Sets [`AttachmentLimits::max_conversation_bytes`].
    #[must_use]
    pub fn with_max_conversation_bytes(mut self, value: u64) -> Self {
        self.max_conversation_bytes = value;
        self
    }

    /// Sets [`AttachmentLimits::allowed_types`].
    #[must_use]
    pub fn with_allowed_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.allowed_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`AttachmentLimits::pending_ttl_ms`].
    #[must_use]
    pub fn with_pending_ttl_ms(mut self, value: u64) -> Self {
        self.pending_ttl_ms = value;
        self
    }

    /// Sets [`AttachmentLimits::link_ttl_ms`].
    #[must_use]
    pub fn with_link_ttl_ms(mut self, value: u64) -> Self {
        self.link_ttl_ms = value;
        self
    }

    /// Whether a sniffed media type is accepted.
    pub fn allows(&self, content_type: &str) -> bool {
        self.allowed_types.iter().any(|allowed| allowed == content_type)
    }
}
