//! `make demo`: a real rotation on this machine, with no AWS account: moto's server as
//! AWS, the release binary under `cargo lambda watch`, a consumer fleet on the real SDK,
//! and a live timeline of the labels, then a summary.

use std::time::Duration;

use keyshift_local::local::{Options, Timeline, run};

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
    if summary.failed > 0 || summary.converged < opts.rotations || short {
        std::process::exit(1);
    }
}
