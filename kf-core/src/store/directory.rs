//! [`Directory`]: who and what a tenant has: visitors, agents, groups and entry points.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use super::StoreError;
use crate::entry::EntryPoint;
use crate::model::{Agent, AgentId, EntryPointId, Group, GroupId, TenantId, Visitor, VisitorId};

/// The directory: visitor, agent, group and entry point records. Object safe; held as `Arc<dyn Directory>` (or
/// as part of a [`Store`](super::Store)). Every write replaces the record with the same (tenant, id) and is
/// durable when it returns `Ok`.
#[async_trait]
pub trait Directory: Send + Sync + Debug + 'static {
    /// Creates or replaces a visitor record.
    async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError>;

    /// A visitor record.
    async fn visitor(&self, tenant: &TenantId, id: &VisitorId) -> Result<Option<Visitor>, StoreError>;

    /// Creates or replaces an agent record.
    async fn put_agent(&self, agent: Agent) -> Result<(), StoreError>;

    /// An agent record.
    async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError>;

    /// Every agent of every tenant, ordered by (tenant, id).
    async fn agents(&self) -> Result<Vec<Agent>, StoreError>;

    /// Deletes an agent record; false when there was none. Conversations it had keep its id.
    async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> Result<bool, StoreError>;

    /// Creates or replaces a group record.
    async fn put_group(&self, group: Group) -> Result<(), StoreError>;

    /// Every group of every tenant, ordered by (tenant, id).
    async fn groups(&self) -> Result<Vec<Group>, StoreError>;

    /// Deletes a group record; false when there was none. Its working hours are the settings' to remove.
    async fn delete_group(&self, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError>;

    /// Creates or replaces an entry point (by tenant and id).
    async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError>;

    /// Deletes an entry point; false when there was none.
    async fn delete_entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Result<bool, StoreError>;

    /// Every entry point of every tenant, ordered by (tenant, id). Read when an engine starts.
    async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError>;
}

macro_rules! forward_directory {
    ($pointer:ident) => {
        #[async_trait]
        impl<T: ?Sized + Directory> Directory for $pointer<T> {
            async fn put_visitor(&self, visitor: Visitor) -> Result<(), StoreError> {
                (**self).put_visitor(visitor).await
            }
            async fn visitor(
                &self,
                tenant: &TenantId,
                id: &VisitorId,
            ) -> Result<Option<Visitor>, StoreError> {
                (**self).visitor(tenant, id).await
            }
            async fn put_agent(&self, agent: Agent) -> Result<(), StoreError> {
                (**self).put_agent(agent).await
            }
            async fn agent(&self, tenant: &TenantId, id: &AgentId) -> Result<Option<Agent>, StoreError> {
                (**self).agent(tenant, id).await
            }
            async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
                (**self).agents().await
            }
            async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> Result<bool, StoreError> {
                (**self).delete_agent(tenant, id).await
            }
            async fn put_group(&self, group: Group) -> Result<(), StoreError> {
                (**self).put_group(group).await
            }
            async fn groups(&self) -> Result<Vec<Group>, StoreError> {
                (**self).groups().await
            }
            async fn delete_group(&self, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError> {
                (**self).delete_group(tenant, id).await
            }
            async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), StoreError> {
                (**self).put_entry_point(entry).await
            }
            async fn delete_entry_point(
                &self,
                tenant: &TenantId,
                id: &EntryPointId,
            ) -> Result<bool, StoreError> {
                (**self).delete_entry_point(tenant, id).await
            }
            async fn entry_points(&self) -> Result<Vec<EntryPoint>, StoreError> {
                (**self).entry_points().await
            }
        }
    };
}

forward_directory!(Arc);
forward_directory!(Box);
