//! [`SqliteState`]: [`WebhookState`] in a SQLite file, through a connection of its own.
//!
//! Two tables, `webhook_subscriptions` (spec and feed position) and `webhook_deliveries` (queued deliveries
//! with their payload, attempts, next attempt time, last error and dead flag; primary key (subscription,
//! position)). They are created with `CREATE TABLE IF NOT EXISTS` and versioned by a row of their own table
//! `webhook_meta`, never by `PRAGMA user_version`, so the file may be its own (the default advice:
//! `webhooks.sqlite3` beside `kf.sqlite3`) or the `kf-store-sqlite` file itself — its migrations ignore tables
//! they do not know. WAL and `synchronous=FULL`: a recorded success, failure or position survives a power loss.
//! Every method is one transaction on a blocking thread.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kf_core::model::{ConversationId, Seq, TenantId};
use kf_core::store::FeedPosition;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::state::{Delivery, NewDelivery, SubscriptionState, WebhookState};
use crate::{Error, EventType, Subscription, SubscriptionId, SubscriptionSpec};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhook_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    active INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    subscription TEXT NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    conversation TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    dead INTEGER NOT NULL,
    PRIMARY KEY (subscription, position)
) WITHOUT ROWID;
";

/// [`WebhookState`] in a SQLite file, through a connection of its own.
///
/// Two tables, `webhook_subscriptions` (spec and feed position) and `webhook_deliveries` (queued deliveries with
/// their payload, attempts, next attempt time, last error and dead flag; primary key (subscription, position)),
/// created if missing and versioned by a row of `webhook_meta`, never by `PRAGMA user_version`: the file may be
/// its own (advised: `webhooks.sqlite3` beside `kf.sqlite3`, so the store's writer never waits for webhook
/// bookkeeping) or the `kf-store-sqlite` file itself. WAL and `synchronous=FULL`; every method is one
/// transaction on a blocking thread.
#[derive(Debug, Clone)]
pub struct SqliteState {
    connection: Arc<Mutex<Connection>>,
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::State(Box::new(error))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl SqliteState {
    /// Opens (or creates) the state in the SQLite file at `path`, creating the tables it lacks.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let connection = Connection::open(path).map_err(backend)?;
        connection.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Invalid(format!(
                "the webhook state needs a WAL file, got {mode}"
            )));
        }
        connection
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(backend)?;
        connection.execute_batch(SCHEMA).map_err(backend)?;
        let version: Option<String> = connection
            .query_row(
                "SELECT value FROM webhook_meta WHERE key = 'version'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)?;
        match version.map(|text| text.parse::<i64>()) {
            None => {
                connection
                    .execute(
                        "INSERT INTO webhook_meta (key, value) VALUES ('version', ?1)",
                        [SCHEMA_VERSION.to_string()],
                    )
                    .map_err(backend)?;
            }
            Some(Ok(SCHEMA_VERSION)) => {}
            Some(other) => {
                return Err(Error::Invalid(format!("unknown webhook state version {other:?}")));
            }
        }
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(backend)?
    }
}

fn events_text(spec: &SubscriptionSpec) -> Result<String, Error> {
    serde_json::to_string(&spec.events).map_err(backend)
}

fn subscription_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SubscriptionState, Error>> {
    let id: String = row.get(0)?;
    let tenant: String = row.get(1)?;
    let url: String = row.get(2)?;
    let secret: String = row.get(3)?;
    let events: String = row.get(4)?;
    let active: bool = row.get(5)?;
    let position: i64 = row.get(6)?;
    Ok((|| {
        let events: Vec<EventType> = serde_json::from_str(&events).map_err(backend)?;
        let spec = SubscriptionSpec::new(url, secret, events).with_active(active);
        let tenant = TenantId::new(tenant).map_err(|error| Error::Invalid(error.to_string()))?;
        Ok(SubscriptionState {
            subscription: Subscription::new(SubscriptionId::new(id)?, tenant, spec),
            position: FeedPosition(to_u64(position)),
        })
    })())
}

const DELIVERY_COLUMNS: &str = "subscription, position, conversation, seq, event_type, body, attempts, next_attempt_at, last_error, dead";

fn delivery_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Delivery, Error>> {
    let subscription: String = row.get(0)?;
    let position: i64 = row.get(1)?;
    let conversation: String = row.get(2)?;
    let seq: i64 = row.get(3)?;
    let event_type: String = row.get(4)?;
    let body: String = row.get(5)?;
    let attempts: u32 = row.get(6)?;
    let next_attempt_at: i64 = row.get(7)?;
    let last_error: Option<String> = row.get(8)?;
    let dead: bool = row.get(9)?;
    Ok((|| {
        let conversation: ConversationId = conversation
            .parse()
            .map_err(|_| Error::Invalid(format!("bad conversation id {conversation:?}")))?;
        let event_type = EventType::from_name(&event_type)
            .ok_or_else(|| Error::Invalid(format!("unknown event type {event_type:?}")))?;
        let new = NewDelivery::new(
            FeedPosition(to_u64(position)),
            conversation,
            Seq(to_u64(seq)),
            event_type,
            body,
        );
        Ok(Delivery::new(
            SubscriptionId::new(subscription)?,
            new,
            attempts,
            to_u64(next_attempt_at),
            last_error,
            dead,
        ))
    })())
}

fn deliveries(connection: &Connection, id: &str, dead: bool, limit: usize) -> Result<Vec<Delivery>, Error> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription = ?1 AND dead = ?2 \
             ORDER BY position LIMIT ?3"
        ))
        .map_err(backend)?;
    let rows = statement
        .query_map(params![id, dead, to_i64(limit as u64)], delivery_of)
        .map_err(backend)?;
    rows.map(|row| row.map_err(backend)?).collect()
}

#[async_trait]
impl WebhookState for SqliteState {
    async fn create_subscription(
        &self,
        subscription: Subscription,
        position: FeedPosition,
    ) -> Result<(), Error> {
        self.run(move |connection| {
            let events = events_text(&subscription.spec)?;
            let inserted = connection
                .execute(
                    "INSERT INTO webhook_subscriptions (id, tenant, url, secret, events, active, position) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                    params![
                        subscription.id.as_str(),
                        subscription.tenant.as_str(),
                        subscription.spec.url,
                        subscription.spec.secret,
                        events,
                        subscription.spec.active,
                        to_i64(position.0)
                    ],
                )
                .map_err(backend)?;
            if inserted == 0 {
                return Err(Error::Conflict(format!(
                    "subscription {} exists",
                    subscription.id
                )));
            }
            Ok(())
        })
        .await
    }

    async fn update_subscription(&self, subscription: Subscription) -> Result<bool, Error> {
        self.run(move |connection| {
            let events = events_text(&subscription.spec)?;
            let updated = connection
                .execute(
                    "UPDATE webhook_subscriptions SET url = ?3, secret = ?4, events = ?5, active = ?6 \
                     WHERE id = ?1 AND tenant = ?2",
                    params![
                        subscription.id.as_str(),
                        subscription.tenant.as_str(),
                        subscription.spec.url,
                        subscription.spec.secret,
                        events,
                        subscription.spec.active
                    ],
                )
                .map_err(backend)?;
            Ok(updated > 0)
        })
        .await
    }

    async fn delete_subscription(&self, tenant: &TenantId, id: &SubscriptionId) -> Result<bool, Error> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |connection| {
            let deleted = connection
                .execute(
                    "DELETE FROM webhook_subscriptions WHERE id = ?1 AND tenant = ?2",
                    params![id.as_str(), tenant.as_str()],
                )
                .map_err(backend)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn subscriptions(&self) -> Result<Vec<SubscriptionState>, Error> {
        self.run(|connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT id, tenant, url, secret, events, active, position FROM webhook_subscriptions ORDER BY id",
                )
                .map_err(backend)?;
            let rows = statement.query_map([], subscription_of).map_err(backend)?;
            rows.map(|row| row.map_err(backend)?).collect()
        })
        .await
    }

    async fn enqueue(
        &self,
        id: &SubscriptionId,
        expected: FeedPosition,
        deliveries: Vec<NewDelivery>,
        position: FeedPosition,
        due_at: u64,
    ) -> Result<bool, Error> {
        let id = id.clone();
        self.run(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let moved = transaction
                .execute(
                    "UPDATE webhook_subscriptions SET position = ?3 WHERE id = ?1 AND position = ?2",
                    params![id.as_str(), to_i64(expected.0), to_i64(position.0)],
                )
                .map_err(backend)?;
            if moved == 0 {
                return Ok(false);
            }
            {
                let mut insert = transaction
                    .prepare_cached(&format!(
                        "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, NULL, 0) ON CONFLICT DO NOTHING"
                    ))
                    .map_err(backend)?;
                for new in &deliveries {
                    insert
                        .execute(params![
                            id.as_str(),
                            to_i64(new.position.0),
                            new.conversation.to_string(),
                            to_i64(new.seq.0),
                            new.event_type.name(),
                            new.body,
                            to_i64(due_at)
                        ])
                        .map_err(backend)?;
                }
            }
            transaction.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn pending(&self, id: &SubscriptionId, limit: usize) -> Result<Vec<Delivery>, Error> {
        let id = id.clone();
        self.run(move |connection| deliveries(connection, id.as_str(), false, limit))
            .await
    }

    async fn succeeded(&self, id: &SubscriptionId, position: FeedPosition) -> Result<(), Error> {
        let id = id.clone();
        self.run(move |connection| {
            connection
                .execute(
                    "DELETE FROM webhook_deliveries WHERE subscription = ?1 AND position = ?2",
                    params![id.as_str(), to_i64(position.0)],
                )
                .map_err(backend)?;
            Ok(())
        })
        .await
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
        let (id, error) = (id.clone(), error.to_owned());
        self.run(move |connection| {
            connection
                .execute(
                    "UPDATE webhook_deliveries SET attempts = ?3, next_attempt_at = ?4, last_error = ?5, dead = ?6 \
                     WHERE subscription = ?1 AND position = ?2",
                    params![
                        id.as_str(),
                        to_i64(position.0),
                        attempts,
                        to_i64(next_attempt_at),
                        error,
                        dead
                    ],
                )
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn dead_letters(&self, id: &SubscriptionId, limit: usize) -> Result<Vec<Delivery>, Error> {
        let id = id.clone();
        self.run(move |connection| deliveries(connection, id.as_str(), true, limit))
            .await
    }

    async fn replay_dead_letters(&self, id: &SubscriptionId, due_at: u64) -> Result<usize, Error> {
        let id = id.clone();
        self.run(move |connection| {
            connection
                .execute(
                    "UPDATE webhook_deliveries SET dead = 0, attempts = 0, next_attempt_at = ?2 \
                     WHERE subscription = ?1 AND dead = 1",
                    params![id.as_str(), to_i64(due_at)],
                )
                .map_err(backend)
        })
        .await
    }

    async fn rewind(&self, id: &SubscriptionId, position: FeedPosition) -> Result<bool, Error> {
        let id = id.clone();
        self.run(move |connection| {
            let updated = connection
                .execute(
                    "UPDATE webhook_subscriptions SET position = ?2 WHERE id = ?1",
                    params![id.as_str(), to_i64(position.0)],
                )
                .map_err(backend)?;
            Ok(updated > 0)
        })
        .await
    }
}
