//! One test per rule of the core. The states are built by hand, label by label, so each
//! test reads as the situation it covers.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::secret::{AWSPREVIOUS, SecretId, VersionInfo, swap_marker};

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
    v(n).copy(at(s).as_secs() as u32)
}

fn policy() -> Policy {
    Policy::new(Duration::from_secs(T), Duration::from_secs(BUDGET)).unwrap()
}

/// A secret built from (version, labels, value created at) triples.
fn secret(versions: &[(char, &[&str], Option<i64>)]) -> SecretState {
    let mut s = SecretState {
        rotation_enabled: true,
        ..Default::default()
    };
    for (id, stages, created) in versions {
        put(&mut s, v(*id), stages, *created);
    }
    s
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

/// The labels of version `id` of `s`, to change by hand.
fn stages<'a>(s: &'a mut SecretState, id: &VersionId) -> &'a mut BTreeSet<String> {
    &mut s.versions.get_mut(id).expect("the version exists").stages
}

fn marker(s: i64) -> String {
    swap_marker(at(s))
}

fn inv(step: Step, token: char) -> Invocation {
    Invocation {
        step,
        secret_id: SecretId::new("arn:aws:secretsmanager:us-east-1:111122223333:secret:t-AbCdEf"),
        token: v(token),
        rotation_token: None,
        schedule: None,
    }
}

fn scheduled(mut i: Invocation) -> Invocation {
    i.schedule = Some(crate::event::ScheduleName::parse("ks-test").unwrap());
    i
}

fn decide_at(invocation: &Invocation, s: &SecretState, now: i64) -> Decision {
    let p = policy();
    decide(&Input {
        invocation,
        secret: s,
        now: at(now),
        policy: &p,
        wait_budget_left: p.inline_budget,
    })
}

fn plan(d: Decision) -> Plan {
    match d {
        Decision::Apply(p) => p,
        other => panic!("expected a plan, got {other:?}"),
    }
}

fn label(stage: &str, to: Option<&VersionId>, from: Option<&VersionId>) -> Action {
    Action::Label(LabelMove {
        stage: stage.into(),
        move_to: to.cloned(),
        remove_from: from.cloned(),
    })
}

fn schedule(kind: FollowUpKind, token: char, due: i64) -> Action {
    Action::Schedule(FollowUp {
        kind,
        token: v(token),
        due: Due::At(at(due)),
    })
}

/// A schedule due T after the plan's earlier actions returned.
fn schedule_gap(kind: FollowUpKind, token: char) -> Action {
    Action::Schedule(FollowUp {
        kind,
        token: v(token),
        due: Due::GapAfterApply,
    })
}

/// The decision with a budget that fits T (an inline wait of the whole gap).
fn decide_with_budget(invocation: &Invocation, s: &SecretState, now: i64, budget: u64) -> Decision {
    let p = Policy::new(Duration::from_secs(T), Duration::from_secs(budget)).unwrap();
    decide(&Input {
        invocation,
        secret: s,
        now: at(now),
        policy: &p,
        wait_budget_left: p.inline_budget,
    })
}

fn release(r: &VersionId) -> FollowUpKind {
    FollowUpKind::Release { release: r.clone() }
}

fn swap(token: char, due: i64) -> Invocation {
    inv(Step::SwapPending { due: at(due) }, token)
}

fn remove_ev(release: &VersionId, due: i64) -> Invocation {
    inv(
        Step::RemovePending {
            due: at(due),
            release: release.clone(),
        },
        '2',
    )
}

const ENGINE_STEPS: [Step; 4] = [
    Step::CreateSecret,
    Step::SetSecret,
    Step::TestSecret,
    Step::FinishSecret,
];

/// K1 current since long ago, the engine's K2 pending with a value created at t=0.
fn mid_rotation() -> SecretState {
    secret(&[('1', &[AWSCURRENT], Some(-10_000)), ('2', &[AWSPENDING], Some(0))])
}

/// After the first follow-up: keyshift's copy of K2 (made at t=100) carries AWSPENDING.
fn copied() -> SecretState {
    let mut s = secret(&[('1', &[AWSCURRENT], Some(-10_000)), ('2', &[], Some(0))]);
    put(&mut s, copy('2', 100), &[AWSPENDING], Some(100));
    s
}

/// After the swap at t=800: the copy is current, K1 has ROTATING and a marker.
fn swapped() -> SecretState {
    let m = marker(800);
    let mut s = secret(&[
        ('1', &[AWSPREVIOUS, ROTATING, &m], Some(-10_000)),
        ('2', &[], Some(0)),
    ]);
    put(&mut s, copy('2', 100), &[AWSCURRENT], Some(100));
    s
}

// ---- AWS's template checks, on every engine step -------------------------------------

#[test]
fn engine_steps_refuse_a_secret_with_rotation_disabled_or_being_deleted() {
    let mut s = mid_rotation();
    s.rotation_enabled = false;
    let mut d = mid_rotation();
    d.deleted = true;
    for step in ENGINE_STEPS {
        assert_eq!(
            decide_at(&inv(step.clone(), '2'), &s, 1),
            Decision::Reject(Rejection::RotationDisabled)
        );
        assert_eq!(
            decide_at(&inv(step, '2'), &d, 1),
            Decision::Reject(Rejection::SecretDeleted)
        );
    }
}

#[test]
fn engine_steps_refuse_an_unknown_token() {
    for step in ENGINE_STEPS {
        assert_eq!(
            decide_at(&inv(step, '7'), &mid_rotation(), 1),
            Decision::Reject(Rejection::UnknownVersion { version: v('7') })
        );
    }
}

#[test]
fn engine_steps_succeed_doing_nothing_when_the_token_or_its_copy_is_current() {
    let plain = secret(&[('1', &[AWSPREVIOUS], Some(-100)), ('2', &[AWSCURRENT], Some(0))]);
    let mut ours = secret(&[('1', &[AWSPREVIOUS], Some(-100))]);
    put(&mut ours, copy('2', 100), &[AWSCURRENT, AWSPENDING], Some(100));
    for s in [plain, ours] {
        for step in ENGINE_STEPS {
            let p = plan(decide_at(&inv(step, '2'), &s, 1));
            assert_eq!(p.outcome, Outcome::AlreadyCurrent);
            assert!(p.actions.is_empty(), "{:?}", p.actions);
        }
    }
}

#[test]
fn engine_steps_refuse_a_token_without_awspending() {
    let s = secret(&[('1', &[AWSCURRENT], Some(-100)), ('2', &["OTHER"], Some(0))]);
    for step in ENGINE_STEPS {
        assert_eq!(
            decide_at(&inv(step, '2'), &s, 1),
            Decision::Reject(Rejection::NotPending { version: v('2') })
        );
    }
}

#[test]
fn create_fills_the_engines_value_less_placeholder_and_keeps_a_stored_value() {
    let s = secret(&[('1', &[AWSCURRENT], Some(-100)), ('2', &[AWSPENDING], None)]);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &s, 1));
    assert_eq!(p.actions, vec![Action::PutPending { version: v('2') }]);
    assert_eq!(p.outcome, Outcome::Created);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &mid_rotation(), 1));
    assert_eq!((p.actions, p.outcome), (vec![], Outcome::KeptExisting));
}

#[test]
fn create_refuses_a_secret_without_a_current_version() {
    let s = secret(&[('2', &[AWSPENDING], None)]);
    assert_eq!(
        decide_at(&inv(Step::CreateSecret, '2'), &s, 1),
        Decision::Reject(Rejection::NoCurrentVersion)
    );
}

#[test]
fn set_and_test_touch_only_the_target_of_the_pending_version_of_their_chain() {
    for (s, pending) in [(mid_rotation(), v('2')), (copied(), copy('2', 100))] {
        let p = plan(decide_at(&inv(Step::SetSecret, '2'), &s, 1));
        assert_eq!(
            p.actions,
            vec![Action::SetTarget {
                version: pending.clone()
            }]
        );
        let p = plan(decide_at(&inv(Step::TestSecret, '2'), &s, 1));
        assert_eq!(p.actions, vec![Action::TestTarget { version: pending }]);
    }
}

/// Engine steps decide from labels alone (one call): whether the token has a value is
/// the executor's to find out, by the write createSecret makes (refused for a second
/// value) and the read setSecret and testSecret make (none: fail, to be retried).
#[test]
fn engine_steps_decide_from_labels_without_knowing_whether_the_token_has_a_value() {
    let s = secret(&[('1', &[AWSCURRENT], None), ('2', &[AWSPENDING], None)]);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &s, 1));
    assert_eq!(p.actions, vec![Action::PutPending { version: v('2') }]);
    let p = plan(decide_at(&inv(Step::SetSecret, '2'), &s, 1));
    assert_eq!(p.actions, vec![Action::SetTarget { version: v('2') }]);
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &s, 1));
    assert_eq!(p.actions, vec![schedule(FollowUpKind::Swap, '2', 1)]);
    // A copy of the token is always written with its value: never written over.
    let mut s = secret(&[('1', &[AWSCURRENT], None), ('2', &[], None)]);
    put(&mut s, copy('2', 100), &[AWSPENDING], None);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &s, 1));
    assert_eq!((p.actions, p.outcome), (vec![], Outcome::KeptExisting));
}

/// The engine may abandon its rotation, or refuse the write, when a version with another
/// ClientRequestToken is written during it: finishSecret writes nothing and moves
/// nothing; it hands the rotation to a follow-up.
/// The watchdog's margin comes from configuration and T from a tag: a due time past
/// what a `Duration` sum can hold is the end of time, not a panic.
#[test]
fn the_watchdog_of_a_huge_margin_is_due_at_the_end_of_time() {
    let p = Policy::new(crate::policy::MAX_GAP, Duration::from_secs(BUDGET))
        .unwrap()
        .with_watchdog(Some(Duration::from_secs(u64::MAX)));
    let d = decide(&Input {
        invocation: &inv(Step::FinishSecret, '2'),
        secret: &mid_rotation(),
        now: at(1),
        policy: &p,
        wait_budget_left: p.inline_budget,
    });
    let watchdog = Action::Schedule(FollowUp {
        kind: FollowUpKind::Watchdog,
        token: v('2'),
        due: Due::At(Timestamp::from_millis(i64::MAX)),
    });
    assert_eq!(
        plan(d).actions,
        vec![schedule(FollowUpKind::Swap, '2', 1), watchdog]
    );
}

#[test]
fn finish_only_schedules_the_follow_up_that_copies_and_swaps() {
    for now in [1, 5_000] {
        let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &mid_rotation(), now));
        assert_eq!(p.actions, vec![schedule(FollowUpKind::Swap, '2', now)]);
        assert_eq!(p.outcome, Outcome::SwapScheduled { due: at(now) });
        assert_eq!(p.next, Next::Done);
    }
}

#[test]
fn create_and_finish_see_that_a_leftover_rotating_gets_released() {
    // K0 kept ROTATING (its release was lost); K1 is current; rotation K2 starts.
    let m = marker(-5_000);
    let s = secret(&[
        ('0', &[ROTATING, &m], Some(-20_000)),
        ('1', &[AWSCURRENT], Some(-10_000)),
        ('2', &[AWSPENDING], None),
    ]);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &s, 1));
    assert_eq!(
        p.actions,
        vec![
            Action::PutPending { version: v('2') },
            schedule(release(&v('0')), '1', -5_000 + T as i64),
        ]
    );
    // Without a marker, one is stamped first: the release is then T from now.
    let s = secret(&[
        ('0', &[ROTATING], Some(-20_000)),
        ('1', &[AWSCURRENT], Some(-10_000)),
        ('2', &[AWSPENDING], Some(0)),
    ]);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &s, 1));
    assert_eq!(p.actions, vec![Action::MarkSwap { version: v('0') }]);
    // testSecret has no side effect, even then.
    let p = plan(decide_at(&inv(Step::TestSecret, '2'), &s, 1));
    assert_eq!(p.actions, vec![Action::TestTarget { version: v('2') }]);
}

#[test]
fn finish_on_an_already_current_chain_takes_a_re_attached_awspending_off_the_engines_version() {
    let mut s = secret(&[('1', &[AWSPREVIOUS], Some(-100)), ('2', &[AWSPENDING], Some(0))]);
    put(&mut s, copy('2', 100), &[AWSCURRENT], Some(100));
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &s, 1_000));
    assert_eq!(p.actions, vec![label(AWSPENDING, None, Some(&v('2')))]);
    assert_eq!(p.outcome, Outcome::AlreadyCurrent);
    // setSecret leaves it alone.
    assert!(
        plan(decide_at(&inv(Step::SetSecret, '2'), &s, 1_000))
            .actions
            .is_empty()
    );
}

// ---- swapPending: the copy --------------------------------------------------------------

#[test]
fn the_first_follow_up_writes_keyshifts_copy_then_waits_out_t_or_schedules_the_swap_first() {
    let copy_action = Action::Copy {
        from: v('2'),
        to: copy('2', 60),
    };
    // T fits the budget: copy, then sleep T and decide again.
    let p = plan(decide_with_budget(&swap('2', 50), &mid_rotation(), 60, T));
    assert_eq!(p.actions, vec![copy_action.clone()]);
    assert!(matches!(p.outcome, Outcome::Copied { .. }));
    assert_eq!(p.next, Next::AfterGap);
    // It does not: the swap is scheduled first (the copy must never exist without a
    // follow-up to finish it), T after the copy.
    let p = plan(decide_at(&swap('2', 50), &mid_rotation(), 60));
    assert_eq!(
        p.actions,
        vec![schedule_gap(FollowUpKind::Swap, '2'), copy_action]
    );
    assert_eq!(p.next, Next::Done);
}

#[test]
fn a_copy_that_lost_awspending_is_copied_again_with_a_newer_generation() {
    // Stripped by the engine (or by hand).
    let mut s = copied();
    stages(&mut s, &copy('2', 100)).clear();
    let p = plan(decide_at(&swap('2', 100), &s, 200));
    assert_eq!(
        p.actions[1..],
        [Action::Copy {
            from: copy('2', 100),
            to: copy('2', 200)
        }]
    );
    // Even on a clock behind the copy's generation, the new one is newer.
    let p = plan(decide_at(&swap('2', 100), &s, 50));
    let Action::Copy { to, .. } = &p.actions[1] else {
        panic!("{:?}", p.actions)
    };
    assert!(to.copy_generation_of(&v('2')).unwrap() > copy('2', 100).copy_generation_of(&v('2')).unwrap());
}

#[test]
fn the_engines_own_version_is_never_promoted_even_when_re_attached() {
    // An engine retry moved AWSPENDING back to its token, off the copy.
    let mut s = copied();
    stages(&mut s, &v('2')).insert(AWSPENDING.into());
    stages(&mut s, &copy('2', 100)).clear();
    for now in [800, 10_000] {
        let p = plan(decide_at(&swap('2', 0), &s, now));
        assert!(
            matches!(&p.actions[..], [Action::Schedule(_), Action::Copy { to, .. }] if to.copy_generation_of(&v('2')).is_some()),
            "{:?}",
            p.actions
        );
    }
}

// ---- swapPending: the swap --------------------------------------------------------------

/// The swap (T does not fit the budget: the release is scheduled after it).
fn swap_actions(old: &VersionId, new: &VersionId) -> Vec<Action> {
    vec![
        label(ROTATING, Some(old), None),
        label(AWSCURRENT, Some(new), Some(old)),
        Action::MarkSwap { version: old.clone() },
        label(AWSPENDING, None, Some(new)),
        schedule_gap(release(old), '2'),
    ]
}

#[test]
fn the_swap_waits_for_the_copy_to_be_t_old_then_moves_labels_in_the_safe_order() {
    let s = copied();
    let due = 100 + T as i64;
    // Early by less than the budget: wait inline; by more: schedule.
    assert_eq!(
        decide_at(&swap('2', 0), &s, due - 100),
        Decision::WaitUntil(at(due))
    );
    let p = plan(decide_at(&swap('2', 0), &s, due - BUDGET as i64 - 1));
    assert_eq!(p.actions, vec![schedule(FollowUpKind::Swap, '2', due)]);
    assert_eq!(p.outcome, Outcome::Rescheduled { due: at(due) });
    // Due: ROTATING first, then AWSCURRENT, then the marker, then AWSPENDING off the
    // copy (which stays accepted through AWSCURRENT); the release T later.
    let p = plan(decide_at(&swap('2', 0), &s, due));
    assert_eq!(p.actions, swap_actions(&v('1'), &copy('2', 100)));
    assert_eq!((p.outcome, p.next), (Outcome::Swapped, Next::Done));
    // With T in the budget, the same invocation sleeps T and releases.
    let p = plan(decide_with_budget(&swap('2', 0), &s, due, T));
    assert_eq!(p.actions, swap_actions(&v('1'), &copy('2', 100))[..4].to_vec());
    assert_eq!(p.next, Next::AfterGap);
}

#[test]
fn a_due_in_the_event_only_delays_the_swap() {
    let s = copied();
    let own = 100 + T as i64;
    // An early DueAt (a hand-made or replayed event) changes nothing...
    assert_eq!(
        decide_at(&swap('2', -9_999), &s, own - 1),
        Decision::WaitUntil(at(own))
    );
    // ...a later one delays.
    assert_eq!(
        decide_at(&swap('2', own + 100), &s, own),
        Decision::WaitUntil(at(own + 100))
    );
}

#[test]
fn a_half_done_swap_is_finished_without_repeating_its_first_call() {
    let mut s = copied();
    stages(&mut s, &v('1')).insert(ROTATING.into());
    let p = plan(decide_at(&swap('2', 0), &s, 100 + T as i64));
    assert_eq!(p.actions, swap_actions(&v('1'), &copy('2', 100))[1..].to_vec());
}

#[test]
fn a_leftover_rotating_is_released_and_revoked_before_rotating_moves() {
    // K0 still has ROTATING from the rotation before (its release was lost), marked at
    // t=-5000: long due.
    let m0 = marker(-5_000);
    let mut s = copied();
    put(&mut s, v('0'), &[ROTATING, &m0], Some(-20_000));
    let p = plan(decide_at(&swap('2', 0), &s, 100 + T as i64));
    let mut expected = vec![
        Action::RevokeTarget { version: v('0') },
        label(ROTATING, None, Some(&v('0'))),
        label(&m0, None, Some(&v('0'))),
    ];
    expected.extend(swap_actions(&v('1'), &copy('2', 100)));
    assert_eq!(p.actions, expected);
    // K0 without a marker: stamp one first, and the swap waits for K0's release.
    let mut s = copied();
    put(&mut s, v('0'), &[ROTATING], Some(-20_000));
    let p = plan(decide_at(&swap('2', 0), &s, 100 + T as i64));
    assert_eq!(p.actions, vec![Action::MarkSwap { version: v('0') }]);
    let m0 = marker(700);
    stages(&mut s, &v('0')).insert(m0.clone());
    assert_eq!(
        decide_at(&swap('2', 0), &s, 1_100),
        Decision::WaitUntil(at(700 + T as i64))
    );
}

// ---- swapPending: standing down ---------------------------------------------------------

#[test]
fn a_stale_rotation_never_moves_awscurrent_back_nor_revokes_a_value_still_in_use() {
    // K2's rotation finished (its copy became current) and a newer rotation K3 did too:
    // K2's copy is in its second gap (ROTATING). An engine retry re-attached AWSPENDING
    // to K2, and an old swapPending of K2 arrives.
    let mut s = secret(&[
        ('1', &[], Some(-10_000)),
        ('2', &[AWSPENDING], Some(0)),
        ('3', &[AWSCURRENT], Some(5_000)),
    ]);
    put(&mut s, copy('2', 100), &[ROTATING, AWSPREVIOUS], Some(100));
    let p = plan(decide_at(&swap('2', 0), &s, 6_000));
    assert_eq!(p.actions, vec![label(AWSPENDING, None, Some(&v('2')))]);
    assert_eq!(p.outcome, Outcome::Superseded { by: v('3') });
    // An operator wrote a new AWSCURRENT by hand mid-rotation: this rotation's value was
    // never used, so it stands down and revokes it.
    let mut s = copied();
    put(&mut s, v('9'), &[AWSCURRENT], Some(300));
    *stages(&mut s, &v('1')) = [AWSPREVIOUS.to_string()].into();
    let p = plan(decide_at(&swap('2', 0), &s, 900));
    assert_eq!(
        p.actions,
        vec![
            Action::RevokeTarget {
                version: copy('2', 100)
            },
            label(AWSPENDING, None, Some(&copy('2', 100))),
        ]
    );
    assert_eq!(p.outcome, Outcome::Superseded { by: v('9') });
}

#[test]
fn a_rotation_older_than_the_current_value_stands_down_whatever_its_copy_s_age() {
    // Rotation 2 stored its value (t=0) before an emergency wrote its own (t=50); its copy
    // was stripped and written again (t=200) while the emergency waited for its gap, then
    // the emergency cut over. The new copy is younger than the emergency's version; its
    // value is not, and must never be promoted over it.
    let k1 = v('1');
    let e = k1.emergency();
    let mut s = secret(&[('1', &[AWSPREVIOUS], Some(-10_000)), ('2', &[], Some(0))]);
    put(&mut s, e.clone(), &[AWSCURRENT], Some(50));
    put(&mut s, copy('2', 200), &[AWSPENDING], Some(200));
    let p = plan(decide_at(&swap('2', 0), &s, 200 + T as i64));
    assert_eq!(p.outcome, Outcome::Superseded { by: e }, "{:?}", p.actions);
    // The same with a routine rotation 3 (value stored at t=50, current through its copy
    // made at t=60) in place of the emergency.
    let mut s = secret(&[
        ('1', &[AWSPREVIOUS], Some(-10_000)),
        ('2', &[], Some(0)),
        ('3', &[], Some(50)),
    ]);
    put(&mut s, copy('3', 60), &[AWSCURRENT], Some(60));
    put(&mut s, copy('2', 200), &[AWSPENDING], Some(200));
    let p = plan(decide_at(&swap('2', 0), &s, 200 + T as i64));
    assert_eq!(
        p.outcome,
        Outcome::Superseded { by: copy('3', 60) },
        "{:?}",
        p.actions
    );
}

#[test]
fn a_rotation_taken_over_stands_down_and_revokes_its_never_used_value() {
    // A newer rotation's placeholder holds AWSPENDING (this one's was stripped).
    let mut s = copied();
    stages(&mut s, &copy('2', 100)).clear();
    put(&mut s, v('3'), &[AWSPENDING], None);
    let p = plan(decide_at(&swap('2', 0), &s, 900));
    assert_eq!(
        p.actions,
        vec![Action::RevokeTarget {
            version: copy('2', 100)
        }]
    );
    assert_eq!(p.outcome, Outcome::Superseded { by: v('3') });
}

/// AWS's engine abandons a rotation when a version is written during it; keyshift's
/// follow-ups run after the engine's rotation, and a version an operator writes with a
/// label of its own (a note, a backup) takes nothing over: the rotation goes on.
#[test]
fn an_operators_note_written_mid_rotation_does_not_stop_it() {
    let mut s = copied();
    put(&mut s, v('9'), &["OPS_NOTE"], Some(300));
    let p = plan(decide_at(&swap('2', 0), &s, 100 + T as i64));
    assert_eq!(p.outcome, Outcome::Swapped, "{:?}", p.actions);
}

#[test]
fn disabled_before_the_swap_abandons_cleanly_after_it_still_releases_after_t() {
    let mut s = copied();
    s.rotation_enabled = false;
    let p = plan(decide_at(&scheduled(swap('2', 0)), &s, 900));
    assert_eq!(
        p.actions,
        vec![
            Action::RevokeTarget {
                version: copy('2', 100)
            },
            label(AWSPENDING, None, Some(&copy('2', 100))),
        ]
    );
    assert_eq!(p.outcome, Outcome::Abandoned);
    // After the swap: the release waits for its marker + T, then happens.
    let mut s = swapped();
    s.rotation_enabled = false;
    assert_eq!(
        decide_at(&swap('2', 0), &s, 1_200),
        Decision::WaitUntil(at(800 + T as i64))
    );
    let p = plan(decide_at(&swap('2', 0), &s, 800 + T as i64));
    assert_eq!(p.outcome, Outcome::Released);
}

#[test]
fn follow_ups_for_a_deleted_secret_end_quietly() {
    for s in [copied(), swapped()] {
        let mut s = s;
        s.deleted = true;
        for i in [swap('2', 0), remove_ev(&v('1'), 0)] {
            let p = plan(decide_at(&i, &s, 5_000));
            assert_eq!((p.actions, p.outcome), (vec![], Outcome::SecretGone));
        }
    }
}

#[test]
fn a_scheduled_follow_up_for_a_vanished_version_is_stale_a_hand_made_one_is_refused() {
    let s = mid_rotation();
    let p = plan(decide_at(&scheduled(swap('7', 0)), &s, 1));
    assert_eq!(p.outcome, Outcome::Vanished { version: v('7') });
    assert_eq!(
        decide_at(&swap('7', 0), &s, 1),
        Decision::Reject(Rejection::UnknownVersion { version: v('7') })
    );
    assert_eq!(
        decide_at(&remove_ev(&v('7'), 0), &s, 1),
        Decision::Reject(Rejection::UnknownVersion { version: v('7') })
    );
}

// ---- the release ------------------------------------------------------------------------

#[test]
fn after_the_swap_the_same_follow_up_releases_t_after_the_marker() {
    let s = swapped();
    let due = 800 + T as i64;
    assert_eq!(decide_at(&swap('2', 0), &s, 1_200), Decision::WaitUntil(at(due)));
    let p = plan(decide_at(&swap('2', 0), &s, due));
    assert_eq!(
        p.actions,
        vec![
            Action::RevokeTarget { version: v('1') },
            label(ROTATING, None, Some(&v('1'))),
            label(&marker(800), None, Some(&v('1'))),
        ]
    );
    assert_eq!((p.outcome, p.next), (Outcome::Released, Next::Done));
}

/// The hand-made (or replayed) early removePending of the README, with a DueAt long past,
/// in every phase of a rotation: it never releases ROTATING before T after the swap.
#[test]
fn a_hand_made_early_remove_pending_never_releases_early_in_any_phase() {
    let past = -1_000_000;
    // Idle, and before the swap: nothing carries ROTATING.
    for s in [
        secret(&[('1', &[AWSCURRENT], Some(-10_000))]),
        mid_rotation(),
        copied(),
    ] {
        let p = plan(decide_at(&remove_ev(&v('1'), past), &s, 900));
        assert_eq!((p.actions, p.outcome), (vec![], Outcome::AlreadyReleased));
    }
    // Mid-swap: ROTATING on the still-current version.
    let mut s = copied();
    stages(&mut s, &v('1')).insert(ROTATING.into());
    let p = plan(decide_at(&remove_ev(&v('1'), past), &s, 900));
    assert_eq!((p.actions, p.outcome), (vec![], Outcome::AlreadyReleased));
    // Second gap: the marker, not the payload, times it.
    let s = swapped();
    for now in [800, 801, 1_000, 800 + T as i64 - 1] {
        match decide_at(&remove_ev(&v('1'), past), &s, now) {
            Decision::WaitUntil(t) => assert_eq!(t, at(800 + T as i64)),
            Decision::Apply(p) => assert_eq!(
                p.outcome,
                Outcome::Rescheduled {
                    due: at(800 + T as i64)
                }
            ),
            other => panic!("{other:?}"),
        }
    }
    // Between the AWSCURRENT move and the marker: a marker stamped now, then T more.
    let mut s = swapped();
    stages(&mut s, &v('1')).remove(&marker(800));
    let p = plan(decide_at(&remove_ev(&v('1'), past), &s, 805));
    assert_eq!(p.actions, vec![Action::MarkSwap { version: v('1') }]);
    // After T: released.
    let p = plan(decide_at(&remove_ev(&v('1'), past), &swapped(), 800 + T as i64));
    assert_eq!(p.outcome, Outcome::Released);
}

#[test]
fn the_latest_marker_times_the_release() {
    let mut s = swapped();
    stages(&mut s, &v('1')).insert(marker(900));
    assert_eq!(
        decide_at(&remove_ev(&v('1'), 0), &s, 800 + T as i64),
        Decision::WaitUntil(at(900 + T as i64))
    );
}

#[test]
fn a_remove_long_before_its_due_reschedules_itself() {
    let s = swapped();
    let p = plan(decide_at(
        &remove_ev(&v('1'), 0),
        &s,
        800 + T as i64 - BUDGET as i64 - 1,
    ));
    assert_eq!(p.actions, vec![schedule(release(&v('1')), '2', 800 + T as i64)]);
}

#[test]
fn remove_with_rotation_disabled_still_releases_after_t() {
    let mut s = swapped();
    s.rotation_enabled = false;
    assert_eq!(
        decide_at(&remove_ev(&v('1'), 0), &s, 1_200),
        Decision::WaitUntil(at(800 + T as i64))
    );
    let p = plan(decide_at(&remove_ev(&v('1'), 0), &s, 800 + T as i64));
    assert_eq!(p.outcome, Outcome::Released);
}

#[test]
fn a_release_drops_the_cancel_marker_of_an_older_value_but_keeps_a_placeholder_s() {
    // Rotations 3 and 4 were cancelled (t=500, before this swap at t=800): 3 had stored
    // its value (t=400), older than the one now in use, so its late steps find themselves
    // stale and its marker can go. 4 was cancelled while its createSecret had not stored
    // anything: an engine retry of it would store a value newer than the current one, so
    // only its marker keeps it from resuming, and it stays.
    let mut s = swapped();
    let cancelled = crate::secret::cancel_marker(at(500));
    put(&mut s, v('3'), &[&cancelled], Some(400));
    put(&mut s, v('4'), &[&cancelled], None);
    assert!(
        needs_full(&remove_ev(&v('1'), 0), &s),
        "dates are needed to tell them apart"
    );
    let p = plan(decide_at(&remove_ev(&v('1'), 0), &s, 800 + T as i64));
    assert_eq!(p.outcome, Outcome::Released);
    assert!(
        p.actions.contains(&label(&cancelled, None, Some(&v('3')))),
        "{:?}",
        p.actions
    );
    assert!(
        !p.actions.contains(&label(&cancelled, None, Some(&v('4')))),
        "{:?}",
        p.actions
    );
}

#[test]
fn a_release_that_stopped_half_way_has_its_marker_tidied() {
    let mut s = swapped();
    stages(&mut s, &v('1')).remove(ROTATING);
    let p = plan(decide_at(&remove_ev(&v('1'), 0), &s, 5_000));
    assert_eq!(p.actions, vec![label(&marker(800), None, Some(&v('1')))]);
    assert_eq!(p.outcome, Outcome::AlreadyReleased);
}

#[test]
fn after_the_swap_a_re_attached_awspending_is_tidied_before_the_release() {
    let mut s = swapped();
    stages(&mut s, &v('2')).insert(AWSPENDING.into());
    stages(&mut s, &copy('2', 100)).remove(AWSPENDING);
    let p = plan(decide_at(&swap('2', 0), &s, 1_200));
    assert_eq!(p.actions, vec![label(AWSPENDING, None, Some(&v('2')))]);
    assert_eq!((p.outcome, p.next), (Outcome::Tidied, Next::Decide));
}

#[test]
fn outcomes_read_as_sentences() {
    let all = [
        Outcome::Created,
        Outcome::KeptExisting,
        Outcome::TargetSet,
        Outcome::Tested,
        Outcome::AlreadyCurrent,
        Outcome::Swapped,
        Outcome::SwapScheduled { due: at(0) },
        Outcome::Rescheduled { due: at(0) },
        Outcome::Copied { new_version: v('2') },
        Outcome::Marked,
        Outcome::Tidied,
        Outcome::Released,
        Outcome::AlreadyReleased,
        Outcome::Superseded { by: v('3') },
        Outcome::Vanished { version: v('3') },
        Outcome::Abandoned,
        Outcome::SecretGone,
    ];
    for o in &all {
        let text = o.to_string();
        assert!(text.len() > 10 && !text.contains("{"), "{text}");
    }
}

/// Re-issues used to be a chain of hashes walked at most 32 steps: after 32 of them the
/// head was misread as another rotation's version and nothing ever swapped. A copy's id
/// carries its token and generation now, so any number of copies (deleted ones in the
/// middle included) is read in one pass.
#[test]
fn any_number_of_copies_is_read_without_a_cap() {
    let mut s = secret(&[('1', &[AWSCURRENT], Some(-10_000)), ('2', &[], Some(0))]);
    for n in 1..=100 {
        if n % 7 != 0 {
            // Every seventh copy was deleted (deprecated versions are purged).
            put(&mut s, copy('2', n), &[], Some(n));
        }
    }
    put(&mut s, copy('2', 101), &[AWSPENDING], Some(101));
    let p = plan(decide_at(&swap('2', 0), &s, 101 + T as i64));
    assert_eq!(p.outcome, Outcome::Swapped, "{:?}", p.actions);
    assert_eq!(
        p.actions[1],
        label(AWSCURRENT, Some(&copy('2', 101)), Some(&v('1')))
    );
    // None of them carries AWSPENDING any more: the next copy is newer than all.
    stages(&mut s, &copy('2', 101)).clear();
    let p = plan(decide_at(&swap('2', 0), &s, 50));
    let Some(Action::Copy { from, to }) = p.actions.iter().find(|a| matches!(a, Action::Copy { .. })) else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(from, &copy('2', 101));
    assert_eq!(
        to.copy_generation_of(&v('2')),
        copy('2', 101).copy_generation_of(&v('2')).map(|g| g + 1)
    );
}

#[test]
fn a_swap_that_stopped_after_awscurrent_moved_takes_awspending_off_the_copy_first() {
    let mut s = swapped();
    stages(&mut s, &copy('2', 100)).insert(AWSPENDING.into());
    let p = plan(decide_at(&swap('2', 0), &s, 1_200));
    assert_eq!(p.actions, vec![label(AWSPENDING, None, Some(&copy('2', 100)))]);
    assert_eq!((p.outcome, p.next), (Outcome::Tidied, Next::Decide));
}

// ---- replicated secrets -----------------------------------------------------------------

use crate::secret::{Replica, ReplicaStatus, accepted_marker};

/// `s` with one replica Region showing `lagging` labels (None: caught up).
fn replicated(mut s: SecretState, status: ReplicaStatus, stages: Option<SecretState>) -> SecretState {
    let stages = Some(stages.unwrap_or_else(|| s.clone()).labels());
    s.replicas = vec![Replica {
        region: "eu-west-1".into(),
        status,
        stages,
    }];
    s
}

#[test]
fn no_label_moves_while_a_replica_has_not_caught_up() {
    // The primary has the copy with AWSPENDING; the replica still shows the state before.
    let behind = replicated(copied(), ReplicaStatus::InSync, Some(mid_rotation()));
    assert_eq!(
        decide_at(&swap('2', 0), &behind, 5_000),
        Decision::WaitUntil(at(5_000).plus(REPLICA_POLL))
    );
    let in_progress = replicated(copied(), ReplicaStatus::InProgress, None);
    assert_eq!(
        decide_at(&swap('2', 0), &in_progress, 5_000),
        Decision::WaitUntil(at(5_000).plus(REPLICA_POLL))
    );
    // Without budget left: rescheduled, nothing moved.
    let p = plan(decide(&Input {
        invocation: &swap('2', 0),
        secret: &behind,
        now: at(5_000),
        policy: &policy(),
        wait_budget_left: Duration::ZERO,
    }));
    assert!(matches!(p.outcome, Outcome::Rescheduled { .. }), "{p:?}");
    assert!(p.actions.iter().all(|a| matches!(a, Action::Schedule(_))));
    // The release waits for the replicas too.
    let behind = replicated(swapped(), ReplicaStatus::InProgress, None);
    assert_eq!(
        decide_at(&remove_ev(&v('1'), 0), &behind, 5_000),
        Decision::WaitUntil(at(5_000).plus(REPLICA_POLL))
    );
}

#[test]
fn the_first_gap_of_a_replicated_secret_counts_from_the_accepted_marker() {
    let s = replicated(copied(), ReplicaStatus::InSync, None);
    // Caught up: stamp the accepted marker first.
    let p = plan(decide_at(&swap('2', 0), &s, 300));
    assert_eq!(
        p.actions,
        vec![Action::MarkAccepted {
            version: copy('2', 100)
        }]
    );
    assert_eq!((p.outcome, p.next), (Outcome::AcceptedEverywhere, Next::Decide));
    // Marked at 300: the swap is due at 300 + T, not 100 + T.
    let mut s = copied();
    stages(&mut s, &copy('2', 100)).insert(accepted_marker(at(300)));
    let s = replicated(s, ReplicaStatus::InSync, None);
    assert_eq!(
        decide_at(&swap('2', 0), &s, 100 + T as i64),
        Decision::WaitUntil(at(300 + T as i64))
    );
    // Then one label move per decision, each after the replicas caught up.
    let p = plan(decide_at(&swap('2', 0), &s, 300 + T as i64));
    assert_eq!(p.actions, vec![label(ROTATING, Some(&v('1')), None)]);
    assert_eq!((p.outcome, p.next), (Outcome::Moved, Next::Decide));
}

#[test]
fn engine_steps_of_a_replicated_secret_leave_label_moves_to_the_follow_ups() {
    let mut s = secret(&[('1', &[AWSPREVIOUS], Some(-100)), ('2', &[AWSPENDING], Some(0))]);
    put(&mut s, copy('2', 100), &[AWSCURRENT], Some(100));
    let s = replicated(s, ReplicaStatus::InProgress, None);
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &s, 1_000));
    // The stray AWSPENDING on the engine's version is left to a follow-up, which waits
    // until the replica caught up.
    assert_eq!(
        (p.actions, p.outcome),
        (
            vec![schedule(FollowUpKind::Swap, '2', 1_000)],
            Outcome::AlreadyCurrent
        )
    );
    // And that follow-up takes it off once the replica shows the last move.
    let caught_up = replicated(
        {
            let mut s = secret(&[('1', &[AWSPREVIOUS], Some(-100)), ('2', &[AWSPENDING], Some(0))]);
            put(&mut s, copy('2', 100), &[AWSCURRENT], Some(100));
            s
        },
        ReplicaStatus::InSync,
        None,
    );
    let p = plan(decide_at(&swap('2', 0), &caught_up, 1_000));
    assert_eq!(p.actions, vec![label(AWSPENDING, None, Some(&v('2')))]);
}
