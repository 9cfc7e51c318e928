//! An in-memory [`Store`](super::Store): a complete backend for single-process deployments, tests and demos.
//! Nothing survives the process; its epoch is new every time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Appended, AuditEntry, ConversationLog, ConversationPage, Created, Directory, EventDraft, FeedEntry,
    FeedPosition, GroupHours, History, HistoryOrder, HistoryQuery, MessageHit, NewConversation, SearchPage,
    Settings, StatsCheckpoint, StatsCheckpoints, StoreError, TenantOrigins, Upload, text_matches,
};
use crate::context::ConversationContext;
use crate::entry::EntryPoint;
use crate::hours::WorkingHours;
use crate::labels::{AttributeDefinition, AttributeObject, Label};
use crate::model::{
    Actor, Agent, AgentId, AttachmentId, ClientId, Conversation, ConversationId, EntryPointId, Epoch, Event,
    Group, GroupId, SeenMark, Seq, TenantId, Visitor, VisitorId,
};
use crate::quick_replies::{QuickReply, QuickReplyScope};

mod audit;
mod uploads;

/// A [`Store`](super::Store) that keeps everything in memory: the three store traits and the change feed, and
/// [`History`] by scanning the feed (no index: each page reads the feed from its cursor until the page is full).
///
/// The feed costs one small entry per event (its conversation and seq, not a copy of the event); positions are
/// gapless, position `n` being the `n`-th event committed.
#[derive(Debug)]
pub struct MemoryStore {
    epoch: Epoch,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    logs: HashMap<ConversationId, Log>,
    /// The change feed: position `n` is `feed[n - 1]`, the (conversation, seq) of the `n`-th committed event.
    feed: Vec<(ConversationId, Seq)>,
    opened_by_client: HashMap<(TenantId, VisitorId, ClientId), ConversationId>,
    visitors: HashMap<(TenantId, VisitorId), Visitor>,
    agents: BTreeMap<(TenantId, AgentId), Agent>,
    groups: BTreeMap<(TenantId, GroupId), Group>,
    hours: BTreeMap<(TenantId, GroupId), WorkingHours>,
    contexts: HashMap<ConversationId, ConversationContext>,
    /// Each conversation's seen marks: the highest seq each participant has seen.
    seen: HashMap<ConversationId, HashMap<Actor, Seq>>,
    quick_replies: BTreeMap<(TenantId, String), QuickReply>,
    entry_points: BTreeMap<(TenantId, EntryPointId), EntryPoint>,
    labels: BTreeMap<(TenantId, String), Label>,
    attribute_definitions: BTreeMap<(TenantId, AttributeObject, String), AttributeDefinition>,
    uploads: BTreeMap<AttachmentId, Upload>,
    stats: Option<StatsCheckpoint>,
    /// The audit log, oldest first: entry `n` has id `n + 1`.
    audit: Vec<AuditEntry>,
    origins: BTreeMap<TenantId, Vec<String>>,
}

#[derive(Debug)]
struct Log {
    conversation: Conversation,
    events: Vec<Event>,
    by_client_id: HashMap<(Actor, ClientId), usize>,
}

impl MemoryStore {
    /// An empty store with a fresh epoch.
    pub fn new() -> Self {
        Self {
            epoch: Epoch(format!("mem-{}", ConversationId::generate())),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied append (every append validates before it
        // mutates), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

fn sorted(mut conversations: Vec<Conversation>, newest_first: bool) -> Vec<Conversation> {
    conversations.sort_by_key(|c| (c.created_at, c.id));
    if newest_first {
        conversations.reverse();
    }
    conversations
}

impl State {
    /// One append, under the lock: the duplicate check, then the transition check, then the commit (the event,
    /// its client id and its feed position together).
    fn append(&mut self, draft: EventDraft) -> Result<Appended, StoreError> {
        let log = self
            .logs
            .get_mut(&draft.conversation)
            .ok_or(StoreError::ConversationNotFound(draft.conversation))?;
        if let Some(client_id) = &draft.client_id
            && let Some(&index) = log.by_client_id.get(&(draft.author.clone(), client_id.clone()))
        {
            return Ok(Appended {
                event: log.events[index].clone(),
                conversation: log.conversation.clone(),
                duplicate: true,
            });
        }
        let seq = log.conversation.apply(&draft.data, draft.at)?;
        let event = Event {
            conversation: draft.conversation,
            seq,
            at: draft.at,
            author: draft.author,
            client_id: draft.client_id,
            data: draft.data,
        };
        if let Some(client_id) = &event.client_id {
            log.by_client_id
                .insert((event.author.clone(), client_id.clone()), log.events.len());
        }
        log.events.push(event.clone());
        self.feed.push((event.conversation, seq));
        Ok(Appended {
            event,
            conversation: log.conversation.clone(),
            duplicate: false,
        })
    }

    /// The event at a seq (seq `n` lives at index `n - 1`).
    fn event(&self, conversation: ConversationId, seq: Seq) -> Option<(&Log, &Event)> {
        let log = self.logs.get(&conversation)?;
        let index = usize::try_from(seq.0.checked_sub(1)?).ok()?;
        Some((log, log.events.get(index)?))
    }
}

#[async_trait]
impl ConversationLog for MemoryStore {
    async fn epoch(&self) -> Result<Epoch, StoreError> {
        Ok(self.epoch.clone())
    }

    async fn create_conversation(&self, new: NewConversation) -> Result<Created, StoreError> {
        let mut state = self.state();
        let key = (new.tenant.clone(), new.visitor.clone(), new.client_id.clone());
        if let Some(id) = state.opened_by_client.get(&key) {
            let log = state.logs.get(id).ok_or(StoreError::ConversationNotFound(*id))?;
            let event = log
                .events
                .first()
                .cloned()
                .ok_or(StoreError::ConversationNotFound(*id))?;
            return Ok(Created {
                conversation: log.conversation.clone(),
                event,
                created: false,
            });
        }
        if state.logs.contains_key(&new.id) {
            return Err(StoreError::Invalid(format!(
                "conversation {} already exists",
                new.id
            )));
        }
        let event = new.created_event();
        let conversation = Conversation::new(new.id, new.tenant, new.visitor, new.group, new.at);
        let mut by_client_id = HashMap::new();
        by_client_id.insert((event.author.clone(), key.2.clone()), 0);
        state.logs.insert(
            new.id,
            Log {
                conversation: conversation.clone(),
                events: vec![event.clone()],
                by_client_id,
            },
        );
        state.opened_by_client.insert(key, new.id);
        state.feed.push((new.id, event.seq));
        Ok(Created {
            conversation,
            event,
            created: true,
        })
    }

    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        self.state().append(draft)
    }

    async fn append_batch(&self, drafts: Vec<EventDraft>) -> Vec<Result<Appended, StoreError>> {
        let mut state = self.state();
        drafts.into_iter().map(|draft| state.append(draft)).collect()
    }

    async fn events_after(
        &self,
        conversation: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let state = self.state();
        let log = state
            .logs
            .get(&conversation)
            .ok_or(StoreError::ConversationNotFound(conversation))?;
        // Seq n lives at index n - 1.
        let start = usize::try_from(after.0)
            .unwrap_or(usize::MAX)
            .min(log.events.len());
        Ok(log.events[start..].iter().take(limit).cloned().collect())
    }

    async fn event_by_client_id(
        &self,
        conversation: ConversationId,
        author: &Actor,
        client_id: &ClientId,
    ) -> Result<Option<Event>, StoreError> {
        let state = self.state();
        let Some(log) = state.logs.get(&conversation) else {
            return Ok(None);
        };
        Ok(log
            .by_client_id
            .get(&(author.clone(), client_id.clone()))
            .and_then(|&index| log.events.get(index))
            .cloned())
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        Ok(self.state().logs.get(&id).map(|log| log.conversation.clone()))
    }

    async fn conversations_of_visitor(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let state = self.state();
        let found = state
            .logs
            .values()
            .map(|log| &log.conversation)
            .filter(|c| &c.tenant == tenant && &c.visitor == visitor)
            .cloned()
            .collect();
        Ok(sorted(found, true))
    }

    async fn conversations_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let state = self.state();
        let found = state
            .logs
            .values()
            .map(|log| &log.conversation)
            .filter(|c| {
                &c.tenant == tenant
                    && match &c.state {
                        crate::model::ConversationState::Assigned { agent: owner }
                        | crate::model::ConversationState::OnHold { agent: owner, .. } => owner == agent,
                        _ => false,
                    }
            })
            .cloned()
            .collect();
        Ok(sorted(found, false))
    }

    async fn open_conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        let state = self.state();
        let found = state
            .logs
            .values()
            .map(|log| &log.conversation)
            .filter(|c| c.state.is_open())
            .cloned()
            .collect();
        Ok(sorted(found, false))
    }

    async fn put_conversation_context(&self, context: ConversationContext) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.logs.contains_key(&context.conversation) {
            return Err(StoreError::ConversationNotFound(context.conversation));
        }
        state.contexts.insert(context.conversation, context);
        Ok(())
    }

    async fn conversation_context(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationContext>, StoreError> {
        Ok(self.state().contexts.get(&conversation).cloned())
    }

    async fn record_seen(&self, marks: Vec<SeenMark>) -> Result<(), StoreError> {
        super::log::check_seen_marks(&marks)?;
        let mut state = self.state();
        for mark in marks {
            if !state.logs.contains_key(&mark.conversation) {
                continue;
            }
            let stored = state
                .seen
                .entry(mark.conversation)
                .or_default()
                .entry(mark.from)
                .or_default();
            *stored = (*stored).max(mark.seq);
        }
        Ok(())
    }

    async fn seen(&self, conversations: &[ConversationId]) -> Result<Vec<SeenMark>, StoreError> {
        let state = self.state();
        let mut marks = Vec::new();
        for &conversation in conversations {
            for (from, &seq) in state.seen.get(&conversation).into_iter().flatten() {
                marks.push(SeenMark::new(conversation, from.clone(), seq));
            }
        }
        Ok(marks)
    }

    async fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        let state = self.state();
        // Position n lives at index n - 1.
        let start = usize::try_from(after.0)
            .unwrap_or(usize::MAX)
            .min(state.feed.len());
        state.feed[start..]
            .iter()
            .take(limit)
            .zip(start + 1..)
            .map(|(&(conversation, seq), position)| {
                let (log, event) = state.event(conversation, seq).ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "internal error: feed position {position} names a missing event"
                    ))
                })?;
                Ok(FeedEntry::new(
                    FeedPosition(position as u64),
                    log.conversation.tenant.clone(),
                    event.clone(),
                ))
            })
            .collect()
    }

    async fn feed_head(&self) -> Result<FeedPosition, StoreError> {
        Ok(FeedPosition(self.state().feed.len() as u64))
    }
}

#[async_trait]
impl Directory for MemoryStore {
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError> {
        self.state()
            .visitors
            .insert((visitor.tenant.clone(), visitor.id.clone()), visitor);
        Ok(())
    }

    async fn visitor(&self, tenant: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError> {
        Ok(self.state().visitors.get(&(tenant.clone(), id.clone())).cloned())
    }

    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError> {
        self.state()
            .agents
            .insert((agent.tenant.clone(), agent.id.clone()), agent);
        Ok(())
    }

    async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        Ok(self.state().agents.get(&(tenant.clone(), id.clone())).cloned())
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        Ok(self.state().agents.values().cloned().collect())
    }

    async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .agents
            .remove(&(tenant.clone(), id.clone()))
            .is_some())
    }

    async fn put_group(&self, group: Group) -> Result<(), StoreError> {
        self.state()
            .groups
            .insert((group.tenant.clone(), group.id.clone()), group);
        Ok(())
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        Ok(self.state().groups.values().cloned().collect())
    }

    async fn delete_group(&self, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .groups
            .remove(&(tenant.clone(), id.clone()))
            .is_some())
    }

    async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError> {
        self.state()
            .entry_points
            .insert((entry.tenant.clone(), entry.id.clone()), entry);
        Ok(())
    }

    async fn delete_entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .entry_points
            .remove(&(tenant.clone(), id.clone()))
            .is_some())
    }

    async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError> {
        Ok(self.state().entry_points.values().cloned().collect())
    }
}

#[async_trait]
impl Settings for MemoryStore {
    async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), StoreError> {
        let key = (tenant.clone(), group.clone());
        let mut state = self.state();
        match hours {
            Some(hours) => state.hours.insert(key, hours),
            None => state.hours.remove(&key),
        };
        Ok(())
    }

    async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError> {
        let state = self.state();
        Ok(state
            .hours
            .iter()
            .map(|((tenant, group), hours)| GroupHours {
                tenant: tenant.clone(),
                group: group.clone(),
                hours: hours.clone(),
            })
            .collect())
    }

    async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError> {
        let mut state = self.state();
        let taken = state.quick_replies.values().any(|other| {
            other.tenant == reply.tenant
                && other.scope == reply.scope
                && other.shortcut == reply.shortcut
                && other.id != reply.id
        });
        if taken {
            return Err(StoreError::Conflict(format!(
                "shortcut {:?} is already taken in this scope",
                reply.shortcut
            )));
        }
        state
            .quick_replies
            .insert((reply.tenant.clone(), reply.id.clone()), reply);
        Ok(())
    }

    async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .quick_replies
            .remove(&(tenant.clone(), id.to_owned()))
            .is_some())
    }

    async fn quick_reply(&self, tenant: &TenantId, id: &str) -> Result<Option<QuickReply>, StoreError> {
        Ok(self
            .state()
            .quick_replies
            .get(&(tenant.clone(), id.to_owned()))
            .cloned())
    }

    async fn quick_replies(
        &self,
        tenant: &TenantId,
        scope: &QuickReplyScope,
    ) -> Result<Vec<QuickReply>, StoreError> {
        let mut found: Vec<QuickReply> = self
            .state()
            .quick_replies
            .values()
            .filter(|reply| &reply.tenant == tenant && &reply.scope == scope)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.shortcut.cmp(&b.shortcut));
        Ok(found)
    }

    async fn put_label(&self, label: Label) -> Result<(), StoreError> {
        self.state()
            .labels
            .insert((label.tenant.clone(), label.name.clone()), label);
        Ok(())
    }

    async fn delete_label(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .labels
            .remove(&(tenant.clone(), name.to_owned()))
            .is_some())
    }

    async fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>, StoreError> {
        Ok(self
            .state()
            .labels
            .values()
            .filter(|label| &label.tenant == tenant)
            .cloned()
            .collect())
    }

    async fn put_attribute_definition(&self, definition: AttributeDefinition) -> Result<(), StoreError> {
        let key = (
            definition.tenant.clone(),
            definition.object,
            definition.key.clone(),
        );
        self.state().attribute_definitions.insert(key, definition);
        Ok(())
    }

    async fn delete_attribute_definition(
        &self,
        tenant: &TenantId,
        object: AttributeObject,
        key: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .attribute_definitions
            .remove(&(tenant.clone(), object, key.to_owned()))
            .is_some())
    }

    async fn attribute_definitions(&self, tenant: &TenantId) -> Result<Vec<AttributeDefinition>, StoreError> {
        Ok(self
            .state()
            .attribute_definitions
            .values()
            .filter(|definition| &definition.tenant == tenant)
            .cloned()
            .collect())
    }

    async fn put_allowed_origins(&self, tenant: &TenantId, origins: Vec<String>) -> Result<(), StoreError> {
        self.state().origins.insert(tenant.clone(), origins);
        Ok(())
    }

    async fn allowed_origins(&self) -> Result<Vec<TenantOrigins>, StoreError> {
        let state = self.state();
        Ok(state
            .origins
            .iter()
            .map(|(tenant, origins)| TenantOrigins {
                tenant: tenant.clone(),
                origins: origins.clone(),
            })
            .collect())
    }
}

/// The feed positions (1-based) to scan, after `cursor`, in the query's order.
fn positions(feed_len: usize, query: &HistoryQuery, order: HistoryOrder) -> Box<dyn Iterator<Item = usize>> {
    let cursor = query
        .cursor
        .map(|cursor| usize::try_from(cursor.0).unwrap_or(usize::MAX));
    match order {
        HistoryOrder::NewestFirst => {
            let end = cursor.map_or(feed_len, |c| c.saturating_sub(1).min(feed_len));
            Box::new((1..=end).rev())
        }
        HistoryOrder::OldestFirst => {
            let start = cursor.map_or(1, |c| c.saturating_add(1));
            Box::new(start..=feed_len)
        }
    }
}

#[async_trait]
impl StatsCheckpoints for MemoryStore {
    async fn load_stats_checkpoint(&self) -> Result<Option<StatsCheckpoint>, StoreError> {
        Ok(self.state().stats.clone())
    }

    async fn save_stats_checkpoint(&self, checkpoint: StatsCheckpoint) -> Result<(), StoreError> {
        self.state().stats = Some(checkpoint);
        Ok(())
    }
}

#[async_trait]
impl History for MemoryStore {
    async fn search(&self, query: &HistoryQuery) -> Result<SearchPage, StoreError> {
        query.check()?;
        let limit = query.page_size();
        let needle = query.needle();
        let state = self.state();
        let mut hits = Vec::new();
        for position in positions(state.feed.len(), query, query.order) {
            if hits.len() >= limit {
                break;
            }
            let (conversation, seq) = state.feed[position - 1];
            let Some((log, event)) = state.event(conversation, seq) else {
                continue;
            };
            let Some((text, note)) = query.searchable(&event.data) else {
                continue;
            };
            if !query.admits(&log.conversation)
                || !query.in_range(event.at)
                || needle.is_some_and(|needle| !text_matches(text, needle))
            {
                continue;
            }
            hits.push(MessageHit::new(
                query,
                position as u64,
                log.conversation.clone(),
                event.seq,
                event.at,
                event.author.clone(),
                note,
                text.to_owned(),
            ));
        }
        Ok(SearchPage::new(hits, limit))
    }

    async fn conversations(&self, query: &HistoryQuery) -> Result<ConversationPage, StoreError> {
        query.check()?;
        let limit = query.page_size();
        let needle = query.needle();
        let state = self.state();
        let mut found = Vec::new();
        for position in positions(state.feed.len(), query, HistoryOrder::OldestFirst) {
            if found.len() >= limit {
                break;
            }
            let (conversation, seq) = state.feed[position - 1];
            if seq != Seq(1) {
                continue;
            }
            let Some(log) = state.logs.get(&conversation) else {
                continue;
            };
            let record = &log.conversation;
            if !query.admits(record) || !query.in_range(record.created_at) {
                continue;
            }
            if let Some(needle) = needle {
                let matched = log.events.iter().any(|event| {
                    query
                        .searchable(&event.data)
                        .is_some_and(|(text, _)| text_matches(text, needle))
                });
                if !matched {
                    continue;
                }
            }
            found.push((position as u64, record.clone()));
        }
        Ok(ConversationPage::new(found, limit))
    }
}
