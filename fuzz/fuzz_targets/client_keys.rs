//! The consumer client's readers of secret values: the public JWK of a signing value
//! (`jwks::public_jwk`, `jwks::jwks`), the signing key pair (`keys::signing_key`) and the
//! symmetric key (`keys::symmetric_key`). Never a panic; a published JWK holds only
//! public members, never a private one (a canary planted in `d`, `p`, `k`... never
//! leaves), and says `use` `sig` with the version id as `kid`; errors never show the
//! value; what parses is what the value holds.
#![no_main]

use keyshift::secret::AWSCURRENT;
use keyshift::{SecretValue, VersionId};
use keyshift_client::Version;
use keyshift_client::jwks::{jwks, public_jwk};
use keyshift_client::keys::{signing_key, symmetric_key};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CANARY: &str = "CANARY-private-member-Zq8";
const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const PUBLIC: [&str; 12] = [
    "kty", "crv", "x", "y", "n", "e", "alg", "x5c", "x5t", "x5t#S256", "use", "kid",
];

fn version(text: &str) -> Version {
    Version::new(
        VersionId::new("a0b1c2d3-e4f5-4a6b-8c7d-8e9f0a1b2c3d"),
        [AWSCURRENT],
        SecretValue::new(text),
    )
}

fn check_public(text: &str, planted: bool) {
    let v = version(text);
    match public_jwk(v.id(), v.value()) {
        Ok(jwk) => {
            let obj = jwk.as_object().expect("a JWK is an object");
            assert!(
                obj.keys().all(|k| PUBLIC.contains(&k.as_str())),
                "a non-public member: {obj:?}"
            );
            assert_eq!(obj["use"], "sig");
            assert_eq!(obj["kid"], v.id().as_str());
            let printed = jwk.to_string();
            assert!(!planted || !printed.contains(CANARY), "a private member left");
            let set = jwks([&v]).expect("a publishable value makes a JWKS");
            assert_eq!(set.kids().collect::<Vec<_>>(), vec![v.id().as_str()]);
            assert!(!planted || !set.as_str().contains(CANARY));
        }
        Err(problem) => {
            assert!(!planted || !problem.to_string().contains(CANARY));
            let e = jwks([&v]).expect_err("an unpublishable value makes no JWKS");
            assert!(!planted || !format!("{e} {e:?}").contains(CANARY));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let planted_before = text.contains(CANARY);
    check_public(text, false);
    let v = version(text);
    match signing_key(&v) {
        Ok(key) => {
            assert_eq!(key.kid(), v.id());
            assert!(key.private_key_pem().contains("-----BEGIN PRIVATE KEY-----"));
            assert!(key.public_jwk().is_object());
            assert!(!format!("{key:?}").contains(key.private_key_pem()));
        }
        Err(e) => assert!(planted_before || !e.to_string().contains(CANARY)),
    }
    match symmetric_key(&v) {
        Ok(key) => {
            assert_eq!(key.kid(), v.id());
        }
        Err(e) => assert!(planted_before || !e.to_string().contains(CANARY)),
    }
    // The same value with material planted in every private member, at the top level
    // and in a stock pair's `public_jwk` (a tampered pair must not publish it either).
    if planted_before {
        return;
    }
    if let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(text) {
        for m in PRIVATE {
            obj.insert(m.into(), Value::from(CANARY));
        }
        if let Some(Value::Object(public)) = obj.get_mut("public_jwk") {
            for m in PRIVATE {
                public.insert(m.into(), Value::from(CANARY));
            }
        }
        let planted = Value::Object(obj).to_string();
        check_public(&planted, true);
        if let Err(e) = symmetric_key(&version(&planted)) {
            assert!(!e.to_string().contains(CANARY));
        }
    }
});
