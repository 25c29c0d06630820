//! The ports: what the executor needs from the world, in keyshift's own types.
//!
//! One adapter per AWS service implements these (the Lambda crate); the in-memory
//! Secrets Manager in [`crate::memory`] and the simulation implement them too. No SDK
//! type crosses this line, so fakes need no SDK builders and errors are classified once,
//! in the adapter (AWS SDK examples' narrowed `traits.rs`).
//!
//! Methods return `impl Future + Send` so that executors built on them can run on a
//! multi-threaded runtime (the Lambda runtime) as well as in the single-threaded
//! simulation; implementations write plain `async fn`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::event::{Invocation, ScheduleName};
use crate::secret::{SecretId, SecretState, SecretValue, VersionId};
use crate::time::Timestamp;

/// How a store call failed, classified once by the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The secret or version does not exist (ResourceNotFoundException).
    NotFound,
    /// The token already names a version with a different value (ResourceExistsException).
    AlreadyExists,
    /// A parameter does not fit the secret's state now, e.g. a label is attached to
    /// another version than RemoveFromVersionId names (InvalidParameterException).
    InvalidParameter,
    /// The request is not valid in the secret's state (InvalidRequestException), e.g.
    /// "a previous rotation isn't complete" or the secret is scheduled for deletion.
    InvalidRequest,
    /// Request rate exceeded; try again after a pause.
    Throttled,
    /// A network or 5xx failure; the call may or may not have taken effect.
    Transient,
    /// The function's role may not do this.
    AccessDenied,
    /// A quota is exhausted (LimitExceededException), e.g. 20 labels per secret.
    LimitExceeded,
    /// KMS could not decrypt or encrypt the secret's value (DecryptionFailure,
    /// EncryptionFailure): a key policy or a disabled key, which no retry heals.
    Kms,
    /// The secret is deleted or scheduled for deletion (InvalidRequestException "marked
    /// for deletion"): nothing keyshift does to it can succeed any more.
    Deleted,
}

impl StoreErrorKind {
    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            StoreErrorKind::AccessDenied
                | StoreErrorKind::LimitExceeded
                | StoreErrorKind::Kms
                | StoreErrorKind::Deleted
        )
    }
}

/// A failed store call. The message is the service's or the fake's own text about the
/// request, never a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct StoreError {
    /// The class of failure.
    pub kind: StoreErrorKind,
    /// What went wrong, for the log.
    pub message: String,
}

impl StoreError {
    /// A new error.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }
}

/// One UpdateSecretVersionStage call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMove {
    /// The staging label.
    pub stage: String,
    /// Attach it here (absent: only remove).
    pub move_to: Option<VersionId>,
    /// Take it from here; required when the label sits on another version.
    pub remove_from: Option<VersionId>,
}

impl fmt::Display for LabelMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.move_to, &self.remove_from) {
            (Some(to), Some(from)) => write!(f, "move {} {from} -> {to}", self.stage),
            (Some(to), None) => write!(f, "add {} to {to}", self.stage),
            (None, Some(from)) => write!(f, "remove {} from {from}", self.stage),
            (None, None) => write!(f, "touch {} (no-op)", self.stage),
        }
    }
}

/// How much of a secret a decision needs: each level costs API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detail {
    /// The labels (DescribeSecret's `VersionIdsToStages`), rotation enabled, deletion and
    /// tags: one call. No creation time (every `created` may be `None`). Enough for the
    /// engine's steps and for `removePending`.
    Labels,
    /// Everything in `Labels`, plus every version the secret keeps (deprecated ones
    /// included) with its value's creation time. Needed to time and order a swap.
    Full,
}

/// Secrets Manager, narrowed to what rotation needs.
pub trait SecretStore: Send + Sync {
    /// The secret's labels, versions and their value creation times, whether rotation
    /// is enabled, whether it is being deleted, and its tags, at the given detail (see
    /// [`SecretState`]).
    fn describe(
        &self,
        secret: &SecretId,
        detail: Detail,
    ) -> impl Future<Output = Result<SecretState, StoreError>> + Send;

    /// A version's value: `Ok(None)` if the version exists but has no value (the engine's
    /// AWSPENDING placeholder), `Err(NotFound)` if there is no such version.
    fn get_value(
        &self,
        secret: &SecretId,
        version: &VersionId,
    ) -> impl Future<Output = Result<Option<SecretValue>, StoreError>> + Send;

    /// PutSecretValue with `ClientRequestToken = version` and `VersionStages = [AWSPENDING]`,
    /// passing the RotationToken when the engine sent one.
    fn put_pending(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        rotation_token: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// UpdateSecretVersionStage.
    fn update_stage(
        &self,
        secret: &SecretId,
        change: &LabelMove,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A store shared behind an `Arc` (the harness and the executor reading one in-memory
/// Secrets Manager, or one SDK client across handlers) is a store.
impl<S: SecretStore> SecretStore for std::sync::Arc<S> {
    async fn describe(&self, secret: &SecretId, detail: Detail) -> Result<SecretState, StoreError> {
        (**self).describe(secret, detail).await
    }

    async fn get_value(
        &self,
        secret: &SecretId,
        version: &VersionId,
    ) -> Result<Option<SecretValue>, StoreError> {
        (**self).get_value(secret, version).await
    }

    async fn put_pending(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        rotation_token: Option<&str>,
    ) -> Result<(), StoreError> {
        (**self).put_pending(secret, version, value, rotation_token).await
    }

    async fn update_stage(&self, secret: &SecretId, change: &LabelMove) -> Result<(), StoreError> {
        (**self).update_stage(secret, change).await
    }
}

/// How a scheduler call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheduler: {message}")]
pub struct SchedulerError {
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// What went wrong.
    pub message: String,
}

/// A follow-up to deliver at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Deterministic name: a second create of the same job is "already scheduled".
    pub name: ScheduleName,
    /// When to fire (the scheduler may fire up to its precision later).
    pub fire_at: Timestamp,
    /// The event to deliver; its `schedule` field names this job.
    pub invocation: Invocation,
}

/// Whether a create made a new schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduled {
    /// A new schedule exists now.
    Created,
    /// One with this name already existed (ConflictException): nothing changed.
    AlreadyScheduled,
}

/// The delayed-invocation service (EventBridge Scheduler or classic rules).
pub trait Scheduler: Send + Sync {
    /// Creates a one-time schedule; a name that exists already is not an error.
    fn schedule(&self, job: &Job) -> impl Future<Output = Result<Scheduled, SchedulerError>> + Send;

    /// Cleans up after a delivered job (classic rules need RemoveTargets + DeleteRule;
    /// Scheduler's ActionAfterCompletion DELETE needs nothing). Absent is fine.
    fn complete(&self, name: &ScheduleName) -> impl Future<Output = Result<(), SchedulerError>> + Send;
}

/// Wall-clock time and waiting. The only clock the executor reads.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
    /// Returns once `now() >= until`.
    fn sleep_until(&self, until: Timestamp) -> impl Future<Output = ()> + Send;
}

/// How a target call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target: {message}")]
pub struct TargetError {
    /// Whether a retry may help, or whose fix it is.
    pub kind: TargetErrorKind,
    /// What went wrong; must never contain a secret value.
    pub message: String,
}

/// The three ways a target call fails, by what helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetErrorKind {
    /// A bad moment (the service was unreachable, throttled, briefly refusing): trying
    /// again later may succeed. The engine's or the scheduler's retry will.
    Retryable,
    /// A bad request or value: the same call fails the same way next time.
    Refused,
    /// The secret is not set up for this target (a bad tag, a value of the wrong shape):
    /// an operator must fix it. Reported as `keyshift.Configuration`.
    Configuration,
}

impl TargetError {
    /// A failure that a later retry may not repeat.
    pub fn retryable(message: impl Into<String>) -> Self {
        TargetError {
            kind: TargetErrorKind::Retryable,
            message: message.into(),
        }
    }

    /// A failure that will repeat.
    pub fn refused(message: impl Into<String>) -> Self {
        TargetError {
            kind: TargetErrorKind::Refused,
            message: message.into(),
        }
    }

    /// A secret set up wrongly for this target; `message` names the tag or field.
    pub fn configuration(message: impl Into<String>) -> Self {
        TargetError {
            kind: TargetErrorKind::Configuration,
            message: message.into(),
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == TargetErrorKind::Retryable
    }
}

/// What a target is told about the secret it works for, with every call.
#[derive(Debug, Clone, Copy)]
pub struct TargetContext<'a> {
    /// The secret, as the invocation named it (a name or an ARN).
    pub secret: &'a SecretId,
    /// The secret's tags, read with its labels (no extra call): where per-secret options
    /// such as the kind of value live. Tags are set by whoever may tag the secret, so a
    /// target must validate them like any input.
    pub tags: &'a BTreeMap<String, String>,
}

/// The system the secret is for: how to make a new value, register it, test it and
/// revoke an old one (docs/protocol.md, section 3: the release revokes). A signing or
/// encryption key has nothing to register or revoke; a database password does.
///
/// # The contract
///
/// - **Every method may be called more than once** for the same version, late, or
///   concurrently with another invocation's call for the same version: the engine and the
///   scheduler both deliver at least once. `set` and `revoke` must be idempotent; `test`
///   must have no side effects; `generate` may return a different value each time (only
///   the first one stored for a version is kept; a later one is dropped unseen).
/// - **What each may assume:** `generate` runs in createSecret, before anything is
///   written. `set` runs in setSecret, while the value is AWSPENDING and not yet used by
///   anyone. `test` runs in testSecret, after `set` succeeded at least once. `revoke`
///   runs at the release, at least T after the value stopped being AWSCURRENT, so that no
///   consumer uses it any more (it is still accepted until ROTATING comes off right
///   after; docs/protocol.md, section 3); and for a pending value whose rotation was
///   abandoned before its swap (no consumer ever used it).
/// - **What errors mean:** [`TargetErrorKind::Retryable`] fails the step so that the
///   engine (createSecret..finishSecret) or Lambda's asynchronous retry (follow-ups)
///   runs it again; nothing moves on until it succeeds. [`TargetErrorKind::Refused`] and
///   [`TargetErrorKind::Configuration`] fail the step the same way but are reported as
///   needing a person. A failed `test` keeps the new value from ever becoming AWSCURRENT.
/// - **Version ids name versions, not credentials.** `set` and `test` get the engine's
///   token; the value becomes AWSCURRENT under keyshift's copy, a version with another
///   id (docs/protocol.md, section 2), and `revoke` gets the id of the version that held
///   it then. Name a credential at the target by something derived from the value (a
///   hash of it, or the user name inside it), never by the version id, or the revoke
///   will look for a name the target never had.
/// - **Never** put a secret value in a [`TargetError`] message, a log line or a panic.
pub trait Target: Send + Sync {
    /// Whether [`Target::revoke`] does anything for this secret. A target with no
    /// downstream system (a signing or encryption key) says no, and the release step then
    /// skips reading the old value it would revoke with.
    fn revokes(&self, _ctx: &TargetContext<'_>) -> bool {
        true
    }

    /// Whether [`Target::generate`] needs the AWSCURRENT value (a structured secret whose
    /// other fields carry over, a database user that alternates). When it says yes,
    /// createSecret reads that value first (one GetSecretValue more).
    fn reads_current(&self, _ctx: &TargetContext<'_>) -> bool {
        false
    }

    /// A fresh value for the pending version (createSecret). `current` is the AWSCURRENT
    /// value when [`Target::reads_current`] said yes and there is one.
    fn generate(
        &self,
        ctx: &TargetContext<'_>,
        current: Option<&SecretValue>,
    ) -> impl Future<Output = Result<SecretValue, TargetError>> + Send;

    /// Makes `value` a second valid credential at the target (setSecret). Must be
    /// idempotent: the engine may call it again.
    fn set(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Checks that `value` works (testSecret). Must have no side effects.
    fn test(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Invalidates an old value at the target (the release). Must be idempotent.
    fn revoke(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;
}

/// A shared target is a target (the Lambda keeps one per container and lends it to each
/// invocation's executor).
impl<T: Target + ?Sized> Target for &T {
    fn revokes(&self, ctx: &TargetContext<'_>) -> bool {
        (**self).revokes(ctx)
    }

    fn reads_current(&self, ctx: &TargetContext<'_>) -> bool {
        (**self).reads_current(ctx)
    }

    fn generate(
        &self,
        ctx: &TargetContext<'_>,
        current: Option<&SecretValue>,
    ) -> impl Future<Output = Result<SecretValue, TargetError>> + Send {
        (**self).generate(ctx, current)
    }

    fn set(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        (**self).set(ctx, version, value)
    }

    fn test(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        (**self).test(ctx, version, value)
    }

    fn revoke(
        &self,
        ctx: &TargetContext<'_>,
        version: &VersionId,
        value: &SecretValue,
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        (**self).revoke(ctx, version, value)
    }
}

/// A schedule name for a follow-up: `ks-<secret hash>-<kind>-<version hash>-<fire secs>`.
/// Deterministic in all four, so a duplicate create is "already scheduled", while a
/// reschedule to another minute gets a new name (the schedule that delivered the early
/// arrival may not be deleted yet). The secret prefix groups a secret's jobs for an
/// operator listing them.
pub fn schedule_name(secret: &SecretId, kind: &str, version: &VersionId, fire_at: Timestamp) -> ScheduleName {
    let name = format!(
        "{}{kind}-{}-{}",
        schedule_prefix(secret),
        short_hash(version.as_str(), 8),
        fire_at.as_secs()
    );
    // The parts are hex digits, a fixed kind word and a decimal number: always valid.
    ScheduleName::parse(&name).unwrap_or_else(|_| unreachable!("schedule names are built from [0-9a-z-]"))
}

/// The kind word in a watchdog's schedule name (`ks-<secret>-watch-...`).
pub const WATCHDOG_KIND: &str = "watch";

/// Whether `name` is one [`schedule_name`] gives a follow-up of `secret` of one of
/// `kinds`, named after `version` (at any fire time).
pub fn schedule_matches(name: &ScheduleName, secret: &SecretId, kinds: &[&str], version: &VersionId) -> bool {
    let Some(rest) = name.as_str().strip_prefix(&schedule_prefix(secret)) else {
        return false;
    };
    let version = short_hash(version.as_str(), 8);
    kinds.iter().any(|kind| {
        rest.strip_prefix(kind)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.strip_prefix(version.as_str()))
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|secs| !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The name prefix shared by every follow-up of `secret`.
pub fn schedule_prefix(secret: &SecretId) -> String {
    format!("ks-{}-", short_hash(secret.as_str(), 12))
}

fn short_hash(text: &str, hex_len: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = crate::hex::encode(&digest[..hex_len.div_ceil(2).min(digest.len())]);
    hex.truncate(hex_len);
    hex
}

/// Back-off between attempts inside one invocation: exponential, capped, jittered, and
/// a bounded number of attempts, after which the invocation fails and the engine's or
/// the scheduler's own retry takes over (never a hot loop against a service that is
/// down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (first try included).
    pub max_attempts: u32,
    /// Pause before the second attempt; doubles each time.
    pub first_backoff: Duration,
    /// The longest single pause.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 6,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl Retry {
    /// The pause after the `failures`-th failure (1 for the first): the exponential
    /// step, capped, with "equal jitter" (uniform between half of it and all of it)
    /// drawn from `seed`, so that invocations of many secrets that failed together do
    /// not retry together. Deterministic in its arguments.
    pub fn backoff(&self, failures: u32, seed: u64) -> Duration {
        let exp = self
            .first_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let mut x = seed ^ u64::from(failures).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // splitmix64
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let frac = (x >> 11) as f64 / (1u64 << 53) as f64;
        exp / 2 + exp.mul_f64(frac / 2.0)
    }
}

/// An adapter error's text for a message: the error and its sources joined, first line
/// only, at most 300 characters (transport errors can be long). Shared by every SDK
/// adapter so that all of them cut errors the same way; the text is the error's own,
/// never a request parameter.
pub fn short_error(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_names_are_those_of_the_previous_release() {
        // SHA-256 prefixes in hex: the first 12 digits of the secret's, the first 8 of
        // the version's. A rename would orphan the follow-ups already scheduled.
        let secret = SecretId::new("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-db-AbCdEf");
        let version = VersionId::new("0b6b0e4e-5d49-4bd5-9c4f-6a1f5c8e2d31");
        assert_eq!(schedule_prefix(&secret), "ks-114a106f9e89-");
        let name = schedule_name(
            &secret,
            WATCHDOG_KIND,
            &version,
            Timestamp::from_secs(1_700_000_040),
        );
        assert_eq!(name.as_str(), "ks-114a106f9e89-watch-3e529da8-1700000040");
        assert!(schedule_matches(&name, &secret, &[WATCHDOG_KIND], &version));
        assert_eq!(short_hash("", 3), "e3b");
    }
}
