//! Secrets Manager through aws-sdk-secretsmanager, behind [`SecretStore`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::DateTime;
use keyshift::ports::{LabelMove, SecretStore, StoreError, StoreErrorKind, short_error};
use keyshift::secret::{AWSPENDING, SecretId, SecretState, SecretValue, VersionId, VersionInfo};
use keyshift::time::Timestamp;

/// Where a version's value creation time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreatedDates {
    /// `ListSecretVersionIds`' CreatedDate: one call for every version (AWS).
    #[default]
    ListVersions,
    /// `GetSecretValue`'s CreatedDate, one call per version not seen before (cached).
    /// For emulators whose `ListSecretVersionIds` reports the wrong date (moto reports
    /// the time of the call for every version).
    GetValue,
}

/// The Secrets Manager adapter.
///
/// `describe` reads `DescribeSecret` (rotation enabled) and every page of
/// `ListSecretVersionIds` with deprecated versions included: the core follows re-issue
/// chains through versions that lost all their labels. The AWSPENDING holder is read with
/// `GetSecretValue` too, because only that tells the engine's value-less placeholder from
/// a version with a value.
#[derive(Debug, Clone)]
pub struct SdkSecretStore {
    client: Client,
    dates: CreatedDates,
    /// Creation times of versions known to have a value: neither ever changes.
    known: Arc<Mutex<HashMap<(String, String), Timestamp>>>,
}

impl SdkSecretStore {
    /// An adapter over `client`.
    pub fn new(client: Client, dates: CreatedDates) -> Self {
        SdkSecretStore {
            client,
            dates,
            known: Arc::default(),
        }
    }

    fn cached(&self, secret: &SecretId, version: &str) -> Option<Timestamp> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(&(secret.as_str().to_owned(), version.to_owned()))
            .copied()
    }

    fn remember(&self, secret: &SecretId, version: &str, created: Timestamp) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.insert((secret.as_str().to_owned(), version.to_owned()), created);
    }

    /// The version's value creation time, or `None` for a placeholder without a value.
    async fn created_by_value(
        &self,
        secret: &SecretId,
        version: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        if let Some(t) = self.cached(secret, version) {
            return Ok(Some(t));
        }
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret.as_str())
            .version_id(version)
            .send()
            .await;
        match out {
            Ok(out) => {
                let created = out.created_date().map(timestamp).ok_or_else(|| {
                    StoreError::new(
                        StoreErrorKind::Transient,
                        "GetSecretValue returned no CreatedDate",
                    )
                })?;
                self.remember(secret, version, created);
                Ok(Some(created))
            }
            Err(e) => match classify(e, "GetSecretValue") {
                e if e.kind == StoreErrorKind::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }
}

/// A CreatedDate as a timestamp. Dates that fall on a whole second may have been cut to
/// the second (moto does; AWS reports milliseconds): the next second is a bound that is
/// never early, and a gap measured from it is never short.
pub fn timestamp(d: &DateTime) -> Timestamp {
    let ms = d.to_millis().unwrap_or(i64::MAX);
    if ms % 1000 == 0 {
        Timestamp::from_millis(ms.saturating_add(1000))
    } else {
        Timestamp::from_millis(ms)
    }
}

impl SecretStore for SdkSecretStore {
    async fn describe(&self, secret: &SecretId) -> Result<SecretState, StoreError> {
        let described = self
            .client
            .describe_secret()
            .secret_id(secret.as_str())
            .send()
            .await
            .map_err(|e| classify(e, "DescribeSecret"))?;
        let mut state = SecretState {
            rotation_enabled: described.rotation_enabled().unwrap_or(false),
            ..Default::default()
        };
        let mut next: Option<String> = None;
        let mut listed = Vec::new();
        loop {
            let page = self
                .client
                .list_secret_version_ids()
                .secret_id(secret.as_str())
                .include_deprecated(true)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| classify(e, "ListSecretVersionIds"))?;
            for v in page.versions() {
                let Some(id) = v.version_id() else { continue };
                let stages: BTreeSet<String> = v.version_stages().iter().cloned().collect();
                listed.push((id.to_owned(), stages, v.created_date().map(timestamp)));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => break,
            }
        }
        for (id, stages, listed_date) in listed {
            let created = if stages.contains(AWSPENDING) || self.dates == CreatedDates::GetValue {
                // Only GetSecretValue tells a placeholder from a value.
                self.created_by_value(secret, &id).await?
            } else {
                listed_date
            };
            state
                .versions
                .insert(VersionId::new(id), VersionInfo { stages, created });
        }
        Ok(state)
    }

    async fn get_value(
        &self,
        secret: &SecretId,
        version: &VersionId,
    ) -> Result<Option<SecretValue>, StoreError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret.as_str())
            .version_id(version.as_str())
            .send()
            .await;
        match out {
            Ok(out) => {
                if let Some(d) = out.created_date() {
                    self.remember(secret, version.as_str(), timestamp(d));
                }
                Ok(out.secret_string().map(SecretValue::new))
            }
            Err(e) => {
                let e = classify(e, "GetSecretValue");
                // A version listed with no value is the engine's placeholder.
                if e.kind == StoreErrorKind::NotFound
                    && self.describe(secret).await?.version(version).is_some()
                {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn put_pending(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        rotation_token: Option<&str>,
    ) -> Result<(), StoreError> {
        self.client
            .put_secret_value()
            .secret_id(secret.as_str())
            .client_request_token(version.as_str())
            .secret_string(value.expose())
            .version_stages(AWSPENDING)
            .set_rotation_token(rotation_token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify(e, "PutSecretValue"))?;
        Ok(())
    }

    async fn update_stage(&self, secret: &SecretId, change: &LabelMove) -> Result<(), StoreError> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret.as_str())
            .version_stage(&change.stage)
            .set_move_to_version_id(change.move_to.as_ref().map(|v| v.as_str().to_owned()))
            .set_remove_from_version_id(change.remove_from.as_ref().map(|v| v.as_str().to_owned()))
            .send()
            .await
            .map_err(|e| classify(e, "UpdateSecretVersionStage"))?;
        Ok(())
    }
}

/// Classifies an SDK error once. The message carries the operation, the error code and
/// the service's message about the request, never a request parameter (so never a value
/// or a RotationToken).
pub fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
    operation: &str,
) -> StoreError {
    let kind = match &e {
        SdkError::ServiceError(_) => match e.code().unwrap_or_default() {
            "ResourceNotFoundException" => StoreErrorKind::NotFound,
            "ResourceExistsException" => StoreErrorKind::AlreadyExists,
            "InvalidParameterException" => StoreErrorKind::InvalidParameter,
            // The API's possible causes include "the secret is scheduled for deletion":
            // nothing done to it succeeds any more, so it is told apart by its message.
            "InvalidRequestException" if marked_for_deletion(e.message()) => StoreErrorKind::Deleted,
            "InvalidRequestException" => StoreErrorKind::InvalidRequest,
            "LimitExceededException" => StoreErrorKind::LimitExceeded,
            // Declared by GetSecretValue and PutSecretValue: the key is disabled, pending
            // deletion or its policy refuses Secrets Manager. The KMS codes are not in
            // Secrets Manager's model; if it ever passes them on, they mean the same.
            "DecryptionFailure"
            | "EncryptionFailure"
            | "KMSInvalidStateException"
            | "KMSAccessDeniedException"
            | "KMSDisabledException"
            | "KMSNotFoundException" => StoreErrorKind::Kms,
            // "Access to KMS is not allowed": the role may not use the secret's key.
            "AccessDeniedException" if e.message().is_some_and(|m| m.contains("Access to KMS")) => {
                StoreErrorKind::Kms
            }
            "AccessDeniedException" | "AccessDenied" | "UnrecognizedClientException" => {
                StoreErrorKind::AccessDenied
            }
            "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded" => {
                StoreErrorKind::Throttled
            }
            // InternalServiceError and anything new: worth another try.
            _ => StoreErrorKind::Transient,
        },
        // Construction failures are bugs in the request, not in the moment.
        SdkError::ConstructionFailure(_) => StoreErrorKind::InvalidParameter,
        _ => StoreErrorKind::Transient,
    };
    let code = e.code().unwrap_or("no error code").to_owned();
    let message = e.message().map(str::to_owned).unwrap_or_else(|| short_error(&e));
    StoreError::new(kind, format!("{operation}: {code}: {message}"))
}

/// Whether an InvalidRequestException's message says the secret is deleted: AWS says
/// "marked for deletion", its API reference "scheduled for deletion", moto "currently
/// marked deleted".
fn marked_for_deletion(message: Option<&str>) -> bool {
    let message = message.unwrap_or_default().to_ascii_lowercase();
    message.contains("for deletion") || message.contains("marked deleted")
}

impl SdkSecretStore {
    /// The value of one of the secret's tags (DescribeSecret), if it has it.
    pub async fn tag(&self, secret: &SecretId, key: &str) -> Result<Option<String>, StoreError> {
        let described = self
            .client
            .describe_secret()
            .secret_id(secret.as_str())
            .send()
            .await
            .map_err(|e| classify(e, "DescribeSecret"))?;
        Ok(described
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
    use aws_sdk_secretsmanager::operation::update_secret_version_stage::UpdateSecretVersionStageError;
    use aws_sdk_secretsmanager::types::error::{DecryptionFailure, EncryptionFailure};
    use keyshift::executor::ExecError;

    use super::*;
    use crate::HandlerError;
    use crate::testing::{meta, service_error};

    /// The kind, and the Lambda error type an invocation failing with it reports.
    fn kind_and_type(e: StoreError) -> (StoreErrorKind, &'static str) {
        (e.kind, HandlerError::from(&ExecError::Store(e)).error_type)
    }

    #[test]
    fn kms_failures_are_not_retryable() {
        let m = "Secrets Manager can't decrypt the protected secret text using the provided KMS key.";
        let decrypt = GetSecretValueError::DecryptionFailure(
            DecryptionFailure::builder()
                .message(m)
                .meta(meta("DecryptionFailure", m))
                .build(),
        );
        let m = "Secrets Manager can't encrypt the protected secret text using the provided KMS key. \
                 Check that the KMS key is available, enabled, and not in an invalid state.";
        let encrypt = PutSecretValueError::EncryptionFailure(
            EncryptionFailure::builder()
                .message(m)
                .meta(meta("EncryptionFailure", m))
                .build(),
        );
        let expected = (StoreErrorKind::Kms, "keyshift.Failed");
        assert_eq!(
            kind_and_type(classify(service_error(decrypt), "GetSecretValue")),
            expected
        );
        assert_eq!(
            kind_and_type(classify(service_error(encrypt), "PutSecretValue")),
            expected
        );
        // Not in Secrets Manager's model, but KMS's own codes if they are ever passed on,
        // and the AccessDeniedException Secrets Manager answers when the role or the key
        // policy does not let it use the key.
        for (code, message) in [
            ("KMSInvalidStateException", "the key is pending deletion"),
            ("KMSAccessDeniedException", "access denied"),
            ("KMSDisabledException", "the key is disabled"),
            ("KMSNotFoundException", "no such key"),
            ("AccessDeniedException", "Access to KMS is not allowed"),
        ] {
            let e = GetSecretValueError::generic(meta(code, message));
            assert_eq!(
                kind_and_type(classify(service_error(e), "GetSecretValue")),
                expected,
                "{code}"
            );
        }
    }

    #[test]
    fn a_secret_marked_for_deletion_is_not_retryable() {
        for message in [
            // AWS
            "You can't perform this operation on the secret because it was marked for deletion.",
            // The API reference's wording
            "The secret is scheduled for deletion.",
            // moto
            "You tried to perform the operation on a secret that's currently marked deleted.",
        ] {
            let e = UpdateSecretVersionStageError::generic(meta("InvalidRequestException", message));
            let e = classify(service_error(e), "UpdateSecretVersionStage");
            assert_eq!(
                kind_and_type(e),
                (StoreErrorKind::Deleted, "keyshift.Failed"),
                "{message}"
            );
        }
        // Any other InvalidRequestException stays what it was.
        let e = UpdateSecretVersionStageError::generic(meta(
            "InvalidRequestException",
            "A previous rotation isn't complete. That rotation will be reattempted.",
        ));
        let e = classify(service_error(e), "UpdateSecretVersionStage");
        assert_eq!(e.kind, StoreErrorKind::InvalidRequest);
    }

    #[test]
    fn passing_failures_stay_retryable() {
        for (code, kind) in [
            ("ThrottlingException", StoreErrorKind::Throttled),
            ("InternalServiceError", StoreErrorKind::Transient),
        ] {
            let e = GetSecretValueError::generic(meta(code, "try again"));
            let e = classify(service_error(e), "GetSecretValue");
            assert_eq!(kind_and_type(e), (kind, "keyshift.Retryable"), "{code}");
        }
        let timeout: SdkError<GetSecretValueError, ()> = SdkError::timeout_error("timed out");
        assert_eq!(
            classify(timeout, "GetSecretValue").kind,
            StoreErrorKind::Transient
        );
    }
}
