//! The KEK: a `symmetric` secret keyshift rotates in Secrets Manager, read through
//! keyshift-client, or the same secret kept in a local JSON file (tests, the benchmark,
//! rehearsals).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyshift_client::{
    AWSCURRENT, AWSPREVIOUS, Config, LabelMap, SdkSource, SecretValue, Source, SourceError, SourceErrorKind,
    VersionId,
};
use keyshift_envelope::{CacheLimits, Envelope, SecretsManagerKek};
use serde::{Deserialize, Serialize};

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

/// The envelope the tool works with.
pub type MigrateEnvelope = Envelope<SecretsManagerKek<Arc<KekSource>>>;

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
    Ok(Envelope::new(kek, migration_cache_limits()))
}

/// The SDK source for secret `secret_id`, credentials and Region from the environment.
pub async fn aws_source(secret_id: &str) -> KekSource {
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = keyshift_client::aws_sdk_secretsmanager::Client::new(&conf);
    KekSource::new(KekBackend::Aws(SdkSource::new(client, secret_id)))
}
