//! The window cache's decisions, sans I/O: a state machine that takes `now` and the
//! source's answers, says when it wants a refresh and which values it needs, and
//! produces the view to publish. It never reads a clock and never calls anything; the
//! driver in [`crate::cache`] does, and holds this behind a mutex only for the few
//! microseconds of a transition (never across a call).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use keyshift::secret::{ACCEPTED_STAGES, AWSCURRENT, ROTATING};
use keyshift::{SecretValue, Timestamp, VersionId};

use crate::config::Config;
use crate::error::LookupError;
use crate::rng::Jitter;
use crate::source::{LabelMap, SourceError, SourceErrorKind};
use crate::view::{Health, PastEntry, Version, View, rank};

/// Most distinct unknown ids one refresh fetches by id: a flood of made-up key ids costs
/// at most this many GetSecretValue calls per miss interval.
pub(crate) const MAX_REQUESTED: usize = 8;

/// What is published for readers.
#[derive(Debug)]
pub(crate) enum Published {
    /// No refresh has succeeded yet.
    NotReady,
    /// A view to serve.
    Ready(View),
    /// The last good view is too old; the error says why.
    Expired(LookupError),
}

#[derive(Debug, Clone, Copy)]
struct Failing {
    since: Timestamp,
    failures: u32,
    error: SourceErrorKind,
}

/// The cache's state.
#[derive(Debug)]
pub(crate) struct Core {
    config: Config,
    jitter: Jitter,
    /// Accepted versions with values, in [`View::accepted`]'s order.
    window: Vec<Arc<Version>>,
    /// Past versions: left the window, or fetched by id. Shared with published views;
    /// copied on write.
    past: Arc<HashMap<String, Arc<PastEntry>>>,
    inserted: u64,
    last_good: Option<Timestamp>,
    failing: Option<Failing>,
    expired: bool,
    next_refresh: Timestamp,
    last_started: Option<Timestamp>,
    requested: BTreeSet<String>,
    generation: u64,
}

impl Core {
    /// A cache with nothing in it; its first refresh is due at once.
    pub(crate) fn new(config: Config, seed: u64) -> Self {
        Core {
            config,
            jitter: Jitter::new(seed),
            window: Vec::new(),
            past: Arc::default(),
            inserted: 0,
            last_good: None,
            failing: None,
            expired: false,
            next_refresh: Timestamp::EPOCH,
            last_started: None,
            requested: BTreeSet::new(),
            generation: 0,
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Whether a refresh should start at `now`: the scheduled one is due, or a lookup
    /// missed and the miss interval since the last refresh started has passed.
    pub(crate) fn due(&self, now: Timestamp) -> bool {
        now >= self.next_refresh || (!self.requested.is_empty() && self.miss_allowed(now))
    }

    /// Whether a refresh triggered by a miss may start at `now`.
    pub(crate) fn miss_allowed(&self, now: Timestamp) -> bool {
        self.last_started
            .is_none_or(|t| now >= t.plus(self.config.miss_interval()))
    }

    /// When the cache next wants [`Core::handle_timeout`] or a refresh.
    pub(crate) fn next_wake(&self) -> Timestamp {
        let mut wake = self.next_refresh;
        if !self.requested.is_empty() {
            let miss = self
                .last_started
                .map_or(Timestamp::EPOCH, |t| t.plus(self.config.miss_interval()));
            wake = wake.min(miss);
        }
        if let (Some(good), false) = (self.last_good, self.expired) {
            wake = wake.min(good.plus(self.config.max_staleness()));
        }
        wake
    }

    /// Expires the view if it is `max_staleness` old at `now`. Returns whether the
    /// published state must change.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp) -> bool {
        match self.last_good {
            Some(good) if !self.expired && now >= good.plus(self.config.max_staleness()) => {
                self.expired = true;
                true
            }
            _ => false,
        }
    }

    /// Records a lookup of an unknown id. Returns whether it is newly requested.
    pub(crate) fn request(&mut self, id: &str) -> bool {
        if self.requested.len() >= MAX_REQUESTED || self.requested.contains(id) {
            return false;
        }
        self.requested.insert(id.to_owned())
    }

    /// A refresh starts at `now`; returns the unknown ids it must try to fetch.
    pub(crate) fn begin(&mut self, now: Timestamp) -> Vec<VersionId> {
        self.last_started = Some(now);
        std::mem::take(&mut self.requested)
            .into_iter()
            .map(VersionId::new)
            .collect()
    }

    fn known(&self, id: &VersionId) -> Option<&SecretValue> {
        self.window
            .iter()
            .find(|v| v.id() == id)
            .map(|v| v.value())
            .or_else(|| self.past.get(id.as_str()).map(|e| e.version.value()))
    }

    /// The values a refresh must fetch after `labels` came back: accepted versions never
    /// seen (a version's value never changes, so a known one is never fetched again;
    /// AWSPENDING's placeholder has none yet and is asked again next time), and the
    /// requested ids the cache does not know.
    pub(crate) fn wanted(&self, labels: &LabelMap, requested: &[VersionId]) -> Vec<VersionId> {
        let mut out: Vec<VersionId> = labels
            .iter()
            .filter(|(_, stages)| accepted(stages))
            .map(|(id, _)| id)
            .filter(|id| self.known(id).is_none())
            .cloned()
            .collect();
        for id in requested {
            if self.known(id).is_none() && !out.contains(id) {
                out.push(id.clone());
            }
        }
        out
    }

    /// A refresh that started at `now` read `labels` and `fetched` the wanted values
    /// (`None`: the version has no value). Adopts the new window, or refuses an answer
    /// a cache cannot serve (no AWSCURRENT, or AWSCURRENT without a value) as a failure.
    pub(crate) fn complete(
        &mut self,
        now: Timestamp,
        labels: &LabelMap,
        mut fetched: HashMap<VersionId, Option<SecretValue>>,
    ) -> Result<(), SourceError> {
        let mut window = Vec::new();
        for (id, stages) in labels.iter().filter(|(_, s)| accepted(s)) {
            let reuse = self
                .window
                .iter()
                .find(|v| v.id() == id && v.stages().iter().eq(stages.iter()));
            if let Some(same) = reuse {
                window.push(Arc::clone(same));
                continue;
            }
            let value = fetched
                .get(id)
                .cloned()
                .flatten()
                .or_else(|| self.known(id).cloned());
            match value {
                Some(value) => window.push(Arc::new(Version::new(id.clone(), stages.iter().cloned(), value))),
                None if stages.contains(AWSCURRENT) => {
                    return Err(SourceError::new(
                        SourceErrorKind::Inconsistent,
                        format!("version {id} is labelled AWSCURRENT but has no value"),
                    ));
                }
                // The engine's placeholder: accepted once it has a value.
                None => {}
            }
        }
        if labels.holder(AWSCURRENT).is_none() {
            return Err(SourceError::new(
                SourceErrorKind::Inconsistent,
                "no version is labelled AWSCURRENT",
            ));
        }
        window.sort_by_key(|v| rank(v));

        let generation = self.generation + 1;
        let bound = self.config.past_versions().get();
        let past = Arc::make_mut(&mut self.past);
        // Each with whether it is retired: it leaves the window after being AWSCURRENT or
        // ROTATING (a version fetched by id, or leaving while only AWSPENDING, may come
        // back: an emergency's new version is stripped, then made current).
        let mut leaving: Vec<(Arc<Version>, bool)> = Vec::new();
        for old in &self.window {
            if !window.iter().any(|v| v.id() == old.id()) {
                let stages = labels.stages(old.id()).into_iter().flatten().cloned();
                let retired = old.has(AWSCURRENT) || old.has(ROTATING);
                leaving.push((
                    Arc::new(Version::new(old.id().clone(), stages, old.value().clone())),
                    retired,
                ));
            }
        }
        for (id, value) in fetched.drain() {
            let Some(value) = value else { continue };
            if !window.iter().any(|v| *v.id() == id) {
                let stages = labels.stages(&id).into_iter().flatten().cloned();
                leaving.push((Arc::new(Version::new(id, stages, value)), false));
            }
        }
        for (version, retired) in leaving {
            self.inserted += 1;
            let retired = retired || past.get(version.id().as_str()).is_some_and(|e| e.retired);
            past.insert(
                version.id().as_str().to_owned(),
                Arc::new(PastEntry {
                    version,
                    used: AtomicU64::new(generation),
                    inserted: self.inserted,
                    retired,
                }),
            );
        }
        for v in &window {
            past.remove(v.id().as_str());
        }
        while past.len() > bound {
            let Some(lru) = past
                .iter()
                .min_by_key(|(_, e)| (e.used.load(Ordering::Relaxed), e.inserted))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            past.remove(&lru);
        }

        self.window = window;
        self.last_good = Some(now);
        self.failing = None;
        self.expired = false;
        let interval = self
            .jitter
            .between(self.config.refresh_min(), self.config.refresh_max());
        self.next_refresh = now.plus(interval);
        Ok(())
    }

    /// A refresh that started at `now` failed: keep the last good view (until it is
    /// `max_staleness` old) and retry with a jittered, doubling delay.
    pub(crate) fn fail(&mut self, now: Timestamp, error: SourceErrorKind) {
        let failing = match self.failing {
            Some(f) => Failing {
                failures: f.failures.saturating_add(1),
                error,
                ..f
            },
            None => Failing {
                since: now,
                failures: 1,
                error,
            },
        };
        self.failing = Some(failing);
        let doubling = 2u32.saturating_pow(failing.failures.saturating_sub(1).min(20));
        let delay = self
            .config
            .retry()
            .saturating_mul(doubling)
            .min(self.config.refresh_min());
        self.next_refresh = now.plus(self.jitter.between(delay / 2, delay));
        self.handle_timeout(now);
    }

    /// The state to publish now.
    pub(crate) fn publish(&mut self) -> Published {
        self.generation += 1;
        let Some(read_at) = self.last_good.filter(|_| !self.window.is_empty()) else {
            return Published::NotReady;
        };
        if self.expired {
            return Published::Expired(LookupError::Expired {
                read_at,
                failing_since: self.failing.map(|f| f.since),
                error: self.failing.map(|f| f.error),
                max_staleness: self.config.max_staleness(),
            });
        }
        let health = match self.failing {
            None => Health::Fresh,
            Some(f) => Health::Stale {
                since: f.since,
                failures: f.failures,
                error: f.error,
            },
        };
        Published::Ready(View {
            generation: self.generation,
            accepted: self.window.clone().into_boxed_slice(),
            past: Arc::clone(&self.past),
            read_at,
            valid_until: read_at.plus(self.config.max_staleness()),
            health,
            jwks: OnceLock::new(),
        })
    }
}

fn accepted(stages: &BTreeSet<String>) -> bool {
    ACCEPTED_STAGES.iter().any(|s| stages.contains(*s))
}
