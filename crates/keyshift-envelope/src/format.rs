//! The binary formats: a wrapped data key (stored once per context) and a ciphertext
//! (stored per value, carrying the wrapped data key it was sealed under).
//!
//! Parsing is total: every input either parses or gives a [`FormatError`] that names the
//! field at fault and never carries input bytes. Every length is bounded before it is
//! used, and no read indexes past the input (all reads go through `slice::get`).
//!
//! See the crate documentation for the tables.

use std::fmt;

/// The first three bytes of a ciphertext: `KSE` (keyshift envelope). No AWS KMS
/// ciphertext blob starts with them (a KMS blob starts with a version byte below 0x10),
/// which is how [`crate::Envelope::decrypt`] tells the envelope form from a legacy one.
pub const CIPHERTEXT_MAGIC: [u8; 3] = *b"KSE";
/// The first three bytes of a stored wrapped data key: `KSW`.
pub const WRAPPED_DEK_MAGIC: [u8; 3] = *b"KSW";
/// The format version this crate writes (and the only one it reads).
pub const FORMAT_V1: u8 = 1;
/// The longest key id: a KMS key ARN or a Secrets Manager secret ARN fits with room.
pub const MAX_KEY_ID: usize = 2048;
/// The longest key version (a Secrets Manager version id is 32 to 64 characters).
pub const MAX_KEY_VERSION: usize = 64;
/// The length of a data key id (random, drawn with the data key).
pub const DEK_ID_LEN: usize = 16;
/// The longest context label (an environment id, for example).
pub const MAX_CONTEXT: usize = 255;
/// The longest wrapped key (a KMS ciphertext blob of a 32-byte key is under 200 bytes;
/// the Secrets Manager provider's is 60).
pub const MAX_WRAPPED_KEY: usize = 1024;
/// The AES-256-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// The AES-256-GCM tag length.
pub const TAG_LEN: usize = 16;
/// The longest plaintext a ciphertext may hold (1 MiB; Secrets Manager values are at
/// most 64 KiB, configuration values far less).
pub const MAX_PLAINTEXT: usize = 1 << 20;

/// Which key encryption key provider wrapped a data key (one byte in the format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// A `symmetric` secret keyshift rotates in Secrets Manager (tag 1). The key id is
    /// the secret id, the key version the exact Secrets Manager version id.
    SecretsManager,
    /// An AWS KMS key (tag 2). The key id is the key ARN; the key version is empty (KMS
    /// names the backing key material inside its own ciphertext blob).
    Kms,
}

impl Provider {
    /// Its tag byte.
    pub fn tag(self) -> u8 {
        match self {
            Provider::SecretsManager => 1,
            Provider::Kms => 2,
        }
    }

    fn from_tag(tag: u8) -> Option<Provider> {
        match tag {
            1 => Some(Provider::SecretsManager),
            2 => Some(Provider::Kms),
            _ => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::SecretsManager => "secrets-manager",
            Provider::Kms => "kms",
        })
    }
}

/// Which key encryption key, exactly, wrapped a data key: provider, key id, key version.
/// Not secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KekId {
    /// The provider.
    pub provider: Provider,
    /// The secret id (Secrets Manager) or the key ARN (KMS).
    pub key_id: String,
    /// The exact Secrets Manager version id; empty for KMS.
    pub key_version: String,
}

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key_version.is_empty() {
            write!(f, "{}:{}", self.provider, self.key_id)
        } else {
            write!(f, "{}:{}@{}", self.provider, self.key_id, self.key_version)
        }
    }
}

/// Why bytes are not a ciphertext or a wrapped data key of this format. Names the field,
/// never its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// No bytes at all.
    #[error("empty input")]
    Empty,
    /// The input ends inside `0`.
    #[error("truncated in the {0}")]
    Truncated(&'static str),
    /// The first three bytes are not the magic of the form asked for.
    #[error("not a keyshift envelope {0} (wrong magic)")]
    BadMagic(&'static str),
    /// A format version this crate does not read.
    #[error("unsupported format version")]
    UnsupportedVersion,
    /// A provider tag this crate does not know.
    #[error("unknown key encryption key provider")]
    UnknownProvider,
    /// A length field outside its bounds.
    #[error("the {0} length is out of bounds")]
    LengthOutOfBounds(&'static str),
    /// A text field with bytes outside printable ASCII (key id, key version) or not
    /// UTF-8 (context).
    #[error("the {0} is not valid text")]
    BadText(&'static str),
    /// A key version where the provider has none, or none where it needs one.
    #[error("the key version does not fit the provider")]
    KeyVersionForProvider,
    /// Bytes after the end of a wrapped data key.
    #[error("trailing bytes after the wrapped data key")]
    TrailingBytes,
    /// The sealed part is shorter than a tag or longer than the plaintext limit allows.
    #[error("the sealed value length is out of bounds")]
    SealedLength,
}

/// A wrapped data key record, borrowed from the bytes it was parsed from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The provider.
    pub provider: Provider,
    /// The key id.
    pub key_id: &'a str,
    /// The key version (empty for KMS).
    pub key_version: &'a str,
    /// The data key's id.
    pub dek_id: &'a [u8; DEK_ID_LEN],
    /// The context the data key belongs to.
    pub context: &'a str,
    /// The wrapped key bytes (opaque, provider-specific).
    pub wrapped_key: &'a [u8],
}

impl fmt::Debug for RecordRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRef")
            .field("provider", &self.provider)
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl RecordRef<'_> {
    /// The KEK id, owned.
    pub fn kek_id(&self) -> KekId {
        KekId {
            provider: self.provider,
            key_id: self.key_id.to_owned(),
            key_version: self.key_version.to_owned(),
        }
    }
}

/// A parsed ciphertext, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct CiphertextRef<'a> {
    /// The wrapped data key record (parsed).
    pub record: RecordRef<'a>,
    /// The record's bytes, exactly as they appear in the ciphertext.
    pub record_bytes: &'a [u8],
    /// The nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The AES-256-GCM ciphertext followed by its 16-byte tag.
    pub sealed: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n).ok_or(FormatError::Truncated(field))?;
        let out = self.buf.get(self.pos..end).ok_or(FormatError::Truncated(field))?;
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, FormatError> {
        Ok(self.take(1, field)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, FormatError> {
        let b = self.take(2, field)?;
        let arr: [u8; 2] = b.try_into().map_err(|_| FormatError::Truncated(field))?;
        Ok(u16::from_be_bytes(arr))
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }
}

fn printable<'a>(b: &'a [u8], field: &'static str) -> Result<&'a str, FormatError> {
    if b.iter().all(|c| (0x21..=0x7e).contains(c)) {
        std::str::from_utf8(b).map_err(|_| FormatError::BadText(field))
    } else {
        Err(FormatError::BadText(field))
    }
}

fn header<'a>(r: &mut Reader<'a>, magic: [u8; 3], what: &'static str) -> Result<(), FormatError> {
    if r.buf.is_empty() {
        return Err(FormatError::Empty);
    }
    let m = r.take(3, "magic")?;
    if m != magic {
        return Err(FormatError::BadMagic(what));
    }
    if r.u8("format version")? != FORMAT_V1 {
        return Err(FormatError::UnsupportedVersion);
    }
    Ok(())
}

fn record<'a>(r: &mut Reader<'a>) -> Result<RecordRef<'a>, FormatError> {
    let provider = Provider::from_tag(r.u8("provider tag")?).ok_or(FormatError::UnknownProvider)?;
    let n = usize::from(r.u16("key id length")?);
    if n == 0 || n > MAX_KEY_ID {
        return Err(FormatError::LengthOutOfBounds("key id"));
    }
    let key_id = printable(r.take(n, "key id")?, "key id")?;
    let n = usize::from(r.u8("key version length")?);
    if n > MAX_KEY_VERSION {
        return Err(FormatError::LengthOutOfBounds("key version"));
    }
    let key_version = printable(r.take(n, "key version")?, "key version")?;
    match (provider, key_version.is_empty()) {
        (Provider::SecretsManager, false) | (Provider::Kms, true) => {}
        _ => return Err(FormatError::KeyVersionForProvider),
    }
    let dek_id: &[u8; DEK_ID_LEN] = r
        .take(DEK_ID_LEN, "data key id")?
        .try_into()
        .map_err(|_| FormatError::Truncated("data key id"))?;
    let n = usize::from(r.u8("context length")?);
    let context = std::str::from_utf8(r.take(n, "context")?).map_err(|_| FormatError::BadText("context"))?;
    let n = usize::from(r.u16("wrapped key length")?);
    if n == 0 || n > MAX_WRAPPED_KEY {
        return Err(FormatError::LengthOutOfBounds("wrapped key"));
    }
    let wrapped_key = r.take(n, "wrapped key")?;
    Ok(RecordRef {
        provider,
        key_id,
        key_version,
        dek_id,
        context,
        wrapped_key,
    })
}

/// Parses a stored wrapped data key (`KSW`, version, record, nothing after).
pub fn parse_wrapped_dek(bytes: &[u8]) -> Result<(RecordRef<'_>, &[u8]), FormatError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    header(&mut r, WRAPPED_DEK_MAGIC, "wrapped data key")?;
    let start = r.pos;
    let rec = record(&mut r)?;
    let record_bytes = bytes.get(start..r.pos).ok_or(FormatError::Truncated("record"))?;
    if r.pos != bytes.len() {
        return Err(FormatError::TrailingBytes);
    }
    Ok((rec, record_bytes))
}

/// Parses a ciphertext (`KSE`, version, record, nonce, sealed value).
pub fn parse_ciphertext(bytes: &[u8]) -> Result<CiphertextRef<'_>, FormatError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    header(&mut r, CIPHERTEXT_MAGIC, "ciphertext")?;
    let start = r.pos;
    let rec = record(&mut r)?;
    let record_bytes = bytes.get(start..r.pos).ok_or(FormatError::Truncated("record"))?;
    let nonce: [u8; NONCE_LEN] = r
        .take(NONCE_LEN, "nonce")?
        .try_into()
        .map_err(|_| FormatError::Truncated("nonce"))?;
    let sealed = r.rest();
    if sealed.len() < TAG_LEN || sealed.len() > MAX_PLAINTEXT + TAG_LEN {
        return Err(FormatError::SealedLength);
    }
    Ok(CiphertextRef {
        record: rec,
        record_bytes,
        nonce,
        sealed,
    })
}

/// Whether `bytes` start like a ciphertext of this crate (any version): the test
/// [`crate::Envelope::decrypt`] uses to send a value to the legacy path.
pub fn is_envelope(bytes: &[u8]) -> bool {
    bytes.starts_with(&CIPHERTEXT_MAGIC)
}

/// Why a record cannot be written (a provider handed back a field out of bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode the {0}: out of bounds")]
pub struct EncodeError(pub &'static str);

/// The fields of a record before the wrapped key: what a provider binds the wrapped key
/// to (the Secrets Manager provider's wrapping AAD).
pub fn record_prefix(
    provider: Provider,
    key_id: &str,
    key_version: &str,
    dek_id: &[u8; DEK_ID_LEN],
    context: &str,
) -> Result<Vec<u8>, EncodeError> {
    let kid = key_id.as_bytes();
    if kid.is_empty() || kid.len() > MAX_KEY_ID || printable(kid, "key id").is_err() {
        return Err(EncodeError("key id"));
    }
    let ver = key_version.as_bytes();
    if ver.len() > MAX_KEY_VERSION || printable(ver, "key version").is_err() {
        return Err(EncodeError("key version"));
    }
    if (provider == Provider::SecretsManager) == ver.is_empty() {
        return Err(EncodeError("key version"));
    }
    let ctx = context.as_bytes();
    if ctx.len() > MAX_CONTEXT {
        return Err(EncodeError("context"));
    }
    let mut out = Vec::with_capacity(1 + 2 + kid.len() + 1 + ver.len() + DEK_ID_LEN + 1 + ctx.len());
    out.push(provider.tag());
    out.extend_from_slice(
        &u16::try_from(kid.len())
            .map_err(|_| EncodeError("key id"))?
            .to_be_bytes(),
    );
    out.extend_from_slice(kid);
    out.push(u8::try_from(ver.len()).map_err(|_| EncodeError("key version"))?);
    out.extend_from_slice(ver);
    out.extend_from_slice(dek_id);
    out.push(u8::try_from(ctx.len()).map_err(|_| EncodeError("context"))?);
    out.extend_from_slice(ctx);
    Ok(out)
}

/// A stored wrapped data key: `KSW`, version, the record prefix, the wrapped key.
pub fn encode_wrapped_dek(prefix: &[u8], wrapped_key: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if wrapped_key.is_empty() || wrapped_key.len() > MAX_WRAPPED_KEY {
        return Err(EncodeError("wrapped key"));
    }
    let mut out = Vec::with_capacity(4 + prefix.len() + 2 + wrapped_key.len());
    out.extend_from_slice(&WRAPPED_DEK_MAGIC);
    out.push(FORMAT_V1);
    out.extend_from_slice(prefix);
    out.extend_from_slice(
        &u16::try_from(wrapped_key.len())
            .map_err(|_| EncodeError("wrapped key"))?
            .to_be_bytes(),
    );
    out.extend_from_slice(wrapped_key);
    Ok(out)
}

/// The additional data a value is sealed with: `KSE`, version, the data key id, the
/// context (length-prefixed), then the caller's AAD. The wrapped key and the KEK id are
/// not in it, so [`crate::Envelope::rewrap`] can move a data key to another KEK version
/// without touching the sealed values; they are authenticated by the KEK instead (a
/// record opens only if its KEK binds it to this data key id and context).
pub fn value_aad_prefix(dek_id: &[u8; DEK_ID_LEN], context: &str) -> Vec<u8> {
    let ctx = context.as_bytes();
    let mut out = Vec::with_capacity(4 + DEK_ID_LEN + 1 + ctx.len());
    out.extend_from_slice(&CIPHERTEXT_MAGIC);
    out.push(FORMAT_V1);
    out.extend_from_slice(dek_id);
    // The context is at most MAX_CONTEXT (255) bytes: parsed or encoded records hold it.
    out.push(u8::try_from(ctx.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(ctx);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let prefix =
            record_prefix(Provider::SecretsManager, "prod/kek", "v-1", &[9; 16], "env-1").expect("in bounds");
        encode_wrapped_dek(&prefix, &[1; 60]).expect("in bounds")
    }

    #[test]
    fn a_wrapped_dek_round_trips() {
        let bytes = sample();
        let (rec, record_bytes) = parse_wrapped_dek(&bytes).expect("parses");
        assert_eq!(rec.provider, Provider::SecretsManager);
        assert_eq!(
            (rec.key_id, rec.key_version, rec.context),
            ("prod/kek", "v-1", "env-1")
        );
        assert_eq!(rec.dek_id, &[9; 16]);
        assert_eq!(rec.wrapped_key, &[1; 60]);
        assert_eq!(record_bytes, &bytes[4..]);
    }

    #[test]
    fn every_prefix_of_a_wrapped_dek_is_refused() {
        let bytes = sample();
        for n in 0..bytes.len() {
            assert!(parse_wrapped_dek(&bytes[..n]).is_err(), "{n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            parse_wrapped_dek(&longer).map(|_| ()),
            Err(FormatError::TrailingBytes)
        );
    }

    #[test]
    fn bounds_are_checked_on_encode() {
        assert!(record_prefix(Provider::Kms, "k", "v", &[0; 16], "").is_err());
        assert!(record_prefix(Provider::SecretsManager, "k", "", &[0; 16], "").is_err());
        assert!(record_prefix(Provider::Kms, "", "", &[0; 16], "").is_err());
        assert!(record_prefix(Provider::Kms, "a b", "", &[0; 16], "").is_err());
        assert!(record_prefix(Provider::Kms, "k", "", &[0; 16], &"x".repeat(256)).is_err());
        assert!(encode_wrapped_dek(&[], &[]).is_err());
        assert!(encode_wrapped_dek(&[], &[0; MAX_WRAPPED_KEY + 1]).is_err());
    }
}
