//! One resume cursor for a stream that carries several conversations (an agent's inbox, a visitor's
//! conversations): the last seq delivered of each, plus a tag of the store epoch they count in.
//!
//! Transports that cannot resubscribe per conversation (SSE: the browser only replays the last event's `id`)
//! put the encoded cursor in every event's id. The encoding is compact and opaque to clients:
//!
//! ```text
//! 1.<epoch tag>[.<conversation>:<seq>]…      e.g.  1.q83vEjRWeJA.AZClsAAAcACAAAAAAAAAAQ:7
//! ```
//!
//! where the epoch tag is base64url (no padding) of the first 8 bytes of SHA-256 of the epoch (empty for a cursor
//! of no epoch, [`Cursor::default`]), each conversation is base64url of its 16 UUID bytes, and each seq is
//! decimal digits, at most [`MAX_SEQ`] (2^53 − 1, the largest seq on the wire). Positions are kept in order of last use and capped at
//! [`MAX_CURSOR_POSITIONS`]: the least recently updated conversation is forgotten first (were it ever
//! resumed again, it would replay from its start and the client drops seqs it already has).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::limits::{MAX_CURSOR_POSITIONS, MAX_SEQ};
use crate::model::Epoch;
use crate::model::{ConversationId, Seq};

const VERSION: &str = "1";
const TAG_BYTES: usize = 8;

/// The store epoch a cursor was made in, shortened to what a comparison needs.
type EpochTag = [u8; TAG_BYTES];

fn tag_of(epoch: &Epoch) -> EpochTag {
    let digest = Sha256::digest(epoch.0.as_bytes());
    let mut tag = [0; TAG_BYTES];
    tag.copy_from_slice(&digest[..TAG_BYTES]);
    tag
}

/// A cursor string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid cursor: {0}")]
pub struct InvalidCursor(&'static str);

/// The last delivered seq of each conversation of a stream, in the epoch they belong to.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Cursor {
    epoch: Option<EpochTag>,
    /// Least recently updated first.
    positions: Vec<(ConversationId, Seq)>,
}

impl Cursor {
    /// An empty cursor of `epoch`: every conversation from its start.
    pub fn new(epoch: &Epoch) -> Self {
        Self {
            epoch: Some(tag_of(epoch)),
            positions: Vec::new(),
        }
    }

    /// Reads an encoded cursor (see the module docs). An empty string is an empty cursor of no epoch.
    pub fn parse(text: &str) -> Result<Self, InvalidCursor> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        let mut parts = text.split('.');
        if parts.next() != Some(VERSION) {
            return Err(InvalidCursor("unknown version (expected `1.`)"));
        }
        let tag = parts.next().ok_or(InvalidCursor("missing epoch tag"))?;
        let epoch = match tag {
            "" => None,
            tag => Some(
                URL_SAFE_NO_PAD
                    .decode(tag)
                    .ok()
                    .and_then(|bytes| EpochTag::try_from(bytes).ok())
                    .ok_or(InvalidCursor("bad epoch tag"))?,
            ),
        };
        let mut cursor = Self {
            epoch,
            positions: Vec::new(),
        };
        for (index, part) in parts.enumerate() {
            if index == MAX_CURSOR_POSITIONS {
                return Err(InvalidCursor("too many positions"));
            }
            let (conversation, seq) = part
                .split_once(':')
                .ok_or(InvalidCursor("position without `:`"))?;
            let uuid: [u8; 16] = URL_SAFE_NO_PAD
                .decode(conversation)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(InvalidCursor("bad conversation id"))?;
            let seq = parse_seq(seq).ok_or(InvalidCursor("bad seq"))?;
            cursor.advance(ConversationId::from_uuid(uuid::Uuid::from_bytes(uuid)), seq);
        }
        Ok(cursor)
    }

    /// Whether this cursor counts in `epoch`. A cursor of another epoch means nothing: start from scratch.
    pub fn is_of(&self, epoch: &Epoch) -> bool {
        self.epoch == Some(tag_of(epoch))
    }

    /// Whether this cursor was made in another epoch than `epoch` (its positions mean nothing there: the client
    /// must drop what it holds and rebuild from seq 1). An empty cursor of no epoch is never stale.
    pub fn is_stale(&self, epoch: &Epoch) -> bool {
        self.epoch.is_some() && !self.is_of(epoch)
    }

    /// The last seq delivered of `conversation` (0 when it is not in the cursor).
    pub fn position(&self, conversation: ConversationId) -> Seq {
        self.positions
            .iter()
            .find(|(id, _)| *id == conversation)
            .map_or(Seq::ZERO, |(_, seq)| *seq)
    }

    /// The conversations in the cursor with their positions, least recently updated first.
    pub fn positions(&self) -> impl ExactSizeIterator<Item = (ConversationId, Seq)> + '_ {
        self.positions.iter().copied()
    }

    /// Records that `seq` of `conversation` was delivered (a lower seq than the one held changes nothing).
    pub fn advance(&mut self, conversation: ConversationId, seq: Seq) {
        let seq = match self.positions.iter().position(|(id, _)| *id == conversation) {
            Some(index) => self.positions.remove(index).1.max(seq),
            None => seq,
        };
        if self.positions.len() == MAX_CURSOR_POSITIONS {
            self.positions.remove(0);
        }
        self.positions.push((conversation, seq));
    }

    /// The cursor's text form, for an SSE `id:` or a `cursor` query parameter.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 + self.positions.len() * 28);
        text.push_str(VERSION);
        text.push('.');
        if let Some(tag) = self.epoch {
            text.push_str(&URL_SAFE_NO_PAD.encode(tag));
        }
        for (conversation, seq) in &self.positions {
            text.push('.');
            text.push_str(&URL_SAFE_NO_PAD.encode(conversation.as_uuid().as_bytes()));
            text.push(':');
            text.push_str(&seq.0.to_string());
        }
        text
    }
}

/// A seq as the cursor writes it: decimal digits (no sign, no spaces), at most [`MAX_SEQ`].
fn parse_seq(text: &str) -> Option<Seq> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|seq| *seq <= MAX_SEQ).map(Seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch() -> Epoch {
        Epoch("e1".into())
    }

    #[test]
    fn round_trips_and_keeps_the_epoch() {
        let (a, b) = (ConversationId::generate(), ConversationId::generate());
        let mut cursor = Cursor::new(&epoch());
        cursor.advance(a, Seq(3));
        cursor.advance(b, Seq(9));
        cursor.advance(a, Seq(4));
        let text = cursor.encode();
        assert!(text.starts_with("1."), "{text}");
        let parsed = Cursor::parse(&text).expect("parse");
        assert_eq!(parsed, cursor);
        assert_eq!(parsed.position(a), Seq(4));
        assert_eq!(parsed.position(b), Seq(9));
        assert_eq!(parsed.position(ConversationId::generate()), Seq::ZERO);
        assert!(parsed.is_of(&epoch()));
        assert!(!parsed.is_of(&Epoch("e2".into())));
        assert_eq!(parsed.positions().map(|(id, _)| id).collect::<Vec<_>>(), [b, a]);
    }

    #[test]
    fn positions_never_go_back_and_are_capped() {
        let mut cursor = Cursor::new(&epoch());
        let first = ConversationId::generate();
        cursor.advance(first, Seq(5));
        cursor.advance(first, Seq(2));
        assert_eq!(cursor.position(first), Seq(5));
        for _ in 0..MAX_CURSOR_POSITIONS {
            cursor.advance(ConversationId::generate(), Seq(1));
        }
        assert_eq!(cursor.positions().len(), MAX_CURSOR_POSITIONS);
        assert_eq!(
            cursor.position(first),
            Seq::ZERO,
            "the least recently updated goes first"
        );
    }

    #[test]
    fn bad_text_is_refused_and_empty_is_empty() {
        assert_eq!(Cursor::parse(""), Ok(Cursor::default()));
        assert!(!Cursor::default().is_of(&epoch()));
        for bad in [
            "2.AAAAAAAAAAA",
            "1",
            "1.zz",
            "1.AAAAAAAAAAA.AAAA:1",
            "1.AAAAAAAAAAA.x",
            "42",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
        let conversation = URL_SAFE_NO_PAD.encode([7u8; 16]);
        assert!(Cursor::parse(&format!("1.AAAAAAAAAAA.{conversation}:x")).is_err());
        let too_many = format!("1.AAAAAAAAAAA{}", format!(".{conversation}:1").repeat(33));
        assert!(Cursor::parse(&too_many).is_err());
    }

    /// Seqs are what the cursor writes: digits up to 2^53 − 1, like every seq a client gives (`u64::MAX` was
    /// read, and a later seq of the conversation could never pass it; `+5` was read as 5).
    #[test]
    fn seqs_are_digits_up_to_the_largest_seq() {
        let conversation = URL_SAFE_NO_PAD.encode([7u8; 16]);
        let at = |seq: &str| Cursor::parse(&format!("1.AAAAAAAAAAA.{conversation}:{seq}"));
        assert!(at(&MAX_SEQ.to_string()).is_ok());
        assert!(at("0").is_ok());
        for bad in [
            (MAX_SEQ + 1).to_string(),
            u64::MAX.to_string(),
            "18446744073709551616".into(),
            "+5".into(),
            "-1".into(),
            " 5".into(),
            "".into(),
            "٣".into(),
        ] {
            assert_eq!(at(&bad), Err(InvalidCursor("bad seq")), "{bad:?}");
        }
    }

    /// A cursor of no epoch (the empty cursor, or one a host built with [`Cursor::default`]) encodes with an
    /// empty tag and parses back to itself, never stale (found by the `cursor` fuzz target: it came back as a
    /// cursor of an epoch whose tag is all zeros, stale in every store).
    #[test]
    fn a_cursor_of_no_epoch_round_trips() {
        let mut cursor = Cursor::default();
        assert_eq!(cursor.encode(), "1.");
        assert_eq!(Cursor::parse(&cursor.encode()), Ok(Cursor::default()));
        cursor.advance(ConversationId::generate(), Seq(4));
        let parsed = Cursor::parse(&cursor.encode()).expect("parse");
        assert_eq!(parsed, cursor);
        assert!(!parsed.is_stale(&epoch()));
    }
}
