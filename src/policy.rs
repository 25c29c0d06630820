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
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// T of zero would make every gap empty.
    #[error("the propagation gap T must be at least one second")]
    GapTooShort,
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
        })
    }

    /// When to ask the scheduler to fire a follow-up that is due at `due`.
    ///
    /// A schedule for minute m fires anywhere in [m, m + precision). When the budget
    /// allows waiting up to two precisions inline, fire in the minute that *ends* at or
    /// before `due`: the follow-up always arrives early and waits out the remainder, so
    /// the gap overshoots T by no more than the invocation's own latency. Otherwise fire
    /// in the first minute that starts at or after `due`: never early, late by less than
    /// one precision plus the rounding.
    pub fn fire_time(&self, due: Timestamp, now: Timestamp) -> Timestamp {
        let early = due.floor_to(self.precision).minus(self.precision);
        let fire = if due.since(early) <= self.inline_budget {
            early
        } else {
            due.ceil_to(self.precision)
        };
        fire.max(now)
    }

    /// When to fire the schedule behind a follow-up that the scheduling invocation will
    /// carry on inline: at least one precision after `due`, so that it only acts if that
    /// invocation died, and never races it.
    pub fn backstop_time(&self, due: Timestamp) -> Timestamp {
        due.plus(self.precision).ceil_to(self.precision)
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
    fn a_backstop_fires_only_after_its_whole_firing_window_passed_the_due_time() {
        let p = Policy::new(secs(60), secs(300)).unwrap();
        for offset in [0, 1, 30, 59] {
            let due = Timestamp::from_secs(1_800_000 + offset);
            let fire = p.backstop_time(due);
            assert!(fire.since(due) >= p.precision, "offset {offset}");
            assert!(fire.since(due) < secs(120), "offset {offset}");
            assert_eq!(fire, fire.floor_to(p.precision));
        }
    }
}
