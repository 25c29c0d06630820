//! A fleet of service instances following the consumer contract (DESIGN.md section 2).
//!
//! Each instance refreshes its view of the secret every `period` (at most R) from a
//! random phase, reading a snapshot that may lag the store by a little (eventual
//! consistency), and fetches the value of every accepted version it has not seen. As a
//! producer it uses the AWSCURRENT of its view; as a consumer it accepts every version its
//! view labels AWSCURRENT, AWSPENDING or ROTATING and whose value it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keyshift::{SecretState, SecretValue, Timestamp, VersionId};

/// One instance's view of the secret.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    /// How often it refreshes (its own R, at most the fleet's).
    pub period: Duration,
    /// The version its view labels AWSCURRENT.
    pub current: Option<VersionId>,
    /// The versions its view accepts.
    pub accepted: BTreeSet<VersionId>,
    /// Values fetched so far, by version (a version's value never changes).
    pub values: BTreeMap<VersionId, SecretValue>,
    /// When the view it holds was read.
    pub view_time: Option<Timestamp>,
}

impl Instance {
    /// Adopts `view` (read at `read_at`), fetching new values with `fetch`.
    pub fn refresh(
        &mut self,
        view: &SecretState,
        read_at: Timestamp,
        mut fetch: impl FnMut(&VersionId) -> Option<SecretValue>,
    ) {
        self.current = view.current().cloned();
        self.accepted = view.accepted().into_iter().cloned().collect();
        for v in &self.accepted {
            if !self.values.contains_key(v) {
                // A placeholder has no value yet: fetch again at the next refresh.
                if let Some(value) = fetch(v) {
                    self.values.insert(v.clone(), value);
                }
            }
        }
        self.view_time = Some(read_at);
    }

    /// The version and value this instance signs, encrypts or authenticates with.
    pub fn in_use(&self) -> Option<(&VersionId, &SecretValue)> {
        let v = self.current.as_ref()?;
        Some((v, self.values.get(v)?))
    }

    /// Whether this instance, as a consumer, accepts `version`.
    pub fn accepts(&self, version: &VersionId) -> bool {
        self.accepted.contains(version) && self.values.contains_key(version)
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
        let p = &self.instances[producer];
        let Some((version, value)) = p.in_use() else {
            return Err(Failure::NothingToUse { producer });
        };
        if !self.instances[consumer].accepts(version) {
            return Err(Failure::NotAccepted {
                producer,
                consumer,
                version: version.clone(),
            });
        }
        if !downstream.contains(value.expose()) {
            return Err(Failure::DownstreamRefused {
                producer,
                version: version.clone(),
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
