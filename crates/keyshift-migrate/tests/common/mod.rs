//! Shared by the tests and the benchmark: a real PostgreSQL 15 through keyshift-local's
//! harness, the example schema, a data set of legacy values over environments with
//! skewed sizes, a local KEK file, and the application's concurrent writer.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyshift_envelope::WrappedDek;
use keyshift_envelope::format::is_envelope;
use keyshift_local::postgres::Postgres;
use keyshift_migrate::db::Tls;
use keyshift_migrate::progress::Mode;
use keyshift_migrate::{
    KekFile, KekSource, MigrateEnvelope, Migrator, Options, SCHEMA, connect, legacy, open_envelope, value_aad,
};
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;

/// A cluster with the schema in database `app`, and a KEK file.
pub struct Fixture {
    pub pg: Postgres,
    pub dir: PathBuf,
    pub kek_path: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key(byte: u8) -> [u8; 32] {
    let mut k = [byte; 32];
    k[0] = 0x4b;
    k
}

impl Fixture {
    pub async fn start(tag: &str) -> Fixture {
        let pg = Postgres::start().expect("PostgreSQL 15 starts (make postgres installs it)");
        pg.psql("postgres", "CREATE DATABASE app").unwrap();
        let dir = std::env::temp_dir().join(format!(
            "keyshift-migrate-{tag}-{}-{}",
            std::process::id(),
            pg.port
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let kek_path = dir.join("kek.json");
        KekFile::new("platform/kek", "v1", key(1))
            .save(&kek_path)
            .unwrap();
        let f = Fixture { pg, dir, kek_path };
        f.db()
            .await
            .batch_execute(SCHEMA)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        f
    }

    pub fn url(&self) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/app",
            self.pg.superuser_password, self.pg.port
        )
    }

    pub fn tls(&self) -> Tls {
        Tls::CaFile(self.pg.ca_pem_path.clone())
    }

    pub async fn db(&self) -> Client {
        connect(&self.url(), &self.tls()).await.unwrap()
    }

    pub async fn envelope(&self) -> MigrateEnvelope {
        open_envelope(KekSource::file(&self.kek_path)).await.unwrap()
    }

    /// A fresh migrator (a new process would be the same: nothing cached).
    pub async fn migrator(&self, opts: Options) -> Migrator {
        Migrator::new(self.db().await, self.envelope().await, opts)
    }

    /// A migrator with `workers` connections.
    pub async fn migrator_with(&self, opts: Options, workers: usize) -> Migrator {
        let mut m = self.migrator(opts).await;
        for _ in 1..workers {
            m = m.with_connection(self.db().await);
        }
        m
    }

    pub fn quiet() -> Options {
        Options {
            progress: Mode::Quiet,
            ..Options::default()
        }
    }

    /// A KEK rotation: version `version` becomes AWSCURRENT.
    pub fn rotate_kek(&self, version: &str, byte: u8) {
        let mut file = KekFile::load(&self.kek_path).unwrap();
        file.rotate(version, key(byte));
        file.save(&self.kek_path).unwrap();
    }

    /// The CLI's arguments for this database, with the local KEK file.
    pub fn args(&self) -> Vec<String> {
        self.args_with(["--kek-file", &self.kek_path.display().to_string()])
    }

    /// The CLI's arguments for this database, with `kek` (`["--kek-file", PATH]`,
    /// `["--kek-secret", NAME]`, `["--kek-kms", KEY]`).
    pub fn args_with(&self, kek: [&str; 2]) -> Vec<String> {
        let mut args = vec![
            "--database-url".into(),
            self.url(),
            "--ca-file".into(),
            self.pg.ca_pem_path.display().to_string(),
        ];
        args.extend(kek.map(str::to_owned));
        args
    }
}

/// The plaintext of a value as first stored.
pub fn initial_plaintext(env: i64, name: &str) -> String {
    format!("postgres://app:{name}-{env}@db-{env}.internal:5432/app?sslmode=verify-full")
}

/// How many values each of `envs` environments holds: most 5..=15, one in ten gets a
/// share of the rest (hundreds), `total` in all.
pub fn skewed_counts(envs: usize, total: usize) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let mut counts: Vec<usize> = (0..envs)
        .map(|i| if i % 10 == 0 { 0 } else { rng.random_range(5..=15) })
        .collect();
    let light: usize = counts.iter().sum();
    let rest = total.saturating_sub(light);
    let heavy: Vec<usize> = (0..envs).filter(|i| i % 10 == 0).collect();
    let weights: Vec<usize> = heavy.iter().map(|_| rng.random_range(1..=3)).collect();
    let wsum: usize = weights.iter().sum::<usize>().max(1);
    let mut given = 0;
    for (h, w) in heavy.iter().zip(&weights) {
        counts[*h] = rest * w / wsum;
        given += counts[*h];
    }
    if let Some(h) = heavy.first() {
        counts[*h] += rest - given;
    }
    counts
}

/// `envs` environments without DEKs and `total` legacy values (KEK version v1).
pub async fn populate(f: &Fixture, envs: usize, total: usize) {
    let db = f.db().await;
    insert_environments(&db, envs).await;
    let kek = KekFile::load(&f.kek_path).unwrap();
    let k = kek.key(&kek.current).unwrap();
    let counts = skewed_counts(envs, total);
    let (mut e, mut n, mut v) = (Vec::new(), Vec::new(), Vec::new());
    for (i, count) in counts.iter().enumerate() {
        let env = i as i64 + 1;
        for j in 0..*count {
            let name = format!("VAR_{j}");
            let plain = initial_plaintext(env, &name);
            v.push(legacy::encrypt(&kek.current, &k, plain.as_bytes(), &value_aad(env, &name)).unwrap());
            e.push(env);
            n.push(name);
            if e.len() == 5000 {
                insert(&db, &mut e, &mut n, &mut v).await;
            }
        }
    }
    insert(&db, &mut e, &mut n, &mut v).await;
    db.batch_execute("ANALYZE").await.unwrap();
}

/// `envs` environments without DEKs and `total` legacy values encrypted directly by KMS
/// key `key_id` (one `Encrypt` each, `parallel` in flight), as a platform wrote them
/// before envelope encryption.
pub async fn populate_kms(
    f: &Fixture,
    envs: usize,
    total: usize,
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    parallel: usize,
) {
    let db = f.db().await;
    insert_environments(&db, envs).await;
    let rows: Vec<(i64, String)> = skewed_counts(envs, total)
        .iter()
        .enumerate()
        .flat_map(|(i, count)| (0..*count).map(move |j| (i as i64 + 1, format!("VAR_{j}"))))
        .collect();
    for chunk in rows.chunks(parallel.max(1) * 50) {
        let blobs = futures_util::future::join_all(chunk.chunks(50).map(|part| async move {
            let mut out = Vec::with_capacity(part.len());
            for (env, name) in part {
                let plaintext = initial_plaintext(*env, name).into_bytes();
                out.push(
                    keyshift_local::moto::kms_encrypt(kms, key_id, plaintext)
                        .await
                        .unwrap(),
                );
            }
            out
        }))
        .await;
        let mut e: Vec<i64> = chunk.iter().map(|(env, _)| *env).collect();
        let mut n: Vec<String> = chunk.iter().map(|(_, name)| name.clone()).collect();
        let mut v: Vec<Vec<u8>> = blobs.into_iter().flatten().collect();
        insert(&db, &mut e, &mut n, &mut v).await;
    }
    db.batch_execute("ANALYZE").await.unwrap();
}

/// Environments 1..=`envs`, without DEKs.
async fn insert_environments(db: &Client, envs: usize) {
    let ids: Vec<i64> = (1..=envs as i64).collect();
    db.execute(
        "INSERT INTO environments (id) SELECT * FROM unnest($1::bigint[])",
        &[&ids],
    )
    .await
    .unwrap();
}

async fn insert(db: &Client, e: &mut Vec<i64>, n: &mut Vec<String>, v: &mut Vec<Vec<u8>>) {
    if e.is_empty() {
        return;
    }
    db.execute(
        "INSERT INTO variables (environment_id, name, value) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[])",
        &[&*e, &*n, &*v],
    )
    .await
    .unwrap();
    e.clear();
    n.clear();
    v.clear();
}

/// The application: writes random rows as it would (envelope under the environment's
/// DEK when it has one, legacy otherwise) and remembers what it wrote last.
pub struct Writer {
    pub stop: Arc<AtomicBool>,
    pub writes: Arc<AtomicU64>,
    pub expected: Arc<Mutex<HashMap<i64, String>>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Writer {
    pub async fn start(f: &Fixture, pause: Duration) -> Writer {
        let db = f.db().await;
        let envelope = f.envelope().await;
        let kek_path = f.kek_path.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let expected = Arc::new(Mutex::new(HashMap::new()));
        let (s, w, x) = (stop.clone(), writes.clone(), expected.clone());
        let handle = tokio::spawn(async move {
            let row = db
                .query_one("SELECT min(id), max(id) FROM variables", &[])
                .await
                .unwrap();
            let (lo, hi): (i64, i64) = (row.get(0), row.get(1));
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            let mut generation = 0u64;
            while !s.load(Ordering::Relaxed) {
                let id = rng.random_range(lo..=hi);
                generation += 1;
                let r = db
                    .query_one(
                        "SELECT v.environment_id, v.name, e.wrapped_dek FROM variables v \
                         JOIN environments e ON e.id = v.environment_id WHERE v.id = $1",
                        &[&id],
                    )
                    .await
                    .unwrap();
                let (env, name, dek): (i64, String, Option<Vec<u8>>) = (r.get(0), r.get(1), r.get(2));
                let plain = format!("written-by-the-app-{generation}-{name}-{env}");
                let aad = value_aad(env, &name);
                let value = match dek {
                    Some(d) => envelope
                        .encrypt(plain.as_bytes(), &WrappedDek::from_bytes(&d).unwrap(), &aad)
                        .await
                        .unwrap(),
                    None => {
                        let kek = KekFile::load(&kek_path).unwrap();
                        legacy::encrypt(
                            &kek.current,
                            &kek.key(&kek.current).unwrap(),
                            plain.as_bytes(),
                            &aad,
                        )
                        .unwrap()
                    }
                };
                db.execute("UPDATE variables SET value = $2 WHERE id = $1", &[&id, &value])
                    .await
                    .unwrap();
                x.lock().unwrap().insert(id, plain);
                w.fetch_add(1, Ordering::Relaxed);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        });
        Writer {
            stop,
            writes,
            expected,
            handle,
        }
    }

    pub async fn finish(self) -> (u64, HashMap<i64, String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.unwrap();
        let map = std::mem::take(&mut *self.expected.lock().unwrap());
        (self.writes.load(Ordering::Relaxed), map)
    }
}

/// What every value holds now compared with what it should: (values, mismatches,
/// legacy values, values not under their environment's current DEK).
pub async fn check_all(f: &Fixture, expected: &HashMap<i64, String>) -> (u64, u64, u64, u64) {
    let db = f.db().await;
    let envelope = f.envelope().await;
    let rows = db
        .query(
            "SELECT v.id, v.environment_id, v.name, v.value, e.wrapped_dek FROM variables v \
             JOIN environments e ON e.id = v.environment_id ORDER BY v.id",
            &[],
        )
        .await
        .unwrap();
    let (mut n, mut bad, mut legacy_left, mut stale) = (0, 0, 0, 0);
    for r in rows {
        let (id, env, name, value, dek): (i64, i64, String, Vec<u8>, Option<Vec<u8>>) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        n += 1;
        let aad = value_aad(env, &name);
        let plain = if is_envelope(&value) {
            let own = WrappedDek::of_ciphertext(&value).unwrap();
            let current = dek.map(|d| WrappedDek::from_bytes(&d).unwrap());
            if current.map(|c| c.dek_id()) != Some(own.dek_id()) {
                stale += 1;
            }
            envelope.decrypt(&value, &aad).await.map(|p| p.to_vec())
        } else {
            legacy_left += 1;
            keyshift_migrate::kek::legacy_decrypt(&envelope, &value, &aad)
                .await
                .map(|p| p.to_vec())
                .map_err(|_| keyshift_envelope::Error::Open)
        };
        let want = expected
            .get(&id)
            .cloned()
            .unwrap_or_else(|| initial_plaintext(env, &name));
        match plain {
            Ok(p) if p == want.as_bytes() => {}
            _ => bad += 1,
        }
    }
    (n, bad, legacy_left, stale)
}

/// A digest of every row of both tables (dry runs must leave it unchanged).
pub async fn snapshot(f: &Fixture) -> String {
    let db = f.db().await;
    let r = db
        .query_one(
            "SELECT md5(coalesce((SELECT string_agg(id::text || ':' || coalesce(encode(wrapped_dek, 'hex'), '-') \
             || ':' || coalesce(dek_created_at::text, '-'), ',' ORDER BY id) FROM environments), '')) || \
             md5(coalesce((SELECT string_agg(id::text || ':' || encode(value, 'hex'), ',' ORDER BY id) FROM variables), ''))",
            &[],
        )
        .await
        .unwrap();
    r.get(0)
}
