//! The first thing to run: a slow function turns fast, a namespace flush
//! makes it compute again.
//!
//! ```text
//! cargo run --example quickstart                                   # in process memory
//! MEMOCACHE_URL=redis://127.0.0.1:6379 cargo run --example quickstart  # through Redis
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use memocache::cached;

/// Stands for an expensive query or remote call. `#[cached]` keeps its
/// results under `memocache:quickstart:<generation>:quickstart::slow_square:<digest of n>`.
#[cached(namespace = "quickstart", ttl = "10m")]
async fn slow_square(n: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    n * n
}

/// Runs `call`, then says whether it was a hit or a miss and how long it took.
async fn timed(label: &str, call: impl Future<Output = u64>) -> u64 {
    let hits_before = memocache::stats().hits;
    let started = Instant::now();
    let value = call.await;
    let took = started.elapsed();
    let outcome = if memocache::stats().hits > hits_before {
        "hit "
    } else {
        "miss"
    };
    println!("{label:<22} {outcome}  value={value}  took {took:>10.2?}");
    value
}

#[tokio::main]
async fn main() -> Result<(), memocache::Error> {
    // Reads MEMOCACHE_URL (memory:// when unset) and reports a bad setting.
    memocache::init_from_env()?;
    let config = memocache::global().config();
    println!("backend: {}, key prefix: {}", config.backend, config.prefix);

    timed("first call", slow_square(12)).await;
    timed("second call", slow_square(12)).await;

    memocache::flush_namespace("quickstart").await?;
    println!("flushed namespace `quickstart`");

    timed("after the flush", slow_square(12)).await;
    timed("and again", slow_square(12)).await;

    let health = memocache::health().await;
    println!(
        "health: {} ok={} latency {:.2?}; stats: {:?}",
        health.backend,
        health.ok,
        health.latency,
        memocache::stats()
    );
    Ok(())
}
