//! Connecting: who may connect, what a new connection is told first (`welcome`, `inbox`, queue positions or
//! the queue view, messages left, missed conversations), and what its end sets in motion (presence).

use std::sync::Arc;

use super::connection::Conn;
use super::router::Presence;
use super::session::{self, Rejection, Session};
use super::{Engine, Outbox, RequestError};
use crate::auth::{Identity, Principal};
use crate::model::{Conversation, ConversationId, ConversationState, SeenMark, Visitor};
use crate::protocol::{CloseReason, PROTOCOL_VERSION, ServerFrame};
use crate::telemetry;

impl Engine {
    /// Opens a session for an authenticated identity: queues `welcome` and `inbox` on its outbox.
    ///
    /// Records `role`, `tenant`, `identity` and `connection` on the caller's current span, where it has those
    /// fields (the transports' `kf.connection` span, `docs/observability.md`), before anything the connection
    /// sets in motion (an assignment to an agent coming online) is logged.
    ///
    /// Transports that authenticate at the HTTP level call this; frame-based transports usually call
    /// [`Engine::accept`] with the connection's first frame instead.
    pub async fn connect(&self, identity: Identity) -> Result<(Session, Outbox), RequestError> {
        self.admit(&identity).await?;
        // Register before reading the inbox (as subscriptions do), so an assignment committed meanwhile is
        // either in the inbox or announced by a `conversation` frame; `welcome` is queued on registration so it
        // always comes first.
        let welcome = ServerFrame::Welcome {
            v: PROTOCOL_VERSION,
            tenant: identity.tenant.clone(),
            principal: identity.principal.clone(),
            epoch: self.inner.epoch.clone(),
            limits: self.inner.limits.for_clients(),
        };
        let conn = self.inner.sessions.open(&identity, welcome.encode())?;
        let span = tracing::Span::current();
        if !span.is_disabled() {
            span.record("role", telemetry::role(&identity.principal));
            span.record("tenant", tracing::field::display(&identity.tenant));
            span.record(
                "identity",
                tracing::field::display(telemetry::identity(&identity.principal)),
            );
            span.record("connection", conn.id);
        }
        let presence = match &identity.principal {
            Principal::Agent(agent) => self.inner.routing.ledger.connect(&identity.tenant, agent),
            Principal::Visitor(_) => None,
        };
        // From here on the session's drop undoes the registration, also when the inbox read fails.
        let session = Session::new(self.clone(), Arc::clone(&conn));
        let inbox = self.inbox(&identity).await?;
        let ids: Vec<ConversationId> = inbox.iter().map(|c| c.id).collect();
        let seen = self.seen_marks(&ids).await?;
        self.greet(&conn, inbox, seen);
        if let Principal::Agent(agent) = &identity.principal {
            self.announce_offline_messages(&conn).await;
            self.remind_missed(&conn, agent).await;
        }
        if let Some(Presence::CameOnline(groups)) = presence {
            tracing::debug!(principal = ?identity.principal, "agent online");
            for group in groups {
                self.drain(&identity.tenant, &group).await;
            }
        }
        Ok((session, Outbox::new(Arc::clone(&conn.outlet))))
    }

    /// Lets `identity` in: a visitor seen for the first time gets a record; an agent must be known.
    pub(super) async fn admit(&self, identity: &Identity) -> Result<(), RequestError> {
        let inner = &self.inner;
        match &identity.principal {
            Principal::Visitor(id) => {
                let tenant = &identity.tenant;
                if inner.catalog.has_visitor(tenant, id) {
                    return Ok(());
                }
                if inner.directory.visitor(tenant, id).await?.is_none() {
                    let visitor = Visitor::new(tenant.clone(), id.clone(), inner.clock.now());
                    inner.directory.put_visitor(visitor).await?;
                }
                inner.catalog.visitor_recorded(tenant, id);
            }
            Principal::Agent(id) => match inner.routing.ledger.agent(&identity.tenant, id) {
                None => return Err(RequestError::Forbidden(format!("unknown agent {id}"))),
                Some(agent) if !agent.active => {
                    return Err(RequestError::Forbidden(format!("agent {id} is deactivated")));
                }
                Some(_) => {}
            },
        }
        Ok(())
    }

    /// The conversations an `inbox` lists: a visitor's open ones then its most recent closed ones (a long
    /// history must not flood the session); an agent's assigned ones (bounded by its capacity).
    pub(super) async fn inbox(&self, identity: &Identity) -> Result<Vec<Conversation>, RequestError> {
        let log = &self.inner.log;
        Ok(match &identity.principal {
            Principal::Visitor(id) => {
                let mut all = log.conversations_of_visitor(&identity.tenant, id).await?;
                all.sort_by_key(|c| !c.state.is_open());
                all.truncate(self.inner.limits.inbox_conversations);
                // Labels and attributes are for agents only.
                all.iter().map(Conversation::for_visitors).collect()
            }
            Principal::Agent(id) => log.conversations_of_agent(&identity.tenant, id).await?,
        })
    }

    /// Queues `inbox` on a new connection, then a visitor's queue positions or an agent's queue view.
    pub(super) fn greet(&self, conn: &Conn, inbox: Vec<Conversation>, seen: Vec<SeenMark>) {
        let now = self.inner.clock.now();
        let ledger = &self.inner.routing.ledger;
        let positions: Vec<ServerFrame> = inbox
            .iter()
            .filter(|c| c.state == ConversationState::Queued)
            .filter(|_| matches!(conn.identity.principal, Principal::Visitor(_)))
            .filter_map(|c| {
                let (position, estimated_wait_ms) = ledger.position(&c.id, now)?;
                Some(ServerFrame::Position {
                    conversation: c.id,
                    position,
                    estimated_wait_ms,
                })
            })
            .collect();
        conn.outlet.push_unbounded(
            ServerFrame::Inbox {
                conversations: inbox,
                seen,
            }
            .encode(),
        );
        for frame in positions {
            conn.outlet.offer(frame.encode());
        }
        if let Principal::Agent(agent) = &conn.identity.principal {
            let conversations = self.queue_entries(&conn.identity.tenant, agent);
            if !conversations.is_empty() {
                let queue = ServerFrame::Queue {
                    id: None,
                    conversations,
                };
                conn.outlet.offer(queue.encode());
            }
        }
    }

    /// Accepts a connection from its first frame, which must be `hello`.
    pub async fn accept(&self, first_frame: &str) -> Result<(Session, Outbox), Rejection> {
        session::accept(self, first_frame, None).await
    }

    /// [`Engine::accept`] for a connection from a web page: `origin` is its `Origin` when that is cross-origin
    /// (see [`origin::cross_origin`](crate::origin::cross_origin)); a tenant that does not allow it refuses the
    /// `hello` with `forbidden`.
    pub async fn accept_from(
        &self,
        first_frame: &str,
        origin: Option<&str>,
    ) -> Result<(Session, Outbox), Rejection> {
        session::accept(self, first_frame, origin).await
    }

    /// Bookkeeping when a session ends: subscriptions go, and an agent goes offline after the grace period.
    pub(super) fn disconnect(&self, conn: &Arc<Conn>) {
        conn.outlet.close(CloseReason::Shutdown);
        for conversation in conn.subscriptions().drain() {
            self.inner.delivery.unsubscribe(conn.id, conversation);
        }
        self.inner.sessions.close(conn);
        let Principal::Agent(agent) = &conn.identity.principal else {
            return;
        };
        let tenant = &conn.identity.tenant;
        let Some(departure) = self.inner.routing.ledger.disconnect(tenant, agent) else {
            return;
        };
        let grace = self.inner.sessions.presence_grace;
        match tokio::runtime::Handle::try_current() {
            Ok(_) if !grace.is_zero() && !self.is_shutting_down() => {}
            // No grace period, no runtime to wait on, or the engine is stopping: offline now.
            _ => {
                self.inner
                    .routing
                    .ledger
                    .offline_if_idle(tenant, agent, departure);
                return;
            }
        };
        let engine = self.clone();
        let (tenant, agent) = (tenant.clone(), agent.clone());
        // The deadline counts from the departure, not from when the timer task first runs.
        let deadline = tokio::time::Instant::now() + grace;
        self.spawn_until_shutdown(async move {
            tokio::time::sleep_until(deadline).await;
            if engine
                .inner
                .routing
                .ledger
                .offline_if_idle(&tenant, &agent, departure)
            {
                tracing::debug!(%agent, "agent offline");
            }
        });
    }
}
