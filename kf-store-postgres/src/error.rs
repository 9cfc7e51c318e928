//! Errors of the PostgreSQL store.

use std::sync::Arc;

use kf_core::store::StoreError;
use thiserror::Error;

/// Errors of [`PostgresStore`](crate::PostgresStore). Through the store traits they surface as
/// [`StoreError::Backend`] (or a more precise [`StoreError`] where one fits).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The server reported an error, or the connection failed.
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    /// No connection could be taken from the pool (the server is unreachable, or the pool timed out).
    #[error("cannot get a database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The connection pool could not be built from the configuration.
    #[error("cannot build the connection pool: {0}")]
    CreatePool(#[from] deadpool_postgres::CreatePoolError),
    /// The connection string could not be parsed.
    #[error("invalid connection string: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// A setting of [`PostgresConfig`](crate::PostgresConfig) is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The database was written by a newer version of this crate; it is left untouched.
    #[error(
        "the database has schema version {found}, newer than the {supported} this build knows; \
         upgrade kf-store-postgres to open it"
    )]
    FutureSchema {
        /// The version found in `kf_schema`.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The database's schema version is not one this crate ever wrote (for example negative).
    #[error("the database has an unknown schema version {0}")]
    UnknownSchema(i64),
    /// A stored row could not be decoded (a value this build does not know, broken JSON).
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A value could not be encoded as JSON for storage.
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// [`PostgresStore::open`](crate::PostgresStore::open) was called outside a Tokio runtime, which its writer
    /// task needs.
    #[error("the store must be opened inside a Tokio runtime")]
    NoRuntime,
    /// The writer task stopped without answering a request; whether it was stored is unknown.
    #[error("the writer stopped before answering")]
    WriterStopped,
    /// The transaction of a group commit failed as a whole: no request of the batch was stored.
    #[error("the group commit failed, nothing of its batch was stored: {0}")]
    Batch(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl From<PostgresError> for StoreError {
    fn from(error: PostgresError) -> Self {
        StoreError::backend(error)
    }
}

/// Wraps anything the driver or pool reports as a [`StoreError::Backend`].
pub(crate) fn backend(error: impl Into<PostgresError>) -> StoreError {
    StoreError::from(error.into())
}

/// The SQLSTATE of a server error, if the error is one.
pub(crate) fn sqlstate(error: &tokio_postgres::Error) -> Option<&tokio_postgres::error::SqlState> {
    error.code()
}
