//! The simulation as a test: hundreds of seeds over every fault class, the one-step
//! control that must fail, and exact replay of a seed.

use keyshift_sim::{FaultClass, Scenario, Strategy, run_many, run_seed};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn five_hundred_and_four_seeds_over_every_fault_class_break_nothing() {
    // 504 = 42 seeds for each of the 12 classes.
    let (summary, failures) = run_many(1, 504, None, Strategy::Keyshift, threads());
    print!("{}", summary.render());
    let failed: Vec<_> = failures
        .iter()
        .map(|r| (r.scenario.seed, r.violations.first().cloned()))
        .collect();
    assert!(
        failed.is_empty(),
        "failing seeds (replay with keyshift-sim --seed N): {failed:?}"
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
    let (summary, _) = run_many(1, 60, Some(FaultClass::None), Strategy::OneStep, threads());
    print!("{}", summary.render());
    assert!(
        summary.total.failed_operations > 0,
        "the one-step rotation failed no consumer operation: the simulation cannot tell safe from unsafe"
    );
}

#[test]
fn a_seed_replays_exactly() {
    let a = run_seed(Scenario::from_seed(4_242, None, Strategy::Keyshift), true);
    let b = run_seed(Scenario::from_seed(4_242, None, Strategy::Keyshift), true);
    assert!(!a.trace.is_empty());
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.overshoots_ms, b.overshoots_ms);
}
