//! The part of kf's wire protocol (`docs/protocol.md`) the load generator speaks, and the baseline server
//! answers: `hello`/`welcome`, `open`/`opened`, `subscribe`/`subscribed`, `send`/`ack`, `event` (messages),
//! `ping`/`pong`, `error`. The shapes are kf's, so one generator drives both servers.

use serde::Deserialize;
use serde_json::json;

/// A frame as the generator (or the baseline) reads it: only the fields it looks at; unknown fields are
/// ignored.
#[derive(Debug, Deserialize)]
pub struct Frame {
    /// The frame's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request id a reply carries.
    pub id: Option<String>,
    /// A conversation id (`event`, `ack`, `subscribed`, `subscribe`, `send`) or object (`opened`).
    pub conversation: Option<serde_json::Value>,
    /// An event's seq or an ack's.
    pub seq: Option<u64>,
    /// `subscribed.last_seq`.
    pub last_seq: Option<u64>,
    /// `subscribe.after`.
    pub after: Option<u64>,
    /// The idempotency key of a `send`, an `ack` or a message event.
    pub client_id: Option<String>,
    /// An event's author.
    pub author: Option<Actor>,
    /// An event's data.
    pub data: Option<EventData>,
    /// `send.body`.
    pub body: Option<Body>,
    /// `welcome.epoch`.
    pub epoch: Option<String>,
    /// `hello.token`.
    pub token: Option<String>,
}

/// `author` of an event.
#[derive(Debug, Deserialize)]
pub struct Actor {
    pub role: String,
}

/// `data` of an event.
#[derive(Debug, Deserialize)]
pub struct EventData {
    #[serde(rename = "type")]
    pub kind: String,
    /// The agent of an `assigned` event.
    pub agent: Option<String>,
}

/// A message body.
#[derive(Debug, Deserialize)]
pub struct Body {
    pub text: String,
}

impl Frame {
    /// Parses a text frame.
    pub fn parse(text: &str) -> serde_json::Result<Frame> {
        serde_json::from_str(text)
    }

    /// The conversation id: the string itself, or the `id` of a conversation object.
    pub fn conversation_id(&self) -> Option<&str> {
        match self.conversation.as_ref()? {
            serde_json::Value::String(id) => Some(id),
            object => object.get("id")?.as_str(),
        }
    }

    /// `conversation.agent` of an `opened` frame.
    pub fn assigned_agent(&self) -> Option<&str> {
        self.conversation.as_ref()?.get("agent")?.as_str()
    }

    /// Whether this is a message event.
    pub fn is_message(&self) -> bool {
        self.kind == "event" && self.data.as_ref().is_some_and(|d| d.kind == "message")
    }
}

/// `hello`.
pub fn hello(token: &str) -> String {
    json!({"type": "hello", "v": 1, "token": token}).to_string()
}

/// `open` a conversation with `group`.
pub fn open(id: &str, client_id: &str, group: &str) -> String {
    json!({"type": "open", "id": id, "client_id": client_id, "group": group}).to_string()
}

/// `subscribe` to a conversation after a cursor.
pub fn subscribe(conversation: &str, after: u64, epoch: &str) -> String {
    json!({"type": "subscribe", "conversation": conversation, "after": after, "epoch": epoch}).to_string()
}

/// `send` a message.
pub fn send(conversation: &str, client_id: &str, text: &str) -> String {
    json!({"type": "send", "conversation": conversation, "client_id": client_id, "body": {"text": text}})
        .to_string()
}

/// `pong`.
pub const PONG: &str = r#"{"type":"pong"}"#;

/// The text of every load message: about 100 bytes, as in the `store` benchmark.
pub const TEXT: &str =
    "Hello, this is a load test message of about one hundred bytes: where is my order #1042, please?";

/// A message's `client_id`: its number and its due time (µs since the generator's origin), so the receiving
/// side can measure the latency from the due time without any shared table.
pub fn message_client_id(k: u64, due_micros: u64) -> String {
    format!("m{k}-{due_micros}")
}

/// The due time encoded in a message's `client_id` by [`message_client_id`].
pub fn due_of(client_id: &str) -> Option<u64> {
    client_id.strip_prefix('m')?.split_once('-')?.1.parse().ok()
}

/// Where an event's seq falls against a cursor (the last seq applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The next one: applied.
    Next,
    /// At or below the cursor: dropped.
    Duplicate,
    /// Beyond the next one: a gap (applied anyway, so one gap is counted once).
    Gap,
}

/// Applies `seq` to the cursor `last`.
pub fn apply(last: &mut u64, seq: u64) -> Applied {
    if seq <= *last {
        Applied::Duplicate
    } else if seq == *last + 1 {
        *last = seq;
        Applied::Next
    } else {
        *last = seq;
        Applied::Gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_carry_the_due_time() {
        let id = message_client_id(42, 1_234_567);
        assert_eq!(id, "m42-1234567");
        assert_eq!(due_of(&id), Some(1_234_567));
        assert_eq!(due_of("open-3"), None);
    }

    #[test]
    fn cursors_find_gaps_and_repeats() {
        let mut last = 2;
        assert_eq!(apply(&mut last, 3), Applied::Next);
        assert_eq!(apply(&mut last, 3), Applied::Duplicate);
        assert_eq!(apply(&mut last, 5), Applied::Gap);
        assert_eq!(last, 5);
    }

    #[test]
    fn reads_kf_frames() {
        let opened = Frame::parse(
            r#"{"type":"opened","id":"o1","created":true,"conversation":{"id":"c-1","agent":"a3","status":"assigned"}}"#,
        )
        .unwrap();
        assert_eq!(opened.conversation_id(), Some("c-1"));
        assert_eq!(opened.assigned_agent(), Some("a3"));
        let event = Frame::parse(
            r#"{"type":"event","conversation":"c-1","seq":3,"at":1,"author":{"role":"agent","id":"a3"},"client_id":"m1-20","data":{"type":"message","body":{"text":"hi"}}}"#,
        )
        .unwrap();
        assert!(event.is_message());
        assert_eq!(event.conversation_id(), Some("c-1"));
        assert_eq!(event.author.unwrap().role, "agent");
        let send = Frame::parse(&send("c-1", "m1-20", TEXT)).unwrap();
        assert_eq!(send.body.unwrap().text, TEXT);
    }
}
