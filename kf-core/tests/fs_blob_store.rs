//! The blob store conformance suite on the filesystem backend, each scenario in a fresh directory.

use std::sync::Arc;

use kf_core::blob::{BlobStore, FsBlobStore};

kf_core::blob_store_conformance_tests!(async {
    // The directory lives as long as the test process: `keep` hands it over to the OS temp cleaner.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    Arc::new(FsBlobStore::open(dir).await.expect("open")) as Arc<dyn BlobStore>
});
