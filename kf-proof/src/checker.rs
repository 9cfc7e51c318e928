//! The checker: what each end saw, and the verdict against the delivery contract.
//!
//! Every [`Client`](crate::client::Client) writes into one shared [`Ledger`] as it goes:
//!
//! - what its user **sent** (client ids in send order, per conversation),
//! - what was **acknowledged** (client id → seq, from the `ack`, or from the sender's own event, which the
//!   protocol counts as one),
//! - what it **applied** (each event, in the order applied: seq, author, client id, kind),
//! - **protocol violations** it saw on the wire that its resume algorithm then hides from the user: within one
//!   subscription (WebSocket) or one stream (SSE) an event repeated, out of order or after a gap; a reset of its
//!   cursors; a refused cursor; an ack whose seq differs from an earlier ack of the same client id.
//!
//! [`Ledger::verify`] then compares all of it with the conversations' logs as the store has them (read through
//! the store API after the server stopped) and counts, in a [`Verdict`]:
//!
//! - **lost**: a message acknowledged to its sender but missing from the store at its seq, or never applied by the
//!   other side; or sent and never acknowledged (the client retries until it is, so a message that never is was
//!   dropped somewhere);
//! - **duplicated**: a message applied by the other side more than once (at two seqs: stored twice), stored twice,
//!   or an event repeated within one subscription or stream;
//! - **reordered**: a sender's acknowledged messages not in the order it sent them (it sends one at a time), an
//!   event out of order or after a gap within a subscription or stream, applied seqs that are not 1, 2, 3…;
//! - **mismatched**: an applied event that differs from the store's event at that seq; **gaps** in a stored log;
//!   other protocol violations.
//!
//! A run passes when all of these are zero.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::watch;

/// How many violations a [`Verdict`] describes in words (all are counted).
const DESCRIBED: usize = 20;

/// One event as an end applied it, or as the store has it: what the checker compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its seq.
    pub seq: u64,
    /// Its author as `role:id` (`visitor:v-1`, `agent:alice`) or `system`.
    pub author: String,
    /// Its client id, when it has one.
    pub client_id: Option<String>,
    /// Its `data.type`; for `assigned`, `assigned:<agent>`.
    pub kind: String,
}

impl Seen {
    /// Reads an `event` frame (or a stored event serialized as JSON: the same fields). `None` when it has no seq.
    pub fn from_event(event: &Value) -> Option<Seen> {
        let seq = event["seq"].as_u64()?;
        let kind = event["data"]["type"].as_str().unwrap_or("").to_owned();
        let kind = match event["data"]["agent"].as_str() {
            Some(agent) if kind == "assigned" => format!("assigned:{agent}"),
            _ => kind,
        };
        Some(Seen {
            seq,
            author: party_of(&event["author"]),
            client_id: event["client_id"].as_str().map(str::to_owned),
            kind,
        })
    }
}

/// An actor (`{"role": "visitor", "id": "v-1"}`) as a party name: `visitor:v-1`; `system` for the system.
pub fn party_of(actor: &Value) -> String {
    match (actor["role"].as_str(), actor["id"].as_str()) {
        (Some(role), Some(id)) => format!("{role}:{id}"),
        (Some(role), None) => role.to_owned(),
        _ => "unknown".to_owned(),
    }
}

/// A kind of protocol violation an end saw on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Violation {
    /// An event repeated within one subscription or stream.
    Duplicate,
    /// An event out of order within one subscription or stream.
    Reorder,
    /// An event after a gap within one subscription or stream.
    Gap,
    /// The server reset the end's cursors (`reset: true`): its store is another incarnation.
    Reset,
    /// The server refused the end's cursor (`bad_cursor`): it claims less than the end had applied.
    BadCursor,
    /// Two acknowledgements of one client id with different seqs.
    AckMismatch,
    /// A send or open refused for good (its message will never be stored).
    Refused,
    /// Anything else the server should not have done.
    Other,
}

#[derive(Debug, Default)]
struct Conversation {
    /// Client ids each party sent, in send order.
    sent: BTreeMap<String, Vec<String>>,
    /// Acknowledged client ids: sender and seq.
    acks: HashMap<String, (String, u64)>,
    /// What each party applied, in order.
    applied: BTreeMap<String, Vec<Seen>>,
}

#[derive(Debug, Default)]
struct Book {
    conversations: BTreeMap<String, Conversation>,
    violations: BTreeMap<Violation, u64>,
    described: Vec<String>,
}

impl Book {
    fn note(&mut self, kind: Violation, detail: String) {
        *self.violations.entry(kind).or_default() += 1;
        if self.described.len() < DESCRIBED {
            self.described.push(format!("{kind:?}: {detail}"));
        }
    }
}

/// The record both ends write into (see the [module documentation](self)). Shared as an `Arc<Ledger>`.
#[derive(Debug)]
pub struct Ledger {
    book: Mutex<Book>,
    /// Acknowledged client ids so far.
    acked: watch::Sender<u64>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            book: Mutex::default(),
            acked: watch::Sender::new(0),
        }
    }
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Waits until at least `count` messages are acknowledged.
    pub async fn wait_acked(&self, count: u64) {
        let mut acked = self.acked.subscribe();
        let _ = acked.wait_for(|acked| *acked >= count).await;
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `party` sent a message with `client_id` in `conversation` (call in send order).
    pub fn sent(&self, party: &str, conversation: &str, client_id: &str) {
        let mut book = self.book();
        let conversation = book.conversations.entry(conversation.to_owned()).or_default();
        conversation
            .sent
            .entry(party.to_owned())
            .or_default()
            .push(client_id.to_owned());
    }

    /// `party`'s message `client_id` in `conversation` was acknowledged with `seq` (again, possibly).
    pub fn acked(&self, party: &str, conversation: &str, client_id: &str, seq: u64) {
        let mut book = self.book();
        let entry = book.conversations.entry(conversation.to_owned()).or_default();
        let before = entry.acks.len();
        let earlier = entry
            .acks
            .entry(client_id.to_owned())
            .or_insert_with(|| (party.to_owned(), seq))
            .clone();
        if entry.acks.len() > before {
            self.acked.send_modify(|acked| *acked += 1);
        }
        if earlier.1 != seq {
            book.note(
                Violation::AckMismatch,
                format!(
                    "{party} {conversation} {client_id}: acked as seq {} and as seq {seq}",
                    earlier.1
                ),
            );
        }
    }

    /// `party` applied `event` of `conversation` (call in apply order).
    pub fn applied(&self, party: &str, conversation: &str, event: Seen) {
        let mut book = self.book();
        let entry = book.conversations.entry(conversation.to_owned()).or_default();
        entry.applied.entry(party.to_owned()).or_default().push(event);
    }

    /// `party` saw a protocol violation.
    pub fn violation(&self, kind: Violation, party: &str, detail: impl fmt::Display) {
        self.book().note(kind, format!("{party}: {detail}"));
    }

    /// The conversations anyone wrote about.
    pub fn conversations(&self) -> Vec<String> {
        self.book().conversations.keys().cloned().collect()
    }

    /// Messages sent so far (all parties).
    pub fn sent_count(&self) -> u64 {
        let book = self.book();
        book.conversations
            .values()
            .flat_map(|c| c.sent.values())
            .map(|ids| ids.len() as u64)
            .sum()
    }

    /// Messages acknowledged so far (all parties).
    pub fn acked_count(&self) -> u64 {
        let book = self.book();
        book.conversations.values().map(|c| c.acks.len() as u64).sum()
    }

    /// Compares what the ends recorded with the conversations' logs as the store has them (`logs`: each
    /// conversation's events in seq order, as read through the store API).
    pub fn verify(&self, logs: &BTreeMap<String, Vec<Seen>>) -> Verdict {
        let book = self.book();
        let mut verdict = Verdict {
            conversations: book.conversations.len() as u64,
            ..Verdict::default()
        };
        for (kind, count) in &book.violations {
            match kind {
                Violation::Duplicate | Violation::AckMismatch => verdict.duplicated += count,
                Violation::Reorder | Violation::Gap => verdict.reordered += count,
                Violation::Refused => verdict.lost += count,
                _ => verdict.protocol += count,
            }
        }
        verdict.described.clone_from(&book.described);
        for (id, conversation) in &book.conversations {
            let empty = Vec::new();
            let log = logs.get(id).unwrap_or(&empty);
            verify_conversation(id, conversation, log, &mut verdict);
        }
        verdict
    }
}

fn describe(verdict: &mut Verdict, text: String) {
    if verdict.described.len() < DESCRIBED {
        verdict.described.push(text);
    }
}

fn verify_conversation(id: &str, conversation: &Conversation, log: &[Seen], verdict: &mut Verdict) {
    verdict.events_in_store += log.len() as u64;
    // The stored log: 1, 2, 3… and no client id stored twice by one author.
    let mut stored_ids: HashMap<(&str, &str), u64> = HashMap::new();
    for (index, event) in log.iter().enumerate() {
        if event.seq != index as u64 + 1 {
            verdict.gaps += 1;
            describe(
                verdict,
                format!("{id}: stored seq {} at position {}", event.seq, index + 1),
            );
        }
        if let Some(client_id) = &event.client_id
            && let Some(first) = stored_ids.insert((&event.author, client_id), event.seq)
        {
            verdict.duplicated += 1;
            describe(
                verdict,
                format!("{id}: {client_id} stored at seq {first} and {}", event.seq),
            );
        }
    }
    let at = |seq: u64| -> Option<&Seen> { log.get(usize::try_from(seq).ok()?.checked_sub(1)?) };
    // The two participants: the visitor who opened it, and the agent it was (last) assigned to.
    let mut participants: Vec<String> = Vec::new();
    if let Some(created) = log.first() {
        participants.push(created.author.clone());
    }
    if let Some(agent) = log.iter().rev().find_map(|e| e.kind.strip_prefix("assigned:")) {
        participants.push(format!("agent:{agent}"));
    }
    // Where each party applied each (author, client id).
    let mut copies_of: HashMap<(&str, &str, &str), Vec<u64>> = HashMap::new();
    for (party, applied) in &conversation.applied {
        for event in applied {
            if let Some(client_id) = &event.client_id {
                copies_of
                    .entry((party, &event.author, client_id))
                    .or_default()
                    .push(event.seq);
            }
        }
    }
    for (sender, client_ids) in &conversation.sent {
        let mut previous = 0;
        for client_id in client_ids {
            verdict.sent += 1;
            let Some((_, seq)) = conversation.acks.get(client_id) else {
                verdict.lost += 1;
                describe(
                    verdict,
                    format!("{id}: {sender}'s {client_id} was never acknowledged"),
                );
                continue;
            };
            verdict.acked += 1;
            match at(*seq) {
                Some(stored)
                    if stored.client_id.as_deref() == Some(client_id) && &stored.author == sender => {}
                other => {
                    verdict.lost += 1;
                    describe(
                        verdict,
                        format!("{id}: {sender}'s {client_id} acked as seq {seq}, stored there: {other:?}"),
                    );
                }
            }
            if *seq <= previous {
                verdict.reordered += 1;
                describe(
                    verdict,
                    format!("{id}: {sender}'s {client_id} got seq {seq} after seq {previous}"),
                );
            }
            previous = previous.max(*seq);
            for receiver in participants.iter().filter(|p| *p != sender) {
                let copies = copies_of
                    .get(&(receiver.as_str(), sender.as_str(), client_id.as_str()))
                    .cloned()
                    .unwrap_or_default();
                match copies.as_slice() {
                    [] => {
                        verdict.lost += 1;
                        describe(
                            verdict,
                            format!("{id}: {sender}'s {client_id} (seq {seq}) never reached {receiver}"),
                        );
                    }
                    [only] if only == seq => verdict.delivered += 1,
                    _ => {
                        verdict.duplicated += 1;
                        describe(
                            verdict,
                            format!(
                                "{id}: {sender}'s {client_id} (seq {seq}) reached {receiver} at seqs {copies:?}"
                            ),
                        );
                    }
                }
            }
        }
    }
    // What each end applied: 1, 2, 3… each equal to the store's event at that seq.
    for (party, applied) in &conversation.applied {
        for (index, event) in applied.iter().enumerate() {
            if event.seq != index as u64 + 1 {
                verdict.reordered += 1;
                describe(
                    verdict,
                    format!(
                        "{id}: {party} applied seq {} as its event #{}",
                        event.seq,
                        index + 1
                    ),
                );
            }
            if at(event.seq) != Some(event) {
                verdict.mismatched += 1;
                describe(
                    verdict,
                    format!(
                        "{id}: {party} applied {event:?}, the store has {:?}",
                        at(event.seq)
                    ),
                );
            }
        }
    }
}

/// The checker's counts (see the [module documentation](self) for what each means).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Conversations checked.
    pub conversations: u64,
    /// Events in their stored logs.
    pub events_in_store: u64,
    /// Messages sent by the ends' users.
    pub sent: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Acknowledged messages applied exactly once by the other side.
    pub delivered: u64,
    /// Messages lost.
    pub lost: u64,
    /// Messages or events twice.
    pub duplicated: u64,
    /// Messages or events out of order.
    pub reordered: u64,
    /// Applied events that differ from the store's.
    pub mismatched: u64,
    /// Gaps in stored logs.
    pub gaps: u64,
    /// Other protocol violations.
    pub protocol: u64,
    /// The first violations, in words.
    pub described: Vec<String>,
}

impl Verdict {
    /// Whether the contract held: nothing lost, twice, out of order, different from the store, or otherwise wrong.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.mismatched == 0
            && self.gaps == 0
            && self.protocol == 0
            && self.acked == self.sent
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conversations:   {}", self.conversations)?;
        writeln!(f, "events stored:   {}", self.events_in_store)?;
        writeln!(f, "sent:            {}", self.sent)?;
        writeln!(f, "acked:           {}", self.acked)?;
        writeln!(f, "delivered:       {}", self.delivered)?;
        writeln!(f, "lost:            {}", self.lost)?;
        writeln!(f, "duplicated:      {}", self.duplicated)?;
        writeln!(f, "reordered:       {}", self.reordered)?;
        writeln!(f, "mismatched:      {}", self.mismatched)?;
        writeln!(f, "gaps:            {}", self.gaps)?;
        write!(f, "other violations: {}", self.protocol)?;
        for line in &self.described {
            write!(f, "\n  - {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(seq: u64, author: &str, client_id: Option<&str>, kind: &str) -> Seen {
        Seen {
            seq,
            author: author.into(),
            client_id: client_id.map(Into::into),
            kind: kind.into(),
        }
    }

    fn log() -> Vec<Seen> {
        vec![
            seen(1, "visitor:v", Some("o"), "created"),
            seen(2, "system", None, "assigned:a"),
            seen(3, "visitor:v", Some("m1"), "message"),
            seen(4, "agent:a", Some("n1"), "message"),
        ]
    }

    fn clean_ledger() -> Ledger {
        let ledger = Ledger::new();
        ledger.sent("visitor:v", "c", "m1");
        ledger.sent("agent:a", "c", "n1");
        ledger.acked("visitor:v", "c", "m1", 3);
        ledger.acked("agent:a", "c", "n1", 4);
        for party in ["visitor:v", "agent:a"] {
            for event in log() {
                ledger.applied(party, "c", event);
            }
        }
        ledger
    }

    #[test]
    fn a_faithful_run_is_clean() {
        let logs = BTreeMap::from([("c".to_owned(), log())]);
        let verdict = clean_ledger().verify(&logs);
        assert!(verdict.is_clean(), "{verdict}");
        assert_eq!((verdict.sent, verdict.acked, verdict.delivered), (2, 2, 2));
    }

    #[test]
    fn a_message_missing_from_the_store_is_lost() {
        let mut stored = log();
        stored.truncate(3);
        let verdict = clean_ledger().verify(&BTreeMap::from([("c".to_owned(), stored)]));
        assert!(verdict.lost >= 1 && verdict.mismatched >= 1, "{verdict}");
    }

    #[test]
    fn an_unacknowledged_message_is_lost() {
        let ledger = clean_ledger();
        ledger.sent("visitor:v", "c", "m2");
        let verdict = ledger.verify(&BTreeMap::from([("c".to_owned(), log())]));
        assert_eq!(verdict.lost, 1, "{verdict}");
        assert!(!verdict.is_clean());
    }

    #[test]
    fn a_message_stored_twice_is_duplicated() {
        let mut stored = log();
        stored.push(seen(5, "visitor:v", Some("m1"), "message"));
        let ledger = clean_ledger();
        ledger.applied("agent:a", "c", stored[4].clone());
        let verdict = ledger.verify(&BTreeMap::from([("c".to_owned(), stored)]));
        assert!(verdict.duplicated >= 2, "{verdict}");
    }

    #[test]
    fn wire_violations_count() {
        let ledger = clean_ledger();
        ledger.violation(Violation::Reorder, "agent:a", "seq 4 before 3");
        ledger.acked("visitor:v", "c", "m1", 5);
        let verdict = ledger.verify(&BTreeMap::from([("c".to_owned(), log())]));
        assert_eq!((verdict.reordered, verdict.duplicated), (1, 1), "{verdict}");
    }
}
