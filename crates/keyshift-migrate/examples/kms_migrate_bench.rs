//! The migration with the KEK in KMS (`make bench-migrate-kms`): moto's KMS as the
//! local AWS, a real PostgreSQL 15, N legacy values encrypted one KMS `Encrypt` each
//! over M environments (skewed sizes), then step 1, step 2, a KEK rotation (the alias
//! moved to a new key) and step 3, step 4 for every environment, and verify. Per step:
//! elapsed and the KMS requests sent (counted on the client); then the KMS calls a
//! reader pays per value before (legacy) and after (envelope), and the measured cost of
//! one KMS call.
//!
//! `cargo run --release -p keyshift-migrate --example kms-migrate-bench -- [--values N]
//! [--envs N] [--connections N]` (defaults 30000, 300, 4; `--help`).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use clap::Parser;
use std::time::Instant;

use common::{Fixture, initial_plaintext, populate_kms, skewed_counts};
use keyshift_migrate::kek::{CallCounter, kms_client};
use keyshift_migrate::progress::Mode;
use keyshift_migrate::{Migrator, Options, Report, RotateTarget, open_kms_envelope, value_aad};

const ALIAS: &str = "alias/app-values";

fn line(r: &Report) {
    println!(
        "{:<16} {:>7.2} s  values {:>6} done {:>6}  envs done {:>4}  KMS calls {:>6} ({:.3} per value: generates {}, unwraps {}, rewraps {}, legacy decrypts {})  failures {}",
        r.step,
        r.elapsed_ms as f64 / 1000.0,
        r.values_seen,
        r.done,
        r.environments_done,
        r.kek_calls,
        r.kek_calls as f64 / r.values_seen.max(1) as f64,
        r.generates,
        r.unwraps,
        r.rewraps,
        r.legacy_decrypts,
        r.failures
    );
}

/// The benchmark's sizes.
#[derive(Debug, clap::Parser)]
#[command(
    about = "The migration with the KEK in KMS (moto's KMS) and a real PostgreSQL 15: KMS calls per step and per value."
)]
struct Args {
    /// Legacy values (one KMS Encrypt each).
    #[arg(long, default_value_t = 30_000)]
    values: usize,
    /// Environments (one DEK each) the values are spread over, with skewed sizes.
    #[arg(long, default_value_t = 300)]
    envs: usize,
    /// Connections (workers) each step uses.
    #[arg(long, default_value_t = 4)]
    connections: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Args {
        values,
        envs,
        connections: workers,
    } = Args::parse();
    let moto = keyshift_local::moto::Moto::start().unwrap();
    let conf = moto.sdk_config().await;
    let calls = CallCounter::default();
    let kms = kms_client(aws_sdk_kms::config::Builder::from(&conf), &calls);
    keyshift_local::moto::kms_key_with_alias(&kms, ALIAS)
        .await
        .unwrap();
    let f = Fixture::start("kms-bench").await;
    f.pg.psql("postgres", "ALTER DATABASE app SET log_statement = 'none'")
        .unwrap();
    let t = Instant::now();
    populate_kms(&f, envs, values, &kms, ALIAS, 8).await;
    println!(
        "{values} legacy values (one KMS Encrypt each) over {envs} environments, built in {:.1} s; {workers} connections",
        t.elapsed().as_secs_f64()
    );

    // What one KMS call costs here: sequential Decrypts of one legacy value.
    let db = f.db().await;
    let row = db
        .query_one("SELECT value FROM variables ORDER BY id LIMIT 1", &[])
        .await
        .unwrap();
    let blob: Vec<u8> = row.get(0);
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        kms.decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob.clone()))
            .send()
            .await
            .unwrap();
    }
    let per_call = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    println!("one KMS Decrypt on the emulator: {per_call:.2} ms (mean of {n}, sequential)");

    let opts = Options {
        progress: Mode::Quiet,
        ..Options::default()
    };
    let migrator = || async {
        let calls = CallCounter::default();
        let client = kms_client(aws_sdk_kms::config::Builder::from(&conf), &calls);
        let mut m = Migrator::new(
            f.db().await,
            open_kms_envelope(client, ALIAS, calls),
            opts.clone(),
        );
        for _ in 1..workers {
            m = m.with_connection(f.db().await);
        }
        m
    };
    let before = migrator().await.verify().await.unwrap();
    println!(
        "reading every value before: {} KMS calls for {} values ({:.2} per value)",
        before.kek_calls,
        before.values_seen,
        before.kek_calls as f64 / before.values_seen.max(1) as f64
    );
    line(&migrator().await.generate_deks().await.unwrap());
    line(&migrator().await.encrypt_legacy().await.unwrap());
    let k2 = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    kms.update_alias()
        .alias_name(ALIAS)
        .target_key_id(k2.key_id())
        .send()
        .await
        .unwrap();
    line(&migrator().await.rewrap().await.unwrap());
    line(
        &migrator()
            .await
            .rotate_dek(RotateTarget::All, false)
            .await
            .unwrap(),
    );
    let after = migrator().await.verify().await.unwrap();
    line(&after);
    println!(
        "reading every value after: {} KMS calls for {} values ({:.4} per value, one per environment)",
        after.kek_calls,
        after.values_seen,
        after.kek_calls as f64 / after.values_seen.max(1) as f64
    );
    // Every value still holds what was first written.
    let m = migrator().await;
    let rows = db
        .query("SELECT environment_id, name, value FROM variables", &[])
        .await
        .unwrap();
    let mut wrong = 0;
    for r in &rows {
        let (env, name, value): (i64, String, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
        let plain = m
            .envelope()
            .decrypt(&value, &value_aad(env, &name))
            .await
            .unwrap();
        if plain[..] != *initial_plaintext(env, &name).as_bytes() {
            wrong += 1;
        }
    }
    println!("checked {} values: {wrong} wrong", rows.len());
    assert_eq!(
        (wrong, after.failures, rows.len()),
        (0, 0, skewed_counts(envs, values).iter().sum())
    );
}
