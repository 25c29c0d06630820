//! The Lambda binary: configuration at cold start, then one handler per invocation.

use keyshift_lambda::{Config, Function, HandlerError, logging};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Err(e.into());
        }
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let function = Function::new(config, &sdk);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let function = &function;
        async move {
            let (payload, context) = event.into_parts();
            let time_left = std::time::UNIX_EPOCH
                .checked_add(std::time::Duration::from_millis(context.deadline))
                .and_then(|deadline| deadline.duration_since(std::time::SystemTime::now()).ok());
            function
                .handle(&payload, &context.invoked_function_arn, time_left)
                .await
                .map_err(|e: HandlerError| {
                    tracing::warn!(error_type = e.error_type, error = %e.message, "invocation failed");
                    Diagnostic::from(e)
                })
        }
    }))
    .await
}
