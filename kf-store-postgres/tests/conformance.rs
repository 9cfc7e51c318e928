//! The kf-core store conformance suites, run against a PostgresStore on a fresh database of the test server.

mod common;

kf_core::store_conformance_tests!(async { std::sync::Arc::new(common::fresh_store().await) });
kf_core::history_conformance_tests!(async { std::sync::Arc::new(common::fresh_store().await) });
kf_core::audit_conformance_tests!(async { std::sync::Arc::new(common::fresh_store().await) });
kf_core::stats_checkpoints_conformance_tests!(async { std::sync::Arc::new(common::fresh_store().await) });
kf_core::uploads_conformance_tests!(async { std::sync::Arc::new(common::fresh_store().await) });
