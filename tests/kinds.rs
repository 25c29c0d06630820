//! One secret of every kind rotated through the real runtime path (moto's server, the
//! release binary under `cargo lambda watch`), each with a keyshift-client fleet that
//! really signs and verifies (jsonwebtoken), seals and opens (AES-256-GCM), or presents
//! and accepts: no failed operation in any kind, both gaps at least T, keys found under
//! their version id across keyshift's copy, structured secrets carried over, badly
//! tagged secrets refused with nothing written, and no key material in the log.

mod support;

use std::time::Duration;

use support::{ALL_KINDS, KindsOptions, Timeline, leaks, run_kinds, short_gaps};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_secret_of_every_kind_rotates_with_no_failed_operation() {
    let opts = KindsOptions {
        kinds: ALL_KINDS.iter().map(|k| (*k).to_owned()).collect(),
        gap_secs: 4,
        budget_secs: 60,
        consumers: 4,
        rotations: 1,
        log: std::env::temp_dir().join(format!("keyshift-kinds-{}.log", std::process::id())),
    };
    let summary = run_kinds(&opts, &Timeline::new(true))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.kinds.len(), ALL_KINDS.len());
    let t = Duration::from_secs(opts.gap_secs);
    for r in &summary.kinds {
        assert_eq!(r.converged, 1, "{} converges", r.kind);
        assert!(
            r.operations >= 100,
            "{}: the fleet ran {} operations",
            r.kind,
            r.operations
        );
        assert_eq!(r.failed, 0, "{}: failed operations", r.kind);
        assert_eq!(r.gaps.len(), 2, "{}: {:?}", r.kind, r.gaps);
        assert!(
            short_gaps(r, opts.gap_secs).is_empty(),
            "{}: a gap provably shorter than T: {:?}",
            r.kind,
            r.gaps
        );
        for g in &r.gaps {
            assert!(g.at_least + Duration::from_millis(250) >= t, "{}: {g:?}", r.kind);
        }
        // The old key and keyshift's copy of the new one were both used, each under its
        // own version id.
        assert!(r.kids_used >= 2, "{}: {} key ids used", r.kind, r.kids_used);
    }
    let by_kind = |k: &str| summary.kinds.iter().find(|r| r.kind == k).expect("the kind ran");
    assert_eq!(
        by_kind("json").carried_over,
        Some(true),
        "json: other fields carried over"
    );
    assert_eq!(by_kind("json").password_options_held, Some(true));
    assert_eq!(by_kind("password").password_options_held, Some(true));

    assert_eq!(summary.refused.len(), 5);
    for (tags, error) in &summary.refused {
        assert!(error.contains("keyshift.Configuration"), "{tags}: {error}");
        assert!(
            error.contains("secret tag keyshift:"),
            "{tags}: the error names the tag: {error}"
        );
    }
    assert!(
        summary.secrets.len() > 20,
        "{} secret strings collected",
        summary.secrets.len()
    );
    let leaked = leaks(&opts.log, &summary.secrets).expect("read the log");
    assert!(leaked.is_empty(), "{} log lines leak key material", leaked.len());
}
