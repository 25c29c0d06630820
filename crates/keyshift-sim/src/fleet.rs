//! A fleet of service instances following the consumer contract (docs/protocol.md, section 1),
//! each one running the real consumer library: a [`keyshift_client::WindowCache`] with
//! its own configuration and jitter seed, driven by the virtual clock.
//!
//! The world wakes an instance at the time its cache asks for ([`WindowCache::next_wake`])
//! and refreshes it through [`SimSource`], which reads a snapshot that may lag the store
//! by a little (eventual consistency) and the values as they are. As a producer an
//! instance uses its cache's AWSCURRENT; as a consumer it accepts the versions its cache
//! accepts. Under store errors an instance's refresh fails now and then (never more than
//! twice in a row, so its view stays younger than T through the retries): the cache serves
//! its last view and retries on its own schedule. The check reads the published view only: it never requests a refresh, so
//! the fleet is held to the contract without refresh-on-miss healing anything.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use keyshift::memory::MemorySecretsManager;
use keyshift::{SecretId, SecretState, SecretValue, VersionId};
use keyshift_client::{LabelMap, Source, SourceError, SourceErrorKind, Version, WindowCache};

/// One instance: a window cache.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The instance's cache of the secret.
    pub cache: WindowCache,
}

impl Instance {
    /// The version this instance signs, encrypts or authenticates with (its cache's
    /// AWSCURRENT), if its cache has one to serve.
    pub fn in_use(&self) -> Option<Arc<Version>> {
        self.cache.current().ok()
    }

    /// Whether this instance, as a consumer, accepts `version`.
    pub fn accepts(&self, version: &VersionId) -> bool {
        self.cache
            .view()
            .is_ok_and(|v| v.accepted_version(version.as_str()).is_some())
    }
}

/// What an instance's refresh reads: the labels of the store as they were at the read
/// time (`labels`), and values straight from the store (a version's value never
/// changes, and a placeholder has none).
pub struct SimSource<'a> {
    /// Whether `describe` fails (a transient error: the cache keeps its last view).
    pub fail: bool,
    /// The store state as read.
    pub labels: &'a SecretState,
    /// The store, for values.
    pub store: &'a MemorySecretsManager,
    /// The secret.
    pub secret: &'a SecretId,
}

impl Source for SimSource<'_> {
    async fn describe(&self) -> Result<LabelMap, SourceError> {
        if self.fail {
            return Err(SourceError::new(
                SourceErrorKind::Transient,
                "DescribeSecret: injected failure",
            ));
        }
        Ok(LabelMap::from(self.labels))
    }

    async fn value(&self, version: &VersionId) -> Result<Option<SecretValue>, SourceError> {
        Ok(self.store.value(self.secret, version).ok().flatten())
    }
}

/// Runs a future that never waits (a refresh through [`SimSource`]: no other refresh
/// can be in flight in a single-threaded world).
pub fn run_now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a simulated refresh waited: SimSource never does"),
    }
}

/// A failed consumer operation: what was used and who refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Producer `producer` used `version`; consumer `consumer` does not accept it.
    NotAccepted {
        /// The producing instance.
        producer: usize,
        /// The refusing instance.
        consumer: usize,
        /// The version used.
        version: VersionId,
    },
    /// Producer `producer` presented `version` to service B, which has revoked it or
    /// never registered it.
    DownstreamRefused {
        /// The producing instance.
        producer: usize,
        /// The version presented.
        version: VersionId,
    },
    /// An instance has no usable current value at all.
    NothingToUse {
        /// The instance.
        producer: usize,
    },
}

/// The fleet.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// The instances.
    pub instances: Vec<Instance>,
}

impl Fleet {
    /// One operation: `producer` uses its current version towards `consumer` and towards
    /// service B (whose valid credentials are `downstream`).
    pub fn operate(
        &self,
        producer: usize,
        consumer: usize,
        downstream: &BTreeSet<String>,
    ) -> Result<(), Failure> {
        let Some(used) = self.instances[producer].in_use() else {
            return Err(Failure::NothingToUse { producer });
        };
        if !self.instances[consumer].accepts(used.id()) {
            return Err(Failure::NotAccepted {
                producer,
                consumer,
                version: used.id().clone(),
            });
        }
        if !downstream.contains(used.value().expose()) {
            return Err(Failure::DownstreamRefused {
                producer,
                version: used.id().clone(),
            });
        }
        Ok(())
    }

    /// Every producer/consumer pair that would fail right now (views only change at
    /// refreshes, so checking after each refresh covers every instant).
    pub fn broken_pairs(&self, downstream: &BTreeSet<String>) -> Vec<Failure> {
        let n = self.instances.len();
        let mut out = Vec::new();
        for p in 0..n {
            for c in 0..n {
                if let Err(f) = self.operate(p, c, downstream) {
                    out.push(f);
                }
            }
        }
        out
    }
}
