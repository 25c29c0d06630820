//! The production [`Source`]: Secrets Manager through `aws-sdk-secretsmanager`.
//!
//! `describe` is one `DescribeSecret` (its `VersionIdsToStages`); `value` is one
//! `GetSecretValue` with `VersionId`. IAM: `secretsmanager:DescribeSecret` and
//! `secretsmanager:GetSecretValue` on the secret (and `kms:Decrypt` on its key if it
//! uses a customer managed key).

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use keyshift::aws_errors::{AwsErrorClass, class_of};
use keyshift::ports::short_error;
use keyshift::{SecretValue, VersionId};

use crate::source::{LabelMap, Source, SourceError, SourceErrorKind};

/// One secret in Secrets Manager, read through the SDK.
#[derive(Debug, Clone)]
pub struct SdkSource {
    client: Client,
    secret_id: String,
}

impl SdkSource {
    /// The secret `secret_id` (a name or an ARN) read with `client`.
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        SdkSource {
            client,
            secret_id: secret_id.into(),
        }
    }

    /// The secret's id as given.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }
}

impl Source for SdkSource {
    async fn describe(&self) -> Result<LabelMap, SourceError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| classify(e, "DescribeSecret"))?;
        let mut map = LabelMap::new();
        for (id, stages) in out.version_ids_to_stages().into_iter().flatten() {
            map.insert(VersionId::new(id.as_str()), stages.iter().cloned());
        }
        Ok(map)
    }

    async fn value(&self, version: &VersionId) -> Result<Option<SecretValue>, SourceError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_id(version.as_str())
            .send()
            .await;
        match out {
            Ok(out) => match out.secret_string() {
                Some(s) => Ok(Some(SecretValue::new(s))),
                None => Err(SourceError::new(
                    SourceErrorKind::Inconsistent,
                    format!(
                        "GetSecretValue: version {version} has no SecretString (binary secrets are not supported)"
                    ),
                )),
            },
            Err(e) => {
                let e = classify(e, "GetSecretValue");
                // No such version, or the rotation engine's placeholder without a value.
                if e.kind() == SourceErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Classifies an SDK error once. The message carries the operation, the error code and
/// the service's message, never a request parameter or a response body.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
    operation: &str,
) -> SourceError {
    let kind = match &e {
        SdkError::ServiceError(_) => match class_of(e.code().unwrap_or_default()) {
            Some(AwsErrorClass::NotFound) => SourceErrorKind::NotFound,
            Some(AwsErrorClass::AccessDenied | AwsErrorClass::Unauthenticated) => {
                SourceErrorKind::AccessDenied
            }
            Some(AwsErrorClass::Throttled) => SourceErrorKind::Throttled,
            // A bad request, or DecryptionFailure (the key refuses): the same read fails
            // the same way.
            Some(AwsErrorClass::InvalidParameter | AwsErrorClass::InvalidState | AwsErrorClass::Crypto) => {
                SourceErrorKind::Other
            }
            _ => SourceErrorKind::Transient,
        },
        SdkError::ConstructionFailure(_) => SourceErrorKind::Other,
        _ => SourceErrorKind::Transient,
    };
    let code = e.code().unwrap_or("no error code").to_owned();
    let message = e.message().map(str::to_owned).unwrap_or_else(|| short_error(&e));
    SourceError::new(kind, format!("{operation}: {code}: {message}"))
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::error::ErrorMetadata;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

    use super::*;

    fn kind(code: &str) -> SourceErrorKind {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the service's message")
            .build();
        let e = SdkError::service_error(GetSecretValueError::generic(meta), ());
        classify(e, "GetSecretValue").kind()
    }

    #[test]
    fn secrets_manager_codes_map_as_before_the_shared_table() {
        use SourceErrorKind::*;
        for (code, expected) in [
            ("ResourceNotFoundException", NotFound),
            ("AccessDeniedException", AccessDenied),
            ("AccessDenied", AccessDenied),
            ("UnrecognizedClientException", AccessDenied),
            ("ThrottlingException", Throttled),
            ("TooManyRequestsException", Throttled),
            ("RequestLimitExceeded", Throttled),
            ("InvalidParameterException", Other),
            ("InvalidRequestException", Other),
            ("DecryptionFailure", Other),
            ("InternalServiceError", Transient),
            ("LimitExceededException", Transient),
            ("ResourceExistsException", Transient),
            ("KMSDisabledException", Transient),
            ("SomethingNew", Transient),
        ] {
            assert_eq!(kind(code), expected, "{code}");
        }
        let timeout: SdkError<GetSecretValueError, ()> = SdkError::timeout_error("timed out");
        assert_eq!(classify(timeout, "GetSecretValue").kind(), Transient);
    }
}
