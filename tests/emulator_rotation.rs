//! A whole rotation on the emulator through the real runtime path (moto's server, the
//! release binary under `cargo lambda watch`, the Lambda Invoke API), with a consumer
//! fleet on the real SDK: zero failed consumer operations, gaps of at least T, bad
//! invocations refused with no label change, and no secret value or RotationToken in
//! any log line, at the deployed log level and at `RUST_LOG=trace`.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{Options, Origin, Summary, Timeline, leaks, run};

/// One emulator run at a time: each starts moto and `cargo lambda watch`, and the gaps
/// are measured on the wall clock of a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn options(name: &str, rust_log: &str, rotations: usize, consumers: usize) -> Options {
    Options {
        gap_secs: 4,
        budget_secs: 60,
        refresh: Duration::from_millis(1000),
        consumers,
        rotations,
        log: std::env::temp_dir().join(format!("keyshift-{name}-{}.log", std::process::id())),
        rust_log: rust_log.to_owned(),
    }
}

/// No line of the function's log shows a value the secret had or a RotationToken the
/// engine driver sent; and the log is the function's (its JSON lines are there).
fn assert_no_leaks(log: &Path, summary: &Summary) {
    let text = std::fs::read_to_string(log).expect("the log");
    assert!(
        text.contains("swapped"),
        "the function's JSON logs are in the file"
    );
    let mut needles = summary.values.clone();
    needles.extend(summary.rotation_tokens.iter().cloned());
    assert!(
        summary.values.len() >= 2 && !summary.rotation_tokens.is_empty(),
        "{} values and {} tokens",
        summary.values.len(),
        summary.rotation_tokens.len()
    );
    let leaked = leaks(log, &needles).expect("read the log");
    assert!(
        leaked.is_empty(),
        "{} log lines leak a secret value or RotationToken",
        leaked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_rotations_on_the_emulator_fail_no_consumer_operation() {
    let _one = ONE_AT_A_TIME.lock().await;
    let opts = options("e2e", "info", 2, 5);
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
    let t = Duration::from_secs(opts.gap_secs);
    for g in &summary.gaps {
        assert!(g.at_most >= t, "gap {} provably shorter than T: {g:?}", g.which);
        assert!(
            g.at_least + Duration::from_millis(250) >= t,
            "gap {} looks shorter than T: {g:?}",
            g.which
        );
    }
    // Bad invocations through the Invoke API: a clear error, and no label moved.
    assert_eq!(summary.refused.len(), 16);
    // The status payload through the same function, at three moments of rotation 0.
    let phases: Vec<(&str, &str)> = summary
        .statuses
        .iter()
        .map(|(w, p)| (w.as_str(), p.as_str()))
        .collect();
    assert_eq!(phases[0], ("before", "idle"), "{phases:?}");
    assert!(
        matches!(phases[1], ("after finishSecret", "pending" | "first-gap")),
        "{phases:?}"
    );
    assert_eq!(phases[2], ("after", "released"), "{phases:?}");
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

    // The function's AWS calls, counted on the wire: a row for every invocation, the rows
    // account for every request the function sent, and each rotation stays within the
    // targets: at most 11 calls in its four engine steps, 25 in all.
    let calls = &summary.calls;
    println!("{}", calls.render());
    assert_eq!(
        calls.rows.len(),
        summary.refused.len() + summary.statuses.len() + 4 * opts.rotations + summary.fired as usize,
        "a row per invocation:\n{}",
        calls.render()
    );
    for n in 0..opts.rotations {
        let steps: Vec<&str> = calls
            .rows
            .iter()
            .filter(|r| r.rotation == Some(n) && r.origin == Origin::Engine)
            .map(|r| r.step.as_str())
            .collect();
        assert_eq!(steps, ["createSecret", "setSecret", "testSecret", "finishSecret"]);
    }
    let follow_ups: Vec<_> = calls
        .rows
        .iter()
        .filter(|r| r.origin == Origin::FollowUp)
        .collect();
    assert_eq!(follow_ups.len(), summary.fired as usize);
    assert!(
        follow_ups.iter().all(|r| r.rotation.is_some()),
        "each follow-up is placed in its rotation:\n{}",
        calls.render()
    );
    for n in 0..opts.rotations {
        let engine: u64 = calls.engine_steps(n).values().sum();
        let whole: u64 = calls.whole_rotation(n).values().sum();
        assert!(
            engine <= 11,
            "rotation {n}: {engine} calls in the engine steps:\n{}",
            calls.render()
        );
        assert!(
            whole <= 25,
            "rotation {n}: {whole} calls in all:\n{}",
            calls.render()
        );
    }
    assert!(calls.counted > 0, "the function's calls went through the proxy");
    assert_eq!(
        calls.total(),
        calls.counted,
        "calls outside any invocation:\n{}",
        calls.render()
    );

    assert_no_leaks(&opts.log, &summary);
    assert_metric_lines(&opts.log, &summary, opts.rotations, opts.gap_secs);
    let _ = std::fs::remove_file(&opts.log);
}

/// The function's Embedded Metric Format lines, as CloudWatch Logs would read them from
/// its output: one `Invocations` line per invocation, and for each rotation a first and a
/// second gap of at least T and a rotation time.
fn assert_metric_lines(log: &Path, summary: &Summary, rotations: usize, gap_secs: u64) {
    let text = std::fs::read_to_string(log).expect("the log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    let invocations = lines.iter().filter(|l| l.get("Invocations").is_some()).count();
    assert_eq!(
        invocations,
        summary.calls.rows.len(),
        "an Invocations line per invocation"
    );
    for l in &lines {
        let directive = &l["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "keyshift", "{l}");
        for m in directive["Metrics"].as_array().expect("metrics") {
            assert!(l[m["Name"].as_str().expect("a name")].is_number(), "{l}");
        }
    }
    for gap in ["first", "second"] {
        let seen: Vec<f64> = lines
            .iter()
            .filter(|l| l["Gap"] == gap)
            .map(|l| l["GapSeconds"].as_f64().expect("GapSeconds"))
            .collect();
        assert_eq!(seen.len(), rotations, "{gap} gaps: {seen:?}");
        assert!(seen.iter().all(|s| *s >= gap_secs as f64), "{gap} gaps: {seen:?}");
    }
    let rotations_seen = lines
        .iter()
        .filter(|l| l.get("RotationSeconds").is_some())
        .count();
    assert_eq!(rotations_seen, rotations);
}

/// The runtime logs the raw event (with its RotationToken) at TRACE, and HTTP and SDK
/// crates log bodies at DEBUG and TRACE: the function caps every crate but its own, so
/// even `RUST_LOG=trace` shows no value and no token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotation_logged_at_trace_shows_no_value_or_rotation_token() {
    let _one = ONE_AT_A_TIME.lock().await;
    let opts = options("e2e-trace", "trace", 1, 2);
    let summary = run(&opts, &Timeline::new(true))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.converged, 1, "the rotation converges");
    let text = std::fs::read_to_string(&opts.log).expect("the log");
    assert!(
        text.contains("\"level\":\"DEBUG\""),
        "the function logged at the level RUST_LOG asked for"
    );
    assert_no_leaks(&opts.log, &summary);
    let _ = std::fs::remove_file(&opts.log);
}
