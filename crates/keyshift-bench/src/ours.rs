//! keyshift-client: its hot path (a lock-free read of the published view) and its
//! refresher.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use keyshift_client::{Client, Config, SdkSource};

/// A client for `secret` over `config`, started (first refresh done, refresher
/// running).
pub async fn start(sdk: &SdkConfig, secret: &str, config: Config) -> Result<Client<SdkSource>, String> {
    let source = SdkSource::new(aws_sdk_secretsmanager::Client::new(sdk), secret);
    Client::start(source, config)
        .await
        .map_err(|e| format!("keyshift-client start on {secret}: {e}"))
}

/// The defaults for a rotation with propagation gap `gap`.
pub fn default_config(gap: Duration) -> Result<Config, String> {
    Config::new(gap).map_err(|e| format!("keyshift-client config: {e}"))
}

/// Checks that `current()` is `expect_version` and `accepted_version(expect_version)`
/// is served, before anything is timed.
pub fn check(client: &Client<SdkSource>, expect_version: &str) -> Result<(), String> {
    let current = client.current().map_err(|e| format!("current(): {e}"))?;
    if current.id().as_str() != expect_version {
        return Err(format!(
            "current() is {}, expected {expect_version}",
            current.id()
        ));
    }
    client
        .accepted_version(expect_version)
        .map_err(|e| format!("accepted_version({expect_version}): {e}"))?;
    Ok(())
}

/// One timed batch of `ops` calls of `current()`, the value to use.
pub fn batch_current(client: &Client<SdkSource>, ops: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..ops {
        let _ = black_box(client.current());
    }
    start.elapsed()
}

/// One timed batch of `ops` calls of `accepted_version(id)`, an accepted version by id
/// (a verifier's `kid`).
pub fn batch_accepted(client: &Client<SdkSource>, id: &str, ops: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..ops {
        let _ = black_box(client.accepted_version(black_box(id)));
    }
    start.elapsed()
}
