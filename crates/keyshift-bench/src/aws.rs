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

use crate::timing::Samples;

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

/// Times cache hits of `lookup` on `secret`: primes the entry once (a real request to
/// the emulator), then `batches` batches of `ops` hits, each checked to be the
/// expected version.
pub async fn time_hits(
    cache: &SecretsManagerCachingClient,
    secret: &str,
    lookup: Lookup<'_>,
    expect_version: &str,
    batches: usize,
    ops: u64,
) -> Result<Samples, String> {
    let (version_id, stage) = match lookup {
        Lookup::Current => (None, None),
        Lookup::Version(id) => (Some(id), None),
    };
    let get = || cache.get_secret_value(secret, version_id, stage, false);
    let primed = get().await.map_err(|e| format!("priming {secret}: {e}"))?;
    if primed.version_id.as_deref() != Some(expect_version) {
        return Err(format!(
            "priming {secret} returned version {:?}, expected {expect_version}",
            primed.version_id
        ));
    }
    let mut durations = Vec::with_capacity(batches + 1);
    // The first batch warms up and is dropped.
    for _ in 0..=batches {
        let start = Instant::now();
        for _ in 0..ops {
            let hit = get().await.map_err(|e| format!("cache hit on {secret}: {e}"))?;
            std::hint::black_box(hit);
        }
        durations.push(start.elapsed());
    }
    Ok(Samples::from_batches(&durations[1..], ops))
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
