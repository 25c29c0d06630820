//! JWTs with `jsonwebtoken` (on aws-lc-rs): signed with a keyshift signing key pair,
//! verified against the JWKS of the accepted versions.
//!
//! * **Sign** with [`sign`]: the key is
//!   [`Version::signing_key`](keyshift_client::Version::signing_key) of AWSCURRENT; the
//!   header's `kid` is its version id and `alg` the key's (`EdDSA`, `ES256`, `ES384`,
//!   `RS256`); the PKCS#8 PEM goes to `EncodingKey::from_ed_pem`, `from_ec_pem` or
//!   `from_rsa_pem`.
//! * **Verify** with [`verify`]: the header's `kid` picks the key in the JWKS
//!   ([`keyshift_client::WindowCache::jwks`] parsed as a [`JwkSet`]); the algorithm is
//!   pinned to that JWK's `alg` (a header that names another algorithm is refused, so
//!   the header's `alg` is never trusted alone); `exp`, `iss` and `aud` are required
//!   and checked.
//!
//! The kid is always a version id, never stored in the value: keyshift promotes its own
//! copy of a pending value under a new version id, so only the version id names the key
//! in every view. Errors name at most the `kid` (a version id, not secret), never a
//! token or key material.

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyshift_client::SigningKey;
use serde::Serialize;
use serde_json::{Map, Value};

/// Why a token could not be signed. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key's `alg` is not an asymmetric JWS algorithm this module signs with.
    #[error("key {kid}: unsupported signing algorithm {alg}")]
    UnsupportedAlgorithm {
        /// The key's version id.
        kid: String,
        /// The algorithm it names.
        alg: String,
    },
    /// The PEM did not load as a key of its algorithm.
    #[error("key {kid}: the private key does not load as an {alg} key")]
    BadKey {
        /// The key's version id.
        kid: String,
        /// Its algorithm.
        alg: String,
    },
    /// Signing failed in the crypto provider, or the claims do not serialize.
    #[error("key {kid}: signing failed")]
    Signing {
        /// The key's version id.
        kid: String,
    },
}

/// Why a token was refused. Names the `kid` only when the token's header carried a
/// plausible version id; never the token, its claims or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS with a JSON header (or an `alg` this library does not know,
    /// such as `none`).
    #[error("malformed token")]
    Malformed,
    /// The header has no `kid`.
    #[error("the token has no kid")]
    NoKid,
    /// The `kid` cannot be a version id (1 to 64 printable ASCII characters).
    #[error("the token's kid is not a version id")]
    BadKid,
    /// No accepted key has this kid (after one refresh-on-miss, when a service asks).
    #[error("unknown key {kid}: no accepted version has this id")]
    UnknownKey {
        /// The kid.
        kid: String,
    },
    /// The JWK has no `alg` (or a symmetric or unsupported one): there is nothing to pin
    /// the algorithm to, so it is refused rather than taken from the token.
    #[error("key {kid} names no usable signing algorithm")]
    UnusableKey {
        /// The kid.
        kid: String,
    },
    /// The header's `alg` is not the key's.
    #[error("key {kid} is for {expected:?}, the token says {got:?}")]
    AlgorithmMismatch {
        /// The kid.
        kid: String,
        /// The key's algorithm.
        expected: Algorithm,
        /// The header's.
        got: Algorithm,
    },
    /// The signature does not verify under the key the kid names.
    #[error("bad signature for key {kid}: the token was altered or not signed by this key")]
    BadSignature {
        /// The kid.
        kid: String,
    },
    /// `exp` is past (beyond the leeway).
    #[error("the token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` is not this service.
    #[error("the token is for another audience")]
    WrongAudience,
    /// `iss` is not the expected issuer.
    #[error("the token is from another issuer")]
    WrongIssuer,
    /// A required claim (`exp`, `iss`, `aud`) is missing.
    #[error("the token has no {0} claim")]
    MissingClaim(String),
    /// A claim has the wrong type (say, a string `exp`).
    #[error("the token's {0} claim is malformed")]
    BadClaim(String),
    /// Any other failure of the library (described by kind, without content).
    #[error("the token did not verify: {0}")]
    Other(&'static str),
}

/// What a verifier expects of every token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The only accepted `iss`.
    pub issuer: String,
    /// The `aud` this verifier is (a token's `aud` must contain it).
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

/// A verified token: the key that signed it and its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The version id of the key that verified it.
    pub kid: String,
    /// The algorithm, the key's.
    pub alg: Algorithm,
    /// Every claim, validated (`exp`, `iss`, `aud`) and the rest as signed.
    pub claims: Map<String, Value>,
}

/// The algorithms tokens are signed and verified with: asymmetric only, so a public
/// JWK can never be used as an HMAC secret.
fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Signs `claims` with `key`: header `alg` = the key's, `kid` = its version id, `typ` =
/// `JWT`. The caller sets `iss`, `aud` and `exp`.
pub fn sign<C: Serialize>(key: &SigningKey, claims: &C) -> Result<String, SignError> {
    let kid = key.kid().to_string();
    let alg: Algorithm =
        key.alg()
            .parse()
            .ok()
            .filter(|a| asymmetric(*a))
            .ok_or_else(|| SignError::UnsupportedAlgorithm {
                kid: kid.clone(),
                alg: key.alg().to_owned(),
            })?;
    let pem = key.private_key_pem().as_bytes();
    let encoding = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
    .map_err(|_| SignError::BadKey {
        kid: kid.clone(),
        alg: key.alg().to_owned(),
    })?;
    let mut header = Header::new(alg);
    header.kid = Some(kid.clone());
    jsonwebtoken::encode(&header, claims, &encoding).map_err(|_| SignError::Signing { kid })
}

/// The `kid` in a token's header, unverified (to look the key up). Refuses a missing
/// kid and one that cannot be a version id.
pub fn kid(token: &str) -> Result<String, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    let kid = header.kid.ok_or(VerifyError::NoKid)?;
    if !(1..=64).contains(&kid.len()) || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(VerifyError::BadKid);
    }
    Ok(kid)
}

/// The keys of a JWKS document (`{"keys":[...]}`) that `jsonwebtoken` can read; a key
/// it cannot read is left out (and so refused by kid), the others still verify.
pub fn jwk_set(jwks: &Value) -> JwkSet {
    let keys = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| match serde_json::from_value::<Jwk>(k.clone()) {
            Ok(jwk) => Some(jwk),
            Err(_) => {
                tracing::warn!(
                    kid = k["kid"].as_str(),
                    "a JWK of the set does not parse; left out"
                );
                None
            }
        })
        .collect();
    JwkSet { keys }
}

/// Verifies `token` against `jwks`: the key is the one whose `kid` is the header's,
/// the algorithm is that key's `alg`, and `exp`, `iss` and `aud` are required and
/// checked against `expect`.
pub fn verify(token: &str, jwks: &JwkSet, expect: &Expect) -> Result<Verified, VerifyError> {
    let kid = kid(token)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| VerifyError::UnknownKey { kid: kid.clone() })?;
    let unusable = || VerifyError::UnusableKey { kid: kid.clone() };
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err(unusable());
    }
    let alg = jwk
        .common
        .key_algorithm
        .and_then(|a| Algorithm::try_from(a).ok())
        .filter(|a| asymmetric(*a))
        .ok_or_else(unusable)?;
    if header.alg != alg {
        return Err(VerifyError::AlgorithmMismatch {
            kid,
            expected: alg,
            got: header.alg,
        });
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| unusable())?;

    let mut validation = Validation::new(alg);
    validation.required_spec_claims = ["exp", "iss", "aud"]
        .map(str::to_owned)
        .into_iter()
        .collect::<HashSet<_>>();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.leeway = expect.leeway.as_secs();
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);

    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
        match e.into_kind() {
            ErrorKind::InvalidSignature => VerifyError::BadSignature { kid: kid.clone() },
            ErrorKind::ExpiredSignature => VerifyError::Expired,
            ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
            ErrorKind::InvalidAudience => VerifyError::WrongAudience,
            ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
            ErrorKind::MissingRequiredClaim(c) => VerifyError::MissingClaim(c),
            ErrorKind::InvalidClaimFormat(c) => VerifyError::BadClaim(c),
            ErrorKind::InvalidAlgorithm => VerifyError::AlgorithmMismatch {
                kid: kid.clone(),
                expected: alg,
                got: header.alg,
            },
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                VerifyError::Malformed
            }
            ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey | ErrorKind::InvalidRsaKey(_) => {
                VerifyError::UnusableKey { kid: kid.clone() }
            }
            _ => VerifyError::Other("the crypto provider refused the token"),
        }
    })?;
    Ok(Verified {
        kid,
        alg,
        claims: data.claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_crypto_provider_is_compiled_in_and_needs_no_install() {
        // Exactly one of jsonwebtoken's `aws_lc_rs` and `rust_crypto` features: with
        // both (or neither) nothing is chosen and every sign and verify would panic.
        assert!(jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some());
    }

    #[test]
    fn a_kid_must_be_present_and_plausible() {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let token = |header: Value| format!("{}.{}.sig", b64(header), b64(serde_json::json!({})));
        assert_eq!(
            kid(&token(serde_json::json!({"alg": "EdDSA"}))),
            Err(VerifyError::NoKid)
        );
        assert_eq!(
            kid(&token(serde_json::json!({"alg": "EdDSA", "kid": "a b"}))),
            Err(VerifyError::BadKid)
        );
        assert_eq!(
            kid(&token(serde_json::json!({"alg": "EdDSA", "kid": "x".repeat(65)}))),
            Err(VerifyError::BadKid)
        );
        assert_eq!(
            kid(&token(serde_json::json!({"alg": "none", "kid": "v1"}))),
            Err(VerifyError::Malformed)
        );
        assert_eq!(kid("not a token"), Err(VerifyError::Malformed));
        assert_eq!(
            kid(&token(serde_json::json!({"alg": "ES256", "kid": "v1"}))).as_deref(),
            Ok("v1")
        );
    }
}
