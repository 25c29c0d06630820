//! Compact JWS tokens (RFC 7515) signed with EdDSA (Ed25519, RFC 8037).
//!
//! The protected header names the key: `{"alg":"EdDSA","kid":"<version id>"}`. A
//! verifier looks the `kid` up in a JWKS, never anywhere else (no `jku`, no embedded
//! key), so only keys in the window it was given can verify.
//!
//! Claims are passed through as JSON; checking `exp`, `aud` and the like is the
//! caller's business and outside this example.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::keys::{SigningKey, VerifyingKey};

/// Why a token did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not three base64url parts, or a part that does not decode.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header asks for an algorithm other than EdDSA.
    #[error("unsupported algorithm {0:?} (only EdDSA is accepted)")]
    Algorithm(String),
    /// The `kid` is not among the accepted keys: never issued, or its version left the
    /// window (no longer AWSCURRENT, AWSPENDING or ROTATING).
    #[error("key {kid} is not an accepted key")]
    UnknownKey {
        /// The key id (a version id) the token names.
        kid: String,
    },
    /// The accepted key with this `kid` did not sign these bytes: the token was
    /// altered, or signed by someone else.
    #[error("bad signature for key {kid}: the token was altered or not signed by this key")]
    BadSignature {
        /// The key id the token names.
        kid: String,
    },
}

/// Signs `claims` with `key`, naming `kid` (the key's version id) in the header.
pub fn sign(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(signature))
}

/// The `kid` a token names, without verifying anything.
pub fn kid(token: &str) -> Result<String, VerifyError> {
    let (header, _, _) = split(token)?;
    header_kid(&header)
}

/// Verifies `token` against the keys of `jwks` (`{"keys":[{"kid":..,"kty":"OKP",..}]}`)
/// and returns its claims.
pub fn verify(token: &str, jwks: &Value) -> Result<Value, VerifyError> {
    let (header, claims, signature) = split(token)?;
    match header.get("alg").and_then(Value::as_str) {
        Some("EdDSA") => {}
        other => return Err(VerifyError::Algorithm(other.unwrap_or("<none>").to_owned())),
    }
    let kid = header_kid(&header)?;
    let key = jwks
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
        .and_then(|jwk| VerifyingKey::from_jwk(jwk).ok())
        .ok_or_else(|| VerifyError::UnknownKey { kid: kid.clone() })?;
    let signing_input = &token[..token.rfind('.').unwrap_or(0)];
    if key.verify(signing_input.as_bytes(), &signature) {
        Ok(claims)
    } else {
        Err(VerifyError::BadSignature { kid })
    }
}

/// The decoded header, claims and signature.
fn split(token: &str) -> Result<(Value, Value, Vec<u8>), VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(VerifyError::Malformed("a compact JWS has exactly three parts"));
    };
    let json = |part: &str, what: &'static str| -> Result<Value, VerifyError> {
        let raw = B64.decode(part).map_err(|_| VerifyError::Malformed(what))?;
        serde_json::from_slice(&raw).map_err(|_| VerifyError::Malformed(what))
    };
    let header = json(h, "the header is not base64url JSON")?;
    let claims = json(c, "the claims are not base64url JSON")?;
    let signature = B64
        .decode(s)
        .map_err(|_| VerifyError::Malformed("the signature is not base64url"))?;
    Ok((header, claims, signature))
}

fn header_kid(header: &Value) -> Result<String, VerifyError> {
    header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(VerifyError::Malformed("the header has no kid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyError;

    fn jwks(entries: &[(&str, &SigningKey)]) -> Value {
        let keys: Vec<Value> = entries
            .iter()
            .map(|(kid, key)| {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": B64.encode(key.public_key())})
            })
            .collect();
        json!({ "keys": keys })
    }

    #[test]
    fn a_token_verifies_only_with_its_kid_in_the_set() -> Result<(), KeyError> {
        let (k1, k2) = (SigningKey::generate()?, SigningKey::generate()?);
        let token = sign(&k1, "v1", &json!({"sub": "alice"}));
        assert_eq!(kid(&token), Ok("v1".to_owned()));
        assert_eq!(
            verify(&token, &jwks(&[("v1", &k1), ("v2", &k2)])),
            Ok(json!({"sub": "alice"}))
        );
        assert_eq!(
            verify(&token, &jwks(&[("v2", &k2)])),
            Err(VerifyError::UnknownKey { kid: "v1".into() })
        );
        // The right kid on the wrong key: a forged header.
        assert_eq!(
            verify(&token, &jwks(&[("v1", &k2)])),
            Err(VerifyError::BadSignature { kid: "v1".into() })
        );
        Ok(())
    }

    #[test]
    fn altered_or_malformed_tokens_fail_clearly() -> Result<(), KeyError> {
        let k1 = SigningKey::generate()?;
        let set = jwks(&[("v1", &k1)]);
        let token = sign(&k1, "v1", &json!({"sub": "alice"}));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], B64.encode("{\"sub\":\"root\"}"), parts[2]);
        assert_eq!(
            verify(&forged, &set),
            Err(VerifyError::BadSignature { kid: "v1".into() })
        );
        assert!(matches!(verify("a.b", &set), Err(VerifyError::Malformed(_))));
        let none = format!(
            "{}.{}.",
            B64.encode("{\"alg\":\"none\",\"kid\":\"v1\"}"),
            parts[1]
        );
        assert_eq!(verify(&none, &set), Err(VerifyError::Algorithm("none".into())));
        Ok(())
    }
}
