//! The migration on a real PostgreSQL 15 (keyshift-local's harness): every step with the
//! application writing random rows throughout, kill -9 and resume, dry runs, and a lost
//! compare-and-swap counted.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Fixture, Writer, check_all, populate, snapshot};
use keyshift_envelope::WrappedDek;
use keyshift_local::moto::{Moto, emulator_env, kms_key_with_alias, kms_move_alias};
use keyshift_migrate::{KekFile, Options, Report, RotateTarget, legacy, value_aad};

const ENVS: usize = 100;
const VALUES: usize = 3000;

async fn count(f: &Fixture, sql: &str) -> i64 {
    f.db().await.query_one(sql, &[]).await.unwrap().get(0)
}

const ENVELOPE_VALUES: &str =
    "SELECT count(*) FROM variables WHERE substring(value from 1 for 3) = 'KSE'::bytea";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_online_with_a_concurrent_writer() {
    let f = Fixture::start("online").await;
    populate(&f, ENVS, VALUES).await;
    let writer = Writer::start(&f, Duration::ZERO).await;

    // 1. DEKs for every environment.
    let r = f
        .migrator_with(Fixture::quiet(), 2)
        .await
        .generate_deks()
        .await
        .unwrap();
    assert_eq!(
        (r.environments_done, r.generates, r.failures),
        (ENVS as u64, ENVS as u64, 0),
        "{r:?}"
    );
    assert_eq!(
        count(&f, "SELECT count(*) FROM environments WHERE wrapped_dek IS NULL").await,
        0
    );

    // 2. Legacy values into envelopes: one unwrap per environment (a fresh process).
    let r = f
        .migrator_with(Fixture::quiet(), 2)
        .await
        .encrypt_legacy()
        .await
        .unwrap();
    assert_eq!(r.failures, 0, "{r:?}");
    assert_eq!(r.unwraps, ENVS as u64, "{r:?}");
    assert!(
        r.done > 0 && r.done + r.skipped + r.left >= VALUES as u64 - r.conflicts,
        "{r:?}"
    );
    assert_eq!(
        count(&f, ENVELOPE_VALUES).await,
        VALUES as i64,
        "no legacy value left"
    );

    // 3. A KEK rotation, then every DEK rewrapped: one unwrap per environment.
    f.rotate_kek("v2", 2);
    let m = f.migrator_with(Fixture::quiet(), 2).await;
    let r = m.rewrap().await.unwrap();
    assert_eq!(r.failures, 0, "{r:?}");
    assert_eq!(
        (r.environments_done, r.unwraps, r.rewraps),
        (ENVS as u64, ENVS as u64, ENVS as u64),
        "{r:?}"
    );
    let rep = m.report().await.unwrap();
    assert_eq!(rep.environment_keks.len(), 1, "{rep:?}");
    assert_eq!(
        rep.environment_keks
            .get("secrets-manager:platform/kek@v2")
            .copied(),
        Some(ENVS as u64),
        "{rep:?}"
    );

    // 4. A new DEK for every environment: one unwrap (the old DEK) per environment.
    let r = f
        .migrator(Fixture::quiet())
        .await
        .rotate_dek(RotateTarget::All, false)
        .await
        .unwrap();
    assert_eq!(r.failures, 0, "{r:?}");
    assert_eq!(
        (r.environments_done, r.generates, r.unwraps),
        (ENVS as u64, ENVS as u64, ENVS as u64),
        "{r:?}"
    );

    let (writes, expected) = writer.finish().await;
    assert!(writes > 100, "the writer wrote throughout ({writes} writes)");

    // The writer may have sealed a value under a DEK it read just before a swap: the
    // next pass takes it; after it every value is under its environment's DEK and the
    // current KEK version.
    let m = f.migrator_with(Fixture::quiet(), 2).await;
    let r2 = m.rewrap().await.unwrap();
    let r4 = m.rotate_dek(RotateTarget::All, false).await.unwrap();
    assert_eq!(
        (r2.failures, r4.failures, r4.environments_done),
        (0, 0, 0),
        "{r2:?} {r4:?}"
    );
    let (n, bad, legacy_left, stale) = check_all(&f, &expected).await;
    assert_eq!(
        (n, bad, legacy_left, stale),
        (VALUES as u64, 0, 0, 0),
        "every write kept"
    );
    let v = m.verify().await.unwrap();
    assert_eq!((v.done, v.failures), (VALUES as u64, 0), "{v:?}");
    let rep = m.report().await.unwrap();
    assert_eq!(rep.value_keks.len(), 1, "{rep:?}");
    assert_eq!(
        rep.value_keks.get("secrets-manager:platform/kek@v2").copied(),
        Some(VALUES as u64)
    );
    eprintln!("writer: {writes} writes; {}", r.lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_change_nothing() {
    let f = Fixture::start("dry").await;
    populate(&f, ENVS, VALUES).await;
    let dry = Options {
        dry_run: true,
        ..Fixture::quiet()
    };
    let before = snapshot(&f).await;
    let r = f.migrator(dry.clone()).await.generate_deks().await.unwrap();
    assert_eq!((r.environments_done, r.dry_run), (ENVS as u64, true), "{r:?}");
    let r = f.migrator(dry.clone()).await.encrypt_legacy().await.unwrap();
    assert_eq!(
        r.left, VALUES as u64,
        "no DEK yet: all left for after step 1: {r:?}"
    );
    assert_eq!(snapshot(&f).await, before);

    f.migrator(Fixture::quiet()).await.generate_deks().await.unwrap();
    let before = snapshot(&f).await;
    let r = f.migrator(dry.clone()).await.encrypt_legacy().await.unwrap();
    assert_eq!((r.done, r.failures), (VALUES as u64, 0), "{r:?}");
    assert_eq!(snapshot(&f).await, before);

    f.migrator(Fixture::quiet()).await.encrypt_legacy().await.unwrap();
    f.rotate_kek("v2", 2);
    let before = snapshot(&f).await;
    let r = f.migrator(dry.clone()).await.rewrap().await.unwrap();
    assert_eq!(r.environments_done, ENVS as u64, "{r:?}");
    let r = f
        .migrator(dry.clone())
        .await
        .rotate_dek(RotateTarget::All, false)
        .await
        .unwrap();
    assert_eq!(
        (r.environments_done, r.done),
        (ENVS as u64, VALUES as u64),
        "{r:?}"
    );
    let r = f
        .migrator(dry.clone())
        .await
        .rotate_dek(RotateTarget::Environment(3), false)
        .await
        .unwrap();
    assert_eq!(r.environments_done, 1, "{r:?}");
    assert_eq!(snapshot(&f).await, before, "dry runs wrote nothing");
    assert_eq!(count(&f, "SELECT count(*) FROM keyshift_migrate_state").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_compare_and_swap_is_counted_retried_and_the_write_kept() {
    let f = Fixture::start("cas").await;
    populate(&f, 10, 300).await;
    f.migrator(Fixture::quiet()).await.generate_deks().await.unwrap();
    // The application rewrites the first five rows of the first batch between the
    // tool's read and its compare-and-swap.
    let app = Arc::new(f.db().await);
    let kek = KekFile::load(&f.kek_path).unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let written = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook: keyshift_migrate::steps::BeforeCas = {
        let (app, fired, written) = (app.clone(), fired.clone(), written.clone());
        Arc::new(move |ids: Vec<i64>| {
            let (app, fired, kek, written) = (app.clone(), fired.clone(), kek.clone(), written.clone());
            Box::pin(async move {
                if fired.swap(true, Ordering::SeqCst) {
                    return;
                }
                for id in ids.into_iter().take(5) {
                    let r = app
                        .query_one("SELECT environment_id, name FROM variables WHERE id = $1", &[&id])
                        .await
                        .unwrap();
                    let (env, name): (i64, String) = (r.get(0), r.get(1));
                    let v = legacy::encrypt(
                        &kek.current,
                        &kek.key(&kek.current).unwrap(),
                        format!("app-{id}").as_bytes(),
                        &value_aad(env, &name),
                    )
                    .unwrap();
                    app.execute("UPDATE variables SET value = $2 WHERE id = $1", &[&id, &v])
                        .await
                        .unwrap();
                    written.lock().unwrap().push(id);
                }
            })
        })
    };
    let m = f.migrator_with(Fixture::quiet(), 2).await.with_before_cas(hook);
    let r = m.encrypt_legacy().await.unwrap();
    assert_eq!(
        (r.conflicts, r.retried, r.left, r.failures),
        (5, 5, 0, 0),
        "{r:?}"
    );
    assert_eq!(r.done, 300, "{r:?}");
    let ids = written.lock().unwrap().clone();
    assert_eq!(ids.len(), 5);
    let expected = ids.iter().map(|id| (*id, format!("app-{id}"))).collect();
    let (n, bad, legacy_left, _) = check_all(&f, &expected).await;
    assert_eq!(
        (n, bad, legacy_left),
        (300, 0, 0),
        "the application's writes survived, migrated"
    );
}

fn run_cli(f: &Fixture, extra: &[&str]) -> Report {
    let v = run_cli_env(&f.args(), &[], extra);
    Report {
        step: v["step"].as_str().unwrap_or("").into(),
        environments_done: v["environments_done"].as_u64().unwrap(),
        done: v["done"].as_u64().unwrap(),
        skipped: v["skipped"].as_u64().unwrap(),
        failures: v["failures"].as_u64().unwrap(),
        unwraps: v["unwraps"].as_u64().unwrap(),
        ..Report::default()
    }
}

/// Starts `extra` slowed down, SIGKILLs it once `progress` passes `at` (and before it
/// reaches `all`), and returns `progress` after the kill.
async fn kill_midway(f: &Fixture, extra: &[&str], progress: &str, at: i64, all: i64) -> i64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyshift-migrate"))
        .args(f.args())
        .args(["--quiet", "--batch", "50", "--pause-ms", "40"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let n = count(f, progress).await;
        if n >= at {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{extra:?} finished before the kill"
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{extra:?} made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let n = count(f, progress).await;
    assert!(n < all, "killed mid-way ({n} of {all})");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_sigkill_and_run_again_finishes_with_nothing_lost_or_doubled() {
    let f = Fixture::start("kill").await;
    populate(&f, ENVS, VALUES).await;
    let r = run_cli(&f, &["generate-deks"]);
    assert_eq!(r.environments_done, ENVS as u64);

    // encrypt-legacy, killed mid-way, then run again: it does exactly what was left.
    let migrated = kill_midway(&f, &["encrypt-legacy"], ENVELOPE_VALUES, 600, VALUES as i64).await;
    let r = run_cli(&f, &["encrypt-legacy"]);
    assert_eq!(r.done, VALUES as u64 - migrated as u64, "nothing redone: {r:?}");
    assert_eq!(r.skipped, migrated as u64, "{r:?}");
    let (n, bad, legacy_left, stale) = check_all(&f, &Default::default()).await;
    assert_eq!(
        (n, bad, legacy_left, stale),
        (VALUES as u64, 0, 0, 0),
        "each value sealed once"
    );

    // rotate-dek --all, killed mid-way: environments rotated before the kill keep their
    // new DEK (none rotated twice), the rest are rotated by the second run.
    let deks_before: Vec<Vec<u8>> = dek_ids(&f).await;
    let rotated = "SELECT count(*) FROM environments WHERE dek_created_at >= \
                   (SELECT cutoff FROM keyshift_migrate_state WHERE name = 'rotate-dek:all')";
    let done_before_kill = kill_midway(&f, &["rotate-dek", "--all"], rotated, 1, ENVS as i64 + 1).await;
    let after_kill = dek_ids(&f).await;
    let r = run_cli(&f, &["rotate-dek", "--all"]);
    assert_eq!(
        r.environments_done,
        ENVS as u64 - done_before_kill as u64,
        "{r:?}"
    );
    let after = dek_ids(&f).await;
    for i in 0..ENVS {
        assert_ne!(after[i], deks_before[i], "environment {} rotated", i + 1);
        if after_kill[i] != deks_before[i] {
            assert_eq!(after[i], after_kill[i], "environment {} rotated once", i + 1);
        }
    }
    let (n, bad, legacy_left, stale) = check_all(&f, &Default::default()).await;
    assert_eq!((n, bad, legacy_left, stale), (VALUES as u64, 0, 0, 0));
    let v = run_cli(&f, &["verify"]);
    assert_eq!((v.done, v.failures), (VALUES as u64, 0));

    // Run again: the rotation is done, nothing rotates; --new starts another.
    let r = run_cli(&f, &["rotate-dek", "--all"]);
    assert_eq!((r.environments_done, r.done), (0, 0), "{r:?}");
    let r = run_cli(&f, &["rotate-dek", "--environment", "7", "--new"]);
    assert_eq!(r.environments_done, 1, "{r:?}");
    assert_ne!(dek_ids(&f).await[6], after[6]);
}

async fn dek_ids(f: &Fixture) -> Vec<Vec<u8>> {
    f.db()
        .await
        .query("SELECT wrapped_dek FROM environments ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| WrappedDek::from_bytes(r.get(0)).unwrap().dek_id().to_vec())
        .collect()
}

fn run_cli_env(args: &[String], env: &[(&str, String)], extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_keyshift-migrate"))
        .args(args)
        .args(["--quiet", "--json"])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One step of the CLI at a time against `moto` (its endpoint, region and dummy
/// credentials in the environment), with the fixture's database and `kek`.
fn cli_on_moto(f: &Fixture, moto: &Moto, kek: [&str; 2]) -> impl Fn(&[&str]) -> serde_json::Value {
    let args = f.args_with(kek);
    let env = emulator_env(&moto.endpoint());
    move |extra| run_cli_env(&args, &env, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kek_in_secrets_manager_on_moto_through_the_cli() {
    use keyshift_client::aws_sdk_secretsmanager as sm;
    let moto = Moto::start().unwrap();
    let client = sm::Client::new(&moto.sdk_config().await);
    let (v1, v2) = (
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    );
    let f = Fixture::start("moto").await;
    // The legacy values name the secret's first version (as the platform wrote them).
    let mut file = KekFile::new("platform/kek", v1, [7; 32]);
    file.save(&f.kek_path).unwrap();
    client
        .create_secret()
        .name("platform/kek")
        .client_request_token(v1)
        .secret_string(file.jwk(v1).unwrap())
        .send()
        .await
        .unwrap();
    populate(&f, 20, 400).await;
    let cli = cli_on_moto(&f, &moto, ["--kek-secret", "platform/kek"]);
    let r = cli(&["generate-deks"]);
    assert_eq!(r["environments_done"], 20, "{r}");
    let r = cli(&["encrypt-legacy"]);
    assert_eq!(
        (r["done"].as_u64(), r["unwraps"].as_u64()),
        (Some(400), Some(20)),
        "{r}"
    );
    // keyshift rotates the KEK: a new version becomes AWSCURRENT.
    file.rotate(v2, [8; 32]);
    client
        .put_secret_value()
        .secret_id("platform/kek")
        .client_request_token(v2)
        .secret_string(file.jwk(v2).unwrap())
        .send()
        .await
        .unwrap();
    let r = cli(&["rewrap"]);
    assert_eq!(
        (
            r["environments_done"].as_u64(),
            r["unwraps"].as_u64(),
            r["done"].as_u64()
        ),
        (Some(20), Some(20), Some(400)),
        "{r}"
    );
    let r = cli(&["report"]);
    let want = format!("secrets-manager:platform/kek@{v2}");
    assert_eq!(r["environment_keks"][&want], 20, "{r}");
    assert_eq!(r["value_keks"][&want], 400, "{r}");
    let r = cli(&["verify"]);
    assert_eq!(
        (r["done"].as_u64(), r["failures"].as_u64()),
        (Some(400), Some(0)),
        "{r}"
    );
    assert!(
        r["kek_calls"].as_u64().unwrap() <= 10,
        "a handful of Secrets Manager calls: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kek_in_kms_on_moto_through_the_cli() {
    let moto = Moto::start().unwrap();
    let kms = moto.kms().await;
    kms_key_with_alias(&kms, "alias/app-values").await.unwrap();
    let f = Fixture::start("kms").await;
    // The legacy values: one KMS Encrypt each, as the platform wrote them.
    common::populate_kms(&f, 20, 300, &kms, "alias/app-values", 4).await;
    let cli = cli_on_moto(&f, &moto, ["--kek-kms", "alias/app-values"]);
    let calls = |r: &serde_json::Value| r["kek_calls"].as_u64().unwrap();
    let r = cli(&["generate-deks"]);
    // One GenerateDataKey per environment.
    assert_eq!(
        (r["environments_done"].as_u64(), calls(&r)),
        (Some(20), 20),
        "{r}"
    );
    let r = cli(&["report"]);
    assert_eq!(r["value_keks"]["legacy@kms"], 300, "{r}");
    let r = cli(&["encrypt-legacy"]);
    // One Decrypt per legacy value, one per environment's DEK: the last KMS call per value.
    assert_eq!(
        (
            r["done"].as_u64(),
            r["legacy_decrypts"].as_u64(),
            r["unwraps"].as_u64(),
            calls(&r)
        ),
        (Some(300), Some(300), Some(20), 320),
        "{r}"
    );
    // The KEK rotation: the alias moves to a new key.
    let k2 = kms_move_alias(&kms, "alias/app-values").await.unwrap();
    let r = cli(&["rewrap"]);
    // KMS rewraps on its side (ReEncrypt): no DEK leaves KMS, no value is decrypted.
    // One DescribeKey for the step, then one ReEncrypt per environment, to the key that
    // DescribeKey resolved.
    assert_eq!(
        (
            r["environments_done"].as_u64(),
            r["rewraps"].as_u64(),
            r["unwraps"].as_u64(),
            r["done"].as_u64(),
            calls(&r)
        ),
        (Some(20), Some(20), Some(0), Some(300), 21),
        "{r}"
    );
    let r = cli(&["report"]);
    let want = format!("kms:{}", k2.arn().unwrap());
    assert_eq!(r["environment_keks"][&want], 20, "{r}");
    assert_eq!(r["value_keks"][&want], 300, "{r}");
    let r = cli(&["rotate-dek", "--all"]);
    assert_eq!(
        (
            r["environments_done"].as_u64(),
            r["generates"].as_u64(),
            r["unwraps"].as_u64(),
            r["done"].as_u64()
        ),
        (Some(20), Some(20), Some(20), Some(300)),
        "{r}"
    );
    let r = cli(&["verify"]);
    // Reading every value now costs one Decrypt per environment, not one per value.
    assert_eq!(
        (r["done"].as_u64(), r["failures"].as_u64(), calls(&r)),
        (Some(300), Some(0), 20),
        "{r}"
    );
}
