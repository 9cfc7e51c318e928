//! A fresh store per test: an empty database on this process's test server (`kf_store_postgres::testing`).

#![allow(dead_code)]

use kf_store_postgres::{PostgresConfig, PostgresStore, testing};

/// The connection string of a new, empty database.
pub async fn fresh_database() -> String {
    testing::server().fresh_database().await
}

/// A store on a new, empty database.
pub async fn fresh_store() -> PostgresStore {
    open(&fresh_database().await).await
}

/// A store ("a node") on an existing database, with a pool of its own.
pub async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(PostgresConfig::new(url).with_pool_size(4))
        .await
        .unwrap_or_else(|error| panic!("open a store on {url}: {error}"))
}
