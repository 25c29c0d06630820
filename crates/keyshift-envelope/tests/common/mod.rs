//! Shared by the integration tests: an in-memory secret behind keyshift-client's
//! `Source` contract, and symmetric KEK values. (The providers against moto's server are
//! an end-to-end suite of the repository: `tests/envelope_emulator.rs`.)
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyshift_client::{
    AWSCURRENT, AWSPREVIOUS, Config, LabelMap, SecretValue, Source, SourceError, VersionId,
};
use keyshift_envelope::{CacheLimits, Envelope, SecretsManagerKek};

/// A symmetric KEK value as keyshift's `symmetric` kind stores it.
pub fn symmetric_value(byte: u8) -> String {
    serde_json::json!({"kty": "oct", "alg": "A256GCM", "k": URL_SAFE_NO_PAD.encode([byte; 32])}).to_string()
}

/// One secret in memory with Secrets Manager's label rules for what these tests do:
/// `put_current` adds a version and moves AWSCURRENT to it, AWSPREVIOUS to the old one;
/// past versions keep their values and are readable by id.
#[derive(Default)]
pub struct MemSecret {
    inner: Mutex<(LabelMap, HashMap<VersionId, String>)>,
    pub value_calls: AtomicU64,
}

impl MemSecret {
    pub fn with_current(id: &str, value: String) -> Self {
        let s = MemSecret::default();
        s.put_current(id, value);
        s
    }

    pub fn put_current(&self, id: &str, value: String) {
        let mut g = self.inner.lock().unwrap();
        let old = g.0.holder(AWSCURRENT).cloned();
        let mut map = LabelMap::new();
        for (v, stages) in g.0.iter() {
            let kept: Vec<String> = stages
                .iter()
                .filter(|s| *s != AWSCURRENT && *s != AWSPREVIOUS)
                .cloned()
                .collect();
            if !kept.is_empty() {
                map.insert(v.clone(), kept);
            }
        }
        if let Some(old) = old {
            map.insert(old, [AWSPREVIOUS]);
        }
        map.insert(VersionId::new(id), [AWSCURRENT]);
        g.0 = map;
        g.1.insert(VersionId::new(id), value);
    }
}

impl Source for MemSecret {
    async fn describe(&self) -> Result<LabelMap, SourceError> {
        Ok(self.inner.lock().unwrap().0.clone())
    }

    async fn value(&self, version: &VersionId) -> Result<Option<SecretValue>, SourceError> {
        self.value_calls.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .inner
            .lock()
            .unwrap()
            .1
            .get(version)
            .map(|v| SecretValue::new(v.clone())))
    }
}

pub type MemEnvelope = Envelope<SecretsManagerKek<std::sync::Arc<MemSecret>>>;

/// An envelope over an in-memory symmetric KEK secret `kek` (version `v1`).
pub async fn mem_envelope(limits: CacheLimits) -> (MemEnvelope, std::sync::Arc<MemSecret>) {
    let secret = std::sync::Arc::new(MemSecret::with_current("v1", symmetric_value(1)));
    let kek = SecretsManagerKek::start(
        secret.clone(),
        "kek",
        Config::new(Duration::from_secs(600)).unwrap(),
    )
    .await
    .unwrap();
    (Envelope::new(kek, limits), secret)
}

/// Another envelope (its own caches) over the same in-memory KEK secret.
pub async fn envelope_over(secret: std::sync::Arc<MemSecret>, limits: CacheLimits) -> MemEnvelope {
    let kek = SecretsManagerKek::start(secret, "kek", Config::new(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    Envelope::new(kek, limits)
}

pub type MemEnvelopeKek = SecretsManagerKek<std::sync::Arc<MemSecret>>;
