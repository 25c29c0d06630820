//! Deterministic simulation of keyshift rotations.
//!
//! A seeded, single-threaded, discrete-event world in virtual time: the in-memory
//! Secrets Manager ([`keyshift::memory`]), a model of the rotation engine with its
//! undocumented behaviours as switches, a model of EventBridge Scheduler and Lambda's
//! asynchronous delivery, operators acting by hand, and a fleet of consumers following
//! the consumer contract, with faults injected by class. Invocations are keyshift's real
//! [`keyshift::Executor`], polled as tasks whose only waits are on the virtual clock. A
//! world rotates one secret, or many through one executor and one scheduler.
//!
//! The simulation is agnostic of how keyshift rotates: it models the world and checks
//! outcomes (labels, gaps, consumer operations, service B, convergence), never which
//! version ids keyshift writes.
//!
//! # Key secrets
//!
//! A secret is opaque, a signing key or a symmetric key ([`SecretKind`]). A third of the
//! single-secret seeds each (drawn from a hash of the seed, independent of its class and
//! engine behaviours), and in every many-secrets world one secret of each key kind;
//! `--kind` pins every secret's kind. A key secret holds keyshift's stock values, made
//! with `keyshift-keys` both for the initial version and by the target on every rotation
//! (the secret is tagged `keyshift:kind` as the stock function's are): an Ed25519 key
//! pair (`{"kind","alg","private_jwk","private_key_pem","public_jwk"}`) or an AES-256
//! JWK (`{"kty":"oct","alg":"A256GCM","k"}`).
//!
//! On an opaque secret a fleet operation is abstract: a producer uses its cache's
//! AWSCURRENT, and the operation fails when a consumer does not accept that version. On a
//! key secret it is real cryptography ([`keys`]): a producer signs with its current
//! [`keyshift_client::Version::signing_key`] (the kid, the version id, inside the signed
//! message) and a consumer verifies with the public key under that kid in its own
//! cache's JWKS; or a producer encrypts with AES-256-GCM under its current
//! [`keyshift_client::Version::symmetric_key`] (the kid bound into the AAD) and a
//! consumer decrypts with the key under the kid among its accepted versions, and stored
//! data (ciphertexts kept from earlier operations) by that exact version id, accepted or
//! past. At the end of every run every producer operates towards every consumer once
//! more (the sweep), so every consumer has checked every kid in use at the end. A missing
//! kid, a bad signature or a ciphertext that does not open is a failed consumer
//! operation, counted with the others; the report gives the real operations and
//! their failures per kind. Since keyshift promotes its own copy of the pending value, the
//! kid changes at the copy: the tokens and ciphertexts under the copy's kid must work
//! everywhere, and they do; the one-step control fails them. Key bytes come from the
//! operating system's generator and decide nothing: a seed's schedule is the same
//! whatever its secret holds, and a seed replays exactly.
//!
//! Layout: [`clock`] (virtual time, task polling), [`ports`] (the store behind a latency
//! and the engine's interception of writes, the scheduler model, the target and its
//! downstream services), [`fleet`] (consumers, each running the real `keyshift-client`
//! window cache on the virtual clock), [`keys`] (the real operations of the key
//! secrets), [`checker`] (invariants, gaps, revocation),
//! [`scenario`] (what a seed means: fault class, engine behaviours, timing, the operator's
//! request), [`world`] (the event loop; its delivery model, fleet operations and
//! checks in submodules), [`engine`] (the engine and operator models), [`faults`] (the
//! fault injector), [`requests`] (the operator's emergencyRotate,
//! cancel and redrive through the real `Executor::operate`, and what an emergency may
//! cost the consumers: by-design failures only, healed within one round trip),
//! [`control`] (the one-step rotation that must fail), [`report`] (tallies). A failing
//! seed replays exactly: same seed, same flags, same run.

pub mod checker;
pub mod clock;
pub mod control;
pub mod engine;
pub mod faults;
pub mod fleet;
pub mod keys;
pub mod ports;
pub mod report;
pub mod requests;
pub mod scenario;
pub mod world;

pub use report::Summary;
pub use scenario::{
    BehaviourPins, CopyAbandons, EngineBehaviours, FaultClass, OperatorAction, RequestKind, RequestPhase,
    RequestPin, RequestPlan, RetryReattach, Scenario, SecretKind, Selection, Strategy, Switch,
};
pub use world::{Hits, RunResult, run_seed, run_world};

/// One unit of work: a single-secret seed, or a many-secrets world.
#[derive(Debug, Clone)]
pub enum Job {
    /// One secret (boxed: a scenario is far larger than a world's vector).
    Single(Box<Scenario>),
    /// Many secrets through one executor.
    World(Vec<Scenario>),
}

/// Runs `jobs` on `threads` threads; returns the tally and the results that failed, in
/// job order.
pub fn run_jobs(jobs: Vec<Job>, threads: usize) -> (Summary, Vec<RunResult>) {
    let threads = threads.max(1);
    let jobs: Vec<(usize, Job)> = jobs.into_iter().enumerate().collect();
    let mut results: Vec<(usize, Vec<RunResult>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<(usize, Job)> =
                    jobs.iter().filter(|(i, _)| i % threads == t).cloned().collect();
                scope.spawn(move || {
                    mine.into_iter()
                        .map(|(i, job)| {
                            let out = match job {
                                Job::Single(sc) => vec![run_seed(*sc, false)],
                                Job::World(scs) => run_world(scs, false),
                            };
                            (i, out)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("a simulation thread panicked"))
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    for r in results.into_iter().flat_map(|(_, rs)| rs) {
        summary.add(&r);
        if !r.ok() {
            failures.push(r);
        }
    }
    (summary, failures)
}

/// Seeds `first..first + count`, each picking its class and engine behaviours (see
/// [`scenario`]) unless `sel` pins them.
pub fn seed_jobs(first: u64, count: u64, sel: &Selection) -> Vec<Job> {
    (first..first + count)
        .map(|s| Job::Single(Box::new(Scenario::from_seed(s, sel))))
        .collect()
}

/// The same seeds once for every engine-behaviour combination that agrees with `sel`'s
/// pins (every switch pinned per run).
pub fn matrix_jobs(first: u64, count: u64, sel: &Selection) -> Vec<Job> {
    EngineBehaviours::every()
        .filter(|b| sel.pins.apply(*b) == *b)
        .flat_map(|b| {
            let pinned = Selection {
                pins: BehaviourPins::all(b),
                ..*sel
            };
            (first..first + count).map(move |s| Job::Single(Box::new(Scenario::from_seed(s, &pinned))))
        })
        .collect()
}

/// Many-secrets worlds `first..first + count`, each of `secrets` secrets.
pub fn world_jobs(first: u64, count: u64, secrets: usize, sel: &Selection) -> Vec<Job> {
    (first..first + count)
        .map(|s| Job::World(Scenario::world(s, secrets, sel)))
        .collect()
}

/// Runs seeds `first..first + count` on `threads` threads (see [`seed_jobs`]).
pub fn run_many(first: u64, count: u64, sel: &Selection, threads: usize) -> (Summary, Vec<RunResult>) {
    run_jobs(seed_jobs(first, count, sel), threads)
}

/// The command line that replays `r` (one seed or one world, with its trace). A world's
/// secrets draw their behaviours from the world's seed: `world_flags` are the pins the
/// world ran with.
pub fn replay_command(r: &RunResult, world_flags: &str) -> String {
    let sc = &r.scenario;
    let mut cmd = format!("cargo run --release -p keyshift-sim -- --seed {}", sc.seed);
    if sc.world_secrets > 1 {
        cmd.push_str(&format!(" --secrets {}", sc.world_secrets));
        if !world_flags.is_empty() {
            cmd.push(' ');
            cmd.push_str(world_flags);
        }
        return cmd;
    }
    cmd.push_str(&format!(" --class {} {}", sc.class.name(), sc.behaviours.flags()));
    if sc.behaviours.operator {
        cmd.push_str(&format!(" --operator-action {}", sc.operator_action.name()));
    }
    if sc.strategy == Strategy::OneStep {
        cmd.push_str(" --control");
    }
    if sc.replica_lag.is_some() {
        cmd.push_str(" --replicas");
    }
    cmd.push_str(&format!(" --kind {}", sc.kind.name()));
    match &sc.request {
        Some(plan) => cmd.push_str(&format!(
            " --request {} --request-phase {}",
            plan.kind.name(),
            plan.phase.name()
        )),
        None if sc.strategy == Strategy::Keyshift => cmd.push_str(" --request none"),
        None => {}
    }
    if !sc.refresh_on_miss && sc.strategy == Strategy::Keyshift {
        cmd.push_str(" --refresh-on-miss off");
    }
    cmd
}
