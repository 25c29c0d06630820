//! Database credentials on a real PostgreSQL 15, rotated by the release function under
//! `cargo lambda watch` with alternating users, while a keyshift-client fleet logs in
//! and queries: no failed login or query through two rotations, both gaps at least T,
//! the old user refused and its sessions gone after each release, and no password in
//! the function's log or the database server's.

mod support;

use std::time::Duration;

use support::{PgRunOptions, Timeline, leaks, run_postgres};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_database_rotations_fail_no_login_and_no_query() {
    let opts = PgRunOptions {
        gap_secs: 4,
        budget_secs: 60,
        rotations: 2,
        openers: 3,
        pooled: 2,
        pool: 3,
        grace_secs: 2,
        log: std::env::temp_dir().join(format!("keyshift-pg-{}.log", std::process::id())),
    };
    let s = run_postgres(&opts, &Timeline::new(true))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.converged, 2, "both rotations converge");
    assert!(
        s.logins >= 50 && s.queries >= 200,
        "the fleet ran: {} logins, {} queries",
        s.logins,
        s.queries
    );
    assert_eq!(s.failed_logins, 0, "failed logins");
    assert_eq!(s.failed_queries, 0, "failed queries");
    assert!(
        s.retired >= 2 * 3,
        "pools moved to the new user: {} connections retired",
        s.retired
    );
    assert_eq!(s.gaps.len(), 4, "{:?}", s.gaps);
    let t = Duration::from_secs(opts.gap_secs);
    for g in &s.gaps {
        assert!(g.at_most >= t, "gap {} provably shorter than T: {g:?}", g.which);
        assert!(g.at_least + Duration::from_millis(250) >= t, "{g:?}");
    }
    let pairs: Vec<(&str, &str)> = s
        .revoked
        .iter()
        .map(|r| (r.user.as_str(), r.successor.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("app", "app_clone"), ("app_clone", "app")],
        "the users alternate"
    );
    for r in &s.revoked {
        assert!(r.login_refused, "{} can still log in", r.user);
        assert!(
            r.refusal.starts_with("SQLSTATE 28"),
            "{}: refused with {}",
            r.user,
            r.refusal
        );
        assert_eq!(r.sessions_left, 0, "{}'s sessions after the grace", r.user);
        assert!(
            r.forgotten_session_ended,
            "{}'s forgotten session is still open",
            r.user
        );
    }
    assert!(
        s.passwords.len() >= 4,
        "{} passwords collected",
        s.passwords.len()
    );
    let leaked = leaks(&opts.log, &s.passwords).expect("read the log");
    assert!(
        leaked.is_empty(),
        "{} function log lines show a password",
        leaked.len()
    );
    assert!(s.server_log.contains("statement:"), "the server logs statements");
    for p in &s.passwords {
        assert!(
            !s.server_log.contains(p.as_str()),
            "the server log shows a password"
        );
    }
}
