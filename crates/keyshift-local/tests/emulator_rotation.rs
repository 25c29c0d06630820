//! A whole rotation on the emulator through the real runtime path (moto's server, the
//! release binary under `cargo lambda watch`, the Lambda Invoke API), with a consumer
//! fleet on the real SDK: zero failed consumer operations, gaps of at least T, bad
//! invocations refused with no label change, and no secret value or RotationToken in
//! any log line.

use std::time::Duration;

use keyshift_local::local::{Options, Timeline, leaks, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_rotations_on_the_emulator_fail_no_consumer_operation() {
    let log = std::env::temp_dir().join(format!("keyshift-e2e-{}.log", std::process::id()));
    let gap = 4;
    let opts = Options {
        gap_secs: gap,
        budget_secs: 60,
        refresh: Duration::from_millis(1000),
        consumers: 5,
        rotations: 2,
        log: log.clone(),
    };
    let timeline = Timeline::new(true);
    let summary = run(&opts, &timeline).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(summary.converged, 2, "both rotations converge");
    assert!(
        summary.operations > 500,
        "the fleet ran: {} operations",
        summary.operations
    );
    assert_eq!(summary.failed, 0, "failed consumer operations");
    // Two gaps per rotation, each at least T: the first is measured from the samples, so
    // allow for the 50 ms sampling on each side only in the upper bound's favour.
    assert_eq!(summary.gaps.len(), 4, "{:?}", summary.gaps);
    let t = Duration::from_secs(gap);
    for g in &summary.gaps {
        assert!(g.at_most >= t, "gap {} provably shorter than T: {g:?}", g.which);
        assert!(
            g.at_least + Duration::from_millis(250) >= t,
            "gap {} looks shorter than T: {g:?}",
            g.which
        );
    }
    // Bad invocations through the Invoke API: a clear error, and no label moved.
    assert_eq!(summary.refused.len(), 6);
    for body in &summary.refused {
        assert!(body.contains("keyshift."), "a typed error: {body}");
    }
    assert!(
        summary
            .refused
            .iter()
            .any(|b| b.contains("keyshift.InvalidEvent") && b.contains("Step"))
    );
    assert!(summary.refused.iter().any(|b| b.contains("keyshift.Rejected")));
    // Each rotation's first follow-up was delivered by the scheduler driver (it copies,
    // swaps and releases inline).
    assert!(summary.fired >= 2, "fired {}", summary.fired);

    // No log line shows a value or a RotationToken; the log is the function's.
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(
        text.contains("swapped"),
        "the function's JSON logs are in the file"
    );
    let mut needles = summary.values.clone();
    needles.extend(summary.rotation_tokens.iter().cloned());
    assert!(needles.len() >= 4, "{} values and tokens", needles.len());
    let leaked = leaks(&log, &needles).expect("read the log");
    assert!(
        leaked.is_empty(),
        "{} log lines leak a secret value or RotationToken",
        leaked.len()
    );
    let _ = std::fs::remove_file(&log);
}
