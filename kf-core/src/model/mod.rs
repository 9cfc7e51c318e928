//! The domain model: identifiers, records, conversations (a typed state machine) and the events of their logs.

mod conversation;
mod event;
mod ids;
mod records;

pub use conversation::*;
pub use event::*;
pub use ids::*;
pub use records::*;

#[cfg(test)]
mod tests;
