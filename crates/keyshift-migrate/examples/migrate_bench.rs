//! The migration benchmark (`make bench-migrate`): N legacy values over M environments
//! with skewed sizes in a real PostgreSQL 15, the application writing random rows
//! throughout, then step 1, step 2, a KEK rotation and step 3, step 4 for every
//! environment, and verify; elapsed, rows/s and unwraps per step, and the writes checked.
//!
//! `cargo run --release -p keyshift-migrate --example migrate-bench -- [--values N]
//! [--envs N] [--writer-pause-ms N] [--connections N] [--batch N]` (defaults 300000, 3000,
//! 2, 4, 1000; `--help`).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use clap::Parser;

use common::{Fixture, Writer, check_all, populate, skewed_counts};
use keyshift_migrate::progress::Mode;
use keyshift_migrate::{Options, Report, RotateTarget};

fn line(r: &Report, envs: usize) {
    let unwraps_ok = if r.unwraps == envs as u64 {
        "= environments"
    } else {
        ""
    };
    println!(
        "{:<16} {:>8.2} s {:>10.0} rows/s  values {:>8} done {:>8} skipped {:>6}  envs done {:>6}  unwraps {:>6} {unwraps_ok:<14} generates {:>6} rewraps {:>6}  conflicts {:>4} retried {:>4} left {:>4} failures {}",
        r.step,
        r.elapsed_ms as f64 / 1000.0,
        r.rows_per_sec(),
        r.values_seen,
        r.done,
        r.skipped,
        r.environments_done,
        r.unwraps,
        r.generates,
        r.rewraps,
        r.conflicts,
        r.retried,
        r.left,
        r.failures
    );
}

/// The `variables` table after a step: its size, the updates so far that were HOT
/// (no index entries written), and the dead row versions autovacuum has yet to reclaim.
async fn table(f: &common::Fixture) {
    let db = f.db().await;
    // Steps 3 and 4 come days or months after step 2 (after a KEK rotation, after a
    // suspected leak), by when autovacuum has reclaimed the row versions the step before
    // left behind; run back to back here, the benchmark vacuums in between instead (its
    // time printed apart, not counted in either step).
    let t = Instant::now();
    db.batch_execute("VACUUM variables").await.unwrap();
    println!(
        "{:<16} {:.2} s (between steps)",
        "  VACUUM",
        t.elapsed().as_secs_f64()
    );
    let r = db
        .query_one(
            "SELECT pg_total_relation_size('variables'), n_tup_upd, n_tup_hot_upd, n_dead_tup, \
             autovacuum_count FROM pg_stat_user_tables WHERE relname = 'variables'",
            &[],
        )
        .await
        .unwrap();
    let (size, upd, hot, dead, av): (i64, i64, i64, i64, i64) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    println!(
        "{:<16} {:.0} MB with indexes, {upd} updates so far ({hot} HOT), {dead} dead row versions, {av} autovacuums",
        "  variables",
        size as f64 / 1048576.0
    );
}

/// The benchmark's sizes.
#[derive(Debug, clap::Parser)]
#[command(about = "The migration's four steps and verify on a real PostgreSQL 15, with a concurrent writer.")]
struct Args {
    /// Legacy values to migrate.
    #[arg(long, default_value_t = 300_000)]
    values: usize,
    /// Environments (one DEK each) the values are spread over, with skewed sizes.
    #[arg(long, default_value_t = 3_000)]
    envs: usize,
    /// The application writer's pause between writes, in milliseconds.
    #[arg(long, default_value_t = 2)]
    writer_pause_ms: u64,
    /// Connections (workers) each step uses.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 1000)]
    batch: i64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Args {
        values,
        envs,
        writer_pause_ms,
        connections: workers,
        batch,
    } = Args::parse();
    let pause = Duration::from_millis(writer_pause_ms);
    let counts = skewed_counts(envs, values);
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    println!(
        "{values} values over {envs} environments (median {}, p90 {}, max {} per environment); writer pause {pause:?}, {workers} connections",
        sorted[envs / 2],
        sorted[envs * 9 / 10],
        sorted[envs - 1]
    );
    let f = Fixture::start("bench").await;
    // The test harness logs every statement (the credential tests read the log); with
    // the parameters of every batch that would write each ciphertext to the server's log
    // twice. A production server logs no statements: neither does the benchmark's.
    f.pg.psql("postgres", "ALTER DATABASE app SET log_statement = 'none'")
        .unwrap();
    let t = Instant::now();
    populate(&f, envs, values).await;
    println!(
        "data set built (legacy, KEK v1) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let opts = Options {
        batch,
        progress: Mode::Auto,
        ..Options::default()
    };
    let writer = Writer::start(&f, pause).await;
    let r1 = f
        .migrator_with(opts.clone(), workers)
        .await
        .generate_deks()
        .await
        .unwrap();
    line(&r1, envs);
    let r2 = f
        .migrator_with(opts.clone(), workers)
        .await
        .encrypt_legacy()
        .await
        .unwrap();
    line(&r2, envs);
    table(&f).await;
    f.rotate_kek("v2", 2);
    let r3 = f
        .migrator_with(opts.clone(), workers)
        .await
        .rewrap()
        .await
        .unwrap();
    line(&r3, envs);
    table(&f).await;
    let r4 = f
        .migrator_with(opts.clone(), workers)
        .await
        .rotate_dek(RotateTarget::All, false)
        .await
        .unwrap();
    line(&r4, envs);
    table(&f).await;
    let (writes, expected) = writer.finish().await;
    // The straggler sweep: values the writer sealed under a DEK it read just before a swap.
    let m = f.migrator_with(opts.clone(), workers).await;
    let s3 = m.rewrap().await.unwrap();
    let s4 = m.rotate_dek(RotateTarget::All, false).await.unwrap();
    println!(
        "sweep after the writer stopped: rewrap {} values, rotate-dek {} values",
        s3.done, s4.done
    );
    let v = f
        .migrator_with(opts.clone(), workers)
        .await
        .verify()
        .await
        .unwrap();
    line(&v, envs);
    let rep = m.report().await.unwrap();
    println!(
        "report: environments {:?}; values {:?}",
        rep.environment_keks, rep.value_keks
    );
    let t = Instant::now();
    let (n, bad, legacy_left, stale) = check_all(&f, &expected).await;
    println!(
        "writer: {writes} writes during the steps ({} distinct rows); checked {n} values in {:.1} s: {bad} wrong or lost, {legacy_left} legacy, {stale} not under their environment's DEK",
        expected.len(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!((bad, legacy_left, stale, v.failures), (0, 0, 0, 0));
}
