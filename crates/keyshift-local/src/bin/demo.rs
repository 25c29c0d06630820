//! `make demo`: real rotations on this machine, with no AWS account: moto's server as
//! AWS, the release binary under `cargo lambda watch`, consumer fleets on the real SDK,
//! and a live timeline of the labels, then a summary.
//!
//! Part 1 rotates one password secret in detail (every AWS call the function made).
//! Part 2 rotates one secret of every kind at once (`DEMO_KINDS`, default `all`; empty
//! skips it), each with a keyshift-client fleet that signs and verifies, seals and
//! opens, or presents and accepts.

use std::time::Duration;

use keyshift_local::kinds::{KindsOptions, parse_kinds, render, run_kinds, short_gaps};
use keyshift_local::local::{Options, Timeline, leaks, run};

#[tokio::main]
async fn main() {
    let arg = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let opts = Options {
        gap_secs: arg("DEMO_T", 5),
        budget_secs: arg("DEMO_BUDGET", 60),
        refresh: Duration::from_millis(arg("DEMO_REFRESH_MS", 1500)),
        consumers: arg("DEMO_CONSUMERS", 6) as usize,
        rotations: arg("DEMO_ROTATIONS", 2) as usize,
        log: std::env::temp_dir().join(format!("keyshift-demo-{}.log", std::process::id())),
        rust_log: "info".to_owned(),
    };
    println!(
        "keyshift demo: T = {} s, inline budget {} s, {} consumers refreshing every {:?}, {} rotation(s)",
        opts.gap_secs, opts.budget_secs, opts.consumers, opts.refresh, opts.rotations
    );
    println!(
        "labels are shown as <version>:<labels>; consumers accept AWSCURRENT, AWSPENDING and ROTATING\n"
    );
    let timeline = Timeline::new(true);
    let summary = match run(&opts, &timeline).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    };
    println!("\nsummary");
    println!(
        "  rotations converged:         {} of {}",
        summary.converged, opts.rotations
    );
    println!("  consumer operations:         {}", summary.operations);
    println!("  failed consumer operations:  {}", summary.failed);
    println!("  follow-ups fired by the scheduler driver: {}", summary.fired);
    println!(
        "  bad invocations refused with no label change: {}",
        summary.refused.len()
    );
    for g in &summary.gaps {
        println!(
            "  gap {} (T = {} s): between {:.2} s and {:.2} s",
            if g.which == 1 {
                "1, pending -> current "
            } else {
                "2, current -> released"
            },
            opts.gap_secs,
            g.at_least.as_secs_f64(),
            g.at_most.as_secs_f64()
        );
    }
    println!("  the function's log: {}", opts.log.display());
    println!(
        "\nAWS calls the function made, per invocation (counted on the wire by a proxy between \
         the function and moto; one invocation in flight at a time; \"= engine steps\" adds up a \
         rotation's four engine steps, \"= whole rotation\" its follow-ups too)"
    );
    print!("{}", summary.calls.render());
    println!(
        "  requests the proxy counted from the function: {} ({} in the rows)",
        summary.calls.counted,
        summary.calls.total()
    );
    let short = summary
        .gaps
        .iter()
        .any(|g| g.at_most < Duration::from_secs(opts.gap_secs));
    let mut failed = summary.failed > 0 || summary.converged < opts.rotations || short;

    let kinds = std::env::var("DEMO_KINDS").unwrap_or_else(|_| "all".to_owned());
    if !kinds.trim().is_empty() {
        failed |= !every_kind(&kinds, &opts).await;
    }
    if failed {
        std::process::exit(1);
    }
}

/// Part 2: one secret of every kind in `kinds`, rotated at once. Whether all went well.
async fn every_kind(kinds: &str, part1: &Options) -> bool {
    let kinds = match parse_kinds(kinds) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("DEMO_KINDS: {e}");
            return false;
        }
    };
    let opts = KindsOptions {
        kinds,
        gap_secs: part1.gap_secs,
        budget_secs: part1.budget_secs,
        consumers: part1.consumers.min(4),
        rotations: 1,
        log: std::env::temp_dir().join(format!("keyshift-demo-kinds-{}.log", std::process::id())),
    };
    println!(
        "\npart 2: one secret of every kind ({}), rotated at once, {} keyshift-client instances each",
        opts.kinds.join(", "),
        opts.consumers
    );
    println!(
        "tags choose the kind; signing keys sign and verify JWTs, the symmetric key seals and opens, passwords are presented\n"
    );
    let timeline = Timeline::new(true);
    let summary = match run_kinds(&opts, &timeline).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo (every kind) failed: {e}");
            return false;
        }
    };
    println!("\nsummary, every kind");
    print!("{}", render(&summary, opts.gap_secs));
    println!(
        "  badly tagged secrets refused by createSecret, nothing written: {}",
        summary.refused.len()
    );
    let leaked = leaks(&opts.log, &summary.secrets)
        .map(|l| l.len())
        .unwrap_or(usize::MAX);
    println!("  log lines with key material or passwords: {leaked}");
    println!("  the function's log: {}", opts.log.display());
    leaked == 0
        && summary.kinds.iter().all(|r| {
            r.failed == 0
                && r.converged == opts.rotations
                && r.gaps.len() == 2 * opts.rotations
                && short_gaps(r, opts.gap_secs).is_empty()
                && r.carried_over != Some(false)
                && r.password_options_held != Some(false)
        })
}
