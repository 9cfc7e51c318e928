//! Quick replies: canned responses an agent inserts by shortcut.
//!
//! Each belongs to one agent (managed by that agent over the protocol) or to one group (managed by the host
//! through [`Engine`](crate::Engine) methods). An agent's list is its own plus those of its groups. A shortcut
//! is unique within its scope (the agent's own, or one group's).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::{MAX_QUICK_REPLY_BYTES, MAX_QUICK_REPLY_ID_BYTES, MAX_SHORTCUT_BYTES};
use crate::model::{AgentId, GroupId, TenantId};

/// Whose quick reply it is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum QuickReplyScope {
    /// One agent's own.
    Agent {
        /// The agent.
        agent: AgentId,
    },
    /// Shared by the agents of a group.
    Group {
        /// The group.
        group: GroupId,
    },
}

/// A canned response.
///
/// ```
/// use kf_core::model::{GroupId, TenantId};
/// use kf_core::quick_replies::{QuickReply, QuickReplyScope};
///
/// let scope = QuickReplyScope::Group { group: GroupId::new("support").unwrap() };
/// let reply = QuickReply::new(TenantId::new("shop").unwrap(), "greet", scope, "hi", "Hello! How can I help?");
/// assert!(reply.validate().is_ok());
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuickReply {
    /// Its id (unique per tenant; made by the server when a client creates one).
    pub id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// Agent or group.
    #[serde(flatten)]
    pub scope: QuickReplyScope,
    /// What the agent types to insert it: lowercase letters, digits, `-` and `_`.
    pub shortcut: String,
    /// The text inserted.
    pub text: String,
}

/// A quick reply was refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum QuickReplyError {
    /// The shortcut is empty, too long, or has characters other than `a-z`, `0-9`, `-`, `_`.
    #[error("shortcut must be 1 to {MAX_SHORTCUT_BYTES} characters of a-z, 0-9, '-' and '_'")]
    InvalidShortcut,
    /// The text is empty (or only whitespace), too long, or has control characters other than newlines/tabs.
    #[error(
        "text must be 1 to {MAX_QUICK_REPLY_BYTES} bytes, without control characters other than newline and tab"
    )]
    InvalidText,
    /// The id is empty, too long or has characters other than ASCII letters, digits, `-` and `_`.
    #[error(
        "quick reply id must be 1 to {MAX_QUICK_REPLY_ID_BYTES} characters of A-Z, a-z, 0-9, '-' and '_'"
    )]
    InvalidId,
}

impl QuickReply {
    /// A quick reply `id` of `scope`, inserted by `shortcut`. Not validated: see [`QuickReply::validate`].
    pub fn new(
        tenant: TenantId,
        id: impl Into<String>,
        scope: QuickReplyScope,
        shortcut: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            tenant,
            scope,
            shortcut: shortcut.into(),
            text: text.into(),
        }
    }

    /// Checks the id, the shortcut's charset and length, and the text's length.
    pub fn validate(&self) -> Result<(), QuickReplyError> {
        validate_id(&self.id)?;
        let shortcut_ok = !self.shortcut.is_empty()
            && self.shortcut.len() <= MAX_SHORTCUT_BYTES
            && self
                .shortcut
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !shortcut_ok {
            return Err(QuickReplyError::InvalidShortcut);
        }
        let text_ok = !self.text.trim().is_empty()
            && self.text.len() <= MAX_QUICK_REPLY_BYTES
            && !self
                .text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t');
        if !text_ok {
            return Err(QuickReplyError::InvalidText);
        }
        Ok(())
    }
}

/// Checks a quick reply id.
pub fn validate_id(id: &str) -> Result<(), QuickReplyError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_QUICK_REPLY_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(QuickReplyError::InvalidId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(shortcut: &str, text: &str) -> QuickReply {
        QuickReply {
            id: "qr-1".into(),
            tenant: "shop".parse().expect("id"),
            scope: QuickReplyScope::Agent {
                agent: "alice".parse().expect("id"),
            },
            shortcut: shortcut.into(),
            text: text.into(),
        }
    }

    #[test]
    fn shortcuts_texts_and_ids_are_validated() {
        assert_eq!(reply("greet", "Hello!\nHow can I help?").validate(), Ok(()));
        assert_eq!(reply("ship_2-days", "x").validate(), Ok(()));
        for bad in ["", "Greet", "with space", "/greet", "ümlaut", &"x".repeat(33)] {
            assert_eq!(
                reply(bad, "x").validate(),
                Err(QuickReplyError::InvalidShortcut),
                "{bad:?}"
            );
        }
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(MAX_QUICK_REPLY_BYTES + 1)] {
            assert_eq!(
                reply("ok", bad).validate(),
                Err(QuickReplyError::InvalidText),
                "{bad:?}"
            );
        }
        let mut bad_id = reply("ok", "x");
        bad_id.id = "a/b".into();
        assert_eq!(bad_id.validate(), Err(QuickReplyError::InvalidId));
    }

    #[test]
    fn json_shape_is_flat() {
        let json = serde_json::to_value(reply("greet", "Hi")).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"id": "qr-1", "tenant": "shop", "scope": "agent", "agent": "alice", "shortcut": "greet", "text": "Hi"})
        );
        let group: QuickReply = serde_json::from_value(serde_json::json!(
            {"id": "g1", "tenant": "shop", "scope": "group", "group": "support", "shortcut": "hours", "text": "9-5"}
        ))
        .expect("parse");
        assert_eq!(
            group.scope,
            QuickReplyScope::Group {
                group: "support".parse().expect("id")
            }
        );
    }
}
