//! Labels and custom attributes (see [`crate::labels`]): the tenant's definitions (the host's admin API), the
//! agents' `label`, `unlabel` and `set_attribute` frames, the host's attribute setters, and the pre-chat answers
//! kept as visitor attributes. A conversation's labels and attributes change only by events of its log,
//! committed through the pipeline; a visitor's attributes are kept on its directory record.

use std::collections::BTreeMap;

use super::conversations::Ack;
use super::pipeline::Command;
use super::{Engine, RequestError};
use crate::auth::{Identity, Principal};
use crate::labels::{
    AttributeDefinition, AttributeError, AttributeKind, AttributeObject, AttributeValue, Label,
    check_attribute_key, check_label_name,
};
use crate::limits::{
    MAX_ATTRIBUTE_DEFINITIONS, MAX_ATTRIBUTES_PER_OBJECT, MAX_LABELS_PER_CONVERSATION, MAX_LABELS_PER_TENANT,
};
use crate::model::{ClientId, ConversationId, EventKind, TenantId, Visitor, VisitorId};
use crate::protocol::{ClientFrame, ServerFrame};
use crate::store::EventDraft;

/// Who sets an attribute: agents may set declared keys only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setter {
    Agent,
    Host,
}

fn invalid(error: impl ToString) -> RequestError {
    RequestError::Invalid(error.to_string())
}

impl Engine {
    /// Creates or replaces one of the tenant's labels (by name) — the host's admin API. Validated
    /// ([`Label::validate`]); a tenant has at most [`MAX_LABELS_PER_TENANT`].
    pub async fn put_label(&self, label: Label) -> Result<Label, RequestError> {
        label.validate().map_err(invalid)?;
        let existing = self.inner.settings.labels(&label.tenant).await?;
        if existing.len() >= MAX_LABELS_PER_TENANT && !existing.iter().any(|l| l.name == label.name) {
            return Err(RequestError::Invalid(format!(
                "a tenant has at most {MAX_LABELS_PER_TENANT} labels"
            )));
        }
        self.inner.settings.put_label(label.clone()).await?;
        Ok(label)
    }

    /// Deletes one of the tenant's labels; false when there was none. Conversations keep it until an agent takes
    /// it off; it can no longer be added.
    pub async fn delete_label(&self, tenant: &TenantId, name: &str) -> Result<bool, RequestError> {
        Ok(self.inner.settings.delete_label(tenant, name).await?)
    }

    /// The tenant's labels, by name.
    pub async fn labels(&self, tenant: &TenantId) -> Result<Vec<Label>, RequestError> {
        Ok(self.inner.settings.labels(tenant).await?)
    }

    /// Declares (or redeclares) an attribute — the host's admin API. Values already set are not checked again.
    /// A tenant has at most [`MAX_ATTRIBUTE_DEFINITIONS`].
    pub async fn put_attribute_definition(
        &self,
        definition: AttributeDefinition,
    ) -> Result<AttributeDefinition, RequestError> {
        definition.validate().map_err(invalid)?;
        let existing = self
            .inner
            .settings
            .attribute_definitions(&definition.tenant)
            .await?;
        let known = existing
            .iter()
            .any(|d| d.object == definition.object && d.key == definition.key);
        if existing.len() >= MAX_ATTRIBUTE_DEFINITIONS && !known {
            return Err(RequestError::Invalid(format!(
                "a tenant declares at most {MAX_ATTRIBUTE_DEFINITIONS} attributes"
            )));
        }
        self.inner
            .settings
            .put_attribute_definition(definition.clone())
            .await?;
        Ok(definition)
    }

    /// Removes an attribute's declaration; false when there was none. Values already set are kept.
    pub async fn delete_attribute_definition(
        &self,
        tenant: &TenantId,
        object: AttributeObject,
        key: &str,
    ) -> Result<bool, RequestError> {
        Ok(self
            .inner
            .settings
            .delete_attribute_definition(tenant, object, key)
            .await?)
    }

    /// The tenant's attribute definitions, the visitor's first, then by key.
    pub async fn attribute_definitions(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<AttributeDefinition>, RequestError> {
        Ok(self.inner.settings.attribute_definitions(tenant).await?)
    }

    /// The host sets (or, with `None`, removes) an attribute of a conversation: an `attribute_set` event by the
    /// system. Any key (declared ones are type-checked), bounded like every attribute.
    pub async fn set_conversation_attribute(
        &self,
        conversation: ConversationId,
        key: &str,
        value: Option<AttributeValue>,
    ) -> Result<Ack, RequestError> {
        let record = self
            .inner
            .log
            .conversation(conversation)
            .await?
            .ok_or_else(|| RequestError::NotFound(format!("conversation {conversation}")))?;
        let value = self
            .checked_attribute(
                &record.tenant,
                AttributeObject::Conversation,
                key,
                value,
                Setter::Host,
            )
            .await?;
        let data = EventKind::AttributeSet {
            object: AttributeObject::Conversation,
            key: key.to_owned(),
            value,
        };
        let appended = self
            .commit(Command::append(EventDraft::system(
                conversation,
                data,
                self.inner.clock.now(),
            )))
            .await?;
        Ok(Ack {
            seq: appended.event.seq,
            duplicate: appended.duplicate,
        })
    }

    /// The host sets (or, with `None`, removes) an attribute of a visitor, on its directory record (created when
    /// the visitor has none yet). Any key (declared ones are type-checked), bounded like every attribute.
    pub async fn set_visitor_attribute(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        key: &str,
        value: Option<AttributeValue>,
    ) -> Result<Visitor, RequestError> {
        let value = self
            .checked_attribute(tenant, AttributeObject::Visitor, key, value, Setter::Host)
            .await?;
        self.write_visitor_attributes(tenant, visitor, [(key.to_owned(), value)])
            .await
    }

    /// Frames of labels and attributes: `definitions`, `label`, `unlabel`, `set_attribute`.
    pub(super) async fn labels_request(
        &self,
        identity: &Identity,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Result<Option<ServerFrame>, RequestError> {
        if !matches!(identity.principal, Principal::Agent(_)) {
            return Err(RequestError::Forbidden(format!(
                "only agents use `{}`: labels and attributes are for agents only",
                frame.name()
            )));
        }
        let (conversation, client_id, data) = match frame {
            ClientFrame::Definitions => {
                return Ok(Some(ServerFrame::Definitions {
                    id,
                    labels: self.labels(&identity.tenant).await?,
                    attributes: self.attribute_definitions(&identity.tenant).await?,
                }));
            }
            ClientFrame::Label {
                conversation,
                client_id,
                label,
            } => (conversation, client_id, EventKind::Labeled { label }),
            ClientFrame::Unlabel {
                conversation,
                client_id,
                label,
            } => (conversation, client_id, EventKind::Unlabeled { label }),
            ClientFrame::SetAttribute {
                conversation,
                client_id,
                object,
                key,
                value,
            } => (
                conversation,
                client_id,
                EventKind::AttributeSet { object, key, value },
            ),
            other => {
                return Err(RequestError::Invalid(format!(
                    "`{}` is not a label or attribute request",
                    other.name()
                )));
            }
        };
        let ack = self.tag(identity, conversation, client_id.clone(), data).await?;
        Ok(Some(ack.reply(id, conversation, client_id)))
    }

    /// An agent labels, unlabels or sets an attribute of a conversation it may read (owner, last owner, or agent
    /// of its group): checked, then committed as an event of its log. Idempotent by client id.
    async fn tag(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        client_id: ClientId,
        data: EventKind,
    ) -> Result<Ack, RequestError> {
        let author = identity.principal.actor();
        let record = self.readable(identity, conversation).await?;
        let checked = self.check_tag(&record, data).await;
        let data = match checked {
            Ok(data) => data,
            Err(refused) => {
                // A retry of a change stored already gets its original ack.
                return match self.stored_send(conversation, &author, &client_id).await? {
                    Some(ack) => Ok(ack),
                    None => Err(refused),
                };
            }
        };
        if let EventKind::AttributeSet {
            object: AttributeObject::Visitor,
            key,
            value,
        } = &data
        {
            if let Some(ack) = self.stored_send(conversation, &author, &client_id).await? {
                return Ok(ack);
            }
            self.write_visitor_attributes(&record.tenant, &record.visitor, [(key.clone(), value.clone())])
                .await?;
        }
        let draft = EventDraft {
            client_id: Some(client_id),
            ..EventDraft::new(conversation, author, data, self.inner.clock.now())
        };
        let appended = self.commit(Command::append(draft)).await?;
        Ok(Ack {
            seq: appended.event.seq,
            duplicate: appended.duplicate,
        })
    }

    /// Checks an agent's change against the tenant's definitions and the conversation as it is.
    async fn check_tag(
        &self,
        record: &crate::model::Conversation,
        data: EventKind,
    ) -> Result<EventKind, RequestError> {
        let tenant = &record.tenant;
        match &data {
            EventKind::Labeled { label } => {
                check_label_name(label).map_err(invalid)?;
                let labels = self.inner.settings.labels(tenant).await?;
                if !labels.iter().any(|known| &known.name == label) {
                    return Err(RequestError::NotFound(format!(
                        "label {label:?} (the tenant has no such label; see `definitions`)"
                    )));
                }
                if record.labels.contains(label) {
                    return Err(RequestError::Conflict(format!(
                        "the conversation has the label {label:?} already"
                    )));
                }
                if record.labels.len() >= MAX_LABELS_PER_CONVERSATION {
                    return Err(RequestError::Invalid(format!(
                        "a conversation has at most {MAX_LABELS_PER_CONVERSATION} labels"
                    )));
                }
            }
            EventKind::Unlabeled { label } if !record.labels.contains(label) => {
                return Err(RequestError::NotFound(format!(
                    "label {label:?} on this conversation"
                )));
            }
            EventKind::Unlabeled { .. } => {}
            EventKind::AttributeSet { object, key, value } => {
                let value = self
                    .checked_attribute(tenant, *object, key, value.clone(), Setter::Agent)
                    .await?;
                return Ok(EventKind::AttributeSet {
                    object: *object,
                    key: key.clone(),
                    value,
                });
            }
            _ => return Err(RequestError::Invalid("not a label or attribute change".into())),
        }
        record.check(&data)?;
        Ok(data)
    }

    /// Checks a value set under `key` on `object`: the key, the declared type (agents: declared keys only),
    /// the value itself.
    async fn checked_attribute(
        &self,
        tenant: &TenantId,
        object: AttributeObject,
        key: &str,
        value: Option<AttributeValue>,
        setter: Setter,
    ) -> Result<Option<AttributeValue>, RequestError> {
        check_attribute_key(key).map_err(invalid)?;
        let definitions = self.inner.settings.attribute_definitions(tenant).await?;
        let definition = definitions.iter().find(|d| d.object == object && d.key == key);
        match (definition, setter) {
            (None, Setter::Agent) => {
                return Err(RequestError::NotFound(
                    AttributeError::Undeclared {
                        object: object.name(),
                        key: key.to_owned(),
                    }
                    .to_string(),
                ));
            }
            (None, Setter::Host) => {}
            (Some(definition), _) => {
                if let Some(value) = &value {
                    definition.check(value).map_err(attribute_error)?;
                }
            }
        }
        if let Some(value) = &value {
            value.validate().map_err(attribute_error)?;
        }
        Ok(value)
    }

    /// Merges attributes into a visitor's record (one read, one write), a `None` value removing its key; the
    /// count stays within [`MAX_ATTRIBUTES_PER_OBJECT`].
    async fn write_visitor_attributes(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        changes: impl IntoIterator<Item = (String, Option<AttributeValue>)>,
    ) -> Result<Visitor, RequestError> {
        let directory = &self.inner.directory;
        let mut record = directory
            .visitor(tenant, visitor)
            .await?
            .unwrap_or_else(|| Visitor::new(tenant.clone(), visitor.clone(), self.inner.clock.now()));
        for (key, value) in changes {
            match value {
                Some(value) => {
                    if !record.attributes.contains_key(&key)
                        && record.attributes.len() >= MAX_ATTRIBUTES_PER_OBJECT
                    {
                        return Err(attribute_error(AttributeError::TooMany { object: "visitor" }));
                    }
                    record.attributes.insert(key, value);
                }
                None => {
                    record.attributes.remove(&key);
                }
            }
        }
        directory.put_visitor(record.clone()).await?;
        Ok(record)
    }

    /// Keeps a new conversation's pre-chat answers as its visitor's attributes (key: the field's name), typed by
    /// the tenant's visitor attribute definitions when there is one (an answer that does not parse as its type
    /// is skipped; it is still on the `created` event). A failure is logged: the conversation is committed.
    pub(super) async fn keep_prechat_answers(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        fields: &BTreeMap<String, String>,
    ) {
        if fields.is_empty() {
            return;
        }
        let definitions = match self.inner.settings.attribute_definitions(tenant).await {
            Ok(definitions) => definitions,
            Err(error) => {
                tracing::warn!(%visitor, %error, "pre-chat answers not kept as attributes");
                return;
            }
        };
        let changes: Vec<(String, Option<AttributeValue>)> = fields
            .iter()
            .filter(|(key, answer)| check_attribute_key(key).is_ok() && !answer.trim().is_empty())
            .filter_map(|(key, answer)| {
                let kind = definitions
                    .iter()
                    .find(|d| d.object == AttributeObject::Visitor && &d.key == key)
                    .map_or(AttributeKind::String, |d| d.kind);
                AttributeValue::parse(kind, answer).map(|value| (key.clone(), Some(value)))
            })
            .collect();
        if changes.is_empty() {
            return;
        }
        if let Err(error) = self.write_visitor_attributes(tenant, visitor, changes).await {
            tracing::warn!(%visitor, %error, "pre-chat answers not kept as attributes");
        }
    }
}

/// An attribute refusal as a request error: too long is `too_large`, the rest `invalid_frame`.
fn attribute_error(error: AttributeError) -> RequestError {
    match error {
        AttributeError::TooLong { size, limit } => RequestError::TooLarge { size, limit },
        other => RequestError::Invalid(other.to_string()),
    }
}
