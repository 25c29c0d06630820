//! A self-describing AES-256-GCM ciphertext that carries the id of its key, sealed with
//! `aws_lc_rs::aead` (the crypto provider the SDK's TLS already compiles in).
//!
//! ```text
//! format (1 byte, 0x01) | key id length n (1 byte) | key id (n bytes, the version id)
//!   | nonce (12 bytes, random) | ciphertext || tag (16 bytes)
//! ```
//!
//! The key comes from [`Version::symmetric_key`](keyshift_client::Version::symmetric_key):
//! 32 bytes and its kid, which is always the id of the version that holds it. The header
//! (format, length and key id) is the AEAD's associated data, so a key id cannot be
//! swapped without the tag failing. Decryption uses exactly the key the header names:
//! there is no "try current, then previous".
//!
//! A random 96-bit nonce is safe for about 2^32 encryptions per key; rotating the key
//! (a new version) starts a fresh count.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use keyshift_client::SymmetricKey;

/// The only format this module writes and reads.
pub const FORMAT_V1: u8 = 0x01;
/// The AES-GCM tag's length.
pub const TAG_LEN: usize = 16;

/// Why a ciphertext did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Shorter than its own header says it must be.
    #[error("corrupt ciphertext: {len} bytes is too short")]
    Truncated {
        /// Its length.
        len: usize,
    },
    /// The first byte is not a format this code knows.
    #[error("corrupt ciphertext: unknown format byte {0:#04x}")]
    UnknownFormat(u8),
    /// The key id is empty or not printable ASCII.
    #[error("corrupt ciphertext: the key id is not a version id")]
    BadKeyId,
    /// The key given is not the one the header names (a caller's mistake: look the key
    /// up by [`key_id`]).
    #[error("ciphertext names key {named}, not key {given}")]
    WrongKey {
        /// The key id the header names.
        named: String,
        /// The kid of the key given.
        given: String,
    },
    /// Authentication failed under the key the header names: the bytes were altered,
    /// or the header names another key than the one that sealed them.
    #[error("ciphertext under key {key_id} failed authentication: it was altered")]
    Tampered {
        /// The key id the header names.
        key_id: String,
    },
}

/// Why sealing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Key ids are Secrets Manager version ids: 1 to 255 printable ASCII bytes.
    #[error("key id must be 1 to 255 printable ASCII bytes")]
    BadKeyId,
    /// The operating system's random source failed.
    #[error("no randomness available for a nonce")]
    Random,
    /// The AEAD refused to seal (the plaintext is beyond AES-GCM's limit).
    #[error("AES-256-GCM refused to seal the plaintext")]
    Crypto,
}

/// Encrypts `plaintext` under `key`, writing its kid (the version id) into the header.
pub fn seal(key: &SymmetricKey, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let key_id = key.kid().as_str();
    let id_len = u8::try_from(key_id.len()).map_err(|_| SealError::BadKeyId)?;
    if !valid_key_id(key_id.as_bytes()) {
        return Err(SealError::BadKeyId);
    }
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let mut out = Vec::with_capacity(2 + key_id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT_V1);
    out.push(id_len);
    out.extend_from_slice(key_id.as_bytes());
    let header_len = out.len();
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    aead(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&out[..header_len]),
            &mut body,
        )
        .map_err(|_| SealError::Crypto)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The key id a ciphertext names (checked for shape, not yet authenticated).
pub fn key_id(ciphertext: &[u8]) -> Result<&str, OpenError> {
    Ok(parse(ciphertext)?.key_id)
}

/// Decrypts `ciphertext` with `key`, which must be the key its header names.
pub fn open(key: &SymmetricKey, ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
    let parts = parse(ciphertext)?;
    if parts.key_id != key.kid().as_str() {
        return Err(OpenError::WrongKey {
            named: parts.key_id.to_owned(),
            given: key.kid().to_string(),
        });
    }
    let nonce = Nonce::try_assume_unique_for_key(parts.nonce).map_err(|_| OpenError::Truncated {
        len: ciphertext.len(),
    })?;
    let mut body = parts.body.to_vec();
    let plain_len = aead(key)
        .open_in_place(nonce, Aad::from(parts.header), &mut body)
        .map_err(|_| OpenError::Tampered {
            key_id: parts.key_id.to_owned(),
        })?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

struct Parts<'a> {
    header: &'a [u8],
    key_id: &'a str,
    nonce: &'a [u8],
    body: &'a [u8],
}

fn parse(ciphertext: &[u8]) -> Result<Parts<'_>, OpenError> {
    let truncated = OpenError::Truncated {
        len: ciphertext.len(),
    };
    let (&format, rest) = ciphertext.split_first().ok_or(truncated.clone())?;
    if format != FORMAT_V1 {
        return Err(OpenError::UnknownFormat(format));
    }
    let (&id_len, rest) = rest.split_first().ok_or(truncated.clone())?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return Err(truncated);
    }
    let (id, rest) = rest.split_at(id_len);
    if !valid_key_id(id) {
        return Err(OpenError::BadKeyId);
    }
    let key_id = std::str::from_utf8(id).map_err(|_| OpenError::BadKeyId)?;
    let (nonce, body) = rest.split_at(NONCE_LEN);
    Ok(Parts {
        header: &ciphertext[..2 + id_len],
        key_id,
        nonce,
        body,
    })
}

fn valid_key_id(id: &[u8]) -> bool {
    !id.is_empty() && id.iter().all(|b| b.is_ascii_graphic())
}

fn aead(key: &SymmetricKey) -> LessSafeKey {
    // AES-256 takes any 32-byte key; `UnboundKey::new` fails only on a wrong length,
    // which the type (`&[u8; 32]`) rules out.
    let unbound = UnboundKey::new(&AES_256_GCM, key.bytes())
        .unwrap_or_else(|_| unreachable!("a SymmetricKey is 32 bytes"));
    LessSafeKey::new(unbound)
}

#[cfg(test)]
mod tests {
    use keyshift_client::{SecretValue, Version, VersionId};

    use super::*;

    /// The symmetric key in a version `id` holding `jwk`.
    fn key_in(id: &str, jwk: &str) -> SymmetricKey {
        Version::new(VersionId::new(id), ["AWSCURRENT"], SecretValue::new(jwk))
            .symmetric_key()
            .expect("a symmetric key")
    }

    /// A stock symmetric value: 32 equal bytes in an `oct` JWK.
    fn jwk(byte: u8) -> String {
        use base64::Engine;
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([byte; 32]);
        format!(r#"{{"kty":"oct","alg":"A256GCM","use":"enc","k":"{k}"}}"#)
    }

    #[test]
    fn seals_and_opens_with_the_key_id_in_the_header() -> Result<(), Box<dyn std::error::Error>> {
        let key = key_in("v1", &jwk(7));
        let sealed = seal(&key, b"card 4111")?;
        assert_eq!(key_id(&sealed)?, "v1");
        assert_eq!(open(&key, &sealed)?, b"card 4111");
        assert_eq!(sealed.len(), 2 + 2 + NONCE_LEN + 9 + TAG_LEN);
        // A fresh nonce every time.
        assert_ne!(seal(&key, b"card 4111")?, sealed);
        Ok(())
    }

    #[test]
    fn any_altered_byte_or_swapped_key_id_fails() -> Result<(), Box<dyn std::error::Error>> {
        let key = key_in("v1", &jwk(7));
        let sealed = seal(&key, b"card 4111")?;
        for i in 4..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let err = open(&key, &bad).expect_err("an altered byte must not open");
            assert_eq!(err, OpenError::Tampered { key_id: "v1".into() }, "byte {i}");
        }
        // The key id is bound into the AAD: the same bytes under another kid still fail.
        let mut swapped = sealed.clone();
        swapped[2..4].copy_from_slice(b"v2");
        assert_eq!(
            open(&key_in("v2", &jwk(7)), &swapped),
            Err(OpenError::Tampered { key_id: "v2".into() })
        );
        // Another key under the right id fails too.
        assert_eq!(
            open(&key_in("v1", &jwk(8)), &sealed),
            Err(OpenError::Tampered { key_id: "v1".into() })
        );
        Ok(())
    }

    #[test]
    fn a_key_of_another_version_is_refused_before_decrypting() -> Result<(), SealError> {
        let sealed = seal(&key_in("v1", &jwk(7)), b"x")?;
        assert_eq!(
            open(&key_in("v2", &jwk(7)), &sealed),
            Err(OpenError::WrongKey {
                named: "v1".into(),
                given: "v2".into()
            })
        );
        Ok(())
    }

    #[test]
    fn corrupt_headers_say_what_is_wrong() {
        let key = key_in("v", &jwk(1));
        assert_eq!(open(&key, &[]), Err(OpenError::Truncated { len: 0 }));
        assert_eq!(open(&key, &[0x02, 1, b'v']), Err(OpenError::UnknownFormat(0x02)));
        assert_eq!(
            open(&key, &[FORMAT_V1, 40, b'v']),
            Err(OpenError::Truncated { len: 3 })
        );
        let mut spaced = vec![FORMAT_V1, 1, b' '];
        spaced.extend([0u8; NONCE_LEN + TAG_LEN]);
        assert_eq!(open(&key, &spaced), Err(OpenError::BadKeyId));
        assert_eq!(key_id(&spaced), Err(OpenError::BadKeyId));
    }
}
