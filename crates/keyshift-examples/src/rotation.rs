//! Rotating these keys with keyshift: [`Target`]s whose new values are real key
//! material. A signing or data key has no downstream system to register with or revoke
//! from, so only `generate` and `test` do anything.

use keyshift::ports::{Target, TargetContext, TargetError};
use keyshift::secret::{SecretValue, VersionId};

use crate::keys::{DataKey, KeyError, SigningKey};

/// New values are fresh Ed25519 private JWKs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SigningKeys;

/// New values are fresh AES-256 JWKs.
#[derive(Debug, Clone, Copy, Default)]
pub struct DataKeys;

fn refuse(e: KeyError) -> TargetError {
    match e {
        KeyError::Random => TargetError::retryable(e.to_string()),
        _ => TargetError::refused(e.to_string()),
    }
}

impl Target for SigningKeys {
    async fn generate(
        &self,
        _ctx: &TargetContext<'_>,
        _current: Option<&SecretValue>,
    ) -> Result<SecretValue, TargetError> {
        Ok(SecretValue::new(SigningKey::generate().map_err(refuse)?.to_jwk()))
    }

    async fn set(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        _value: &SecretValue,
    ) -> Result<(), TargetError> {
        Ok(())
    }

    async fn test(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        SigningKey::from_jwk(value.expose()).map(drop).map_err(refuse)
    }

    async fn revoke(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        _value: &SecretValue,
    ) -> Result<(), TargetError> {
        Ok(())
    }
}

impl Target for DataKeys {
    async fn generate(
        &self,
        _ctx: &TargetContext<'_>,
        _current: Option<&SecretValue>,
    ) -> Result<SecretValue, TargetError> {
        Ok(SecretValue::new(DataKey::generate().map_err(refuse)?.to_jwk()))
    }

    async fn set(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        _value: &SecretValue,
    ) -> Result<(), TargetError> {
        Ok(())
    }

    async fn test(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        DataKey::from_jwk(value.expose()).map(drop).map_err(refuse)
    }

    async fn revoke(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        _value: &SecretValue,
    ) -> Result<(), TargetError> {
        Ok(())
    }
}
