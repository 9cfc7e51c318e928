//! Structs that are read from JSON objects only. Serde's derive also reads a struct from a JSON array of its fields
//! in order (`"body": ["hi"]` as `{"text": "hi"}`), which the wire format does not allow: a field whose value is a
//! struct says `#[serde(deserialize_with = "object_only")]`.

use serde::de::{Deserialize, Deserializer, Visitor};

/// Reads `T` (a struct) from a JSON object, and refuses anything else as the wrong type (`invalid_frame`).
pub(crate) fn object_only<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(ObjectOnly(deserializer))
}

/// A deserializer that reads a struct as a map only.
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
