//! Identifiers, seqs and timestamps.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::limits::MAX_ID_LEN;

/// An identifier was empty, too long or contained control characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {kind}: {reason}")]
#[non_exhaustive]
pub struct InvalidId {
    /// Which identifier type rejected the value.
    pub kind: &'static str,
    /// Why it was rejected.
    pub reason: &'static str,
}

fn check_id(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    if value.is_empty() {
        return Err(InvalidId {
            kind,
            reason: "must not be empty",
        });
    }
    if value.len() > MAX_ID_LEN {
        return Err(InvalidId {
            kind,
            reason: "longer than 128 bytes",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidId {
            kind,
            reason: "contains control characters",
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        // Shared, not owned: ids are cloned into every map, session and event that names them, and a clone
        // of an `Arc<str>` copies a pointer where a `String` would allocate.
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps an identifier (non-empty, at most 128 bytes, no control characters).
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check_id($kind, &value)?;
                Ok(Self(Arc::from(value)))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

string_id!(
    /// A tenant: one customer of the host (a shop, a brand). Every other record belongs to one tenant.
    TenantId,
    "tenant id"
);
string_id!(
    /// A website visitor, as identified by the host (a cookie id, a user id).
    VisitorId,
    "visitor id"
);
string_id!(
    /// A support agent.
    AgentId,
    "agent id"
);
string_id!(
    /// A skill group (department) agents belong to and conversations are routed to.
    GroupId,
    "group id"
);
string_id!(
    /// An entry point: a widget, channel or page rule that leads visitors to a group (see [`crate::entry`]).
    EntryPointId,
    "entry point id"
);
string_id!(
    /// A client-generated id that makes a request idempotent (for example a UUID made by the widget).
    ClientId,
    "client id"
);

string_id!(
    /// An attachment (an uploaded file): made by the server at upload, a UUIDv7 in simple form, so that it sorts
    /// by upload time and names its blob as it is.
    AttachmentId,
    "attachment id"
);

impl AttachmentId {
    /// A new, unique id.
    pub fn generate() -> Self {
        Self(Arc::from(Uuid::now_v7().simple().to_string()))
    }
}

/// A conversation's id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(Uuid);

impl ConversationId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl FromStr for ConversationId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConversationId({})", self.0)
    }
}

/// The position of an event in its conversation's log: 1, 2, 3… without gaps. `Seq::ZERO` means "nothing yet".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// Before the first event.
    pub const ZERO: Seq = Seq(0);

    /// The seq that follows this one.
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Timestamp(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }
}
