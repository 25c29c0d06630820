//! The wall clock.

use std::time::SystemTime;

use keyshift::ports::Clock;
use keyshift::time::Timestamp;

/// The system clock, sleeping on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    async fn sleep_until(&self, until: Timestamp) {
        let now = self.now();
        if until > now {
            tokio::time::sleep(until.since(now)).await;
        }
    }
}
