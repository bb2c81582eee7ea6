//! Arguments an attacker chooses cannot share an entry, reach another
//! namespace, or make keys grow.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use memocache_runtime::{Cache, Manager};

/// Pairs that a naive `join(":")` (or concatenation) would confuse.
fn lookalike_pairs() -> Vec<(String, String)> {
    let pairs = [
        ("a:b", "c"),
        ("a", "b:c"),
        ("ab", "c"),
        ("a", "bc"),
        ("", "abc"),
        ("abc", ""),
        ("a*", "b"),
        ("a", "*b"),
        ("users:1", ""),
        ("user", "s:1"),
        ("\u{e9}", "x"),   // é, composed
        ("e\u{301}", "x"), // é, decomposed: another string
        ("a\0b", "c"),
        ("a", "\0bc"),
        ("{tag}", "x"),
        ("{tag", "}x"),
    ];
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn lookalike_arguments_never_share_an_entry(m: Arc<Manager>) {
    let c: Cache<(String, String), String> =
        Cache::with_manager(m.clone(), "hostile", "pairs").unwrap();
    let pairs = lookalike_pairs();
    for (a, b) in &pairs {
        c.set(&(a.clone(), b.clone()), &format!("{a}|{b}"))
            .await
            .unwrap();
    }
    for (a, b) in &pairs {
        let got = c.get(&(a.clone(), b.clone())).await.unwrap();
        assert_eq!(
            got,
            Some(format!("{a}|{b}")),
            "({a:?}, {b:?}) read another entry"
        );
    }
}
both_backends!(lookalike_arguments_never_share_an_entry);

async fn maps_key_by_content_not_order(m: Arc<Manager>) {
    let c: Cache<HashMap<String, Vec<u32>>, u32> =
        Cache::with_manager(m.clone(), "hostile", "maps").unwrap();
    let entries: Vec<(String, Vec<u32>)> =
        (0..50).map(|i| (format!("k{i}"), vec![i, i * 2])).collect();
    let forward: HashMap<_, _> = entries.iter().cloned().collect();
    let backward: HashMap<_, _> = entries.iter().rev().cloned().collect();
    c.set(&forward, &1).await.unwrap();
    assert_eq!(
        c.get(&backward).await.unwrap(),
        Some(1),
        "same map, other order"
    );
    let mut other = forward.clone();
    other.insert("k0".into(), vec![0, 1]);
    assert_eq!(c.get(&other).await.unwrap(), None, "another map");
    // Nested maps, in random order at every level.
    let nested: Cache<BTreeMap<u8, HashMap<String, String>>, u8> =
        Cache::with_manager(m.clone(), "hostile", "nested").unwrap();
    let build = |rev: bool| {
        let mut outer = BTreeMap::new();
        for o in 0..5u8 {
            let mut inner: Vec<(String, String)> = (0..20)
                .map(|i| (format!("{o}-{i}"), "v".repeat(i)))
                .collect();
            if rev {
                inner.reverse();
            }
            outer.insert(o, inner.into_iter().collect::<HashMap<_, _>>());
        }
        outer
    };
    nested.set(&build(false), &7).await.unwrap();
    assert_eq!(nested.get(&build(true)).await.unwrap(), Some(7));
}
both_backends!(maps_key_by_content_not_order);

async fn keys_stay_bounded_whatever_the_arguments(m: Arc<Manager>) {
    let c: Cache<String, u8> = Cache::with_manager(m.clone(), "hostile", "big").unwrap();
    let huge = "x:".repeat(500_000);
    c.set(&huge, &1).await.unwrap();
    assert_eq!(c.get(&huge).await.unwrap(), Some(1));
    let digest = m.hasher().digest(&huge).unwrap();
    let entry = memocache_runtime::key::EntryKey::new(
        memocache_runtime::key::Name::new("hostile").unwrap(),
        "big",
        None,
        digest,
    );
    let key = m.read(&entry).await.unwrap().full_key;
    assert!(key.len() < 100, "{} bytes: {key}", key.len());
    assert!(
        !key.contains("x:x"),
        "argument text leaked into the key: {key}"
    );
}
both_backends!(keys_stay_bounded_whatever_the_arguments);

async fn flushing_a_never_touches_a_star(m: Arc<Manager>) {
    let names = ["a", "a1", "aa", "ab", "a_", "a-b", "a.b", "ba", "A"];
    for ns in names {
        let c: Cache<u8, String> = Cache::with_manager(m.clone(), ns, "v").unwrap();
        c.set(&1, &ns.to_string()).await.unwrap();
    }
    m.flush_namespace("a").await.unwrap();
    for ns in names {
        let c: Cache<u8, String> = Cache::with_manager(m.clone(), ns, "v").unwrap();
        let want = (ns != "a").then(|| ns.to_string());
        assert_eq!(c.get(&1).await.unwrap(), want, "namespace {ns}");
    }
}
both_backends!(flushing_a_never_touches_a_star);

#[test]
fn namespaces_with_separators_or_wildcards_are_rejected() {
    let m = common::memory();
    for bad in [
        "a:b", "a*", "a?", "[a]", "a b", "a/b", "a\\b", "{a}", "ü", "",
    ] {
        let e = Cache::<u8, u8>::with_manager(m.clone(), bad, "v").unwrap_err();
        assert!(e.is_invalid_input(), "{bad:?} accepted");
    }
}
