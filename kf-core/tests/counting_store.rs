//! A third backend: [`CountingStore`] (the testkit's), a wrapper that counts the calls of each store trait and
//! forwards them to a `MemoryStore`. It passes each conformance suite, which shows the suites only need the
//! traits; and it tells what a path costs in store calls.

use std::sync::Arc;

use kf_core::model::VisitorId;
use kf_core::store::{Directory, Stores};
use kf_core::testkit::counting::{Concern, CountingStore};

fn counting() -> Arc<CountingStore> {
    Arc::new(CountingStore::new())
}

kf_core::conversation_log_conformance_tests!(async { counting() });
kf_core::directory_conformance_tests!(async { counting() });
kf_core::settings_conformance_tests!(async { counting() });

#[tokio::test]
async fn the_counters_move() {
    let store = counting();
    let stores = Stores::from(Arc::clone(&store));
    kf_core::testkit::log::appends_get_gapless_seqs(Arc::clone(&stores.log)).await;
    kf_core::testkit::directory::records_round_trip(Arc::clone(&stores.directory)).await;
    kf_core::testkit::settings::group_hours_round_trip(Arc::clone(&stores.settings)).await;
    let (log, directory, settings) = (
        store.calls(Concern::Log),
        store.calls(Concern::Directory),
        store.calls(Concern::Settings),
    );
    // One create, 19 appends and one read.
    assert_eq!(log, 21);
    assert_eq!(
        (store.calls_of("create_conversation"), store.calls_of("append")),
        (1, 19)
    );
    assert!(directory >= 10, "{directory}");
    assert!(settings >= 5, "{settings}");
    stores.log.feed_head().await.expect("feed head");
    assert_eq!(store.calls(Concern::Log), log + 1);
}

/// A visitor's first `hello` reads the directory (and makes its record); a returning one's reads nothing there:
/// the engine remembers who has a record. (A reconnect storm is thousands of returning visitors.)
#[tokio::test]
async fn a_returning_visitor_is_admitted_without_reading_the_directory() {
    let store = counting();
    let engine = kf_core::Engine::builder(Arc::clone(&store), Arc::new(kf_core::testkit::shop::tokens()))
        .build()
        .await
        .expect("engine");
    let visitor = kf_core::testkit::shop::visitor("v-1");
    let directory = || store.calls(Concern::Directory);
    let before = directory();
    let first = engine.connect(visitor.clone()).await.expect("first hello");
    assert_eq!(directory(), before + 2, "looked up, then recorded");
    let record = store
        .inner()
        .visitor(&visitor.tenant, &VisitorId::new("v-1").expect("id"))
        .await;
    assert!(record.expect("read").is_some());
    drop(first);
    let before = directory();
    let _again = engine.connect(visitor).await.expect("second hello");
    assert_eq!(directory(), before, "a returning visitor costs no directory read");
}
