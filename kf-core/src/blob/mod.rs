//! Blob storage for attachments: the [`BlobStore`] trait and [`FsBlobStore`], the filesystem backend.
//!
//! A blob is an opaque run of bytes under a [`BlobKey`]. [`BlobStore::put`] takes the bytes as a stream and
//! enforces a size cap while it reads them, so an oversize upload is refused without being held in memory;
//! a put that fails (cap, a broken source stream, a full disk) stores nothing. Which blobs belong to which
//! conversation, and when a blob may go, is not the store's business: the upload records
//! ([`crate::store::Uploads`]) and the cleanup pass ([`crate::attachments::cleanup`]) decide that.
//!
//! Other backends (object storage) live in crates of their own (`kf-blob-object-store`) and prove themselves
//! with the conformance suite `kf_core::blob_store_conformance_tests!` (feature `testkit`).

mod fs;

use std::fmt::{self, Debug};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use thiserror::Error;

pub use fs::FsBlobStore;

/// The longest [`BlobKey`], in bytes.
pub const MAX_BLOB_KEY_LEN: usize = 128;

/// The name of a blob: 1 to 128 ASCII letters, digits, `-`, `_` and `.`, not starting with `.`, so that every
/// backend can use it as a file name or object path as it is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(Arc<str>);

impl BlobKey {
    /// Validates a key.
    pub fn new(key: impl Into<String>) -> Result<Self, BlobError> {
        let key = key.into();
        let valid = !key.is_empty()
            && key.len() <= MAX_BLOB_KEY_LEN
            && !key.starts_with('.')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(Self(Arc::from(key)))
        } else {
            Err(BlobError::InvalidKey(key))
        }
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobKey({:?})", self.0)
    }
}

/// Errors of a blob store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The key is not a valid [`BlobKey`].
    #[error("invalid blob key {0:?}: 1 to 128 of a-z, A-Z, 0-9, '-', '_', '.', not starting with '.'")]
    InvalidKey(String),
    /// The bytes were more than the put allowed; nothing was stored.
    #[error("the blob is larger than {limit} bytes")]
    TooLarge {
        /// The cap of the put.
        limit: u64,
    },
    /// The stream of bytes handed to a put failed (a dropped upload); nothing was stored.
    #[error("the source of the bytes failed: {0}")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The backend failed (I/O, a network error). The request may be retried.
    #[error("blob backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl BlobError {
    /// Wraps a backend error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        BlobError::Backend(Box::new(error))
    }

    /// Wraps an error of the source stream.
    pub fn source_failed(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        BlobError::Source(Box::new(error))
    }
}

/// The bytes handed to [`BlobStore::put`] and read back from [`BlobStore::get`], as a stream of chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, BlobError>>;

/// A stored blob as read back: its size and its bytes.
pub struct Blob {
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes.
    pub bytes: ByteStream,
}

impl Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blob")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Blob {
    /// Reads the whole blob into memory (for blobs known to be small, such as thumbnails).
    pub async fn collect(mut self) -> Result<Bytes, BlobError> {
        let mut all = BytesMut::with_capacity(usize::try_from(self.size).unwrap_or(0).min(1 << 20));
        while let Some(chunk) = self.bytes.next().await {
            all.extend_from_slice(&chunk?);
        }
        Ok(all.freeze())
    }
}

/// Where attachments' bytes are kept. Object safe: held as `Arc<dyn BlobStore>`.
///
/// Contract (checked by `kf_core::blob_store_conformance_tests!`):
/// - `put` stores all of the stream under `key`, replacing a blob already there, and returns its size; when
///   the stream yields more than `max_bytes`, or fails, or the backend fails, it returns the error and **no**
///   blob (neither a partial one nor a changed old one) is readable under `key` afterwards;
/// - `get` returns exactly the bytes put, or `None` for a key never put or deleted;
/// - `delete` removes a blob; deleting a missing blob is not an error (so a cleanup pass can repeat).
#[async_trait]
pub trait BlobStore: Send + Sync + Debug {
    /// Stores the stream's bytes under `key`, at most `max_bytes` of them. Returns the number of bytes stored.
    async fn put(&self, key: &BlobKey, bytes: ByteStream, max_bytes: u64) -> Result<u64, BlobError>;

    /// Reads a blob back, or `None` when there is none under `key`.
    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>, BlobError>;

    /// Removes a blob; a missing one is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
}

#[async_trait]
impl<T: BlobStore + ?Sized> BlobStore for Arc<T> {
    async fn put(&self, key: &BlobKey, bytes: ByteStream, max_bytes: u64) -> Result<u64, BlobError> {
        (**self).put(key, bytes, max_bytes).await
    }
    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>, BlobError> {
        (**self).get(key).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        (**self).delete(key).await
    }
}

#[async_trait]
impl<T: BlobStore + ?Sized> BlobStore for Box<T> {
    async fn put(&self, key: &BlobKey, bytes: ByteStream, max_bytes: u64) -> Result<u64, BlobError> {
        (**self).put(key, bytes, max_bytes).await
    }
    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>, BlobError> {
        (**self).get(key).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        (**self).delete(key).await
    }
}

/// A stream of one chunk: for bytes already in memory (a thumbnail).
pub fn once(bytes: impl Into<Bytes>) -> ByteStream {
    futures::stream::iter([Ok(bytes.into())]).boxed()
}

/// Adds `chunk` to a running count and fails once it exceeds `limit`: the cap every backend enforces while it
/// streams a put.
pub fn count_chunk(total: &mut u64, chunk: &Bytes, limit: u64) -> Result<(), BlobError> {
    *total = total.saturating_add(chunk.len() as u64);
    if *total > limit {
        Err(BlobError::TooLarge { limit })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_safe_file_names() {
        for good in ["a", "att_0193-abc.thumb", &"x".repeat(128)] {
            assert!(BlobKey::new(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "é", &"x".repeat(129), "a\\b"] {
            assert!(
                matches!(BlobKey::new(bad), Err(BlobError::InvalidKey(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_count_fails_past_the_limit() {
        let mut total = 0;
        assert!(count_chunk(&mut total, &Bytes::from_static(b"abc"), 4).is_ok());
        assert!(matches!(
            count_chunk(&mut total, &Bytes::from_static(b"de"), 4),
            Err(BlobError::TooLarge { limit: 4 })
        ));
    }
}
