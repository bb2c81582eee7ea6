//! The explicit typed API, on both backends.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memocache_runtime::{Cache, Manager};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

fn users(m: &Arc<Manager>) -> Cache<u64, User> {
    Cache::with_manager(m.clone(), "users", "by_id").unwrap()
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user{id}"),
    }
}

async fn get_set_delete_exists(m: Arc<Manager>) {
    let c = users(&m);
    assert_eq!(c.get(&1).await.unwrap(), None);
    assert!(!c.exists(&1).await.unwrap());
    c.set(&1, &user(1)).await.unwrap();
    assert_eq!(c.get(&1).await.unwrap(), Some(user(1)));
    assert!(c.exists(&1).await.unwrap());
    assert!(c.delete(&1).await.unwrap());
    assert!(!c.delete(&1).await.unwrap(), "already gone");
    assert_eq!(c.get(&1).await.unwrap(), None);
}
both_backends!(get_set_delete_exists);

async fn many_in_batches(m: Arc<Manager>) {
    let c = users(&m);
    let ids: Vec<u64> = (0..1500).collect();
    let values: Vec<User> = ids.iter().map(|&i| user(i)).collect();
    let items: Vec<(&u64, &User)> = ids
        .iter()
        .zip(&values)
        .filter(|(i, _)| *i % 2 == 0)
        .collect();
    c.set_many(&items).await.unwrap();
    let keys: Vec<&u64> = ids.iter().collect();
    let got = c.get_many(&keys).await.unwrap();
    assert_eq!(got.len(), 1500);
    for (i, v) in got.into_iter().enumerate() {
        assert_eq!(v, (i % 2 == 0).then(|| user(i as u64)), "position {i}");
    }
    assert!(c.get_many(&[]).await.unwrap().is_empty());
}
both_backends!(many_in_batches);

async fn get_or_set_runs_once_for_a_thousand_callers(m: Arc<Manager>) {
    let c = users(&m);
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (c, runs) = (c.clone(), runs.clone());
            tokio::spawn(async move {
                c.get_or_set(&7, || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    user(7)
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), user(7));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(c.get(&7).await.unwrap(), Some(user(7)), "stored");
    let again = c.get_or_set(&7, || async { unreachable!("a hit") }).await;
    assert_eq!(again, user(7));
}
both_backends!(get_or_set_runs_once_for_a_thousand_callers);

async fn try_get_or_set_stores_only_ok(m: Arc<Manager>) {
    let c: Cache<str, u32> = Cache::with_manager(m.clone(), "parse", "numbers").unwrap();
    let runs = AtomicUsize::new(0);
    let compute = |s: &'static str| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move { s.parse::<u32>().map_err(|e| e.to_string()) }
    };
    assert!(c.try_get_or_set("x", || compute("x")).await.is_err());
    assert!(c.try_get_or_set("x", || compute("x")).await.is_err());
    assert_eq!(runs.load(Ordering::SeqCst), 2, "errors are not cached");
    assert_eq!(c.try_get_or_set("12", || compute("12")).await, Ok(12));
    assert_eq!(c.try_get_or_set("12", || compute("12")).await, Ok(12));
    assert_eq!(runs.load(Ordering::SeqCst), 3, "Ok is cached");
}
both_backends!(try_get_or_set_stores_only_ok);

async fn counters_and_ttls(m: Arc<Manager>) {
    let c = users(&m).with_ttl(Duration::from_secs(30)).unwrap();
    assert_eq!(c.increment(&9, 2).await.unwrap(), 2);
    assert_eq!(c.increment(&9, 3).await.unwrap(), 5);
    assert_eq!(c.ttl(&9).await.unwrap(), None, "a counter is not a value");
    c.set(&9, &user(9)).await.unwrap();
    let ttl = c.ttl(&9).await.unwrap().expect("a TTL");
    assert!(
        ttl <= Duration::from_secs(30) && ttl > Duration::from_secs(25),
        "{ttl:?}"
    );
    assert!(c.expire(&9, Duration::from_millis(100)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(c.get(&9).await.unwrap(), None, "expired");
    assert!(!c.expire(&9, Duration::from_secs(1)).await.unwrap());
    assert!(c.delete(&9).await.is_ok());
    assert_eq!(
        c.increment(&9, 1).await.unwrap(),
        1,
        "delete resets the counter"
    );
}
both_backends!(counters_and_ttls);

async fn health_reports_latency(m: Arc<Manager>) {
    let h = m.health().await;
    assert!(h.ok, "{h:?}");
    assert!(h.latency < Duration::from_secs(1));
}
both_backends!(health_reports_latency);

#[test]
fn bad_names_are_rejected() {
    let m = common::memory();
    let e = Cache::<u64, u64>::with_manager(m.clone(), "users:*", "x").unwrap_err();
    assert!(
        e.is_invalid_input() && e.to_string().contains("namespace"),
        "{e}"
    );
    let e = Cache::<u64, u64>::with_manager(m, "users", "").unwrap_err();
    assert!(e.to_string().contains("cache name"), "{e}");
}
