//! What the services need from keyshift-client: the window cache to read (lock-free,
//! no call) and a way to look a version up through the source when the cache does not
//! know it (refresh-on-miss).
//!
//! [`Client`] is the production [`KeyWindow`]: its first refresh has succeeded before
//! it exists, and a tokio task keeps it fresh. [`DrivenWindow`] is a cache and a source
//! that the caller refreshes: a service that must answer before the secret could be
//! read (its health endpoint says 503 until then), and the in-process tests.

use std::future::Future;
use std::sync::Arc;

use keyshift_client::{
    Client, LookupError, Source, SourceError, SystemClock, Timestamp, Version, WindowCache,
};

/// A window cache of one secret, and lookups that may refresh it.
pub trait KeyWindow: Send + Sync + 'static {
    /// The cache: [`WindowCache::current`] to use, [`WindowCache::jwks`] and
    /// [`WindowCache::accepted`] to accept, [`WindowCache::view`] for its age.
    fn cache(&self) -> &WindowCache;

    /// The accepted version `id`; an id the cache has never seen refreshes once (rate
    /// limited by the cache's miss interval) and looks again.
    fn fetch_accepted(&self, id: &str) -> impl Future<Output = Result<Arc<Version>, LookupError>> + Send;

    /// Version `id`, accepted or past; a miss refreshes once (rate limited) and looks
    /// again.
    fn fetch_version(&self, id: &str) -> impl Future<Output = Result<Arc<Version>, LookupError>> + Send;

    /// Now, on the clock the cache is driven with.
    fn now(&self) -> Timestamp {
        SystemClock::new().now()
    }
}

impl<S: Source + 'static> KeyWindow for Client<S> {
    fn cache(&self) -> &WindowCache {
        Client::cache(self)
    }

    fn fetch_accepted(&self, id: &str) -> impl Future<Output = Result<Arc<Version>, LookupError>> + Send {
        Client::fetch_accepted(self, id)
    }

    fn fetch_version(&self, id: &str) -> impl Future<Output = Result<Arc<Version>, LookupError>> + Send {
        Client::fetch_version(self, id)
    }
}

/// A window cache and its source, refreshed by whoever holds it
/// ([`DrivenWindow::refresh`], or a loop of [`WindowCache::refresh_if_due`]). Until the
/// first refresh succeeds every lookup fails with [`LookupError::NotReady`].
#[derive(Debug)]
pub struct DrivenWindow<S: Source + 'static> {
    cache: WindowCache,
    source: S,
    clock: SystemClock,
}

impl<S: Source + 'static> DrivenWindow<S> {
    /// An empty cache over `source`; nothing is read yet.
    pub fn new(cache: WindowCache, source: S) -> Self {
        DrivenWindow {
            cache,
            source,
            clock: SystemClock::new(),
        }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Refreshes the cache now (`describe`, then the values it has never seen).
    pub async fn refresh(&self) -> Result<(), SourceError> {
        self.cache.refresh(&self.source, self.clock.now()).await
    }
}

impl<S: Source + 'static> KeyWindow for DrivenWindow<S> {
    fn cache(&self) -> &WindowCache {
        &self.cache
    }

    fn fetch_accepted(&self, id: &str) -> impl Future<Output = Result<Arc<Version>, LookupError>> + Send {
        self.cache.fetch_accepted(&self.source, id, self.clock.now())
    }

    fn fetch_version(&self, id: &str) -> impl Future<Output = Result<Arc<Version>, LookupError>> + Send {
        self.cache.fetch_version(&self.source, id, self.clock.now())
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
