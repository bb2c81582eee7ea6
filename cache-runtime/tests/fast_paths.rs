//! Distributed compute locks and early refresh (XFetch).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use memocache_runtime::backend::Expect;
use memocache_runtime::key::{EntryKey, Name};
use memocache_runtime::{Cache, Manager};
use memocache_testkit::{shared, unique};

/// Four managers stand for four processes: each has its own generations,
/// flights and connection; only Redis is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_one_cold_key_one_computation() {
    let prefix = unique("lock");
    let managers: Vec<Arc<Manager>> = (0..4)
        .map(|_| common::redis_at(&shared().url(), &prefix))
        .collect();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for m in &managers {
        let c: Cache<u64, u64> = Cache::with_manager(m.clone(), "report", "daily")
            .unwrap()
            .with_lock(Duration::from_secs(5))
            .unwrap();
        for _ in 0..10 {
            let (c, runs) = (c.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_set(&2026, || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    42
                })
                .await
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 42);
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "one computation across 4 processes"
    );
    let locks = shared().keys(&format!("{prefix}:report:"));
    assert!(
        locks.iter().all(|k| !k.ends_with(":lock")),
        "lock left behind: {locks:?}"
    );
}

/// A holder that died leaves its lock: others wait at most the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lock_holder_costs_at_most_its_lease() {
    let m = common::redis();
    let lease = Duration::from_millis(400);
    let c: Cache<u64, u64> = Cache::with_manager(m.clone(), "report", "weekly")
        .unwrap()
        .with_lock(lease)
        .unwrap();
    let digest = m.hasher().digest(&7u64).unwrap();
    let entry = EntryKey::new(Name::new("report").unwrap(), "weekly", None, digest);
    let full = m.read(&entry).await.unwrap().full_key;
    let dead = Bytes::from_static(b"a-holder-that-died");
    assert!(m
        .backend()
        .set_if(&format!("{full}:lock"), dead, Some(lease), &Expect::Absent)
        .await
        .unwrap());
    let started = Instant::now();
    let v = c.get_or_set(&7, || async { 7 }).await;
    let waited = started.elapsed();
    assert_eq!(v, 7);
    assert!(
        waited >= lease / 2,
        "did not wait for the holder: {waited:?}"
    );
    assert!(
        waited < lease * 3,
        "waited {waited:?} for a lease of {lease:?}"
    );
}

/// Under steady load on a key whose TTL runs out, XFetch refreshes it
/// before it expires: while one caller recomputes, the others keep hitting.
/// Without it, every caller misses at once at each expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refresh_keeps_callers_from_missing_at_once() {
    let with = max_blocked_at_once(true).await;
    let without = max_blocked_at_once(false).await;
    println!("callers blocked at once: {with} with early refresh, {without} without");
    assert!(
        without >= 4,
        "the test load does not expose the stampede ({without})"
    );
    assert!(
        with <= 2,
        "{with} callers waited at once despite early refresh"
    );
}

async fn max_blocked_at_once(early: bool) -> usize {
    let m = common::memory();
    let mut c: Cache<u64, u64> = Cache::with_manager(m, "hot", "key")
        .unwrap()
        .with_ttl(Duration::from_millis(400))
        .unwrap();
    if early {
        c = c.with_early_refresh(1.0).unwrap();
    }
    let compute = Duration::from_millis(80);
    c.get_or_set(&1, || async move {
        tokio::time::sleep(compute).await;
        1
    })
    .await;
    let origin = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut blocked = Vec::new();
            while origin.elapsed() < Duration::from_millis(2000) {
                let start = origin.elapsed();
                c.get_or_set(&1, || async move {
                    tokio::time::sleep(compute).await;
                    1
                })
                .await;
                let end = origin.elapsed();
                if end - start >= compute / 2 {
                    blocked.push((start, end));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            blocked
        }));
    }
    let mut intervals = Vec::new();
    for t in tasks {
        intervals.extend(t.await.unwrap());
    }
    println!("{}", timeline(early, &intervals));
    // The most blocked calls overlapping any one instant.
    intervals
        .iter()
        .map(|(s, _)| intervals.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}

/// The timeline of blocked calls: one column per 50 ms, the number of calls
/// that started blocking in it (`.` for none). TTL 400 ms.
fn timeline(early: bool, intervals: &[(Duration, Duration)]) -> String {
    let mut columns = vec![0usize; 40];
    for (start, _) in intervals {
        if let Some(c) = columns.get_mut((start.as_millis() / 50) as usize) {
            *c += 1;
        }
    }
    let row: String = columns
        .iter()
        .map(|&n| match n {
            0 => '.',
            n if n < 10 => char::from_digit(n as u32, 10).unwrap_or('+'),
            _ => '+',
        })
        .collect();
    let label = if early {
        "with early refresh"
    } else {
        "without"
    };
    format!("blocked calls per 50 ms, {label:>18}: {row}")
}
