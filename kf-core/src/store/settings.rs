//! [`Settings`]: what admins configure (working hours, quick replies, labels and attribute definitions, allowed
//! origins).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use super::StoreError;
use crate::hours::WorkingHours;
use crate::labels::{AttributeDefinition, AttributeObject, Label};
use crate::model::{GroupId, TenantId};
use crate::quick_replies::{QuickReply, QuickReplyScope};

/// The web origins a tenant allows, as stored (patterns as `origin::OriginPattern` reads them).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TenantOrigins {
    /// The tenant.
    pub tenant: TenantId,
    /// Its patterns, in the order given (empty: no other site's pages).
    pub origins: Vec<String>,
}

/// A group's working hours, as stored.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupHours {
    /// The tenant.
    pub tenant: TenantId,
    /// The group.
    pub group: GroupId,
    /// Its schedule.
    pub hours: WorkingHours,
}

/// The settings admins configure: groups' working hours and quick replies. Object safe; held as
/// `Arc<dyn Settings>` (or as part of a [`Store`](super::Store)). Every write is durable when it returns `Ok`.
#[async_trait]
pub trait Settings: Send + Sync + Debug + 'static {
    /// Sets a group's working hours, or removes them (`None`: the group is always open).
    async fn put_group_hours(
        &self,
        tenant: &TenantId,
        group: &GroupId,
        hours: Option<WorkingHours>,
    ) -> Result<(), StoreError>;

    /// Every group's working hours, ordered by (tenant, group). Read when an engine starts.
    async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError>;

    /// Creates or replaces a quick reply (by tenant and id). Fails with [`StoreError::Conflict`], storing
    /// nothing, when another quick reply of the same scope has the same shortcut.
    async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError>;

    /// Deletes a quick reply; false when there was none.
    async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;

    /// A quick reply by id.
    async fn quick_reply(&self, tenant: &TenantId, id: &str) -> Result<Option<QuickReply>, StoreError>;

    /// The quick replies of one scope, ordered by shortcut.
    async fn quick_replies(
        &self,
        tenant: &TenantId,
        scope: &QuickReplyScope,
    ) -> Result<Vec<QuickReply>, StoreError>;

    /// Creates or replaces a label definition (by tenant and name).
    async fn put_label(&self, label: Label) -> Result<(), StoreError>;

    /// Deletes a label definition; false when there was none. Conversations keep the label they have.
    async fn delete_label(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError>;

    /// A tenant's label definitions, ordered by name.
    async fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>, StoreError>;

    /// Creates or replaces an attribute definition (by tenant, object and key).
    async fn put_attribute_definition(&self, definition: AttributeDefinition) -> Result<(), StoreError>;

    /// Deletes an attribute definition; false when there was none. Values already set are kept.
    async fn delete_attribute_definition(
        &self,
        tenant: &TenantId,
        object: AttributeObject,
        key: &str,
    ) -> Result<bool, StoreError>;

    /// A tenant's attribute definitions, ordered by (object: visitor first, key).
    async fn attribute_definitions(&self, tenant: &TenantId) -> Result<Vec<AttributeDefinition>, StoreError>;

    /// Sets the web origins a tenant allows, replacing its list (an empty list is kept: no site allowed).
    async fn put_allowed_origins(&self, tenant: &TenantId, origins: Vec<String>) -> Result<(), StoreError>;

    /// Every tenant's stored origins, ordered by tenant. Read when an engine starts.
    async fn allowed_origins(&self) -> Result<Vec<TenantOrigins>, StoreError>;
}

macro_rules! forward_settings {
    ($pointer:ident) => {
        #[async_trait]
        impl<T: ?Sized + Settings> Settings for $pointer<T> {
            async fn put_group_hours(
                &self,
                tenant: &TenantId,
                group: &GroupId,
                hours: Option<WorkingHours>,
            ) -> Result<(), StoreError> {
                (**self).put_group_hours(tenant, group, hours).await
            }
            async fn group_hours(&self) -> Result<Vec<GroupHours>, StoreError> {
                (**self).group_hours().await
            }
            async fn put_quick_reply(&self, reply: QuickReply) -> Result<(), StoreError> {
                (**self).put_quick_reply(reply).await
            }
            async fn delete_quick_reply(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
                (**self).delete_quick_reply(tenant, id).await
            }
            async fn quick_reply(
                &self,
                tenant: &TenantId,
                id: &str,
            ) -> Result<Option<QuickReply>, StoreError> {
                (**self).quick_reply(tenant, id).await
            }
            async fn quick_replies(
                &self,
                tenant: &TenantId,
                scope: &QuickReplyScope,
            ) -> Result<Vec<QuickReply>, StoreError> {
                (**self).quick_replies(tenant, scope).await
            }
            async fn put_label(&self, label: Label) -> Result<(), StoreError> {
                (**self).put_label(label).await
            }
            async fn delete_label(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
                (**self).delete_label(tenant, name).await
            }
            async fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>, StoreError> {
                (**self).labels(tenant).await
            }
            async fn put_attribute_definition(
                &self,
                definition: AttributeDefinition,
            ) -> Result<(), StoreError> {
                (**self).put_attribute_definition(definition).await
            }
            async fn delete_attribute_definition(
                &self,
                tenant: &TenantId,
                object: AttributeObject,
                key: &str,
            ) -> Result<bool, StoreError> {
                (**self)
                    .delete_attribute_definition(tenant, object, key)
                    .await
            }
            async fn attribute_definitions(
                &self,
                tenant: &TenantId,
            ) -> Result<Vec<AttributeDefinition>, StoreError> {
                (**self).attribute_definitions(tenant).await
            }
            async fn put_allowed_origins(
                &self,
                tenant: &TenantId,
                origins: Vec<String>,
            ) -> Result<(), StoreError> {
                (**self).put_allowed_origins(tenant, origins).await
            }
            async fn allowed_origins(&self) -> Result<Vec<TenantOrigins>, StoreError> {
                (**self).allowed_origins().await
            }
        }
    };
}

forward_settings!(Arc);
forward_settings!(Box);
