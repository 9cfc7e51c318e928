//! The kf-core store conformance suites, run against a SqliteStore on a fresh temporary file.

use std::sync::Arc;

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
    Appended, ConversationLog, ConversationPage, Created, Directory, EventDraft, FeedEntry, FeedPosition,
    GroupHours, History, HistoryQuery, NewConversation, SearchPage, Settings, StoreError,
};
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;

/// A store and the temporary directory holding its file; the store is closed before the directory goes.
#[derive(Debug)]
struct TempStore {
    store: SqliteStore,
    _dir: TempDir,
}

fn temp_store() -> Arc<TempStore> {
    temp_store_with(SqliteConfig::default())
}

fn temp_store_with(config: SqliteConfig) -> Arc<TempStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("kf.sqlite3"), config).expect("open store");
    Arc::new(TempStore { store, _dir: dir })
}

kf_core::conversation_log_conformance_tests!(async { temp_store() });
kf_core::directory_conformance_tests!(async { temp_store() });
kf_core::settings_conformance_tests!(async { temp_store() });
kf_core::history_conformance_tests!(async { temp_store() });
kf_core::stats_checkpoints_conformance_tests!(async { temp_store() });

/// The history suite again with no indexer at all: every search takes the tail path (the scan of what is not
/// indexed), and must give the same answers.
mod without_the_indexer {
    kf_core::history_conformance_tests!(async {
        super::temp_store_with(kf_store_sqlite::SqliteConfig::default().with_search_indexer(false))
    });
}

#[async_trait]
impl History for TempStore {
    async fn search(&self, query: &HistoryQuery) -> Result<SearchPage, StoreError> {
        self.store.search(query).await
    }
    async fn conversations(&self, query: &HistoryQuery) -> Result<ConversationPage, StoreError> {
        self.store.conversations(query).await
    }
}

#[async_trait]
impl ConversationLog for TempStore {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
        self.store.epoch().await
    }
    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
        self.store.create_conversation(new).await
    }
    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        self.store.append(draft).await
    }
    async fn append_batch(&self, drafts: Vec<EventDraft>) -> Vec<Result<Appended, StoreError>> {
        self.store.append_batch(drafts).await
    }
    async fn events_after(
        &self,
        c: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.store.events_after(c, after, limit).await
    }
    async fn event_by_client_id(
        &self,
        c: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError> {
        self.store.event_by_client_id(c, author, client_id).await
    }
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.store.conversation(id).await
    }
    async fn conversations_of_visitor(
        &self,
        t: &TenantId,
        v: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.store.conversations_of_visitor(t, v).await
    }
    async fn conversations_of_agent(
        &self,
        t: &TenantId,
        a: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.store.conversations_of_agent(t, a).await
    }
    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.store.open_conversations().await
    }
    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
        self.store.put_conversation_context(context).await
    }
    async fn conversation_context(
        &self,
        c: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError> {
        self.store.conversation_context(c).await
    }
    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.store.feed_after(after, limit).await
    }
    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        self.store.feed_head().await
    }
    async fn record_seen(&self, marks: Vec<kf_core::model::SeenMark>) -> Result<(), StoreError> {
        self.store.record_seen(marks).await
    }
    async fn seen(
        &self,
        conversations: &[ConversationId],
    ) -> Result<Vec<kf_core::model::SeenMark>, StoreError> {
        self.store.seen(conversations).await
    }
}

#[async_trait]
impl Directory for TempStore {
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError> {
        self.store.put_visitor(visitor).await
    }
    async fn visitor(&self, t: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError> {
        self.store.visitor(t, id).await
    }
    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError> {
        self.store.put_agent(agent).await
    }
    async fn agent(&self, t: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        self.store.agent(t, id).await
    }
    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.store.agents().await
    }
    async fn put_group(&self, group: Group) -> Result<(), StoreError> {
        self.store.put_group(group).await
    }
    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.store.groups().await
    }
    async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> Result<bool, StoreError> {
        self.store.delete_agent(tenant, id).await
    }
    async fn delete_group(&self, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError> {
        self.store.delete_group(tenant, id).await
    }
    async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError> {
        self.store.put_entry_point(entry).await
    }
    async fn delete_entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Result<bool, StoreError> {
        self.store.delete_entry_point(tenant, id).await
    }
    async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError> {
        self.store.entry_points().await
    }
}

#[async_trait]
impl Settings for TempStore {
    async fn put_group_hours(
        &self,
        t: &TenantId,
        g: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), StoreError> {
        self.store.put_group_hours(t, g, hours).await
    }
    async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError> {
        self.store.group_hours().await
    }
    async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError> {
        self.store.put_quick_reply(reply).await
    }
    async fn delete_quick_reply(&self, t: &TenantId, id: &str) -> Result<bool, StoreError> {
        self.store.delete_quick_reply(t, id).await
    }
    async fn quick_reply(&self, t: &TenantId, id: &str) -> Result<Option<QuickReply>, StoreError> {
        self.store.quick_reply(t, id).await
    }
    async fn quick_replies(&self, t: &TenantId, s: &QuickReplyScope) -> Result<Vec<QuickReply>, StoreError> {
        self.store.quick_replies(t, s).await
    }
    async fn put_label(&self, label: kf_core::labels::Label) -> Result<(), StoreError> {
        self.store.put_label(label).await
    }
    async fn delete_label(&self, t: &TenantId, name: &str) -> Result<bool, StoreError> {
        self.store.delete_label(t, name).await
    }
    async fn labels(&self, t: &TenantId) -> Result<Vec<kf_core::labels::Label>, StoreError> {
        self.store.labels(t).await
    }
    async fn put_attribute_definition(
        &self,
        definition: kf_core::labels::AttributeDefinition,
    ) -> Result<(), StoreError> {
        self.store.put_attribute_definition(definition).await
    }
    async fn delete_attribute_definition(
        &self,
        t: &TenantId,
        object: kf_core::labels::AttributeObject,
        key: &str,
    ) -> Result<bool, StoreError> {
        self.store.delete_attribute_definition(t, object, key).await
    }
    async fn attribute_definitions(
        &self,
        t: &TenantId,
    ) -> Result<Vec<kf_core::labels::AttributeDefinition>, StoreError> {
        self.store.attribute_definitions(t).await
    }
    async fn put_allowed_origins(&self, tenant: &TenantId, origins: Vec<String>) -> Result<(), StoreError> {
        self.store.put_allowed_origins(tenant, origins).await
    }
    async fn allowed_origins(&self) -> Result<Vec<kf_core::store::TenantOrigins>, StoreError> {
        self.store.allowed_origins().await
    }
}

#[async_trait]
impl kf_core::store::StatsCheckpoints for TempStore {
    async fn load_stats_checkpoint(&self) -> Result<Option<kf_core::store::StatsCheckpoint>, StoreError> {
        self.store.load_stats_checkpoint().await
    }
    async fn save_stats_checkpoint(
        &self,
        checkpoint: kf_core::store::StatsCheckpoint,
    ) -> Result<(), StoreError> {
        self.store.save_stats_checkpoint(checkpoint).await
    }
}

#[async_trait]
impl kf_core::store::AuditLog for TempStore {
    async fn append_audit(&self, entry: kf_core::store::AuditEntry) -> Result<u64, StoreError> {
        self.store.append_audit(entry).await
    }
    async fn audit_entries(
        &self,
        query: &kf_core::store::AuditQuery,
    ) -> Result<kf_core::store::AuditPage, StoreError> {
        self.store.audit_entries(query).await
    }
}

kf_core::audit_conformance_tests!(async { temp_store() });
