//! The admin operations: what an admin of a tenant changes (agents, groups, working hours, entry points, quick
//! replies, labels, allowed origins), each checked, applied live, stored, and written to the audit log.
//!
//! [`Engine::admin`] checks the caller's role once and returns an [`Admin`] handle bound to its tenant; every
//! operation looks objects up in that tenant only (another tenant's object is `NotFound`). Each change is made
//! through the engine's own write-through setters, so it takes effect at once (queues drain, the next `open` sees
//! new hours), and then recorded in the audit log: one entry per change, written only when the change succeeded.
//! Should the audit write fail, the operation answers the store error although the change was made: repeating
//! it changes nothing more and writes the entry.

use serde::Serialize;

use super::router::GroupInUse;
use super::{Engine, RequestError, require_role};
use crate::auth::{Identity, Role};
use crate::entry::EntryPoint;
use crate::hours::WorkingHours;
use crate::labels::Label;
use crate::model::{Agent, AgentId, EntryPointId, EventKind, Group, GroupId, TenantId};
use crate::origin::OriginPattern;
use crate::protocol::CloseReason;
use crate::quick_replies::{QuickReply, QuickReplyScope};
use crate::store::{AuditEntry, AuditPage, AuditQuery, EventDraft};

use super::pipeline::Command;

/// The most conversations an agent may be given at once.
pub const MAX_AGENT_CAPACITY: u32 = 1_000;

/// The most web origins a tenant may allow.
pub const MAX_ORIGINS: usize = 100;

/// The longest agent or group name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// An admin's handle on its tenant, from [`Engine::admin`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Admin {
    engine: Engine,
    actor: AgentId,
    tenant: TenantId,
}

impl Engine {
    /// The admin operations for `identity`, which must be an agent with the [`Role::Admin`] role (else
    /// [`RequestError::Forbidden`]); they act on its tenant only.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use kf_core::auth::{Identity, Role, SignedTokens};
    /// # use kf_core::clock::SystemClock;
    /// # use kf_core::model::{Agent, Group, GroupId, TenantId};
    /// # use kf_core::store::{AuditQuery, MemoryStore};
    /// # use kf_core::Engine;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tokens = SignedTokens::new(&[7; 32], Arc::new(SystemClock))?;
    /// # let engine = Engine::builder(Arc::new(MemoryStore::new()), Arc::new(tokens)).build().await?;
    /// let shop = TenantId::new("shop")?;
    /// let boss = Identity::agent(shop.clone(), "boss".parse()?).with_role(Role::Admin);
    /// let admin = engine.admin(&boss)?;
    /// admin.put_group(Group::new(shop.clone(), GroupId::new("support")?, "Support")).await?;
    /// let alice = Agent::new(shop.clone(), "alice".parse()?, "Alice", 3).with_groups([GroupId::new("support")?]);
    /// admin.put_agent(alice).await?;
    /// admin.deactivate_agent(&"alice".parse()?).await?;
    /// let page = admin.audit(AuditQuery::new(shop)).await?;
    /// assert_eq!(page.entries[0].action, "agent.deactivate");
    /// # Ok(())
    /// # }
    /// ```
    pub fn admin(&self, identity: &Identity) -> Result<Admin, RequestError> {
        let actor = require_role(identity, Role::Admin)?.clone();
        Ok(Admin {
            engine: self.clone(),
            actor,
            tenant: identity.tenant.clone(),
        })
    }
}

fn json(value: &impl Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

fn check_name(what: &str, name: &str) -> Result<(), RequestError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(RequestError::Invalid(format!(
            "{what} name: 1 to {MAX_NAME_BYTES} bytes, not blank, no control characters"
        )));
    }
    Ok(())
}

impl Admin {
    /// The tenant administered.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The admin acting.
    pub fn actor(&self) -> &AgentId {
        &self.actor
    }

    async fn record(
        &self,
        action: &str,
        object_id: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), RequestError> {
        let kind = action.split_once('.').map_or(action, |(kind, _)| kind);
        let entry = AuditEntry::new(
            self.tenant.clone(),
            self.actor.clone(),
            self.engine.inner.clock.now(),
            action,
            kind,
            object_id,
            before,
            after,
        );
        self.engine.inner.audit.append_audit(entry).await?;
        Ok(())
    }

    fn own<T>(&self, tenant: &TenantId, value: T) -> Result<T, RequestError> {
        if tenant == &self.tenant {
            Ok(value)
        } else {
            Err(RequestError::Invalid(format!(
                "the record names tenant {tenant}; you administer {}",
                self.tenant
            )))
        }
    }

    // ---- agents ----

    /// The tenant's agents, ordered by id.
    pub fn agents(&self) -> Vec<Agent> {
        self.engine.inner.routing.ledger.agents(&self.tenant)
    }

    /// One agent (`NotFound` for an unknown one).
    pub fn agent(&self, id: &AgentId) -> Result<Agent, RequestError> {
        self.engine
            .agent(&self.tenant, id)
            .ok_or_else(|| RequestError::NotFound(format!("agent {id}")))
    }

    /// Creates or replaces an agent (name, groups, capacities, active). Its groups must exist, its per-group
    /// capacities name only its groups. Queues drain at once if it can take more; made inactive, it is handed
    /// on as by [`Admin::deactivate_agent`].
    pub async fn put_agent(&self, agent: Agent) -> Result<Agent, RequestError> {
        let agent = self.own(&agent.tenant, agent.clone())?;
        check_name("agent", &agent.name)?;
        if agent.capacity > MAX_AGENT_CAPACITY {
            return Err(RequestError::Invalid(format!(
                "capacity {}: at most {MAX_AGENT_CAPACITY}",
                agent.capacity
            )));
        }
        let ledger = &self.engine.inner.routing.ledger;
        for (n, group) in agent.groups.iter().enumerate() {
            if !ledger.has_group(&self.tenant, group) {
                return Err(RequestError::Invalid(format!("unknown group {group}")));
            }
            if agent.groups[..n].contains(group) {
                return Err(RequestError::Invalid(format!("group {group} is listed twice")));
            }
        }
        if let Some(group) = agent.group_capacity.keys().find(|g| !agent.groups.contains(g)) {
            return Err(RequestError::Invalid(format!(
                "a capacity for group {group}, which the agent is not in"
            )));
        }
        let before = self.engine.agent(&self.tenant, &agent.id);
        self.engine.put_agent(agent.clone()).await?;
        if !agent.active {
            self.hand_on(&agent.id).await;
        }
        let action = if before.is_some() {
            "agent.update"
        } else {
            "agent.create"
        };
        self.record(
            action,
            agent.id.as_str(),
            before.as_ref().and_then(json),
            json(&agent),
        )
        .await?;
        Ok(agent)
    }

    /// Deactivates an agent: it takes no new conversation from now on, its live connections are closed
    /// (`unauthenticated`) and it cannot connect again, and each conversation assigned to it goes back to its
    /// group's queue (a `transferred` event by the system, through the one write path), where another agent takes
    /// it. Its record and past conversations stay; [`Admin::activate_agent`] undoes it.
    pub async fn deactivate_agent(&self, id: &AgentId) -> Result<Agent, RequestError> {
        self.set_active(id, false).await
    }

    /// Lets a deactivated agent connect and take conversations again.
    pub async fn activate_agent(&self, id: &AgentId) -> Result<Agent, RequestError> {
        self.set_active(id, true).await
    }

    async fn set_active(&self, id: &AgentId, active: bool) -> Result<Agent, RequestError> {
        let before = self.agent(id)?;
        let after = before.clone().with_active(active);
        self.engine.put_agent(after.clone()).await?;
        if !active {
            self.hand_on(id).await;
        }
        let action = if active {
            "agent.activate"
        } else {
            "agent.deactivate"
        };
        self.record(action, id.as_str(), json(&before), json(&after))
            .await?;
        Ok(after)
    }

    /// Closes an inactive agent's connections and hands its assigned conversations back to their queues.
    async fn hand_on(&self, id: &AgentId) {
        let engine = &self.engine;
        let identity = Identity::agent(self.tenant.clone(), id.clone());
        for conn in engine.inner.sessions.of(&identity) {
            conn.outlet.close(CloseReason::Unauthenticated);
        }
        let ledger = &engine.inner.routing.ledger;
        for conversation in ledger.owned_by(&self.tenant, id) {
            ledger.avoid(conversation.id, id.clone());
            let kind = EventKind::Transferred {
                from: Some(id.clone()),
                agent: None,
                group: conversation.group.clone(),
                note: Some("the agent was deactivated".into()),
                handover: false,
            };
            let draft = EventDraft::system(conversation.id, kind, engine.inner.clock.now());
            if let Err(error) = engine.commit(Command::append(draft)).await {
                // Closed or moved meanwhile: nothing is left to hand on.
                tracing::debug!(conversation = %conversation.id, %error, "deactivation: not handed on");
            }
        }
    }

    /// Deletes an agent: deactivated first (its conversations handed on), then its record removed. Its past
    /// conversations keep its id.
    pub async fn delete_agent(&self, id: &AgentId) -> Result<(), RequestError> {
        let before = self.agent(id)?;
        if before.active {
            self.engine.put_agent(before.clone().with_active(false)).await?;
            self.hand_on(id).await;
        }
        let engine = self.engine.clone();
        let (tenant, agent) = (self.tenant.clone(), id.clone());
        engine
            .clone()
            .detached(async move {
                if let Err(load) = engine.inner.routing.ledger.remove_agent(&tenant, &agent) {
                    return Err(RequestError::Conflict(format!(
                        "agent {agent} still holds {load} conversations; try again"
                    )));
                }
                engine.inner.directory.delete_agent(&tenant, &agent).await?;
                Ok(())
            })
            .await?;
        self.record("agent.delete", id.as_str(), json(&before), None)
            .await
    }

    // ---- groups ----

    /// The tenant's groups, ordered by id.
    pub fn groups(&self) -> Vec<Group> {
        self.engine.groups(&self.tenant)
    }

    /// One group (`NotFound` for an unknown one).
    pub fn group(&self, id: &GroupId) -> Result<Group, RequestError> {
        self.engine
            .group(&self.tenant, id)
            .ok_or_else(|| RequestError::NotFound(format!("group {id}")))
    }

    /// Creates or replaces a group (strategy, cap, welcome, timers, hand-over). A fallback or hand-over group
    /// must exist and be another group. Its queue drains at once if the change lets agents take more; new timers
    /// apply to the next conversations that enter it.
    pub async fn put_group(&self, group: Group) -> Result<Group, RequestError> {
        let group = self.own(&group.tenant, group.clone())?;
        check_name("group", &group.name)?;
        for (what, target) in [
            ("fallback", &group.timers.fallback),
            ("hand-over", &group.handover),
        ] {
            if let Some(target) = target {
                if target == &group.id {
                    return Err(RequestError::Invalid(format!(
                        "a group cannot be its own {what} group"
                    )));
                }
                if !self.engine.inner.routing.ledger.has_group(&self.tenant, target) {
                    return Err(RequestError::Invalid(format!("unknown {what} group {target}")));
                }
            }
        }
        if let Some(welcome) = &group.welcome
            && welcome.len() > self.engine.inner.limits.max_text_bytes
        {
            return Err(RequestError::Invalid("the welcome message is too long".into()));
        }
        let before = self.engine.group(&self.tenant, &group.id);
        self.engine.put_group(group.clone()).await?;
        let action = if before.is_some() {
            "group.update"
        } else {
            "group.create"
        };
        self.record(
            action,
            group.id.as_str(),
            before.as_ref().and_then(json),
            json(&group),
        )
        .await?;
        Ok(group)
    }

    /// Deletes a group and its working hours. Refused (`Conflict`) while an agent is in it, a conversation is
    /// open in it, an entry point leads to it or another group falls back or hands over to it.
    pub async fn delete_group(&self, id: &GroupId) -> Result<(), RequestError> {
        let before = self.group(id)?;
        if let Some(entry) = self
            .engine
            .entry_points(&self.tenant)
            .into_iter()
            .find(|entry| &entry.group == id)
        {
            return Err(RequestError::Conflict(format!(
                "entry point {} leads to group {id}",
                entry.id
            )));
        }
        let hours = self.engine.group_hours(&self.tenant, id);
        let engine = self.engine.clone();
        let (tenant, group) = (self.tenant.clone(), id.clone());
        engine
            .clone()
            .detached(async move {
                let removed = engine.inner.routing.ledger.remove_group(&tenant, &group);
                match removed {
                    Err(GroupInUse::Agents(agents)) => {
                        let agents: Vec<&str> = agents.iter().map(AgentId::as_str).collect();
                        return Err(RequestError::Conflict(format!(
                            "agents are in group {group}: {}",
                            agents.join(", ")
                        )));
                    }
                    Err(GroupInUse::Conversations(n)) => {
                        return Err(RequestError::Conflict(format!(
                            "{n} open conversations are in group {group}"
                        )));
                    }
                    Err(GroupInUse::Referenced(by)) => {
                        return Err(RequestError::Conflict(format!(
                            "group {by} falls back or hands over to group {group}"
                        )));
                    }
                    Ok(_) => {}
                }
                engine.inner.directory.delete_group(&tenant, &group).await?;
                if hours.is_some() {
                    engine
                        .inner
                        .settings
                        .put_group_hours(&tenant, &group, None)
                        .await?;
                    engine.inner.catalog.set_hours(&tenant, &group, None);
                }
                Ok(())
            })
            .await?;
        self.record("group.delete", id.as_str(), json(&before), None)
            .await
    }

    // ---- working hours ----

    /// A group's working hours (`None`: always open).
    pub fn group_hours(&self, group: &GroupId) -> Result<Option<WorkingHours>, RequestError> {
        self.group(group)?;
        Ok(self.engine.group_hours(&self.tenant, group))
    }

    /// Sets a group's working hours and holidays (`None`: always open). The next `open` in the group follows
    /// them.
    pub async fn put_group_hours(
        &self,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), RequestError> {
        let before = self.group_hours(group)?;
        self.engine
            .put_group_hours(&self.tenant, group, hours.clone())
            .await?;
        let action = if hours.is_some() {
            "hours.put"
        } else {
            "hours.delete"
        };
        self.record(
            action,
            group.as_str(),
            before.as_ref().and_then(json),
            hours.as_ref().and_then(json),
        )
        .await
    }

    // ---- entry points ----

    /// The tenant's entry points, ordered by id.
    pub fn entry_points(&self) -> Vec<EntryPoint> {
        self.engine.entry_points(&self.tenant)
    }

    /// One entry point (`NotFound` for an unknown one).
    pub fn entry_point(&self, id: &EntryPointId) -> Result<EntryPoint, RequestError> {
        self.engine
            .entry_point(&self.tenant, id)
            .ok_or_else(|| RequestError::NotFound(format!("entry point {id}")))
    }

    /// Creates or replaces an entry point (its group, welcome, page rules, pre-chat form). Its group must exist.
    pub async fn put_entry_point(&self, entry: EntryPoint) -> Result<EntryPoint, RequestError> {
        let entry = self.own(&entry.tenant, entry.clone())?;
        if !self
            .engine
            .inner
            .routing
            .ledger
            .has_group(&self.tenant, &entry.group)
        {
            return Err(RequestError::Invalid(format!("unknown group {}", entry.group)));
        }
        let before = self.engine.entry_point(&self.tenant, &entry.id);
        self.engine.put_entry_point(entry.clone()).await?;
        let action = if before.is_some() {
            "entry_point.update"
        } else {
            "entry_point.create"
        };
        self.record(
            action,
            entry.id.as_str(),
            before.as_ref().and_then(json),
            json(&entry),
        )
        .await?;
        Ok(entry)
    }

    /// Deletes an entry point.
    pub async fn delete_entry_point(&self, id: &EntryPointId) -> Result<(), RequestError> {
        let before = self.entry_point(id)?;
        self.engine.delete_entry_point(&self.tenant, id).await?;
        self.record("entry_point.delete", id.as_str(), json(&before), None)
            .await
    }

    // ---- quick replies ----

    /// A group's shared quick replies, ordered by shortcut.
    pub async fn quick_replies(&self, group: &GroupId) -> Result<Vec<QuickReply>, RequestError> {
        self.group(group)?;
        let scope = QuickReplyScope::Group { group: group.clone() };
        Ok(self
            .engine
            .inner
            .settings
            .quick_replies(&self.tenant, &scope)
            .await?)
    }

    /// Creates (`id` absent: a new id) or replaces a group's shared quick reply. Its group must exist.
    pub async fn put_quick_reply(
        &self,
        group: &GroupId,
        id: Option<String>,
        shortcut: String,
        text: String,
    ) -> Result<QuickReply, RequestError> {
        self.group(group)?;
        let before = match &id {
            Some(id) => self.quick_reply_of_tenant(id).await?,
            None => None,
        };
        let scope = QuickReplyScope::Group { group: group.clone() };
        let reply = self
            .engine
            .put_quick_reply(&self.tenant, scope, id, shortcut, text)
            .await?;
        let action = if before.is_some() {
            "quick_reply.update"
        } else {
            "quick_reply.create"
        };
        self.record(action, &reply.id, before.as_ref().and_then(json), json(&reply))
            .await?;
        Ok(reply)
    }

    async fn quick_reply_of_tenant(&self, id: &str) -> Result<Option<QuickReply>, RequestError> {
        crate::quick_replies::validate_id(id).map_err(|error| RequestError::Invalid(error.to_string()))?;
        Ok(self.engine.inner.settings.quick_reply(&self.tenant, id).await?)
    }

    /// Deletes a quick reply of the tenant (a group's or an agent's).
    pub async fn delete_quick_reply(&self, id: &str) -> Result<(), RequestError> {
        let before = self
            .quick_reply_of_tenant(id)
            .await?
            .ok_or_else(|| RequestError::NotFound(format!("quick reply {id}")))?;
        self.engine.delete_quick_reply(&self.tenant, id).await?;
        self.record("quick_reply.delete", id, json(&before), None).await
    }

    // ---- labels ----

    /// The tenant's label definitions, ordered by name.
    pub async fn labels(&self) -> Result<Vec<Label>, RequestError> {
        self.engine.labels(&self.tenant).await
    }

    /// Creates or replaces a label definition (its colour).
    pub async fn put_label(&self, label: Label) -> Result<Label, RequestError> {
        let label = self.own(&label.tenant, label.clone())?;
        let before = self.label(&label.name).await?;
        let label = self.engine.put_label(label).await?;
        let action = if before.is_some() {
            "label.update"
        } else {
            "label.create"
        };
        self.record(action, &label.name, before.as_ref().and_then(json), json(&label))
            .await?;
        Ok(label)
    }

    async fn label(&self, name: &str) -> Result<Option<Label>, RequestError> {
        Ok(self.labels().await?.into_iter().find(|label| label.name == name))
    }

    /// Deletes a label definition (conversations keep the label).
    pub async fn delete_label(&self, name: &str) -> Result<(), RequestError> {
        let before = self
            .label(name)
            .await?
            .ok_or_else(|| RequestError::NotFound(format!("label {name}")))?;
        self.engine.delete_label(&self.tenant, name).await?;
        self.record("label.delete", name, json(&before), None).await
    }

    // ---- allowed origins ----

    /// The web origins the tenant allows (`scheme://host[:port]`, `*.` subdomain wildcards).
    pub fn allowed_origins(&self) -> Vec<String> {
        let origins = self.engine.allowed_origins();
        origins.of(&self.tenant).iter().map(ToString::to_string).collect()
    }

    /// Replaces the web origins the tenant allows: pages of those sites may connect from the next handshake on.
    /// Each pattern is checked; at most [`MAX_ORIGINS`] of them.
    pub async fn put_allowed_origins(&self, origins: Vec<String>) -> Result<Vec<String>, RequestError> {
        if origins.len() > MAX_ORIGINS {
            return Err(RequestError::Invalid(format!("at most {MAX_ORIGINS} origins")));
        }
        let patterns = origins
            .iter()
            .map(|origin| OriginPattern::new(origin))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| RequestError::Invalid(error.to_string()))?;
        let before = self.allowed_origins();
        let engine = self.engine.clone();
        let (tenant, stored) = (self.tenant.clone(), origins.clone());
        self.engine
            .detached(async move {
                engine.inner.settings.put_allowed_origins(&tenant, stored).await?;
                engine.set_allowed_origins(&tenant, patterns);
                Ok(())
            })
            .await?;
        self.record("origins.put", self.tenant.as_str(), json(&before), json(&origins))
            .await?;
        Ok(origins)
    }

    // ---- audit ----

    /// One page of the tenant's audit log, newest first (the query's tenant is the admin's own).
    pub async fn audit(&self, mut query: AuditQuery) -> Result<AuditPage, RequestError> {
        query.tenant = Some(self.tenant.clone());
        Ok(self.engine.inner.audit.audit_entries(&query).await?)
    }
}

#[cfg(test)]
mod tests;
