//! The connection (TLS by rustls on aws-lc-rs, verify-full) and the schema.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::{Client, NoTls};

use crate::MigrateError;

/// The example schema (tests and the benchmark create it; a platform has its own).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS environments (
    id bigint PRIMARY KEY,
    wrapped_dek bytea,
    dek_created_at timestamptz
);
CREATE TABLE IF NOT EXISTS variables (
    id bigserial PRIMARY KEY,
    environment_id bigint NOT NULL REFERENCES environments (id),
    name text NOT NULL,
    value bytea NOT NULL,
    UNIQUE (environment_id, name)
);
CREATE TABLE IF NOT EXISTS keyshift_migrate_state (
    name text PRIMARY KEY,
    cutoff timestamptz NOT NULL
);
";

/// What the tool adds to an existing schema (`keyshift-migrate prepare`).
pub const PREPARE: &str = "
ALTER TABLE environments ADD COLUMN IF NOT EXISTS dek_created_at timestamptz;
CREATE TABLE IF NOT EXISTS keyshift_migrate_state (
    name text PRIMARY KEY,
    cutoff timestamptz NOT NULL
);
";

/// How to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// TLS, the certificate verified (chain and host name) against this PEM bundle.
    CaFile(std::path::PathBuf),
    /// TLS, verified against the platform's roots.
    Platform,
    /// Plain text (a local socket or a test server only).
    Disable,
}

fn client_config(tls: &Tls) -> Result<rustls::ClientConfig, MigrateError> {
    let mut roots = RootCertStore::empty();
    match tls {
        Tls::CaFile(path) => {
            let pem =
                std::fs::read(path).map_err(|e| MigrateError::Config(format!("{}: {e}", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| MigrateError::Config(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| MigrateError::Config(format!("{}: {e}", path.display())))?;
            }
        }
        Tls::Platform | Tls::Disable => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MigrateError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Connects to `url` (a libpq-style URL or key=value string); the connection task
/// runs on the current tokio runtime.
pub async fn connect(url: &str, tls: &Tls) -> Result<Client, MigrateError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| MigrateError::Config(e.to_string()))?;
    if *tls == Tls::Disable {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(connection);
        return Ok(client);
    }
    let mut config = config;
    config.ssl_mode(tokio_postgres::config::SslMode::Require);
    let make = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(tls)?);
    let (client, connection) = config.connect(make).await?;
    tokio::spawn(connection);
    Ok(client)
}
