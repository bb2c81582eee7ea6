//! `lock`: four OS processes miss one cold key at the same moment; one
//! computes, the others wait for its value. The body counts its runs in
//! Redis itself, so the count spans the processes. The test binary runs
//! itself again as each of the four (same test, child role).

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;

use memocache::cached;
use memocache_testkit::redis;

const ROLE: &str = "MEMOCACHE_LOCK_TEST_CHILD";
const URL: &str = "MEMOCACHE_LOCK_TEST_URL";
const PREFIX: &str = "MEMOCACHE_LOCK_TEST_PREFIX";
const START_AT: &str = "MEMOCACHE_LOCK_TEST_START_AT";
const TEST: &str = "four_processes_one_cold_key_one_computation";

fn runs_key() -> String {
    format!("{}:test-runs", std::env::var(PREFIX).unwrap())
}

#[cached(namespace = "reports", ttl = "10m", lock = "10s")]
async fn report(day: u32) -> String {
    let client = redis::Client::open(std::env::var(URL).unwrap()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: i64 = redis::cmd("INCR").arg(runs_key()).query(&mut conn).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    format!("report of day {day}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn child() {
    common::init_redis(
        &std::env::var(URL).unwrap(),
        &std::env::var(PREFIX).unwrap(),
    );
    // A common start time, so that all four miss the cold key together.
    let start: u64 = std::env::var(START_AT).unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(now_ms()))).await;
    let calls: Vec<_> = (0..10).map(|_| tokio::spawn(report(7))).collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), "report of day 7");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_one_cold_key_one_computation() {
    if std::env::var(ROLE).is_ok() {
        return child().await;
    }
    let server = memocache_testkit::shared();
    let prefix = memocache_testkit::unique("lock");
    let start = now_ms() + 1500;
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", TEST, "--nocapture"])
                .env(ROLE, "1")
                .env(URL, server.url())
                .env(PREFIX, &prefix)
                .env(START_AT, start.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child process failed");
    }
    let mut conn = server.client();
    let runs: i64 = redis::cmd("GET")
        .arg(format!("{prefix}:test-runs"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(runs, 1, "4 processes x 10 calls on one cold key");
    let left = server.keys(&format!("{prefix}:reports:"));
    assert!(
        left.iter().all(|k| !k.ends_with(":lock")),
        "a lock was left: {left:?}"
    );
}
