//! Redis: hit latency and throughput of `#[cached]` against a raw redis-rs
//! GET of the same bytes and against the `cached` crate's Redis macro; the
//! cost of a miss; and hits of the typed in-process tier (`local_ttl`) in
//! front of Redis.
//!
//! Runs in a process of its own (the global cache points at Redis).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memocache::{Config, Name};
use memocache_bench_cached_peer::{self as peer, Function, PeerError};
use memocache_runtime::envelope::{decode_value, read_header};
use memocache_runtime::key::generation_key;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::IntoConnectionInfo;

use crate::measure::{latencies, throughput, AsyncOp};
use crate::payload::text;
use crate::report::Report;
use crate::sizes::Sizes;
use crate::stats::Latency;

/// The task counts of the throughput table.
pub const TASKS: [usize; 3] = [1, 16, 256];

/// The rows of the throughput table (their hit rows' ids, without `redis.hit.`).
pub const THROUGHPUT_ROWS: [&str; 6] =
    ["raw", "ours", "cached", "raw_other", "raw_mux", "raw_spawn"];

/// Hit: a 100-byte `String` from Redis.
#[memocache::cached(namespace = "bench", ttl = "1h")]
pub async fn ours_hit(id: u64) -> String {
    text(id)
}

/// Miss: every call has a new argument.
#[memocache::cached(namespace = "bench_miss", ttl = "10m")]
pub async fn ours_miss(id: u64) -> String {
    text(id)
}

/// The typed in-process tier in front of Redis, `u64` result.
#[memocache::cached(namespace = "bench_local", ttl = "1h", local_ttl = "10m")]
pub fn local_redis_u64(id: u64) -> u64 {
    id * 2
}

/// The typed in-process tier in front of Redis, 100-byte `String` result.
#[memocache::cached(namespace = "bench_local", ttl = "1h", local_ttl = "10m")]
pub fn local_redis_text(id: u64) -> String {
    text(id)
}

/// Calls that failed (a peer's error, a raw command's error): reported, and
/// the measurement goes on.
static FAILURES: AtomicU64 = AtomicU64::new(0);

fn failed(what: &str, e: &dyn std::fmt::Debug) {
    if FAILURES.fetch_add(1, Ordering::Relaxed) < 3 {
        eprintln!("  {what} failed: {e:?}");
    }
}

/// A row of the `cached` crate's function `function`, whose calls its own
/// crate makes (see `memocache_bench_cached_peer` for why); `id_of` turns
/// the harness's key into the argument of a timed call. (A throughput loop
/// passes keys as they are: only hit rows are looped.)
fn peer_op(
    id: &str,
    label: &str,
    function: Function,
    id_of: impl Fn(u64) -> peer::Id + Send + Sync + 'static,
) -> AsyncOp {
    fn hit_failed(e: &PeerError) {
        failed("cached's Redis macro", e);
    }
    fn miss_failed(e: &PeerError) {
        failed("cached's Redis macro (miss)", e);
    }
    let on_error = match function {
        Function::Hit => hit_failed,
        Function::Miss => miss_failed,
    };
    AsyncOp::from_parts(
        id,
        label,
        move |key| peer::timed(function, id_of(key), on_error),
        move |start, keys, stop| peer::calls_until(function, start, keys, stop, on_error),
    )
}

/// Whether memocache's Redis commands run on connections of the callers'
/// runtimes (`MEMOCACHE_REDIS_CALLER_RUNTIME`, the library's default when
/// unset), as the library reads it.
pub fn caller_runtime() -> bool {
    switch(
        "MEMOCACHE_REDIS_CALLER_RUNTIME",
        Config::default().redis_caller_runtime,
    )
}

/// Whether memocache's Redis connections set `TCP_NODELAY`
/// (`MEMOCACHE_REDIS_TCP_NODELAY`, on when unset), as the library reads it.
pub fn tcp_nodelay() -> bool {
    switch(
        "MEMOCACHE_REDIS_TCP_NODELAY",
        Config::default().redis_tcp_nodelay,
    )
}

/// The switch in the environment variable `name`, `default` when it is
/// unset or blank; a malformed one stops the run, named.
fn switch(name: &str, default: bool) -> bool {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => {
            memocache_runtime::config::parse_bool(name, &raw).unwrap_or_else(|e| panic!("{e}"))
        }
        _ => default,
    }
}

/// Runs every Redis measurement against the server at `url`.
pub fn run(url: &str, sizes: Sizes) -> Report {
    let config = Config::builder()
        .url(url)
        .prefix("bench")
        .default_ttl(Duration::from_secs(3600))
        .redis_caller_runtime(caller_runtime())
        .redis_tcp_nodelay(tcp_nodelay())
        .build()
        .expect("a valid config");
    memocache::init(config).expect("the global cache is set up once");
    let rt = crate::measure::runtime(2);
    // memocache runs every command as a task on a 1-worker runtime of its
    // own; a raw row does the same on this one, to show what that costs.
    let io = crate::measure::runtime(1);
    let io_handle = io.handle().clone();
    let url = url.to_owned();
    // Measured from a task on a worker, where a service's handlers run.
    let mut report = rt
        .block_on(async move { tokio::spawn(measure(url, io_handle, sizes)).await })
        .expect("the Redis measurements panicked");
    drop(io);
    crate::in_process::local_on_redis(&mut report, sizes, local_redis_u64, local_redis_text);
    let failures = FAILURES.load(Ordering::Relaxed);
    if failures > 0 {
        report.note(format!(
            "{failures} calls failed during the Redis measurements"
        ));
    }
    report
}

/// The raw rows' `ConnectionManager`: what memocache's backend opens for
/// its I/O runtime (with its TCP settings), used directly.
async fn raw_manager(url: &str) -> ConnectionManager {
    let client = redis::Client::open(nodelay(url)).expect("a client");
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(250)))
        .set_response_timeout(Some(Duration::from_millis(100)));
    ConnectionManager::new_with_config(client, config)
        .await
        .expect("connect to Redis")
}

/// `url` with `TCP_NODELAY` as memocache's connections have it.
fn nodelay(url: &str) -> redis::ConnectionInfo {
    let info = url.into_connection_info().expect("a valid URL");
    let tcp = info.tcp_settings().clone().set_nodelay(tcp_nodelay());
    info.set_tcp_settings(tcp)
}

/// A plain multiplexed connection, with memocache's TCP settings (the kind
/// its hits use by default: one per caller runtime) or with redis-rs's
/// default ones (Nagle's algorithm on), the kind `cached`'s
/// `AsyncRedisCache` opens.
async fn raw_multiplexed(url: &str, as_ours: bool) -> MultiplexedConnection {
    let client = if as_ours {
        redis::Client::open(nodelay(url))
    } else {
        redis::Client::open(url)
    };
    client
        .expect("a client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis")
}

/// A raw `GET` of our entries' bytes on `conn`.
fn raw_get<C>(id: &str, label: &str, conn: C, keys: &Arc<Vec<String>>) -> AsyncOp
where
    C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    let (c, k) = (conn, keys.clone());
    let what = label.to_owned();
    AsyncOp::new(id, label, move |i| {
        let (mut c, k, what) = (c.clone(), k.clone(), what.clone());
        async move {
            let got: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
                .arg(&k[i as usize])
                .query_async(&mut c)
                .await;
            if let Err(e) = got {
                failed(&what, &e);
            }
        }
    })
}

async fn measure(url: String, io: tokio::runtime::Handle, sizes: Sizes) -> Report {
    let mut report = Report::default();
    let keys = sizes.hit_keys;
    let manager = raw_manager(&url).await;
    let mux = raw_multiplexed(&url, false).await;
    let mux_ours = raw_multiplexed(&url, true).await;
    let io_url = url.clone();
    let io_manager = io
        .spawn(async move { raw_manager(&io_url).await })
        .await
        .expect("connect on the I/O runtime");

    eprintln!("redis: priming {keys} keys");
    for k in 0..keys {
        assert_eq!(ours_hit(k).await, text(k));
    }
    for k in 0..keys {
        match peer::calls(Function::Hit, k, 1, keys).await {
            Ok(1) => {}
            Ok(_) => failed(
                "cached's Redis macro (priming)",
                &"a value of another length",
            ),
            Err(e) => failed("cached's Redis macro (priming)", &e),
        }
    }
    let (gen_key, full_keys) = entry_keys(keys).await;
    let full_keys = Arc::new(full_keys);

    let mut ops = hit_ops(&manager, &mux, &mux_ours, &gen_key, &full_keys);
    ops.push(spawned_mget(&io, &io_manager, &gen_key, &full_keys));
    eprintln!("redis: hit latency, {} calls per row", sizes.redis_samples);
    let before = memocache::stats();
    let timings = latencies(&ops, keys, sizes.warmup, sizes.redis_samples).await;
    let after = memocache::stats();
    for (op, t) in ops.iter().zip(&timings) {
        report.latency(&op.id, &op.label, Latency::of_ns(t));
    }
    if after.misses != before.misses {
        report.note(format!(
            "{} of our Redis hit calls missed",
            after.misses - before.misses
        ));
    }

    eprintln!("redis: throughput, {:?} per window", sizes.window);
    let compared: Vec<&AsyncOp> = ops
        .iter()
        .filter(|op| {
            op.id
                .strip_prefix("redis.hit.")
                .is_some_and(|row| THROUGHPUT_ROWS.contains(&row))
        })
        .collect();
    for tasks in TASKS {
        let mut sums = vec![0.0f64; compared.len()];
        for w in 0..sizes.windows {
            for j in 0..compared.len() {
                let at = (j + w) % compared.len();
                sums[at] += throughput(compared[at], tasks, keys, sizes.window).await;
            }
        }
        for (op, sum) in compared.iter().zip(sums) {
            let id = format!("{}.{tasks}", op.id.replace(".hit.", ".tp."));
            report.rate(&id, &op.label, sum / sizes.windows as f64);
        }
    }

    eprintln!("redis: miss cost, {} calls per row", sizes.miss_samples);
    let ops = miss_ops();
    let before = memocache::stats();
    let timings = latencies(&ops, u64::MAX, 20, sizes.miss_samples).await;
    let after = memocache::stats();
    for (op, t) in ops.iter().zip(&timings) {
        report.latency(&op.id, &op.label, Latency::of_ns(t));
    }
    let expected = (20 + sizes.miss_samples) as u64;
    if after.misses - before.misses != expected {
        report.note(format!(
            "our miss row computed {} times for {expected} calls",
            after.misses - before.misses
        ));
    }
    report
}

/// The generation key of namespace `bench` and the full keys of our
/// entries for arguments `0..keys`, checked to hold the expected values.
async fn entry_keys(keys: u64) -> (String, Vec<String>) {
    let global = memocache::global();
    let prefix = &global.config().prefix;
    let gen_key = generation_key(prefix, &Name::new("bench").expect("a valid name"));
    let mut full = Vec::new();
    for k in 0..keys {
        let read = global
            .read(&ours_hit_key(k).expect("a key"))
            .await
            .expect("read our entry");
        let raw = read.raw.expect("our entry is in Redis");
        let header = read_header(&raw).expect("an envelope");
        let value: String = decode_value(&header, &raw).expect("a String");
        assert_eq!(value, text(k));
        full.push(read.full_key);
    }
    (gen_key, full)
}

fn hit_ops(
    manager: &ConnectionManager,
    mux: &MultiplexedConnection,
    mux_ours: &MultiplexedConnection,
    gen_key: &str,
    keys: &Arc<Vec<String>>,
) -> Vec<AsyncOp> {
    // The baseline is a raw `GET` on the kind of connection our hits use:
    // a plain multiplexed connection of the caller's runtime (the default),
    // or the I/O runtime's `ConnectionManager`. The other is shown too.
    let on_mux = caller_runtime();
    let (base, other) = if on_mux {
        (
            raw_get(
                "redis.hit.raw",
                "raw redis-rs GET (MultiplexedConnection, as ours)",
                mux_ours.clone(),
                keys,
            ),
            raw_get(
                "redis.hit.raw_other",
                "raw GET (ConnectionManager)",
                manager.clone(),
                keys,
            ),
        )
    } else {
        (
            raw_get(
                "redis.hit.raw",
                "raw redis-rs GET (ConnectionManager, as ours)",
                manager.clone(),
                keys,
            ),
            raw_get(
                "redis.hit.raw_other",
                "raw GET (MultiplexedConnection, as the caller runtime's)",
                mux_ours.clone(),
                keys,
            ),
        )
    };
    let ours = AsyncOp::new(
        "redis.hit.ours",
        "memocache #[cached] async fn",
        |i| async move {
            std::hint::black_box(ours_hit(i).await);
        },
    );
    let peer = peer_op(
        "redis.hit.cached",
        "cached #[concurrent_cached(redis = true)]",
        Function::Hit,
        peer::Id::Key,
    );
    let raw_mux = raw_get(
        "redis.hit.raw_mux",
        "raw GET (MultiplexedConnection, Nagle on, as cached's)",
        mux.clone(),
        keys,
    );
    let (c, k, g) = (manager.clone(), keys.clone(), Arc::new(gen_key.to_owned()));
    let raw_mget = AsyncOp::new(
        "redis.hit.raw_mget",
        "raw MGET gen key (our hit's command untracked)",
        move |i| {
            let (mut c, k, g) = (c.clone(), k.clone(), g.clone());
            async move {
                let got: redis::RedisResult<Vec<Option<Vec<u8>>>> = redis::cmd("MGET")
                    .arg(&*g)
                    .arg(&k[i as usize])
                    .query_async(&mut c)
                    .await;
                if let Err(e) = got {
                    failed("raw MGET", &e);
                }
            }
        },
    );
    let (c, k) = (manager.clone(), keys.clone());
    let raw_decode = AsyncOp::new(
        "redis.hit.raw_decode",
        "raw GET + envelope decode",
        move |i| {
            let (mut c, k) = (c.clone(), k.clone());
            async move {
                let got: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
                    .arg(&k[i as usize])
                    .query_async(&mut c)
                    .await;
                match got {
                    Ok(Some(raw)) => {
                        let header = read_header(&raw).expect("an envelope");
                        let value: String = decode_value(&header, &raw).expect("a String");
                        std::hint::black_box(value);
                    }
                    Ok(None) => failed("raw GET + decode", &"no entry"),
                    Err(e) => failed("raw GET + decode", &e),
                }
            }
        },
    );
    vec![base, ours, peer, other, raw_mux, raw_mget, raw_decode]
}

/// Our hit's command, run the way memocache runs it: as a task on a
/// 1-worker runtime that owns the connection, awaited from the caller's.
fn spawned_mget(
    io: &tokio::runtime::Handle,
    manager: &ConnectionManager,
    gen_key: &str,
    keys: &Arc<Vec<String>>,
) -> AsyncOp {
    let (io, c, k, g) = (
        io.clone(),
        manager.clone(),
        keys.clone(),
        Arc::new(gen_key.to_owned()),
    );
    AsyncOp::new(
        "redis.hit.raw_spawn",
        "raw MGET as a task on a 1-worker runtime",
        move |i| {
            let (mut c, k, g) = (c.clone(), k.clone(), g.clone());
            let task = io.spawn(async move {
                redis::cmd("MGET")
                    .arg(&*g)
                    .arg(&k[i as usize])
                    .query_async::<Vec<Option<Vec<u8>>>>(&mut c)
                    .await
            });
            async move {
                match task.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => failed("raw MGET on the I/O runtime", &e),
                    Err(e) => failed("raw MGET on the I/O runtime", &e),
                }
            }
        },
    )
}

fn miss_ops() -> Vec<AsyncOp> {
    // Arguments never seen before: every call misses.
    static NEXT: AtomicU64 = AtomicU64::new(1 << 40);
    fn fresh() -> u64 {
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
    let direct = AsyncOp::new(
        "redis.miss.direct",
        "the function called directly (_uncached)",
        move |_| async move {
            std::hint::black_box(ours_miss_uncached(fresh()).await);
        },
    );
    let ours = AsyncOp::new(
        "redis.miss.ours",
        "memocache #[cached] miss (read, compute, store)",
        move |_| async move {
            std::hint::black_box(ours_miss(fresh()).await);
        },
    );
    let peer = peer_op(
        "redis.miss.cached",
        "cached #[concurrent_cached(redis = true)] miss",
        Function::Miss,
        |_| peer::Id::Next(fresh),
    );
    vec![direct, ours, peer]
}

/// Waits until a call of `probe` is answered by a local tier (the tier
/// is usable only once the invalidation subscription is up), at most 5 s.
pub fn wait_for_local_hits(probe: impl Fn()) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let before = memocache::stats().local_hits;
        probe();
        if memocache::stats().local_hits > before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
