//! [`History`]: searching and exporting past conversations and messages (the rules are on the trait).

use std::fmt::{self, Debug, Write as _};
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};

use super::{FeedPosition, StoreError};
use crate::model::{
    Actor, AgentId, Conversation, ConversationState, EventKind, GroupId, Seq, TenantId, Timestamp,
};

/// The most rows a page holds ([`HistoryQuery::limit`] is clamped to it).
pub const MAX_HISTORY_PAGE: usize = 500;

/// The longest text query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;

/// Rows per page read by an export ([`export`]).
pub const EXPORT_PAGE: usize = 500;

/// A conversation state to filter on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateFilter {
    /// Waiting for an agent.
    Queued,
    /// Owned by an agent.
    Assigned,
    /// Closed.
    Closed,
    /// An offline message waiting for an agent.
    Offline,
    /// Any state but closed.
    Open,
}

impl StateFilter {
    /// Whether a conversation in `state` passes.
    pub fn admits(self, state: &ConversationState) -> bool {
        match self {
            StateFilter::Open => state.is_open(),
            other => other.name() == state.name(),
        }
    }

    /// The filter's name (a [`ConversationState`] name, or `open`).
    pub fn name(self) -> &'static str {
        match self {
            StateFilter::Queued => "queued",
            StateFilter::Assigned => "assigned",
            StateFilter::Closed => "closed",
            StateFilter::Offline => "offline",
            StateFilter::Open => "open",
        }
    }
}

impl FromStr for StateFilter {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "queued" => StateFilter::Queued,
            "assigned" => StateFilter::Assigned,
            "closed" => StateFilter::Closed,
            "offline" => StateFilter::Offline,
            "open" => StateFilter::Open,
            other => return Err(StoreError::Invalid(format!("unknown state filter {other:?}"))),
        })
    }
}

/// Which way message hits are ordered (conversations are always oldest first).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryOrder {
    /// The newest message first (search).
    #[default]
    NewestFirst,
    /// The oldest message first (export).
    OldestFirst,
}

/// Where the next page starts: the feed position of the last row of the previous page. Opaque to callers;
/// its text form (`Display`/`FromStr`) travels in URLs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct HistoryCursor(pub u64);

impl fmt::Display for HistoryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

impl FromStr for HistoryCursor {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        text.strip_prefix('h')
            .and_then(|digits| digits.parse().ok())
            .map(HistoryCursor)
            .ok_or_else(|| StoreError::Invalid(format!("malformed history cursor {text:?}")))
    }
}

impl Serialize for HistoryCursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HistoryCursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How hits are marked in a [`MessageHit::snippet`].
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Highlight {
    /// Written before each hit (default `<mark>`), as it is.
    pub open: String,
    /// Written after each hit (default `</mark>`), as it is.
    pub close: String,
    /// Escape `&`, `<`, `>`, `"` and `'` of the message's text (default true), so that the snippet is safe to
    /// put into HTML.
    pub escape_html: bool,
    /// Characters of context kept before the first hit and after it (default 40); the rest is cut, marked `…`.
    pub context: usize,
}

impl Default for Highlight {
    fn default() -> Self {
        Self {
            open: "<mark>".into(),
            close: "</mark>".into(),
            escape_html: true,
            context: 40,
        }
    }
}

impl Highlight {
    /// Custom markers; the text is HTML-escaped unless [`escape_html`](Self::escape_html) is turned off.
    pub fn new(open: impl Into<String>, close: impl Into<String>) -> Self {
        Self {
            open: open.into(),
            close: close.into(),
            ..Self::default()
        }
    }

    /// The snippet of `text` for `query` (see [`find_hits`]): the text around the first hit, each hit inside
    /// the markers; without a query (or hit), the beginning of the text.
    pub fn snippet(&self, text: &str, query: Option<&str>) -> String {
        let hits = query.map(|query| find_hits(text, query)).unwrap_or_default();
        let (start, end) = match hits.first() {
            Some(&(hit_start, hit_end)) => (
                back_chars(text, hit_start, self.context),
                forward_chars(text, hit_end, self.context),
            ),
            None => (0, forward_chars(text, 0, self.context.saturating_mul(2))),
        };
        let mut out = String::with_capacity(end - start + 16);
        if start > 0 {
            out.push('…');
        }
        let mut at = start;
        for &(hit_start, hit_end) in &hits {
            if hit_start < start || hit_end > end {
                continue;
            }
            self.push_text(&mut out, &text[at..hit_start]);
            out.push_str(&self.open);
            self.push_text(&mut out, &text[hit_start..hit_end]);
            out.push_str(&self.close);
            at = hit_end;
        }
        self.push_text(&mut out, &text[at..end]);
        if end < text.len() {
            out.push('…');
        }
        out
    }

    fn push_text(&self, out: &mut String, text: &str) {
        if self.escape_html {
            escape_html(out, text);
        } else {
            out.push_str(text);
        }
    }
}

/// Appends `text` to `out` with `&`, `<`, `>`, `"` and `'` escaped as HTML entities.
pub fn escape_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The byte offset `chars` characters before `index` (or 0).
fn back_chars(text: &str, index: usize, chars: usize) -> usize {
    text[..index]
        .char_indices()
        .rev()
        .nth(chars.saturating_sub(1))
        .map_or(0, |(at, _)| if chars == 0 { index } else { at })
}

/// The byte offset `chars` characters after `index` (or the end).
fn forward_chars(text: &str, index: usize, chars: usize) -> usize {
    text[index..]
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(at, _)| index + at)
}

/// The hits of `query` in `text`: the byte ranges, left to right and not overlapping, where `text` contains
/// `query` with ASCII letters compared case-insensitively and every other character exactly. This is the match
/// rule of every [`History`] backend. An empty query has no hits.
///
/// ```
/// use kf_core::store::find_hits;
///
/// assert_eq!(find_hits("Refund please, REFUND", "refund"), vec![(0, 6), (15, 21)]);
/// assert_eq!(find_hits("请尽快发货", "发货"), vec![(9, 15)]);
/// assert!(find_hits("école", "É").is_empty());
/// ```
pub fn find_hits(text: &str, query: &str) -> Vec<(usize, usize)> {
    let (haystack, needle) = (text.as_bytes(), query.as_bytes());
    let mut hits = Vec::new();
    if needle.is_empty() || needle.len() > haystack.len() {
        return hits;
    }
    // Byte-wise comparison is character-wise here: ASCII folding leaves bytes ≥ 0x80 alone, and a needle that is
    // valid UTF-8 can only match where a character starts.
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        if haystack[at..at + needle.len()].eq_ignore_ascii_case(needle) {
            hits.push((at, at + needle.len()));
            at += needle.len();
        } else {
            at += 1;
        }
    }
    hits
}

/// Whether `text` contains `query` under the rule of [`find_hits`].
pub fn text_matches(text: &str, query: &str) -> bool {
    let (haystack, needle) = (text.as_bytes(), query.as_bytes());
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// A search or export of a tenant's history: filters, order and page. Build it with [`HistoryQuery::new`] and
/// the public fields.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct HistoryQuery {
    /// The tenant searched (always required).
    pub tenant: TenantId,
    /// Text the message contains (see [`History`] for the rule); `None` or blank: every message.
    pub text: Option<String>,
    /// Conversations the agent owns or owned last.
    pub agent: Option<AgentId>,
    /// Conversations of the group.
    pub group: Option<GroupId>,
    /// Conversations carrying the label now (its name exactly, as in [`Conversation::labels`]).
    pub label: Option<String>,
    /// Conversations in the state.
    pub state: Option<StateFilter>,
    /// Conversations rated at least this (1–5).
    pub min_rating: Option<u8>,
    /// Conversations rated at most this (1–5).
    pub max_rating: Option<u8>,
    /// Messages committed at or after this time (conversations: created at or after).
    pub from: Option<Timestamp>,
    /// Messages committed before this time (conversations: created before).
    pub until: Option<Timestamp>,
    /// Whether agents' private notes are searched too (for agents; a visitor's view never sets it).
    pub notes: bool,
    /// Order of message hits.
    pub order: HistoryOrder,
    /// Rows per page (1 to [`MAX_HISTORY_PAGE`]; 0 means 50).
    pub limit: usize,
    /// Where the page starts: the [`SearchPage::next`] of the previous page.
    pub cursor: Option<HistoryCursor>,
    /// How snippets mark hits; `None`: no snippets (exports).
    pub highlight: Option<Highlight>,
}

impl HistoryQuery {
    /// Every message of a tenant, newest first, 50 a page, notes excluded, default highlighting.
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            text: None,
            agent: None,
            group: None,
            label: None,
            state: None,
            min_rating: None,
            max_rating: None,
            from: None,
            until: None,
            notes: false,
            order: HistoryOrder::NewestFirst,
            limit: 50,
            cursor: None,
            highlight: Some(Highlight::default()),
        }
    }

    /// The same query with a text to search for.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// The text to match, trimmed; `None` when absent or blank.
    pub fn needle(&self) -> Option<&str> {
        self.text
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
    }

    /// The page size in force: `limit` clamped to 1..=[`MAX_HISTORY_PAGE`] (0 means 50).
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => 50,
            limit => limit.min(MAX_HISTORY_PAGE),
        }
    }

    /// Checks the query: the text at most [`MAX_QUERY_CHARS`] characters, ratings 1–5, `from` before `until`.
    pub fn check(&self) -> Result<(), StoreError> {
        if let Some(text) = self.needle()
            && text.chars().count() > MAX_QUERY_CHARS
        {
            return Err(StoreError::Invalid(format!(
                "a search text has at most {MAX_QUERY_CHARS} characters"
            )));
        }
        for rating in [self.min_rating, self.max_rating].into_iter().flatten() {
            if !(1..=5).contains(&rating) {
                return Err(StoreError::Invalid("a rating is from 1 to 5".into()));
            }
        }
        Ok(())
    }

    /// Whether a conversation passes the conversation filters (tenant, agent, group, label, state, rating).
    pub fn admits(&self, conversation: &Conversation) -> bool {
        conversation.tenant == self.tenant
            && self
                .label
                .as_ref()
                .is_none_or(|label| conversation.labels.contains(label))
            && self
                .agent
                .as_ref()
                .is_none_or(|agent| conversation.last_agent.as_ref() == Some(agent))
            && self
                .group
                .as_ref()
                .is_none_or(|group| &conversation.group == group)
            && self.state.is_none_or(|state| state.admits(&conversation.state))
            && self
                .min_rating
                .is_none_or(|min| conversation.rating.is_some_and(|rating| rating >= min))
            && self
                .max_rating
                .is_none_or(|max| conversation.rating.is_some_and(|rating| rating <= max))
    }

    /// Whether a time is within `from`..`until`.
    pub fn in_range(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|from| at >= from) && self.until.is_none_or(|until| at < until)
    }

    /// The searchable text of an event and whether it is a note: a message's text, a note's text when notes are
    /// searched; `None` for everything else.
    pub fn searchable<'a>(&self, kind: &'a EventKind) -> Option<(&'a str, bool)> {
        match kind {
            EventKind::Message { body } => Some((body.text.as_str(), false)),
            EventKind::Note { text, .. } if self.notes => Some((text.as_str(), true)),
            _ => None,
        }
    }
}

/// One message (or note) found, with its conversation as it is now.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[non_exhaustive]
pub struct MessageHit {
    /// The message's position in the change feed (what the cursor is made of).
    pub position: u64,
    /// Its conversation's record (id, visitor, group, state, agents, rating, times).
    pub conversation: Conversation,
    /// The message's seq in its conversation.
    pub seq: Seq,
    /// When it was committed.
    pub at: Timestamp,
    /// Who wrote it.
    pub author: Actor,
    /// True for an agent's private note (never shown to visitors).
    pub note: bool,
    /// The whole text.
    pub text: String,
    /// The text around the first hit with the hits marked ([`HistoryQuery::highlight`]); `None` when the
    /// query asked for no highlighting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

impl MessageHit {
    /// A hit as a backend found it; the snippet is made from the query's text and highlighting.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        query: &HistoryQuery,
        position: u64,
        conversation: Conversation,
        seq: Seq,
        at: Timestamp,
        author: Actor,
        note: bool,
        text: String,
    ) -> Self {
        let snippet = query
            .highlight
            .as_ref()
            .map(|highlight| highlight.snippet(&text, query.needle()));
        Self {
            position,
            conversation,
            seq,
            at,
            author,
            note,
            text,
            snippet,
        }
    }
}

/// A page of message hits.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[non_exhaustive]
pub struct SearchPage {
    /// The hits, in the query's order.
    pub hits: Vec<MessageHit>,
    /// The cursor of the next page; `None` when this page is the last (a full page always has one, and the
    /// page after it may be empty).
    pub next: Option<HistoryCursor>,
}

impl SearchPage {
    /// A page of hits read with a page size of `limit`.
    pub fn new(hits: Vec<MessageHit>, limit: usize) -> Self {
        let next = match hits.last() {
            Some(last) if hits.len() >= limit => Some(HistoryCursor(last.position)),
            _ => None,
        };
        Self { hits, next }
    }
}

/// A page of conversations, oldest first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[non_exhaustive]
pub struct ConversationPage {
    /// The conversations with the feed position of their `created` event.
    pub conversations: Vec<(u64, Conversation)>,
    /// The cursor of the next page, as in [`SearchPage::next`].
    pub next: Option<HistoryCursor>,
}

impl ConversationPage {
    /// A page of conversations (with their `created` event's position) read with a page size of `limit`.
    pub fn new(conversations: Vec<(u64, Conversation)>, limit: usize) -> Self {
        let next = match conversations.last() {
            Some((position, _)) if conversations.len() >= limit => Some(HistoryCursor(*position)),
            _ => None,
        };
        Self { conversations, next }
    }
}

/// Search and export over a store's conversation logs. Object safe; held as `Arc<dyn History>`
/// ([`EngineBuilder::history`](crate::engine::EngineBuilder::history)). Backends run the history conformance
/// suite (`history_conformance_tests!`, feature `testkit`).
///
/// Both methods read one page: callers page with the returned cursor, and [`export`] streams every page.
///
/// # What a query matches
///
/// A [`HistoryQuery`] always names its tenant; nothing of another tenant is ever returned. Its filters apply to
/// the conversation (`agent`: the agent who owns it or owned it last; `group`; `state`; `rating`, a range of
/// scores that an unrated conversation never falls into; `label`, a label the conversation carries now) and, for messages, to the message itself
/// (`from`/`until`: its commit time, from inclusive to exclusive; `text`). Only chat messages and, when
/// [`HistoryQuery::notes`] is set (agents), agents' private notes are searched — a hit on a note is flagged
/// [`MessageHit::note`]; nothing else of a log (system events, and never a `hidden` placeholder) is a hit.
///
/// **Text** matches when the message's text contains the query (trimmed of surrounding white space) as a
/// substring, with ASCII letters compared case-insensitively (`Refund` finds `refund`) and every other
/// character exactly (`发货` finds `请尽快发货`; `É` does not find `é`): [`find_hits`] is the rule, and every
/// backend must agree with it. The rule suits Chinese and other unsegmented text, and queries of any length
/// from one character. (A backend may use an index to narrow the candidates — SQLite uses an FTS5 trigram index
/// for queries of three characters or more — but the answer is the rule's.)
///
/// **Order and pages.** Message hits come newest first (or oldest first, [`HistoryOrder::OldestFirst`]) in the
/// order of the change feed, conversations in the order they were created; a page holds at most
/// [`HistoryQuery::limit`] rows and gives a [`HistoryCursor`] for the next one. The cursor is the feed position
/// of the last row, so pages neither repeat nor skip a row while new messages arrive: a newer message is before
/// the first page (newest first) or after the last (oldest first).
#[async_trait]
pub trait History: Send + Sync + Debug + 'static {
    /// One page of the messages matching `query` (see above for the rules), in `query.order`,
    /// after `query.cursor`. [`StoreError::Invalid`] when [`HistoryQuery::check`] fails.
    async fn search(&self, query: &HistoryQuery) -> Result<SearchPage, StoreError>;

    /// One page of the conversations matching `query`, oldest first, after `query.cursor`: those passing the
    /// conversation filters, created within `from`..`until`, and — with a text — having a message (or a note,
    /// when notes are searched) that matches it. `query.order` does not apply.
    async fn conversations(&self, query: &HistoryQuery) -> Result<ConversationPage, StoreError>;

    /// The change-feed position up to which a backend that indexes in the background (SQLite's search indexer)
    /// has indexed; `None` (the default) for one that indexes as it writes or not at all. Searches stay right
    /// while it lags (each backend answers the tail without its index); [`Engine::health`](crate::engine::Engine::health)
    /// reports the lag as the `search_index` consumer.
    fn indexed_position(&self) -> Option<FeedPosition> {
        None
    }
}

macro_rules! forward_history {
    ($pointer:ident) => {
        #[async_trait]
        impl<T: ?Sized + History> History for $pointer<T> {
            async fn search(&self, query: &HistoryQuery) -> Result<SearchPage, StoreError> {
                (**self).search(query).await
            }
            async fn conversations(&self, query: &HistoryQuery) -> Result<ConversationPage, StoreError> {
                (**self).conversations(query).await
            }
            fn indexed_position(&self) -> Option<FeedPosition> {
                (**self).indexed_position()
            }
        }
    };
}

forward_history!(Arc);
forward_history!(Box);

/// What an export lists.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    /// One row per message (and note, when the query searches notes), oldest first.
    Messages,
    /// One row per conversation, oldest first.
    Conversations,
}

/// How an export is written.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// RFC 4180 CSV (CRLF line ends, fields quoted when needed), with a header row.
    Csv,
    /// JSON Lines: one JSON object per line.
    Jsonl,
}

impl ExportFormat {
    /// The media type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/jsonl; charset=utf-8",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        match text {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::Jsonl),
            other => Err(StoreError::Invalid(format!("unknown export format {other:?}"))),
        }
    }
}

const MESSAGE_COLUMNS: [&str; 12] = [
    "conversation",
    "seq",
    "time",
    "author_role",
    "author_id",
    "note",
    "visitor",
    "group",
    "agent",
    "state",
    "rating",
    "text",
];

const CONVERSATION_COLUMNS: [&str; 10] = [
    "conversation",
    "visitor",
    "group",
    "state",
    "agent",
    "rating",
    "created",
    "updated",
    "last_seq",
    "position",
];

/// A time as RFC 3339 UTC text (milliseconds).
fn time_text(at: Timestamp) -> String {
    i64::try_from(at.0)
        .ok()
        .and_then(|millis| jiff::Timestamp::from_millisecond(millis).ok())
        .map_or_else(|| at.0.to_string(), |time| format!("{time:.3}"))
}

fn message_fields(hit: &MessageHit) -> [String; 12] {
    let c = &hit.conversation;
    [
        c.id.to_string(),
        hit.seq.0.to_string(),
        time_text(hit.at),
        hit.author.role().to_owned(),
        hit.author.id_str().to_owned(),
        hit.note.to_string(),
        c.visitor.to_string(),
        c.group.to_string(),
        c.last_agent.as_ref().map(ToString::to_string).unwrap_or_default(),
        c.state.name().to_owned(),
        c.rating.map(|r| r.to_string()).unwrap_or_default(),
        hit.text.clone(),
    ]
}

fn conversation_fields(position: u64, c: &Conversation) -> [String; 10] {
    [
        c.id.to_string(),
        c.visitor.to_string(),
        c.group.to_string(),
        c.state.name().to_owned(),
        c.last_agent.as_ref().map(ToString::to_string).unwrap_or_default(),
        c.rating.map(|r| r.to_string()).unwrap_or_default(),
        time_text(c.created_at),
        time_text(c.updated_at),
        c.last_seq.0.to_string(),
        position.to_string(),
    ]
}

/// The error of a CSV or JSON encoding (into memory: it cannot fail short of a bug).
#[derive(Debug, thiserror::Error)]
#[error("encoding an export row failed: {0}")]
struct EncodeError(String);

fn encode_csv<const N: usize>(header: Option<&[&str; N]>, rows: &[[String; N]]) -> Result<Bytes, StoreError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let fail = |error: csv::Error| StoreError::backend(EncodeError(error.to_string()));
    if let Some(header) = header {
        writer.write_record(header).map_err(fail)?;
    }
    for row in rows {
        writer.write_record(row).map_err(fail)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|error| StoreError::backend(EncodeError(error.to_string())))
}

fn encode_jsonl<const N: usize>(columns: &[&str; N], rows: &[[String; N]]) -> Result<Bytes, StoreError> {
    let mut out = String::new();
    for row in rows {
        let object: serde_json::Map<String, serde_json::Value> = columns
            .iter()
            .zip(row)
            .map(|(column, value)| ((*column).to_owned(), serde_json::Value::String(value.clone())))
            .collect();
        let line = serde_json::to_string(&object)
            .map_err(|error| StoreError::backend(EncodeError(error.to_string())))?;
        let _ = writeln!(out, "{line}");
    }
    Ok(Bytes::from(out))
}

fn encode<const N: usize>(
    format: ExportFormat,
    columns: &[&str; N],
    first: bool,
    rows: &[[String; N]],
) -> Result<Bytes, StoreError> {
    match format {
        ExportFormat::Csv => encode_csv(first.then_some(columns), rows),
        ExportFormat::Jsonl => encode_jsonl(columns, rows),
    }
}

/// An export as a stream of byte chunks, one per page of [`EXPORT_PAGE`] rows read from `history` with a keyset
/// cursor: memory stays bounded by one page whatever the size of the history, and a slow consumer slows the
/// reads (nothing is read ahead). The query's `order`, `limit`, `cursor` and `highlight` are replaced (messages
/// oldest first, no snippets); its filters apply. CSV starts with a header row (also for an empty export); JSON
/// Lines values are all strings, with the CSV's column names as keys. The stream ends after yielding an error.
pub fn export(
    history: Arc<dyn History>,
    mut query: HistoryQuery,
    kind: ExportKind,
    format: ExportFormat,
) -> BoxStream<'static, Result<Bytes, StoreError>> {
    query.order = HistoryOrder::OldestFirst;
    query.limit = EXPORT_PAGE;
    query.cursor = None;
    query.highlight = None;
    // State: the query of the next page and whether it is the first, or `None` when done.
    stream::unfold(Some((query, true)), move |state| {
        let history = Arc::clone(&history);
        async move {
            let (mut query, first) = state?;
            let page = match kind {
                ExportKind::Messages => history.search(&query).await.and_then(|page| {
                    let rows: Vec<_> = page.hits.iter().map(message_fields).collect();
                    Ok((encode(format, &MESSAGE_COLUMNS, first, &rows)?, page.next))
                }),
                ExportKind::Conversations => history.conversations(&query).await.and_then(|page| {
                    let rows: Vec<_> = page
                        .conversations
                        .iter()
                        .map(|(position, c)| conversation_fields(*position, c))
                        .collect();
                    Ok((encode(format, &CONVERSATION_COLUMNS, first, &rows)?, page.next))
                }),
            };
            match page {
                Ok((bytes, next)) => {
                    query.cursor = next;
                    let state = next.map(|_| (query, false));
                    Some((Ok(bytes), state))
                }
                Err(error) => Some((Err(error), None)),
            }
        }
    })
    .filter(|chunk| futures::future::ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())))
    .boxed()
}

#[cfg(test)]
mod tests;
