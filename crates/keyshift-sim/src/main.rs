//! `keyshift-sim`: runs seeded rotations and prints the report.
//!
//! ```text
//! keyshift-sim [--seeds N] [--first S] [--class NAME] [--threads N]   many seeds, report
//! keyshift-sim --seed S [--class NAME]                                one seed, with its trace
//! keyshift-sim --control [--seeds N]                                  the one-step control
//! ```
//! Exits 1 when a seed fails (it prints the seed, its trace, and how to replay it), or
//! when the control fails to fail.

use std::process::ExitCode;

use keyshift_sim::{FaultClass, Scenario, Strategy, run_many, run_seed};

struct Args {
    seeds: u64,
    first: u64,
    one: Option<u64>,
    class: Option<FaultClass>,
    control: bool,
    threads: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seeds: 1000,
        first: 1,
        one: None,
        class: None,
        control: false,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number =
            |v: String, name: &str| v.parse::<u64>().map_err(|_| format!("{name}: not a number: {v}"));
        match flag.as_str() {
            "--seeds" => a.seeds = number(value("--seeds")?, "--seeds")?,
            "--first" => a.first = number(value("--first")?, "--first")?,
            "--seed" => a.one = Some(number(value("--seed")?, "--seed")?),
            "--threads" => a.threads = number(value("--threads")?, "--threads")? as usize,
            "--class" => {
                let v = value("--class")?;
                a.class = Some(FaultClass::from_name(&v).ok_or_else(|| {
                    let names: Vec<_> = FaultClass::EVERY.iter().map(|c| c.name()).collect();
                    format!("unknown class {v}; one of {}", names.join(", "))
                })?);
            }
            "--control" => a.control = true,
            "-h" | "--help" => return Err(HELP.into()),
            other => return Err(format!("unknown argument {other}\n{HELP}")),
        }
    }
    Ok(a)
}

const HELP: &str =
    "usage: keyshift-sim [--seeds N] [--first S] [--class NAME] [--threads N] | --seed S | --control";

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let strategy = if args.control {
        Strategy::OneStep
    } else {
        Strategy::Keyshift
    };
    if let Some(seed) = args.one {
        let r = run_seed(Scenario::from_seed(seed, args.class, strategy), true);
        for line in &r.trace {
            println!("{line}");
        }
        println!("\nscenario: {:?}", r.scenario);
        println!(
            "seed {seed}: rotations {}, converged {}, operations {}, failed {}, overshoots (ms) {:?}",
            r.rotations, r.converged, r.operations, r.failed_operations, r.overshoots_ms
        );
        for v in &r.violations {
            println!("violation: {v}");
        }
        return if r.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let what = if args.control {
        "one-step control"
    } else {
        "keyshift"
    };
    println!(
        "keyshift-sim: {what}, seeds {}..{}, {} thread(s), class {}",
        args.first,
        args.first + args.seeds - 1,
        args.threads,
        args.class.map_or("by seed (all classes)", |c| c.name())
    );
    let started = std::time::Instant::now();
    let (summary, failures) = run_many(args.first, args.seeds, args.class, strategy, args.threads);
    print!("{}", summary.render());
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
    if args.control {
        return if summary.total.failed_operations > 0 {
            println!("control: the one-step rotation failed consumer operations, as it must");
            ExitCode::SUCCESS
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
    if let Some(first) = failures.first() {
        let seed = first.scenario.seed;
        println!(
            "\nFAILED seeds: {:?}",
            failures.iter().map(|r| r.scenario.seed).collect::<Vec<_>>()
        );
        let replay = run_seed(Scenario::from_seed(seed, args.class, strategy), true);
        println!("--- trace of seed {seed} (replayed) ---");
        for line in &replay.trace {
            println!("{line}");
        }
        for v in &replay.violations {
            println!("violation: {v}");
        }
        println!(
            "replay: cargo run --release -p keyshift-sim -- --seed {seed}{}",
            args.class
                .map_or(String::new(), |c| format!(" --class {}", c.name()))
        );
    }
    if summary.passed() {
        println!("result: PASS");
        ExitCode::SUCCESS
    } else {
        println!("result: FAIL");
        ExitCode::FAILURE
    }
}
