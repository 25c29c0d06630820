//! The world of the PostgreSQL target's tests: a real PostgreSQL 15 (keyshift-local's
//! harness, TLS from its own CA, every statement logged), moto's server as Secrets
//! Manager (the rotated secret and the master secret, read through the real SDK client),
//! keyshift's real [`Executor`] over the SDK adapter, a scheduler double that keeps the
//! follow-ups for the test to deliver, and a clock that never lags the wall clock but
//! jumps to each follow-up's time (so T can be five minutes and the tests still fast).

#![allow(dead_code, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{RotationRulesType, Tag};
use keyshift::event::ScheduleName;
use keyshift::executor::Report;
use keyshift::ports::{
    Clock, Detail, Job, LabelMove, Scheduled, Scheduler, SchedulerError, SecretStore, StoreError, TargetError,
};
use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};
use keyshift::{
    ExecError, Executor, Invocation, Policy, SecretId, SecretState, SecretValue, Step, Timestamp, VersionId,
};
use keyshift_lambda::secrets::{CreatedDates, SdkSecretStore};
use keyshift_local::moto::Moto;
use keyshift_local::postgres::{PgConfig, Postgres, random_password};
use keyshift_postgres::conn::{self, As, TlsConfig};
use keyshift_postgres::options::{SESSION_GRACE_TAG, TLS_TAG};
use keyshift_postgres::secret::Endpoint;
use keyshift_postgres::tokio_postgres;
use keyshift_postgres::{DbSecret, PgOptions, PostgresTarget, TlsMode};

pub const DB: &str = "appdb";
pub const APP: &str = "app";
pub const CLONE: &str = "app_clone";
pub const MASTER: &str = "keyshift_master";
pub const GAP: Duration = Duration::from_secs(300);
pub const GRACE: Duration = Duration::from_secs(1);
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:keyshift-rotation";

// ---------------------------------------------------------------------------------------
// Doubles
// ---------------------------------------------------------------------------------------

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A clock that stands still unless moved: it starts an hour ahead of the wall clock (so
/// that every version moto stamps with the wall clock is older than anything the
/// executor does), the test moves it to each follow-up's time, and `sleep_until` jumps
/// instead of waiting.
#[derive(Debug, Clone)]
pub struct JumpClock(Arc<AtomicI64>);

impl Default for JumpClock {
    fn default() -> Self {
        JumpClock(Arc::new(AtomicI64::new(wall_ms() + 3_600_000)))
    }
}

impl JumpClock {
    pub fn advance_to(&self, t: Timestamp) {
        self.0.fetch_max(t.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for JumpClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, until: Timestamp) -> impl Future<Output = ()> + Send {
        self.advance_to(until);
        std::future::ready(())
    }
}

/// Keeps the follow-ups; the test delivers them.
#[derive(Debug, Clone, Default)]
pub struct Jobs(Arc<Mutex<Vec<Job>>>);

impl Jobs {
    pub fn take_first(&self) -> Option<Job> {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let first = (0..jobs.len()).min_by_key(|&i| jobs[i].fire_at)?;
        Some(jobs.remove(first))
    }

    pub fn names(&self) -> Vec<ScheduleName> {
        let jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<_> = jobs.iter().map(|j| j.name.clone()).collect();
        names.sort();
        names
    }
}

impl Scheduler for Jobs {
    async fn schedule(&self, job: &Job) -> Result<Scheduled, SchedulerError> {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.iter().any(|j| j.name == job.name) {
            return Ok(Scheduled::AlreadyScheduled);
        }
        jobs.push(job.clone());
        Ok(Scheduled::Created)
    }

    async fn complete(&self, _name: &ScheduleName) -> Result<(), SchedulerError> {
        Ok(())
    }
}

/// The SDK adapter over moto, with the creation time of every version it writes taken
/// from the test's clock: moto stamps versions with the wall clock, and the executor's
/// gaps must be measured on the clock that jumps.
#[derive(Debug, Clone)]
pub struct JumpStore {
    inner: SdkSecretStore,
    clock: JumpClock,
    written: Arc<Mutex<HashMap<String, Timestamp>>>,
}

impl SecretStore for JumpStore {
    async fn describe(&self, secret: &SecretId, detail: Detail) -> Result<SecretState, StoreError> {
        let mut state = self.inner.describe(secret, detail).await?;
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        for (id, v) in state.versions.iter_mut() {
            if let (Some(t), Some(_)) = (written.get(id.as_str()), v.created) {
                v.created = Some(*t);
            }
        }
        Ok(state)
    }

    async fn get_value(
        &self,
        secret: &SecretId,
        version: &VersionId,
    ) -> Result<Option<SecretValue>, StoreError> {
        self.inner.get_value(secret, version).await
    }

    async fn put_pending(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        rotation_token: Option<&str>,
    ) -> Result<(), StoreError> {
        let before = self.clock.now();
        let result = self
            .inner
            .put_pending(secret, version, value, rotation_token)
            .await;
        if result.is_ok() {
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(version.as_str().to_owned())
                .or_insert(before);
        }
        result
    }

    async fn update_stage(&self, secret: &SecretId, change: &LabelMove) -> Result<(), StoreError> {
        self.inner.update_stage(secret, change).await
    }
}

// ---------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------

pub type Exec = Executor<JumpStore, Jobs, JumpClock, PostgresTarget>;

/// How to set the world up.
#[derive(Debug, Clone)]
pub struct Setup {
    pub pg: PgConfig,
    /// Tags on the rotated secret.
    pub tags: Vec<(&'static str, String)>,
    /// The master user gets CREATEROLE and pg_signal_backend.
    pub master_rights: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            pg: PgConfig::default(),
            tags: vec![(SESSION_GRACE_TAG, GRACE.as_secs().to_string())],
            master_rights: true,
        }
    }
}

pub struct World {
    pub pg: Postgres,
    pub moto: Moto,
    pub sm: Client,
    pub clock: JumpClock,
    pub jobs: Jobs,
    pub exec: Exec,
    /// The rotated secret's ARN.
    pub secret: String,
    pub master_arn: String,
    pub app_password: String,
    pub master_password: String,
    pub options: PgOptions,
    tls: TlsConfig,
    /// Every password the world or the rotations made, for the log check.
    pub passwords: Vec<String>,
}

pub fn app_value(port: u16, username: &str, password: &str, master_arn: &str) -> String {
    serde_json::json!({
        "engine": "postgres", "host": "127.0.0.1", "port": port, "dbname": DB,
        "username": username, "password": password, "masterarn": master_arn,
        "note": "carried over"
    })
    .to_string()
}

pub fn options_for(pg: &Postgres) -> PgOptions {
    PgOptions {
        ca_bundle: Some(pg.ca_pem_path.clone()),
        session_grace: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
    }
}

impl World {
    pub async fn new() -> World {
        World::with(Setup::default()).await
    }

    pub async fn with(setup: Setup) -> World {
        let pg = Postgres::start_with(setup.pg).expect("PostgreSQL 15 starts");
        let app_password = random_password(24);
        let master_password = random_password(24);
        pg.create_app(DB, APP, &app_password)
            .expect("the app's database and user");
        pg.create_master(MASTER, &master_password, setup.master_rights)
            .expect("the master user");
        let moto = Moto::start().expect("moto starts (KEYSHIFT_VENV)");
        let sm = Client::new(&moto.sdk_config().await);
        let master_arn = create_secret(
            &sm,
            "keyshift/postgres-master",
            &serde_json::json!({
                "engine": "postgres", "host": "127.0.0.1", "port": pg.port,
                "username": MASTER, "password": master_password
            })
            .to_string(),
            &[],
        )
        .await;
        let secret = create_secret(
            &sm,
            "app/database",
            &app_value(pg.port, APP, &app_password, &master_arn),
            &setup.tags,
        )
        .await;
        let options = options_for(&pg);
        let clock = JumpClock::default();
        let jobs = Jobs::default();
        let policy = Policy::with_precision(GAP, Duration::ZERO, Duration::from_secs(1)).expect("a policy");
        let exec = Executor::new(
            JumpStore {
                inner: SdkSecretStore::new(sm.clone(), CreatedDates::GetValue),
                clock: clock.clone(),
                written: Arc::default(),
            },
            jobs.clone(),
            clock.clone(),
            PostgresTarget::new(sm.clone(), options.clone()),
            policy,
        );
        World {
            passwords: vec![app_password.clone(), master_password.clone()],
            pg,
            moto,
            sm,
            clock,
            jobs,
            exec,
            secret,
            master_arn,
            app_password,
            master_password,
            options,
            tls: TlsConfig::default(),
        }
    }

    pub fn secret_id(&self) -> SecretId {
        SecretId::new(self.secret.clone())
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port: self.pg.port,
            dbname: DB.into(),
        }
    }

    /// Logs in over verified TLS.
    pub async fn login(&self, user: &str, password: &str) -> Result<tokio_postgres::Client, TargetError> {
        self.login_with(user, password, TlsMode::VerifyFull).await
    }

    pub async fn login_with(
        &self,
        user: &str,
        password: &str,
        mode: TlsMode,
    ) -> Result<tokio_postgres::Client, TargetError> {
        conn::connect(
            &self.endpoint(),
            user,
            password,
            mode,
            &self.tls,
            &self.options,
            As::Pending,
        )
        .await
    }

    /// `SELECT session_user, current_user` as `user`.
    pub async fn whoami(&self, user: &str, password: &str) -> Result<(String, String), TargetError> {
        let c = self.login(user, password).await?;
        let row = c
            .query_one("SELECT session_user::text, current_user::text", &[])
            .await
            .map_err(|e| TargetError::refused(e.to_string()))?;
        Ok((row.get(0), row.get(1)))
    }

    /// A version's value by stage.
    pub async fn value_at(&self, stage: &str) -> Option<DbSecret> {
        let out = self
            .sm
            .get_secret_value()
            .secret_id(&self.secret)
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        Some(DbSecret::parse(out.secret_string().expect("a string"), stage).expect("a valid value"))
    }

    pub async fn value_of(&self, version: &VersionId) -> Option<String> {
        let out = self
            .sm
            .get_secret_value()
            .secret_id(&self.secret)
            .version_id(version.as_str())
            .send()
            .await
            .ok()?;
        out.secret_string().map(str::to_owned)
    }

    /// The secret's labels: version → stages.
    pub async fn labels(&self) -> BTreeMap<String, Vec<String>> {
        let d = self
            .sm
            .describe_secret()
            .secret_id(&self.secret)
            .send()
            .await
            .expect("describe");
        d.version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, mut v)| {
                v.sort();
                (k, v)
            })
            .collect()
    }

    pub async fn holder(&self, stage: &str) -> Option<String> {
        self.labels()
            .await
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(v, _)| v)
    }

    pub async fn tags(&self) -> BTreeMap<String, String> {
        let d = self
            .sm
            .describe_secret()
            .secret_id(&self.secret)
            .send()
            .await
            .expect("describe");
        d.tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect()
    }

    /// The pair's roles as the catalog has them: name, may log in, password verifier,
    /// settings, memberships. Whatever a repeated step must not change.
    pub fn roles(&self) -> String {
        self.pg
            .psql(
                "postgres",
                "SELECT a.rolname, a.rolcanlogin, coalesce(a.rolpassword, '-'), \
                 coalesce((SELECT array_to_string(c.rolconfig, ',') FROM pg_roles c WHERE c.oid = a.oid), '-'), \
                 coalesce((SELECT string_agg(r.rolname, ',' ORDER BY r.rolname) FROM pg_auth_members m \
                           JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = a.oid), '-') \
                 FROM pg_authid a WHERE a.rolname LIKE 'app%' ORDER BY 1",
            )
            .expect("psql")
    }

    /// Labels and roles: a repeated step must leave both as they were.
    pub async fn fingerprint(&self) -> (BTreeMap<String, Vec<String>>, String, Vec<ScheduleName>) {
        (self.labels().await, self.roles(), self.jobs.names())
    }

    /// The engine's RotateSecret: moto cannot run the function, but leaves the engine's
    /// value-less AWSPENDING placeholder under `token` (as AWS does before createSecret)
    /// and turns rotation on.
    pub async fn begin(&self, token: &VersionId) {
        let _expected_error = self
            .sm
            .rotate_secret()
            .secret_id(&self.secret)
            .client_request_token(token.as_str())
            .rotation_lambda_arn(FUNCTION_ARN)
            .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
            .send()
            .await;
        assert_eq!(
            self.holder(AWSPENDING).await.as_deref(),
            Some(token.as_str()),
            "RotateSecret left the placeholder"
        );
    }

    pub fn invocation(&self, step: Step, token: &VersionId) -> Invocation {
        Invocation {
            step,
            secret_id: self.secret_id(),
            token: token.clone(),
            rotation_token: None,
            schedule: None,
        }
    }

    pub async fn step(&self, step: Step, token: &VersionId) -> Result<Report, ExecError> {
        self.exec.handle(&self.invocation(step, token)).await
    }

    /// An engine step, twice: the second must succeed and change nothing.
    pub async fn engine_twice(&self, step: Step, token: &VersionId) {
        let name = step.name();
        self.step(step.clone(), token)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let after = self.fingerprint().await;
        self.step(step, token)
            .await
            .unwrap_or_else(|e| panic!("{name} again: {e}"));
        assert_eq!(
            after,
            self.fingerprint().await,
            "a second {name} changed something"
        );
    }

    /// The follow-up due first, at its time, then again at once: the second must change
    /// nothing.
    pub async fn deliver_next_twice(&self) -> Job {
        let job = self
            .jobs
            .take_first()
            .expect("the rotation stalled with nothing scheduled");
        self.clock.advance_to(job.fire_at);
        let name = job.invocation.step.name();
        self.exec
            .handle(&job.invocation)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let after = self.fingerprint().await;
        self.exec
            .handle(&job.invocation)
            .await
            .unwrap_or_else(|e| panic!("{name} delivered again: {e}"));
        assert_eq!(
            after,
            self.fingerprint().await,
            "a second {name} changed something"
        );
        job
    }

    /// Follow-ups until AWSCURRENT is on keyshift's copy of `token`.
    pub async fn until_swapped(&self, token: &VersionId) {
        loop {
            let current = VersionId::new(self.holder(AWSCURRENT).await.expect("a current version"));
            if current.copy_generation_of(token).is_some() {
                break;
            }
            self.deliver_next_twice().await;
        }
        assert!(
            self.holder(ROTATING).await.is_some(),
            "the old version stays accepted"
        );
    }

    /// Follow-ups until ROTATING is off (T after the swap): the release.
    pub async fn release(&self) {
        while self.holder(ROTATING).await.is_some() {
            self.deliver_next_twice().await;
        }
        assert!(
            self.jobs.names().is_empty(),
            "follow-ups left: {:?}",
            self.jobs.names()
        );
    }

    /// The secret's id and tags, to build a [`TargetContext`] for direct calls.
    pub async fn ctx_parts(&self) -> (SecretId, BTreeMap<String, String>) {
        (self.secret_id(), self.tags().await)
    }

    /// Every value the secret has had (for the log check), plus the world's passwords.
    pub async fn all_passwords(&self) -> Vec<String> {
        let mut out = self.passwords.clone();
        for v in self.labels().await.keys() {
            if let Some(text) = self.value_of(&VersionId::new(v.clone())).await {
                if let Ok(s) = DbSecret::parse(&text, "a version") {
                    out.push(s.password);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The server log holds none of `passwords`.
    pub fn assert_log_clean(&self, passwords: &[String]) {
        let log = self.pg.log();
        for p in passwords {
            assert!(
                !log.contains(p.as_str()),
                "the server log contains a plaintext password"
            );
        }
    }
}

/// Creates a secret; its ARN.
pub async fn create_secret(sm: &Client, name: &str, value: &str, tags: &[(&str, String)]) -> String {
    let mut req = sm.create_secret().name(name).secret_string(value);
    for (k, v) in tags {
        req = req.tags(Tag::builder().key(*k).value(v).build());
    }
    req.send()
        .await
        .expect("create the secret")
        .arn()
        .expect("an ARN")
        .to_owned()
}

pub fn version_id(n: u64) -> VersionId {
    VersionId::new(format!("00000000-0000-4000-8000-{n:012}"))
}

pub fn target_error(result: Result<Report, ExecError>) -> TargetError {
    match result {
        Err(ExecError::Target(e)) => e,
        other => panic!("expected a target error, got {other:?}"),
    }
}

/// The TLS tag set to `disable`, with the world's grace.
pub fn disable_tags() -> Vec<(&'static str, String)> {
    vec![
        (SESSION_GRACE_TAG, GRACE.as_secs().to_string()),
        (TLS_TAG, "disable".to_owned()),
    ]
}

pub fn pending_value(world: &World, username: &str, password: &str) -> SecretValue {
    SecretValue::new(app_value(world.pg.port, username, password, &world.master_arn))
}
