//! # kf-blob-object-store
//!
//! A [`BlobStore`] for kf's attachments on the [`object_store`] crate:
//! [`LocalFileSystem`](object_store::local::LocalFileSystem), [`InMemory`](object_store::memory::InMemory), and
//! with the feature `s3` Amazon S3 and the services that speak its API (MinIO, Cloudflare R2, …) through
//! `object_store::aws::AmazonS3Builder`.
//!
//! ```
//! use std::sync::Arc;
//! use kf_blob_object_store::ObjectStoreBlobs;
//! use kf_core::blob::BlobStore;
//!
//! let blobs: Arc<dyn BlobStore> = Arc::new(ObjectStoreBlobs::new(
//!     Arc::new(object_store::memory::InMemory::new()),
//!     "kf/attachments",
//! ));
//! # drop(blobs);
//! ```
//!
//! A put is a multipart upload (each chunk of the source becomes part of a part, parts of at least 5 MiB as S3
//! requires, the last one smaller), completed only when the whole stream was read within its cap; a refused
//! or broken put aborts the upload, so nothing becomes visible under the key. Object stores replace an object
//! atomically on completion, so a reader sees the old blob or the new one, never a part.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use kf_core::blob::{Blob, BlobError, BlobKey, BlobStore, ByteStream, count_chunk};
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};

pub use object_store;

/// The part size of a put's multipart upload: S3's minimum for every part but the last.
const PART_BYTES: usize = 5 * 1024 * 1024;

/// A [`BlobStore`] on an [`ObjectStore`]: each blob is the object `<prefix>/<key>`.
#[derive(Clone)]
pub struct ObjectStoreBlobs {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl fmt::Debug for ObjectStoreBlobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreBlobs")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix.as_ref())
            .finish()
    }
}

impl ObjectStoreBlobs {
    /// Blobs in `store` under `prefix` (a `/`-separated path; empty for the store's root).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: Path::from(prefix),
        }
    }

    fn path(&self, key: &BlobKey) -> Path {
        self.prefix.child(key.as_str())
    }
}

fn backend(error: object_store::Error) -> BlobError {
    BlobError::backend(error)
}

#[async_trait]
impl BlobStore for ObjectStoreBlobs {
    async fn put(&self, key: &BlobKey, mut bytes: ByteStream, max_bytes: u64) -> Result<u64, BlobError> {
        let upload = self.store.put_multipart(&self.path(key)).await.map_err(backend)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut total = 0;
        let failure = loop {
            let chunk = match bytes.next().await {
                None => break None,
                Some(Err(error)) => break Some(error),
                Some(Ok(chunk)) => chunk,
            };
            if let Err(error) = count_chunk(&mut total, &chunk, max_bytes) {
                break Some(error);
            }
            // Waits while too many parts are in flight, so a fast source cannot fill the memory.
            if let Err(error) = writer.wait_for_capacity(2).await {
                break Some(backend(error));
            }
            writer.write(&chunk);
        };
        match failure {
            None => {
                writer.finish().await.map_err(backend)?;
                Ok(total)
            }
            Some(error) => {
                // Nothing was completed, so nothing is visible; aborting frees the parts already sent.
                let _ = writer.abort().await;
                Err(error)
            }
        }
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>, BlobError> {
        match self.store.get(&self.path(key)).await {
            Ok(result) => {
                let size = result.meta.size;
                let bytes = result.into_stream().map_err(backend).boxed();
                Ok(Some(Blob { size, bytes }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(backend(error)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(backend(error)),
        }
    }
}
