//! The decoders that face the network, on malformed input: client frames (`protocol::decode`, and
//! `protocol::decode_body` for a body whose type is given apart), tokens (`SignedTokens::verify`) and resume
//! cursors (`Cursor::parse`).
//!
//! - every mutation of every client frame kind of `docs/protocol.md` §7 (`testkit::frames`) gets the outcome §3
//!   documents, through both decoders;
//! - property tests: random text and bytes, random structure-aware mutations of valid frames, random tokens and
//!   cursors, checked by the oracles the fuzz targets use (`testkit::oracles`);
//! - the regression corpora `tests/corpus/{frames,tokens,cursors}/`, each case with its expected outcome.
//!
//! The fuzz targets (`fuzz/`, `docs/fuzzing.md`) run the same oracles for longer.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kf_core::auth::AuthError;
use kf_core::cursor::Cursor;
use kf_core::limits::{MAX_CURSOR_POSITIONS, MAX_SEQ};
use kf_core::protocol::{ErrorCode, decode, decode_body};
use kf_core::testkit::corpus;
use kf_core::testkit::frames::{self, Expected, FRAMES, FrameSpec, MAX_DEPTH, Mutation};
use kf_core::testkit::oracles;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// The frame without its `type`: the body of an HTTP request that names the frame in its path.
fn without_type(frame: &Value) -> Value {
    let mut fields = frame.as_object().cloned().unwrap_or_default();
    fields.remove("type");
    Value::Object(fields)
}

/// Whether a mutation breaks `type`, which a body does not carry (the path names the frame).
fn breaks_type(mutation: &Mutation) -> bool {
    matches!(
        mutation,
        Mutation::TypeMissing | Mutation::Type(_) | Mutation::Duplicate("type")
    )
}

/// Checks one mutation through both decoders.
fn check_mutation(spec: &FrameSpec, mutation: &Mutation) {
    let (text, expected) = frames::apply(&frames::valid(spec), mutation, spec);
    let decoded = oracles::check_decode(&text);
    assert_eq!(
        Expected::of(&decoded),
        expected,
        "{}: {mutation:?}\n{}",
        spec.kind,
        &text[..text.len().min(300)]
    );
    // The same fields as a body, the type apart: the same outcome (a body's own `type` is ignored).
    let (body, expected) = frames::apply(&without_type(&frames::valid(spec)), mutation, spec);
    let expected = if breaks_type(mutation) {
        Expected::Ok {
            kind: spec.kind.to_owned(),
            id: Some(frames::REQUEST_ID.to_owned()),
        }
    } else {
        expected
    };
    let decoded = decode_body(spec.kind, &body);
    assert_eq!(
        Expected::of(&decoded),
        expected,
        "body of {}: {mutation:?}\n{}",
        spec.kind,
        &body[..body.len().min(300)]
    );
}

#[test]
fn every_mutation_of_every_frame_kind_gets_its_documented_outcome() {
    let mut checked = 0;
    for spec in FRAMES {
        let valid = frames::valid(spec);
        assert_eq!(
            Expected::of(&decode(&valid.to_string())),
            Expected::Ok {
                kind: spec.kind.to_owned(),
                id: Some(frames::REQUEST_ID.to_owned())
            },
            "{valid}"
        );
        for mutation in frames::mutations(spec) {
            check_mutation(spec, &mutation);
            checked += 1;
        }
    }
    assert!(checked > 600, "{checked} mutations");
}

#[test]
fn the_frame_kinds_are_those_of_the_protocol() {
    let kinds: Vec<&str> = FRAMES.iter().map(|spec| spec.kind).collect();
    let protocol = include_str!("../../docs/protocol.md");
    let listed = protocol
        .split("`type` not one of `")
        .nth(1)
        .and_then(|rest| rest.split("` →").next())
        .expect("protocol.md §3 lists the client frame types");
    let listed: Vec<&str> = listed
        .split(',')
        .map(|kind| kind.trim().trim_matches('`').trim())
        .collect();
    assert_eq!(kinds, listed);
}

#[test]
fn nesting_is_refused_from_128_levels_on() {
    // The frame's own object is the first level: 127 levels are read, 128 are not.
    assert_eq!(MAX_DEPTH, 127);
    for (levels, code) in [(MAX_DEPTH - 1, None), (MAX_DEPTH, Some(ErrorCode::BadJson))] {
        let text = json!({"type": "ping", "id": "r1", "x": frames::nested(json!(1), levels)}).to_string();
        assert_eq!(decode(&text).err().map(|e| e.code), code, "{levels}");
        let body = json!({"id": "r1", "x": frames::nested(json!(1), levels)}).to_string();
        assert_eq!(decode_body("ping", &body).err().map(|e| e.code), code, "{levels}");
    }
    // A body's `type` is ignored, but read: nesting too deep there is refused too.
    let body = json!({"type": frames::nested(json!(1), MAX_DEPTH)}).to_string();
    assert_eq!(
        decode_body("ping", &body).map_err(|e| e.code),
        Err(ErrorCode::BadJson)
    );
}

#[test]
fn what_is_not_an_object_is_bad_json_for_both_decoders() {
    for text in [
        "",
        " ",
        "null",
        "true",
        "7",
        "\"ping\"",
        "[]",
        r#"["ping"]"#,
        r#"["ping","r1"]"#,
        r#"[""]"#,
        "{",
        "}",
        "{\"type\":\"ping\"} x",
        "{\"type\":\"ping\"}{}",
        "\u{feff}{\"type\":\"ping\"}",
    ] {
        let error = decode(text).expect_err(text);
        assert_eq!((error.code, error.id), (ErrorCode::BadJson, None), "{text:?}");
        let error = decode_body("ping", text).expect_err(text);
        assert_eq!(
            (error.code, error.id),
            (ErrorCode::BadJson, None),
            "body {text:?}"
        );
    }
    // JSON's own whitespace around the object is fine.
    assert!(decode(" \t\r\n{\"type\":\"ping\"} \n").is_ok());
    assert!(decode_body("ping", "\n{}\t").is_ok());
}

/// The corpus of malformed (and tricky valid) frames: `expect` is `ok` or an error code; `id` the request id of
/// the outcome (`none` when it has none, the default).
#[test]
fn the_frame_corpus_gets_its_expected_codes() {
    let cases = corpus::read(corpus_dir("frames"));
    for case in &cases {
        let decoded = oracles::check_decode(case.text());
        let id = match case.header("id") {
            None | Some("none") => None,
            Some(id) => Some(id.to_owned()),
        };
        match (case.expect(), &decoded) {
            ("ok", Ok(request)) => assert_eq!(request.id, id, "{}", case.name),
            (code, Err(error)) => {
                assert_eq!(error.code.as_str(), code, "{}: {}", case.name, error.message);
                assert_eq!(error.id, id, "{}", case.name);
            }
            (expect, decoded) => panic!("{}: expected {expect}, got {decoded:?}", case.name),
        }
    }
}

/// The corpus of tokens, verified by [`oracles::tokens`] (key [`oracles::KEY`], clock at
/// [`oracles::NOW_MS`]): `expect` is `ok`, `invalid`, `expired` or `unrecognized`; with `sign: yes` the input
/// is signed first (`<input>.<its signature>`), and with `sign: payload` it is the payload of a signed token.
#[test]
fn the_token_corpus_gets_its_expected_outcomes() {
    for case in corpus::read(corpus_dir("tokens")) {
        let token = match case.header("sign") {
            None | Some("no") => case.text().to_owned(),
            Some("yes") => oracles::sign(case.text()),
            Some("payload") => oracles::sign_payload(&case.input),
            Some(other) => panic!("{}: sign: {other}?", case.name),
        };
        let outcome = match oracles::check_token(&token) {
            Ok(_) => "ok",
            Err(AuthError::Invalid(_)) => "invalid",
            Err(AuthError::Expired) => "expired",
            Err(AuthError::Unrecognized) => "unrecognized",
            Err(other) => panic!("{}: {other:?}", case.name),
        };
        assert_eq!(outcome, case.expect(), "{}: {token}", case.name);
    }
}

/// The corpus of resume cursors: `expect` is `ok` or `invalid`.
#[test]
fn the_cursor_corpus_gets_its_expected_outcomes() {
    for case in corpus::read(corpus_dir("cursors")) {
        let outcome = match oracles::check_cursor(case.text()) {
            Some(_) => "ok",
            None => "invalid",
        };
        assert_eq!(outcome, case.expect(), "{}", case.name);
    }
}

// Property tests: small case counts, so that the whole file stays well under a second or two in a debug build.

/// JSON values of any shape, with the unusual scalars the decoder must refuse or accept.
fn json_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(MAX_SEQ)),
        Just(json!(MAX_SEQ + 1)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("x".repeat(200))),
    ];
    scalar.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn frame_spec() -> impl Strategy<Value = &'static FrameSpec> {
    (0..FRAMES.len()).prop_map(|index| &FRAMES[index])
}

/// A mutation of a frame of `spec` whose outcome [`frames::apply`] predicts.
fn predictable_mutation(spec: &'static FrameSpec) -> BoxedStrategy<Mutation> {
    let names: Vec<&'static str> = spec.fields.iter().map(|field| field.name).collect();
    let known = move |name: &str| spec.field(name).is_some() || name == "type" || name == "id";
    let mut choices: Vec<BoxedStrategy<Mutation>> = vec![
        Just(Mutation::TypeMissing).boxed(),
        any::<usize>().prop_map(Mutation::Truncate).boxed(),
        "[a-z_]{0,12}|.{0,6}"
            .prop_filter("not a frame type", |kind| frames::spec(kind).is_none())
            .prop_map(|kind| Mutation::Type(Value::String(kind)))
            .boxed(),
        json_value()
            .prop_filter("not a string", |value| !value.is_string())
            .prop_map(Mutation::Type)
            .boxed(),
        json_value().prop_map(Mutation::Id).boxed(),
        ".{0,40}".prop_map(|id| Mutation::Id(Value::String(id))).boxed(),
        (".{0,12}", json_value())
            .prop_filter("an unknown field", move |(name, _)| !known(name))
            .prop_map(|(name, value)| Mutation::Extra(name, value))
            .boxed(),
        (".{0,4}", 0..MAX_DEPTH + 40)
            .prop_filter("an unknown field", move |(name, _)| !known(name))
            .prop_map(|(name, levels)| Mutation::Extra(name, frames::nested(json!(1), levels)))
            .boxed(),
        prop::sample::select(vec!["type", "id"])
            .prop_map(Mutation::Duplicate)
            .boxed(),
    ];
    if !names.is_empty() {
        let field = prop::sample::select(names);
        choices.extend([
            field.clone().prop_map(Mutation::Drop).boxed(),
            field.clone().prop_map(Mutation::Null).boxed(),
            field.clone().prop_map(Mutation::Duplicate).boxed(),
            (field.clone(), 0..MAX_DEPTH + 40)
                .prop_map(|(name, levels)| Mutation::Nest(name, levels))
                .boxed(),
            field
                .prop_flat_map(move |name| {
                    let ty = spec
                        .field(name)
                        .map(|field| field.ty)
                        .unwrap_or(frames::FieldType::Text);
                    let wrong = frames::wrong_types(ty);
                    let invalid = frames::invalid_values(ty);
                    let unusual = frames::unusual_values(ty);
                    let mut options: Vec<BoxedStrategy<Mutation>> = Vec::new();
                    if !wrong.is_empty() {
                        options.push(
                            prop::sample::select(wrong)
                                .prop_map(move |value| Mutation::Retype(name, value))
                                .boxed(),
                        );
                    }
                    if !invalid.is_empty() {
                        options.push(
                            prop::sample::select(invalid)
                                .prop_map(move |value| Mutation::Invalid(name, value))
                                .boxed(),
                        );
                    }
                    options.push(
                        prop::sample::select(unusual)
                            .prop_map(move |value| Mutation::Unusual(name, value))
                            .boxed(),
                    );
                    prop::strategy::Union::new(options)
                })
                .boxed(),
        ]);
    }
    prop::strategy::Union::new(choices).boxed()
}

/// Sets a field of `frame` to any value (no prediction: the result may be valid).
fn set_any(frame: &Value, name: &str, value: Value) -> String {
    let mut fields = frame.as_object().cloned().unwrap_or_default();
    fields.insert(name.to_owned(), value);
    Value::Object(fields).to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_decodes_to_a_frame_or_a_documented_error(text in ".{0,64}|\\PC{0,32}|[{}\\[\\]\":,0-9a-z_ \\\\]{0,48}") {
        let _ = oracles::check_decode(&text);
        let _ = decode_body("send", &text);
    }

    #[test]
    fn any_bytes_decode_to_a_frame_or_a_documented_error(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let _ = oracles::check_decode(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn a_mutation_of_a_valid_frame_gets_its_documented_outcome(
        (spec, mutation) in frame_spec().prop_flat_map(|spec| (Just(spec), predictable_mutation(spec)))
    ) {
        check_mutation(spec, &mutation);
    }

    #[test]
    fn several_mutations_still_get_a_documented_outcome(
        spec in frame_spec(),
        values in prop::collection::vec((0usize..8, json_value()), 1..4),
        cut in prop::option::of(any::<usize>()),
    ) {
        let mut frame = frames::valid(spec);
        for (index, value) in values {
            let names: Vec<&str> = spec.fields.iter().map(|f| f.name).chain(["type", "id", "extra"]).collect();
            frame = serde_json::from_str(&set_any(&frame, names[index % names.len()], value)).expect("json");
        }
        let text = frame.to_string();
        let text = match cut {
            Some(at) => {
                let mut end = at % text.len().max(1);
                while !text.is_char_boundary(end) { end -= 1; }
                text[..end].to_owned()
            }
            None => text,
        };
        let whole = oracles::check_decode(&text);
        // The same fields as a body give the same outcome, unless `type` was what broke.
        if let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(&text)
            && fields.get("type") == Some(&json!(spec.kind))
        {
            fields.remove("type");
            let body = decode_body(spec.kind, &Value::Object(fields).to_string());
            prop_assert_eq!(Expected::of(&body), Expected::of(&whole));
        }
    }

    #[test]
    fn any_text_is_a_token_refused_or_verified(text in "kf1\\..{0,80}|.{0,40}|kf1\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,50}") {
        let _ = oracles::check_token(&text);
        // Signed, so that the payload is read.
        let _ = oracles::check_token(&oracles::sign(&text));
    }

    #[test]
    fn signed_claims_verify_exactly_when_they_are_valid(
        t in prop_oneof![Just("shop".to_owned()), ".{0,3}", "x{129}"],
        r in prop_oneof![Just("visitor"), Just("agent"), Just("system"), Just("")],
        s in prop_oneof![Just("v-1".to_owned()), ".{0,3}", "\\PC{0,140}"],
        exp in prop_oneof![Just(0u64), Just(oracles::NOW_MS / 1000), Just(oracles::NOW_MS / 1000 + 1), any::<u64>()],
    ) {
        let claims = json!({"t": t, "r": r, "s": s, "exp": exp});
        let verified = oracles::check_token(&oracles::sign_payload(claims.to_string().as_bytes()));
        let id_ok = |id: &str| !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control);
        let expected = if !id_ok(&t) || !matches!(r, "visitor" | "agent") {
            "invalid"
        } else if exp <= oracles::NOW_MS / 1000 {
            "expired"
        } else if !id_ok(&s) {
            "invalid"
        } else {
            "ok"
        };
        let outcome = match verified {
            Ok(_) => "ok",
            Err(AuthError::Expired) => "expired",
            Err(_) => "invalid",
        };
        prop_assert_eq!(outcome, expected);
    }

    #[test]
    fn an_edited_token_never_verifies(at in any::<usize>(), byte in any::<u8>(), edit in 0u8..3) {
        let claims = json!({"t": "shop", "r": "visitor", "s": "v-1", "exp": oracles::NOW_MS / 1000 + 60});
        let token = oracles::sign_payload(claims.to_string().as_bytes());
        let mut bytes = token.clone().into_bytes();
        let at = at % bytes.len();
        match edit {
            0 => bytes[at] ^= byte.max(1),
            1 => bytes.insert(at, byte),
            _ => { bytes.remove(at); }
        }
        let edited = String::from_utf8_lossy(&bytes);
        prop_assume!(edited != token);
        prop_assert!(oracles::check_token(&edited).is_err(), "{}", edited);
    }

    #[test]
    fn any_text_is_a_cursor_refused_or_read_back(text in "1\\.[A-Za-z0-9_-]{0,12}(\\.[A-Za-z0-9_-]{0,24}:[0-9+-]{0,18}){0,3}|.{0,40}") {
        let _ = oracles::check_cursor(&text);
    }

    #[test]
    fn cursors_built_from_parts_parse_exactly_when_well_formed(
        tag in prop::collection::vec(any::<u8>(), 0..10),
        positions in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 15..18), prop_oneof![0..=MAX_SEQ, Just(MAX_SEQ + 1), any::<u64>()]),
            0..MAX_CURSOR_POSITIONS + 3,
        ),
    ) {
        let mut text = format!("1.{}", URL_SAFE_NO_PAD.encode(&tag));
        let mut well_formed = tag.is_empty() || tag.len() == 8;
        well_formed &= positions.len() <= MAX_CURSOR_POSITIONS;
        for (uuid, seq) in &positions {
            text.push_str(&format!(".{}:{seq}", URL_SAFE_NO_PAD.encode(uuid)));
            well_formed &= uuid.len() == 16 && *seq <= MAX_SEQ;
        }
        let parsed = oracles::check_cursor(&text);
        prop_assert_eq!(parsed.is_some(), well_formed, "{}", text);
        if let Some(cursor) = parsed {
            prop_assert_eq!(Cursor::parse(&cursor.encode()), Ok(cursor));
        }
    }
}
