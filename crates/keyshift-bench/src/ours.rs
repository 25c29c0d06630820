//! keyshift-client: its hot path (a lock-free read of the published view) and its
//! refresher.

use std::hint::black_box;
use std::time::Duration;

use aws_config::SdkConfig;
use keyshift_client::{Client, Config, SdkSource};

use crate::timing::Samples;

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

/// Times `current()`, the value to use, after checking it is `expect_version`.
pub fn time_current(
    client: &Client<SdkSource>,
    expect_version: &str,
    batches: usize,
    ops: u64,
) -> Result<Samples, String> {
    let current = client.current().map_err(|e| format!("current(): {e}"))?;
    if current.id().as_str() != expect_version {
        return Err(format!(
            "current() is {}, expected {expect_version}",
            current.id()
        ));
    }
    Ok(Samples::measure(batches, ops, || {
        let _ = black_box(client.current());
    }))
}

/// Times `accepted_version(id)`, an accepted version by id (a verifier's `kid`).
pub fn time_accepted(
    client: &Client<SdkSource>,
    id: &str,
    batches: usize,
    ops: u64,
) -> Result<Samples, String> {
    client
        .accepted_version(id)
        .map_err(|e| format!("accepted_version({id}): {e}"))?;
    Ok(Samples::measure(batches, ops, || {
        let _ = black_box(client.accepted_version(black_box(id)));
    }))
}
