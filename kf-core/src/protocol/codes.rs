//! Stable error codes of `error` frames and the close reasons of a connection.

use serde::{Deserialize, Serialize};

/// Stable error codes of `error` frames. Clients branch on these; messages are for people.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not a JSON object.
    BadJson,
    /// The frame's `type` is not one the server knows.
    UnknownType,
    /// A field is missing or has the wrong type.
    InvalidFrame,
    /// Binary frames are not part of the protocol.
    UnsupportedData,
    /// The `hello` asked for a protocol version the server does not speak.
    UnsupportedVersion,
    /// The first frame was not `hello`, or `hello` was sent twice.
    HelloRequired,
    /// The token is malformed, forged or unknown.
    InvalidToken,
    /// The token has expired.
    TokenExpired,
    /// The principal may not do this (another visitor's conversation, another tenant, not the owner…).
    Forbidden,
    /// No such conversation (or group).
    NotFound,
    /// The conversation's state does not allow this (a message to a closed conversation…).
    InvalidState,
    /// The message is larger than `max_text_bytes`.
    TooLarge,
    /// Too many requests; slow down.
    RateLimited,
    /// Too many live connections for this visitor or agent.
    TooManyConnections,
    /// The client did not read its frames fast enough and is disconnected; it should reconnect and resume.
    SlowConsumer,
    /// The store is unavailable; retry later with the same client id.
    Unavailable,
    /// A seq the client gave (`subscribe.after`, `read.seq`, a stream cursor's position) is beyond the
    /// conversation's last seq: the client's cursor does not describe this log.
    BadCursor,
    /// An unexpected server error.
    Internal,
    /// The request clashes with existing data (a quick reply shortcut already taken).
    Conflict,
    /// The agent (the claiming one, or a transfer's target) has no spare capacity, or the group is at its cap.
    AtCapacity,
    /// A transfer's target cannot take conversations now: not connected, a status other than online, or not in
    /// the group.
    AgentUnavailable,
}

impl ErrorCode {
    /// The code's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::UnsupportedData => "unsupported_data",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::Internal => "internal",
            ErrorCode::Conflict => "conflict",
            ErrorCode::AtCapacity => "at_capacity",
            ErrorCode::AgentUnavailable => "agent_unavailable",
        }
    }
}

/// Why the server ends a connection. Each transport maps it to its own signal (a WebSocket close code, an SSE
/// error event); see [`CloseReason::websocket_code`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client did not read fast enough; it should reconnect and resume.
    SlowConsumer,
    /// No `hello`, or a `hello` that failed authentication.
    Unauthenticated,
    /// Nothing received within the idle timeout.
    IdleTimeout,
    /// The server is shutting down; reconnect elsewhere or later.
    Shutdown,
    /// The client broke the protocol in a way that ends the connection (including a `hello` that is not valid).
    ProtocolError,
    /// The identity already holds [`Limits::connections_per_identity`](crate::limits::Limits::connections_per_identity) connections.
    TooManyConnections,
    /// The store could not serve the connection; reconnect after a pause and resume.
    Unavailable,
}

impl CloseReason {
    /// The WebSocket close code: 4008 slow consumer, 4001 unauthenticated, 4002 idle timeout, 4029 too many
    /// connections, 1001 shutdown, 1002 protocol error, 1013 unavailable (try again later).
    pub fn websocket_code(self) -> u16 {
        match self {
            CloseReason::SlowConsumer => 4008,
            CloseReason::Unauthenticated => 4001,
            CloseReason::IdleTimeout => 4002,
            CloseReason::TooManyConnections => 4029,
            CloseReason::Shutdown => 1001,
            CloseReason::ProtocolError => 1002,
            CloseReason::Unavailable => 1013,
        }
    }

    /// How to close a connection whose `hello` failed with `code`.
    pub fn for_rejected_hello(code: ErrorCode) -> CloseReason {
        match code {
            ErrorCode::InvalidToken | ErrorCode::TokenExpired | ErrorCode::Forbidden => {
                CloseReason::Unauthenticated
            }
            ErrorCode::TooManyConnections => CloseReason::TooManyConnections,
            ErrorCode::Unavailable | ErrorCode::Internal => CloseReason::Unavailable,
            _ => CloseReason::ProtocolError,
        }
    }

    /// A short text for the close frame.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::Unauthenticated => "unauthenticated",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::Shutdown => "server shutdown",
            CloseReason::ProtocolError => "protocol error",
            CloseReason::TooManyConnections => "too many connections",
            CloseReason::Unavailable => "try again later",
        }
    }
}
