//! Fifty secrets rotating on overlapping schedules through ONE executor and ONE
//! scheduler, each with its own engine, faults, rotations, fleet and service B.
//!
//! Cross-talk (a call, job or schedule name of one secret's invocation touching another
//! secret) is a violation of the calling secret, checked on every port call; every
//! per-secret invariant holds per secret.

use keyshift_sim::checker::Kind;
use keyshift_sim::{
    BehaviourPins, EngineBehaviours, FaultClass, RunResult, Scenario, Selection, Summary, replay_command,
    run_jobs, world_jobs,
};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

const SECRETS: usize = 50;

fn worlds(sel: &Selection, count: u64) -> (Summary, Vec<RunResult>) {
    run_jobs(world_jobs(1, count, SECRETS, sel), threads())
}

fn describe(failed: &[RunResult], sel: &Selection) -> String {
    failed
        .iter()
        .take(8)
        .map(|r| {
            format!(
                "\n  secret {} ({}, {}): {}\n    replay: {}",
                r.scenario.secret_index,
                r.scenario.class.name(),
                r.scenario.behaviours,
                r.violations.first().cloned().unwrap_or_default(),
                replay_command(r, &sel.flags())
            )
        })
        .collect()
}

#[test]
fn fifty_secrets_through_one_executor_keep_every_invariant_per_secret() {
    let sel = Selection {
        classes: Some(&FaultClass::EVERY),
        pins: BehaviourPins::all(EngineBehaviours::BASELINE),
        ..Selection::default()
    };
    let (summary, failed) = worlds(&sel, 3);
    assert_eq!(summary.total.runs, 3 * SECRETS as u64);
    assert_eq!(summary.by_mode.keys().copied().collect::<Vec<_>>(), vec![SECRETS]);
    assert!(failed.is_empty(), "{}", describe(&failed, &sel));
    assert_eq!(summary.total.cross_talk, 0);
    assert_eq!(summary.total.converged, summary.total.rotations);
    assert!(summary.total.rotations >= 3 * SECRETS as u64);
    assert_eq!(
        summary.by_class.len(),
        FaultClass::EVERY.len(),
        "every fault class among the secrets"
    );
}

/// The secrets' first rotations all start within the first 2T, and each takes at least
/// 2T: they overlap.
#[test]
fn a_worlds_secrets_share_one_policy_and_start_within_one_rotation_of_each_other() {
    let scs = Scenario::world(7, SECRETS, &Selection::seeded());
    assert_eq!(scs.len(), SECRETS);
    let policy = scs[0].policy;
    for (i, sc) in scs.iter().enumerate() {
        assert_eq!(sc.policy, policy, "one executor, one T");
        assert_eq!((sc.secret_index, sc.world_secrets), (i, SECRETS));
        assert!(sc.refresh < policy.gap, "R below T for secret {i}");
        assert!(sc.first_start < policy.gap * 2);
        assert!((2..=3).contains(&sc.fleet_size));
    }
    let combos: std::collections::BTreeSet<_> = scs.iter().map(|s| s.behaviours.index()).collect();
    let classes: std::collections::BTreeSet<_> = scs.iter().map(|s| s.class).collect();
    assert!(
        combos.len() > 10 && classes.len() == FaultClass::EVERY.len(),
        "{combos:?} {classes:?}"
    );
}

/// Every class and the seed's behaviours per secret: the safety invariants hold per
/// secret, and no call crosses secrets.
#[test]
fn fifty_secrets_with_every_class_and_behaviour_keep_every_safety_invariant() {
    let sel = Selection::seeded();
    let (summary, failed) = worlds(&sel, 2);
    assert_eq!(summary.total.cross_talk, 0);
    assert_eq!(summary.total.failed_operations, 0);
    let unsafe_runs: Vec<RunResult> = failed
        .into_iter()
        .filter(|r| {
            r.failure_kinds()
                .iter()
                .any(|k| matches!(k, Kind::Contract | Kind::Labels | Kind::Gap | Kind::CrossTalk))
        })
        .collect();
    assert!(unsafe_runs.is_empty(), "{}", describe(&unsafe_runs, &sel));
}

#[test]
fn fifty_secrets_with_every_class_and_behaviour_break_nothing() {
    let sel = Selection::seeded();
    let (summary, failed) = worlds(&sel, 2);
    assert!(
        failed.is_empty(),
        "{}{}",
        summary.render_modes(),
        describe(&failed, &sel)
    );
}
