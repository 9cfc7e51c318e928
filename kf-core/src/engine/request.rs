//! Request handling shared by every transport: a decoded client frame in, the reply frame out.
//!
//! A connection ([`Session`](super::Session)) passes itself so that `subscribe` and `unsubscribe` can act on it;
//! a connectionless transport (HTTP POST next to an SSE stream) calls [`Engine::request`], where those frames,
//! which only make sense on a connection, are refused.

use std::sync::Arc;

use super::connection::Conn;
use super::{Engine, RequestError, Transfer};
use crate::auth::Identity;
use crate::model::AgentStatus;
use crate::protocol::{self, ClientFrame, ErrorCode, Request, ServerFrame};

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
        | ClientFrame::Queue => true,
        // Connection control and liveness, and reads of what the sender may already see.
        ClientFrame::Hello { .. }
        | ClientFrame::Subscribe { .. }
        | ClientFrame::Unsubscribe { .. }
        | ClientFrame::Close { .. }
        | ClientFrame::Ping
        | ClientFrame::Pong
        | ClientFrame::VisitorContext { .. }
        | ClientFrame::QuickReplies => false,
    }
}

impl Engine {
    /// Handles one request sent outside a connection (e.g. an HTTP POST body): decodes it, rate-limits it
    /// and runs it as `identity`. Returns the reply, `None` for requests that have none (`typing`, `read`,
    /// `pong`), or an `error` frame with the same codes a WebSocket client would get.
    ///
    /// `hello`, `subscribe` and `unsubscribe` need a connection and are refused with `invalid_frame`.
    ///
    /// Drive the future to completion (an HTTP server that drops handlers of vanished clients should spawn it):
    /// a call dropped between the store's commit and the publication would leave a committed event
    /// unannounced to live subscribers until their next resume.
    pub async fn request(&self, identity: &Identity, text: &str) -> Option<ServerFrame> {
        match protocol::decode(text) {
            Ok(Request { id, frame }) => self.handle(identity, None, id, frame).await,
            Err(error) => Some(error.to_frame()),
        }
    }

    pub(super) async fn handle(
        &self,
        identity: &Identity,
        conn: Option<&Arc<Conn>>,
        id: Option<String>,
        frame: ClientFrame,
    ) -> Option<ServerFrame> {
        if is_rate_limited(&frame) && !self.inner.sessions.allow_request(identity) {
            let per_second = self.limits().requests_per_second;
            return Some(ServerFrame::error(
                id,
                ErrorCode::RateLimited,
                format!("more than {per_second} requests per second"),
            ));
        }
        let except = conn.map_or(0, |conn| conn.id);
        let result = match frame {
            ClientFrame::Hello { .. } => {
                let message = match conn {
                    Some(_) => "`hello` was already accepted",
                    None => "`hello` opens a connection; authenticate this request with a token instead",
                };
                return Some(ServerFrame::error(id, ErrorCode::HelloRequired, message));
            }
            ClientFrame::Ping => return Some(ServerFrame::Pong),
            ClientFrame::Pong => return None,
            ClientFrame::Subscribe {
                conversation,
                after,
                epoch,
            } => match conn {
                Some(conn) => {
                    let reply_id = id.clone();
                    let reply = move |after, reset, last_seq| ServerFrame::Subscribed {
                        id: reply_id,
                        conversation,
                        after,
                        reset,
                        last_seq,
                    };
                    let reset = epoch.is_some_and(|epoch| epoch != *self.epoch());
                    self.subscribe(conn, conversation, after, reset, reply)
                        .await
                        .map(|()| None)
                }
                None => Err(needs_a_stream("subscribe")),
            },
            ClientFrame::Unsubscribe { conversation } => match conn {
                Some(conn) => {
                    self.unsubscribe(conn, conversation);
                    Ok(Some(ServerFrame::Unsubscribed {
                        id: id.clone(),
                        conversation,
                    }))
                }
                None => Err(needs_a_stream("unsubscribe")),
            },
            ClientFrame::Open {
                client_id,
                group,
                entry,
            } => self.open(identity, client_id, group, entry).await.map(|opened| {
                Some(ServerFrame::Opened {
                    id: id.clone(),
                    created: opened.created,
                    conversation: opened.conversation,
                })
            }),
            ClientFrame::Send {
                conversation,
                client_id,
                body,
            } => self
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
            ClientFrame::Typing { conversation, active } => self
                .typing(identity, except, conversation, active)
                .await
                .map(|()| None),
            ClientFrame::Read { conversation, seq } => self
                .read(identity, except, conversation, seq)
                .await
                .map(|()| None),
            ClientFrame::Close { conversation } => self.close(identity, conversation).await.map(|seq| {
                Some(ServerFrame::Closed {
                    id: id.clone(),
                    conversation,
                    seq,
                })
            }),
            // Routing: claims, transfers, status, the queue view.
            ClientFrame::Claim { conversation } => {
                self.claim(identity, conversation).await.map(|conversation| {
                    Some(ServerFrame::Claimed {
                        id: id.clone(),
                        conversation,
                    })
                })
            }
            ClientFrame::Transfer {
                conversation,
                agent,
                group,
                note,
            } => self
                .transfer(identity, conversation, Transfer { agent, group, note })
                .await
                .map(|seq| {
                    Some(ServerFrame::Transferred {
                        id: id.clone(),
                        conversation,
                        seq,
                    })
                }),
            ClientFrame::Status { status, label } => {
                self.set_status(identity, status, label.clone()).await.map(|()| {
                    self.push_status(identity, except, status, label.clone());
                    Some(ServerFrame::Status {
                        id: id.clone(),
                        status,
                        label,
                    })
                })
            }
            ClientFrame::Queue => self.queue_view(identity).map(|conversations| {
                Some(ServerFrame::Queue {
                    id: id.clone(),
                    conversations,
                })
            }),
            // Working hours, visitor context and quick replies: engine/offline.rs and engine/agent_tools.rs.
            frame @ (ClientFrame::Context { .. }
            | ClientFrame::Page { .. }
            | ClientFrame::VisitorContext { .. }
            | ClientFrame::Take { .. }
            | ClientFrame::QuickReplies
            | ClientFrame::PutQuickReply { .. }
            | ClientFrame::DeleteQuickReply { .. }) => self.handle_extra(identity, id.clone(), frame).await,
        };
        result.unwrap_or_else(|error: RequestError| Some(error.to_frame(id)))
    }
}

impl Engine {
    /// Tells an agent's other live connections (other tabs, devices, streams) the status it just set in one: a
    /// `status` frame without `id`.
    fn push_status(&self, identity: &Identity, except_conn: u64, status: AgentStatus, label: Option<String>) {
        let frame = ServerFrame::Status {
            id: None,
            status,
            label,
        }
        .encode();
        self.inner.sessions.push_except(identity, except_conn, &frame);
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
