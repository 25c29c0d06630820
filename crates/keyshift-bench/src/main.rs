//! `keyshift-bench`: prints the hot-path figures of both caches, their ratio, and the
//! AWS requests per hour each makes for one secret (formula and measured count).

use std::time::{Duration, Instant};

use keyshift_bench::aws;
use keyshift_bench::world::World;

const BATCHES: usize = 15;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let world = World::start().await?;
    let v1 = world.create_secret("bench/hot", "{\"k\":\"v1\"}").await?;
    let theirs = aws::cache(&world.counted, aws::DEFAULT_TTL)?;
    let ops = 200_000;
    let cur = aws::time_hits(&theirs, "bench/hot", aws::Lookup::Current, &v1, BATCHES, ops).await?;
    let ver = aws::time_hits(&theirs, "bench/hot", aws::Lookup::Version(&v1), &v1, BATCHES, ops).await?;
    println!("aws_secretsmanager_caching hit, current:    {}", cur.summary(ops));
    println!("aws_secretsmanager_caching hit, by version: {}", ver.summary(ops));

    world.create_secret("bench/window", "{\"k\":\"w1\"}").await?;
    let ttl = Duration::from_secs(1);
    let run = Duration::from_secs(5);
    let theirs = aws::cache(&world.counted, ttl)?;
    let log = aws::read_until(
        &theirs,
        "bench/window",
        &aws::WINDOW,
        Duration::from_millis(100),
        Instant::now() + run,
    )
    .await;
    println!("{log:?} {:?}", world.proxy.counts_for("bench/window"));
    Ok(())
}
