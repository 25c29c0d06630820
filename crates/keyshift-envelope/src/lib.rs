//! keyshift-envelope: envelope encryption of stored values under a rotating key
//! encryption key (KEK).
//!
//! Each context (an environment, say) has a data key (DEK): 32 random bytes drawn
//! locally with aws-lc-rs, wrapped by a KEK and stored ([`WrappedDek`]). Values are
//! sealed locally with AES-256-GCM under their context's DEK, and **every ciphertext
//! carries the wrapped DEK it was sealed under**, so [`Envelope::decrypt`] needs nothing
//! but the ciphertext and the caller's AAD.
//!
//! * [`Envelope::generate_wrapped_dek`], [`Envelope::encrypt`], [`Envelope::decrypt`],
//!   [`Envelope::decrypt_many`] (each distinct DEK unwrapped once), [`Envelope::rewrap`]
//!   (a DEK moved to the KEK's current version, values untouched) and
//!   [`Envelope::rewrap_ciphertext`] (a stored value's header moved to the rewrapped
//!   DEK: a byte splice, no decryption).
//! * [`Envelope::encrypt_for`]: a write for a context that may not have a DEK yet (the
//!   envelope form with one, the legacy form without), saying which [`Form`] it wrote.
//! * [`Envelope::reencrypt`] and [`Envelope::reencrypt_many`]: values moved to another
//!   DEK (a context's DEK rotated after a suspected leak).
//! * KEK providers behind [`Kek`]: [`SecretsManagerKek`] (a `symmetric` secret keyshift
//!   rotates; records name the exact version id, unwrapping fetches that version through
//!   keyshift-client) and [`KmsKek`] (AWS KMS: `GenerateDataKey`, `Decrypt`,
//!   `ReEncrypt`).
//! * The legacy path: a value encrypted directly with KMS (no DEK) is told apart by its
//!   first bytes and decrypts through [`LegacyKms`]. A write for a context that has a
//!   DEK always produces the envelope form (upgrade on write); a context without one
//!   falls back to the legacy write until its DEK exists.
//! * A [`DekCache`] with limits ([`CacheLimits`]: maximum age, uses, entries) and a
//!   per-request [`Scope`]; [`Stats`] counts unwraps, so a caller can check "unwraps ==
//!   distinct DEKs".
//! * [`DataKey`]: an unwrapped DEK that seals and opens with no lock and no call (the
//!   hot path).
//!
//! # Formats (version 1)
//!
//! All integers are big-endian. Every length is checked against its bound before it is
//! used; the parser ([`mod@format`]) never panics and its errors ([`FormatError`]) name the
//! field, never the bytes.
//!
//! **Wrapped DEK record** (the part shared by both forms below):
//!
//! | bytes | field | bounds |
//! |---|---|---|
//! | 1 | provider tag: `1` Secrets Manager (keyshift), `2` AWS KMS | known tags only |
//! | 2 | key id length *k* | 1..=2048 |
//! | *k* | key id: the secret id (Secrets Manager) or the key ARN (KMS) | printable ASCII |
//! | 1 | key version length *v* | 0..=64; ≥ 1 for Secrets Manager, 0 for KMS |
//! | *v* | key version: the exact Secrets Manager version id of the KEK | printable ASCII |
//! | 16 | DEK id (random, drawn with the DEK) | |
//! | 1 | context length *c* | 0..=255 |
//! | *c* | context label (for example the environment id) | UTF-8 |
//! | 2 | wrapped key length *w* | 1..=1024 |
//! | *w* | wrapped key: Secrets Manager: 12-byte nonce, AES-256-GCM of the DEK under the KEK version, 16-byte tag (60 bytes), with `KSW`, the version byte and the record up to here as AAD; KMS: the `CiphertextBlob` of `GenerateDataKey`/`ReEncrypt`, encryption context = DEK id and context | |
//!
//! **Stored wrapped DEK** ([`WrappedDek::to_bytes`]): `KSW` (3 bytes), format version
//! `0x01` (1 byte), the record, nothing after it.
//!
//! **Ciphertext**:
//!
//! | bytes | field | bounds |
//! |---|---|---|
//! | 3 | magic `KSE` (never the start of a KMS ciphertext blob, which is how legacy values are told apart) | exact |
//! | 1 | format version `0x01` | exact |
//! | … | wrapped DEK record (above) | as above |
//! | 12 | AES-256-GCM nonce (random per value) | |
//! | *n* + 16 | AES-256-GCM ciphertext and tag | *n* ≤ 1 MiB |
//!
//! The value's AAD is `KSE`, `0x01`, the DEK id, the context (length-prefixed), then the
//! caller's AAD (bind the environment id and the value name: a ciphertext copied to
//! another row or environment then fails to open). The KEK id and wrapped key are not in
//! it, so a rewrap can replace them without re-sealing; they are authenticated by the
//! KEK instead (the wrapped key opens only under the KEK version the record names, bound
//! to the DEK id and context), and a cached DEK serves only the exact record bytes it
//! was unwrapped from. So every byte of a ciphertext is checked: a flipped bit fails
//! with a typed error.
//!
//! # KEK rotation
//!
//! keyshift rotates the `symmetric` secret; new DEKs are wrapped by its AWSCURRENT. Old
//! records keep naming the version that wrapped them and keep opening (keyshift-client
//! fetches past versions by id). [`Envelope::rewrap`] moves a context's DEK to the
//! current version (one unwrap, one wrap) and [`Envelope::rewrap_ciphertext`] moves a
//! stored value's header to it; [`referenced_keks`] lists the KEK versions still named,
//! so none is retired while data needs it.
//!
//! # Writes and the legacy form
//!
//! [`Envelope::encrypt_for`] takes the context's wrapped DEK if it has one. With one, the
//! value is sealed in the envelope form whatever form the row held before, so every
//! legacy row is upgraded by its next write. Without one, it falls back to the legacy
//! form: one KMS `Encrypt` under the key id of the configured [`LegacyKms`]
//! ([`LegacyKms::with_key_id`]), counted in [`Stats::legacy_encrypts`]; with no such
//! writer (or without the `kms` feature) it fails with [`Error::NoDataKey`]. The legacy
//! form binds no AAD: a legacy value copied to another row or context still decrypts,
//! which is why the upgrade matters and why a context should get its DEK early.
//!
//! # DEK rotation
//!
//! When one context's DEK may have leaked (not the KEK: [`Envelope::rewrap`] is for
//! that), rotate that context's DEK: generate a new wrapped DEK for it, re-encrypt the
//! context's values with [`Envelope::reencrypt_many`] (each distinct old DEK unwrapped
//! once; values already under the new DEK are left as they are; legacy values are
//! upgraded too), then store the new wrapped DEK and the new values. Old values carry
//! their wrapped DEK and keep opening until they are replaced, and a value already under
//! the new DEK comes back as `None`, so running the rotation again finishes an
//! interrupted one. Copies of the old values (backups) stay readable with the old DEK.

pub mod cache;
pub mod dek;
pub mod error;
pub mod format;
pub mod kek;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "secrets-manager")]
pub mod sm;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use zeroize::Zeroizing;

pub use cache::{CacheLimits, DekCache};
pub use dek::DataKey;
pub use error::{Error, KekError, KekErrorKind};
pub use format::{FormatError, KekId, Provider};
pub use kek::{Generated, Kek};
#[cfg(feature = "kms")]
pub use kms::{KmsKek, LegacyKms};
#[cfg(feature = "secrets-manager")]
pub use sm::SecretsManagerKek;

use format::{CiphertextRef, MAX_CONTEXT, RecordRef, parse_ciphertext, parse_wrapped_dek};

/// A stored wrapped data key (`KSW`, version, record). Not secret: it holds the DEK only
/// in wrapped form. Validated on construction.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WrappedDek {
    bytes: Box<[u8]>,
}

impl fmt::Debug for WrappedDek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rec = self.record();
        f.debug_struct("WrappedDek")
            .field("kek", &rec.kek_id().to_string())
            .field("context", &rec.context)
            .finish_non_exhaustive()
    }
}

impl WrappedDek {
    /// Parses a stored wrapped data key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        parse_wrapped_dek(bytes)?;
        Ok(WrappedDek { bytes: bytes.into() })
    }

    /// The stored form.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn parts(&self) -> (RecordRef<'_>, &[u8]) {
        // Validated in every constructor; the fallback is never taken.
        parse_wrapped_dek(&self.bytes).unwrap_or((EMPTY_RECORD, &[]))
    }

    fn record(&self) -> RecordRef<'_> {
        self.parts().0
    }

    fn record_bytes(&self) -> &[u8] {
        self.parts().1
    }

    /// The KEK that wraps it: provider, key id, exact version.
    pub fn kek_id(&self) -> KekId {
        self.record().kek_id()
    }

    /// The context it was generated for.
    pub fn context(&self) -> &str {
        self.record().context
    }

    /// Its data key id.
    pub fn dek_id(&self) -> [u8; format::DEK_ID_LEN] {
        *self.record().dek_id
    }

    /// The wrapped DEK a ciphertext carries.
    pub fn of_ciphertext(ciphertext: &[u8]) -> Result<Self, FormatError> {
        let parsed = parse_ciphertext(ciphertext)?;
        let mut bytes = Vec::with_capacity(4 + parsed.record_bytes.len());
        bytes.extend_from_slice(&format::WRAPPED_DEK_MAGIC);
        bytes.push(format::FORMAT_V1);
        bytes.extend_from_slice(parsed.record_bytes);
        WrappedDek::from_bytes(&bytes)
    }
}

const EMPTY_RECORD: RecordRef<'static> = RecordRef {
    provider: Provider::Kms,
    key_id: "",
    key_version: "",
    dek_id: &[0; format::DEK_ID_LEN],
    context: "",
    wrapped_key: &[],
};

/// How many KEK versions each of `wrapped` names: the versions that must not be retired.
pub fn referenced_keks<'a>(wrapped: impl IntoIterator<Item = &'a WrappedDek>) -> BTreeMap<KekId, u64> {
    let mut out = BTreeMap::new();
    for w in wrapped {
        *out.entry(w.kek_id()).or_insert(0) += 1;
    }
    out
}

/// Which form a write produced ([`Envelope::encrypt_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Form {
    /// Sealed locally under the context's DEK, binding the caller's AAD (`KSE`, version
    /// 1).
    Envelope,
    /// Encrypted directly with KMS through [`LegacyKms`]: no DEK and no AAD.
    Legacy,
}

impl Form {
    /// The form of a stored value, told apart by its first bytes as
    /// [`Envelope::decrypt`] does (nothing is parsed or checked).
    pub fn of(ciphertext: &[u8]) -> Form {
        if format::is_envelope(ciphertext) {
            Form::Envelope
        } else {
            Form::Legacy
        }
    }
}

/// What an envelope has done so far (all counters only grow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// DEKs unwrapped through the KEK (each is one KMS `Decrypt` with [`KmsKek`], one
    /// version lookup with [`SecretsManagerKek`]).
    pub unwraps: u64,
    /// DEKs generated.
    pub generates: u64,
    /// DEKs rewrapped to the current KEK version.
    pub rewraps: u64,
    /// Legacy values decrypted directly through KMS.
    pub legacy_decrypts: u64,
    /// Legacy values written directly through KMS ([`Envelope::encrypt_for`] for a
    /// context without a DEK; one `Encrypt` each).
    pub legacy_encrypts: u64,
    /// Shared cache hits.
    pub cache_hits: u64,
    /// Shared cache misses.
    pub cache_misses: u64,
}

#[derive(Debug, Default)]
struct Counters {
    unwraps: AtomicU64,
    generates: AtomicU64,
    rewraps: AtomicU64,
    legacy_decrypts: AtomicU64,
    legacy_encrypts: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Held while a record is unwrapped; shared by those waiting for the same record.
type Gate = Arc<tokio::sync::Mutex<()>>;

/// Envelope encryption under one KEK, with a shared DEK cache and, optionally, the
/// legacy direct-KMS path (reads, and writes for contexts without a DEK).
pub struct Envelope<K: Kek> {
    kek: K,
    cache: DekCache,
    #[cfg(feature = "kms")]
    legacy: Option<LegacyKms>,
    counters: Counters,
    /// One gate per record being unwrapped: concurrent misses of the same DEK wait for
    /// the first unwrap instead of each calling the KEK (a cold start of many requests
    /// costs one KMS `Decrypt` per DEK, not one per request).
    unwrapping: Mutex<HashMap<Box<[u8]>, Gate>>,
}

impl<K: Kek> fmt::Debug for Envelope<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("provider", &self.kek.provider())
            .field("cache", &self.cache)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<K: Kek> Envelope<K> {
    /// Envelope encryption under `kek`, caching DEKs within `limits`.
    pub fn new(kek: K, limits: CacheLimits) -> Self {
        Envelope {
            kek,
            cache: DekCache::new(limits),
            #[cfg(feature = "kms")]
            legacy: None,
            counters: Counters::default(),
            unwrapping: Mutex::new(HashMap::new()),
        }
    }

    /// Also decrypts legacy values (encrypted directly with KMS) through `legacy`, and,
    /// when it has a key id ([`LegacyKms::with_key_id`]), writes the legacy form through
    /// it for contexts without a DEK ([`Envelope::encrypt_for`]).
    #[cfg(feature = "kms")]
    pub fn with_legacy(mut self, legacy: LegacyKms) -> Self {
        self.legacy = Some(legacy);
        self
    }

    /// The KEK.
    pub fn kek(&self) -> &K {
        &self.kek
    }

    /// The shared DEK cache.
    pub fn cache(&self) -> &DekCache {
        &self.cache
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            unwraps: get(&c.unwraps),
            generates: get(&c.generates),
            rewraps: get(&c.rewraps),
            legacy_decrypts: get(&c.legacy_decrypts),
            legacy_encrypts: get(&c.legacy_encrypts),
            cache_hits: get(&c.cache_hits),
            cache_misses: get(&c.cache_misses),
        }
    }

    /// A new DEK for `context` (at most 255 bytes), wrapped by the KEK's current
    /// version. The plain DEK goes to the shared cache (no unwrap for the first writes).
    pub async fn generate_wrapped_dek(&self, context: &str) -> Result<WrappedDek, Error> {
        if context.len() > MAX_CONTEXT {
            return Err(Error::ContextTooLong);
        }
        let mut dek_id = [0u8; format::DEK_ID_LEN];
        aws_lc_rs::rand::fill(&mut dek_id).map_err(|_| Error::Crypto("draw a data key id"))?;
        let generated = self.kek.generate(&dek_id, context).await?;
        bump(&self.counters.generates);
        let wrapped = WrappedDek::from_bytes(&generated.wrapped)?;
        let key = DataKey::new(generated.dek, wrapped.record_bytes(), dek_id, context)?;
        self.cache.insert(wrapped.record_bytes(), key, 0, Instant::now());
        Ok(wrapped)
    }

    fn check_record(&self, record: &RecordRef<'_>) -> Result<(), Error> {
        if record.provider != self.kek.provider() {
            return Err(Error::ProviderMismatch);
        }
        Ok(())
    }

    /// The DEK of `record` (parsed from `record_bytes`): from the shared cache, else
    /// unwrapped through the KEK (and cached). `uses` operations are counted against it.
    async fn key_for(
        &self,
        record: &RecordRef<'_>,
        record_bytes: &[u8],
        uses: u64,
    ) -> Result<DataKey, Error> {
        self.check_record(record)?;
        let now = Instant::now();
        if let Some(key) = self.cache.get(record_bytes, uses, now) {
            bump(&self.counters.cache_hits);
            return Ok(key);
        }
        let gate = Arc::clone(
            self.unwrapping
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(record_bytes.into())
                .or_default(),
        );
        let result = async {
            let _turn = gate.lock().await;
            // Whoever held the gate before may have cached the key meanwhile.
            if let Some(key) = self.cache.get(record_bytes, uses, Instant::now()) {
                bump(&self.counters.cache_hits);
                return Ok(key);
            }
            bump(&self.counters.cache_misses);
            bump(&self.counters.unwraps);
            let raw = self.kek.unwrap(record).await?;
            let key = DataKey::new(raw, record_bytes, *record.dek_id, record.context)?;
            self.cache.insert(record_bytes, key.clone(), uses, now);
            Ok(key)
        }
        .await;
        let mut gates = self.unwrapping.lock().unwrap_or_else(PoisonError::into_inner);
        // The last one through removes the gate (a waiter still holds a clone of it).
        if gates.get(record_bytes).is_some_and(|g| Arc::ptr_eq(g, &gate)) && Arc::strong_count(&gate) == 2 {
            gates.remove(record_bytes);
        }
        result
    }

    /// The unwrapped DEK of `wrapped`, for sealing and opening many values locally
    /// ([`DataKey::seal`], [`DataKey::open`]): the hot path.
    pub async fn data_key(&self, wrapped: &WrappedDek) -> Result<DataKey, Error> {
        let (record, bytes) = wrapped.parts();
        self.key_for(&record, bytes, 0).await
    }

    /// Seals `plaintext` under `wrapped`'s DEK, binding `aad`. Always the envelope form.
    pub async fn encrypt(
        &self,
        plaintext: &[u8],
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let (record, bytes) = wrapped.parts();
        self.key_for(&record, bytes, 1).await?.seal(plaintext, aad)
    }

    /// A write for a context that may not have a DEK yet. With `wrapped` (the context's
    /// DEK), always the envelope form bound to `aad`, whatever form the row held before:
    /// the upgrade on write. Without it, the legacy form: one KMS `Encrypt` through the
    /// configured [`LegacyKms`] under its key id, binding no AAD (`aad` is not used; a
    /// legacy value moved to another row still decrypts, which is why the upgrade
    /// matters). [`Error::NoDataKey`] when there is no DEK and no legacy writer (no
    /// [`LegacyKms`] with a key id, or the crate built without the `kms` feature).
    pub async fn encrypt_for(
        &self,
        plaintext: &[u8],
        wrapped: Option<&WrappedDek>,
        aad: &[u8],
    ) -> Result<(Vec<u8>, Form), Error> {
        match wrapped {
            Some(wrapped) => Ok((self.encrypt(plaintext, wrapped, aad).await?, Form::Envelope)),
            None => Ok((self.legacy_encrypt(plaintext).await?, Form::Legacy)),
        }
    }

    /// Moves one value to `to`'s DEK: see [`Scope::reencrypt`].
    pub async fn reencrypt(
        &self,
        ciphertext: &[u8],
        aad: &[u8],
        to: &WrappedDek,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.scope().reencrypt(ciphertext, aad, to).await
    }

    /// Moves many `(ciphertext, aad)` values to `to`'s DEK ([`Scope::reencrypt`] each),
    /// looking each distinct DEK (the old ones and `to`'s) up once (the shared cache
    /// first, else one unwrap); one result per item, in order. This is the rotation of
    /// one context's DEK: generate a new wrapped DEK for the context, re-encrypt its
    /// values with this, store the new values (`Some`) and the new wrapped DEK.
    pub async fn reencrypt_many(
        &self,
        items: &[(&[u8], &[u8])],
        to: &WrappedDek,
    ) -> Vec<Result<Option<Vec<u8>>, Error>> {
        let mut scope = self.scope();
        let mut out = Vec::with_capacity(items.len());
        for (ciphertext, aad) in items {
            out.push(scope.reencrypt(ciphertext, aad, to).await);
        }
        out
    }

    /// Opens `ciphertext` with `aad`: an envelope value through its own wrapped DEK, a
    /// legacy value (not starting with `KSE`) through [`LegacyKms`] when configured.
    pub async fn decrypt(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.scope().decrypt(ciphertext, aad).await
    }

    /// Opens many values, unwrapping each distinct DEK once (the shared cache first);
    /// one result per item, in order.
    pub async fn decrypt_many(&self, items: &[(&[u8], &[u8])]) -> Vec<Result<Zeroizing<Vec<u8>>, Error>> {
        let mut scope = self.scope();
        let mut out = Vec::with_capacity(items.len());
        for (ciphertext, aad) in items {
            out.push(scope.decrypt(ciphertext, aad).await);
        }
        out
    }

    /// A per-request scope: each distinct DEK is looked up (shared cache, else unwrap)
    /// once for the scope's life and dropped with it. With [`CacheLimits::none`] that is
    /// exactly one unwrap per distinct DEK per request.
    pub fn scope(&self) -> Scope<'_, K> {
        Scope {
            envelope: self,
            keys: HashMap::new(),
        }
    }

    async fn legacy_decrypt(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        #[cfg(feature = "kms")]
        if let Some(legacy) = &self.legacy {
            bump(&self.counters.legacy_decrypts);
            return legacy.decrypt(blob).await.map_err(Error::Legacy);
        }
        let _ = blob;
        Err(Error::NotEnvelope)
    }

    async fn legacy_encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        #[cfg(feature = "kms")]
        if let Some(legacy) = self.legacy.as_ref().filter(|l| l.key_id().is_some()) {
            let blob = legacy.encrypt(plaintext).await?;
            bump(&self.counters.legacy_encrypts);
            return Ok(blob);
        }
        let _ = plaintext;
        Err(Error::NoDataKey)
    }

    /// `wrapped`'s DEK wrapped by the KEK's current version (the same DEK, id and
    /// context: every value sealed under it still opens), or a copy of `wrapped` when it
    /// already is. Store the result in place of the old one, then move stored values
    /// with [`Envelope::rewrap_ciphertext`] before retiring the old KEK version.
    pub async fn rewrap(&self, wrapped: &WrappedDek) -> Result<WrappedDek, Error> {
        let (record, bytes) = wrapped.parts();
        self.check_record(&record)?;
        let key = if self.kek.rewrap_needs_key() {
            Some(self.key_for(&record, bytes, 0).await?)
        } else {
            None
        };
        let Some(new) = self.kek.rewrap(&record, key.as_ref().map(DataKey::raw)).await? else {
            return Ok(wrapped.clone());
        };
        bump(&self.counters.rewraps);
        let new = WrappedDek::from_bytes(&new)?;
        if let Some(key) = key {
            let fresh = DataKey::new(
                key.raw().clone(),
                new.record_bytes(),
                *record.dek_id,
                record.context,
            )?;
            self.cache.insert(new.record_bytes(), fresh, 0, Instant::now());
        }
        Ok(new)
    }

    /// `ciphertext` with its header moved to `wrapped` (a rewrap of the same DEK): the
    /// sealed value is copied unchanged, nothing is decrypted. Refused when `wrapped`
    /// holds another DEK id or context.
    pub fn rewrap_ciphertext(ciphertext: &[u8], wrapped: &WrappedDek) -> Result<Vec<u8>, Error> {
        let parsed = parse_ciphertext(ciphertext)?;
        let new = wrapped.record();
        if new.dek_id != parsed.record.dek_id || new.context != parsed.record.context {
            return Err(Error::DataKeyMismatch);
        }
        let rec = wrapped.record_bytes();
        let mut out = Vec::with_capacity(4 + rec.len() + format::NONCE_LEN + parsed.sealed.len());
        out.extend_from_slice(&format::CIPHERTEXT_MAGIC);
        out.push(format::FORMAT_V1);
        out.extend_from_slice(rec);
        out.extend_from_slice(&parsed.nonce);
        out.extend_from_slice(parsed.sealed);
        Ok(out)
    }
}

/// A per-request scope ([`Envelope::scope`]): the DEKs it looked up, by exact record.
pub struct Scope<'a, K: Kek> {
    envelope: &'a Envelope<K>,
    keys: HashMap<Box<[u8]>, DataKey>,
}

impl<K: Kek> fmt::Debug for Scope<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").field("keys", &self.keys.len()).finish()
    }
}

impl<K: Kek> Scope<'_, K> {
    async fn lookup(&mut self, record: &RecordRef<'_>, record_bytes: &[u8]) -> Result<DataKey, Error> {
        if let Some(k) = self.keys.get(record_bytes) {
            return Ok(k.clone());
        }
        let key = self.envelope.key_for(record, record_bytes, 1).await?;
        self.keys.insert(record_bytes.into(), key.clone());
        Ok(key)
    }

    async fn key(&mut self, parsed: &CiphertextRef<'_>) -> Result<DataKey, Error> {
        self.lookup(&parsed.record, parsed.record_bytes).await
    }

    async fn key_of(&mut self, wrapped: &WrappedDek) -> Result<DataKey, Error> {
        let (record, bytes) = wrapped.parts();
        self.lookup(&record, bytes).await
    }

    /// [`Envelope::decrypt`] within the scope.
    pub async fn decrypt(&mut self, ciphertext: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if !format::is_envelope(ciphertext) {
            return self.envelope.legacy_decrypt(ciphertext).await;
        }
        let parsed = parse_ciphertext(ciphertext)?;
        let key = self.key(&parsed).await?;
        key.open_parsed(&parsed.nonce, parsed.record_bytes, parsed.sealed, aad)
    }

    /// [`Envelope::encrypt`] within the scope.
    pub async fn encrypt(
        &mut self,
        plaintext: &[u8],
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.key_of(wrapped).await?.seal(plaintext, aad)
    }

    /// `ciphertext` (opened with `aad`) moved to `to`'s DEK, within the scope:
    ///
    /// * sealed under another DEK, or a legacy value (through [`LegacyKms`]): opened and
    ///   sealed again under `to`'s DEK with `aad` (a fresh nonce): `Some(new value)`;
    /// * sealed under `to`'s DEK but with another record of it (the same DEK id and
    ///   context, wrapped by another KEK version): the header splice of
    ///   [`Envelope::rewrap_ciphertext`], `Some(new value)`; the sealed bytes are
    ///   copied unchanged, and the old record is replaced, neither unwrapped nor checked
    ///   (only the DEK id and context it names are used);
    /// * sealed under exactly `to`'s record: `None` (nothing to store).
    ///
    /// In the last two cases the value is checked by opening it locally under `to`'s
    /// DEK with `aad`, so an `Ok` always means the value stored afterwards opens with
    /// `aad`; a value that does not authenticate is [`Error::Open`] in every case, and an
    /// error never leaves anything to store.
    pub async fn reencrypt(
        &mut self,
        ciphertext: &[u8],
        aad: &[u8],
        to: &WrappedDek,
    ) -> Result<Option<Vec<u8>>, Error> {
        if !format::is_envelope(ciphertext) {
            let plain = self.envelope.legacy_decrypt(ciphertext).await?;
            return self.key_of(to).await?.seal(&plain, aad).map(Some);
        }
        let parsed = parse_ciphertext(ciphertext)?;
        let (to_record, to_bytes) = to.parts();
        if parsed.record_bytes == to_bytes {
            let key = self.key_of(to).await?;
            key.open_parsed(&parsed.nonce, parsed.record_bytes, parsed.sealed, aad)?;
            return Ok(None);
        }
        if parsed.record.dek_id == to_record.dek_id && parsed.record.context == to_record.context {
            let moved = Envelope::<K>::rewrap_ciphertext(ciphertext, to)?;
            let key = self.key_of(to).await?;
            key.open_parsed(&parsed.nonce, to_bytes, parsed.sealed, aad)?;
            return Ok(Some(moved));
        }
        let plain =
            self.key(&parsed)
                .await?
                .open_parsed(&parsed.nonce, parsed.record_bytes, parsed.sealed, aad)?;
        self.key_of(to).await?.seal(&plain, aad).map(Some)
    }

    /// How many distinct DEKs the scope holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
