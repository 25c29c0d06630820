//! The default target: a generated value and no downstream system.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_random_password::GetRandomPasswordError;
use keyshift::ports::{StoreErrorKind, Target, TargetError};
use keyshift::secret::{SecretValue, VersionId};

use crate::secrets::classify;

/// Generates values with Secrets Manager's `GetRandomPassword` (no punctuation, so the
/// value is safe in URLs, headers and connection strings) and registers them nowhere:
/// the right target for a signing or encryption key, or an API key whose consumers read
/// the secret. A database or service credential needs a target of its own that
/// implements setSecret (add the second credential), testSecret and the revoke.
#[derive(Debug, Clone)]
pub struct GeneratedValue {
    client: Client,
    length: i64,
}

impl GeneratedValue {
    /// Values of `length` characters.
    pub fn new(client: Client, length: i64) -> Self {
        GeneratedValue { client, length }
    }
}

/// A failed GetRandomPassword as a target error. Only throttling and server or network
/// failures are retryable: an invalid length or set of exclusions (InvalidParameter,
/// InvalidRequest) or a role that may not call it is refused again on every retry.
fn password_error<R: std::fmt::Debug>(
    e: aws_sdk_secretsmanager::error::SdkError<GetRandomPasswordError, R>,
) -> TargetError {
    let e = classify(e, "GetRandomPassword");
    TargetError {
        retryable: matches!(e.kind, StoreErrorKind::Throttled | StoreErrorKind::Transient),
        message: e.to_string(),
    }
}

impl Target for GeneratedValue {
    /// Nothing downstream to revoke: the release reads no old value.
    fn revokes(&self) -> bool {
        false
    }

    async fn generate(&self) -> Result<SecretValue, TargetError> {
        let out = self
            .client
            .get_random_password()
            .password_length(self.length)
            .exclude_punctuation(true)
            .require_each_included_type(true)
            .send()
            .await
            .map_err(password_error)?;
        out.random_password()
            .map(SecretValue::new)
            .ok_or_else(|| TargetError {
                retryable: true,
                message: "GetRandomPassword returned no password".into(),
            })
    }

    async fn set(&self, _version: &VersionId, _value: &SecretValue) -> Result<(), TargetError> {
        Ok(())
    }

    async fn test(&self, _version: &VersionId, value: &SecretValue) -> Result<(), TargetError> {
        // Nothing to log in to; check the value is what generate makes.
        if !value.expose().is_empty() {
            Ok(())
        } else {
            Err(TargetError {
                retryable: false,
                message: "the pending value is empty".into(),
            })
        }
    }

    async fn revoke(&self, _version: &VersionId, _value: &SecretValue) -> Result<(), TargetError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use keyshift::executor::ExecError;

    use super::*;
    use crate::HandlerError;
    use crate::testing::{meta, service_error};

    fn retryable_and_type(code: &str) -> (bool, &'static str) {
        let e = GetRandomPasswordError::generic(meta(code, "the service's message"));
        let e = password_error(service_error(e));
        (e.retryable, HandlerError::from(&ExecError::Target(e)).error_type)
    }

    #[test]
    fn a_refused_password_request_is_not_retryable() {
        // A length out of range, a combination of exclusions that leaves nothing, a role
        // that may not call it: the same request fails the same way next time.
        for code in [
            "InvalidParameterException",
            "InvalidRequestException",
            "AccessDeniedException",
        ] {
            assert_eq!(retryable_and_type(code), (false, "keyshift.Failed"), "{code}");
        }
        for code in ["ThrottlingException", "InternalServiceError"] {
            assert_eq!(retryable_and_type(code), (true, "keyshift.Retryable"), "{code}");
        }
    }
}
