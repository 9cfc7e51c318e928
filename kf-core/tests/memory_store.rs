//! MemoryStore is a product backend: it passes the same conformance suites as every other store.

kf_core::store_conformance_tests!(async { std::sync::Arc::new(kf_core::store::MemoryStore::new()) });
kf_core::history_conformance_tests!(async { std::sync::Arc::new(kf_core::store::MemoryStore::new()) });
kf_core::uploads_conformance_tests!(async { std::sync::Arc::new(kf_core::store::MemoryStore::new()) });
kf_core::stats_checkpoints_conformance_tests!(async {
    std::sync::Arc::new(kf_core::store::MemoryStore::new())
});
kf_core::audit_conformance_tests!(async { std::sync::Arc::new(kf_core::store::MemoryStore::new()) });
