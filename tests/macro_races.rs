//! `#[cache_remove]` and namespace flushes racing `#[cached]` computations
//! and reads, over many iterations: no read that starts after an
//! invalidation completed returns a value computed before it started.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use memocache::{cache_remove, cached};

/// How many invalidations had started when a computation began.
static STARTED: AtomicU64 = AtomicU64::new(0);
static COMPLETED: AtomicU64 = AtomicU64::new(0);

#[cached(namespace = "race-macros", ttl = "10m")]
async fn tagged(key: u32) -> u64 {
    let tag = STARTED.load(SeqCst);
    if key.is_multiple_of(2) {
        tokio::task::yield_now().await;
    }
    tag
}

#[cache_remove(tagged(key))]
async fn invalidate(key: u32) {
    let _ = key;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_racing_computations_never_leave_stale_values() {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for t in 0..6u32 {
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            let mut i = t;
            while !stop.load(SeqCst) {
                let key = i % 3;
                let done_before = COMPLETED.load(SeqCst);
                let computed_after = tagged(key).await;
                assert!(
                    computed_after >= done_before,
                    "read after {done_before} invalidations got a value computed after only {computed_after} had started"
                );
                reads += 1;
                i += 1;
                // Memory-backend hits never wait: let the invalidator run.
                tokio::task::yield_now().await;
            }
            reads
        }));
    }
    for n in 0..300u32 {
        tokio::time::sleep(Duration::from_micros(300)).await;
        STARTED.fetch_add(1, SeqCst);
        if n.is_multiple_of(3) {
            memocache::flush_namespace("race-macros").await.unwrap();
        } else {
            // Invalidating one key is complete for that key only: remove
            // them all so that the counter's meaning holds for every key.
            for key in 0..3 {
                invalidate(key).await;
            }
        }
        COMPLETED.fetch_add(1, SeqCst);
    }
    stop.store(true, SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(
        reads > 1000,
        "too few reads raced the invalidations: {reads}"
    );
}
