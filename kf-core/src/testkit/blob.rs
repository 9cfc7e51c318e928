//! The conformance suite of [`BlobStore`] backends: stamp it with
//! `kf_core::blob_store_conformance_tests!(async { Arc::new(MyBlobs::new()) as Arc<dyn BlobStore> })`.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::fixtures::Must;
use crate::blob::{BlobError, BlobKey, BlobStore, ByteStream, once};

fn key(name: &str) -> BlobKey {
    BlobKey::new(name).must("a valid key")
}

fn chunks(parts: &[&'static [u8]]) -> ByteStream {
    let parts: Vec<Result<Bytes, BlobError>> =
        parts.iter().map(|part| Ok(Bytes::from_static(part))).collect();
    futures::stream::iter(parts).boxed()
}

async fn read(blobs: &dyn BlobStore, key: &BlobKey) -> Option<Vec<u8>> {
    let blob = blobs.get(key).await.must("get")?;
    let size = blob.size;
    let bytes = blob.collect().await.must("read the blob");
    assert_eq!(size, bytes.len() as u64, "the size told matches the bytes");
    Some(bytes.to_vec())
}

/// A put of several chunks reads back as the same bytes; an empty blob is a blob.
pub async fn put_and_get_round_trip(blobs: Arc<dyn BlobStore>) {
    let photo = key("att_1");
    let size = blobs
        .put(&photo, chunks(&[b"\x89PNG", b"\r\n", b"rest of it"]), 1024)
        .await
        .must("put");
    assert_eq!(size, 16);
    assert_eq!(
        read(&*blobs, &photo).await.as_deref(),
        Some(&b"\x89PNG\r\nrest of it"[..])
    );
    let empty = key("att_empty");
    assert_eq!(blobs.put(&empty, chunks(&[]), 10).await.must("put empty"), 0);
    assert_eq!(read(&*blobs, &empty).await, Some(Vec::new()));
    let large: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    let big = key("att_big");
    blobs
        .put(&big, once(large.clone()), 300_000)
        .await
        .must("a put of exactly the cap");
    assert_eq!(read(&*blobs, &big).await, Some(large));
}

/// A key never put reads as `None`.
pub async fn missing_blob_is_none(blobs: Arc<dyn BlobStore>) {
    assert!(blobs.get(&key("never-put")).await.must("get").is_none());
}

/// A second put under a key replaces the first.
pub async fn put_replaces(blobs: Arc<dyn BlobStore>) {
    let name = key("att_2");
    blobs.put(&name, once("first"), 100).await.must("put");
    blobs.put(&name, once("second"), 100).await.must("put again");
    assert_eq!(read(&*blobs, &name).await.as_deref(), Some(&b"second"[..]));
}

/// A stream longer than the cap is refused and stores nothing, neither under a new key nor over an old blob.
pub async fn oversize_put_stores_nothing(blobs: Arc<dyn BlobStore>) {
    let fresh = key("att_3");
    let refused = blobs.put(&fresh, chunks(&[b"12345", b"6789"]), 8).await;
    assert!(
        matches!(refused, Err(BlobError::TooLarge { limit: 8 })),
        "{refused:?}"
    );
    assert!(read(&*blobs, &fresh).await.is_none());
    let kept = key("att_4");
    blobs.put(&kept, once("old"), 8).await.must("put");
    let refused = blobs.put(&kept, chunks(&[b"much", b"too long"]), 8).await;
    assert!(matches!(refused, Err(BlobError::TooLarge { .. })));
    assert_eq!(read(&*blobs, &kept).await.as_deref(), Some(&b"old"[..]));
}

/// A source stream that fails half-way stores nothing.
pub async fn failed_source_stores_nothing(blobs: Arc<dyn BlobStore>) {
    let name = key("att_5");
    let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the client went away");
    let parts = vec![
        Ok(Bytes::from_static(b"half")),
        Err(BlobError::source_failed(broken)),
    ];
    let refused = blobs.put(&name, futures::stream::iter(parts).boxed(), 100).await;
    assert!(matches!(refused, Err(BlobError::Source(_))), "{refused:?}");
    assert!(read(&*blobs, &name).await.is_none());
}

/// Delete removes a blob; deleting it again (or one never put) is not an error.
pub async fn delete_is_idempotent(blobs: Arc<dyn BlobStore>) {
    let name = key("att_6");
    blobs.put(&name, once("bytes"), 100).await.must("put");
    blobs.delete(&name).await.must("delete");
    assert!(read(&*blobs, &name).await.is_none());
    blobs.delete(&name).await.must("delete again");
    blobs
        .delete(&key("never-put"))
        .await
        .must("delete a missing blob");
}

/// Stamps the blob store conformance suite: one `#[test]` per scenario, each on a fresh backend built by
/// `$make` (an `async` block giving an `Arc<dyn BlobStore>`).
#[macro_export]
macro_rules! blob_store_conformance_tests {
    ($make:expr) => {
        $crate::blob_store_conformance_tests!(@tests $make;
            put_and_get_round_trip,
            missing_blob_is_none,
            put_replaces,
            oversize_put_stores_nothing,
            failed_source_stores_nothing,
            delete_is_idempotent,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::block_on(async {
                    let backend: ::std::sync::Arc<dyn $crate::blob::BlobStore> = $make.await;
                    $crate::testkit::blob::$name(backend).await;
                });
            }
        )*
    };
}
