//! The benchmark harness of memocache: what the `memocache-bench` binary
//! measures, and the values the criterion benches share with it.
//!
//! | module | what it measures or holds |
//! |---|---|
//! | [`redis_hits`] | Redis hit latency and throughput, miss cost, typed tier on Redis |
//! | [`in_process`] | in-process hits: memory backend, typed tier, `cached`, quick_cache |
//! | [`flush`] | flushing a large namespace: invisibility, concurrent GETs, reclaim |
//! | [`codecs`] | envelope sizes and speeds per codec, with and without lz4 |
//! | [`measure`] | timing loops: per call, batched, tasks, threads |
//! | [`stats`] | percentiles |
//! | [`report`] | rows passed from a measuring process to the one printing the table |
//! | [`tables`] | the tables printed, and the targets with PASS or MISS |
//! | [`payload`] | the values cached |
//! | [`sizes`] | full and `--quick` sizes |
#![deny(missing_docs)]

pub mod codecs;
pub mod flush;
pub mod in_process;
pub mod measure;
pub mod payload;
pub mod redis_hits;
pub mod report;
pub mod sizes;
pub mod stats;
pub mod tables;

/// The locked versions of the peers, `name=version` pairs joined by `;`
/// (read from `Cargo.lock` by the build script).
pub const PEER_VERSIONS: &str = env!("MEMOCACHE_BENCH_PEERS");

/// The locked version of `name`, as the build script found it.
pub fn peer_version(name: &str) -> &'static str {
    PEER_VERSIONS
        .split(';')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or("?")
}
