//! The steps: keyset-paginated passes over `environments` and `variables`, every update
//! a compare-and-swap on the bytes read, a whole batch per statement.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyshift_envelope::format::is_envelope;
use keyshift_envelope::{Stats, WrappedDek, referenced_keks};
use serde::Serialize;
use tokio_postgres::{Client, Row};

use crate::kek::{MigrateEnvelope, MigrateKek, legacy_decrypt};
use crate::progress::{Mode, Progress};
use crate::{MigrateError, dek_context, legacy, value_aad};

/// How a step runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rows per batch (one read and one compare-and-swap statement each).
    pub batch: i64,
    /// Read and count, write nothing.
    pub dry_run: bool,
    /// How many times a row whose compare-and-swap lost is read again and redone within
    /// the pass before it is left for the next pass.
    pub retries: u32,
    /// Progress display.
    pub progress: Mode,
    /// A pause after every batch (throttling; the kill-and-resume test slows a run down
    /// with it).
    pub pause: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch: 1000,
            dry_run: false,
            retries: 3,
            progress: Mode::Auto,
            pause: Duration::ZERO,
        }
    }
}

/// Which environments `rotate-dek` rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateTarget {
    /// One environment.
    Environment(i64),
    /// Every environment.
    All,
}

/// What a step did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// The step.
    pub step: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Environment rows read.
    pub environments_seen: u64,
    /// Environments updated (a DEK generated, rewrapped or rotated), or that would be.
    pub environments_done: u64,
    /// Value rows read (a row read again after a lost race counts once).
    pub values_seen: u64,
    /// Rows updated (or that would be, in a dry run); for `verify`, values that opened.
    pub done: u64,
    /// Rows already in the form the step produces.
    pub skipped: u64,
    /// Compare-and-swaps lost to a concurrent writer.
    pub conflicts: u64,
    /// Rows read again and redone after a lost compare-and-swap.
    pub retried: u64,
    /// Rows left for the next pass: still losing after the retries, or (encrypt-legacy)
    /// an environment without a DEK yet.
    pub left: u64,
    /// Rows that failed to open or to re-encrypt (for `verify`, the failures).
    pub failures: u64,
    /// DEKs unwrapped through the KEK.
    pub unwraps: u64,
    /// DEKs generated.
    pub generates: u64,
    /// DEKs rewrapped.
    pub rewraps: u64,
    /// Legacy values decrypted (each a KEK use: one KMS call per value for KMS).
    pub legacy_decrypts: u64,
    /// Calls to the KEK's service (Secrets Manager `DescribeSecret`/`GetSecretValue`).
    pub kek_calls: u64,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
    /// `report`: environments per KEK version of their DEK (`none` for no DEK).
    pub environment_keks: BTreeMap<String, u64>,
    /// `report`: values per KEK version named in their header (`legacy@version` for
    /// legacy values).
    pub value_keks: BTreeMap<String, u64>,
}

impl Report {
    /// Rows per second over the value rows seen.
    pub fn rows_per_sec(&self) -> f64 {
        self.values_seen as f64 / (self.elapsed_ms.max(1) as f64 / 1000.0)
    }

    /// The report as `key: value` lines.
    pub fn lines(&self) -> String {
        let mut out = format!("{}{}\n", self.step, if self.dry_run { " (dry run)" } else { "" });
        let mut add = |k: &str, v: String| out.push_str(&format!("  {k:<20} {v}\n"));
        add(
            "environments",
            format!("{} seen, {} done", self.environments_seen, self.environments_done),
        );
        add(
            "values",
            format!(
                "{} seen, {} done, {} skipped",
                self.values_seen, self.done, self.skipped
            ),
        );
        add(
            "conflicts",
            format!(
                "{} (retried {}, left for the next pass {})",
                self.conflicts, self.retried, self.left
            ),
        );
        add("failures", self.failures.to_string());
        add(
            "KEK",
            format!(
                "{} unwraps, {} generates, {} rewraps, {} legacy decrypts, {} service calls",
                self.unwraps, self.generates, self.rewraps, self.legacy_decrypts, self.kek_calls
            ),
        );
        add(
            "elapsed",
            format!(
                "{:.2} s ({:.0} rows/s)",
                self.elapsed_ms as f64 / 1000.0,
                self.rows_per_sec()
            ),
        );
        for (k, v) in &self.environment_keks {
            add("environments under", format!("{k}: {v}"));
        }
        for (k, v) in &self.value_keks {
            add("values under", format!("{k}: {v}"));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueStep {
    EncryptLegacy,
    Rewrap,
    RotateDek,
    Verify,
}

enum Outcome {
    Skip,
    Left,
    Failed,
    Opened,
    Write(Vec<u8>),
}

struct ValueRow {
    id: i64,
    env_id: i64,
    name: String,
    value: Vec<u8>,
    dek: Option<Vec<u8>>,
}

impl ValueRow {
    fn from_row(r: &Row) -> Self {
        ValueRow {
            id: r.get(0),
            env_id: r.get(1),
            name: r.get(2),
            value: r.get(3),
            dek: r.get(4),
        }
    }
}

const VALUE_COLUMNS: &str = "SELECT v.id, v.environment_id, v.name, v.value, e.wrapped_dek \
     FROM variables v JOIN environments e ON e.id = v.environment_id";

/// One CAS statement for a batch of values: the ids whose bytes were still `old`.
const VALUE_CAS: &str = "UPDATE variables AS v SET value = u.new \
     FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(id, old, new) \
     WHERE v.id = u.id AND v.value = u.old RETURNING v.id";

/// One CAS statement for a batch of environments' DEKs.
const DEK_CAS: &str = "UPDATE environments AS e SET wrapped_dek = u.new, dek_created_at = \
     CASE WHEN $4 THEN now() ELSE e.dek_created_at END \
     FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(id, old, new) \
     WHERE e.id = u.id AND e.wrapped_dek IS NOT DISTINCT FROM u.old RETURNING e.id";

/// A callback run between a batch's read and its compare-and-swap with the ids about to
/// be written (tests use it to write those rows meanwhile, as the application may).
pub type BeforeCas = Arc<dyn Fn(Vec<i64>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The migration over one database connection and one envelope.
pub struct Migrator {
    db: Client,
    envelope: MigrateEnvelope,
    opts: Options,
    legacy_decrypts: AtomicU64,
    before_cas: Option<BeforeCas>,
    extra: Vec<Client>,
}

fn lock(p: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Migrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrator")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

struct Mark {
    start: Instant,
    stats: Stats,
    legacy: u64,
    calls: u64,
}

impl Migrator {
    /// A migrator over `db` with `envelope`.
    pub fn new(db: Client, envelope: MigrateEnvelope, opts: Options) -> Self {
        Migrator {
            db,
            envelope,
            opts,
            legacy_decrypts: AtomicU64::new(0),
            before_cas: None,
            extra: Vec::new(),
        }
    }

    /// Another connection: value passes split the id range among all connections (one
    /// worker each; PostgreSQL runs each on its own backend).
    pub fn with_connection(mut self, db: Client) -> Self {
        self.extra.push(db);
        self
    }

    /// Runs `hook` before every compare-and-swap of values.
    pub fn with_before_cas(mut self, hook: BeforeCas) -> Self {
        self.before_cas = Some(hook);
        self
    }

    /// The database connection.
    pub fn db(&self) -> &Client {
        &self.db
    }

    /// The envelope.
    pub fn envelope(&self) -> &MigrateEnvelope {
        &self.envelope
    }

    /// The options (a caller may change them between steps).
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.opts
    }

    fn mark(&self) -> Mark {
        Mark {
            start: Instant::now(),
            stats: self.envelope.stats(),
            legacy: self.legacy_decrypts.load(Ordering::Relaxed),
            calls: self.envelope.kek().calls(),
        }
    }

    fn close(&self, mark: Mark, report: &mut Report) {
        let now = self.envelope.stats();
        report.unwraps = now.unwraps - mark.stats.unwraps;
        report.generates = now.generates - mark.stats.generates;
        report.rewraps = now.rewraps - mark.stats.rewraps;
        report.legacy_decrypts = self.legacy_decrypts.load(Ordering::Relaxed) - mark.legacy;
        report.kek_calls = self.envelope.kek().calls() - mark.calls;
        report.elapsed_ms = mark.start.elapsed().as_millis() as u64;
        report.dry_run = self.opts.dry_run;
    }

    async fn count(&self, sql: &str, env: Option<i64>) -> Result<u64, MigrateError> {
        let row = match env {
            Some(id) => {
                self.db
                    .query_one(&format!("{sql} WHERE environment_id = $1"), &[&id])
                    .await?
            }
            None => self.db.query_one(sql, &[]).await?,
        };
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// Step 1: a wrapped DEK for every environment without one (CAS on `wrapped_dek IS
    /// NULL`: an environment that got one meanwhile keeps it).
    pub async fn generate_deks(&self) -> Result<Report, MigrateError> {
        let mark = self.mark();
        let mut report = Report {
            step: "generate-deks".into(),
            ..Report::default()
        };
        let _ = self.envelope.kek().refresh().await;
        let total = self.count("SELECT count(*) FROM environments", None).await?;
        let mut progress = Progress::new(self.opts.progress, "generate-deks", total);
        let mut last = i64::MIN;
        loop {
            let rows = self
                .db
                .query(
                    "SELECT id, wrapped_dek FROM environments WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&last, &self.opts.batch],
                )
                .await?;
            let Some(tail) = rows.last() else { break };
            last = tail.get(0);
            report.environments_seen += rows.len() as u64;
            progress.inc(rows.len() as u64);
            let mut ids = Vec::new();
            let mut news = Vec::new();
            for r in &rows {
                let id: i64 = r.get(0);
                if r.get::<_, Option<Vec<u8>>>(1).is_some() {
                    report.skipped += 1;
                    continue;
                }
                if self.opts.dry_run {
                    report.environments_done += 1;
                    continue;
                }
                match self.envelope.generate_wrapped_dek(&dek_context(id)).await {
                    Ok(w) => {
                        ids.push(id);
                        news.push(w.to_bytes().to_vec());
                    }
                    Err(_) => report.failures += 1,
                }
            }
            if !ids.is_empty() {
                let olds: Vec<Option<Vec<u8>>> = vec![None; ids.len()];
                let won = self.db.query(DEK_CAS, &[&ids, &olds, &news, &true]).await?;
                report.environments_done += won.len() as u64;
                // A lost race here means the application made the DEK: done by it.
                report.conflicts += (ids.len() - won.len()) as u64;
            }
            self.pause().await;
        }
        progress.finish();
        self.close(mark, &mut report);
        Ok(report)
    }

    /// Step 2: every legacy value re-encrypted under its environment's DEK.
    pub async fn encrypt_legacy(&self) -> Result<Report, MigrateError> {
        let mark = self.mark();
        let mut report = Report {
            step: "encrypt-legacy".into(),
            ..Report::default()
        };
        self.value_pass(ValueStep::EncryptLegacy, None, &HashSet::new(), &mut report)
            .await?;
        self.close(mark, &mut report);
        Ok(report)
    }

    /// Step 3: every environment's DEK rewrapped to the KEK's current version (one unwrap
    /// and one wrap each), then every value's header moved to it (no decryption).
    pub async fn rewrap(&self) -> Result<Report, MigrateError> {
        let mark = self.mark();
        let mut report = Report {
            step: "rewrap".into(),
            ..Report::default()
        };
        self.envelope.kek().refresh().await?;
        let current = self.envelope.kek().current().await?;
        let total = self.count("SELECT count(*) FROM environments", None).await?;
        let mut progress = Progress::new(self.opts.progress, "rewrap (DEKs)", total);
        let mut last = i64::MIN;
        loop {
            let rows = self
                .db
                .query(
                    "SELECT id, wrapped_dek FROM environments WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&last, &self.opts.batch],
                )
                .await?;
            let Some(tail) = rows.last() else { break };
            last = tail.get(0);
            report.environments_seen += rows.len() as u64;
            progress.inc(rows.len() as u64);
            let mut pending: Vec<(i64, Option<Vec<u8>>)> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let mut attempt = 0;
            loop {
                let (mut ids, mut olds, mut news) = (Vec::new(), Vec::new(), Vec::new());
                for (id, dek) in pending.drain(..) {
                    let Some(dek) = dek else {
                        report.skipped += 1;
                        continue;
                    };
                    let Ok(w) = WrappedDek::from_bytes(&dek) else {
                        report.failures += 1;
                        continue;
                    };
                    let kek = w.kek_id();
                    if kek.key_version == current.key_version && kek.key_id == current.key_id {
                        report.skipped += 1;
                        continue;
                    }
                    if self.opts.dry_run {
                        report.environments_done += 1;
                        continue;
                    }
                    match self.envelope.rewrap(&w).await {
                        Ok(new) if new != w => {
                            ids.push(id);
                            olds.push(Some(dek));
                            news.push(new.to_bytes().to_vec());
                        }
                        Ok(_) => report.skipped += 1,
                        Err(_) => report.failures += 1,
                    }
                }
                if ids.is_empty() {
                    break;
                }
                let won: HashSet<i64> = self
                    .db
                    .query(DEK_CAS, &[&ids, &olds, &news, &false])
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                report.environments_done += won.len() as u64;
                let lost: Vec<i64> = ids.into_iter().filter(|i| !won.contains(i)).collect();
                if lost.is_empty() {
                    break;
                }
                report.conflicts += lost.len() as u64;
                if attempt >= self.opts.retries {
                    report.left += lost.len() as u64;
                    break;
                }
                attempt += 1;
                report.retried += lost.len() as u64;
                pending = self
                    .db
                    .query(
                        "SELECT id, wrapped_dek FROM environments WHERE id = ANY($1) ORDER BY id",
                        &[&lost],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
            }
            self.pause().await;
        }
        progress.finish();
        self.value_pass(ValueStep::Rewrap, None, &HashSet::new(), &mut report)
            .await?;
        self.close(mark, &mut report);
        Ok(report)
    }

    /// Step 4: a new DEK for `target`'s environments, their values re-encrypted under it.
    ///
    /// Resumable: the rotation's cutoff (the first run's start) is kept in
    /// `keyshift_migrate_state`; an environment whose DEK was made after it is not rotated
    /// again, and a value not under its environment's current DEK is re-encrypted. Run
    /// again after it finished, it rotates nothing and only sweeps values the application
    /// sealed under an old DEK meanwhile; `new_rotation` starts another rotation (the
    /// cutoff moves to now).
    pub async fn rotate_dek(&self, target: RotateTarget, new_rotation: bool) -> Result<Report, MigrateError> {
        let mark = self.mark();
        let mut report = Report {
            step: "rotate-dek".into(),
            ..Report::default()
        };
        let _ = self.envelope.kek().refresh().await;
        let (state, only) = match target {
            RotateTarget::All => ("rotate-dek:all".to_owned(), None),
            RotateTarget::Environment(id) => (format!("rotate-dek:{id}"), Some(id)),
        };
        if !self.opts.dry_run {
            self.db
                .execute(
                    "INSERT INTO keyshift_migrate_state (name, cutoff) VALUES ($1, now()) \
                     ON CONFLICT (name) DO UPDATE SET cutoff = CASE WHEN $2 THEN now() \
                     ELSE keyshift_migrate_state.cutoff END",
                    &[&state, &new_rotation],
                )
                .await?;
        }
        let total = match only {
            Some(_) => 1,
            None => self.count("SELECT count(*) FROM environments", None).await?,
        };
        let mut progress = Progress::new(self.opts.progress, "rotate-dek (DEKs)", total);
        let mut would_rotate = HashSet::new();
        let mut last = i64::MIN;
        loop {
            let rows = self
                .db
                .query(
                    "SELECT id, wrapped_dek FROM environments WHERE id > $1 \
                     AND ($3::bigint IS NULL OR id = $3) AND wrapped_dek IS NOT NULL \
                     AND (dek_created_at IS NULL OR dek_created_at < \
                          CASE WHEN $5 THEN now() ELSE \
                          COALESCE((SELECT cutoff FROM keyshift_migrate_state WHERE name = $4), now()) END) \
                     ORDER BY id LIMIT $2",
                    &[
                        &last,
                        &self.opts.batch,
                        &only,
                        &state,
                        &(new_rotation && self.opts.dry_run),
                    ],
                )
                .await?;
            let Some(tail) = rows.last() else { break };
            last = tail.get(0);
            report.environments_seen += rows.len() as u64;
            progress.inc(rows.len() as u64);
            let (mut ids, mut olds, mut news) = (Vec::new(), Vec::new(), Vec::new());
            for r in &rows {
                let id: i64 = r.get(0);
                if self.opts.dry_run {
                    would_rotate.insert(id);
                    report.environments_done += 1;
                    continue;
                }
                match self.envelope.generate_wrapped_dek(&dek_context(id)).await {
                    Ok(w) => {
                        ids.push(id);
                        olds.push(r.get::<_, Option<Vec<u8>>>(1));
                        news.push(w.to_bytes().to_vec());
                    }
                    Err(_) => report.failures += 1,
                }
            }
            if !ids.is_empty() {
                let won = self.db.query(DEK_CAS, &[&ids, &olds, &news, &true]).await?;
                report.environments_done += won.len() as u64;
                // Lost: the DEK changed meanwhile; the environment is read again by
                // the next pass (its dek_created_at decides).
                let lost = (ids.len() - won.len()) as u64;
                report.conflicts += lost;
                report.left += lost;
            }
            self.pause().await;
        }
        progress.finish();
        self.value_pass(ValueStep::RotateDek, only, &would_rotate, &mut report)
            .await?;
        self.close(mark, &mut report);
        Ok(report)
    }

    /// Opens every value (envelope and legacy) with its AAD; `failures` counts those
    /// that did not open, `done` those that did.
    pub async fn verify(&self) -> Result<Report, MigrateError> {
        let mark = self.mark();
        let mut report = Report {
            step: "verify".into(),
            ..Report::default()
        };
        self.value_pass(ValueStep::Verify, None, &HashSet::new(), &mut report)
            .await?;
        self.close(mark, &mut report);
        Ok(report)
    }

    /// Which KEK versions environments' DEKs and values' headers still name (no KEK
    /// version may be retired while a count is not zero), and the legacy values left.
    pub async fn report(&self) -> Result<Report, MigrateError> {
        let mark = self.mark();
        let mut report = Report {
            step: "report".into(),
            ..Report::default()
        };
        let mut last = i64::MIN;
        let mut wrapped = Vec::new();
        loop {
            let rows = self
                .db
                .query(
                    "SELECT id, wrapped_dek FROM environments WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&last, &self.opts.batch.max(1000)],
                )
                .await?;
            let Some(tail) = rows.last() else { break };
            last = tail.get(0);
            report.environments_seen += rows.len() as u64;
            for r in &rows {
                match r.get::<_, Option<Vec<u8>>>(1) {
                    None => *report.environment_keks.entry("none".into()).or_insert(0) += 1,
                    Some(b) => match WrappedDek::from_bytes(&b) {
                        Ok(w) => wrapped.push(w),
                        Err(_) => report.failures += 1,
                    },
                }
            }
        }
        for (k, n) in referenced_keks(&wrapped) {
            *report.environment_keks.entry(k.to_string()).or_insert(0) += n;
        }
        let mut last = i64::MIN;
        loop {
            let rows = self
                .db
                .query(
                    "SELECT id, value FROM variables WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&last, &self.opts.batch.max(1000)],
                )
                .await?;
            let Some(tail) = rows.last() else { break };
            last = tail.get(0);
            report.values_seen += rows.len() as u64;
            for r in &rows {
                let value: &[u8] = r.get(1);
                let key = if is_envelope(value) {
                    match WrappedDek::of_ciphertext(value) {
                        Ok(w) => w.kek_id().to_string(),
                        Err(_) => {
                            report.failures += 1;
                            continue;
                        }
                    }
                } else if let MigrateKek::Kms { .. } = self.envelope.kek() {
                    // A KMS blob's key is KMS's business: counted together.
                    "legacy@kms".to_owned()
                } else {
                    match legacy::version_of(value) {
                        Ok(v) => format!("legacy@{v}"),
                        Err(_) => {
                            report.failures += 1;
                            continue;
                        }
                    }
                };
                *report.value_keks.entry(key).or_insert(0) += 1;
            }
        }
        self.close(mark, &mut report);
        Ok(report)
    }

    async fn pause(&self) {
        if !self.opts.pause.is_zero() {
            tokio::time::sleep(self.opts.pause).await;
        }
    }

    async fn read_values(
        &self,
        db: &Client,
        after: i64,
        upto: i64,
        only: Option<i64>,
    ) -> Result<Vec<ValueRow>, MigrateError> {
        let rows = match only {
            None => {
                db.query(
                    &format!("{VALUE_COLUMNS} WHERE v.id > $1 AND v.id <= $3 ORDER BY v.id LIMIT $2"),
                    &[&after, &self.opts.batch, &upto],
                )
                .await?
            }
            Some(env) => {
                db.query(
                    &format!(
                        "{VALUE_COLUMNS} WHERE v.environment_id = $4 AND v.id > $1 AND v.id <= $3 \
                         ORDER BY v.id LIMIT $2"
                    ),
                    &[&after, &self.opts.batch, &upto, &env],
                )
                .await?
            }
        };
        Ok(rows.iter().map(ValueRow::from_row).collect())
    }

    /// A pass over the values: the id range split among the connections (one worker
    /// each, keyset batches within its range), the counts merged.
    async fn value_pass(
        &self,
        step: ValueStep,
        only: Option<i64>,
        would_rotate: &HashSet<i64>,
        report: &mut Report,
    ) -> Result<(), MigrateError> {
        let label = match step {
            ValueStep::EncryptLegacy => "encrypt-legacy",
            ValueStep::Rewrap => "rewrap (values)",
            ValueStep::RotateDek => "rotate-dek (values)",
            ValueStep::Verify => "verify",
        };
        let total = self.count("SELECT count(*) FROM variables", only).await?;
        let progress = Mutex::new(Progress::new(self.opts.progress, label, total));
        let row = match only {
            None => {
                self.db
                    .query_one("SELECT min(id), max(id) FROM variables", &[])
                    .await?
            }
            Some(env) => {
                self.db
                    .query_one(
                        "SELECT min(id), max(id) FROM variables WHERE environment_id = $1",
                        &[&env],
                    )
                    .await?
            }
        };
        let (Some(lo), Some(hi)) = (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) else {
            lock(&progress).finish();
            return Ok(());
        };
        let dbs: Vec<&Client> = std::iter::once(&self.db).chain(self.extra.iter()).collect();
        let workers = dbs.len() as i64;
        let span = ((hi - lo) / workers).max(1);
        let mut ranges = Vec::new();
        for (i, db) in dbs.into_iter().enumerate() {
            let after = if i == 0 {
                i64::MIN
            } else {
                lo - 1 + span * i as i64
            };
            let upto = if i as i64 == workers - 1 {
                i64::MAX
            } else {
                lo - 1 + span * (i as i64 + 1)
            };
            ranges.push(self.value_range(db, step, only, would_rotate, after, upto, &progress));
        }
        for part in futures_util::future::join_all(ranges).await {
            let part = part?;
            report.values_seen += part.values_seen;
            report.done += part.done;
            report.skipped += part.skipped;
            report.conflicts += part.conflicts;
            report.retried += part.retried;
            report.left += part.left;
            report.failures += part.failures;
        }
        lock(&progress).finish();
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn value_range(
        &self,
        db: &Client,
        step: ValueStep,
        only: Option<i64>,
        would_rotate: &HashSet<i64>,
        after: i64,
        upto: i64,
        progress: &Mutex<Progress>,
    ) -> Result<Report, MigrateError> {
        let mut report = Report::default();
        let mut deks: HashMap<Vec<u8>, WrappedDek> = HashMap::new();
        let mut last = after;
        loop {
            let rows = self.read_values(db, last, upto, only).await?;
            let Some(tail) = rows.last() else { break };
            last = tail.id;
            report.values_seen += rows.len() as u64;
            lock(progress).inc(rows.len() as u64);
            let mut pending = rows;
            let mut attempt = 0;
            loop {
                let (mut ids, mut olds, mut news) = (Vec::new(), Vec::new(), Vec::new());
                for row in pending.drain(..) {
                    match self.transform(step, &row, would_rotate, &mut deks).await {
                        Outcome::Skip => report.skipped += 1,
                        Outcome::Left => report.left += 1,
                        Outcome::Failed => report.failures += 1,
                        Outcome::Opened => report.done += 1,
                        Outcome::Write(new) => {
                            ids.push(row.id);
                            olds.push(row.value);
                            news.push(new);
                        }
                    }
                }
                if ids.is_empty() {
                    break;
                }
                if self.opts.dry_run {
                    report.done += ids.len() as u64;
                    break;
                }
                if let Some(hook) = &self.before_cas {
                    hook(ids.clone()).await;
                }
                let won: HashSet<i64> = db
                    .query(VALUE_CAS, &[&ids, &olds, &news])
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                report.done += won.len() as u64;
                let lost: Vec<i64> = ids.into_iter().filter(|i| !won.contains(i)).collect();
                if lost.is_empty() {
                    break;
                }
                report.conflicts += lost.len() as u64;
                if attempt >= self.opts.retries {
                    report.left += lost.len() as u64;
                    break;
                }
                attempt += 1;
                report.retried += lost.len() as u64;
                pending = db
                    .query(
                        &format!("{VALUE_COLUMNS} WHERE v.id = ANY($1) ORDER BY v.id"),
                        &[&lost],
                    )
                    .await?
                    .iter()
                    .map(ValueRow::from_row)
                    .collect();
            }
            self.pause().await;
        }
        Ok(report)
    }

    async fn transform(
        &self,
        step: ValueStep,
        row: &ValueRow,
        would_rotate: &HashSet<i64>,
        deks: &mut HashMap<Vec<u8>, WrappedDek>,
    ) -> Outcome {
        let aad = value_aad(row.env_id, &row.name);
        let envelope = is_envelope(&row.value);
        let env_dek = match &row.dek {
            Some(bytes) => match deks.get(bytes) {
                Some(w) => Some(w.clone()),
                None => match WrappedDek::from_bytes(bytes) {
                    Ok(w) => {
                        if deks.len() > 100_000 {
                            deks.clear();
                        }
                        deks.insert(bytes.clone(), w.clone());
                        Some(w)
                    }
                    Err(_) => return Outcome::Failed,
                },
            },
            None => None,
        };
        match step {
            ValueStep::Verify => {
                let opened = if envelope {
                    self.envelope.decrypt(&row.value, &aad).await.is_ok()
                } else {
                    self.legacy_decrypts.fetch_add(1, Ordering::Relaxed);
                    legacy_decrypt(&self.envelope, &row.value, &aad).await.is_ok()
                };
                if opened { Outcome::Opened } else { Outcome::Failed }
            }
            ValueStep::EncryptLegacy => {
                if envelope {
                    return Outcome::Skip;
                }
                let Some(w) = env_dek else { return Outcome::Left };
                self.legacy_decrypts.fetch_add(1, Ordering::Relaxed);
                let Ok(plain) = legacy_decrypt(&self.envelope, &row.value, &aad).await else {
                    return Outcome::Failed;
                };
                match self.envelope.data_key(&w).await {
                    Ok(key) => match key.seal(&plain, &aad) {
                        Ok(c) => Outcome::Write(c),
                        Err(_) => Outcome::Failed,
                    },
                    Err(_) => Outcome::Failed,
                }
            }
            ValueStep::Rewrap => {
                let Some(w) = env_dek.filter(|_| envelope) else {
                    return Outcome::Skip;
                };
                let Ok(own) = WrappedDek::of_ciphertext(&row.value) else {
                    return Outcome::Failed;
                };
                // Another DEK (rotate-dek's business) or already this record.
                if own.dek_id() != w.dek_id() || own == w {
                    return Outcome::Skip;
                }
                match MigrateEnvelope::rewrap_ciphertext(&row.value, &w) {
                    Ok(c) => Outcome::Write(c),
                    Err(_) => Outcome::Failed,
                }
            }
            ValueStep::RotateDek => {
                let Some(w) = env_dek.filter(|_| envelope) else {
                    return Outcome::Skip;
                };
                let Ok(own) = WrappedDek::of_ciphertext(&row.value) else {
                    return Outcome::Failed;
                };
                if self.opts.dry_run {
                    return if would_rotate.contains(&row.env_id) || own.dek_id() != w.dek_id() {
                        Outcome::Write(Vec::new())
                    } else {
                        Outcome::Skip
                    };
                }
                if own.dek_id() == w.dek_id() {
                    return Outcome::Skip;
                }
                let Ok(plain) = self.envelope.decrypt(&row.value, &aad).await else {
                    return Outcome::Failed;
                };
                match self.envelope.data_key(&w).await {
                    Ok(key) => match key.seal(&plain, &aad) {
                        Ok(c) => Outcome::Write(c),
                        Err(_) => Outcome::Failed,
                    },
                    Err(_) => Outcome::Failed,
                }
            }
        }
    }
}
