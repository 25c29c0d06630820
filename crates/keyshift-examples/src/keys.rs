//! Key material as it is stored in a secret's value: a private JWK.
//!
//! - A signing key is an Ed25519 JWK (RFC 8037):
//!   `{"kty":"OKP","crv":"Ed25519","d":"<seed>","x":"<public key>"}`, base64url without
//!   padding. The client's JWKS strips `d` and sets `kid` to the version id.
//! - A data key is a symmetric JWK (RFC 7518 section 6.4): `{"kty":"oct","k":"<32 bytes>"}`.
//!
//! Both are generated from the operating system's random source, never from
//! `GetRandomPassword` text. Neither type prints its secret half in `Debug`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

/// Why a secret value is not the key it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The value is not a JSON object.
    #[error("the secret value is not a JWK (not a JSON object)")]
    NotJson,
    /// A member is missing or has the wrong type or value.
    #[error("the JWK's `{member}` member is missing or wrong: {expected}")]
    Member {
        /// The JWK member.
        member: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// The seed and public key do not belong together.
    #[error("the Ed25519 JWK's `x` does not match its `d`")]
    Inconsistent,
    /// The operating system's random source failed.
    #[error("no randomness available to generate a key")]
    Random,
}

/// An Ed25519 signing key pair.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    seed: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("x", &B64.encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key pair.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let seed: [u8; 32] = random()?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::Random)?;
        Ok(SigningKey { pair, seed })
    }

    /// Parses a private Ed25519 JWK, checking that `x` belongs to `d`.
    pub fn from_jwk(text: &str) -> Result<SigningKey, KeyError> {
        let jwk: Value = serde_json::from_str(text).map_err(|_| KeyError::NotJson)?;
        expect(&jwk, "kty", "OKP")?;
        expect(&jwk, "crv", "Ed25519")?;
        let seed: [u8; 32] = bytes(&jwk, "d")?;
        let public: [u8; 32] = bytes(&jwk, "x")?;
        let pair =
            Ed25519KeyPair::from_seed_and_public_key(&seed, &public).map_err(|_| KeyError::Inconsistent)?;
        Ok(SigningKey { pair, seed })
    }

    /// The private JWK: what goes into the secret's value.
    pub fn to_jwk(&self) -> String {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "d": B64.encode(self.seed),
            "x": B64.encode(self.public_key()),
        })
        .to_string()
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// An Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// An Ed25519 public key read from a public JWK (a JWKS entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    public: [u8; 32],
}

impl VerifyingKey {
    /// Reads `{"kty":"OKP","crv":"Ed25519","x":...}`; other members are ignored.
    pub fn from_jwk(jwk: &Value) -> Result<VerifyingKey, KeyError> {
        expect(jwk, "kty", "OKP")?;
        expect(jwk, "crv", "Ed25519")?;
        Ok(VerifyingKey {
            public: bytes(jwk, "x")?,
        })
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.public)
            .verify(message, signature)
            .is_ok()
    }
}

/// An AES-256 data key.
#[derive(Clone)]
pub struct DataKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A fresh key.
    pub fn generate() -> Result<DataKey, KeyError> {
        Ok(DataKey { bytes: random()? })
    }

    /// Parses `{"kty":"oct","k":...}` with a 32-byte `k`.
    pub fn from_jwk(text: &str) -> Result<DataKey, KeyError> {
        let jwk: Value = serde_json::from_str(text).map_err(|_| KeyError::NotJson)?;
        expect(&jwk, "kty", "oct")?;
        Ok(DataKey {
            bytes: bytes(&jwk, "k")?,
        })
    }

    /// The JWK: what goes into the secret's value.
    pub fn to_jwk(&self) -> String {
        json!({"kty": "oct", "k": B64.encode(self.bytes)}).to_string()
    }

    /// The raw key, for the AEAD.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.bytes
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| KeyError::Random)?;
    Ok(out)
}

fn expect(jwk: &Value, member: &'static str, value: &'static str) -> Result<(), KeyError> {
    if jwk.get(member).and_then(Value::as_str) == Some(value) {
        Ok(())
    } else {
        Err(KeyError::Member {
            member,
            expected: value,
        })
    }
}

fn bytes<const N: usize>(jwk: &Value, member: &'static str) -> Result<[u8; N], KeyError> {
    let wrong = KeyError::Member {
        member,
        expected: "32 bytes, base64url without padding",
    };
    let text = jwk.get(member).and_then(Value::as_str).ok_or(wrong.clone())?;
    let raw = B64.decode(text).map_err(|_| wrong.clone())?;
    raw.try_into().map_err(|_| wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_round_trips_through_its_jwk() -> Result<(), KeyError> {
        let key = SigningKey::generate()?;
        let again = SigningKey::from_jwk(&key.to_jwk())?;
        assert_eq!(key.public_key(), again.public_key());
        let public: Value = serde_json::from_str(&key.to_jwk()).map_err(|_| KeyError::NotJson)?;
        let verifier = VerifyingKey::from_jwk(&public)?;
        assert!(verifier.verify(b"m", &again.sign(b"m")));
        assert!(!verifier.verify(b"n", &again.sign(b"m")));
        Ok(())
    }

    #[test]
    fn a_mismatched_public_half_is_refused() -> Result<(), KeyError> {
        let (a, b) = (SigningKey::generate()?, SigningKey::generate()?);
        let mut jwk: Value = serde_json::from_str(&a.to_jwk()).map_err(|_| KeyError::NotJson)?;
        jwk["x"] = json!(B64.encode(b.public_key()));
        assert_eq!(
            SigningKey::from_jwk(&jwk.to_string()).err(),
            Some(KeyError::Inconsistent)
        );
        Ok(())
    }

    #[test]
    fn data_key_round_trips_and_debug_hides_it() -> Result<(), KeyError> {
        let key = DataKey::generate()?;
        assert_eq!(DataKey::from_jwk(&key.to_jwk())?.expose(), key.expose());
        assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
        assert!(matches!(
            DataKey::from_jwk("{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}"),
            Err(KeyError::Member { member: "k", .. })
        ));
        Ok(())
    }
}
