//! A conversation: the projection of its log, a typed state machine changed only by applying events.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::labels::{AttributeObject, AttributeValue};
use crate::limits::{MAX_ATTRIBUTES_PER_OBJECT, MAX_LABELS_PER_CONVERSATION};

use super::{AgentId, ConversationId, EventKind, GroupId, Seq, TenantId, Timestamp, VisitorId};

/// A conversation's state. Transitions happen only by applying events (see [`Conversation::apply`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConversationState {
    /// Waiting for an agent.
    Queued,
    /// Owned by an agent.
    Assigned {
        /// The owner.
        agent: AgentId,
    },
    /// Finished; a visitor message may reopen it.
    Closed,
    /// Not routed (outside working hours, or past the group's max wait): an offline message, waiting for an
    /// agent to take it.
    Offline,
    /// Parked by its agent (snoozed) until a time or the visitor's next message, whichever comes first; then it
    /// wakes: back to `agent` when that agent can take it, else queued. It does not count against the agent's
    /// capacity meanwhile (`docs/routing.md`).
    OnHold {
        /// The agent who parked it, and gets it back first.
        agent: AgentId,
        /// When it wakes by itself; absent: only at the visitor's next message (or the agent's `wake`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
}

impl ConversationState {
    /// The stable snake_case name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            ConversationState::Queued => "queued",
            ConversationState::Assigned { .. } => "assigned",
            ConversationState::Closed => "closed",
            ConversationState::Offline => "offline",
            ConversationState::OnHold { .. } => "on_hold",
        }
    }

    /// The owning agent, if assigned.
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            ConversationState::Assigned { agent } => Some(agent),
            _ => None,
        }
    }

    /// Not closed: queued, assigned, offline (an offline message still takes messages and can be taken) or on
    /// hold.
    pub fn is_open(&self) -> bool {
        !matches!(self, ConversationState::Closed)
    }
}

/// An event that the conversation's current state does not allow.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[error("a conversation that is {state} cannot take a `{event}` event")]
#[non_exhaustive]
pub struct TransitionError {
    /// The state's name.
    pub state: &'static str,
    /// The event kind's name.
    pub event: &'static str,
}

/// A conversation between one visitor and the agents of a group: the projection of its event log. The engine
/// produces it; a store backend rebuilds a stored one with [`Conversation::new`] and sets the other fields.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The visitor who opened it.
    pub visitor: VisitorId,
    /// The group it is routed to.
    pub group: GroupId,
    /// Queued, assigned or closed.
    #[serde(flatten)]
    pub state: ConversationState,
    /// The agent who owned it last (kept after close, for reopening and sticky routing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_agent: Option<AgentId>,
    /// The visitor's rating (1–5), once it rated the conversation (a `rated` event in its log). Kept after a
    /// reopen: a conversation is rated once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// The tenant's labels agents put on it (`labeled`/`unlabeled` events), by name. For agents only: see
    /// [`Conversation::for_visitors`].
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub labels: BTreeSet<String>,
    /// Its custom attributes (`attribute_set` events with `object: conversation`), by key. For agents only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// The seq of the newest event in its log.
    pub last_seq: Seq,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its last event was committed.
    pub updated_at: Timestamp,
}

impl Conversation {
    /// The state right after the `Created` event (seq 1).
    pub fn new(
        id: ConversationId,
        tenant: TenantId,
        visitor: VisitorId,
        group: GroupId,
        at: Timestamp,
    ) -> Self {
        Self {
            id,
            tenant,
            visitor,
            group,
            state: ConversationState::Queued,
            last_agent: None,
            rating: None,
            labels: BTreeSet::new(),
            attributes: BTreeMap::new(),
            last_seq: Seq(1),
            created_at: at,
            updated_at: at,
        }
    }

    /// Checks that `kind` may be appended now, without changing anything.
    pub fn check(&self, kind: &EventKind) -> Result<(), TransitionError> {
        use ConversationState as S;
        let allowed = match (&self.state, kind) {
            (_, EventKind::Created { .. }) => false,
            (S::Queued | S::Assigned { .. } | S::Offline | S::OnHold { .. }, EventKind::Message { .. }) => {
                true
            }
            // Parked by its owner; woken by a timer, the visitor, or the agent.
            (S::Assigned { .. }, EventKind::Snoozed { .. }) => true,
            (S::OnHold { .. }, EventKind::Woken { .. }) => true,
            (S::Queued | S::Offline, EventKind::Assigned { .. }) => true,
            (S::Queued | S::Assigned { .. } | S::Offline | S::OnHold { .. }, EventKind::Closed) => true,
            (S::Queued, EventKind::Offline) => true,
            (S::Closed, EventKind::Reopened) => true,
            (S::Queued | S::Assigned { .. }, EventKind::Transferred { .. }) => true,
            (_, EventKind::Missed { .. } | EventKind::Note { .. }) => true,
            // Rated once, and only after a close.
            (S::Closed, EventKind::Rated { .. }) if self.rating.is_none() => true,
            (S::Closed, EventKind::Rated { .. }) => {
                return Err(TransitionError {
                    state: "rated",
                    event: kind.name(),
                });
            }
            // Labels: each once, bounded; only one it has comes off.
            (_, EventKind::Labeled { label }) if self.labels.contains(label) => {
                return Err(TransitionError {
                    state: "labeled",
                    event: kind.name(),
                });
            }
            (_, EventKind::Labeled { .. }) if self.labels.len() >= MAX_LABELS_PER_CONVERSATION => {
                return Err(TransitionError {
                    state: "full of labels",
                    event: kind.name(),
                });
            }
            (_, EventKind::Unlabeled { label }) if !self.labels.contains(label) => {
                return Err(TransitionError {
                    state: "unlabeled",
                    event: kind.name(),
                });
            }
            (_, EventKind::Labeled { .. } | EventKind::Unlabeled { .. }) => true,
            // A new key only while there is room; a visitor's attribute is kept on the visitor.
            (
                _,
                EventKind::AttributeSet {
                    object: AttributeObject::Conversation,
                    key,
                    value: Some(_),
                },
            ) if !self.attributes.contains_key(key) && self.attributes.len() >= MAX_ATTRIBUTES_PER_OBJECT => {
                return Err(TransitionError {
                    state: "full of attributes",
                    event: kind.name(),
                });
            }
            (_, EventKind::AttributeSet { .. }) => true,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(TransitionError {
                state: self.state.name(),
                event: kind.name(),
            })
        }
    }

    /// Applies the event that will be committed with the next seq; returns that seq.
    /// On error the conversation is unchanged.
    pub fn apply(&mut self, kind: &EventKind, at: Timestamp) -> Result<Seq, TransitionError> {
        self.check(kind)?;
        match kind {
            EventKind::Assigned { agent } => {
                self.state = ConversationState::Assigned { agent: agent.clone() };
                self.last_agent = Some(agent.clone());
            }
            EventKind::Closed => self.state = ConversationState::Closed,
            EventKind::Snoozed { until } => {
                if let ConversationState::Assigned { agent } = &self.state {
                    self.state = ConversationState::OnHold {
                        agent: agent.clone(),
                        until: *until,
                    };
                }
            }
            // Queued: the engine hands it back to its agent right away when it can (like a reopen).
            EventKind::Woken { .. } => self.state = ConversationState::Queued,
            EventKind::Reopened => self.state = ConversationState::Queued,
            EventKind::Offline => self.state = ConversationState::Offline,
            EventKind::Transferred { agent, group, .. } => {
                self.group = group.clone();
                match agent {
                    Some(agent) => {
                        self.state = ConversationState::Assigned { agent: agent.clone() };
                        self.last_agent = Some(agent.clone());
                    }
                    None => self.state = ConversationState::Queued,
                }
            }
            EventKind::Rated { score, .. } => self.rating = Some(*score),
            EventKind::Labeled { label } => {
                self.labels.insert(label.clone());
            }
            EventKind::Unlabeled { label } => {
                self.labels.remove(label);
            }
            EventKind::AttributeSet {
                object: AttributeObject::Conversation,
                key,
                value,
            } => match value {
                Some(value) => {
                    self.attributes.insert(key.clone(), value.clone());
                }
                None => {
                    self.attributes.remove(key);
                }
            },
            EventKind::AttributeSet { .. } => {}
            EventKind::Created { .. }
            | EventKind::Message { .. }
            | EventKind::Missed { .. }
            | EventKind::Note { .. }
            | EventKind::Hidden => {}
        }
        self.last_seq = self.last_seq.next();
        self.updated_at = at;
        Ok(self.last_seq)
    }

    /// The record as a visitor may see it: without the labels and attributes, which are for agents only.
    pub fn for_visitors(&self) -> Conversation {
        Conversation {
            labels: BTreeSet::new(),
            attributes: BTreeMap::new(),
            ..self.clone()
        }
    }
}
