//! The rotation function for service B's API keys: keyshift's Lambda runtime with
//! [`ApiKeyTarget`]. A bad environment variable fails the cold start, naming it.

use keyshift_example_target::ApiKeyTarget;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // This crate's log lines name hosts, statuses and version ids, never a key.
    keyshift_lambda::logging::allow_crates(&["keyshift_example_target"]);
    // A bad variable of the target's own fails the cold start, logged like keyshift's.
    keyshift_lambda::run_with(|_config, _sdk| ApiKeyTarget::from_env()).await
}
