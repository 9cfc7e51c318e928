//! The whole-[`Store`](crate::store::Store) conformance suite: the
//! [`ConversationLog`](crate::store::ConversationLog), [`Directory`](crate::store::Directory) and
//! [`Settings`](crate::store::Settings) suites together, for a backend that implements all three.

/// Stamps the three store conformance suites
/// ([`conversation_log_conformance_tests!`](crate::conversation_log_conformance_tests),
/// [`directory_conformance_tests!`](crate::directory_conformance_tests) and
/// [`settings_conformance_tests!`](crate::settings_conformance_tests)) into the calling crate as `#[test]`
/// functions, each test on a fresh backend.
///
/// The argument is an expression evaluating to a future that yields a fresh, empty store as an `Arc` of a
/// type that coerces to `Arc<dyn Store>` (it is evaluated once per test, inside a Tokio runtime).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::conversation_log_conformance_tests!(async {
            let store: ::std::sync::Arc<dyn $crate::store::Store> = $make.await;
            store
        });
        $crate::directory_conformance_tests!(async {
            let store: ::std::sync::Arc<dyn $crate::store::Store> = $make.await;
            store
        });
        $crate::settings_conformance_tests!(async {
            let store: ::std::sync::Arc<dyn $crate::store::Store> = $make.await;
            store
        });
    };
}
