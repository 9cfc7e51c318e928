//! [`follow`]: the change feed as an endless stream of committed events, for hosts that integrate in process.
//!
//! See [`follow`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;

use super::{ConversationLog, FeedEntry, FeedPosition, StoreError};

/// How [`follow`] reads the change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowOptions {
    /// Entries read per [`feed_after`](ConversationLog::feed_after) call, and so the most the stream buffers
    /// (at least 1; default 256).
    pub page: usize,
    /// How long a caught-up stream waits before it reads again when nothing wakes it (default 500 ms). Without
    /// a wake-up (a bare log) this is the latency of the stream; with [`Engine::follow_feed`](crate::Engine::follow_feed)
    /// events of this engine arrive at once and the interval only matters for commits by another process.
    pub poll_interval: Duration,
    /// How long the stream waits before it reads again after a failed read (default 1 s).
    pub retry_interval: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            page: 256,
            poll_interval: Duration::from_millis(500),
            retry_interval: Duration::from_secs(1),
        }
    }
}

impl FollowOptions {
    /// With `page` entries per read (at least 1).
    pub fn with_page(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    /// With another poll interval.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// With another pause after a failed read.
    pub fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }
}

/// A signal that something was committed: the engine bumps it after every commit, followers wait on it. Cheap to
/// clone; a follower that misses bumps while it reads loses nothing (it reads the feed, not the signal).
#[derive(Clone, Debug)]
pub struct FeedWake(watch::Receiver<u64>);

impl FeedWake {
    /// A signal and the function that raises it (for a host that appends to a log itself, or for tests).
    pub fn channel() -> (FeedWaker, FeedWake) {
        let (sender, receiver) = watch::channel(0);
        (FeedWaker(Arc::new(sender)), FeedWake(receiver))
    }

    /// Waits until something is committed after the last call returned (or after this wake was made). Never
    /// returns once every waker is gone.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Raises a [`FeedWake`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FeedWaker(Arc<watch::Sender<u64>>);

impl FeedWaker {
    /// Tells every follower that something was committed.
    pub fn wake(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A new follower's side of the signal.
    pub fn subscribe(&self) -> FeedWake {
        FeedWake(self.0.subscribe())
    }
}

impl Default for FeedWaker {
    fn default() -> Self {
        FeedWake::channel().0
    }
}

/// The change feed after `after` as an endless stream of [`FeedEntry`]s (position, tenant, event — the event
/// carries its conversation and seq), in commit order, each once.
///
/// A host that wants every committed event — to feed its CRM, an order system, analytics, a search index —
/// without HTTP follows the change feed from a position it stored, handles each [`FeedEntry`] and stores the
/// entry's position when it is done with it. After a restart it follows again from the stored position and gets
/// every later event once, in commit order (and so each conversation's events in seq order).
///
/// The stream is pull-based: it reads one page of [`FollowOptions::page`] entries with
/// [`ConversationLog::feed_after`] when the consumer asks for the next entry and has none buffered, so it never
/// holds more than one page, and a slow consumer slows the reads down (back-pressure) instead of piling events up.
/// When it has caught up it waits — for the engine's wake-up ([`Engine::follow_feed`](crate::Engine::follow_feed))
/// or [`FollowOptions::poll_interval`], whichever comes first — and reads again. Nothing of it runs in the
/// write path: the engine only bumps a counter after each commit.
///
/// A failed read is yielded as an `Err` and retried after [`FollowOptions::retry_interval`] from the same
/// position, so the stream never skips an event; the consumer decides whether to go on or stop. `wake` (from
/// [`Engine::follow_feed`](crate::Engine::follow_feed), or a [`FeedWake::channel`] of the host's own) ends the
/// wait of a caught-up stream early.
///
/// ```
/// # use std::sync::Arc;
/// # use futures::StreamExt;
/// # use kf_core::store::{follow, ConversationLog, FeedPosition, FollowOptions, MemoryStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log: Arc<dyn ConversationLog> = Arc::new(MemoryStore::new());
/// // The position the host stored after the last entry it handled (ZERO: from the beginning).
/// let stored = FeedPosition::ZERO;
/// let mut events = follow(log, stored, FollowOptions::default(), None);
/// # let _ = &mut events;
/// # /*
/// while let Some(entry) = events.next().await {
///     let entry = entry?; // a store failure: the stream retries by itself if polled again
///     handle(&entry.tenant, &entry.event).await;
///     store_position(entry.position).await;
/// }
/// # */
/// # }
/// ```
pub fn follow(
    log: Arc<dyn ConversationLog>,
    after: FeedPosition,
    options: FollowOptions,
    wake: Option<FeedWake>,
) -> BoxStream<'static, Result<FeedEntry, StoreError>> {
    struct State {
        log: Arc<dyn ConversationLog>,
        position: FeedPosition,
        buffered: VecDeque<FeedEntry>,
        options: FollowOptions,
        wake: Option<FeedWake>,
        /// The last read came back short (caught up) or failed: wait before the next one.
        pause: Option<Duration>,
    }
    let state = State {
        log,
        position: after,
        buffered: VecDeque::new(),
        options: FollowOptions {
            page: options.page.max(1),
            ..options
        },
        wake,
        pause: None,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(entry) = state.buffered.pop_front() {
                state.position = entry.position;
                return Some((Ok(entry), state));
            }
            if let Some(pause) = state.pause.take() {
                match state.wake.as_mut() {
                    Some(wake) => {
                        // Woken by a commit since the last read (marked seen below), or by the interval.
                        let _ = tokio::time::timeout(pause, wake.0.changed()).await;
                    }
                    None => tokio::time::sleep(pause).await,
                }
            }
            if let Some(wake) = state.wake.as_mut() {
                // Commits from here on wake the next wait; what was committed before is in this read.
                wake.0.borrow_and_update();
            }
            match state.log.feed_after(state.position, state.options.page).await {
                Ok(entries) => {
                    if entries.len() < state.options.page {
                        state.pause = Some(state.options.poll_interval);
                    }
                    state.buffered.extend(entries);
                }
                Err(error) => {
                    state.pause = Some(state.options.retry_interval);
                    return Some((Err(error), state));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientId, GroupId, MessageBody, TenantId, Timestamp, VisitorId};
    use crate::store::{EventDraft, MemoryStore, NewConversation};

    async fn conversation(log: &MemoryStore, n: usize) -> crate::model::ConversationId {
        let new = NewConversation {
            id: crate::model::ConversationId::generate(),
            tenant: TenantId::new("shop").expect("tenant"),
            visitor: VisitorId::new(format!("v-{n}")).expect("visitor"),
            group: GroupId::new("support").expect("group"),
            client_id: ClientId::new(format!("open-{n}")).expect("client id"),
            entry: None,
            fields: Default::default(),
            at: Timestamp(1),
        };
        log.create_conversation(new)
            .await
            .expect("create")
            .conversation
            .id
    }

    #[tokio::test]
    async fn follows_live_appends_woken_and_resumes_from_a_position() {
        let memory = Arc::new(MemoryStore::new());
        let id = conversation(&memory, 1).await;
        let (waker, wake) = FeedWake::channel();
        let options = FollowOptions::default()
            .with_page(2)
            .with_poll_interval(Duration::from_secs(3600));
        let mut events = follow(memory.clone(), FeedPosition::ZERO, options.clone(), Some(wake));
        let first = events.next().await.expect("entry").expect("read");
        assert_eq!(first.event.seq.0, 1);
        // Caught up: the stream waits for the wake-up (the poll interval is an hour).
        let next = tokio::spawn(async move {
            let entry = events.next().await.expect("entry").expect("read");
            (entry, events)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let visitor = crate::model::Actor::Visitor(VisitorId::new("v-1").expect("visitor"));
        let draft = EventDraft::message(id, visitor, None, MessageBody::text("hi"), Timestamp(2));
        memory.append(draft).await.expect("append");
        waker.wake();
        let (second, _events) = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("woken")
            .expect("task");
        assert_eq!(second.event.seq.0, 2);
        // Resumed from the first entry's position: the second, then nothing more.
        let mut resumed = follow(memory, first.position, options, None);
        assert_eq!(resumed.next().await.expect("entry").expect("read"), second);
    }

    #[tokio::test]
    async fn reads_a_page_at_a_time_at_the_consumers_pace() {
        let counting = Arc::new(crate::testkit::counting::CountingStore::new());
        let id = conversation(counting.inner(), 1).await;
        let visitor = crate::model::Actor::Visitor(VisitorId::new("v-1").expect("visitor"));
        for n in 0..99 {
            let draft = EventDraft::message(
                id,
                visitor.clone(),
                None,
                MessageBody::text(format!("{n}")),
                Timestamp(2),
            );
            counting.inner().append(draft).await.expect("append");
        }
        let options = FollowOptions::default().with_page(10);
        let mut events = follow(counting.clone(), FeedPosition::ZERO, options, None);
        // Nothing is read before the consumer asks.
        assert_eq!(counting.calls_of("feed_after"), 0);
        let mut seqs = Vec::new();
        for _ in 0..15 {
            seqs.push(events.next().await.expect("entry").expect("read").event.seq.0);
        }
        assert_eq!(seqs, (1..=15).collect::<Vec<u64>>());
        // 15 entries taken: two pages of 10 read, no more, however long the log.
        assert_eq!(counting.calls_of("feed_after"), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(counting.calls_of("feed_after"), 2);
    }
}
