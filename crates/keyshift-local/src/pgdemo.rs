//! Database credentials rotated for real: moto's server as Secrets Manager and
//! Scheduler, a real PostgreSQL 15 (TLS, scram-sha-256), the release function under
//! `cargo lambda watch` rotating a `postgres` secret with alternating users, and a
//! keyshift-client fleet that logs in and queries throughout ([`crate::pgfleet`]).
//!
//! Before each rotation a "forgotten" session of the current user is opened and left
//! idle; after the release, the run checks that the old user can no longer log in and
//! that no session of it is left (the forgotten one included) once the grace is over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_secretsmanager::types::Tag;
use keyshift::secret::AWSCURRENT;
use keyshift_client::{Client, Config, SdkSource};
use serde_json::json;

use crate::kinds::rotate;
use crate::local::{Gap, Timeline, gaps, holder, labels, monitor_labels};
use crate::pgfleet::{self, Counts, Credential, Fleet};
use crate::postgres::{Postgres, random_password};
use crate::rig::{Rig, SchedulerDriver};

/// What to run.
#[derive(Debug, Clone)]
pub struct PgRunOptions {
    /// T, in seconds.
    pub gap_secs: u64,
    /// The inline budget, in seconds.
    pub budget_secs: u64,
    /// Rotations, one after the other.
    pub rotations: usize,
    /// Instances opening a new connection every few hundred ms.
    pub openers: usize,
    /// Instances keeping a pool each.
    pub pooled: usize,
    /// Connections per pool.
    pub pool: usize,
    /// The old user's sessions are ended this long after its revoke.
    pub grace_secs: u64,
    /// Where the function's output goes.
    pub log: std::path::PathBuf,
}

/// What one release showed about the user it revoked.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// The user.
    pub user: String,
    /// The user that took over.
    pub successor: String,
    /// Whether a login with its last password was refused after the release.
    pub login_refused: bool,
    /// What the refusal said (SQLSTATE).
    pub refusal: String,
    /// Its sessions left after the grace (from `pg_stat_activity`).
    pub sessions_left: u64,
    /// Whether the forgotten session was ended by the server.
    pub forgotten_session_ended: bool,
}

/// What a run showed.
#[derive(Debug, Default)]
pub struct PgSummary {
    /// Rotations that reached the clean end state.
    pub converged: usize,
    /// Logins tried by the fleet, and failed.
    pub logins: u64,
    /// Of which failed.
    pub failed_logins: u64,
    /// Queries run by the fleet.
    pub queries: u64,
    /// Of which failed.
    pub failed_queries: u64,
    /// Pool connections retired because their credential stopped being current.
    pub retired: u64,
    /// The gaps measured on the label samples.
    pub gaps: Vec<Gap>,
    /// One per release.
    pub revoked: Vec<Revoked>,
    /// Every password any version had (for the log checks).
    pub passwords: Vec<String>,
    /// The database server's log (statements included), to check for passwords.
    pub server_log: String,
}

/// Runs the whole thing and stops everything it started.
pub async fn run_postgres(opts: &PgRunOptions, timeline: &Timeline) -> Result<PgSummary, String> {
    let pg = tokio::task::spawn_blocking(Postgres::start)
        .await
        .map_err(|e| e.to_string())??;
    timeline.say(format!(
        "PostgreSQL 15 is up on 127.0.0.1:{} (TLS, scram-sha-256)",
        pg.port
    ));
    let (app_password, master_password) = (random_password(32), random_password(32));
    pg.create_app("orders", "app", &app_password)?;
    pg.create_master("keyshift_master", &master_password, true)?;
    timeline.say("created database orders, its owner app, and keyshift_master (CREATEROLE)");

    let extra_env = vec![
        ("KEYSHIFT_PG_CA_BUNDLE", pg.ca_pem_path.display().to_string()),
        ("KEYSHIFT_PG_SESSION_GRACE_SECONDS", opts.grace_secs.to_string()),
    ];
    let rig = Rig::start(
        opts.gap_secs,
        opts.budget_secs,
        "info",
        extra_env,
        &opts.log,
        timeline,
    )
    .await?;
    let (sm, sched, invoker) = (rig.sm.clone(), rig.sched.clone(), rig.invoker.clone());
    let endpoint = |user: &str, password: &str| {
        json!({"engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": user,
               "password": password, "dbname": "orders"})
    };
    let master = sm
        .create_secret()
        .name("keyshift-demo/orders-db-master")
        .secret_string(endpoint("keyshift_master", &master_password).to_string())
        .send()
        .await
        .map_err(|e| format!("CreateSecret (master): {e}"))?;
    let mut app = endpoint("app", &app_password);
    app["masterarn"] = json!(master.arn().unwrap_or_default());
    let secret = sm
        .create_secret()
        .name("keyshift-demo/orders-db")
        .secret_string(app.to_string())
        .tags(Tag::builder().key("keyshift:kind").value("postgres").build())
        .send()
        .await
        .map_err(|e| format!("CreateSecret: {e}"))?;
    let arn = secret.arn().unwrap_or_default().to_owned();
    timeline.say("created keyshift-demo/orders-db (keyshift:kind=postgres, masterarn = the master secret)");

    let gap = Duration::from_secs(opts.gap_secs);
    let config = Config::builder(gap)
        .read_lag(gap / 8)
        .refresh(gap / 4, gap / 2)
        .build()
        .map_err(|e| e.to_string())?;
    let client = || async {
        Client::start(SdkSource::new(sm.clone(), arn.clone()), config.clone())
            .await
            .map_err(|e| format!("keyshift-client: {e}"))
    };
    let mut openers = Vec::new();
    for _ in 0..opts.openers {
        openers.push(client().await?);
    }
    let mut pooled = Vec::new();
    for _ in 0..opts.pooled {
        pooled.push(client().await?);
    }
    let tls = pgfleet::tls(&pg.ca_pem_path)?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut tasks = pgfleet::start(
        Fleet {
            openers,
            pooled,
            pool: opts.pool,
            every: Duration::from_millis(300),
            tls: tls.clone(),
        },
        stop.clone(),
        counts.clone(),
        timeline.clone(),
    );
    let (samples, monitor) = monitor_labels(&sm, &arn, String::new(), &stop, timeline);
    tasks.push(monitor);
    let scheduler = SchedulerDriver::start(&sched, &invoker, &stop, timeline);
    tokio::time::sleep(gap).await;

    let mut summary = PgSummary::default();
    let value_of = |version: String| {
        let (sm, arn) = (sm.clone(), arn.clone());
        async move {
            let out = sm
                .get_secret_value()
                .secret_id(&arn)
                .version_id(&version)
                .send()
                .await
                .map_err(|e| format!("GetSecretValue: {e}"))?;
            Credential::parse(&version, out.secret_string().unwrap_or_default())
                .ok_or_else(|| "a version is not a database secret".to_owned())
        }
    };
    for n in 0..opts.rotations {
        let before: BTreeMap<_, _> = labels(&sm, &arn).await?;
        let old_version = holder(&before, AWSCURRENT).cloned().ok_or("no AWSCURRENT")?;
        let old = value_of(old_version).await?;
        // A session of the current user that nobody closes.
        let forgotten = pgfleet::connect(&old, &tls)
            .await
            .map_err(|e| format!("the forgotten session: {}", pgfleet::why(&e)))?;
        timeline.say(format!(
            "rotation {n}: a forgotten session of {} is open and idle",
            old.username
        ));
        if !rotate(&sm, &invoker, timeline, "orders-db", &arn, n, opts.gap_secs).await? {
            break;
        }
        summary.converged += 1;
        let after = labels(&sm, &arn).await?;
        let new = value_of(holder(&after, AWSCURRENT).cloned().ok_or("no AWSCURRENT")?).await?;
        // The release revoked the old user, waited the grace, ended its sessions, then
        // took ROTATING off: all done by now. Check it.
        let refusal = match pgfleet::connect(&old, &tls).await {
            Ok(_) => None,
            Err(e) => Some(pgfleet::why(&e)),
        };
        let left = pg
            .psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'",
                    old.username.replace('\'', "''")
                ),
            )?
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
        let ended = pgfleet::query(&forgotten).await.is_err();
        let revoked = Revoked {
            user: old.username.clone(),
            successor: new.username.clone(),
            login_refused: refusal.is_some(),
            refusal: refusal.unwrap_or_default(),
            sessions_left: left,
            forgotten_session_ended: ended,
        };
        timeline.say(format!(
            "rotation {n}: {} took over from {}; {}'s login {} ({}), its sessions left: {}, the forgotten one {}",
            revoked.successor,
            revoked.user,
            revoked.user,
            if revoked.login_refused { "is refused" } else { "STILL WORKS" },
            revoked.refusal,
            revoked.sessions_left,
            if revoked.forgotten_session_ended { "was ended" } else { "IS STILL OPEN" }
        ));
        summary.revoked.push(revoked);
        tokio::time::sleep(gap / 2).await;
    }
    scheduler.drain.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let _ = scheduler.task.await;
    for t in tasks {
        let _ = t.await;
    }
    let pending: Vec<_> =
        std::mem::take(&mut *scheduler.deliveries.lock().unwrap_or_else(|e| e.into_inner()));
    for delivery in pending {
        let _ = delivery.await;
    }
    summary.logins = counts.logins.load(Ordering::SeqCst);
    summary.failed_logins = counts.failed_logins.load(Ordering::SeqCst);
    summary.queries = counts.queries.load(Ordering::SeqCst);
    summary.failed_queries = counts.failed_queries.load(Ordering::SeqCst);
    summary.retired = counts.retired.load(Ordering::SeqCst);
    summary.gaps = gaps(&samples.lock().unwrap_or_else(|e| e.into_inner()));
    summary.passwords = vec![app_password, master_password];
    let listed = sm
        .list_secret_version_ids()
        .secret_id(&arn)
        .include_deprecated(true)
        .send()
        .await
        .map_err(|e| format!("ListSecretVersionIds: {e}"))?;
    for v in listed.versions() {
        if let Some(id) = v.version_id() {
            if let Ok(c) = value_of(id.to_owned()).await {
                summary.passwords.push(c.password().to_owned());
            }
        }
    }
    summary.server_log = pg.log();
    drop(invoker);
    drop(rig);
    drop(pg);
    Ok(summary)
}
