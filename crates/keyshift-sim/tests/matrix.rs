//! The engine-behaviour matrix as tests: a few seeds of every combination, each switch on
//! its own, and proof that each switch acts.
//!
//! The core before its hardening failed most of these (a copy written inside finishSecret,
//! follow-ups scheduled at now, revocations skipped); every one runs and passes now. The
//! per-switch tests run in eight fault classes ([`QUIET`]).

use keyshift_sim::checker::Kind;
use keyshift_sim::{
    CopyAbandons, EngineBehaviours, FaultClass, Hits, RequestPin, RetryReattach, RunResult, Selection,
    Summary, matrix_jobs, replay_command, run_jobs, seed_jobs,
};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The classes the per-switch tests run in. They were chosen when the core before its
/// hardening failed the revocation check in the other four; it passes there now, but
/// widened to every class these seeds meet the strip-swap race once (seed 82 of
/// lost-delivery with retry-reattach=not-current: a first gap of 0 ms, no failed
/// operation; docs/protocol.md, "Known limits"), so they stay as they were until that
/// race is closed. `make sim` runs every class.
const QUIET: [FaultClass; 8] = [
    FaultClass::None,
    FaultClass::LostResponses,
    FaultClass::Throttling,
    FaultClass::SchedulerErrors,
    FaultClass::EngineStrip,
    FaultClass::EngineStepFailures,
    FaultClass::EngineTimeout,
    FaultClass::DuplicateDelivery,
];

/// Seeds per switch test: 40 per quiet class.
const SEEDS: u64 = 320;

/// The engine's behaviours alone: no operator request (an emergency writes its value
/// during the engine's rotation on purpose, and meets the strip race on its cut the way
/// a swap does; tests/operator_requests.rs runs them over every combination).
fn quiet(b: EngineBehaviours) -> Selection {
    Selection {
        request: RequestPin::Off,
        classes: Some(&QUIET),
        ..Selection::behaviours(b)
    }
}

fn with(f: impl FnOnce(&mut EngineBehaviours)) -> EngineBehaviours {
    let mut b = EngineBehaviours::BASELINE;
    f(&mut b);
    b
}

fn describe(failed: &[RunResult]) -> String {
    failed
        .iter()
        .take(8)
        .map(|r| {
            let kinds: Vec<&str> = r.failure_kinds().into_iter().map(|k| k.name()).collect();
            format!(
                "\n  [{}] {}\n    replay: {}",
                kinds.join(","),
                r.violations.last().cloned().unwrap_or_default(),
                replay_command(r, "")
            )
        })
        .collect()
}

fn assert_all_ok(what: &str, summary: &Summary, failed: &[RunResult]) {
    assert!(
        failed.is_empty(),
        "{what}: {} of {} runs failed {}:{}",
        failed.len(),
        summary.total.runs,
        summary.total.kinds_text(),
        describe(failed)
    );
    assert_eq!(summary.total.converged, summary.total.rotations, "{what}");
    assert!(summary.total.operations > 0, "{what}: the fleets must operate");
}

/// Every run of `b` alone in the quiet classes converges, revokes, and keeps every
/// invariant.
fn switch_breaks_nothing(b: EngineBehaviours) {
    let (summary, failed) = run_jobs(seed_jobs(1, SEEDS, &quiet(b)), threads());
    assert_eq!(summary.by_combination.len(), 1);
    assert_all_ok(&format!("{b}"), &summary, &failed);
}

// ---- a few seeds of every combination ----

/// 12 seeds (one per fault class) of each of the 144 combinations.
fn every_combination() -> (Summary, Vec<RunResult>) {
    run_jobs(matrix_jobs(1, 12, &Selection::seeded()), threads())
}

/// Whatever the engine does, no consumer operation fails, the labels stay well-formed,
/// no gap is shorter than T, and no call crosses secrets. (Revocation and convergence,
/// which today's core misses under some behaviours: the strict test below.)
#[test]
fn every_combination_keeps_every_safety_invariant() {
    let (summary, failed) = every_combination();
    assert_eq!(summary.by_combination.len(), EngineBehaviours::COMBINATIONS);
    assert_eq!(summary.by_class.len(), FaultClass::EVERY.len());
    assert_eq!(summary.total.failed_operations, 0);
    let unsafe_runs: Vec<RunResult> = failed
        .into_iter()
        .filter(|r| {
            r.failure_kinds()
                .iter()
                .any(|k| matches!(k, Kind::Contract | Kind::Labels | Kind::Gap | Kind::CrossTalk))
        })
        .collect();
    assert!(
        unsafe_runs.is_empty(),
        "safety failures:{}",
        describe(&unsafe_runs)
    );
}

#[test]
fn every_combination_breaks_nothing() {
    let (summary, failed) = every_combination();
    print!("{}", summary.render_combinations());
    assert_all_ok("every combination", &summary, &failed);
}

// ---- each switch on its own, in the quiet classes ----

#[test]
fn the_baseline_engine_breaks_nothing_in_the_quiet_classes() {
    switch_breaks_nothing(EngineBehaviours::BASELINE);
}

#[test]
fn copy_abandons_from_the_token_version_breaks_nothing() {
    switch_breaks_nothing(with(|b| b.copy_abandons = CopyAbandons::TokenVersion));
}

#[test]
fn copy_abandons_from_the_holder_breaks_nothing() {
    switch_breaks_nothing(with(|b| b.copy_abandons = CopyAbandons::Holder));
}

#[test]
fn strip_after_finish_breaks_nothing() {
    switch_breaks_nothing(with(|b| b.strip_after_finish = true));
}

#[test]
fn validate_rotation_token_breaks_nothing() {
    switch_breaks_nothing(with(|b| b.validate_rotation_token = true));
}

#[test]
fn retry_reattach_after_a_failed_step_breaks_nothing() {
    switch_breaks_nothing(with(|b| b.retry = RetryReattach::StepError));
}

#[test]
fn retry_reattach_after_a_not_current_finish_breaks_nothing() {
    switch_breaks_nothing(with(|b| b.retry = RetryReattach::NotCurrent));
}

#[test]
fn past_schedule_refused_breaks_nothing() {
    switch_breaks_nothing(with(|b| b.past_schedule_refused = true));
}

#[test]
fn an_operator_acting_by_hand_breaks_nothing() {
    switch_breaks_nothing(with(|b| b.operator = true));
}

// ---- each switch acts ----

fn hits(b: EngineBehaviours, seeds: u64) -> Hits {
    run_jobs(seed_jobs(1, seeds, &quiet(b)), threads()).0.total.hits
}

/// A switch that is on but never acts tests nothing; one that acts while off would make
/// the baseline something else. Three switches are provoked only by what keyshift no
/// longer does (a write with another token during the engine's rotation, a schedule not
/// in the future): under keyshift they must never act, and the unit tests in
/// `src/ports.rs` show each of them acting when provoked.
#[test]
fn each_switch_acts_when_on_and_never_when_off() {
    assert_eq!(hits(EngineBehaviours::BASELINE, 96), Hits::default());
    type Acted = fn(&Hits) -> u32;
    let acting: [(EngineBehaviours, Acted); 5] = [
        (with(|b| b.strip_after_finish = true), |h| h.strips_after_finish),
        (with(|b| b.retry = RetryReattach::StepError), |h| h.reattached),
        (with(|b| b.retry = RetryReattach::NotCurrent), |h| {
            h.not_current_retries
        }),
        (with(|b| b.operator = true), |h| h.operator),
        // An operator's write during the engine's rotation abandons it.
        (
            with(|b| {
                b.operator = true;
                b.copy_abandons = CopyAbandons::Holder;
            }),
            |h| h.operator,
        ),
    ];
    for (b, acted) in acting {
        let h = hits(b, 96);
        assert!(acted(&h) > 0, "{b} never acted in 96 seeds: {h:?}");
    }
    let avoided: [(EngineBehaviours, Acted); 4] = [
        (with(|b| b.copy_abandons = CopyAbandons::TokenVersion), |h| {
            h.abandoned
        }),
        (with(|b| b.copy_abandons = CopyAbandons::Holder), |h| h.abandoned),
        (with(|b| b.validate_rotation_token = true), |h| h.refused_writes),
        (with(|b| b.past_schedule_refused = true), |h| h.refused_schedules),
    ];
    for (b, acted) in avoided {
        let h = hits(b, 96);
        assert_eq!(
            acted(&h),
            0,
            "{b}: keyshift wrote during the engine's rotation or scheduled in the past: {h:?}"
        );
    }
}

// ---- a race the seeds above do not hit ----

/// Two seeds that once hit the race below; they pass now, by timing rather than by
/// construction. The race itself remains: AWSPENDING stripped from keyshift's copy (a
/// random strip, or an engine retry forcing the label back onto its token) in the few
/// milliseconds between the swap's decision and its AWSCURRENT move makes the copy
/// current moments after it stopped being accepted, a first gap of 0 ms by the checker's
/// measure (UpdateSecretVersionStage has no compare-and-swap on another label). It shows
/// in about 1 in 4000 seeds of the strip-heavy classes, with no failed consumer
/// operation; docs/protocol.md ("Known limits") says what would close it.
#[test]
fn a_strip_racing_the_swap_never_shortens_the_first_gap() {
    let cases = [
        (5_789, FaultClass::EngineStrip, EngineBehaviours::BASELINE),
        (
            830,
            FaultClass::EngineTimeout,
            with(|b| b.retry = RetryReattach::StepError),
        ),
    ];
    let jobs = cases
        .iter()
        .map(|&(seed, class, b)| {
            keyshift_sim::Job::Single(Box::new(keyshift_sim::Scenario::from_seed(
                seed,
                &Selection {
                    request: RequestPin::Off,
                    ..Selection::behaviours(b).with_class(class)
                },
            )))
        })
        .collect();
    let (summary, failed) = run_jobs(jobs, threads());
    assert_all_ok("strip racing the swap", &summary, &failed);
}
