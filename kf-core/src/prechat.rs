//! Pre-chat forms: what a visitor is asked before a conversation starts (name, email, an order number…),
//! configured per [entry point](crate::entry::EntryPoint). The widget shows the form and sends the answers with
//! `open`; they are checked against the form here and recorded on the conversation's `created` event, so the
//! agent sees them with the conversation, for good.
//!
//! ```
//! use kf_core::prechat::{FieldKind, PrechatField, check_answers};
//! use std::collections::BTreeMap;
//!
//! let form = [
//!     PrechatField::new("name", "Your name", FieldKind::Text).required(),
//!     PrechatField::new("email", "Email", FieldKind::Email),
//! ];
//! let answers = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
//! assert_eq!(check_answers(&form, answers.clone()), Ok(answers));
//! assert!(check_answers(&form, BTreeMap::new()).is_err(), "the name is required");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::{MAX_PRECHAT_ANSWER_BYTES, MAX_PRECHAT_FIELDS, MAX_PRECHAT_LABEL_BYTES};

/// What kind of answer a field takes (and which input the widget shows).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// An email address.
    Email,
    /// Several lines of text.
    Textarea,
    /// One of the field's `options`.
    Select,
}

/// One question of a pre-chat form.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PrechatField {
    /// The answer's key (`name`, `email`, `order`): 1 to 32 of `a-z`, `0-9`, `_`.
    pub name: String,
    /// What the visitor reads.
    pub label: String,
    /// The kind of answer.
    pub kind: FieldKind,
    /// Whether the form cannot be sent without it.
    #[serde(default)]
    pub required: bool,
    /// The choices of a [`FieldKind::Select`] field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl PrechatField {
    /// An optional field.
    pub fn new(name: impl Into<String>, label: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind,
            required: false,
            options: Vec::new(),
        }
    }

    /// Makes it required.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the choices of a select field.
    #[must_use]
    pub fn with_options(mut self, options: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options = options.into_iter().map(Into::into).collect();
        self
    }
}

/// A pre-chat form or a visitor's answers to it were refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum PrechatError {
    /// The form itself is invalid (configuration).
    #[error("invalid pre-chat form: {0}")]
    InvalidForm(String),
    /// A required field has no answer.
    #[error("the pre-chat field `{0}` is required")]
    Missing(String),
    /// An answer names no field of the form.
    #[error("the pre-chat form has no field `{0}`")]
    Unknown(String),
    /// An answer breaks its field's rules.
    #[error("invalid answer to `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: &'static str,
    },
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn valid_text(text: &str, max: usize, lines: bool) -> bool {
    text.len() <= max
        && !text
            .chars()
            .any(|c| c.is_control() && !(lines && (c == '\n' || c == '\t')))
}

/// Checks a form: field names unique and well-formed, labels and options bounded, select fields with options.
pub fn check_form(form: &[PrechatField]) -> Result<(), PrechatError> {
    let invalid = |reason: String| Err(PrechatError::InvalidForm(reason));
    if form.len() > MAX_PRECHAT_FIELDS {
        return invalid(format!("at most {MAX_PRECHAT_FIELDS} fields"));
    }
    for (i, field) in form.iter().enumerate() {
        if !valid_name(&field.name) {
            return invalid(format!(
                "field name {:?} must be 1 to 32 of a-z, 0-9, _",
                field.name
            ));
        }
        if form[..i].iter().any(|other| other.name == field.name) {
            return invalid(format!("two fields are named `{}`", field.name));
        }
        if field.label.trim().is_empty() || !valid_text(&field.label, MAX_PRECHAT_LABEL_BYTES, false) {
            return invalid(format!(
                "the label of `{}` must be 1 to {MAX_PRECHAT_LABEL_BYTES} bytes without control characters",
                field.name
            ));
        }
        let options_ok = field.options.len() <= MAX_PRECHAT_FIELDS
            && field.options.iter().all(|option| {
                !option.trim().is_empty() && valid_text(option, MAX_PRECHAT_LABEL_BYTES, false)
            });
        match field.kind {
            FieldKind::Select if field.options.is_empty() || !options_ok => {
                return invalid(format!(
                    "select field `{}` needs 1 to {MAX_PRECHAT_FIELDS} options of 1 to {MAX_PRECHAT_LABEL_BYTES} bytes",
                    field.name
                ));
            }
            FieldKind::Select => {}
            _ if !field.options.is_empty() => {
                return invalid(format!("only select fields have options (`{}`)", field.name));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A plausible address: one `@` with something on each side, a dot in the domain, no spaces. (The only real
/// check of an address is a mail that arrives.)
fn plausible_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
}

/// Checks a visitor's answers against `form`; returns them trimmed, without empty answers to optional fields.
pub fn check_answers(
    form: &[PrechatField],
    answers: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, PrechatError> {
    let mut kept = BTreeMap::new();
    for (name, answer) in answers {
        let Some(field) = form.iter().find(|field| field.name == name) else {
            return Err(PrechatError::Unknown(name.chars().take(64).collect()));
        };
        let answer = answer.trim();
        if answer.is_empty() {
            continue;
        }
        let invalid = |reason| PrechatError::Invalid {
            field: field.name.clone(),
            reason,
        };
        if !valid_text(
            answer,
            MAX_PRECHAT_ANSWER_BYTES,
            field.kind == FieldKind::Textarea,
        ) {
            return Err(invalid("too long, or has control characters"));
        }
        match field.kind {
            FieldKind::Email if !plausible_email(answer) => return Err(invalid("not an email address")),
            FieldKind::Select if !field.options.iter().any(|option| option == answer) => {
                return Err(invalid("not one of the options"));
            }
            _ => {}
        }
        kept.insert(field.name.clone(), answer.to_owned());
    }
    if let Some(missing) = form
        .iter()
        .find(|field| field.required && !kept.contains_key(&field.name))
    {
        return Err(PrechatError::Missing(missing.name.clone()));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Vec<PrechatField> {
        vec![
            PrechatField::new("name", "Name", FieldKind::Text).required(),
            PrechatField::new("email", "Email", FieldKind::Email).required(),
            PrechatField::new("topic", "Topic", FieldKind::Select).with_options(["Order", "Returns"]),
            PrechatField::new("details", "Details", FieldKind::Textarea),
        ]
    }

    fn answers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn good_answers_are_kept_trimmed() {
        let got = check_answers(
            &form(),
            answers(&[
                ("name", " Ada "),
                ("email", "ada@shop.example"),
                ("topic", "Returns"),
                ("details", "a\nb"),
                ("topic", "Returns"),
            ]),
        );
        assert_eq!(
            got,
            Ok(answers(&[
                ("details", "a\nb"),
                ("email", "ada@shop.example"),
                ("name", "Ada"),
                ("topic", "Returns")
            ]))
        );
        let optional_empty = check_answers(
            &form(),
            answers(&[("name", "Ada"), ("email", "a@b.c"), ("topic", " ")]),
        );
        assert_eq!(
            optional_empty,
            Ok(answers(&[("email", "a@b.c"), ("name", "Ada")]))
        );
    }

    #[test]
    fn bad_answers_are_refused() {
        let base = [("name", "Ada"), ("email", "a@b.c")];
        let with = |extra: (&str, &str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            check_answers(&form(), answers(&pairs))
        };
        assert_eq!(
            check_answers(&form(), answers(&[("name", "Ada")])),
            Err(PrechatError::Missing("email".into()))
        );
        assert_eq!(
            check_answers(&form(), answers(&[("name", " "), ("email", "a@b.c")])),
            Err(PrechatError::Missing("name".into()))
        );
        assert!(matches!(with(("age", "3")), Err(PrechatError::Unknown(_))));
        assert!(matches!(
            with(("topic", "Other")),
            Err(PrechatError::Invalid { .. })
        ));
        assert!(matches!(
            with(("name", "a\u{0}b")),
            Err(PrechatError::Invalid { .. })
        ));
        assert!(matches!(
            with(("name", "line\nbreak")),
            Err(PrechatError::Invalid { .. })
        ));
        assert!(with(("details", "line\nbreak")).is_ok());
        assert!(matches!(
            with(("details", &"x".repeat(MAX_PRECHAT_ANSWER_BYTES + 1))),
            Err(PrechatError::Invalid { .. })
        ));
        for email in ["ada", "ada@", "@b.c", "a b@c.d", "a@b", "a@.b", "a@b.", "a@b@c.d"] {
            assert!(
                matches!(
                    check_answers(&form(), answers(&[("name", "Ada"), ("email", email)])),
                    Err(PrechatError::Invalid { .. })
                ),
                "{email}"
            );
        }
    }

    #[test]
    fn forms_are_checked() {
        assert_eq!(check_form(&form()), Ok(()));
        assert_eq!(check_form(&[]), Ok(()));
        let bad = [
            vec![PrechatField::new("Name", "Name", FieldKind::Text)],
            vec![PrechatField::new("", "Name", FieldKind::Text)],
            vec![PrechatField::new("a", " ", FieldKind::Text)],
            vec![PrechatField::new("a", "A", FieldKind::Select)],
            vec![PrechatField::new("a", "A", FieldKind::Text).with_options(["x"])],
            vec![
                PrechatField::new("a", "A", FieldKind::Text),
                PrechatField::new("a", "B", FieldKind::Email),
            ],
            (0..=MAX_PRECHAT_FIELDS)
                .map(|i| PrechatField::new(format!("f{i}"), "F", FieldKind::Text))
                .collect(),
        ];
        for form in bad {
            assert!(
                matches!(check_form(&form), Err(PrechatError::InvalidForm(_))),
                "{form:?}"
            );
        }
    }
}
