//! The key secrets with real cryptography: a signing-key secret (Ed25519) and a
//! symmetric-key secret (AES-256-GCM) rotate with no failed real operation under
//! keyshift, kids included across keyshift's copy; the one-step control fails real
//! verifications and decryptions; a key seed replays exactly.

use keyshift_sim::{
    EngineBehaviours, FaultClass, RequestPin, RunResult, Scenario, SecretKind, Selection, Strategy, run_jobs,
    run_many, run_seed, world_jobs,
};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Routine rotations only: an operator's emergency cuts over to a kid that is neither
/// the initial version nor a copy, and fails operations by design
/// (tests/operator_requests.rs covers those).
fn pinned(kind: SecretKind) -> Selection {
    Selection {
        kind: Some(kind),
        request: RequestPin::Off,
        ..Selection::behaviours(EngineBehaviours::BASELINE).with_class(FaultClass::None)
    }
}

/// The run's real operations, and the kids its producers used, checked against the
/// protocol: the producers only ever use the initial version and keyshift's copies
/// (never the engine's token version), and every consumer verified or decrypted under
/// every kid a producer used at the end.
fn check_kids(r: &RunResult, kind: SecretKind) {
    let seed = r.scenario.seed;
    assert!(r.ok(), "seed {seed} ({}): {:?}", kind.name(), r.violations);
    assert_eq!(r.failed_operations, 0, "seed {seed}");
    let copies: Vec<_> = r.kids.keys().filter(|k| k.is_keyshift_copy()).collect();
    assert!(
        !copies.is_empty(),
        "seed {seed}: no producer used keyshift's copy: {:?}",
        r.kids
    );
    let used: Vec<_> = r.kids.iter().filter(|(_, u)| !u.producers.is_empty()).collect();
    assert!(
        used.len() >= 2,
        "seed {seed}: the initial key and the copy: {:?}",
        r.kids
    );
    let not_copies = used.iter().filter(|(k, _)| !k.is_keyshift_copy()).count();
    assert_eq!(
        not_copies, 1,
        "seed {seed}: only the initial version and copies are used (the version id changes at the copy): {:?}",
        r.kids
    );
    let fleet: std::collections::BTreeSet<usize> = (0..r.scenario.fleet_size).collect();
    let last = copies.last().expect("a copy");
    assert_eq!(
        r.kids[*last].consumers, fleet,
        "seed {seed}: every instance verified or decrypted under the copy's kid {last}"
    );
}

#[test]
fn a_signing_key_secret_rotates_with_no_failed_verification_across_keyshifts_copy() {
    for seed in 1..=12 {
        let r = run_seed(Scenario::from_seed(seed, &pinned(SecretKind::Ed25519)), false);
        assert_eq!(r.scenario.kind, SecretKind::Ed25519);
        let k = r.keys.sign;
        assert!(
            k.operations > 0 && k.produced > 0 && k.checked > 0,
            "seed {seed}: {k:?}"
        );
        assert_eq!(k.failed(), 0, "seed {seed}: {k:?}");
        assert_eq!(r.keys.seal.operations + r.keys.stored.operations, 0);
        check_kids(&r, SecretKind::Ed25519);
    }
}

#[test]
fn a_symmetric_key_secret_rotates_with_no_failed_decryption_across_keyshifts_copy() {
    for seed in 1..=12 {
        let r = run_seed(Scenario::from_seed(seed, &pinned(SecretKind::Symmetric)), false);
        let (fresh, stored) = (r.keys.seal, r.keys.stored);
        assert!(fresh.produced > 0 && fresh.checked > 0, "seed {seed}: {fresh:?}");
        assert!(
            stored.checked > 0,
            "seed {seed}: stored data was decrypted: {stored:?}"
        );
        assert_eq!(fresh.failed() + stored.failed(), 0, "seed {seed}: {:?}", r.keys);
        assert_eq!(r.keys.sign.operations, 0);
        check_kids(&r, SecretKind::Symmetric);
    }
}

/// Every fault class and engine-behaviour combination, with real keys.
#[test]
fn key_secrets_under_every_fault_class_and_behaviour_break_nothing() {
    for kind in [SecretKind::Ed25519, SecretKind::Symmetric] {
        let sel = Selection {
            kind: Some(kind),
            request: RequestPin::Off,
            ..Selection::seeded()
        };
        let (summary, failed) = run_many(1, 288, &sel, threads());
        let firsts: Vec<_> = failed
            .iter()
            .take(5)
            .map(|r| {
                (
                    r.scenario.seed,
                    r.violations.first().cloned(),
                    r.failed_operations,
                )
            })
            .collect();
        assert!(failed.is_empty(), "{}: {firsts:?}", kind.name());
        let k = summary.total.keys;
        assert_eq!(k.sign.failed() + k.seal.failed() + k.stored.failed(), 0);
        assert!(k.sign.checked + k.seal.checked > 1_000, "{}: {k:?}", kind.name());
        assert_eq!(summary.by_kind.keys().copied().collect::<Vec<_>>(), vec![kind]);
    }
}

#[test]
fn the_one_step_control_fails_real_verifications_and_decryptions() {
    for kind in [SecretKind::Ed25519, SecretKind::Symmetric] {
        let sel = Selection {
            strategy: Strategy::OneStep,
            kind: Some(kind),
            ..Selection::default()
        }
        .with_class(FaultClass::None);
        let (summary, _) = run_many(1, 60, &sel, threads());
        let k = summary.total.keys;
        let (counts, what) = match kind {
            SecretKind::Ed25519 => (k.sign, "verifications"),
            _ => (k.seal, "decryptions"),
        };
        assert!(counts.checked > 0, "{what} ran: {counts:?}");
        assert!(
            counts.failed() > 0,
            "the one-step rotation failed no real {what}: the real check cannot tell safe from unsafe: {counts:?}"
        );
        assert!(
            summary.total.failed_operations >= counts.failed(),
            "real failures count as failed consumer operations"
        );
    }
}

#[test]
fn a_key_seed_replays_exactly() {
    for kind in [SecretKind::Ed25519, SecretKind::Symmetric] {
        for seed in [7, 4_243] {
            let sel = Selection {
                kind: Some(kind),
                ..Selection::seeded()
            };
            let a = run_seed(Scenario::from_seed(seed, &sel), true);
            let b = run_seed(Scenario::from_seed(seed, &sel), true);
            assert!(!a.trace.is_empty());
            assert_eq!(a.trace, b.trace);
            assert_eq!(a.keys, b.keys);
            assert_eq!(a.kids, b.kids);
            assert_eq!(
                (a.operations, a.failed_operations),
                (b.operations, b.failed_operations)
            );
        }
    }
}

/// The kind decides nothing about the schedule: the same seed as an opaque, a signing and
/// a symmetric secret runs the same events.
#[test]
fn a_seeds_schedule_does_not_depend_on_what_the_secret_holds() {
    let run = |kind| {
        let sel = Selection {
            kind: Some(kind),
            ..Selection::seeded()
        };
        run_seed(Scenario::from_seed(4_300, &sel), true)
    };
    let events = |r: &RunResult| -> Vec<String> {
        r.trace
            .iter()
            .filter(|l| !l.contains("FAILED consumer operation"))
            .cloned()
            .collect()
    };
    let opaque = run(SecretKind::Opaque);
    for kind in [SecretKind::Ed25519, SecretKind::Symmetric] {
        let keyed = run(kind);
        assert_eq!(events(&opaque), events(&keyed), "{}", kind.name());
        assert_eq!(opaque.rotations, keyed.rotations);
        assert_eq!(opaque.hits, keyed.hits);
    }
}

#[test]
fn every_many_secrets_world_has_one_signing_and_one_symmetric_key_secret() {
    let sel = Selection::behaviours(EngineBehaviours::BASELINE);
    let (summary, failed) = run_jobs(world_jobs(1, 2, 12, &sel), threads());
    assert!(failed.is_empty(), "{:?}", failed.first().map(|r| &r.violations));
    assert_eq!(summary.by_kind[&SecretKind::Ed25519].runs, 2);
    assert_eq!(summary.by_kind[&SecretKind::Symmetric].runs, 2);
    assert_eq!(summary.by_kind[&SecretKind::Opaque].runs, 20);
    let k = summary.total.keys;
    assert!(k.sign.checked > 0 && k.seal.checked > 0, "{k:?}");
}
