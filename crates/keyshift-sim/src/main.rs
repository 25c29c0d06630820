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

use keyshift_sim::{
    BehaviourPins, EngineBehaviours, FaultClass, Job, OperatorAction, RequestKind, RequestPhase, RequestPin,
    RunResult, Scenario, SecretKind, Selection, Strategy, Switch, matrix_jobs, replay_command, run_jobs,
    run_seed, run_world, seed_jobs, world_jobs,
};

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

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seeds: 1000,
        first: 1,
        one: None,
        sel: Selection::seeded(),
        matrix: false,
        worlds: 0,
        secrets: None,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number =
            |v: String, name: &str| v.parse::<u64>().map_err(|_| format!("{name}: not a number: {v}"));
        if let Some(switch) = flag.strip_prefix("--").and_then(Switch::from_name) {
            let v = value(&flag)?;
            a.sel.pins.pin(switch, &v)?;
            continue;
        }
        match flag.as_str() {
            "--seeds" => a.seeds = number(value("--seeds")?, "--seeds")?,
            "--first" => a.first = number(value("--first")?, "--first")?,
            "--seed" => a.one = Some(number(value("--seed")?, "--seed")?),
            "--threads" => a.threads = number(value("--threads")?, "--threads")? as usize,
            "--worlds" => a.worlds = number(value("--worlds")?, "--worlds")?,
            "--secrets" => a.secrets = Some(number(value("--secrets")?, "--secrets")?.max(1) as usize),
            "--class" => {
                let v = value("--class")?;
                a.sel.class = Some(FaultClass::from_name(&v).ok_or_else(|| {
                    let names: Vec<_> = FaultClass::EVERY.iter().map(|c| c.name()).collect();
                    format!("unknown class {v}; one of {}", names.join(", "))
                })?);
            }
            "--classes" => {
                let v = value("--classes")?;
                let mut list = Vec::new();
                for name in v.split(',') {
                    list.push(
                        FaultClass::from_name(name)
                            .ok_or_else(|| format!("--classes: unknown class {name}"))?,
                    );
                }
                a.sel.classes = Some(Box::leak(list.into_boxed_slice()));
            }
            "--combination" => {
                let n = number(value("--combination")?, "--combination")? as usize;
                if n >= EngineBehaviours::COMBINATIONS {
                    return Err(format!(
                        "--combination: 0 to {}",
                        EngineBehaviours::COMBINATIONS - 1
                    ));
                }
                a.sel.pins = BehaviourPins::all(EngineBehaviours::from_index(n));
            }
            "--operator-action" => {
                let v = value("--operator-action")?;
                a.sel.operator_action = Some(OperatorAction::from_name(&v).ok_or_else(|| {
                    let names: Vec<_> = OperatorAction::EVERY.iter().map(|c| c.name()).collect();
                    format!("unknown operator action {v}; one of {}", names.join(", "))
                })?);
            }
            "--kind" => {
                let v = value("--kind")?;
                a.sel.kind = Some(SecretKind::from_name(&v).ok_or_else(|| {
                    let names: Vec<_> = SecretKind::EVERY.iter().map(|k| k.name()).collect();
                    format!("unknown kind {v}; one of {}", names.join(", "))
                })?);
            }
            "--request" => {
                let v = value("--request")?;
                a.sel.request = match v.as_str() {
                    "none" => RequestPin::Off,
                    name => RequestPin::Kind(RequestKind::from_name(name).ok_or_else(|| {
                        format!("--request: unknown request {v}; one of none, emergency, cancel, redrive")
                    })?),
                };
            }
            "--request-phase" => {
                let v = value("--request-phase")?;
                a.sel.request_phase = Some(RequestPhase::from_name(&v).ok_or_else(|| {
                    format!("--request-phase: unknown phase {v}; one of engine, after-finish, first-gap, second-gap")
                })?);
            }
            "--refresh-on-miss" => {
                let v = value("--refresh-on-miss")?;
                a.sel.refresh_on_miss = Some(match v.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--refresh-on-miss: on or off, not {v}")),
                });
            }
            "--matrix" => a.matrix = true,
            "--list-failures" => a.list = true,
            "--control" => a.sel.strategy = Strategy::OneStep,
            "--replicas" => a.sel.replicas = true,
            "-h" | "--help" => return Err(HELP.into()),
            other => return Err(format!("unknown argument {other}\n{HELP}")),
        }
    }
    Ok(a)
}

const HELP: &str =
    "usage: keyshift-sim [--seeds N] [--first S] [--class NAME] [--classes A,B] [--threads N] [--matrix] \
[--worlds W] [--secrets N] [--replicas] [--kind opaque|ed25519|symmetric] [--list-failures] [PINS] \
| --seed S [--secrets N] [PINS] | --control
PINS: --copy-abandons off|token|holder --strip-after-finish off|on --validate-rotation-token off|on
      --retry-reattach off|step-error|not-current --past-schedule-refused off|on --operator off|on
      --operator-action write|strip-pending|add-label|remove-label --combination N
REQUESTS: --request none|emergency|cancel|redrive --request-phase engine|after-finish|first-gap|second-gap
      --refresh-on-miss on|off";

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
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
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
