//! `keyshift-sim`: runs seeded rotations and prints the report.
//!
//! ```text
//! keyshift-sim [--seeds N] [--first S] [--class NAME] [PINS] [--worlds W [--secrets N]]
//!                                     seeds pick their class and engine behaviours; report
//! keyshift-sim --matrix [--seeds N] ...   N seeds for EVERY engine-behaviour combination
//! keyshift-sim --seed S [--class NAME] [PINS] [--secrets N]
//!                                     one seed (or one many-secrets world), with its trace
//! keyshift-sim --control [--seeds N]      the one-step control
//! keyshift-sim --replicas [--seeds N]     replica Regions that trail the primary (opt-in)
//! keyshift-sim --kind opaque|ed25519|symmetric ...   every secret of that kind (default:
//!                                     drawn per seed; see keyshift_sim::SecretKind)
//!
//! PINS: --copy-abandons off|token|holder   --strip-after-finish off|on
//!       --validate-rotation-token off|on   --retry-reattach off|step-error|not-current
//!       --past-schedule-refused off|on     --operator off|on
//!       --operator-action write|strip-pending|add-label|remove-label
//!       --combination N (all six at once; 0 is the baseline)
//! REQUESTS (default: drawn per seed, half the seeds):
//!       --request none|emergency|cancel|redrive
//!       --request-phase engine|after-finish|first-gap|second-gap
//!       --refresh-on-miss on|off (default on; off is a fleet that waits for its
//!                         scheduled refresh, which the failure-window check fails)
//! ```
//! Exits 1 when a run fails (it prints the failing combinations and how to replay a
//! seed), or when the control fails to fail (overall, and on each kind of key secret it
//! ran).

use std::process::ExitCode;

use clap::Parser;

use keyshift_sim::{
    BehaviourPins, EngineBehaviours, FaultClass, Job, OperatorAction, RequestKind, RequestPhase, RequestPin,
    RunResult, Scenario, SecretKind, Selection, Strategy, Switch, matrix_jobs, replay_command, run_jobs,
    run_seed, run_world, seed_jobs, world_jobs,
};

/// What a run is asked to do, after parsing.
struct Args {
    seeds: u64,
    first: u64,
    one: Option<u64>,
    sel: Selection,
    matrix: bool,
    worlds: u64,
    secrets: Option<usize>,
    threads: usize,
    list: bool,
}

/// The command line. The six engine-behaviour pins keep the names the report prints and
/// [`replay_command`] writes; `--combination` pins all six first, then any single pin
/// given beside it wins.
#[derive(Debug, Parser)]
#[command(
    name = "keyshift-sim",
    about = "Runs seeded keyshift rotations against a simulated Secrets Manager, scheduler and consumer fleet, and prints the report.",
    after_help = "Exits 1 when a run fails (it prints the failing combinations and how to replay a seed), or when the control fails to fail; 2 on a usage error."
)]
struct Cli {
    /// Seeds to run (each picks its class and engine behaviours); with --matrix, seeds
    /// per combination.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1, value_name = "S")]
    first: u64,
    /// Replays one seed (or one many-secrets world with --secrets) with its trace.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Many-secrets worlds on top of the seeds.
    #[arg(long, default_value_t = 0, value_name = "W")]
    worlds: u64,
    /// Secrets per many-secrets world (at least 1).
    #[arg(long, value_name = "N")]
    secrets: Option<usize>,
    /// Every seed in this fault class.
    #[arg(long, value_name = "NAME", value_parser = parse_class)]
    class: Option<FaultClass>,
    /// Seeds draw their class from these (comma-separated).
    #[arg(long, value_name = "A,B", value_delimiter = ',', value_parser = parse_class)]
    classes: Option<Vec<FaultClass>>,
    /// Pins all six engine behaviours to combination N (0 is the baseline).
    #[arg(long, value_name = "N", value_parser = parse_combination)]
    combination: Option<usize>,
    /// (a) A foreign PutSecretValue during the engine's rotation abandons it.
    #[arg(long, value_name = "off|token|holder", value_parser = ["off", "token", "holder"])]
    copy_abandons: Option<String>,
    /// (b) The engine strips AWSPENDING after a finishSecret that left AWSCURRENT elsewhere.
    #[arg(long, value_name = "off|on", value_parser = ["off", "on"])]
    strip_after_finish: Option<String>,
    /// (c) A PutSecretValue with another token than the rotation's is refused.
    #[arg(long, value_name = "off|on", value_parser = ["off", "on"])]
    validate_rotation_token: Option<String>,
    /// (d) How the engine retries a rotation.
    #[arg(long, value_name = "off|step-error|not-current", value_parser = ["off", "step-error", "not-current"])]
    retry_reattach: Option<String>,
    /// (e) CreateSchedule refuses a fire time not strictly in the future.
    #[arg(long, value_name = "off|on", value_parser = ["off", "on"])]
    past_schedule_refused: Option<String>,
    /// (f) An operator acts by hand during a rotation.
    #[arg(long, value_name = "off|on", value_parser = ["off", "on"])]
    operator: Option<String>,
    /// What the operator does (with --operator on).
    #[arg(long, value_name = "ACTION", value_parser = parse_operator_action)]
    operator_action: Option<OperatorAction>,
    /// Every secret of this kind (default: drawn per seed).
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Option<SecretKind>,
    /// An operator request in every seed, or none (default: drawn, half the seeds).
    #[arg(long, value_name = "none|emergency|cancel|redrive", value_parser = parse_request)]
    request: Option<RequestPin>,
    /// When the request is sent.
    #[arg(long, value_name = "PHASE", value_parser = parse_request_phase)]
    request_phase: Option<RequestPhase>,
    /// off: a fleet that waits for its scheduled refresh after a miss (the failure-window
    /// check then fails).
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    refresh_on_miss: Option<String>,
    /// N seeds for EVERY engine-behaviour combination.
    #[arg(long)]
    matrix: bool,
    /// Lists every failing seed, not only the first per combination.
    #[arg(long)]
    list_failures: bool,
    /// The one-step control (which must fail).
    #[arg(long)]
    control: bool,
    /// Replica Regions that trail the primary (opt-in).
    #[arg(long)]
    replicas: bool,
}

fn from_names<T: Copy>(what: &str, v: &str, every: &[T], name: fn(&T) -> &'static str) -> Result<T, String> {
    every.iter().copied().find(|x| name(x) == v).ok_or_else(|| {
        let names: Vec<_> = every.iter().map(name).collect();
        format!("unknown {what} {v}; one of {}", names.join(", "))
    })
}

fn parse_class(v: &str) -> Result<FaultClass, String> {
    from_names("class", v, &FaultClass::EVERY, |c| c.name())
}

fn parse_operator_action(v: &str) -> Result<OperatorAction, String> {
    from_names("operator action", v, &OperatorAction::EVERY, |c| c.name())
}

fn parse_kind(v: &str) -> Result<SecretKind, String> {
    from_names("kind", v, &SecretKind::EVERY, |k| k.name())
}

fn parse_request(v: &str) -> Result<RequestPin, String> {
    match v {
        "none" => Ok(RequestPin::Off),
        name => RequestKind::from_name(name)
            .map(RequestPin::Kind)
            .ok_or_else(|| format!("unknown request {v}; one of none, emergency, cancel, redrive")),
    }
}

fn parse_request_phase(v: &str) -> Result<RequestPhase, String> {
    RequestPhase::from_name(v)
        .ok_or_else(|| format!("unknown phase {v}; one of engine, after-finish, first-gap, second-gap"))
}

fn parse_combination(v: &str) -> Result<usize, String> {
    let n: usize = v.parse().map_err(|_| format!("not a number: {v}"))?;
    if n >= EngineBehaviours::COMBINATIONS {
        return Err(format!("0 to {}", EngineBehaviours::COMBINATIONS - 1));
    }
    Ok(n)
}

impl Cli {
    fn into_args(self) -> Result<Args, String> {
        let mut sel = Selection::seeded();
        if let Some(n) = self.combination {
            sel.pins = BehaviourPins::all(EngineBehaviours::from_index(n));
        }
        let pins = [
            (Switch::CopyAbandons, &self.copy_abandons),
            (Switch::StripAfterFinish, &self.strip_after_finish),
            (Switch::ValidateRotationToken, &self.validate_rotation_token),
            (Switch::RetryReattach, &self.retry_reattach),
            (Switch::PastScheduleRefused, &self.past_schedule_refused),
            (Switch::Operator, &self.operator),
        ];
        for (switch, value) in pins {
            if let Some(v) = value {
                sel.pins.pin(switch, v)?;
            }
        }
        sel.class = self.class;
        if let Some(list) = self.classes {
            sel.classes = Some(Box::leak(list.into_boxed_slice()));
        }
        sel.operator_action = self.operator_action;
        sel.kind = self.kind;
        if let Some(pin) = self.request {
            sel.request = pin;
        }
        sel.request_phase = self.request_phase;
        sel.refresh_on_miss = self.refresh_on_miss.map(|v| v == "on");
        if self.control {
            sel.strategy = Strategy::OneStep;
        }
        sel.replicas = self.replicas;
        Ok(Args {
            seeds: self.seeds,
            first: self.first,
            one: self.seed,
            sel,
            matrix: self.matrix,
            worlds: self.worlds,
            secrets: self.secrets.map(|n| n.max(1)),
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            list: self.list_failures,
        })
    }
}

fn print_run(r: &RunResult) {
    let sc = &r.scenario;
    println!(
        "secret {} ({}): class {}, engine behaviours: {} (combination {}){}",
        sc.secret_index,
        sc.kind.name(),
        sc.class.name(),
        sc.behaviours,
        sc.behaviours.index(),
        if sc.behaviours.operator {
            format!(", operator action {}", sc.operator_action.name())
        } else {
            String::new()
        }
    );
    println!(
        "  rotations {}, converged {} (abandoned cleanly {}), operations {}, failed {}, overshoots (ms) {:?}, hits {:?}",
        r.rotations, r.converged, r.abandoned, r.operations, r.failed_operations, r.overshoots_ms, r.hits
    );
    if r.keys.any() {
        let k = &r.keys;
        match sc.kind {
            SecretKind::Ed25519 => println!(
                "  real operations: ed25519 {} (signed {}, verified {}, failed {})",
                k.sign.operations,
                k.sign.produced,
                k.sign.checked,
                k.sign.failed()
            ),
            _ => println!(
                "  real operations: aes-256-gcm {} (encrypted {}, decrypted {}, failed {}); stored data by version id {} (decrypted {}, failed {})",
                k.seal.operations,
                k.seal.produced,
                k.seal.checked,
                k.seal.failed(),
                k.stored.operations,
                k.stored.checked,
                k.stored.failed()
            ),
        }
        for (kid, used) in &r.kids {
            println!(
                "  kid {kid}{}: producers {:?}, consumers {:?}",
                if kid.is_keyshift_copy() {
                    " (keyshift's copy)"
                } else if kid.is_keyshift_emergency() {
                    " (an emergency's new version)"
                } else {
                    ""
                },
                used.producers,
                used.consumers
            );
        }
    }
    if let Some(plan) = &sc.request {
        println!(
            "  operator request: {}{}",
            plan.describe(),
            if r.request_unsent {
                "; never sent (its phase was not reached)"
            } else {
                ""
            }
        );
        for (i, q) in r.requests.iter().enumerate() {
            println!(
                "  request #{i} ({}{}): sent during {}, {} attempt(s), {}",
                q.kind.name(),
                if q.copy > 0 { ", the same again" } else { "" },
                q.phase.name(),
                q.attempts,
                q.outcome.as_deref().unwrap_or("no outcome")
            );
        }
        for (k, em) in r.emergencies.iter().enumerate() {
            match (em.cut, &em.compromised, &em.new) {
                (Some(cut), Some((k1, _)), Some((e, _))) => {
                    let windows = em.instance_windows();
                    let widest = windows.iter().max().copied().unwrap_or_default();
                    println!(
                        "  emergency {k}: cut at {cut}, {k1} -> {e}; by-design failed operations {} (compromised {}, stale view {}, early release {}), healed by refresh-on-miss {}; window from the cut to the last failure {:?}; {} instance(s) failed, widest window {:?} (round trip {:?}, R {:?})",
                        em.failures(),
                        em.by_design[0],
                        em.by_design[1],
                        em.by_design[2],
                        em.healed,
                        em.window().unwrap_or_default(),
                        windows.len(),
                        widest,
                        em.round_trip,
                        em.refresh
                    );
                }
                _ => println!("  emergency {k}: no cut"),
            }
        }
    }
    for v in &r.violations {
        println!("  violation: {v}");
    }
}

fn replay_one(seed: u64, args: &Args) -> ExitCode {
    let results = match args.secrets {
        Some(n) if n > 1 => run_world(Scenario::world(seed, n, &args.sel), true),
        _ => vec![run_seed(Scenario::from_seed(seed, &args.sel), true)],
    };
    for line in &results[0].trace {
        println!("{line}");
    }
    println!("\nscenario: {:?}", results[0].scenario);
    for r in &results {
        if results.len() == 1 || !r.ok() {
            print_run(r);
        }
    }
    let failed = results.iter().filter(|r| !r.ok()).count();
    println!("seed {seed}: {} secret(s), {failed} failed", results.len());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args = match Cli::parse().into_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("keyshift-sim: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = args.one {
        return replay_one(seed, &args);
    }
    let control = args.sel.strategy == Strategy::OneStep;
    let what = if control {
        "one-step control"
    } else if args.sel.replicas {
        "keyshift with replica Regions (opt-in; the core does not handle replicas yet)"
    } else {
        "keyshift"
    };
    let secrets = args.secrets.unwrap_or(50);
    println!(
        "keyshift-sim: {what}, seeds {}..{}{}, {} thread(s), class {}, engine behaviours {}{}",
        args.first,
        args.first + args.seeds - 1,
        if args.matrix { " for EVERY combination" } else { "" },
        args.threads,
        args.sel.class.map_or_else(
            || match args.sel.classes {
                Some(cs) => format!(
                    "by seed from {}",
                    cs.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
                ),
                None => "by seed (all classes)".into(),
            },
            |c| c.name().into()
        ),
        if args.sel.pins.any() {
            args.sel.pins.flags()
        } else if args.matrix {
            "all combinations".into()
        } else {
            "by seed (all combinations)".into()
        },
        if args.worlds > 0 {
            format!(
                "; plus {} worlds of {secrets} secrets through one executor",
                args.worlds
            )
        } else {
            String::new()
        }
    );
    let started = std::time::Instant::now();
    let mut jobs: Vec<Job> = if args.matrix {
        matrix_jobs(args.first, args.seeds, &args.sel)
    } else {
        seed_jobs(args.first, args.seeds, &args.sel)
    };
    jobs.extend(world_jobs(args.first, args.worlds, secrets, &args.sel));
    let (summary, failures) = run_jobs(jobs, args.threads);
    println!("\n== by fault class ==");
    print!("{}", summary.render());
    if !control {
        println!("\n== by engine-behaviour combination ==");
        print!("{}", summary.render_combinations());
        println!("\n== by switch ==");
        print!("{}", summary.render_switches());
    }
    if !control {
        println!("\n== operator requests ==");
        print!("{}", summary.render_requests());
    }
    println!("\n== by mode ==");
    print!("{}", summary.render_modes());
    println!("\n== by secret kind ==");
    print!("{}", summary.render_kinds());
    if args.sel.replicas {
        let [primary, replica, across] = summary.total.failed_by_region;
        println!(
            "replica runs: {} failed consumer operations: {primary} within the primary Region, {replica} within the replica Region, {across} across Regions",
            summary.total.failed_operations
        );
        // T covers R, the read lag and a margin; a replica trailing by more than the
        // margin breaks the window in that Region.
        let within_margin = |r: &RunResult| {
            let sc = &r.scenario;
            let margin = sc.policy.gap.saturating_sub(sc.refresh + sc.read_lag);
            sc.replica_lag.is_some_and(|lag| lag <= margin)
        };
        let failing_within = failures.iter().filter(|r| within_margin(r)).count();
        println!(
            "replica runs failed: {} of {}; of those, {failing_within} with a replication lag within T - R - read lag",
            failures.len(),
            summary.total.runs
        );
    }
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
    if control {
        // Each kind of key secret that ran must have failed for real too: the real check
        // can fail.
        let keys = &summary.total.keys;
        let silent: Vec<&str> = [
            ("ed25519 verifications", &keys.sign),
            ("aes-256-gcm decryptions", &keys.seal),
        ]
        .into_iter()
        .filter(|(_, c)| c.operations > 0 && c.failed() == 0)
        .map(|(name, _)| name)
        .collect();
        return if summary.total.failed_operations > 0 && silent.is_empty() {
            println!("control: the one-step rotation failed consumer operations, as it must");
            ExitCode::SUCCESS
        } else if summary.total.failed_operations > 0 {
            println!(
                "control: the one-step rotation failed no real {}: the real check cannot tell safe from unsafe",
                silent.join(" nor ")
            );
            ExitCode::FAILURE
        } else {
            println!(
                "control: the one-step rotation did NOT fail any consumer operation: the simulation cannot tell safe from unsafe"
            );
            ExitCode::FAILURE
        };
    }
    for (class, max) in summary.overshoot_misses() {
        println!(
            "TARGET MISSED: {} has a gap overshoot of {:.3} s (target < 1 s)",
            class.name(),
            max as f64 / 1000.0
        );
    }
    if args.list {
        println!("\nfailing runs:");
        for r in &failures {
            let kinds: Vec<&str> = r.failure_kinds().into_iter().map(|k| k.name()).collect();
            println!(
                "  seed {:>6} secret {:>2} #{:<3} {:<20} [{}] {}",
                r.scenario.seed,
                r.scenario.secret_index,
                r.scenario.behaviours.index(),
                r.scenario.class.name(),
                kinds.join(","),
                r.violations.last().cloned().unwrap_or_default()
            );
        }
    }
    let failing = summary.failing_combinations();
    if !failing.is_empty() {
        println!(
            "\nFAILING combinations: {} of {}",
            failing.len(),
            summary.by_combination.len()
        );
        let world_flags = args.sel.flags();
        for b in &failing {
            let first = failures
                .iter()
                .find(|r| r.scenario.behaviours == *b)
                .unwrap_or_else(|| panic!("a failing combination has a failing run"));
            println!(
                "  #{:<3} {}: e.g. seed {}{}: {}\n        replay: {}",
                b.index(),
                b,
                first.scenario.seed,
                if first.scenario.world_secrets > 1 {
                    format!(" (world, secret {})", first.scenario.secret_index)
                } else {
                    String::new()
                },
                first
                    .violations
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{} failed consumer operations", first.failed_operations)),
                replay_command(first, &world_flags)
            );
        }
        if !args.matrix && args.sel.pins == BehaviourPins::default() && args.sel.class.is_none() {
            println!("  (`make sim SEED=n` replays seed n of this report with its trace)");
        }
    }
    if summary.passed() {
        println!("result: PASS");
        ExitCode::SUCCESS
    } else {
        println!("result: FAIL");
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        let cli = Cli::try_parse_from(std::iter::once("keyshift-sim").chain(line.split_whitespace()))
            .map_err(|e| e.to_string())?;
        cli.into_args()
    }

    #[test]
    fn every_replay_command_the_report_prints_parses_back_to_its_scenario() {
        let sel = Selection::seeded();
        for seed in 1..=200 {
            let r = run_seed(Scenario::from_seed(seed, &sel), false);
            let cmd = replay_command(&r, "");
            let flags = cmd
                .split_once(" -- ")
                .map(|(_, f)| f)
                .unwrap_or_else(|| panic!("no `--` in {cmd}"));
            let a = args(flags).unwrap_or_else(|e| panic!("{cmd}: {e}"));
            assert_eq!(a.one, Some(seed));
            let again = Scenario::from_seed(seed, &a.sel);
            assert_eq!(format!("{again:?}"), format!("{:?}", r.scenario), "{cmd}");
        }
    }

    #[test]
    fn a_single_pin_beside_a_combination_wins() {
        let a = args("--combination 0 --operator on").expect("parses");
        let b = BehaviourPins::all(EngineBehaviours::from_index(0));
        let op = Switch::EVERY
            .iter()
            .position(|s| *s == Switch::Operator)
            .expect("a switch");
        assert_eq!(a.sel.pins.values[op], Some(1));
        for i in (0..6).filter(|&i| i != op) {
            assert_eq!(a.sel.pins.values[i], b.values[i]);
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for line in [
            "--class nope",
            "--combination 100000",
            "--copy-abandons maybe",
            "--request sometimes",
            "--seeds many",
            "--frobnicate",
        ] {
            assert!(args(line).is_err(), "{line} was accepted");
        }
        let a =
            args("--classes none,none --kind ed25519 --request none --refresh-on-miss off").expect("parses");
        assert_eq!(a.sel.classes.map(<[_]>::len), Some(2));
        assert_eq!(a.sel.request, RequestPin::Off);
        assert_eq!(a.sel.refresh_on_miss, Some(false));
    }
}
