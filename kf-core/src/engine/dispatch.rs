//! The dispatcher: who is subscribed to which conversation, live fan-out, and race-free resume.
//!
//! A subscription is registered *before* history is read, so no event can fall between the replay and the live
//! stream. Each subscription tracks the last seq it sent: a live event that is next in line is pushed at once,
//! one already sent is dropped, and one that leaves a gap (or arrives while replaying) sends the subscription
//! back to the store, which fills the gap in order. The client sees every seq once, in order.
//!
//! It also remembers the highest seq published per conversation since the engine started. A subscriber whose
//! cursor is already there needs no history: every seq up to it was published (so it is in the client's hands),
//! and every later one will be published after the registration, which happens under the same lock. Such a
//! subscription starts live, without reading the store — what makes a reconnect storm of up-to-date clients cheap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use super::connection::Conn;
use super::outbox::Queued;
use crate::auth::Principal;
use crate::model::{ConversationId, Event, EventKind, Seq};
use crate::protocol::{CloseReason, ErrorCode, ServerFrame};
use crate::store::{ConversationLog, FeedWake, FeedWaker};
use tokio_util::task::TaskTracker;

/// Conversations whose last published seq is remembered, at most; past it the memory starts over (a forgotten
/// conversation only costs its next subscriber a store read).
const PUBLISHED_REMEMBERED: usize = 100_000;

/// Events read from the store per page while catching up.
const PAGE: usize = 256;
/// Store read attempts before a catch-up gives up and closes the connection (the client then resumes).
const READ_ATTEMPTS: u32 = 5;

#[derive(Debug)]
enum Mode {
    /// Live events that are next in line are pushed directly.
    Live,
    /// A catch-up task is reading the store up to at least `target`.
    CatchingUp { target: Seq },
}

#[derive(Debug)]
struct Cursor {
    last_sent: Seq,
    mode: Mode,
}

/// One connection's subscription to one conversation.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) conn: Arc<Conn>,
    conversation: ConversationId,
    cursor: Mutex<Cursor>,
    cancelled: AtomicBool,
}

impl Subscription {
    fn cursor(&self) -> MutexGuard<'_, Cursor> {
        self.cursor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether events go to a visitor (who does not see what is for agents only, see [`Event::for_visitors`]).
    fn for_visitor(&self) -> bool {
        matches!(self.conn.identity.principal, Principal::Visitor(_))
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire) || self.conn.outlet.is_closed()
    }

    /// A live event. Returns true when a catch-up task must be started.
    fn offer(&self, seq: Seq, frame: &Bytes) -> bool {
        let mut cursor = self.cursor();
        if let Mode::CatchingUp { target } = &mut cursor.mode {
            *target = (*target).max(seq);
            return false;
        }
        if seq <= cursor.last_sent {
            return false;
        }
        if seq == cursor.last_sent.next() {
            if self
                .conn
                .outlet
                .push(Queued::event(frame.clone(), self.conversation, seq))
                .is_ok()
            {
                cursor.last_sent = seq;
            }
            return false;
        }
        cursor.mode = Mode::CatchingUp { target: seq };
        true
    }
}

/// What the dispatcher's lock guards.
#[derive(Debug, Default)]
struct Topics {
    /// Conversation → its subscriptions.
    subscriptions: HashMap<ConversationId, Vec<Arc<Subscription>>>,
    /// Conversation → the highest seq published since the engine started (not kept for closed conversations).
    published: HashMap<ConversationId, Seq>,
}

/// Subscriptions, and what has been published.
#[derive(Debug, Default)]
pub(crate) struct Dispatcher {
    topics: Mutex<Topics>,
    /// Raised after every publish: wakes the host's change-feed followers (`Engine::follow_feed`).
    committed: FeedWaker,
    /// The engine's background tasks, where catch-ups run (a shutdown waits for them).
    tasks: TaskTracker,
}

impl Dispatcher {
    /// A dispatcher whose catch-ups run on `tasks`.
    pub(crate) fn new(tasks: TaskTracker) -> Self {
        Dispatcher {
            tasks,
            ..Dispatcher::default()
        }
    }

    fn topics(&self) -> MutexGuard<'_, Topics> {
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The highest seq of `conversation` published since the engine started: every seq up to it is committed.
    /// `None` when none was (or it was forgotten): ask the store.
    pub(crate) fn last_published(&self, conversation: ConversationId) -> Option<Seq> {
        self.topics().published.get(&conversation).copied()
    }

    /// Registers `conn` for `conversation` after seq `after` (replacing an earlier subscription of the same
    /// connection) and starts replaying history from the store.
    pub(crate) fn subscribe(
        &self,
        store: Arc<dyn ConversationLog>,
        conn: Arc<Conn>,
        conversation: ConversationId,
        after: Seq,
    ) {
        let subscription = Arc::new(Subscription {
            conn,
            conversation,
            cursor: Mutex::new(Cursor {
                last_sent: after,
                mode: Mode::CatchingUp { target: after },
            }),
            cancelled: AtomicBool::new(false),
        });
        let current = {
            let mut topics = self.topics();
            let current = topics
                .published
                .get(&conversation)
                .is_some_and(|last| *last <= after);
            if current {
                subscription.cursor().mode = Mode::Live;
            }
            let list = topics.subscriptions.entry(conversation).or_default();
            list.retain(|existing| {
                let same = existing.conn.id == subscription.conn.id;
                if same {
                    existing.cancelled.store(true, Ordering::Release);
                }
                !same
            });
            list.push(Arc::clone(&subscription));
            current
        };
        if !current {
            self.tasks.spawn(catch_up(store, subscription));
        }
    }

    /// Removes a connection's subscription to a conversation. Returns whether it existed.
    pub(crate) fn unsubscribe(&self, conn_id: u64, conversation: ConversationId) -> bool {
        let mut topics = self.topics();
        let map = &mut topics.subscriptions;
        let Some(list) = map.get_mut(&conversation) else {
            return false;
        };
        let before = list.len();
        list.retain(|existing| {
            let same = existing.conn.id == conn_id;
            if same {
                existing.cancelled.store(true, Ordering::Release);
            }
            !same
        });
        let removed = list.len() != before;
        if list.is_empty() {
            map.remove(&conversation);
        }
        removed
    }

    /// Delivers a committed event to every subscriber of its conversation.
    /// A wake-up that fires after every committed event this engine publishes.
    pub(crate) fn committed(&self) -> FeedWake {
        self.committed.subscribe()
    }

    pub(crate) fn publish(&self, store: &Arc<dyn ConversationLog>, event: &Event) {
        self.committed.wake();
        let frame = ServerFrame::encode_event(event);
        let visitors_frame = event
            .for_visitors()
            .map(|redacted| ServerFrame::encode_event(&redacted));
        let mut behind = Vec::new();
        {
            let mut topics = self.topics();
            let published = &mut topics.published;
            if matches!(event.data, EventKind::Closed) {
                // Rarely subscribed to again; a reopening publishes anew.
                published.remove(&event.conversation);
            } else {
                if published.len() >= PUBLISHED_REMEMBERED && !published.contains_key(&event.conversation) {
                    published.clear();
                }
                let last = published.entry(event.conversation).or_insert(event.seq);
                *last = (*last).max(event.seq);
            }
            let Some(list) = topics.subscriptions.get(&event.conversation) else {
                return;
            };
            for subscription in list {
                let frame = match &visitors_frame {
                    Some(redacted) if subscription.for_visitor() => redacted,
                    _ => &frame,
                };
                if subscription.offer(event.seq, frame) {
                    behind.push(Arc::clone(subscription));
                }
            }
        }
        for subscription in behind {
            self.tasks.spawn(catch_up(Arc::clone(store), subscription));
        }
    }

    /// Relays an ephemeral frame to every subscriber except the sender's connection; dropped where it does not fit.
    pub(crate) fn relay(&self, conversation: ConversationId, except_conn: u64, frame: &Bytes) {
        let topics = self.topics();
        let Some(list) = topics.subscriptions.get(&conversation) else {
            return;
        };
        for subscription in list.iter().filter(|s| s.conn.id != except_conn) {
            subscription.conn.outlet.offer(frame.clone());
        }
    }
}

impl Subscription {
    /// Pushes a page of history read from the store, paced by the outbound queue. False when the subscription
    /// ended (cancelled, or its connection closed) on the way.
    async fn replay(&self, page: Vec<Event>) -> bool {
        for event in page {
            if self.is_cancelled() {
                return false;
            }
            let seq = event.seq;
            let event = match event.for_visitors() {
                Some(redacted) if self.for_visitor() => redacted,
                _ => event,
            };
            let queued = Queued::event(ServerFrame::encode_event(&event), self.conversation, seq);
            if self.conn.outlet.push_paced(queued).await.is_err() {
                return false;
            }
            self.cursor().last_sent = seq;
        }
        true
    }
}

/// Reads the store after the subscription's cursor and pushes what it finds, until the cursor has reached every
/// seq seen live; then switches the subscription to live delivery.
async fn catch_up(store: Arc<dyn ConversationLog>, subscription: Arc<Subscription>) {
    let mut failures = 0;
    let mut stalls = 0;
    loop {
        if subscription.is_cancelled() {
            return;
        }
        let from = subscription.cursor().last_sent;
        let page = match store.events_after(subscription.conversation, from, PAGE).await {
            Ok(page) => page,
            Err(error) => {
                failures += 1;
                tracing::warn!(conversation = %subscription.conversation, %error, failures, "catch-up read failed");
                if failures >= READ_ATTEMPTS {
                    let frame = ServerFrame::error(
                        None,
                        ErrorCode::Unavailable,
                        format!("history unavailable: {error}"),
                    );
                    subscription.conn.outlet.offer(frame.encode());
                    subscription.conn.outlet.close(CloseReason::Unavailable);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50 << failures)).await;
                continue;
            }
        };
        failures = 0;
        let full_page = page.len() == PAGE;
        if !subscription.replay(page).await {
            return;
        }
        let stalled = {
            let mut cursor = subscription.cursor();
            let target = match cursor.mode {
                Mode::CatchingUp { target } => target,
                Mode::Live => return,
            };
            if !full_page && cursor.last_sent >= target {
                cursor.mode = Mode::Live;
                return;
            }
            !full_page && cursor.last_sent == from
        };
        if stalled {
            // A later seq was published but the store returned nothing after the cursor: a store whose reads
            // lag its commits. Read again after a pause; rather than spin, give up to live mode after a few
            // tries (the next live event retries the gap).
            stalls += 1;
            if stalls > READ_ATTEMPTS {
                tracing::warn!(conversation = %subscription.conversation, "published seq not readable");
                subscription.cursor().mode = Mode::Live;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10 << stalls)).await;
        }
    }
}
