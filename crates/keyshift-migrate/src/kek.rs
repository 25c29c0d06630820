//! The KEK: a `symmetric` secret keyshift rotates in Secrets Manager, read through
//! keyshift-client, or the same secret kept in a local JSON file (tests, the benchmark,
//! rehearsals); or a key in AWS KMS ([`MigrateKek::Kms`]), whose legacy values are KMS
//! `Encrypt` blobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::error::BoxError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyshift_client::{
    AWSCURRENT, AWSPREVIOUS, Config, LabelMap, SdkSource, SecretValue, Source, SourceError, SourceErrorKind,
    VersionId,
};
use keyshift_envelope::dek::DekBytes;
use keyshift_envelope::format::{DEK_ID_LEN, Provider, RecordRef};
use keyshift_envelope::{CacheLimits, Envelope, Generated, Kek, KmsKek, LegacyKms, SecretsManagerKek};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::MigrateError;

/// A KEK secret in a file: its id, the version labelled AWSCURRENT, the previous one,
/// and every version's 32-byte key (base64url, no padding).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KekFile {
    /// The secret id records carry.
    pub secret_id: String,
    /// The version labelled AWSCURRENT.
    pub current: String,
    /// The version labelled AWSPREVIOUS, if any.
    #[serde(default)]
    pub previous: Option<String>,
    /// Every version's key.
    pub keys: BTreeMap<String, String>,
}

impl KekFile {
    /// A secret `secret_id` with one version `version` holding `key`.
    pub fn new(secret_id: &str, version: &str, key: [u8; 32]) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(version.to_owned(), URL_SAFE_NO_PAD.encode(key));
        KekFile {
            secret_id: secret_id.to_owned(),
            current: version.to_owned(),
            previous: None,
            keys,
        }
    }

    /// A rotation: `version` holding `key` becomes AWSCURRENT, the old one AWSPREVIOUS.
    pub fn rotate(&mut self, version: &str, key: [u8; 32]) {
        self.keys.insert(version.to_owned(), URL_SAFE_NO_PAD.encode(key));
        self.previous = Some(std::mem::replace(&mut self.current, version.to_owned()));
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, MigrateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MigrateError::Kek(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| MigrateError::Kek(format!("{}: {e}", path.display())))
    }

    /// Writes `path` (mode 0600 is the caller's business).
    pub fn save(&self, path: &Path) -> Result<(), MigrateError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| MigrateError::Kek(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| MigrateError::Kek(format!("{}: {e}", path.display())))
    }

    /// The key of `version`.
    pub fn key(&self, version: &str) -> Option<[u8; 32]> {
        let k = self.keys.get(version)?;
        URL_SAFE_NO_PAD.decode(k).ok()?.try_into().ok()
    }

    fn labels(&self) -> LabelMap {
        let mut map = LabelMap::new();
        for v in self.keys.keys() {
            let mut stages = Vec::new();
            if *v == self.current {
                stages.push(AWSCURRENT);
            }
            if self.previous.as_deref() == Some(v) {
                stages.push(AWSPREVIOUS);
            }
            map.insert(VersionId::new(v.clone()), stages);
        }
        map
    }

    /// The value of `version` as keyshift's `symmetric` kind stores it (a JWK `oct`).
    pub fn jwk(&self, version: &str) -> Option<String> {
        let k = self.keys.get(version)?;
        Some(format!(r#"{{"kty":"oct","alg":"A256GCM","k":"{k}"}}"#))
    }
}

/// Where the KEK secret is read from.
#[derive(Debug)]
pub enum KekBackend {
    /// Secrets Manager through the AWS SDK (the default credential chain).
    Aws(SdkSource),
    /// A [`KekFile`], read again at every call.
    File(PathBuf),
}

/// The KEK secret's source, counting the calls made to it (for Secrets Manager, each is
/// one `DescribeSecret` or `GetSecretValue`).
#[derive(Debug)]
pub struct KekSource {
    backend: KekBackend,
    calls: AtomicU64,
}

impl KekSource {
    /// A source over `backend`.
    pub fn new(backend: KekBackend) -> Self {
        KekSource {
            backend,
            calls: AtomicU64::new(0),
        }
    }

    /// A [`KekFile`] at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::new(KekBackend::File(path.into()))
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The secret id records carry.
    pub fn secret_id(&self) -> Result<String, MigrateError> {
        match &self.backend {
            KekBackend::Aws(s) => Ok(s.secret_id().to_owned()),
            KekBackend::File(p) => Ok(KekFile::load(p)?.secret_id),
        }
    }

    /// The version labelled AWSCURRENT now.
    pub async fn current_version(&self) -> Result<String, MigrateError> {
        let labels = self
            .describe()
            .await
            .map_err(|e| MigrateError::Kek(e.to_string()))?;
        labels
            .holder(AWSCURRENT)
            .map(|v| v.to_string())
            .ok_or_else(|| MigrateError::Kek("no AWSCURRENT version".into()))
    }
}

fn file_error(e: MigrateError) -> SourceError {
    SourceError::new(SourceErrorKind::Other, e.to_string())
}

impl Source for KekSource {
    async fn describe(&self) -> Result<LabelMap, SourceError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match &self.backend {
            KekBackend::Aws(s) => s.describe().await,
            KekBackend::File(p) => Ok(KekFile::load(p).map_err(file_error)?.labels()),
        }
    }

    async fn value(&self, version: &VersionId) -> Result<Option<SecretValue>, SourceError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match &self.backend {
            KekBackend::Aws(s) => s.value(version).await,
            KekBackend::File(p) => Ok(KekFile::load(p)
                .map_err(file_error)?
                .jwk(&version.to_string())
                .map(SecretValue::new)),
        }
    }
}

/// Counts the requests a KMS client sends (every attempt, retries included): the KMS
/// calls a step reports.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicU64>);

impl CallCounter {
    /// Requests sent so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "keyshift-migrate call counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A KMS client over `conf` whose requests `counter` counts.
pub fn kms_client(conf: aws_sdk_kms::config::Builder, counter: &CallCounter) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(conf.interceptor(counter.clone()).build())
}

/// The KEK a migration runs under.
#[derive(Debug)]
pub enum MigrateKek {
    /// A `symmetric` secret keyshift rotates (or its file stand-in); legacy values are in
    /// [`crate::legacy`]'s form, encrypted by a version of the same secret.
    Secret(SecretsManagerKek<Arc<KekSource>>),
    /// A KMS key (id, ARN or alias: moving the alias is the rotation `rewrap` follows);
    /// legacy values are KMS `Encrypt` blobs, one `Decrypt` each.
    Kms {
        /// The KEK.
        kek: KmsKek,
        /// The KMS requests sent through the client.
        calls: CallCounter,
        /// The key ARN [`MigrateKek::current`] last resolved: a step's rewraps go to it,
        /// with no `DescribeKey` per environment.
        current: std::sync::Mutex<Option<String>>,
    },
}

/// The key id and version that new DEKs are wrapped under now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentKek {
    /// The secret id, or the KMS key ARN.
    pub key_id: String,
    /// The secret's version id; empty for KMS (the ARN is the version).
    pub key_version: String,
}

impl MigrateKek {
    /// Reads the KEK's current version again (the Secrets Manager view; nothing to do
    /// for KMS, which resolves the alias at every call).
    pub async fn refresh(&self) -> Result<(), MigrateError> {
        match self {
            MigrateKek::Secret(k) => k.refresh().await.map_err(MigrateError::from),
            MigrateKek::Kms { .. } => Ok(()),
        }
    }

    /// What new DEKs are wrapped under now (Secrets Manager: `DescribeSecret`; KMS:
    /// `DescribeKey`).
    pub async fn current(&self) -> Result<CurrentKek, MigrateError> {
        match self {
            MigrateKek::Secret(k) => Ok(CurrentKek {
                key_id: k.secret_id().to_owned(),
                key_version: k.client().source().current_version().await?,
            }),
            MigrateKek::Kms { kek, current, .. } => {
                let arn = kek.current_arn().await?;
                *current.lock().unwrap_or_else(|e| e.into_inner()) = Some(arn.clone());
                Ok(CurrentKek {
                    key_id: arn,
                    key_version: String::new(),
                })
            }
        }
    }

    /// Requests sent to the KEK's service so far (Secrets Manager `DescribeSecret` and
    /// `GetSecretValue`; every KMS request).
    pub fn calls(&self) -> u64 {
        match self {
            MigrateKek::Secret(k) => k.client().source().calls(),
            MigrateKek::Kms { calls, .. } => calls.get(),
        }
    }
}

impl Kek for MigrateKek {
    fn provider(&self) -> Provider {
        match self {
            MigrateKek::Secret(k) => k.provider(),
            MigrateKek::Kms { kek, .. } => kek.provider(),
        }
    }

    fn rewrap_needs_key(&self) -> bool {
        match self {
            MigrateKek::Secret(k) => k.rewrap_needs_key(),
            MigrateKek::Kms { kek, .. } => kek.rewrap_needs_key(),
        }
    }

    async fn generate(
        &self,
        dek_id: &[u8; DEK_ID_LEN],
        context: &str,
    ) -> Result<Generated, keyshift_envelope::Error> {
        match self {
            MigrateKek::Secret(k) => k.generate(dek_id, context).await,
            MigrateKek::Kms { kek, .. } => kek.generate(dek_id, context).await,
        }
    }

    async fn unwrap(&self, record: &RecordRef<'_>) -> Result<DekBytes, keyshift_envelope::Error> {
        match self {
            MigrateKek::Secret(k) => k.unwrap(record).await,
            MigrateKek::Kms { kek, .. } => kek.unwrap(record).await,
        }
    }

    async fn rewrap(
        &self,
        record: &RecordRef<'_>,
        dek: Option<&DekBytes>,
    ) -> Result<Option<Vec<u8>>, keyshift_envelope::Error> {
        match self {
            MigrateKek::Secret(k) => k.rewrap(record, dek).await,
            MigrateKek::Kms { kek, current, .. } => {
                let resolved = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match resolved {
                    Some(arn) => kek.rewrap_to(record, &arn).await,
                    None => kek.rewrap(record, dek).await,
                }
            }
        }
    }
}

/// The envelope the tool works with.
pub type MigrateEnvelope = Envelope<MigrateKek>;

/// Opens a legacy value with `aad`: [`crate::legacy`]'s form under the KEK secret, or a
/// KMS `Encrypt` blob through KMS (which binds no AAD: that is the legacy form's
/// weakness the migration ends).
pub async fn legacy_decrypt(
    envelope: &MigrateEnvelope,
    value: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, MigrateError> {
    match envelope.kek() {
        MigrateKek::Secret(k) => crate::legacy::decrypt(k.client(), value, aad)
            .await
            .map_err(|e| MigrateError::Kek(e.to_string())),
        MigrateKek::Kms { .. } => envelope.decrypt(value, aad).await.map_err(MigrateError::from),
    }
}

/// Cache limits for a migration: every environment's DEK stays for the run (a pass over
/// values ordered by id meets each environment's DEK again and again).
pub fn migration_cache_limits() -> CacheLimits {
    CacheLimits {
        max_age: Duration::from_secs(24 * 3600),
        max_uses: 1 << 32,
        max_entries: 10_000_000,
    }
}

/// The envelope over `source`: keyshift-client started on it, the migration's cache.
pub async fn open_envelope(source: KekSource) -> Result<MigrateEnvelope, MigrateError> {
    let secret_id = source.secret_id()?;
    let config = Config::new(Duration::from_secs(600)).map_err(|e| MigrateError::Kek(e.to_string()))?;
    let kek = SecretsManagerKek::start(Arc::new(source), secret_id, config).await?;
    Ok(Envelope::new(MigrateKek::Secret(kek), migration_cache_limits()))
}

/// The envelope over KMS key `key_id` through `client` (built by [`kms_client`] with
/// `calls`), legacy values decrypted through the same client.
pub fn open_kms_envelope(client: aws_sdk_kms::Client, key_id: &str, calls: CallCounter) -> MigrateEnvelope {
    let kek = KmsKek::new(client.clone(), key_id);
    Envelope::new(
        MigrateKek::Kms {
            kek,
            calls,
            current: std::sync::Mutex::default(),
        },
        migration_cache_limits(),
    )
    .with_legacy(LegacyKms::new(client))
}

/// The KMS envelope for key `key_id`, credentials, Region and endpoint from the
/// environment (`AWS_ENDPOINT_URL` reaches an emulator).
pub async fn aws_kms_envelope(key_id: &str) -> MigrateEnvelope {
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let calls = CallCounter::default();
    let client = kms_client(aws_sdk_kms::config::Builder::from(&conf), &calls);
    open_kms_envelope(client, key_id, calls)
}

/// The SDK source for secret `secret_id`, credentials and Region from the environment.
pub async fn aws_source(secret_id: &str) -> KekSource {
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = keyshift_client::aws_sdk_secretsmanager::Client::new(&conf);
    KekSource::new(KekBackend::Aws(SdkSource::new(client, secret_id)))
}
