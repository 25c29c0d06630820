//! The production edge on tokio: a clock, a background refresher, and [`Client`], the
//! handle a service keeps for one secret.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use keyshift::Timestamp;

use crate::cache::WindowCache;
use crate::config::Config;
use crate::error::LookupError;
use crate::rng::random_seed;
use crate::source::{Source, SourceError};
use crate::view::Version;

/// Wall-clock time read at the edge: UTC at creation, advanced by the monotonic clock,
/// so that intervals and ages are immune to steps of the system clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    base: Timestamp,
    start: Instant,
}

impl SystemClock {
    /// Reads the system time once.
    pub fn new() -> Self {
        SystemClock {
            base: Timestamp::from(SystemTime::now()),
            start: Instant::now(),
        }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        self.base.plus(self.start.elapsed())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

/// A window cache kept fresh by a background task on the current tokio runtime.
///
/// Dereferences to its [`WindowCache`] for the lock-free reads
/// ([`current`](WindowCache::current), [`accepted`](WindowCache::accepted),
/// [`version`](WindowCache::version), [`jwks`](WindowCache::jwks)). Dropping it stops
/// the refresher.
pub struct Client<S: Source + 'static> {
    cache: WindowCache,
    source: Arc<S>,
    clock: SystemClock,
    refresher: tokio::task::JoinHandle<()>,
}

impl<S: Source + 'static> fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<S: Source + 'static> Client<S> {
    /// Loads the secret's window through `source` (the first refresh must succeed) and
    /// starts the background refresher. Must be called within a tokio runtime.
    pub async fn start(source: S, config: Config) -> Result<Self, SourceError> {
        Client::start_with_seed(source, config, random_seed()).await
    }

    /// [`Client::start`] with a chosen jitter seed.
    pub async fn start_with_seed(source: S, config: Config, seed: u64) -> Result<Self, SourceError> {
        let cache = WindowCache::new(config, seed);
        let clock = SystemClock::new();
        let source = Arc::new(source);
        cache.refresh(&*source, clock.now()).await?;
        let refresher = tokio::spawn(refresh_forever(cache.clone(), Arc::clone(&source), clock));
        Ok(Client {
            cache,
            source,
            clock,
            refresher,
        })
    }

    /// The cache.
    pub fn cache(&self) -> &WindowCache {
        &self.cache
    }

    /// The source it refreshes from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Version `id`, accepted or past; a miss refreshes (rate limited) and looks again.
    /// See [`WindowCache::fetch_version`].
    pub async fn fetch_version(&self, id: &str) -> Result<Arc<Version>, LookupError> {
        self.cache
            .fetch_version(&*self.source, id, self.clock.now())
            .await
    }

    /// The accepted version `id`; a miss refreshes (rate limited) and looks again. See
    /// [`WindowCache::fetch_accepted`].
    pub async fn fetch_accepted(&self, id: &str) -> Result<Arc<Version>, LookupError> {
        self.cache
            .fetch_accepted(&*self.source, id, self.clock.now())
            .await
    }
}

impl<S: Source + 'static> Deref for Client<S> {
    type Target = WindowCache;

    fn deref(&self) -> &WindowCache {
        &self.cache
    }
}

impl<S: Source + 'static> Drop for Client<S> {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

/// The refresher's loop: expire, refresh when due, sleep until the next wake-up or a
/// miss. Errors are logged by the cache and retried on its schedule.
async fn refresh_forever<S: Source + 'static>(cache: WindowCache, source: Arc<S>, clock: SystemClock) {
    loop {
        let now = clock.now();
        cache.handle_timeout(now);
        if let Ok(true) | Err(_) = cache.refresh_if_due(&*source, now).await {
            continue;
        }
        let wait = cache.next_wake().since(clock.now());
        let _ = tokio::time::timeout(wait, cache.missed()).await;
    }
}
