//! The function-wide settings (environment variables) and the per-secret tags.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `KEYSHIFT_PG_CA_BUNDLE` | PEM file of the CAs that sign the servers' certificates (for RDS and Aurora: AWS's global bundle, <https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem>, shipped with the function) | the platform's root certificates |
//! | `KEYSHIFT_PG_SESSION_GRACE_SECONDS` | how long after the old user is locked its open sessions are ended, 0 to 600 | 30 |
//! | `KEYSHIFT_PG_CONNECT_TIMEOUT_SECONDS` | limit for one connection (TCP, TLS and login), 1 to 60 | 5 |
//!
//! | tag | values | default |
//! |---|---|---|
//! | `keyshift:postgres-tls` | `verify-full` (TLS, the certificate checked against the CA bundle, host name included) or `disable` (plain text, only when asked) | `verify-full` |
//! | `keyshift:postgres-session-grace-seconds` | 0 to 600 | the variable |
//!
//! Whoever may tag the secret chooses these: every value is checked, and a bad one fails
//! the step with a configuration error naming the tag, before any connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use keyshift::ports::TargetError;

use crate::secret::shown;

/// `KEYSHIFT_PG_CA_BUNDLE`.
pub const CA_BUNDLE_VAR: &str = "KEYSHIFT_PG_CA_BUNDLE";
/// `KEYSHIFT_PG_SESSION_GRACE_SECONDS`.
pub const SESSION_GRACE_VAR: &str = "KEYSHIFT_PG_SESSION_GRACE_SECONDS";
/// `KEYSHIFT_PG_CONNECT_TIMEOUT_SECONDS`.
pub const CONNECT_TIMEOUT_VAR: &str = "KEYSHIFT_PG_CONNECT_TIMEOUT_SECONDS";
/// `keyshift:postgres-tls`.
pub const TLS_TAG: &str = "keyshift:postgres-tls";
/// `keyshift:postgres-session-grace-seconds`.
pub const SESSION_GRACE_TAG: &str = "keyshift:postgres-session-grace-seconds";

/// The default session grace.
pub const DEFAULT_SESSION_GRACE: Duration = Duration::from_secs(30);
/// The default connection limit.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest session grace (the revoke waits it out inside one invocation).
pub const MAX_SESSION_GRACE_SECS: u64 = 600;
/// The longest connection limit.
pub const MAX_CONNECT_TIMEOUT_SECS: u64 = 60;

/// The target's function-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// PEM file of CAs to verify the server with (RDS: AWS's global bundle,
    /// <https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem>). `None`: the
    /// platform's root certificates (rustls-native-certs), which do not include RDS's CAs.
    pub ca_bundle: Option<PathBuf>,
    /// How long after the revoke the old user's sessions are terminated.
    pub session_grace: Duration,
    /// Limit for one connection: TCP connect, TLS handshake and login.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            ca_bundle: None,
            session_grace: DEFAULT_SESSION_GRACE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

fn seconds(var: &str, text: &str, min: u64, max: u64) -> Result<Duration, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            format!(
                "{var} must be a whole number of seconds from {min} to {max}, got {}",
                shown(text)
            )
        })
}

impl PgOptions {
    /// The settings from the environment (`std::env::var`).
    pub fn from_env() -> Result<PgOptions, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings from `var` (an environment lookup); errors name the variable.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<PgOptions, String> {
        let ca_bundle = match var(CA_BUNDLE_VAR) {
            None => None,
            Some(p) if p.trim().is_empty() => None,
            Some(p) => Some(PathBuf::from(p.trim())),
        };
        let session_grace = match var(SESSION_GRACE_VAR) {
            None => DEFAULT_SESSION_GRACE,
            Some(v) => seconds(SESSION_GRACE_VAR, &v, 0, MAX_SESSION_GRACE_SECS)?,
        };
        let connect_timeout = match var(CONNECT_TIMEOUT_VAR) {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(v) => seconds(CONNECT_TIMEOUT_VAR, &v, 1, MAX_CONNECT_TIMEOUT_SECS)?,
        };
        Ok(PgOptions {
            ca_bundle,
            session_grace,
            connect_timeout,
        })
    }
}

/// How to talk to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS only; the server's certificate must chain to the CA bundle and name the host.
    VerifyFull,
    /// Plain text (only with `keyshift:postgres-tls=disable`; never a fallback).
    Disable,
}

impl TlsMode {
    /// The tag value naming this mode.
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::VerifyFull => "verify-full",
            TlsMode::Disable => "disable",
        }
    }
}

/// What the secret's tags ask of this target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSettings {
    /// `keyshift:postgres-tls`.
    pub tls: TlsMode,
    /// `keyshift:postgres-session-grace-seconds`, else the option.
    pub session_grace: Duration,
}

/// Reads the tags this target knows; anything else is someone else's.
pub fn settings(tags: &BTreeMap<String, String>, options: &PgOptions) -> Result<SecretSettings, TargetError> {
    let tls = match tags.get(TLS_TAG).map(|v| v.trim()) {
        None | Some("verify-full") => TlsMode::VerifyFull,
        Some("disable") => TlsMode::Disable,
        Some(other) => {
            return Err(TargetError::configuration(format!(
                "secret tag {TLS_TAG}: must be verify-full or disable, got {}",
                shown(other)
            )));
        }
    };
    let session_grace = match tags.get(SESSION_GRACE_TAG) {
        None => options.session_grace,
        Some(v) => seconds(SESSION_GRACE_TAG, v, 0, MAX_SESSION_GRACE_SECS)
            .map_err(|e| TargetError::configuration(format!("secret tag {e}")))?,
    };
    Ok(SecretSettings { tls, session_grace })
}

#[cfg(test)]
mod tests {
    use keyshift::ports::TargetErrorKind;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(
            PgOptions::from_lookup(lookup(&[])).expect("defaults"),
            PgOptions::default()
        );
        let o = PgOptions::from_lookup(lookup(&[
            (CA_BUNDLE_VAR, "/opt/global-bundle.pem"),
            (SESSION_GRACE_VAR, "0"),
            (CONNECT_TIMEOUT_VAR, " 10 "),
        ]))
        .expect("valid");
        assert_eq!(o.ca_bundle, Some(PathBuf::from("/opt/global-bundle.pem")));
        assert_eq!(o.session_grace, Duration::ZERO);
        assert_eq!(o.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_variables_are_named() {
        for (var, value) in [
            (SESSION_GRACE_VAR, "-1"),
            (SESSION_GRACE_VAR, "601"),
            (SESSION_GRACE_VAR, "thirty"),
            (CONNECT_TIMEOUT_VAR, "0"),
            (CONNECT_TIMEOUT_VAR, "61"),
            (CONNECT_TIMEOUT_VAR, "1.5"),
        ] {
            let e = PgOptions::from_lookup(lookup(&[(var, value)])).expect_err(value);
            assert!(e.starts_with(var), "{e}");
        }
    }

    #[test]
    fn tags_choose_tls_and_grace() {
        let o = PgOptions::default();
        let s = settings(&tags(&[]), &o).expect("defaults");
        assert_eq!(s.tls, TlsMode::VerifyFull);
        assert_eq!(s.session_grace, DEFAULT_SESSION_GRACE);
        let s = settings(&tags(&[(TLS_TAG, "disable"), (SESSION_GRACE_TAG, "5")]), &o).expect("valid");
        assert_eq!(s.tls, TlsMode::Disable);
        assert_eq!(s.session_grace, Duration::from_secs(5));
        assert_eq!(
            settings(&tags(&[(TLS_TAG, "verify-full")]), &o)
                .expect("valid")
                .tls,
            TlsMode::VerifyFull
        );
        for (tag, value) in [
            (TLS_TAG, "require"),
            (TLS_TAG, "prefer"),
            (TLS_TAG, "Disable"),
            (TLS_TAG, ""),
            (SESSION_GRACE_TAG, "601"),
            (SESSION_GRACE_TAG, "x"),
        ] {
            let e = settings(&tags(&[(tag, value)]), &o).expect_err(value);
            assert_eq!(e.kind, TargetErrorKind::Configuration);
            assert!(e.message.contains(tag), "{e}");
        }
    }
}
