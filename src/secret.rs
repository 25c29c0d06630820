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

/// The labels whose versions consumers accept (docs/protocol.md, section 1).
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

    /// Version id of keyshift's copy number `generation` of `self` (the engine's token).
    ///
    /// The first follow-up of a rotation writes the pending value again under this id;
    /// the engine never learns it, so AWSPENDING on it can only be removed, never
    /// restored (see [`crate::decide`]). The id is a valid UUID, version 8 (custom) and
    /// RFC 4122 variant: 64 bits of SHA-256 of the token (less the version nibble), a
    /// fixed tag `ab73` that marks keyshift's copies, 16 more bits of the hash, and the
    /// generation in the last 32 bits. So the copies of a token are recognised without
    /// walking a chain (a deleted copy breaks nothing), and the newest is the one with
    /// the largest generation. keyshift uses the copy's creation second as generation.
    pub fn copy(&self, generation: u32) -> VersionId {
        let h = copy_hash(self);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&h[..8]);
        b[8..10].copy_from_slice(&COPY_TAG);
        b[10] = h[8];
        b[11] = h[9];
        b[12..].copy_from_slice(&generation.to_be_bytes());
        VersionId::v8(b)
    }

    /// The generation of `self` if it is one of keyshift's copies of `token`.
    pub fn copy_generation_of(&self, token: &VersionId) -> Option<u32> {
        let b = self.copy_bytes()?;
        let h = copy_hash(token);
        let same =
            b[..6] == h[..6] && b[6] & 0x0f == h[6] & 0x0f && b[7] == h[7] && b[10] == h[8] && b[11] == h[9];
        same.then(|| u32::from_be_bytes([b[12], b[13], b[14], b[15]]))
    }

    /// Whether `self` has the shape of one of keyshift's copies (of any token). Such a
    /// version is written with its value, so it is never the engine's placeholder.
    pub fn is_keyshift_copy(&self) -> bool {
        self.copy_bytes().is_some()
    }

    fn copy_bytes(&self) -> Option<[u8; 16]> {
        self.v8_bytes().filter(|b| b[8..10] == COPY_TAG)
    }

    /// The id of a version 8 (custom), RFC 4122 variant UUID with `bytes` as its other
    /// bits (the version nibble and the variant bits of `bytes` are overwritten).
    fn v8(bytes: [u8; 16]) -> VersionId {
        VersionId(
            uuid::Builder::from_custom_bytes(bytes)
                .into_uuid()
                .hyphenated()
                .to_string(),
        )
    }

    /// The bytes of `self` if it is a version 8 UUID in hyphenated text (either case).
    fn v8_bytes(&self) -> Option<[u8; 16]> {
        let uuid = parse_uuid(&self.0)?;
        (uuid.get_version() == Some(uuid::Version::Custom)).then(|| uuid.into_bytes())
    }
}

/// Bytes 8 and 9 of every copy id: the RFC 4122 variant bits (`10`) and a fixed tag.
const COPY_TAG: [u8; 2] = [0xab, 0x73];

/// Bytes 8 and 9 of every emergency version id: the variant bits and another fixed tag.
const EMERGENCY_TAG: [u8; 2] = [0xab, 0xe9];

impl VersionId {
    /// Version id of the value an emergency rotation away from `self` (the compromised
    /// version) writes: a UUID (version 8, RFC 4122 variant) with a fixed tag `abe9` and
    /// 112 bits of SHA-256 of `self`. Derived, not random, so that the same emergency
    /// asked twice (a retry after a timeout, a second operator) writes one version, and
    /// a rerun recognises the cut as done: `current == compromised.emergency()`.
    pub fn emergency(&self) -> VersionId {
        use sha2::{Digest, Sha256};
        let h: [u8; 32] = Sha256::digest(format!("keyshift-emergency:{}", self.0).as_bytes()).into();
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        b[8..10].copy_from_slice(&EMERGENCY_TAG);
        VersionId::v8(b)
    }

    /// Whether `self` has the shape of an emergency version ([`VersionId::emergency`]).
    pub fn is_keyshift_emergency(&self) -> bool {
        self.v8_bytes().is_some_and(|b| b[8..10] == EMERGENCY_TAG)
    }
}

fn copy_hash(token: &VersionId) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("keyshift-copy:{}", token.0).as_bytes()).into()
}

/// The 8-4-4-4-12 lower-case text of a UUID.
pub fn uuid_text(b: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*b).hyphenated().to_string()
}

/// A UUID in 8-4-4-4-12 text form (either case), or `None`: the only form keyshift
/// writes, and the one Secrets Manager's own version ids take.
fn parse_uuid(text: &str) -> Option<uuid::Uuid> {
    text.parse::<uuid::fmt::Hyphenated>()
        .ok()
        .map(uuid::fmt::Hyphenated::into_uuid)
}

/// The label keyshift puts on the old version once AWSCURRENT has left it: the time
/// stamped in it (taken after the move returned, rounded up to the second) is at or
/// after the swap, so a release due at that time + T is never early. Secrets Manager
/// keeps no swap time of its own, and a `removePending` payload is not to be trusted
/// (anyone may invoke the function by hand); the marker is written by keyshift only,
/// next to the version it times, and read with the labels at no extra cost.
///
/// Format: `KEYSHIFT_SWAPPED_YYYYMMDDThhmmssfffZ` (UTC, to the millisecond; letters,
/// digits and `_` only).
pub const SWAP_MARKER_PREFIX: &str = "KEYSHIFT_SWAPPED_";

/// The swap marker label for `at`.
pub fn swap_marker(at: Timestamp) -> String {
    marker(SWAP_MARKER_PREFIX, at)
}

/// The time a swap marker label carries, if `label` is one.
pub fn parse_swap_marker(label: &str) -> Option<Timestamp> {
    parse_marker(SWAP_MARKER_PREFIX, label)
}

/// For a replicated secret, the label keyshift puts on its copy once every replica
/// Region shows the copy with AWSPENDING: the first gap counts from this time (taken
/// after the replicas were seen caught up), not from the copy's creation, because
/// consumers in a replica Region accept the copy only once it got there.
pub const ACCEPTED_MARKER_PREFIX: &str = "KEYSHIFT_ACCEPTED_";

/// The accepted marker label for `at`.
pub fn accepted_marker(at: Timestamp) -> String {
    marker(ACCEPTED_MARKER_PREFIX, at)
}

/// The time an accepted marker label carries, if `label` is one.
pub fn parse_accepted_marker(label: &str) -> Option<Timestamp> {
    parse_marker(ACCEPTED_MARKER_PREFIX, label)
}

/// The label an operator's cancel puts on the cancelled rotation's token version, stamped
/// with the time of the cancel: every later step of that rotation (an engine retry, a
/// follow-up already scheduled) sees it and stands down instead of writing a new copy,
/// and the cancel revokes the value only once the stamp is [`CANCEL_SETTLE`] old, so a
/// follow-up that decided to swap just before the stamp has either swapped (and the
/// cancel refuses) or never will. The next rotation's release takes the marker off.
pub const CANCEL_MARKER_PREFIX: &str = "KEYSHIFT_CANCELLED_";

/// How old a cancel marker must be before the cancel revokes the cancelled value.
pub const CANCEL_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// The cancel marker label for `at`.
pub fn cancel_marker(at: Timestamp) -> String {
    marker(CANCEL_MARKER_PREFIX, at)
}

/// The time a cancel marker label carries, if `label` is one.
pub fn parse_cancel_marker(label: &str) -> Option<Timestamp> {
    parse_marker(CANCEL_MARKER_PREFIX, label)
}

fn marker(prefix: &str, at: Timestamp) -> String {
    // 2026-11-30T13:17:52.123Z -> 20261130T131752123Z
    let compact: String = at
        .to_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{prefix}{compact}")
}

fn parse_marker(prefix: &str, label: &str) -> Option<Timestamp> {
    let c = label.strip_prefix(prefix)?.as_bytes();
    if c.len() != 19
        || c[8] != b'T'
        || c[18] != b'Z'
        || !c[..18]
            .iter()
            .enumerate()
            .all(|(i, b)| i == 8 || b.is_ascii_digit())
    {
        return None;
    }
    let d = |r: std::ops::Range<usize>| std::str::from_utf8(&c[r]).ok();
    let text = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        d(0..4)?,
        d(4..6)?,
        d(6..8)?,
        d(9..11)?,
        d(11..13)?,
        d(13..15)?,
        d(15..18)?
    );
    Timestamp::parse_rfc3339(&text).ok()
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

/// A secret as the store reports it now: its versions with labels and creation times,
/// whether rotation is enabled, whether it is being deleted, and its tags.
///
/// How complete `versions` is depends on the [`Detail`](crate::ports::Detail) asked
/// for: with `Full`, every version the secret keeps (deprecated ones included) with its
/// value's creation time; with `Labels`, only labelled versions, and `created` is not
/// known (`None`, or a date the adapter happened to know).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretState {
    /// Whether rotation is enabled (`DescribeSecret.RotationEnabled`; absent means no).
    pub rotation_enabled: bool,
    /// Whether the secret is scheduled for deletion (`DescribeSecret.DeletedDate`).
    pub deleted: bool,
    /// The secret's tags (`DescribeSecret.Tags`).
    pub tags: BTreeMap<String, String>,
    /// The versions, by id.
    pub versions: BTreeMap<VersionId, VersionInfo>,
    /// The replica Regions of a multi-Region secret (empty for most secrets).
    pub replicas: Vec<Replica>,
}

/// One replica Region of a multi-Region secret, as the primary's DescribeSecret
/// (`ReplicationStatus`) and, where read, the replica's own DescribeSecret show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// The Region, e.g. `eu-west-1`.
    pub region: String,
    /// The replication status the primary reports.
    pub status: ReplicaStatus,
    /// The labels the replica shows (its `VersionIdsToStages`, labelled versions only),
    /// when they were read in its Region.
    pub stages: Option<BTreeMap<VersionId, BTreeSet<String>>>,
}

/// `ReplicationStatus[].Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaStatus {
    /// The replica holds what the primary holds.
    InSync,
    /// Replication is under way.
    InProgress,
    /// Replication failed (the replica may hold an old state for ever).
    Failed,
}

impl SecretState {
    /// The labelled versions and their labels: what a replica must show to have caught
    /// up.
    pub fn labels(&self) -> BTreeMap<VersionId, BTreeSet<String>> {
        self.versions
            .iter()
            .filter(|(_, v)| !v.stages.is_empty())
            .map(|(id, v)| (id.clone(), v.stages.clone()))
            .collect()
    }

    /// Whether every replica Region shows the primary's labels now (InSync, and the
    /// labels read there, if read, equal to the primary's). Trivially true without
    /// replicas.
    pub fn replicas_caught_up(&self) -> bool {
        if self.replicas.is_empty() {
            return true;
        }
        let labels = self.labels();
        self.replicas
            .iter()
            .all(|r| r.status == ReplicaStatus::InSync && r.stages.as_ref().is_none_or(|s| *s == labels))
    }

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

    /// The newest of keyshift's copies of `token` that the state shows, with its
    /// generation.
    pub fn newest_copy(&self, token: &VersionId) -> Option<(&VersionId, u32)> {
        self.versions
            .keys()
            .filter_map(|v| v.copy_generation_of(token).map(|g| (v, g)))
            .max_by_key(|(_, g)| *g)
    }

    /// Whether `version` is `token` or one of keyshift's copies of it.
    pub fn in_chain(version: &VersionId, token: &VersionId) -> bool {
        version == token || version.copy_generation_of(token).is_some()
    }

    /// The latest swap-marker time on `version`, if it carries one.
    pub fn swap_marker(&self, version: &VersionId) -> Option<Timestamp> {
        self.markers(version).map(|(_, t)| t).max()
    }

    /// Every swap-marker label on `version`, with its time.
    pub fn markers(&self, version: &VersionId) -> impl Iterator<Item = (&str, Timestamp)> {
        self.versions
            .get(version)
            .into_iter()
            .flat_map(|v| v.stages.iter())
            .filter_map(|l| parse_swap_marker(l).map(|t| (l.as_str(), t)))
    }

    /// Every cancel-marker label on `version`, with its time.
    pub fn cancel_markers(&self, version: &VersionId) -> impl Iterator<Item = (&str, Timestamp)> {
        self.versions
            .get(version)
            .into_iter()
            .flat_map(|v| v.stages.iter())
            .filter_map(|l| parse_cancel_marker(l).map(|t| (l.as_str(), t)))
    }

    /// The engine's token of `version`: itself unless it is one of keyshift's copies,
    /// then the version it is a copy of (found among the versions the state shows).
    pub fn token_of<'a>(&'a self, version: &'a VersionId) -> Option<&'a VersionId> {
        if !version.is_keyshift_copy() {
            return Some(version);
        }
        self.versions
            .keys()
            .find(|t| *t != version && version.copy_generation_of(t).is_some())
    }

    /// Every accepted-marker label on `version`, with its time.
    pub fn accepted_markers(&self, version: &VersionId) -> impl Iterator<Item = (&str, Timestamp)> {
        self.versions
            .get(version)
            .into_iter()
            .flat_map(|v| v.stages.iter())
            .filter_map(|l| parse_accepted_marker(l).map(|t| (l.as_str(), t)))
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
    fn copies_are_uuids_recognised_by_token_and_ordered_by_generation() {
        let token = VersionId::new("0b0b0b0b-1111-2222-3333-444444444444");
        let other = VersionId::new("0c0c0c0c-1111-2222-3333-444444444444");
        let c = token.copy(1_764_508_672);
        assert_eq!(c, token.copy(1_764_508_672), "deterministic");
        assert_ne!(c, token.copy(1_764_508_673));
        assert_eq!(c.as_str().len(), 36);
        let text = c.as_str();
        assert_eq!(&text[14..15], "8", "UUID version 8: {text}");
        assert!(
            matches!(&text[19..20], "8" | "9" | "a" | "b"),
            "RFC 4122 variant: {text}"
        );
        assert_eq!(c.copy_generation_of(&token), Some(1_764_508_672));
        assert_eq!(c.copy_generation_of(&other), None);
        assert!(c.is_keyshift_copy());
        assert!(!token.is_keyshift_copy());
        assert_eq!(token.copy_generation_of(&token), None);
        // A copy of a copy is not a copy of the token.
        assert_eq!(c.copy(5).copy_generation_of(&token), None);
        assert_eq!(
            VersionId::new("not a uuid at all, but 32 chars long").copy_generation_of(&token),
            None
        );
    }

    /// Ids computed by the release before the ids went through the `uuid` crate: a
    /// rotation or an emergency that release started is recognised by this one only if
    /// the derived ids stay bit for bit the same.
    const PINNED: [(&str, u32, &str); 6] = [
        (
            "0b6b0e4e-5d49-4bd5-9c4f-6a1f5c8e2d31",
            1_700_000_000,
            "f5fd91c1-a871-8416-ab73-68576553f100",
        ),
        (
            "0b6b0e4e-5d49-4bd5-9c4f-6a1f5c8e2d31",
            0,
            "f5fd91c1-a871-8416-ab73-685700000000",
        ),
        (
            "0b6b0e4e-5d49-4bd5-9c4f-6a1f5c8e2d31",
            u32::MAX,
            "f5fd91c1-a871-8416-ab73-6857ffffffff",
        ),
        (
            "0B6B0E4E-5D49-4BD5-9C4F-6A1F5C8E2D31",
            1,
            "6c5e5e57-4857-814d-ab73-967500000001",
        ),
        (
            "AWSCURRENT-token-of-32-characters",
            1_700_000_000,
            "8142d692-6dd4-8d16-ab73-6c1e6553f100",
        ),
        (
            "AWSCURRENT-token-of-32-characters",
            1,
            "8142d692-6dd4-8d16-ab73-6c1e00000001",
        ),
    ];

    const PINNED_EMERGENCY: [(&str, &str); 3] = [
        (
            "0b6b0e4e-5d49-4bd5-9c4f-6a1f5c8e2d31",
            "4ff2e80f-f120-8c9d-abe9-ee1b9ce27461",
        ),
        (
            "0B6B0E4E-5D49-4BD5-9C4F-6A1F5C8E2D31",
            "b058ba69-5776-84ed-abe9-5325a9642624",
        ),
        (
            "AWSCURRENT-token-of-32-characters",
            "4bf5392f-b0c7-8e0e-abe9-a8d0b89fc67b",
        ),
    ];

    #[test]
    fn derived_ids_are_those_of_the_previous_release() {
        for (token, generation, id) in PINNED {
            let token = VersionId::new(token);
            assert_eq!(token.copy(generation).as_str(), id);
            let copy = VersionId::new(id);
            assert_eq!(copy.copy_generation_of(&token), Some(generation), "{id}");
            assert!(copy.is_keyshift_copy() && !copy.is_keyshift_emergency(), "{id}");
            // Secrets Manager may answer in either case; the id is the same.
            let upper = VersionId::new(id.to_uppercase());
            assert_eq!(upper.copy_generation_of(&token), Some(generation), "{id}");
        }
        for (compromised, id) in PINNED_EMERGENCY {
            let emergency = VersionId::new(compromised).emergency();
            assert_eq!(emergency.as_str(), id);
            assert!(
                emergency.is_keyshift_emergency() && !emergency.is_keyshift_copy(),
                "{id}"
            );
            assert!(VersionId::new(id.to_uppercase()).is_keyshift_emergency(), "{id}");
        }
        // Valid UUIDs: version 8 (custom), RFC 4122 variant, both kinds.
        for id in PINNED
            .iter()
            .map(|p| p.2)
            .chain(PINNED_EMERGENCY.iter().map(|p| p.1))
        {
            let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(uuid.get_version(), Some(uuid::Version::Custom), "{id}");
            assert_eq!(uuid.get_version_num(), 8, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(uuid_text(uuid.as_bytes()), id);
        }
        // Only the hyphenated form is one of keyshift's ids.
        let simple = PINNED[0].2.replace('-', "");
        assert!(!VersionId::new(simple.as_str()).is_keyshift_copy());
        let braced = format!("{{{}}}", PINNED[0].2);
        assert!(!VersionId::new(braced.as_str()).is_keyshift_copy());
        let urn = format!("urn:uuid:{}", PINNED_EMERGENCY[0].1);
        assert!(!VersionId::new(urn.as_str()).is_keyshift_emergency());
    }

    #[test]
    fn swap_markers_round_trip_to_the_millisecond() {
        let t = Timestamp::parse_rfc3339("2026-11-30T13:17:52.001Z").unwrap();
        let label = swap_marker(t);
        assert_eq!(label, "KEYSHIFT_SWAPPED_20261130T131752001Z");
        assert!(label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert_eq!(parse_swap_marker(&label), Some(t));
        let whole = Timestamp::parse_rfc3339("2026-11-30T13:17:52Z").unwrap();
        assert_eq!(parse_swap_marker(&swap_marker(whole)), Some(whole));
        for bad in [
            "KEYSHIFT_SWAPPED_",
            "KEYSHIFT_SWAPPED_2026",
            "ROTATING",
            "KEYSHIFT_SWAPPED_20261330T131752000Z",
            "KEYSHIFT_SWAPPED_20261130T13175200xZ",
            "KEYSHIFT_SWAPPED_20261130T131752000Z0",
        ] {
            assert_eq!(parse_swap_marker(bad), None, "{bad}");
        }
    }

    #[test]
    fn holder_and_accepted() {
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
    }
}
