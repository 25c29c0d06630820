//! How the cache reaches Secrets Manager: a two-call trait in our own types.
//!
//! [`Source::describe`] is `DescribeSecret`'s `VersionIdsToStages` (the label map, cheap:
//! AWS allows 40,000 calls/s); [`Source::value`] is `GetSecretValue` by `VersionId`
//! (10,000 calls/s), asked only for versions the cache has never seen, because a
//! version's value never changes. The production source is [`crate::SdkSource`]; the
//! simulation and the tests bring their own.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use keyshift::{SecretState, SecretValue, VersionId};

/// Every version of one secret that carries labels, with its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMap {
    versions: BTreeMap<VersionId, BTreeSet<String>>,
}

impl LabelMap {
    /// No versions.
    pub fn new() -> Self {
        LabelMap::default()
    }

    /// Records `version` with `stages` (replacing what was recorded for it).
    pub fn insert<S: Into<String>>(&mut self, version: VersionId, stages: impl IntoIterator<Item = S>) {
        self.versions
            .insert(version, stages.into_iter().map(Into::into).collect());
    }

    /// The labels of `version`, if it is listed.
    pub fn stages(&self, version: &VersionId) -> Option<&BTreeSet<String>> {
        self.versions.get(version)
    }

    /// The version carrying `stage`, if any (Secrets Manager puts a label on at most one).
    pub fn holder(&self, stage: &str) -> Option<&VersionId> {
        self.versions
            .iter()
            .find(|(_, s)| s.contains(stage))
            .map(|(id, _)| id)
    }

    /// Every listed version and its labels, by version id.
    pub fn iter(&self) -> impl Iterator<Item = (&VersionId, &BTreeSet<String>)> {
        self.versions.iter()
    }

    /// How many versions are listed.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether no version is listed.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

impl<S: Into<String>, I: IntoIterator<Item = S>> FromIterator<(VersionId, I)> for LabelMap {
    fn from_iter<T: IntoIterator<Item = (VersionId, I)>>(iter: T) -> Self {
        let mut map = LabelMap::new();
        for (id, stages) in iter {
            map.insert(id, stages);
        }
        map
    }
}

impl From<&SecretState> for LabelMap {
    /// The labelled versions of a state read by keyshift's rotation side (deprecated
    /// versions are left out, as `DescribeSecret` leaves them out).
    fn from(state: &SecretState) -> Self {
        state
            .versions
            .iter()
            .filter(|(_, v)| !v.stages.is_empty())
            .map(|(id, v)| (id.clone(), v.stages.iter().cloned()))
            .collect()
    }
}

/// What kind of failure a source call met; the cache treats them all as "keep serving
/// the last good view", the kind is for logs, metrics and [`crate::LookupError::Expired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// The secret does not exist (or is scheduled for deletion).
    NotFound,
    /// The caller may not read the secret.
    AccessDenied,
    /// Secrets Manager throttled the call.
    Throttled,
    /// A timeout, a connection failure, a 5xx: worth another try.
    Transient,
    /// The answer made no sense for a cache (no AWSCURRENT, AWSCURRENT without a value,
    /// a binary secret).
    Inconsistent,
    /// Anything else (a malformed request, a configuration error).
    Other,
}

/// A failed source call. The message names the operation and the service's error; it
/// never carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct SourceError {
    kind: SourceErrorKind,
    message: String,
}

impl SourceError {
    /// An error of `kind`. `message` must never contain a secret value.
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> SourceErrorKind {
        self.kind
    }

    /// What happened, for a log line.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Where one secret's labels and values come from.
///
/// A source is bound to one secret. Both calls are asynchronous so that the SDK source
/// can await the network; a source that answers at once (the simulation's) makes the
/// cache's refresh complete in a single poll.
pub trait Source: Send + Sync {
    /// The label map: every labelled version of the secret and its labels
    /// (`DescribeSecret.VersionIdsToStages`).
    fn describe(&self) -> impl Future<Output = Result<LabelMap, SourceError>> + Send;

    /// The value of `version` (`GetSecretValue` by `VersionId`), or `None` when the
    /// version has no value: the rotation engine's AWSPENDING placeholder, or a version
    /// that does not exist (any more).
    fn value(
        &self,
        version: &VersionId,
    ) -> impl Future<Output = Result<Option<SecretValue>, SourceError>> + Send;
}

impl<S: Source + ?Sized> Source for Arc<S> {
    fn describe(&self) -> impl Future<Output = Result<LabelMap, SourceError>> + Send {
        (**self).describe()
    }

    fn value(
        &self,
        version: &VersionId,
    ) -> impl Future<Output = Result<Option<SecretValue>, SourceError>> + Send {
        (**self).value(version)
    }
}

impl<S: Source + ?Sized> Source for &S {
    fn describe(&self) -> impl Future<Output = Result<LabelMap, SourceError>> + Send {
        (**self).describe()
    }

    fn value(
        &self,
        version: &VersionId,
    ) -> impl Future<Output = Result<Option<SecretValue>, SourceError>> + Send {
        (**self).value(version)
    }
}
