//! What readers see: an immutable view of the window, published whole.
//!
//! A [`View`] never changes once published; a refresh publishes a new one. Every lookup
//! on it is a scan of at most three versions or one hash-map probe: no lock, no call, no
//! clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};
use keyshift::{SecretValue, Timestamp, VersionId};

use crate::error::LookupError;
use crate::jwks::Jwks;
use crate::source::SourceErrorKind;

/// One version of the secret: its id, its labels as of the view it came from, and its
/// value. `Debug` never shows the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    id: VersionId,
    stages: Box<[String]>,
    value: SecretValue,
}

impl Version {
    /// A version (the cache makes these; tests and custom tools may too).
    pub fn new<S: Into<String>>(
        id: VersionId,
        stages: impl IntoIterator<Item = S>,
        value: SecretValue,
    ) -> Self {
        let mut stages: Vec<String> = stages.into_iter().map(Into::into).collect();
        stages.sort();
        Version {
            id,
            stages: stages.into_boxed_slice(),
            value,
        }
    }

    /// The version id (what a JWT's `kid` or a ciphertext's key id carries).
    pub fn id(&self) -> &VersionId {
        &self.id
    }

    /// Its staging labels, sorted, as of the view it came from. A past version may have
    /// none.
    pub fn stages(&self) -> &[String] {
        &self.stages
    }

    /// Whether it carries `stage`.
    pub fn has(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }

    /// Its value. Never log it.
    pub fn value(&self) -> &SecretValue {
        &self.value
    }
}

/// How fresh the published view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// The last refresh succeeded.
    Fresh,
    /// Refreshes have failed since `since`; the last good view is served until
    /// [`View::valid_until`].
    Stale {
        /// When the first failing refresh started.
        since: Timestamp,
        /// Failed refreshes in a row.
        failures: u32,
        /// The last failure's kind.
        error: SourceErrorKind,
    },
}

/// A past version in the bounded cache, with the generation of the view that last
/// served it (a read-mostly stamp: the cache evicts the least recently used).
#[derive(Debug)]
pub(crate) struct PastEntry {
    pub(crate) version: Arc<Version>,
    pub(crate) used: AtomicU64,
    pub(crate) inserted: u64,
    /// It left this cache's window after being AWSCURRENT or ROTATING: retired, never
    /// accepted again. (A version only fetched by id, which a read lagging a new version
    /// also leads to, or one that left while only AWSPENDING, which an emergency's new
    /// version stripped and then made current does, may come back.)
    pub(crate) retired: bool,
}

/// The published view of the secret.
#[derive(Debug)]
pub struct View {
    pub(crate) generation: u64,
    /// Accepted versions with values, AWSCURRENT first, then AWSPENDING, then ROTATING.
    pub(crate) accepted: Box<[Arc<Version>]>,
    pub(crate) past: Arc<HashMap<String, Arc<PastEntry>>>,
    pub(crate) read_at: Timestamp,
    pub(crate) valid_until: Timestamp,
    pub(crate) health: Health,
    pub(crate) jwks: OnceLock<Result<Arc<Jwks>, LookupError>>,
}

impl View {
    /// The version to use (sign, encrypt, present): the one labelled AWSCURRENT.
    pub fn current(&self) -> &Arc<Version> {
        // The cache publishes no view without AWSCURRENT: `accepted` is never empty and
        // starts with it.
        &self.accepted[0]
    }

    /// The versions to accept (verify, decrypt short-lived data): every version
    /// labelled AWSCURRENT, AWSPENDING or ROTATING whose value exists, AWSCURRENT first.
    pub fn accepted(&self) -> &[Arc<Version>] {
        &self.accepted
    }

    /// The accepted version `id`, if it is one.
    pub fn accepted_version(&self, id: &str) -> Option<&Arc<Version>> {
        self.accepted.iter().find(|v| v.id.as_str() == id)
    }

    /// Version `id` if this view knows its value: an accepted version, or a past one
    /// still in the bounded cache.
    pub fn version(&self, id: &str) -> Option<&Arc<Version>> {
        if let Some(v) = self.accepted_version(id) {
            return Some(v);
        }
        let entry = self.past.get(id)?;
        // Read-mostly: only the first read in a generation writes the stamp.
        if entry.used.load(Ordering::Relaxed) < self.generation {
            entry.used.store(self.generation, Ordering::Relaxed);
        }
        Some(&entry.version)
    }

    /// Whether version `id` is a past version this view knows (it left the window, or it
    /// was fetched by id).
    pub fn is_past(&self, id: &str) -> bool {
        self.past.contains_key(id)
    }

    /// Whether version `id` left this cache's window after being AWSCURRENT or ROTATING:
    /// a definite "not accepted", no refresh needed.
    pub(crate) fn is_retired(&self, id: &str) -> bool {
        self.past.get(id).is_some_and(|e| e.retired)
    }

    /// The JWKS of the accepted versions, whose values must be private JWKs (see
    /// [`crate::jwks`]). Computed once per view.
    pub fn jwks(&self) -> Result<Arc<Jwks>, LookupError> {
        self.jwks
            .get_or_init(|| crate::jwks::jwks(self.accepted.iter().map(|v| &**v)).map(Arc::new))
            .clone()
    }

    /// When the labels of this view were read (the start of its refresh).
    pub fn read_at(&self) -> Timestamp {
        self.read_at
    }

    /// Until when this view is served if refreshes keep failing.
    pub fn valid_until(&self) -> Timestamp {
        self.valid_until
    }

    /// Whether the last refresh succeeded.
    pub fn health(&self) -> Health {
        self.health
    }

    /// A number that grows with every publication.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many past versions this view holds (window versions excluded).
    pub fn past_len(&self) -> usize {
        self.past.len()
    }
}

/// Where a label sits in [`View::accepted`]'s order.
pub(crate) fn rank(v: &Version) -> u8 {
    if v.has(AWSCURRENT) {
        0
    } else if v.has(AWSPENDING) {
        1
    } else if v.has(ROTATING) {
        2
    } else {
        3
    }
}
