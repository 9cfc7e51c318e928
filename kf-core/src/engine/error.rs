//! Why a request or the engine's start failed.

use thiserror::Error;

use crate::auth::AuthError;
use crate::model::TransitionError;
use crate::protocol::{ErrorCode, ServerFrame};
use crate::store::StoreError;

/// Why a request failed. Each maps to a stable [`ErrorCode`] for the wire.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The conversation (or group) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The principal may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The conversation's state does not allow it.
    #[error(transparent)]
    InvalidState(#[from] TransitionError),
    /// The message is too large.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The request is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Too many live connections for this identity.
    #[error("too many connections: at most {0} per visitor or agent")]
    TooManyConnections(usize),
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The store failed; the request may be retried with the same client id.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// The agent (claiming, or a transfer's target) has no spare capacity, or the group is at its cap.
    #[error("at capacity: {0}")]
    AtCapacity(String),
    /// A transfer's target cannot take conversations now (offline, not accepting, not in the group).
    #[error("agent unavailable: {0}")]
    AgentUnavailable(String),
    /// The request clashes with existing data (a quick reply shortcut already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The engine is shutting down, or has shut down: nothing is written any more. Retry on another node or
    /// after the restart (with the same client id).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A seq the client gave (a subscription's cursor, a read receipt) is beyond the conversation's last seq.
    #[error("bad cursor: {0}")]
    BadCursor(String),
}

impl RequestError {
    /// The wire error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::NotFound(_) => ErrorCode::NotFound,
            RequestError::Forbidden(_) => ErrorCode::Forbidden,
            RequestError::InvalidState(_) => ErrorCode::InvalidState,
            RequestError::TooLarge { .. } => ErrorCode::TooLarge,
            RequestError::Invalid(_) => ErrorCode::InvalidFrame,
            RequestError::TooManyConnections(_) => ErrorCode::TooManyConnections,
            RequestError::Auth(AuthError::Expired) => ErrorCode::TokenExpired,
            RequestError::Auth(AuthError::Unavailable(_)) => ErrorCode::Unavailable,
            RequestError::Auth(_) => ErrorCode::InvalidToken,
            RequestError::Unavailable(_) => ErrorCode::Unavailable,
            RequestError::AtCapacity(_) => ErrorCode::AtCapacity,
            RequestError::AgentUnavailable(_) => ErrorCode::AgentUnavailable,
            RequestError::Conflict(_) => ErrorCode::Conflict,
            RequestError::BadCursor(_) => ErrorCode::BadCursor,
            RequestError::ShuttingDown => ErrorCode::Unavailable,
        }
    }

    /// The `error` frame answering a request with this id.
    pub fn to_frame(&self, id: Option<String>) -> ServerFrame {
        ServerFrame::error(id, self.code(), self.to_string())
    }
}

impl From<StoreError> for RequestError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::ConversationNotFound(id) => RequestError::NotFound(format!("conversation {id}")),
            StoreError::Transition(error) => RequestError::InvalidState(error),
            StoreError::Invalid(message) => RequestError::Invalid(message),
            StoreError::Conflict(message) => RequestError::Conflict(message),
            other => RequestError::Unavailable(other),
        }
    }
}

/// The engine failed to start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Loading agents, groups or open conversations from the store failed.
    #[error("cannot load state from the store: {0}")]
    Store(#[from] StoreError),
}
