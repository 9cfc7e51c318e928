//! kf demo server: visitor page, agent page, SQLite store
fn main() {}
