//! The API key: 256 random bits from aws-lc-rs, written `ks_<base64url>`, and the two
//! things service B is told about it: an id and a SHA-256 hash, never the key.
//!
//! The id is derived from the key, not from the secret's version id. keyshift calls
//! [`set`](keyshift::ports::Target::set) with the rotation's token, but the version that
//! becomes AWSCURRENT is keyshift's *copy* of it (docs/protocol.md, section 2), so the
//! release calls [`revoke`](keyshift::ports::Target::revoke) with another version id than
//! the one the key was registered under. The value is the one thing both calls share.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What every key starts with: a key found in a log or a repository is recognisable.
pub const PREFIX: &str = "ks_";

/// Random bytes in a key: 256 bits.
pub const KEY_BYTES: usize = 32;

/// Length of a key as text: the prefix and 43 base64url characters.
pub const KEY_LEN: usize = PREFIX.len() + 43;

/// Domain separation for [`KeyId`]: the id is a hash of the key, never the hash service B
/// stores.
const ID_CONTEXT: &[u8] = b"keyshift-example-target/key-id/v1\0";

/// A key this target generated (or one of the same shape), checked.
///
/// `Debug` shows only its id.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// Why a value is not an API key of this target's format. Never contains the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Not `ks_` followed by 43 base64url characters.
    #[error("the value is not an API key of this target's format (ks_ followed by 43 base64url characters)")]
    Shape,
}

/// The random generator failed (aws-lc-rs reports no more than that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random generator failed")]
pub struct RandomError;

impl ApiKey {
    /// A fresh key: 32 bytes from aws-lc-rs's generator.
    pub fn generate() -> Result<ApiKey, RandomError> {
        let mut bytes = [0u8; KEY_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RandomError)?;
        let key = ApiKey(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)));
        bytes.fill(0);
        Ok(key)
    }

    /// Checks that `text` has this target's shape (the value a secret version holds).
    pub fn parse(text: &str) -> Result<ApiKey, KeyFormatError> {
        let body = text.strip_prefix(PREFIX).ok_or(KeyFormatError::Shape)?;
        if text.len() != KEY_LEN {
            return Err(KeyFormatError::Shape);
        }
        // Canonical base64url only: decoding and encoding again gives the same text.
        match URL_SAFE_NO_PAD.decode(body) {
            Ok(bytes) if bytes.len() == KEY_BYTES && URL_SAFE_NO_PAD.encode(&bytes) == body => {
                Ok(ApiKey(text.to_owned()))
            }
            _ => Err(KeyFormatError::Shape),
        }
    }

    /// The key, to store in the secret or to send as a bearer token.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its id at service B.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.0)
    }

    /// The SHA-256 of the key, lowercase hex: what service B stores.
    pub fn sha256_hex(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.id())
    }
}

/// The name a key is registered under at service B: 128 bits of a domain-separated
/// SHA-256 of the key, in hex. Safe to log; it tells nothing about the key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id of any value, an API key or not: a release revokes whatever the old version
    /// held (the secret's first value may have been a placeholder that service B never
    /// knew, which then revokes as "already gone").
    pub fn of(value: &str) -> KeyId {
        let mut input = Vec::with_capacity(ID_CONTEXT.len() + value.len());
        input.extend_from_slice(ID_CONTEXT);
        input.extend_from_slice(value.as_bytes());
        let id = keyshift::hex::encode(&digest(&SHA256, &input).as_ref()[..16]);
        input.fill(0);
        KeyId(id)
    }

    /// The id as text (32 lowercase hex digits, safe in a URL path).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    keyshift::hex::encode(digest(&SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_format_and_differ() {
        let a = ApiKey::generate().expect("random");
        let b = ApiKey::generate().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), KEY_LEN);
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(ApiKey::parse(a.expose()), Ok(a.clone()));
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn parse_refuses_other_shapes() {
        let good = ApiKey::generate().expect("random");
        let body = &good.expose()[PREFIX.len()..];
        for bad in [
            String::new(),
            "ks_".to_owned(),
            body.to_owned(),                         // no prefix
            format!("sk_{body}"),                    // another prefix
            format!("{}A", good.expose()),           // too long
            good.expose()[..KEY_LEN - 1].to_owned(), // too short
            format!("ks_{}+", &body[..42]),          // standard base64, not url-safe
            format!("ks_{}=", &body[..42]),          // padding
        ] {
            assert_eq!(ApiKey::parse(&bad), Err(KeyFormatError::Shape), "{bad:?}");
        }
        // 43 characters carry 258 bits: the last one's two low bits must be zero. The
        // next character of the alphabet sets one of them.
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = body.as_bytes()[42];
        let index = ALPHABET
            .iter()
            .position(|&c| c == last)
            .expect("a base64url character");
        assert_eq!(index % 4, 0, "a canonical encoding");
        let non_canonical = format!("ks_{}{}", &body[..42], char::from(ALPHABET[index + 1]));
        assert_eq!(ApiKey::parse(&non_canonical), Err(KeyFormatError::Shape));
    }

    #[test]
    fn the_id_is_a_function_of_the_value_only() {
        let key = ApiKey::generate().expect("random");
        assert_eq!(key.id(), KeyId::of(key.expose()));
        assert_eq!(key.id().as_str().len(), 32);
        assert!(key.id().as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        // Neither the id nor the hash contains the key, and they differ from each other.
        assert!(!key.id().as_str().contains(&key.expose()[PREFIX.len()..]));
        assert!(!key.sha256_hex().starts_with(key.id().as_str()));
        // Any value has an id (a placeholder the secret was created with).
        assert_eq!(KeyId::of("placeholder"), KeyId::of("placeholder"));
        assert_ne!(KeyId::of("placeholder"), KeyId::of("placeholder2"));
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn debug_shows_the_id_not_the_key() {
        let key = ApiKey::generate().expect("random");
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.expose()));
        assert!(shown.contains(key.id().as_str()));
    }
}
