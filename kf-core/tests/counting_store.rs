//! A third, minimal backend written in a test: a wrapper that counts the calls of each store trait and forwards
//! them to a [`MemoryStore`]. It passes each conformance suite, which shows the suites only need the traits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use kf_core::context::ConversationContext;
use kf_core::entry::EntryPoint;
use kf_core::hours::WorkingHours;
use kf_core::model::{
    Actor, Agent, AgentId, ClientId, Conversation, ConversationId, EntryPointId, Epoch, Event, Group,
    GroupId, Seq, TenantId, Visitor, VisitorId,
};
use kf_core::quick_replies::{QuickReply, QuickReplyScope};
use kf_core::store::{
    Appended, ConversationLog, Created, Directory, EventDraft, FeedEntry, FeedPosition, GroupHours,
    MemoryStore, NewConversation, Settings, StoreError, Stores,
};

/// Calls per trait.
#[derive(Debug, Default)]
struct Counters {
    log: AtomicU64,
    directory: AtomicU64,
    settings: AtomicU64,
}

/// Counts every call and forwards it.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    calls: Counters,
}

impl CountingStore {
    fn log(&self) -> &MemoryStore {
        self.calls.log.fetch_add(1, Ordering::Relaxed);
        &self.inner
    }
    fn directory(&self) -> &MemoryStore {
        self.calls.directory.fetch_add(1, Ordering::Relaxed);
        &self.inner
    }
    fn settings(&self) -> &MemoryStore {
        self.calls.settings.fetch_add(1, Ordering::Relaxed);
        &self.inner
    }
}

fn counting() -> Arc<CountingStore> {
    Arc::new(CountingStore::default())
}

kf_core::conversation_log_conformance_tests!(async { counting() });
kf_core::directory_conformance_tests!(async { counting() });
kf_core::settings_conformance_tests!(async { counting() });

#[tokio::test]
async fn the_counters_move() {
    let store = counting();
    let stores = Stores::from(Arc::clone(&store));
    kf_core::testkit::log::appends_get_gapless_seqs(Arc::clone(&stores.log)).await;
    kf_core::testkit::directory::records_round_trip(Arc::clone(&stores.directory)).await;
    kf_core::testkit::settings::group_hours_round_trip(Arc::clone(&stores.settings)).await;
    let (log, directory, settings) = (
        store.calls.log.load(Ordering::Relaxed),
        store.calls.directory.load(Ordering::Relaxed),
        store.calls.settings.load(Ordering::Relaxed),
    );
    // One create, 19 appends and one read.
    assert_eq!(log, 21);
    assert!(directory >= 10, "{directory}");
    assert!(settings >= 5, "{settings}");
    stores.log.feed_head().await.expect("feed head");
    assert_eq!(store.calls.log.load(Ordering::Relaxed), log + 1);
}

/// A visitor's first `hello` reads the directory (and makes its record); a returning one's reads nothing there:
/// the engine remembers who has a record. (A reconnect storm is thousands of returning visitors.)
#[tokio::test]
async fn a_returning_visitor_is_admitted_without_reading_the_directory() {
    let store = counting();
    let engine = kf_core::Engine::builder(Arc::clone(&store), Arc::new(kf_core::testkit::shop::tokens()))
        .build()
        .await
        .expect("engine");
    let visitor = kf_core::testkit::shop::visitor("v-1");
    let directory = || store.calls.directory.load(Ordering::Relaxed);
    let before = directory();
    let first = engine.connect(visitor.clone()).await.expect("first hello");
    assert_eq!(directory(), before + 2, "looked up, then recorded");
    let record = store
        .inner
        .visitor(&visitor.tenant, &VisitorId::new("v-1").expect("id"))
        .await;
    assert!(record.expect("read").is_some());
    drop(first);
    let before = directory();
    let _again = engine.connect(visitor).await.expect("second hello");
    assert_eq!(directory(), before, "a returning visitor costs no directory read");
}

#[async_trait]
impl ConversationLog for CountingStore {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
        self.log().epoch().await
    }
    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
        self.log().create_conversation(new).await
    }
    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        self.log().append(draft).await
    }
    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.log().events_after(conversation, after, limit).await
    }
    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError> {
        self.log()
            .event_by_client_id(conversation, author, client_id)
            .await
    }
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.log().conversation(id).await
    }
    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.log().conversations_of_visitor(tenant, visitor).await
    }
    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.log().conversations_of_agent(tenant, agent).await
    }
    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.log().open_conversations().await
    }
    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
        self.log().put_conversation_context(context).await
    }
    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError> {
        self.log().conversation_context(conversation).await
    }
    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.log().feed_after(after, limit).await
    }
    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        self.log().feed_head().await
    }
}

#[async_trait]
impl Directory for CountingStore {
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError> {
        self.directory().put_visitor(visitor).await
    }
    async fn visitor(&self, tenant: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError> {
        self.directory().visitor(tenant, id).await
    }
    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError> {
        self.directory().put_agent(agent).await
    }
    async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        self.directory().agent(tenant, id).await
    }
    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.directory().agents().await
    }
    async fn put_group(&self, group: Group) -> Result<(), StoreError> {
        self.directory().put_group(group).await
    }
    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.directory().groups().await
    }
    async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError> {
        self.directory().put_entry_point(entry).await
    }
    async fn delete_entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Result<bool, StoreError> {
        self.directory().delete_entry_point(tenant, id).await
    }
    async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError> {
        self.directory().entry_points().await
    }
}

#[async_trait]
impl Settings for CountingStore {
    async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), StoreError> {
        self.settings().put_group_hours(tenant, group, hours).await
    }
    async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError> {
        self.settings().group_hours().await
    }
    async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError> {
        self.settings().put_quick_reply(reply).await
    }
    async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.settings().delete_quick_reply(tenant, id).await
    }
    async fn quick_reply(&self, tenant: &TenantId, id: &str) -> Result<Option<QuickReply>, StoreError> {
        self.settings().quick_reply(tenant, id).await
    }
    async fn quick_replies(
        &self,
        tenant: &TenantId,
        scope: &QuickReplyScope,
    ) -> Result<Vec<QuickReply>, StoreError> {
        self.settings().quick_replies(tenant, scope).await
    }
}
