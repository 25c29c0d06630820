//! Secrets Manager through aws-sdk-secretsmanager, behind [`SecretStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::DateTime;
use aws_sdk_secretsmanager::types::StatusType;
use keyshift::aws_errors::{AwsErrorClass, class_of};
use keyshift::ports::{Detail, LabelMove, SecretStore, StoreError, StoreErrorKind, short_error};
use keyshift::secret::{
    AWSPENDING, Replica, ReplicaStatus, SecretId, SecretState, SecretValue, VersionId, VersionInfo,
};
use keyshift::time::Timestamp;
use tracing::warn;

use crate::clock::SystemClock;
use keyshift::ports::Clock;

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
/// `describe` reads the labels from DescribeSecret's `VersionIdsToStages` (where AWS
/// documents the value-less placeholder too), never from a list that might omit one:
/// one call at [`Detail::Labels`]. At [`Detail::Full`], creation dates come from
/// ListSecretVersionIds (deprecated versions included) and, for a placeholder that list
/// may show with a date, GetSecretValue tells it apart (the AWSPENDING holder only,
/// never keyshift's own copies, which are always written with their value).
///
/// A version's value and creation time never change, so both are cached for the life of
/// the container: a warm function asks for each once. The cache holds at most
/// [`CACHE_ENTRIES`] versions and starts over when full.
#[derive(Debug, Clone)]
pub struct SdkSecretStore {
    client: Client,
    dates: CreatedDates,
    known: Arc<Mutex<HashMap<(String, String), Known>>>,
    /// For a replicated secret: the SDK configuration to read each replica's labels in
    /// its own Region with (none: trust `ReplicationStatus` alone).
    replica_reads: Option<aws_config::SdkConfig>,
    replica_clients: Arc<Mutex<HashMap<String, Client>>>,
}

/// Most versions the adapter remembers.
pub const CACHE_ENTRIES: usize = 256;

/// What is known of a version with a value (its `Debug` redacts the value).
#[derive(Clone, Debug)]
struct Known {
    /// Its value's creation time, once read.
    created: Option<Timestamp>,
    /// For a version this adapter wrote: when the write's answer came back. The version
    /// was created before that, so it bounds the creation time from above as safely as
    /// the service's own date does (a gap measured from it is never short), and it
    /// needs no read, nor the rounding of a date cut to the second.
    written: Option<Timestamp>,
    value: Option<SecretValue>,
}

impl SdkSecretStore {
    /// An adapter over `client`.
    pub fn new(client: Client, dates: CreatedDates) -> Self {
        SdkSecretStore {
            client,
            dates,
            known: Arc::default(),
            replica_reads: None,
            replica_clients: Arc::default(),
        }
    }

    /// Also reads each replica's labels in its own Region (DescribeSecret there, one call
    /// per replica, replicated secrets only), rather than trusting `ReplicationStatus`
    /// alone, whose documented meaning is about the replica's creation.
    pub fn with_replica_reads(mut self, sdk: aws_config::SdkConfig) -> Self {
        self.replica_reads = Some(sdk);
        self
    }

    fn replica_client(&self, region: &str) -> Option<Client> {
        let sdk = self.replica_reads.as_ref()?;
        let mut clients = self.replica_clients.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            clients
                .entry(region.to_owned())
                .or_insert_with(|| {
                    let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
                        .region(aws_config::Region::new(region.to_owned()))
                        .build();
                    Client::from_conf(config)
                })
                .clone(),
        )
    }

    /// The replica Regions as the primary reports them, with their labels read there
    /// where possible. A replica that cannot be read is judged by its status alone.
    async fn replicas(
        &self,
        secret: &SecretId,
        described: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
    ) -> Vec<Replica> {
        let mut replicas = Vec::new();
        for r in described.replication_status() {
            let Some(region) = r.region() else { continue };
            let status = match r.status() {
                Some(StatusType::InSync) => ReplicaStatus::InSync,
                Some(StatusType::Failed) => ReplicaStatus::Failed,
                _ => ReplicaStatus::InProgress,
            };
            let mut stages = None;
            if let Some(client) = self.replica_client(region) {
                match client.describe_secret().secret_id(secret.as_str()).send().await {
                    Ok(out) => stages = Some(labelled(&out)),
                    Err(e) => {
                        warn!(region, error = %classify(e, "DescribeSecret"), "could not read a replica's labels")
                    }
                }
            }
            replicas.push(Replica {
                region: region.to_owned(),
                status,
                stages,
            });
        }
        replicas
    }

    fn cached(&self, secret: &SecretId, version: &str) -> Option<Known> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(&(secret.as_str().to_owned(), version.to_owned()))
            .cloned()
    }

    /// Adds what `learned` knows of a version to what was known of it.
    fn remember(&self, secret: &SecretId, version: &str, learned: Known) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= CACHE_ENTRIES {
            known.clear();
        }
        let entry = known
            .entry((secret.as_str().to_owned(), version.to_owned()))
            .or_insert(Known {
                created: None,
                written: None,
                value: None,
            });
        entry.created = learned.created.or(entry.created);
        entry.written = learned.written.or(entry.written);
        entry.value = learned.value.or(entry.value.take());
    }

    /// GetSecretValue by version id: `Ok(None)` on ResourceNotFound (no value, or no
    /// such version: the caller knows which from the labels).
    async fn fetch(&self, secret: &SecretId, version: &str) -> Result<Option<Known>, StoreError> {
        if let Some(k) = self
            .cached(secret, version)
            .filter(|k| k.value.is_some() && k.created.is_some())
        {
            return Ok(Some(k));
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
                let value = out.secret_string().map(SecretValue::new);
                let known = Known {
                    created: Some(created),
                    written: None,
                    value,
                };
                self.remember(secret, version, known.clone());
                Ok(Some(known))
            }
            Err(e) => match classify(e, "GetSecretValue") {
                e if e.kind == StoreErrorKind::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    /// DescribeSecret.
    async fn described(
        &self,
        secret: &SecretId,
    ) -> Result<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput, StoreError> {
        self.client
            .describe_secret()
            .secret_id(secret.as_str())
            .send()
            .await
            .map_err(|e| classify(e, "DescribeSecret"))
    }

    /// Every page of ListSecretVersionIds, deprecated versions included: (id, labels,
    /// creation date).
    async fn listed(
        &self,
        secret: &SecretId,
    ) -> Result<Vec<(String, BTreeSet<String>, Option<Timestamp>)>, StoreError> {
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
                _ => return Ok(listed),
            }
        }
    }
}

/// The labelled versions of a DescribeSecret answer (moto keeps label-less ones there
/// with an empty list; AWS does not list them).
fn labelled(
    out: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
) -> BTreeMap<VersionId, BTreeSet<String>> {
    out.version_ids_to_stages()
        .into_iter()
        .flatten()
        .filter(|(_, stages)| !stages.is_empty())
        .map(|(id, stages)| (VersionId::new(id.as_str()), stages.iter().cloned().collect()))
        .collect()
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
    async fn describe(&self, secret: &SecretId, detail: Detail) -> Result<SecretState, StoreError> {
        let described = self.described(secret).await?;
        let mut state = SecretState {
            replicas: self.replicas(secret, &described).await,
            rotation_enabled: described.rotation_enabled().unwrap_or(false),
            deleted: described.deleted_date().is_some(),
            tags: described
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
                .collect(),
            versions: Default::default(),
        };
        // Labels from VersionIdsToStages.
        let mut labelled: Vec<(String, BTreeSet<String>)> = labelled(&described)
            .into_iter()
            .map(|(id, stages)| (id.as_str().to_owned(), stages))
            .collect();
        let mut dates: HashMap<String, Option<Timestamp>> = HashMap::new();
        if detail == Detail::Full {
            for (id, stages, created) in self.listed(secret).await? {
                if !labelled.iter().any(|(l, _)| *l == id) && stages.is_empty() {
                    labelled.push((id.clone(), stages));
                }
                if self.dates == CreatedDates::ListVersions {
                    dates.insert(id, created);
                }
            }
        }
        for (id, stages) in labelled {
            let known = self.cached(secret, &id);
            let cached = known.as_ref().and_then(|k| k.created);
            // Only for keyshift's copies, whose dates time a swap: a bound from this
            // function's clock must not be set against another version's date from the
            // service's (a newer-than comparison of two bounds from above proves nothing).
            let written = known
                .as_ref()
                .and_then(|k| k.written)
                .filter(|_| VersionId::new(id.as_str()).is_keyshift_copy());
            let server = if cached.is_some() || detail == Detail::Labels {
                cached
            } else if self.dates == CreatedDates::GetValue
                && (written.is_some()
                    || (stages.is_empty() && VersionId::new(id.as_str()).is_keyshift_copy()))
            {
                // Written here: no read needed for a bound on its date. An old copy that
                // lost its labels: no decision reads its date.
                None
            } else if self.dates == CreatedDates::GetValue
                || (stages.contains(AWSPENDING) && !VersionId::new(id.as_str()).is_keyshift_copy())
            {
                // A listed date may be a placeholder's: only a read of the value tells.
                self.fetch(secret, &id).await?.and_then(|k| k.created)
            } else {
                dates.get(&id).copied().flatten()
            };
            // Both are bounds from above on the real creation: the lower one is the
            // closer.
            let created = match (server, written) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) if detail == Detail::Full => a.or(b),
                (a, _) => a,
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
        if let Some(value) = self.cached(secret, version.as_str()).and_then(|k| k.value) {
            return Ok(Some(value));
        }
        if let Some(k) = self.fetch(secret, version.as_str()).await? {
            return Ok(k.value);
        }
        // ResourceNotFound: a version listed with labels but no value is the engine's
        // placeholder; anything else does not exist.
        let described = self.described(secret).await?;
        let listed = described
            .version_ids_to_stages()
            .is_some_and(|m| m.get(version.as_str()).is_some_and(|s| !s.is_empty()));
        if listed {
            Ok(None)
        } else {
            Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!("GetSecretValue: ResourceNotFoundException: secret has no version {version}"),
            ))
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
        // Its value is known now, and its creation time is bounded by this moment.
        let written = Known {
            created: None,
            written: Some(SystemClock.now()),
            value: Some(value.clone()),
        };
        self.remember(secret, version.as_str(), written);
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
        SdkError::ServiceError(_) => match class_of(e.code().unwrap_or_default()) {
            Some(AwsErrorClass::NotFound) => StoreErrorKind::NotFound,
            Some(AwsErrorClass::AlreadyExists) => StoreErrorKind::AlreadyExists,
            Some(AwsErrorClass::InvalidParameter) => StoreErrorKind::InvalidParameter,
            // The API's possible causes include "the secret is scheduled for deletion":
            // nothing done to it succeeds any more, so it is told apart by its message.
            Some(AwsErrorClass::InvalidState) if marked_for_deletion(e.message()) => StoreErrorKind::Deleted,
            Some(AwsErrorClass::InvalidState) => StoreErrorKind::InvalidRequest,
            Some(AwsErrorClass::LimitExceeded) => StoreErrorKind::LimitExceeded,
            // DecryptionFailure and EncryptionFailure, declared by GetSecretValue and
            // PutSecretValue: the key is disabled, pending deletion or its policy refuses
            // Secrets Manager. The KMS codes are not in Secrets Manager's model; if it
            // ever passes them on, they mean the same.
            Some(AwsErrorClass::Crypto | AwsErrorClass::KeyUnusable) => StoreErrorKind::Kms,
            // "Access to KMS is not allowed": the role may not use the secret's key.
            Some(AwsErrorClass::AccessDenied) if e.message().is_some_and(|m| m.contains("Access to KMS")) => {
                StoreErrorKind::Kms
            }
            Some(AwsErrorClass::AccessDenied | AwsErrorClass::Unauthenticated) => {
                StoreErrorKind::AccessDenied
            }
            Some(AwsErrorClass::Throttled) => StoreErrorKind::Throttled,
            // InternalServiceError and anything new: worth another try.
            Some(AwsErrorClass::ServerError | AwsErrorClass::Conflict) | None => StoreErrorKind::Transient,
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
        (e.kind, HandlerError::from(&ExecError::Store(e)).error_type())
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
