//! keyshift-migrate: moves the values a platform stores in PostgreSQL to envelope
//! encryption ([`keyshift_envelope`]) and keeps them there through key rotations,
//! online, while the application keeps reading and writing.
//!
//! # The schema
//!
//! ```sql
//! CREATE TABLE environments (
//!     id             bigint PRIMARY KEY,
//!     wrapped_dek    bytea,         -- KSW record: the environment's data key, wrapped
//!     dek_created_at timestamptz    -- when that data key was made (rotate-dek's marker)
//! );
//! CREATE TABLE variables (
//!     id             bigserial PRIMARY KEY,
//!     environment_id bigint NOT NULL REFERENCES environments (id),
//!     name           text NOT NULL,
//!     value          bytea NOT NULL -- legacy (KEK-direct) or a KSE envelope ciphertext
//! );
//! ```
//!
//! [`SCHEMA`] creates it; [`PREPARE`] adds what the tool needs to an existing one
//! (`dek_created_at` and the `keyshift_migrate_state` table).
//!
//! # The steps
//!
//! 1. [`Migrator::generate_deks`]: a wrapped DEK for every environment without one.
//! 2. [`Migrator::encrypt_legacy`]: every legacy value re-encrypted into the envelope
//!    form under its environment's DEK; the AAD is [`value_aad`] (environment id and
//!    variable name).
//! 3. [`Migrator::rewrap`]: after a KEK rotation, every environment's DEK rewrapped to
//!    the KEK's current version (one unwrap, one wrap per environment), then every
//!    value's header moved to it ([`keyshift_envelope::Envelope::rewrap_ciphertext`]: a
//!    byte splice, nothing decrypted).
//! 4. [`Migrator::rotate_dek`]: a new DEK for one or every environment, its values
//!    re-encrypted under it.
//!
//! Plus [`Migrator::verify`] (opens every value) and [`Migrator::report`] (the KEK
//! versions still referenced).
//!
//! # Online and resumable
//!
//! Every row update is a compare-and-swap on the exact bytes read (`UPDATE ... WHERE
//! id = u.id AND value = u.old`, a whole batch in one statement): a concurrent write by
//! the application wins, the row is read again and redone (up to [`Options::retries`]
//! times) or left for the next pass, and counted. Progress is derived from the data:
//! a value already in the form the step produces is skipped, so a run killed at any
//! point (kill -9) and started again finishes the work, redoing at most the batch that
//! was in flight on each connection (its single `UPDATE` either committed or did not).
//! Value passes split the id range among `--workers` connections (4 by default), each
//! its own PostgreSQL backend. `rotate-dek` keeps
//! one row in `keyshift_migrate_state`: the cutoff of the rotation in progress (an
//! environment whose DEK was made after it is done), removed when nothing is left.
//!
//! # The legacy form
//!
//! A legacy value is encrypted directly by the KEK (no data key): with the KEK secret,
//! [`legacy`] describes the bytes; with KMS ([`MigrateKek::Kms`]), it is a KMS `Encrypt`
//! blob, one `Decrypt` each. Neither starts with `KSE`, which is how the forms are told
//! apart.

pub mod db;
pub mod kek;
pub mod legacy;
pub mod progress;
pub mod steps;

pub use db::{PREPARE, SCHEMA, connect};
pub use kek::{KekFile, KekSource, MigrateEnvelope, MigrateKek, open_envelope, open_kms_envelope};
pub use steps::{Migrator, Options, Report, RotateTarget};

/// The AAD of a stored value: the environment id (8 bytes, big-endian) then the
/// variable name. A ciphertext copied to another row or environment fails to open.
pub fn value_aad(environment_id: i64, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + name.len());
    aad.extend_from_slice(&environment_id.to_be_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// The DEK context of an environment: its id in decimal.
pub fn dek_context(environment_id: i64) -> String {
    environment_id.to_string()
}

/// Why a command failed (row-level failures are counted in the [`Report`] instead).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// PostgreSQL refused or the connection failed.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// The envelope library failed outside a row (starting the KEK, a DEK).
    #[error("envelope: {0}")]
    Envelope(#[from] keyshift_envelope::Error),
    /// The KEK source could not be read.
    #[error("KEK: {0}")]
    Kek(String),
    /// The connection settings are unusable.
    #[error("configuration: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aad_binds_environment_and_name_without_ambiguity() {
        assert_ne!(value_aad(1, "AB"), value_aad(1, "A"));
        assert_ne!(value_aad(12, "3"), value_aad(1, "23"));
        assert_eq!(value_aad(1, "A").len(), 9);
        assert_eq!(dek_context(42), "42");
    }
}
