//! What keyshift knows about a secret: its versions, their staging labels and creation
//! times, and whether rotation is enabled. These are plain values read from the store;
//! the core decides from them and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::time::Timestamp;

/// The staging label producers use: the one value to sign, encrypt or present with.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The label of the version being rotated in; consumers accept it.
pub const AWSPENDING: &str = "AWSPENDING";
/// The label Secrets Manager moves by itself to the version AWSCURRENT left.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// keyshift's label for the old version during the second gap; consumers accept it.
pub const ROTATING: &str = "ROTATING";

/// The labels whose versions consumers accept (DESIGN.md section 2).
pub const ACCEPTED_STAGES: [&str; 3] = [AWSCURRENT, AWSPENDING, ROTATING];

/// A secret's id as Secrets Manager takes it: an ARN or a name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretId(String);

impl SecretId {
    /// Longest id Secrets Manager accepts (`SecretIdType`, 1 to 2048 characters).
    pub const MAX_LEN: usize = 2048;

    /// Wraps an id; callers that take outside input use [`crate::event`]'s validation.
    pub fn new(id: impl Into<String>) -> Self {
        SecretId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A version id (the rotation's `ClientRequestToken` becomes the new version's id).
/// Not secret: it appears in CloudTrail and in every log line of a rotation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionId(String);

impl VersionId {
    /// Shortest version id / ClientRequestToken Secrets Manager accepts.
    pub const MIN_LEN: usize = 32;
    /// Longest version id / ClientRequestToken Secrets Manager accepts.
    pub const MAX_LEN: usize = 64;

    /// Wraps an id; callers that take outside input use [`crate::event`]'s validation.
    pub fn new(id: impl Into<String>) -> Self {
        VersionId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The version id of keyshift's copy of `self`: finishSecret copies the engine's
    /// version to it, and a copy that lost AWSPENDING is copied again (see
    /// [`crate::decide`]). Deterministic, so that two invocations racing to re-issue the
    /// same version write the same version (PutSecretValue with the same token and value
    /// is a no-op), and shaped like a UUID (36 characters).
    pub fn reissue(&self) -> VersionId {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("keyshift-reissue:{}", self.0).as_bytes());
        let h: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        VersionId(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }
}

impl fmt::Debug for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret value. Its `Debug` never shows the material, so it cannot reach a log line
/// or a panic message by accident; [`SecretValue::expose`] is the one way in.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps secret material.
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The material. Call sites are the few places that must hand it to AWS or a target.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<{} bytes redacted>)", self.0.len())
    }
}

/// One version as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Its staging labels (empty: deprecated).
    pub stages: BTreeSet<String>,
    /// When its value became readable; `None` for the engine's value-less AWSPENDING
    /// placeholder. The first propagation gap is measured from this instant.
    pub created: Option<Timestamp>,
}

impl VersionInfo {
    /// Whether the version carries `stage`.
    pub fn has(&self, stage: &str) -> bool {
        self.stages.contains(stage)
    }
}

/// A secret as the store reports it now: every version it still keeps (deprecated ones
/// included), with labels and creation times, and whether rotation is enabled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretState {
    /// Whether rotation is enabled (`DescribeSecret.RotationEnabled`; absent means no).
    pub rotation_enabled: bool,
    /// The versions, by id.
    pub versions: BTreeMap<VersionId, VersionInfo>,
}

impl SecretState {
    /// The version carrying `stage`, if any. The store guarantees at most one.
    pub fn holder(&self, stage: &str) -> Option<&VersionId> {
        self.versions.iter().find(|(_, v)| v.has(stage)).map(|(id, _)| id)
    }

    /// The version carrying AWSCURRENT.
    pub fn current(&self) -> Option<&VersionId> {
        self.holder(AWSCURRENT)
    }

    /// One version's record.
    pub fn version(&self, id: &VersionId) -> Option<&VersionInfo> {
        self.versions.get(id)
    }

    /// Whether version `id` carries `stage`.
    pub fn has(&self, id: &VersionId, stage: &str) -> bool {
        self.versions.get(id).is_some_and(|v| v.has(stage))
    }

    /// The versions a consumer following the contract accepts right now.
    pub fn accepted(&self) -> BTreeSet<&VersionId> {
        self.versions
            .iter()
            .filter(|(_, v)| ACCEPTED_STAGES.iter().any(|s| v.has(s)))
            .map(|(id, _)| id)
            .collect()
    }

    /// Versions whose value became readable strictly after `than`'s did.
    pub fn newer_than(&self, than: &VersionId) -> Vec<&VersionId> {
        let Some(base) = self.versions.get(than).and_then(|v| v.created) else {
            return Vec::new();
        };
        self.versions
            .iter()
            .filter(|(id, v)| *id != than && v.created.is_some_and(|c| c > base))
            .map(|(id, _)| id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_value_debug_redacts() {
        let v = SecretValue::new("hunter2-super-secret");
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("20 bytes"));
    }

    #[test]
    fn reissue_is_deterministic_uuid_shaped_and_distinct() {
        let v = VersionId::new("0b0b0b0b-1111-2222-3333-444444444444");
        let r = v.reissue();
        assert_eq!(r, v.reissue());
        assert_ne!(r, v);
        assert_ne!(r.reissue(), r);
        assert_eq!(r.as_str().len(), 36);
        assert_eq!(r.as_str().matches('-').count(), 4);
        assert!(r.as_str().chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn holder_accepted_and_newer() {
        let mut s = SecretState {
            rotation_enabled: true,
            ..Default::default()
        };
        let k = |n: &str| VersionId::new(n.repeat(32));
        let info = |stages: &[&str], created: Option<i64>| VersionInfo {
            stages: stages.iter().map(|s| s.to_string()).collect(),
            created: created.map(Timestamp::from_secs),
        };
        s.versions.insert(k("a"), info(&[AWSPREVIOUS, ROTATING], Some(1)));
        s.versions.insert(k("b"), info(&[AWSCURRENT], Some(2)));
        s.versions.insert(k("c"), info(&[AWSPENDING], None));
        s.versions.insert(k("d"), info(&[], Some(3)));
        assert_eq!(s.current(), Some(&k("b")));
        assert_eq!(s.holder(ROTATING), Some(&k("a")));
        assert_eq!(s.accepted().len(), 3);
        assert_eq!(s.newer_than(&k("b")), vec![&k("d")]);
        assert!(
            s.newer_than(&k("c")).is_empty(),
            "a placeholder has no creation time"
        );
    }
}
