//! AWS KMS as the key encryption key (`GenerateDataKey`, `Decrypt`, `ReEncrypt`), and
//! the legacy path: values encrypted directly with KMS, one call per value (read, and
//! written only for a context without a data key yet).
//!
//! Every KMS call carries an encryption context that binds the wrapped key to its record:
//! `keyshift-envelope:dek-id` (the data key id, hex) and `keyshift-envelope:context`
//! (the context label). KMS authenticates it, and CloudTrail shows which context's data
//! key was unwrapped.
//!
//! IAM: `kms:GenerateDataKey` and `kms:DescribeKey` on the current key (alias), and
//! `kms:Decrypt` on every key a record names; `kms:ReEncryptFrom` on the old key and
//! `kms:ReEncryptTo` on the new one for [`crate::Envelope::rewrap`]; `kms:Decrypt` for the
//! legacy values' key, and `kms:Encrypt` on it for the legacy writes.

use std::collections::HashMap;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use keyshift::aws_errors::{AwsErrorClass, class_of};
use zeroize::Zeroizing;

use crate::dek::DekBytes;
use crate::error::{Error, KekError, KekErrorKind};
use crate::format::{DEK_ID_LEN, Provider, RecordRef, encode_wrapped_dek, record_prefix};
use crate::kek::{Generated, Kek};

/// The encryption context key of the data key id.
pub const EC_DEK_ID: &str = "keyshift-envelope:dek-id";
/// The encryption context key of the context label.
pub const EC_CONTEXT: &str = "keyshift-envelope:context";

fn encryption_context(dek_id: &[u8; DEK_ID_LEN], context: &str) -> HashMap<String, String> {
    HashMap::from([
        (EC_DEK_ID.to_owned(), keyshift::hex::encode(dek_id)),
        (EC_CONTEXT.to_owned(), context.to_owned()),
    ])
}

/// Classifies a KMS error: its code and the service's message, never a request field.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
    operation: &'static str,
) -> KekError {
    let kind = match &e {
        SdkError::ServiceError(_) => match class_of(e.code().unwrap_or_default()) {
            Some(AwsErrorClass::NotFound | AwsErrorClass::KeyUnusable | AwsErrorClass::AccessDenied) => {
                KekErrorKind::KeyUnavailable
            }
            Some(AwsErrorClass::Crypto) => KekErrorKind::UnwrapFailed,
            // KMS's LimitExceededException is a request rate, not a quota.
            Some(AwsErrorClass::Throttled | AwsErrorClass::ServerError | AwsErrorClass::LimitExceeded) => {
                KekErrorKind::Transient
            }
            _ => KekErrorKind::Other,
        },
        SdkError::ConstructionFailure(_) => KekErrorKind::Other,
        _ => KekErrorKind::Transient,
    };
    let code = e.code().unwrap_or("no error code").to_owned();
    let message = e.message().unwrap_or("no message").to_owned();
    KekError::new(operation, kind, format!("{code}: {message}"))
}

fn missing(operation: &'static str, what: &str) -> Error {
    Error::Kek(KekError::new(
        operation,
        KekErrorKind::Other,
        format!("the answer has no {what}"),
    ))
}

fn key_bytes(operation: &'static str, plain: Blob) -> Result<DekBytes, Error> {
    let plain = Zeroizing::new(plain.into_inner());
    let dek: [u8; 32] = plain.as_slice().try_into().map_err(|_| {
        Error::Kek(KekError::new(
            operation,
            KekErrorKind::BadKey,
            "the data key is not 32 bytes",
        ))
    })?;
    Ok(Zeroizing::new(dek))
}

/// A KMS key as the KEK: `key_id` is what new data keys are generated under (a key id,
/// ARN, or an alias such as `alias/app-values`; moving the alias is a KEK rotation that
/// [`crate::Envelope::rewrap`] follows). Records carry the key ARN KMS answers with.
#[derive(Debug, Clone)]
pub struct KmsKek {
    client: Client,
    key_id: String,
}

impl KmsKek {
    /// The key `key_id` through `client`.
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        KmsKek {
            client,
            key_id: key_id.into(),
        }
    }

    /// The configured key id (or alias).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The ARN the configured key id resolves to now (`DescribeKey`).
    pub async fn current_arn(&self) -> Result<String, Error> {
        let out = self
            .client
            .describe_key()
            .key_id(&self.key_id)
            .send()
            .await
            .map_err(|e| Error::Kek(classify(e, "DescribeKey")))?;
        out.key_metadata()
            .and_then(|m| m.arn())
            .map(str::to_owned)
            .ok_or_else(|| missing("DescribeKey", "key ARN"))
    }
}

impl Kek for KmsKek {
    fn provider(&self) -> Provider {
        Provider::Kms
    }

    fn rewrap_needs_key(&self) -> bool {
        false
    }

    async fn generate(&self, dek_id: &[u8; DEK_ID_LEN], context: &str) -> Result<Generated, Error> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(encryption_context(dek_id, context)))
            .send()
            .await
            .map_err(|e| Error::Kek(classify(e, "GenerateDataKey")))?;
        let arn = out
            .key_id()
            .ok_or_else(|| missing("GenerateDataKey", "key id"))?
            .to_owned();
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| missing("GenerateDataKey", "ciphertext"))?
            .as_ref()
            .to_vec();
        let plain = out
            .plaintext
            .ok_or_else(|| missing("GenerateDataKey", "plaintext"))?;
        let dek = key_bytes("GenerateDataKey", plain)?;
        let prefix = record_prefix(Provider::Kms, &arn, "", dek_id, context)?;
        Ok(Generated {
            dek,
            wrapped: encode_wrapped_dek(&prefix, &blob)?,
        })
    }

    async fn unwrap(&self, record: &RecordRef<'_>) -> Result<DekBytes, Error> {
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(record.wrapped_key))
            .key_id(record.key_id)
            .set_encryption_context(Some(encryption_context(record.dek_id, record.context)))
            .send()
            .await
            .map_err(|e| Error::Kek(classify(e, "Decrypt")))?;
        let plain = out.plaintext.ok_or_else(|| missing("Decrypt", "plaintext"))?;
        key_bytes("Decrypt", plain)
    }

    async fn rewrap(
        &self,
        record: &RecordRef<'_>,
        _dek: Option<&DekBytes>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let current = self.current_arn().await?;
        self.rewrap_to(record, &current).await
    }
}

impl KmsKek {
    /// [`Kek::rewrap`] to the key `current` (an ARN from [`KmsKek::current_arn`]) without
    /// resolving it again: one `ReEncrypt`, or nothing when `record` is already under
    /// `current`. For a pass over many records, resolve once and rewrap each to that key,
    /// instead of one `DescribeKey` per record.
    pub async fn rewrap_to(&self, record: &RecordRef<'_>, current: &str) -> Result<Option<Vec<u8>>, Error> {
        if record.key_id == current {
            return Ok(None);
        }
        let ec = encryption_context(record.dek_id, record.context);
        let out = self
            .client
            .re_encrypt()
            .ciphertext_blob(Blob::new(record.wrapped_key))
            .source_key_id(record.key_id)
            .destination_key_id(current)
            .set_source_encryption_context(Some(ec.clone()))
            .set_destination_encryption_context(Some(ec))
            .send()
            .await
            .map_err(|e| Error::Kek(classify(e, "ReEncrypt")))?;
        let arn = out
            .key_id()
            .ok_or_else(|| missing("ReEncrypt", "key id"))?
            .to_owned();
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| missing("ReEncrypt", "ciphertext"))?;
        let prefix = record_prefix(Provider::Kms, &arn, "", record.dek_id, record.context)?;
        Ok(Some(encode_wrapped_dek(&prefix, blob.as_ref())?))
    }
}

/// The most a legacy value can hold: KMS's `Encrypt` limit.
pub const LEGACY_MAX_PLAINTEXT: usize = 4096;

/// The legacy path: values encrypted directly with KMS (`Encrypt`, no data key), one
/// call per value. It reads every legacy value ([`LegacyKms::decrypt`]), and it writes
/// ([`LegacyKms::encrypt`]) only for a context that has no data key yet
/// ([`crate::Envelope::encrypt_for`] without one): once the context's data key exists,
/// every write is the envelope form, so each row is upgraded by its next write.
///
/// The legacy form binds no AAD (no encryption context either, as the values written
/// before the migration have none): a legacy value copied to another row or context
/// still decrypts. That is why the upgrade on write matters.
#[derive(Debug, Clone)]
pub struct LegacyKms {
    client: Client,
    key_id: Option<String>,
}

impl LegacyKms {
    /// Decrypts legacy values through `client` (KMS finds the key in the blob). Without
    /// a key id ([`LegacyKms::with_key_id`]) it cannot encrypt.
    pub fn new(client: Client) -> Self {
        LegacyKms { client, key_id: None }
    }

    /// Only accepts values under `key_id` (KMS refuses others: `IncorrectKeyException`),
    /// and encrypts legacy values under it.
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// The key id set by [`LegacyKms::with_key_id`], if any.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// One `Decrypt` of a legacy value.
    pub async fn decrypt(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(blob))
            .set_key_id(self.key_id.clone())
            .send()
            .await
            .map_err(|e| classify(e, "Decrypt"))?;
        let plain = out
            .plaintext
            .ok_or_else(|| KekError::new("Decrypt", KekErrorKind::Other, "the answer has no plaintext"))?;
        Ok(Zeroizing::new(plain.into_inner()))
    }

    /// One `Encrypt` of `plaintext` (at most [`LEGACY_MAX_PLAINTEXT`] bytes) under the
    /// key id set by [`LegacyKms::with_key_id`]: the legacy form, with no AAD and no
    /// encryption context (see the type's documentation). [`Error::NoLegacyKeyId`]
    /// without a key id, [`Error::PlaintextTooLong`] past the limit (both before any
    /// call), [`Error::Legacy`] when KMS fails.
    pub async fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let key_id = self.key_id.as_deref().ok_or(Error::NoLegacyKeyId)?;
        if plaintext.len() > LEGACY_MAX_PLAINTEXT {
            return Err(Error::PlaintextTooLong);
        }
        let out = self
            .client
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(plaintext))
            .send()
            .await
            .map_err(|e| Error::Legacy(classify(e, "Encrypt")))?;
        let blob = out
            .ciphertext_blob
            .ok_or_else(|| {
                Error::Legacy(KekError::new(
                    "Encrypt",
                    KekErrorKind::Other,
                    "the answer has no ciphertext",
                ))
            })?
            .into_inner();
        // Reads tell the forms apart by the first bytes; a KMS blob never starts like an
        // envelope value, and one that did would be misread, so it is refused.
        if crate::format::is_envelope(&blob) {
            return Err(Error::Legacy(KekError::new(
                "Encrypt",
                KekErrorKind::Other,
                "the ciphertext starts like an envelope value",
            )));
        }
        Ok(blob)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_kms::error::ErrorMetadata;
    use aws_sdk_kms::operation::decrypt::DecryptError;

    use super::*;

    /// The kind of a Decrypt answered with `code` (KMS's message plays no part).
    fn kind(code: &str) -> KekErrorKind {
        let e = DecryptError::generic(ErrorMetadata::builder().code(code).build());
        classify(SdkError::service_error(e, ()), "Decrypt").kind
    }

    #[test]
    fn kms_codes_map_as_before_the_shared_table() {
        use KekErrorKind::*;
        for (code, expected) in [
            ("NotFoundException", KeyUnavailable),
            ("DisabledException", KeyUnavailable),
            ("KMSInvalidStateException", KeyUnavailable),
            ("AccessDeniedException", KeyUnavailable),
            ("KeyUnavailableException", KeyUnavailable),
            ("InvalidCiphertextException", UnwrapFailed),
            ("IncorrectKeyException", UnwrapFailed),
            ("ThrottlingException", Transient),
            ("KMSInternalException", Transient),
            ("DependencyTimeoutException", Transient),
            ("LimitExceededException", Transient),
            ("InvalidKeyUsageException", Other),
            ("InvalidGrantTokenException", Other),
            ("UnrecognizedClientException", Other),
        ] {
            assert_eq!(kind(code), expected, "{code}");
        }
    }

    #[test]
    fn the_encryption_context_names_the_data_key_in_lower_case_hex() {
        let mut dek_id = [0u8; DEK_ID_LEN];
        dek_id[0] = 0xab;
        dek_id[DEK_ID_LEN - 1] = 0x0f;
        let ec = encryption_context(&dek_id, "users.email");
        let expected = format!("ab{}0f", "00".repeat(DEK_ID_LEN - 2));
        assert_eq!(ec.get(EC_DEK_ID), Some(&expected));
        assert_eq!(ec.get(EC_CONTEXT).map(String::as_str), Some("users.email"));
    }
}
