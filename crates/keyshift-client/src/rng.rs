//! Jitter from a seed: SplitMix64, so that a seed gives the same intervals on every
//! platform and every version (the simulation replays seeds exactly).

use std::hash::BuildHasher;
use std::time::Duration;

/// A small deterministic generator for refresh jitter (not for anything secret).
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Jitter(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration drawn uniformly from `lo..=hi`, in whole milliseconds.
    pub(crate) fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo = u64::try_from(lo.as_millis()).unwrap_or(u64::MAX);
        let hi = u64::try_from(hi.as_millis()).unwrap_or(u64::MAX).max(lo);
        let span = hi - lo;
        let offset = if span == u64::MAX {
            self.next_u64()
        } else {
            // Modulo bias is below 2^-40 for any span a refresh interval can have.
            self.next_u64() % (span + 1)
        };
        Duration::from_millis(lo + offset)
    }
}

/// A seed for production caches: different in every process and every call, so that a
/// fleet's refreshes spread out.
pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_stays_inside_and_covers_the_range() {
        let mut j = Jitter::new(7);
        let (lo, hi) = (Duration::from_millis(10), Duration::from_millis(20));
        let draws: Vec<_> = (0..2000).map(|_| j.between(lo, hi)).collect();
        assert!(draws.iter().all(|d| (lo..=hi).contains(d)));
        assert!(
            draws.contains(&lo) && draws.contains(&hi),
            "both ends are reachable"
        );
        assert_eq!(Jitter::new(3).between(lo, lo), lo);
    }
}
