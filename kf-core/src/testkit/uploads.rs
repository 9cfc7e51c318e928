//! The conformance suite of [`Uploads`] backends: stamp it with
//! `kf_core::uploads_conformance_tests!(async { Arc::new(MyStore::new()) as Arc<dyn Uploads> })`.

use std::sync::Arc;

use super::fixtures::Must;
use crate::model::{Actor, Attachment, AttachmentId, ConversationId, Timestamp, VisitorId};
use crate::store::{StoreError, Upload, UploadState, Uploads};

fn visitor(name: &str) -> Actor {
    Actor::Visitor(VisitorId::new(name).must("a valid visitor id"))
}

fn receiving(conversation: ConversationId, at: u64, name: &str) -> Upload {
    Upload::receiving(
        conversation,
        visitor("v-1"),
        Timestamp(at),
        AttachmentId::generate(),
        name,
    )
}

fn found(upload: &Upload, size: u64) -> Attachment {
    Attachment::new(
        upload.id().clone(),
        upload.attachment.name.clone(),
        "image/png",
        size,
    )
    .with_image(640, 480, true)
}

/// An upload goes receiving → ready → committed, and reads back as it was recorded at each step.
pub async fn upload_lifecycle_round_trip(uploads: Arc<dyn Uploads>) {
    let conversation = ConversationId::generate();
    let upload = receiving(conversation, 10, "photo of the parcel.png");
    uploads.begin_upload(upload.clone()).await.must("begin");
    assert_eq!(
        uploads.upload(upload.id()).await.must("read"),
        Some(upload.clone())
    );
    let again = uploads.begin_upload(upload.clone()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        uploads
            .conversation_upload_bytes(conversation)
            .await
            .must("bytes"),
        0
    );

    let attachment = found(&upload, 1234);
    assert!(
        uploads
            .finish_upload(attachment.clone(), 10_000)
            .await
            .must("finish")
    );
    let ready = uploads.upload(upload.id()).await.must("read").must("recorded");
    assert_eq!(ready.state, UploadState::Ready);
    assert_eq!(ready.attachment, attachment);
    assert_eq!(
        (ready.conversation, &ready.owner, ready.created_at),
        (conversation, &visitor("v-1"), Timestamp(10))
    );
    let twice = uploads.finish_upload(attachment.clone(), 10_000).await;
    assert!(
        matches!(twice, Err(StoreError::Invalid(_))),
        "a finished upload does not finish again"
    );
    assert_eq!(
        uploads
            .conversation_upload_bytes(conversation)
            .await
            .must("bytes"),
        1234
    );

    uploads
        .commit_uploads(&[upload.id().clone(), AttachmentId::generate()])
        .await
        .must("commit, an unknown id among them");
    let committed = uploads.upload(upload.id()).await.must("read").must("recorded");
    assert_eq!(committed.state, UploadState::Committed);
    assert_eq!(committed.attachment, attachment);
    uploads
        .commit_uploads(&[upload.id().clone()])
        .await
        .must("a repeat");
    assert_eq!(
        uploads
            .conversation_upload_bytes(conversation)
            .await
            .must("bytes"),
        1234
    );
    assert!(
        uploads
            .upload(&AttachmentId::generate())
            .await
            .must("read")
            .is_none()
    );
}

/// A finish that would take the conversation over its limit is refused and changes nothing; other
/// conversations do not count.
pub async fn conversation_limit_refuses_and_keeps_nothing(uploads: Arc<dyn Uploads>) {
    let conversation = ConversationId::generate();
    let first = receiving(conversation, 1, "a.pdf");
    let second = receiving(conversation, 2, "b.pdf");
    let elsewhere = receiving(ConversationId::generate(), 3, "c.pdf");
    for upload in [&first, &second, &elsewhere] {
        uploads.begin_upload(upload.clone()).await.must("begin");
    }
    assert!(
        uploads
            .finish_upload(found(&elsewhere, 900), 1000)
            .await
            .must("finish")
    );
    assert!(
        uploads
            .finish_upload(found(&first, 600), 1000)
            .await
            .must("finish")
    );
    assert!(
        !uploads
            .finish_upload(found(&second, 401), 1000)
            .await
            .must("refused")
    );
    let refused = uploads
        .upload(second.id())
        .await
        .must("read")
        .must("still recorded");
    assert_eq!(refused.state, UploadState::Receiving);
    assert_eq!(
        uploads
            .conversation_upload_bytes(conversation)
            .await
            .must("bytes"),
        600
    );
    assert!(
        uploads
            .finish_upload(found(&second, 400), 1000)
            .await
            .must("exactly the limit")
    );
    assert_eq!(
        uploads
            .conversation_upload_bytes(conversation)
            .await
            .must("bytes"),
        1000
    );
    let unknown = Attachment::new(AttachmentId::generate(), "x", "image/png", 1);
    assert!(matches!(
        uploads.finish_upload(unknown, 1000).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Stale uploads: not committed, started before the cut, oldest first, at most `limit`; deleting them is
/// idempotent.
pub async fn stale_uploads_are_the_uncommitted_old_ones(uploads: Arc<dyn Uploads>) {
    let conversation = ConversationId::generate();
    let receiving_old = receiving(conversation, 100, "1.png");
    let ready_old = receiving(conversation, 200, "2.png");
    let committed_old = receiving(conversation, 150, "3.png");
    let ready_new = receiving(conversation, 5_000, "4.png");
    for upload in [&receiving_old, &ready_old, &committed_old, &ready_new] {
        uploads.begin_upload(upload.clone()).await.must("begin");
    }
    for upload in [&ready_old, &committed_old, &ready_new] {
        assert!(
            uploads
                .finish_upload(found(upload, 10), 1 << 20)
                .await
                .must("finish")
        );
    }
    uploads
        .commit_uploads(&[committed_old.id().clone()])
        .await
        .must("commit");

    let stale = uploads.stale_uploads(Timestamp(1_000), 10).await.must("stale");
    let ids: Vec<&AttachmentId> = stale.iter().map(Upload::id).collect();
    assert_eq!(ids, [receiving_old.id(), ready_old.id()]);
    assert_eq!(stale[1].state, UploadState::Ready);
    let first = uploads.stale_uploads(Timestamp(1_000), 1).await.must("stale");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id(), receiving_old.id());

    uploads.delete_upload(receiving_old.id()).await.must("delete");
    uploads
        .delete_upload(receiving_old.id())
        .await
        .must("delete again");
    assert!(uploads.upload(receiving_old.id()).await.must("read").is_none());
    let stale = uploads.stale_uploads(Timestamp(1_000), 10).await.must("stale");
    assert_eq!(stale.len(), 1);
    assert_eq!(
        uploads
            .conversation_upload_bytes(conversation)
            .await
            .must("bytes"),
        30
    );
}

/// Stamps the uploads conformance suite: one `#[test]` per scenario, each on a fresh backend built by `$make`
/// (an `async` block giving an `Arc<dyn Uploads>`).
#[macro_export]
macro_rules! uploads_conformance_tests {
    ($make:expr) => {
        $crate::uploads_conformance_tests!(@tests $make;
            upload_lifecycle_round_trip,
            conversation_limit_refuses_and_keeps_nothing,
            stale_uploads_are_the_uncommitted_old_ones,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let backend: ::std::sync::Arc<dyn $crate::store::Uploads> = $make.await;
                    $crate::testkit::uploads::$name(backend).await;
                });
            }
        )*
    };
}
