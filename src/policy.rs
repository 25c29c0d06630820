//! The rotation policy: the propagation gap T, the inline-wait budget, and the
//! scheduler's precision, plus the one piece of arithmetic that joins them: when to ask
//! the scheduler to fire so that a gap ends as close to T as possible and never before.

use std::time::Duration;

use crate::time::Timestamp;

/// How long the rotation function may run at most (AWS Lambda's hard limit).
pub const LAMBDA_MAX_RUNTIME: Duration = Duration::from_secs(900);
/// Head-room kept between the inline-wait budget and the Lambda limit, for the AWS calls
/// made before and after a wait.
pub const RUNTIME_HEADROOM: Duration = Duration::from_secs(60);

/// How far ahead of now the earliest schedule is set (see [`Policy::earliest_fire`]).
pub const MIN_LEAD: Duration = Duration::from_secs(10);

/// What keyshift needs to know to time a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// T: an upper bound on every consumer's refresh interval plus clock skew plus
    /// scheduler jitter. Each label moves at least T after the one before it.
    pub gap: Duration,
    /// The longest a single invocation may wait inline for a due time.
    pub inline_budget: Duration,
    /// The scheduler's precision: a follow-up set for minute m fires somewhere inside
    /// [m, m + precision). EventBridge's is one minute.
    pub precision: Duration,
    /// When set, finishSecret also schedules a watchdog: one more `swapPending` for the
    /// rotation, due this long after the rotation should have ended (2T after it
    /// started). A rotation that ended finds nothing to do; one that is stuck (a lost or
    /// failing follow-up) is re-driven, and the function reports it (metric
    /// `RotationsStuck`). `None` (the default): no watchdog.
    pub watchdog: Option<Duration>,
}

/// The longest T keyshift accepts: 7 days. A rotation takes at least 2T; consumers that
/// refresh less often than weekly are not what keyshift's windows are built for.
pub const MAX_GAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// T of zero would make every gap empty.
    #[error("the propagation gap T must be at least one second")]
    GapTooShort,
    /// A T past [`MAX_GAP`]: a rotation would take weeks, and the follow-ups' times would
    /// leave what a schedule can name.
    #[error("the propagation gap T must be at most 7 days (604800 s)")]
    GapTooLong,
    /// The budget must leave room below the Lambda limit.
    #[error(
        "the inline-wait budget ({budget:?}) must stay at least {headroom:?} below the Lambda limit of {limit:?}"
    )]
    BudgetTooLong {
        /// The budget asked for.
        budget: Duration,
        /// The head-room required.
        headroom: Duration,
        /// The Lambda limit.
        limit: Duration,
    },
    /// A precision of zero is not a scheduler.
    #[error("the scheduler precision must be at least one second")]
    PrecisionTooFine,
}

impl Policy {
    /// The EventBridge precision.
    pub const EVENTBRIDGE_PRECISION: Duration = Duration::from_secs(60);

    /// A policy for EventBridge (one-minute precision).
    pub fn new(gap: Duration, inline_budget: Duration) -> Result<Self, PolicyError> {
        Self::with_precision(gap, inline_budget, Self::EVENTBRIDGE_PRECISION)
    }

    /// A policy with an explicit scheduler precision.
    pub fn with_precision(
        gap: Duration,
        inline_budget: Duration,
        precision: Duration,
    ) -> Result<Self, PolicyError> {
        if gap < Duration::from_secs(1) {
            return Err(PolicyError::GapTooShort);
        }
        if gap > MAX_GAP {
            return Err(PolicyError::GapTooLong);
        }
        if precision < Duration::from_secs(1) {
            return Err(PolicyError::PrecisionTooFine);
        }
        if inline_budget + RUNTIME_HEADROOM > LAMBDA_MAX_RUNTIME {
            return Err(PolicyError::BudgetTooLong {
                budget: inline_budget,
                headroom: RUNTIME_HEADROOM,
                limit: LAMBDA_MAX_RUNTIME,
            });
        }
        Ok(Policy {
            gap,
            inline_budget,
            precision,
            watchdog: None,
        })
    }

    /// This policy with a watchdog `margin` after a rotation's expected end (see
    /// [`Policy::watchdog`]).
    pub fn with_watchdog(mut self, margin: Option<Duration>) -> Self {
        self.watchdog = margin;
        self
    }

    /// When to ask the scheduler to fire a follow-up that is due at `due`.
    ///
    /// A schedule for minute m fires anywhere in [m, m + precision). When the budget
    /// allows waiting up to two precisions inline, fire in the minute that *ends* at or
    /// before `due`: the follow-up always arrives early and waits out the remainder, so
    /// the gap overshoots T by no more than the invocation's own latency. Otherwise fire
    /// in the first minute that starts at or after `due`: never early, late by less than
    /// one precision plus the rounding. Never sooner than [`Policy::earliest_fire`]; a
    /// follow-up due by then fires as soon as a schedule may.
    pub fn fire_time(&self, due: Timestamp, now: Timestamp) -> Timestamp {
        let earliest = self.earliest_fire(now);
        if due <= earliest {
            // Due already (or by the time it could fire): as soon as a schedule may.
            return earliest;
        }
        let early = due.floor_to(self.precision).minus(self.precision);
        let fire = if due.since(early) <= self.inline_budget {
            early
        } else {
            due.ceil_to(self.precision)
        };
        fire.max(earliest)
    }

    /// The earliest time a schedule created at `now` may name: [`MIN_LEAD`] ahead, to
    /// the second. EventBridge refuses a one-time schedule whose time has passed, and a
    /// time right at `now` will have passed by the time the request arrives (or on a
    /// skewed clock). The lead is short because a follow-up whose due is near must still
    /// be able to arrive before it and wait out the rest inline.
    pub fn earliest_fire(&self, now: Timestamp) -> Timestamp {
        now.plus(MIN_LEAD).ceil_to(Duration::from_secs(1))
    }

    /// This policy with another T (a per-secret override), validated like [`Policy::new`].
    pub fn with_gap(&self, gap: Duration) -> Result<Self, PolicyError> {
        Self::with_precision(gap, self.inline_budget, self.precision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn validates_its_bounds() {
        assert_eq!(Policy::new(secs(0), secs(60)), Err(PolicyError::GapTooShort));
        assert_eq!(
            Policy::new(MAX_GAP + secs(1), secs(60)),
            Err(PolicyError::GapTooLong)
        );
        assert!(Policy::new(MAX_GAP, secs(60)).is_ok());
        assert_eq!(
            Policy::new(secs(60), secs(60)).unwrap().with_gap(secs(u64::MAX)),
            Err(PolicyError::GapTooLong)
        );
        assert!(matches!(
            Policy::new(secs(60), secs(841)),
            Err(PolicyError::BudgetTooLong { .. })
        ));
        assert!(Policy::new(secs(60), secs(840)).is_ok());
        assert_eq!(
            Policy::with_precision(secs(60), secs(60), Duration::ZERO),
            Err(PolicyError::PrecisionTooFine)
        );
    }

    #[test]
    fn fires_early_enough_to_wait_out_the_rest_when_the_budget_allows() {
        let p = Policy::new(secs(600), secs(300)).unwrap();
        let now = Timestamp::from_secs(1_000_000);
        for offset in [0, 1, 30, 59] {
            let due = Timestamp::from_secs(1_800_000 + offset);
            let fire = p.fire_time(due, now);
            // The whole firing window [fire, fire + 60 s) ends at or before `due`...
            assert!(fire.plus(p.precision) <= due, "offset {offset}");
            // ...and the wait it leaves is at most two precisions.
            assert!(due.since(fire) <= secs(120));
            assert_eq!(fire, fire.floor_to(p.precision));
        }
    }

    #[test]
    fn fires_at_or_after_due_when_the_budget_is_short() {
        let p = Policy::new(secs(600), secs(30)).unwrap();
        let now = Timestamp::from_secs(1_000_000);
        for offset in [0, 1, 59] {
            let due = Timestamp::from_secs(1_800_000 + offset);
            let fire = p.fire_time(due, now);
            assert!(fire >= due);
            assert!(fire.since(due) < secs(60));
        }
    }

    #[test]
    fn never_fires_in_the_past_or_sooner_than_the_lead() {
        for budget in [0, 300] {
            let p = Policy::new(secs(600), secs(budget)).unwrap();
            for now_ms in [0, 1, 30_000, 59_999, 60_000] {
                let now = Timestamp::from_millis(1_800_000_000 + now_ms);
                // A due that has passed, one due now, and one due in five seconds.
                for due in [now.minus(secs(30)), now, now.plus(secs(5))] {
                    let fire = p.fire_time(due, now);
                    assert!(fire.since(now) >= MIN_LEAD, "now +{now_ms} ms: {fire:?}");
                    assert!(
                        fire.since(now) < MIN_LEAD + p.precision,
                        "now +{now_ms} ms: {fire:?}"
                    );
                    assert_eq!(fire, fire.floor_to(secs(1)), "whole seconds");
                }
            }
        }
    }

    #[test]
    fn with_gap_keeps_the_budget_and_validates() {
        let p = Policy::new(secs(600), secs(300)).unwrap();
        let q = p.with_gap(secs(1200)).unwrap();
        assert_eq!(
            (q.gap, q.inline_budget, q.precision),
            (secs(1200), p.inline_budget, p.precision)
        );
        assert_eq!(p.with_gap(secs(0)), Err(PolicyError::GapTooShort));
    }
}
