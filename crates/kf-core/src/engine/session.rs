//! A session: one connection's request handling, shared by every frame-based transport.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use super::connection::Conn;
use super::{Engine, Outbox, RequestError};
use crate::auth::Identity;
use crate::protocol::{self, ClientFrame, CloseReason, ErrorCode, PROTOCOL_VERSION, Request, ServerFrame};

/// Why a connection was refused at `hello`: the error frame to send, then the close reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The `error` frame explaining the refusal.
    pub frame: ServerFrame,
    /// How to close the connection.
    pub reason: CloseReason,
}

impl Rejection {
    fn new(id: Option<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            frame: ServerFrame::error(id, code, message),
            reason: CloseReason::for_rejected_hello(code),
        }
    }
}

pub(super) async fn accept(engine: &Engine, first_frame: &str) -> Result<(Session, Outbox), Rejection> {
    let Request { id, frame } =
        protocol::decode(first_frame).map_err(|error| Rejection::new(error.id, error.code, error.message))?;
    let ClientFrame::Hello { v, token } = frame else {
        return Err(Rejection::new(
            id,
            ErrorCode::HelloRequired,
            "the first frame must be `hello`",
        ));
    };
    if v != PROTOCOL_VERSION {
        return Err(Rejection::new(
            id,
            ErrorCode::UnsupportedVersion,
            format!("protocol version {v} is not supported; this server speaks {PROTOCOL_VERSION}"),
        ));
    }
    let identity = engine
        .authenticate(&token)
        .await
        .map_err(|error| Rejection::new(id.clone(), error.code(), error.to_string()))?;
    engine
        .connect(identity)
        .await
        .map_err(|error| Rejection::new(id, error.code(), error.to_string()))
}

/// A token bucket: `rate` requests per second, bursts up to twice that.
#[derive(Debug)]
struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        Self {
            rate,
            burst: rate * 2.0,
            tokens: rate * 2.0,
            updated: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One live connection's request side. Feed it every frame the client sends; replies and events come out of
/// the connection's [`Outbox`]. Dropping the session ends the connection's subscriptions and presence.
pub struct Session {
    engine: Engine,
    conn: Arc<Conn>,
    limiter: RateLimiter,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("connection", &self.conn.id)
            .field("identity", &self.conn.identity)
            .finish()
    }
}

impl Session {
    pub(super) fn new(engine: Engine, conn: Arc<Conn>) -> Self {
        let limiter = RateLimiter::new(engine.limits().requests_per_second);
        Self {
            engine,
            conn,
            limiter,
        }
    }

    /// Who this session belongs to.
    pub fn identity(&self) -> &Identity {
        &self.conn.identity
    }

    /// Handles one text frame from the client. Every outcome — reply, ack, error — is queued on the outbox;
    /// requests are handled in the order they arrive.
    ///
    /// Drive each call to completion: a call dropped between the store's commit and the publication would leave
    /// a committed event unannounced to live subscribers until their next resume.
    pub async fn receive(&mut self, text: &str) {
        let reply = match protocol::decode(text) {
            Ok(Request { id, frame }) => self.handle(id, frame).await,
            Err(error) => Some(error.to_frame()),
        };
        if let Some(frame) = reply {
            self.reply(&frame);
        }
    }

    /// Handles a binary frame, which the protocol does not use: answered with `unsupported_data`.
    pub fn receive_binary(&mut self) {
        self.reply(&ServerFrame::error(
            None,
            ErrorCode::UnsupportedData,
            "binary frames are not supported; send JSON text",
        ));
    }

    /// Queues a `ping` (transports call this after a silence of `ping_interval_ms`).
    pub fn ping(&self) {
        self.reply(&ServerFrame::Ping);
    }

    /// Ends the connection: the outbox yields `Close(reason)` next.
    pub fn close(&self, reason: CloseReason) {
        self.conn.outlet.close(reason);
    }

    fn reply(&self, frame: &ServerFrame) {
        // A reply that does not fit marks the client as a slow consumer; the outbox then says so.
        let _ = self.conn.outlet.push(frame.encode());
    }

    async fn handle(&mut self, id: Option<String>, frame: ClientFrame) -> Option<ServerFrame> {
        let limited = matches!(
            frame,
            ClientFrame::Open { .. }
                | ClientFrame::Send { .. }
                | ClientFrame::Typing { .. }
                | ClientFrame::Context { .. }
                | ClientFrame::Page { .. }
                | ClientFrame::Take { .. }
                | ClientFrame::PutQuickReply { .. }
                | ClientFrame::DeleteQuickReply { .. }
        );
        if limited && !self.limiter.allow() {
            let per_second = self.engine.limits().requests_per_second;
            return Some(ServerFrame::error(
                id,
                ErrorCode::RateLimited,
                format!("more than {per_second} requests per second"),
            ));
        }
        let engine = &self.engine;
        let identity = &self.conn.identity;
        let result = match frame {
            ClientFrame::Hello { .. } => {
                return Some(ServerFrame::error(
                    id,
                    ErrorCode::HelloRequired,
                    "`hello` was already accepted",
                ));
            }
            ClientFrame::Ping => return Some(ServerFrame::Pong),
            ClientFrame::Pong => return None,
            ClientFrame::Open { client_id, group } => {
                engine.open(identity, client_id, group).await.map(|opened| {
                    Some(ServerFrame::Opened {
                        id: id.clone(),
                        created: opened.created,
                        conversation: opened.conversation,
                    })
                })
            }
            ClientFrame::Subscribe {
                conversation,
                after,
                epoch,
            } => {
                let reply_id = id.clone();
                let reply = move |after, reset| ServerFrame::Subscribed {
                    id: reply_id,
                    conversation,
                    after,
                    reset,
                };
                engine
                    .subscribe(&self.conn, conversation, after, epoch.as_ref(), reply)
                    .await
                    .map(|()| None)
            }
            ClientFrame::Unsubscribe { conversation } => {
                engine.unsubscribe(&self.conn, conversation);
                Ok(Some(ServerFrame::Unsubscribed {
                    id: id.clone(),
                    conversation,
                }))
            }
            ClientFrame::Send {
                conversation,
                client_id,
                body,
            } => engine
                .send(identity, conversation, client_id.clone(), body)
                .await
                .map(|ack| {
                    Some(ServerFrame::Ack {
                        id: id.clone(),
                        conversation,
                        client_id,
                        seq: ack.seq,
                        duplicate: ack.duplicate,
                    })
                }),
            ClientFrame::Typing { conversation, active } => engine
                .typing(&self.conn, conversation, active)
                .await
                .map(|()| None),
            ClientFrame::Close { conversation } => engine.close(identity, conversation).await.map(|seq| {
                Some(ServerFrame::Closed {
                    id: id.clone(),
                    conversation,
                    seq,
                })
            }),
            // Working hours, visitor context and quick replies: engine/offline.rs and engine/agent_tools.rs.
            frame @ (ClientFrame::Context { .. }
            | ClientFrame::Page { .. }
            | ClientFrame::VisitorContext { .. }
            | ClientFrame::Take { .. }
            | ClientFrame::QuickReplies
            | ClientFrame::PutQuickReply { .. }
            | ClientFrame::DeleteQuickReply { .. }) => engine.handle_extra(identity, id.clone(), frame).await,
        };
        result.unwrap_or_else(|error: RequestError| Some(error.to_frame(id)))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.engine.disconnect(&self.conn);
    }
}
