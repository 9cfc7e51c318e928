//! A connection's outbound queue, bounded in bytes.
//!
//! The engine pushes encoded frames; the transport's writer takes them with [`Outbox::next`]. A live push that
//! would exceed the bound closes the queue as a slow consumer: the client resumes from its cursor later, so
//! nothing is lost and the server's memory stays bounded. History replay waits for room instead, so a client
//! catching up on a long history is never cut off for it.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use metrics::Counter;
use tokio::sync::Notify;

use crate::model::{ConversationId, Seq};
use crate::protocol::CloseReason;
use crate::telemetry::ConnectionMetrics;

/// What a transport's writer does next.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Outgoing {
    /// Write this frame (JSON text).
    Frame(Bytes),
    /// Write this `event` frame (JSON text); once written, the client has `seq` of `conversation` (a transport
    /// that carries a resume cursor advances it, see [`Cursor`](crate::cursor::Cursor)).
    Event {
        /// The frame.
        frame: Bytes,
        /// The event's conversation.
        conversation: ConversationId,
        /// The event's seq.
        seq: Seq,
    },
    /// Close the connection for this reason; nothing more will come.
    Close(CloseReason),
}

impl Outgoing {
    /// The frame to write, if this is one.
    pub fn frame(&self) -> Option<&Bytes> {
        match self {
            Outgoing::Frame(frame) | Outgoing::Event { frame, .. } => Some(frame),
            Outgoing::Close(_) => None,
        }
    }
}

/// A queued frame, with the position it delivers when it is an event.
#[derive(Debug)]
pub(crate) struct Queued {
    frame: Bytes,
    position: Option<(ConversationId, Seq)>,
}

impl Queued {
    pub(crate) fn event(frame: Bytes, conversation: ConversationId, seq: Seq) -> Self {
        Self {
            frame,
            position: Some((conversation, seq)),
        }
    }

    fn len(&self) -> usize {
        self.frame.len()
    }
}

impl From<Bytes> for Queued {
    fn from(frame: Bytes) -> Self {
        Self {
            frame,
            position: None,
        }
    }
}

/// The queue is closed (or a live push found it full and closed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueClosed;

#[derive(Default)]
struct State {
    frames: VecDeque<Queued>,
    bytes: usize,
    closed: Option<CloseReason>,
}

/// The shared half the engine pushes into.
pub(crate) struct Outlet {
    state: Mutex<State>,
    limit: usize,
    readable: Notify,
    writable: Notify,
    closing: Notify,
    /// Counts the closes of this queue as a slow consumer (`kf_slow_consumer_closes_total`).
    slow_consumer_closes: Counter,
    /// The transport's series this connection counts in (`kf_connections`, frames), once the transport says
    /// which ([`Session::count_in`](super::Session::count_in)). Here, on the heap, rather than in the
    /// transport's per-connection future, which an idle connection keeps for its whole life.
    pub(crate) series: OnceLock<ConnectionMetrics>,
}

impl fmt::Debug for Outlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Outlet")
            .field("queued_bytes", &state.bytes)
            .field("limit", &self.limit)
            .field("closed", &state.closed)
            .finish()
    }
}

impl Outlet {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Mutex::default(),
            limit,
            readable: Notify::new(),
            writable: Notify::new(),
            closing: Notify::new(),
            slow_consumer_closes: Counter::noop(),
            series: OnceLock::new(),
        }
    }

    /// Counts this queue's close as a slow consumer in `counter`.
    pub(crate) fn counting_slow_consumers(mut self, counter: Counter) -> Self {
        self.slow_consumer_closes = counter;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a frame; if it does not fit, closes the queue as a slow consumer.
    pub(crate) fn push(&self, frame: impl Into<Queued>) -> Result<(), QueueClosed> {
        let frame = frame.into();
        let mut state = self.lock();
        if state.closed.is_some() {
            return Err(QueueClosed);
        }
        if state.bytes + frame.len() > self.limit && !state.frames.is_empty() {
            drop(state);
            self.close(CloseReason::SlowConsumer);
            return Err(QueueClosed);
        }
        state.bytes += frame.len();
        state.frames.push_back(frame);
        drop(state);
        self.readable.notify_one();
        Ok(())
    }

    /// Queues a frame whatever the bound: for the handful of frames that open a session (`welcome`, `inbox`),
    /// whose size the engine bounds itself.
    pub(crate) fn push_unbounded(&self, frame: impl Into<Queued>) {
        let frame = frame.into();
        let mut state = self.lock();
        if state.closed.is_some() {
            return;
        }
        state.bytes += frame.len();
        state.frames.push_back(frame);
        drop(state);
        self.readable.notify_one();
    }

    /// Queues a frame only if it fits; an ephemeral signal that does not fit is dropped. Returns whether queued.
    pub(crate) fn offer(&self, frame: Bytes) -> bool {
        let mut state = self.lock();
        if state.closed.is_some() || state.bytes + frame.len() > self.limit {
            return false;
        }
        state.bytes += frame.len();
        state.frames.push_back(frame.into());
        drop(state);
        self.readable.notify_one();
        true
    }

    /// Queues a frame once the queue is at most half full (replay pacing).
    pub(crate) async fn push_paced(&self, frame: impl Into<Queued>) -> Result<(), QueueClosed> {
        let frame = frame.into();
        loop {
            let mut notified = pin!(self.writable.notified());
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed.is_some() {
                    return Err(QueueClosed);
                }
                if state.bytes <= self.limit / 2 {
                    state.bytes += frame.len();
                    state.frames.push_back(frame);
                    drop(state);
                    self.readable.notify_one();
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// Closes the queue: queued frames are dropped and the writer is told why. The first reason wins.
    pub(crate) fn close(&self, reason: CloseReason) {
        let mut state = self.lock();
        if state.closed.is_none() {
            if reason == CloseReason::SlowConsumer {
                self.slow_consumer_closes.increment(1);
            }
            state.closed = Some(reason);
            state.frames.clear();
            state.bytes = 0;
        }
        drop(state);
        self.readable.notify_one();
        self.writable.notify_waiters();
        self.closing.notify_waiters();
    }

    /// Resolves when the queue is closed, with the reason.
    pub(crate) async fn closed(&self) -> CloseReason {
        loop {
            let mut notified = pin!(self.closing.notified());
            notified.as_mut().enable();
            if let Some(reason) = self.lock().closed {
                return reason;
            }
            notified.await;
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    fn take(&self) -> Option<Outgoing> {
        let mut state = self.lock();
        if let Some(reason) = state.closed {
            return Some(Outgoing::Close(reason));
        }
        let queued = state.frames.pop_front()?;
        state.bytes -= queued.len();
        if state.frames.is_empty() {
            // An idle connection does not keep the capacity of its last burst (most connections are idle).
            state.frames = VecDeque::new();
        }
        drop(state);
        self.writable.notify_waiters();
        Some(match queued.position {
            Some((conversation, seq)) => Outgoing::Event {
                frame: queued.frame,
                conversation,
                seq,
            },
            None => Outgoing::Frame(queued.frame),
        })
    }
}

/// The receiving half of a connection's outbound queue, owned by the transport's writer.
#[derive(Debug)]
pub struct Outbox {
    outlet: Arc<Outlet>,
}

impl Outbox {
    pub(crate) fn new(outlet: Arc<Outlet>) -> Self {
        Self { outlet }
    }

    /// The next frame to write, or the reason to close. After `Close` it keeps returning `Close`.
    ///
    /// Each frame taken counts as sent (`kf_frames_sent_total`) once the session
    /// [counts in](super::Session::count_in) a transport's series.
    pub async fn next(&mut self) -> Outgoing {
        loop {
            if let Some(outgoing) = self.try_next() {
                return outgoing;
            }
            self.outlet.readable.notified().await;
        }
    }

    /// The next frame if one is ready now (lets a writer batch several frames into one flush).
    pub fn try_next(&mut self) -> Option<Outgoing> {
        let outgoing = self.outlet.take()?;
        if let (Outgoing::Frame(_) | Outgoing::Event { .. }, Some(series)) =
            (&outgoing, self.outlet.series.get())
        {
            series.sent(1);
        }
        Some(outgoing)
    }

    /// Resolves when the engine closes the connection, with the reason; takes no frame. A writer blocked on a
    /// slow socket selects on this to give up at once when the client is cut off.
    pub async fn closed(&self) -> CloseReason {
        self.outlet.closed().await
    }

    /// Bytes queued and not yet taken.
    pub fn queued_bytes(&self) -> usize {
        self.outlet.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn live_push_past_the_bound_closes_as_slow_consumer() {
        let outlet = Arc::new(Outlet::new(10));
        let mut outbox = Outbox::new(outlet.clone());
        assert!(outlet.push(Bytes::from_static(b"123456")).is_ok());
        assert!(outlet.push(Bytes::from_static(b"1234")).is_ok());
        assert_eq!(outbox.queued_bytes(), 10);
        assert_eq!(outlet.push(Bytes::from_static(b"1")), Err(QueueClosed));
        assert_eq!(outbox.next().await, Outgoing::Close(CloseReason::SlowConsumer));
        assert_eq!(outbox.queued_bytes(), 0, "queued frames are released");
        assert_eq!(outbox.next().await, Outgoing::Close(CloseReason::SlowConsumer));
    }

    #[tokio::test]
    async fn a_single_large_frame_fits_an_empty_queue() {
        let outlet = Arc::new(Outlet::new(4));
        let mut outbox = Outbox::new(outlet.clone());
        assert!(outlet.push(Bytes::from_static(b"123456")).is_ok());
        assert_eq!(
            outbox.next().await,
            Outgoing::Frame(Bytes::from_static(b"123456"))
        );
    }

    #[tokio::test]
    async fn a_drained_queue_keeps_no_buffer() {
        let outlet = Arc::new(Outlet::new(1024));
        let mut outbox = Outbox::new(outlet.clone());
        for _ in 0..3 {
            assert!(outlet.push(Bytes::from_static(b"frame")).is_ok());
        }
        assert!(outlet.lock().frames.capacity() >= 3);
        for _ in 0..3 {
            assert_eq!(outbox.next().await, Outgoing::Frame(Bytes::from_static(b"frame")));
        }
        assert_eq!(
            outlet.lock().frames.capacity(),
            0,
            "an idle connection holds no queue buffer"
        );
    }

    #[tokio::test]
    async fn offers_are_dropped_not_fatal() {
        let outlet = Arc::new(Outlet::new(4));
        assert!(outlet.offer(Bytes::from_static(b"1234")));
        assert!(!outlet.offer(Bytes::from_static(b"5")));
        assert!(!outlet.is_closed());
    }

    #[tokio::test]
    async fn paced_pushes_wait_for_room() {
        let outlet = Arc::new(Outlet::new(8));
        let mut outbox = Outbox::new(outlet.clone());
        outlet
            .push_paced(Bytes::from_static(b"12345"))
            .await
            .expect("room");
        let pusher = tokio::spawn({
            let outlet = outlet.clone();
            async move { outlet.push_paced(Bytes::from_static(b"678")).await }
        });
        tokio::task::yield_now().await;
        assert!(!pusher.is_finished());
        assert_eq!(outbox.next().await, Outgoing::Frame(Bytes::from_static(b"12345")));
        assert_eq!(pusher.await.expect("task"), Ok(()));
        assert_eq!(outbox.next().await, Outgoing::Frame(Bytes::from_static(b"678")));
        let waiter = tokio::spawn(async move { outbox.closed().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "open: nothing to report");
        outlet.close(CloseReason::Shutdown);
        assert_eq!(waiter.await.expect("task"), CloseReason::Shutdown);
        assert_eq!(
            outlet.push_paced(Bytes::from_static(b"9")).await,
            Err(QueueClosed)
        );
    }
}
