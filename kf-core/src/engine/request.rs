//! Request handling shared by every transport: a decoded client frame in, the reply frame out.
//!
//! A connection ([`Session`](super::Session)) passes itself so that `subscribe` and `unsubscribe` can act on it;
//! a connectionless transport (HTTP POST next to an SSE stream) calls [`Engine::request`], where those frames,
//! which only make sense on a connection, are refused.

use std::sync::Arc;

use super::connection::Conn;
use super::{Engine, RequestError, Transfer};
use crate::auth::Identity;
use crate::protocol::{self, ClientFrame, ErrorCode, Request, ServerFrame};
use crate::telemetry;
use tracing::Instrument;

/// Whether a frame counts against the sender's rate (`docs/protocol.md` §12). Exhaustive on purpose: a new frame
/// kind does not compile until it is classified here.
fn is_rate_limited(frame: &ClientFrame) -> bool {
    match frame {
        ClientFrame::Open { .. }
        | ClientFrame::Send { .. }
        | ClientFrame::Typing { .. }
        | ClientFrame::Read { .. }
        | ClientFrame::Context { .. }
        | ClientFrame::Page { .. }
        | ClientFrame::Take { .. }
        | ClientFrame::PutQuickReply { .. }
        | ClientFrame::DeleteQuickReply { .. }
        | ClientFrame::Claim { .. }
        | ClientFrame::Transfer { .. }
        | ClientFrame::Status { .. }
        | ClientFrame::Queue
        | ClientFrame::Rate { .. }
        | ClientFrame::Note { .. }
        | ClientFrame::Label { .. }
        | ClientFrame::Unlabel { .. }
        | ClientFrame::SetAttribute { .. }
        | ClientFrame::Snooze { .. }
        | ClientFrame::Wake { .. } => true,
        // Connection control and liveness, and reads of what the sender may already see.
        ClientFrame::Hello { .. }
        | ClientFrame::Subscribe { .. }
        | ClientFrame::Unsubscribe { .. }
        | ClientFrame::Close { .. }
        | ClientFrame::Ping
        | ClientFrame::Pong
        | ClientFrame::VisitorContext { .. }
        | ClientFrame::QuickReplies
        | ClientFrame::Definitions => false,
    }
}

impl Engine {
    /// Handles one request sent outside a connection (e.g. an HTTP POST body): decodes it, rate-limits it
    /// and runs it as `identity`. Returns the reply, `None` for requests that have none (`typing`, `read`,
    /// `pong`), or an `error` frame with the same codes a WebSocket client would get.
    ///
    /// `hello`, `subscribe` and `unsubscribe` need a connection and are refused with `invalid_frame`.
    ///
    /// The future may be dropped at any point (an HTTP server drops the handlers of vanished clients): what
    /// the request changes is committed and applied on the engine's own tasks, whole or not at all.
    pub async fn request(&self, identity: &Identity, text: &str) -> Option<ServerFrame> {
        match protocol::decode(text) {
            Ok(Request { id, frame }) => self.handle(identity, None, id, frame).await,
            Err(error) => Some(error.to_frame()),
        }
    }

    /// [`Engine::request`] for a request decoded already: by [`protocol::decode_body`] from an HTTP request whose
    /// path names the frame, say.
    pub async fn request_decoded(&self, identity: &Identity, request: Request) -> Option<ServerFrame> {
        self.handle(identity, None, request.id, request.frame).await
    }

    /// Runs one decoded request of `identity` (on connection `conn`, if any) and returns its reply, inside a
    /// `kf.request` span (`docs/observability.md`): the frame's type, the tenant, the identity and the
    /// conversation it names (an `open` records the conversation it opened).
    pub(super) async fn handle(
        &self,
        identity: &Identity,
        conn: Option<&Arc<Conn>>,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Option<ServerFrame> {
        let span = tracing::debug_span!(
            "kf.request",
            r#type = frame.name(),
            tenant = %identity.tenant,
            identity = %telemetry::identity(&identity.principal),
            conversation = tracing::field::Empty,
        );
        if !span.is_disabled()
            && let Some(conversation) = frame.conversation()
        {
            span.record("conversation", tracing::field::display(conversation));
        }
        // Disabled (no subscriber, or debug off): no wrapper to poll through, per request.
        if span.is_disabled() {
            self.handle_in_span(identity, conn, id, frame).await
        } else {
            self.handle_in_span(identity, conn, id, frame)
                .instrument(span)
                .await
        }
    }

    async fn handle_in_span(
        &self,
        identity: &Identity,
        conn: Option<&Arc<Conn>>,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Option<ServerFrame> {
        if is_rate_limited(&frame) && !self.inner.sessions.allow_request(identity) {
            self.inner.metrics.rate_limited(&identity.principal);
            let per_second = self.limits().requests_per_second;
            return Some(ServerFrame::error(
                id,
                ErrorCode::RateLimited,
                format!("more than {per_second} requests per second"),
            ));
        }
        let except = conn.map_or(0, |conn| conn.id);
        let result = match frame {
            frame @ (ClientFrame::Hello { .. }
            | ClientFrame::Ping
            | ClientFrame::Pong
            | ClientFrame::Subscribe { .. }
            | ClientFrame::Unsubscribe { .. }) => self.connection_request(conn, id.clone(), frame).await,
            frame @ (ClientFrame::Open { .. }
            | ClientFrame::Send { .. }
            | ClientFrame::Typing { .. }
            | ClientFrame::Read { .. }
            | ClientFrame::Close { .. }
            | ClientFrame::Rate { .. }
            | ClientFrame::Note { .. }
            | ClientFrame::Snooze { .. }
            | ClientFrame::Wake { .. }) => {
                self.conversation_request(identity, except, id.clone(), frame)
                    .await
            }
            frame @ (ClientFrame::Claim { .. }
            | ClientFrame::Transfer { .. }
            | ClientFrame::Status { .. }
            | ClientFrame::Queue) => self.routing_request(identity, except, id.clone(), frame).await,
            // Working hours, visitor context and quick replies: engine/offline.rs and engine/agent_tools.rs.
            frame @ (ClientFrame::Context { .. }
            | ClientFrame::Page { .. }
            | ClientFrame::VisitorContext { .. }
            | ClientFrame::Take { .. }
            | ClientFrame::QuickReplies
            | ClientFrame::PutQuickReply { .. }
            | ClientFrame::DeleteQuickReply { .. }) => self.handle_extra(identity, id.clone(), frame).await,
            // Labels and attributes: engine/tagging.rs.
            frame @ (ClientFrame::Definitions
            | ClientFrame::Label { .. }
            | ClientFrame::Unlabel { .. }
            | ClientFrame::SetAttribute { .. }) => self.labels_request(identity, id.clone(), frame).await,
        };
        result.unwrap_or_else(|error: RequestError| Some(error.to_frame(id)))
    }

    /// `hello` (already said), liveness, and what acts on the connection itself.
    async fn connection_request(
        &self,
        conn: Option<&Arc<Conn>>,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Result<Option<ServerFrame>, RequestError> {
        match (frame, conn) {
            (ClientFrame::Hello { .. }, conn) => {
                let message = match conn {
                    Some(_) => "`hello` was already accepted",
                    None => "`hello` opens a connection; authenticate this request with a token instead",
                };
                Ok(Some(ServerFrame::error(id, ErrorCode::HelloRequired, message)))
            }
            (ClientFrame::Ping, _) => Ok(Some(ServerFrame::Pong)),
            (
                ClientFrame::Subscribe {
                    conversation,
                    after,
                    epoch,
                },
                Some(conn),
            ) => {
                let reply = move |after, reset, last_seq, seen| ServerFrame::Subscribed {
                    id,
                    conversation,
                    after,
                    reset,
                    last_seq,
                    seen,
                };
                let reset = epoch.is_some_and(|epoch| epoch != *self.epoch());
                self.subscribe(conn, conversation, after, reset, reply).await?;
                Ok(None)
            }
            (ClientFrame::Unsubscribe { conversation }, Some(conn)) => {
                self.unsubscribe(conn, conversation);
                Ok(Some(ServerFrame::Unsubscribed { id, conversation }))
            }
            (frame @ (ClientFrame::Subscribe { .. } | ClientFrame::Unsubscribe { .. }), None) => {
                Err(needs_a_stream(frame.name()))
            }
            _ => Ok(None),
        }
    }

    /// Opening, writing to, reading and closing conversations.
    async fn conversation_request(
        &self,
        identity: &Identity,
        except: u64,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Result<Option<ServerFrame>, RequestError> {
        let reply = match frame {
            ClientFrame::Open {
                client_id,
                group,
                entry,
                fields,
            } => {
                let opened = self.open(identity, client_id, group, entry, fields).await?;
                tracing::Span::current()
                    .record("conversation", tracing::field::display(opened.conversation.id));
                ServerFrame::Opened {
                    id,
                    created: opened.created,
                    conversation: opened.conversation.for_visitors(),
                }
            }
            ClientFrame::Send {
                conversation,
                client_id,
                body,
                attachments,
            } => {
                if !body.attachments.is_empty() {
                    return Err(RequestError::Invalid(
                        "attachments are sent as upload ids in the frame's `attachments`, not in `body`"
                            .into(),
                    ));
                }
                self.send_with_attachments(identity, conversation, client_id.clone(), body, &attachments)
                    .await?
                    .reply(id, conversation, client_id)
            }
            ClientFrame::Typing { conversation, active } => {
                self.typing(identity, except, conversation, active).await?;
                return Ok(None);
            }
            ClientFrame::Read { conversation, seq } => {
                self.read(identity, except, conversation, seq).await?;
                return Ok(None);
            }
            ClientFrame::Close { conversation } => {
                let seq = self.close(identity, conversation).await?;
                ServerFrame::Closed {
                    id,
                    conversation,
                    seq,
                }
            }
            ClientFrame::Rate {
                conversation,
                client_id,
                score,
                comment,
            } => self
                .rate(identity, conversation, client_id.clone(), score, comment)
                .await?
                .reply(id, conversation, client_id),
            ClientFrame::Note {
                conversation,
                client_id,
                text,
                mentions,
            } => self
                .note(identity, conversation, client_id.clone(), text, mentions)
                .await?
                .reply(id, conversation, client_id),
            ClientFrame::Snooze {
                conversation,
                client_id,
                until,
            } => self
                .snooze(identity, conversation, client_id.clone(), until)
                .await?
                .reply(id, conversation, client_id),
            ClientFrame::Wake {
                conversation,
                client_id,
            } => self
                .wake_up(identity, conversation, client_id.clone())
                .await?
                .reply(id, conversation, client_id),
            _ => return Ok(None),
        };
        Ok(Some(reply))
    }

    /// Claims, transfers, status and the queue view.
    async fn routing_request(
        &self,
        identity: &Identity,
        except: u64,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Result<Option<ServerFrame>, RequestError> {
        let reply = match frame {
            ClientFrame::Claim { conversation } => {
                let conversation = self.claim(identity, conversation).await?;
                ServerFrame::Claimed { id, conversation }
            }
            ClientFrame::Transfer {
                conversation,
                agent,
                group,
                note,
                handover,
            } => {
                let transfer = Transfer {
                    agent,
                    group,
                    note,
                    handover,
                };
                let seq = self.transfer(identity, conversation, transfer).await?;
                ServerFrame::Transferred {
                    id,
                    conversation,
                    seq,
                }
            }
            ClientFrame::Status { status, label } => {
                self.change_status(identity, except, status, label.clone())
                    .await?;
                ServerFrame::Status { id, status, label }
            }
            ClientFrame::Queue => ServerFrame::Queue {
                id,
                conversations: self.queue_view(identity)?,
            },
            _ => return Ok(None),
        };
        Ok(Some(reply))
    }
}

fn needs_a_stream(frame: &str) -> RequestError {
    RequestError::Invalid(format!(
        "`{frame}` acts on a connection; a stream follows its principal's conversations by itself"
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::is_rate_limited;
    use crate::protocol::{self, CLIENT_FRAME_TYPES};

    #[test]
    fn every_client_frame_kind_is_classified_as_protocol_md_documents() {
        const C: &str = "01900a3c-5f2e-7b41-9c2d-6e8f0a1b2c3d";
        let frames = [
            (r#"{"type":"hello","v":1,"token":"t"}"#, false),
            (r#"{"type":"open","client_id":"o1"}"#, true),
            (&format!(r#"{{"type":"subscribe","conversation":"{C}"}}"#), false),
            (
                &format!(r#"{{"type":"unsubscribe","conversation":"{C}"}}"#),
                false,
            ),
            (
                &format!(r#"{{"type":"send","conversation":"{C}","client_id":"m1","body":{{"text":"hi"}}}}"#),
                true,
            ),
            (
                &format!(r#"{{"type":"typing","conversation":"{C}","active":true}}"#),
                true,
            ),
            (
                &format!(r#"{{"type":"read","conversation":"{C}","seq":1}}"#),
                true,
            ),
            (&format!(r#"{{"type":"close","conversation":"{C}"}}"#), false),
            (r#"{"type":"ping"}"#, false),
            (r#"{"type":"pong"}"#, false),
            (r#"{"type":"context"}"#, true),
            (r#"{"type":"page","url":"https://shop.example/"}"#, true),
            (
                &format!(r#"{{"type":"visitor_context","conversation":"{C}"}}"#),
                false,
            ),
            (&format!(r#"{{"type":"take","conversation":"{C}"}}"#), true),
            (r#"{"type":"quick_replies"}"#, false),
            (
                r#"{"type":"put_quick_reply","shortcut":"hi","text":"Hello"}"#,
                true,
            ),
            (r#"{"type":"delete_quick_reply","reply_id":"r1"}"#, true),
            (&format!(r#"{{"type":"claim","conversation":"{C}"}}"#), true),
            (&format!(r#"{{"type":"transfer","conversation":"{C}"}}"#), true),
            (r#"{"type":"status","status":"away"}"#, true),
            (r#"{"type":"queue"}"#, true),
            (
                &format!(r#"{{"type":"rate","conversation":"{C}","client_id":"r1","score":5}}"#),
                true,
            ),
            (
                &format!(r#"{{"type":"note","conversation":"{C}","client_id":"n1","text":"hi"}}"#),
                true,
            ),
            (r#"{"type":"definitions"}"#, false),
            (
                &format!(
                    r#"{{"type":"snooze","conversation":"{C}","client_id":"s1","until":1800000000000}}"#
                ),
                true,
            ),
            (
                &format!(r#"{{"type":"wake","conversation":"{C}","client_id":"w1"}}"#),
                true,
            ),
            (
                &format!(r#"{{"type":"label","conversation":"{C}","client_id":"l1","label":"VIP"}}"#),
                true,
            ),
            (
                &format!(r#"{{"type":"unlabel","conversation":"{C}","client_id":"l2","label":"VIP"}}"#),
                true,
            ),
            (
                &format!(
                    r#"{{"type":"set_attribute","conversation":"{C}","client_id":"a1","object":"visitor","key":"plan","value":{{"string":"pro"}}}}"#
                ),
                true,
            ),
        ];
        let mut covered = BTreeSet::new();
        for (text, limited) in frames {
            let frame = protocol::decode(text).expect(text).frame;
            assert_eq!(is_rate_limited(&frame), limited, "{}", frame.name());
            covered.insert(frame.name());
        }
        let every: BTreeSet<&str> = CLIENT_FRAME_TYPES.split(", ").collect();
        assert_eq!(covered, every, "a sample of every client frame kind");
    }
}
