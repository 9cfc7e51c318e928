//! The cleanup pass: uploads no message carries go with their blobs; sent ones stay; one whose commit mark was
//! lost (a crash between the message's commit and the mark) is found in the log and kept.

use std::sync::Arc;

use kf_core::attachments::{cleanup, file_key, thumbnail_key};
use kf_core::blob::{BlobStore, FsBlobStore, once};
use kf_core::model::{Actor, Attachment, AttachmentId, ClientId, ConversationId, MessageBody, Timestamp};
use kf_core::store::{MemoryStore, Upload, UploadState, Uploads};
use kf_core::testkit::shop::{engine_with, limits, visitor};

async fn upload(
    store: &MemoryStore,
    blobs: &dyn BlobStore,
    conversation: ConversationId,
    owner: &Actor,
    at: u64,
    finish: bool,
) -> Attachment {
    let id = AttachmentId::generate();
    let record = Upload::receiving(
        conversation,
        owner.clone(),
        Timestamp(at),
        id.clone(),
        "photo.png",
    );
    store.begin_upload(record).await.expect("begin");
    blobs
        .put(&file_key(&id).expect("key"), once("png bytes"), 100)
        .await
        .expect("put");
    let attachment = Attachment::new(id.clone(), "photo.png", "image/png", 9).with_image(2, 2, true);
    if finish {
        blobs
            .put(&thumbnail_key(&id).expect("key"), once("thumb"), 100)
            .await
            .expect("put thumbnail");
        assert!(
            store
                .finish_upload(attachment.clone(), 1 << 20)
                .await
                .expect("finish")
        );
    }
    attachment
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_what_no_message_carries() {
    let store = Arc::new(MemoryStore::new());
    let dir = tempfile::tempdir().expect("temp dir");
    let blobs = FsBlobStore::open(dir.path()).await.expect("open");
    let engine = engine_with(store.clone(), limits(), &["alice"]).await;
    let v1 = visitor("v-1");
    let opened = engine
        .open(
            &v1,
            ClientId::new("o").expect("id"),
            None,
            None,
            Default::default(),
        )
        .await
        .expect("open");
    let conversation = opened.conversation.id;
    let owner = Actor::Visitor("v-1".parse().expect("id"));

    let abandoned = upload(&store, &blobs, conversation, &owner, 10, true).await;
    let half_way = upload(&store, &blobs, conversation, &owner, 20, false).await;
    let fresh = upload(&store, &blobs, conversation, &owner, 5_000, true).await;
    // Sent by the host through `Engine::send` (the engine has no upload records here), so its record stays
    // ready: as if the commit mark had been lost in a crash right after the message's commit.
    let carried = upload(&store, &blobs, conversation, &owner, 30, true).await;
    engine
        .send(
            &v1,
            conversation,
            ClientId::new("m").expect("id"),
            MessageBody::text("look").with_attachments(vec![carried.clone()]),
        )
        .await
        .expect("send");

    let report = cleanup(&*store, &*store, &blobs, Timestamp(1_000))
        .await
        .expect("cleanup");
    assert_eq!((report.removed, report.recovered), (2, 1), "{report:?}");
    for gone in [&abandoned, &half_way] {
        assert!(store.upload(&gone.id).await.expect("read").is_none());
        assert!(
            blobs
                .get(&file_key(&gone.id).expect("key"))
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            blobs
                .get(&thumbnail_key(&gone.id).expect("key"))
                .await
                .expect("get")
                .is_none()
        );
    }
    let kept = store.upload(&carried.id).await.expect("read").expect("kept");
    assert_eq!(kept.state, UploadState::Committed);
    assert!(
        blobs
            .get(&file_key(&carried.id).expect("key"))
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        store.upload(&fresh.id).await.expect("read").is_some(),
        "younger than the cut"
    );
    let again = cleanup(&*store, &*store, &blobs, Timestamp(1_000))
        .await
        .expect("cleanup again");
    assert_eq!((again.removed, again.recovered), (0, 0));
}
