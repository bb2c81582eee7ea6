//! The local tier on the embedded default: typed hits without the backend,
//! and removals and flushes seen at once.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use memocache::{cache_remove, cached};

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "local-mem", local_ttl = "1m")]
fn price(sku: u32) -> u64 {
    RUNS.fetch_add(1, SeqCst);
    u64::from(sku) * 100
}

#[cache_remove(price(sku))]
fn reprice(sku: u32) {
    let _ = sku;
}

#[test]
fn local_hits_skip_the_backend_and_invalidations_reach_them() {
    assert_eq!(price(1), 100);
    let before = memocache::stats();
    for _ in 0..100 {
        assert_eq!(price(1), 100);
    }
    let after = memocache::stats();
    assert_eq!(RUNS.load(SeqCst), 1);
    // At least: the other test of this binary adds local hits of its own.
    assert!(
        after.local_hits - before.local_hits >= 100,
        "{before:?} -> {after:?}"
    );

    reprice(1);
    assert_eq!(price(1), 100);
    assert_eq!(RUNS.load(SeqCst), 2, "the removal reached the local tier");

    memocache::flush_namespace_blocking("local-mem").unwrap();
    assert_eq!(price(1), 100);
    assert_eq!(RUNS.load(SeqCst), 3, "the flush reached the local tier");

    // Priming replaces the local copy too.
    price_prime(1, &777).unwrap();
    assert_eq!(price(1), 777);
    assert_eq!(RUNS.load(SeqCst), 3);
}

static PLAIN_RUNS: AtomicUsize = AtomicUsize::new(0);

/// No `local_ttl`: on the in-process backend, hits are typed all the same.
#[cached(namespace = "local-mem-plain")]
fn plain(id: u32) -> Vec<u32> {
    PLAIN_RUNS.fetch_add(1, SeqCst);
    vec![id; 3]
}

#[test]
fn in_process_backend_hits_are_typed() {
    assert_eq!(plain(1), [1, 1, 1]);
    let before = memocache::stats();
    assert_eq!(plain(1), [1, 1, 1]);
    assert!(memocache::stats().local_hits > before.local_hits);
    assert_eq!(PLAIN_RUNS.load(SeqCst), 1);
}
