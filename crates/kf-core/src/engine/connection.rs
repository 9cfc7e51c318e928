//! The engine's record of one live connection.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use super::outbox::Outlet;
use crate::auth::Identity;
use crate::model::ConversationId;

/// One live connection: who it is, its outbound queue, and what it is subscribed to.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) identity: Identity,
    pub(crate) outlet: Arc<Outlet>,
    subscriptions: Mutex<HashSet<ConversationId>>,
}

impl Conn {
    pub(crate) fn new(id: u64, identity: Identity, queue_bytes: usize) -> Self {
        Self {
            id,
            identity,
            outlet: Arc::new(Outlet::new(queue_bytes)),
            subscriptions: Mutex::default(),
        }
    }

    pub(crate) fn subscriptions(&self) -> MutexGuard<'_, HashSet<ConversationId>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
