//! Structure-aware decoding: a valid frame of every kind of protocol.md §7 (`kf_core::testkit::frames`), broken
//! by a few mutations (fields dropped, nulled, duplicated, retyped, nested, huge numbers, unicode, `type` and
//! `id` broken, cuts). One mutation must give exactly the outcome `frames::apply` predicts; several must still
//! give a documented outcome.
#![no_main]

use arbitrary::Arbitrary;
use kf_core::protocol::decode;
use kf_core::testkit::frames::{self, Expected, FRAMES, MAX_DEPTH, Mutation};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
    /// A scalar inside this many arrays.
    Deep(u8),
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(value) => Value::Bool(*value),
            Json::Unsigned(value) => Value::from(*value),
            Json::Signed(value) => Value::from(*value),
            Json::Float(value) => Number::from_f64(*value).map_or(Value::Null, Value::Number),
            Json::Text(value) => Value::String(value.clone()),
            Json::Array(items) => Value::Array(items.iter().map(Json::value).collect()),
            Json::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| (k.clone(), v.value())).collect())
            }
            Json::Deep(levels) => frames::nested(Value::from(1), usize::from(*levels)),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Step {
    Drop(u8),
    Null(u8),
    Set(u8, Json),
    Nest(u8, u8),
    Duplicate(u8),
    Extra(String, Json),
    Truncate(u16),
    TypeMissing,
    Type(Json),
    Id(Json),
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: u8,
    steps: Vec<Step>,
}

fuzz_target!(|input: Input| {
    let spec = &FRAMES[usize::from(input.kind) % FRAMES.len()];
    let field = |index: &u8| {
        let names: Vec<&'static str> = spec.fields.iter().map(|f| f.name).chain(["type", "id"]).collect();
        names[usize::from(*index) % names.len()]
    };
    let known = |name: &str| spec.field(name).is_some() || name == "type" || name == "id";
    let mutation = |step: &Step| -> Option<Mutation> {
        Some(match step {
            Step::Drop(index) => match field(index) {
                "type" => Mutation::TypeMissing,
                "id" => Mutation::Id(Value::Null),
                name => Mutation::Drop(name),
            },
            Step::Null(index) => match field(index) {
                "type" => Mutation::Type(Value::Null),
                "id" => Mutation::Id(Value::Null),
                name => Mutation::Null(name),
            },
            Step::Nest(index, levels) => match field(index) {
                "type" | "id" => return None,
                name => Mutation::Nest(name, usize::from(*levels)),
            },
            Step::Duplicate(index) => Mutation::Duplicate(field(index)),
            Step::Extra(name, value) if !known(name) => Mutation::Extra(name.clone(), value.value()),
            Step::Truncate(at) => Mutation::Truncate(usize::from(*at)),
            Step::TypeMissing => Mutation::TypeMissing,
            Step::Type(value) => match value.value() {
                Value::String(kind) if frames::spec(&kind).is_some() => return None,
                value => Mutation::Type(value),
            },
            Step::Id(value) => Mutation::Id(value.value()),
            Step::Set(..) | Step::Extra(..) => return None,
        })
    };
    let valid = frames::valid(spec);
    match input.steps.as_slice() {
        [step] => {
            let text = match mutation(step) {
                Some(mutation) => {
                    let (text, expected) = frames::apply(&valid, &mutation, spec);
                    let decoded = decode(&text);
                    assert_eq!(Expected::of(&decoded), expected, "{mutation:?}: {text}");
                    text
                }
                None => set(&valid, spec, step, &field),
            };
            let _ = kf_fuzz::check_decode(&text);
        }
        steps => {
            // Several at once: fold the value mutations, then the last text mutation (a cut, a duplicate key).
            let mut value = valid;
            let mut text = None;
            for step in steps.iter().take(8) {
                match step {
                    Step::Truncate(_) | Step::Duplicate(_) => {
                        if let Some(mutation) = mutation(step) {
                            text = Some(frames::apply(&value, &mutation, spec).0);
                        }
                    }
                    step => {
                        let next = match mutation(step) {
                            Some(mutation) => frames::apply(&value, &mutation, spec).0,
                            None => set(&value, spec, step, &field),
                        };
                        value = serde_json::from_str(&next).unwrap_or(value);
                    }
                }
            }
            let _ = kf_fuzz::check_decode(&text.unwrap_or_else(|| value.to_string()));
        }
    }
});

/// The text of `valid` with a field set to any value (no prediction: it may be valid).
fn set(valid: &Value, _spec: &frames::FrameSpec, step: &Step, field: &dyn Fn(&u8) -> &'static str) -> String {
    let mut fields = valid.as_object().cloned().unwrap_or_else(Map::new);
    match step {
        Step::Set(index, value) => {
            fields.insert(field(index).into(), value.value());
        }
        Step::Extra(name, value) => {
            fields.insert(name.clone(), value.value());
        }
        Step::Nest(index, levels) => {
            let name = field(index);
            let inner = fields.get(name).cloned().unwrap_or(Value::Null);
            fields.insert(
                name.into(),
                frames::nested(inner, usize::from(*levels).min(MAX_DEPTH + 8)),
            );
        }
        _ => {}
    }
    Value::Object(fields).to_string()
}
