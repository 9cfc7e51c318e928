//! The kf-core blob store conformance suite on object_store's in-memory and local filesystem backends.

use std::sync::Arc;

use kf_blob_object_store::ObjectStoreBlobs;
use kf_core::blob::BlobStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

mod in_memory {
    use super::*;

    kf_core::blob_store_conformance_tests!(async {
        Arc::new(ObjectStoreBlobs::new(Arc::new(InMemory::new()), "kf/attachments")) as Arc<dyn BlobStore>
    });
}

mod local_file_system {
    use super::*;

    kf_core::blob_store_conformance_tests!(async {
        // The directory outlives the test (handed to the OS temp cleaner): the store holds no guard of it.
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let local = LocalFileSystem::new_with_prefix(&dir).expect("local store");
        Arc::new(ObjectStoreBlobs::new(Arc::new(local), "attachments")) as Arc<dyn BlobStore>
    });
}
