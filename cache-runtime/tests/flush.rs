//! Namespace flushes and removals: instant, isolated, and race-free.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memocache_runtime::{Cache, Manager};
use tokio::sync::Notify;

fn cache(m: &Arc<Manager>, ns: &str) -> Cache<u64, String> {
    Cache::with_manager(m.clone(), ns, "v").unwrap()
}

async fn flush_hides_everything_at_once(m: Arc<Manager>) {
    let c = cache(&m, "catalog");
    for i in 0..100 {
        c.set(&i, &format!("v{i}")).await.unwrap();
    }
    m.flush_namespace("catalog").await.unwrap();
    for i in 0..100 {
        assert_eq!(
            c.get(&i).await.unwrap(),
            None,
            "entry {i} survived the flush"
        );
    }
    let v = c
        .get_or_set(&1, || async { "recomputed".to_string() })
        .await;
    assert_eq!(v, "recomputed");
}
both_backends!(flush_hides_everything_at_once);

async fn flushing_user_leaves_lookalikes(m: Arc<Manager>) {
    let names = ["user", "users", "user_x", "user.x", "use", "auser"];
    for ns in names {
        cache(&m, ns).set(&1, &ns.to_string()).await.unwrap();
    }
    m.flush_namespace("user").await.unwrap();
    assert_eq!(cache(&m, "user").get(&1).await.unwrap(), None);
    for ns in &names[1..] {
        assert_eq!(
            cache(&m, ns).get(&1).await.unwrap().as_deref(),
            Some(*ns),
            "flushing `user` touched `{ns}`"
        );
    }
}
both_backends!(flushing_user_leaves_lookalikes);

async fn bad_namespaces_are_rejected(m: Arc<Manager>) {
    for bad in [
        "",
        "a:b",
        "a*",
        "use?",
        "[ab]",
        "a b",
        "ns\n",
        &"n".repeat(65),
    ] {
        let e = m.flush_namespace(bad).await.unwrap_err();
        assert!(e.is_invalid_input(), "{bad:?}: {e}");
    }
}
both_backends!(bad_namespaces_are_rejected);

/// What invalidates the entry of a computation in flight.
#[derive(Clone, Copy)]
enum Invalidation {
    Flush,
    Removal,
}

/// A computation that started before an invalidation finishes after it: its
/// value must never be returned once the invalidation has returned.
async fn in_flight_computation_never_survives(m: Arc<Manager>, how: Invalidation) {
    let ns = match how {
        Invalidation::Flush => "race",
        Invalidation::Removal => "race-remove",
    };
    let c = cache(&m, ns);
    for i in 0..200u64 {
        let started = Arc::new(Notify::new());
        let invalidated = Arc::new(Notify::new());
        let (c2, s2, i2) = (c.clone(), started.clone(), invalidated.clone());
        let writer = tokio::spawn(async move {
            c2.get_or_set(&i, || async move {
                s2.notify_one();
                i2.notified().await;
                "before".to_string()
            })
            .await
        });
        started.notified().await;
        match how {
            Invalidation::Flush => m.flush_namespace(ns).await.unwrap(),
            Invalidation::Removal => {
                c.delete(&i).await.unwrap();
            }
        }
        invalidated.notify_one();
        assert_eq!(
            writer.await.unwrap(),
            "before",
            "the caller gets its own value"
        );
        assert_eq!(
            c.get(&i).await.unwrap(),
            None,
            "iteration {i}: stale value visible"
        );
        let v = c.get_or_set(&i, || async { "after".to_string() }).await;
        assert_eq!(v, "after", "iteration {i}");
    }
}

async fn in_flight_computation_never_survives_a_flush(m: Arc<Manager>) {
    in_flight_computation_never_survives(m, Invalidation::Flush).await;
}
both_backends!(in_flight_computation_never_survives_a_flush);

async fn in_flight_computation_never_survives_a_removal(m: Arc<Manager>) {
    in_flight_computation_never_survives(m, Invalidation::Removal).await;
}
both_backends!(in_flight_computation_never_survives_a_removal);

/// Uncoordinated: readers and writers race flushes. A flush is "started"
/// just before it is called and "completed" once it has returned. Every value
/// carries the number of flushes started when its computation began; a read
/// that begins after N flushes completed must never return a value whose
/// computation began before flush N started.
async fn random_interleavings_never_return_stale_values(m: Arc<Manager>) {
    let c = cache(&m, "race-random");
    let started = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (c, started, completed) = (c.clone(), started.clone(), completed.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..300u64 {
                let key = (t + i) % 5;
                let done_before = completed.load(Ordering::SeqCst);
                let v = c
                    .get_or_set(&key, || {
                        let tag = started.load(Ordering::SeqCst);
                        async move {
                            if i % 7 == 0 {
                                tokio::task::yield_now().await;
                            }
                            tag.to_string()
                        }
                    })
                    .await;
                let computed_after: u64 = v.parse().unwrap();
                assert!(
                    computed_after >= done_before,
                    "a read after flush {done_before} returned a value computed before it \
                     (after only {computed_after} flushes had started)"
                );
            }
        }));
    }
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        started.fetch_add(1, Ordering::SeqCst);
        m.flush_namespace("race-random").await.unwrap();
        completed.fetch_add(1, Ordering::SeqCst);
    }
    for t in tasks {
        t.await.unwrap();
    }
}
both_backends!(random_interleavings_never_return_stale_values);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_is_seen_by_another_manager_and_old_keys_are_swept() {
    let server = memocache_testkit::shared();
    let prefix = memocache_testkit::unique("sweep");
    let a = common::redis_at(&server.url(), &prefix);
    let b = common::redis_at(&server.url(), &prefix);
    let ca = cache(&a, "shared");
    let cb = cache(&b, "shared");
    let items: Vec<(u64, String)> = (0..2000).map(|i| (i, format!("v{i}"))).collect();
    let refs: Vec<(&u64, &String)> = items.iter().map(|(k, v)| (k, v)).collect();
    ca.set_many(&refs).await.unwrap();
    assert_eq!(cb.get(&5).await.unwrap().as_deref(), Some("v5"), "shared");
    assert!(server.keys(&format!("{prefix}:shared:")).len() > 2000);
    a.flush_namespace("shared").await.unwrap();
    assert_eq!(cb.get(&5).await.unwrap(), None, "B sees A's flush at once");
    // The sweep runs in the background; it leaves only the generation key.
    let mut left = usize::MAX;
    for _ in 0..500 {
        left = server.keys(&format!("{prefix}:shared:")).len();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, 1, "old generation not swept");
    assert_eq!(server.keys(&format!("{prefix}:shared:gen")).len(), 1);
}
