//! Virtual time for the simulation.
//!
//! The executor waits through [`keyshift::ports::Clock::sleep_until`]; here that returns a
//! future which is pending until the world's virtual clock reaches the wake time, and
//! which records that wake time so the world can queue a wake-up for the task that
//! polled it. Tasks are polled one at a time on one thread, so "the wake time the last
//! poll asked for" is unambiguous (quinn's `Pair::step()` in spirit: jump virtual time
//! to the next wake-up).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use keyshift::Timestamp;
use keyshift::ports::Clock;

/// The world's clock, shared by every port of one run.
#[derive(Debug, Clone)]
pub struct SimClock {
    now: Arc<AtomicI64>,
    wake_request: Arc<Mutex<Option<Timestamp>>>,
}

impl SimClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        SimClock {
            now: Arc::new(AtomicI64::new(start.as_millis())),
            wake_request: Arc::new(Mutex::new(None)),
        }
    }

    /// Moves virtual time forward (never back).
    pub fn advance_to(&self, t: Timestamp) {
        self.now.fetch_max(t.as_millis(), Ordering::SeqCst);
    }

    /// The wake time requested by the last poll that returned `Pending`, cleared.
    pub fn take_wake_request(&self) -> Option<Timestamp> {
        self.wake_request.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// A reader of this clock, for the in-memory store's CreatedDate stamps.
    pub fn reader(&self) -> impl Fn() -> Timestamp + Send + Sync + 'static {
        let now = Arc::clone(&self.now);
        move || Timestamp::from_millis(now.load(Ordering::SeqCst))
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.now.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, until: Timestamp) -> impl Future<Output = ()> + Send {
        Sleep {
            clock: self.clone(),
            until,
        }
    }
}

/// Pending until virtual time reaches `until`.
pub struct Sleep {
    clock: SimClock,
    until: Timestamp,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now() >= self.until {
            Poll::Ready(())
        } else {
            *self.clock.wake_request.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.until);
            Poll::Pending
        }
    }
}

/// A task of the simulation: an invocation in flight.
pub type Task<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Polls `task` once. `Ready` is its result; `Pending` carries the virtual time at which
/// it wants polling again.
pub fn poll_once<T>(task: &mut Task<T>, clock: &SimClock) -> Result<T, Timestamp> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match task.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(clock.take_wake_request().unwrap_or_else(|| {
            panic!("a simulated task is pending on something other than the virtual clock")
        })),
    }
}
