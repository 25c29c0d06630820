//! Why a lookup gave no version. None of these carries a secret value.

use std::time::Duration;

use keyshift::{Timestamp, VersionId};

use crate::jwks::JwkProblem;
use crate::source::SourceErrorKind;

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No refresh has succeeded yet: there is nothing to serve.
    #[error("no view of the secret yet: the first refresh has not succeeded")]
    NotReady,
    /// Refreshes have failed for longer than the configured maximum staleness: the last
    /// good view is too old to serve.
    #[error(
        "the view of the secret expired: read at {read_at}, older than the maximum staleness \
         {max_staleness:?} (refreshes failing since {failing_since:?}, last error {error:?})"
    )]
    Expired {
        /// When the last good view was read.
        read_at: Timestamp,
        /// When refreshes started failing (`None`: no refresh was even attempted, the
        /// cache is not being driven).
        failing_since: Option<Timestamp>,
        /// The last failure's kind.
        error: Option<SourceErrorKind>,
        /// The configured limit.
        max_staleness: Duration,
    },
    /// The version id is neither in the window nor in the cache of past versions. A
    /// refresh has been requested (rate limited); an async lookup through a source
    /// waits for it.
    #[error("unknown version id")]
    UnknownVersion,
    /// The version is known, and not accepted: it left the window.
    #[error("version {0} is not accepted any more")]
    NotAccepted(VersionId),
    /// The id cannot be a Secrets Manager version id (1 to 64 printable ASCII
    /// characters): it was not looked up and triggers no refresh.
    #[error("not a version id")]
    InvalidVersionId,
    /// An accepted version's value is not a private signing JWK the JWKS can publish.
    #[error("version {version} is not a usable signing JWK: {problem}")]
    Jwk {
        /// The version.
        version: VersionId,
        /// What is wrong with it (never its content).
        problem: JwkProblem,
    },
}
