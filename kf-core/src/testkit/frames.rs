//! Client frames to break: a valid frame of every kind `docs/protocol.md` §7 lists, the fields of each (their
//! JSON type, whether they are required, whether `null` stands for absent), and mutations of a valid frame, each
//! with the outcome the decoder must give it (§3: `bad_json`, `unknown_type`, `invalid_frame`, and the request
//! `id` the error carries).
//!
//! The decoder's property tests, the fuzz targets and the transports' malformed-input tests all draw from here,
//! so that a field added to a frame is broken in every way by adding one line to [`FRAMES`].
//!
//! ```
//! use kf_core::testkit::frames::{FRAMES, Expected, Mutation, apply, valid};
//!
//! let send = FRAMES.iter().find(|spec| spec.kind == "send").unwrap();
//! let (text, expected) = apply(&valid(send), &Mutation::Drop("client_id"), send);
//! assert_eq!(expected, Expected::error(kf_core::protocol::ErrorCode::InvalidFrame, Some("r1")));
//! assert_eq!(Expected::of(&kf_core::protocol::decode(&text)), expected);
//! ```

use serde_json::{Map, Value, json};

use crate::limits::{MAX_ID_LEN, MAX_REQUEST_ID_LEN, MAX_SEQ};
use crate::protocol::{DecodeError, ErrorCode, Request};

/// The request id every [`valid`] frame carries.
pub const REQUEST_ID: &str = "r1";

/// The conversation every [`valid`] frame names (a UUID v7).
pub const CONVERSATION: &str = "0190a5b0-0000-7000-8000-000000000001";

/// Deepest nesting of arrays and objects the decoder reads, counting the frame's own object (protocol.md §3:
/// 128 levels or more are `bad_json`; the JSON parser's recursion limit).
pub const MAX_DEPTH: usize = 127;

/// What a field holds on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FieldType {
    /// An identifier (§6.1): a non-empty string of at most 128 bytes without control characters.
    Id,
    /// A conversation id: a UUID string.
    Uuid,
    /// A seq: an integer from 0 to 2^53 − 1.
    Seq,
    /// `hello.v`: an unsigned 32-bit integer.
    Version,
    /// Any string (its rules, if any, are the engine's, not the decoder's).
    Text,
    /// `true` or `false`.
    Bool,
    /// `status.status`: `online`, `away`, `busy`, `offline` or `custom`.
    Status,
    /// `send.body`: an object with a string `text`.
    Body,
    /// `context.utm`: an object of optional strings.
    Utm,
    /// `rate.score`: an integer from 0 to 255 (the engine takes 1 to 5).
    Score,
    /// `note.mentions`: an array of identifiers.
    Ids,
    /// `set_attribute.object`: `visitor` or `conversation`.
    Object,
    /// `set_attribute.value`: an object naming one type, `{"string": …}`, `{"number": …}`, `{"bool": …}` or
    /// `{"date": …}` (the engine checks the date's form and the declared type).
    Attribute,
    /// `snooze.until`: a time in ms since the epoch, an unsigned 64-bit integer (the engine takes the future only).
    Millis,
}

/// One field of a client frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: FieldType,
    /// Whether a frame without it is `invalid_frame`.
    pub required: bool,
    /// Whether `null` is accepted as "absent" (optional fields other than those with a default value).
    pub nullable: bool,
}

const fn required(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: true,
        nullable: false,
    }
}

const fn optional(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: false,
        nullable: true,
    }
}

/// An optional field with a default value: may be omitted, but `null` is not a value of its type.
const fn defaulted(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: false,
        nullable: false,
    }
}

/// A client frame kind and its fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameSpec {
    /// Its `type`.
    pub kind: &'static str,
    /// Its fields besides `type` and `id`.
    pub fields: &'static [Field],
}

impl FrameSpec {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|field| field.name == name)
    }
}

use FieldType::*;

const CONVERSATION_ONLY: &[Field] = &[required("conversation", Uuid)];

/// Every client frame kind of protocol.md §7, with its fields.
pub const FRAMES: &[FrameSpec] = &[
    FrameSpec {
        kind: "hello",
        fields: &[required("v", Version), required("token", Text)],
    },
    FrameSpec {
        kind: "open",
        fields: &[
            required("client_id", Id),
            optional("group", Id),
            optional("entry", Id),
        ],
    },
    FrameSpec {
        kind: "subscribe",
        fields: &[
            required("conversation", Uuid),
            defaulted("after", Seq),
            optional("epoch", Text),
        ],
    },
    FrameSpec {
        kind: "unsubscribe",
        fields: CONVERSATION_ONLY,
    },
    FrameSpec {
        kind: "send",
        fields: &[
            required("conversation", Uuid),
            required("client_id", Id),
            required("body", Body),
            defaulted("attachments", Ids),
        ],
    },
    FrameSpec {
        kind: "typing",
        fields: &[required("conversation", Uuid), required("active", Bool)],
    },
    FrameSpec {
        kind: "read",
        fields: &[required("conversation", Uuid), required("seq", Seq)],
    },
    FrameSpec {
        kind: "close",
        fields: CONVERSATION_ONLY,
    },
    FrameSpec {
        kind: "ping",
        fields: &[],
    },
    FrameSpec {
        kind: "pong",
        fields: &[],
    },
    FrameSpec {
        kind: "context",
        fields: &[
            optional("referrer", Text),
            optional("landing_page", Text),
            defaulted("utm", Utm),
            optional("user_agent", Text),
            optional("screen", Text),
            optional("language", Text),
        ],
    },
    FrameSpec {
        kind: "page",
        fields: &[required("url", Text), optional("title", Text)],
    },
    FrameSpec {
        kind: "visitor_context",
        fields: CONVERSATION_ONLY,
    },
    FrameSpec {
        kind: "take",
        fields: CONVERSATION_ONLY,
    },
    FrameSpec {
        kind: "quick_replies",
        fields: &[],
    },
    FrameSpec {
        kind: "put_quick_reply",
        fields: &[
            optional("reply_id", Text),
            required("shortcut", Text),
            required("text", Text),
        ],
    },
    FrameSpec {
        kind: "delete_quick_reply",
        fields: &[required("reply_id", Text)],
    },
    FrameSpec {
        kind: "claim",
        fields: CONVERSATION_ONLY,
    },
    FrameSpec {
        kind: "transfer",
        fields: &[
            required("conversation", Uuid),
            optional("agent", Id),
            optional("group", Id),
            optional("note", Text),
        ],
    },
    FrameSpec {
        kind: "status",
        fields: &[required("status", Status), optional("label", Text)],
    },
    FrameSpec {
        kind: "queue",
        fields: &[],
    },
    FrameSpec {
        kind: "rate",
        fields: &[
            required("conversation", Uuid),
            required("client_id", Id),
            required("score", Score),
            optional("comment", Text),
        ],
    },
    FrameSpec {
        kind: "note",
        fields: &[
            required("conversation", Uuid),
            required("client_id", Id),
            required("text", Text),
            defaulted("mentions", Ids),
        ],
    },
    FrameSpec {
        kind: "definitions",
        fields: &[],
    },
    FrameSpec {
        kind: "label",
        fields: &[
            required("conversation", Uuid),
            required("client_id", Id),
            required("label", Text),
        ],
    },
    FrameSpec {
        kind: "unlabel",
        fields: &[
            required("conversation", Uuid),
            required("client_id", Id),
            required("label", Text),
        ],
    },
    FrameSpec {
        kind: "set_attribute",
        fields: &[
            required("conversation", Uuid),
            required("client_id", Id),
            required("object", Object),
            required("key", Text),
            optional("value", Attribute),
        ],
    },
    FrameSpec {
        kind: "snooze",
        fields: &[
            required("conversation", Uuid),
            required("client_id", Id),
            optional("until", Millis),
        ],
    },
    FrameSpec {
        kind: "wake",
        fields: &[required("conversation", Uuid), required("client_id", Id)],
    },
];

/// The spec of frame kind `kind`.
pub fn spec(kind: &str) -> Option<&'static FrameSpec> {
    FRAMES.iter().find(|spec| spec.kind == kind)
}

/// A valid value of a field type.
pub fn valid_value(ty: FieldType) -> Value {
    match ty {
        Id => json!("c-1"),
        Uuid => json!(CONVERSATION),
        Seq => json!(3),
        Version => json!(1),
        Text => json!("https://shop.example/boots"),
        Bool => json!(true),
        Status => json!("away"),
        Body => json!({"text": "hello"}),
        Utm => json!({"source": "news", "campaign": "winter"}),
        Score => json!(5),
        Ids => json!(["alice", "bob"]),
        Object => json!("visitor"),
        Attribute => json!({"string": "pro"}),
        Millis => json!(1_800_000_000_000u64),
    }
}

/// A valid frame of `spec` with every field (the optional ones too) and the request id [`REQUEST_ID`].
pub fn valid(spec: &FrameSpec) -> Value {
    let mut frame = Map::new();
    frame.insert("type".into(), json!(spec.kind));
    frame.insert("id".into(), json!(REQUEST_ID));
    for field in spec.fields {
        frame.insert(field.name.into(), valid_value(field.ty));
    }
    Value::Object(frame)
}

/// Values of another JSON type than `ty` takes (each one is `invalid_frame`).
pub fn wrong_types(ty: FieldType) -> Vec<Value> {
    let string = json!("5");
    let number = json!(5);
    let float = json!(1.5);
    let boolean = json!(false);
    let array = json!(["c-1"]);
    let object = json!({"text": "hello"});
    match ty {
        Id | Uuid | Text | Status | Object => vec![number, float, boolean, array, object],
        Seq | Version | Score | Millis => vec![string, json!(3.0), float, boolean, array, object],
        Bool => vec![string, json!("true"), json!(1), json!(0), array, object],
        Body => vec![
            string,
            number,
            boolean,
            array,
            json!({}),
            json!({"text": 5}),
            json!({"text": null}),
            json!({"text": "x", "attachments": [1]}),
        ],
        Utm => vec![string, number, boolean, array, json!({"source": 5})],
        Ids => vec![string, number, boolean, object, json!([5])],
        Attribute => vec![
            string,
            number,
            boolean,
            array,
            json!({"string": 5}),
            json!({"number": "5"}),
        ],
    }
}

/// Values of the right JSON type that break the field's rules (each one is `invalid_frame`).
pub fn invalid_values(ty: FieldType) -> Vec<Value> {
    match ty {
        Id => vec![
            json!(""),
            json!("x".repeat(MAX_ID_LEN + 1)),
            json!("é".repeat(MAX_ID_LEN / 2 + 1)),
            json!("a\u{0}b"),
            json!("line\nbreak"),
            json!("tab\t"),
            json!("\u{7f}"),
            json!("\u{85}"),
        ],
        Uuid => vec![
            json!(""),
            json!("not-a-uuid"),
            json!("0190a5b0-0000-7000-8000-00000000000"),
            json!("0190a5b0-0000-7000-8000-0000000000012"),
            json!("0190a5b0-0000-7000-8000-00000000000g"),
            json!(" 0190a5b0-0000-7000-8000-000000000001"),
        ],
        Seq => vec![
            json!(MAX_SEQ + 1),
            json!(u64::MAX),
            json!(-1),
            json!(i64::MIN),
            // Beyond u64: JSON numbers without a limit, read as floats.
            serde_json::from_str("18446744073709551616").unwrap_or(Value::Null),
            json!(1e300),
        ],
        Version => vec![json!(-1), json!(u64::from(u32::MAX) + 1), json!(u64::MAX)],
        Status => vec![json!(""), json!("ONLINE"), json!("dnd"), json!("online ")],
        Score => vec![json!(-1), json!(256), json!(u64::MAX), json!(1e300)],
        Ids => vec![
            json!([""]),
            json!(["a\u{0}b"]),
            json!(["x".repeat(MAX_ID_LEN + 1)]),
        ],
        Object => vec![json!(""), json!("agent"), json!("Visitor")],
        Millis => vec![
            json!(-1),
            json!(1e300),
            serde_json::from_str("18446744073709551616").unwrap_or(Value::Null),
        ],
        Attribute => vec![
            json!({}),
            json!({"colour": "red"}),
            json!({"string": "a", "number": 1}),
        ],
        Text | Bool | Body | Utm => vec![],
    }
}

/// Unusual values the decoder accepts as they are (the engine may still refuse some, as a rule of its own).
pub fn unusual_values(ty: FieldType) -> Vec<Value> {
    match ty {
        Id => vec![
            json!("x".repeat(MAX_ID_LEN)),
            json!("日本語-🎉-ü"),
            json!("with space"),
            json!("\u{200b}zero-width"),
        ],
        Uuid => vec![
            json!("0190A5B0-0000-7000-8000-000000000001"),
            json!("0190a5b000007000800000000000001f"),
            json!("00000000-0000-0000-0000-000000000000"),
        ],
        Seq => vec![json!(0), json!(1), json!(MAX_SEQ)],
        Version => vec![json!(0), json!(2), json!(u32::MAX)],
        Text => vec![
            json!(""),
            json!("日本語 🎉 \u{0} \u{1b}[31m"),
            json!("x".repeat(70_000)),
        ],
        Bool => vec![json!(false)],
        Status => vec![json!("online"), json!("custom"), json!("offline")],
        Body => vec![json!({"text": ""}), json!({"text": "🎉", "formatting": [1, 2]})],
        Utm => vec![json!({}), json!({"term": null, "x": 1})],
        Score => vec![json!(0), json!(6), json!(255)],
        Ids => vec![json!([]), json!(["alice", "alice"])],
        Object => vec![json!("conversation")],
        Millis => vec![json!(0), json!(u64::MAX)],
        Attribute => vec![
            json!({"date": "not a date"}),
            json!({"number": 1e300}),
            json!({"bool": false}),
        ],
    }
}

/// One way to break (or stretch) a valid frame.
#[derive(Clone, PartialEq, Debug)]
pub enum Mutation {
    /// Leave the field out.
    Drop(&'static str),
    /// Set the field to `null`.
    Null(&'static str),
    /// Set the field to a value of another JSON type.
    Retype(&'static str, Value),
    /// Set the field to a value of its type that breaks its rules.
    Invalid(&'static str, Value),
    /// Set the field to an unusual value the decoder accepts.
    Unusual(&'static str, Value),
    /// Wrap the field's valid value in this many arrays.
    Nest(&'static str, usize),
    /// Write the field's key twice (a second copy first, with the same value).
    Duplicate(&'static str),
    /// Add a field the protocol does not know, with this value (ignored unless nested too deep).
    Extra(String, Value),
    /// Cut the text after this many bytes (at a character boundary at or before it).
    Truncate(usize),
    /// Leave out `type`.
    TypeMissing,
    /// Set `type` to this value (a string that is not a client frame type, or a value that is not a string).
    Type(Value),
    /// Set `id` to this value.
    Id(Value),
}

/// What decoding a frame must give.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Expected {
    /// A request of this kind with this request id.
    Ok {
        /// The frame's `type`.
        kind: String,
        /// The request id.
        id: Option<String>,
    },
    /// An error with this code and request id.
    Error {
        /// The error code.
        code: ErrorCode,
        /// The id the error carries.
        id: Option<String>,
    },
}

impl Expected {
    /// An error with `code` carrying `id`.
    pub fn error(code: ErrorCode, id: Option<&str>) -> Self {
        Expected::Error {
            code,
            id: id.map(str::to_owned),
        }
    }

    /// What a decoder's result was, in the same terms.
    pub fn of(result: &Result<Request, DecodeError>) -> Self {
        match result {
            Ok(request) => Expected::Ok {
                kind: request.frame.name().to_owned(),
                id: request.id.clone(),
            },
            Err(error) => Expected::Error {
                code: error.code,
                id: error.id.clone(),
            },
        }
    }

    /// The error code, if an error is expected.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Expected::Ok { .. } => None,
            Expected::Error { code, .. } => Some(*code),
        }
    }
}

/// How deeply `value` nests arrays and objects (a scalar is 0).
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `value` wrapped in `levels` arrays.
pub fn nested(value: Value, levels: usize) -> Value {
    (0..levels).fold(value, |inner, _| Value::Array(vec![inner]))
}

/// Applies `mutation` to `frame` (a [`valid`] frame of `spec`): the text to decode and what decoding it must
/// give.
pub fn apply(frame: &Value, mutation: &Mutation, spec: &FrameSpec) -> (String, Expected) {
    let mut fields = match frame {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    let id = fields.get("id").and_then(Value::as_str).map(str::to_owned);
    let ok = |id: Option<String>| Expected::Ok {
        kind: spec.kind.to_owned(),
        id,
    };
    let invalid = |id: Option<String>| Expected::Error {
        code: ErrorCode::InvalidFrame,
        id,
    };
    let bad_json = Expected::error(ErrorCode::BadJson, None);
    // Nesting too deep in a field of the frame is found after the envelope was read: the error carries its id.
    let too_deep = Expected::Error {
        code: ErrorCode::BadJson,
        id: id.clone(),
    };
    let field_of = |name: &str| spec.field(name);
    let expected = match mutation {
        Mutation::Drop(name) => {
            fields.remove(*name);
            match field_of(name) {
                Some(field) if field.required => invalid(id),
                _ => ok(id),
            }
        }
        Mutation::Null(name) => {
            fields.insert((*name).into(), Value::Null);
            match field_of(name) {
                Some(field) if !field.nullable => invalid(id),
                _ => ok(id),
            }
        }
        Mutation::Retype(name, value) | Mutation::Invalid(name, value) => {
            fields.insert((*name).into(), value.clone());
            if 1 + depth(value) > MAX_DEPTH {
                too_deep
            } else {
                invalid(id)
            }
        }
        Mutation::Unusual(name, value) => {
            fields.insert((*name).into(), value.clone());
            ok(id)
        }
        Mutation::Nest(name, levels) => {
            let value = fields.get(*name).cloned().unwrap_or(Value::Null);
            let value = nested(value, *levels);
            let deep = 1 + depth(&value) > MAX_DEPTH;
            fields.insert((*name).into(), value);
            match (deep, *levels) {
                (true, _) => too_deep,
                (false, 0) => ok(id),
                (false, _) => invalid(id),
            }
        }
        Mutation::Duplicate(name) => {
            let value = fields.get(*name).cloned().unwrap_or(Value::Null);
            let text = Value::Object(fields).to_string();
            let key = Value::String((*name).to_owned()).to_string();
            let text = format!("{{{key}:{value},{}", &text[1..]);
            let expected = match *name {
                // The envelope is read first, and refuses a second `type` or `id` as a JSON object it cannot
                // read.
                "type" | "id" => bad_json,
                name if field_of(name).is_some() => invalid(id),
                _ => ok(id),
            };
            return (text, expected);
        }
        Mutation::Extra(name, value) => {
            fields.insert(name.clone(), value.clone());
            if 1 + depth(value) > MAX_DEPTH {
                too_deep
            } else {
                ok(id)
            }
        }
        Mutation::Truncate(at) => {
            let text = Value::Object(fields).to_string();
            let mut end = (*at).min(text.len().saturating_sub(1));
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return (text[..end].to_owned(), bad_json);
        }
        Mutation::TypeMissing => {
            fields.remove("type");
            invalid(id)
        }
        Mutation::Type(value) => {
            fields.insert("type".into(), value.clone());
            match value {
                Value::Null => invalid(id),
                Value::String(kind) if spec_known(kind) => Expected::Ok {
                    kind: kind.clone(),
                    id,
                },
                Value::String(_) => Expected::Error {
                    code: ErrorCode::UnknownType,
                    id,
                },
                _ => bad_json,
            }
        }
        Mutation::Id(value) => {
            fields.insert("id".into(), value.clone());
            match value {
                Value::Null => ok(None),
                Value::String(new) if new.len() <= MAX_REQUEST_ID_LEN => ok(Some(new.clone())),
                _ if 1 + depth(value) > MAX_DEPTH => bad_json,
                _ => invalid(None),
            }
        }
    };
    (Value::Object(fields).to_string(), expected)
}

fn spec_known(kind: &str) -> bool {
    spec(kind).is_some()
}

/// Every mutation of a frame of `spec` with fixed values: each field dropped, nulled, given each wrong type, each
/// invalid and each unusual value, nested too deep, duplicated; `type` and `id` broken; unknown fields; cuts.
pub fn mutations(spec: &FrameSpec) -> Vec<Mutation> {
    let mut all = Vec::new();
    for field in spec.fields {
        all.push(Mutation::Drop(field.name));
        all.push(Mutation::Null(field.name));
        all.push(Mutation::Duplicate(field.name));
        all.push(Mutation::Nest(field.name, 1));
        all.push(Mutation::Nest(field.name, MAX_DEPTH));
        for value in wrong_types(field.ty) {
            all.push(Mutation::Retype(field.name, value));
        }
        for value in invalid_values(field.ty) {
            all.push(Mutation::Invalid(field.name, value));
        }
        for value in unusual_values(field.ty) {
            all.push(Mutation::Unusual(field.name, value));
        }
    }
    all.extend([
        Mutation::TypeMissing,
        Mutation::Type(Value::Null),
        Mutation::Type(json!(5)),
        Mutation::Type(json!(true)),
        Mutation::Type(json!([spec.kind])),
        Mutation::Type(json!({"type": spec.kind})),
        Mutation::Type(json!("")),
        Mutation::Type(json!(spec.kind.to_uppercase())),
        Mutation::Type(json!(format!("{} ", spec.kind))),
        Mutation::Type(json!("dance")),
        Mutation::Duplicate("type"),
        Mutation::Duplicate("id"),
        Mutation::Id(Value::Null),
        Mutation::Id(json!(7)),
        Mutation::Id(json!(["r1"])),
        Mutation::Id(json!({"id": "r1"})),
        Mutation::Id(json!(false)),
        Mutation::Id(json!("")),
        Mutation::Id(json!("i".repeat(MAX_REQUEST_ID_LEN))),
        Mutation::Id(json!("i".repeat(MAX_REQUEST_ID_LEN + 1))),
        Mutation::Id(json!("ü".repeat(MAX_REQUEST_ID_LEN / 2 + 1))),
        Mutation::Id(json!("日本")),
        Mutation::Extra("extra".into(), json!({"nested": [1, 2, {"deep": null}]})),
        Mutation::Extra("x".into(), nested(json!(1), MAX_DEPTH - 1)),
        Mutation::Extra("x".into(), nested(json!(1), MAX_DEPTH)),
        Mutation::Extra("🎉".into(), json!("unicode key")),
        Mutation::Truncate(0),
        Mutation::Truncate(1),
        Mutation::Truncate(usize::MAX),
    ]);
    all
}

/// Requests of a visitor that decode but that the engine refuses — out of bounds, breaking a rule of their fields,
/// not the visitor's to make — each with the code `docs/protocol.md` §7 gives it. `conversation` is one of the
/// visitor's, whose last seq is `last_seq`; `max_text_bytes` the engine's limit. Every transport must answer them
/// alike, and store nothing.
pub fn refused_requests(conversation: &str, last_seq: u64, max_text_bytes: usize) -> Vec<(Value, ErrorCode)> {
    use crate::limits::{MAX_CONTEXT_TEXT_BYTES, MAX_URL_BYTES, MAX_USER_AGENT_BYTES};
    let unknown = "0190a5b0-0000-7000-8000-0000000000ff";
    let send = |id: &str, text: String| json!({"type": "send", "id": id, "conversation": conversation, "client_id": id, "body": {"text": text}});
    vec![
        (send("big", "x".repeat(max_text_bytes + 1)), ErrorCode::TooLarge),
        // Counted in bytes, not characters.
        (
            send("big-utf8", "é".repeat(max_text_bytes / 2 + 1)),
            ErrorCode::TooLarge,
        ),
        (
            json!({"type": "send", "id": "elsewhere", "conversation": unknown, "client_id": "c", "body": {"text": "hi"}}),
            ErrorCode::NotFound,
        ),
        (
            json!({"type": "read", "id": "read-0", "conversation": conversation, "seq": 0}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "read", "id": "read-beyond", "conversation": conversation, "seq": last_seq + 5}),
            ErrorCode::BadCursor,
        ),
        (
            json!({"type": "close", "id": "close-elsewhere", "conversation": unknown}),
            ErrorCode::NotFound,
        ),
        (
            json!({"type": "page", "id": "page-not-url", "url": "not a url"}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "page", "id": "page-ftp", "url": "ftp://shop.example/"}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "page", "id": "page-long", "url": format!("https://shop.example/{}", "x".repeat(MAX_URL_BYTES))}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "page", "id": "page-title", "url": "https://shop.example/", "title": "t\u{7}"}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "context", "id": "context-script", "referrer": "javascript:alert(1)"}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "context", "id": "context-language", "language": "x".repeat(MAX_CONTEXT_TEXT_BYTES + 1)}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "context", "id": "context-agent", "user_agent": "x".repeat(MAX_USER_AGENT_BYTES + 1)}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "context", "id": "context-utm", "utm": {"source": "x\u{0}"}}),
            ErrorCode::InvalidFrame,
        ),
        (
            json!({"type": "status", "id": "status", "status": "online"}),
            ErrorCode::Forbidden,
        ),
        (
            json!({"type": "claim", "id": "claim", "conversation": conversation}),
            ErrorCode::Forbidden,
        ),
        (
            json!({"type": "put_quick_reply", "id": "quick", "shortcut": "hi", "text": "x"}),
            ErrorCode::Forbidden,
        ),
        (
            json!({"type": "hello", "id": "hello-again", "v": 1, "token": "x"}),
            ErrorCode::HelloRequired,
        ),
    ]
}
