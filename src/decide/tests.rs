//! One test per rule of the core. The states are built by hand, label by label, so each
//! test reads as the situation it covers.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::secret::{AWSPREVIOUS, SecretId, VersionInfo};

const T: u64 = 600;
const BUDGET: u64 = 300;

fn v(n: char) -> VersionId {
    VersionId::new(n.to_string().repeat(32))
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
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
        s.versions.insert(
            v(*id),
            VersionInfo {
                stages: stages.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>(),
                created: created.map(at),
            },
        );
    }
    s
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

fn label(stage: &str, to: Option<char>, from: Option<char>) -> Action {
    Action::Label(LabelMove {
        stage: stage.into(),
        move_to: to.map(v),
        remove_from: from.map(v),
    })
}

fn schedule(kind: FollowUpKind, token: char, due: Due) -> Action {
    Action::Schedule(FollowUp {
        kind,
        token: v(token),
        due,
    })
}

fn release(r: char) -> FollowUpKind {
    FollowUpKind::Release { release: v(r) }
}

const ENGINE_STEPS: [Step; 4] = [
    Step::CreateSecret,
    Step::SetSecret,
    Step::TestSecret,
    Step::FinishSecret,
];

/// K1 current since long ago, K2 pending with a value created at t=0.
fn mid_rotation() -> SecretState {
    secret(&[('1', &[AWSCURRENT], Some(-10_000)), ('2', &[AWSPENDING], Some(0))])
}

// ---- AWS's template checks, on every engine step -------------------------------------

#[test]
fn engine_steps_refuse_a_secret_with_rotation_disabled() {
    let mut s = mid_rotation();
    s.rotation_enabled = false;
    for step in ENGINE_STEPS {
        assert_eq!(
            decide_at(&inv(step, '2'), &s, 1),
            Decision::Reject(Rejection::RotationDisabled)
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
fn engine_steps_succeed_doing_nothing_when_the_token_is_already_current() {
    let s = secret(&[('1', &[AWSPREVIOUS], Some(-100)), ('2', &[AWSCURRENT], Some(0))]);
    for step in ENGINE_STEPS {
        let p = plan(decide_at(&inv(step, '2'), &s, 5));
        assert_eq!(p.outcome, Outcome::AlreadyCurrent);
        assert!(p.actions.is_empty());
    }
}

#[test]
fn engine_steps_refuse_a_token_without_awspending() {
    let s = secret(&[('1', &[AWSCURRENT], Some(-100)), ('2', &["CUSTOM"], Some(0))]);
    for step in [Step::CreateSecret, Step::SetSecret, Step::TestSecret] {
        assert_eq!(
            decide_at(&inv(step, '2'), &s, 5),
            Decision::Reject(Rejection::NotPending { version: v('2') })
        );
    }
}

// ---- createSecret ---------------------------------------------------------------------

#[test]
fn create_fills_the_engines_value_less_placeholder() {
    let s = secret(&[('1', &[AWSCURRENT], Some(-100)), ('2', &[AWSPENDING], None)]);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &s, 0));
    assert_eq!(p.outcome, Outcome::Created);
    assert_eq!(p.actions, vec![Action::PutPending { version: v('2') }]);
}

#[test]
fn create_keeps_a_value_already_stored_for_the_token() {
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &mid_rotation(), 3));
    assert_eq!((p.outcome, p.actions), (Outcome::KeptExisting, vec![]));
}

#[test]
fn finish_reissues_the_engines_version_before_anything_else() {
    // However old K2's value is, the engine may have re-attached AWSPENDING to it just
    // now: finishSecret copies it to keyshift's own version and swaps that one later.
    let k2r = v('2').reissue();
    for now in [1, 600, 50_000] {
        let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &mid_rotation(), now));
        assert_eq!(
            p.outcome,
            Outcome::Reissued {
                new_version: k2r.clone()
            }
        );
        assert_eq!(
            p.actions,
            vec![
                schedule(FollowUpKind::Swap, '2', Due::GapAfterApply),
                Action::Reissue {
                    from: v('2'),
                    to: k2r.clone()
                },
            ]
        );
    }
}

/// `s` with AWSPENDING moved from `from` to its re-issue, created at `created`.
fn with_reissue(mut s: SecretState, from: char, created: i64) -> SecretState {
    if let Some(info) = s.versions.get_mut(&v(from)) {
        info.stages.remove(AWSPENDING);
    }
    s.versions.insert(
        v(from).reissue(),
        VersionInfo {
            stages: [AWSPENDING.to_string()].into(),
            created: Some(at(created)),
        },
    );
    s
}

/// K1 current, K2 (created at 0) re-issued as K2' (pending, created at 100).
fn reissued() -> SecretState {
    with_reissue(mid_rotation(), '2', 100)
}

#[test]
fn engine_steps_act_on_the_newest_reissue_of_their_token() {
    let head = v('2').reissue();
    let set = plan(decide_at(&inv(Step::SetSecret, '2'), &reissued(), 101));
    assert_eq!(
        set.actions,
        vec![Action::SetTarget {
            version: head.clone()
        }]
    );
    let test = plan(decide_at(&inv(Step::TestSecret, '2'), &reissued(), 101));
    assert_eq!(
        test.actions,
        vec![Action::TestTarget {
            version: head.clone()
        }]
    );
    // The gap runs from the re-issue's creation (100 + 600), not from K2's (0 + 600).
    assert_eq!(
        decide_at(&inv(Step::FinishSecret, '2'), &reissued(), 650),
        Decision::WaitUntil(at(700))
    );
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &reissued(), 700));
    assert_eq!(p.actions, swap_actions_to('1', &head));
    // A retried createSecret keeps the head's value.
    let again = plan(decide_at(&inv(Step::CreateSecret, '2'), &reissued(), 120));
    assert_eq!((again.outcome, again.actions), (Outcome::KeptExisting, vec![]));
}

#[test]
fn engine_steps_on_a_stale_token_never_move_awscurrent_back() {
    // Rotation 0's engine retry re-attached AWSPENDING to K2, long after K3 (a later
    // rotation) became current: K2 must not become current again.
    let s = secret(&[
        ('1', &[], Some(-10_000)),
        ('2', &[AWSPENDING], Some(-5_000)),
        ('3', &[AWSCURRENT], Some(-1_000)),
    ]);
    for step in [Step::CreateSecret, Step::FinishSecret] {
        let p = plan(decide_at(&inv(step, '2'), &s, 0));
        assert_eq!(p.outcome, Outcome::Superseded { by: v('3') });
        assert_eq!(p.actions, vec![label(AWSPENDING, None, Some('2'))]);
    }
    for step in [Step::SetSecret, Step::TestSecret] {
        let p = plan(decide_at(&inv(step.clone(), '2'), &s, 0));
        assert_eq!(p.outcome, Outcome::Superseded { by: v('3') });
        assert!(p.actions.is_empty(), "{} has no side effects", step.name());
    }
    // The same for a follow-up.
    let p = plan(decide_at(&swap('2', -4_000), &s, 0));
    assert_eq!(
        (p.outcome, p.actions),
        (
            Outcome::Superseded { by: v('3') },
            vec![label(AWSPENDING, None, Some('2'))]
        )
    );
}

#[test]
fn finish_recovers_when_its_token_was_stripped_during_the_wait() {
    // The inline wait ended; AWSPENDING is gone from K2. Succeed with a re-issue, or the
    // engine would retry and re-attach AWSPENDING to K2 with no gap.
    let s = secret(&[('1', &[AWSCURRENT], Some(-5_000)), ('2', &[], Some(0))]);
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &s, 600));
    assert!(matches!(p.outcome, Outcome::Reissued { .. }), "{p:?}");
}

#[test]
fn create_refuses_a_secret_without_a_current_version() {
    let s = secret(&[('2', &[AWSPENDING], None)]);
    assert_eq!(
        decide_at(&inv(Step::CreateSecret, '2'), &s, 0),
        Decision::Reject(Rejection::NoCurrentVersion)
    );
}

#[test]
fn create_schedules_the_release_of_a_leftover_rotating() {
    // K0 kept ROTATING (its removePending was lost); K1 is current; K2 is the new pending.
    let s = secret(&[
        ('0', &[AWSPREVIOUS, ROTATING], Some(-9_000)),
        ('1', &[AWSCURRENT], Some(-5_000)),
        ('2', &[AWSPENDING], None),
    ]);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &s, 0));
    assert_eq!(
        p.actions,
        vec![
            Action::PutPending { version: v('2') },
            schedule(release('0'), '1', Due::GapAfterApply),
        ]
    );
}

// ---- setSecret / testSecret -----------------------------------------------------------

#[test]
fn set_and_test_touch_only_the_target() {
    let s = secret(&[
        ('0', &[AWSPREVIOUS, ROTATING], Some(-9_000)),
        ('1', &[AWSCURRENT], Some(-5_000)),
        ('2', &[AWSPENDING], Some(0)),
    ]);
    let set = plan(decide_at(&inv(Step::SetSecret, '2'), &s, 1));
    assert_eq!(
        (set.outcome, set.actions),
        (Outcome::TargetSet, vec![Action::SetTarget { version: v('2') }])
    );
    let test = plan(decide_at(&inv(Step::TestSecret, '2'), &s, 1));
    assert_eq!(
        (test.outcome, test.actions),
        (Outcome::Tested, vec![Action::TestTarget { version: v('2') }])
    );
}

#[test]
fn set_and_test_refuse_a_placeholder_without_value() {
    let s = secret(&[('1', &[AWSCURRENT], Some(-100)), ('2', &[AWSPENDING], None)]);
    for step in [Step::SetSecret, Step::TestSecret, Step::FinishSecret] {
        assert_eq!(
            decide_at(&inv(step, '2'), &s, 1),
            Decision::Reject(Rejection::PendingValueMissing { version: v('2') })
        );
    }
}

// ---- finishSecret: inline and deferred ------------------------------------------------

fn swap_actions_to(old: char, new: &VersionId) -> Vec<Action> {
    vec![
        label(ROTATING, Some(old), None),
        Action::Label(LabelMove {
            stage: AWSCURRENT.into(),
            move_to: Some(new.clone()),
            remove_from: Some(v(old)),
        }),
        Action::Label(LabelMove {
            stage: AWSPENDING.into(),
            move_to: None,
            remove_from: Some(new.clone()),
        }),
        Action::Schedule(FollowUp {
            kind: release(old),
            token: new.clone(),
            due: Due::GapAfterApply,
        }),
    ]
}

#[test]
fn finish_waits_inline_when_the_rest_of_the_gap_fits_the_budget() {
    // K2' created at 100, T = 600 s, budget 300 s: at 400 s the 300 s left fit.
    assert_eq!(
        decide_at(&inv(Step::FinishSecret, '2'), &reissued(), 400),
        Decision::WaitUntil(at(700))
    );
}

#[test]
fn finish_defers_the_swap_when_the_rest_does_not_fit() {
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &reissued(), 399));
    assert_eq!(p.outcome, Outcome::SwapScheduled { due: at(700) });
    // The follow-up names the engine's token; it acts on the token's re-issue chain.
    assert_eq!(
        p.actions,
        vec![schedule(FollowUpKind::Swap, '2', Due::At(at(700)))]
    );
}

#[test]
fn finish_swaps_at_once_when_the_gap_is_over_in_the_safe_order() {
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &reissued(), 700));
    assert_eq!(p.outcome, Outcome::Swapped);
    assert_eq!(p.actions, swap_actions_to('1', &v('2').reissue()));
}

#[test]
fn finish_honours_the_remaining_budget_not_the_configured_one() {
    let p = policy();
    let i = inv(Step::FinishSecret, '2');
    let s = reissued();
    let d = decide(&Input {
        invocation: &i,
        secret: &s,
        now: at(600),
        policy: &p,
        wait_budget_left: Duration::from_secs(50),
    });
    assert!(matches!(
        d,
        Decision::Apply(Plan {
            outcome: Outcome::SwapScheduled { .. },
            ..
        })
    ));
}

#[test]
fn the_swap_moves_a_leftover_rotating_onto_the_old_current() {
    let s = secret(&[
        ('0', &[ROTATING], Some(-9_000)),
        ('1', &[AWSCURRENT, AWSPREVIOUS], Some(-5_000)),
        ('2', &[AWSPENDING], Some(0)),
    ]);
    let s = with_reissue(s, '2', 10);
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &s, 611));
    let mut expected = swap_actions_to('1', &v('2').reissue());
    expected[0] = label(ROTATING, Some('1'), Some('0'));
    assert_eq!(p.actions, expected);
}

#[test]
fn the_swap_keeps_rotating_already_on_the_old_current() {
    // A swap that stopped after its first call: ROTATING is on K1, which is still current.
    let s = secret(&[
        ('1', &[AWSCURRENT, ROTATING], Some(-5_000)),
        ('2', &[AWSPENDING], Some(0)),
    ]);
    let s = with_reissue(s, '2', 0);
    let p = plan(decide_at(&swap('2', 600), &s, 601));
    assert_eq!(p.actions[..], swap_actions_to('1', &v('2').reissue())[1..]);
}

// ---- swapPending ----------------------------------------------------------------------

fn swap(token: char, due: i64) -> Invocation {
    inv(Step::SwapPending { due: at(due) }, token)
}

#[test]
fn follow_ups_abandon_quietly_when_rotation_was_disabled() {
    let mut s = mid_rotation();
    s.rotation_enabled = false;
    for i in [
        swap('2', 600),
        inv(
            Step::RemovePending {
                due: at(600),
                release: v('1'),
            },
            '2',
        ),
    ] {
        let p = plan(decide_at(&i, &s, 700));
        assert_eq!((p.outcome, p.actions), (Outcome::Abandoned, vec![]));
    }
}

#[test]
fn swap_arriving_early_waits_a_short_remainder_and_reschedules_a_long_one() {
    // K2' was created at 100: due at 700.
    assert_eq!(
        decide_at(&swap('2', 700), &reissued(), 640),
        Decision::WaitUntil(at(700))
    );
    let p = plan(decide_at(&swap('2', 700), &reissued(), 200));
    assert_eq!(p.outcome, Outcome::Rescheduled { due: at(700) });
    assert_eq!(
        p.actions,
        vec![schedule(FollowUpKind::Swap, '2', Due::At(at(700)))]
    );
}

#[test]
fn swap_due_is_never_earlier_than_the_versions_own_age_allows() {
    // A hand-made or corrupted event claims the swap was due at 10 s: the re-issue,
    // created at 100, must still be accepted for T = 600 s first.
    assert_eq!(
        decide_at(&swap('2', 10), &reissued(), 500),
        Decision::WaitUntil(at(700))
    );
    // A later event due only delays.
    assert_eq!(
        decide_at(&swap('2', 800), &reissued(), 750),
        Decision::WaitUntil(at(800))
    );
}

#[test]
fn swap_when_due_follows_the_safe_order() {
    let p = plan(decide_at(&swap('2', 700), &reissued(), 700));
    assert_eq!(
        (p.outcome, p.actions),
        (Outcome::Swapped, swap_actions_to('1', &v('2').reissue()))
    );
}

#[test]
fn swap_never_promotes_the_engines_own_version() {
    // A swapPending for K2 that finds AWSPENDING on K2 itself (no re-issue yet, or the
    // re-issue's write was lost): its age says nothing about when the label came back,
    // so it is re-issued rather than swapped, however overdue.
    let p = plan(decide_at(&swap('2', 600), &mid_rotation(), 5_000));
    assert_eq!(
        p.outcome,
        Outcome::Reissued {
            new_version: v('2').reissue()
        }
    );
}

#[test]
fn a_retry_that_re_attached_the_engines_version_restarts_the_gap() {
    // The minimal case the property tests found: K2' (the re-issue) was stripped, and an
    // engine retry put AWSPENDING back on K2 at an unknown moment. Neither K2's age nor
    // K2''s counts: the value is re-issued again, as K2'', from the newest copy.
    let mut s = secret(&[('1', &[AWSCURRENT], Some(-5_000)), ('2', &[AWSPENDING], Some(0))]);
    s.versions.insert(
        v('2').reissue(),
        VersionInfo {
            stages: BTreeSet::new(),
            created: Some(at(10)),
        },
    );
    let k2r = v('2').reissue();
    let k2rr = k2r.reissue();
    for i in [swap('2', 610), inv(Step::FinishSecret, '2')] {
        let p = plan(decide_at(&i, &s, 700));
        assert_eq!(
            p.actions,
            vec![
                schedule(FollowUpKind::Swap, '2', Due::GapAfterApply),
                Action::Reissue {
                    from: k2r.clone(),
                    to: k2rr.clone()
                },
            ],
            "{}",
            i.step.name()
        );
    }
    // The retry's own steps act on K2, where the engine put AWSPENDING.
    let p = plan(decide_at(&inv(Step::SetSecret, '2'), &s, 700));
    assert_eq!(p.actions, vec![Action::SetTarget { version: v('2') }]);
    let p = plan(decide_at(&inv(Step::CreateSecret, '2'), &s, 700));
    assert_eq!(p.outcome, Outcome::KeptExisting);
}

#[test]
fn a_retry_after_the_reissue_became_current_only_cleans_up() {
    // K2' is current; the engine's retry re-attached AWSPENDING to K2. createSecret and
    // finishSecret take it off again (or AWS would refuse the next rotation); setSecret
    // and testSecret touch nothing.
    let mut s = secret(&[('1', &[AWSPREVIOUS], Some(-5_000)), ('2', &[AWSPENDING], Some(0))]);
    s.versions.insert(
        v('2').reissue(),
        VersionInfo {
            stages: [AWSCURRENT.to_string()].into(),
            created: Some(at(10)),
        },
    );
    for step in ENGINE_STEPS {
        let p = plan(decide_at(&inv(step.clone(), '2'), &s, 2_000));
        assert_eq!(p.outcome, Outcome::AlreadyCurrent);
        let expected = match step {
            Step::CreateSecret | Step::FinishSecret => vec![label(AWSPENDING, None, Some('2'))],
            _ => vec![],
        };
        assert_eq!(p.actions, expected, "{}", step.name());
    }
    let p = plan(decide_at(&swap('2', 610), &s, 2_000));
    assert_eq!(p.actions, vec![label(AWSPENDING, None, Some('2'))]);
}

#[test]
fn swap_finishes_a_half_done_swap() {
    // AWSCURRENT moved, the call that removes AWSPENDING never happened.
    let s = secret(&[
        ('1', &[AWSPREVIOUS, ROTATING], Some(-5_000)),
        ('2', &[AWSCURRENT, AWSPENDING], Some(0)),
    ]);
    let p = plan(decide_at(&swap('2', 600), &s, 610));
    assert_eq!(p.outcome, Outcome::AlreadyCurrent);
    assert_eq!(
        p.actions,
        vec![
            label(AWSPENDING, None, Some('2')),
            schedule(release('1'), '2', Due::GapAfterApply)
        ]
    );
}

#[test]
fn duplicate_swap_after_a_complete_rotation_does_nothing() {
    let s = secret(&[('1', &[AWSPREVIOUS], Some(-5_000)), ('2', &[AWSCURRENT], Some(0))]);
    let p = plan(decide_at(&swap('2', 600), &s, 5_000));
    assert_eq!((p.outcome, p.actions), (Outcome::AlreadyCurrent, vec![]));
}

#[test]
fn swap_reissues_when_the_engine_stripped_awspending() {
    let s = secret(&[('1', &[AWSCURRENT], Some(-5_000)), ('2', &[], Some(0))]);
    let p = plan(decide_at(&swap('2', 600), &s, 620));
    let new = v('2').reissue();
    assert_eq!(
        p.outcome,
        Outcome::Reissued {
            new_version: new.clone()
        }
    );
    assert_eq!(
        p.actions,
        vec![
            schedule(FollowUpKind::Swap, '2', Due::GapAfterApply),
            Action::Reissue {
                from: v('2'),
                to: new
            },
        ]
    );
}

#[test]
fn swap_reissues_when_awspending_sits_on_the_current_version() {
    // The documented "successful" end state with AWSPENDING on AWSCURRENT: K2 lost it.
    let s = secret(&[
        ('1', &[AWSCURRENT, AWSPENDING], Some(-5_000)),
        ('2', &[], Some(0)),
    ]);
    assert!(matches!(
        plan(decide_at(&swap('2', 600), &s, 620)).outcome,
        Outcome::Reissued { .. }
    ));
}

#[test]
fn a_late_duplicate_of_the_first_swap_cannot_swap_the_reissued_version_early() {
    // The scenario that rules out re-labelling K2 in place: after the re-issue, the first
    // swapPending for K2 (due 600) is delivered again at 700.
    let k2r = v('2').reissue();
    let mut s = secret(&[('1', &[AWSCURRENT], Some(-5_000)), ('2', &[], Some(0))]);
    s.versions.insert(
        k2r.clone(),
        VersionInfo {
            stages: [AWSPENDING.to_string()].into(),
            created: Some(at(620)),
        },
    );
    // It resumes the re-issued version, timed by that version's creation (620 + 600).
    let p = plan(decide_at(&swap('2', 600), &s, 700));
    assert_eq!(p.outcome, Outcome::Rescheduled { due: at(1_220) });
    assert_eq!(
        decide_at(&swap('2', 600), &s, 1_000),
        Decision::WaitUntil(at(1_220))
    );
    // And the re-issued version's own swap waits T from its creation.
    let p = plan(decide_at(
        &Invocation {
            token: k2r.clone(),
            ..swap('2', 600)
        },
        &s,
        700,
    ));
    assert_eq!(p.outcome, Outcome::Rescheduled { due: at(1_220) });
    assert_eq!(
        p.actions,
        vec![Action::Schedule(FollowUp {
            kind: FollowUpKind::Swap,
            token: k2r,
            due: Due::At(at(1_220))
        })]
    );
}

#[test]
fn a_stale_swap_is_superseded_by_a_newer_version() {
    // An operator wrote K3 as current after K2 was stripped.
    let s = secret(&[
        ('1', &[AWSPREVIOUS], Some(-5_000)),
        ('2', &[], Some(0)),
        ('3', &[AWSCURRENT], Some(50)),
    ]);
    let p = plan(decide_at(&swap('2', 600), &s, 700));
    assert_eq!(
        (p.outcome, p.actions),
        (Outcome::Superseded { by: v('3') }, vec![])
    );
    // A newer rotation's placeholder (no value yet) supersedes too, through its label.
    let s = secret(&[
        ('1', &[AWSCURRENT], Some(-5_000)),
        ('2', &[], Some(0)),
        ('3', &[AWSPENDING], None),
    ]);
    assert_eq!(
        plan(decide_at(&swap('2', 600), &s, 700)).outcome,
        Outcome::Superseded { by: v('3') }
    );
}

#[test]
fn swap_refuses_an_unknown_token() {
    assert_eq!(
        decide_at(&swap('7', 600), &mid_rotation(), 700),
        Decision::Reject(Rejection::UnknownVersion { version: v('7') })
    );
}

// ---- removePending --------------------------------------------------------------------

fn remove_ev(due: i64) -> Invocation {
    inv(
        Step::RemovePending {
            due: at(due),
            release: v('1'),
        },
        '2',
    )
}

fn after_swap() -> SecretState {
    secret(&[
        ('1', &[AWSPREVIOUS, ROTATING], Some(-5_000)),
        ('2', &[AWSCURRENT], Some(0)),
    ])
}

#[test]
fn remove_when_due_revokes_then_takes_rotating_off() {
    let p = plan(decide_at(&remove_ev(1_200), &after_swap(), 1_200));
    assert_eq!(p.outcome, Outcome::Released);
    assert_eq!(
        p.actions,
        vec![
            Action::RevokeTarget { version: v('1') },
            label(ROTATING, None, Some('1'))
        ]
    );
}

#[test]
fn remove_arriving_early_waits_or_reschedules() {
    assert_eq!(
        decide_at(&remove_ev(1_200), &after_swap(), 1_100),
        Decision::WaitUntil(at(1_200))
    );
    let p = plan(decide_at(&remove_ev(1_200), &after_swap(), 800));
    assert_eq!(p.outcome, Outcome::Rescheduled { due: at(1_200) });
    assert_eq!(p.actions, vec![schedule(release('1'), '2', Due::At(at(1_200)))]);
}

#[test]
fn duplicate_or_stale_removes_do_nothing() {
    let released = secret(&[('1', &[AWSPREVIOUS], Some(-5_000)), ('2', &[AWSCURRENT], Some(0))]);
    let p = plan(decide_at(&remove_ev(1_200), &released, 1_300));
    assert_eq!((p.outcome, p.actions), (Outcome::AlreadyReleased, vec![]));
    // ROTATING moved on to K2 with a later swap: the release of K1 is stale.
    let later = secret(&[
        ('1', &[], Some(-5_000)),
        ('2', &[AWSPREVIOUS, ROTATING], Some(0)),
        ('3', &[AWSCURRENT], Some(700)),
    ]);
    assert_eq!(
        plan(decide_at(&remove_ev(1_200), &later, 1_300)).outcome,
        Outcome::AlreadyReleased
    );
}

#[test]
fn remove_refuses_an_unknown_release_version() {
    let i = inv(
        Step::RemovePending {
            due: at(1_200),
            release: v('8'),
        },
        '2',
    );
    assert_eq!(
        decide_at(&i, &after_swap(), 1_300),
        Decision::Reject(Rejection::UnknownVersion { version: v('8') })
    );
}

// ---- leftovers --------------------------------------------------------------------------

#[test]
fn finish_on_an_already_current_token_releases_a_leftover_rotating() {
    // An inline finishSecret swapped and died before scheduling the release; the engine's
    // retry finds the token current.
    let p = plan(decide_at(&inv(Step::FinishSecret, '2'), &after_swap(), 700));
    assert_eq!(p.outcome, Outcome::AlreadyCurrent);
    assert_eq!(p.actions, vec![schedule(release('1'), '2', Due::GapAfterApply)]);
}

#[test]
fn test_secret_has_no_side_effect_even_with_a_leftover() {
    let p = plan(decide_at(&inv(Step::TestSecret, '2'), &after_swap(), 700));
    assert!(p.actions.is_empty());
}

#[test]
fn outcomes_read_as_sentences() {
    assert!(Outcome::Abandoned.to_string().contains("disabled"));
    assert!(
        Outcome::Superseded { by: v('3') }
            .to_string()
            .contains(v('3').as_str())
    );
}

#[test]
fn a_scheduled_follow_up_for_a_vanished_version_is_stale_a_hand_made_one_is_refused() {
    let scheduled = Invocation {
        schedule: Some(crate::event::ScheduleName::parse("ks-x").unwrap()),
        ..swap('7', 600)
    };
    let p = plan(decide_at(&scheduled, &mid_rotation(), 700));
    assert_eq!(
        (p.outcome, p.actions),
        (Outcome::Vanished { version: v('7') }, vec![])
    );
    let release = Invocation {
        schedule: Some(crate::event::ScheduleName::parse("ks-y").unwrap()),
        ..inv(
            Step::RemovePending {
                due: at(1_200),
                release: v('8'),
            },
            '2',
        )
    };
    assert_eq!(
        plan(decide_at(&release, &after_swap(), 1_300)).outcome,
        Outcome::Vanished { version: v('8') }
    );
    assert_eq!(
        decide_at(&swap('7', 600), &mid_rotation(), 700),
        Decision::Reject(Rejection::UnknownVersion { version: v('7') })
    );
}
