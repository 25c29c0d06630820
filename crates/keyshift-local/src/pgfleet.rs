//! A fleet of database clients built on keyshift-client, for a `postgres` secret: what
//! services that log in with a rotated database credential do.
//!
//! * **Openers** open a new connection with the AWSCURRENT credential every few hundred
//!   milliseconds, run a query and close it.
//! * **A pool** of long-lived connections runs a query on each every 100 ms. A
//!   connection made with a credential that is no longer AWSCURRENT in its instance's
//!   view is retired and replaced with the current one before its next query (the
//!   consumer contract: stop using a credential once it stops being current, well
//!   before its revocation T later). A connection the server ended anyway is
//!   reconnected, and the query that found it dead counts as failed.
//!
//! Every login and query is counted, and a failure is reported on the timeline with its
//! SQLSTATE, never with a credential.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use keyshift_client::{Client, SdkSource};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::local::Timeline;

/// A database credential as the secret holds it.
#[derive(Clone)]
pub struct Credential {
    /// The version id it came from.
    pub version: String,
    /// The user.
    pub username: String,
    password: String,
    host: String,
    port: u16,
    dbname: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("version", &self.version)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The credential in a version of a `postgres` secret.
    pub fn of(version: &keyshift_client::Version) -> Option<Credential> {
        Credential::parse(version.id().as_str(), version.value().expose())
    }

    /// The credential in the secret text `value` of version `version`.
    pub fn parse(version: &str, value: &str) -> Option<Credential> {
        let v: Value = serde_json::from_str(value).ok()?;
        Some(Credential {
            version: version.to_owned(),
            username: v["username"].as_str()?.to_owned(),
            password: v["password"].as_str()?.to_owned(),
            host: v["host"].as_str()?.to_owned(),
            port: v["port"]
                .as_u64()
                .or_else(|| v["port"].as_str()?.parse().ok())
                .and_then(|p| u16::try_from(p).ok())?,
            dbname: v["dbname"].as_str()?.to_owned(),
        })
    }

    /// The password (secret: for the log checks only).
    pub fn password(&self) -> &str {
        &self.password
    }

    fn config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.username)
            .password(&self.password)
            .dbname(&self.dbname)
            .ssl_mode(tokio_postgres::config::SslMode::Require)
            .connect_timeout(Duration::from_secs(5));
        c
    }
}

/// TLS that verifies the server against the CA in `ca_pem` (rustls on aws-lc-rs).
pub fn tls(ca_pem: &Path) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).map_err(|e| format!("CA bundle: {e}"))? {
        roots
            .add(cert.map_err(|e| format!("CA bundle: {e}"))?)
            .map_err(|e| format!("CA bundle: {e}"))?;
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// A connection, with the task that drives it.
pub struct Connection {
    /// The credential it logged in with.
    pub credential: Credential,
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Why a login or query failed: the SQLSTATE, or the kind of I/O failure. Never a
/// credential.
pub fn why(e: &tokio_postgres::Error) -> String {
    match e.code() {
        Some(code) => format!("SQLSTATE {}", code.code()),
        None if e.is_closed() => "connection closed".to_owned(),
        None => "no SQLSTATE (I/O or TLS)".to_owned(),
    }
}

/// Logs in with `credential` over verified TLS.
pub async fn connect(
    credential: &Credential,
    tls: &MakeRustlsConnect,
) -> Result<Connection, tokio_postgres::Error> {
    let (client, connection) = credential.config().connect(tls.clone()).await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Connection {
        credential: credential.clone(),
        client,
        driver,
    })
}

/// `SELECT current_user` on `conn`; the user it answered.
pub async fn query(conn: &Connection) -> Result<String, tokio_postgres::Error> {
    let row = conn.client.query_one("SELECT current_user::text", &[]).await?;
    row.try_get(0)
}

/// What the fleet counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// Logins tried.
    pub logins: AtomicU64,
    /// Of which refused or failed.
    pub failed_logins: AtomicU64,
    /// Queries run.
    pub queries: AtomicU64,
    /// Of which failed.
    pub failed_queries: AtomicU64,
    /// Pool connections retired because their credential stopped being current.
    pub retired: AtomicU64,
}

/// The fleet to start.
pub struct Fleet {
    /// Instances that open a new connection every `every`.
    pub openers: Vec<Client<SdkSource>>,
    /// Instances that each keep `pool` long-lived connections.
    pub pooled: Vec<Client<SdkSource>>,
    /// Connections per pooled instance.
    pub pool: usize,
    /// How often an opener opens a connection.
    pub every: Duration,
    /// TLS to the database.
    pub tls: MakeRustlsConnect,
}

/// Starts `fleet`; it runs until `stop`, counting into `counts`.
pub fn start(
    fleet: Fleet,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    timeline: Timeline,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Fleet {
        openers,
        pooled,
        pool,
        every,
        tls,
    } = fleet;
    let mut tasks = Vec::new();
    for (i, client) in openers.into_iter().enumerate() {
        let (tls, stop, counts, tl) = (tls.clone(), stop.clone(), counts.clone(), timeline.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(every / 4 * (i as u32 % 4)).await;
            while !stop.load(Ordering::SeqCst) {
                if let Some(credential) = client.current().ok().as_deref().and_then(Credential::of) {
                    counts.logins.fetch_add(1, Ordering::SeqCst);
                    match connect(&credential, &tls).await {
                        Ok(conn) => {
                            counts.queries.fetch_add(1, Ordering::SeqCst);
                            if let Err(e) = query(&conn).await {
                                counts.failed_queries.fetch_add(1, Ordering::SeqCst);
                                tl.say(format!(
                                    "FAILED query: opener {i} as {}: {}",
                                    credential.username,
                                    why(&e)
                                ));
                            }
                        }
                        Err(e) => {
                            counts.failed_logins.fetch_add(1, Ordering::SeqCst);
                            tl.say(format!(
                                "FAILED login: opener {i} as {}: {}",
                                credential.username,
                                why(&e)
                            ));
                        }
                    }
                }
                tokio::time::sleep(every).await;
            }
        }));
    }
    for (i, client) in pooled.into_iter().enumerate() {
        let (tls, stop, counts, tl) = (tls.clone(), stop.clone(), counts.clone(), timeline.clone());
        tasks.push(tokio::spawn(async move {
            let mut conns: Vec<Option<Connection>> = (0..pool).map(|_| None).collect();
            while !stop.load(Ordering::SeqCst) {
                let current = client.current().ok().as_deref().and_then(Credential::of);
                for slot in conns.iter_mut() {
                    let Some(current) = &current else { break };
                    // Retire a connection whose credential stopped being current.
                    if slot
                        .as_ref()
                        .is_some_and(|c| c.credential.version != current.version)
                    {
                        counts.retired.fetch_add(1, Ordering::SeqCst);
                        *slot = None;
                    }
                    if slot.is_none() {
                        counts.logins.fetch_add(1, Ordering::SeqCst);
                        match connect(current, &tls).await {
                            Ok(conn) => *slot = Some(conn),
                            Err(e) => {
                                counts.failed_logins.fetch_add(1, Ordering::SeqCst);
                                tl.say(format!(
                                    "FAILED login: pool {i} as {}: {}",
                                    current.username,
                                    why(&e)
                                ));
                                continue;
                            }
                        }
                    }
                    if let Some(conn) = slot.as_ref() {
                        counts.queries.fetch_add(1, Ordering::SeqCst);
                        if let Err(e) = query(conn).await {
                            counts.failed_queries.fetch_add(1, Ordering::SeqCst);
                            tl.say(format!(
                                "FAILED query: pool {i} as {}: {}; reconnecting",
                                conn.credential.username,
                                why(&e)
                            ));
                            *slot = None;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    tasks
}
