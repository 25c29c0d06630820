//! The rotation function for service B's API keys: keyshift's Lambda runtime with
//! [`ApiKeyTarget`]. A bad environment variable fails the cold start, naming it.

use keyshift_example_target::ApiKeyTarget;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // JSON logs before the target's configuration is read, so that a bad variable is
    // logged like every other error (`run` initialises them again, harmlessly).
    keyshift_lambda::logging::init();
    let target =
        ApiKeyTarget::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    keyshift_lambda::run(target).await
}
