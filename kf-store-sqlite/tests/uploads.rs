//! The kf-core uploads conformance suite against a SqliteStore on a fresh temporary file, and the records
//! surviving a reopen.

use std::sync::Arc;

use async_trait::async_trait;
use kf_core::model::{Actor, Attachment, AttachmentId, ConversationId, Timestamp};
use kf_core::store::{StoreError, Upload, UploadState, Uploads};
use kf_store_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;

/// A store and the temporary directory holding its file; the store is closed before the directory goes.
#[derive(Debug)]
struct TempStore {
    store: SqliteStore,
    _dir: TempDir,
}

fn temp_store() -> Arc<TempStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        SqliteStore::open(dir.path().join("kf.sqlite3"), SqliteConfig::default()).expect("open store");
    Arc::new(TempStore { store, _dir: dir })
}

kf_core::uploads_conformance_tests!(async { temp_store() });

#[async_trait]
impl Uploads for TempStore {
    async fn begin_upload(&self, upload: Upload) -> Result<(), StoreError> {
        self.store.begin_upload(upload).await
    }
    async fn finish_upload(&self, attachment: Attachment, limit: u64) -> Result<bool, StoreError> {
        self.store.finish_upload(attachment, limit).await
    }
    async fn upload(&self, id: &AttachmentId) -> Result<Option<Upload>, StoreError> {
        self.store.upload(id).await
    }
    async fn conversation_upload_bytes(&self, conversation: ConversationId) -> Result<u64, StoreError> {
        self.store.conversation_upload_bytes(conversation).await
    }
    async fn commit_uploads(&self, ids: &[AttachmentId]) -> Result<(), StoreError> {
        self.store.commit_uploads(ids).await
    }
    async fn stale_uploads(&self, before: Timestamp, limit: usize) -> Result<Vec<Upload>, StoreError> {
        self.store.stale_uploads(before, limit).await
    }
    async fn delete_upload(&self, id: &AttachmentId) -> Result<(), StoreError> {
        self.store.delete_upload(id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_records_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kf.sqlite3");
    let conversation = ConversationId::generate();
    let id = AttachmentId::generate();
    let owner = Actor::Agent("alice".parse().expect("agent"));
    let attachment = Attachment::new(id.clone(), "manual.pdf", "application/pdf", 77_000);
    {
        let store = SqliteStore::open(&path, SqliteConfig::default()).expect("open");
        let upload = Upload::receiving(
            conversation,
            owner.clone(),
            Timestamp(5),
            id.clone(),
            "manual.pdf",
        );
        store.begin_upload(upload).await.expect("begin");
        assert!(
            store
                .finish_upload(attachment.clone(), 100_000)
                .await
                .expect("finish")
        );
        store.close().expect("close");
    }
    let store = SqliteStore::open(&path, SqliteConfig::default()).expect("reopen");
    let upload = store.upload(&id).await.expect("read").expect("kept");
    assert_eq!(
        (upload.conversation, upload.owner, upload.state, upload.attachment),
        (conversation, owner, UploadState::Ready, attachment)
    );
    let twice = store.finish_upload(Attachment::new(id, "again", "x", 1), 1).await;
    assert!(matches!(twice, Err(StoreError::Invalid(_))), "{twice:?}");
}
