//! The migration benchmark (`make bench-migrate`): N legacy values over M environments
//! with skewed sizes in a real PostgreSQL 15, the application writing random rows
//! throughout, then step 1, step 2, a KEK rotation and step 3, step 4 for every
//! environment, and verify; elapsed, rows/s and unwraps per step, and the writes checked.
//!
//! `cargo run --release -p keyshift-migrate --example migrate-bench -- [VALUES] [ENVS]
//! [WRITER_PAUSE_MS] [CONNECTIONS]` (defaults 300000, 3000, 2, 2).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let values: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let envs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3_000);
    let pause = Duration::from_millis(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2));
    let workers: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2);
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
    let t = Instant::now();
    populate(&f, envs, values).await;
    println!(
        "data set built (legacy, KEK v1) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let opts = Options {
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
    f.rotate_kek("v2", 2);
    let r3 = f
        .migrator_with(opts.clone(), workers)
        .await
        .rewrap()
        .await
        .unwrap();
    line(&r3, envs);
    let r4 = f
        .migrator_with(opts.clone(), workers)
        .await
        .rotate_dek(RotateTarget::All, false)
        .await
        .unwrap();
    line(&r4, envs);
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
