//! Local tiers in two OS processes sharing a Redis: a removal or a flush in
//! one is seen by the other's local tier within 10 ms. The test binary runs
//! itself again as the second process (same test, child role).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

use memocache::cached;

const ROLE: &str = "MEMOCACHE_LOCAL_TEST_CHILD";
const URL: &str = "MEMOCACHE_LOCAL_TEST_URL";
const PREFIX: &str = "MEMOCACHE_LOCAL_TEST_PREFIX";

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "local-redis", local_ttl = "1m")]
fn profile(id: u32) -> String {
    RUNS.fetch_add(1, SeqCst);
    format!("profile {id}")
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// The child: warms its local tier (the first call computes, or hits what
/// an earlier child stored), says so, then calls in a loop until the body
/// runs again, and prints when that happened.
fn child() {
    common::init_redis(
        &std::env::var(URL).unwrap(),
        &std::env::var(PREFIX).unwrap(),
    );
    profile(1);
    // Wait until the local tier answers (its subscription is up).
    let deadline = Instant::now() + Duration::from_secs(5);
    while memocache::stats().local_hits == 0 {
        assert!(Instant::now() < deadline, "the local tier never answered");
        profile(1);
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs(5);
    let warm = RUNS.load(SeqCst);
    while RUNS.load(SeqCst) == warm {
        assert!(Instant::now() < deadline, "the invalidation never arrived");
        profile(1);
    }
    println!("recomputed_at {}", now_us());
}

/// Runs a child, lets `invalidate` run once the child's local tier is warm,
/// and returns how long after `invalidate` returned the child recomputed
/// (negative: before it returned).
fn seen_after(server_url: &str, prefix: &str, test: &str, invalidate: impl FnOnce()) -> i128 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(ROLE, "1")
        .env(URL, server_url)
        .env(PREFIX, prefix)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = |what: &str| loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the child ended before `{what}`"))
            .unwrap();
        if let Some(rest) = line.split(what).nth(1) {
            break rest.trim().to_owned();
        }
    };
    next("ready");
    invalidate();
    let done = now_us();
    let seen: u128 = next("recomputed_at").parse().unwrap();
    assert!(child.wait().unwrap().success());
    seen as i128 - done as i128
}

fn parent_setup() -> (String, String) {
    let url = memocache_testkit::shared().url();
    let prefix = memocache_testkit::unique("local");
    common::init_redis(&url, &prefix);
    (url, prefix)
}

#[test]
fn removal_and_flush_reach_another_process_within_10ms() {
    if std::env::var(ROLE).is_ok() {
        return child();
    }
    let (url, prefix) = parent_setup();
    let test = "removal_and_flush_reach_another_process_within_10ms";
    let removal = seen_after(&url, &prefix, test, || {
        profile_remove(1).unwrap();
    });
    let flush = seen_after(&url, &prefix, test, || {
        memocache::flush_namespace_blocking("local-redis").unwrap();
    });
    println!("removal seen after {removal} µs, flush seen after {flush} µs");
    assert!(
        removal < 10_000,
        "a removal took {removal} µs to reach the other process"
    );
    assert!(
        flush < 10_000,
        "a flush took {flush} µs to reach the other process"
    );
}
