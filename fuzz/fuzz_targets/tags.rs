//! Secret tags, which whoever may tag the secret chooses: the kind and password options
//! (`keyshift_lambda::kinds::spec`), the PostgreSQL target's tags
//! (`keyshift_postgres::options::settings`) and T (`keyshift:gap-seconds`, as the
//! `keyshift` CLI's `policy_for` and the function read it). Input: one tag a line,
//! `key<TAB>value`; a one-character key `0`..`f` stands for the n-th tag keyshift knows.
//! Never a panic; a spec that parses prints back to tags that parse to the same spec;
//! errors show at most a short prefix of a bad value.
#![no_main]

use std::collections::BTreeMap;
use std::time::Duration;

use keyshift::Policy;
use keyshift_cli::policy::{GapSource, policy_for};
use keyshift_lambda::config::GAP_TAG;
use keyshift_lambda::kinds::{
    EXCLUDE_CHARACTERS_TAG, EXCLUDE_LOWERCASE_TAG, EXCLUDE_NUMBERS_TAG, EXCLUDE_PUNCTUATION_TAG,
    EXCLUDE_UPPERCASE_TAG, FIELDS_TAG, INCLUDE_SPACE_TAG, KIND_TAG, Kind, KindName, PASSWORD_LENGTH_TAG,
    REQUIRE_EACH_TYPE_TAG, Spec, ValueKind, spec,
};
use keyshift_postgres::PgOptions;
use keyshift_postgres::options::{SESSION_GRACE_TAG, TLS_TAG, settings};
use libfuzzer_sys::fuzz_target;

const KNOWN: [&str; 14] = [
    KIND_TAG,
    FIELDS_TAG,
    PASSWORD_LENGTH_TAG,
    EXCLUDE_CHARACTERS_TAG,
    EXCLUDE_PUNCTUATION_TAG,
    EXCLUDE_NUMBERS_TAG,
    EXCLUDE_UPPERCASE_TAG,
    EXCLUDE_LOWERCASE_TAG,
    INCLUDE_SPACE_TAG,
    REQUIRE_EACH_TYPE_TAG,
    GAP_TAG,
    TLS_TAG,
    SESSION_GRACE_TAG,
    "keyshift:other",
];

/// Longest error a bad tag may make: its text and at most 40 escaped characters of the
/// value (an escape such as `\u{10ffff}` is ten).
const SHORT: usize = 800;

fn tags(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| {
            let key = match u8::from_str_radix(k, 16) {
                Ok(i) if k.len() == 1 && usize::from(i) < KNOWN.len() => KNOWN[usize::from(i)].to_owned(),
                _ => k.to_owned(),
            };
            (key, v.to_owned())
        })
        .collect()
}

/// The tags that say `s` (every option spelled out).
fn tags_of(s: &Spec) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    let name = match &s.kind {
        Kind::Value(v) => v.name().to_owned(),
        Kind::Json(fields) => {
            let pairs: Vec<String> = fields
                .iter()
                .map(|f| format!("{}={}", f.name, f.kind.name()))
                .collect();
            t.insert(FIELDS_TAG.to_owned(), pairs.join(" "));
            "json".to_owned()
        }
        Kind::Postgres => "postgres".to_owned(),
    };
    t.insert(KIND_TAG.to_owned(), name);
    let p = &s.password;
    t.insert(PASSWORD_LENGTH_TAG.to_owned(), p.length.to_string());
    if let Some(x) = &p.exclude_characters {
        t.insert(EXCLUDE_CHARACTERS_TAG.to_owned(), x.clone());
    }
    for (tag, on) in [
        (EXCLUDE_PUNCTUATION_TAG, p.exclude_punctuation),
        (EXCLUDE_NUMBERS_TAG, p.exclude_numbers),
        (EXCLUDE_UPPERCASE_TAG, p.exclude_uppercase),
        (EXCLUDE_LOWERCASE_TAG, p.exclude_lowercase),
        (INCLUDE_SPACE_TAG, p.include_space),
        (REQUIRE_EACH_TYPE_TAG, p.require_each_included_type),
    ] {
        t.insert(tag.to_owned(), on.to_string());
    }
    t
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let t = tags(text);
    for default in [
        KindName::Value(ValueKind::Password),
        KindName::Json,
        KindName::Postgres,
    ] {
        match spec(&t, default, 48) {
            Ok(s) => {
                assert!((16..=4096).contains(&s.password.length));
                if let Kind::Json(fields) = &s.kind {
                    assert!(!fields.is_empty() && fields.len() <= 32);
                }
                let again = spec(&tags_of(&s), KindName::Value(ValueKind::Password), 48);
                assert_eq!(again.as_ref(), Ok(&s), "the spec's own tags say another spec");
            }
            Err(e) => {
                // A bad value is shown cut to 40 characters, escaped (a field name, at
                // most 64): never the whole of a long value.
                assert!(e.problem.chars().count() < SHORT, "{}", e.problem.len());
                let _ = e.to_string();
            }
        }
    }
    match settings(&t, &PgOptions::default()) {
        Ok(s) => assert!(s.session_grace <= Duration::from_secs(600)),
        Err(e) => assert!(e.message.chars().count() < SHORT),
    }
    match policy_for(&t, None, |_| None) {
        Ok((policy, source)) => {
            if source == GapSource::Tag {
                let secs: u64 = t[GAP_TAG].trim().parse().expect("the tag was a number");
                assert_eq!(policy.gap, Duration::from_secs(secs));
            }
            // The function reads the tag the same way.
            assert_eq!(Policy::new(policy.gap, policy.inline_budget), Ok(policy));
        }
        Err(e) => assert!(e.message.chars().count() < SHORT),
    }
});
