//! The Lambda runtime loop: configuration at cold start, then one handler per
//! invocation. The stock binary is `run_stock()`; a function for your own system is
//! `run(MyTarget)`.
//!
//! ```no_run
//! use keyshift::ports::{Target, TargetContext, TargetError};
//! use keyshift::{SecretValue, VersionId};
//!
//! /// A service that accepts two API keys at once.
//! struct MyApi;
//!
//! impl Target for MyApi {
//!     async fn generate(&self, _: &TargetContext<'_>, _: Option<&SecretValue>) -> Result<SecretValue, TargetError> {
//!         Ok(SecretValue::new("a fresh key"))
//!     }
//!     async fn set(&self, _: &TargetContext<'_>, _: &VersionId, _: &SecretValue) -> Result<(), TargetError> {
//!         Ok(()) // register the key as a second valid one
//!     }
//!     async fn test(&self, _: &TargetContext<'_>, _: &VersionId, _: &SecretValue) -> Result<(), TargetError> {
//!         Ok(()) // call the service with it; no side effects
//!     }
//!     async fn revoke(&self, _: &TargetContext<'_>, _: &VersionId, _: &SecretValue) -> Result<(), TargetError> {
//!         Ok(()) // the old key stops working
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     keyshift_lambda::run(MyApi).await
//! }
//! ```

use aws_config::SdkConfig;
use keyshift::ports::Target;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::{Config, Function, HandlerError, logging};

/// Runs the function with `target` until the runtime stops it: logging, configuration
/// from the environment (a bad variable fails the cold start, naming it), the SDK's
/// default credentials and Region.
pub async fn run<T: Target>(target: T) -> Result<(), lambda_runtime::Error> {
    run_with(|_, _| Ok::<T, std::convert::Infallible>(target)).await
}

/// [`run`] with a target built from the validated configuration and the SDK's
/// configuration (to make clients of its own). A target that cannot be built (a bad
/// variable of its own) fails the cold start: the error is logged and returned.
pub async fn run_with<T: Target, E: std::fmt::Display>(
    make: impl FnOnce(&Config, &SdkConfig) -> Result<T, E>,
) -> Result<(), lambda_runtime::Error> {
    logging::init();
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Err(e.into());
        }
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let target = match make(&config, &sdk) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration of the target");
            return Err(e.to_string().into());
        }
    };
    serve(Function::with_target(config, &sdk, target)).await
}

/// The stock function: values of the kind each secret's `keyshift:kind` tag asks for.
pub async fn run_stock() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Err(e.into());
        }
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    serve(Function::new(config, &sdk)).await
}

async fn serve<T: Target>(function: Function<T>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let function = &function;
        async move {
            let (payload, context) = event.into_parts();
            let time_left = std::time::UNIX_EPOCH
                .checked_add(std::time::Duration::from_millis(context.deadline))
                .and_then(|deadline| deadline.duration_since(std::time::SystemTime::now()).ok());
            // Boxed: the executor's future is deep, and the runtime's layers nest it more.
            Box::pin(function.handle(&payload, &context.invoked_function_arn, time_left))
                .await
                .map_err(|e: HandlerError| {
                    tracing::warn!(error_type = e.error_type(), error = %e.message(), "invocation failed");
                    Diagnostic::from(e)
                })
        }
    }))
    .await
}
