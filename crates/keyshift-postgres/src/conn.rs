//! Connections: TLS by rustls on aws-lc-rs (the certificate verified against the CA
//! bundle, host name included), plain text only when the secret's tag asks, and the
//! one table that maps every failure to a [`TargetErrorKind`].
//!
//! | failure | kind |
//! |---|---|
//! | connection refused, reset, timed out, DNS, the server starting or shutting down (57P01-57P03), too many connections (53xxx), lock or statement timeout, serialization failure, a concurrent `CREATE ROLE` (42710, 23505) | retryable |
//! | the master's password refused (28P01), login refused (28000), permission denied (42501), no such database (3D000), the server's certificate not trusted or not naming the host, a server without TLS when TLS is required | configuration |
//! | the pending user's login refused (in `test`): `set` has not taken effect | retryable |
//! | any other SQL error | refused |
//!
//! An untrusted certificate is a configuration error, not a retryable one: retrying
//! cannot make the certificate chain to the bundle; an operator fixes the bundle
//! (`KEYSHIFT_PG_CA_BUNDLE`), the host name in the secret, or the server.
//!
//! Messages carry the server's own text, the host, port, database and user names, never
//! a password or a verifier: every message is also scrubbed of the secrets of the call.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyshift::ports::{TargetError, TargetErrorKind, short_error};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::{ChannelBinding, SslMode};
use tokio_postgres::{Client, NoTls};
use tracing::debug;

use crate::options::{CA_BUNDLE_VAR, PgOptions, TLS_TAG, TlsMode};
use crate::secret::Endpoint;

/// Who a connection logs in as: the same SQLSTATE means different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// The master user (setSecret, the release): a refused login is its secret's fault.
    Master,
    /// The pending user in testSecret: a refused login means `set` has not taken effect
    /// (yet); the engine retries.
    Pending,
    /// The user being revoked, to learn whether its credential still works.
    Probe,
}

/// The TLS client configuration, built once from the CA bundle or the platform's roots.
#[derive(Debug, Default)]
pub struct TlsConfig {
    built: Mutex<Option<Arc<rustls::ClientConfig>>>,
}

impl TlsConfig {
    /// The configuration, building it on first use.
    pub fn get(&self, options: &PgOptions) -> Result<Arc<rustls::ClientConfig>, TargetError> {
        if let Some(c) = self.built.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(Arc::clone(c));
        }
        let config = Arc::new(client_config(options)?);
        *self.built.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&config));
        Ok(config)
    }
}

/// rustls on aws-lc-rs, TLS 1.2 and 1.3, verifying against the bundle or the platform.
pub fn client_config(options: &PgOptions) -> Result<rustls::ClientConfig, TargetError> {
    let mut roots = RootCertStore::empty();
    match &options.ca_bundle {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                TargetError::configuration(format!("{CA_BUNDLE_VAR}: cannot read {}: {e}", path.display()))
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    TargetError::configuration(format!(
                        "{CA_BUNDLE_VAR}: {} is not a PEM bundle: {e}",
                        path.display()
                    ))
                })?;
                roots.add(cert).map_err(|e| {
                    TargetError::configuration(format!(
                        "{CA_BUNDLE_VAR}: a certificate in {} is unusable: {e}",
                        path.display()
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(TargetError::configuration(format!(
                    "{CA_BUNDLE_VAR}: {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TargetError::configuration(format!(
                    "no root certificates found on this platform: set {CA_BUNDLE_VAR} to a PEM bundle (for RDS: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)"
                )));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TargetError::configuration(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Logs in as `user` at `endpoint`; the connection's driver runs on a task of its own and
/// ends when the returned client is dropped. `secrets` are scrubbed from any error.
pub async fn connect(
    endpoint: &Endpoint,
    user: &str,
    password: &str,
    mode: TlsMode,
    tls: &TlsConfig,
    options: &PgOptions,
    who: As,
) -> Result<Client, TargetError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&endpoint.host)
        .port(endpoint.port)
        .dbname(&endpoint.dbname)
        .user(user)
        .password(password)
        .application_name("keyshift")
        .connect_timeout(options.connect_timeout)
        .channel_binding(ChannelBinding::Prefer);
    let context = format!(
        "connecting to {endpoint} as {user} ({})",
        match mode {
            TlsMode::VerifyFull => "TLS verify-full",
            TlsMode::Disable => "plain text: keyshift:postgres-tls=disable",
        }
    );
    let secrets = [password];
    let limit = options.connect_timeout;
    let timed_out =
        || TargetError::retryable(format!("{context}: no answer within {}s", limit.as_secs_f64()));
    match mode {
        TlsMode::VerifyFull => {
            config.ssl_mode(SslMode::Require);
            let make = tokio_postgres_rustls::MakeRustlsConnect::new((*tls.get(options)?).clone());
            let (client, connection) = tokio::time::timeout(limit, config.connect(make))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| classify(&e, &context, who, &secrets))?;
            spawn_driver(connection);
            Ok(client)
        }
        TlsMode::Disable => {
            config.ssl_mode(SslMode::Disable);
            let (client, connection) = tokio::time::timeout(limit, config.connect(NoTls))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| classify(&e, &context, who, &secrets))?;
            spawn_driver(connection);
            Ok(client)
        }
    }
}

fn spawn_driver<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(error = %short_error(&e), "postgres connection ended");
        }
    });
}

/// `text` with every non-empty secret of `secrets` replaced.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(*s, "<redacted>");
    }
    out
}

/// A rustls error somewhere in `e`'s sources (io::Error hides its inner error from
/// `source()`, so each io::Error is opened too).
fn tls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = tls_error(inner) {
                    return Some(r);
                }
            }
        }
        cur = err.source();
    }
    None
}

/// SQLSTATEs that a later attempt may not meet.
fn transient(c: &str) -> bool {
    c.starts_with("08") // connection exception
        || c.starts_with("53") // insufficient resources (too many connections, disk, memory)
        || c.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || matches!(
            c,
            "40001" // serialization failure
                | "40P01" // deadlock
                | "55P03" // lock not available (lock_timeout)
                | "57014" // query canceled (statement_timeout)
                | "42710" // duplicate object: a concurrent CREATE ROLE won
                | "23505" // unique violation: the same, caught by the catalog index
                | "25006" // read-only transaction: a failover in progress (Aurora, Multi-AZ)
                | "XX000" // internal error
        )
}

/// The kind of a server error by its SQLSTATE and message, and a hint for the operator.
pub fn db_kind(code: &str, message: &str, who: As) -> (TargetErrorKind, &'static str) {
    use TargetErrorKind::{Configuration, Refused, Retryable};
    match code {
        "28P01" | "28000" if message.contains("pg_hba.conf") => (
            Configuration,
            ": the server's pg_hba.conf does not let this user in from here",
        ),
        "28P01" | "28000" => match who {
            As::Master => (Configuration, ": the master secret's credentials are refused"),
            As::Pending => (
                Retryable,
                ": the pending user cannot log in (setSecret registers it)",
            ),
            As::Probe => (Refused, ""),
        },
        "42501" => (
            Configuration,
            ": the master user lacks a right keyshift needs (see keyshift-postgres's README: CREATEROLE, membership of pg_signal_backend)",
        ),
        "3D000" => (Configuration, ": field dbname names no database"),
        c if transient(c) => (Retryable, ""),
        _ => (Refused, ""),
    }
}

/// The kind and message for a failed call; `context` says what was being done.
pub fn classify(e: &tokio_postgres::Error, context: &str, who: As, secrets: &[&str]) -> TargetError {
    let text = |detail: String| scrub(&format!("{context}: {detail}"), secrets);
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let (kind, hint) = db_kind(code, db.message(), who);
        let detail = format!("{} (SQLSTATE {code}){hint}", db.message());
        return TargetError {
            kind,
            message: text(detail),
        };
    }
    let chain = short_error(e);
    if let Some(tls) = tls_error(e) {
        return match tls {
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType => TargetError::configuration(text(format!(
                "the server's certificate is not trusted: {tls} (check {CA_BUNDLE_VAR} and that the secret's host is the name in the certificate)"
            ))),
            _ => TargetError::retryable(text(format!("TLS: {chain}"))),
        };
    }
    if chain.contains("server does not support TLS") {
        return TargetError::configuration(text(format!(
            "{chain}: the server does not offer TLS; keyshift never falls back to plain text (tag the secret {TLS_TAG}=disable to allow it)"
        )));
    }
    if chain.starts_with("authentication error") || chain.starts_with("invalid configuration") {
        return match who {
            As::Pending => TargetError::retryable(text(chain)),
            _ => TargetError::configuration(text(chain)),
        };
    }
    // Transport failures: refused, reset, unreachable, DNS, timeouts, a closed connection.
    TargetError::retryable(text(chain))
}

/// A call that failed with `e` while doing `context` on an open connection.
pub fn sql_error(e: &tokio_postgres::Error, context: &str, secrets: &[&str]) -> TargetError {
    classify(e, context, As::Master, secrets)
}

/// How long a statement of keyshift's may run before the server cancels it.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a statement of keyshift's may wait for a lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_secret() {
        assert_eq!(
            scrub("pw hunter22 and SCRAM$x", &["hunter22", "SCRAM$x", ""]),
            "pw <redacted> and <redacted>"
        );
    }

    #[test]
    fn sqlstates_are_classified_by_who_can_fix_them() {
        use TargetErrorKind::{Configuration, Refused, Retryable};
        let cases: &[(&str, &str, As, TargetErrorKind)] = &[
            ("08006", "connection failure", As::Master, Retryable),
            ("53300", "too many connections", As::Master, Retryable),
            (
                "57P01",
                "terminating connection due to administrator command",
                As::Master,
                Retryable,
            ),
            (
                "57P03",
                "the database system is starting up",
                As::Pending,
                Retryable,
            ),
            ("40001", "could not serialize", As::Master, Retryable),
            (
                "55P03",
                "canceling statement due to lock timeout",
                As::Master,
                Retryable,
            ),
            (
                "57014",
                "canceling statement due to statement timeout",
                As::Master,
                Retryable,
            ),
            (
                "42710",
                "role \"app_clone\" already exists",
                As::Master,
                Retryable,
            ),
            (
                "28P01",
                "password authentication failed for user \"keyshift_master\"",
                As::Master,
                Configuration,
            ),
            (
                "28P01",
                "password authentication failed for user \"app_clone\"",
                As::Pending,
                Retryable,
            ),
            (
                "28000",
                "role \"app_clone\" is not permitted to log in",
                As::Pending,
                Retryable,
            ),
            (
                "28P01",
                "password authentication failed for user \"app\"",
                As::Probe,
                Refused,
            ),
            (
                "28000",
                "no pg_hba.conf entry for host \"10.0.0.1\"",
                As::Pending,
                Configuration,
            ),
            (
                "42501",
                "permission denied to create role",
                As::Master,
                Configuration,
            ),
            (
                "3D000",
                "database \"nope\" does not exist",
                As::Master,
                Configuration,
            ),
            ("42601", "syntax error", As::Master, Refused),
            ("22023", "invalid parameter value", As::Master, Refused),
        ];
        for (code, message, who, kind) in cases {
            assert_eq!(
                db_kind(code, message, *who).0,
                *kind,
                "{code} {message} as {who:?}"
            );
        }
    }

    #[test]
    fn a_missing_bundle_is_a_configuration_error_naming_the_variable() {
        let o = PgOptions {
            ca_bundle: Some("/nonexistent/keyshift/bundle.pem".into()),
            ..PgOptions::default()
        };
        let e = client_config(&o).expect_err("no file");
        assert_eq!(e.kind, keyshift::ports::TargetErrorKind::Configuration);
        assert!(e.message.contains(CA_BUNDLE_VAR), "{e}");
    }
}
