//! In-process hits: memocache's `#[cached]` on the memory backend (bytes,
//! decoded on every hit), its typed tier (`local_ttl`), the `cached` crate's
//! default `#[cached]` (and with a TTL), and a plain quick_cache lookup.
//! Each with a `u64` result and a 100-byte `String` result, keys cycling
//! through a small set, the key derivation and TTL check included where
//! the cache has them. One thread (batched timings), then two threads at
//! once (throughput). And the cost of a miss.
//!
//! Runs in a process of its own (the global cache is in process memory).

use std::time::Duration;

use memocache::Config;
use memocache_runtime::key::canonical::to_canonical_bytes;
use memocache_runtime::key::{Digest, EntryKey, KeyHasher, Name};
use memocache_runtime::local::LocalTier;

use crate::measure::{async_batch, batched, per_call_sync, sync_batch, threaded, Batch};
use crate::payload::text;
use crate::report::Report;
use crate::sizes::Sizes;
use crate::stats::Latency;

/// `#[cached]` on the memory backend, `u64` result.
#[memocache::cached(namespace = "mem", ttl = "1h")]
pub fn ours_u64(id: u64) -> u64 {
    id * 2
}

/// `#[cached]` on the memory backend, `String` result.
#[memocache::cached(namespace = "mem", ttl = "1h")]
pub fn ours_text(id: u64) -> String {
    text(id)
}

/// The async form, `u64` result.
#[memocache::cached(namespace = "mem", ttl = "1h")]
pub async fn ours_async_u64(id: u64) -> u64 {
    id * 2
}

/// The async form, `String` result.
#[memocache::cached(namespace = "mem", ttl = "1h")]
pub async fn ours_async_text(id: u64) -> String {
    text(id)
}

/// The typed tier in front of the memory backend, `u64` result.
#[memocache::cached(namespace = "mem_local", ttl = "1h", local_ttl = "10m")]
pub fn local_u64(id: u64) -> u64 {
    id * 2
}

/// The typed tier in front of the memory backend, `String` result.
#[memocache::cached(namespace = "mem_local", ttl = "1h", local_ttl = "10m")]
pub fn local_text(id: u64) -> String {
    text(id)
}

/// Miss cost on the memory backend.
#[memocache::cached(namespace = "mem_miss", ttl = "1h")]
pub fn ours_miss(id: u64) -> String {
    text(id)
}

/// Miss cost with the typed tier.
#[memocache::cached(namespace = "mem_miss", ttl = "1h", local_ttl = "10m")]
pub fn local_miss(id: u64) -> String {
    text(id)
}

/// `cached`'s default `#[cached]` (unbounded, no TTL), `u64` result.
#[cached::macros::cached]
pub fn peer_u64(id: u64) -> u64 {
    id * 2
}

/// `cached`'s default `#[cached]`, `String` result.
#[cached::macros::cached]
pub fn peer_text(id: u64) -> String {
    text(id)
}

/// `cached`'s `#[cached]` with a TTL (which ours always checks), `u64` result.
#[cached::macros::cached(ttl_secs = 3600)]
pub fn peer_ttl_u64(id: u64) -> u64 {
    id * 2
}

/// `cached`'s `#[cached]` with a TTL, `String` result.
#[cached::macros::cached(ttl_secs = 3600)]
pub fn peer_ttl_text(id: u64) -> String {
    text(id)
}

/// Miss cost through `cached`'s default `#[cached]`.
#[cached::macros::cached]
pub fn peer_miss(id: u64) -> String {
    text(id)
}

const OURS: &str = "memocache #[cached], memory backend";
const OURS_ASYNC: &str = "memocache #[cached] async fn, memory backend";
const LOCAL: &str = "memocache #[cached(local_ttl)], typed tier";
const PEER: &str = "cached #[cached] (default)";
const PEER_TTL: &str = "cached #[cached(ttl_secs)]";
/// `cached`'s default `#[cached]`, measured beside the typed tier on Redis.
const LOCAL_REDIS_PEER: &str = "cached #[cached] (default), in the Redis process";
const QUICK: &str = "quick_cache get (no key derivation, no TTL)";
const KEY: &str = "memocache entry key derivation alone (f_key; on a local miss only)";

/// The result types measured: (row suffix, label).
pub const TYPES: [(&str, &str); 2] = [("u64", "u64"), ("text", "100-byte String")];

/// Runs the in-process measurements on the memory backend.
pub fn run(sizes: Sizes) -> Report {
    let config = Config::builder()
        .url("memory://")
        .default_ttl(Duration::from_secs(3600))
        .build()
        .expect("a valid config");
    memocache::init(config).expect("the global cache is set up once");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut report = Report::default();
    let keys = sizes.hit_keys;
    let quick = quick_cache_filled(keys);
    for k in 0..keys {
        ours_u64(k);
        ours_text(k);
        rt.block_on(ours_async_u64(k));
        rt.block_on(ours_async_text(k));
        local_u64(k);
        local_text(k);
        peer_u64(k);
        peer_text(k);
        peer_ttl_u64(k);
        peer_ttl_text(k);
    }
    let local_ok = crate::redis_hits::wait_for_local_hits(|| {
        local_u64(0);
    });
    if !local_ok {
        report.note("the typed tier on the memory backend never answered");
    }

    let parts = KeyParts::new(keys);

    eprintln!(
        "in-process: one thread, {} calls per row",
        sizes.in_process_calls
    );
    let before = memocache::stats();
    let rows: Vec<(&str, &str, Batch<'_>)> = vec![
        ("mem.ours.u64", OURS, sync_batch(keys, ours_u64)),
        (
            "mem.ours_async.u64",
            OURS_ASYNC,
            async_batch(&rt, keys, ours_async_u64),
        ),
        ("mem.local.u64", LOCAL, sync_batch(keys, local_u64)),
        ("mem.cached.u64", PEER, sync_batch(keys, peer_u64)),
        (
            "mem.cached_ttl.u64",
            PEER_TTL,
            sync_batch(keys, peer_ttl_u64),
        ),
        (
            "mem.quick.u64",
            QUICK,
            sync_batch(keys, |k| quick.0.get(&k)),
        ),
        ("mem.keyderive.u64", KEY, sync_batch(keys, ours_u64_key)),
        (
            "mem.key_canonical.u64",
            "  of which: canonical encoding of the argument (also on a hit)",
            sync_batch(keys, |k| KEY_SPEC.args().arg(&k)),
        ),
        (
            "mem.key_blake3.u64",
            "  of which: keyed BLAKE3 of those bytes",
            sync_batch(keys, |k| {
                parts.hasher.digest_bytes(&parts.canonical[k as usize])
            }),
        ),
        (
            "mem.key_entry.u64",
            "  of which: EntryKey::new (hex digest in a String)",
            sync_batch(keys, |k| {
                EntryKey::new(
                    parts.namespace.clone(),
                    FUNCTION,
                    None,
                    parts.digests[k as usize],
                )
            }),
        ),
        (
            "mem.tier_get.u64",
            "typed tier's shared map alone (LocalTier::get; a hit reads a front)",
            sync_batch(keys, |k| parts.tier.get(&parts.canonical[k as usize])),
        ),
        ("mem.ours.text", OURS, sync_batch(keys, ours_text)),
        (
            "mem.ours_async.text",
            OURS_ASYNC,
            async_batch(&rt, keys, ours_async_text),
        ),
        ("mem.local.text", LOCAL, sync_batch(keys, local_text)),
        ("mem.cached.text", PEER, sync_batch(keys, peer_text)),
        (
            "mem.cached_ttl.text",
            PEER_TTL,
            sync_batch(keys, peer_ttl_text),
        ),
        (
            "mem.quick.text",
            QUICK,
            sync_batch(keys, |k| quick.1.get(&k)),
        ),
    ];
    let (names, mut batches): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .map(|(id, label, b)| ((id, label), b))
        .unzip();
    let timings = batched(&mut batches, sizes.in_process_calls, sizes.rounds);
    for ((id, label), t) in names.into_iter().zip(timings) {
        report.latency(id, label, Latency::of(t));
    }
    let after = memocache::stats();
    if after.misses != before.misses {
        report.note(format!(
            "{} in-process hit calls missed",
            after.misses - before.misses
        ));
    }

    eprintln!("in-process: 1 and 2 threads, {:?} per row", sizes.window);
    for threads in [1, 2] {
        let mut rate = |name: &str, label: &str, f: &(dyn Fn(u64) + Sync)| {
            let r = threaded(threads, keys, sizes.window, f);
            report.rate(&format!("mem{threads}.{name}"), label, r);
        };
        rate("ours.u64", OURS, &|k| {
            ours_u64(k);
        });
        rate("local.u64", LOCAL, &|k| {
            local_u64(k);
        });
        rate("cached.u64", PEER, &|k| {
            peer_u64(k);
        });
        rate("quick.u64", QUICK, &|k| {
            quick.0.get(&k);
        });
        rate("ours.text", OURS, &|k| {
            ours_text(k);
        });
        rate("local.text", LOCAL, &|k| {
            local_text(k);
        });
        rate("cached.text", PEER, &|k| {
            peer_text(k);
        });
        rate("quick.text", QUICK, &|k| {
            quick.1.get(&k);
        });
    }

    eprintln!(
        "in-process: miss cost, {} calls per row",
        sizes.miss_samples
    );
    let n = sizes.miss_samples;
    let fresh = |i: u64| (1 << 40) + i;
    let direct = per_call_sync(n, |i| ours_miss_uncached(fresh(i)));
    let ours = per_call_sync(n, |i| ours_miss(fresh(i)));
    let local = per_call_sync(n, |i| local_miss(fresh(i) + (1 << 32)));
    let peer = per_call_sync(n, |i| peer_miss(fresh(i)));
    report.latency(
        "memmiss.direct",
        "the function called directly (_uncached)",
        Latency::of_ns(&direct),
    );
    report.latency(
        "memmiss.ours",
        "memocache #[cached] miss, memory backend",
        Latency::of_ns(&ours),
    );
    report.latency(
        "memmiss.local",
        "memocache #[cached(local_ttl)] miss",
        Latency::of_ns(&local),
    );
    report.latency(
        "memmiss.cached",
        "cached #[cached] miss",
        Latency::of_ns(&peer),
    );
    report
}

/// A spec to time the encoding of key arguments with, as a call does it.
static KEY_SPEC: memocache_runtime::cached_fn::Spec =
    memocache_runtime::cached_fn::Spec::new("mem", FUNCTION);

/// The name `#[cached]` gives `ours_u64` in its keys.
const FUNCTION: &str = "memocache_bench::in_process::ours_u64";

/// Inputs to time the steps of a typed-tier hit one by one.
struct KeyParts {
    hasher: KeyHasher,
    namespace: Name,
    canonical: Vec<Vec<u8>>,
    digests: Vec<Digest>,
    tier: LocalTier<u64>,
}

impl KeyParts {
    fn new(keys: u64) -> Self {
        let hasher = memocache::global().hasher().clone();
        let namespace = Name::new("mem").expect("a valid name");
        let canonical: Vec<Vec<u8>> = (0..keys)
            .map(|k| to_canonical_bytes(&k).expect("encodes"))
            .collect();
        let digests: Vec<Digest> = canonical.iter().map(|c| hasher.digest_bytes(c)).collect();
        // The steps timed are those of a real call: same key, same bytes.
        let first = EntryKey::new(namespace.clone(), FUNCTION, None, digests[0]);
        assert_eq!(ours_u64_key(0).expect("a key").tail, first.tail);
        let tier = LocalTier::new(namespace.clone(), Duration::from_secs(600));
        for (k, digest) in digests.iter().enumerate() {
            tier.insert(&canonical[k], *digest, k as u64 * 2, tier.epoch(), None);
        }
        KeyParts {
            hasher,
            namespace,
            canonical,
            digests,
            tier,
        }
    }
}

type QuickPair = (
    quick_cache::sync::Cache<u64, u64>,
    quick_cache::sync::Cache<u64, String>,
);

fn quick_cache_filled(keys: u64) -> QuickPair {
    let numbers = quick_cache::sync::Cache::new(keys as usize * 2);
    let texts = quick_cache::sync::Cache::new(keys as usize * 2);
    for k in 0..keys {
        numbers.insert(k, k * 2);
        texts.insert(k, text(k));
    }
    (numbers, texts)
}

/// Hits of the typed tier in front of Redis (measured in the Redis
/// process, whose global cache is Redis): one thread, then 1 and 2 threads.
pub fn local_on_redis(
    report: &mut Report,
    sizes: Sizes,
    numbers: fn(u64) -> u64,
    texts: fn(u64) -> String,
) {
    let keys = sizes.hit_keys;
    for k in 0..keys {
        numbers(k);
        texts(k);
        peer_u64(k);
        peer_text(k);
    }
    if !crate::redis_hits::wait_for_local_hits(|| {
        numbers(0);
    }) {
        report.note(
            "the typed tier in front of Redis never answered (no invalidation subscription?)",
        );
    }
    eprintln!(
        "redis: typed tier hits, {} calls per row",
        sizes.in_process_calls
    );
    // `cached`'s default `#[cached]` again, in the same rounds: this
    // process holds Redis connections and background threads that the
    // memory part's does not, so the comparison is made side by side.
    let before = memocache::stats();
    let mut rows = [
        sync_batch(keys, numbers),
        sync_batch(keys, texts),
        sync_batch(keys, peer_u64),
        sync_batch(keys, peer_text),
    ];
    let timings = batched(&mut rows, sizes.in_process_calls, sizes.rounds);
    let after = memocache::stats();
    let label = "memocache #[cached(local_ttl)], typed tier on Redis";
    let mut timings = timings.into_iter();
    for (ty, _) in TYPES {
        let t = timings.next().expect("one row per type");
        report.latency(&format!("mem.local_redis.{ty}"), label, Latency::of(t));
    }
    for (ty, _) in TYPES {
        let t = timings.next().expect("one peer row per type");
        report.latency(
            &format!("mem.local_redis_cached.{ty}"),
            LOCAL_REDIS_PEER,
            Latency::of(t),
        );
    }
    let remote = (after.hits - before.hits) - (after.local_hits - before.local_hits);
    if remote > 0 || after.misses != before.misses {
        report.note(format!(
            "typed tier on Redis: {remote} hits went to Redis, {} calls missed",
            after.misses - before.misses
        ));
    }
    for threads in [1, 2] {
        let r = threaded(threads, keys, sizes.window, numbers);
        report.rate(&format!("mem{threads}.local_redis.u64"), label, r);
        let r = threaded(threads, keys, sizes.window, texts);
        report.rate(&format!("mem{threads}.local_redis.text"), label, r);
        let r = threaded(threads, keys, sizes.window, peer_u64);
        let id = format!("mem{threads}.local_redis_cached.u64");
        report.rate(&id, LOCAL_REDIS_PEER, r);
        let r = threaded(threads, keys, sizes.window, peer_text);
        let id = format!("mem{threads}.local_redis_cached.text");
        report.rate(&id, LOCAL_REDIS_PEER, r);
    }
}
