//! An in-memory [`Store`]: a complete backend for single-process deployments, tests and demos.
//! Nothing survives the process; its epoch is new every time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Appended, Created, Epoch, EventDraft, GroupHours, NewConversation, Store, StoreError};
use crate::context::ConversationContext;
use crate::entry::EntryPoint;
use crate::hours::WorkingHours;
use crate::model::{
    Actor, Agent, AgentId, ClientId, Conversation, ConversationId, EntryPointId, Event, Group, GroupId, Seq,
    TenantId, Visitor, VisitorId,
};
use crate::quick_replies::{QuickReply, QuickReplyScope};

/// A [`Store`] that keeps everything in memory.
#[derive(Debug)]
pub struct MemoryStore {
    epoch: Epoch,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    logs: HashMap<ConversationId, Log>,
    opened_by_client: HashMap<(TenantId, VisitorId, ClientId), ConversationId>,
    visitors: HashMap<(TenantId, VisitorId), Visitor>,
    agents: BTreeMap<(TenantId, AgentId), Agent>,
    groups: BTreeMap<(TenantId, GroupId), Group>,
    hours: BTreeMap<(TenantId, GroupId), WorkingHours>,
    contexts: HashMap<ConversationId, ConversationContext>,
    quick_replies: BTreeMap<(TenantId, String), QuickReply>,
    entry_points: BTreeMap<(TenantId, EntryPointId), EntryPoint>,
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

#[async_trait]
impl Store for MemoryStore {
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
        Ok(Created {
            conversation,
            event,
            created: true,
        })
    }

    async fn append(&self, draft: EventDraft) -> Result<Appended, StoreError> {
        let mut state = self.state();
        let log = state
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
        Ok(Appended {
            event,
            conversation: log.conversation.clone(),
            duplicate: false,
        })
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
            .filter(|c| &c.tenant == tenant && c.state.agent() == Some(agent))
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

    async fn put_group(&self, group: Group) -> Result<(), StoreError> {
        self.state()
            .groups
            .insert((group.tenant.clone(), group.id.clone()), group);
        Ok(())
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        Ok(self.state().groups.values().cloned().collect())
    }

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
