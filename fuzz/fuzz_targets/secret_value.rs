//! Secret values as the rotation function reads them back: testSecret's check of every
//! stock key kind (`keyshift_keys::check`, its PEM and DER readers) and the PostgreSQL
//! target's database and master secrets (`DbSecret::parse`, `MasterSecret::parse`).
//! Never a panic; an error never carries the key material or the password it was handed
//! (a canary is planted in the private members and the password); a database secret
//! that parses yields a next value that parses to the other user with the new password.
#![no_main]

use keyshift_keys::{KeyKind, check, der, pem_body};
use keyshift_postgres::{DbSecret, MasterSecret};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Material planted in the input: no error may ever show it.
const CANARY: &str = "CANARY-s3cr3t-material-Zq8";

fn plant(value: &mut Value, path: &[&str]) {
    let mut at = value;
    for (i, key) in path.iter().enumerate() {
        let Some(obj) = at.as_object_mut() else { return };
        if i + 1 == path.len() {
            obj.insert((*key).to_owned(), Value::from(CANARY));
            return;
        }
        at = obj
            .entry(*key)
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let planted_before = text.contains(CANARY);
    let kind = KeyKind::ALL[usize::from(selector) % KeyKind::ALL.len()];
    if let Ok(mut value) = serde_json::from_str::<Value>(text) {
        let _ = check(kind, &value);
        if !planted_before {
            for path in [
                &["k"][..],
                &["private_jwk", "d"],
                &["private_jwk", "p"],
                &["private_key_pem"],
            ] {
                plant(&mut value, path);
                if let Err(e) = check(kind, &value) {
                    assert!(
                        !format!("{e} {e:?}").contains(CANARY),
                        "a key error shows material"
                    );
                }
            }
        }
    }
    if let Some(body) = pem_body(text, "PRIVATE KEY") {
        let _ = der::rsa_private_key(&body);
    }
    if let Some(ints) = der::rsa_private_key(rest) {
        assert!(ints.iter().all(|i| i.len() <= rest.len()));
    }

    let what = "the AWSCURRENT value";
    match DbSecret::parse(text, what) {
        Ok(db) => {
            let next = db.next("NewPassw0rd");
            let parsed = DbSecret::parse(&next, what).expect("the next value of a valid secret is valid");
            assert_eq!(parsed.username, db.username.other());
            assert_eq!(parsed.password, "NewPassw0rd");
            assert!(parsed.same_database(&db));
            assert!(format!("{db:?}").contains("<redacted>"));
        }
        Err(e) => assert!(!e.message.contains(CANARY) || planted_before),
    }
    let _ = MasterSecret::parse(text, what);
    if !planted_before {
        if let Ok(mut value) = serde_json::from_str::<Value>(text) {
            plant(&mut value, &["password"]);
            let planted = value.to_string();
            if let Err(e) = DbSecret::parse(&planted, what) {
                assert!(
                    !e.message.contains(CANARY),
                    "a database secret error shows the password"
                );
            }
            if let Err(e) = MasterSecret::parse(&planted, what) {
                assert!(
                    !e.message.contains(CANARY),
                    "a master secret error shows the password"
                );
            }
        }
    }
});
