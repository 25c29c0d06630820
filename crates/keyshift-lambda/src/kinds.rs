//! The kind of value a secret holds, chosen per secret by its tags, parsed and validated
//! here (no calls, no I/O).
//!
//! | tag | values | default |
//! |---|---|---|
//! | `keyshift:kind` | `password`, `symmetric`, `ed25519`, `ecdsa-p256`, `ecdsa-p384`, `rsa-2048`, `rsa-3072`, `rsa-4096`, `json`, `postgres` (its tags: `keyshift-postgres`) | `KEYSHIFT_DEFAULT_KIND`, else `password` |
//! | `keyshift:fields` | with `json`: `name=kind` pairs separated by spaces, each kind one of the above but `json` | (required with `json`) |
//! | `keyshift:password-length` | 16 to 4096 | `KEYSHIFT_PASSWORD_LENGTH`, else 48 |
//! | `keyshift:exclude-characters` | characters GetRandomPassword must not use (at most 256) | none |
//! | `keyshift:exclude-punctuation` | `true` or `false` | `true` (values safe in URLs and connection strings) |
//! | `keyshift:exclude-numbers`, `keyshift:exclude-uppercase`, `keyshift:exclude-lowercase`, `keyshift:include-space` | `true` or `false` | `false` |
//! | `keyshift:require-each-included-type` | `true` or `false` | `true` |
//!
//! AWS allows only letters, digits, spaces and `_ . : / = + - @` in tag values, so the
//! field list uses spaces and `=`. Whoever may tag the secret chooses these: every value
//! is checked, and a bad one fails the step with `keyshift.Configuration`, naming the tag
//! and what it allows, before anything is written.

use std::collections::BTreeMap;
use std::fmt;

use keyshift_keys::KeyKind;

/// `keyshift:kind`: what the secret holds.
pub const KIND_TAG: &str = "keyshift:kind";
/// `keyshift:fields`: the generated fields of a `json` secret.
pub const FIELDS_TAG: &str = "keyshift:fields";
/// `keyshift:password-length`.
pub const PASSWORD_LENGTH_TAG: &str = "keyshift:password-length";
/// `keyshift:exclude-characters`.
pub const EXCLUDE_CHARACTERS_TAG: &str = "keyshift:exclude-characters";
/// `keyshift:exclude-punctuation`.
pub const EXCLUDE_PUNCTUATION_TAG: &str = "keyshift:exclude-punctuation";
/// `keyshift:exclude-numbers`.
pub const EXCLUDE_NUMBERS_TAG: &str = "keyshift:exclude-numbers";
/// `keyshift:exclude-uppercase`.
pub const EXCLUDE_UPPERCASE_TAG: &str = "keyshift:exclude-uppercase";
/// `keyshift:exclude-lowercase`.
pub const EXCLUDE_LOWERCASE_TAG: &str = "keyshift:exclude-lowercase";
/// `keyshift:include-space`.
pub const INCLUDE_SPACE_TAG: &str = "keyshift:include-space";
/// `keyshift:require-each-included-type`.
pub const REQUIRE_EACH_TYPE_TAG: &str = "keyshift:require-each-included-type";

/// Most fields a `json` secret may generate.
pub const MAX_FIELDS: usize = 32;
/// Longest `keyshift:exclude-characters`.
pub const MAX_EXCLUDED: usize = 256;

/// What one value (a whole secret, or one field of a `json` secret) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// A GetRandomPassword string.
    Password,
    /// Key material keyshift generates.
    Key(KeyKind),
}

impl ValueKind {
    /// The tag value naming this kind.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Password => "password",
            ValueKind::Key(k) => k.name(),
        }
    }

    fn parse(name: &str) -> Option<ValueKind> {
        match name {
            "password" => Some(ValueKind::Password),
            other => KeyKind::parse(other).map(ValueKind::Key),
        }
    }
}

/// What a whole secret holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// One value.
    Value(ValueKind),
    /// A JSON object whose named fields are generated and whose other fields carry over.
    Json(Vec<Field>),
    /// AWS's database-secret JSON for PostgreSQL, rotated with alternating users by
    /// `keyshift-postgres` (its own tags are read there).
    Postgres,
}

/// The name of a kind as configured (the function-wide default: `json` needs its fields
/// from the secret's own tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindName {
    /// One value of this kind.
    Value(ValueKind),
    /// `json`.
    Json,
    /// `postgres`.
    Postgres,
}

impl KindName {
    /// Every kind name, as the tag spells it.
    pub fn all() -> Vec<&'static str> {
        let mut names = vec!["password"];
        names.extend(KeyKind::ALL.iter().map(|k| k.name()));
        names.push("json");
        names.push("postgres");
        names
    }

    /// The kind a tag or variable value names.
    pub fn parse(name: &str) -> Option<KindName> {
        match name {
            "json" => Some(KindName::Json),
            "postgres" => Some(KindName::Postgres),
            other => ValueKind::parse(other).map(KindName::Value),
        }
    }
}

/// One generated field of a `json` secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The JSON member name.
    pub name: String,
    /// What to generate for it.
    pub kind: ValueKind,
}

/// GetRandomPassword's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordOptions {
    /// `PasswordLength`.
    pub length: i64,
    /// `ExcludeCharacters`.
    pub exclude_characters: Option<String>,
    /// `ExcludePunctuation`.
    pub exclude_punctuation: bool,
    /// `ExcludeNumbers`.
    pub exclude_numbers: bool,
    /// `ExcludeUppercase`.
    pub exclude_uppercase: bool,
    /// `ExcludeLowercase`.
    pub exclude_lowercase: bool,
    /// `IncludeSpace`.
    pub include_space: bool,
    /// `RequireEachIncludedType`.
    pub require_each_included_type: bool,
}

impl PasswordOptions {
    /// keyshift's defaults: `length` characters, letters and digits, each type present.
    pub fn defaults(length: i64) -> Self {
        PasswordOptions {
            length,
            exclude_characters: None,
            exclude_punctuation: true,
            exclude_numbers: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

/// Everything the tags say about how to make the secret's next value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// What the secret holds.
    pub kind: Kind,
    /// Options for every password in it.
    pub password: PasswordOptions,
}

/// A tag with a value keyshift cannot use. Tag values are not secret, but only a short
/// prefix of a bad one is echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagError {
    /// The tag.
    pub tag: &'static str,
    /// What it must be, and what it was.
    pub problem: String,
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret tag {}: {}", self.tag, self.problem)
    }
}

impl std::error::Error for TagError {}

/// A bad value as the error shows it: at most 40 characters, escaped.
fn shown(value: &str) -> String {
    let mut short: String = value.chars().take(40).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    format!("{short:?}")
}

fn bad(tag: &'static str, problem: impl Into<String>) -> TagError {
    TagError {
        tag,
        problem: problem.into(),
    }
}

fn flag(tags: &BTreeMap<String, String>, tag: &'static str, default: bool) -> Result<bool, TagError> {
    match tags.get(tag).map(|v| v.trim()) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(bad(tag, format!("must be true or false, got {}", shown(other)))),
    }
}

/// Reads the spec from `tags`; `default` is the function's default kind and
/// `default_length` its password length.
pub fn spec(
    tags: &BTreeMap<String, String>,
    default: KindName,
    default_length: i64,
) -> Result<Spec, TagError> {
    let name = match tags.get(KIND_TAG) {
        None => default,
        Some(v) => KindName::parse(v.trim()).ok_or_else(|| {
            bad(
                KIND_TAG,
                format!("must be one of {}, got {}", KindName::all().join(", "), shown(v)),
            )
        })?,
    };
    let kind = match name {
        KindName::Value(v) => {
            if tags.contains_key(FIELDS_TAG) {
                return Err(bad(FIELDS_TAG, format!("only applies to {KIND_TAG}=json")));
            }
            Kind::Value(v)
        }
        KindName::Json => Kind::Json(fields(tags.get(FIELDS_TAG))?),
        KindName::Postgres => {
            if tags.contains_key(FIELDS_TAG) {
                return Err(bad(FIELDS_TAG, format!("only applies to {KIND_TAG}=json")));
            }
            Kind::Postgres
        }
    };
    let length = match tags.get(PASSWORD_LENGTH_TAG) {
        None => default_length,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (16..=4096).contains(n))
            .ok_or_else(|| {
                bad(
                    PASSWORD_LENGTH_TAG,
                    format!("must be a whole number from 16 to 4096, got {}", shown(v)),
                )
            })?,
    };
    let exclude_characters = match tags.get(EXCLUDE_CHARACTERS_TAG) {
        None => None,
        Some(v) if v.chars().count() > MAX_EXCLUDED => {
            return Err(bad(
                EXCLUDE_CHARACTERS_TAG,
                format!("must be at most {MAX_EXCLUDED} characters"),
            ));
        }
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v.clone()),
    };
    let password = PasswordOptions {
        length,
        exclude_characters,
        exclude_punctuation: flag(tags, EXCLUDE_PUNCTUATION_TAG, true)?,
        exclude_numbers: flag(tags, EXCLUDE_NUMBERS_TAG, false)?,
        exclude_uppercase: flag(tags, EXCLUDE_UPPERCASE_TAG, false)?,
        exclude_lowercase: flag(tags, EXCLUDE_LOWERCASE_TAG, false)?,
        include_space: flag(tags, INCLUDE_SPACE_TAG, false)?,
        require_each_included_type: flag(tags, REQUIRE_EACH_TYPE_TAG, true)?,
    };
    let uses_passwords = match &kind {
        Kind::Value(v) => *v == ValueKind::Password,
        Kind::Json(fields) => fields.iter().any(|f| f.kind == ValueKind::Password),
        Kind::Postgres => false,
    };
    if uses_passwords
        && password.exclude_punctuation
        && password.exclude_numbers
        && password.exclude_uppercase
        && password.exclude_lowercase
        && !password.include_space
    {
        return Err(bad(
            EXCLUDE_LOWERCASE_TAG,
            "the exclude tags together leave no characters to draw from",
        ));
    }
    Ok(Spec { kind, password })
}

fn fields(tag: Option<&String>) -> Result<Vec<Field>, TagError> {
    let Some(text) = tag else {
        return Err(bad(
            FIELDS_TAG,
            format!(
                "is required with {KIND_TAG}=json: name=kind pairs separated by spaces, for example \"password=password\""
            ),
        ));
    };
    let mut out: Vec<Field> = Vec::new();
    for pair in text.split_whitespace() {
        let Some((name, kind)) = pair.split_once('=') else {
            return Err(bad(
                FIELDS_TAG,
                format!("each entry must be name=kind, got {}", shown(pair)),
            ));
        };
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid_name {
            return Err(bad(
                FIELDS_TAG,
                format!(
                    "a field name must be 1 to 64 of [A-Za-z0-9_.-], got {}",
                    shown(name)
                ),
            ));
        }
        let kind = ValueKind::parse(kind).ok_or_else(|| {
            let allowed: Vec<&str> = KindName::all()
                .into_iter()
                .filter(|k| !["json", "postgres"].contains(k))
                .collect();
            bad(
                FIELDS_TAG,
                format!(
                    "the kind of field {name} must be one of {}, got {}",
                    allowed.join(", "),
                    shown(kind)
                ),
            )
        })?;
        if out.iter().any(|f| f.name == name) {
            return Err(bad(FIELDS_TAG, format!("field {name} is named twice")));
        }
        out.push(Field {
            name: name.to_owned(),
            kind,
        });
    }
    if out.is_empty() {
        return Err(bad(FIELDS_TAG, "names no field"));
    }
    if out.len() > MAX_FIELDS {
        return Err(bad(FIELDS_TAG, format!("names more than {MAX_FIELDS} fields")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Spec, TagError> {
        spec(&tags(pairs), KindName::Value(ValueKind::Password), 48)
    }

    #[test]
    fn no_tags_is_the_default_kind_and_keyshifts_password_options() {
        let s = parse(&[]).expect("valid");
        assert_eq!(s.kind, Kind::Value(ValueKind::Password));
        assert_eq!(s.password, PasswordOptions::defaults(48));
        let s = spec(&tags(&[]), KindName::Value(ValueKind::Key(KeyKind::Ed25519)), 48).expect("valid");
        assert_eq!(s.kind, Kind::Value(ValueKind::Key(KeyKind::Ed25519)));
    }

    #[test]
    fn every_kind_name_parses() {
        for name in KindName::all() {
            let pairs: Vec<(&str, &str)> = if name == "json" {
                vec![(KIND_TAG, name), (FIELDS_TAG, "password=password")]
            } else {
                vec![(KIND_TAG, name)]
            };
            parse(&pairs).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn json_fields_and_password_options() {
        let s = parse(&[
            (KIND_TAG, "json"),
            (
                FIELDS_TAG,
                " password=password  signing_key=ed25519 data.key=symmetric ",
            ),
            (PASSWORD_LENGTH_TAG, "64"),
            (EXCLUDE_CHARACTERS_TAG, "/@:"),
            (EXCLUDE_PUNCTUATION_TAG, "false"),
            (REQUIRE_EACH_TYPE_TAG, "false"),
        ])
        .expect("valid");
        let Kind::Json(fields) = &s.kind else {
            panic!("json")
        };
        let names: Vec<(&str, &str)> = fields.iter().map(|f| (f.name.as_str(), f.kind.name())).collect();
        assert_eq!(
            names,
            [
                ("password", "password"),
                ("signing_key", "ed25519"),
                ("data.key", "symmetric")
            ]
        );
        assert_eq!(s.password.length, 64);
        assert_eq!(s.password.exclude_characters.as_deref(), Some("/@:"));
        assert!(!s.password.exclude_punctuation && !s.password.require_each_included_type);
    }

    #[test]
    fn every_bad_tag_is_named_with_what_it_allows() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[(KIND_TAG, "rsa-1024")], KIND_TAG, "rsa-2048"),
            (&[(KIND_TAG, "")], KIND_TAG, "password"),
            (&[(KIND_TAG, "json")], FIELDS_TAG, "is required"),
            (
                &[(KIND_TAG, "json"), (FIELDS_TAG, "")],
                FIELDS_TAG,
                "names no field",
            ),
            (
                &[(KIND_TAG, "json"), (FIELDS_TAG, "password")],
                FIELDS_TAG,
                "name=kind",
            ),
            (
                &[(KIND_TAG, "json"), (FIELDS_TAG, "a=json")],
                FIELDS_TAG,
                "must be one of",
            ),
            (
                &[(KIND_TAG, "json"), (FIELDS_TAG, "a=password a=symmetric")],
                FIELDS_TAG,
                "twice",
            ),
            (
                &[(KIND_TAG, "json"), (FIELDS_TAG, "=password")],
                FIELDS_TAG,
                "field name",
            ),
            (&[(FIELDS_TAG, "a=password")], FIELDS_TAG, "only applies"),
            (&[(PASSWORD_LENGTH_TAG, "8")], PASSWORD_LENGTH_TAG, "16 to 4096"),
            (
                &[(PASSWORD_LENGTH_TAG, "lots")],
                PASSWORD_LENGTH_TAG,
                "16 to 4096",
            ),
            (
                &[(EXCLUDE_NUMBERS_TAG, "yes")],
                EXCLUDE_NUMBERS_TAG,
                "true or false",
            ),
            (
                &[
                    (EXCLUDE_NUMBERS_TAG, "true"),
                    (EXCLUDE_UPPERCASE_TAG, "true"),
                    (EXCLUDE_LOWERCASE_TAG, "true"),
                ],
                EXCLUDE_LOWERCASE_TAG,
                "no characters",
            ),
        ];
        for (pairs, tag, says) in cases {
            let e = parse(pairs).expect_err("invalid");
            assert_eq!(e.tag, *tag, "{e}");
            let text = e.to_string();
            assert!(text.contains(tag) && text.contains(says), "{text}");
        }
        let long = "x".repeat(MAX_EXCLUDED + 1);
        assert!(parse(&[(EXCLUDE_CHARACTERS_TAG, &long)]).is_err());
    }

    proptest! {
        /// Whatever a tag holds, parsing returns (never panics), an error names a real
        /// tag, and echoes at most a short prefix of the value.
        #[test]
        fn hostile_tag_values_get_a_bounded_error(
            tag in prop::sample::select(vec![KIND_TAG, FIELDS_TAG, PASSWORD_LENGTH_TAG, EXCLUDE_CHARACTERS_TAG, EXCLUDE_PUNCTUATION_TAG, INCLUDE_SPACE_TAG]),
            value in ".{0,300}",
            kind in prop::sample::select(vec!["json", "password", "ed25519"]),
        ) {
            let mut t = tags(&[(KIND_TAG, kind)]);
            t.insert(tag.to_owned(), value.clone());
            match spec(&t, KindName::Value(ValueKind::Password), 48) {
                Ok(s) => {
                    if let Kind::Json(fields) = &s.kind {
                        prop_assert!(!fields.is_empty() && fields.len() <= MAX_FIELDS);
                    }
                    prop_assert!((16..=4096).contains(&s.password.length));
                }
                Err(e) => {
                    prop_assert!(e.tag.starts_with("keyshift:"));
                    prop_assert!(e.to_string().len() < 600, "{}", e);
                }
            }
        }
    }
}
