//! A faithful in-memory Secrets Manager for the simulation and the tests.
//!
//! It enforces the label rules AWS documents for `UpdateSecretVersionStage` and
//! `PutSecretValue`, not the laxer behaviour of emulators such as moto: a label sits on at most one
//! version, moving a label off another version needs `RemoveFromVersionId`, moving
//! AWSCURRENT drags AWSPREVIOUS along, AWSCURRENT can never be removed outright, a
//! secret carries at most 20 labels, and `PutSecretValue` with a used token is a no-op
//! for the same value and a conflict for another one.
//!
//! Everything is deterministic: "now" comes from the clock closure given to
//! [`MemorySecretsManager::new`], there is no randomness and no thread. Faults are
//! queued with [`MemorySecretsManager::inject`] and hit only the [`SecretStore`] methods,
//! the surface the executor sees; the synchronous helpers are the simulation's own hands.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::ports::{Detail, LabelMove, SecretStore, StoreError, StoreErrorKind};
use crate::secret::{
    AWSCURRENT, AWSPENDING, AWSPREVIOUS, Replica, ReplicaStatus, SecretId, SecretState, SecretValue,
    VersionId, VersionInfo,
};
use crate::time::Timestamp;

#[cfg(test)]
mod tests;

/// Most distinct staging labels one secret may carry (AWS quota).
pub const MAX_LABELS: usize = 20;
/// Above this many versions, Secrets Manager deletes deprecated ones.
pub const MAX_VERSIONS: usize = 100;
/// Deprecated versions younger than this are never deleted.
pub const DEPRECATED_GRACE: Duration = Duration::from_secs(24 * 3600);

/// One entry of a secret's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// When it happened, by the manager's clock.
    pub at: Timestamp,
    /// The version it happened to.
    pub version: VersionId,
    /// What happened.
    pub what: ChangeKind,
}

/// What a [`Change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// The label was attached to the version.
    Attached(String),
    /// The label was removed from the version.
    Detached(String),
    /// The version's value was written (never shown here).
    ValueStored,
    /// The deprecated version was deleted.
    Deleted,
}

/// The [`SecretStore`] operations, for fault targeting and call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`SecretStore::describe`].
    Describe,
    /// [`SecretStore::get_value`].
    GetValue,
    /// [`SecretStore::put_pending`].
    PutPending,
    /// [`SecretStore::update_stage`].
    UpdateStage,
}

impl Op {
    fn index(self) -> usize {
        match self {
            Op::Describe => 0,
            Op::GetValue => 1,
            Op::PutPending => 2,
            Op::UpdateStage => 3,
        }
    }
}

/// A fault to apply to upcoming [`SecretStore`] calls. Faults queue up and each is
/// consumed once; a call meets the first queued fault that targets its operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The next call of `op` fails with `kind` and changes nothing.
    FailNext {
        /// The operation to fail.
        op: Op,
        /// The error it reports.
        kind: StoreErrorKind,
    },
    /// The next `calls` calls (of `op`, or of any op when None) fail with Throttled and
    /// change nothing.
    Throttle {
        /// The operation to throttle; `None` throttles every operation.
        op: Option<Op>,
        /// How many calls to refuse.
        calls: u32,
    },
    /// The next call of `op` takes effect, then reports Transient ("the response was lost").
    LoseResponse {
        /// The operation whose response is lost.
        op: Op,
    },
}

impl Fault {
    fn targets(&self, call: Op) -> bool {
        match self {
            Fault::FailNext { op, .. } | Fault::LoseResponse { op } => *op == call,
            Fault::Throttle { op, .. } => op.is_none_or(|op| op == call),
        }
    }
}

struct Version {
    /// `None` for the rotation engine's placeholder.
    value: Option<SecretValue>,
    stages: BTreeSet<String>,
    /// When the value was stored.
    created: Option<Timestamp>,
    /// When the version came to exist (a placeholder's age for the purge).
    born: Timestamp,
    /// Creation order, to break ties between versions born at the same instant.
    seq: u64,
}

/// A replica Region: every change of the primary reaches it in order, each after a
/// lag drawn (deterministically, from `seed`) between `min` and `max`.
#[derive(Clone)]
struct ReplicaModel {
    region: String,
    min: Duration,
    max: Duration,
    seed: u64,
}

impl ReplicaModel {
    /// When each change of `history` reaches this Region: in order, each no sooner than
    /// its own lag after it happened.
    fn arrivals(&self, history: &[Change]) -> Vec<Timestamp> {
        let mut last = Timestamp::EPOCH;
        history
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let span = self.max.saturating_sub(self.min).as_millis() as u64;
                let lag = self.min + Duration::from_millis(mix(self.seed ^ j as u64) % (span + 1));
                last = last.max(c.at.plus(lag));
                last
            })
            .collect()
    }
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Secret {
    id: SecretId,
    replicas: Vec<ReplicaModel>,
    rotation_enabled: bool,
    /// Scheduled for deletion: described, but every other call is refused.
    deleted: bool,
    tags: BTreeMap<String, String>,
    versions: BTreeMap<VersionId, Version>,
    history: Vec<Change>,
    next_seq: u64,
}

#[derive(Default)]
struct State {
    secrets: BTreeMap<SecretId, Secret>,
    faults: Vec<Fault>,
    calls: [u64; 4],
    /// Describes at [`Detail::Full`]: each is a ListSecretVersionIds on AWS too.
    lists: u64,
    /// Reads do not show a value for this long after it was written.
    read_lag: Duration,
}

/// An in-memory AWS Secrets Manager with AWS's label rules and typed fault verbs.
pub struct MemorySecretsManager {
    // A std Mutex suffices: no method awaits while holding it, and contention is nil
    // (the simulation is single-threaded).
    state: Mutex<State>,
    clock: Box<dyn Fn() -> Timestamp + Send + Sync>,
}

impl fmt::Debug for MemorySecretsManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySecretsManager").finish_non_exhaustive()
    }
}

fn error(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
    StoreError::new(kind, message)
}

fn not_found(secret: &SecretId) -> StoreError {
    error(
        StoreErrorKind::NotFound,
        format!("ResourceNotFoundException: Secrets Manager can't find the specified secret {secret}"),
    )
}

impl MemorySecretsManager {
    /// A manager with no secrets. `clock` gives "now" (virtual time in the simulation)
    /// for CreatedDate stamps and history.
    pub fn new(clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        MemorySecretsManager {
            state: Mutex::new(State::default()),
            clock: Box::new(clock),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere (a failing test) must not cascade into every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the named secret at the clock's "now". The clock is read before
    /// locking so that a clock closure may itself take locks.
    fn with_secret<T>(
        &self,
        secret: &SecretId,
        f: impl FnOnce(&mut Secret, Timestamp) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = (self.clock)();
        let mut state = self.lock();
        let s = state.secrets.get_mut(secret).ok_or_else(|| not_found(secret))?;
        f(s, now)
    }

    /// CreateSecret: first version `version` with `value`, labelled AWSCURRENT. Error
    /// AlreadyExists if the secret exists.
    pub fn create_secret(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: SecretValue,
    ) -> Result<(), StoreError> {
        let now = (self.clock)();
        let mut state = self.lock();
        if state.secrets.contains_key(secret) {
            return Err(error(
                StoreErrorKind::AlreadyExists,
                format!("ResourceExistsException: the secret {secret} already exists"),
            ));
        }
        let mut s = Secret {
            id: secret.clone(),
            replicas: Vec::new(),
            rotation_enabled: false,
            deleted: false,
            tags: BTreeMap::new(),
            versions: BTreeMap::new(),
            history: Vec::new(),
            next_seq: 0,
        };
        s.store(now, version, value);
        s.attach(now, AWSCURRENT, version);
        state.secrets.insert(secret.clone(), s);
        Ok(())
    }

    /// Turns rotation on (RotateSecret's configuration) or off (CancelRotateSecret).
    pub fn set_rotation_enabled(&self, secret: &SecretId, enabled: bool) -> Result<(), StoreError> {
        self.with_secret(secret, |s, _| {
            s.rotation_enabled = enabled;
            Ok(())
        })
    }

    /// ReplicateSecretToRegions: from now on every change reaches `region` in order,
    /// each after a lag between `min` and `max` (drawn from `seed`).
    pub fn add_replica(
        &self,
        secret: &SecretId,
        region: &str,
        min: Duration,
        max: Duration,
        seed: u64,
    ) -> Result<(), StoreError> {
        self.with_secret(secret, |s, _| {
            s.replicas.push(ReplicaModel {
                region: region.to_owned(),
                min,
                max,
                seed,
            });
            Ok(())
        })
    }

    /// The audit log as `region` sees it: every change, stamped with when it got there
    /// (what consumers reading that Region see, for a per-Region check of the gaps).
    /// Changes that have not arrived by the manager's "now" are left out.
    pub fn replica_history(&self, secret: &SecretId, region: &str) -> Vec<Change> {
        let now = (self.clock)();
        let state = self.lock();
        let Some(s) = state.secrets.get(secret) else {
            return Vec::new();
        };
        let Some(r) = s.replicas.iter().find(|r| r.region == region) else {
            return Vec::new();
        };
        r.arrivals(&s.history)
            .into_iter()
            .zip(&s.history)
            .filter(|(at, _)| *at <= now)
            .map(|(at, c)| Change { at, ..c.clone() })
            .collect()
    }

    /// TagResource: sets one tag.
    pub fn tag(&self, secret: &SecretId, key: &str, value: &str) -> Result<(), StoreError> {
        self.with_secret(secret, |s, _| {
            s.tags.insert(key.to_owned(), value.to_owned());
            Ok(())
        })
    }

    /// DeleteSecret: with `force`, the secret is gone at once (every call: NotFound);
    /// otherwise it is scheduled for deletion (described with its deletion, every other
    /// call refused as AWS does: InvalidRequestException "marked for deletion").
    pub fn delete_secret(&self, secret: &SecretId, force: bool) -> Result<(), StoreError> {
        let mut state = self.lock();
        if force {
            state.secrets.remove(secret).ok_or_else(|| not_found(secret))?;
            return Ok(());
        }
        let s = state.secrets.get_mut(secret).ok_or_else(|| not_found(secret))?;
        s.deleted = true;
        Ok(())
    }

    /// Eventual consistency: for `lag` after a value is written, reads (GetValue, and
    /// the creation time describe reports) do not show it yet.
    pub fn set_read_lag(&self, lag: Duration) {
        self.lock().read_lag = lag;
    }

    /// What the rotation engine does before it invokes createSecret: creates version
    /// `token` without a value and attaches AWSPENDING to it. Refused (InvalidRequest)
    /// while rotation is disabled or AWSPENDING sits on a version other than AWSCURRENT
    /// and `token`; a `token` that exists already just gets AWSPENDING (re)attached, as
    /// the engine's retry of the same rotation does.
    pub fn begin_rotation(&self, secret: &SecretId, token: &VersionId) -> Result<(), StoreError> {
        self.with_secret(secret, |s, now| {
            if !s.rotation_enabled {
                return Err(error(
                    StoreErrorKind::InvalidRequest,
                    format!("InvalidRequestException: rotation is not enabled for secret {}", s.id),
                ));
            }
            // The engine's own retry (same token) is not a new rotation, so the
            // "previous rotation" check does not apply to it.
            let pending = s.holder(AWSPENDING);
            if pending.as_ref().is_some_and(|p| p != token && s.holder(AWSCURRENT).as_ref() != Some(p)) {
                return Err(error(
                    StoreErrorKind::InvalidRequest,
                    "InvalidRequestException: A previous rotation isn't complete. That rotation will be reattempted.",
                ));
            }
            s.check_labels(&[AWSPENDING], token)?;
            if !s.versions.contains_key(token) {
                s.insert(now, token, None);
            }
            s.attach(now, AWSPENDING, token);
            s.purge(now);
            Ok(())
        })
    }

    /// PutSecretValue by an operator: `stages` empty means AWSCURRENT (AWS's default).
    /// The token rules are those of [`SecretStore::put_pending`].
    pub fn put_secret_value(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: SecretValue,
        stages: &[&str],
    ) -> Result<(), StoreError> {
        let stages: &[&str] = if stages.is_empty() { &[AWSCURRENT] } else { stages };
        self.with_secret(secret, |s, now| s.put(now, version, &value, stages))
    }

    /// The secret as [`SecretStore::describe`] reports it, without fault accounting.
    pub fn snapshot(&self, secret: &SecretId) -> Result<SecretState, StoreError> {
        self.with_secret(secret, |s, _| Ok(s.state(Detail::Full, None)))
    }

    /// A version's value (`None` for a placeholder), without fault accounting.
    pub fn value(&self, secret: &SecretId, version: &VersionId) -> Result<Option<SecretValue>, StoreError> {
        self.with_secret(secret, |s, _| s.value(version))
    }

    /// The audit log of every label and value change of `secret`, in order (empty for an
    /// unknown secret).
    pub fn history(&self, secret: &SecretId) -> Vec<Change> {
        self.lock()
            .secrets
            .get(secret)
            .map(|s| s.history.clone())
            .unwrap_or_default()
    }

    /// Queues a fault for the upcoming [`SecretStore`] calls.
    pub fn inject(&self, fault: Fault) {
        if matches!(fault, Fault::Throttle { calls: 0, .. }) {
            return;
        }
        self.lock().faults.push(fault);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Strips `stage` from whichever version carries it, as the rotation engine's
    /// undocumented clean-up might (no RemoveFromVersionId, no fault accounting).
    /// Returns the version it was on.
    pub fn strip_label(&self, secret: &SecretId, stage: &str) -> Option<VersionId> {
        self.with_secret(secret, |s, now| {
            let holder = s.holder(stage);
            if let Some(h) = &holder {
                s.detach(now, stage, h);
                s.purge(now);
            }
            Ok(holder)
        })
        .ok()
        .flatten()
    }

    /// How many calls `op` has received (failed and faulted ones included).
    pub fn calls(&self, op: Op) -> u64 {
        self.lock().calls[op.index()]
    }

    /// How many [`Op::Describe`] calls asked for [`Detail::Full`]: on AWS each is also a
    /// ListSecretVersionIds (one page), so the calls a rotation makes can be counted here
    /// as the function makes them.
    pub fn list_calls(&self) -> u64 {
        self.lock().lists
    }

    /// Runs one [`SecretStore`] call: counts it, applies the first queued fault that
    /// targets it, then does the work on the named secret.
    fn call<T>(
        &self,
        op: Op,
        secret: &SecretId,
        f: impl FnOnce(&mut Secret, Lagged) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = (self.clock)();
        let mut state = self.lock();
        state.calls[op.index()] += 1;
        let mut lose_response = false;
        if let Some(i) = state.faults.iter().position(|f| f.targets(op)) {
            match &mut state.faults[i] {
                Fault::FailNext { kind, .. } => {
                    let kind = *kind;
                    state.faults.remove(i);
                    return Err(error(kind, format!("injected failure of {op:?}")));
                }
                Fault::Throttle { calls, .. } => {
                    *calls = calls.saturating_sub(1);
                    if *calls == 0 {
                        state.faults.remove(i);
                    }
                    return Err(error(
                        StoreErrorKind::Throttled,
                        "ThrottlingException: Rate exceeded (injected)",
                    ));
                }
                Fault::LoseResponse { .. } => {
                    state.faults.remove(i);
                    lose_response = true;
                }
            }
        }
        let lag = state.read_lag;
        let s = state.secrets.get_mut(secret).ok_or_else(|| not_found(secret))?;
        if s.deleted && op != Op::Describe {
            return Err(error(
                StoreErrorKind::Deleted,
                format!(
                    "InvalidRequestException: You can't perform this operation on the secret {} because it was marked for deletion.",
                    s.id
                ),
            ));
        }
        let out = f(s, Lagged { now, lag })?;
        if lose_response {
            return Err(error(
                StoreErrorKind::Transient,
                format!("response lost (injected): {op:?} took effect"),
            ));
        }
        Ok(out)
    }
}

/// "Now" and the read lag, for a store call.
#[derive(Clone, Copy)]
struct Lagged {
    now: Timestamp,
    lag: Duration,
}

impl Lagged {
    /// Whether a value stored at `created` is visible to reads now.
    fn visible(self, created: Option<Timestamp>) -> bool {
        created.is_some_and(|c| self.now.since(c) >= self.lag)
    }
}

impl Secret {
    fn log(&mut self, at: Timestamp, version: &VersionId, what: ChangeKind) {
        self.history.push(Change {
            at,
            version: version.clone(),
            what,
        });
    }

    fn holder(&self, stage: &str) -> Option<VersionId> {
        self.versions
            .iter()
            .find(|(_, v)| v.stages.contains(stage))
            .map(|(id, _)| id.clone())
    }

    fn version_exists(&self, version: &VersionId) -> Result<(), StoreError> {
        if self.versions.contains_key(version) {
            Ok(())
        } else {
            Err(error(
                StoreErrorKind::NotFound,
                format!(
                    "ResourceNotFoundException: secret {} has no version {version}",
                    self.id
                ),
            ))
        }
    }

    fn value(&self, version: &VersionId) -> Result<Option<SecretValue>, StoreError> {
        self.version_exists(version)?;
        Ok(self.versions.get(version).and_then(|v| v.value.clone()))
    }

    /// The secret as DescribeSecret (+ ListSecretVersionIds for `Full`) reports it;
    /// `reads` applies the read lag (None: the simulation's own, lag-free view).
    fn state(&self, detail: Detail, reads: Option<Lagged>) -> SecretState {
        SecretState {
            replicas: reads.map(|r| self.replica_states(r.now)).unwrap_or_default(),
            rotation_enabled: self.rotation_enabled,
            deleted: self.deleted,
            tags: self.tags.clone(),
            versions: self
                .versions
                .iter()
                // VersionIdsToStages lists labelled versions only.
                .filter(|(_, v)| detail == Detail::Full || !v.stages.is_empty())
                .map(|(id, v)| {
                    let visible = reads.is_none_or(|r| r.visible(v.created));
                    // With labels only, no creation time is read (DescribeSecret alone).
                    let dated = detail == Detail::Full;
                    let info = VersionInfo {
                        stages: v.stages.clone(),
                        created: v.created.filter(|_| visible && dated),
                    };
                    (id.clone(), info)
                })
                .collect(),
        }
    }

    /// Each replica's status and labels at `now`: InSync once every change reached it.
    fn replica_states(&self, now: Timestamp) -> Vec<Replica> {
        self.replicas
            .iter()
            .map(|r| {
                let arrivals = r.arrivals(&self.history);
                let mut labels: BTreeMap<VersionId, BTreeSet<String>> = BTreeMap::new();
                for (c, at) in self.history.iter().zip(&arrivals) {
                    if *at > now {
                        break;
                    }
                    match &c.what {
                        ChangeKind::Attached(l) => {
                            labels.entry(c.version.clone()).or_default().insert(l.clone());
                        }
                        ChangeKind::Detached(l) => {
                            if let Some(set) = labels.get_mut(&c.version) {
                                set.remove(l);
                            }
                        }
                        ChangeKind::Deleted => {
                            labels.remove(&c.version);
                        }
                        ChangeKind::ValueStored => {}
                    }
                }
                labels.retain(|_, set| !set.is_empty());
                let caught_up = arrivals.last().is_none_or(|at| *at <= now);
                Replica {
                    region: r.region.clone(),
                    status: if caught_up {
                        ReplicaStatus::InSync
                    } else {
                        ReplicaStatus::InProgress
                    },
                    stages: Some(labels),
                }
            })
            .collect()
    }

    /// Refuses when attaching `stages` to `to` would leave more than [`MAX_LABELS`]
    /// distinct labels on the secret, counting the AWSPREVIOUS an AWSCURRENT move drags in.
    fn check_labels(&self, stages: &[&str], to: &VersionId) -> Result<(), StoreError> {
        let mut labels: BTreeSet<&str> = self
            .versions
            .values()
            .flat_map(|v| v.stages.iter().map(String::as_str))
            .collect();
        for &stage in stages {
            labels.insert(stage);
            if stage == AWSCURRENT && self.holder(AWSCURRENT).is_some_and(|w| &w != to) {
                labels.insert(AWSPREVIOUS);
            }
        }
        if labels.len() > MAX_LABELS {
            return Err(error(
                StoreErrorKind::LimitExceeded,
                format!(
                    "LimitExceededException: secret {} may carry at most {MAX_LABELS} staging labels",
                    self.id
                ),
            ));
        }
        Ok(())
    }

    fn insert(&mut self, now: Timestamp, version: &VersionId, value: Option<SecretValue>) {
        let stored = value.is_some();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.versions.insert(
            version.clone(),
            Version {
                created: stored.then_some(now),
                value,
                stages: BTreeSet::new(),
                born: now,
                seq,
            },
        );
        if stored {
            self.log(now, version, ChangeKind::ValueStored);
        }
    }

    /// Writes `value` into `version`, creating it or filling a placeholder.
    fn store(&mut self, now: Timestamp, version: &VersionId, value: SecretValue) {
        match self.versions.get_mut(version) {
            Some(v) => {
                v.value = Some(value);
                v.created = Some(now);
                self.log(now, version, ChangeKind::ValueStored);
            }
            None => self.insert(now, version, Some(value)),
        }
    }

    /// PutSecretValue with `ClientRequestToken = version` and `VersionStages = stages`.
    fn put(
        &mut self,
        now: Timestamp,
        version: &VersionId,
        value: &SecretValue,
        stages: &[&str],
    ) -> Result<(), StoreError> {
        if let Some(existing) = self.versions.get(version).and_then(|v| v.value.as_ref()) {
            // AWS: the same token and data "succeeds but does nothing"; other data fails
            // "because you can't modify an existing version".
            if existing == value {
                return Ok(());
            }
            return Err(error(
                StoreErrorKind::AlreadyExists,
                format!(
                    "ResourceExistsException: version {version} of secret {} already exists with different data; \
                     you can't modify an existing version",
                    self.id
                ),
            ));
        }
        self.check_labels(stages, version)?;
        self.store(now, version, value.clone());
        for stage in stages {
            self.attach(now, stage, version);
        }
        self.purge(now);
        Ok(())
    }

    /// Puts `stage` on `to`, taking it off its holder; an AWSCURRENT move sends
    /// AWSPREVIOUS to the version it left. Validation is the caller's job.
    fn attach(&mut self, now: Timestamp, stage: &str, to: &VersionId) {
        let from = self.holder(stage);
        if from.as_ref() == Some(to) {
            return;
        }
        if let Some(w) = &from {
            self.detach(now, stage, w);
        }
        if let Some(v) = self.versions.get_mut(to) {
            v.stages.insert(stage.to_string());
            self.log(now, to, ChangeKind::Attached(stage.to_string()));
        }
        match from {
            Some(w) if stage == AWSCURRENT => self.attach(now, AWSPREVIOUS, &w),
            _ => {}
        }
    }

    fn detach(&mut self, now: Timestamp, stage: &str, from: &VersionId) {
        let removed = self
            .versions
            .get_mut(from)
            .is_some_and(|v| v.stages.remove(stage));
        if removed {
            self.log(now, from, ChangeKind::Detached(stage.to_string()));
        }
    }

    /// UpdateSecretVersionStage.
    fn update_stage(&mut self, now: Timestamp, change: &LabelMove) -> Result<(), StoreError> {
        let stage = change.stage.as_str();
        if stage.is_empty() {
            return Err(error(
                StoreErrorKind::InvalidParameter,
                "InvalidParameterException: VersionStage is empty",
            ));
        }
        for named in [&change.move_to, &change.remove_from].into_iter().flatten() {
            self.version_exists(named)?;
        }
        let holder = self.holder(stage);
        let invalid = |why: String| {
            Err(error(
                StoreErrorKind::InvalidParameter,
                format!("InvalidParameterException: {why}"),
            ))
        };
        // AWS: "If the label is attached and you either do not specify this parameter, or
        // the version ID does not match, then the operation fails." A RemoveFromVersionId
        // that does not carry the label is refused too (undocumented; moto agrees).
        if let Some(from) = change
            .remove_from
            .as_ref()
            .filter(|&f| holder.as_ref() != Some(f))
        {
            return invalid(format!("staging label {stage} is not attached to version {from}"));
        }
        match &change.move_to {
            Some(to) => {
                if holder.as_ref() == Some(to) {
                    return Ok(());
                }
                // A RemoveFromVersionId that names another version was refused above.
                if let (Some(w), None) = (&holder, &change.remove_from) {
                    return invalid(format!(
                        "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently \
                         attached to version {w}, so you must explicitly reference that version in RemoveFromVersionId."
                    ));
                }
                self.check_labels(&[stage], to)?;
                self.attach(now, stage, to);
            }
            None => {
                let Some(from) = &change.remove_from else {
                    return invalid(format!("removing {stage} needs RemoveFromVersionId"));
                };
                if stage == AWSCURRENT {
                    // AWS never lets a secret lose its current version; moto does.
                    return invalid(format!(
                        "you can't remove {AWSCURRENT} from version {from} without moving it to another version"
                    ));
                }
                self.detach(now, stage, from);
            }
        }
        self.purge(now);
        Ok(())
    }

    /// AWS: "removes deprecated versions when there are more than 100 ... doesn't remove
    /// versions created less than 24 hours ago", and PutSecretValue "keeps 100 of the most
    /// recent versions": delete the oldest eligible label-less versions, no more than
    /// needed to get back to 100.
    fn purge(&mut self, now: Timestamp) {
        let excess = self.versions.len().saturating_sub(MAX_VERSIONS);
        if excess == 0 {
            return;
        }
        let mut doomed: Vec<(Timestamp, u64, VersionId)> = self
            .versions
            .iter()
            .filter_map(|(id, v)| {
                let age_from = v.created.unwrap_or(v.born);
                (v.stages.is_empty() && now.since(age_from) >= DEPRECATED_GRACE)
                    .then(|| (age_from, v.seq, id.clone()))
            })
            .collect();
        doomed.sort();
        for (_, _, id) in doomed.into_iter().take(excess) {
            self.versions.remove(&id);
            self.log(now, &id, ChangeKind::Deleted);
        }
    }
}

impl SecretStore for MemorySecretsManager {
    async fn describe(&self, secret: &SecretId, detail: Detail) -> Result<SecretState, StoreError> {
        if detail == Detail::Full {
            self.lock().lists += 1;
        }
        self.call(Op::Describe, secret, |s, r| Ok(s.state(detail, Some(r))))
    }

    async fn get_value(
        &self,
        secret: &SecretId,
        version: &VersionId,
    ) -> Result<Option<SecretValue>, StoreError> {
        self.call(Op::GetValue, secret, |s, r| {
            let v = s.value(version)?;
            let created = s.versions.get(version).and_then(|v| v.created);
            if v.is_some() && !r.visible(created) {
                // Written, but not readable yet: what AWS answers for a placeholder.
                return Err(error(
                    StoreErrorKind::NotFound,
                    format!(
                        "ResourceNotFoundException: secret {} has no value for version {version} yet",
                        s.id
                    ),
                ));
            }
            Ok(v)
        })
    }

    async fn put_pending(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        _rotation_token: Option<&str>,
    ) -> Result<(), StoreError> {
        self.call(Op::PutPending, secret, |s, r| {
            s.put(r.now, version, value, &[AWSPENDING])
        })
    }

    async fn update_stage(&self, secret: &SecretId, change: &LabelMove) -> Result<(), StoreError> {
        self.call(Op::UpdateStage, secret, |s, r| s.update_stage(r.now, change))
    }
}
