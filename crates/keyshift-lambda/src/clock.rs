//! The wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

use keyshift::ports::Clock;
use keyshift::time::Timestamp;

/// The system clock, sleeping on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_millis(ms)
    }

    async fn sleep_until(&self, until: Timestamp) {
        let now = self.now();
        if until > now {
            tokio::time::sleep(until.since(now)).await;
        }
    }
}
