//! The durable state of webhooks: subscriptions, each one's position in the change feed, and its queued
//! deliveries (pending with their attempt count, next attempt time and last error, or dead letters).
//!
//! [`WebhookState`] is the trait; [`MemoryState`] keeps it in memory (tests, or a host that accepts losing queued
//! deliveries on a restart) and [`SqliteState`](crate::SqliteState) in a SQLite file. Both pass the conformance
//! suite in `kf_webhooks::testkit` (feature `testkit`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use kf_core::model::{ConversationId, Seq, TenantId};
use kf_core::store::FeedPosition;

use crate::{Error, EventType, Subscription, SubscriptionId};

/// A delivery to queue: one event for one subscription, its payload already built.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct NewDelivery {
    /// The event's change-feed position (with the subscription, the delivery's identity).
    pub position: FeedPosition,
    /// Its conversation (deliveries of one conversation go out in position order).
    pub conversation: ConversationId,
    /// Its seq in the conversation.
    pub seq: Seq,
    /// Its type.
    pub event_type: EventType,
    /// The JSON payload, sent as is on every attempt.
    pub body: String,
}

impl NewDelivery {
    /// A delivery to queue.
    pub fn new(
        position: FeedPosition,
        conversation: ConversationId,
        seq: Seq,
        event_type: EventType,
        body: String,
    ) -> Self {
        Self {
            position,
            conversation,
            seq,
            event_type,
            body,
        }
    }
}

/// A queued delivery.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Delivery {
    /// Its subscription.
    pub subscription: SubscriptionId,
    /// The event's change-feed position.
    pub position: FeedPosition,
    /// The event's conversation.
    pub conversation: ConversationId,
    /// The event's seq.
    pub seq: Seq,
    /// The event's type.
    pub event_type: EventType,
    /// The JSON payload.
    pub body: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (milliseconds since the Unix epoch).
    pub next_attempt_at: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Given up after too many failures: a dead letter, sent again only by a replay.
    pub dead: bool,
}

impl Delivery {
    /// A delivery as stored (for state backends).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        subscription: SubscriptionId,
        new: NewDelivery,
        attempts: u32,
        next_attempt_at: u64,
        last_error: Option<String>,
        dead: bool,
    ) -> Self {
        Self {
            subscription,
            position: new.position,
            conversation: new.conversation,
            seq: new.seq,
            event_type: new.event_type,
            body: new.body,
            attempts,
            next_attempt_at,
            last_error,
            dead,
        }
    }

    /// The stable delivery id, `<subscription id>:<feed position>`: the same on every attempt and replay, so a
    /// receiver deduplicates by it (the `X-Kf-Delivery` header and the payload's `id`).
    pub fn id(&self) -> String {
        delivery_id(&self.subscription, self.position)
    }
}

/// The delivery id of the event at `position` for `subscription`.
pub fn delivery_id(subscription: &SubscriptionId, position: FeedPosition) -> String {
    format!("{subscription}:{}", position.0)
}

/// A subscription and its position in the change feed: every event at or before it has been queued for it (or
/// skipped as not wanted).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct SubscriptionState {
    /// The subscription.
    pub subscription: Subscription,
    /// Its position.
    pub position: FeedPosition,
}

/// Durable webhook state. Object safe, held as `Arc<dyn WebhookState>`. The worker is the only writer of
/// positions and deliveries besides the management calls (rewind, replay, delete); every method is atomic.
#[async_trait]
pub trait WebhookState: Send + Sync + Debug + 'static {
    /// Stores a new subscription at `position`. [`Error::Conflict`] if its id exists.
    async fn create_subscription(
        &self,
        subscription: Subscription,
        position: FeedPosition,
    ) -> Result<(), Error>;

    /// Replaces a subscription's spec (URL, secret, types, active), keeping its position and deliveries. False
    /// when there is no subscription with that id in that tenant.
    async fn update_subscription(&self, subscription: Subscription) -> Result<bool, Error>;

    /// Deletes a subscription of `tenant` and its deliveries. False when there was none.
    async fn delete_subscription(&self, tenant: &TenantId, id: &SubscriptionId) -> Result<bool, Error>;

    /// Every subscription of every tenant with its position, by id.
    async fn subscriptions(&self) -> Result<Vec<SubscriptionState>, Error>;

    /// Queues `deliveries` for subscription `id` (a delivery already queued, pending or dead, is kept as it is)
    /// and moves its position to `position` — only if its position is still `expected` (a rewind meanwhile
    /// wins), in one atomic step. False when nothing was done (position moved, or no such subscription).
    async fn enqueue(
        &self,
        id: &SubscriptionId,
        expected: FeedPosition,
        deliveries: Vec<NewDelivery>,
        position: FeedPosition,
        due_at: u64,
    ) -> Result<bool, Error>;

    /// Up to `limit` pending (not dead) deliveries of `id`, by position.
    async fn pending(&self, id: &SubscriptionId, limit: usize) -> Result<Vec<Delivery>, Error>;

    /// A delivery succeeded: it leaves the queue.
    async fn succeeded(&self, id: &SubscriptionId, position: FeedPosition) -> Result<(), Error>;

    /// An attempt failed: records the attempt count, the next attempt time and the error; `dead` makes it a dead
    /// letter.
    async fn failed(
        &self,
        id: &SubscriptionId,
        position: FeedPosition,
        attempts: u32,
        next_attempt_at: u64,
        error: &str,
        dead: bool,
    ) -> Result<(), Error>;

    /// Up to `limit` dead letters of `id`, by position.
    async fn dead_letters(&self, id: &SubscriptionId, limit: usize) -> Result<Vec<Delivery>, Error>;

    /// Makes every dead letter of `id` pending again with no attempts, due at `due_at`. Returns how many.
    async fn replay_dead_letters(&self, id: &SubscriptionId, due_at: u64) -> Result<usize, Error>;

    /// Sets the position of `id` (events after it are queued again: a replay from a position). False when there
    /// is no such subscription.
    async fn rewind(&self, id: &SubscriptionId, position: FeedPosition) -> Result<bool, Error>;
}

#[derive(Debug, Default)]
struct Entry {
    state: Option<SubscriptionState>,
    deliveries: BTreeMap<u64, Delivery>,
}

/// [`WebhookState`] in memory: lost with the process.
#[derive(Debug, Default)]
pub struct MemoryState {
    entries: Mutex<BTreeMap<SubscriptionId, Entry>>,
}

impl MemoryState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<SubscriptionId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl WebhookState for MemoryState {
    async fn create_subscription(
        &self,
        subscription: Subscription,
        position: FeedPosition,
    ) -> Result<(), Error> {
        let mut entries = self.lock();
        if entries.contains_key(&subscription.id) {
            return Err(Error::Conflict(format!(
                "subscription {} exists",
                subscription.id
            )));
        }
        entries.insert(
            subscription.id.clone(),
            Entry {
                state: Some(SubscriptionState {
                    subscription,
                    position,
                }),
                deliveries: BTreeMap::new(),
            },
        );
        Ok(())
    }

    async fn update_subscription(&self, subscription: Subscription) -> Result<bool, Error> {
        let mut entries = self.lock();
        match entries
            .get_mut(&subscription.id)
            .and_then(|entry| entry.state.as_mut())
        {
            Some(state) if state.subscription.tenant == subscription.tenant => {
                state.subscription = subscription;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_subscription(&self, tenant: &TenantId, id: &SubscriptionId) -> Result<bool, Error> {
        let mut entries = self.lock();
        let owned = entries
            .get(id)
            .and_then(|entry| entry.state.as_ref())
            .is_some_and(|state| &state.subscription.tenant == tenant);
        if owned {
            entries.remove(id);
        }
        Ok(owned)
    }

    async fn subscriptions(&self) -> Result<Vec<SubscriptionState>, Error> {
        Ok(self
            .lock()
            .values()
            .filter_map(|entry| entry.state.clone())
            .collect())
    }

    async fn enqueue(
        &self,
        id: &SubscriptionId,
        expected: FeedPosition,
        deliveries: Vec<NewDelivery>,
        position: FeedPosition,
        due_at: u64,
    ) -> Result<bool, Error> {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(id) else {
            return Ok(false);
        };
        let Some(state) = entry.state.as_mut() else {
            return Ok(false);
        };
        if state.position != expected {
            return Ok(false);
        }
        state.position = position;
        for new in deliveries {
            entry
                .deliveries
                .entry(new.position.0)
                .or_insert_with(|| Delivery::new(id.clone(), new, 0, due_at, None, false));
        }
        Ok(true)
    }

    async fn pending(&self, id: &SubscriptionId, limit: usize) -> Result<Vec<Delivery>, Error> {
        Ok(self.lock().get(id).map_or_else(Vec::new, |entry| {
            entry
                .deliveries
                .values()
                .filter(|delivery| !delivery.dead)
                .take(limit)
                .cloned()
                .collect()
        }))
    }

    async fn succeeded(&self, id: &SubscriptionId, position: FeedPosition) -> Result<(), Error> {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.deliveries.remove(&position.0);
        }
        Ok(())
    }

    async fn failed(
        &self,
        id: &SubscriptionId,
        position: FeedPosition,
        attempts: u32,
        next_attempt_at: u64,
        error: &str,
        dead: bool,
    ) -> Result<(), Error> {
        if let Some(delivery) = self
            .lock()
            .get_mut(id)
            .and_then(|entry| entry.deliveries.get_mut(&position.0))
        {
            delivery.attempts = attempts;
            delivery.next_attempt_at = next_attempt_at;
            delivery.last_error = Some(error.to_owned());
            delivery.dead = dead;
        }
        Ok(())
    }

    async fn dead_letters(&self, id: &SubscriptionId, limit: usize) -> Result<Vec<Delivery>, Error> {
        Ok(self.lock().get(id).map_or_else(Vec::new, |entry| {
            entry
                .deliveries
                .values()
                .filter(|delivery| delivery.dead)
                .take(limit)
                .cloned()
                .collect()
        }))
    }

    async fn replay_dead_letters(&self, id: &SubscriptionId, due_at: u64) -> Result<usize, Error> {
        let mut entries = self.lock();
        let mut count = 0;
        if let Some(entry) = entries.get_mut(id) {
            for delivery in entry.deliveries.values_mut().filter(|delivery| delivery.dead) {
                delivery.dead = false;
                delivery.attempts = 0;
                delivery.next_attempt_at = due_at;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn rewind(&self, id: &SubscriptionId, position: FeedPosition) -> Result<bool, Error> {
        match self.lock().get_mut(id).and_then(|entry| entry.state.as_mut()) {
            Some(state) => {
                state.position = position;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
