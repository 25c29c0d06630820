//! Aggregation and the printed report of many runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::scenario::FaultClass;
use crate::world::RunResult;

/// The overshoot target per gap, for fault classes that inject no delay.
pub const OVERSHOOT_TARGET_MS: i64 = 1_000;

/// Totals over a set of runs.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Runs.
    pub runs: u64,
    /// Rotations started.
    pub rotations: u64,
    /// Rotations converged.
    pub converged: u64,
    /// Consumer operations.
    pub operations: u64,
    /// Failed consumer operations.
    pub failed_operations: u64,
    /// Invariant violations.
    pub violations: u64,
    /// Gaps measured.
    pub gaps: u64,
    /// Sum of overshoots, ms.
    pub overshoot_sum_ms: i64,
    /// Largest overshoot, ms.
    pub overshoot_max_ms: i64,
    /// The seed of the largest overshoot.
    pub overshoot_max_seed: u64,
    /// Seeds that failed.
    pub failed_seeds: Vec<u64>,
}

impl Tally {
    /// Adds one run.
    pub fn add(&mut self, r: &RunResult) {
        self.runs += 1;
        self.rotations += r.rotations as u64;
        self.converged += r.converged as u64;
        self.operations += r.operations;
        self.failed_operations += r.failed_operations;
        self.violations += r.violations.len() as u64;
        for &o in &r.overshoots_ms {
            self.gaps += 1;
            self.overshoot_sum_ms += o;
            if o > self.overshoot_max_ms {
                self.overshoot_max_ms = o;
                self.overshoot_max_seed = r.scenario.seed;
            }
        }
        if !r.ok() {
            self.failed_seeds.push(r.scenario.seed);
        }
    }

    /// Mean overshoot in seconds.
    pub fn overshoot_mean_s(&self) -> f64 {
        if self.gaps == 0 {
            0.0
        } else {
            self.overshoot_sum_ms as f64 / self.gaps as f64 / 1000.0
        }
    }

    /// Converged share in percent.
    pub fn convergence_pct(&self) -> f64 {
        if self.rotations == 0 {
            100.0
        } else {
            100.0 * self.converged as f64 / self.rotations as f64
        }
    }
}

/// Per-class tallies and the total.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// By fault class.
    pub by_class: BTreeMap<FaultClass, Tally>,
    /// All runs.
    pub total: Tally,
}

impl Summary {
    /// Adds one run.
    pub fn add(&mut self, r: &RunResult) {
        self.by_class.entry(r.scenario.class).or_default().add(r);
        self.total.add(r);
    }

    /// Classes without injected delay whose largest overshoot misses the target.
    pub fn overshoot_misses(&self) -> Vec<(FaultClass, i64)> {
        self.by_class
            .iter()
            .filter(|(c, t)| !c.injects_delay() && t.overshoot_max_ms >= OVERSHOOT_TARGET_MS)
            .map(|(c, t)| (*c, t.overshoot_max_ms))
            .collect()
    }

    /// Whether every run passed and the timing target holds.
    pub fn passed(&self) -> bool {
        self.total.failed_seeds.is_empty() && self.overshoot_misses().is_empty()
    }

    /// The table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<22} {:>9} {:>10} {:>8} {:>10} {:>10}  {:>16}",
            "fault class", "rotations", "failed-ops", "invariant", "converged", "gaps", "overshoot mean/max"
        );
        let _ = writeln!(
            s,
            "{:<22} {:>9} {:>10} {:>8} {:>10} {:>10}  {:>16}",
            "", "", "", "violations", "", "", "(seconds)"
        );
        let row = |s: &mut String, name: &str, t: &Tally, note: &str| {
            let _ = writeln!(
                s,
                "{:<22} {:>9} {:>10} {:>8} {:>9.2}% {:>10}  {:>7.3} / {:<7.3} {note}",
                name,
                t.rotations,
                t.failed_operations,
                t.violations,
                t.convergence_pct(),
                t.gaps,
                t.overshoot_mean_s(),
                t.overshoot_max_ms as f64 / 1000.0,
            );
        };
        for (class, t) in &self.by_class {
            let note = if class.injects_delay() {
                format!("(includes injected delays; max: seed {})", t.overshoot_max_seed)
            } else {
                format!("(max: seed {})", t.overshoot_max_seed)
            };
            row(&mut s, class.name(), t, &note);
        }
        row(&mut s, "TOTAL", &self.total, "");
        let _ = writeln!(
            s,
            "consumer operations: {} ({} failed)",
            self.total.operations, self.total.failed_operations
        );
        s
    }
}
