//! The operator's requests as tests: emergencies, cancels and re-drives sent at
//! every phase of a rotation, over every fault class and engine-behaviour combination,
//! break nothing (labels, gaps, revocation, convergence, no consumer failure but an
//! emergency's by-design ones); each failing instance heals within one refresh round
//! trip; a fleet that does not refresh on a miss fails that bound, so the bound can fail;
//! and a seed with a request replays exactly, its trace showing the request and its
//! outcome.

use std::collections::BTreeSet;

use keyshift_sim::checker::Kind;
use keyshift_sim::{
    RequestKind, RequestPhase, RequestPin, RunResult, Scenario, Selection, Summary, replay_command, run_many,
    run_seed,
};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn describe(failed: &[RunResult]) -> String {
    failed
        .iter()
        .take(6)
        .map(|r| {
            let kinds: Vec<&str> = r.failure_kinds().into_iter().map(|k| k.name()).collect();
            format!(
                "\n  [{}] {}\n    replay: {}",
                kinds.join(","),
                r.violations
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{} failed consumer operations", r.failed_operations)),
                replay_command(r, "")
            )
        })
        .collect()
}

/// `kind` aimed at `phase`, everything else drawn from the seed.
fn requests(kind: RequestKind, phase: RequestPhase, refresh_on_miss: bool) -> Selection {
    Selection {
        request: RequestPin::Kind(kind),
        request_phase: Some(phase),
        refresh_on_miss: Some(refresh_on_miss),
        ..Selection::seeded()
    }
}

/// 20 seeds of each request aimed at each phase (240 runs; every fault class and many
/// engine-behaviour combinations, the seeds' own).
#[test]
fn requests_at_every_phase_break_nothing_and_heal_within_a_round_trip() {
    let mut all = Summary::default();
    let mut failed = Vec::new();
    for kind in RequestKind::EVERY {
        for (p, phase) in RequestPhase::TARGETS.into_iter().enumerate() {
            let first = 1 + 100 * p as u64;
            let sel = requests(kind, phase, true);
            let (summary, f) = run_many(first, 20, &sel, threads());
            failed.extend(f);
            merge(&mut all, &summary);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} runs failed:{}",
        failed.len(),
        all.total.runs,
        describe(&failed)
    );
    let t = &all.total;
    assert_eq!(t.failed_operations, 0);
    assert_eq!(t.converged, t.rotations);
    let q = &all.requests;
    // Every request was sent in every phase it was aimed at (a few land in the next
    // phase, or after the rotation ended).
    for kind in RequestKind::EVERY {
        for phase in RequestPhase::TARGETS {
            assert!(
                q.sent.get(&(kind, phase)).copied().unwrap_or(0) > 0,
                "no {} was sent during {}: {:?}",
                kind.name(),
                phase.name(),
                q.sent
            );
        }
    }
    assert!(q.duplicates > 0, "some requests are sent twice");
    // Emergencies cut over, with and without GapSeconds and KeepAcceptingSeconds, and
    // failed consumer operations by design only, each instance healed within one round
    // trip (and the miss of a consumer that had not seen the cut healed in the operation).
    assert!(q.cuts.iter().all(|n| *n > 0), "{:?}", q.cuts);
    assert!(q.kept > 0);
    assert!(q.by_design[0] > 0, "{:?}", q.by_design);
    assert!(q.healed > 0, "refresh-on-miss healed no miss");
    assert!(!q.instance_windows_ms.is_empty());
    assert_eq!(q.over_bound, 0, "{:?}", q.instance_windows_ms);
    // Cancels took effect before the swap and were refused after it.
    let outcome =
        |kind: RequestKind, name: &str| q.outcomes.get(&(kind, name.to_owned())).copied().unwrap_or(0);
    assert!(outcome(RequestKind::Cancel, "cancelled") > 0, "{:?}", q.outcomes);
    assert!(
        outcome(RequestKind::Cancel, "refused: CancelAfterSwap") > 0,
        "{:?}",
        q.outcomes
    );
    assert!(outcome(RequestKind::Emergency, "emergency-done") > 0);
    assert!(
        q.outcomes
            .keys()
            .any(|(k, o)| *k == RequestKind::Redrive && !o.starts_with("refused")),
        "{:?}",
        q.outcomes
    );
}

/// Adds the totals and request tallies of `s` to `all`.
fn merge(all: &mut Summary, s: &Summary) {
    let t = &mut all.total;
    let o = &s.total;
    t.runs += o.runs;
    t.rotations += o.rotations;
    t.converged += o.converged;
    t.failed_operations += o.failed_operations;
    let (a, b) = (&mut all.requests, &s.requests);
    for (k, n) in &b.sent {
        *a.sent.entry(*k).or_default() += n;
    }
    for (k, n) in &b.outcomes {
        *a.outcomes.entry(k.clone()).or_default() += n;
    }
    a.duplicates += b.duplicates;
    for i in 0..3 {
        a.cuts[i] += b.cuts[i];
        a.by_design[i] += b.by_design[i];
    }
    a.kept += b.kept;
    a.healed += b.healed;
    a.instance_windows_ms.extend(&b.instance_windows_ms);
    a.over_bound += b.over_bound;
}

/// The same emergencies with a fleet that only refreshes on its schedule: consumers that
/// missed the new key id, and producers still on the compromised one, fail until their
/// next scheduled refresh, up to R. The checker must say so (the bound can fail), and
/// say nothing else: those failures are by design, only their window is too long.
#[test]
fn a_fleet_without_refresh_on_miss_exceeds_the_window_and_the_checker_says_so() {
    let sel = requests(RequestKind::Emergency, RequestPhase::SecondGap, false);
    let (summary, failed) = run_many(1, 40, &sel, threads());
    assert!(
        summary.requests.over_bound > 0,
        "no window over the bound: {:?}",
        summary.requests.instance_windows_ms
    );
    assert!(!failed.is_empty());
    for r in &failed {
        assert_eq!(
            r.failure_kinds(),
            BTreeSet::from([Kind::Window]),
            "seed {}: {:?}",
            r.scenario.seed,
            r.violations
        );
        assert!(
            r.violations
                .iter()
                .all(|v| v.contains("longer than one refresh round trip")),
            "{:?}",
            r.violations
        );
    }
    // With refresh-on-miss, the very same seeds pass.
    let sel = requests(RequestKind::Emergency, RequestPhase::SecondGap, true);
    let (healed, failed) = run_many(1, 40, &sel, threads());
    assert!(failed.is_empty(), "{}", describe(&failed));
    assert_eq!(healed.requests.over_bound, 0);
}

#[test]
fn a_seed_with_a_request_replays_exactly_and_its_trace_shows_the_request() {
    for (kind, seed) in [
        (RequestKind::Emergency, 11),
        (RequestKind::Cancel, 12),
        (RequestKind::Redrive, 13),
    ] {
        let sel = Selection {
            request: RequestPin::Kind(kind),
            ..Selection::seeded()
        };
        let a = run_seed(Scenario::from_seed(seed, &sel), true);
        let b = run_seed(Scenario::from_seed(seed, &sel), true);
        assert_eq!(a.trace, b.trace);
        assert_eq!(a.requests, b.requests);
        assert!(!a.requests.is_empty(), "{}: no request sent", kind.name());
        let sent = a.trace.iter().any(|l| l.contains("OPERATOR REQUEST #0"));
        let ended = a.trace.iter().any(|l| {
            l.contains("OPERATOR REQUEST #0 done")
                || l.contains("OPERATOR REQUEST #0 refused")
                || l.contains("OPERATOR REQUEST #0 failed")
        });
        assert!(sent && ended, "{}: {:#?}", kind.name(), a.trace);
        // No secret value in the trace: an opaque secret's values start with "value-", a
        // key's are JSON with its private members.
        assert!(
            a.trace
                .iter()
                .all(|l| !l.contains("value-") && !l.contains("private_") && !l.contains("\"k\":")),
            "{}",
            kind.name()
        );
    }
}

/// A seed drawn without a request is the seed it was before requests existed: its class,
/// combination and kind, and the whole run (pinning requests off changes nothing).
#[test]
fn a_seed_without_a_request_runs_as_with_requests_off() {
    let mut checked = 0;
    for seed in 1..=40u64 {
        let drawn = Scenario::from_seed(seed, &Selection::seeded());
        let off = Scenario::from_seed(
            seed,
            &Selection {
                request: RequestPin::Off,
                ..Selection::seeded()
            },
        );
        assert_eq!(
            (drawn.class, drawn.behaviours, drawn.kind),
            (off.class, off.behaviours, off.kind)
        );
        if drawn.request.is_none() {
            let (a, b) = (run_seed(drawn, true), run_seed(off, true));
            assert_eq!(a.trace, b.trace, "seed {seed}");
            checked += 1;
        }
    }
    assert!(checked > 5, "{checked}");
}
