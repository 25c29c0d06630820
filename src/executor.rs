//! The executor: the one loop that turns decisions into calls.
//!
//! It loads the secret, asks [`decide`](crate::decide::decide), applies the plan, and
//! starts over from fresh labels after every inline wait and every failed call. It keeps
//! no state between invocations and carries none across a retry: a call whose response
//! was lost, a label moved by a racing duplicate, a throttle, all end the same way, by
//! re-deriving from the store. The Lambda and the simulation both drive this type.
//!
//! Logging: one span per invocation with the secret, token and step; one event per
//! action and per decision. Values and the RotationToken are never formatted anywhere
//! here (their types redact themselves in `Debug` besides).

use std::time::Duration;

use tracing::{Instrument, debug, info, info_span, warn};

use crate::decide::{self, Action, Decision, Due, FollowUp, FollowUpKind, Input, Outcome, Rejection};
use crate::event::{Invocation, ScheduleName, Step};
use crate::policy::Policy;
use crate::ports::{
    Clock, Job, Retry, Scheduled, Scheduler, SchedulerError, SecretStore, StoreError, StoreErrorKind, Target,
    TargetError, schedule_name,
};
use crate::secret::{SecretId, VersionId};
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
}

impl ExecError {
    /// Whether a later retry of the same invocation may succeed (the Lambda reports this
    /// in its error type so operators can tell a bad request from a bad moment).
    pub fn is_retryable(&self) -> bool {
        match self {
            ExecError::Rejected(_) => false,
            ExecError::Store(e) => e.kind.is_retryable(),
            ExecError::Scheduler(e) => e.retryable,
            ExecError::Target(e) => e.retryable,
            ExecError::ValueMissing { .. } => true,
        }
    }

    /// Errors worth re-deriving inside the same invocation: the world may have moved
    /// under us (a racing duplicate, a lost response) or may be briefly unavailable.
    fn rederive(&self) -> bool {
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
            ExecError::Rejected(_) | ExecError::Target(_) => false,
        }
    }
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Follow-ups it carried on inline after that, and how each ended.
    pub continued: Vec<Outcome>,
    /// Every action applied, across attempts, in order.
    pub applied: Vec<Action>,
    /// Follow-ups scheduled, with their resolved due and fire times.
    pub scheduled: Vec<Job>,
    /// Rounds of load-decide-apply, counting only those that ended in a failure plus the
    /// first (1 when nothing had to be re-derived).
    pub attempts: u32,
}

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
    /// The longest single sleep of an inline wait before the labels are read again.
    pub wait_slice: Duration,
}

/// Default for [`Executor::wait_slice`].
pub const DEFAULT_WAIT_SLICE: Duration = Duration::from_secs(10);

impl<S: SecretStore, Q: Scheduler, C: Clock, T: Target> Executor<S, Q, C, T> {
    /// An executor with the default in-invocation retry.
    pub fn new(store: S, scheduler: Q, clock: C, target: T, policy: Policy) -> Self {
        Executor {
            store,
            scheduler,
            clock,
            target,
            policy,
            retry: Retry::default(),
            wait_slice: DEFAULT_WAIT_SLICE,
        }
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
        };
        if let Some(name) = &inv.schedule {
            // Best effort, and first: a leftover rule or schedule fires again into a step
            // that is idempotent, so failing the invocation over it would be worse.
            if let Err(e) = self.scheduler.complete(name).await {
                warn!(schedule = %name, error = %e, "could not clean up the delivering schedule");
            }
        }
        let outcome = self.run_one(inv, started, &mut report).await?;
        report.outcome = outcome;
        // A follow-up this invocation scheduled whose due fits what is left of the inline
        // budget is carried on here: the scheduler's one-minute precision would overshoot
        // a short gap. Its schedule stays as the safety net and later finds nothing to do.
        // Only the rotation's own next phase is carried on (after a swap, the release;
        // after a re-issue, its swap): an engine step must not sit out a leftover's gap.
        let deadline = started.plus(self.policy.inline_budget);
        let mut seen = 0;
        let mut last = report.outcome.clone();
        while matches!(last, Outcome::Swapped | Outcome::Reissued { .. }) {
            let Some(next) = self.continuation(&report.scheduled[seen..], deadline) else {
                break;
            };
            seen = report.scheduled.len();
            info!(step = next.step.name(), "continuing inline with the follow-up");
            last = loop {
                match self.run_one(&next, started, &mut report).await {
                    Ok(outcome) => break outcome,
                    // Its schedule is a backstop that fires a minute after the due time:
                    // while the budget lasts, trying again here is sooner.
                    Err(e) if e.is_retryable() && self.clock.now() < deadline => {
                        warn!(error = %e, "the inline follow-up failed; trying again");
                        let pause = self.retry.first_backoff.max(Duration::from_millis(100));
                        self.clock.sleep_until(self.clock.now().plus(pause)).await;
                    }
                    Err(e) => {
                        warn!(error = %e, "the inline follow-up failed; its schedule will retry it");
                        return Ok(report);
                    }
                }
            };
            report.continued.push(last.clone());
        }
        Ok(report)
    }

    fn continuation(&self, jobs: &[Job], deadline: Timestamp) -> Option<Invocation> {
        jobs.iter()
            .find(|j| match j.invocation.step {
                Step::SwapPending { due } | Step::RemovePending { due, .. } => due <= deadline,
                _ => false,
            })
            .map(|j| Invocation {
                schedule: None,
                ..j.invocation.clone()
            })
    }

    async fn run_one(
        &self,
        inv: &Invocation,
        started: Timestamp,
        report: &mut Report,
    ) -> Result<Outcome, ExecError> {
        let mut backoff = self.retry.first_backoff;
        // Failed rounds so far; inline waits are not failures and do not count.
        let mut failures = 0;
        loop {
            match self.attempt(inv, started, report).await {
                Ok(Some(outcome)) => {
                    info!(outcome = %outcome, "done");
                    return Ok(outcome);
                }
                Ok(None) => continue, // waited inline; decide again
                Err(e) if e.rederive() && failures + 1 < self.retry.max_attempts => {
                    failures += 1;
                    report.attempts += 1;
                    warn!(error = %e, attempt = failures, "re-deriving after a failed call");
                    self.clock.sleep_until(self.clock.now().plus(backoff)).await;
                    backoff = backoff.saturating_mul(2);
                }
                Err(e) => {
                    warn!(error = %e, retryable = e.is_retryable(), "failed");
                    return Err(e);
                }
            }
        }
    }

    /// One load-decide-apply round. `Ok(None)` means "waited; decide again".
    async fn attempt(
        &self,
        inv: &Invocation,
        started: Timestamp,
        report: &mut Report,
    ) -> Result<Option<Outcome>, ExecError> {
        let secret = self.store.describe(&inv.secret_id).await?;
        let now = self.clock.now();
        let input = Input {
            invocation: inv,
            secret: &secret,
            now,
            policy: &self.policy,
            wait_budget_left: self.policy.inline_budget.saturating_sub(now.since(started)),
        };
        match decide::decide(&input) {
            Decision::Reject(r) => Err(ExecError::Rejected(r)),
            Decision::WaitUntil(until) => {
                // Sleep in slices and decide again after each: a label stripped during the
                // wait is seen within a slice instead of at the end.
                let wake = until.min(now.plus(self.wait_slice));
                debug!(until = %until, wait_ms = until.millis_since(now), "waiting inline for the due time");
                self.clock.sleep_until(wake).await;
                Ok(None)
            }
            Decision::Apply(plan) => {
                debug!(actions = plan.actions.len(), outcome = %plan.outcome, "plan");
                // A plan whose outcome is carried on inline (see `run`) schedules its
                // follow-up only as a backstop.
                let carry_on = matches!(plan.outcome, Outcome::Swapped | Outcome::Reissued { .. })
                    .then(|| started.plus(self.policy.inline_budget));
                for action in &plan.actions {
                    self.apply(inv, action, carry_on, report).await?;
                    report.applied.push(action.clone());
                }
                Ok(Some(plan.outcome))
            }
        }
    }

    async fn apply(
        &self,
        inv: &Invocation,
        action: &Action,
        carry_on: Option<Timestamp>,
        report: &mut Report,
    ) -> Result<(), ExecError> {
        let secret = &inv.secret_id;
        match action {
            Action::PutPending { version } => {
                let value = self.target.generate().await?;
                let rotation_token = inv.rotation_token.as_ref().map(|t| t.expose());
                self.store
                    .put_pending(secret, version, &value, rotation_token)
                    .await?;
                info!(version = %version, "stored the pending value");
            }
            Action::Reissue { from, to } => {
                let value = self.value_of(secret, from, "re-issue").await?;
                // finishSecret is an engine step: its RotationToken authorises this write
                // as it does createSecret's. Follow-ups have none and need none.
                let rotation_token = inv.rotation_token.as_ref().map(|t| t.expose());
                self.store.put_pending(secret, to, &value, rotation_token).await?;
                info!(from = %from, to = %to, "re-issued the pending value as a new version");
            }
            Action::Label(change) => {
                self.store.update_stage(secret, change).await?;
                info!(change = %change, "label");
            }
            Action::Schedule(follow_up) => {
                let job = self.job(secret, follow_up, carry_on, inv.schedule.as_ref());
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
                self.target.set(version, &value).await?;
            }
            Action::TestTarget { version } => {
                let value = self.value_of(secret, version, "test").await?;
                self.target.test(version, &value).await?;
            }
            Action::RevokeTarget { version } => {
                // A deleted old version has nothing left to revoke with; skip, not fail.
                if let Some(value) = self.store.get_value(secret, version).await.ok().flatten() {
                    self.target.revoke(version, &value).await?;
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

    /// Resolves a follow-up into a job: the due time (relative dues count from now,
    /// i.e. after every earlier action of the plan returned), when to fire, and the name.
    /// The job for `follow_up`. One due by `carry_on` (this invocation's inline deadline,
    /// when its plan is carried on) will be run inline: its schedule is only a backstop,
    /// fired after the due time rather than early, so that it finds the work done instead
    /// of racing the invocation that does it.
    ///
    /// A job must never take the name of the schedule delivering this invocation: that
    /// one is deleted once it has run (ActionAfterCompletion DELETE), so a create that
    /// found it "already scheduled" would be lost with it. A rescheduled follow-up that
    /// lands on the same second moves one second later.
    fn job(
        &self,
        secret: &SecretId,
        follow_up: &FollowUp,
        carry_on: Option<Timestamp>,
        delivering: Option<&ScheduleName>,
    ) -> Job {
        let now = self.clock.now();
        let due = match follow_up.due {
            Due::At(t) => t,
            Due::GapAfterApply => now.plus(self.policy.gap),
        };
        let fire_at = match carry_on {
            Some(deadline) if due <= deadline => self.policy.backstop_time(due),
            _ => self.policy.fire_time(due, now),
        };
        let (kind, step, named_version) = match &follow_up.kind {
            FollowUpKind::Swap => ("swap", Step::SwapPending { due }, &follow_up.token),
            FollowUpKind::Release { release } => (
                "release",
                Step::RemovePending {
                    due,
                    release: release.clone(),
                },
                release,
            ),
        };
        let mut fire_at = fire_at;
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
