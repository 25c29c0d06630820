//! A fleet of service instances following the consumer contract (docs/protocol.md, section 1),
//! each one running the real consumer library: a [`keyshift_client::WindowCache`] with
//! its own configuration and jitter seed, driven by the virtual clock.
//!
//! The world wakes an instance at the time its cache asks for ([`WindowCache::next_wake`])
//! and refreshes it through [`SimSource`], which reads a snapshot that may lag the store
//! by a little (eventual consistency) and the values as they are. As a producer an
//! instance uses its cache's AWSCURRENT; as a consumer it accepts the versions its cache
//! accepts. On an opaque secret that is the whole operation (the abstract check: the
//! producer's version must be one the consumer accepts); on a key secret the operation
//! is real cryptography ([`crate::keys`]: a signature verified with the consumer's own
//! JWKS, a ciphertext decrypted with the key under its kid in the consumer's own view).
//! Under store errors an instance's refresh fails now and then (never more than
//! twice in a row, so its view stays younger than T through the retries): the cache serves
//! its last view and retries on its own schedule.
//!
//! Every lookup reads the published view first, so the fleet is held to the contract
//! without refresh-on-miss healing anything: the world counts a miss as a failed
//! operation unless it is an emergency's by-design one. Then, in a fleet that refreshes
//! on a miss ([`crate::scenario::Scenario::refresh_on_miss`]), the consumer does what
//! keyshift-client offers for it ([`Heal`]): `fetch_accepted` (or `fetch_version` for
//! stored data), one rate-limited refresh, and looks again, which is how a consumer sees
//! an emergency's new key id one round trip after the cut instead of up to R later.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use keyshift::memory::MemorySecretsManager;
use keyshift::{SecretId, SecretState, SecretValue, VersionId};
use keyshift_client::{LabelMap, Source, SourceError, SourceErrorKind, Version, WindowCache};

use crate::keys::KeyOps;
use crate::scenario::SecretKind;

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

/// What a consumer does when a lookup misses (the world's side: it knows the store and
/// the clock). The fleet calls it only after the published view failed the lookup.
pub trait Heal {
    /// Consumer `consumer` did not find `kid` among its accepted versions
    /// (`accepted_only`) or among its versions by id (stored data): keyshift-client's
    /// refresh-on-miss through `cache`. Returns whether the lookup may be tried again
    /// (the cache refreshed or fetched something).
    fn miss(&mut self, consumer: usize, cache: &WindowCache, kid: &VersionId, accepted_only: bool) -> bool;
}

/// A fleet that does not refresh on a miss: every miss is final.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeal;

impl Heal for NoHeal {
    fn miss(&mut self, _: usize, _: &WindowCache, _: &VersionId, _: bool) -> bool {
        false
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
    /// Producer `producer` signed or encrypted under `kid`; consumer `consumer` found no
    /// key under that kid in its own view (its JWKS; its accepted versions; for stored
    /// data, its versions by id).
    UnknownKid {
        /// The producing instance (for stored data, the one that encrypted it).
        producer: usize,
        /// The consumer.
        consumer: usize,
        /// The kid: the version id of the producer's key.
        kid: VersionId,
        /// Whether it was stored data (decrypted by exact version id).
        stored: bool,
    },
    /// The consumer found a key under `kid`, and the cryptography failed with it.
    Rejected {
        /// The producing instance.
        producer: usize,
        /// The consumer.
        consumer: usize,
        /// The kid.
        kid: VersionId,
        /// What failed.
        why: String,
    },
    /// The producer's current version holds no usable key of the secret's kind.
    UnusableKey {
        /// The producing instance.
        producer: usize,
        /// Its current version.
        version: VersionId,
        /// What is wrong with it.
        why: String,
    },
}

/// The fleet.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// The instances.
    pub instances: Vec<Instance>,
    /// The real operations, on a key secret (an opaque secret's do nothing but count).
    pub keys: KeyOps,
}

impl Fleet {
    /// An empty fleet for a secret of `kind`; `seed` drives the sampling of real
    /// operations (a stream of its own).
    pub fn new(kind: SecretKind, seed: u64) -> Self {
        Fleet {
            instances: Vec::new(),
            keys: KeyOps::new(kind, seed),
        }
    }

    /// One operation: `producer` uses its current version towards `consumer` and towards
    /// service B (whose valid credentials are `downstream`). On an opaque secret the
    /// consumer must accept the version; on a key secret the producer signs or encrypts
    /// for real and the consumer verifies or decrypts with its own view.
    pub fn operate(
        &mut self,
        producer: usize,
        consumer: usize,
        downstream: &BTreeSet<String>,
        heal: &mut dyn Heal,
    ) -> Result<(), Failure> {
        self.pair(producer, consumer, downstream, Mode::Operate, heal)
    }

    /// The end-of-run sweep: every producer towards every consumer, real operations on a
    /// key secret (see [`KeyOps::sweep`]); the failures, with their producer and
    /// consumer.
    pub fn sweep(
        &mut self,
        downstream: &BTreeSet<String>,
        heal: &mut dyn Heal,
    ) -> Vec<(usize, usize, Failure)> {
        let n = self.instances.len();
        let mut out = Vec::new();
        for p in 0..n {
            for c in 0..n {
                if let Err(f) = self.pair(p, c, downstream, Mode::Sweep, heal) {
                    out.push((p, c, f));
                }
            }
        }
        out
    }

    /// One pair of the end-of-run sweep (see [`Fleet::sweep`]).
    pub fn sweep_pair(
        &mut self,
        producer: usize,
        consumer: usize,
        downstream: &BTreeSet<String>,
        heal: &mut dyn Heal,
    ) -> Result<(), Failure> {
        self.pair(producer, consumer, downstream, Mode::Sweep, heal)
    }

    fn pair(
        &mut self,
        producer: usize,
        consumer: usize,
        downstream: &BTreeSet<String>,
        mode: Mode,
        heal: &mut dyn Heal,
    ) -> Result<(), Failure> {
        let Some(used) = self.instances[producer].in_use() else {
            return Err(Failure::NothingToUse { producer });
        };
        let cache = &self.instances[consumer].cache;
        match (self.keys.kind(), mode) {
            (SecretKind::Opaque, _) => match self.check_accepted(producer, consumer, &used) {
                // Looked up again after keyshift-client's refresh-on-miss.
                Err(_) if heal.miss(consumer, cache, used.id(), true) => {
                    self.check_accepted(producer, consumer, &used)?
                }
                first => first?,
            },
            (_, Mode::Operate) => self.keys.operate(producer, &used, consumer, cache, heal)?,
            (_, Mode::Sweep) => self.keys.sweep(producer, &used, consumer, cache, heal)?,
        }
        self.check_downstream(producer, &used, downstream)
    }

    /// The abstract check: the consumer accepts the producer's version.
    fn check_accepted(&self, producer: usize, consumer: usize, used: &Version) -> Result<(), Failure> {
        if !self.instances[consumer].accepts(used.id()) {
            return Err(Failure::NotAccepted {
                producer,
                consumer,
                version: used.id().clone(),
            });
        }
        Ok(())
    }

    fn check_downstream(
        &self,
        producer: usize,
        used: &Version,
        downstream: &BTreeSet<String>,
    ) -> Result<(), Failure> {
        if !downstream.contains(used.value().expose()) {
            return Err(Failure::DownstreamRefused {
                producer,
                version: used.id().clone(),
            });
        }
        Ok(())
    }

    /// Every producer/consumer pair that would fail right now (views only change at
    /// refreshes, so checking after each refresh covers every instant). On a key secret
    /// this is the kid lookup of each pair in the consumer's own view, with no
    /// cryptography ([`KeyOps::reaches`]).
    pub fn broken_pairs(&self, downstream: &BTreeSet<String>) -> Vec<Failure> {
        let n = self.instances.len();
        let mut out = Vec::new();
        for p in 0..n {
            let Some(used) = self.instances[p].in_use() else {
                out.push(Failure::NothingToUse { producer: p });
                continue;
            };
            for c in 0..n {
                let reached = match self.keys.kind() {
                    SecretKind::Opaque => self.check_accepted(p, c, &used),
                    _ => self
                        .keys
                        .reaches(p, &used, c, &self.instances[c].cache, &mut NoHeal),
                };
                if let Err(f) = reached.and_then(|()| self.check_downstream(p, &used, downstream)) {
                    out.push(f);
                }
            }
        }
        out
    }
}

/// An operation in the run, or the sweep at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Operate,
    Sweep,
}
