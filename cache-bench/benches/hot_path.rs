//! Focused criterion benches of the hot path: an in-process hit, the key
//! derivation, and envelope encode/decode per codec. The table binary
//! (`src/main.rs`) is the full comparison; these are for tracking one piece
//! while changing it.
//!
//! ```text
//! cargo bench -p memocache-bench
//! cargo bench -p memocache-bench -- memory_tier_hit
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use memocache::Config;
use memocache_bench::codecs::encodings;
use memocache_bench::payload::{text, user, users};
use memocache_runtime::envelope::{decode_value, encode_value, read_header};

/// Keys cycled through by the hit benches.
const KEYS: u64 = 64;

#[memocache::cached(namespace = "crit", ttl = "1h")]
fn ours_u64(id: u64) -> u64 {
    id * 2
}

#[memocache::cached(namespace = "crit", ttl = "1h")]
fn ours_text(id: u64) -> String {
    text(id)
}

#[memocache::cached(namespace = "crit_local", ttl = "1h", local_ttl = "10m")]
fn local_u64(id: u64) -> u64 {
    id * 2
}

#[memocache::cached(namespace = "crit_local", ttl = "1h", local_ttl = "10m")]
fn local_text(id: u64) -> String {
    text(id)
}

#[memocache::cached(namespace = "crit", ttl = "1h")]
fn by_name(name: &str) -> usize {
    name.len()
}

#[cached::macros::cached]
fn peer_u64(id: u64) -> u64 {
    id * 2
}

#[cached::macros::cached]
fn peer_text(id: u64) -> String {
    text(id)
}

fn init() {
    let config = Config::builder()
        .url("memory://")
        .build()
        .expect("a valid config");
    // Several bench groups may run in one process: set up once.
    let _ = memocache::init(config);
}

/// Cycles `f` through `KEYS` keys.
fn cycle<T>(f: impl Fn(u64) -> T) -> impl FnMut() -> T {
    let mut k = 0;
    move || {
        k = (k + 1) % KEYS;
        f(black_box(k))
    }
}

fn memory_tier_hit(c: &mut Criterion) {
    init();
    for k in 0..KEYS {
        ours_u64(k);
        ours_text(k);
        local_u64(k);
        local_text(k);
        peer_u64(k);
        peer_text(k);
    }
    let mut g = c.benchmark_group("memory_tier_hit");
    g.bench_function("memocache/memory_backend/u64", |b| b.iter(cycle(ours_u64)));
    g.bench_function("memocache/memory_backend/string100", |b| {
        b.iter(cycle(ours_text))
    });
    g.bench_function("memocache/local_ttl/u64", |b| b.iter(cycle(local_u64)));
    g.bench_function("memocache/local_ttl/string100", |b| {
        b.iter(cycle(local_text))
    });
    g.bench_function("cached/default/u64", |b| b.iter(cycle(peer_u64)));
    g.bench_function("cached/default/string100", |b| b.iter(cycle(peer_text)));
    g.finish();
}

fn key_derivation(c: &mut Criterion) {
    init();
    let name = text(7);
    let mut g = c.benchmark_group("key_derivation");
    g.bench_function("u64_arg", |b| b.iter(cycle(ours_u64_key)));
    g.bench_function("str100_arg", |b| b.iter(|| by_name_key(black_box(&name))));
    g.finish();
}

fn envelope(c: &mut Criterion) {
    let ttl = Duration::from_secs(60);
    let small = user(1);
    let large = users(1000);
    let mut g = c.benchmark_group("envelope");
    for (codec, lz4, encoding) in encodings() {
        let tag = format!("{codec}{}", if lz4 { "+lz4" } else { "" });
        let bytes = encode_value(&small, encoding, ttl, Duration::ZERO).expect("encodes");
        g.bench_function(format!("encode/small/{tag}"), |b| {
            b.iter(|| encode_value(black_box(&small), encoding, ttl, Duration::ZERO))
        });
        g.bench_function(format!("decode/small/{tag}"), |b| {
            b.iter(|| {
                let h = read_header(black_box(&bytes)).expect("a header");
                decode_value::<memocache_bench::payload::User>(&h, &bytes)
            })
        });
        let bytes = encode_value(&large, encoding, ttl, Duration::ZERO).expect("encodes");
        g.bench_function(format!("encode/large/{tag}"), |b| {
            b.iter(|| encode_value(black_box(&large), encoding, ttl, Duration::ZERO))
        });
        g.bench_function(format!("decode/large/{tag}"), |b| {
            b.iter(|| {
                let h = read_header(black_box(&bytes)).expect("a header");
                decode_value::<Vec<memocache_bench::payload::User>>(&h, &bytes)
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = memory_tier_hit, key_derivation, envelope
}
criterion_main!(benches);
