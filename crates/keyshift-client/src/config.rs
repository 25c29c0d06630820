//! How one window cache behaves, checked once against the rotation's propagation gap T.
//!
//! The rule that makes a rotation safe for this consumer (docs/protocol.md, section 1): the view
//! the cache serves is never older than T. A view is as old as the refresh interval plus
//! how far a read may lag the store (eventual consistency), so the longest jittered
//! interval plus the read-lag allowance must be strictly shorter than T. [`Config`] cannot
//! be built otherwise.

use std::num::NonZeroUsize;
use std::time::Duration;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{what} must be longer than zero")]
    Zero {
        /// The setting.
        what: &'static str,
    },
    /// The jitter range is upside down.
    #[error("the shortest refresh interval ({min:?}) is longer than the longest ({max:?})")]
    RefreshRangeInverted {
        /// The shortest interval asked for.
        min: Duration,
        /// The longest interval asked for.
        max: Duration,
    },
    /// A view could be T old or older: the rotation's gaps would not cover this consumer.
    #[error(
        "the longest refresh interval ({refresh_max:?}) plus the read-lag allowance ({read_lag:?}) \
         must be shorter than the propagation gap T ({gap:?})"
    )]
    RefreshNotBelowGap {
        /// The longest refresh interval.
        refresh_max: Duration,
        /// The read-lag allowance.
        read_lag: Duration,
        /// T.
        gap: Duration,
    },
    /// A healthy cache would expire between two refreshes.
    #[error(
        "the maximum staleness ({max_staleness:?}) must be longer than the longest refresh interval ({refresh_max:?})"
    )]
    StalenessBelowRefresh {
        /// The maximum staleness asked for.
        max_staleness: Duration,
        /// The longest refresh interval.
        refresh_max: Duration,
    },
}

/// A validated window-cache configuration. Build it with [`Config::new`] (defaults
/// derived from T) or [`Config::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    gap: Duration,
    refresh_min: Duration,
    refresh_max: Duration,
    read_lag: Duration,
    max_staleness: Duration,
    retry: Duration,
    miss_interval: Duration,
    past_versions: NonZeroUsize,
}

impl Config {
    /// Default allowance for a read that lags the store (eventual consistency).
    pub const DEFAULT_READ_LAG: Duration = Duration::from_secs(2);
    /// The default longest refresh interval is never above this (the Secrets Manager
    /// Agent's default TTL), whatever T is.
    pub const DEFAULT_REFRESH_CAP: Duration = Duration::from_secs(300);
    /// The default maximum staleness is never below this.
    pub const DEFAULT_MIN_STALENESS: Duration = Duration::from_secs(15 * 60);
    /// Default first delay before retrying a failed refresh (it doubles up to the
    /// shortest refresh interval).
    pub const DEFAULT_RETRY: Duration = Duration::from_secs(1);
    /// Default shortest time between the start of a refresh and a refresh triggered by a
    /// lookup of an unknown version id.
    pub const DEFAULT_MISS_INTERVAL: Duration = Duration::from_secs(1);
    /// Default bound of the cache of past versions (window versions do not count).
    pub const DEFAULT_PAST_VERSIONS: usize = 16;

    /// The defaults for a rotation whose propagation gap is `gap` (T): longest refresh
    /// interval `min((T - read lag) / 2, 300 s)`, jittered down to half of it (like AWS's
    /// caching libraries), read lag 2 s, maximum staleness `max(3 x longest interval,
    /// 15 min)`, first retry after 1 s, refresh-on-miss at most once a second, 16 past
    /// versions.
    pub fn new(gap: Duration) -> Result<Config, ConfigError> {
        Config::builder(gap).build()
    }

    /// A builder starting from the defaults of [`Config::new`].
    pub fn builder(gap: Duration) -> ConfigBuilder {
        ConfigBuilder {
            gap,
            refresh: None,
            read_lag: Config::DEFAULT_READ_LAG,
            max_staleness: None,
            retry: Config::DEFAULT_RETRY,
            miss_interval: Config::DEFAULT_MISS_INTERVAL,
            past_versions: NonZeroUsize::new(Config::DEFAULT_PAST_VERSIONS).unwrap_or(NonZeroUsize::MIN),
        }
    }

    /// T, the rotation's propagation gap this consumer must stay under.
    pub fn gap(&self) -> Duration {
        self.gap
    }

    /// The shortest refresh interval (jitter's lower bound).
    pub fn refresh_min(&self) -> Duration {
        self.refresh_min
    }

    /// The longest refresh interval (jitter's upper bound); plus the read lag, below T.
    pub fn refresh_max(&self) -> Duration {
        self.refresh_max
    }

    /// How far a read may lag the store.
    pub fn read_lag(&self) -> Duration {
        self.read_lag
    }

    /// How long after the last good refresh the cache still serves its view while
    /// refreshes fail; lookups fail with [`crate::LookupError::Expired`] after that. A
    /// view served beyond `refresh_max` may be older than T: the rotation's guarantee
    /// assumes refreshes succeed, and this bounds how long that assumption is waived.
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// First delay before retrying a failed refresh.
    pub fn retry(&self) -> Duration {
        self.retry
    }

    /// Shortest time from the start of one refresh to a refresh triggered by a miss.
    pub fn miss_interval(&self) -> Duration {
        self.miss_interval
    }

    /// How many past versions (fetched by id, or that left the window) are kept.
    pub fn past_versions(&self) -> NonZeroUsize {
        self.past_versions
    }
}

/// Builds a [`Config`]; every setting starts at the default of [`Config::new`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    gap: Duration,
    refresh: Option<(Duration, Duration)>,
    read_lag: Duration,
    max_staleness: Option<Duration>,
    retry: Duration,
    miss_interval: Duration,
    past_versions: NonZeroUsize,
}

impl ConfigBuilder {
    /// Each refresh interval is drawn uniformly from `min..=max`.
    pub fn refresh(mut self, min: Duration, max: Duration) -> Self {
        self.refresh = Some((min, max));
        self
    }

    /// The allowance for a read that lags the store.
    pub fn read_lag(mut self, lag: Duration) -> Self {
        self.read_lag = lag;
        self
    }

    /// How long the last good view is served while refreshes fail.
    pub fn max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = Some(max);
        self
    }

    /// First delay before retrying a failed refresh.
    pub fn retry(mut self, first: Duration) -> Self {
        self.retry = first;
        self
    }

    /// Shortest time from the start of one refresh to a refresh triggered by a miss.
    pub fn miss_interval(mut self, interval: Duration) -> Self {
        self.miss_interval = interval;
        self
    }

    /// How many past versions are kept.
    pub fn past_versions(mut self, bound: NonZeroUsize) -> Self {
        self.past_versions = bound;
        self
    }

    /// Checks the settings against each other and against T.
    pub fn build(self) -> Result<Config, ConfigError> {
        let gap = self.gap;
        if gap.is_zero() {
            return Err(ConfigError::Zero {
                what: "the propagation gap T",
            });
        }
        let (refresh_min, refresh_max) = match self.refresh {
            Some(r) => r,
            None => {
                let max = (gap.saturating_sub(self.read_lag) / 2).min(Config::DEFAULT_REFRESH_CAP);
                (max / 2, max)
            }
        };
        // Whole milliseconds: the cache's clock (`Timestamp`) has no finer grain.
        let (refresh_min, refresh_max) = (whole_ms(refresh_min), whole_ms(refresh_max));
        if refresh_min.is_zero() || refresh_max.is_zero() {
            return Err(ConfigError::Zero {
                what: "the refresh interval",
            });
        }
        if refresh_min > refresh_max {
            return Err(ConfigError::RefreshRangeInverted {
                min: refresh_min,
                max: refresh_max,
            });
        }
        if refresh_max.saturating_add(self.read_lag) >= gap {
            return Err(ConfigError::RefreshNotBelowGap {
                refresh_max,
                read_lag: self.read_lag,
                gap,
            });
        }
        let max_staleness = self
            .max_staleness
            .unwrap_or_else(|| (refresh_max * 3).max(Config::DEFAULT_MIN_STALENESS));
        if max_staleness <= refresh_max {
            return Err(ConfigError::StalenessBelowRefresh {
                max_staleness,
                refresh_max,
            });
        }
        if self.retry.is_zero() {
            return Err(ConfigError::Zero {
                what: "the retry delay",
            });
        }
        if self.miss_interval.is_zero() {
            return Err(ConfigError::Zero {
                what: "the refresh-on-miss interval",
            });
        }
        Ok(Config {
            gap,
            refresh_min,
            refresh_max,
            read_lag: self.read_lag,
            max_staleness,
            retry: whole_ms(self.retry).max(Duration::from_millis(1)),
            miss_interval: whole_ms(self.miss_interval).max(Duration::from_millis(1)),
            past_versions: self.past_versions,
        })
    }
}

fn whole_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn defaults_follow_t() {
        let c = Config::new(S(600)).unwrap();
        assert_eq!(c.refresh_max(), S(299));
        assert_eq!(c.refresh_min(), Duration::from_millis(149_500));
        assert_eq!(c.max_staleness(), S(15 * 60));
        assert!(c.refresh_max() + c.read_lag() < c.gap());

        let c = Config::new(S(3600)).unwrap();
        assert_eq!(c.refresh_max(), S(300), "capped");
        let c = Config::new(S(60)).unwrap();
        assert_eq!(c.refresh_max(), S(29));
    }

    #[test]
    fn refuses_a_refresh_that_reaches_t() {
        // max + lag == T is refused: the bound is strict.
        let e = Config::builder(S(60)).refresh(S(30), S(58)).build().unwrap_err();
        assert!(matches!(e, ConfigError::RefreshNotBelowGap { .. }), "{e}");
        assert!(e.to_string().contains("shorter than the propagation gap"), "{e}");
        let ok = Config::builder(S(60))
            .refresh(S(30), Duration::from_millis(57_999))
            .build();
        assert!(ok.is_ok(), "{ok:?}");
        let e = Config::builder(S(60))
            .refresh(S(10), S(50))
            .read_lag(S(10))
            .build()
            .unwrap_err();
        assert!(matches!(e, ConfigError::RefreshNotBelowGap { .. }), "{e}");
        // Defaults cannot fit when T does not even cover the read lag.
        assert!(matches!(Config::new(S(2)), Err(ConfigError::Zero { .. })));
    }

    #[test]
    fn refuses_other_bad_settings() {
        let b = || Config::builder(S(600));
        assert!(matches!(
            b().refresh(S(20), S(10)).build(),
            Err(ConfigError::RefreshRangeInverted { .. })
        ));
        assert!(matches!(
            b().refresh(S(0), S(10)).build(),
            Err(ConfigError::Zero { .. })
        ));
        assert!(matches!(
            b().refresh(S(10), S(100)).max_staleness(S(100)).build(),
            Err(ConfigError::StalenessBelowRefresh { .. })
        ));
        assert!(matches!(b().retry(S(0)).build(), Err(ConfigError::Zero { .. })));
        assert!(matches!(
            b().miss_interval(S(0)).build(),
            Err(ConfigError::Zero { .. })
        ));
        assert!(matches!(Config::new(S(0)), Err(ConfigError::Zero { .. })));
    }
}
