//! The stock target: a value of the kind the secret's tags choose (see [`crate::kinds`]),
//! and no downstream system.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_random_password::GetRandomPasswordError;
use keyshift::ports::{StoreErrorKind, Target, TargetContext, TargetError};
use keyshift::secret::{SecretValue, VersionId};
use serde_json::{Map, Value};

use crate::kinds::{self, Kind, KindName, PasswordOptions, Spec, ValueKind};
use crate::secrets::classify;
use keyshift_keys::{self as keygen, KeyError, KeyKind};
use keyshift_postgres::{PgOptions, PostgresTarget};

/// Generates the value the secret's `keyshift:kind` tag asks for (passwords with
/// Secrets Manager's `GetRandomPassword`, keys with aws-lc-rs) and registers it nowhere:
/// the right target for a signing or encryption key, an API key whose consumers read the
/// secret, or the generated fields of a structured secret. A database or service
/// credential needs a target that registers, tests and revokes (see [`Target`]).
#[derive(Debug, Clone)]
pub struct StockTarget {
    client: Client,
    default_kind: KindName,
    password_length: i64,
    postgres: std::sync::Arc<PostgresTarget>,
}

impl StockTarget {
    /// Generates `default_kind` for secrets without a kind tag, passwords of
    /// `password_length` characters unless a tag says otherwise; `postgres` secrets with
    /// the default [`PgOptions`].
    pub fn new(client: Client, default_kind: KindName, password_length: i64) -> Self {
        StockTarget::with_postgres(client, default_kind, password_length, PgOptions::default())
    }

    /// [`StockTarget::new`] with the options of `postgres` secrets (CA bundle, session
    /// grace, connect timeout).
    pub fn with_postgres(
        client: Client,
        default_kind: KindName,
        password_length: i64,
        pg: PgOptions,
    ) -> Self {
        StockTarget {
            postgres: std::sync::Arc::new(PostgresTarget::new(client.clone(), pg)),
            client,
            default_kind,
            password_length,
        }
    }

    /// Whether the secret's tags make it a `postgres` secret (a bad tag: no).
    fn is_postgres(&self, ctx: &TargetContext<'_>) -> bool {
        matches!(
            self.spec(ctx.tags),
            Ok(Spec {
                kind: Kind::Postgres,
                ..
            })
        )
    }

    /// What the secret's tags ask for; a bad tag is a configuration error.
    pub fn spec(&self, tags: &BTreeMap<String, String>) -> Result<Spec, TargetError> {
        kinds::spec(tags, self.default_kind, self.password_length)
            .map_err(|e| TargetError::configuration(e.to_string()))
    }

    async fn password(&self, options: &PasswordOptions) -> Result<String, TargetError> {
        let out = self
            .client
            .get_random_password()
            .password_length(options.length)
            .set_exclude_characters(options.exclude_characters.clone())
            .exclude_punctuation(options.exclude_punctuation)
            .exclude_numbers(options.exclude_numbers)
            .exclude_uppercase(options.exclude_uppercase)
            .exclude_lowercase(options.exclude_lowercase)
            .include_space(options.include_space)
            .require_each_included_type(options.require_each_included_type)
            .send()
            .await
            .map_err(password_error)?;
        out.random_password()
            .map(str::to_owned)
            .ok_or_else(|| TargetError::retryable("GetRandomPassword returned no password"))
    }

    async fn one(&self, kind: ValueKind, options: &PasswordOptions) -> Result<Value, TargetError> {
        match kind {
            ValueKind::Password => Ok(Value::from(self.password(options).await?)),
            ValueKind::Key(key) => generate_key(key).await,
        }
    }
}

/// Key generation off the async threads: an RSA-4096 key takes a second or more.
async fn generate_key(kind: KeyKind) -> Result<Value, TargetError> {
    tokio::task::spawn_blocking(move || keygen::generate_value(kind))
        .await
        .map_err(|_| TargetError::retryable("key generation did not finish"))?
        .map_err(|e| TargetError::retryable(e.to_string()))
}

/// A failed GetRandomPassword as a target error. Only throttling and server or network
/// failures are retryable: an invalid length or set of exclusions (InvalidParameter,
/// InvalidRequest) or a role that may not call it is refused again on every retry.
fn password_error<R: std::fmt::Debug>(
    e: aws_sdk_secretsmanager::error::SdkError<GetRandomPasswordError, R>,
) -> TargetError {
    let e = classify(e, "GetRandomPassword");
    match e.kind {
        StoreErrorKind::Throttled | StoreErrorKind::Transient => TargetError::retryable(e.to_string()),
        _ => TargetError::refused(e.to_string()),
    }
}

/// Checks one value (a whole secret or one field) against its kind.
fn check(kind: ValueKind, value: &Value, what: &str) -> Result<(), TargetError> {
    match kind {
        ValueKind::Password => match value.as_str() {
            Some(p) if !p.is_empty() => Ok(()),
            _ => Err(TargetError::refused(format!(
                "{what} is not a non-empty password"
            ))),
        },
        ValueKind::Key(key) => keygen::check(key, value).map_err(|e| match e {
            KeyError::Crypto(_) => TargetError::retryable(format!("{what}: {e}")),
            KeyError::Invalid { .. } => TargetError::refused(format!("{what}: {e}")),
        }),
    }
}

impl Target for StockTarget {
    /// Only a `postgres` secret has something downstream to revoke (the old user); for
    /// every other kind the release reads no old value.
    fn revokes(&self, ctx: &TargetContext<'_>) -> bool {
        self.is_postgres(ctx)
    }

    /// A `json` secret carries its other fields over from AWSCURRENT; a `postgres` secret
    /// alternates its user from it.
    fn reads_current(&self, ctx: &TargetContext<'_>) -> bool {
        matches!(
            self.spec(ctx.tags),
            Ok(Spec {
                kind: Kind::Json(_) | Kind::Postgres,
                ..
            })
        )
    }

    async fn generate(
        &self,
        ctx: &TargetContext<'_>,
        current: Option<&SecretValue>,
    ) -> Result<SecretValue, TargetError> {
        let spec = self.spec(ctx.tags)?;
        match &spec.kind {
            Kind::Postgres => self.postgres.generate(ctx, current).await,
            Kind::Value(ValueKind::Password) => Ok(SecretValue::new(self.password(&spec.password).await?)),
            Kind::Value(ValueKind::Key(key)) => Ok(SecretValue::new(generate_key(*key).await?.to_string())),
            Kind::Json(fields) => {
                let mut object = match current.map(|c| serde_json::from_str::<Value>(c.expose())) {
                    None => Map::new(),
                    Some(Ok(Value::Object(map))) => map,
                    Some(_) => {
                        return Err(TargetError::configuration(format!(
                            "{}=json: the AWSCURRENT value is not a JSON object, so its other fields cannot carry over",
                            kinds::KIND_TAG
                        )));
                    }
                };
                for field in fields {
                    object.insert(field.name.clone(), self.one(field.kind, &spec.password).await?);
                }
                Ok(SecretValue::new(Value::Object(object).to_string()))
            }
        }
    }

    /// Registers a `postgres` secret's user; nothing to do for every other kind.
    async fn set(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        if self.is_postgres(ctx) {
            return self.postgres.set(ctx, version, value).await;
        }
        Ok(())
    }

    /// Nothing to log in to: checks the value is what the kind makes (a key pair is
    /// loaded and signs what its public key verifies).
    async fn test(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let spec = self.spec(ctx.tags)?;
        match &spec.kind {
            Kind::Postgres => self.postgres.test(ctx, version, value).await,
            Kind::Value(ValueKind::Password) => check(
                ValueKind::Password,
                &Value::from(value.expose()),
                "the pending value",
            ),
            Kind::Value(kind) => {
                let parsed: Value = serde_json::from_str(value.expose())
                    .map_err(|_| TargetError::refused("the pending value is not JSON"))?;
                let kind = *kind;
                tokio::task::spawn_blocking(move || check(kind, &parsed, "the pending value"))
                    .await
                    .map_err(|_| TargetError::retryable("the key check did not finish"))?
            }
            Kind::Json(fields) => {
                let Ok(Value::Object(object)) = serde_json::from_str::<Value>(value.expose()) else {
                    return Err(TargetError::refused("the pending value is not a JSON object"));
                };
                for field in fields {
                    let v = object.get(&field.name).ok_or_else(|| {
                        TargetError::refused(format!("the pending value has no field {}", field.name))
                    })?;
                    check(field.kind, v, &format!("field {}", field.name))?;
                }
                Ok(())
            }
        }
    }

    /// Revokes a `postgres` secret's old user; nothing to do for every other kind.
    async fn revoke(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        if self.is_postgres(ctx) {
            return self.postgres.revoke(ctx, version, value).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use keyshift::executor::ExecError;

    use super::*;
    use crate::HandlerError;
    use crate::testing::{meta, service_error};

    #[test]
    fn only_postgres_secrets_revoke_and_json_and_postgres_read_the_current_value() {
        let client = Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .build(),
        );
        let target = StockTarget::new(client, KindName::Value(ValueKind::Password), 48);
        let secret = keyshift::SecretId::new("s");
        for (kind, revokes, reads) in [
            ("password", false, false),
            ("ed25519", false, false),
            ("json", false, true),
            ("postgres", true, true),
        ] {
            let mut tags = BTreeMap::from([(kinds::KIND_TAG.to_owned(), kind.to_owned())]);
            if kind == "json" {
                tags.insert(kinds::FIELDS_TAG.to_owned(), "password=password".to_owned());
            }
            let ctx = TargetContext {
                secret: &secret,
                tags: &tags,
            };
            assert_eq!(
                (target.revokes(&ctx), target.reads_current(&ctx)),
                (revokes, reads),
                "{kind}"
            );
        }
    }

    fn retryable_and_type(code: &str) -> (bool, &'static str) {
        let e = GetRandomPasswordError::generic(meta(code, "the service's message"));
        let e = password_error(service_error(e));
        (
            e.is_retryable(),
            HandlerError::from(&ExecError::Target(e)).error_type(),
        )
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
