//! Configuration of a [`PostgresStore`](crate::PostgresStore).

use std::time::Duration;

use crate::PostgresError;

/// How a [`PostgresStore`](crate::PostgresStore) uses its database. Build it with [`PostgresConfig::new`] and
/// the `with_*` methods.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// The connection string: a URL (`postgres://user@host:5432/kf`) or key-value pairs
    /// (`host=/run/postgresql dbname=kf`), as libpq takes them.
    pub url: String,
    /// The most connections the store opens (readers and the writer's together). Default 16.
    pub pool_size: usize,
    /// The most write requests (opens and appends) one group commit carries. Default 200.
    pub batch_max: usize,
    /// How long a request waits for a free connection before it fails. Default 10 s.
    pub connect_timeout: Duration,
}

impl PostgresConfig {
    /// The defaults, for a connection string.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            batch_max: 200,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Sets [`pool_size`](PostgresConfig::pool_size).
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// Sets [`batch_max`](PostgresConfig::batch_max).
    pub fn with_batch_max(mut self, batch_max: usize) -> Self {
        self.batch_max = batch_max;
        self
    }

    /// Sets [`connect_timeout`](PostgresConfig::connect_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), PostgresError> {
        if self.pool_size == 0 {
            return Err(PostgresError::InvalidConfig("pool_size must be at least 1"));
        }
        if self.batch_max == 0 {
            return Err(PostgresError::InvalidConfig("batch_max must be at least 1"));
        }
        Ok(())
    }
}
