//! What one seeded run looks like: the fault class, the timing (R, T, the inline
//! budget), the fleet, and how many rotations. Everything is a function of the seed.

use std::time::Duration;

use keyshift::Policy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A family of faults a run is exposed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultClass {
    /// No faults: the baseline.
    None,
    /// Secrets Manager calls fail transiently, with no effect.
    StoreErrors,
    /// Secrets Manager calls take effect but their response is lost.
    LostResponses,
    /// Secrets Manager throttles bursts of calls.
    Throttling,
    /// CreateSchedule fails transiently.
    SchedulerErrors,
    /// The engine strips AWSPENDING after finishSecret returns (undocumented clean-up).
    EngineStrip,
    /// setSecret / testSecret fail at the target; the engine retries the rotation.
    EngineStepFailures,
    /// The engine gives up waiting on a step after 60 s and retries the rotation later,
    /// while the invocation runs on.
    EngineTimeout,
    /// The scheduler / Lambda delivers a follow-up twice.
    DuplicateDelivery,
    /// Follow-ups arrive minutes late.
    LateDelivery,
    /// A follow-up delivery is lost and a retry delivers it minutes later.
    LostDelivery,
    /// Everything above at once.
    All,
}

impl FaultClass {
    /// Every class, in report order.
    pub const EVERY: [FaultClass; 12] = [
        FaultClass::None,
        FaultClass::StoreErrors,
        FaultClass::LostResponses,
        FaultClass::Throttling,
        FaultClass::SchedulerErrors,
        FaultClass::EngineStrip,
        FaultClass::EngineStepFailures,
        FaultClass::EngineTimeout,
        FaultClass::DuplicateDelivery,
        FaultClass::LateDelivery,
        FaultClass::LostDelivery,
        FaultClass::All,
    ];

    /// The report name.
    pub fn name(self) -> &'static str {
        match self {
            FaultClass::None => "none",
            FaultClass::StoreErrors => "store-errors",
            FaultClass::LostResponses => "lost-responses",
            FaultClass::Throttling => "throttling",
            FaultClass::SchedulerErrors => "scheduler-errors",
            FaultClass::EngineStrip => "engine-strip",
            FaultClass::EngineStepFailures => "engine-step-failures",
            FaultClass::EngineTimeout => "engine-timeout",
            FaultClass::DuplicateDelivery => "duplicate-delivery",
            FaultClass::LateDelivery => "late-delivery",
            FaultClass::LostDelivery => "lost-delivery",
            FaultClass::All => "all",
        }
    }

    /// Parses a report name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|c| c.name() == name)
    }

    /// Whether this class delays steps by design (late or lost deliveries, engine
    /// retries, retry back-off, a strip that restarts the first gap and so uses up the
    /// invocation's inline budget): its gaps overshoot T by the injected delay, which
    /// says nothing about keyshift's own timing. The overshoot target applies to the
    /// others.
    pub fn injects_delay(self) -> bool {
        !matches!(self, FaultClass::None | FaultClass::DuplicateDelivery)
    }

    /// Whether faults of `other` are active in this class.
    pub fn has(self, other: FaultClass) -> bool {
        self == other || self == FaultClass::All
    }
}

/// How the rotation is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// keyshift's executor: the staged protocol.
    Keyshift,
    /// The control: AWS's plain template, AWSCURRENT moved in finishSecret at once.
    OneStep,
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed everything derives from.
    pub seed: u64,
    /// The faults.
    pub class: FaultClass,
    /// keyshift or the control.
    pub strategy: Strategy,
    /// R: the longest refresh interval in the fleet.
    pub refresh: Duration,
    /// The most a consumer's read may lag the store.
    pub read_lag: Duration,
    /// T, the inline budget, the scheduler's precision.
    pub policy: Policy,
    /// Instances in the fleet.
    pub fleet_size: usize,
    /// Rotations in the run (a second one starts some time after the first swap).
    pub rotations: usize,
    /// Virtual latency of each Secrets Manager call, in ms.
    pub latency_ms: (u64, u64),
    /// How long the engine waits on one synchronous step before giving up.
    pub engine_timeout: Option<Duration>,
    /// Most faults injected into one run (so retries can always recover).
    pub max_faults: u32,
}

impl Scenario {
    /// The scenario of `seed`. Its class is `seed`'s turn in [`FaultClass::EVERY`]
    /// unless `class` pins one.
    pub fn from_seed(seed: u64, class: Option<FaultClass>, strategy: Strategy) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ce7_a210);
        let class = class.unwrap_or(FaultClass::EVERY[(seed % FaultClass::EVERY.len() as u64) as usize]);
        // R from 20 s to 10 min, log-uniform; T covers R, the read lag and a margin for
        // clock drift, as an operator would choose it.
        let refresh_s = (20f64 * 30f64.powf(rng.random::<f64>())).round() as u64;
        let refresh = Duration::from_secs(refresh_s);
        let read_lag = Duration::from_secs(2);
        let margin = Duration::from_secs(rng.random_range(5..=60));
        let gap = refresh + read_lag + margin;
        let budget = Duration::from_secs([150, 300, 600][rng.random_range(0..3)]);
        let policy = Policy::new(gap, budget).unwrap_or_else(|e| panic!("scenario policy: {e}"));
        Scenario {
            seed,
            class,
            strategy,
            refresh,
            read_lag,
            policy,
            fleet_size: rng.random_range(3..=10),
            rotations: if rng.random_bool(0.3) { 2 } else { 1 },
            latency_ms: (5, 60),
            engine_timeout: class
                .has(FaultClass::EngineTimeout)
                .then(|| Duration::from_secs(60)),
            max_faults: 5,
        }
    }

    /// The longest a rotation may take to converge: both gaps plus an hour for retries,
    /// late deliveries and engine back-off.
    pub fn convergence_bound(&self) -> Duration {
        self.policy.gap * 2 + Duration::from_secs(3600)
    }
}
