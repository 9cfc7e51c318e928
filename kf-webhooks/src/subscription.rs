//! Subscriptions: where a tenant's events go, signed with which secret, and which events.

use std::collections::BTreeSet;
use std::fmt;

use kf_core::model::{EventKind, TenantId};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The kinds of event a subscription can ask for; the `type` of a payload ([`EventType::name`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventType {
    /// A visitor opened a conversation (`created`).
    #[serde(rename = "conversation.created")]
    ConversationCreated,
    /// A conversation was assigned to an agent (`assigned`).
    #[serde(rename = "conversation.assigned")]
    ConversationAssigned,
    /// A conversation was handed on to another agent or group (`transferred`).
    #[serde(rename = "conversation.transferred")]
    ConversationTransferred,
    /// A conversation was closed (`closed`).
    #[serde(rename = "conversation.closed")]
    ConversationClosed,
    /// A closed conversation was opened again (`reopened`).
    #[serde(rename = "conversation.reopened")]
    ConversationReopened,
    /// A conversation became an offline message (`offline`).
    #[serde(rename = "conversation.offline")]
    ConversationOffline,
    /// A conversation was missed (`missed`).
    #[serde(rename = "conversation.missed")]
    ConversationMissed,
    /// A chat message was stored (`message`).
    #[serde(rename = "message.created")]
    MessageCreated,
    /// The visitor rated the conversation (`rated`: score 1–5, optional comment).
    #[serde(rename = "conversation.rated")]
    ConversationRated,
    /// An agent wrote a private note (`note`: text, mentions). Agents' eyes only: subscribe only endpoints of
    /// the tenant's own back office to it.
    #[serde(rename = "note.created")]
    NoteCreated,
    /// An agent put a label on the conversation (`labeled`). Agents' data: subscribe back-office endpoints only.
    #[serde(rename = "conversation.labeled")]
    ConversationLabeled,
    /// An agent took a label off the conversation (`unlabeled`).
    #[serde(rename = "conversation.unlabeled")]
    ConversationUnlabeled,
    /// An attribute of the conversation or its visitor was set or removed (`attribute_set`: object, key, typed
    /// value). Agents' data: subscribe back-office endpoints only.
    #[serde(rename = "attribute.set")]
    AttributeSet,
    /// An agent put the conversation on hold (`snoozed`: optional `until`).
    #[serde(rename = "conversation.snoozed")]
    ConversationSnoozed,
    /// A conversation on hold woke (`woken`: reason `timer`, `visitor` or `agent`).
    #[serde(rename = "conversation.woken")]
    ConversationWoken,
}

impl EventType {
    /// Every type, in a fixed order.
    pub const ALL: [EventType; 15] = [
        EventType::ConversationCreated,
        EventType::ConversationAssigned,
        EventType::ConversationTransferred,
        EventType::ConversationClosed,
        EventType::ConversationReopened,
        EventType::ConversationOffline,
        EventType::ConversationMissed,
        EventType::MessageCreated,
        EventType::ConversationRated,
        EventType::NoteCreated,
        EventType::ConversationLabeled,
        EventType::ConversationUnlabeled,
        EventType::AttributeSet,
        EventType::ConversationSnoozed,
        EventType::ConversationWoken,
    ];

    /// The type of an event kind, or `None` for a kind webhooks do not carry (yet): kinds added to kf-core later
    /// are skipped until they get a type here.
    pub fn of(kind: &EventKind) -> Option<EventType> {
        Some(match kind {
            EventKind::Created { .. } => EventType::ConversationCreated,
            EventKind::Message { .. } => EventType::MessageCreated,
            EventKind::Assigned { .. } => EventType::ConversationAssigned,
            EventKind::Transferred { .. } => EventType::ConversationTransferred,
            EventKind::Closed => EventType::ConversationClosed,
            EventKind::Reopened => EventType::ConversationReopened,
            EventKind::Offline => EventType::ConversationOffline,
            EventKind::Missed { .. } => EventType::ConversationMissed,
            EventKind::Rated { .. } => EventType::ConversationRated,
            EventKind::Note { .. } => EventType::NoteCreated,
            EventKind::Labeled { .. } => EventType::ConversationLabeled,
            EventKind::Unlabeled { .. } => EventType::ConversationUnlabeled,
            EventKind::AttributeSet { .. } => EventType::AttributeSet,
            EventKind::Snoozed { .. } => EventType::ConversationSnoozed,
            EventKind::Woken { .. } => EventType::ConversationWoken,
            // `Hidden` is what visitors get in place of a note, never stored. `EventKind` is non-exhaustive: kinds added later have no type until they are mapped here.
            _ => return None,
        })
    }

    /// The stable name, e.g. `message.created` (the payload's `type`, the `X-Kf-Event` header).
    pub fn name(self) -> &'static str {
        match self {
            EventType::ConversationCreated => "conversation.created",
            EventType::ConversationAssigned => "conversation.assigned",
            EventType::ConversationTransferred => "conversation.transferred",
            EventType::ConversationClosed => "conversation.closed",
            EventType::ConversationReopened => "conversation.reopened",
            EventType::ConversationOffline => "conversation.offline",
            EventType::ConversationMissed => "conversation.missed",
            EventType::MessageCreated => "message.created",
            EventType::ConversationRated => "conversation.rated",
            EventType::NoteCreated => "note.created",
            EventType::ConversationLabeled => "conversation.labeled",
            EventType::ConversationUnlabeled => "conversation.unlabeled",
            EventType::AttributeSet => "attribute.set",
            EventType::ConversationSnoozed => "conversation.snoozed",
            EventType::ConversationWoken => "conversation.woken",
        }
    }

    /// The type named `name` ([`EventType::name`]).
    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A subscription's id: a UUID (version 7) made at creation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionId(String);

impl SubscriptionId {
    /// A new random id.
    pub fn generate() -> Self {
        SubscriptionId(uuid::Uuid::now_v7().to_string())
    }

    /// An id as stored (at most 128 bytes, no `:` — the delivery id is `<subscription>:<position>`).
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        if id.is_empty() || id.len() > 128 || id.contains(':') || id.chars().any(char::is_control) {
            return Err(Error::Invalid(format!("bad subscription id {id:?}")));
        }
        Ok(SubscriptionId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a host sets on a subscription (create and update).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct SubscriptionSpec {
    /// Where deliveries are POSTed: an `http://` or `https://` URL.
    pub url: String,
    /// The signing secret shared with the receiver (at least 16 bytes; see [`crate::signature`]).
    pub secret: String,
    /// The event types delivered (at least one).
    pub events: BTreeSet<EventType>,
    /// An inactive subscription gets no new deliveries (events committed meanwhile are skipped) and sends none
    /// of those it has queued until it is active again.
    pub active: bool,
}

impl SubscriptionSpec {
    /// An active subscription of `events` to `url`, signed with `secret`.
    pub fn new(
        url: impl Into<String>,
        secret: impl Into<String>,
        events: impl IntoIterator<Item = EventType>,
    ) -> Self {
        Self {
            url: url.into(),
            secret: secret.into(),
            events: events.into_iter().collect(),
            active: true,
        }
    }

    /// A new random secret: 32 bytes from the operating system's generator, as 64 hex digits.
    pub fn random_secret() -> Result<String, Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| Error::Invalid(format!("no randomness: {error}")))?;
        Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    /// Active or not.
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = active;
        self
    }

    /// Checks the URL (scheme http or https, a host), the secret's length and that some event is chosen.
    pub fn validate(&self) -> Result<(), Error> {
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|_| Error::Invalid(format!("bad url {:?}", self.url)))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(Error::Invalid(format!(
                "the url must be http(s)://host…: {:?}",
                self.url
            )));
        }
        if self.secret.len() < MIN_SECRET_LEN {
            return Err(Error::Invalid(format!(
                "the secret must have at least {MIN_SECRET_LEN} bytes"
            )));
        }
        if self.events.is_empty() {
            return Err(Error::Invalid(
                "a subscription needs at least one event type".into(),
            ));
        }
        Ok(())
    }
}

/// The shortest secret a subscription accepts.
pub const MIN_SECRET_LEN: usize = 16;

/// A tenant's subscription as stored.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Subscription {
    /// Its id.
    pub id: SubscriptionId,
    /// Whose events it gets.
    pub tenant: TenantId,
    /// URL, secret, event types, active flag.
    pub spec: SubscriptionSpec,
}

impl Subscription {
    /// A subscription (for state backends and tests; hosts use [`Webhooks::create`](crate::Webhooks::create)).
    pub fn new(id: SubscriptionId, tenant: TenantId, spec: SubscriptionSpec) -> Self {
        Self { id, tenant, spec }
    }

    /// Whether it wants events of `kind`.
    pub fn wants(&self, kind: &EventKind) -> bool {
        EventType::of(kind).is_some_and(|kind| self.spec.events.contains(&kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kf_core::model::{AgentId, GroupId, MessageBody, MissedReason};

    #[test]
    fn types_map_from_kinds_and_their_names_round_trip() {
        let group = GroupId::new("support").expect("group");
        let kinds = [
            (
                EventKind::Created {
                    group: group.clone(),
                    entry: None,
                    fields: Default::default(),
                },
                "conversation.created",
            ),
            (
                EventKind::Message {
                    body: MessageBody::text("hi"),
                },
                "message.created",
            ),
            (
                EventKind::Assigned {
                    agent: AgentId::new("alice").expect("agent"),
                },
                "conversation.assigned",
            ),
            (EventKind::Closed, "conversation.closed"),
            (EventKind::Reopened, "conversation.reopened"),
            (EventKind::Offline, "conversation.offline"),
            (
                EventKind::Missed {
                    reason: MissedReason::Waited,
                },
                "conversation.missed",
            ),
            (
                EventKind::Transferred {
                    from: None,
                    agent: None,
                    group,
                    note: None,
                    handover: false,
                },
                "conversation.transferred",
            ),
            (
                EventKind::Rated {
                    score: 5,
                    comment: None,
                },
                "conversation.rated",
            ),
            (
                EventKind::Note {
                    text: "vip".into(),
                    mentions: vec![],
                },
                "note.created",
            ),
            (EventKind::Labeled { label: "VIP".into() }, "conversation.labeled"),
            (
                EventKind::Unlabeled { label: "VIP".into() },
                "conversation.unlabeled",
            ),
            (
                EventKind::AttributeSet {
                    object: kf_core::labels::AttributeObject::Conversation,
                    key: "order".into(),
                    value: Some(kf_core::labels::AttributeValue::Bool(true)),
                },
                "attribute.set",
            ),
            (EventKind::Snoozed { until: None }, "conversation.snoozed"),
            (
                EventKind::Woken {
                    reason: kf_core::model::WakeReason::Timer,
                },
                "conversation.woken",
            ),
        ];
        for (kind, name) in kinds {
            let kind = EventType::of(&kind).expect("mapped");
            assert_eq!(kind.name(), name);
            assert_eq!(EventType::from_name(name), Some(kind));
            assert_eq!(serde_json::to_value(kind).expect("json"), serde_json::json!(name));
        }
        assert_eq!(EventType::of(&EventKind::Hidden), None);
    }

    #[test]
    fn specs_are_validated() {
        let good = SubscriptionSpec::new(
            "https://hooks.example/kf",
            "0123456789abcdef",
            [EventType::MessageCreated],
        );
        assert!(good.validate().is_ok());
        for bad in [
            SubscriptionSpec {
                url: "ftp://hooks.example/".into(),
                ..good.clone()
            },
            SubscriptionSpec {
                url: "/relative".into(),
                ..good.clone()
            },
            SubscriptionSpec {
                secret: "short".into(),
                ..good.clone()
            },
            SubscriptionSpec {
                events: Default::default(),
                ..good.clone()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::Invalid(_))), "{bad:?}");
        }
        let secret = SubscriptionSpec::random_secret().expect("secret");
        assert_eq!(secret.len(), 64);
        assert!(SubscriptionId::new("a:b").is_err());
    }
}
