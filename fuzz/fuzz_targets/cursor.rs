//! Resume cursor parsing (`kf_core::cursor::Cursor::parse`, the SSE `Last-Event-ID` and `?cursor=`): arbitrary
//! text, and cursors built from parts (a version, an epoch tag, positions of conversations with seqs, some of
//! them huge or not numbers at all), which must parse exactly when every part is well formed.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kf_core::cursor::Cursor;
use kf_core::limits::{MAX_CURSOR_POSITIONS, MAX_SEQ};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Seq {
    Number(u64),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Conversation {
    Uuid([u8; 16]),
    Bytes(Vec<u8>),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(String),
    Parts {
        version: Option<String>,
        tag: Vec<u8>,
        positions: Vec<(Conversation, Seq)>,
        padding: bool,
    },
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(text) => {
            kf_fuzz::check_cursor(&text);
        }
        Input::Parts {
            version,
            tag,
            positions,
            padding,
        } => {
            let mut well_formed = version.as_deref().is_none_or(|v| v == "1") && tag.len() == 8;
            let mut text = version.unwrap_or_else(|| "1".into());
            text.push('.');
            text.push_str(&URL_SAFE_NO_PAD.encode(&tag));
            well_formed &= positions.len() <= MAX_CURSOR_POSITIONS;
            for (conversation, seq) in &positions {
                text.push('.');
                match conversation {
                    Conversation::Uuid(bytes) => text.push_str(&URL_SAFE_NO_PAD.encode(bytes)),
                    Conversation::Bytes(bytes) => {
                        well_formed &= bytes.len() == 16;
                        text.push_str(&URL_SAFE_NO_PAD.encode(bytes));
                    }
                    Conversation::Text(other) => {
                        well_formed = false;
                        text.push_str(other);
                    }
                }
                text.push(':');
                match seq {
                    Seq::Number(n) => {
                        well_formed &= *n <= MAX_SEQ;
                        text.push_str(&n.to_string());
                    }
                    Seq::Text(other) => {
                        // Only the canonical digits of a seq are one (checked below, not predicted).
                        well_formed = false;
                        text.push_str(other);
                    }
                }
            }
            if padding {
                text = format!(" {text}\t");
            }
            let parsed = kf_fuzz::check_cursor(&text);
            if well_formed {
                assert!(parsed.is_some(), "a well-formed cursor was refused: {text:?}");
            }
            if let Some(cursor) = parsed {
                assert!(Cursor::parse(&cursor.encode()).is_ok());
            }
        }
    }
});
