//! [`FsBlobStore`]: blobs as files in a directory.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{Blob, BlobError, BlobKey, BlobStore, ByteStream, count_chunk};

/// The folder (inside the root) where puts write before they are complete.
const PARTIAL_DIR: &str = ".partial";

/// Partial files older than this, found when a store opens, are left-overs of a crash and removed.
const STALE_PARTIAL: Duration = Duration::from_secs(3600);

/// Blobs as files in one directory: a put writes to a temporary file in `.partial/`, syncs it to disk and then
/// renames it into place, so a blob is either all there or not there, even across a crash. A put that fails
/// removes its temporary file; those a crash leaves behind are removed the next time the store opens.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    partial: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating it when missing) a store in `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        let partial = root.join(PARTIAL_DIR);
        tokio::fs::create_dir_all(&partial)
            .await
            .map_err(BlobError::backend)?;
        let store = Self { root, partial };
        store.remove_stale_partials().await?;
        Ok(store)
    }

    /// The directory the blobs are in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    async fn remove_stale_partials(&self) -> Result<(), BlobError> {
        let mut entries = tokio::fs::read_dir(&self.partial)
            .await
            .map_err(BlobError::backend)?;
        let now = SystemTime::now();
        while let Some(entry) = entries.next_entry().await.map_err(BlobError::backend)? {
            let modified = entry.metadata().await.and_then(|meta| meta.modified());
            let stale = modified
                .ok()
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age > STALE_PARTIAL);
            if stale {
                remove_if_there(&entry.path()).await?;
            }
        }
        Ok(())
    }
}

/// Removes the temporary file of a put that did not finish (dropped or failed).
struct PartialFile(Option<PathBuf>);

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Synchronous on purpose: a drop cannot await, and a leftover would only be swept at the next open.
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn remove_if_there(path: &Path) -> Result<(), BlobError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(BlobError::backend(error)),
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &BlobKey, mut bytes: ByteStream, max_bytes: u64) -> Result<u64, BlobError> {
        let temp = self
            .partial
            .join(format!("{key}.{}", uuid::Uuid::now_v7().simple()));
        let mut guard = PartialFile(Some(temp.clone()));
        let mut file = tokio::fs::File::create(&temp).await.map_err(BlobError::backend)?;
        let mut total = 0;
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk?;
            count_chunk(&mut total, &chunk, max_bytes)?;
            file.write_all(&chunk).await.map_err(BlobError::backend)?;
        }
        file.flush().await.map_err(BlobError::backend)?;
        file.sync_all().await.map_err(BlobError::backend)?;
        drop(file);
        tokio::fs::rename(&temp, self.path(key))
            .await
            .map_err(BlobError::backend)?;
        guard.0 = None;
        // The rename is durable once the directory is synced.
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(root).and_then(|dir| dir.sync_all()))
            .await
            .map_err(BlobError::backend)?
            .map_err(BlobError::backend)?;
        Ok(total)
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>, BlobError> {
        let file = match tokio::fs::File::open(self.path(key)).await {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(BlobError::backend(error)),
        };
        let size = file.metadata().await.map_err(BlobError::backend)?.len();
        let bytes = ReaderStream::new(file)
            .map(|chunk| chunk.map_err(BlobError::backend))
            .boxed();
        Ok(Some(Blob { size, bytes }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        remove_if_there(&self.path(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn a_failed_put_leaves_no_partial_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = BlobKey::new("half").expect("key");
        let broken = std::io::Error::new(ErrorKind::ConnectionReset, "the upload broke off");
        let chunks = [
            Ok(Bytes::from_static(b"first half")),
            Err(BlobError::source_failed(broken)),
        ];
        let put = store.put(&key, futures::stream::iter(chunks).boxed(), 100).await;
        assert!(matches!(put, Err(BlobError::Source(_))));
        let partials = std::fs::read_dir(dir.path().join(PARTIAL_DIR))
            .expect("read")
            .count();
        assert_eq!(partials, 0);
        assert!(store.get(&key).await.expect("get").is_none());
    }
}
