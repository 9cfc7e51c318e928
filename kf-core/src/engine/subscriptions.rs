//! Subscriptions: a connection's interest in conversations, one by one (`subscribe`) or all of its principal's
//! (`follow`, for streams), and the notices that subscribe following connections to conversations that join.

use std::sync::Arc;

use super::connection::Conn;
use super::{Engine, RequestError};
use crate::auth::{Identity, Principal};
use crate::cursor::Cursor;
use crate::model::{Conversation, ConversationId, SeenMark, Seq};
use crate::protocol::ServerFrame;

impl Engine {
    /// Pushes a `conversation` frame to the live connections of `identity` (all of them, or only those that
    /// follow all their conversations), and subscribes the followers from where their cursor left it.
    pub(super) fn announce(
        &self,
        identity: &Identity,
        conversation: ConversationId,
        frame: &bytes::Bytes,
        followers: bool,
    ) {
        for conn in self.inner.sessions.of(identity) {
            let after = conn.follow_position(conversation);
            if followers && after.is_none() {
                continue;
            }
            let _ = conn.outlet.push(frame.clone());
            if let Some(after) = after {
                self.subscribe_once(&conn, conversation, after);
            }
        }
    }

    /// Subscribes `conn` to a conversation unless it already is (a second subscription would replay again).
    pub(super) fn subscribe_once(&self, conn: &Arc<Conn>, conversation: ConversationId, after: Seq) {
        if conn.subscriptions().insert(conversation) {
            self.inner
                .delivery
                .subscribe(Arc::clone(&self.inner.log), Arc::clone(conn), conversation, after);
        }
    }

    /// Subscribes a connection to a conversation after `after`; returns the cursor replay starts from.
    pub(super) async fn subscribe(
        &self,
        conn: &Arc<Conn>,
        conversation: ConversationId,
        after: Seq,
        reset: bool,
        reply: impl FnOnce(Seq, bool, Seq, Vec<SeenMark>) -> ServerFrame,
    ) -> Result<(), RequestError> {
        let mut record = self.readable(&conn.identity, conversation).await?;
        let after = if reset { Seq::ZERO } else { after };
        // The record may be an in-memory copy behind the log: `subscribed` announces the last seq published —
        // every seq up to it is committed, and a later one reaches the subscription live — or, when none was
        // published since the engine started, the stored one.
        match self.inner.delivery.last_published(conversation) {
            Some(published) => record.last_seq = record.last_seq.max(published),
            None => record = self.inner.log.conversation(conversation).await?.unwrap_or(record),
        }
        let last_seq = self.within_log(&record, after).await?;
        // Read before registering: a receipt relayed in between is missed until the next one, which is fine for
        // marks that only go up (`seen.rs`).
        let seen = self.seen_marks(&[conversation]).await?;
        // The reply goes out before the replayed events, which the dispatcher queues after registering.
        let _ = conn.outlet.push(reply(after, reset, last_seq, seen).encode());
        conn.subscriptions().insert(conversation);
        self.inner
            .delivery
            .subscribe(Arc::clone(&self.inner.log), Arc::clone(conn), conversation, after);
        Ok(())
    }

    /// Checks that `seq` (a cursor or a read receipt) is within the conversation's log; returns its last seq.
    /// The record may be an in-memory copy that lags the log, so a seq beyond it is checked against the store.
    pub(super) async fn within_log(&self, record: &Conversation, seq: Seq) -> Result<Seq, RequestError> {
        if seq <= record.last_seq {
            return Ok(record.last_seq);
        }
        let last_seq = match self.inner.log.conversation(record.id).await? {
            Some(stored) => stored.last_seq,
            None => record.last_seq,
        };
        if seq > last_seq {
            return Err(RequestError::BadCursor(format!(
                "seq {} is beyond the last seq {} of conversation {}",
                seq.0, last_seq.0, record.id
            )));
        }
        Ok(last_seq)
    }

    /// Makes `conn` follow all its principal's conversations from `cursor` (see [`Session::follow`]).
    pub(super) async fn follow(&self, conn: &Arc<Conn>, cursor: &Cursor) -> Result<(), RequestError> {
        let reset = cursor.is_stale(&self.inner.epoch);
        let cursor = if reset {
            Cursor::new(&self.inner.epoch)
        } else {
            cursor.clone()
        };
        // Register before listing, as `connect` does: a conversation that joins meanwhile is subscribed by
        // `announce` or found in the listing, and `subscribe_once` keeps it to one subscription.
        conn.start_following(cursor.clone());
        let _ = conn.outlet.push(ServerFrame::Following { reset }.encode());
        let identity = &conn.identity;
        let mut joined: Vec<Conversation> = match &identity.principal {
            Principal::Visitor(visitor) => {
                let mut all = self
                    .inner
                    .log
                    .conversations_of_visitor(&identity.tenant, visitor)
                    .await?;
                all.retain(|c| c.state.is_open());
                all
            }
            Principal::Agent(agent) => {
                self.inner
                    .log
                    .conversations_of_agent(&identity.tenant, agent)
                    .await?
            }
        };
        // Conversations the cursor knows that have left the listing (closed, transferred) still deliver what
        // happened to them since, so the client learns how they ended.
        for (conversation, position) in cursor.positions() {
            if joined.iter().any(|c| c.id == conversation) {
                continue;
            }
            match self.readable(identity, conversation).await {
                Ok(record) => {
                    self.within_log(&record, position).await?;
                    if record.last_seq > position {
                        joined.push(record);
                    }
                }
                Err(RequestError::NotFound(_) | RequestError::Forbidden(_)) => {}
                Err(error) => return Err(error),
            }
        }
        for conversation in &joined {
            self.within_log(conversation, cursor.position(conversation.id))
                .await?;
        }
        for conversation in joined {
            self.subscribe_once(conn, conversation.id, cursor.position(conversation.id));
        }
        Ok(())
    }

    pub(super) fn unsubscribe(&self, conn: &Conn, conversation: ConversationId) {
        conn.subscriptions().remove(&conversation);
        self.inner.delivery.unsubscribe(conn.id, conversation);
    }
}
