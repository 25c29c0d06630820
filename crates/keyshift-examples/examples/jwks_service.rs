//! The JWKS service on a real secret, through the SDK.
//!
//! ```text
//! cargo run -p keyshift-examples --example jwks_service -- <secret-id> <T-seconds> [listen-address]
//! ```
//!
//! or with `KEYSHIFT_SECRET_ID`, `KEYSHIFT_GAP_SECONDS` (T, the propagation gap the
//! rotation function was deployed with) and `LISTEN` (default `127.0.0.1:8080`) in the
//! environment; `KEYSHIFT_ISSUER` and `KEYSHIFT_AUDIENCE` set the tokens' `iss` and
//! `aud` (default `keyshift-example` and `keyshift-example-api`). AWS credentials and
//! region come from the usual places (`AWS_PROFILE`, `AWS_REGION`, ...); an
//! `AWS_ENDPOINT_URL` points it at an emulator. The secret must hold a stock signing
//! key pair (tag it `keyshift:kind` = `ed25519`, `ecdsa-p256`, `ecdsa-p384` or
//! `rsa-2048`, and rotate it with keyshift's function).
//!
//! ```text
//! curl -s localhost:8080/.well-known/jwks.json
//! TOKEN=$(curl -s -XPOST localhost:8080/token -H 'content-type: application/json' -d '{"sub":"alice"}' | jq -r .token)
//! curl -s localhost:8080/whoami -H "authorization: Bearer $TOKEN"
//! curl -s localhost:8080/health
//! ```

use std::sync::Arc;
use std::time::Duration;

use keyshift_client::{Client, Config, SdkSource};
use keyshift_examples::jwks_service;
use keyshift_examples::token_service::{TokenPolicy, TokenService};

/// The argument at `index`, else the environment variable `var`.
fn setting(index: usize, var: &str) -> Option<String> {
    std::env::args().nth(index).or_else(|| std::env::var(var).ok())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let usage = "usage: jwks_service <secret-id> <T-seconds> [listen-address] \
                 (or KEYSHIFT_SECRET_ID, KEYSHIFT_GAP_SECONDS, LISTEN)";
    let secret_id = setting(1, "KEYSHIFT_SECRET_ID").ok_or(usage)?;
    let gap: u64 = setting(2, "KEYSHIFT_GAP_SECONDS")
        .ok_or(usage)?
        .parse()
        .map_err(|_| "T must be a whole number of seconds")?;
    let listen = setting(3, "LISTEN").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let issuer = std::env::var("KEYSHIFT_ISSUER").unwrap_or_else(|_| "keyshift-example".to_owned());
    let audience = std::env::var("KEYSHIFT_AUDIENCE").unwrap_or_else(|_| "keyshift-example-api".to_owned());

    // Refreshes well inside T, validated against it.
    let config = Config::new(Duration::from_secs(gap))?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let source = SdkSource::new(aws_sdk_secretsmanager::Client::new(&aws), secret_id.as_str());
    // The first refresh must succeed; then a task keeps the window fresh.
    let client = Client::start(source, config).await?;
    let current = client.current()?;
    tracing::info!(
        secret = %secret_id,
        current = %current.id(),
        accepted = client.accepted()?.len(),
        max_age_s = jwks_service::jwks_max_age(&client.config()).as_secs(),
        "keyshift-client started"
    );

    let tokens = TokenService::new(client, TokenPolicy::new(issuer, audience));
    let app = jwks_service::router(Arc::new(tokens));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(address = %listener.local_addr()?, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
