//! Errors of the SQLite store.

use std::path::PathBuf;
use std::sync::Arc;

use kf_core::store::StoreError;
use thiserror::Error;

/// Errors of [`SqliteStore`](crate::SqliteStore). Through the [`Store`](kf_core::store::Store) trait they surface
/// as [`StoreError::Backend`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite reported an error (I/O, corruption, a constraint, an undecodable row…).
    #[error(transparent)]
    Database(DatabaseError),
    /// The directory that should hold the database could not be created.
    #[error("cannot create the directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer version of this crate; it is left untouched.
    #[error(
        "the database has schema version {found}, newer than the {supported} this build knows; \
         upgrade kf-store-sqlite to open it"
    )]
    FutureSchema {
        /// The `user_version` found in the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The file's schema version is not one this crate ever wrote (for example negative).
    #[error("the database has an unknown schema version {0}")]
    UnknownSchema(i64),
    /// The database could not be put in WAL mode (for example an in-memory database).
    #[error("the database cannot use WAL journaling (journal mode is {0:?}); use a file on a local disk")]
    NotWal(String),
    /// A setting of [`SqliteConfig`](crate::SqliteConfig) is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The writer thread could not be started.
    #[error("cannot start the writer thread: {0}")]
    SpawnWriter(#[source] std::io::Error),
    /// The search indexer's thread could not be started.
    #[error("cannot start the search indexer thread: {0}")]
    SpawnIndexer(#[source] std::io::Error),
    /// The writer thread panicked.
    #[error("the writer thread panicked")]
    WriterPanicked,
    /// The search indexer's thread panicked.
    #[error("the search indexer thread panicked")]
    IndexerPanicked,
    /// The writer stopped without answering a request; whether it was stored is unknown.
    #[error("the writer stopped before answering")]
    WriterStopped,
    /// The transaction of a group commit failed as a whole: no request of the batch was stored.
    #[error("the group commit failed, nothing of its batch was stored: {0}")]
    Batch(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// A value could not be encoded as JSON for storage.
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A read task panicked or was cancelled.
    #[error("a read task failed: {0}")]
    ReadTask(String),
    /// An online backup could not write or move its copy ([`SqliteStore::backup_to`](crate::SqliteStore::backup_to)).
    #[error("backup to {path}: {source}")]
    Backup {
        /// The file being written or moved.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// An online backup was refused: its destination is the database itself.
    #[error("a backup cannot overwrite the database it copies ({0})")]
    BackupOntoItself(PathBuf),
}

/// An error SQLite reported (I/O, corruption, a constraint, an undecodable row…). Opaque, so that this crate's
/// public API does not depend on the SQLite binding it uses; the binding's error is its
/// [`source`](std::error::Error::source), and [`code`](DatabaseError::code) gives SQLite's extended result code.
#[derive(Debug)]
pub struct DatabaseError(rusqlite::Error);

impl DatabaseError {
    /// SQLite's extended result code (for example 5, `SQLITE_BUSY`, or 1555, `SQLITE_CONSTRAINT_PRIMARYKEY`),
    /// when the error came from SQLite itself rather than from reading a value.
    pub fn code(&self) -> Option<i32> {
        match &self.0 {
            rusqlite::Error::SqliteFailure(error, _) => Some(error.extended_code),
            _ => None,
        }
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sqlite: {}", self.0)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Wraps a rusqlite error (crate-private: the public API names no rusqlite type).
pub(crate) fn database(error: rusqlite::Error) -> SqliteError {
    SqliteError::Database(DatabaseError(error))
}

/// `?` for rusqlite results inside functions that return [`SqliteError`].
pub(crate) trait Db<T> {
    /// Maps the error to [`SqliteError::Database`].
    fn db(self) -> Result<T, SqliteError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, SqliteError> {
        self.map_err(database)
    }
}

impl From<SqliteError> for StoreError {
    fn from(error: SqliteError) -> Self {
        StoreError::backend(error)
    }
}

/// Wraps a rusqlite error as a store error.
pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::backend(database(error))
}
