//! `keyshift-bench`: one run, one machine. Prints the hot-path figures of keyshift-client
//! and of `aws_secretsmanager_caching` (cache hits, no AWS call), their ratio, and the
//! AWS requests per hour each makes for one secret: the formula from each library's
//! defaults, beside the requests counted on the wire in a scaled-down run against
//! moto's server.
//!
//! Run it with `make bench`, or:
//! `cargo run --release -p keyshift-bench --features aws-caching`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use keyshift_bench::calls::{Calls, mean, per, thousands};
use keyshift_bench::timing::{Samples, ratios};
use keyshift_bench::world::World;
use keyshift_bench::{aws, ours};
use keyshift_client::Config;

/// Timed batches per figure.
const BATCHES: usize = 15;
/// Lookups per batch: keyshift's are ~10 ns, theirs ~200 ns; each batch is ~20-40 ms.
const OURS_OPS: u64 = 2_000_000;
const THEIRS_OPS: u64 = 200_000;

/// The scaled-down run: two phases of this length...
const PHASE: Duration = Duration::from_secs(10);
/// ...with every reader looking up this often...
const EVERY: Duration = Duration::from_millis(100);
/// ...their TTL scaled from 300 s to this...
const THEIR_TTL: Duration = Duration::from_secs(1);
/// ...and keyshift's refresh interval scaled to this jitter range (T = 10 s).
const OUR_REFRESH: (Duration, Duration) = (Duration::from_millis(500), Duration::from_millis(1000));
const OUR_GAP: Duration = Duration::from_secs(10);
/// T for keyshift's default refresh interval in the per-hour figures: any T of at
/// least 602 s gives the default's cap, [150 s, 300 s].
const DEFAULT_GAP: Duration = Duration::from_secs(900);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let world = World::start().await?;
    println!(
        "keyshift-bench: moto's server on 127.0.0.1 behind a counting proxy; {} CPUs; release build",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    hot_path(&world).await?;
    calls_per_hour(&world).await?;
    Ok(())
}

async fn hot_path(world: &World) -> Result<(), Box<dyn std::error::Error>> {
    let v1 = world.create_secret("bench/hot", "{\"k\":\"v1\"}").await?;
    let ks = ours::start(&world.counted, "bench/hot", ours::default_config(DEFAULT_GAP)?).await?;
    ours::check(&ks, &v1)?;
    let theirs = aws::cache(&world.counted, aws::DEFAULT_TTL)?;
    let (current, by_id) = (aws::Lookup::Current, aws::Lookup::Version(&v1));
    aws::prime(&theirs, "bench/hot", current, &v1).await?;
    aws::prime(&theirs, "bench/hot", by_id, &v1).await?;

    // Batches interleaved (ours, theirs, ours, theirs) so that both libraries see the
    // same load on a shared machine; the first round warms up and is dropped.
    let mut runs: [Vec<Duration>; 4] = Default::default();
    for round in 0..=BATCHES {
        let batch = [
            ours::batch_current(&ks, OURS_OPS),
            aws::batch(&theirs, "bench/hot", current, THEIRS_OPS).await?,
            ours::batch_accepted(&ks, &v1, OURS_OPS),
            aws::batch(&theirs, "bench/hot", by_id, THEIRS_OPS).await?,
        ];
        if round > 0 {
            for (run, d) in runs.iter_mut().zip(batch) {
                run.push(d);
            }
        }
    }
    let [ks_current, aws_current, ks_version, aws_version] = [
        Samples::from_batches(&runs[0], OURS_OPS),
        Samples::from_batches(&runs[1], THEIRS_OPS),
        Samples::from_batches(&runs[2], OURS_OPS),
        Samples::from_batches(&runs[3], THEIRS_OPS),
    ];

    println!();
    println!("1. Hot path: one lookup served from memory (no AWS call); {BATCHES} interleaved batches each");
    println!("   value to use (AWSCURRENT)");
    println!(
        "     keyshift-client   current()                      {}",
        ks_current.summary(OURS_OPS)
    );
    println!(
        "     aws_smc 2.1.0     get_secret_value(id,None,None) {}",
        aws_current.summary(THEIRS_OPS)
    );
    println!("   accepted version by id");
    println!(
        "     keyshift-client   accepted_version(id)           {}",
        ks_version.summary(OURS_OPS)
    );
    println!(
        "     aws_smc 2.1.0     get_secret_value(id,Some(v),_) {}",
        aws_version.summary(THEIRS_OPS)
    );
    let (r1, r2) = (
        ratios(&ks_current, &aws_current),
        ratios(&ks_version, &aws_version),
    );
    println!("   ratio, theirs / ours (median of the per-batch ratios, min to max):");
    println!(
        "     value to use {:.1}x ({:.1} to {:.1}); by version id {:.1}x ({:.1} to {:.1}); target >= 10x: {}",
        r1.median(),
        r1.min(),
        r1.max(),
        r2.median(),
        r2.min(),
        r2.max(),
        if r1.median() >= 10.0 && r2.median() >= 10.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

/// One reader of one secret in the scaled run.
struct Reader {
    name: &'static str,
    secret: &'static str,
    /// Lookup rounds so far (one round reads every stage the reader reads).
    rounds: Arc<AtomicU64>,
}

/// The proxy's counts and the readers' rounds at one instant.
struct Snapshot {
    counts: Vec<BTreeMap<String, u64>>,
    rounds: Vec<u64>,
}

impl Snapshot {
    fn take(world: &World, readers: &[Reader]) -> Snapshot {
        Snapshot {
            counts: readers.iter().map(|r| world.proxy.counts_for(r.secret)).collect(),
            rounds: readers.iter().map(|r| r.rounds.load(Ordering::Relaxed)).collect(),
        }
    }
}

async fn calls_per_hour(world: &World) -> Result<(), Box<dyn std::error::Error>> {
    let reader = |name, secret| Reader {
        name,
        secret,
        rounds: Arc::default(),
    };
    let readers = [
        reader("aws_smc, AWSCURRENT only", "bench/aws-current"),
        reader("aws_smc, window (3 stages)", "bench/aws-window"),
        reader("keyshift-client", "bench/keyshift"),
    ];
    for r in &readers {
        world.create_secret(r.secret, "{\"k\":\"v1\"}").await?;
    }
    let end = Instant::now() + PHASE * 2 + EVERY * 5;

    // Their readers: one cache each, primed (first read of each stage) before counting.
    let mut tasks = Vec::new();
    for (r, stages) in readers.iter().zip([&aws::WINDOW[..1], &aws::WINDOW[..]]) {
        let cache = aws::cache(&world.counted, THEIR_TTL)?;
        aws::read_once(&cache, r.secret, stages).await;
        let (secret, rounds) = (r.secret, Arc::clone(&r.rounds));
        tasks.push(tokio::spawn(async move {
            aws::read_until(&cache, secret, stages, EVERY, end, &rounds).await;
        }));
    }
    // Ours: started (first refresh) before counting; its refresher runs on its own.
    let config = Config::builder(OUR_GAP)
        .refresh(OUR_REFRESH.0, OUR_REFRESH.1)
        .build()?;
    let ks = Arc::new(ours::start(&world.counted, readers[2].secret, config).await?);
    {
        let (ks, rounds) = (Arc::clone(&ks), Arc::clone(&readers[2].rounds));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            while Instant::now() < end {
                tick.tick().await;
                let _ = std::hint::black_box((ks.current(), ks.accepted()));
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let start = Snapshot::take(world, &readers);
    tokio::time::sleep(PHASE).await;
    let middle = Snapshot::take(world, &readers);
    for r in &readers {
        world.put_pending(r.secret, "{\"k\":\"v2\"}").await?;
    }
    tokio::time::sleep(PHASE).await;
    let finish = Snapshot::take(world, &readers);
    for t in tasks {
        t.await?;
    }
    report(&readers, [&start, &middle, &finish], &ks.config());
    Ok(())
}

fn report(readers: &[Reader], [start, middle, finish]: [&Snapshot; 3], ours: &Config) {
    let hour = Duration::from_secs(3600);
    let our_default = ours::default_config(DEFAULT_GAP).map(|c| (c.refresh_min(), c.refresh_max()));
    let (dmin, dmax) = our_default.unwrap_or((Duration::ZERO, Duration::ZERO));
    let their_per_hour = per(hour, aws::DEFAULT_TTL);
    let our_per_hour = per(hour, mean(dmin, dmax));
    println!();
    println!("2. AWS requests per hour for one secret, at each library's defaults");
    println!(
        "   aws_smc: TTL {} s (their README and Agent default); an entry per (secret, version id, stage), \
         refreshed on the first read after its TTL by DescribeSecret, plus GetSecretValue if the stage moved; \
         a stage no version carries is not cached (ResourceNotFound is returned, not stored)",
        aws::DEFAULT_TTL.as_secs()
    );
    println!(
        "   keyshift-client: Config::new(T) for T >= 602 s (here {} s): refresh every [{:.1} s, {:.1} s] \
         (uniform), one DescribeSecret each, GetSecretValue once per new version id",
        DEFAULT_GAP.as_secs(),
        dmin.as_secs_f64(),
        dmax.as_secs_f64()
    );
    println!(
        "   formula, per hour (L = window reads per hour, V = new version ids per hour; a keyshift rotation \
         writes two: the engine's version and keyshift's copy of its value):"
    );
    println!(
        "     aws_smc, AWSCURRENT only     3600/{} = {} DescribeSecret + 1 GetSecretValue per move of AWSCURRENT",
        aws::DEFAULT_TTL.as_secs(),
        thousands(their_per_hour)
    );
    println!(
        "     aws_smc, window (3 stages)   only AWSCURRENT present: {} DescribeSecret + 2 x L GetSecretValue \
         (L = 3600, one read a second: {})",
        thousands(their_per_hour),
        thousands(2.0 * 3600.0)
    );
    println!(
        "                                  AWSPENDING or ROTATING also present: {} DescribeSecret + L + V GetSecretValue",
        thousands(2.0 * their_per_hour)
    );
    println!(
        "     keyshift-client              3600/{:.0} = {} DescribeSecret + V GetSecretValue, whatever L",
        mean(dmin, dmax).as_secs_f64(),
        thousands(our_per_hour)
    );

    let (tmin, tmax) = (ours.refresh_min(), ours.refresh_max());
    println!();
    println!(
        "   measured: requests counted on the wire (a proxy in front of moto), scaled down: their TTL {} s, \
         our refresh [{:.1} s, {:.1} s], one read round every {} ms, two phases of {} s",
        THEIR_TTL.as_secs_f64(),
        tmin.as_secs_f64(),
        tmax.as_secs_f64(),
        EVERY.as_millis(),
        PHASE.as_secs()
    );
    println!("   phase A: only AWSCURRENT; phase B: a new version written as AWSPENDING at its start");
    println!(
        "   {:<28} {:>6}  {:>22}  {:>22}",
        "reader", "rounds", "DescribeSecret exp/got", "GetSecretValue exp/got"
    );
    // Their refresh happens at the first read after the TTL: every TTL + one read period.
    let their_refreshes = per(PHASE, THEIR_TTL + EVERY);
    let our_refreshes = per(PHASE, mean(tmin, tmax));
    for (i, r) in readers.iter().enumerate() {
        for (phase, (a, b)) in [("A", (start, middle)), ("B", (middle, finish))] {
            let got = Calls::between(&a.counts[i], &b.counts[i]);
            let rounds = b.rounds[i] - a.rounds[i];
            let (describe, get) = match (i, phase) {
                (0, _) => (their_refreshes, 0.0),
                (1, "A") => (their_refreshes, 2.0 * rounds as f64),
                (1, _) => (2.0 * their_refreshes, 1.0 + rounds as f64),
                (_, "A") => (our_refreshes, 0.0),
                (_, _) => (our_refreshes, 1.0),
            };
            let line = format!(
                "   {:<26} {phase} {:>6}  {:>10.1} / {:<9}  {:>10.0} / {:<9}{}",
                r.name,
                rounds,
                describe,
                got.describe,
                get,
                got.get_value,
                if got.other > 0 {
                    format!(" (+{} other)", got.other)
                } else {
                    String::new()
                }
            );
            println!("{}", line.trim_end());
        }
    }
    println!(
        "   (exp: aws_smc refreshes at the first read after its TTL, so every TTL + {} ms here; \
         keyshift's refresher runs on its own jittered timer whether or not anyone reads)",
        EVERY.as_millis()
    );
}
