//! Aggregation and the printed report of many runs: per fault class, per engine-behaviour
//! combination (one row each), per switch value, per operator action, per mode (one
//! secret, or many through one executor), per secret kind (with the real cryptography
//! of the key secrets), and in total.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::checker::Kind;
use crate::keys::{CryptoCounts, KeyStats};
use crate::requests::Cause;
use crate::scenario::{
    EngineBehaviours, FaultClass, OperatorAction, RequestKind, RequestPhase, SecretKind, Switch,
};
use crate::world::{Hits, RunResult};

/// The overshoot target per gap, for fault classes that inject no delay.
pub const OVERSHOOT_TARGET_MS: i64 = 1_000;

/// Totals over a set of runs.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Runs (one per secret).
    pub runs: u64,
    /// Rotations started.
    pub rotations: u64,
    /// Rotations converged.
    pub converged: u64,
    /// Of those, rotations abandoned cleanly.
    pub abandoned: u64,
    /// Consumer operations.
    pub operations: u64,
    /// Failed consumer operations.
    pub failed_operations: u64,
    /// Of those (replica runs), within the primary Region, within the replica Region,
    /// and across Regions.
    pub failed_by_region: [u64; 3],
    /// Invariant violations.
    pub violations: u64,
    /// Of those, cross-talk between secrets.
    pub cross_talk: u64,
    /// Gaps measured.
    pub gaps: u64,
    /// Sum of overshoots, ms.
    pub overshoot_sum_ms: i64,
    /// Largest overshoot, ms.
    pub overshoot_max_ms: i64,
    /// The seed of the largest overshoot.
    pub overshoot_max_seed: u64,
    /// How often each engine behaviour acted.
    pub hits: Hits,
    /// Seeds that failed (a many-secrets world's seed once per failing secret).
    pub failed_seeds: Vec<u64>,
    /// Failing runs by kind of failure (a run may count under several kinds).
    pub kinds: BTreeMap<Kind, u64>,
    /// Largest overshoot, ms, of runs with the baseline engine (the overshoot target
    /// applies to those: the behaviours delay steps on purpose).
    pub baseline_overshoot_max_ms: i64,
    /// The real operations of the key secrets.
    pub keys: KeyStats,
}

impl Tally {
    /// Adds one run.
    pub fn add(&mut self, r: &RunResult) {
        self.runs += 1;
        self.rotations += r.rotations as u64;
        self.converged += r.converged as u64;
        self.abandoned += r.abandoned as u64;
        self.operations += r.operations;
        self.failed_operations += r.failed_operations;
        for (t, n) in self.failed_by_region.iter_mut().zip(r.failed_by_region) {
            *t += n;
        }
        self.violations += r.violations.len() as u64;
        self.cross_talk += r.cross_talk as u64;
        self.hits.add(&r.hits);
        self.keys.add(&r.keys);
        let baseline = r.scenario.behaviours == EngineBehaviours::BASELINE;
        for &o in &r.overshoots_ms {
            if baseline {
                self.baseline_overshoot_max_ms = self.baseline_overshoot_max_ms.max(o);
            }
            self.gaps += 1;
            self.overshoot_sum_ms += o;
            if o > self.overshoot_max_ms {
                self.overshoot_max_ms = o;
                self.overshoot_max_seed = r.scenario.seed;
            }
        }
        if !r.ok() {
            self.failed_seeds.push(r.scenario.seed);
            for k in r.failure_kinds() {
                *self.kinds.entry(k).or_default() += 1;
            }
        }
    }

    /// "[revocation 3, convergence 1]" for a report line.
    pub fn kinds_text(&self) -> String {
        let parts: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        format!("[{}]", parts.join(", "))
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

    /// Whether every run in it passed.
    pub fn passed(&self) -> bool {
        self.failed_seeds.is_empty()
    }

    /// The first few failing seeds, deduplicated, for a report line.
    pub fn replay_seeds(&self, n: usize) -> String {
        let mut seen = Vec::new();
        for s in &self.failed_seeds {
            if !seen.contains(s) {
                seen.push(*s);
            }
            if seen.len() == n {
                break;
            }
        }
        seen.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
    }
}

/// The tallies by every grouping the report prints.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// By fault class.
    pub by_class: BTreeMap<FaultClass, Tally>,
    /// By engine-behaviour combination (its index).
    pub by_combination: BTreeMap<usize, Tally>,
    /// By switch and value number.
    pub by_switch: BTreeMap<(Switch, usize), Tally>,
    /// Runs in which the operator acted, by action.
    pub by_action: BTreeMap<OperatorAction, Tally>,
    /// By the number of secrets per world (1: single-secret runs).
    pub by_mode: BTreeMap<usize, Tally>,
    /// By what the secret holds.
    pub by_kind: BTreeMap<SecretKind, Tally>,
    /// Runs with an operator's request, by the request planned.
    pub by_request: BTreeMap<RequestKind, Tally>,
    /// The operator's requests and the emergencies' consumer failures.
    pub requests: RequestStats,
    /// All runs.
    pub total: Tally,
}

/// The operator's requests of many runs: what was sent when, how it ended, and what the
/// emergencies cost the consumers.
#[derive(Debug, Clone, Default)]
pub struct RequestStats {
    /// Runs whose plan carried a request.
    pub planned: u64,
    /// Of those, runs whose first rotation never reached the phase aimed at.
    pub unsent: u64,
    /// Requests sent (a duplicate and an operator's give-up cancel count once each), by
    /// kind and by the phase the secret's latest rotation was in.
    pub sent: BTreeMap<(RequestKind, RequestPhase), u64>,
    /// Of those, the same request sent again.
    pub duplicates: u64,
    /// Of those, cancels of an emergency the operator gave up on.
    pub give_ups: u64,
    /// Sends in all (retries after errors included).
    pub attempts: u64,
    /// How requests ended, by kind and outcome.
    pub outcomes: BTreeMap<(RequestKind, String), u64>,
    /// Emergencies that cut over, by GapSeconds (0, 1 to 5 s, longer) and with
    /// KeepAcceptingSeconds.
    pub cuts: [u64; 3],
    /// Of those, with KeepAcceptingSeconds.
    pub kept: u64,
    /// Cuts after the first one in a run (a duplicate without VersionId after the cut
    /// rotates the emergency's own value away).
    pub second_cuts: u64,
    /// By-design failed operations, by cause ([`Cause::EVERY`] order).
    pub by_design: [u64; 3],
    /// By-design misses healed within the operation by refresh-on-miss.
    pub healed: u64,
    /// Per emergency with a by-design failure: from the cut to the last one, ms.
    pub emergency_windows_ms: Vec<u64>,
    /// Per emergency with a by-design failure: R of its run, ms.
    pub emergency_r_ms: Vec<u64>,
    /// Per emergency with a by-design failure: its window over R.
    pub window_over_r: Vec<f64>,
    /// Per failing instance and spell: from its first failure to its recovery, ms.
    pub instance_windows_ms: Vec<u64>,
    /// Per failing instance and spell: the bound it is held to (one round trip), ms.
    pub round_trips_ms: Vec<u64>,
    /// Spells longer than their bound.
    pub over_bound: u64,
    /// The longest emergency window and its seed.
    pub widest_emergency: (u64, u64),
    /// The longest instance window and its seed.
    pub widest_instance: (u64, u64),
}

impl RequestStats {
    /// Adds one run.
    pub fn add(&mut self, r: &RunResult) {
        if r.scenario.request.is_some() {
            self.planned += 1;
            self.unsent += u64::from(r.request_unsent);
        }
        for q in &r.requests {
            *self.sent.entry((q.kind, q.phase)).or_default() += 1;
            self.duplicates += u64::from(q.copy == 1);
            self.give_ups += u64::from(q.copy == 2);
            self.attempts += u64::from(q.attempts);
            let outcome = q.outcome.clone().unwrap_or_else(|| "no outcome".into());
            *self.outcomes.entry((q.kind, outcome)).or_default() += 1;
        }
        for (k, em) in r.emergencies.iter().enumerate() {
            let Some(window) = em.window() else { continue };
            let bucket = match em.gap.as_secs() {
                0 => 0,
                1..=5 => 1,
                _ => 2,
            };
            self.cuts[bucket] += 1;
            self.kept += u64::from(em.keep.is_some());
            self.second_cuts += u64::from(k > 0 && r.emergencies[..k].iter().any(|e| e.cut.is_some()));
            for (t, n) in self.by_design.iter_mut().zip(em.by_design) {
                *t += n;
            }
            self.healed += em.healed;
            if em.failures() > 0 {
                let ms = window.as_millis() as u64;
                if ms >= self.widest_emergency.0 {
                    self.widest_emergency = (ms, r.scenario.seed);
                }
                self.emergency_windows_ms.push(ms);
                self.emergency_r_ms.push(em.refresh.as_millis() as u64);
                self.window_over_r
                    .push(window.as_secs_f64() / em.refresh.as_secs_f64().max(1e-3));
            }
            for w in em.instance_windows() {
                let ms = w.as_millis() as u64;
                if ms >= self.widest_instance.0 {
                    self.widest_instance = (ms, r.scenario.seed);
                }
                self.instance_windows_ms.push(ms);
                self.round_trips_ms.push(em.round_trip.as_millis() as u64);
                self.over_bound += u64::from(w > em.round_trip);
            }
        }
    }

    /// Emergencies that cut over.
    pub fn emergencies(&self) -> u64 {
        self.cuts.iter().sum()
    }
}

/// The `q` quantile (0 to 1) of `values` (nearest rank), 0 when empty.
pub fn quantile<T: Copy + Ord + Default>(values: &[T], q: f64) -> T {
    let mut v = values.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return T::default();
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

impl Summary {
    /// Adds one run.
    pub fn add(&mut self, r: &RunResult) {
        let sc = &r.scenario;
        self.by_class.entry(sc.class).or_default().add(r);
        self.by_combination
            .entry(sc.behaviours.index())
            .or_default()
            .add(r);
        for s in Switch::EVERY {
            self.by_switch
                .entry((s, sc.behaviours.get(s)))
                .or_default()
                .add(r);
        }
        if r.operator_acted {
            self.by_action.entry(sc.operator_action).or_default().add(r);
        }
        self.by_mode.entry(sc.world_secrets).or_default().add(r);
        self.by_kind.entry(sc.kind).or_default().add(r);
        if let Some(plan) = &sc.request {
            self.by_request.entry(plan.kind).or_default().add(r);
        }
        self.requests.add(r);
        self.total.add(r);
    }

    /// Classes without injected delay whose largest overshoot misses the target.
    pub fn overshoot_misses(&self) -> Vec<(FaultClass, i64)> {
        self.by_class
            .iter()
            .filter(|(c, t)| !c.injects_delay() && t.baseline_overshoot_max_ms >= OVERSHOOT_TARGET_MS)
            .map(|(c, t)| (*c, t.baseline_overshoot_max_ms))
            .collect()
    }

    /// Whether every run passed and the timing target holds.
    pub fn passed(&self) -> bool {
        self.total.failed_seeds.is_empty() && self.overshoot_misses().is_empty()
    }

    /// The combinations with a failing run.
    pub fn failing_combinations(&self) -> Vec<EngineBehaviours> {
        self.by_combination
            .iter()
            .filter(|(_, t)| !t.passed())
            .map(|(i, _)| EngineBehaviours::from_index(*i))
            .collect()
    }

    /// The per-class table (as before the engine-behaviour matrix).
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
            "(the overshoot target applies to runs with the baseline engine: the behaviours delay steps on purpose)"
        );
        let _ = writeln!(
            s,
            "consumer operations: {} ({} failed)",
            self.total.operations, self.total.failed_operations
        );
        s
    }

    /// One row per engine-behaviour combination, failing ones marked, with seeds to
    /// replay.
    pub fn render_combinations(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>3} {:<7} {:<5} {:<8} {:<11} {:<4} {:<4} {:>6} {:>9} {:>10} {:>7} {:>7} {:>8} {:>9}  result",
            "#",
            "abandon",
            "strip",
            "validate",
            "retry",
            "past",
            "ops",
            "seeds",
            "rotations",
            "operations",
            "failed",
            "invar.",
            "converged",
            "abandoned"
        );
        for (i, t) in &self.by_combination {
            let b = EngineBehaviours::from_index(*i);
            let v = |sw: Switch| sw.values()[b.get(sw)];
            let result = if t.passed() {
                "ok".to_owned()
            } else {
                format!(
                    "FAIL {}/{} {}; replay: {}",
                    t.failed_seeds.len(),
                    t.runs,
                    t.kinds_text(),
                    t.replay_seeds(3)
                )
            };
            let _ = writeln!(
                s,
                "{:>3} {:<7} {:<5} {:<8} {:<11} {:<4} {:<4} {:>6} {:>9} {:>10} {:>7} {:>7} {:>7.2}% {:>9}  {result}",
                i,
                v(Switch::CopyAbandons),
                v(Switch::StripAfterFinish),
                v(Switch::ValidateRotationToken),
                v(Switch::RetryReattach),
                v(Switch::PastScheduleRefused),
                v(Switch::Operator),
                t.runs,
                t.rotations,
                t.operations,
                t.failed_operations,
                t.violations,
                t.convergence_pct(),
                t.abandoned,
            );
        }
        s
    }

    /// Per switch value: how the runs with that value fared, and how often it acted.
    pub fn render_switches(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<36} {:>7} {:>12} {:>7} {:>7} {:>9}  acted",
            "switch = value", "seeds", "failed seeds", "failed", "invar.", "converged"
        );
        for ((sw, v), t) in &self.by_switch {
            let acted = match (sw, *v) {
                (_, 0) => String::new(),
                (Switch::CopyAbandons, _) => format!("{} rotations abandoned", t.hits.abandoned),
                (Switch::StripAfterFinish, _) => format!("{} strips", t.hits.strips_after_finish),
                (Switch::ValidateRotationToken, _) => format!("{} writes refused", t.hits.refused_writes),
                (Switch::RetryReattach, _) => format!(
                    "{} re-attaching retries ({} after a not-current finish)",
                    t.hits.reattached, t.hits.not_current_retries
                ),
                (Switch::PastScheduleRefused, _) => format!("{} schedules refused", t.hits.refused_schedules),
                (Switch::Operator, _) => format!("{} operator actions", t.hits.operator),
            };
            let kinds = if t.passed() { String::new() } else { t.kinds_text() };
            let _ = writeln!(
                s,
                "{:<36} {:>7} {:>12} {:>7} {:>7} {:>8.2}%  {kinds} {acted}",
                format!("{} = {}", sw.name(), sw.values()[*v]),
                t.runs,
                t.failed_seeds.len(),
                t.failed_operations,
                t.violations,
                t.convergence_pct(),
            );
        }
        if !self.by_action.is_empty() {
            let _ = writeln!(s, "operator action (runs where it acted):");
            for (a, t) in &self.by_action {
                let _ = writeln!(
                    s,
                    "  {:<34} {:>7} {:>12} {:>7} {:>7} {:>8.2}%  {} abandoned cleanly: {}{}",
                    a.name(),
                    t.runs,
                    t.failed_seeds.len(),
                    t.failed_operations,
                    t.violations,
                    t.convergence_pct(),
                    if t.passed() { String::new() } else { t.kinds_text() },
                    t.abandoned,
                    if t.passed() {
                        String::new()
                    } else {
                        format!("; replay: {}", t.replay_seeds(3))
                    }
                );
            }
        }
        s
    }

    /// Totals per secret kind, and the real operations of the key secrets: how many
    /// signatures and verifications, encryptions and decryptions ran, and how many
    /// operations failed, by kind.
    pub fn render_kinds(&self) -> String {
        let mut s = String::new();
        for (kind, t) in &self.by_kind {
            let what = match kind {
                SecretKind::Opaque => "opaque (abstract check)",
                SecretKind::Ed25519 => "ed25519 signing key",
                SecretKind::Symmetric => "aes-256 symmetric key",
            };
            let _ = writeln!(
                s,
                "{what:<28} secret-runs {:>6}, rotations {:>6}, operations {:>9}, failed {:>6}{}",
                t.runs,
                t.rotations,
                t.operations,
                t.failed_operations,
                if t.passed() {
                    String::new()
                } else {
                    format!(" {}; replay: {}", t.kinds_text(), t.replay_seeds(3))
                }
            );
        }
        let _ = writeln!(
            s,
            "(operations include the end-of-run sweep: every producer towards every consumer once)"
        );
        let k = &self.total.keys;
        if k.any() {
            let _ = writeln!(
                s,
                "real cryptography (a failed operation is counted once, above and here; here also an emergency's by-design failures, which are not counted as failed above):"
            );
            let line = |s: &mut String, name: &str, made: &str, checked: &str, c: &CryptoCounts| {
                if c.operations == 0 {
                    return;
                }
                let _ = writeln!(
                    s,
                    "  {name:<38} operations {:>8}: {made} {:>8}, {checked} {:>8}; failed {:>6} (kid unknown to the consumer {}, rejected {})",
                    c.operations,
                    c.produced,
                    c.checked,
                    c.failed(),
                    c.unknown_kid,
                    c.rejected,
                );
            };
            line(&mut s, "ed25519 sign/verify", "signed", "verified", &k.sign);
            line(
                &mut s,
                "aes-256-gcm encrypt/decrypt",
                "encrypted",
                "decrypted",
                &k.seal,
            );
            line(
                &mut s,
                "aes-256-gcm stored data by version id",
                "kept",
                "decrypted",
                &k.stored,
            );
            if k.sign.operations > 0 {
                let _ = writeln!(
                    s,
                    "  (ed25519: a pair's first verification of a kid, and 1 in {} after it, run the cryptography; the rest look the kid up in the consumer's accepted versions only)",
                    crate::keys::SIGN_SAMPLE
                );
            }
        }
        s
    }

    /// The operator's requests: what was sent in which phase, how it ended, the runs that
    /// carried one, and what the emergencies cost the consumers, with the failure windows
    /// next to R and to the round-trip bound.
    pub fn render_requests(&self) -> String {
        let q = &self.requests;
        let mut s = String::new();
        let sent: u64 = q.sent.values().sum();
        let _ = writeln!(
            s,
            "runs with a request: {} ({} never sent: the first rotation did not reach the phase aimed at); requests sent: {sent} ({} the same request again, {} cancels of an emergency the operator gave up on), {} sends with the operator's retries",
            q.planned, q.unsent, q.duplicates, q.give_ups, q.attempts
        );
        let _ = write!(s, "{:<12}", "sent during");
        for p in RequestPhase::EVERY {
            let _ = write!(s, " {:>12}", p.name());
        }
        let _ = writeln!(s, " {:>8}", "total");
        for k in RequestKind::EVERY {
            let _ = write!(s, "{:<12}", k.name());
            let mut total = 0;
            for p in RequestPhase::EVERY {
                let n = q.sent.get(&(k, p)).copied().unwrap_or(0);
                total += n;
                let _ = write!(s, " {n:>12}");
            }
            let _ = writeln!(s, " {total:>8}");
        }
        let _ = writeln!(s, "outcomes:");
        for k in RequestKind::EVERY {
            let mut parts: Vec<(u64, &str)> = q
                .outcomes
                .iter()
                .filter(|((kind, _), _)| *kind == k)
                .map(|((_, o), n)| (*n, o.as_str()))
                .collect();
            parts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            let text: Vec<String> = parts.iter().map(|(n, o)| format!("{o} {n}")).collect();
            let _ = writeln!(s, "  {:<10} {}", k.name(), text.join(", "));
        }
        let _ = writeln!(s, "runs by the request planned:");
        for (k, t) in &self.by_request {
            let _ = writeln!(
                s,
                "  {:<10} runs {:>6}, rotations {:>6}, failed seeds {:>4}, failed operations {:>4}, violations {:>4}, converged {:.2}% (abandoned cleanly {}){}",
                k.name(),
                t.runs,
                t.rotations,
                t.failed_seeds.len(),
                t.failed_operations,
                t.violations,
                t.convergence_pct(),
                t.abandoned,
                if t.passed() {
                    String::new()
                } else {
                    format!(" {}; replay: {}", t.kinds_text(), t.replay_seeds(3))
                }
            );
        }
        let _ = writeln!(
            s,
            "emergencies that cut over: {} (GapSeconds 0: {}, 1 to 5 s: {}, longer than R: {}; KeepAcceptingSeconds: {}; a second cut by the same request sent again without VersionId: {})",
            q.emergencies(),
            q.cuts[0],
            q.cuts[1],
            q.cuts[2],
            q.kept,
            q.second_cuts
        );
        let _ = writeln!(
            s,
            "consumer operations failed by design: {} ({} {}, {} {}, {} {}); misses healed within the operation by refresh-on-miss: {}; every other failure is counted as failed above",
            q.by_design.iter().sum::<u64>(),
            Cause::EVERY[0].name(),
            q.by_design[0],
            Cause::EVERY[1].name(),
            q.by_design[1],
            Cause::EVERY[2].name(),
            q.by_design[2],
            q.healed
        );
        let secs = |ms: u64| ms as f64 / 1000.0;
        let w = &q.emergency_windows_ms;
        let _ = writeln!(
            s,
            "failure window per emergency, from the cut to its last by-design failure ({} of {} emergencies had one): p50 {:.3} s, p99 {:.3} s, max {:.3} s (seed {}); R of those runs: p50 {:.0} s, max {:.0} s; window / R: p50 {:.3}, p99 {:.3}, max {:.3}",
            w.len(),
            q.emergencies(),
            secs(quantile(w, 0.5)),
            secs(quantile(w, 0.99)),
            secs(quantile(w, 1.0)),
            q.widest_emergency.1,
            secs(quantile(&q.emergency_r_ms, 0.5)),
            secs(quantile(&q.emergency_r_ms, 1.0)),
            ratio_quantile(&q.window_over_r, 0.5),
            ratio_quantile(&q.window_over_r, 0.99),
            ratio_quantile(&q.window_over_r, 1.0),
        );
        let iw = &q.instance_windows_ms;
        let _ = writeln!(
            s,
            "failure window per instance, from its first failure to its view showing the cut ({} spells): p50 {:.3} s, p99 {:.3} s, max {:.3} s (seed {}); bound (one refresh round trip): {:.3} s; over the bound: {}",
            iw.len(),
            secs(quantile(iw, 0.5)),
            secs(quantile(iw, 0.99)),
            secs(quantile(iw, 1.0)),
            q.widest_instance.1,
            secs(quantile(&q.round_trips_ms, 1.0)),
            q.over_bound
        );
        s
    }

    /// Totals per mode: single-secret runs, and many-secrets worlds.
    pub fn render_modes(&self) -> String {
        let mut s = String::new();
        for (n, t) in &self.by_mode {
            let mode = if *n == 1 {
                "one secret per world".to_owned()
            } else {
                format!("{n} secrets per world, one executor")
            };
            let _ = writeln!(
                s,
                "{mode:<36} secret-runs {:>6}, rotations {:>6}, operations {:>9}, failed {:>5}, violations {:>5} (cross-talk {}), converged {:.2}%{}",
                t.runs,
                t.rotations,
                t.operations,
                t.failed_operations,
                t.violations,
                t.cross_talk,
                t.convergence_pct(),
                if t.passed() {
                    String::new()
                } else {
                    format!(", FAIL: seeds {}", t.replay_seeds(5))
                }
            );
        }
        s
    }
}

/// The `q` quantile of ratios (nearest rank), 0 when empty.
fn ratio_quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
