//! Helpers shared by this crate's integration tests (each test file is a crate of its own and includes this
//! module).

/// Parses a test id, e.g. `id::<ConversationId>("c1")`.
pub fn id<T: std::str::FromStr>(value: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    value.parse().expect("valid id")
}

/// A runtime with two workers, for tests that drive the store from several tasks.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
