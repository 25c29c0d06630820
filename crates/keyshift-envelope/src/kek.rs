//! The key encryption key providers' trait.

use std::future::Future;

use crate::dek::DekBytes;
use crate::error::Error;
use crate::format::{DEK_ID_LEN, Provider, RecordRef};

/// A fresh data key and its stored wrapped form (`KSW`, version, record).
pub struct Generated {
    /// The data key.
    pub dek: DekBytes,
    /// The wrapped data key, as [`crate::WrappedDek::to_bytes`] gives it.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated").finish_non_exhaustive()
    }
}

/// A key encryption key: wraps data keys under its current version and unwraps them
/// under the exact version their record names.
///
/// A provider must bind every wrapped key to the record's data key id and context (the
/// Secrets Manager provider seals the key with the record as AAD; the KMS provider puts
/// both in the encryption context), so a record cannot be moved to another data key.
pub trait Kek: Send + Sync {
    /// The provider tag its records carry.
    fn provider(&self) -> Provider;

    /// Whether [`Kek::rewrap`] needs the plain data key (the Secrets Manager provider
    /// wraps locally; KMS re-encrypts on its side with `ReEncrypt`).
    fn rewrap_needs_key(&self) -> bool;

    /// A fresh data key for `context` with id `dek_id`, wrapped by the current version.
    fn generate(
        &self,
        dek_id: &[u8; DEK_ID_LEN],
        context: &str,
    ) -> impl Future<Output = Result<Generated, Error>> + Send;

    /// The data key `record` wraps, unwrapped by the exact KEK version it names.
    fn unwrap(&self, record: &RecordRef<'_>) -> impl Future<Output = Result<DekBytes, Error>> + Send;

    /// `record`'s data key wrapped by the current KEK version (the stored form), or
    /// `None` when the record is already wrapped by it. `dek` is the plain data key when
    /// [`Kek::rewrap_needs_key`] says so.
    fn rewrap(
        &self,
        record: &RecordRef<'_>,
        dek: Option<&DekBytes>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;
}
