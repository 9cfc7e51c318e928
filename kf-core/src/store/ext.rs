//! [`ConversationLogExt`]: conveniences over any [`ConversationLog`].

use std::future::Future;

use futures::stream::{self, BoxStream, StreamExt};

use super::{ConversationLog, FeedEntry, FeedPosition, StoreError};
use crate::model::{ConversationId, Event, Seq};

/// How many events [`ConversationLogExt::all_events_after`] reads per call of
/// [`events_after`](ConversationLog::events_after).
pub const EVENTS_PAGE: usize = 500;

/// Conveniences built on the [`ConversationLog`] methods, for every implementation (also `dyn ConversationLog`
/// and `dyn Store`). Bring it into scope with `use kf_core::store::ConversationLogExt`.
pub trait ConversationLogExt: ConversationLog {
    /// Every event of a conversation with seq greater than `after`, in seq order, read in pages of
    /// [`EVENTS_PAGE`] until the end of the log.
    fn all_events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send + '_ {
        async move {
            let mut events = Vec::new();
            let mut cursor = after;
            loop {
                let page = self.events_after(conversation, cursor, EVENTS_PAGE).await?;
                let full = page.len() >= EVENTS_PAGE;
                match page.last() {
                    Some(last) => cursor = last.seq,
                    None => break,
                }
                events.extend(page);
                if !full {
                    break;
                }
            }
            Ok(events)
        }
    }

    /// The change feed after `after` as a stream, read with [`feed_after`](ConversationLog::feed_after) in pages
    /// of `page` entries (at least 1) until it is caught up: the stream ends at the first page shorter than
    /// `page`, or after yielding an error. It does not wait for new events; a live follower keeps the position of
    /// the last entry it handled and calls this again (when woken by the engine, or on a timer of its own).
    fn feed_stream(&self, after: FeedPosition, page: usize) -> BoxStream<'_, Result<FeedEntry, StoreError>> {
        feed_stream_of(self, after, page)
    }
}

impl<T: ConversationLog + ?Sized> ConversationLogExt for T {}

/// [`ConversationLogExt::feed_stream`] for any log, `dyn ConversationLog` included.
pub fn feed_stream_of<L: ConversationLog + ?Sized>(
    log: &L,
    after: FeedPosition,
    page: usize,
) -> BoxStream<'_, Result<FeedEntry, StoreError>> {
    let page = page.max(1);
    // State: the position to read after, or `None` once caught up (or failed).
    stream::unfold(Some(after), move |state| async move {
        let after = state?;
        match log.feed_after(after, page).await {
            Ok(entries) => {
                let next = match entries.last() {
                    Some(last) if entries.len() >= page => Some(last.position),
                    _ => None,
                };
                Some((stream::iter(entries.into_iter().map(Ok)).left_stream(), next))
            }
            Err(error) => Some((stream::iter([Err(error)]).right_stream(), None)),
        }
    })
    .flatten()
    .boxed()
}
