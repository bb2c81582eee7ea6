//! Flushing a large namespace in a Redis that holds twice as many keys:
//! how long until the namespace is invisible, and the latency of GETs that
//! other clients (a raw connection) and memocache itself (hits in another
//! namespace, on the connection the background sweep shares) see during
//! the flush and during the reclaim.
//!
//! Runs in a process of its own, against a Redis of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memocache::{Cache, Config};
use redis::aio::ConnectionManager;

use crate::payload::text;
use crate::report::Report;
use crate::sizes::Sizes;
use crate::stats::Latency;

/// Entries per `set_many` call while loading (memocache pipelines them by 500).
const LOAD_CHUNK: usize = 10_000;
/// Distinct keys the concurrent readers cycle through.
const READ_KEYS: usize = 256;
/// The namespace flushed.
const DOOMED: &str = "flushme";
/// The namespace kept.
const KEPT: &str = "keep";

/// One timed read: when it started (since the readers started) and how long
/// it took, in nanoseconds, and whether it found a value.
#[derive(Debug, Clone, Copy)]
struct Sample {
    start: u64,
    took: u64,
    found: bool,
}

/// The phases of the run, in nanoseconds since the readers started.
#[derive(Debug, Clone, Copy)]
struct Phases {
    flush_start: u64,
    flush_end: u64,
    reclaim_end: u64,
}

/// Runs the flush measurements against the server at `url`.
pub fn run(url: &str, sizes: Sizes) -> Report {
    let config = Config::builder()
        .url(url)
        .prefix("bench")
        .default_ttl(Duration::from_secs(3600))
        // Loading a million entries is bulk work: on a busy machine (the
        // smoke test runs a debug build beside the other tests) a batch may
        // take longer than the default 100 ms. Reads are timed, not bounded.
        .budget(Duration::from_secs(2))
        .build()
        .expect("a valid config");
    memocache::init(config).expect("the global cache is set up once");
    let rt = crate::measure::runtime(2);
    let url = url.to_owned();
    rt.block_on(async move { tokio::spawn(measure(url, sizes)).await })
        .expect("the flush measurements panicked")
}

async fn raw(url: &str) -> ConnectionManager {
    redis::Client::open(url)
        .expect("a client")
        .get_connection_manager()
        .await
        .expect("connect to Redis")
}

async fn dbsize(conn: &mut ConnectionManager) -> u64 {
    redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .expect("DBSIZE")
}

async fn measure(url: String, sizes: Sizes) -> Report {
    let mut report = Report::default();
    let mut admin = raw(&url).await;
    let doomed: Cache<u64, String> = Cache::new(DOOMED, "rows").expect("a handle");
    let kept: Cache<u64, String> = Cache::new(KEPT, "rows").expect("a handle");

    // The flush call alone, on a small database (each flush starts a sweep
    // that scans the whole keyspace, so repeats come before the load).
    doomed.set(&0, &text(0)).await.expect("a first entry");
    let mut calls = Vec::with_capacity(sizes.repeat_flushes);
    for _ in 0..sizes.repeat_flushes {
        let started = Instant::now();
        memocache::flush_namespace(DOOMED).await.expect("flush");
        calls.push(started.elapsed().as_nanos() as u64);
    }
    report.latency(
        "flush.repeat",
        "flush_namespace call, small database",
        Latency::of_ns(&calls),
    );

    eprintln!(
        "flush: loading {} + {} entries",
        sizes.flush_keys, sizes.other_keys
    );
    let started = Instant::now();
    tokio::join!(
        load(&doomed, sizes.flush_keys),
        load(&kept, sizes.other_keys)
    );
    let loaded = dbsize(&mut admin).await;
    report.value(
        "flush.load",
        "loading both namespaces (s)",
        started.elapsed().as_secs_f64(),
    );
    report.value(
        "flush.dbsize",
        "keys in Redis before the flush",
        loaded as f64,
    );

    let raw_keys = kept_keys(&mut admin).await;
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let raw_reader = {
        let (conn, stop) = (raw(&url).await, stop.clone());
        tokio::spawn(async move {
            reader(epoch, &stop, |i| {
                let key = raw_keys[i % raw_keys.len()].clone();
                let mut conn = conn.clone();
                async move {
                    let got: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(key)
                        .query_async(&mut conn)
                        .await
                        .expect("GET");
                    got.is_some()
                }
            })
            .await
        })
    };
    let ours_reader = {
        let (kept, stop) = (kept.clone(), stop.clone());
        tokio::spawn(async move {
            reader(epoch, &stop, |i| {
                let kept = kept.clone();
                async move {
                    kept.get(&((i % READ_KEYS) as u64))
                        .await
                        .ok()
                        .flatten()
                        .is_some()
                }
            })
            .await
        })
    };
    let prober = {
        let (doomed, stop) = (doomed.clone(), stop.clone());
        tokio::spawn(async move {
            reader(epoch, &stop, |i| {
                let doomed = doomed.clone();
                async move {
                    doomed
                        .get(&((i % READ_KEYS) as u64))
                        .await
                        .ok()
                        .flatten()
                        .is_some()
                }
            })
            .await
        })
    };

    eprintln!("flush: baseline {:?}, then the flush", sizes.baseline);
    tokio::time::sleep(sizes.baseline).await;
    let flush_start = epoch.elapsed().as_nanos() as u64;
    memocache::flush_namespace(DOOMED).await.expect("flush");
    let flush_end = epoch.elapsed().as_nanos() as u64;
    let gone = doomed.get(&1).await.expect("a read").is_none();
    let left = dbsize(&mut admin).await;
    if !gone {
        report.note("an entry of the flushed namespace was still visible after the flush returned");
    }
    report.value(
        "flush.call",
        &format!(
            "flush_namespace call, {}-key namespace (µs)",
            sizes.flush_keys
        ),
        (flush_end - flush_start) as f64 / 1e3,
    );
    report.value(
        "flush.left",
        "keys in Redis right after the flush",
        left as f64,
    );

    eprintln!("flush: waiting for the background reclaim");
    let target = loaded.saturating_sub(sizes.flush_keys as u64) + 4;
    let deadline = Instant::now() + sizes.reclaim_limit;
    let mut remaining = left;
    while remaining > target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        remaining = dbsize(&mut admin).await;
    }
    let reclaim_end = epoch.elapsed().as_nanos() as u64;
    let reclaimed = remaining <= target;
    if !reclaimed {
        report.note(format!(
            "the reclaim had not finished after {:?}: {remaining} keys left (done at {target})",
            sizes.reclaim_limit
        ));
    }
    report.value(
        "flush.reclaim",
        "background reclaim, flush return to done (s)",
        (reclaim_end - flush_end) as f64 / 1e9,
    );
    report.value(
        "flush.reclaimed",
        "keys deleted by the reclaim",
        left.saturating_sub(remaining) as f64,
    );
    stop.store(true, Ordering::Relaxed);

    let phases = Phases {
        flush_start,
        flush_end,
        reclaim_end,
    };
    let raw = raw_reader.await.expect("raw reader");
    let ours = ours_reader.await.expect("our reader");
    let probe = prober.await.expect("prober");
    phase_rows(&mut report, "raw", "raw GET, own connection", &raw, phases);
    phase_rows(
        &mut report,
        "ours",
        "memocache Cache::get, another namespace",
        &ours,
        phases,
    );
    invisibility(&mut report, &probe, phases);
    report
}

/// Loads `n` entries of 100 bytes into `cache`, `LOAD_CHUNK` per call.
async fn load(cache: &Cache<u64, String>, n: usize) {
    let mut first = 0;
    while first < n {
        let last = (first + LOAD_CHUNK).min(n);
        let values: Vec<(u64, String)> =
            (first as u64..last as u64).map(|k| (k, text(k))).collect();
        let items: Vec<(&u64, &String)> = values.iter().map(|(k, v)| (k, v)).collect();
        cache.set_many(&items).await.expect("load a chunk");
        first = last;
    }
}

/// `READ_KEYS` full keys of the kept namespace, for the raw reader.
async fn kept_keys(conn: &mut ConnectionManager) -> Arc<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("bench:{KEPT}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch.into_iter().filter(|k| !k.ends_with(":gen")));
        cursor = next;
        if keys.len() >= READ_KEYS || cursor == 0 {
            break;
        }
    }
    keys.truncate(READ_KEYS);
    assert!(!keys.is_empty(), "the kept namespace has entries");
    Arc::new(keys)
}

/// Reads back to back until `stop`, timing each read.
async fn reader<F, Fut>(epoch: Instant, stop: &AtomicBool, read: F) -> Vec<Sample>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut samples = Vec::with_capacity(1 << 20);
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let start = epoch.elapsed();
        let found = read(i).await;
        let took = epoch.elapsed() - start;
        samples.push(Sample {
            start: start.as_nanos() as u64,
            took: took.as_nanos() as u64,
            found,
        });
        i += 1;
    }
    samples
}

fn phase_rows(report: &mut Report, who: &str, label: &str, samples: &[Sample], p: Phases) {
    let phases: [(&str, &str, u64, u64); 3] = [
        ("before", "before the flush", 0, p.flush_start),
        ("flush", "during the flush call", p.flush_start, p.flush_end),
        ("reclaim", "during the reclaim", p.flush_end, p.reclaim_end),
    ];
    for (phase, when, from, to) in phases {
        let t: Vec<u64> = samples
            .iter()
            .filter(|s| s.start >= from && s.start < to)
            .map(|s| s.took)
            .collect();
        report.latency(
            &format!("flush.get.{who}.{phase}"),
            &format!("{label}, {when}"),
            Latency::of_ns(&t),
        );
    }
    let misses = samples.iter().filter(|s| !s.found).count();
    if misses > 0 {
        report.note(format!(
            "{label}: {misses} reads of kept entries found nothing"
        ));
    }
}

/// When the flushed namespace became invisible, from the prober's reads of
/// it: after the start of the last read that still found an entry, and
/// before the end of the first that found none.
fn invisibility(report: &mut Report, probe: &[Sample], p: Phases) {
    let last_found = probe
        .iter()
        .filter(|s| s.found)
        .map(|s| s.start)
        .max()
        .unwrap_or(0);
    let first_gone = probe
        .iter()
        .filter(|s| !s.found && s.start + s.took >= p.flush_start)
        .map(|s| s.start + s.took)
        .min()
        .unwrap_or(u64::MAX);
    let rel = |t: u64| t.saturating_sub(p.flush_start) as f64 / 1e3;
    report.value(
        "flush.invisible_after",
        "invisible no earlier than (µs after the flush call started)",
        rel(last_found),
    );
    report.value(
        "flush.invisible_before",
        "invisible no later than (µs after the flush call started)",
        rel(first_gone),
    );
}
