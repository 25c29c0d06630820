//! Deterministic simulation of keyshift rotations.
//!
//! A seeded, single-threaded, discrete-event world in virtual time: the in-memory
//! Secrets Manager ([`keyshift::memory`]), a model of the rotation engine, a model of
//! EventBridge Scheduler and Lambda's asynchronous delivery, and a fleet of consumers
//! following the consumer contract, with faults injected by class. Invocations are
//! keyshift's real [`keyshift::Executor`], polled as tasks whose only waits are on the
//! virtual clock.
//!
//! Layout: [`clock`] (virtual time, task polling), [`ports`] (the store behind a latency,
//! the scheduler model, the target and its downstream service), [`fleet`] (consumers, each
//! running the real `keyshift-client` window cache on the virtual clock),
//! [`checker`] (invariants and gaps), [`scenario`] (what a seed means), [`world`] (the
//! event loop, engine and delivery models), [`control`] (the one-step rotation that must
//! fail), [`report`] (tallies). A failing seed replays exactly: same seed, same run.

pub mod checker;
pub mod clock;
pub mod control;
pub mod fleet;
pub mod ports;
pub mod report;
pub mod scenario;
pub mod world;

pub use report::Summary;
pub use scenario::{FaultClass, Scenario, Strategy};
pub use world::{RunResult, run_seed};

/// Runs seeds `first..first + count` on `threads` threads; returns the tally and the
/// runs that failed, in seed order.
pub fn run_many(
    first: u64,
    count: u64,
    class: Option<FaultClass>,
    strategy: Strategy,
    threads: usize,
) -> (Summary, Vec<RunResult>) {
    let threads = threads.max(1) as u64;
    let mut results: Vec<RunResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (first..first + count)
                        .filter(|s| (s - first) % threads == t)
                        .map(|s| run_seed(Scenario::from_seed(s, class, strategy), false))
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
    results.sort_by_key(|r| r.scenario.seed);
    let mut summary = Summary::default();
    for r in &results {
        summary.add(r);
    }
    results.retain(|r| !r.ok());
    (summary, results)
}
