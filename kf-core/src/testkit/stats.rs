//! The conformance scenario of [`StatsCheckpoints`]: nothing before the first save, a save is read back as
//! it was, and each save replaces the last whole.
//!
//! ```ignore
//! kf_core::stats_checkpoints_conformance_tests!(async { std::sync::Arc::new(MyStore::new()) });
//! ```

use std::sync::Arc;

use crate::model::Epoch;
use crate::store::{FeedPosition, StatsCheckpoint, StatsCheckpoints};

/// The value of a store call; panics (this is a test suite) with what failed.
fn ok<T>(result: Result<T, crate::store::StoreError>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}

/// Saves, reads back and replaces checkpoints, a large one among them.
pub async fn saves_and_replaces_the_checkpoint(store: Arc<dyn StatsCheckpoints>) {
    assert_eq!(
        ok(store.load_stats_checkpoint().await, "load"),
        None,
        "nothing saved yet"
    );
    let first = StatsCheckpoint::new(Epoch("e1".into()), FeedPosition(7), b"{\"format\":1}".to_vec());
    ok(store.save_stats_checkpoint(first.clone()).await, "save");
    assert_eq!(ok(store.load_stats_checkpoint().await, "load"), Some(first));
    // A larger state, arbitrary bytes, another epoch: replaces the first whole.
    let state: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    let second = StatsCheckpoint::new(Epoch("e2".into()), FeedPosition(1 << 40), state);
    ok(store.save_stats_checkpoint(second.clone()).await, "save");
    assert_eq!(ok(store.load_stats_checkpoint().await, "load"), Some(second));
    // A position a backend cannot represent is refused, keeping the saved one.
    let huge = StatsCheckpoint::new(Epoch("e3".into()), FeedPosition(u64::MAX), Vec::new());
    if store.save_stats_checkpoint(huge.clone()).await.is_err() {
        assert_ne!(ok(store.load_stats_checkpoint().await, "load"), Some(huge));
    }
}

/// Runs the [`StatsCheckpoints`] conformance scenario against a backend; `$make` is an async expression that
/// yields a fresh, empty `Arc` of it.
#[macro_export]
macro_rules! stats_checkpoints_conformance_tests {
    ($make:expr) => {
        #[test]
        fn saves_and_replaces_the_stats_checkpoint() {
            $crate::testkit::block_on(async {
                let backend: ::std::sync::Arc<dyn $crate::store::StatsCheckpoints> = $make.await;
                $crate::testkit::stats::saves_and_replaces_the_checkpoint(backend).await;
            });
        }
    };
}
