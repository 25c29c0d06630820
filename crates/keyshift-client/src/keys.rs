//! The values keyshift's stock kinds store, read for use. No cryptography happens here:
//! hand the results to `jsonwebtoken`, an AEAD, or any library that takes PEM or raw
//! bytes.
//!
//! * A **signing key pair** (`ed25519`, `ecdsa-p256`, `ecdsa-p384`, `rsa-2048`,
//!   `rsa-3072`, `rsa-4096`) is stored as
//!   `{"kind","alg","private_jwk","private_key_pem","public_jwk"}`; [`signing_key`]
//!   gives a signer the algorithm, the PKCS#8 PEM and the `kid`.
//! * A **symmetric key** (`symmetric`) is a JWK `oct` with 32 bytes in `k`;
//!   [`symmetric_key`] gives the bytes and the `kid`.
//!
//! **The `kid` is always the id of the version that holds the value**, computed here and
//! never stored. keyshift promotes its own copy of a pending value (the same bytes under a
//! new version id), so a stored kid could not name the version consumers find it under;
//! the version id always does, in every view: a signer signs with AWSCURRENT and puts
//! its id in the token, and every verifier has accepted that version id for at least T.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyshift::VersionId;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::view::Version;

/// Why a value is not the key asked for. Never names the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// Not a JSON object.
    NotJsonObject,
    /// A member is missing or not a string.
    Missing(&'static str),
    /// A member is not valid base64url, or has the wrong size.
    Malformed(&'static str),
    /// The JWK is not `kty` `oct` (a symmetric key was asked for).
    NotSymmetric,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::NotJsonObject => f.write_str("the value is not a JSON object"),
            KeyProblem::Missing(m) => write!(f, "the member {m} is missing"),
            KeyProblem::Malformed(m) => write!(f, "the member {m} is malformed"),
            KeyProblem::NotSymmetric => f.write_str("the value is not a symmetric (oct) JWK"),
        }
    }
}

impl std::error::Error for KeyProblem {}

/// A signer's view of a signing key pair version. `Debug` shows no key material.
#[derive(Clone)]
pub struct SigningKey {
    kid: VersionId,
    alg: String,
    pem: Zeroizing<String>,
    public_jwk: Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The key id to put in a token's header: the version id.
    pub fn kid(&self) -> &VersionId {
        &self.kid
    }

    /// The JWS algorithm (`EdDSA`, `ES256`, `ES384`, `RS256`).
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// The private key, PKCS#8 in PEM (what `jsonwebtoken::EncodingKey::from_ed_pem`,
    /// `from_ec_pem` and `from_rsa_pem` take). Secret: never log it.
    pub fn private_key_pem(&self) -> &str {
        &self.pem
    }

    /// The public JWK as stored (no `kid`; [`crate::jwks`] adds it).
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }
}

/// A symmetric key version: 32 bytes and the kid that names them. `Debug` shows no key
/// material, and the bytes are zeroed on drop.
#[derive(Clone)]
pub struct SymmetricKey {
    kid: VersionId,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymmetricKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SymmetricKey {
    /// The key id to carry with a ciphertext: the version id.
    pub fn kid(&self) -> &VersionId {
        &self.kid
    }

    /// The 256-bit key (for AES-256-GCM). Secret: never log it.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

fn object(version: &Version) -> Result<serde_json::Map<String, Value>, KeyProblem> {
    match serde_json::from_str::<Value>(version.value().expose()) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(KeyProblem::NotJsonObject),
    }
}

/// The signing key pair in `version` (the stock signing kinds' shape).
pub fn signing_key(version: &Version) -> Result<SigningKey, KeyProblem> {
    let map = object(version)?;
    let text = |m: &'static str| map.get(m).and_then(Value::as_str).ok_or(KeyProblem::Missing(m));
    let alg = text("alg")?.to_owned();
    let pem = Zeroizing::new(text("private_key_pem")?.to_owned());
    if !pem.contains("-----BEGIN PRIVATE KEY-----") {
        return Err(KeyProblem::Malformed("private_key_pem"));
    }
    let public_jwk = match map.get("public_jwk") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => return Err(KeyProblem::Missing("public_jwk")),
    };
    Ok(SigningKey {
        kid: version.id().clone(),
        alg,
        pem,
        public_jwk,
    })
}

/// The symmetric key in `version`: a JWK `oct` whose `k` is 32 bytes.
pub fn symmetric_key(version: &Version) -> Result<SymmetricKey, KeyProblem> {
    let map = object(version)?;
    if map.get("kty").and_then(Value::as_str) != Some("oct") {
        return Err(KeyProblem::NotSymmetric);
    }
    let k = map
        .get("k")
        .and_then(Value::as_str)
        .ok_or(KeyProblem::Missing("k"))?;
    let bytes = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(k)
            .map_err(|_| KeyProblem::Malformed("k"))?,
    );
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyProblem::Malformed("k"))?;
    Ok(SymmetricKey {
        kid: version.id().clone(),
        key: Zeroizing::new(key),
    })
}

impl Version {
    /// [`signing_key`] of this version.
    pub fn signing_key(&self) -> Result<SigningKey, KeyProblem> {
        signing_key(self)
    }

    /// [`symmetric_key`] of this version.
    pub fn symmetric_key(&self) -> Result<SymmetricKey, KeyProblem> {
        symmetric_key(self)
    }
}

#[cfg(test)]
mod tests {
    use keyshift::SecretValue;
    use serde_json::json;

    use super::*;

    fn version(id: &str, value: Value) -> Version {
        Version::new(
            VersionId::new(id),
            ["AWSCURRENT"],
            SecretValue::new(value.to_string()),
        )
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";

    #[test]
    fn a_signing_key_is_named_by_its_version_whatever_it_stores() {
        let stored = json!({
            "kind": "ed25519", "alg": "EdDSA", "private_key_pem": PEM,
            "private_jwk": {"kty": "OKP", "crv": "Ed25519", "x": "pub", "d": "priv"},
            "public_jwk": {"kty": "OKP", "crv": "Ed25519", "x": "pub"},
        });
        // The same bytes under the pending version and under keyshift's copy.
        for id in [
            "11111111-1111-4111-8111-111111111111",
            "22222222-2222-8222-ab73-000000000001",
        ] {
            let key = version(id, stored.clone()).signing_key().expect("a signing key");
            assert_eq!(key.kid().as_str(), id);
            assert_eq!(key.alg(), "EdDSA");
            assert_eq!(key.private_key_pem(), PEM);
            assert!(!format!("{key:?}").contains("PRIVATE"), "{key:?}");
        }
    }

    #[test]
    fn the_jwks_publishes_a_stock_pairs_public_jwk_under_the_version_id() {
        let stored = json!({
            "kind": "ecdsa-p256", "alg": "ES256", "private_key_pem": PEM,
            "private_jwk": {"kty": "EC", "crv": "P-256", "x": "X", "y": "Y", "d": "PRIVATE"},
            "public_jwk": {"kty": "EC", "crv": "P-256", "x": "X", "y": "Y", "d": "LEAKED", "ext": "?"},
        });
        let v = version("v-copy", stored);
        let jwk = crate::jwks::public_jwk(v.id(), v.value()).expect("publishable");
        assert_eq!(
            jwk,
            json!({"kty": "EC", "crv": "P-256", "x": "X", "y": "Y", "alg": "ES256", "use": "sig", "kid": "v-copy"})
        );
    }

    #[test]
    fn a_symmetric_key_has_32_bytes_and_its_versions_kid() {
        let k = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let key = version("v1", json!({"kty": "oct", "alg": "A256GCM", "k": k}))
            .symmetric_key()
            .expect("a key");
        assert_eq!((key.kid().as_str(), key.bytes()), ("v1", &[7u8; 32]));
        assert!(!format!("{key:?}").contains(&k));
    }

    #[test]
    fn wrong_values_say_what_is_wrong_without_content() {
        let cases = [
            (json!("hunter2-password"), KeyProblem::NotJsonObject),
            (json!({"kty": "EC"}), KeyProblem::NotSymmetric),
            (json!({"kty": "oct"}), KeyProblem::Missing("k")),
            (json!({"kty": "oct", "k": "c2VjcmV0"}), KeyProblem::Malformed("k")),
            (
                json!({"kty": "oct", "k": "not base64 !!"}),
                KeyProblem::Malformed("k"),
            ),
        ];
        for (value, problem) in cases {
            assert_eq!(version("v", value).symmetric_key().map(|_| ()), Err(problem));
        }
        assert_eq!(
            version("v", json!({"alg": "EdDSA", "private_key_pem": "x"}))
                .signing_key()
                .map(|_| ()),
            Err(KeyProblem::Malformed("private_key_pem"))
        );
        assert_eq!(
            version("v", json!({"alg": "EdDSA", "private_key_pem": PEM}))
                .signing_key()
                .map(|_| ()),
            Err(KeyProblem::Missing("public_jwk"))
        );
    }
}
