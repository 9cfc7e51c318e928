//! Labels and custom attributes: how a team sorts and describes its conversations and visitors.
//!
//! **Labels** are a tenant's fixed vocabulary ([`Label`]: a name and a colour, configured by the host through
//! [`Engine::put_label`](crate::Engine::put_label)); agents add them to and remove them from conversations
//! (`labeled` and `unlabeled` events in the conversation's log). A label the tenant has not defined is refused.
//!
//! **Attributes** are typed values ([`AttributeValue`]: string, number, bool or date) kept on a visitor or a
//! conversation under a key. A tenant may declare [`AttributeDefinition`]s (key, type, which object): a value
//! set under a declared key must have its type; agents may set declared keys only, while the host (Rust
//! methods on the engine) and the pre-chat form may also set keys nobody declared. Every key, string and count
//! is bounded ([`MAX_ATTRIBUTE_KEY_BYTES`], [`MAX_ATTRIBUTE_STRING_BYTES`], [`MAX_ATTRIBUTES_PER_OBJECT`]).
//!
//! Both are for agents only: visitors never see them (see `docs/protocol.md`).
//!
//! ```
//! use kf_core::labels::{AttributeDefinition, AttributeKind, AttributeObject, AttributeValue, Label};
//! use kf_core::model::TenantId;
//!
//! let shop = TenantId::new("shop").unwrap();
//! let vip = Label::new(shop.clone(), "VIP", "#d97706");
//! assert!(vip.validate().is_ok());
//! let plan = AttributeDefinition::new(shop, AttributeObject::Visitor, "plan", AttributeKind::String);
//! assert!(plan.check(&AttributeValue::String("pro".into())).is_ok());
//! assert!(plan.check(&AttributeValue::Bool(true)).is_err());
//! assert!(AttributeValue::date("2026-12-07").is_ok());
//! ```

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::{
    MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_STRING_BYTES, MAX_ATTRIBUTES_PER_OBJECT, MAX_LABEL_NAME_BYTES,
};
use crate::model::TenantId;

/// A label a tenant defined: agents put it on conversations. Its name is its identity within the tenant.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Label {
    /// The tenant.
    pub tenant: TenantId,
    /// The name agents see and pick (1 to [`MAX_LABEL_NAME_BYTES`] bytes, no control characters, no
    /// leading or trailing space).
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub color: String,
}

impl Label {
    /// A label named `name` in `color` (`#rrggbb`).
    pub fn new(tenant: TenantId, name: impl Into<String>, color: impl Into<String>) -> Self {
        Self {
            tenant,
            name: name.into(),
            color: color.into(),
        }
    }

    /// Checks the name and the colour.
    pub fn validate(&self) -> Result<(), LabelError> {
        check_label_name(&self.name)?;
        let hex = self.color.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(LabelError::Color(self.color.chars().take(16).collect()));
        }
        Ok(())
    }
}

/// Checks a label's name: 1 to [`MAX_LABEL_NAME_BYTES`] bytes, no control characters, not padded with spaces.
pub fn check_label_name(name: &str) -> Result<(), LabelError> {
    if name.is_empty()
        || name.len() > MAX_LABEL_NAME_BYTES
        || name.trim() != name
        || name.chars().any(char::is_control)
    {
        return Err(LabelError::Name(name.chars().take(64).collect()));
    }
    Ok(())
}

/// A label, or what was done with one, was refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum LabelError {
    /// The name breaks the rules.
    #[error(
        "a label's name is 1 to {MAX_LABEL_NAME_BYTES} bytes without control characters or padding, not `{0}`"
    )]
    Name(String),
    /// The colour is not `#rrggbb`.
    #[error("a label's colour is `#rrggbb`, not `{0}`")]
    Color(String),
}

/// What an attribute is kept on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttributeObject {
    /// The visitor (kept across its conversations).
    Visitor,
    /// One conversation.
    Conversation,
}

impl AttributeObject {
    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            AttributeObject::Visitor => "visitor",
            AttributeObject::Conversation => "conversation",
        }
    }
}

/// The type of an attribute's value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttributeKind {
    /// Text, at most [`MAX_ATTRIBUTE_STRING_BYTES`].
    String,
    /// A finite number.
    Number,
    /// True or false.
    Bool,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

impl AttributeKind {
    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            AttributeKind::String => "string",
            AttributeKind::Number => "number",
            AttributeKind::Bool => "bool",
            AttributeKind::Date => "date",
        }
    }
}

/// A typed attribute value. On the wire it names its type: `{"string": "pro"}`, `{"number": 3}`,
/// `{"bool": true}`, `{"date": "2026-12-07"}`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttributeValue {
    /// Text.
    String(String),
    /// A finite number.
    Number(serde_json::Number),
    /// True or false.
    Bool(bool),
    /// A calendar date, `YYYY-MM-DD`.
    Date(String),
}

impl AttributeValue {
    /// A date value, checked (`YYYY-MM-DD`, a day the month has).
    pub fn date(date: impl Into<String>) -> Result<Self, AttributeError> {
        let value = AttributeValue::Date(date.into());
        value.validate()?;
        Ok(value)
    }

    /// A number value; `None` for NaN and the infinities.
    pub fn number(number: f64) -> Option<Self> {
        serde_json::Number::from_f64(number).map(AttributeValue::Number)
    }

    /// Its type.
    pub fn kind(&self) -> AttributeKind {
        match self {
            AttributeValue::String(_) => AttributeKind::String,
            AttributeValue::Number(_) => AttributeKind::Number,
            AttributeValue::Bool(_) => AttributeKind::Bool,
            AttributeValue::Date(_) => AttributeKind::Date,
        }
    }

    /// Checks the value on its own: a string's size and characters, a date's form.
    pub fn validate(&self) -> Result<(), AttributeError> {
        match self {
            AttributeValue::String(text) => {
                if text.len() > MAX_ATTRIBUTE_STRING_BYTES {
                    return Err(AttributeError::TooLong {
                        size: text.len(),
                        limit: MAX_ATTRIBUTE_STRING_BYTES,
                    });
                }
                if text.chars().any(|c| c.is_control() && c != '\n') {
                    return Err(AttributeError::Value(
                        "a string holds no control characters but newlines".into(),
                    ));
                }
                Ok(())
            }
            AttributeValue::Date(date) if !valid_date(date) => Err(AttributeError::Value(format!(
                "a date is `YYYY-MM-DD`, not `{}`",
                date.chars().take(32).collect::<String>()
            ))),
            AttributeValue::Number(number) if number.as_f64().is_none_or(|n| !n.is_finite()) => {
                Err(AttributeError::Value("a number is finite".into()))
            }
            _ => Ok(()),
        }
    }

    /// The value of `kind` that a form's text answer stands for: the text itself for a string, a number, a
    /// bool (`true`/`false`, `yes`/`no`) or a date parsed from it; `None` when it does not parse.
    pub fn parse(kind: AttributeKind, text: &str) -> Option<Self> {
        let text = text.trim();
        let value = match kind {
            AttributeKind::String => AttributeValue::String(text.to_owned()),
            AttributeKind::Number => AttributeValue::number(text.parse::<f64>().ok()?)?,
            AttributeKind::Bool => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" => AttributeValue::Bool(true),
                "false" | "no" => AttributeValue::Bool(false),
                _ => return None,
            },
            AttributeKind::Date => AttributeValue::Date(text.to_owned()),
        };
        value.validate().ok().map(|()| value)
    }
}

/// `YYYY-MM-DD` with a month from 1 to 12 and a day the month has.
fn valid_date(date: &str) -> bool {
    let bytes = date.as_bytes();
    if bytes.len() != 10
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
    {
        return false;
    }
    let number = |range: std::ops::Range<usize>| date.get(range).and_then(|s| s.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// Checks an attribute's key: 1 to [`MAX_ATTRIBUTE_KEY_BYTES`] of `a-z`, `0-9`, `_`, `-`, `.`.
pub fn check_attribute_key(key: &str) -> Result<(), AttributeError> {
    if key.is_empty()
        || key.len() > MAX_ATTRIBUTE_KEY_BYTES
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(AttributeError::Key(key.chars().take(64).collect()));
    }
    Ok(())
}

/// A tenant's declaration of one attribute: values set under `key` on `object` must be of `kind`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttributeDefinition {
    /// The tenant.
    pub tenant: TenantId,
    /// What it is kept on.
    pub object: AttributeObject,
    /// The key.
    pub key: String,
    /// The type of its values.
    pub kind: AttributeKind,
    /// What agents read beside the value (the key when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl AttributeDefinition {
    /// Declares `key` on `object` as `kind`.
    pub fn new(
        tenant: TenantId,
        object: AttributeObject,
        key: impl Into<String>,
        kind: AttributeKind,
    ) -> Self {
        Self {
            tenant,
            object,
            key: key.into(),
            kind,
            name: None,
        }
    }

    /// Sets the name agents read.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Checks the key and the name.
    pub fn validate(&self) -> Result<(), AttributeError> {
        check_attribute_key(&self.key)?;
        if let Some(name) = &self.name
            && (name.trim().is_empty()
                || name.len() > MAX_LABEL_NAME_BYTES
                || name.chars().any(char::is_control))
        {
            return Err(AttributeError::Value(format!(
                "an attribute's name is 1 to {MAX_LABEL_NAME_BYTES} bytes without control characters"
            )));
        }
        Ok(())
    }

    /// Checks a value set under this definition: its type, then the value itself.
    pub fn check(&self, value: &AttributeValue) -> Result<(), AttributeError> {
        if value.kind() != self.kind {
            return Err(AttributeError::Type {
                key: self.key.clone(),
                expected: self.kind.name(),
                found: value.kind().name(),
            });
        }
        value.validate()
    }
}

/// An attribute, a definition or a value was refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// The key breaks the rules.
    #[error("an attribute's key is 1 to {MAX_ATTRIBUTE_KEY_BYTES} of a-z, 0-9, `_`, `-`, `.`, not `{0}`")]
    Key(String),
    /// The value's type is not the declared one.
    #[error("the attribute `{key}` is a {expected}, not a {found}")]
    Type {
        /// The key.
        key: String,
        /// The declared type.
        expected: &'static str,
        /// The value's type.
        found: &'static str,
    },
    /// A string is too long.
    #[error("an attribute's string is at most {limit} bytes, not {size}")]
    TooLong {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The value is malformed.
    #[error("invalid attribute value: {0}")]
    Value(String),
    /// The object already has the most attributes it may.
    #[error("a {object} has at most {MAX_ATTRIBUTES_PER_OBJECT} attributes")]
    TooMany {
        /// What the attributes are kept on.
        object: &'static str,
    },
    /// Agents set declared keys only.
    #[error("the tenant has declared no {object} attribute `{key}`")]
    Undeclared {
        /// What the attribute is kept on.
        object: &'static str,
        /// The key.
        key: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> TenantId {
        TenantId::new("shop").expect("tenant")
    }

    #[test]
    fn labels_need_a_name_and_a_hex_colour() {
        assert!(Label::new(shop(), "Billing issue", "#1A2b3c").validate().is_ok());
        for (name, color) in [
            ("", "#000000"),
            (" padded", "#000000"),
            ("tab\there", "#000000"),
            ("ok", "red"),
            ("ok", "#12345"),
            ("ok", "#12345g"),
        ] {
            assert!(
                Label::new(shop(), name, color).validate().is_err(),
                "{name} {color}"
            );
        }
        assert!(check_label_name(&"x".repeat(MAX_LABEL_NAME_BYTES)).is_ok());
        assert!(check_label_name(&"x".repeat(MAX_LABEL_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn values_read_and_write_their_type_and_are_bounded() {
        let cases = [
            (AttributeValue::String("pro".into()), r#"{"string":"pro"}"#),
            (AttributeValue::number(3.5).expect("finite"), r#"{"number":3.5}"#),
            (AttributeValue::Number(7.into()), r#"{"number":7}"#),
            (AttributeValue::Bool(true), r#"{"bool":true}"#),
            (
                AttributeValue::Date("2026-02-28".into()),
                r#"{"date":"2026-02-28"}"#,
            ),
        ];
        for (value, json) in cases {
            assert_eq!(serde_json::to_string(&value).expect("json"), json);
            assert_eq!(
                serde_json::from_str::<AttributeValue>(json).expect("value"),
                value
            );
            assert!(value.validate().is_ok());
        }
        assert!(AttributeValue::number(f64::NAN).is_none());
        for date in [
            "2026-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "20240101xx",
            "2024-04-31",
        ] {
            assert!(AttributeValue::date(date).is_err(), "{date}");
        }
        assert!(AttributeValue::date("2024-02-29").is_ok());
        let long = AttributeValue::String("é".repeat(MAX_ATTRIBUTE_STRING_BYTES / 2 + 1));
        assert!(matches!(long.validate(), Err(AttributeError::TooLong { .. })));
        assert!(AttributeValue::String("a\u{7}".into()).validate().is_err());
        assert!(check_attribute_key("order.id_2-x").is_ok());
        for key in ["", "Upper", "sp ace", &"k".repeat(MAX_ATTRIBUTE_KEY_BYTES + 1)] {
            assert!(check_attribute_key(key).is_err(), "{key}");
        }
    }

    #[test]
    fn definitions_check_the_type_and_parse_form_answers() {
        let plan = AttributeDefinition::new(
            shop(),
            AttributeObject::Conversation,
            "seats",
            AttributeKind::Number,
        );
        assert!(plan.check(&AttributeValue::Number(3.into())).is_ok());
        assert!(matches!(
            plan.check(&AttributeValue::String("3".into())),
            Err(AttributeError::Type {
                expected: "number",
                found: "string",
                ..
            })
        ));
        assert_eq!(
            AttributeValue::parse(AttributeKind::Number, " 12 "),
            Some(AttributeValue::Number(
                serde_json::Number::from_f64(12.0).expect("finite")
            ))
        );
        assert_eq!(
            AttributeValue::parse(AttributeKind::Bool, "Yes"),
            Some(AttributeValue::Bool(true))
        );
        assert_eq!(AttributeValue::parse(AttributeKind::Bool, "maybe"), None);
        assert_eq!(
            AttributeValue::parse(AttributeKind::Date, "2026-12-07"),
            AttributeValue::date("2026-12-07").ok()
        );
        assert_eq!(AttributeValue::parse(AttributeKind::Date, "tomorrow"), None);
        assert!(plan.clone().with_name("Seats").validate().is_ok());
        assert!(plan.with_name(" ").validate().is_err());
    }
}
