//! Operator requests driven through the executor against the in-memory Secrets Manager:
//! an emergency in every phase of a rotation, a cancel before and after the swap, a
//! re-drive of each follow-up, and what the rotation's own late steps do afterwards.
//! Every test checks the labels (AWSPENDING on no version once done, one accepted
//! version at rest), and what the target registered and revoked.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::*;
use crate::decide::Outcome;
use crate::event::{Invocation, Operation, OperatorRequest, Step};
use crate::executor::{ExecError, Executor, Report};
use crate::memory::{ChangeKind, MemorySecretsManager};
use crate::policy::Policy;
use crate::ports::{Clock, Job, Scheduled, Scheduler, SchedulerError, Target, TargetContext, TargetError};
use crate::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, ROTATING, SecretId, SecretValue, VersionId};
use crate::time::Timestamp;

const T: u64 = 600;
/// Shorter than T: every gap of a routine rotation goes through a schedule.
const BUDGET: u64 = 120;

#[derive(Debug, Clone)]
struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    fn advance_to(&self, t: Timestamp) {
        self.0.fetch_max(t.as_millis(), Ordering::SeqCst);
    }
    fn advance(&self, d: Duration) {
        self.advance_to(self.now().plus(d));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
    fn sleep_until(&self, until: Timestamp) -> impl Future<Output = ()> + Send {
        self.advance_to(until);
        std::future::ready(())
    }
}

#[derive(Debug, Clone, Copy)]
struct NoopScheduler;

impl Scheduler for NoopScheduler {
    async fn schedule(&self, _job: &Job) -> Result<Scheduled, SchedulerError> {
        Ok(Scheduled::Created)
    }
    async fn complete(&self, _name: &crate::event::ScheduleName) -> Result<(), SchedulerError> {
        Ok(())
    }
}

/// A credential target: values numbered, every set and revoke recorded, and a test that
/// passes only for a registered value.
#[derive(Debug, Clone, Default)]
struct Recorder {
    next: Arc<AtomicI64>,
    registered: Arc<Mutex<Vec<String>>>,
    revoked: Arc<Mutex<Vec<String>>>,
    fail_tests: Arc<AtomicBool>,
}

impl Recorder {
    fn revoked(&self) -> Vec<String> {
        self.revoked.lock().unwrap().clone()
    }
}

impl Target for Recorder {
    fn revokes(&self, _ctx: &TargetContext<'_>) -> bool {
        true
    }
    async fn generate(
        &self,
        _: &TargetContext<'_>,
        _: Option<&SecretValue>,
    ) -> Result<SecretValue, TargetError> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        Ok(SecretValue::new(format!("credential-{n}")))
    }
    async fn set(
        &self,
        _: &TargetContext<'_>,
        _: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        self.registered.lock().unwrap().push(value.expose().to_owned());
        Ok(())
    }
    async fn test(
        &self,
        _: &TargetContext<'_>,
        _: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let registered = self
            .registered
            .lock()
            .unwrap()
            .iter()
            .any(|r| r == value.expose());
        if self.fail_tests.load(Ordering::SeqCst) || !registered {
            return Err(TargetError::refused("login failed"));
        }
        Ok(())
    }
    async fn revoke(
        &self,
        _: &TargetContext<'_>,
        _: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        self.revoked.lock().unwrap().push(value.expose().to_owned());
        Ok(())
    }
}

fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the test doubles never wait"),
    }
}

/// Where a rotation is stopped before the operator acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Idle,
    AfterCreate,
    AfterFinish,
    FirstGap,
    SecondGap,
    Released,
}

const EVERY_STOP: [Stop; 6] = [
    Stop::Idle,
    Stop::AfterCreate,
    Stop::AfterFinish,
    Stop::FirstGap,
    Stop::SecondGap,
    Stop::Released,
];

struct World {
    sm: Arc<MemorySecretsManager>,
    clock: ManualClock,
    target: Recorder,
    exec: Executor<Arc<MemorySecretsManager>, NoopScheduler, ManualClock, Recorder>,
    id: SecretId,
    first: VersionId,
    /// The follow-up the rotation left scheduled (not delivered), if any.
    pending_job: Option<Job>,
    /// The watchdog finishSecret scheduled, when the policy has one.
    watchdog_job: Option<Job>,
}

fn token(n: u32) -> VersionId {
    VersionId::new(format!("00000000-0000-4000-8000-{n:012}"))
}

impl World {
    fn new() -> World {
        let clock = ManualClock(Arc::new(AtomicI64::new(
            Timestamp::from_secs(1_700_000_000).as_millis(),
        )));
        let reader = Arc::clone(&clock.0);
        let sm = Arc::new(MemorySecretsManager::new(move || {
            Timestamp::from_millis(reader.load(Ordering::SeqCst))
        }));
        let id = SecretId::new("ops/credential");
        let first = token(0);
        sm.create_secret(&id, &first, SecretValue::new("credential-initial"))
            .unwrap();
        sm.set_rotation_enabled(&id, true).unwrap();
        let target = Recorder::default();
        target
            .registered
            .lock()
            .unwrap()
            .push("credential-initial".into());
        let policy = Policy::new(Duration::from_secs(T), Duration::from_secs(BUDGET)).unwrap();
        let exec = Executor::new(
            Arc::clone(&sm),
            NoopScheduler,
            clock.clone(),
            target.clone(),
            policy,
        );
        World {
            sm,
            clock,
            target,
            exec,
            id,
            first,
            pending_job: None,
            watchdog_job: None,
        }
    }

    fn state(&self) -> SecretState {
        self.sm.snapshot(&self.id).unwrap()
    }

    fn value(&self, v: &VersionId) -> String {
        self.sm.value(&self.id, v).unwrap().unwrap().expose().to_owned()
    }

    fn engine(&self, token: &VersionId, step: Step) -> Result<Report, ExecError> {
        let inv = Invocation {
            step,
            secret_id: self.id.clone(),
            token: token.clone(),
            rotation_token: None,
            schedule: None,
        };
        run(self.exec.handle(&inv))
    }

    fn deliver(&self, job: &Job) -> Result<Report, ExecError> {
        self.clock.advance_to(job.fire_at);
        run(self.exec.handle(&job.invocation))
    }

    fn operate(&self, operation: Operation) -> Result<(Report, Option<Invocation>), ExecError> {
        let request = OperatorRequest {
            secret_id: self.id.clone(),
            operation,
        };
        run(self.exec.operate(&request))
    }

    /// Runs the rotation with `token` up to `stop`; the follow-up due next is kept in
    /// `pending_job` (not delivered).
    fn rotate_to(&mut self, token: &VersionId, stop: Stop) {
        self.pending_job = None;
        if stop == Stop::Idle {
            return;
        }
        self.sm.begin_rotation(&self.id, token).unwrap();
        self.engine(token, Step::CreateSecret).unwrap();
        if stop == Stop::AfterCreate {
            return;
        }
        self.engine(token, Step::SetSecret).unwrap();
        self.engine(token, Step::TestSecret).unwrap();
        let finish = self.engine(token, Step::FinishSecret).unwrap();
        self.watchdog_job = finish
            .scheduled
            .iter()
            .find(|j| crate::executor::is_watchdog(Some(&j.name)))
            .cloned();
        let mut job = finish
            .scheduled
            .iter()
            .find(|j| !crate::executor::is_watchdog(Some(&j.name)))
            .cloned()
            .expect("finishSecret schedules the swap");
        if stop == Stop::AfterFinish {
            self.pending_job = Some(job);
            return;
        }
        let copied = self.deliver(&job).unwrap();
        job = copied
            .scheduled
            .last()
            .cloned()
            .expect("the copy schedules the swap");
        if stop == Stop::FirstGap {
            self.pending_job = Some(job);
            return;
        }
        let swapped = self.deliver(&job).unwrap();
        assert_eq!(*swapped.last(), Outcome::Swapped, "{swapped:?}");
        job = swapped
            .scheduled
            .last()
            .cloned()
            .expect("the swap schedules the release");
        if stop == Stop::SecondGap {
            self.pending_job = Some(job);
            return;
        }
        let released = self.deliver(&job).unwrap();
        assert_eq!(*released.last(), Outcome::Released, "{released:?}");
    }

    /// A full routine rotation with `token` goes through: the engine is not refused.
    fn routine_rotation_completes(&mut self, token: &VersionId) {
        self.rotate_to(token, Stop::Released);
        let s = self.state();
        let current = s.current().unwrap();
        assert!(SecretState::in_chain(current, token), "{:?}", s.labels());
        assert_eq!(s.holder(AWSPENDING), None);
        assert_eq!(s.holder(ROTATING), None);
    }
}

/// A state at rest: AWSPENDING on no version and one accepted version.
fn at_rest(s: &SecretState) {
    assert_eq!(s.holder(AWSPENDING), None, "{:?}", s.labels());
    assert_eq!(s.accepted().len(), 1, "{:?}", s.labels());
}

fn emergency(gap: u64, keep: Option<u64>, compromised: Option<VersionId>) -> Operation {
    Operation::EmergencyRotate {
        reason: "signing key found in a public paste".into(),
        compromised,
        gap: Duration::from_secs(gap),
        keep_accepting: keep.map(Duration::from_secs),
    }
}

/// When `version` last got `stage`, from the store's audit log.
fn attached_at(w: &World, version: &VersionId, stage: &str) -> Option<Timestamp> {
    w.sm.history(&w.id)
        .into_iter()
        .filter(|c| c.version == *version && c.what == ChangeKind::Attached(stage.into()))
        .map(|c| c.at)
        .next_back()
}

#[test]
fn an_emergency_in_every_phase_cuts_over_now_and_leaves_the_engine_free() {
    for stop in EVERY_STOP {
        let mut w = World::new();
        w.rotate_to(&token(1), stop);
        let before = w.state();
        let k1 = before.current().unwrap().clone();
        let k1_value = w.value(&k1);
        let in_flight = before
            .holder(AWSPENDING)
            .filter(|p| **p != k1)
            .and_then(|p| w.sm.value(&w.id, p).unwrap())
            .map(|v| v.expose().to_owned());
        let cut_at = w.clock.now();

        let (report, inv) = w.operate(emergency(0, None, None)).unwrap();
        let inv = inv.expect("an invocation ran");
        assert_eq!(inv.token, k1, "{stop:?}: the compromised version is AWSCURRENT's");
        let e = k1.emergency();
        assert!(
            matches!(report.last(), Outcome::EmergencyDone { new_version, compromised, accepted_until: None }
                if *new_version == e && *compromised == k1),
            "{stop:?}: {report:?}"
        );
        assert_eq!(
            attached_at(&w, &e, AWSCURRENT),
            Some(cut_at),
            "{stop:?}: no wait before the cut without a gap"
        );
        let s = w.state();
        assert_eq!(s.current(), Some(&e), "{stop:?}");
        assert!(
            s.version(&k1).unwrap().stages.is_empty(),
            "{stop:?}: {:?}",
            s.labels()
        );
        at_rest(&s);
        let revoked = w.target.revoked();
        assert!(
            revoked.contains(&k1_value),
            "{stop:?}: the compromised value is revoked"
        );
        assert!(
            !revoked.contains(&w.value(&e)),
            "{stop:?}: the new value is not revoked"
        );
        if stop == Stop::SecondGap {
            assert!(
                revoked.contains(&w.value(&w.first)),
                "the version in its second gap is released"
            );
        }

        // The rerun is a no-op on the labels.
        let again = w.operate(emergency(0, None, Some(k1.clone()))).unwrap().0;
        assert!(matches!(again.last(), Outcome::EmergencyDone { .. }), "{again:?}");
        assert_eq!(
            w.state().labels(),
            s.labels(),
            "{stop:?}: the rerun changed labels"
        );

        // The in-flight rotation's own follow-up, delivered late, moves nothing.
        if let Some(job) = w.pending_job.take() {
            let late = w.deliver(&job).unwrap();
            assert!(
                matches!(
                    late.last(),
                    Outcome::Superseded { .. }
                        | Outcome::Cancelled { .. }
                        | Outcome::AlreadyReleased
                        | Outcome::AlreadyCurrent
                        | Outcome::Vanished { .. }
                ),
                "{stop:?}: {late:?}"
            );
            assert_eq!(w.state().current(), Some(&e), "{stop:?}");
            at_rest(&w.state());
            if let Some(p) = &in_flight {
                assert!(
                    w.target.revoked().contains(p),
                    "{stop:?}: the stood-down rotation's value is revoked once its cancel marker settled"
                );
            }
        }
        // And the engine's next rotation is not refused.
        w.clock.advance(Duration::from_secs(1));
        w.routine_rotation_completes(&token(2));
    }
}

#[test]
fn an_emergency_gap_accepts_the_new_value_first_then_uses_it() {
    let mut w = World::new();
    w.rotate_to(&token(1), Stop::FirstGap);
    let start = w.clock.now();
    let (report, _) = w.operate(emergency(30, None, None)).unwrap();
    assert!(
        matches!(report.last(), Outcome::EmergencyDone { .. }),
        "{report:?}"
    );
    let e = w.state().current().unwrap().clone();
    let pending_at = attached_at(&w, &e, AWSPENDING).unwrap();
    let current_at = attached_at(&w, &e, AWSCURRENT).unwrap();
    assert!(pending_at >= start);
    assert!(
        current_at.since(pending_at) >= Duration::from_secs(30),
        "{pending_at} -> {current_at}"
    );
    at_rest(&w.state());
}

#[test]
fn an_emergency_gap_longer_than_the_budget_is_refused_and_changes_nothing() {
    let w = World::new();
    let before = w.state().labels();
    let err = w.operate(emergency(BUDGET + 1, None, None)).unwrap_err();
    assert!(
        matches!(err, ExecError::Rejected(Rejection::EmergencyGapTooLong { .. })),
        "{err}"
    );
    assert_eq!(w.state().labels(), before);
}

#[test]
fn keep_accepting_leaves_the_old_version_accepted_until_its_bound_then_releases_it() {
    let mut w = World::new();
    w.rotate_to(&token(1), Stop::Released);
    let k1 = w.state().current().unwrap().clone();
    let k1_value = w.value(&k1);
    let cut = w.clock.now();
    let keep = 90;
    let (report, _) = w.operate(emergency(0, Some(keep), None)).unwrap();
    let Outcome::EmergencyDone {
        accepted_until: Some(until),
        ..
    } = report.last().clone()
    else {
        panic!("{report:?}")
    };
    assert!(until >= cut.plus(Duration::from_secs(keep)), "{until}");
    assert!(until <= cut.plus(Duration::from_secs(keep + 1)), "{until}");
    let s = w.state();
    assert!(s.has(&k1, ROTATING) && !s.has(&k1, AWSCURRENT));
    assert!(s.accepted().contains(&k1));
    assert!(
        !w.target.revoked().contains(&k1_value),
        "not revoked while accepted"
    );
    let release = report
        .scheduled
        .last()
        .cloned()
        .expect("the release is scheduled");
    let released = w.deliver(&release).unwrap();
    assert_eq!(*released.last(), Outcome::Released, "{released:?}");
    let detached =
        w.sm.history(&w.id)
            .into_iter()
            .filter(|c| c.version == k1 && c.what == ChangeKind::Detached(ROTATING.into()))
            .map(|c| c.at)
            .next_back()
            .expect("ROTATING came off");
    assert!(detached >= until, "released at {detached}, before {until}");
    assert!(w.target.revoked().contains(&k1_value));
    at_rest(&w.state());
    w.routine_rotation_completes(&token(2));
}

#[test]
fn hostile_emergencies_are_refused_and_change_nothing() {
    let mut w = World::new();
    w.rotate_to(&token(1), Stop::Released);
    let before = w.state().labels();
    let err = w.operate(emergency(0, Some(T + 1), None)).unwrap_err();
    assert!(
        matches!(err, ExecError::Rejected(Rejection::KeepTooLong { .. })),
        "{err}"
    );
    // A compromised version that is no longer current (a stale command).
    let err = w.operate(emergency(0, None, Some(w.first.clone()))).unwrap_err();
    assert!(
        matches!(err, ExecError::Rejected(Rejection::NotCurrent { .. })),
        "{err}"
    );
    // A version the secret never had.
    let err = w.operate(emergency(0, None, Some(token(77)))).unwrap_err();
    assert!(
        matches!(err, ExecError::Rejected(Rejection::UnknownVersion { .. })),
        "{err}"
    );
    assert_eq!(w.state().labels(), before);
    let request = OperatorRequest {
        secret_id: SecretId::new("no/such/secret"),
        operation: emergency(0, None, None),
    };
    let err = run(w.exec.operate(&request)).unwrap_err();
    assert_eq!(err, ExecError::Rejected(Rejection::SecretNotFound));
}

#[test]
fn a_cancel_before_the_swap_restores_the_current_version_alone_and_sticks() {
    for stop in [Stop::AfterCreate, Stop::AfterFinish, Stop::FirstGap] {
        let mut w = World::new();
        let rotation = token(1);
        w.rotate_to(&rotation, stop);
        let pending_value = w.value(&rotation);
        let (report, inv) = w.operate(Operation::Cancel { token: None }).unwrap();
        assert_eq!(inv.map(|i| i.token), Some(rotation.clone()), "{stop:?}");
        assert_eq!(
            *report.last(),
            Outcome::Cancelled {
                token: rotation.clone()
            },
            "{stop:?}: {report:?}"
        );
        let s = w.state();
        assert_eq!(s.current(), Some(&w.first), "{stop:?}");
        at_rest(&s);
        if stop != Stop::AfterCreate {
            assert!(
                w.target.revoked().contains(&pending_value),
                "{stop:?}: registered, so revoked"
            );
        }
        // The engine's later steps and the rotation's follow-up stand down.
        let finish = w.engine(&rotation, Step::FinishSecret);
        assert!(
            matches!(&finish, Ok(r) if matches!(r.outcome, Outcome::Cancelled { .. }))
                || matches!(&finish, Err(ExecError::Rejected(Rejection::NotPending { .. }))),
            "{stop:?}: {finish:?}"
        );
        if let Some(job) = w.pending_job.take() {
            let late = w.deliver(&job).unwrap();
            assert!(
                matches!(late.last(), Outcome::Cancelled { .. }),
                "{stop:?}: {late:?}"
            );
        }
        // An engine retry of the same rotation puts AWSPENDING back; its steps take it off.
        w.sm.begin_rotation(&w.id, &rotation).unwrap();
        let retry = w.engine(&rotation, Step::CreateSecret).unwrap();
        assert!(matches!(retry.outcome, Outcome::Cancelled { .. }), "{retry:?}");
        let s = w.state();
        assert_eq!(s.current(), Some(&w.first), "{stop:?}");
        at_rest(&s);
        // A rerun of the cancel is harmless.
        w.operate(Operation::Cancel {
            token: Some(rotation.clone()),
        })
        .unwrap();
        assert_eq!(w.state().current(), Some(&w.first), "{stop:?}");
        // The next rotation runs, and its release takes the cancel marker off.
        w.clock.advance(Duration::from_secs(1));
        w.routine_rotation_completes(&token(2));
        let s = w.state();
        assert!(
            s.versions
                .values()
                .all(|v| v.stages.iter().all(|l| !l.starts_with("KEYSHIFT_CANCELLED_"))),
            "{:?}",
            s.labels()
        );
    }
}

#[test]
fn a_cancel_after_the_swap_is_refused_with_the_way_forward() {
    let mut w = World::new();
    w.rotate_to(&token(1), Stop::SecondGap);
    let before = w.state().labels();
    let err = w.operate(Operation::Cancel { token: None }).unwrap_err();
    assert!(
        matches!(err, ExecError::Rejected(Rejection::CancelAfterSwap { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("emergencyRotate"), "{err}");
    let err = w
        .operate(Operation::Cancel {
            token: Some(token(1)),
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExecError::Rejected(Rejection::CancelAfterSwap { release_due: Some(_) })
        ),
        "{err}"
    );
    assert_eq!(w.state().labels(), before);
}

#[test]
fn a_cancel_with_nothing_in_flight_or_the_wrong_token_changes_nothing() {
    let mut w = World::new();
    let (report, inv) = w.operate(Operation::Cancel { token: None }).unwrap();
    assert_eq!(report.outcome, Outcome::NothingToCancel);
    assert!(inv.is_none());
    w.rotate_to(&token(1), Stop::FirstGap);
    let before = w.state().labels();
    let err = w
        .operate(Operation::Cancel {
            token: Some(token(9)),
        })
        .unwrap_err();
    assert!(
        matches!(err, ExecError::Rejected(Rejection::NotInFlight { .. })),
        "{err}"
    );
    assert_eq!(w.state().labels(), before);
}

#[test]
fn a_redrive_runs_the_dropped_follow_up_and_never_shortens_a_gap() {
    // First gap: the swap's schedule was lost.
    let mut w = World::new();
    w.rotate_to(&token(1), Stop::FirstGap);
    let copy = w.state().holder(AWSPENDING).unwrap().clone();
    // Too early: the re-drive reschedules; nothing moves.
    let (early, inv) = w.operate(Operation::Redrive).unwrap();
    assert!(matches!(inv.unwrap().step, Step::SwapPending { .. }));
    assert!(matches!(early.last(), Outcome::Rescheduled { .. }), "{early:?}");
    assert_eq!(w.state().current(), Some(&w.first));
    // Past due: it swaps, T after the copy became pending.
    w.clock.advance(Duration::from_secs(T));
    let (late, _) = w.operate(Operation::Redrive).unwrap();
    assert_eq!(*late.last(), Outcome::Swapped, "{late:?}");
    let pending = attached_at(&w, &copy, AWSPENDING).unwrap();
    let current = attached_at(&w, &copy, AWSCURRENT).unwrap();
    assert!(current.since(pending) >= Duration::from_secs(T));

    // Second gap: the release's schedule was lost.
    let swapped_at = w.clock.now();
    let (early, inv) = w.operate(Operation::Redrive).unwrap();
    assert!(matches!(inv.unwrap().step, Step::RemovePending { .. }));
    assert!(matches!(early.last(), Outcome::Rescheduled { .. }), "{early:?}");
    assert!(w.state().has(&w.first, ROTATING));
    w.clock.advance(Duration::from_secs(T + 1));
    let (late, _) = w.operate(Operation::Redrive).unwrap();
    assert_eq!(*late.last(), Outcome::Released, "{late:?}");
    assert!(w.clock.now().since(swapped_at) >= Duration::from_secs(T));
    at_rest(&w.state());
    let (nothing, _) = w.operate(Operation::Redrive).unwrap();
    assert_eq!(nothing.outcome, Outcome::NothingToRedrive);
}

#[test]
fn a_redrive_after_finish_tests_the_engine_value_first() {
    // The engine finished, the swap follow-up was lost: re-driven, it writes the copy.
    let mut w = World::new();
    w.rotate_to(&token(1), Stop::AfterFinish);
    let (report, _) = w.operate(Operation::Redrive).unwrap();
    assert!(matches!(report.outcome, Outcome::Copied { .. }), "{report:?}");

    // The engine stopped after createSecret (setSecret never registered the value): the
    // re-drive refuses, and nothing changes.
    let mut w = World::new();
    w.rotate_to(&token(1), Stop::AfterCreate);
    let before = w.state().labels();
    let err = w.operate(Operation::Redrive).unwrap_err();
    assert!(
        matches!(err, ExecError::Rejected(Rejection::RedriveUntested { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("cancel"), "{err}");
    assert_eq!(w.state().labels(), before);
}

#[test]
fn an_emergency_cancelled_before_its_cut_is_refused_on_rerun() {
    let w = World::new();
    // The first invocation died after writing the new value (its write only).
    let k1 = w.first.clone();
    let e = k1.emergency();
    w.sm.put_secret_value(&w.id, &e, SecretValue::new("credential-e"), &[AWSPENDING])
        .unwrap();
    w.target.registered.lock().unwrap().push("credential-e".into());
    let policy = w.exec.policy;
    let report = crate::status::status(&w.state(), &policy, w.clock.now());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("emergency rotation that has not cut over")),
        "{report}"
    );
    let (report, inv) = w.operate(Operation::Cancel { token: None }).unwrap();
    assert_eq!(inv.unwrap().token, e);
    let after = crate::status::status(&w.state(), &policy, w.clock.now());
    assert!(
        after.notes.iter().any(|n| n.contains("cancelled by an operator")),
        "{after}"
    );
    assert!(matches!(report.last(), Outcome::Cancelled { .. }), "{report:?}");
    assert!(w.target.revoked().contains(&"credential-e".to_owned()));
    let err = w.operate(emergency(0, None, Some(k1.clone()))).unwrap_err();
    assert!(
        matches!(err, ExecError::Rejected(Rejection::EmergencyCancelled { .. })),
        "{err}"
    );
    let s = w.state();
    assert_eq!(s.current(), Some(&k1));
    assert!(!s.has(&k1, AWSPREVIOUS));
    at_rest(&s);
}

#[test]
fn the_watchdog_finds_a_finished_rotation_idle_and_re_drives_a_stuck_one() {
    let margin = Duration::from_secs(3600);
    // Finished: the watchdog has nothing to do.
    let mut w = World::new();
    w.exec.policy = w.exec.policy.with_watchdog(Some(margin));
    let started = w.clock.now();
    w.rotate_to(&token(1), Stop::Released);
    let watchdog = w.watchdog_job.clone().expect("finishSecret scheduled a watchdog");
    assert!(watchdog.name.as_str().contains("-watch-"), "{}", watchdog.name);
    let Step::SwapPending { due } = watchdog.invocation.step else {
        panic!("{watchdog:?}")
    };
    assert!(due >= started.plus(Duration::from_secs(2 * T) + margin));
    let before = w.state().labels();
    let idle = w.deliver(&watchdog).unwrap();
    assert_eq!(*idle.last(), Outcome::AlreadyCurrent, "{idle:?}");
    assert!(idle.applied.is_empty() && idle.scheduled.is_empty(), "{idle:?}");
    assert_eq!(w.state().labels(), before);

    // Stuck in its second gap (the release's schedule was lost): re-driven.
    let mut w = World::new();
    w.exec.policy = w.exec.policy.with_watchdog(Some(margin));
    w.rotate_to(&token(1), Stop::SecondGap);
    w.pending_job = None;
    let watchdog = w.watchdog_job.clone().expect("a watchdog");
    let healed = w.deliver(&watchdog).unwrap();
    assert_eq!(*healed.last(), Outcome::Released, "{healed:?}");
    assert!(!healed.applied.is_empty());
    at_rest(&w.state());
}

#[test]
fn a_rerun_after_the_first_invocation_died_before_registering_registers_before_the_cut() {
    // The first invocation stored the new value and died (a Lambda timeout, a target
    // error) before setSecret registered it: the rerun must not cut over to a value the
    // target has never accepted.
    let w = World::new();
    let k1 = w.first.clone();
    let e = k1.emergency();
    w.sm.put_secret_value(&w.id, &e, SecretValue::new("credential-e"), &[AWSPENDING])
        .unwrap();
    let (report, _) = w.operate(emergency(0, None, Some(k1.clone()))).unwrap();
    assert!(
        matches!(report.last(), Outcome::EmergencyDone { .. }),
        "{report:?}"
    );
    assert_eq!(w.state().current(), Some(&e));
    assert!(
        w.target
            .registered
            .lock()
            .unwrap()
            .contains(&"credential-e".to_owned()),
        "the new AWSCURRENT is registered at the target"
    );
}

#[test]
fn an_emergency_gap_restarts_when_the_label_comes_back_whoever_reads_first() {
    // The new value lost AWSPENDING (an engine strip) and got it back without an accepted
    // marker yet (another invocation of the same emergency is between its two calls):
    // a rerun must count the gap from now, not from the value's creation long ago.
    let w = World::new();
    let k1 = w.first.clone();
    let e = k1.emergency();
    w.sm.put_secret_value(&w.id, &e, SecretValue::new("credential-e"), &[AWSPENDING])
        .unwrap();
    w.target.registered.lock().unwrap().push("credential-e".into());
    w.clock.advance(Duration::from_secs(3600));
    let start = w.clock.now();
    let gap = 30;
    let (report, _) = w.operate(emergency(gap, None, Some(k1))).unwrap();
    assert!(
        matches!(report.last(), Outcome::EmergencyDone { .. }),
        "{report:?}"
    );
    let current_at = attached_at(&w, &e, AWSCURRENT).unwrap();
    assert!(
        current_at.since(start) >= Duration::from_secs(gap),
        "cut {} ms after the label was seen back, less than GapSeconds",
        current_at.since(start).as_millis()
    );
    at_rest(&w.state());
}

#[test]
fn a_rotation_an_emergency_stood_down_never_resumes() {
    // The emergency stands a rotation down while its createSecret is storing the value:
    // the value lands after the emergency wrote its own (so it is the younger one), with
    // AWSPENDING, and setSecret registers it. The emergency's first invocation died
    // before its cut; the operator's rerun cuts over. The rotation's later steps must not
    // promote its value over the emergency's.
    let w = World::new();
    let rotation = token(1);
    w.sm.begin_rotation(&w.id, &rotation).unwrap();
    let k1 = w.first.clone();
    let e = k1.emergency();
    w.target.fail_tests.store(true, Ordering::SeqCst);
    let err = w.operate(emergency(0, None, Some(k1.clone()))).unwrap_err();
    assert!(matches!(err, ExecError::Target(_)), "{err}");
    w.target.fail_tests.store(false, Ordering::SeqCst);
    w.clock.advance(Duration::from_secs(1));
    // The racing createSecret and setSecret land (they read the labels before the stand-down).
    w.sm.strip_label(&w.id, AWSPENDING);
    w.sm.put_secret_value(
        &w.id,
        &rotation,
        SecretValue::new("credential-raced"),
        &[AWSPENDING],
    )
    .unwrap();
    w.target
        .registered
        .lock()
        .unwrap()
        .push("credential-raced".into());
    // The rerun cuts over.
    let (report, _) = w.operate(emergency(0, None, Some(k1))).unwrap();
    assert!(
        matches!(report.last(), Outcome::EmergencyDone { .. }),
        "{report:?}"
    );
    assert_eq!(w.state().current(), Some(&e));
    // The engine retries the rotation (AWSPENDING back on its token), and its follow-ups
    // come, each when due.
    w.sm.begin_rotation(&w.id, &rotation).unwrap();
    let mut jobs: Vec<Job> = Vec::new();
    for step in [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ] {
        if let Ok(report) = w.engine(&rotation, step) {
            jobs.extend(report.scheduled);
        }
    }
    for _ in 0..8 {
        let Some(job) = jobs.pop() else { break };
        if let Ok(report) = w.deliver(&job) {
            jobs.extend(report.scheduled);
        }
    }
    let s = w.state();
    assert_eq!(
        s.current(),
        Some(&e),
        "the stood-down rotation was promoted over the emergency's value: {:?}",
        s.labels()
    );
    assert_eq!(s.holder(AWSPENDING), None, "{:?}", s.labels());
    assert!(w.target.revoked().contains(&"credential-raced".to_owned()));
}

#[test]
fn a_value_registered_by_a_step_racing_the_stand_down_is_revoked_once_it_settled() {
    // The emergency stands a rotation down while its createSecret is storing the value
    // (the placeholder has none yet, so there is nothing to revoke), and the rotation's
    // setSecret, which read the labels before the cancel marker, registers it after.
    let w = World::new();
    let rotation = token(1);
    w.sm.begin_rotation(&w.id, &rotation).unwrap();
    let k1 = w.first.clone();
    // The emergency's first round, up to its own value's test (which fails: the
    // invocation ends there).
    w.target.fail_tests.store(true, Ordering::SeqCst);
    let err = w.operate(emergency(0, None, Some(k1.clone()))).unwrap_err();
    assert!(matches!(err, ExecError::Target(_)), "{err}");
    w.target.fail_tests.store(false, Ordering::SeqCst);
    assert!(
        w.state().cancel_markers(&rotation).next().is_some(),
        "{:?}",
        w.state().labels()
    );
    // The racing steps land: the value stored, then registered at the target.
    w.sm.put_secret_value(&w.id, &rotation, SecretValue::new("credential-raced"), &["RACE"])
        .unwrap();
    w.target
        .registered
        .lock()
        .unwrap()
        .push("credential-raced".into());
    // The operator's rerun cuts over and, once the cancel marker has settled, revokes it.
    let (report, _) = w.operate(emergency(0, None, Some(k1))).unwrap();
    assert!(
        matches!(report.last(), Outcome::EmergencyDone { .. }),
        "{report:?}"
    );
    assert!(
        w.target.revoked().contains(&"credential-raced".to_owned()),
        "the stood-down rotation's value is still valid at the target"
    );
}

#[test]
fn an_engine_retry_of_the_compromised_rotation_never_registers_its_value_again() {
    // The compromised version is keyshift's copy of rotation 1, in its second gap. After
    // the cut, the engine retries rotation 1 (AWSPENDING back on its token, whose value is
    // the compromised one): its steps must stand down, not register the value with the
    // target again nor leave it accepted.
    let mut w = World::new();
    let rotation = token(1);
    w.rotate_to(&rotation, Stop::SecondGap);
    let k1 = w.state().current().unwrap().clone();
    assert!(SecretState::in_chain(&k1, &rotation));
    let compromised = w.value(&k1);
    let (report, _) = w.operate(emergency(0, None, None)).unwrap();
    assert!(
        matches!(report.last(), Outcome::EmergencyDone { .. }),
        "{report:?}"
    );
    let registrations = |w: &World| {
        w.target
            .registered
            .lock()
            .unwrap()
            .iter()
            .filter(|v| **v == compromised)
            .count()
    };
    let before = registrations(&w);
    w.sm.begin_rotation(&w.id, &rotation).unwrap();
    for step in [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ] {
        let _ = w.engine(&rotation, step);
    }
    assert_eq!(
        registrations(&w),
        before,
        "the compromised value was registered again"
    );
    let s = w.state();
    assert_eq!(s.holder(AWSPENDING), None, "{:?}", s.labels());
    assert_eq!(s.current(), Some(&k1.emergency()));
}

#[test]
fn a_raced_value_is_revoked_even_when_the_emergency_never_cuts() {
    // As above, a step racing the stand-down registers the rotation's value; then every
    // attempt of the emergency fails before its cut (the target refuses the new value).
    // The value of the rotation it stood down must not stay valid at the target.
    let w = World::new();
    let rotation = token(1);
    w.sm.begin_rotation(&w.id, &rotation).unwrap();
    let k1 = w.first.clone();
    w.target.fail_tests.store(true, Ordering::SeqCst);
    let err = w.operate(emergency(0, None, Some(k1.clone()))).unwrap_err();
    assert!(matches!(err, ExecError::Target(_)), "{err}");
    w.sm.put_secret_value(&w.id, &rotation, SecretValue::new("credential-raced"), &["RACE"])
        .unwrap();
    w.target
        .registered
        .lock()
        .unwrap()
        .push("credential-raced".into());
    // Attempts later, once the marker has settled, still failing.
    w.clock.advance(Duration::from_secs(60));
    let err = w.operate(emergency(0, None, Some(k1.clone()))).unwrap_err();
    assert!(matches!(err, ExecError::Target(_)), "{err}");
    assert_eq!(w.state().current(), Some(&k1));
    assert!(
        w.target.revoked().contains(&"credential-raced".to_owned()),
        "the stood-down rotation's value is still valid at the target"
    );
}
