//! The AWS-maintained `aws_secretsmanager_caching` crate: its cache hit, and the
//! requests it sends for one secret over time.
//!
//! Its cache key is (secret id, version id, version stage), so a reader of the window
//! keeps one entry per stage. An entry is refreshed on the first read after its TTL: a
//! DescribeSecret, and a GetSecretValue only if the stage moved. A stage that no version
//! carries is not cached at all (GetSecretValue answers ResourceNotFound and the error
//! is returned, not stored), so every read of it is a GetSecretValue.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_secretsmanager_caching::SecretsManagerCachingClient;

use aws_secretsmanager_caching::output::GetSecretValueOutputDef;

/// Their documented default TTL (the Agent's `ttl_seconds`, and the README examples).
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Their README's cache size.
pub const DEFAULT_SIZE: usize = 1000;

/// The stages a window reader reads.
pub const WINDOW: [&str; 3] = ["AWSCURRENT", "AWSPENDING", "ROTATING"];

/// Their cache over `config`, with `ttl`, serving stale values on transient errors as
/// the Agent does by default.
pub fn cache(config: &SdkConfig, ttl: Duration) -> Result<SecretsManagerCachingClient, String> {
    let size = NonZeroUsize::new(DEFAULT_SIZE).ok_or("cache size is zero")?;
    SecretsManagerCachingClient::new(aws_sdk_secretsmanager::Client::new(config), size, ttl, true)
        .map_err(|e| format!("SecretsManagerCachingClient::new: {e}"))
}

/// What a hit lookup asks for.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// The value to use: no version id, no stage (their default, AWSCURRENT).
    Current,
    /// One version by id.
    Version(&'a str),
}

impl Lookup<'_> {
    async fn get(
        &self,
        cache: &SecretsManagerCachingClient,
        secret: &str,
    ) -> Result<GetSecretValueOutputDef, String> {
        let version_id = match self {
            Lookup::Current => None,
            Lookup::Version(id) => Some(*id),
        };
        cache
            .get_secret_value(secret, version_id, None, false)
            .await
            .map_err(|e| format!("get_secret_value on {secret}: {e}"))
    }
}

/// Primes the cache entry for `lookup` (a real request to the emulator) and checks it
/// holds `expect_version`.
pub async fn prime(
    cache: &SecretsManagerCachingClient,
    secret: &str,
    lookup: Lookup<'_>,
    expect_version: &str,
) -> Result<(), String> {
    let primed = lookup.get(cache, secret).await?;
    if primed.version_id.as_deref() != Some(expect_version) {
        return Err(format!(
            "priming {secret} returned version {:?}, expected {expect_version}",
            primed.version_id
        ));
    }
    Ok(())
}

/// One timed batch of `ops` cache hits of `lookup`.
pub async fn batch(
    cache: &SecretsManagerCachingClient,
    secret: &str,
    lookup: Lookup<'_>,
    ops: u64,
) -> Result<Duration, String> {
    let start = Instant::now();
    for _ in 0..ops {
        std::hint::black_box(lookup.get(cache, secret).await?);
    }
    Ok(start.elapsed())
}

/// Reads `stages` of `secret` once (errors ignored: a stage no version carries).
pub async fn read_once(cache: &SecretsManagerCachingClient, secret: &str, stages: &[&str]) {
    for stage in stages {
        let _ = cache.get_secret_value(secret, None, Some(stage), false).await;
    }
}

/// Reads `stages` of `secret` every `every` until `until`, the way a service that
/// consults the cache per request would, counting rounds in `rounds`.
pub async fn read_until(
    cache: &SecretsManagerCachingClient,
    secret: &str,
    stages: &[&str],
    every: Duration,
    until: Instant,
    rounds: &AtomicU64,
) {
    let mut tick = tokio::time::interval(every);
    while Instant::now() < until {
        tick.tick().await;
        read_once(cache, secret, stages).await;
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}
