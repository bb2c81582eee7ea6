//! Redis going away mid-run: cached calls still return correct values, and
//! once the breaker is open they stop waiting for Redis at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memocache_runtime::{BreakerState, Cache, Config, Manager};
use memocache_testkit::RedisServer;

const BUDGET: Duration = Duration::from_millis(100);

fn manager(server: &RedisServer) -> Arc<Manager> {
    let config = Config::builder()
        .url(server.url())
        .prefix("outage")
        .budget(BUDGET)
        .connect_timeout(BUDGET)
        .breaker(3, Duration::from_millis(300))
        .build()
        .unwrap();
    Arc::new(Manager::new(config).unwrap())
}

/// Runs `n` calls and returns the slowest; every result must be right.
async fn calls(c: &Cache<u64, u64>, n: u64) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let key = i % 10;
        let started = Instant::now();
        let v = c.get_or_set(&key, || async move { key * 2 }).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(v, key * 2, "wrong value for {key}");
    }
    slowest
}

async fn wait_for_hits(m: &Manager, c: &Cache<u64, u64>) {
    for _ in 0..100 {
        let before = m.stats().hits;
        calls(c, 20).await;
        if m.stats().hits >= before + 10 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("hits never resumed: {:?}", m.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_costs_at_most_the_budget_then_nothing() {
    let mut server = RedisServer::start();
    let m = manager(&server);
    let c: Cache<u64, u64> = Cache::with_manager(m.clone(), "math", "double").unwrap();
    calls(&c, 20).await;
    assert!(m.stats().hits >= 10, "warm: {:?}", m.stats());

    server.stop();
    let started = Instant::now();
    let slowest = calls(&c, 200).await;
    println!(
        "killed redis: 200 calls in {:?}, slowest {slowest:?}",
        started.elapsed()
    );
    assert!(
        slowest < BUDGET * 3,
        "a call waited {slowest:?} with the budget at {BUDGET:?}"
    );
    assert_eq!(m.health().await.breaker, Some(BreakerState::Open));
    assert!(m.stats().errors >= 3, "{:?}", m.stats());

    server.restart();
    wait_for_hits(&m, &c).await;
    assert_eq!(m.health().await.breaker, Some(BreakerState::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_redis_costs_at_most_the_budget_then_nothing() {
    let server = RedisServer::start();
    let m = manager(&server);
    let c: Cache<u64, u64> = Cache::with_manager(m.clone(), "math", "double").unwrap();
    calls(&c, 20).await;

    server.pause();
    let started = Instant::now();
    let slowest = calls(&c, 100).await;
    let total = started.elapsed();
    server.resume();
    println!("frozen redis: 100 calls in {total:?}, slowest {slowest:?}, budget {BUDGET:?}");
    assert!(
        slowest < BUDGET * 3,
        "a call waited {slowest:?} with the budget at {BUDGET:?}"
    );
    // Three calls wait out the budget before the breaker opens; the other
    // 97 (with at most one probe per cool-down) skip Redis.
    assert!(
        total < BUDGET * 20,
        "100 calls against a frozen Redis took {total:?}"
    );
    wait_for_hits(&m, &c).await;
}

/// Redis is killed under a concurrent load and restarted: zero wrong results,
/// no call over the budget (plus scheduling slack), near-zero cost while the
/// breaker is open, and hits again after the restart, in the same process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_under_concurrent_load_then_restarted() {
    let mut server = RedisServer::start();
    let m = manager(&server);
    let c: Cache<u64, u64> = Cache::with_manager(m.clone(), "load", "double").unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let (c, m, stop) = (c.clone(), m.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            // (latency, breaker open before the call)
            let mut samples = Vec::new();
            let mut i = t;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = i % 50;
                let open = m.health_breaker() == Some(BreakerState::Open);
                let started = Instant::now();
                let v = c.get_or_set(&key, || async move { key * 2 }).await;
                samples.push((started.elapsed(), open));
                assert_eq!(v, key * 2, "wrong value for {key}");
                i += 16;
                tokio::task::yield_now().await;
            }
            samples
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.restart();
    let restarted = m.stats();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let after = m.stats();
    assert!(
        after.hits > restarted.hits + 100,
        "hits did not resume: {restarted:?} -> {after:?}"
    );
    let slowest = all.iter().map(|(d, _)| *d).max().unwrap();
    assert!(
        slowest < BUDGET * 3,
        "a call took {slowest:?}; budget {BUDGET:?}"
    );
    let mut open: Vec<Duration> = all.iter().filter(|(_, o)| *o).map(|(d, _)| *d).collect();
    open.sort();
    assert!(
        open.len() > 100,
        "the breaker never opened under load ({} calls)",
        open.len()
    );
    let p50 = open[open.len() / 2];
    println!(
        "outage under load: {} calls, slowest {slowest:?}, {} calls with the breaker open, p50 {p50:?}, p99 {:?}",
        all.len(),
        open.len(),
        open[open.len() * 99 / 100]
    );
    assert!(
        p50 < Duration::from_millis(5),
        "open-breaker calls are not cheap: p50 {p50:?}"
    );
}
