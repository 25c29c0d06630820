//! One test per phase, built label by label as in the core's tests; the stuck rule on
//! both sides of its bound; the JSON shape; and a real rotation through the in-memory
//! Secrets Manager and the executor, reported on after every step.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll, Waker};

use super::*;
use crate::decide::{Decision, Input, Outcome, Plan, decide};
use crate::event::{Invocation, Step};
use crate::executor::{Executor, Report};
use crate::memory::MemorySecretsManager;
use crate::ports::{Clock, Job, Scheduled, Scheduler, SchedulerError, Target, TargetContext, TargetError};
use crate::secret::{
    AWSCURRENT, Replica, ReplicaStatus, SecretValue, VersionInfo, accepted_marker, swap_marker,
};

const T: u64 = 600;
const BUDGET: u64 = 300;

fn v(n: char) -> VersionId {
    VersionId::new(n.to_string().repeat(32))
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

/// keyshift's copy of token `n` made at second `s` (the generation is the second).
fn copy(n: char, s: i64) -> VersionId {
    v(n).copy(u32::try_from(at(s).as_secs()).expect("a 2027 second fits in u32"))
}

fn policy() -> Policy {
    Policy::new(Duration::from_secs(T), Duration::from_secs(BUDGET)).expect("a valid policy")
}

fn put(s: &mut SecretState, id: VersionId, stages: &[&str], created: Option<i64>) {
    s.versions.insert(
        id,
        VersionInfo {
            stages: stages.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>(),
            created: created.map(at),
        },
    );
}

fn enabled() -> SecretState {
    SecretState {
        rotation_enabled: true,
        ..Default::default()
    }
}

fn status_at(s: &SecretState, now: i64) -> Status {
    status(s, &policy(), at(now))
}

fn ids(list: &[&VersionId]) -> Vec<VersionId> {
    let mut out: Vec<VersionId> = list.iter().map(|v| (*v).clone()).collect();
    out.sort();
    out
}

/// a is AWSCURRENT (written at 0); the engine's token b was written at 100 and copied at
/// 200: the copy carries AWSPENDING.
fn first_gap_state() -> SecretState {
    let mut s = enabled();
    put(&mut s, v('a'), &[AWSCURRENT], Some(0));
    put(&mut s, v('b'), &[], Some(100));
    put(&mut s, copy('b', 200), &[AWSPENDING], Some(200));
    s
}

/// The copy became AWSCURRENT; a carries ROTATING and the swap marker stamped at 900.
fn second_gap_state() -> SecretState {
    let mut s = enabled();
    let marker = swap_marker(at(900));
    put(&mut s, v('a'), &[AWSPREVIOUS, ROTATING, marker.as_str()], Some(0));
    put(&mut s, v('b'), &[], Some(100));
    put(&mut s, copy('b', 200), &[AWSCURRENT], Some(200));
    s
}

#[test]
fn idle_when_no_rotation_ever_ran() {
    let mut s = enabled();
    put(&mut s, v('a'), &[AWSCURRENT], Some(0));
    let st = status_at(&s, 50);
    assert_eq!(st.phase, Phase::Idle);
    assert_eq!(st.next, None);
    assert_eq!(st.stuck, None);
    assert_eq!(st.accepted, vec![v('a')]);
    assert_eq!(st.in_use, Some(v('a')));
    assert_eq!(st.versions.len(), 1);
    assert!(!st.versions[0].keyshift_copy);
    assert!(st.notes.is_empty(), "{:?}", st.notes);
}

#[test]
fn pending_while_the_engine_version_carries_awspending() {
    let mut s = enabled();
    put(&mut s, v('a'), &[AWSCURRENT], Some(0));
    // The engine's placeholder, then its value.
    put(&mut s, v('b'), &[AWSPENDING], None);
    for s in [s.clone(), {
        let mut s = s.clone();
        put(&mut s, v('b'), &[AWSPENDING], Some(100));
        s
    }] {
        // However long it has been: the engine paces this phase, no due time is known.
        for now in [101, 100_000] {
            let st = status_at(&s, now);
            assert_eq!(st.phase, Phase::Pending);
            let next = st.next.as_ref().expect("a next move");
            assert_eq!(next.action, Move::Copy { token: v('b') });
            assert_eq!((next.due, next.due_in_ms, &next.schedule), (None, None, &None));
            assert_eq!(st.stuck, None);
            assert_eq!(st.accepted, ids(&[&v('a'), &v('b')]));
            assert_eq!(st.in_use, Some(v('a')));
        }
    }
}

#[test]
fn pending_again_when_the_copy_lost_awspending_to_the_engine_token() {
    let mut s = enabled();
    put(&mut s, v('a'), &[AWSCURRENT], Some(0));
    put(&mut s, v('b'), &[AWSPENDING], Some(100));
    put(&mut s, copy('b', 200), &[], Some(200));
    let st = status_at(&s, 300);
    assert_eq!(st.phase, Phase::Pending);
    assert!(
        st.notes.iter().any(|n| n.contains("earlier copies")),
        "{:?}",
        st.notes
    );
}

#[test]
fn first_gap_while_the_copy_carries_awspending_due_when_the_core_swaps() {
    let s = first_gap_state();
    let p = policy();
    let st = status_at(&s, 300);
    assert_eq!(st.phase, Phase::FirstGap);
    assert_eq!(st.accepted, ids(&[&v('a'), &copy('b', 200)]));
    assert_eq!(st.in_use, Some(v('a')));
    let next = st.next.as_ref().expect("a next move");
    assert_eq!(
        next.action,
        Move::Swap {
            copy: copy('b', 200),
            from: v('a')
        }
    );
    assert_eq!(next.due, Some(at(800)), "copy creation + T");
    assert_eq!(next.due_in_ms, Some(500_000));
    assert_eq!(
        next.schedule,
        Some(ExpectedSchedule {
            kind: "swap",
            version: v('b'),
            fire_at: p.fire_time(at(800), at(200)),
        })
    );
    let copy_row = st
        .versions
        .iter()
        .find(|r| r.id == copy('b', 200))
        .expect("the copy is listed");
    assert!(copy_row.keyshift_copy);
    assert_eq!(copy_row.created, Some(at(200)));
    assert_eq!(st.stuck, None);

    // The core, asked at the same moment, reschedules the swap for exactly that time.
    let inv = Invocation {
        step: Step::SwapPending { due: at(0) },
        secret_id: SecretId::new("status/test"),
        token: v('b'),
        rotation_token: None,
        schedule: None,
    };
    let decision = decide(&Input {
        invocation: &inv,
        secret: &s,
        now: at(300),
        policy: &p,
        wait_budget_left: p.inline_budget,
    });
    match decision {
        Decision::Apply(Plan {
            outcome: Outcome::Rescheduled { due },
            ..
        }) => assert_eq!(Some(due), next.due),
        other => panic!("expected a reschedule, got {other:?}"),
    }
}

#[test]
fn first_gap_of_a_replicated_secret_counts_from_the_accepted_marker() {
    let mut s = first_gap_state();
    s.replicas.push(Replica {
        region: "eu-west-1".into(),
        status: ReplicaStatus::InSync,
        stages: None,
    });
    let st = status_at(&s, 300);
    assert_eq!(st.phase, Phase::FirstGap);
    let next = st.next.as_ref().expect("a next move");
    assert_eq!(next.action, Move::MarkAccepted { copy: copy('b', 200) });
    assert_eq!(next.due, None);

    let marker = accepted_marker(at(260));
    put(&mut s, copy('b', 200), &[AWSPENDING, marker.as_str()], Some(200));
    let st = status_at(&s, 300);
    assert_eq!(
        st.next.as_ref().and_then(|n| n.due),
        Some(at(860)),
        "marker + T wins"
    );
}

#[test]
fn second_gap_after_the_swap_due_at_the_marker_plus_t() {
    let s = second_gap_state();
    let p = policy();
    let st = status_at(&s, 1000);
    assert_eq!(st.phase, Phase::SecondGap);
    assert_eq!(st.accepted, ids(&[&v('a'), &copy('b', 200)]));
    assert_eq!(st.in_use, Some(copy('b', 200)));
    let next = st.next.as_ref().expect("a next move");
    assert_eq!(next.action, Move::Release { old: v('a') });
    assert_eq!(next.due, Some(at(1500)));
    assert_eq!(next.due_in_ms, Some(500_000));
    assert_eq!(
        next.schedule,
        Some(ExpectedSchedule {
            kind: "release",
            version: v('a'),
            fire_at: p.fire_time(at(1500), at(900)),
        })
    );
    assert_eq!(st.stuck, None);
}

#[test]
fn second_gap_without_a_marker_waits_for_one() {
    let mut s = second_gap_state();
    put(&mut s, v('a'), &[AWSPREVIOUS, ROTATING], Some(0));
    let st = status_at(&s, 100_000);
    assert_eq!(st.phase, Phase::SecondGap);
    let next = st.next.as_ref().expect("a next move");
    assert_eq!(next.action, Move::MarkSwap { old: v('a') });
    assert_eq!((next.due, st.stuck.as_ref()), (None, None));
}

#[test]
fn released_after_the_release() {
    let mut s = enabled();
    put(&mut s, v('a'), &[AWSPREVIOUS], Some(0));
    put(&mut s, v('b'), &[], Some(100));
    put(&mut s, copy('b', 200), &[AWSCURRENT], Some(200));
    let st = status_at(&s, 2000);
    assert_eq!(st.phase, Phase::Released);
    assert_eq!(st.next, None);
    assert_eq!(st.stuck, None);
    assert_eq!(st.accepted, vec![copy('b', 200)]);
    assert!(st.notes.is_empty(), "{:?}", st.notes);
    assert!(st.to_string().contains("the last rotation finished"), "{st}");
}

#[test]
fn an_overdue_swap_is_stuck_with_advice() {
    let s = first_gap_state();
    // Due at 800; stuck once past due + precision (60 s) + the margin (300 s).
    let bound = 800 + 60 + 300;
    assert_eq!(status_at(&s, bound).stuck, None);
    let st = status_at(&s, bound + 1);
    let advice = st.stuck.as_deref().expect("stuck");
    assert!(advice.contains("swapPending"), "{advice}");
    assert!(advice.contains(v('b').as_str()), "names the token: {advice}");
    assert!(advice.contains("Invoking it by hand"), "{advice}");
    assert_eq!(st.next.as_ref().and_then(|n| n.due_in_ms), Some(-361_000));
    assert!(st.to_string().contains("overdue by 6m01s"), "{st}");
}

#[test]
fn an_overdue_release_is_stuck_with_advice() {
    let s = second_gap_state();
    let bound = 1500 + 60 + 300;
    assert_eq!(status_at(&s, bound).stuck, None);
    let advice = status_at(&s, bound + 1).stuck.expect("stuck");
    assert!(advice.contains("removePending"), "{advice}");
    assert!(
        advice.contains(v('a').as_str()),
        "names the old version: {advice}"
    );
    assert!(advice.contains("Invoking it by hand"), "{advice}");
}

#[test]
fn a_move_not_yet_overdue_is_not_stuck() {
    for (s, due) in [(first_gap_state(), 800), (second_gap_state(), 1500)] {
        for now in [due - 100, due, due + 60, due + 360] {
            let st = status_at(&s, now);
            assert_eq!(st.stuck, None, "{} at {now}", st.phase);
            assert!(st.to_string().contains("stuck:    no"), "{st}");
        }
    }
}

#[test]
fn json_shape() {
    let st = status_at(&second_gap_state(), 1000);
    let j = st.to_json();
    let keys: BTreeSet<&str> = j
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "phase",
            "meaning",
            "now",
            "gap_seconds",
            "rotation_enabled",
            "deleted",
            "versions",
            "accepted",
            "in_use",
            "next",
            "stuck",
            "notes",
        ])
    );
    assert_eq!(j["phase"], "second-gap");
    assert_eq!(j["gap_seconds"], 600);
    assert_eq!(j["now"], at(1000).to_rfc3339());
    assert_eq!(j["in_use"], copy('b', 200).as_str());
    assert_eq!(j["accepted"].as_array().expect("a list").len(), 2);
    let a = j["versions"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|row| row["id"] == v('a').as_str())
        .expect("a is listed");
    assert_eq!(a["labels"][0], AWSPREVIOUS);
    assert_eq!(a["created"], at(0).to_rfc3339());
    assert_eq!(a["keyshift_copy"], false);
    assert_eq!(j["next"]["move"], "release");
    assert_eq!(j["next"]["version"], v('a').as_str());
    assert_eq!(j["next"]["due"], at(1500).to_rfc3339());
    assert_eq!(j["next"]["due_in_ms"], 500_000);
    assert_eq!(j["next"]["schedule"]["kind"], "release");
    assert!(j["next"]["schedule"]["fire_at"].is_string());
    assert!(j["stuck"].is_null());
    assert!(j["notes"].as_array().expect("a list").is_empty());

    let idle = {
        let mut s = enabled();
        put(&mut s, v('a'), &[AWSCURRENT], None);
        status_at(&s, 0).to_json()
    };
    assert!(idle["next"].is_null());
    assert!(idle["versions"][0]["created"].is_null());
    let stuck = status_at(&second_gap_state(), 5000).to_json();
    assert!(
        stuck["stuck"]
            .as_str()
            .is_some_and(|a| a.contains("removePending"))
    );
}

// ---------------------------------------------------------------------------------------
// A real rotation through the in-memory Secrets Manager and the executor
// ---------------------------------------------------------------------------------------

/// Milliseconds since the epoch; `sleep_until` jumps straight to the wake time.
#[derive(Debug, Clone)]
struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    fn advance_to(&self, t: Timestamp) {
        self.0.fetch_max(t.as_millis(), Ordering::SeqCst);
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

/// Accepts every job; the test delivers them itself from the executor's reports.
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

/// A key: a fixed new value, nothing to register or revoke.
#[derive(Debug, Clone, Copy)]
struct KeyTarget;

impl Target for KeyTarget {
    async fn generate(
        &self,
        _ctx: &TargetContext<'_>,
        _current: Option<&SecretValue>,
    ) -> Result<SecretValue, TargetError> {
        Ok(SecretValue::new("the-new-key-material"))
    }

    async fn set(&self, _: &TargetContext<'_>, _: &VersionId, _: &SecretValue) -> Result<(), TargetError> {
        Ok(())
    }

    async fn test(&self, _: &TargetContext<'_>, _: &VersionId, _: &SecretValue) -> Result<(), TargetError> {
        Ok(())
    }

    async fn revoke(&self, _: &TargetContext<'_>, _: &VersionId, _: &SecretValue) -> Result<(), TargetError> {
        Ok(())
    }
}

/// Polls once: every double above is ready at once.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the test doubles never wait"),
    }
}

/// The phase the labels show, read independently of [`status`].
fn phase_from_labels(s: &SecretState) -> Phase {
    let current = s.current();
    match (
        s.holder(AWSPENDING).filter(|p| Some(*p) != current),
        s.holder(ROTATING),
    ) {
        (Some(p), _) if p.is_keyshift_copy() => Phase::FirstGap,
        (_, Some(r)) if Some(r) != current => Phase::SecondGap,
        (Some(_), _) => Phase::Pending,
        _ if s.holder(AWSPREVIOUS).is_some() => Phase::Released,
        _ => Phase::Idle,
    }
}

#[test]
fn a_real_rotation_reports_each_phase_the_labels_show() {
    let start = Timestamp::from_secs(1_700_000_000);
    let clock = ManualClock(Arc::new(AtomicI64::new(start.as_millis())));
    let reader = Arc::clone(&clock.0);
    let sm = Arc::new(MemorySecretsManager::new(move || {
        Timestamp::from_millis(reader.load(Ordering::SeqCst))
    }));
    let id = SecretId::new("status/rotation");
    let first = VersionId::new("00000000-0000-4000-8000-000000000000");
    let token = VersionId::new("00000000-0000-4000-8000-000000000001");
    sm.create_secret(&id, &first, SecretValue::new("the-old-key-material"))
        .expect("create the secret");
    sm.set_rotation_enabled(&id, true).expect("enable rotation");
    // T longer than the inline budget: every gap goes through a schedule, so each phase
    // is visible between invocations.
    let p = Policy::new(Duration::from_secs(T), Duration::from_secs(60)).expect("a valid policy");
    let exec = Executor::new(Arc::clone(&sm), NoopScheduler, clock.clone(), KeyTarget, p);

    let check = |want: Phase| -> Status {
        let s = sm.snapshot(&id).expect("the secret exists");
        let st = status(&s, &p, clock.now());
        assert_eq!(st.phase, want, "{st}");
        assert_eq!(st.phase, phase_from_labels(&s), "{st}");
        assert_eq!(st.accepted, s.accepted().into_iter().cloned().collect::<Vec<_>>());
        assert_eq!(st.in_use.as_ref(), s.current());
        assert_eq!(st.stuck, None, "{st}");
        assert!(!st.to_string().contains("key-material"), "{st}");
        assert!(!st.to_json().to_string().contains("key-material"));
        st
    };
    let engine = |step: Step| -> Report {
        let inv = Invocation {
            step,
            secret_id: id.clone(),
            token: token.clone(),
            rotation_token: None,
            schedule: None,
        };
        run(exec.handle(&inv)).expect("the engine step succeeds")
    };
    let deliver = |job: &Job| -> Report {
        clock.advance_to(job.fire_at);
        run(exec.handle(&job.invocation)).expect("the follow-up succeeds")
    };
    let only_job = |r: &Report| -> Job {
        assert_eq!(r.scheduled.len(), 1, "{r:?}");
        r.scheduled[0].clone()
    };

    check(Phase::Idle);
    sm.begin_rotation(&id, &token)
        .expect("the engine starts a rotation");
    check(Phase::Pending);
    engine(Step::CreateSecret);
    check(Phase::Pending);
    engine(Step::SetSecret);
    engine(Step::TestSecret);
    check(Phase::Pending);
    let swap = only_job(&engine(Step::FinishSecret));
    let st = check(Phase::Pending);
    assert_eq!(
        st.next.map(|n| n.action),
        Some(Move::Copy { token: token.clone() })
    );

    // The first follow-up writes the copy and schedules the swap T after it.
    let copied = deliver(&swap);
    assert!(matches!(copied.outcome, Outcome::Copied { .. }), "{copied:?}");
    let swap = only_job(&copied);
    let st = check(Phase::FirstGap);
    let next = st.next.as_ref().expect("a next move");
    let copy_id = next.action.version().clone();
    assert!(copy_id.is_keyshift_copy());
    let created = sm
        .snapshot(&id)
        .expect("the secret exists")
        .version(&copy_id)
        .and_then(|v| v.created)
        .expect("the copy has a date");
    assert_eq!(next.due, Some(created.plus(p.gap)));
    assert_eq!(st.schedule_name(&id).as_ref(), Some(&swap.name), "{st}");

    // The swap, then the release scheduled T after its marker.
    let swapped = deliver(&swap);
    assert_eq!(*swapped.last(), Outcome::Swapped, "{swapped:?}");
    let release = only_job(&swapped);
    let st = check(Phase::SecondGap);
    let next = st.next.as_ref().expect("a next move");
    assert_eq!(next.action, Move::Release { old: first.clone() });
    let s = sm.snapshot(&id).expect("the secret exists");
    assert_eq!(
        next.due,
        s.swap_marker(&first).map(|m| m.plus(p.gap)),
        "marker + T"
    );
    assert_eq!(st.in_use.as_ref(), Some(&copy_id));
    assert_eq!(st.schedule_name(&id).as_ref(), Some(&release.name), "{st}");

    let released = deliver(&release);
    assert_eq!(*released.last(), Outcome::Released, "{released:?}");
    assert!(released.scheduled.is_empty());
    let st = check(Phase::Released);
    assert_eq!(st.in_use, Some(copy_id));
    assert_eq!(st.next, None);
}
