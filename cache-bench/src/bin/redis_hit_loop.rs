//! A fixed number of Redis hits, for an instruction count: 256 tasks (or
//! `TASKS` of them) on a two-worker runtime each make `N` hits of one
//! `#[cached]` async fn (mode `ours`: a 100-byte `String`, 64 keys), or `N`
//! raw redis-rs `GET`s of the same kind of entry (mode `raw`: on a
//! `ConnectionManager`; mode `mux`: on a plain `MultiplexedConnection` with
//! `TCP_NODELAY`, the bench's baseline), or `N` hits of the `cached` crate's
//! Redis macro on the same kind of function (mode `cached`: the bench's
//! `cached` row, compiled in its own crate as there), then the program
//! exits. It starts its own `redis-server` on a free loopback port
//! (`redis-server` must be installed).
//!
//! Under callgrind, the difference between two values of `N` is the cost of
//! the hits alone, free of start-up and of this VM's timing noise (see
//! `docs/BENCHMARKS.md`, "Instructions per hit"):
//!
//! ```sh
//! cargo build --release -p memocache-bench --bin redis_hit_loop
//! for n in 20 120; do
//!   N=$n valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/redis_hit_loop ours 2>&1 | grep Collected
//! done   # (second - first) / (256 * 100) = instructions per hit
//! ```
//!
//! With `TASKS=1`, take larger `N` (500 and 2500, say): the difference is
//! then divided by 2 000.

use std::sync::Arc;
use std::time::Duration;

use memocache_bench_cached_peer::{calls as peer_calls, Function};
use memocache_testkit::RedisServer;

#[memocache::cached(namespace = "loop", ttl = "1h")]
async fn hit(id: u64) -> String {
    format!("{id:0100}")
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "ours".into());
    if !["ours", "raw", "mux", "cached"].contains(&mode.as_str()) {
        eprintln!(
            "usage: redis_hit_loop [ours|raw|mux|cached]   (N hits per task from the N variable, default 100; \
             TASKS tasks, default 256)"
        );
        std::process::exit(2);
    }
    let per_task = count_from_env("N", 100);
    let tasks = count_from_env("TASKS", 256);
    let server = RedisServer::start();
    let url = server.url();
    // Before any thread starts: the `cached` crate reads its URL from here.
    std::env::set_var("CACHED_REDIS_CONNECTION_STRING", url.as_str());
    let config = memocache::Config::builder()
        .url(url.as_str())
        .default_ttl(Duration::from_secs(3600))
        .build()
        .expect("a configuration");
    memocache::init(config).expect("memocache starts");
    let rt = memocache_bench::measure::runtime(2);
    rt.block_on(async move {
        let client = redis::Client::open(url.as_str()).expect("a client");
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .expect("a connection");
        let info =
            redis::IntoConnectionInfo::into_connection_info(url.as_str()).expect("a valid URL");
        let tcp = info.tcp_settings().clone().set_nodelay(true);
        let mux = redis::Client::open(info.set_tcp_settings(tcp))
            .expect("a client")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection");
        let raw_key = Arc::new("loop-raw".to_owned());
        let _: () = redis::cmd("SET")
            .arg(&*raw_key)
            .arg("x".repeat(130))
            .query_async(&mut conn.clone())
            .await
            .expect("the raw entry is stored");
        for k in 0..64 {
            hit(k).await;
            peer_calls(Function::Hit, k, 1, 64)
                .await
                .expect("the peer stores");
        }
        let tasks: Vec<_> = (0..tasks)
            .map(|t| {
                let (mut conn, mut mux, key) = (conn.clone(), mux.clone(), raw_key.clone());
                let (on_mux, on_manager) = (mode == "mux", mode == "raw");
                let on_peer = mode == "cached";
                tokio::spawn(async move {
                    if on_peer {
                        let right = peer_calls(Function::Hit, t, per_task, 64).await;
                        assert_eq!(right.expect("peer hits"), per_task);
                        return;
                    }
                    for i in 0..per_task {
                        if on_mux {
                            raw_get(&mut mux, &key).await;
                        } else if on_manager {
                            raw_get(&mut conn, &key).await;
                        } else {
                            let k = (t + i) % 64;
                            assert_eq!(hit(k).await.len(), 100);
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a task");
        }
    });
    let stats = memocache::stats();
    println!("{} hits, {} misses", stats.hits, stats.misses);
}

/// A raw `GET` of `key`, which holds a value.
async fn raw_get(conn: &mut impl redis::aio::ConnectionLike, key: &str) {
    let got: Option<Vec<u8>> = redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .expect("a raw GET");
    assert!(got.is_some());
}

/// The number in the environment variable `name`, `default` when it is
/// unset; a malformed one ends the program, named.
fn count_from_env(name: &str, default: u64) -> u64 {
    match std::env::var(name).map(|n| n.parse()) {
        Err(_) => default,
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            eprintln!("{name}: {e}");
            std::process::exit(2);
        }
    }
}
