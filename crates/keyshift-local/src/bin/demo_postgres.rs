//! `make demo-postgres`: database credentials rotated for real on this machine: moto's
//! server as AWS, a real PostgreSQL 15 (TLS, scram-sha-256), the release function under
//! `cargo lambda watch`, and a keyshift-client fleet that logs in and queries throughout.

use keyshift_local::local::{Timeline, leaks};
use keyshift_local::pgdemo::{PgRunOptions, run_postgres};

#[tokio::main]
async fn main() {
    let arg = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let opts = PgRunOptions {
        gap_secs: arg("DEMO_T", 5),
        budget_secs: arg("DEMO_BUDGET", 60),
        rotations: arg("DEMO_ROTATIONS", 2) as usize,
        openers: 3,
        pooled: 2,
        pool: 3,
        grace_secs: arg("DEMO_GRACE", 2),
        log: std::env::temp_dir().join(format!("keyshift-demo-postgres-{}.log", std::process::id())),
    };
    println!(
        "keyshift demo, database credentials: T = {} s, {} rotation(s), session grace {} s; {} instances open a connection every 300 ms, {} keep {} pooled connections each",
        opts.gap_secs, opts.rotations, opts.grace_secs, opts.openers, opts.pooled, opts.pool
    );
    let s = match run_postgres(&opts, &Timeline::new(true)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    };
    println!("\nsummary");
    println!("  rotations converged:   {} of {}", s.converged, opts.rotations);
    println!(
        "  logins:                {} ({} failed)",
        s.logins, s.failed_logins
    );
    println!(
        "  queries:               {} ({} failed)",
        s.queries, s.failed_queries
    );
    println!("  pooled connections retired for the new user: {}", s.retired);
    for g in &s.gaps {
        println!(
            "  gap {} (T = {} s): between {:.2} s and {:.2} s",
            g.which,
            opts.gap_secs,
            g.at_least.as_secs_f64(),
            g.at_most.as_secs_f64()
        );
    }
    for r in &s.revoked {
        println!(
            "  {} -> {}: old login {} ({}), old sessions left {}, forgotten session {}",
            r.user,
            r.successor,
            if r.login_refused { "refused" } else { "STILL WORKS" },
            r.refusal,
            r.sessions_left,
            if r.forgotten_session_ended {
                "ended"
            } else {
                "STILL OPEN"
            }
        );
    }
    let leaked = leaks(&opts.log, &s.passwords)
        .map(|l| l.len())
        .unwrap_or(usize::MAX);
    let in_server_log = s
        .passwords
        .iter()
        .filter(|p| s.server_log.contains(p.as_str()))
        .count();
    println!(
        "  function log lines with a password: {leaked}; passwords in the server's statement log: {in_server_log}"
    );
    println!("  the function's log: {}", opts.log.display());
    let ok = s.converged == opts.rotations
        && s.failed_logins == 0
        && s.failed_queries == 0
        && s.revoked
            .iter()
            .all(|r| r.login_refused && r.sessions_left == 0 && r.forgotten_session_ended)
        && leaked == 0
        && in_server_log == 0
        && s.gaps
            .iter()
            .all(|g| g.at_most >= std::time::Duration::from_secs(opts.gap_secs));
    if !ok {
        std::process::exit(1);
    }
}
