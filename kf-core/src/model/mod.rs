//! The domain model: identifiers, records, conversations (a typed state machine) and the events of their logs.

mod conversation;
mod event;
mod ids;
mod records;
mod seen;

pub use conversation::*;
pub use event::*;
pub use ids::*;
pub use records::*;
pub use seen::*;

#[cfg(test)]
mod tests;
