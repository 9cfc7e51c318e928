//! A session: one connection's request handling, shared by every frame-based transport.

use std::fmt;
use std::sync::Arc;

use super::connection::Conn;
use super::{Engine, Outbox, RequestError};
use crate::auth::Identity;
use crate::cursor::Cursor;
use crate::model::{ConversationId, Seq};
use crate::protocol::{self, ClientFrame, CloseReason, ErrorCode, PROTOCOL_VERSION, Request, ServerFrame};
use crate::telemetry::TransportMetrics;

/// Why a connection was refused at `hello`: the error frame to send, then the close reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

pub(super) async fn accept(
    engine: &Engine,
    first_frame: &str,
    origin: Option<&str>,
) -> Result<(Session, Outbox), Rejection> {
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
        .check_origin(&identity.tenant, origin)
        .map_err(|error| Rejection::new(id.clone(), error.code(), error.to_string()))?;
    engine
        .connect(identity)
        .await
        .map_err(|error| Rejection::new(id, error.code(), error.to_string()))
}

/// One live connection's request side. Feed it every frame the client sends; replies and events come out of
/// the connection's [`Outbox`]. Dropping the session ends the connection's subscriptions and presence.
pub struct Session {
    engine: Engine,
    conn: Arc<Conn>,
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
        Self { engine, conn }
    }

    /// Who this session belongs to.
    pub fn identity(&self) -> &Identity {
        &self.conn.identity
    }

    /// Counts this connection in a transport's series: in `kf_connections` until it ends, every frame it
    /// [receives](Self::receive) in `kf_frames_received_total`, every frame its [`Outbox`] hands out in
    /// `kf_frames_sent_total`. Frames the transport handles itself (the `hello`) it counts with
    /// [`TransportMetrics::received`]. A second call is ignored.
    pub fn count_in(&self, transport: &TransportMetrics) {
        let _ = self
            .conn
            .outlet
            .series
            .set(transport.connected(&self.conn.identity.principal));
    }

    /// Handles one text frame from the client. Every outcome — reply, ack, error — is queued on the outbox;
    /// requests are handled in the order they arrive.
    ///
    /// Drive each call to completion: a call dropped between the store's commit and the publication would leave
    /// a committed event unannounced to live subscribers until their next resume.
    pub async fn receive(&mut self, text: &str) {
        if let Some(series) = self.conn.outlet.series.get() {
            series.received();
        }
        let reply = match protocol::decode(text) {
            Ok(Request { id, frame }) => {
                let identity = &self.conn.identity;
                self.engine.handle(identity, Some(&self.conn), id, frame).await
            }
            Err(error) => Some(error.to_frame()),
        };
        if let Some(frame) = reply {
            self.reply(&frame);
        }
    }

    /// Makes this connection follow every conversation of its principal — a visitor's open conversations, an
    /// agent's assigned ones — from `cursor`, and each one that joins later (opened, assigned) from its start.
    /// Queues `following`, then each conversation's events after its position in the cursor.
    ///
    /// This is how a stream without per-conversation `subscribe` frames (SSE) resumes with one cursor.
    pub async fn follow(&mut self, cursor: &Cursor) -> Result<(), RequestError> {
        self.engine.follow(&self.conn, cursor).await
    }

    /// Subscribes this connection to one conversation after its position in `cursor` (as a `subscribe` frame
    /// would): queues `subscribed`, then the events.
    pub async fn watch(&mut self, conversation: ConversationId, cursor: &Cursor) -> Result<(), RequestError> {
        let reset = cursor.is_stale(self.engine.epoch());
        let after = if reset {
            Seq::ZERO
        } else {
            cursor.position(conversation)
        };
        let reply = |after, reset, last_seq| ServerFrame::Subscribed {
            id: None,
            conversation,
            after,
            reset,
            last_seq,
        };
        self.engine
            .subscribe(&self.conn, conversation, after, reset, reply)
            .await
    }

    /// Handles a binary frame, which the protocol does not use: answered with `unsupported_data`.
    pub fn receive_binary(&mut self) {
        if let Some(series) = self.conn.outlet.series.get() {
            series.received();
        }
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

    /// Resolves when the connection is closed by the engine (slow consumer, shutdown, store unavailable) or by
    /// [`Session::close`], with the reason. A transport whose writer may be stuck on a stalled client (and so
    /// never see `Close` in the outbox) drops the session on this, ending its subscriptions and presence.
    pub async fn closed(&self) -> CloseReason {
        self.conn.outlet.closed().await
    }

    /// Ends the connection: the outbox yields `Close(reason)` next.
    pub fn close(&self, reason: CloseReason) {
        self.conn.outlet.close(reason);
    }

    fn reply(&self, frame: &ServerFrame) {
        // A reply that does not fit marks the client as a slow consumer; the outbox then says so.
        let _ = self.conn.outlet.push(frame.encode());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.engine.disconnect(&self.conn);
    }
}
