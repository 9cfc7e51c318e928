//! [`AuditLog`]: every admin change, who made it, when, and the object before and after.
//!
//! The engine's admin operations ([`Engine::admin`](crate::engine::Engine::admin)) write one entry per change,
//! after the change succeeded; hosts and the admin API list them with [`AuditQuery`] filters, newest first.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{AgentId, TenantId, Timestamp};

/// The longest page [`AuditLog::audit_entries`] returns.
pub const MAX_AUDIT_PAGE: usize = 200;

/// The page size of a query that names none.
pub const DEFAULT_AUDIT_PAGE: usize = 50;

/// One admin change.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Numbers the entries of a store in the order they were written (given by the store; 0 before).
    pub id: u64,
    /// The tenant whose settings changed.
    pub tenant: TenantId,
    /// Who made the change (an admin's agent id).
    pub actor: AgentId,
    /// When the change was made.
    pub at: Timestamp,
    /// What was done, `<object kind>.<verb>`: `agent.put`, `agent.deactivate`, `group.delete`…
    pub action: String,
    /// The kind of object changed: `agent`, `group`, `hours`, `entry_point`, `quick_reply`, `label`.
    pub object_kind: String,
    /// The object's id (a group's id for its working hours, a label's name).
    pub object_id: String,
    /// The object before the change (`None`: it did not exist).
    pub before: Option<serde_json::Value>,
    /// The object after the change (`None`: it was deleted).
    pub after: Option<serde_json::Value>,
}

impl AuditEntry {
    /// An entry to append (its `id` is given by the store).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant: TenantId,
        actor: AgentId,
        at: Timestamp,
        action: impl Into<String>,
        object_kind: impl Into<String>,
        object_id: impl Into<String>,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Self {
        Self {
            id: 0,
            tenant,
            actor,
            at,
            action: action.into(),
            object_kind: object_kind.into(),
            object_id: object_id.into(),
            before,
            after,
        }
    }
}

/// Which entries of a tenant to list: every filter given must match. Newest first; `before` continues a page.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditQuery {
    /// The tenant (required).
    pub tenant: Option<TenantId>,
    /// Only this actor's changes.
    pub actor: Option<AgentId>,
    /// Only changes of this object kind.
    pub object_kind: Option<String>,
    /// Only changes of this object id.
    pub object_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only changes at or after this time.
    pub since: Option<Timestamp>,
    /// Only changes before this time.
    pub until: Option<Timestamp>,
    /// Only entries with an id below this one: the `next` of the previous page.
    pub before: Option<u64>,
    /// Entries per page, 1 to [`MAX_AUDIT_PAGE`] ([`DEFAULT_AUDIT_PAGE`] when absent).
    pub limit: Option<usize>,
}

impl AuditQuery {
    /// Every entry of `tenant`.
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant: Some(tenant),
            ..Self::default()
        }
    }

    /// The page size, checked: [`StoreError::Invalid`] for 0 or more than [`MAX_AUDIT_PAGE`], or no tenant.
    pub fn page_size(&self) -> Result<usize, StoreError> {
        if self.tenant.is_none() {
            return Err(StoreError::Invalid("an audit query names its tenant".into()));
        }
        match self.limit {
            None => Ok(DEFAULT_AUDIT_PAGE),
            Some(limit) if (1..=MAX_AUDIT_PAGE).contains(&limit) => Ok(limit),
            Some(limit) => Err(StoreError::Invalid(format!(
                "limit {limit}: an audit page holds 1 to {MAX_AUDIT_PAGE} entries"
            ))),
        }
    }

    /// Whether `entry` passes every filter (the tenant, the cursor and the page size aside): the rule a
    /// backend's own query must give the same answer as.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.tenant.as_ref() == Some(&entry.tenant)
            && self.actor.as_ref().is_none_or(|actor| *actor == entry.actor)
            && self
                .object_kind
                .as_ref()
                .is_none_or(|kind| *kind == entry.object_kind)
            && self.object_id.as_ref().is_none_or(|id| *id == entry.object_id)
            && self.action.as_ref().is_none_or(|action| *action == entry.action)
            && self.since.is_none_or(|since| entry.at >= since)
            && self.until.is_none_or(|until| entry.at < until)
            && self.before.is_none_or(|before| entry.id < before)
    }
}

/// One page of audit entries, newest first.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// The `before` of the next page; `None` on the last one.
    pub next: Option<u64>,
}

impl AuditPage {
    /// A page of `entries` (at most `size + 1`, newest first: one more than the page tells there is a next).
    pub fn of(mut entries: Vec<AuditEntry>, size: usize) -> Self {
        let more = entries.len() > size;
        entries.truncate(size);
        let next = if more {
            entries.last().map(|entry| entry.id)
        } else {
            None
        };
        Self { entries, next }
    }
}

/// The audit log. Object safe; held as `Arc<dyn AuditLog>`. An append is durable when it returns `Ok`.
#[async_trait]
pub trait AuditLog: Send + Sync + Debug + 'static {
    /// Stores `entry` and returns the id it was given: larger than every id given before.
    async fn append_audit(&self, entry: AuditEntry) -> Result<u64, StoreError>;

    /// One page of the entries `query` matches, newest (largest id) first.
    async fn audit_entries(&self, query: &AuditQuery) -> Result<AuditPage, StoreError>;
}

#[async_trait]
impl<T: ?Sized + AuditLog> AuditLog for Arc<T> {
    async fn append_audit(&self, entry: AuditEntry) -> Result<u64, StoreError> {
        (**self).append_audit(entry).await
    }
    async fn audit_entries(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        (**self).audit_entries(query).await
    }
}
