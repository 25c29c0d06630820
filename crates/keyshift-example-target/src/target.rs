//! [`ApiKeyTarget`]: keyshift's [`Target`] for service B's API keys.

use keyshift::ports::{Target, TargetContext, TargetError};
use keyshift::{SecretValue, VersionId};

use crate::client::ServiceClient;
use crate::config::{ConfigError, ServiceUrl, Settings};
use crate::key::{ApiKey, KeyId};

/// Rotates an API key of service B with two valid keys during the rotation.
///
/// | step | method | at service B |
/// |---|---|---|
/// | createSecret | [`generate`](Target::generate) | nothing: a fresh `ks_` key, 256 random bits from aws-lc-rs |
/// | setSecret | [`set`](Target::set) | `PUT /admin/keys/{id}` with the key's SHA-256 (the key becomes a second valid one) |
/// | testSecret | [`test`](Target::test) | `GET /whoami` with the key: 200 or the step fails |
/// | the release (T after the swap) | [`revoke`](Target::revoke) | `DELETE /admin/keys/{id}` of the old key (404 is success) |
///
/// The id is derived from the key ([`KeyId`]), so every call for the same key names
/// the same id whichever version id keyshift passes (the release passes the id of
/// keyshift's copy, not the rotation's token). `set` and `revoke` are idempotent: a PUT
/// of the same id and hash is a no-op at service B, a DELETE of a gone key is a 404.
///
/// Service B's URL comes from the secret's [`SERVICE_URL_TAG`](crate::config::SERVICE_URL_TAG)
/// or the function's default ([`Settings::service_url`]); a bad one fails the step as a
/// configuration error, before any request.
#[derive(Debug, Clone)]
pub struct ApiKeyTarget {
    settings: Settings,
    client: ServiceClient,
}

impl ApiKeyTarget {
    /// A target with these settings and this HTTP client.
    pub fn new(settings: Settings, client: ServiceClient) -> ApiKeyTarget {
        ApiKeyTarget { settings, client }
    }

    /// The target the function runs: settings from the process environment
    /// ([`crate::config`] lists the variables), TLS with the system's root certificates.
    pub fn from_env() -> Result<ApiKeyTarget, ConfigError> {
        ApiKeyTarget::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ApiKeyTarget::from_env`] with the variables read through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ApiKeyTarget, ConfigError> {
        let settings = Settings::from_lookup(lookup)?;
        let client = ServiceClient::native_roots(settings.timeout).map_err(|e| ConfigError {
            source_name: "the system's root certificates".to_owned(),
            problem: format!("could not be loaded for TLS to service B: {e}"),
        })?;
        Ok(ApiKeyTarget::new(settings, client))
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn url(&self, ctx: &TargetContext<'_>) -> Result<ServiceUrl, TargetError> {
        self.settings
            .service_url(ctx.tags)
            .map_err(|e| TargetError::configuration(format!("secret {}: {e}", ctx.secret)))
    }
}

impl Target for ApiKeyTarget {
    async fn generate(
        &self,
        _ctx: &TargetContext<'_>,
        _current: Option<&SecretValue>,
    ) -> Result<SecretValue, TargetError> {
        let key = ApiKey::generate().map_err(|e| TargetError::retryable(e.to_string()))?;
        Ok(SecretValue::new(key.expose()))
    }

    async fn set(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let url = self.url(ctx)?;
        // Only a key of this target's own shape is registered: a pending value written by
        // hand must not become a credential by accident.
        let key = ApiKey::parse(value.expose())
            .map_err(|e| TargetError::refused(format!("secret {} version {version}: {e}", ctx.secret)))?;
        self.client
            .register(&url, &self.settings.admin_token, &key)
            .await?;
        tracing::info!(secret = %ctx.secret, version = %version, key_id = %key.id(), host = url.authority(), "registered at service B");
        Ok(())
    }

    async fn test(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let url = self.url(ctx)?;
        let key = ApiKey::parse(value.expose())
            .map_err(|e| TargetError::refused(format!("secret {} version {version}: {e}", ctx.secret)))?;
        self.client.check(&url, &key).await?;
        tracing::info!(secret = %ctx.secret, version = %version, key_id = %key.id(), "service B accepts the new key");
        Ok(())
    }

    async fn revoke(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let url = self.url(ctx)?;
        // Any value: the secret's first one may not have been a key of this shape (a
        // placeholder), and its id is simply unknown at service B (404, done).
        let id = KeyId::of(value.expose());
        self.client.revoke(&url, &self.settings.admin_token, &id).await?;
        tracing::info!(secret = %ctx.secret, version = %version, key_id = %id, "revoked at service B");
        Ok(())
    }
}
