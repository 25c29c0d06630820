//! The legacy form: a value encrypted directly by a version of the KEK secret, no data
//! key, one KEK use per value.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version id length *v* (1..=64, so never `K`, the first byte of `KSE`) |
//! | *v* | the KEK version id (printable ASCII) |
//! | 12 | AES-256-GCM nonce |
//! | *n* + 16 | AES-256-GCM ciphertext and tag, AAD = [`crate::value_aad`] |
//!
//! Decryption looks the version up through keyshift-client (exact version, fetched on a
//! miss), so a legacy value written before a KEK rotation still opens after it.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use keyshift_client::Client;
use zeroize::Zeroizing;

use crate::kek::KekSource;

/// The longest version id the form holds.
pub const MAX_VERSION: usize = 64;

/// Why a legacy value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// The bytes are not in the legacy form.
    #[error("not a legacy value")]
    Malformed,
    /// The KEK version it names is unavailable or not a symmetric key.
    #[error("the KEK version is unavailable: {0}")]
    Kek(String),
    /// The value did not authenticate (wrong AAD or tampered).
    #[error("the legacy value did not authenticate")]
    Open,
    /// The random generator or the AEAD failed.
    #[error("cryptographic failure")]
    Crypto,
}

fn aead(key: &[u8; 32]) -> Result<LessSafeKey, LegacyError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| LegacyError::Crypto)
}

/// Encrypts `plaintext` directly under KEK version `version` (`key`): how the platform
/// wrote values before envelope encryption (tests and the benchmark build data with it).
pub fn encrypt(version: &str, key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, LegacyError> {
    if version.is_empty() || version.len() > MAX_VERSION || !version.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(LegacyError::Malformed);
    }
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| LegacyError::Crypto)?;
    let mut out = Vec::with_capacity(1 + version.len() + NONCE_LEN + plaintext.len() + 16);
    out.push(version.len() as u8);
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(&nonce);
    let mut sealed = plaintext.to_vec();
    aead(key)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut sealed)
        .map_err(|_| LegacyError::Crypto)?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The KEK version a legacy value names.
pub fn version_of(value: &[u8]) -> Result<&str, LegacyError> {
    let (&len, rest) = value.split_first().ok_or(LegacyError::Malformed)?;
    let len = usize::from(len);
    if len == 0 || len > MAX_VERSION || rest.len() < len + NONCE_LEN + 16 {
        return Err(LegacyError::Malformed);
    }
    let version = std::str::from_utf8(&rest[..len]).map_err(|_| LegacyError::Malformed)?;
    if !version.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(LegacyError::Malformed);
    }
    Ok(version)
}

/// Opens a legacy value with `aad`, the KEK version through `client`.
pub async fn decrypt<S: keyshift_client::Source + 'static>(
    client: &Client<S>,
    value: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LegacyError> {
    let version = version_of(value)?;
    let rest = &value[1 + version.len()..];
    let found = client
        .fetch_version(version)
        .await
        .map_err(|e| LegacyError::Kek(e.to_string()))?;
    let key = found
        .symmetric_key()
        .map_err(|e| LegacyError::Kek(e.to_string()))?;
    let nonce: [u8; NONCE_LEN] = rest[..NONCE_LEN].try_into().map_err(|_| LegacyError::Malformed)?;
    let mut buf = Zeroizing::new(rest[NONCE_LEN..].to_vec());
    let n = aead(key.bytes())?
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| LegacyError::Open)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// The type the tool calls [`decrypt`] with.
pub type KekClient = Client<std::sync::Arc<KekSource>>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_its_version_and_never_starts_like_an_envelope() {
        let v = encrypt("v1", &[3; 32], b"secret", b"aad").unwrap();
        assert_eq!(version_of(&v).unwrap(), "v1");
        assert!(!keyshift_envelope::format::is_envelope(&v));
        let long = "x".repeat(MAX_VERSION);
        let v = encrypt(&long, &[3; 32], b"", b"").unwrap();
        assert_eq!(version_of(&v).unwrap(), long);
        assert!(v[0] < b'K');
    }

    #[test]
    fn malformed_input_is_a_typed_error_never_a_panic() {
        assert_eq!(encrypt("", &[3; 32], b"p", b"a"), Err(LegacyError::Malformed));
        assert_eq!(
            encrypt(&"x".repeat(65), &[3; 32], b"p", b"a"),
            Err(LegacyError::Malformed)
        );
        assert_eq!(encrypt("v 1", &[3; 32], b"p", b"a"), Err(LegacyError::Malformed));
        let good = encrypt("v1", &[3; 32], b"secret", b"aad").unwrap();
        for cut in 0..good.len() {
            if cut < 1 + 2 + NONCE_LEN + 16 {
                assert_eq!(version_of(&good[..cut]), Err(LegacyError::Malformed), "cut {cut}");
            }
        }
        assert_eq!(version_of(&[0]), Err(LegacyError::Malformed));
        assert_eq!(version_of(&[200; 300]), Err(LegacyError::Malformed));
        let mut bad = good.clone();
        bad[1] = 0xff;
        assert_eq!(version_of(&bad), Err(LegacyError::Malformed));
    }
}
