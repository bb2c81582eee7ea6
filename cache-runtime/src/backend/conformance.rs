//! The suite every [`Backend`] must pass. Backend authors call [`run`] from a
//! test with a fresh backend; each check uses its own keys under `prefix`.

use std::time::Duration;

use bytes::Bytes;

use super::{Backend, BackendExt, Expect, Generation, GenerationRead, KeyTtl};

/// Runs every check against `backend`, using keys that start with `prefix`.
///
/// # Panics
/// On the first check that fails, naming it: this is a test helper.
pub async fn run(backend: &dyn Backend, prefix: &str) {
    get_set_delete(backend, prefix).await;
    get_many_keeps_order_and_batches(backend, prefix).await;
    expiry(backend, prefix).await;
    conditional_writes(backend, prefix).await;
    conditional_deletes(backend, prefix).await;
    counters(backend, prefix).await;
    generations_advance(backend, prefix).await;
    reads_with_generation_follow_every_change(backend, prefix).await;
    scan_finds_prefix_only(backend, prefix).await;
    binary_values_roundtrip(backend, prefix).await;
    backend.ping().await.expect("ping");
}

fn k(prefix: &str, name: &str) -> String {
    format!("{prefix}:{name}")
}

async fn get_set_delete(b: &dyn Backend, p: &str) {
    let key = k(p, "basic");
    assert_eq!(b.get(&key).await.unwrap(), None, "a new key is absent");
    b.set(&key, Bytes::from_static(b"v1"), None).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap().as_deref(), Some(&b"v1"[..]));
    b.set(&key, Bytes::from_static(b"v2"), None).await.unwrap();
    assert_eq!(
        b.get(&key).await.unwrap().as_deref(),
        Some(&b"v2"[..]),
        "set overwrites"
    );
    assert_eq!(b.delete(&[key.clone(), k(p, "never")]).await.unwrap(), 1);
    assert_eq!(b.get(&key).await.unwrap(), None, "deleted");
}

async fn get_many_keeps_order_and_batches(b: &dyn Backend, p: &str) {
    let items: Vec<(String, Bytes)> = (0..1203)
        .filter(|i| i % 3 != 0)
        .map(|i| (k(p, &format!("many{i}")), Bytes::from(i.to_string())))
        .collect();
    b.set_many(&items, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let keys: Vec<String> = (0..1203).map(|i| k(p, &format!("many{i}"))).collect();
    let values = b.get_many(&keys).await.unwrap();
    assert_eq!(values.len(), keys.len());
    for (i, v) in values.iter().enumerate() {
        let want = (i % 3 != 0).then(|| Bytes::from(i.to_string()));
        assert_eq!(v, &want, "get_many position {i}");
    }
    assert_eq!(b.delete(&keys).await.unwrap(), items.len() as u64);
}

async fn expiry(b: &dyn Backend, p: &str) {
    let key = k(p, "ttl");
    assert_eq!(b.ttl(&key).await.unwrap(), KeyTtl::Missing);
    b.set(&key, Bytes::from_static(b"x"), None).await.unwrap();
    assert_eq!(b.ttl(&key).await.unwrap(), KeyTtl::Persistent);
    assert!(b.expire(&key, Duration::from_millis(150)).await.unwrap());
    match b.ttl(&key).await.unwrap() {
        KeyTtl::Expires(d) => assert!(d <= Duration::from_millis(150), "{d:?}"),
        other => panic!("expected a TTL, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(b.get(&key).await.unwrap(), None, "expired");
    assert!(
        !b.expire(&key, Duration::from_secs(1)).await.unwrap(),
        "expire of a missing key"
    );
    let short = k(p, "ttl-set");
    b.set(
        &short,
        Bytes::from_static(b"x"),
        Some(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.get(&short).await.unwrap(), None, "set with a TTL expires");
}

async fn conditional_writes(b: &dyn Backend, p: &str) {
    let key = k(p, "cas");
    let ttl = Some(Duration::from_secs(60));
    assert!(b
        .set_if(&key, Bytes::from_static(b"stamp1-a"), ttl, &Expect::Absent)
        .await
        .unwrap());
    assert!(!b
        .set_if(&key, Bytes::from_static(b"other"), ttl, &Expect::Absent)
        .await
        .unwrap());
    let wrong = Expect::Prefix(Bytes::from_static(b"stamp2"));
    assert!(!b
        .set_if(&key, Bytes::from_static(b"other"), ttl, &wrong)
        .await
        .unwrap());
    let right = Expect::Prefix(Bytes::from_static(b"stamp1"));
    assert!(b
        .set_if(&key, Bytes::from_static(b"stamp3-b"), ttl, &right)
        .await
        .unwrap());
    assert_eq!(
        b.get(&key).await.unwrap().as_deref(),
        Some(&b"stamp3-b"[..])
    );
    let exact = Expect::Exact(Bytes::from_static(b"stamp3"));
    assert!(
        !b.set_if(&key, Bytes::from_static(b"x"), ttl, &exact)
            .await
            .unwrap(),
        "exact is not prefix"
    );
    let exact = Expect::Exact(Bytes::from_static(b"stamp3-b"));
    assert!(b
        .set_if(&key, Bytes::from_static(b"x"), ttl, &exact)
        .await
        .unwrap());
    assert!(
        matches!(b.ttl(&key).await.unwrap(), KeyTtl::Expires(_)),
        "set_if applies its TTL"
    );
    let missing = k(p, "cas-missing");
    assert!(!b
        .set_if(&missing, Bytes::from_static(b"x"), ttl, &right)
        .await
        .unwrap());
    b.delete(&[key]).await.unwrap();
}

async fn conditional_deletes(b: &dyn Backend, p: &str) {
    let key = k(p, "cad");
    b.set(&key, Bytes::from_static(b"token-1"), None)
        .await
        .unwrap();
    let wrong = Expect::Exact(Bytes::from_static(b"token-2"));
    assert!(!b.delete_if(&key, &wrong).await.unwrap());
    assert!(b.get(&key).await.unwrap().is_some());
    let right = Expect::Prefix(Bytes::from_static(b"token-"));
    assert!(b.delete_if(&key, &right).await.unwrap());
    assert_eq!(b.get(&key).await.unwrap(), None);
    assert!(
        !b.delete_if(&key, &right).await.unwrap(),
        "nothing left to delete"
    );
}

async fn counters(b: &dyn Backend, p: &str) {
    let key = k(p, "counter");
    assert_eq!(
        b.increment(&key, 5, Some(Duration::from_secs(60)))
            .await
            .unwrap(),
        5
    );
    assert_eq!(b.increment(&key, -2, None).await.unwrap(), 3);
    assert!(
        matches!(b.ttl(&key).await.unwrap(), KeyTtl::Expires(_)),
        "the TTL of a new counter stays"
    );
    let text = k(p, "counter-text");
    b.set(&text, Bytes::from_static(b"abc"), None)
        .await
        .unwrap();
    assert!(b.increment(&text, 1, None).await.is_err(), "not an integer");
    b.delete(&[key, text]).await.unwrap();
}

async fn generations_advance(b: &dyn Backend, p: &str) {
    let key = k(p, "gen");
    let big = 1_795_000_000_000_000u64;
    assert_eq!(
        b.advance(&key, big).await.unwrap(),
        big,
        "absent: the floor"
    );
    assert_eq!(
        b.advance(&key, big).await.unwrap(),
        big + 1,
        "present: one more"
    );
    assert_eq!(
        b.advance(&key, big + 100).await.unwrap(),
        big + 100,
        "never below the floor"
    );
    assert_eq!(b.advance(&key, 5).await.unwrap(), big + 101, "64-bit exact");
    b.set(&key, Bytes::from_static(b"junk"), None)
        .await
        .unwrap();
    assert_eq!(b.advance(&key, 7).await.unwrap(), 7, "junk is replaced");
    b.delete(&[key]).await.unwrap();
}

/// `get_with_generation` answers what `get_many` would, through every kind
/// of change of either key, however often it is asked in between (a
/// backend that remembers the generation must notice each change), whatever
/// the caller expects: the live generation, one that was live before (a
/// caller that missed a change), or one never written.
async fn reads_with_generation_follow_every_change(b: &dyn Backend, p: &str) {
    let keys = [k(p, "rgen"), k(p, "rgen:entry")];
    let both = |g: Option<&'static [u8]>, e: Option<&'static [u8]>| {
        vec![g.map(Bytes::from_static), e.map(Bytes::from_static)]
    };
    // Every generation value the steps below write, in order, then one
    // never written.
    let history: [&[u8]; 5] = [b"1795000000000000", b"1795000000000001", b"7", b"8", b"12"];
    let check = |want: Vec<Option<Bytes>>, step: &'static str| {
        let keys = keys.clone();
        async move {
            let keys_ref = [keys[0].as_str(), keys[1].as_str()];
            for _ in 0..3 {
                for expected in history {
                    let got = b.get_with_generation(keys_ref, expected).await.unwrap();
                    let generation = match &want[0] {
                        Some(live) if **live == *expected => Generation::Expected,
                        Some(live) => Generation::Other(live.clone()),
                        None => Generation::Absent,
                    };
                    let wanted = GenerationRead {
                        generation,
                        entry: want[1].clone(),
                    };
                    let expected = String::from_utf8_lossy(expected);
                    assert_eq!(got, wanted, "expecting {expected}, after {step}");
                }
                assert_eq!(
                    b.get_many(&keys).await.unwrap(),
                    want,
                    "get_many after {step}"
                );
            }
        }
    };
    check(both(None, None), "nothing").await;
    b.set(&keys[1], Bytes::from_static(b"v1"), None)
        .await
        .unwrap();
    check(both(None, Some(b"v1")), "an entry alone").await;
    let big = 1_795_000_000_000_000u64;
    b.advance(&keys[0], big).await.unwrap();
    check(
        both(Some(b"1795000000000000"), Some(b"v1")),
        "a first generation",
    )
    .await;
    b.advance(&keys[0], big).await.unwrap();
    check(both(Some(b"1795000000000001"), Some(b"v1")), "an advance").await;
    b.set(&keys[1], Bytes::from_static(b"v2"), None)
        .await
        .unwrap();
    check(both(Some(b"1795000000000001"), Some(b"v2")), "a new entry").await;
    b.set(&keys[0], Bytes::from_static(b"7"), None)
        .await
        .unwrap();
    check(both(Some(b"7"), Some(b"v2")), "a plain write").await;
    b.delete(std::slice::from_ref(&keys[0])).await.unwrap();
    check(both(None, Some(b"v2")), "a deleted generation").await;
    b.set(
        &keys[0],
        Bytes::from_static(b"8"),
        Some(Duration::from_millis(150)),
    )
    .await
    .unwrap();
    check(both(Some(b"8"), Some(b"v2")), "a generation with a TTL").await;
    // Redis reports an expiry when it deletes the key: on access, or within
    // its expiry cycle (ten times a second).
    tokio::time::sleep(Duration::from_millis(600)).await;
    check(both(None, Some(b"v2")), "an expired generation").await;
    b.delete(&keys).await.unwrap();
    check(both(None, None), "deleting both").await;
}

async fn scan_finds_prefix_only(b: &dyn Backend, p: &str) {
    let items: Vec<(String, Bytes)> = (0..50)
        .map(|i| (k(p, &format!("scan:a:{i}")), Bytes::from_static(b"x")))
        .chain((0..20).map(|i| (k(p, &format!("scan:ab:{i}")), Bytes::from_static(b"x"))))
        .collect();
    b.set_many(&items, None).await.unwrap();
    let prefix = k(p, "scan:a:");
    let mut found = std::collections::BTreeSet::new();
    let mut cursor = 0;
    loop {
        let (next, keys) = b.scan(&prefix, cursor, 10).await.unwrap();
        found.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(found.len(), 50, "every key of the prefix, no lookalike");
    assert!(found.iter().all(|key| key.starts_with(&prefix)));
    let keys: Vec<String> = items.into_iter().map(|(key, _)| key).collect();
    b.delete(&keys).await.unwrap();
}

async fn binary_values_roundtrip(b: &dyn Backend, p: &str) {
    let key = k(p, "binary");
    let value: Bytes = (0..=255u8).cycle().take(100_000).collect::<Vec<_>>().into();
    b.set(&key, value.clone(), None).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap(), Some(value));
    b.delete(&[key]).await.unwrap();
}
