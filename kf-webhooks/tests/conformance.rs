//! The `WebhookState` conformance suite against both built-in states.

mod memory {
    kf_webhooks::webhook_state_conformance_tests!(async {
        std::sync::Arc::new(kf_webhooks::MemoryState::new()) as std::sync::Arc<dyn kf_webhooks::WebhookState>
    });
}

mod sqlite {
    use std::sync::Arc;

    use kf_webhooks::{SqliteState, WebhookState};

    /// A state in a fresh file of its own (the directory lives as long as the process: tests are short).
    async fn fresh() -> Arc<dyn WebhookState> {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        Arc::new(SqliteState::open(dir.join("webhooks.sqlite3")).expect("open"))
    }

    kf_webhooks::webhook_state_conformance_tests!(fresh());
}
