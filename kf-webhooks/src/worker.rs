//! [`Webhooks`]: the management API of subscriptions and the delivery worker.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kf_core::model::{ConversationId, TenantId};
use kf_core::store::{ConversationLog, FeedEntry, FeedPosition, FeedWake};
use kf_core::telemetry::{FeedLag, names};
use metrics::{Counter, Histogram};
use serde_json::json;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::signature;
use crate::state::{Delivery, NewDelivery, SubscriptionState, WebhookState};
use crate::{Error, EventType, Subscription, SubscriptionId, SubscriptionSpec};

/// How the worker delivers. Every field has a default fit for production; tests shorten the intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// Attempts of one delivery before it becomes a dead letter (default 12: about 1 h 8 min of backoff, on
    /// average half of that with full jitter, before giving up).
    pub max_attempts: u32,
    /// The first retry's backoff ceiling; it doubles per failed attempt (default 1 s).
    pub backoff_base: Duration,
    /// The largest backoff ceiling (default 1 h).
    pub backoff_max: Duration,
    /// One attempt's whole time: connect, request, response head and body (default 10 s).
    pub request_timeout: Duration,
    /// Connecting (default 5 s; counts against `request_timeout` too).
    pub connect_timeout: Duration,
    /// Deliveries in flight per subscription at once, each of a different conversation (default 4). One slow
    /// endpoint takes at most this many of its own slots, never another subscription's.
    pub concurrency_per_endpoint: usize,
    /// Pending deliveries queued per subscription before the worker stops reading the feed for it (default
    /// 1,000): a receiver that is down costs bounded state; the subscription's position waits and it catches
    /// up when the receiver is back.
    pub max_pending: usize,
    /// Entries read from the change feed per read (default 256).
    pub page: usize,
    /// How often an idle worker looks at the feed and the state (default 500 ms); a [`FeedWake`] given to
    /// [`Webhooks::run_woken`] wakes it at once on commits.
    pub poll_interval: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            concurrency_per_endpoint: 4,
            max_pending: 1000,
            page: 256,
            poll_interval: Duration::from_millis(500),
        }
    }
}

impl WebhookConfig {
    /// With `attempts` attempts before a dead letter (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// With a backoff ceiling from `base` doubling up to `max`.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// With another timeout of one attempt.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// With `slots` deliveries in flight per subscription (at least 1).
    pub fn with_concurrency_per_endpoint(mut self, slots: usize) -> Self {
        self.concurrency_per_endpoint = slots.max(1);
        self
    }

    /// With another poll interval.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// With at most `pending` pending deliveries per subscription (at least 1).
    pub fn with_max_pending(mut self, pending: usize) -> Self {
        self.max_pending = pending.max(1);
        self
    }

    /// The backoff before attempt `failed + 1`: uniformly random in `[0, min(max, base × 2^(failed−1))]` ("full
    /// jitter"), so receivers coming back are not hit by every sender at once.
    pub fn backoff(&self, failed: u32) -> Duration {
        let exponent = failed.saturating_sub(1).min(32);
        let ceiling = self
            .backoff_base
            .saturating_mul(1u32 << exponent.min(31))
            .min(self.backoff_max);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let random = getrandom::u64().unwrap_or(ceiling_ms / 2);
        Duration::from_millis(random % ceiling_ms.saturating_add(1))
    }
}

#[cfg(feature = "rustls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "rustls"))]
type Connector = HttpConnector;

/// The HTTP client: hyper-util's pooled client, HTTP/1.1, rustls for `https://` (feature `rustls`).
type HttpClient = Client<Connector, Full<Bytes>>;

fn http_client(config: &WebhookConfig) -> Result<HttpClient, Error> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(config.connect_timeout));
    http.set_nodelay(true);
    #[cfg(feature = "rustls")]
    let connector = {
        http.enforce_http(false);
        // ring rather than aws-lc-rs (rustls' default, which builds a large C library with cmake): a lean tree
        // that builds with a C compiler alone. rustls marks it deprecated for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|error| Error::Client(error.to_string()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    };
    #[cfg(not(feature = "rustls"))]
    let connector = http;
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// The payload of the event at `entry` for `subscription` (the JSON body every attempt sends):
///
/// ```json
/// {"id": "<subscription>:<position>", "type": "message.created", "subscription": "<subscription>",
///  "tenant": "shop", "conversation": "0190…", "seq": 3, "position": 17,
///  "event": {"conversation": "0190…", "seq": 3, "at": 1718000004211, "author": {"role": "visitor", "id": "v-1"},
///            "client_id": "m-1", "data": {"type": "message", "body": {"text": "Hi"}}}}
/// ```
///
/// `event` is the event as the protocol writes it (docs/protocol.md §6.4), a transfer's note included.
pub fn payload(subscription: &SubscriptionId, event_type: EventType, entry: &FeedEntry) -> String {
    json!({
        "id": crate::state::delivery_id(subscription, entry.position),
        "type": event_type.name(),
        "subscription": subscription.as_str(),
        "tenant": entry.tenant.as_str(),
        "conversation": entry.event.conversation.to_string(),
        "seq": entry.event.seq.0,
        "position": entry.position.0,
        "event": entry.event,
    })
    .to_string()
}

/// Webhooks over a change feed and a [`WebhookState`]: the management API of subscriptions (per tenant) and the
/// delivery worker ([`Webhooks::run`]). Cheap to clone; the host keeps one for its admin endpoints and runs the
/// worker on a task.
///
/// Why not on `Engine`: the engine knows no HTTP and no webhook state; webhooks are a consumer of its change
/// feed like any other, so they live beside it, and a host that wants none pays nothing. A host exposes these
/// calls through its own admin API (authorizing the tenant as it does for the rest of its admin).
#[derive(Clone, Debug)]
pub struct Webhooks {
    log: Arc<dyn ConversationLog>,
    state: Arc<dyn WebhookState>,
    config: WebhookConfig,
    series: Series,
}

/// The worker's metric series (`docs/observability.md`), registered when [`Webhooks`] is built.
#[derive(Clone, Debug)]
struct Series {
    delivered: Counter,
    failed: Counter,
    dead_letters: Counter,
    attempt: Histogram,
    /// `kf_feed_lag_events{consumer="webhooks"}`: the feed's head minus the lowest subscription position.
    lag: FeedLag,
}

impl Series {
    fn new() -> Self {
        Self {
            delivered: metrics::counter!(names::WEBHOOK_DELIVERED),
            failed: metrics::counter!(names::WEBHOOK_FAILED),
            dead_letters: metrics::counter!(names::WEBHOOK_DEAD_LETTERS),
            attempt: metrics::histogram!(names::WEBHOOK_ATTEMPT),
            lag: FeedLag::new("webhooks"),
        }
    }
}

/// The pending deliveries of each subscription as last read from the state. A subscription's list is read again
/// when one of its attempts ended or events were queued for it, and every list once per poll interval (which
/// picks up replays, rewinds and deletions made through the management API).
#[derive(Default)]
struct Queues {
    lists: HashMap<SubscriptionId, Vec<Delivery>>,
    stale: HashSet<SubscriptionId>,
    refreshed: Option<Instant>,
}

/// The attempts in flight: their tasks, and which (subscription, conversation) each one holds — released when
/// the task ends, however it ends.
#[derive(Default)]
struct InFlight {
    tasks: JoinSet<()>,
    holding: HashMap<tokio::task::Id, (SubscriptionId, ConversationId)>,
    busy: HashMap<SubscriptionId, HashSet<ConversationId>>,
}

impl InFlight {
    fn start(&mut self, attempt: Attempt) {
        let key = (
            attempt.delivery.subscription.clone(),
            attempt.delivery.conversation,
        );
        self.busy.entry(key.0.clone()).or_default().insert(key.1);
        let handle = self.tasks.spawn(attempt.run());
        self.holding.insert(handle.id(), key);
    }

    fn ended(&mut self, id: tokio::task::Id) {
        // (Called once per task.)
        if let Some((subscription, conversation)) = self.holding.remove(&id)
            && let Some(taken) = self.busy.get_mut(&subscription)
        {
            taken.remove(&conversation);
            if taken.is_empty() {
                self.busy.remove(&subscription);
            }
        }
    }

    /// An attempt's task ended: its slot is free, and its subscription's queue changed.
    fn finished(
        &mut self,
        joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
        queues: &mut Queues,
    ) {
        let id = match joined {
            Ok((id, ())) => id,
            Err(error) => error.id(),
        };
        if let Some((subscription, _)) = self.holding.get(&id) {
            queues.stale.insert(subscription.clone());
        }
        self.ended(id);
    }

    fn taken(&self, subscription: &SubscriptionId) -> Option<&HashSet<ConversationId>> {
        self.busy.get(subscription)
    }
}

impl Webhooks {
    /// Webhooks of the events in `log` (`Engine`'s is the store handed to its builder), with their state in
    /// `state`.
    ///
    /// Its metric series are registered here: install a metrics recorder before, if you want them.
    pub fn new(log: Arc<dyn ConversationLog>, state: Arc<dyn WebhookState>, config: WebhookConfig) -> Self {
        Self {
            log,
            state,
            config,
            series: Series::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// Creates a subscription of `tenant`. It gets the events committed from now on (its position is the feed's
    /// head); use [`replay_from`](Self::replay_from) for earlier ones.
    pub async fn create(&self, tenant: &TenantId, spec: SubscriptionSpec) -> Result<Subscription, Error> {
        spec.validate()?;
        let subscription = Subscription::new(SubscriptionId::generate(), tenant.clone(), spec);
        let head = self.log.feed_head().await?;
        self.state.create_subscription(subscription.clone(), head).await?;
        Ok(subscription)
    }

    /// Replaces the spec of a subscription of `tenant` ([`Error::NotFound`] when it has none with that id). Its
    /// position and queued deliveries stay.
    pub async fn update(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        spec: SubscriptionSpec,
    ) -> Result<Subscription, Error> {
        spec.validate()?;
        let subscription = Subscription::new(id.clone(), tenant.clone(), spec);
        if self.state.update_subscription(subscription.clone()).await? {
            Ok(subscription)
        } else {
            Err(Error::NotFound)
        }
    }

    /// Deletes a subscription of `tenant` with its queued deliveries and dead letters. False when there was none.
    pub async fn delete(&self, tenant: &TenantId, id: &SubscriptionId) -> Result<bool, Error> {
        self.state.delete_subscription(tenant, id).await
    }

    /// The subscriptions of `tenant`, with their positions.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<SubscriptionState>, Error> {
        Ok(self
            .state
            .subscriptions()
            .await?
            .into_iter()
            .filter(|state| &state.subscription.tenant == tenant)
            .collect())
    }

    /// One subscription of `tenant`.
    pub async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> Result<SubscriptionState, Error> {
        self.list(tenant)
            .await?
            .into_iter()
            .find(|state| &state.subscription.id == id)
            .ok_or(Error::NotFound)
    }

    /// Up to `limit` pending deliveries of a subscription of `tenant` (attempts, next attempt, last error).
    pub async fn pending(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        self.get(tenant, id).await?;
        self.state.pending(id, limit).await
    }

    /// Up to `limit` dead letters of a subscription of `tenant`.
    pub async fn dead_letters(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        self.get(tenant, id).await?;
        self.state.dead_letters(id, limit).await
    }

    /// Sends every dead letter of a subscription of `tenant` again, with a fresh attempt budget, in position
    /// order per conversation. Returns how many.
    pub async fn replay_dead_letters(&self, tenant: &TenantId, id: &SubscriptionId) -> Result<usize, Error> {
        self.get(tenant, id).await?;
        self.state.replay_dead_letters(id, now_ms()).await
    }

    /// Delivers again every event after `position` (a change-feed position, e.g. a payload's `position`): the
    /// subscription's position is set to it and the worker queues what follows, with the same delivery ids as
    /// before (receivers that deduplicate drop what they already have). Deliveries still queued are kept.
    pub async fn replay_from(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        position: FeedPosition,
    ) -> Result<(), Error> {
        self.get(tenant, id).await?;
        if self.state.rewind(id, position).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Runs the delivery worker until `shutdown` completes, polling every [`WebhookConfig::poll_interval`]. See
    /// [`run_woken`](Self::run_woken).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        self.run_woken(shutdown, None).await
    }

    /// Runs the delivery worker until `shutdown` completes (e.g. a `CancellationToken`'s `cancelled()`, or a
    /// oneshot receiver), woken at once by `wake` (`Engine::feed_wake`) when events are committed.
    ///
    /// It reads the change feed from the lowest position of the subscriptions that have room, queues each event a
    /// subscription wants in the state (payload built once, position moved in the same step), and sends pending
    /// deliveries: for each subscription at most [`WebhookConfig::concurrency_per_endpoint`] at once, only the
    /// oldest pending delivery of each conversation (a later event of a conversation waits until the earlier one
    /// succeeded or became a dead letter), only when due. Each attempt runs on its own task and records its
    /// outcome in the state (success: removed; failure: attempt count, next attempt after the backoff, error;
    /// a dead letter after [`WebhookConfig::max_attempts`]), so a slow receiver holds nothing but its own slots.
    /// Everything it needs is in the state: a new worker on the same state after a crash or restart resends what
    /// was in flight (at-least-once) and keeps the retry times.
    ///
    /// On shutdown it starts nothing new and waits for the attempts in flight (each bounded by
    /// [`WebhookConfig::request_timeout`]) to finish and be recorded. An error of the state or the log is
    /// logged and retried after the poll interval; `run` only fails when the HTTP client cannot be built.
    pub async fn run_woken(
        &self,
        shutdown: impl Future<Output = ()>,
        mut wake: Option<FeedWake>,
    ) -> Result<(), Error> {
        let client = http_client(&self.config)?;
        let mut shutdown = pin!(shutdown);
        let mut in_flight = InFlight::default();
        let mut queues = Queues::default();
        loop {
            let wait = match self.round(&client, &mut in_flight, &mut queues).await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::warn!(%error, "webhook worker round failed; retrying");
                    queues.refreshed = None;
                    self.config.poll_interval
                }
            };
            let woken = async {
                match wake.as_mut() {
                    Some(wake) => wake.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(joined) = in_flight.tasks.join_next_with_id(), if !in_flight.tasks.is_empty() => {
                    in_flight.finished(joined, &mut queues);
                }
                () = woken => {}
                () = tokio::time::sleep(wait) => {}
            }
            // Collect whatever else finished, so the next round sees free slots.
            while let Some(joined) = in_flight.tasks.try_join_next_with_id() {
                in_flight.finished(joined, &mut queues);
            }
        }
        while in_flight.tasks.join_next().await.is_some() {}
        Ok(())
    }

    /// One round: queue new events, start the attempts that are due. Returns how long to wait at most before the
    /// next round.
    async fn round(
        &self,
        client: &HttpClient,
        in_flight: &mut InFlight,
        queues: &mut Queues,
    ) -> Result<Duration, Error> {
        let subscriptions = self.state.subscriptions().await?;
        let refresh_all = queues
            .refreshed
            .is_none_or(|at| at.elapsed() >= self.config.poll_interval);
        if refresh_all {
            queues.refreshed = Some(Instant::now());
        }
        queues
            .lists
            .retain(|id, _| subscriptions.iter().any(|state| &state.subscription.id == id));
        for state in &subscriptions {
            let id = &state.subscription.id;
            if refresh_all || queues.stale.remove(id) || !queues.lists.contains_key(id) {
                let queued = self.state.pending(id, self.config.max_pending).await?;
                queues.lists.insert(id.clone(), queued);
            }
        }
        if refresh_all {
            queues.stale.clear();
        }
        let pending = &mut queues.lists;
        let mut wait = self.config.poll_interval;

        // Queue: read the feed from the lowest position among the subscriptions with room.
        let open: Vec<&SubscriptionState> = subscriptions
            .iter()
            .filter(|state| pending.get(&state.subscription.id).map_or(0, Vec::len) < self.config.max_pending)
            .collect();
        // Where each subscription is after this round's queueing, and the feed's head if this round's read
        // reached it: for `kf_feed_lag_events`.
        let mut positions: HashMap<&SubscriptionId, FeedPosition> = subscriptions
            .iter()
            .map(|state| (&state.subscription.id, state.position))
            .collect();
        let mut head = None;
        if let Some(from) = open.iter().map(|state| state.position).min() {
            let page = self.config.page.max(1);
            let entries = self.log.feed_after(from, page).await?;
            if entries.len() < page {
                head = Some(entries.last().map_or(from, |entry| entry.position));
            }
            if let Some(last) = entries.last().map(|entry| entry.position) {
                if entries.len() >= page {
                    wait = Duration::ZERO;
                }
                let now = now_ms();
                for state in open.into_iter().filter(|state| state.position < last) {
                    let subscription = &state.subscription;
                    let deliveries: Vec<NewDelivery> = entries
                        .iter()
                        .filter(|entry| entry.position > state.position)
                        .filter(|entry| subscription.spec.active && entry.tenant == subscription.tenant)
                        .filter_map(|entry| {
                            let kind = EventType::of(&entry.event.data)?;
                            subscription.spec.events.contains(&kind).then(|| {
                                NewDelivery::new(
                                    entry.position,
                                    entry.event.conversation,
                                    entry.event.seq,
                                    kind,
                                    payload(&subscription.id, kind, entry),
                                )
                            })
                        })
                        .collect();
                    let queued_any = !deliveries.is_empty();
                    let moved = self
                        .state
                        .enqueue(&subscription.id, state.position, deliveries, last, now)
                        .await?;
                    if moved {
                        positions.insert(&subscription.id, last);
                    }
                    if moved && queued_any {
                        let queued = self
                            .state
                            .pending(&subscription.id, self.config.max_pending)
                            .await?;
                        pending.insert(subscription.id.clone(), queued);
                    }
                }
            }
        }

        if let Some(lowest) = positions.values().min() {
            let head = match head {
                Some(head) => head,
                None => self.log.feed_head().await?,
            };
            self.series.lag.set(head.0, lowest.0);
        }

        // Send: the oldest pending delivery of each conversation, when due and a slot is free.
        let now = now_ms();
        for state in subscriptions
            .iter()
            .filter(|state| state.subscription.spec.active)
        {
            let subscription = &state.subscription;
            let Some(queued) = pending.get(&subscription.id) else {
                continue;
            };
            let mut seen = HashSet::new();
            for delivery in queued {
                let taken = in_flight.taken(&subscription.id);
                if taken.map_or(0, HashSet::len) >= self.config.concurrency_per_endpoint {
                    break;
                }
                if !seen.insert(delivery.conversation)
                    || taken.is_some_and(|taken| taken.contains(&delivery.conversation))
                {
                    continue;
                }
                if delivery.next_attempt_at > now {
                    wait = wait.min(Duration::from_millis(delivery.next_attempt_at - now));
                    continue;
                }
                let attempt = Attempt {
                    series: self.series.clone(),
                    client: client.clone(),
                    state: self.state.clone(),
                    config: self.config.clone(),
                    subscription: subscription.clone(),
                    delivery: delivery.clone(),
                };
                in_flight.start(attempt);
            }
        }
        Ok(wait)
    }
}

/// One attempt of one delivery, on its own task.
struct Attempt {
    series: Series,
    client: HttpClient,
    state: Arc<dyn WebhookState>,
    config: WebhookConfig,
    subscription: Subscription,
    delivery: Delivery,
}

impl Attempt {
    /// Runs the attempt in a `kf.webhook` span: `tenant`, `conversation`, `seq`, `subscription`, `delivery`,
    /// `attempt` (1 for the first).
    async fn run(self) {
        let delivery = &self.delivery;
        let span = tracing::debug_span!(
            "kf.webhook",
            tenant = %self.subscription.tenant,
            conversation = %delivery.conversation,
            seq = delivery.seq.0,
            subscription = %delivery.subscription,
            delivery = %delivery.id(),
            attempt = delivery.attempts.saturating_add(1),
        );
        self.attempt().instrument(span).await;
    }

    async fn attempt(self) {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.config.request_timeout, self.post())
            .await
            .unwrap_or_else(|_| Err("timed out".to_owned()));
        self.series.attempt.record(started.elapsed().as_secs_f64());
        let delivery = &self.delivery;
        let recorded = match &outcome {
            Ok(()) => {
                self.series.delivered.increment(1);
                tracing::debug!("webhook delivered");
                self.state
                    .succeeded(&delivery.subscription, delivery.position)
                    .await
            }
            Err(error) => {
                let attempts = delivery.attempts.saturating_add(1);
                let dead = attempts >= self.config.max_attempts;
                let next = now_ms().saturating_add(
                    u64::try_from(self.config.backoff(attempts).as_millis()).unwrap_or(u64::MAX),
                );
                self.series.failed.increment(1);
                if dead {
                    self.series.dead_letters.increment(1);
                }
                tracing::debug!(attempts, dead, %error, "webhook delivery failed");
                self.state
                    .failed(
                        &delivery.subscription,
                        delivery.position,
                        attempts,
                        next,
                        error,
                        dead,
                    )
                    .await
            }
        };
        if let Err(error) = recorded {
            // Not recorded: the delivery stays as it was and is attempted again (at-least-once).
            tracing::warn!(delivery = %delivery.id(), %error, "webhook outcome not recorded");
        }
    }

    async fn post(&self) -> Result<(), String> {
        let delivery = &self.delivery;
        let timestamp = now_ms() / 1000;
        let body = Bytes::from(delivery.body.clone());
        let signature = signature::sign(self.subscription.spec.secret.as_bytes(), timestamp, &body);
        let request = http::Request::post(&self.subscription.spec.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("kf-webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .header(signature::HEADER, signature)
            .header("X-Kf-Delivery", delivery.id())
            .header("X-Kf-Event", delivery.event_type.name())
            .body(Full::new(body))
            .map_err(|error| format!("bad request: {error}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        let status = response.status();
        // Read (at most 64 KiB of) the answer so the connection can be reused.
        let _ = Limited::new(response.into_body(), 64 * 1024).collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}
