//! SQLite store for the kf live-chat engine: WAL, group commit, migrations
#![warn(missing_docs)]
