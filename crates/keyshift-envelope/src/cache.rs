//! The data key cache: unwrapped data keys by their exact wrapped record, with the
//! limits the AWS Encryption SDK's caching CMM has (maximum age, maximum uses, maximum
//! entries).
//!
//! A lookup is one short critical section under a mutex (never held across an await).
//! Two tasks missing the same key at once may both unwrap it; the counters show it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::dek::DataKey;

/// The cache's limits. An entry is dropped (and the next use unwraps again) when it is
/// older than `max_age` or has served `max_uses` operations; past `max_entries` the
/// oldest entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// How long an unwrapped data key may stay in memory.
    pub max_age: Duration,
    /// How many seals and opens an entry may serve (each value of a batch counts).
    pub max_uses: u64,
    /// How many data keys may be held at once (0: no caching at all).
    pub max_entries: usize,
}

impl CacheLimits {
    /// No shared cache: every data key lives only as long as the call (or the
    /// [`crate::Scope`]) that unwrapped it: exactly one unwrap per distinct data key per
    /// request.
    pub const fn none() -> Self {
        CacheLimits {
            max_age: Duration::ZERO,
            max_uses: 0,
            max_entries: 0,
        }
    }
}

impl Default for CacheLimits {
    /// Five minutes, 2^32 uses (AES-GCM's limit for random nonces under one key in a
    /// single cache lifetime), 1,000 entries.
    fn default() -> Self {
        CacheLimits {
            max_age: Duration::from_secs(300),
            max_uses: 1 << 32,
            max_entries: 1000,
        }
    }
}

struct Entry {
    key: DataKey,
    created: Instant,
    uses: u64,
}

/// The cache. See the module documentation.
pub struct DekCache {
    limits: CacheLimits,
    entries: Mutex<HashMap<Box<[u8]>, Entry>>,
}

impl std::fmt::Debug for DekCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DekCache")
            .field("limits", &self.limits)
            .field("entries", &self.len())
            .finish()
    }
}

impl DekCache {
    /// An empty cache with `limits`.
    pub fn new(limits: CacheLimits) -> Self {
        DekCache {
            limits,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Its limits.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<[u8]>, Entry>> {
        // A poisoned map is still a valid map: every mutation is a single insert/remove.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many data keys are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The data key for `record`, counting `uses` operations against it, if held and
    /// within its limits.
    pub(crate) fn get(&self, record: &[u8], uses: u64, now: Instant) -> Option<DataKey> {
        if self.limits.max_entries == 0 {
            return None;
        }
        let mut map = self.lock();
        let entry = map.get_mut(record)?;
        let fresh = now.saturating_duration_since(entry.created) < self.limits.max_age;
        let new_uses = entry.uses.saturating_add(uses);
        if fresh && new_uses <= self.limits.max_uses {
            entry.uses = new_uses;
            return Some(entry.key.clone());
        }
        map.remove(record);
        None
    }

    /// Holds `key` for `record`, `uses` operations already served.
    pub(crate) fn insert(&self, record: &[u8], key: DataKey, uses: u64, now: Instant) {
        if self.limits.max_entries == 0 || uses > self.limits.max_uses {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.limits.max_entries && !map.contains_key(record) {
            let max_age = self.limits.max_age;
            map.retain(|_, e| now.saturating_duration_since(e.created) < max_age);
            if map.len() >= self.limits.max_entries {
                let oldest = map.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        map.insert(
            record.into(),
            Entry {
                key,
                created: now,
                uses,
            },
        );
    }
}
