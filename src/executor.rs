//! The executor: the one loop that turns decisions into calls.
//!
//! It loads the secret, asks [`decide`](crate::decide::decide), applies the plan, and
//! starts over from fresh labels after every inline wait, every plan that made progress
//! (a copy, a swap) and every failed call. It keeps no state between invocations and
//! carries none across a retry: a call whose response was lost, a label moved by a
//! racing duplicate, a throttle, all end the same way, by re-deriving from the store.
//! The Lambda and the simulation both drive this type.
//!
//! Waiting is cheap, polling is not: an inline wait sleeps until the due time and then
//! decides once. Nothing is lost by not looking in between: the only version keyshift
//! ever promotes is its own copy, which cannot regain AWSPENDING once it lost it, so one
//! look at the due time tells whether it has carried the label all along.
//!
//! Logging: one span per invocation with the secret, token and step; one event per
//! action and per decision. Values and the RotationToken are never formatted anywhere
//! here (their types redact themselves in `Debug` besides).

use std::time::Duration;

use tracing::{Instrument, debug, info, info_span, warn};

use crate::decide::{self, Action, Decision, Due, FollowUp, FollowUpKind, Input, Next, Outcome, Rejection};
use crate::event::{Invocation, Operation, OperatorRequest, ScheduleName, Step};
use crate::operate::{self, Resolved};
use crate::policy::Policy;
use crate::ports::{
    Clock, Detail, Job, Retry, Scheduled, Scheduler, SchedulerError, SecretStore, StoreError, StoreErrorKind,
    Target, TargetContext, TargetError, schedule_name,
};
use crate::secret::{SecretId, SecretState, VersionId, accepted_marker, cancel_marker, swap_marker};
use crate::time::Timestamp;

/// Why an invocation failed. The Lambda maps this to its error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The core refused: nothing was changed. Retrying the same invocation will not help.
    #[error("rejected: {0}")]
    Rejected(#[from] Rejection),
    /// A Secrets Manager call kept failing.
    #[error("secrets manager: {0}")]
    Store(#[from] StoreError),
    /// A scheduler call failed.
    #[error("{0}")]
    Scheduler(#[from] SchedulerError),
    /// The target refused or failed.
    #[error("{0}")]
    Target(#[from] TargetError),
    /// A version's value vanished between the decision and the action.
    #[error("version {version} has no value to {purpose}")]
    ValueMissing {
        /// The version.
        version: VersionId,
        /// What the value was needed for.
        purpose: &'static str,
    },
    /// The secret's configuration is not usable (a bad per-secret tag).
    #[error("configuration: {0}")]
    Configuration(String),
    /// The invocation kept making progress without reaching an end (a guard against a
    /// loop between decisions; the engine's or the scheduler's retry continues).
    #[error("no end after {0} decisions; the next delivery continues")]
    TooManyRounds(u32),
}

impl ExecError {
    /// Whether a later retry of the same invocation may succeed (the Lambda reports this
    /// in its error type so operators can tell a bad request from a bad moment).
    pub fn is_retryable(&self) -> bool {
        match self {
            ExecError::Rejected(_) | ExecError::Configuration(_) => false,
            ExecError::Store(e) => e.kind.is_retryable(),
            ExecError::Scheduler(e) => e.retryable,
            ExecError::Target(e) => e.is_retryable(),
            ExecError::ValueMissing { .. } | ExecError::TooManyRounds(_) => true,
        }
    }

    /// Errors worth re-deriving inside the same invocation: the world may have moved
    /// under us (a racing duplicate, a lost response), may be briefly unavailable, or a
    /// read may not show a write yet (a value missing right after it was stored).
    fn rederive(&self, step: &Step) -> bool {
        match self {
            ExecError::Store(e) => matches!(
                e.kind,
                StoreErrorKind::Throttled
                    | StoreErrorKind::Transient
                    | StoreErrorKind::InvalidParameter
                    | StoreErrorKind::AlreadyExists
                    | StoreErrorKind::NotFound
            ),
            ExecError::Scheduler(e) => e.retryable,
            ExecError::ValueMissing { .. } => true,
            // createSecret expects no value yet; every other step expects one, and a
            // read right after the write may not show it yet.
            ExecError::Rejected(Rejection::PendingValueMissing { .. }) => step != &Step::CreateSecret,
            ExecError::Rejected(_)
            | ExecError::Target(_)
            | ExecError::Configuration(_)
            | ExecError::TooManyRounds(_) => false,
        }
    }
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// How its first plan ended.
    pub outcome: Outcome,
    /// The outcomes of the plans it went on with after that (a copy, then the swap,
    /// then the release, when their gaps fit the inline budget), in order.
    pub continued: Vec<Outcome>,
    /// Every action applied, across attempts, in order.
    pub applied: Vec<Action>,
    /// Follow-ups scheduled, with their resolved due and fire times.
    pub scheduled: Vec<Job>,
    /// Rounds of load-decide-apply that ended in a failure, plus one.
    pub attempts: u32,
    /// T as applied to this secret (its gap tag, if it has one).
    pub gap: Duration,
    /// The gaps (and the rotation) that ended in this invocation, measured.
    pub measured: Vec<Measured>,
}

impl Report {
    /// The outcome the invocation ended with.
    pub fn last(&self) -> &Outcome {
        self.continued.last().unwrap_or(&self.outcome)
    }
}

pub use crate::ports::WATCHDOG_KIND;

/// Whether `schedule` (the schedule that delivered a follow-up) is a watchdog's.
pub fn is_watchdog(schedule: Option<&ScheduleName>) -> bool {
    schedule.is_some_and(|n| n.as_str().contains(&format!("-{WATCHDOG_KIND}-")))
}

/// A gap or a rotation measured when it ended, from the dates the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// A first gap, from keyshift's copy becoming accepted (its creation, or its latest
    /// accepted marker) to the AWSCURRENT move.
    FirstGap(Duration),
    /// A second gap, from the swap marker to ROTATING coming off.
    SecondGap(Duration),
    /// A whole rotation, from keyshift's copy (its creation second, in its id) to the
    /// release; the engine's steps before it take seconds.
    Rotation(Duration),
}

/// Most plans (and failures) one invocation goes through before it gives up; a rotation
/// needs about six, a replicated one about a dozen.
pub const MAX_ROUNDS: u32 = 32;

/// The store, scheduler, clock and target, and the policy that times them.
#[derive(Debug, Clone)]
pub struct Executor<S, Q, C, T> {
    /// Secrets Manager.
    pub store: S,
    /// The follow-up scheduler.
    pub scheduler: Q,
    /// The clock.
    pub clock: C,
    /// The system the secret is for.
    pub target: T,
    /// T, the inline budget, the scheduler's precision.
    pub policy: Policy,
    /// Back-off inside one invocation.
    pub retry: Retry,
    /// A secret tag whose value (whole seconds) overrides T for that secret.
    pub gap_tag: Option<String>,
}

impl<S: SecretStore, Q: Scheduler, C: Clock, T: Target> Executor<S, Q, C, T> {
    /// An executor with the default in-invocation retry and no per-secret T.
    pub fn new(store: S, scheduler: Q, clock: C, target: T, policy: Policy) -> Self {
        Executor {
            store,
            scheduler,
            clock,
            target,
            policy,
            retry: Retry::default(),
            gap_tag: None,
        }
    }

    /// Handles an operator's request to its end: reads the secret (every version with its
    /// date), resolves which rotation the request acts on ([`operate::resolve`]), and runs
    /// the invocation that comes to like any other. Returns that invocation with the
    /// report (none when there was nothing to do).
    pub async fn operate(
        &self,
        request: &OperatorRequest,
    ) -> Result<(Report, Option<Invocation>), ExecError> {
        let span = info_span!("operator", secret = %request.secret_id, step = request.operation.name());
        async {
            if let Operation::EmergencyRotate { reason, .. } = &request.operation {
                // The reason is the operator's own words: logged, so the record says why.
                warn!(reason = %reason, "emergency rotation requested");
            }
            let state = match self.store.describe(&request.secret_id, Detail::Full).await {
                Ok(s) => s,
                Err(e) if e.kind == StoreErrorKind::NotFound => {
                    return Err(ExecError::Rejected(Rejection::SecretNotFound));
                }
                Err(e) => return Err(e.into()),
            };
            let resolved = operate::resolve(request, &state, self.clock.now()).map_err(|r| {
                warn!(error = %r, "refused");
                ExecError::Rejected(r)
            })?;
            let (invocation, test_first) = match resolved {
                Resolved::Nothing(outcome) => {
                    info!(outcome = %outcome, "done");
                    let report = Report {
                        outcome,
                        continued: Vec::new(),
                        applied: Vec::new(),
                        scheduled: Vec::new(),
                        attempts: 1,
                        gap: self.policy_for(&state)?.gap,
                        measured: Vec::new(),
                    };
                    return Ok((report, None));
                }
                Resolved::Run {
                    invocation,
                    test_first,
                } => (invocation, test_first),
            };
            info!(step = invocation.step.name(), token = %invocation.token, "resolved");
            if let Some(version) = &test_first {
                let ctx = TargetContext {
                    secret: &request.secret_id,
                    tags: &state.tags,
                };
                let value = self.value_of(&request.secret_id, version, "test").await?;
                if let Err(e) = self.target.test(&ctx, version, &value).await {
                    warn!(error = %e, version = %version, "the pending value does not pass testSecret");
                    return Err(ExecError::Rejected(Rejection::RedriveUntested {
                        version: version.clone(),
                    }));
                }
            }
            let report = self.run(&invocation).await?;
            Ok((report, Some(invocation)))
        }
        .instrument(span)
        .await
    }

    /// Handles one invocation to its end.
    pub async fn handle(&self, inv: &Invocation) -> Result<Report, ExecError> {
        let span =
            info_span!("invocation", secret = %inv.secret_id, token = %inv.token, step = inv.step.name());
        self.run(inv).instrument(span).await
    }

    async fn run(&self, inv: &Invocation) -> Result<Report, ExecError> {
        let started = self.clock.now();
        let mut report = Report {
            outcome: Outcome::AlreadyCurrent,
            continued: Vec::new(),
            applied: Vec::new(),
            scheduled: Vec::new(),
            attempts: 1,
            gap: self.policy.gap,
            measured: Vec::new(),
        };
        if let Some(name) = &inv.schedule {
            // Best effort, and first: a leftover rule or schedule fires again into a step
            // that is idempotent, so failing the invocation over it would be worse.
            if let Err(e) = self.scheduler.complete(name).await {
                warn!(schedule = %name, error = %e, "could not clean up the delivering schedule");
            }
        }
        // Jitter for this invocation's back-off: different secrets and steps that failed
        // together retry apart.
        let seed = jitter_seed(inv);
        let mut failures = 0;
        let mut first = true;
        let mut rounds = 0;
        // Waits do not count: they are bounded by the inline budget, past which the core
        // schedules instead of waiting.
        while rounds < MAX_ROUNDS {
            match self.attempt(inv, started, &mut report).await {
                Ok(Round::Waited) => continue,
                Ok(Round::Done(outcome, next, gap)) => {
                    rounds += 1;
                    info!(outcome = %outcome, "done");
                    if first {
                        report.outcome = outcome;
                        first = false;
                    } else {
                        report.continued.push(outcome);
                    }
                    match next {
                        Next::Done => return Ok(report),
                        Next::Decide => {}
                        Next::AfterGap => {
                            // The gap the plan started runs from now (its last call has
                            // returned): sleep it out, then decide once.
                            let wake = self.clock.now().plus(gap);
                            debug!(until = %wake, "waiting out the gap inline");
                            self.clock.sleep_until(wake).await;
                        }
                    }
                    // Progress resets the back-off: a new phase is a new start.
                    failures = 0;
                }
                Err(e) if e.rederive(&inv.step) && failures + 1 < self.retry.max_attempts => {
                    rounds += 1;
                    failures += 1;
                    report.attempts += 1;
                    let pause = self.retry.backoff(failures, seed);
                    warn!(error = %e, attempt = failures, pause_ms = pause.as_millis() as u64, "re-deriving after a failure");
                    self.clock.sleep_until(self.clock.now().plus(pause)).await;
                }
                Err(e) => {
                    warn!(error = %e, retryable = e.is_retryable(), "failed");
                    return Err(e);
                }
            }
        }
        Err(ExecError::TooManyRounds(MAX_ROUNDS))
    }

    /// One load-decide-apply round.
    async fn attempt(
        &self,
        inv: &Invocation,
        started: Timestamp,
        report: &mut Report,
    ) -> Result<Round, ExecError> {
        // After its swap, a swapPending only releases: the labels are enough.
        let swapped = matches!(
            report.continued.last().unwrap_or(&report.outcome),
            Outcome::Swapped | Outcome::Marked | Outcome::Tidied
        ) && !report.applied.is_empty();
        let mut detail = decide::detail(&inv.step, swapped);
        let secret = loop {
            let secret = match self.store.describe(&inv.secret_id, detail).await {
                Ok(s) => s,
                // A deleted secret ends its follow-ups: retrying them would only fill the
                // dead-letter queue. An engine step on it is refused by the engine anyway.
                Err(e)
                    if !inv.step.is_engine_step()
                        && matches!(e.kind, StoreErrorKind::NotFound | StoreErrorKind::Deleted) =>
                {
                    if matches!(e.kind, StoreErrorKind::Deleted)
                        || !report.applied.is_empty()
                        || inv.schedule.is_some()
                    {
                        return Ok(Round::Done(Outcome::SecretGone, Next::Done, self.policy.gap));
                    }
                    return Err(ExecError::Rejected(Rejection::SecretNotFound));
                }
                // No such secret: a bad request, not a bad moment (no retry will find it).
                Err(e) if e.kind == StoreErrorKind::NotFound && report.applied.is_empty() => {
                    return Err(ExecError::Rejected(Rejection::SecretNotFound));
                }
                Err(e) => return Err(e.into()),
            };
            if detail == Detail::Labels && decide::needs_full(inv, &secret) {
                detail = Detail::Full;
                continue;
            }
            break secret;
        };
        let policy = self.policy_for(&secret)?;
        report.gap = policy.gap;
        let now = self.clock.now();
        let input = Input {
            invocation: inv,
            secret: &secret,
            now,
            policy: &policy,
            wait_budget_left: policy.inline_budget.saturating_sub(now.since(started)),
        };
        match decide::decide(&input) {
            Decision::Reject(r) => Err(ExecError::Rejected(r)),
            Decision::WaitUntil(until) => {
                debug!(until = %until, wait_ms = until.millis_since(now), "waiting inline for the due time");
                self.clock.sleep_until(until).await;
                Ok(Round::Waited)
            }
            Decision::Apply(plan) => {
                debug!(actions = plan.actions.len(), outcome = %plan.outcome, "plan");
                let mut outcome = plan.outcome;
                for action in &plan.actions {
                    match self.apply(inv, &secret, &policy, action, report).await {
                        Ok(()) => {}
                        // createSecret writes without first reading whether the token has
                        // a value (engine steps decide from labels alone); AWS refuses a
                        // second, different value for a token: the stored one is kept.
                        Err(ExecError::Store(e))
                            if matches!(action, Action::PutPending { .. })
                                && e.kind == StoreErrorKind::AlreadyExists =>
                        {
                            info!("a value is already stored for this token; keeping it");
                            outcome = Outcome::KeptExisting;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    report.applied.push(action.clone());
                }
                report.measured.extend(measure(
                    inv,
                    &secret,
                    &policy,
                    &outcome,
                    &plan.actions,
                    self.clock.now(),
                ));
                Ok(Round::Done(outcome, plan.next, policy.gap))
            }
        }
    }

    /// The policy for this secret: T from its gap tag when it has one.
    fn policy_for(&self, secret: &SecretState) -> Result<Policy, ExecError> {
        let Some(value) = self.gap_tag.as_ref().and_then(|k| secret.tags.get(k)) else {
            return Ok(self.policy);
        };
        let key = self.gap_tag.as_deref().unwrap_or_default();
        let secs: u64 = value.trim().parse().map_err(|_| {
            ExecError::Configuration(format!("secret tag {key} must be a whole number of seconds"))
        })?;
        self.policy
            .with_gap(Duration::from_secs(secs))
            .map_err(|e| ExecError::Configuration(format!("secret tag {key}: {e}")))
    }

    async fn apply(
        &self,
        inv: &Invocation,
        state: &SecretState,
        policy: &Policy,
        action: &Action,
        report: &mut Report,
    ) -> Result<(), ExecError> {
        let secret = &inv.secret_id;
        let ctx = TargetContext {
            secret,
            tags: &state.tags,
        };
        match action {
            Action::PutPending { version } => {
                let current = match state.current() {
                    Some(current) if self.target.reads_current(&ctx) => {
                        Some(self.value_of(secret, current, "carry over").await?)
                    }
                    _ => None,
                };
                let value = self.target.generate(&ctx, current.as_ref()).await?;
                let rotation_token = inv.rotation_token.as_ref().map(|t| t.expose());
                self.store
                    .put_pending(secret, version, &value, rotation_token)
                    .await?;
                info!(version = %version, "stored the pending value");
            }
            Action::Copy { from, to } => {
                let value = self.value_of(secret, from, "copy").await?;
                // Follow-ups carry no RotationToken (and the copy is written outside the
                // engine's rotation).
                self.store.put_pending(secret, to, &value, None).await?;
                info!(from = %from, to = %to, "wrote the pending value again as keyshift's copy");
            }
            Action::Label(change) => {
                self.store.update_stage(secret, change).await?;
                info!(change = %change, "label");
            }
            // Both stamped now: after every earlier action (the AWSCURRENT move) returned,
            // and after the describe that saw every replica caught up.
            Action::MarkSwap { version }
            | Action::MarkAccepted { version }
            | Action::MarkCancelled { version }
            | Action::MarkKeep { version, .. } => {
                let now = self.clock.now();
                let stage = match action {
                    Action::MarkSwap { .. } => swap_marker(now),
                    Action::MarkCancelled { .. } => cancel_marker(now),
                    // Release due at marker + T = now + keep.
                    Action::MarkKeep { keep, .. } if *keep >= policy.gap => {
                        swap_marker(now.plus(*keep - policy.gap))
                    }
                    Action::MarkKeep { keep, .. } => swap_marker(now.minus(policy.gap - *keep)),
                    _ => accepted_marker(now),
                };
                let change = crate::ports::LabelMove {
                    stage,
                    move_to: Some(version.clone()),
                    remove_from: None,
                };
                self.store.update_stage(secret, &change).await?;
                info!(change = %change, "marker");
            }
            Action::Schedule(follow_up) => {
                let job = self.job(secret, policy, follow_up, inv.schedule.as_ref());
                let created = self.scheduler.schedule(&job).await?;
                info!(
                    schedule = %job.name,
                    step = job.invocation.step.name(),
                    fire_at = %job.fire_at,
                    already = created == Scheduled::AlreadyScheduled,
                    "follow-up scheduled"
                );
                report.scheduled.push(job);
            }
            Action::SetTarget { version } => {
                let value = self.value_of(secret, version, "register").await?;
                self.target.set(&ctx, version, &value).await?;
            }
            Action::TestTarget { version } => {
                let value = self.value_of(secret, version, "test").await?;
                self.target.test(&ctx, version, &value).await?;
            }
            Action::RevokeTarget { version } => {
                if !self.target.revokes(&ctx) {
                    return Ok(());
                }
                // Only "this version no longer exists" may skip the revoke: any other
                // failure to read (throttling, a 5xx, KMS, access) fails the step, so that
                // its retry revokes before the label that keeps it due goes.
                match self.store.get_value(secret, version).await {
                    Ok(Some(value)) => {
                        self.target.revoke(&ctx, version, &value).await?;
                        info!(version = %version, "revoked at the target");
                    }
                    Ok(None) => info!(version = %version, "no value to revoke"),
                    Err(e) if e.kind == StoreErrorKind::NotFound => {
                        info!(version = %version, "version deleted; nothing left to revoke with");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    async fn value_of(
        &self,
        secret: &SecretId,
        version: &VersionId,
        purpose: &'static str,
    ) -> Result<crate::secret::SecretValue, ExecError> {
        self.store
            .get_value(secret, version)
            .await?
            .ok_or_else(|| ExecError::ValueMissing {
                version: version.clone(),
                purpose,
            })
    }

    /// The job for `follow_up`: its fire time (never in the past, see
    /// [`Policy::fire_time`]) and its name.
    ///
    /// A job must never take the name of the schedule delivering this invocation: that
    /// one is deleted once it has run (ActionAfterCompletion DELETE), so a create that
    /// found it "already scheduled" would be lost with it. A rescheduled follow-up that
    /// lands on the same second moves one second later.
    fn job(
        &self,
        secret: &SecretId,
        policy: &Policy,
        follow_up: &FollowUp,
        delivering: Option<&ScheduleName>,
    ) -> Job {
        let now = self.clock.now();
        let due = match follow_up.due {
            Due::At(t) => t,
            Due::GapAfterApply => now.plus(policy.gap),
        };
        let mut fire_at = policy.fire_time(due, now);
        let (kind, step, named_version) = match &follow_up.kind {
            FollowUpKind::Swap => ("swap", Step::SwapPending { due }, &follow_up.token),
            FollowUpKind::Watchdog => (WATCHDOG_KIND, Step::SwapPending { due }, &follow_up.token),
            FollowUpKind::Release { release } => (
                "release",
                Step::RemovePending {
                    due,
                    release: release.clone(),
                },
                release,
            ),
        };
        let mut name = schedule_name(secret, kind, named_version, fire_at);
        if delivering == Some(&name) {
            fire_at = fire_at.plus(Duration::from_secs(1));
            name = schedule_name(secret, kind, named_version, fire_at);
        }
        Job {
            name: name.clone(),
            fire_at,
            invocation: Invocation {
                step,
                secret_id: secret.clone(),
                token: follow_up.token.clone(),
                rotation_token: None,
                schedule: Some(name),
            },
        }
    }
}

/// How one round ended.
enum Round {
    /// Slept until a due time; decide again.
    Waited,
    /// A plan was applied: its outcome, what comes next, and T for this secret.
    Done(Outcome, Next, Duration),
}

/// What a plan that just ended a gap measured: the swap ends the first gap (from the
/// copy's acceptance, read in the state the plan was decided on), the release the second
/// (from the swap marker) and the rotation (from the copy's creation second).
fn measure(
    inv: &Invocation,
    state: &SecretState,
    policy: &Policy,
    outcome: &Outcome,
    actions: &[Action],
    now: Timestamp,
) -> Vec<Measured> {
    let moved = |stage: &str| {
        actions.iter().find_map(|a| match a {
            Action::Label(m) if m.stage == stage && m.move_to.is_some() => m.move_to.clone(),
            Action::Label(m) if m.stage == stage => m.remove_from.clone(),
            _ => None,
        })
    };
    let mut out = Vec::new();
    match outcome {
        Outcome::Swapped => {
            if let Some(start) = moved(crate::secret::AWSCURRENT)
                .and_then(|copy| decide::first_gap_end(state, &copy, policy).ok())
                .map(|end| end.minus(policy.gap))
            {
                out.push(Measured::FirstGap(now.since(start)));
            }
        }
        Outcome::Released => {
            if let Some(marked) = moved(crate::secret::ROTATING).and_then(|old| state.swap_marker(&old)) {
                out.push(Measured::SecondGap(now.since(marked)));
            }
            if let Some(generation) = state.current().and_then(|c| c.copy_generation_of(&inv.token)) {
                out.push(Measured::Rotation(
                    now.since(Timestamp::from_secs(i64::from(generation))),
                ));
            }
        }
        _ => {}
    }
    out
}

fn jitter_seed(inv: &Invocation) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{}|{}|{}", inv.secret_id, inv.token, inv.step.name()).as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}
