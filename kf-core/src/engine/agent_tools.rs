//! Visitor context (`context`, `page`, `visitor_context`) and quick replies, and the dispatch of their frames (the
//! offline-message side is in `offline.rs`).

use super::{Engine, RequestError};
use crate::auth::{Identity, Principal};
use crate::context::PageView;
use crate::model::{AgentId, Conversation, ConversationId, TenantId};
use crate::protocol::{ClientFrame, ServerFrame};
use crate::quick_replies::{self, QuickReply, QuickReplyScope};

/// The visitor context of a conversation, as an agent sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct VisitorContextView {
    /// The conversation's visitor.
    pub visitor: crate::model::VisitorId,
    /// The summary stored when the conversation was opened (or taken now when none was stored).
    pub context: Option<crate::context::ConversationContext>,
    /// The visitor's recent pages, oldest first.
    pub trail: Vec<PageView>,
    /// The visitor's other conversations, newest first.
    pub past_conversations: Vec<Conversation>,
    /// The visitor's custom attributes, by key.
    pub attributes: std::collections::BTreeMap<String, crate::labels::AttributeValue>,
}

impl Engine {
    /// Handles the frames of working hours, visitor context and quick replies.
    pub(super) async fn handle_extra(
        &self,
        identity: &Identity,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Result<Option<ServerFrame>, RequestError> {
        let frame = match frame {
            ClientFrame::Context { report } => {
                let visitor = visitor_only(identity, "context")?;
                self.inner
                    .sessions
                    .trails
                    .report(&identity.tenant, visitor, report, self.inner.clock.now())
                    .map_err(|error| RequestError::Invalid(error.to_string()))?;
                ServerFrame::Noted { id }
            }
            ClientFrame::Page { url, title } => {
                let visitor = visitor_only(identity, "page")?;
                let page = PageView {
                    url,
                    title,
                    at: self.inner.clock.now(),
                };
                self.inner
                    .sessions
                    .trails
                    .page(&identity.tenant, visitor, page)
                    .map_err(|error| RequestError::Invalid(error.to_string()))?;
                ServerFrame::Noted { id }
            }
            ClientFrame::VisitorContext { conversation } => {
                let view = self.visitor_context(identity, conversation).await?;
                ServerFrame::VisitorContext {
                    id,
                    conversation,
                    visitor: view.visitor,
                    context: view.context.map(Box::new),
                    trail: view.trail,
                    past_conversations: view.past_conversations,
                    attributes: view.attributes,
                }
            }
            ClientFrame::Take { conversation } => ServerFrame::Taken {
                id,
                conversation: self.take(identity, conversation).await?,
            },
            frame @ (ClientFrame::QuickReplies
            | ClientFrame::PutQuickReply { .. }
            | ClientFrame::DeleteQuickReply { .. }) => {
                return self.quick_reply_request(identity, id, frame).await;
            }
            other => {
                return Err(RequestError::Invalid(format!(
                    "`{}` is not handled here",
                    other.name()
                )));
            }
        };
        Ok(Some(frame))
    }

    /// An agent's own quick replies over the protocol: list, create or update, delete.
    async fn quick_reply_request(
        &self,
        identity: &Identity,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Result<Option<ServerFrame>, RequestError> {
        let frame = match frame {
            ClientFrame::QuickReplies => {
                let agent = agent_only(identity)?;
                ServerFrame::QuickReplies {
                    id,
                    quick_replies: self.quick_replies_of_agent(&identity.tenant, agent).await?,
                }
            }
            ClientFrame::PutQuickReply {
                reply_id,
                shortcut,
                text,
            } => {
                let agent = agent_only(identity)?;
                let scope = QuickReplyScope::Agent { agent: agent.clone() };
                if let Some(reply_id) = &reply_id {
                    self.own_quick_reply(&identity.tenant, agent, reply_id, true)
                        .await?;
                }
                let quick_reply = self
                    .put_quick_reply(&identity.tenant, scope, reply_id, shortcut, text)
                    .await?;
                ServerFrame::QuickReply { id, quick_reply }
            }
            ClientFrame::DeleteQuickReply { reply_id } => {
                let agent = agent_only(identity)?;
                self.own_quick_reply(&identity.tenant, agent, &reply_id, false)
                    .await?;
                self.delete_quick_reply(&identity.tenant, &reply_id).await?;
                ServerFrame::QuickReplyDeleted { id, reply_id }
            }
            other => {
                return Err(RequestError::Invalid(format!(
                    "`{}` is not a quick reply request",
                    other.name()
                )));
            }
        };
        Ok(Some(frame))
    }

    /// Stores the visitor's context summary with a conversation just opened: one write, none when the visitor
    /// reported nothing. A failure is logged, not returned: the conversation itself is committed.
    pub(super) async fn store_visitor_context(&self, conversation: &Conversation) {
        let Some(summary) = self
            .inner
            .sessions
            .trails
            .summary(conversation, self.inner.clock.now())
        else {
            return;
        };
        if let Err(error) = self.inner.log.put_conversation_context(summary).await {
            tracing::warn!(conversation = %conversation.id, %error, "visitor context not stored");
        }
    }

    /// The visitor context of a conversation for an agent who may read it (visitors: `forbidden`).
    pub async fn visitor_context(
        &self,
        identity: &Identity,
        conversation: ConversationId,
    ) -> Result<VisitorContextView, RequestError> {
        agent_only(identity)?;
        let record = self.readable(identity, conversation).await?;
        let store = &self.inner.log;
        let trails = &self.inner.sessions.trails;
        let context = match store.conversation_context(conversation).await? {
            Some(context) => Some(context),
            None => trails.summary(&record, self.inner.clock.now()),
        };
        let mut past_conversations = store
            .conversations_of_visitor(&record.tenant, &record.visitor)
            .await?;
        past_conversations.retain(|c| c.id != conversation);
        past_conversations.truncate(self.limits().past_conversations);
        let attributes = self
            .inner
            .directory
            .visitor(&record.tenant, &record.visitor)
            .await?
            .map(|visitor| visitor.attributes)
            .unwrap_or_default();
        Ok(VisitorContextView {
            attributes,
            context,
            trail: trails.pages(&record.tenant, &record.visitor),
            past_conversations,
            visitor: record.visitor,
        })
    }

    /// An agent's quick replies: its own, then those of its groups, each ordered by shortcut.
    pub async fn quick_replies_of_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<QuickReply>, RequestError> {
        let store = &self.inner.settings;
        let mut all = store
            .quick_replies(tenant, &QuickReplyScope::Agent { agent: agent.clone() })
            .await?;
        let groups = self
            .inner
            .routing
            .ledger
            .agent(tenant, agent)
            .map(|record| record.groups)
            .unwrap_or_default();
        for group in groups {
            all.extend(
                store
                    .quick_replies(tenant, &QuickReplyScope::Group { group })
                    .await?,
            );
        }
        Ok(all)
    }

    /// Creates (`reply_id` absent: a new id is made) or replaces a quick reply of any scope — the host's admin
    /// API; agents manage their own over the protocol. Validated; a shortcut taken in the scope is `Conflict`.
    pub async fn put_quick_reply(
        &self,
        tenant: &TenantId,
        scope: QuickReplyScope,
        reply_id: Option<String>,
        shortcut: String,
        text: String,
    ) -> Result<QuickReply, RequestError> {
        let reply = QuickReply {
            // Time-ordered, like conversation ids.
            id: reply_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            tenant: tenant.clone(),
            scope,
            shortcut,
            text,
        };
        reply
            .validate()
            .map_err(|error| RequestError::Invalid(error.to_string()))?;
        let store = &self.inner.settings;
        let existing = store.quick_replies(tenant, &reply.scope).await?;
        let most = self.limits().quick_replies_per_scope;
        if existing.len() >= most && !existing.iter().any(|r| r.id == reply.id) {
            return Err(RequestError::Invalid(format!(
                "at most {most} quick replies per agent or group"
            )));
        }
        store.put_quick_reply(reply.clone()).await?;
        Ok(reply)
    }

    /// Deletes a quick reply of any scope (the host's admin API); false when there was none.
    pub async fn delete_quick_reply(&self, tenant: &TenantId, reply_id: &str) -> Result<bool, RequestError> {
        Ok(self.inner.settings.delete_quick_reply(tenant, reply_id).await?)
    }

    /// Checks that `reply_id` is the agent's own (or, when `may_be_new`, free).
    async fn own_quick_reply(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        reply_id: &str,
        may_be_new: bool,
    ) -> Result<(), RequestError> {
        quick_replies::validate_id(reply_id).map_err(|error| RequestError::Invalid(error.to_string()))?;
        match self.inner.settings.quick_reply(tenant, reply_id).await? {
            None if may_be_new => Ok(()),
            None => Err(RequestError::NotFound(format!("quick reply {reply_id}"))),
            Some(reply) if reply.scope == (QuickReplyScope::Agent { agent: agent.clone() }) => Ok(()),
            Some(_) => Err(RequestError::Forbidden(format!(
                "quick reply {reply_id} is not yours (group quick replies are managed by the host)"
            ))),
        }
    }
}

fn visitor_only<'a>(identity: &'a Identity, what: &str) -> Result<&'a crate::model::VisitorId, RequestError> {
    match &identity.principal {
        Principal::Visitor(visitor) => Ok(visitor),
        Principal::Agent(_) => Err(RequestError::Forbidden(format!("only visitors send `{what}`"))),
    }
}

fn agent_only(identity: &Identity) -> Result<&AgentId, RequestError> {
    match &identity.principal {
        Principal::Agent(agent) => Ok(agent),
        Principal::Visitor(_) => Err(RequestError::Forbidden("only agents may do this".into())),
    }
}
