//! Fuzzing of the two parsers of untrusted input: the envelope decoder
//! (bytes from Redis) and the canonical key encoder (caller arguments).
//!
//! In the normal suite each target runs a few thousand cases. With
//! `MEMOCACHE_FUZZ_SECONDS=N` each runs for N seconds instead and prints how
//! many cases it tried: `scripts/fuzz.sh` does that in release mode.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use memocache_runtime::envelope::{self, Encoding};
use memocache_runtime::key::canonical::to_canonical_bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

/// Runs `test` on values of `strategy` for the configured time or cases.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let seconds: Option<u64> = std::env::var("MEMOCACHE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let batch = 2_000;
    let mut cases = 0u64;
    loop {
        let mut runner = TestRunner::new(RunnerConfig {
            cases: batch,
            failure_persistence: None,
            ..RunnerConfig::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        cases += u64::from(batch);
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    if seconds.is_some() {
        println!("fuzz {name}: {cases} cases, 0 failures");
    }
}

/// Bytes that look like envelopes often enough to get past the header.
fn envelope_like() -> impl Strategy<Value = Vec<u8>> {
    let good = envelope::encode_value(
        &vec!["some".to_string(); 300],
        Encoding::default(),
        Duration::from_secs(1),
        Duration::ZERO,
    )
    .unwrap();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        (
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            any::<usize>()
        )
            .prop_map(move |(flips, cut)| {
                let mut bytes = good.clone();
                for (at, b) in flips {
                    let at = at % bytes.len();
                    bytes[at] = b;
                }
                bytes.truncate(cut % (bytes.len() + 1));
                bytes
            }),
    ]
}

#[test]
fn envelope_decoder_never_panics() {
    fuzz("envelope decoder", envelope_like(), |bytes| {
        if let Ok(header) = envelope::read_header(&bytes) {
            let _ = envelope::decode_value::<Vec<String>>(&header, &bytes);
            let _ = envelope::decode_value::<serde_json::Value>(&header, &bytes);
        }
        Ok(())
    });
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
enum Arg {
    Unit,
    Int(i64),
    Big(u128),
    Float(f64),
    Text(String),
    Bytes(#[serde(with = "serde_bytes_compat")] Vec<u8>),
    List(Vec<Arg>),
    Map(BTreeMap<String, Arg>),
    Pair(Box<Arg>, Box<Arg>),
    Maybe(Option<Box<Arg>>),
}

mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

fn arg() -> impl Strategy<Value = Arg> {
    let leaf = prop_oneof![
        Just(Arg::Unit),
        any::<i64>().prop_map(Arg::Int),
        any::<u128>().prop_map(Arg::Big),
        any::<f64>().prop_map(Arg::Float),
        ".{0,12}".prop_map(Arg::Text),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Arg::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Arg::List),
            proptest::collection::btree_map(".{0,6}", inner.clone(), 0..6).prop_map(Arg::Map),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Arg::Pair(Box::new(a), Box::new(b))),
            proptest::option::of(inner).prop_map(|o| Arg::Maybe(o.map(Box::new))),
        ]
    })
}

/// Equal values (floats compared by what the encoding normalises) give
/// equal bytes; different values give different bytes.
fn same_value(a: &Arg, b: &Arg) -> bool {
    match (a, b) {
        (Arg::Float(x), Arg::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Arg::List(x), Arg::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Arg::Map(x), Arg::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same_value(a, b))
        }
        (Arg::Pair(a1, a2), Arg::Pair(b1, b2)) => same_value(a1, b1) && same_value(a2, b2),
        (Arg::Maybe(Some(a)), Arg::Maybe(Some(b))) => same_value(a, b),
        _ => a == b,
    }
}

#[test]
fn canonical_encoder_is_total_and_injective() {
    fuzz("canonical encoder", (arg(), arg()), |(a, b)| {
        let ea = to_canonical_bytes(&a).expect("every serde value encodes");
        let eb = to_canonical_bytes(&b).expect("every serde value encodes");
        prop_assert_eq!(same_value(&a, &b), ea == eb, "{:?} vs {:?}", a, b);
        Ok(())
    });
}

#[test]
fn hash_maps_encode_alike_in_any_order() {
    let entries = proptest::collection::vec((".{0,8}", any::<i32>()), 0..40);
    fuzz("map order", entries, |entries| {
        let forward: HashMap<String, i32> = entries.iter().cloned().collect();
        // The same content, inserted in the opposite order into a map with
        // its own random hasher state (`collect` keeps the last duplicate).
        let mut content: BTreeMap<String, i32> = BTreeMap::new();
        for (k, v) in &entries {
            content.insert(k.clone(), *v);
        }
        let other: HashMap<String, i32> = content.into_iter().rev().collect();
        prop_assert_eq!(
            to_canonical_bytes(&forward).unwrap(),
            to_canonical_bytes(&other).unwrap()
        );
        Ok(())
    });
}
