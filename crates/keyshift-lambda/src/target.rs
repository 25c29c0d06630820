//! The default target: a generated value and no downstream system.

use aws_sdk_secretsmanager::Client;
use keyshift::ports::{Target, TargetError};
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

impl Target for GeneratedValue {
    async fn generate(&self) -> Result<SecretValue, TargetError> {
        let out = self
            .client
            .get_random_password()
            .password_length(self.length)
            .exclude_punctuation(true)
            .require_each_included_type(true)
            .send()
            .await
            .map_err(|e| {
                let e = classify(e, "GetRandomPassword");
                TargetError {
                    retryable: !matches!(e.kind, keyshift::ports::StoreErrorKind::AccessDenied),
                    message: e.to_string(),
                }
            })?;
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
