//! `#[cached]` functions on a real Redis (one `redis-server` per test
//! binary, from memocache-testkit), including two OS processes sharing
//! entries: the test binary re-runs itself as the second process.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;

mod common;

use memocache::{cache_remove, cached};

const URL_VAR: &str = "MEMOCACHE_MACRO_TEST_URL";
const PREFIX_VAR: &str = "MEMOCACHE_MACRO_TEST_PREFIX";
const PARENT_VAR: &str = "MEMOCACHE_MACRO_TEST_PARENT";

/// Sets up the global cache once per process: on the shared test server
/// with a fresh prefix, or, in a child process, on the parent's server and
/// prefix. Returns the URL and the prefix.
fn setup() -> &'static (String, String) {
    static SETUP: OnceLock<(String, String)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let (url, prefix) = match (std::env::var(URL_VAR), std::env::var(PREFIX_VAR)) {
            (Ok(url), Ok(prefix)) => (url, prefix),
            _ => (
                memocache_testkit::shared().url(),
                memocache_testkit::unique("m"),
            ),
        };
        common::init_redis(&url, &prefix);
        (url, prefix)
    })
}

fn runs(counter: &AtomicUsize) -> usize {
    counter.load(SeqCst)
}

// --- entries are in Redis ---

static VISIBLE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mr-visible", ttl = "10m")]
fn visible(id: u32) -> String {
    VISIBLE_RUNS.fetch_add(1, SeqCst);
    format!("value {id}")
}

#[cache_remove(visible(id))]
fn touch_visible(id: u32) {
    let _ = id;
}

#[test]
fn entries_are_stored_in_redis_and_removed_from_it() {
    let (_, prefix) = setup();
    let server = memocache_testkit::shared();
    assert_eq!(visible(1), "value 1");
    assert_eq!(visible(1), "value 1");
    assert_eq!(runs(&VISIBLE_RUNS), 1);

    let keys = server.keys(&format!("{prefix}:mr-visible:"));
    let function = concat!(module_path!(), "::visible");
    assert!(
        keys.iter().any(|k| k.contains(function)),
        "no key for {function} among {keys:?}"
    );

    touch_visible(1);
    assert_eq!(visible(1), "value 1");
    assert_eq!(runs(&VISIBLE_RUNS), 2, "the removal reached Redis");
}

// --- sync functions on Redis, from a plain thread and inside runtimes ---

/// One counter per argument: the tests below run in parallel, each with
/// its own argument.
static SYNC_RUNS: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

#[cached(namespace = "mr-sync")]
fn sync_on_redis(x: u64) -> Result<u64, String> {
    SYNC_RUNS[x as usize].fetch_add(1, SeqCst);
    Ok(x * 3)
}

#[test]
fn a_sync_function_on_redis_works_from_a_plain_thread() {
    setup();
    let out = std::thread::spawn(|| (sync_on_redis(1), sync_on_redis(1)))
        .join()
        .unwrap();
    assert_eq!(out, (Ok(3), Ok(3)));
    assert_eq!(sync_on_redis(1), Ok(3));
    assert_eq!(runs(&SYNC_RUNS[1]), 1);
}

#[test]
fn a_sync_function_on_redis_works_inside_a_multi_thread_runtime() {
    setup();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = rt.block_on(async { (sync_on_redis(2), sync_on_redis(2)) });
    assert_eq!((a, b), (Ok(6), Ok(6)));
    rt.block_on(async { assert_eq!(sync_on_redis(2), Ok(6)) });
    assert_eq!(runs(&SYNC_RUNS[2]), 1);
}

#[test]
fn a_sync_function_on_redis_works_inside_a_current_thread_runtime() {
    setup();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = rt.block_on(async { (sync_on_redis(3), sync_on_redis(3)) });
    assert_eq!((a, b), (Ok(9), Ok(9)));
    rt.block_on(async { assert_eq!(sync_on_redis(3), Ok(9)) });
    assert_eq!(runs(&SYNC_RUNS[3]), 1);
}

// --- async functions on Redis ---

static ASYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mr-async")]
async fn async_on_redis(name: &str) -> Option<String> {
    ASYNC_RUNS.fetch_add(1, SeqCst);
    Some(name.to_uppercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_function_on_redis_caches_and_its_companions_work() {
    setup();
    assert_eq!(async_on_redis("ann").await.as_deref(), Some("ANN"));
    assert_eq!(async_on_redis("ann").await.as_deref(), Some("ANN"));
    assert_eq!(runs(&ASYNC_RUNS), 1);
    async_on_redis_prime("bob", &"primed".to_owned())
        .await
        .unwrap();
    assert_eq!(async_on_redis("bob").await.as_deref(), Some("primed"));
    assert!(async_on_redis_remove("bob").await.unwrap());
    assert_eq!(async_on_redis("bob").await.as_deref(), Some("BOB"));
    assert_eq!(runs(&ASYNC_RUNS), 2);
}

// --- two processes ---

static SHARED_RUNS: AtomicUsize = AtomicUsize::new(0);

/// The value says which process computed it.
#[cached(namespace = "mr-processes")]
fn computed_by(x: u32) -> String {
    SHARED_RUNS.fetch_add(1, SeqCst);
    format!("{x} computed by {}", std::process::id())
}

const TWO_PROCESSES: &str = "two_processes_share_entries_through_redis";

/// The parent computes 1, then runs this same test again as a child process
/// (which hits 1 and computes 2), then hits 2.
#[test]
fn two_processes_share_entries_through_redis() {
    if std::env::var(PARENT_VAR).is_ok() {
        return child_reads_and_writes_shared_entries();
    }
    let (url, prefix) = setup();
    let parent = std::process::id();
    assert_eq!(computed_by(1), format!("1 computed by {parent}"));
    assert_eq!(runs(&SHARED_RUNS), 1);

    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TWO_PROCESSES, "--nocapture"])
        .env(URL_VAR, url)
        .env(PREFIX_VAR, prefix)
        .env(PARENT_VAR, parent.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child ran no test:\n{stdout}"
    );

    // The child computed 2; here it is a hit.
    let from_child = computed_by(2);
    assert!(from_child.starts_with("2 computed by "));
    assert_ne!(from_child, format!("2 computed by {parent}"));
    assert_eq!(
        runs(&SHARED_RUNS),
        1,
        "the parent did not run the body for 2"
    );
}

/// The child's part of the test above.
fn child_reads_and_writes_shared_entries() {
    let parent = std::env::var(PARENT_VAR).expect("started by the parent test");
    setup();
    assert_eq!(computed_by(1), format!("1 computed by {parent}"));
    assert_eq!(runs(&SHARED_RUNS), 0, "the child got the parent's entry");
    assert_eq!(
        computed_by(2),
        format!("2 computed by {}", std::process::id())
    );
    assert_eq!(runs(&SHARED_RUNS), 1);
}
