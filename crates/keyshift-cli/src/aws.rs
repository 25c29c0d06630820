//! The AWS configuration and the three clients.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::cli::AwsArgs;
use crate::exit::{CliError, Exit};

/// How long one Lambda Invoke may take: the function's hard limit (15 minutes) and a
/// minute for the round trip.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(16 * 60);

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The SDK configuration: aws-config's standard chain (environment variables, the shared
/// files, `credential_process`, the container and instance roles), with `--profile`,
/// `--region` and `--endpoint-url` on top. Refused (exit 2) when no Region is known.
pub async fn load(args: &AwsArgs) -> Result<SdkConfig, CliError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(CliError::new(
            Exit::Usage,
            "no AWS Region: pass --region, set AWS_REGION, or give the profile a region",
        ));
    }
    Ok(sdk)
}

/// Secrets Manager, with the SDK's standard retries (reads, and RotateSecret, whose
/// ClientRequestToken the SDK fills in once per command so a retry is the same request).
pub fn secrets(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(sdk)
}

/// Lambda, for Invoke: retries disabled (a function error or a lost answer is reported,
/// never sent again behind the operator's back), a timeout long enough for the
/// function's 15 minutes, and `lambda_endpoint` (or the shared endpoint) as endpoint.
pub fn lambda(sdk: &SdkConfig, lambda_endpoint: Option<&str>) -> aws_sdk_lambda::Client {
    let mut config = aws_sdk_lambda::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_timeout(INVOKE_TIMEOUT)
                .build(),
        );
    if let Some(url) = lambda_endpoint {
        config = config.endpoint_url(url);
    }
    aws_sdk_lambda::Client::from_conf(config.build())
}

/// SQS, with the SDK's standard retries (receive, delete and visibility changes are
/// safe to repeat).
pub fn sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}

#[cfg(test)]
mod tests {
    use aws_config::retry::RetryMode;

    use super::*;

    fn args(region: Option<&str>) -> AwsArgs {
        AwsArgs {
            region: region.map(str::to_owned),
            endpoint_url: Some("http://127.0.0.1:1".into()),
            ..AwsArgs::default()
        }
    }

    #[tokio::test]
    async fn the_lambda_client_never_retries() {
        let sdk = load(&args(Some("eu-west-1"))).await.expect("a config");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:1"));
        let client = lambda(&sdk, Some("http://127.0.0.1:2"));
        let conf = client.config();
        let retry = conf.retry_config().expect("a retry config");
        assert_eq!(retry.max_attempts(), 1, "one attempt only");
        assert_eq!(retry.mode(), RetryMode::Standard);
        let timeouts = conf.timeout_config().expect("timeouts");
        assert_eq!(timeouts.operation_timeout(), Some(INVOKE_TIMEOUT));
        // The shared client keeps the SDK's standard retries.
        let sm = secrets(&sdk);
        assert!(sm.config().retry_config().expect("retries").max_attempts() > 1);
    }
}
