//! Hits on a caller connection read their entry alone (`GET`), with the
//! namespace's generation known through Redis client-side tracking; a flush
//! made through another connection (another process) is still never missed.
//! Each test starts its own redis-server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memocache_runtime::{Cache, Config, Manager};
use memocache_testkit::redis;
use memocache_testkit::RedisServer;

fn manager(url: &str) -> Arc<Manager> {
    let config = Config::builder()
        .url(url)
        .prefix("tracked")
        .budget(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(config.redis_caller_runtime, "on by default");
    Arc::new(Manager::new(config).unwrap())
}

fn cache(m: &Arc<Manager>) -> Cache<u64, u64> {
    Cache::with_manager(m.clone(), "math", "double").unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// How many times the server ran `command` (`INFO commandstats`).
fn calls(admin: &mut redis::Connection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(admin).unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

fn admin(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Reads until the reads run on this runtime's own (tracking) connection:
/// two reads in a row cost one `GET` each and no `MGET`.
async fn until_tracked(c: &Cache<u64, u64>, admin: &mut redis::Connection, key: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (gets, mgets) = (calls(admin, "get"), calls(admin, "mget"));
        c.get(&key).await.unwrap();
        c.get(&key).await.unwrap();
        if calls(admin, "get") == gets + 2 && calls(admin, "mget") == mgets {
            return;
        }
        assert!(Instant::now() < deadline, "reads never went to GET alone");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn hits_read_their_entry_alone() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let m = manager(&server.url());
    let c = cache(&m);
    runtime().block_on(async {
        for i in 0..8 {
            c.set(&i, &(i * 2)).await.unwrap();
        }
        until_tracked(&c, &mut admin, 0).await;
        let (gets, mgets) = (calls(&mut admin, "get"), calls(&mut admin, "mget"));
        for round in 0..50 {
            for i in 0..8 {
                assert_eq!(c.get(&i).await.unwrap(), Some(i * 2), "round {round}");
            }
        }
        assert_eq!(calls(&mut admin, "mget"), mgets, "no MGET on a hit");
        assert_eq!(calls(&mut admin, "get"), gets + 400);

        // Past the trust period (1 s) a read arms the generation again,
        // once: the hits after it read their entry alone again.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mgets = calls(&mut admin, "mget");
        for round in 0..20 {
            for i in 0..8 {
                assert_eq!(c.get(&i).await.unwrap(), Some(i * 2), "round {round}");
            }
        }
        let rearmed = calls(&mut admin, "mget") - mgets;
        assert!(
            (1..=2).contains(&rearmed),
            "{rearmed} MGETs for 160 hits after the trust period"
        );
    });
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

/// After `flush_namespace` returns in one process, the next read in another
/// is a miss, every time, though that reader no longer reads the
/// generation key itself.
#[test]
fn a_flush_elsewhere_is_seen_by_the_very_next_read() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let reader = manager(&server.url());
    let flusher = manager(&server.url());
    let c = cache(&reader);
    runtime().block_on(async {
        c.set(&1, &1).await.unwrap();
        until_tracked(&c, &mut admin, 1).await;
        let mut fast_reads = 0;
        for i in 0..300 {
            c.set(&1, &i).await.unwrap();
            let gets = calls(&mut admin, "get");
            let mgets = calls(&mut admin, "mget");
            assert_eq!(c.get(&1).await.unwrap(), Some(i));
            if calls(&mut admin, "get") == gets + 1 && calls(&mut admin, "mget") == mgets {
                fast_reads += 1;
            }
            flusher.flush_namespace("math").await.unwrap();
            assert_eq!(
                c.get(&1).await.unwrap(),
                None,
                "read {i} saw a flushed entry"
            );
        }
        // Reads right after a store and before a flush were on GET alone
        // (the store's generation was known), so the path above was tested.
        assert!(
            fast_reads >= 250,
            "only {fast_reads} of 300 reads were GETs"
        );
    });
    assert_eq!(reader.stats().errors, 0, "{:?}", reader.stats());
}

/// Readers on four tasks against a flusher in another "process" that
/// stores a new value after each flush: a reader that starts after flush
/// `n` returned never gets a value stored before it.
#[test]
fn concurrent_readers_never_see_a_value_from_before_a_flush() {
    let server = RedisServer::start();
    let reader = manager(&server.url());
    let flusher = manager(&server.url());
    let rt = runtime();
    let flushes = Arc::new(AtomicU64::new(0));
    let writer = cache(&flusher);
    rt.block_on(writer.set(&7, &0)).unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let c = cache(&reader);
            let flushes = flushes.clone();
            rt.spawn(async move {
                let (mut reads, mut hits) = (0u64, 0u64);
                let deadline = Instant::now() + Duration::from_secs(3);
                while Instant::now() < deadline {
                    let done = flushes.load(Ordering::SeqCst);
                    if let Some(v) = c.get(&7).await.unwrap() {
                        assert!(v >= done, "read value {v} after flush {done} returned");
                        hits += 1;
                    }
                    reads += 1;
                }
                (reads, hits)
            })
        })
        .collect();
    let flusher_task = {
        let flushes = flushes.clone();
        let flusher = flusher.clone();
        rt.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut n = 0;
            while Instant::now() < deadline {
                flusher.flush_namespace("math").await.unwrap();
                n += 1;
                flushes.store(n, Ordering::SeqCst);
                writer.set(&7, &n).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n
        })
    };
    let n = rt.block_on(flusher_task).unwrap();
    assert!(n > 50, "only {n} flushes");
    let (mut reads, mut hits) = (0, 0);
    for r in readers {
        let (r, h) = rt.block_on(r).unwrap();
        reads += r;
        hits += h;
    }
    assert!(hits > 100 && hits < reads, "{hits} hits of {reads} reads");
    assert_eq!(reader.stats().errors, 0, "{:?}", reader.stats());
}

/// A user the server's ACL forbids `CLIENT TRACKING`: the caller connection
/// works without tracking, and hits read the generation with the entry.
#[test]
fn without_tracking_rights_hits_read_both_keys() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("plain")
        .arg("on")
        .arg(">secret")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .arg("-client|tracking")
        .arg("-client|caching")
        .query(&mut admin)
        .unwrap();
    let url = server
        .url()
        .replacen("redis://", "redis://plain:secret@", 1);
    let m = manager(&url);
    let c = cache(&m);
    runtime().block_on(async {
        c.set(&3, &6).await.unwrap();
        // Until this runtime's connection is up (`CLIENT LIST` shows it).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert_eq!(c.get(&3).await.unwrap(), Some(6));
            let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
            if list.lines().filter(|l| l.contains("user=plain")).count() >= 2 {
                break;
            }
            assert!(Instant::now() < deadline, "{list}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mgets = calls(&mut admin, "mget");
        for _ in 0..20 {
            assert_eq!(c.get(&3).await.unwrap(), Some(6));
        }
        assert_eq!(calls(&mut admin, "mget"), mgets + 20);
        m.flush_namespace("math").await.unwrap();
        assert_eq!(c.get(&3).await.unwrap(), None);
    });
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

/// `SWAPDB` changes every key without an invalidation message: a generation
/// remembered under tracking is trusted for a bounded time only, so reads
/// are right again within about a second.
#[test]
fn after_a_swapdb_reads_are_right_again_within_the_trust_period() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let m = manager(&server.url());
    let c = cache(&m);
    let rt = runtime();
    rt.block_on(c.set(&1, &10)).unwrap();
    // Database 1: the same entry, but a generation that moved on. (Made
    // before the reader tracks the generation key: Redis tracks key names
    // in every database.)
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("tracked:*")
        .query(&mut admin)
        .unwrap();
    let gen_key = keys
        .iter()
        .find(|k| k.ends_with(":gen"))
        .unwrap_or_else(|| panic!("{keys:?}"));
    let live: u64 = redis::cmd("GET").arg(gen_key).query(&mut admin).unwrap();
    for key in &keys {
        let copied: u64 = redis::cmd("COPY")
            .arg(key)
            .arg(key)
            .arg("DB")
            .arg(1)
            .query(&mut admin)
            .unwrap();
        assert_eq!(copied, 1, "{key}");
    }
    let _: () = redis::cmd("SELECT").arg(1).query(&mut admin).unwrap();
    let _: () = redis::cmd("SET")
        .arg(gen_key)
        .arg(live + 1)
        .query(&mut admin)
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut admin).unwrap();
    rt.block_on(until_tracked(&c, &mut admin, 1));
    let _: () = redis::cmd("SWAPDB")
        .arg(0)
        .arg(1)
        .query(&mut admin)
        .unwrap();
    let swapped = Instant::now();
    rt.block_on(async {
        while c.get(&1).await.unwrap().is_some() {
            assert!(
                swapped.elapsed() < Duration::from_secs(3),
                "the old generation is still trusted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}
