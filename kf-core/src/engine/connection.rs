//! The engine's record of one live connection.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use super::outbox::Outlet;
use crate::auth::Identity;
use crate::cursor::Cursor;
use crate::model::{ConversationId, Seq};
use metrics::Counter;

/// One live connection: who it is, its outbound queue, and what it is subscribed to.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) identity: Identity,
    pub(crate) outlet: Arc<Outlet>,
    subscriptions: Mutex<HashSet<ConversationId>>,
    /// Set when the connection follows all of its principal's conversations: where each one resumes.
    follow: Mutex<Option<Cursor>>,
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        identity: Identity,
        queue_bytes: usize,
        slow_consumer_closes: Counter,
    ) -> Self {
        Self {
            id,
            identity,
            outlet: Arc::new(Outlet::new(queue_bytes).counting_slow_consumers(slow_consumer_closes)),
            subscriptions: Mutex::default(),
            follow: Mutex::default(),
        }
    }

    /// Where a conversation that joins this following connection resumes; `None` when it does not follow.
    pub(crate) fn follow_position(&self, conversation: ConversationId) -> Option<Seq> {
        let follow = self
            .follow
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        follow.as_ref().map(|cursor| cursor.position(conversation))
    }

    pub(crate) fn start_following(&self, cursor: Cursor) {
        *self
            .follow
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(cursor);
    }

    pub(crate) fn subscriptions(&self) -> MutexGuard<'_, HashSet<ConversationId>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
