//! Persistence, split by concern: [`ConversationLog`] (conversation logs and the change feed), [`Directory`]
//! (visitors, agents, groups, entry points) and [`Settings`] (what admins configure), and [`MemoryStore`], which
//! implements all three.
//!
//! A backend that keeps everything in one place implements all three traits and is a [`Store`] (blanket impl),
//! held by the engine as `Arc<dyn Store>`. A host that keeps the concerns in different backends bundles them in
//! [`Stores`].
//!
//! **The change feed is the outbox.** Every committed event gets a global [`FeedPosition`] in the same commit;
//! [`ConversationLog::feed_after`] lets a consumer (webhooks, statistics, search indexing, a cross-node bus)
//! follow the feed and resume after the last position it handled. [`ConversationLogExt::feed_stream`] reads it
//! as a stream up to its head; [`follow`] (and [`Engine::follow_feed`](crate::Engine::follow_feed)) follows it
//! without end, with back-pressure, for hosts that integrate in process.
//!
//! [`StatsCheckpoints`] (where the statistics keeper saves its aggregates) is a fifth, given to the engine with
//! [`EngineBuilder::statistics`](crate::engine::EngineBuilder::statistics).
//!
//! [`History`] (search and export of past conversations) is a fourth concern, kept out of [`Store`] so that a
//! backend can go without it: the engine is given one with
//! [`EngineBuilder::history`](crate::engine::EngineBuilder::history); [`MemoryStore`] implements it by scanning,
//! the SQLite store with a full-text index.
//!
//! Backends prove they keep the contracts by running the conformance suites in `kf_core::testkit` (feature
//! `testkit`): `conversation_log_conformance_tests!`, `directory_conformance_tests!`,
//! `settings_conformance_tests!`, or all three with `store_conformance_tests!`; and `history_conformance_tests!`.

mod audit;
mod directory;
mod ext;
mod follow;
mod history;
mod log;
mod memory;
mod settings;
mod stats;
mod uploads;

use std::fmt::Debug;
use std::sync::Arc;

use thiserror::Error;

pub use audit::{AuditEntry, AuditLog, AuditPage, AuditQuery, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE};
pub use directory::Directory;
pub use ext::{ConversationLogExt, EVENTS_PAGE, feed_stream_of};
pub use follow::{FeedWake, FeedWaker, FollowOptions, follow};
pub use history::{
    ConversationPage, EXPORT_PAGE, ExportFormat, ExportKind, Highlight, History, HistoryCursor, HistoryOrder,
    HistoryQuery, MAX_HISTORY_PAGE, MAX_QUERY_CHARS, MessageHit, SearchPage, StateFilter, escape_html,
    export, find_hits, text_matches,
};
pub use log::{
    Appended, ConversationLog, Created, EventDraft, FeedEntry, FeedPosition, NewConversation,
    check_seen_marks,
};
pub use memory::MemoryStore;
pub use settings::{GroupHours, Settings, TenantOrigins};
pub use stats::{StatsCheckpoint, StatsCheckpoints};
pub use uploads::{Upload, UploadState, Uploads};

use crate::model::{ConversationId, TransitionError};

/// Errors of a store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No conversation with this id.
    #[error("conversation {0} not found")]
    ConversationNotFound(ConversationId),
    /// The conversation's state does not allow this event; nothing was stored.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The request itself is invalid (for example a value the backend cannot represent).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request clashes with a stored record (a quick reply shortcut already taken in its scope).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend does not offer this (for example no history backend was configured).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
    /// The backend failed (I/O, corruption, a dropped connection). The request may be retried.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

/// Everything an [`Engine`](crate::engine::Engine) persists, in one backend: a [`ConversationLog`], a
/// [`Directory`] and [`Settings`]. Implemented for every type that implements the three (there is nothing else
/// to implement); held as `Arc<dyn Store>`.
pub trait Store: ConversationLog + Directory + Settings {}

impl<T: ConversationLog + Directory + Settings + ?Sized> Store for T {}

/// The three store concerns, each possibly in a backend of its own (for example the log in Postgres, the
/// directory in a host's user database, the settings in a config service). Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use kf_core::store::{MemoryStore, Stores};
///
/// // One backend for everything…
/// let all = Stores::from(Arc::new(MemoryStore::new()));
/// // …or a backend per concern.
/// let split = Stores::new(
///     Arc::new(MemoryStore::new()),
///     Arc::new(MemoryStore::new()),
///     Arc::clone(&all.settings),
/// );
/// # drop(split);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Stores {
    /// The conversation logs and the change feed.
    pub log: Arc<dyn ConversationLog>,
    /// Visitors, agents, groups and entry points.
    pub directory: Arc<dyn Directory>,
    /// Working hours, quick replies and the other admin settings.
    pub settings: Arc<dyn Settings>,
}

impl Stores {
    /// A bundle of three backends.
    pub fn new(
        log: Arc<dyn ConversationLog>,
        directory: Arc<dyn Directory>,
        settings: Arc<dyn Settings>,
    ) -> Self {
        Self {
            log,
            directory,
            settings,
        }
    }
}

impl<S: Store> From<Arc<S>> for Stores {
    /// One backend for all three concerns.
    fn from(store: Arc<S>) -> Self {
        Self::new(store.clone(), store.clone(), store)
    }
}

impl From<Arc<dyn Store>> for Stores {
    /// One backend for all three concerns.
    fn from(store: Arc<dyn Store>) -> Self {
        Self::new(store.clone(), store.clone(), store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupId, TenantId, Timestamp, Visitor};

    fn id<T: std::str::FromStr>(value: &str) -> T
    where
        T::Err: Debug,
    {
        value.parse().expect("valid id")
    }

    #[tokio::test]
    async fn a_bundle_reaches_each_backend() {
        let (log, directory, settings) = (
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryStore::new()),
        );
        let stores = Stores::new(log.clone(), directory.clone(), settings.clone());
        let visitor = Visitor {
            tenant: id("t1"),
            id: id("v1"),
            name: None,
            created_at: Timestamp(1),
            attributes: Default::default(),
        };
        stores.directory.put_visitor(visitor.clone()).await.expect("put");
        let tenant: TenantId = id("t1");
        let group: GroupId = id("sales");
        stores
            .settings
            .put_group_hours(&tenant, &group, None)
            .await
            .expect("hours");
        assert_eq!(
            directory.visitor(&tenant, &visitor.id).await.expect("read"),
            Some(visitor.clone())
        );
        assert_eq!(log.visitor(&tenant, &visitor.id).await.expect("read"), None);
        assert_eq!(
            stores.log.epoch().await.expect("epoch"),
            log.epoch().await.expect("epoch")
        );
        let cloned = stores.clone();
        assert_eq!(
            cloned.log.epoch().await.expect("epoch"),
            log.epoch().await.expect("epoch")
        );
        assert!(format!("{stores:?}").contains("Stores"));
    }

    fn assert_store<T: Store>() {}

    #[tokio::test]
    async fn arcs_and_boxes_forward_every_trait() {
        assert_store::<Arc<MemoryStore>>();
        assert_store::<Box<MemoryStore>>();
        assert_store::<Arc<dyn Store>>();
        assert_store::<Box<dyn Store>>();
        let boxed: Box<dyn ConversationLog> = Box::new(Arc::new(MemoryStore::new()));
        let boxed = Box::new(boxed);
        assert_eq!(boxed.feed_head().await.expect("head"), FeedPosition::ZERO);
        let directory: Box<dyn Directory> = Box::new(MemoryStore::new());
        assert!(directory.agents().await.expect("agents").is_empty());
        let settings: Arc<dyn Settings> = Arc::new(Box::new(MemoryStore::new()));
        assert!(settings.group_hours().await.expect("hours").is_empty());
    }

    #[tokio::test]
    async fn one_backend_becomes_a_bundle() {
        let store = Arc::new(MemoryStore::new());
        let epoch = store.epoch().await.expect("epoch");
        let from_concrete = Stores::from(store.clone());
        let as_dyn: Arc<dyn Store> = store.clone();
        let from_dyn = Stores::from(as_dyn);
        let visitor = Visitor {
            tenant: id("t1"),
            id: id("v1"),
            name: Some("Ada".into()),
            created_at: Timestamp(1),
            attributes: Default::default(),
        };
        from_dyn
            .directory
            .put_visitor(visitor.clone())
            .await
            .expect("put");
        for stores in [&from_concrete, &from_dyn] {
            assert_eq!(stores.log.epoch().await.expect("epoch"), epoch);
            assert_eq!(
                stores
                    .directory
                    .visitor(&visitor.tenant, &visitor.id)
                    .await
                    .expect("read"),
                Some(visitor.clone())
            );
            assert!(stores.settings.group_hours().await.expect("hours").is_empty());
        }
    }
}
