//! Errors. None of them carries key material, plaintext or input bytes.

use crate::format::{EncodeError, FormatError};

/// What went wrong in a key encryption key provider: the operation and the service's
/// error code and message (never a request parameter, a key or a ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {kind:?}: {message}")]
pub struct KekError {
    /// The operation (`GenerateDataKey`, `unwrap`, ...).
    pub operation: &'static str,
    /// What kind of failure.
    pub kind: KekErrorKind,
    /// The detail (an AWS error code and message, or this crate's words).
    pub message: String,
}

/// The kind of a [`KekError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KekErrorKind {
    /// The key (or the version) does not exist, or the caller may not use it.
    KeyUnavailable,
    /// The wrapped key did not open under the KEK it names (tampered, or bound to
    /// another data key id or context).
    UnwrapFailed,
    /// A throttle, a timeout, a 5xx: worth another try.
    Transient,
    /// The KEK's value is not a usable key (a secret that is not a `symmetric` JWK).
    BadKey,
    /// Anything else.
    Other,
}

impl KekError {
    /// An error of `kind` in `operation`. `message` must carry no secret.
    pub fn new(operation: &'static str, kind: KekErrorKind, message: impl Into<String>) -> Self {
        KekError {
            operation,
            kind,
            message: message.into(),
        }
    }
}

/// Why an envelope operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed ciphertext or wrapped data key.
    #[error("malformed input: {0}")]
    Format(#[from] FormatError),
    /// The value did not authenticate: wrong AAD (moved to another row or context),
    /// tampered, or sealed under another data key.
    #[error("the value did not authenticate (wrong AAD, tampered, or another data key)")]
    Open,
    /// The data key record names another provider than this envelope's KEK.
    #[error("the data key is wrapped by another provider")]
    ProviderMismatch,
    /// The data key record names another key than this envelope's KEK.
    #[error("the data key is wrapped by another key")]
    KeyMismatch,
    /// A value in the legacy form (not an envelope ciphertext) and no legacy provider.
    #[error("not an envelope ciphertext, and no legacy decryption is configured")]
    NotEnvelope,
    /// [`crate::DataKey::open`] was given a ciphertext sealed under another wrapped data
    /// key record.
    #[error("the ciphertext was sealed under another data key record")]
    OtherDataKey,
    /// [`crate::Envelope::rewrap_ciphertext`] was given a record of another data key.
    #[error("the new record wraps another data key")]
    DataKeyMismatch,
    /// The plaintext is longer than [`crate::format::MAX_PLAINTEXT`] (for the legacy
    /// form, than KMS's `Encrypt` limit of 4096 bytes).
    #[error("the plaintext is too long")]
    PlaintextTooLong,
    /// [`crate::Envelope::encrypt_for`] was given no data key and the envelope has no
    /// legacy writer (no [`crate::LegacyKms`] with a key id, or the crate is built
    /// without the `kms` feature): generate the context's data key first.
    #[error("the context has no data key yet and no legacy KMS key is configured to write under")]
    NoDataKey,
    /// `LegacyKms::encrypt` was called on a [`crate::LegacyKms`] without a key id
    /// (`LegacyKms::with_key_id`): it can only decrypt.
    #[error("the legacy KMS path has no key id to encrypt under")]
    NoLegacyKeyId,
    /// The context label is longer than [`crate::format::MAX_CONTEXT`] bytes.
    #[error("the context is too long")]
    ContextTooLong,
    /// A provider handed back a field this format cannot hold.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The key encryption key provider failed.
    #[error("key encryption key: {0}")]
    Kek(#[from] KekError),
    /// The legacy (direct KMS) decryption or encryption failed.
    #[error("legacy KMS: {0}")]
    Legacy(KekError),
    /// The system random generator or the AEAD failed.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}
