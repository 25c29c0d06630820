//! [`WindowCache`]: the published view (lock-free reads) and the driver that refreshes
//! it through a [`Source`].
//!
//! Readers load the published [`View`] from an `ArcSwap`: no lock, no call, no clock.
//! Writers (a refresh, a miss, a timeout) run the sans-I/O core (`core.rs`) under a mutex that
//! is never held across a call, then publish a new view. Refreshes are single-flight:
//! an async lock serialises them, so a lookup that misses while a refresh is running
//! waits for that refresh instead of starting another.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::{ArcSwap, Guard};
use keyshift::secret::ACCEPTED_STAGES;
use keyshift::{Timestamp, VersionId};

use crate::config::Config;
use crate::core::{Core, Published};
use crate::error::LookupError;
use crate::jwks::Jwks;
use crate::source::{Source, SourceError};
use crate::view::{Version, View};

/// Counters of what a cache has done, for tests, metrics and call budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `describe` calls (DescribeSecret).
    pub describe_calls: u64,
    /// `value` calls (GetSecretValue).
    pub value_calls: u64,
    /// Refreshes that succeeded.
    pub refreshes: u64,
    /// Refreshes that failed.
    pub failed_refreshes: u64,
    /// Refreshes that served lookups of unknown ids.
    pub miss_refreshes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    describe_calls: AtomicU64,
    value_calls: AtomicU64,
    refreshes: AtomicU64,
    failed_refreshes: AtomicU64,
    miss_refreshes: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    published: ArcSwap<Published>,
    core: Mutex<Core>,
    /// Held for the whole of a refresh (across its calls): refreshes are single-flight.
    flight: tokio::sync::Mutex<()>,
    /// Signals a background refresher that a lookup missed.
    missed: tokio::sync::Notify,
    counters: Counters,
}

/// A window cache of one secret. Cloning it is cheap and shares the cache.
///
/// Reading ([`current`](Self::current), [`accepted`](Self::accepted),
/// [`version`](Self::version), [`jwks`](Self::jwks), [`view`](Self::view)) takes no lock
/// and makes no call. Driving it ([`refresh_due`](Self::refresh_due),
/// [`next_wake`](Self::next_wake), [`handle_timeout`](Self::handle_timeout),
/// [`refresh`](Self::refresh)) takes `now` from the caller: the tokio refresher
/// ([`crate::Client`]) passes the system time, the simulation its virtual clock.
#[derive(Clone)]
pub struct WindowCache {
    shared: Arc<Shared>,
}

impl fmt::Debug for WindowCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let published = self.shared.published.load();
        let mut d = f.debug_struct("WindowCache");
        match &**published {
            Published::NotReady => d.field("state", &"not ready"),
            Published::Ready(v) => d
                .field("generation", &v.generation())
                .field(
                    "accepted",
                    &v.accepted().iter().map(|v| v.id()).collect::<Vec<_>>(),
                )
                .field("health", &v.health()),
            Published::Expired(e) => d.field("state", e),
        };
        d.finish_non_exhaustive()
    }
}

/// The published view, held without a lock or a reference count (an `arc-swap` guard).
/// Hold it briefly: it keeps that view alive.
pub struct ViewRef(Guard<Arc<Published>>);

impl Deref for ViewRef {
    type Target = View;

    fn deref(&self) -> &View {
        match &**self.0 {
            Published::Ready(v) => v,
            // `WindowCache::view` only wraps ready views.
            _ => unreachable!("a ViewRef always holds a ready view"),
        }
    }
}

impl fmt::Debug for ViewRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The accepted versions of the published view, AWSCURRENT first.
#[derive(Debug)]
pub struct Accepted(ViewRef);

impl Deref for Accepted {
    type Target = [Arc<Version>];

    fn deref(&self) -> &[Arc<Version>] {
        self.0.accepted()
    }
}

impl<'a> IntoIterator for &'a Accepted {
    type Item = &'a Arc<Version>;
    type IntoIter = std::slice::Iter<'a, Arc<Version>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.accepted().iter()
    }
}

/// Whether `id` can be a Secrets Manager version id (1 to 64 printable ASCII
/// characters). Anything else is refused before it can cost a call.
fn plausible_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl WindowCache {
    /// An empty cache: lookups fail with [`LookupError::NotReady`] until the first
    /// refresh succeeds, which is due at once. `seed` drives the refresh jitter; in
    /// production pass [`crate::random_seed`], in a simulation a seed of the run.
    pub fn new(config: Config, seed: u64) -> Self {
        WindowCache {
            shared: Arc::new(Shared {
                published: ArcSwap::from_pointee(Published::NotReady),
                core: Mutex::new(Core::new(config, seed)),
                flight: tokio::sync::Mutex::new(()),
                missed: tokio::sync::Notify::new(),
                counters: Counters::default(),
            }),
        }
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock cannot leave Core half-updated in a way that
        // matters more than losing the cache: keep serving.
        self.shared.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn core_for_tests(&self) -> MutexGuard<'_, Core> {
        self.core()
    }

    fn publish(&self, core: &mut Core) {
        self.shared.published.store(Arc::new(core.publish()));
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.core().config().clone()
    }

    // ---- reading: no lock, no call ----

    /// The published view, or why there is none to serve.
    pub fn view(&self) -> Result<ViewRef, LookupError> {
        let guard = self.shared.published.load();
        match &**guard {
            Published::Ready(_) => Ok(ViewRef(guard)),
            Published::NotReady => Err(LookupError::NotReady),
            Published::Expired(e) => Err(e.clone()),
        }
    }

    /// The version to use (sign, encrypt, present): AWSCURRENT, with its id.
    pub fn current(&self) -> Result<Arc<Version>, LookupError> {
        match &**self.shared.published.load() {
            Published::Ready(v) => Ok(Arc::clone(v.current())),
            Published::NotReady => Err(LookupError::NotReady),
            Published::Expired(e) => Err(e.clone()),
        }
    }

    /// The versions to accept (verify, authenticate, decrypt short-lived data):
    /// AWSCURRENT, AWSPENDING and ROTATING, each with its id and labels.
    pub fn accepted(&self) -> Result<Accepted, LookupError> {
        self.view().map(Accepted)
    }

    /// The accepted version `id` (a verifier's `kid`). An id the cache has never seen
    /// accepted requests a rate-limited refresh and fails with
    /// [`LookupError::UnknownVersion`]; [`WindowCache::fetch_accepted`] (or
    /// [`crate::Client::fetch_accepted`]) waits for that refresh instead. A version that
    /// left the window after being AWSCURRENT or ROTATING fails with
    /// [`LookupError::NotAccepted`], with no refresh: keyshift never accepts it again.
    pub fn accepted_version(&self, id: &str) -> Result<Arc<Version>, LookupError> {
        self.lookup(id, true, true)
    }

    /// Version `id`, accepted or past (decrypting stored data by the key id it carries):
    /// window versions are always served, past ones from a bounded cache. A miss
    /// requests a rate-limited refresh that also fetches `id`, and fails with
    /// [`LookupError::UnknownVersion`]; [`WindowCache::fetch_version`] (or
    /// [`crate::Client::fetch_version`]) waits for it instead.
    pub fn version(&self, id: &str) -> Result<Arc<Version>, LookupError> {
        self.lookup(id, false, true)
    }

    /// The JWKS of the accepted versions (`kid` = version id), for signing secrets whose
    /// values are private JWKs (see [`crate::jwks`]). Built once per view.
    pub fn jwks(&self) -> Result<Arc<Jwks>, LookupError> {
        self.view()?.jwks()
    }

    fn lookup(&self, id: &str, accepted_only: bool, request: bool) -> Result<Arc<Version>, LookupError> {
        let view = self.view()?;
        let found = if accepted_only {
            view.accepted_version(id)
        } else {
            view.version(id)
        };
        if let Some(v) = found {
            return Ok(Arc::clone(v));
        }
        if accepted_only && view.is_retired(id) {
            return Err(LookupError::NotAccepted(VersionId::new(id)));
        }
        drop(view);
        if !plausible_id(id) {
            return Err(LookupError::InvalidVersionId);
        }
        if request && self.core().request(id) {
            self.shared.missed.notify_one();
        }
        Err(LookupError::UnknownVersion)
    }

    // ---- driving: time and I/O come from the caller ----

    /// Whether a refresh should start at `now` (the scheduled one is due, or a lookup
    /// missed and the miss interval allows one).
    pub fn refresh_due(&self, now: Timestamp) -> bool {
        self.core().due(now)
    }

    /// When the cache next wants to be driven: its scheduled refresh, a rate-limited
    /// refresh for a miss, or the moment its view expires.
    pub fn next_wake(&self) -> Timestamp {
        self.core().next_wake()
    }

    /// Expires the view if, at `now`, it is older than the maximum staleness (lookups
    /// then fail with [`LookupError::Expired`] until a refresh succeeds).
    pub fn handle_timeout(&self, now: Timestamp) {
        let mut core = self.core();
        if core.handle_timeout(now) {
            tracing::error!(
                "keyshift-client: the view of the secret expired: refreshes kept failing for longer than the maximum staleness"
            );
            self.publish(&mut core);
        }
    }

    /// Refreshes now, whatever the schedule: `describe`, then `value` for each version
    /// never seen, then publishes. `now` is when the refresh starts. On failure the last
    /// good view stays published (until it expires) and a retry is scheduled.
    pub async fn refresh<S: Source + ?Sized>(&self, source: &S, now: Timestamp) -> Result<(), SourceError> {
        let _flight = self.shared.flight.lock().await;
        self.refresh_locked(source, now).await
    }

    /// Refreshes if one is due at `now` (checked again once no other refresh is
    /// running). Returns whether it refreshed.
    pub async fn refresh_if_due<S: Source + ?Sized>(
        &self,
        source: &S,
        now: Timestamp,
    ) -> Result<bool, SourceError> {
        let _flight = self.shared.flight.lock().await;
        if !self.core().due(now) {
            return Ok(false);
        }
        self.refresh_locked(source, now).await.map(|()| true)
    }

    /// [`WindowCache::version`], but a miss refreshes through `source` (at most once per
    /// miss interval, joining a refresh already running) and looks again: an emergency
    /// rotation's new key is found in one round trip.
    pub async fn fetch_version<S: Source + ?Sized>(
        &self,
        source: &S,
        id: &str,
        now: Timestamp,
    ) -> Result<Arc<Version>, LookupError> {
        self.fetch(source, id, now, false).await
    }

    /// [`WindowCache::accepted_version`], with a miss refreshing like
    /// [`WindowCache::fetch_version`].
    pub async fn fetch_accepted<S: Source + ?Sized>(
        &self,
        source: &S,
        id: &str,
        now: Timestamp,
    ) -> Result<Arc<Version>, LookupError> {
        self.fetch(source, id, now, true).await
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            describe_calls: get(&c.describe_calls),
            value_calls: get(&c.value_calls),
            refreshes: get(&c.refreshes),
            failed_refreshes: get(&c.failed_refreshes),
            miss_refreshes: get(&c.miss_refreshes),
        }
    }

    /// Resolves when a lookup has missed since the last call (for a refresher's loop).
    pub async fn missed(&self) {
        self.shared.missed.notified().await;
    }

    async fn fetch<S: Source + ?Sized>(
        &self,
        source: &S,
        id: &str,
        now: Timestamp,
        accepted_only: bool,
    ) -> Result<Arc<Version>, LookupError> {
        match self.lookup(id, accepted_only, false) {
            Err(LookupError::UnknownVersion) => {}
            other => return other,
        }
        let _flight = self.shared.flight.lock().await;
        // A refresh that ran while this waited may have brought it.
        match self.lookup(id, accepted_only, false) {
            Err(LookupError::UnknownVersion) => {}
            other => return other,
        }
        let allowed = {
            let mut core = self.core();
            core.request(id);
            core.miss_allowed(now)
        };
        if !allowed {
            // Rate limited; the request stays queued for the next refresh.
            return Err(LookupError::UnknownVersion);
        }
        // A failure keeps the last view; the lookup below says what is known.
        let _ = self.refresh_locked(source, now).await;
        self.lookup(id, accepted_only, false)
    }

    async fn refresh_locked<S: Source + ?Sized>(
        &self,
        source: &S,
        now: Timestamp,
    ) -> Result<(), SourceError> {
        let requested = self.core().begin(now);
        let counters = &self.shared.counters;
        if !requested.is_empty() {
            bump(&counters.miss_refreshes);
        }
        bump(&counters.describe_calls);
        let labels = match source.describe().await {
            Ok(labels) => labels,
            Err(e) => return Err(self.failed(now, e)),
        };
        let wanted = self.core().wanted(&labels, &requested);
        let mut fetched = HashMap::with_capacity(wanted.len());
        for id in wanted {
            bump(&counters.value_calls);
            match source.value(&id).await {
                Ok(value) => {
                    fetched.insert(id, value);
                }
                Err(e) => {
                    let in_window = labels
                        .stages(&id)
                        .is_some_and(|s| ACCEPTED_STAGES.iter().any(|a| s.contains(*a)));
                    if in_window {
                        return Err(self.failed(now, e));
                    }
                    // An id asked for by a lookup: it stays unknown, the refresh goes on.
                    tracing::debug!(version = %id, error = %e, "keyshift-client: fetching a past version failed");
                }
            }
        }
        let mut core = self.core();
        match core.complete(now, &labels, fetched) {
            Ok(()) => {
                bump(&counters.refreshes);
                self.publish(&mut core);
                Ok(())
            }
            Err(e) => {
                drop(core);
                Err(self.failed(now, e))
            }
        }
    }

    fn failed(&self, now: Timestamp, e: SourceError) -> SourceError {
        bump(&self.shared.counters.failed_refreshes);
        tracing::warn!(kind = ?e.kind(), error = %e.message(), "keyshift-client: refresh failed; serving the last good view");
        let mut core = self.core();
        core.fail(now, e.kind());
        self.publish(&mut core);
        e
    }
}
