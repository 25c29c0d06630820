//! Key material for the stock kinds, generated with aws-lc-rs (the provider the SDK's TLS
//! already compiles in; the only one of ring and aws-lc-rs that generates RSA keys).
//!
//! Every generated value is JSON, in one of two shapes:
//!
//! - **symmetric**: a JWK `oct` key, `{"kty":"oct","alg":"A256GCM","use":"enc","k":…}`,
//!   32 bytes from the operating system's CSPRNG.
//! - **signing key pairs** (`ed25519`, `ecdsa-p256`, `ecdsa-p384`, `rsa-2048`,
//!   `rsa-3072`, `rsa-4096`):
//!
//!   ```json
//!   {
//!     "kind": "ecdsa-p256",
//!     "alg": "ES256",
//!     "private_jwk": {"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","x":…,"y":…,"d":…},
//!     "private_key_pem": "-----BEGIN PRIVATE KEY-----\n…PKCS#8…\n-----END PRIVATE KEY-----\n",
//!     "public_jwk": {"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","x":…,"y":…}
//!   }
//!   ```
//!
//! **No value carries a `kid`.** keyshift promotes its own copy of the pending value
//! (the repository's docs/protocol.md, section 2), so the version id a value ends up under is not known
//! when it is generated; the consumer library names every key by the id of the version
//! that holds it, which is true in every view and needs no write.

use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::rsa::{self, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm,
    Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// A kind of key keyshift generates itself (every kind but `password`, which Secrets
/// Manager generates, and `json`, which is made of the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// AES-256 key, a JWK `oct`.
    Symmetric,
    /// Ed25519 signing key pair (EdDSA).
    Ed25519,
    /// ECDSA P-256 signing key pair (ES256).
    EcdsaP256,
    /// ECDSA P-384 signing key pair (ES384).
    EcdsaP384,
    /// RSA 2048-bit signing key pair (RS256).
    Rsa2048,
    /// RSA 3072-bit signing key pair (RS256).
    Rsa3072,
    /// RSA 4096-bit signing key pair (RS256).
    Rsa4096,
}

impl KeyKind {
    /// Every key kind, in the order the docs list them.
    pub const ALL: [KeyKind; 7] = [
        KeyKind::Symmetric,
        KeyKind::Ed25519,
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
        KeyKind::Rsa4096,
    ];

    /// The tag value naming this kind.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Symmetric => "symmetric",
            KeyKind::Ed25519 => "ed25519",
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::EcdsaP384 => "ecdsa-p384",
            KeyKind::Rsa2048 => "rsa-2048",
            KeyKind::Rsa3072 => "rsa-3072",
            KeyKind::Rsa4096 => "rsa-4096",
        }
    }

    /// The kind a tag value names.
    pub fn parse(name: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The JWS algorithm a signing key is for (`None` for the symmetric key).
    pub fn signing_alg(self) -> Option<&'static str> {
        match self {
            KeyKind::Symmetric => None,
            KeyKind::Ed25519 => Some("EdDSA"),
            KeyKind::EcdsaP256 => Some("ES256"),
            KeyKind::EcdsaP384 => Some("ES384"),
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => Some("RS256"),
        }
    }
}

/// Why generating or checking key material failed. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The cryptography library failed (no randomness, an internal error).
    #[error("the cryptography library failed to {0}")]
    Crypto(&'static str),
    /// A stored value is not what its kind produces.
    #[error("the value is not a valid {kind} key: {problem}")]
    Invalid {
        /// The kind the value was checked against.
        kind: &'static str,
        /// What is wrong (names a member, never its content).
        problem: &'static str,
    },
}

fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PEM text of a DER document with `label`, 64 characters a line.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Fresh key material of `kind`, as the JSON text to store.
pub fn generate(kind: KeyKind) -> Result<String, KeyError> {
    Ok(generate_value(kind)?.to_string())
}

/// Fresh key material of `kind`, as JSON.
pub fn generate_value(kind: KeyKind) -> Result<Value, KeyError> {
    match kind {
        KeyKind::Symmetric => {
            let mut key = [0u8; 32];
            aws_lc_rs::rand::fill(&mut key).map_err(|_| KeyError::Crypto("draw random bytes"))?;
            let jwk = json!({"kty": "oct", "alg": "A256GCM", "use": "enc", "k": b64u(&key)});
            key.fill(0);
            Ok(jwk)
        }
        KeyKind::Ed25519 => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Crypto("generate an Ed25519 key"))?;
            let seed = pair
                .seed()
                .map_err(|_| KeyError::Crypto("export an Ed25519 seed"))?;
            let seed = seed
                .as_be_bytes()
                .map_err(|_| KeyError::Crypto("export an Ed25519 seed"))?;
            let pkcs8 = pair
                .to_pkcs8v1()
                .map_err(|_| KeyError::Crypto("encode an Ed25519 key"))?;
            let public = json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "x": b64u(pair.public_key().as_ref()),
            });
            Ok(pair_value(
                kind,
                public,
                &[("d", b64u(seed.as_ref()))],
                pkcs8.as_ref(),
            ))
        }
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => {
            let (alg, crv, width): (&'static EcdsaSigningAlgorithm, _, _) = match kind {
                KeyKind::EcdsaP256 => (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
                _ => (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
            };
            let pair = EcdsaKeyPair::generate(alg).map_err(|_| KeyError::Crypto("generate an ECDSA key"))?;
            let pkcs8 = pair
                .to_pkcs8v1()
                .map_err(|_| KeyError::Crypto("encode an ECDSA key"))?;
            let d = pair
                .private_key()
                .as_be_bytes()
                .map_err(|_| KeyError::Crypto("export an ECDSA key"))?;
            // The uncompressed point: 0x04 || X || Y.
            let point = pair.public_key().as_ref();
            if point.len() != 1 + 2 * width || point[0] != 4 {
                return Err(KeyError::Crypto("export an ECDSA public key"));
            }
            let public = json!({
                "kty": "EC", "crv": crv, "alg": kind.signing_alg(), "use": "sig",
                "x": b64u(&point[1..=width]),
                "y": b64u(&point[1 + width..]),
            });
            Ok(pair_value(
                kind,
                public,
                &[("d", b64u(d.as_ref()))],
                pkcs8.as_ref(),
            ))
        }
        KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => {
            let size = match kind {
                KeyKind::Rsa2048 => KeySize::Rsa2048,
                KeyKind::Rsa3072 => KeySize::Rsa3072,
                _ => KeySize::Rsa4096,
            };
            let pair = rsa::KeyPair::generate(size).map_err(|_| KeyError::Crypto("generate an RSA key"))?;
            let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                .map_err(|_| KeyError::Crypto("encode an RSA key"))?;
            let parts =
                der::rsa_private_key(pkcs8.as_ref()).ok_or(KeyError::Crypto("read back an RSA key"))?;
            let public = json!({
                "kty": "RSA", "alg": "RS256", "use": "sig",
                "n": b64u(parts[0]), "e": b64u(parts[1]),
            });
            let private: Vec<(&str, String)> = ["d", "p", "q", "dp", "dq", "qi"]
                .into_iter()
                .zip(&parts[2..])
                .map(|(m, v)| (m, b64u(v)))
                .collect();
            Ok(pair_value(kind, public, &private, pkcs8.as_ref()))
        }
    }
}

/// The stored shape of a signing key pair.
fn pair_value(kind: KeyKind, public: Value, private_members: &[(&str, String)], pkcs8: &[u8]) -> Value {
    let mut private = public.clone();
    if let Value::Object(map) = &mut private {
        for (m, v) in private_members {
            map.insert((*m).to_owned(), Value::from(v.as_str()));
        }
    }
    json!({
        "kind": kind.name(),
        "alg": kind.signing_alg(),
        "private_jwk": private,
        "private_key_pem": pem("PRIVATE KEY", pkcs8),
        "public_jwk": public,
    })
}

/// Checks that `value` is a working key of `kind`: the right shape and sizes, and for a
/// key pair, a PKCS#8 key that the cryptography library accepts, whose public half is
/// the stored public JWK and that signs what the public key verifies.
pub fn check(kind: KeyKind, value: &Value) -> Result<(), KeyError> {
    let invalid = |problem| KeyError::Invalid {
        kind: kind.name(),
        problem,
    };
    fn text<'v>(v: &'v Value, m: &'static str, kind: KeyKind) -> Result<&'v str, KeyError> {
        v.get(m).and_then(Value::as_str).ok_or(KeyError::Invalid {
            kind: kind.name(),
            problem: m,
        })
    }
    let bytes = |v: &Value, m: &'static str| -> Result<Vec<u8>, KeyError> {
        URL_SAFE_NO_PAD.decode(text(v, m, kind)?).map_err(|_| invalid(m))
    };
    if kind == KeyKind::Symmetric {
        if text(value, "kty", kind)? != "oct" {
            return Err(invalid("kty"));
        }
        return match bytes(value, "k")?.len() {
            32 => Ok(()),
            _ => Err(invalid("k must be 32 bytes")),
        };
    }
    let public = value.get("public_jwk").ok_or(invalid("public_jwk"))?;
    let private = value.get("private_jwk").ok_or(invalid("private_jwk"))?;
    let pem_text = text(value, "private_key_pem", kind)?;
    let der = pem_body(pem_text, "PRIVATE KEY").ok_or(invalid("private_key_pem"))?;
    for m in ["d", "p", "q", "dp", "dq", "qi"] {
        if public.get(m).is_some() {
            return Err(invalid("public_jwk holds a private member"));
        }
    }
    const MESSAGE: &[u8] = b"keyshift key check";
    use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
    match kind {
        KeyKind::Symmetric => unreachable!("handled above"),
        KeyKind::Ed25519 => {
            let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| invalid("private_key_pem"))?;
            if bytes(public, "x")? != pair.public_key().as_ref()
                || bytes(private, "x")? != bytes(public, "x")?
            {
                return Err(invalid("x"));
            }
            let seed = pair.seed().map_err(|_| invalid("private_key_pem"))?;
            let seed = seed.as_be_bytes().map_err(|_| invalid("private_key_pem"))?;
            if bytes(private, "d")? != seed.as_ref() {
                return Err(invalid("d"));
            }
            let signature = pair.sign(MESSAGE);
            UnparsedPublicKey::new(&sig::ED25519, bytes(public, "x")?)
                .verify(MESSAGE, signature.as_ref())
                .map_err(|_| invalid("the key pair does not verify its own signature"))
        }
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => {
            let (alg, verify, crv): (_, &'static sig::EcdsaVerificationAlgorithm, _) = match kind {
                KeyKind::EcdsaP256 => (
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &sig::ECDSA_P256_SHA256_FIXED,
                    "P-256",
                ),
                _ => (
                    &ECDSA_P384_SHA384_FIXED_SIGNING,
                    &sig::ECDSA_P384_SHA384_FIXED,
                    "P-384",
                ),
            };
            if text(public, "crv", kind)? != crv {
                return Err(invalid("crv"));
            }
            let pair = EcdsaKeyPair::from_pkcs8(alg, &der).map_err(|_| invalid("private_key_pem"))?;
            let mut point = vec![4u8];
            point.extend(bytes(public, "x")?);
            point.extend(bytes(public, "y")?);
            if point != pair.public_key().as_ref() {
                return Err(invalid("x and y"));
            }
            let d = pair
                .private_key()
                .as_be_bytes()
                .map_err(|_| invalid("private_key_pem"))?;
            if bytes(private, "d")? != d.as_ref() {
                return Err(invalid("d"));
            }
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let signature = pair.sign(&rng, MESSAGE).map_err(|_| KeyError::Crypto("sign"))?;
            UnparsedPublicKey::new(verify, point)
                .verify(MESSAGE, signature.as_ref())
                .map_err(|_| invalid("the key pair does not verify its own signature"))
        }
        KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => {
            let bits = match kind {
                KeyKind::Rsa2048 => 2048,
                KeyKind::Rsa3072 => 3072,
                _ => 4096,
            };
            let pair = rsa::KeyPair::from_pkcs8(&der).map_err(|_| invalid("private_key_pem"))?;
            if pair.public_modulus_len() * 8 != bits {
                return Err(invalid("modulus size"));
            }
            let parts = der::rsa_private_key(&der).ok_or(invalid("private_key_pem"))?;
            for (m, v) in ["n", "e"].into_iter().zip(&parts) {
                if bytes(public, m)? != *v || bytes(private, m)? != *v {
                    return Err(invalid("n or e"));
                }
            }
            for (m, v) in ["d", "p", "q", "dp", "dq", "qi"].into_iter().zip(&parts[2..]) {
                if bytes(private, m)? != *v {
                    return Err(invalid("a private member"));
                }
            }
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let mut signature = vec![0u8; pair.public_modulus_len()];
            pair.sign(&sig::RSA_PKCS1_SHA256, &rng, MESSAGE, &mut signature)
                .map_err(|_| KeyError::Crypto("sign"))?;
            sig::RsaPublicKeyComponents {
                n: parts[0],
                e: parts[1],
            }
            .verify(&sig::RSA_PKCS1_2048_8192_SHA256, MESSAGE, &signature)
            .map_err(|_| invalid("the key pair does not verify its own signature"))
        }
    }
}

/// The DER body of a PEM document labelled `label`.
pub fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).ok()
}

/// Just enough DER to read an RSA private key's integers out of PKCS#8 (public for the
/// fuzz target: it reads what a stored value holds).
pub mod der {
    /// One TLV: (tag, contents, rest).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 3 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    /// An INTEGER's magnitude without the sign byte DER adds before a high bit.
    fn unsigned(bytes: &[u8]) -> &[u8] {
        match bytes {
            [0, rest @ ..] if !rest.is_empty() => rest,
            _ => bytes,
        }
    }

    /// `[n, e, d, p, q, dp, dq, qi]` of a PKCS#8 RSA private key.
    pub fn rsa_private_key(pkcs8: &[u8]) -> Option<[&[u8]; 8]> {
        const SEQUENCE: u8 = 0x30;
        const INTEGER: u8 = 0x02;
        const OCTET_STRING: u8 = 0x04;
        let (SEQUENCE, info, _) = tlv(pkcs8)? else {
            return None;
        };
        let (INTEGER, _, rest) = tlv(info)? else {
            return None;
        };
        let (SEQUENCE, _, rest) = tlv(rest)? else {
            return None;
        };
        let (OCTET_STRING, key, _) = tlv(rest)? else {
            return None;
        };
        let (SEQUENCE, mut fields, _) = tlv(key)? else {
            return None;
        };
        let (INTEGER, _, rest) = tlv(fields)? else {
            return None;
        };
        fields = rest;
        let mut out = [&[][..]; 8];
        for slot in &mut out {
            let (INTEGER, value, rest) = tlv(fields)? else {
                return None;
            };
            *slot = unsigned(value);
            fields = rest;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_generates_a_key_that_checks() {
        for kind in KeyKind::ALL {
            let value = generate_value(kind).expect("generated");
            check(kind, &value).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
            assert!(value.get("kid").is_none() && value["private_jwk"].get("kid").is_none());
        }
    }

    #[test]
    fn sizes_are_right() {
        let k = generate_value(KeyKind::Symmetric).expect("generated");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(k["k"].as_str().unwrap_or_default())
                .map(|b| b.len()),
            Ok(32)
        );
        let len = |v: &Value, m: &str| {
            URL_SAFE_NO_PAD
                .decode(v[m].as_str().unwrap_or_default())
                .map(|b| b.len())
        };
        let ed = generate_value(KeyKind::Ed25519).expect("generated");
        assert_eq!(len(&ed["private_jwk"], "d"), Ok(32));
        assert_eq!(len(&ed["public_jwk"], "x"), Ok(32));
        for (kind, width) in [(KeyKind::EcdsaP256, 32), (KeyKind::EcdsaP384, 48)] {
            let v = generate_value(kind).expect("generated");
            for m in ["x", "y"] {
                assert_eq!(len(&v["public_jwk"], m), Ok(width), "{} {m}", kind.name());
            }
            assert_eq!(len(&v["private_jwk"], "d"), Ok(width));
        }
        let rsa = generate_value(KeyKind::Rsa2048).expect("generated");
        assert_eq!(len(&rsa["public_jwk"], "n"), Ok(256));
        assert_eq!(rsa["public_jwk"]["e"], "AQAB");
    }

    #[test]
    fn two_keys_differ() {
        for kind in [KeyKind::Symmetric, KeyKind::Ed25519, KeyKind::EcdsaP256] {
            assert_ne!(generate(kind).ok(), generate(kind).ok(), "{}", kind.name());
        }
    }

    #[test]
    fn a_tampered_key_does_not_check() {
        let mut v = generate_value(KeyKind::EcdsaP256).expect("generated");
        let other = generate_value(KeyKind::EcdsaP256).expect("generated");
        v["public_jwk"]["x"] = other["public_jwk"]["x"].clone();
        assert!(check(KeyKind::EcdsaP256, &v).is_err());
        let mut v = generate_value(KeyKind::Ed25519).expect("generated");
        v["public_jwk"]["d"] = v["private_jwk"]["d"].clone();
        assert!(matches!(
            check(KeyKind::Ed25519, &v),
            Err(KeyError::Invalid { .. })
        ));
        // A key of another kind.
        let v = generate_value(KeyKind::EcdsaP384).expect("generated");
        assert!(check(KeyKind::EcdsaP256, &v).is_err());
        assert!(check(KeyKind::Symmetric, &json!({"kty":"oct","k":"AAAA"})).is_err());
    }

    #[test]
    fn errors_never_carry_material() {
        let v = generate_value(KeyKind::Ed25519).expect("generated");
        let mut broken = v.clone();
        broken["private_jwk"]["d"] = Value::from("AAAA");
        let e = check(KeyKind::Ed25519, &broken)
            .expect_err("d is wrong")
            .to_string();
        for m in ["d", "x"] {
            let secret = v["private_jwk"][m].as_str().unwrap_or_default();
            assert!(!e.contains(secret), "{e}");
        }
    }
}
