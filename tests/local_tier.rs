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
    assert_eq!(
        after.local_hits - before.local_hits,
        100,
        "{before:?} -> {after:?}"
    );

    reprice(1);
    assert_eq!(price(1), 100);
    assert_eq!(RUNS.load(SeqCst), 2, "the removal reached the local tier");

    memocache::flush_namespace_blocking("local-mem").unwrap();
    assert_eq!(price(1), 100);
    assert_eq!(RUNS.load(SeqCst), 3, "the flush reached the local tier");
}
