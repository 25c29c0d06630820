//! What consumers do with the generated values, with the libraries they use: every key
//! pair signs a JWT that jsonwebtoken verifies against the stored public JWK (and against
//! no other key), and every symmetric key seals and opens with AES-256-GCM.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyshift_keys::{KeyKind, generate_value};
use proptest::prelude::*;
use serde_json::{Value, json};

fn encoding(kind: KeyKind, value: &Value) -> (Algorithm, EncodingKey) {
    let pem = value["private_key_pem"].as_str().expect("a PEM").as_bytes();
    match kind {
        KeyKind::Ed25519 => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem).expect("Ed25519 PEM"),
        ),
        KeyKind::EcdsaP256 => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem).expect("P-256 PEM"),
        ),
        KeyKind::EcdsaP384 => (
            Algorithm::ES384,
            EncodingKey::from_ec_pem(pem).expect("P-384 PEM"),
        ),
        _ => (Algorithm::RS256, EncodingKey::from_rsa_pem(pem).expect("RSA PEM")),
    }
}

fn verify(token: &str, public: &Value, alg: Algorithm) -> bool {
    let jwk: Jwk = serde_json::from_value(public.clone()).expect("jsonwebtoken reads the public JWK");
    let key = DecodingKey::from_jwk(&jwk).expect("a decoding key");
    let mut validation = Validation::new(alg);
    validation.set_audience(&["consumers"]);
    validation.set_issuer(&["keyshift"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
}

fn sign(kind: KeyKind, value: &Value, sub: &str) -> (Algorithm, String) {
    let (alg, key) = encoding(kind, value);
    assert_eq!(
        value["alg"],
        json!(format!("{alg:?}")),
        "the stored alg is jsonwebtoken's"
    );
    let mut header = Header::new(alg);
    header.kid = Some("c0ffee00-0000-8000-ab73-000000000001".into());
    let claims = json!({"sub": sub, "aud": "consumers", "iss": "keyshift", "exp": 4_102_444_800u64});
    (alg, jsonwebtoken::encode(&header, &claims, &key).expect("signed"))
}

#[test]
fn every_key_pair_signs_a_jwt_its_public_jwk_verifies_and_no_other_does() {
    for kind in KeyKind::ALL.into_iter().filter(|k| k.signing_alg().is_some()) {
        let value = generate_value(kind).expect("generated");
        let other = generate_value(kind).expect("generated");
        let (alg, token) = sign(kind, &value, "alice");
        assert!(verify(&token, &value["public_jwk"], alg), "{}", kind.name());
        assert!(
            !verify(&token, &other["public_jwk"], alg),
            "{}: another key verifies",
            kind.name()
        );
        // The private JWK is a JWK jsonwebtoken reads too (its public members verify).
        assert!(
            verify(&token, &value["private_jwk"], alg),
            "{}: private JWK",
            kind.name()
        );
    }
}

#[test]
fn every_symmetric_key_seals_and_opens_with_aes_256_gcm() {
    let value = generate_value(KeyKind::Symmetric).expect("generated");
    let bytes = URL_SAFE_NO_PAD
        .decode(value["k"].as_str().expect("k"))
        .expect("base64url");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("a 256-bit key"));
    let mut data = b"4111 1111 1111 1111".to_vec();
    let nonce = [3u8; 12];
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"v1"), &mut data)
        .expect("sealed");
    let plain = key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(b"v1"), &mut data)
        .expect("opened");
    assert_eq!(plain, b"4111 1111 1111 1111");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any fresh key of the fast kinds signs any subject verifiably, and a token whose
    /// payload changed by one character never verifies.
    #[test]
    fn fresh_keys_sign_anything_and_reject_tampering(
        kind in prop::sample::select(vec![KeyKind::Ed25519, KeyKind::EcdsaP256, KeyKind::EcdsaP384]),
        sub in "[a-zA-Z0-9 ]{1,40}",
    ) {
        let value = generate_value(kind).expect("generated");
        prop_assert!(keyshift_keys::check(kind, &value).is_ok());
        let (alg, token) = sign(kind, &value, &sub);
        prop_assert!(verify(&token, &value["public_jwk"], alg));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let payload = URL_SAFE_NO_PAD.decode(&parts[1]).expect("payload");
        let mut claims: Value = serde_json::from_slice(&payload).expect("claims");
        claims["sub"] = json!(format!("{sub}!"));
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        prop_assert!(!verify(&parts.join("."), &value["public_jwk"], alg));
    }

    /// Symmetric keys are 32 bytes, and two are never equal.
    #[test]
    fn symmetric_keys_are_32_fresh_bytes(_n in 0u8..8) {
        let a = generate_value(KeyKind::Symmetric).expect("generated");
        let b = generate_value(KeyKind::Symmetric).expect("generated");
        let len = |v: &Value| URL_SAFE_NO_PAD.decode(v["k"].as_str().unwrap_or_default()).map(|k| k.len());
        prop_assert_eq!(len(&a), Ok(32));
        prop_assert_ne!(&a["k"], &b["k"]);
    }
}
