//! The simulation as a test: hundreds of seeds over every fault class with the baseline
//! engine, the one-step control that must fail, exact replay of a seed, and the checks
//! that must fire when something is withheld.

use keyshift_sim::checker::Kind;
use keyshift_sim::world::World;
use keyshift_sim::{
    EngineBehaviours, FaultClass, RunResult, Scenario, Selection, Strategy, run_many, run_seed,
};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn failures(results: &[RunResult]) -> Vec<(u64, &'static str, Option<String>)> {
    results
        .iter()
        .map(|r| {
            (
                r.scenario.seed,
                r.scenario.class.name(),
                r.violations.first().cloned(),
            )
        })
        .collect()
}

/// The engine as modelled before the behaviour matrix, every fault class, every check.
#[test]
fn five_hundred_and_four_seeds_over_every_fault_class_break_nothing() {
    // 504 = 42 seeds for each of the 12 classes.
    let sel = Selection::behaviours(EngineBehaviours::BASELINE);
    let (summary, failed) = run_many(1, 504, &sel, threads());
    print!("{}", summary.render());
    assert!(
        failed.is_empty(),
        "failing seeds (replay with keyshift-sim --seed N --combination 0): {:?}",
        failures(&failed)
    );
    assert_eq!(summary.total.failed_operations, 0);
    assert_eq!(summary.total.converged, summary.total.rotations);
    assert!(
        summary.total.operations > 10_000,
        "the fleet must actually operate"
    );
    assert_eq!(summary.by_class.len(), FaultClass::EVERY.len());
    assert!(
        summary.overshoot_misses().is_empty(),
        "{:?}",
        summary.overshoot_misses()
    );
}

#[test]
fn the_one_step_control_fails_consumer_operations() {
    // Same fleet, AWSCURRENT moved at once: the simulation must see the damage.
    let sel = Selection {
        strategy: Strategy::OneStep,
        ..Selection::default()
    }
    .with_class(FaultClass::None);
    let (summary, _) = run_many(1, 60, &sel, threads());
    print!("{}", summary.render());
    assert!(
        summary.total.failed_operations > 0,
        "the one-step rotation failed no consumer operation: the simulation cannot tell safe from unsafe"
    );
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [4_242, 4_243, 4_300] {
        let a = run_seed(Scenario::from_seed(seed, &Selection::seeded()), true);
        let b = run_seed(Scenario::from_seed(seed, &Selection::seeded()), true);
        assert!(!a.trace.is_empty());
        assert_eq!(a.trace, b.trace);
        assert_eq!(a.overshoots_ms, b.overshoots_ms);
        assert_eq!(a.hits, b.hits);
        assert_eq!(a.keys, b.keys);
        assert_eq!(a.kids, b.kids);
    }
}

/// Service B ignoring every revocation: the old value stays valid with no label, and the
/// revocation check must say so; the same seeds with revocations honoured are clean.
#[test]
fn the_revocation_check_fires_when_service_b_keeps_a_revoked_value() {
    let sel = Selection::behaviours(EngineBehaviours::BASELINE).with_class(FaultClass::None);
    for seed in 1..=5 {
        let honoured = run_seed(Scenario::from_seed(seed, &sel), false);
        assert!(honoured.ok(), "seed {seed}: {:?}", honoured.violations);
        let withheld = World::new(vec![Scenario::from_seed(seed, &sel)], false)
            .withhold_revocations()
            .run()
            .pop()
            .expect("one secret");
        assert!(
            withheld.failure_kinds().contains(&Kind::Revocation),
            "seed {seed}: the withheld revocation went unnoticed: {:?}",
            withheld.violations
        );
        assert!(
            withheld
                .violations
                .iter()
                .any(|v| v.contains("service B still accepts the initial value")),
            "{:?}",
            withheld.violations
        );
    }
}
