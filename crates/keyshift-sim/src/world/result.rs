//! What one secret's run reports.

use super::*;

/// How often each engine behaviour actually acted in a run (a switch that is on but
/// never acts tests nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits {
    /// (a) Rotations the engine abandoned after a foreign write.
    pub abandoned: u32,
    /// (b) AWSPENDING strips after a finishSecret that left the token not current.
    pub strips_after_finish: u32,
    /// (c) Writes refused for a foreign ClientRequestToken.
    pub refused_writes: u32,
    /// (d) Engine retries that forced AWSPENDING back onto the token's version.
    pub reattached: u32,
    /// (d) Engine retries after a finishSecret that left the token not current.
    pub not_current_retries: u32,
    /// (e) CreateSchedule calls refused for a fire time not in the future.
    pub refused_schedules: u32,
    /// (f) Operator actions taken during a rotation.
    pub operator: u32,
}

impl Hits {
    /// Adds `other`.
    pub fn add(&mut self, o: &Hits) {
        self.abandoned += o.abandoned;
        self.strips_after_finish += o.strips_after_finish;
        self.refused_writes += o.refused_writes;
        self.reattached += o.reattached;
        self.not_current_retries += o.not_current_retries;
        self.refused_schedules += o.refused_schedules;
        self.operator += o.operator;
    }
}

/// What one secret's run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The scenario it ran.
    pub scenario: Scenario,
    /// Rotations started (the engine's follow-on rotations included).
    pub rotations: usize,
    /// Rotations that converged (completed, or abandoned cleanly; see the module docs).
    pub converged: usize,
    /// Of those, rotations abandoned cleanly.
    pub abandoned: usize,
    /// Consumer operations attempted (the end-of-run sweep's one per producer/consumer
    /// pair included).
    pub operations: u64,
    /// Consumer operations that failed.
    pub failed_operations: u64,
    /// Failed operations by where producer and consumer run (replica runs): both in the
    /// primary Region, both in the replica Region, in different Regions.
    pub failed_by_region: [u64; 3],
    /// Invariant violations, as sentences (empty when the run is correct).
    pub violations: Vec<String>,
    /// Of those, cross-talk between secrets.
    pub cross_talk: usize,
    /// Overshoot of each gap over T, in ms.
    pub overshoots_ms: Vec<i64>,
    /// Follow-ups that exhausted Lambda's retries (dead-letter queue).
    pub dead_letters: u64,
    /// How often each engine behaviour acted.
    pub hits: Hits,
    /// Whether the operator acted on an in-flight rotation.
    pub operator_acted: bool,
    /// The real operations on a key secret (signatures, encryptions), of the run and of
    /// the sweep at its end; all zero on an opaque secret.
    pub keys: KeyStats,
    /// Who used each kid for real (a key secret's producers and consumers by version id).
    pub kids: BTreeMap<VersionId, KidUse>,
    /// The operator's requests, as sent and as they ended.
    pub requests: Vec<RequestRecord>,
    /// Whether the run planned a request whose phase its first rotation never reached
    /// (so it was never sent).
    pub request_unsent: bool,
    /// Each emergency: its cut, and the consumer failures it caused by design.
    pub emergencies: Vec<EmergencyRecord>,
    /// Failed consumer operations an emergency caused by design, by cause (not counted
    /// in `failed_operations`), in [`crate::requests::Cause::EVERY`] order.
    pub by_design: [u64; 3],
    /// Consumer lookups that missed an emergency's new key id (by design) and found it
    /// through keyshift-client's refresh-on-miss within the operation.
    pub healed: u64,
    /// The event trace (only when asked for; in a many-secrets world, on the first
    /// secret's result).
    pub trace: Vec<String>,
}

impl RunResult {
    /// Whether the run broke nothing.
    pub fn ok(&self) -> bool {
        self.failed_operations == 0 && self.violations.is_empty() && self.converged == self.rotations
    }

    /// The kinds of failure in this run (empty when it is ok).
    pub fn failure_kinds(&self) -> BTreeSet<Kind> {
        let mut kinds: BTreeSet<Kind> = self.violations.iter().map(|v| Kind::of(v)).collect();
        if self.failed_operations > 0 {
            kinds.insert(Kind::Contract);
        }
        if self.converged != self.rotations {
            kinds.insert(Kind::Convergence);
        }
        kinds
    }
}
