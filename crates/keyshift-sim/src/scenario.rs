//! What one seeded run looks like: the fault class, the engine's behaviours, the timing
//! (R, T, the inline budget), the fleet, and how many rotations. Everything is a function
//! of the seed and of what the command line pins.
//!
//! # Which seed runs which combination
//!
//! Without pins, seed `n` runs fault class `n mod 12` (the order of [`FaultClass::EVERY`])
//! and engine-behaviour combination `(n div 12) mod 144` (the order of
//! [`EngineBehaviours::index`]), so every block of 1728 consecutive seeds runs each
//! (class, combination) pair exactly once, and 10 000 seeds run every combination about
//! 69 times. With the class pinned, the combination is `n mod 144`; with a list of
//! classes to pick from (`--classes`), the class is `n mod k` of the k listed and the
//! combination `(n div k) mod 144`. A behaviour pinned on
//! the command line overrides the seed's choice for that switch only. `--matrix` runs the
//! same seeds once for every combination, pinning all six switches. In a many-secrets
//! world `w` of `k` secrets, secret `i` draws `m = w * k + i`: class `m mod 12`,
//! combination `61 m mod 144`, so a world's secrets run many different combinations.
//!
//! # Which seeds carry an operator's request
//!
//! Half the seeds (a hash of the seed and the secret's index, a stream of its own, so
//! the class, the combination, the kind and a request-less seed's whole run do not
//! change) carry one [`RequestPlan`]: an emergency in half of those, a cancel or a
//! re-drive in a quarter each, aimed at one of four phases of the first rotation. 10 000
//! seeds send about 2 500 emergencies, 1 250 cancels and 1 250 re-drives.
//! `--request` and `--request-phase` pin them, `--request none` turns them off.
//!
//! # Which secrets hold keys
//!
//! Every secret is of a [`SecretKind`]: opaque (a credential the fleet presents; the
//! abstract check), an Ed25519 signing key or an AES-256 symmetric key (real
//! cryptography, see [`crate::keys`]). A single-secret seed `n` draws its kind from a hash
//! of `n` (a third of the seeds each, independent of the class and the combination); a
//! many-secrets world makes one secret, drawn from the world's seed, the signing-key
//! secret and another one the symmetric-key secret. `--kind` pins every secret's kind.

use std::fmt;
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
    /// The engine strips AWSPENDING after finishSecret returns (undocumented clean-up),
    /// now and then, and at random moments.
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

/// Behaviour (a): what the engine does when a PutSecretValue with another
/// ClientRequestToken than the rotation's lands during its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CopyAbandons {
    /// Nothing: the write is just a write.
    Off,
    /// The engine abandons the rotation and strips AWSPENDING from its token's version.
    TokenVersion,
    /// The engine abandons the rotation and strips AWSPENDING from whichever version
    /// carries it at that moment.
    Holder,
}

/// Behaviour (d): how the engine retries a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RetryReattach {
    /// The baseline (the model before the matrix): after a failed step the engine calls
    /// RotateSecret again with the same token 1 to 10 minutes later, which Secrets
    /// Manager refuses while AWSPENDING sits on another version than the token or the
    /// current one; at most 8 attempts.
    Off,
    /// After a failed step the engine re-runs the rotation with the same token 1 to 10
    /// minutes later, forcing AWSPENDING back onto its token's version wherever the
    /// label is; at most 5 retries.
    StepError,
    /// As [`RetryReattach::StepError`], and also after a finishSecret that returned
    /// without AWSCURRENT on the token's version.
    NotCurrent,
}

/// The engine's undocumented behaviours, one independent switch each. keyshift must hold
/// under every combination (nobody here can run real AWS to learn which is true).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EngineBehaviours {
    /// (a) A foreign PutSecretValue during the engine's rotation abandons it.
    pub copy_abandons: CopyAbandons,
    /// (b) After a finishSecret that returned without AWSCURRENT on the token's version,
    /// the engine strips AWSPENDING from the non-current version carrying it, seconds
    /// later.
    pub strip_after_finish: bool,
    /// (c) During the engine's rotation, a PutSecretValue with another ClientRequestToken
    /// than the rotation's is refused (InvalidRequest, no effect).
    pub validate_rotation_token: bool,
    /// (d) How the engine retries a rotation.
    pub retry: RetryReattach,
    /// (e) CreateSchedule with a fire time not strictly in the future is refused with a
    /// non-retryable ValidationException.
    pub past_schedule_refused: bool,
    /// (f) An operator acts by hand at a random moment of an in-flight rotation.
    pub operator: bool,
}

/// The six switches, for pins, parsing and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Switch {
    /// (a)
    CopyAbandons,
    /// (b)
    StripAfterFinish,
    /// (c)
    ValidateRotationToken,
    /// (d)
    RetryReattach,
    /// (e)
    PastScheduleRefused,
    /// (f)
    Operator,
}

impl Switch {
    /// Every switch, in table order.
    pub const EVERY: [Switch; 6] = [
        Switch::CopyAbandons,
        Switch::StripAfterFinish,
        Switch::ValidateRotationToken,
        Switch::RetryReattach,
        Switch::PastScheduleRefused,
        Switch::Operator,
    ];

    /// The command-line and report name.
    pub fn name(self) -> &'static str {
        match self {
            Switch::CopyAbandons => "copy-abandons",
            Switch::StripAfterFinish => "strip-after-finish",
            Switch::ValidateRotationToken => "validate-rotation-token",
            Switch::RetryReattach => "retry-reattach",
            Switch::PastScheduleRefused => "past-schedule-refused",
            Switch::Operator => "operator",
        }
    }

    /// The values the switch takes, by name, in index order (the first is "off").
    pub fn values(self) -> &'static [&'static str] {
        match self {
            Switch::CopyAbandons => &["off", "token", "holder"],
            Switch::RetryReattach => &["off", "step-error", "not-current"],
            _ => &["off", "on"],
        }
    }

    /// Parses a switch name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|s| s.name() == name)
    }
}

impl EngineBehaviours {
    /// The model before the matrix: every switch off.
    pub const BASELINE: EngineBehaviours = EngineBehaviours {
        copy_abandons: CopyAbandons::Off,
        strip_after_finish: false,
        validate_rotation_token: false,
        retry: RetryReattach::Off,
        past_schedule_refused: false,
        operator: false,
    };

    /// How many combinations there are.
    pub const COMBINATIONS: usize = 3 * 2 * 2 * 3 * 2 * 2;

    /// Every combination, in index order.
    pub fn every() -> impl Iterator<Item = EngineBehaviours> {
        (0..Self::COMBINATIONS).map(Self::from_index)
    }

    /// The value index of `switch` (0 is off).
    pub fn get(&self, switch: Switch) -> usize {
        match switch {
            Switch::CopyAbandons => self.copy_abandons as usize,
            Switch::StripAfterFinish => usize::from(self.strip_after_finish),
            Switch::ValidateRotationToken => usize::from(self.validate_rotation_token),
            Switch::RetryReattach => self.retry as usize,
            Switch::PastScheduleRefused => usize::from(self.past_schedule_refused),
            Switch::Operator => usize::from(self.operator),
        }
    }

    /// Sets `switch` to its value number `value` (wrapped into range).
    pub fn set(&mut self, switch: Switch, value: usize) {
        let value = value % switch.values().len();
        match switch {
            Switch::CopyAbandons => {
                self.copy_abandons = [
                    CopyAbandons::Off,
                    CopyAbandons::TokenVersion,
                    CopyAbandons::Holder,
                ][value]
            }
            Switch::StripAfterFinish => self.strip_after_finish = value == 1,
            Switch::ValidateRotationToken => self.validate_rotation_token = value == 1,
            Switch::RetryReattach => {
                self.retry = [
                    RetryReattach::Off,
                    RetryReattach::StepError,
                    RetryReattach::NotCurrent,
                ][value]
            }
            Switch::PastScheduleRefused => self.past_schedule_refused = value == 1,
            Switch::Operator => self.operator = value == 1,
        }
    }

    /// The combination number `index` (mixed radix over the switches, in
    /// [`Switch::EVERY`] order, the first switch most significant); 0 is the baseline.
    pub fn from_index(index: usize) -> Self {
        let mut b = Self::BASELINE;
        let mut rest = index % Self::COMBINATIONS;
        for switch in Switch::EVERY.into_iter().rev() {
            let n = switch.values().len();
            b.set(switch, rest % n);
            rest /= n;
        }
        b
    }

    /// This combination's number.
    pub fn index(&self) -> usize {
        Switch::EVERY
            .into_iter()
            .fold(0, |acc, s| acc * s.values().len() + self.get(s))
    }

    /// The switches that are not off.
    pub fn on(&self) -> Vec<Switch> {
        Switch::EVERY.into_iter().filter(|s| self.get(*s) != 0).collect()
    }

    /// Command-line flags that pin exactly this combination.
    pub fn flags(&self) -> String {
        Switch::EVERY
            .iter()
            .map(|s| format!("--{} {}", s.name(), s.values()[self.get(*s)]))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for EngineBehaviours {
    /// `baseline`, or the switches that are on, e.g. `copy-abandons=holder validate-rotation-token`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = self.on();
        if on.is_empty() {
            return f.write_str("baseline");
        }
        let parts: Vec<String> = on
            .into_iter()
            .map(|s| match s.values().len() {
                2 => s.name().to_owned(),
                _ => format!("{}={}", s.name(), s.values()[self.get(s)]),
            })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// Switches pinned on the command line; the others come from the seed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BehaviourPins {
    /// Value number per switch, in [`Switch::EVERY`] order.
    pub values: [Option<usize>; 6],
}

impl BehaviourPins {
    /// Pins every switch to `b`.
    pub fn all(b: EngineBehaviours) -> Self {
        let mut p = BehaviourPins::default();
        for (i, s) in Switch::EVERY.into_iter().enumerate() {
            p.values[i] = Some(b.get(s));
        }
        p
    }

    /// Pins `switch` to the value named `value` ("on"/"off", or a sub-variant name).
    pub fn pin(&mut self, switch: Switch, value: &str) -> Result<(), String> {
        let i = Switch::EVERY
            .iter()
            .position(|s| *s == switch)
            .unwrap_or_default();
        let n = switch.values().iter().position(|v| *v == value).ok_or_else(|| {
            format!(
                "--{}: unknown value {value}; one of {}",
                switch.name(),
                switch.values().join(", ")
            )
        })?;
        self.values[i] = Some(n);
        Ok(())
    }

    /// `drawn` with the pinned switches overridden.
    pub fn apply(&self, mut drawn: EngineBehaviours) -> EngineBehaviours {
        for (i, s) in Switch::EVERY.into_iter().enumerate() {
            if let Some(v) = self.values[i] {
                drawn.set(s, v);
            }
        }
        drawn
    }

    /// Whether any switch is pinned.
    pub fn any(&self) -> bool {
        self.values.iter().any(Option::is_some)
    }

    /// The pins as command-line flags.
    pub fn flags(&self) -> String {
        Switch::EVERY
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.values[i].map(|v| format!("--{} {}", s.name(), s.values()[v])))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What an operator does by hand in a run with the operator switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperatorAction {
    /// PutSecretValue of a note the fleet never uses, labelled `OPS_NOTE` only.
    Write,
    /// UpdateSecretVersionStage taking AWSPENDING off the version carrying it.
    StripPending,
    /// Adds an unrelated custom label (`OPS_AUDIT`) to the current version.
    AddLabel,
    /// Removes an unrelated custom label (`OPS_OWNER`, present from the start).
    RemoveLabel,
}

impl OperatorAction {
    /// Every action, in report order.
    pub const EVERY: [OperatorAction; 4] = [
        OperatorAction::Write,
        OperatorAction::StripPending,
        OperatorAction::AddLabel,
        OperatorAction::RemoveLabel,
    ];

    /// The report name.
    pub fn name(self) -> &'static str {
        match self {
            OperatorAction::Write => "write",
            OperatorAction::StripPending => "strip-pending",
            OperatorAction::AddLabel => "add-label",
            OperatorAction::RemoveLabel => "remove-label",
        }
    }

    /// Parses a report name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|a| a.name() == name)
    }
}

/// An operator's request through `Executor::operate`: what keyshift's
/// `emergencyRotate`, `cancel` and `redrive` do when an operator sends them in the middle
/// of a rotation, overlapping with the engine's retries and the scheduler's duplicate and
/// late deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// `emergencyRotate`: the current value is compromised; cut over now (or after
    /// `GapSeconds`), the compromised version revoked at once or kept accepted for
    /// `KeepAcceptingSeconds`.
    Emergency,
    /// `cancel`: end the rotation in flight before its swap.
    Cancel,
    /// `redrive`: run the due follow-up of the rotation in flight now.
    Redrive,
}

impl RequestKind {
    /// Every kind, in report order.
    pub const EVERY: [RequestKind; 3] = [RequestKind::Emergency, RequestKind::Cancel, RequestKind::Redrive];

    /// The report and command-line name.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Emergency => "emergency",
            RequestKind::Cancel => "cancel",
            RequestKind::Redrive => "redrive",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|k| k.name() == name)
    }
}

/// A moment of a rotation: where an operator's request is aimed, and where it landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestPhase {
    /// The engine's steps are running (RotateSecret to the return of finishSecret).
    Engine,
    /// finishSecret returned; the first follow-up has not written keyshift's copy yet.
    AfterFinish,
    /// The first gap: the new value is accepted (AWSPENDING), not yet current.
    FirstGap,
    /// The second gap: the new value is current, the old one still accepted (ROTATING).
    SecondGap,
    /// No rotation in flight (where a request lands when its rotation ended first, or a
    /// duplicate arrives late). Never a target.
    Idle,
}

impl RequestPhase {
    /// The phases a request is aimed at.
    pub const TARGETS: [RequestPhase; 4] = [
        RequestPhase::Engine,
        RequestPhase::AfterFinish,
        RequestPhase::FirstGap,
        RequestPhase::SecondGap,
    ];

    /// Every phase, in report order.
    pub const EVERY: [RequestPhase; 5] = [
        RequestPhase::Engine,
        RequestPhase::AfterFinish,
        RequestPhase::FirstGap,
        RequestPhase::SecondGap,
        RequestPhase::Idle,
    ];

    /// The report and command-line name.
    pub fn name(self) -> &'static str {
        match self {
            RequestPhase::Engine => "engine",
            RequestPhase::AfterFinish => "after-finish",
            RequestPhase::FirstGap => "first-gap",
            RequestPhase::SecondGap => "second-gap",
            RequestPhase::Idle => "idle",
        }
    }

    /// Parses the name of a target phase.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::TARGETS.into_iter().find(|p| p.name() == name)
    }
}

/// The operator's request of one secret's run: which, aimed where in its first rotation,
/// with which fields, and whether the operator sends it twice.
///
/// Drawn from a hash of the seed (and the secret's index), a stream of its own: a seed
/// keeps its fault class, engine behaviours, kind and timing, and a seed drawn without a
/// request runs exactly as it did before requests existed. Half the seeds carry one: an
/// emergency in half of those, a cancel or a re-drive in a quarter each, aimed at each
/// of the four phases a quarter of the time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestPlan {
    /// Which request.
    pub kind: RequestKind,
    /// The phase of the first rotation it is aimed at.
    pub phase: RequestPhase,
    /// For [`RequestPhase::Engine`]: the engine step (0 to 3, createSecret to
    /// finishSecret) whose start it follows, by up to 150 ms, while the step's calls are
    /// in flight.
    pub engine_step: usize,
    /// When in its phase, as a fraction of the phase's length (the first and second
    /// gaps: T; after finishSecret: the scheduler's minute).
    pub at: f64,
    /// An emergency's `GapSeconds`: 0 for half of them, a few seconds, or longer than R
    /// plus the read lag (every consumer accepts the new value before the cut).
    pub gap: Duration,
    /// An emergency's `KeepAcceptingSeconds` (a third of them), at most T.
    pub keep: Option<Duration>,
    /// Whether the request names its version: an emergency's compromised `VersionId`
    /// (the current version when the operator looked), a cancel's `ClientRequestToken`
    /// (the rotation's token).
    pub named: bool,
    /// The very same request again this long after the first: overlapping it (under
    /// 300 ms, while the first runs) or later (1 s to 2T). A third of the plans.
    pub twice: Option<Duration>,
}

impl RequestPlan {
    /// The plan of secret `secret_index` of seed `seed` (`None`: no request), for a run
    /// with `policy` and longest refresh interval `refresh`. Every field is drawn in a
    /// fixed order whatever the outcome, so a pinned kind or phase changes nothing else.
    pub fn drawn(seed: u64, secret_index: usize, policy: &Policy, refresh: Duration) -> (bool, Self) {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed
            ^ 0x6f70_7265_7175_6573
            ^ (secret_index as u64).wrapping_mul(0x0100_0000_01b3)));
        let present = rng.random_bool(0.5);
        let kind = [
            RequestKind::Emergency,
            RequestKind::Emergency,
            RequestKind::Cancel,
            RequestKind::Redrive,
        ][rng.random_range(0..4)];
        let phase = RequestPhase::TARGETS[rng.random_range(0..4)];
        let engine_step = rng.random_range(0..4);
        let at = rng.random::<f64>();
        let gap_draw = rng.random::<f64>();
        let small = rng.random_range(1..=5u64);
        let long_lo = (refresh + Duration::from_secs(3)).as_secs_f64();
        let long_hi = (policy.inline_budget.as_secs_f64() * 0.8).max(long_lo + 1.0);
        let long = rng.random_range(long_lo..long_hi);
        let gap = if gap_draw < 0.5 {
            Duration::ZERO
        } else if gap_draw < 0.7 {
            Duration::from_secs(small)
        } else {
            Duration::from_secs(long.ceil() as u64)
        };
        let keep_on = rng.random_bool(1.0 / 3.0);
        let keep_secs = rng.random_range(1..=policy.gap.as_secs().max(1));
        let named = rng.random_bool(0.5);
        let twice_on = rng.random_bool(1.0 / 3.0);
        let overlapping = rng.random_bool(0.5);
        let soon = rng.random_range(0..300u64);
        let later = rng.random_range(1.0..(2.0 * policy.gap.as_secs_f64()).max(2.0));
        let plan = RequestPlan {
            kind,
            phase,
            engine_step,
            at,
            gap,
            keep: keep_on.then(|| Duration::from_secs(keep_secs)),
            named,
            twice: twice_on.then(|| {
                if overlapping {
                    Duration::from_millis(soon)
                } else {
                    Duration::from_secs_f64(later)
                }
            }),
        };
        (present, plan)
    }

    /// A short description for traces and replay lines (no secret values: there are
    /// none in a request).
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} aimed at {}", self.kind.name(), self.phase.name())];
        if self.kind == RequestKind::Emergency {
            parts.push(format!("GapSeconds {}", self.gap.as_secs()));
            if let Some(k) = self.keep {
                parts.push(format!("KeepAcceptingSeconds {}", k.as_secs()));
            }
        }
        if self.named && self.kind != RequestKind::Redrive {
            parts.push("names its version".into());
        }
        if let Some(t) = self.twice {
            parts.push(format!("sent twice ({t:?} apart)"));
        }
        parts.join(", ")
    }
}

/// What the command line pins of the operator's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestPin {
    /// Drawn per seed (see [`RequestPlan`]).
    #[default]
    Drawn,
    /// No request in any run.
    Off,
    /// This kind in every run.
    Kind(RequestKind),
}

/// What a secret holds, and so what a fleet operation on it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum SecretKind {
    /// A credential (a password, an API key): a producer presents its AWSCURRENT value,
    /// and the operation fails when a consumer does not accept that version (the
    /// abstract check of [`crate::fleet`]).
    #[default]
    Opaque,
    /// keyshift's stock Ed25519 key pair: a producer signs, a consumer verifies with the
    /// public key under the token's kid in its own JWKS.
    Ed25519,
    /// keyshift's stock AES-256 key: a producer encrypts (AES-256-GCM), a consumer
    /// decrypts with the key under the ciphertext's kid in its own view.
    Symmetric,
}

impl SecretKind {
    /// Every kind, in report order.
    pub const EVERY: [SecretKind; 3] = [SecretKind::Opaque, SecretKind::Ed25519, SecretKind::Symmetric];

    /// The command-line and report name.
    pub fn name(self) -> &'static str {
        match self {
            SecretKind::Opaque => "opaque",
            SecretKind::Ed25519 => "ed25519",
            SecretKind::Symmetric => "symmetric",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|k| k.name() == name)
    }

    /// The stock key kind keyshift generates for it (`None` for an opaque secret).
    pub fn key_kind(self) -> Option<keyshift_keys::KeyKind> {
        match self {
            SecretKind::Opaque => None,
            SecretKind::Ed25519 => Some(keyshift_keys::KeyKind::Ed25519),
            SecretKind::Symmetric => Some(keyshift_keys::KeyKind::Symmetric),
        }
    }

    /// The kind of secret `secret_index` of a world `seed` of `secrets` secrets (a
    /// single-secret run has one): a single secret is each kind for a third of the seeds;
    /// in a world of two or more, one secret is the signing key and another the symmetric
    /// key, both drawn from the seed.
    pub fn drawn(seed: u64, secret_index: usize, secrets: usize) -> Self {
        let h = mix(seed ^ 0x6b65_7973_6b69_6e64);
        if secrets <= 1 {
            return Self::EVERY[(h % 3) as usize];
        }
        let k = secrets as u64;
        let signing = h % k;
        let symmetric = (signing + 1 + mix(h) % (k - 1)) % k;
        match secret_index as u64 {
            i if i == signing => SecretKind::Ed25519,
            i if i == symmetric => SecretKind::Symmetric,
            _ => SecretKind::Opaque,
        }
    }
}

/// SplitMix64's finaliser: a seed's draws that share nothing with its other streams.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How the rotation is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// keyshift's executor: the staged protocol.
    #[default]
    Keyshift,
    /// The control: AWS's plain template, AWSCURRENT moved in finishSecret at once.
    OneStep,
}

/// What the command line fixes; everything else comes from the seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    /// The fault class, or `None` for the seed's.
    pub class: Option<FaultClass>,
    /// The classes a seed picks from when none is pinned (`None`: every class).
    pub classes: Option<&'static [FaultClass]>,
    /// Engine-behaviour switches pinned.
    pub pins: BehaviourPins,
    /// The operator's action, when the operator switch is on (`None`: the seed's).
    pub operator_action: Option<OperatorAction>,
    /// keyshift or the control.
    pub strategy: Strategy,
    /// Replica Regions that trail the primary (opt-in; expected to fail today).
    pub replicas: bool,
    /// Every secret's kind (`None`: drawn, see [`SecretKind::drawn`]).
    pub kind: Option<SecretKind>,
    /// The operator's requests: drawn per seed, none, or one kind.
    pub request: RequestPin,
    /// The phase every request is aimed at (`None`: drawn).
    pub request_phase: Option<RequestPhase>,
    /// Whether the fleet refreshes on a miss (`None`: on for keyshift, off for the
    /// control; see [`Scenario::refresh_on_miss`]).
    pub refresh_on_miss: Option<bool>,
}

impl Selection {
    /// keyshift with nothing pinned.
    pub fn seeded() -> Self {
        Selection::default()
    }

    /// keyshift with every switch pinned to `b`.
    pub fn behaviours(b: EngineBehaviours) -> Self {
        Selection {
            pins: BehaviourPins::all(b),
            ..Selection::default()
        }
    }

    /// The same selection with the class pinned.
    pub fn with_class(mut self, class: FaultClass) -> Self {
        self.class = Some(class);
        self
    }

    /// The fault class and behaviour combination of `seed`.
    pub fn pick(&self, seed: u64) -> (FaultClass, EngineBehaviours) {
        let n = self.classes.unwrap_or(&FaultClass::EVERY).len().max(1) as u64;
        let combo = match self.class {
            Some(_) => seed,
            None => seed / n,
        };
        self.pick_from(seed, combo)
    }

    /// The class of class draw `class_draw` and the combination of `combo_draw`, pins
    /// applied.
    fn pick_from(&self, class_draw: u64, combo_draw: u64) -> (FaultClass, EngineBehaviours) {
        let classes = self.classes.unwrap_or(&FaultClass::EVERY);
        let n = classes.len().max(1) as u64;
        let class = self.class.unwrap_or_else(|| {
            classes
                .get((class_draw % n) as usize)
                .copied()
                .unwrap_or(FaultClass::None)
        });
        let drawn = match self.strategy {
            Strategy::Keyshift => {
                EngineBehaviours::from_index((combo_draw % EngineBehaviours::COMBINATIONS as u64) as usize)
            }
            // The control is the control: the plain engine unless pinned.
            Strategy::OneStep => EngineBehaviours::BASELINE,
        };
        (class, self.pins.apply(drawn))
    }

    /// The class and combination of secret `i` of many-secrets world `seed`: consecutive
    /// secrets take consecutive classes, and combinations 61 apart (61 is prime to 144,
    /// so a world's 50 secrets run 50 different combinations).
    pub fn pick_in_world(&self, seed: u64, secrets: usize, i: usize) -> (FaultClass, EngineBehaviours) {
        let n = seed.wrapping_mul(secrets as u64).wrapping_add(i as u64);
        self.pick_from(n, n.wrapping_mul(61))
    }

    /// Flags that reproduce this selection on the command line (seed excluded).
    pub fn flags(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.class {
            parts.push(format!("--class {}", c.name()));
        } else if let Some(cs) = self.classes {
            let names: Vec<&str> = cs.iter().map(|c| c.name()).collect();
            parts.push(format!("--classes {}", names.join(",")));
        }
        if self.pins.any() {
            parts.push(self.pins.flags());
        }
        if let Some(a) = self.operator_action {
            parts.push(format!("--operator-action {}", a.name()));
        }
        if self.strategy == Strategy::OneStep {
            parts.push("--control".into());
        }
        if self.replicas {
            parts.push("--replicas".into());
        }
        if let Some(k) = self.kind {
            parts.push(format!("--kind {}", k.name()));
        }
        match self.request {
            RequestPin::Drawn => {}
            RequestPin::Off => parts.push("--request none".into()),
            RequestPin::Kind(k) => parts.push(format!("--request {}", k.name())),
        }
        if let Some(p) = self.request_phase {
            parts.push(format!("--request-phase {}", p.name()));
        }
        if let Some(on) = self.refresh_on_miss {
            parts.push(format!("--refresh-on-miss {}", if on { "on" } else { "off" }));
        }
        parts.join(" ")
    }
}

/// One secret's run parameters. A single-secret run has one; a many-secrets world has one
/// per secret, all sharing one [`Policy`] (one executor, one T).
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed everything derives from (the world's seed in a many-secrets world).
    pub seed: u64,
    /// This secret's index in its world (0 for a single-secret run).
    pub secret_index: usize,
    /// How many secrets its world rotates (1 for a single-secret run).
    pub world_secrets: usize,
    /// The faults.
    pub class: FaultClass,
    /// The engine's behaviours.
    pub behaviours: EngineBehaviours,
    /// What the operator does, when `behaviours.operator` is on.
    pub operator_action: OperatorAction,
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
    /// Planned rotations in the run (a second one starts some time after the first
    /// swap). Rotations the engine starts after an abandoned one come on top.
    pub rotations: usize,
    /// When the first rotation starts, after the run's start.
    pub first_start: Duration,
    /// Virtual latency of each Secrets Manager call, in ms.
    pub latency_ms: (u64, u64),
    /// How long the engine waits on one synchronous step before giving up.
    pub engine_timeout: Option<Duration>,
    /// Most faults injected into one run (so retries can always recover).
    pub max_faults: u32,
    /// Replica Regions (opt-in): the most a replica's labels trail the primary's.
    pub replica_lag: Option<Duration>,
    /// What the secret holds.
    pub kind: SecretKind,
    /// The operator's request, if any.
    pub request: Option<RequestPlan>,
    /// Whether the fleet heals a miss the way keyshift-client offers: a consumer that
    /// does not find a key id looks it up again through `fetch_accepted` /
    /// `fetch_version` (one refresh, rate limited by the client's miss interval), and an
    /// instance whose operation was refused refreshes its cache (`WindowCache::refresh`,
    /// at most once per miss interval). A miss that is not an emergency's by-design one
    /// still counts as a failed operation: routine rotations are held to the contract
    /// without healing.
    pub refresh_on_miss: bool,
}

impl Scenario {
    /// The single-secret scenario of `seed`. Its class and behaviours are the seed's
    /// (see the module docs) unless `sel` pins them.
    pub fn from_seed(seed: u64, sel: &Selection) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ce7_a210);
        // R from 20 s to 10 min, log-uniform; T covers R, the read lag and a margin for
        // clock drift, as an operator would choose it.
        let refresh_s = (20f64 * 30f64.powf(rng.random::<f64>())).round() as u64;
        let refresh = Duration::from_secs(refresh_s);
        let read_lag = Duration::from_secs(2);
        let margin = Duration::from_secs(rng.random_range(5..=60));
        let gap = refresh + read_lag + margin;
        let budget = Duration::from_secs([150, 300, 600][rng.random_range(0..3)]);
        let policy = Policy::new(gap, budget).unwrap_or_else(|e| panic!("scenario policy: {e}"));
        let fleet_size = rng.random_range(3..=10);
        let rotations = if rng.random_bool(0.3) { 2 } else { 1 };
        let first_start = Duration::from_secs_f64(rng.random_range(0.0..refresh.as_secs_f64()));
        Self::assemble(
            (seed, 0, 1),
            sel.pick(seed),
            sel,
            &mut rng,
            policy,
            refresh,
            fleet_size,
            rotations,
            first_start,
        )
    }

    /// The scenarios of the many-secrets world `seed`: `secrets` secrets sharing one T
    /// and one inline budget, each with its own R (below T), class, behaviours, fleet of
    /// two or three instances, one or two rotations, and a first rotation starting
    /// anywhere in the first 2T, so that rotations overlap.
    pub fn world(seed: u64, secrets: usize, sel: &Selection) -> Vec<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3a17_5ec2_e75e_0000);
        let read_lag = Duration::from_secs(2);
        let r_max = (20f64 * 30f64.powf(rng.random::<f64>())).round();
        let margin = Duration::from_secs(rng.random_range(5..=60));
        let gap = Duration::from_secs_f64(r_max) + read_lag + margin;
        let budget = Duration::from_secs([150, 300, 600][rng.random_range(0..3)]);
        let policy = Policy::new(gap, budget).unwrap_or_else(|e| panic!("scenario policy: {e}"));
        (0..secrets)
            .map(|i| {
                let mut srng =
                    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64 + 1));
                let refresh = Duration::from_secs_f64((r_max * srng.random_range(0.3..=1.0)).max(20.0));
                let fleet_size = srng.random_range(2..=3);
                let rotations = if srng.random_bool(0.3) { 2 } else { 1 };
                let first_start = Duration::from_secs_f64(srng.random_range(0.0..2.0 * gap.as_secs_f64()));
                Self::assemble(
                    (seed, i, secrets),
                    sel.pick_in_world(seed, secrets, i),
                    sel,
                    &mut srng,
                    policy,
                    refresh,
                    fleet_size,
                    rotations,
                    first_start,
                )
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        (seed, secret_index, world_secrets): (u64, usize, usize),
        (class, behaviours): (FaultClass, EngineBehaviours),
        sel: &Selection,
        rng: &mut ChaCha8Rng,
        policy: Policy,
        refresh: Duration,
        fleet_size: usize,
        rotations: usize,
        first_start: Duration,
    ) -> Self {
        let operator_action = sel
            .operator_action
            .unwrap_or(OperatorAction::EVERY[rng.random_range(0..OperatorAction::EVERY.len())]);
        let replica_lag = sel
            .replicas
            .then(|| Duration::from_secs_f64(rng.random_range(0.0..=policy.gap.as_secs_f64())));
        // Drawn from a stream of its own: nothing above depends on it.
        let (present, mut plan) = RequestPlan::drawn(seed, secret_index, &policy, refresh);
        if let Some(p) = sel.request_phase {
            plan.phase = p;
        }
        let request = match (sel.strategy, sel.request) {
            (Strategy::OneStep, _) | (_, RequestPin::Off) => None,
            (_, RequestPin::Kind(k)) => Some(RequestPlan { kind: k, ..plan }),
            (_, RequestPin::Drawn) => present.then_some(plan),
        };
        // After an emergency or a cancel, a later planned rotation must still run and
        // complete: such runs plan two.
        let rotations = match request.map(|r| r.kind) {
            Some(RequestKind::Emergency | RequestKind::Cancel) => rotations.max(2),
            _ => rotations,
        };
        Scenario {
            seed,
            secret_index,
            world_secrets,
            class,
            behaviours,
            operator_action,
            strategy: sel.strategy,
            refresh,
            read_lag: Duration::from_secs(2),
            policy,
            fleet_size,
            rotations,
            first_start,
            latency_ms: (5, 60),
            engine_timeout: class
                .has(FaultClass::EngineTimeout)
                .then(|| Duration::from_secs(60)),
            max_faults: 5,
            replica_lag,
            kind: sel
                .kind
                .unwrap_or_else(|| SecretKind::drawn(seed, secret_index, world_secrets)),
            request,
            refresh_on_miss: sel.refresh_on_miss.unwrap_or(sel.strategy == Strategy::Keyshift),
        }
    }

    /// The longest a rotation may take to converge: both gaps plus an hour for retries,
    /// late deliveries and engine back-off.
    pub fn convergence_bound(&self) -> Duration {
        // A replicated secret moves one label at a time, each once the replica shows the
        // last: about ten replication lags (plus a scheduler minute each, past the inline
        // budget) on top.
        let replication = self
            .replica_lag
            .map_or(Duration::ZERO, |lag| (lag + Duration::from_secs(60)) * 10);
        self.policy.gap * 2 + Duration::from_secs(3600) + replication
    }

    /// One refresh round trip of a consumer: the most a read may lag the store, the
    /// client's refresh-on-miss interval (a refresh that read too early is repeated once
    /// the client allows another) and the latency of one store call. After an
    /// emergency's cut, each instance's failure window must fit in it (not in R).
    pub fn round_trip(&self) -> Duration {
        self.read_lag
            + keyshift_client::Config::DEFAULT_MISS_INTERVAL
            + Duration::from_millis(self.latency_ms.1)
    }

    /// How long after a value stopped being carried by an accepted version service B may
    /// still accept it: T plus an hour.
    pub fn revocation_bound(&self) -> Duration {
        self.policy.gap + Duration::from_secs(3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_third_of_the_seeds_hold_each_kind_whatever_their_class() {
        let mut by_kind = std::collections::BTreeMap::new();
        let mut by_class_kind = std::collections::BTreeSet::new();
        for seed in 1..=3000u64 {
            let sc = Scenario::from_seed(seed, &Selection::seeded());
            *by_kind.entry(sc.kind).or_insert(0u32) += 1;
            by_class_kind.insert((sc.class, sc.kind));
        }
        for kind in SecretKind::EVERY {
            let n = by_kind[&kind];
            assert!((900..=1100).contains(&n), "{}: {n} of 3000", kind.name());
        }
        assert_eq!(by_class_kind.len(), 12 * 3, "every class with every kind");
        let pinned = Selection {
            kind: Some(SecretKind::Symmetric),
            ..Selection::seeded()
        };
        assert_eq!(Scenario::from_seed(5, &pinned).kind, SecretKind::Symmetric);
    }

    #[test]
    fn a_world_has_exactly_one_signing_and_one_symmetric_key_secret() {
        for (seed, secrets) in [(1, 50), (2, 50), (3, 2), (4, 3), (5, 7)] {
            let kinds: Vec<SecretKind> = Scenario::world(seed, secrets, &Selection::seeded())
                .iter()
                .map(|s| s.kind)
                .collect();
            let count = |k| kinds.iter().filter(|x| **x == k).count();
            assert_eq!(count(SecretKind::Ed25519), 1, "{seed}: {kinds:?}");
            assert_eq!(count(SecretKind::Symmetric), 1, "{seed}: {kinds:?}");
            assert_eq!(count(SecretKind::Opaque), secrets - 2);
        }
    }
}
