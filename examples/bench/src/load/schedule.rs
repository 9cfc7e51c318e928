//! The open-loop schedule: when each message is due, on which conversation, from which side. Senders send at
//! the due time whether or not earlier messages were answered, and latency is measured from the due time, so
//! a server that stalls cannot hide its latency by slowing the senders down (no coordinated omission).

#[cfg(test)]
use std::time::Duration;

/// Which end of a conversation sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The visitor who opened the conversation.
    Visitor,
    /// The agent it was assigned to.
    Agent,
}

impl Side {
    /// The other end.
    pub fn other(self) -> Side {
        match self {
            Side::Visitor => Side::Agent,
            Side::Agent => Side::Visitor,
        }
    }

    /// The `author.role` of its messages on the wire.
    pub fn role(self) -> &'static str {
        match self {
            Side::Visitor => "visitor",
            Side::Agent => "agent",
        }
    }
}

/// `rate` messages per second spread evenly over `conversations`: message `k` is due `k / rate` seconds after
/// the schedule's origin, on conversation `k % conversations`; a conversation's messages alternate sides,
/// the visitor first.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    rate: f64,
    conversations: u64,
}

/// One scheduled message.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    /// The conversation's index.
    pub conversation: usize,
    /// Who sends it.
    pub side: Side,
    /// When it is due, after the schedule's origin.
    pub due: Duration,
}

impl Schedule {
    /// A schedule of `rate` messages per second (> 0) over `conversations` (≥ 1).
    pub fn new(rate: f64, conversations: usize) -> Schedule {
        assert!(rate > 0.0 && rate.is_finite(), "the rate must be positive");
        assert!(conversations >= 1, "at least one conversation");
        Schedule {
            rate,
            conversations: conversations as u64,
        }
    }

    /// Message `k`.
    #[cfg(test)]
    pub fn slot(&self, k: u64) -> Slot {
        let side = if (k / self.conversations).is_multiple_of(2) {
            Side::Visitor
        } else {
            Side::Agent
        };
        Slot {
            conversation: (k % self.conversations) as usize,
            side,
            due: Duration::from_micros(self.due_micros(k)),
        }
    }

    /// The numbers of the messages one sender (a conversation's side) sends, in order, for ever.
    pub fn sender(&self, conversation: usize, side: Side) -> impl Iterator<Item = u64> + use<> {
        let c = self.conversations;
        let first = conversation as u64 + if side == Side::Agent { c } else { 0 };
        (0_u64..).map(move |j| first + 2 * c * j)
    }

    /// When message `k` is due, in whole microseconds after the origin.
    pub fn due_micros(&self, k: u64) -> u64 {
        (k as f64 * 1e6 / self.rate) as u64
    }

    /// The first message due at or after `t` microseconds.
    fn first_at(&self, t: u64) -> u64 {
        let mut k = (t as f64 * self.rate / 1e6).floor().max(0.0) as u64;
        while k > 0 && self.due_micros(k - 1) >= t {
            k -= 1;
        }
        while self.due_micros(k) < t {
            k += 1;
        }
        k
    }

    /// How many messages are due in `[from, to)` microseconds after the origin.
    pub fn due_between(&self, from: u64, to: u64) -> u64 {
        self.first_at(to).saturating_sub(self.first_at(from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_spread_evenly_and_alternate_sides() {
        let schedule = Schedule::new(1000.0, 3);
        assert_eq!(schedule.slot(0).due, Duration::ZERO);
        assert_eq!(schedule.slot(1).due, Duration::from_millis(1));
        let sides: Vec<(usize, Side)> = (0..7)
            .map(|k| {
                let slot = schedule.slot(k);
                (slot.conversation, slot.side)
            })
            .collect();
        use Side::*;
        assert_eq!(
            sides,
            [
                (0, Visitor),
                (1, Visitor),
                (2, Visitor),
                (0, Agent),
                (1, Agent),
                (2, Agent),
                (0, Visitor)
            ]
        );
    }

    #[test]
    fn each_sender_gets_exactly_its_slots() {
        let schedule = Schedule::new(500.0, 4);
        let mut seen = vec![0_u32; 200];
        for conversation in 0..4 {
            for side in [Side::Visitor, Side::Agent] {
                for k in schedule.sender(conversation, side).take_while(|&k| k < 200) {
                    let slot = schedule.slot(k);
                    assert_eq!((slot.conversation, slot.side), (conversation, side));
                    seen[k as usize] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "every message has one sender");
    }

    #[test]
    fn counts_the_messages_due_in_a_window() {
        let schedule = Schedule::new(1000.0, 300);
        assert_eq!(schedule.due_between(0, 1_000_000), 1000);
        assert_eq!(schedule.due_between(2_000_000, 12_000_000), 10_000);
        // Message 3 is due at exactly 3 ms: inside [3 ms, 4 ms), outside [0, 3 ms).
        assert_eq!(schedule.due_between(0, 3_000), 3);
        assert_eq!(schedule.due_between(3_000, 4_000), 1);
        let odd = Schedule::new(333.0, 7);
        let whole = odd.due_between(0, 3_000_000);
        let parts = odd.due_between(0, 1_234_567) + odd.due_between(1_234_567, 3_000_000);
        assert_eq!(whole, parts);
        let counted = (0..2000).filter(|&k| odd.due_micros(k) < 3_000_000).count() as u64;
        assert_eq!(whole, counted);
    }
}
