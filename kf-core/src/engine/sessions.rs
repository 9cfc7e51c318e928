//! Sessions: the live connections of every visitor and agent, how many one identity may hold, the request rate
//! each identity may use, and what visitors report of their browsing (page trails). It owns the connection
//! registry; the rest of the engine reaches connections only through it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use super::RequestError;
use super::connection::Conn;
use super::limiter::RateLimits;
use crate::auth::{Identity, Principal};
use crate::context::Trails;
use crate::limits::Limits;
use crate::model::{AgentId, TenantId, VisitorId};
use crate::protocol::CloseReason;
use crate::telemetry::EngineMetrics;
use metrics::Counter;

/// The connection registry and what goes with it.
#[derive(Debug)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<Identity, Vec<Arc<Conn>>>>,
    next_id: AtomicU64,
    per_identity: usize,
    queue_bytes: usize,
    /// How long an agent whose last connection dropped stays online.
    pub(crate) presence_grace: Duration,
    rate_limits: RateLimits,
    /// Counts connections closed as slow consumers.
    slow_consumer_closes: Counter,
    /// Visitors' page trails, kept in memory.
    pub(crate) trails: Trails,
    /// Set (under the registry's lock) by `close_all`: no connection is registered after it.
    closed: AtomicBool,
}

impl Sessions {
    pub(crate) fn new(limits: &Limits, presence_grace: Duration, metrics: &EngineMetrics) -> Self {
        Sessions {
            live: Mutex::default(),
            next_id: AtomicU64::new(1),
            per_identity: limits.connections_per_identity,
            queue_bytes: limits.outbound_queue_bytes,
            presence_grace,
            rate_limits: RateLimits::new(limits.requests_per_second),
            slow_consumer_closes: metrics.slow_consumer_closes.clone(),
            trails: Trails::new(limits),
            closed: AtomicBool::new(false),
        }
    }

    fn live(&self) -> MutexGuard<'_, HashMap<Identity, Vec<Arc<Conn>>>> {
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new connection of `identity` with `first` already queued, so nothing that reaches the
    /// connection through the registry can come before it. Refused when the identity holds its maximum.
    pub(crate) fn open(&self, identity: &Identity, first: Bytes) -> Result<Arc<Conn>, RequestError> {
        let mut live = self.live();
        if self.closed.load(Ordering::Relaxed) {
            return Err(RequestError::ShuttingDown);
        }
        let connections = live.entry(identity.clone()).or_default();
        if connections.len() >= self.per_identity {
            return Err(RequestError::TooManyConnections(self.per_identity));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new(
            id,
            identity.clone(),
            self.queue_bytes,
            self.slow_consumer_closes.clone(),
        ));
        conn.outlet.push_unbounded(first);
        connections.push(Arc::clone(&conn));
        Ok(conn)
    }

    /// Removes a connection from the registry.
    pub(crate) fn close(&self, conn: &Conn) {
        let mut live = self.live();
        if let Some(connections) = live.get_mut(&conn.identity) {
            connections.retain(|other| other.id != conn.id);
            if connections.is_empty() {
                live.remove(&conn.identity);
            }
        }
    }

    /// The live connections of `identity`.
    pub(crate) fn of(&self, identity: &Identity) -> Vec<Arc<Conn>> {
        self.live().get(identity).cloned().unwrap_or_default()
    }

    /// Queues an ephemeral frame on every live connection of `identity`; dropped where it does not fit.
    pub(crate) fn offer(&self, identity: &Identity, frame: &Bytes) {
        for conn in self.live().get(identity).into_iter().flatten() {
            conn.outlet.offer(frame.clone());
        }
    }

    /// Queues a frame on every live connection of `identity` but `except` (a connection id).
    pub(crate) fn push_except(&self, identity: &Identity, except: u64, frame: &Bytes) {
        for conn in self.of(identity).iter().filter(|conn| conn.id != except) {
            let _ = conn.outlet.push(frame.clone());
        }
    }

    /// Queues a frame on every live connection of the tenant's agents that `to` selects.
    pub(crate) fn push_to_agents(&self, tenant: &TenantId, to: impl Fn(&AgentId) -> bool, frame: &Bytes) {
        for (identity, connections) in self.live().iter() {
            if let Principal::Agent(agent) = &identity.principal
                && &identity.tenant == tenant
                && to(agent)
            {
                for conn in connections {
                    let _ = conn.outlet.push(frame.clone());
                }
            }
        }
    }

    /// Ends every live connection with `reason`, and refuses new ones from then on.
    pub(crate) fn close_all(&self, reason: CloseReason) {
        let live = self.live();
        self.closed.store(true, Ordering::Relaxed);
        for conn in live.values().flatten() {
            conn.outlet.close(reason);
        }
    }

    /// The visitors of `tenant` with a live connection, by id, with how many each has.
    pub(crate) fn visitors(&self, tenant: &TenantId) -> Vec<(VisitorId, usize)> {
        let mut visitors: Vec<(VisitorId, usize)> = self
            .live()
            .iter()
            .filter_map(|(identity, connections)| match &identity.principal {
                Principal::Visitor(visitor) if &identity.tenant == tenant => {
                    Some((visitor.clone(), connections.len()))
                }
                _ => None,
            })
            .collect();
        visitors.sort();
        visitors
    }

    /// How many connections are live.
    pub(crate) fn count(&self) -> usize {
        self.live().values().map(Vec::len).sum()
    }

    /// Whether `identity` may make one more rate-limited request now.
    pub(crate) fn allow_request(&self, identity: &Identity) -> bool {
        self.rate_limits.allow(identity)
    }
}
