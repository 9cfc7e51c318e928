//! WebSocket transport for the kf live-chat engine
#![warn(missing_docs)]
