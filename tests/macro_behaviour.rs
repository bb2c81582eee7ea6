//! What `#[cached]` and `#[cache_remove]` do, on the embedded memory
//! backend (nothing configured). Every test counts body executions with its
//! own counter and uses its own functions and namespaces, so tests can run
//! in parallel in one process.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use memocache::{cache_remove, cached};
use serde::{Deserialize, Serialize};

fn runs(counter: &AtomicUsize) -> usize {
    counter.load(SeqCst)
}

// --- 1000 calls, 10 arguments; removal of one entry ---

static SQUARE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-square")]
fn square(x: u64) -> u64 {
    SQUARE_RUNS.fetch_add(1, SeqCst);
    x * x
}

#[cache_remove(square(x))]
fn forget_square(x: u64) -> Result<(), String> {
    let _ = x;
    Ok(())
}

#[test]
fn a_thousand_calls_with_ten_arguments_run_ten_times_and_a_removal_one_more() {
    for i in 0..1000u64 {
        assert_eq!(square(i % 10), (i % 10) * (i % 10));
    }
    assert_eq!(runs(&SQUARE_RUNS), 10);

    forget_square(3).unwrap();
    for i in 0..1000u64 {
        assert_eq!(square(i % 10), (i % 10) * (i % 10));
    }
    assert_eq!(
        runs(&SQUARE_RUNS),
        11,
        "only the removed entry is recomputed"
    );
}

// --- namespace flush ---

static FLUSH_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-flush")]
fn flushable(x: u32) -> u32 {
    FLUSH_RUNS.fetch_add(1, SeqCst);
    x + 1
}

#[cache_remove(namespace = "mb-flush")]
fn admin_flush() {}

#[test]
fn a_namespace_flush_makes_the_next_calls_recompute() {
    assert_eq!(flushable(1), 2);
    assert_eq!(flushable(2), 3);
    assert_eq!(flushable(1), 2);
    assert_eq!(runs(&FLUSH_RUNS), 2);

    memocache::flush_namespace_blocking("mb-flush").unwrap();
    assert_eq!(flushable(1), 2);
    assert_eq!(flushable(2), 3);
    assert_eq!(runs(&FLUSH_RUNS), 4);

    admin_flush();
    assert_eq!(flushable(1), 2);
    assert_eq!(runs(&FLUSH_RUNS), 5);
}

// --- Result and Option shapes ---

static RESULT_RUNS: AtomicUsize = AtomicUsize::new(0);
static RESULT_ERR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Failed(String);

/// Not `Serialize`: the default `Result` shape needs nothing of `E`.
#[derive(Debug)]
struct Opaque;

#[cached(namespace = "mb-result")]
fn checked(x: i32) -> Result<i32, Opaque> {
    RESULT_RUNS.fetch_add(1, SeqCst);
    if x < 0 {
        Err(Opaque)
    } else {
        Ok(x)
    }
}

#[cached(namespace = "mb-result", cache_err)]
fn checked_keep_err(x: i32) -> Result<i32, Failed> {
    RESULT_ERR_RUNS.fetch_add(1, SeqCst);
    if x < 0 {
        Err(Failed(format!("{x} is negative")))
    } else {
        Ok(x)
    }
}

#[test]
fn ok_is_cached_err_is_not_unless_cache_err() {
    assert_eq!(checked(1).unwrap(), 1);
    assert_eq!(checked(1).unwrap(), 1);
    assert_eq!(runs(&RESULT_RUNS), 1);
    assert!(checked(-1).is_err());
    assert!(checked(-1).is_err());
    assert_eq!(runs(&RESULT_RUNS), 3, "an Err is not cached");

    let first = checked_keep_err(-1);
    assert_eq!(checked_keep_err(-1), first);
    assert_eq!(
        runs(&RESULT_ERR_RUNS),
        1,
        "with cache_err the Err is cached"
    );
}

static OPTION_RUNS: AtomicUsize = AtomicUsize::new(0);
static OPTION_NONE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-option")]
fn find(x: u8) -> Option<String> {
    OPTION_RUNS.fetch_add(1, SeqCst);
    x.is_multiple_of(2).then(|| format!("even {x}"))
}

#[cached(namespace = "mb-option", cache_none)]
fn find_keep_none(x: u8) -> Option<String> {
    OPTION_NONE_RUNS.fetch_add(1, SeqCst);
    x.is_multiple_of(2).then(|| format!("even {x}"))
}

#[test]
fn some_is_cached_none_is_not_unless_cache_none() {
    assert_eq!(find(2).as_deref(), Some("even 2"));
    assert_eq!(find(2).as_deref(), Some("even 2"));
    assert_eq!(runs(&OPTION_RUNS), 1);
    assert_eq!(find(3), None);
    assert_eq!(find(3), None);
    assert_eq!(runs(&OPTION_RUNS), 3, "None is not cached");

    assert_eq!(find_keep_none(3), None);
    assert_eq!(find_keep_none(3), None);
    assert_eq!(runs(&OPTION_NONE_RUNS), 1, "with cache_none None is cached");
}

// --- store_if ---

static STORE_IF_RUNS: AtomicUsize = AtomicUsize::new(0);

// `store_if` takes a `fn(&Ret) -> bool`: `&Vec<u32>` here, not a slice.
#[allow(clippy::ptr_arg)]
fn is_complete(out: &Vec<u32>) -> bool {
    out.len() >= 3
}

#[cached(namespace = "mb-store-if", store_if = is_complete)]
fn page(len: u32) -> Vec<u32> {
    STORE_IF_RUNS.fetch_add(1, SeqCst);
    (0..len).collect()
}

#[test]
fn store_if_vetoes_storage() {
    page(2);
    page(2);
    assert_eq!(runs(&STORE_IF_RUNS), 2, "vetoed: not stored");
    page(5);
    page(5);
    assert_eq!(runs(&STORE_IF_RUNS), 3, "accepted: stored");
}

// --- version ---

static VERSION_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-version", version = 2)]
fn versioned(x: u64) -> u64 {
    VERSION_RUNS.fetch_add(1, SeqCst);
    x * 10
}

#[test]
fn version_separates_entries() {
    use memocache::__private::{put_blocking, Spec};
    // The same function before `version = 2` was added: same namespace,
    // path and arguments, no version. Its (stale) entry must not be read.
    static UNVERSIONED: Spec = Spec::new("mb-version", concat!(module_path!(), "::versioned"));
    let old_key = UNVERSIONED.args().arg(&7u64).finish();
    assert_ne!(old_key.as_ref().unwrap(), &versioned_key(7).unwrap());
    put_blocking(&UNVERSIONED, old_key, &999u64).unwrap();

    assert!(versioned_key(7).unwrap().tail.contains(":v2:"));
    assert_eq!(versioned(7), 70);
    assert_eq!(runs(&VERSION_RUNS), 1);
}

// --- skip and key ---

static SKIP_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Not `Serialize`: a skipped argument need not be.
struct Logger(&'static str);

#[cached(namespace = "mb-skip", skip(logger))]
fn with_logger(id: u32, logger: &Logger) -> String {
    SKIP_RUNS.fetch_add(1, SeqCst);
    format!("{id} via {}", logger.0)
}

#[test]
fn skipped_arguments_are_not_in_the_key() {
    assert_eq!(with_logger(1, &Logger("a")), "1 via a");
    assert_eq!(with_logger(1, &Logger("b")), "1 via a", "shares the entry");
    assert_eq!(runs(&SKIP_RUNS), 1);
    with_logger(2, &Logger("a"));
    assert_eq!(runs(&SKIP_RUNS), 2);
}

static KEY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-key", key = id % 10)]
fn by_last_digit(id: u64) -> u64 {
    KEY_RUNS.fetch_add(1, SeqCst);
    id % 10
}

#[test]
fn a_key_expression_replaces_the_derived_key() {
    assert_eq!(by_last_digit(1), 1);
    assert_eq!(by_last_digit(11), 1);
    assert_eq!(by_last_digit(21), 1);
    assert_eq!(runs(&KEY_RUNS), 1);
    assert_eq!(by_last_digit(2), 2);
    assert_eq!(runs(&KEY_RUNS), 2);
}

static PATTERN_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-pattern", skip(b))]
fn pattern((a, b): (u32, u32), _: u8) -> u32 {
    PATTERN_RUNS.fetch_add(1, SeqCst);
    a * 100 + b
}

#[test]
fn pattern_arguments_key_by_the_names_they_bind() {
    assert_eq!(pattern((1, 2), 0), 102);
    assert_eq!(
        pattern((1, 3), 9),
        102,
        "b is skipped and `_` binds nothing"
    );
    assert_eq!(runs(&PATTERN_RUNS), 1);
    assert_eq!(pattern((2, 2), 0), 202);
    assert_eq!(runs(&PATTERN_RUNS), 2);
}

// --- generic functions ---

static GENERIC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-generic")]
fn describe<T: Serialize + std::fmt::Debug>(value: T) -> String {
    GENERIC_RUNS.fetch_add(1, SeqCst);
    format!("{value:?}: {}", std::any::type_name::<T>())
}

#[test]
fn instantiations_of_a_generic_function_do_not_share_entries() {
    // The canonical encoding of 1u32 and 1u64 is the same (widening an
    // argument keeps its keys): only the type parameter tells them apart.
    assert_eq!(describe(1u32), "1: u32");
    assert_eq!(describe(1u64), "1: u64");
    assert_eq!(describe(1u32), "1: u32");
    assert_eq!(runs(&GENERIC_RUNS), 2);
}

// --- methods ---

static METHOD_RUNS: AtomicUsize = AtomicUsize::new(0);
static METHOD_KEYED_RUNS: AtomicUsize = AtomicUsize::new(0);

struct Repo {
    tenant: u32,
}

impl Repo {
    #[cached(namespace = "mb-method")]
    fn shared(&self, id: u32) -> String {
        METHOD_RUNS.fetch_add(1, SeqCst);
        format!("tenant {} item {id}", self.tenant)
    }

    #[cached(namespace = "mb-method", key = (self.tenant, id))]
    fn per_tenant(&self, id: u32) -> String {
        METHOD_KEYED_RUNS.fetch_add(1, SeqCst);
        format!("tenant {} item {id}", self.tenant)
    }

    #[cached(namespace = "mb-method")]
    fn associated(id: u32) -> Option<Self> {
        Some(Repo { tenant: id })
    }
}

impl Serialize for Repo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.tenant.serialize(s)
    }
}
impl<'de> Deserialize<'de> for Repo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Repo {
            tenant: u32::deserialize(d)?,
        })
    }
}
impl Clone for Repo {
    fn clone(&self) -> Self {
        Repo {
            tenant: self.tenant,
        }
    }
}

#[test]
fn self_is_out_of_the_key_unless_the_key_names_it() {
    let a = Repo { tenant: 1 };
    let b = Repo { tenant: 2 };
    assert_eq!(a.shared(7), "tenant 1 item 7");
    assert_eq!(
        b.shared(7),
        "tenant 1 item 7",
        "same arguments share the entry"
    );
    assert_eq!(runs(&METHOD_RUNS), 1);

    assert_eq!(a.per_tenant(7), "tenant 1 item 7");
    assert_eq!(b.per_tenant(7), "tenant 2 item 7");
    assert_eq!(a.per_tenant(7), "tenant 1 item 7");
    assert_eq!(runs(&METHOD_KEYED_RUNS), 2);

    assert_eq!(Repo::associated(3).unwrap().tenant, 3);
    assert!(Repo::associated_remove(3).unwrap());
}

// --- single flight ---

static FLIGHT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-flight")]
async fn slow(x: u32) -> u32 {
    FLIGHT_RUNS.fetch_add(1, SeqCst);
    // Keeps the computation in flight while the other callers arrive; the
    // assertion does not depend on how long it takes.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    x * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_on_a_cold_key_run_the_body_once() {
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                slow(21).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 42);
    }
    assert_eq!(runs(&FLIGHT_RUNS), 1);
}

// --- sync functions from anywhere ---

/// One counter per argument: the tests below run in parallel, each with
/// its own argument.
static SYNC_RUNS: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];

#[cached(namespace = "mb-sync")]
fn sync_fn(x: u32) -> u32 {
    SYNC_RUNS[x as usize].fetch_add(1, SeqCst);
    x + 100
}

#[test]
fn a_sync_function_works_from_a_plain_thread() {
    let out = std::thread::spawn(|| sync_fn(1)).join().unwrap();
    assert_eq!(out, 101);
    assert_eq!(sync_fn(1), 101);
    assert_eq!(runs(&SYNC_RUNS[1]), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_sync_function_works_inside_a_current_thread_runtime() {
    assert_eq!(sync_fn(2), 102);
    assert_eq!(sync_fn(2), 102);
    assert_eq!(runs(&SYNC_RUNS[2]), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_function_works_inside_a_multi_thread_runtime() {
    assert_eq!(sync_fn(3), 103);
    assert_eq!(sync_fn(3), 103);
    assert_eq!(runs(&SYNC_RUNS[3]), 1);
}

#[test]
fn sync_calls_from_everywhere_share_entries() {
    sync_fn(4);
    std::thread::spawn(|| sync_fn(4)).join().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async { sync_fn(4) });
    assert_eq!(runs(&SYNC_RUNS[4]), 1);
    assert!(sync_fn_remove(4).unwrap());
    sync_fn(4);
    assert_eq!(runs(&SYNC_RUNS[4]), 2);
}

// --- companions ---

static COMPANION_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-companion", ttl = "1h")]
fn load_user(id: u64, name: &str) -> Result<String, Opaque> {
    COMPANION_RUNS.fetch_add(1, SeqCst);
    Ok(format!("{id}:{name}:{}", COMPANION_RUNS.load(SeqCst)))
}

#[test]
fn sync_companions() {
    assert_eq!(
        load_user_key(1, "ann").unwrap(),
        load_user_key(1, "ann").unwrap()
    );
    assert_ne!(
        load_user_key(1, "ann").unwrap(),
        load_user_key(2, "ann").unwrap()
    );

    let first = load_user(1, "ann").unwrap();
    assert_eq!(runs(&COMPANION_RUNS), 1);

    // _uncached runs the body and leaves the cache alone.
    let fresh = load_user_uncached(1, "ann").unwrap();
    assert_ne!(fresh, first);
    assert_eq!(runs(&COMPANION_RUNS), 2);
    assert_eq!(load_user(1, "ann").unwrap(), first);

    // _refresh recomputes and stores.
    let refreshed = load_user_refresh(1, "ann").unwrap();
    assert_eq!(runs(&COMPANION_RUNS), 3);
    assert_eq!(load_user(1, "ann").unwrap(), refreshed);
    assert_eq!(runs(&COMPANION_RUNS), 3);

    // _prime stores a value the cached function then returns.
    load_user_prime(2, "bob", &"primed".to_owned()).unwrap();
    assert_eq!(load_user(2, "bob").unwrap(), "primed");
    assert_eq!(runs(&COMPANION_RUNS), 3);

    // _remove removes one entry and says whether it was there.
    assert!(load_user_remove(2, "bob").unwrap());
    assert!(!load_user_remove(2, "bob").unwrap());
    assert_ne!(load_user(2, "bob").unwrap(), "primed");
    assert_eq!(runs(&COMPANION_RUNS), 4);
}

static ASYNC_COMPANION_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-companion")]
async fn fetch(id: u64) -> Option<u64> {
    ASYNC_COMPANION_RUNS.fetch_add(1, SeqCst);
    Some(id + ASYNC_COMPANION_RUNS.load(SeqCst) as u64 * 1000)
}

#[tokio::test]
async fn async_companions() {
    fetch_prime(5, &7).await.unwrap();
    assert_eq!(fetch(5).await, Some(7));
    assert_eq!(runs(&ASYNC_COMPANION_RUNS), 0);
    assert!(fetch_remove(5).await.unwrap());
    assert_eq!(fetch(5).await, Some(1005));
    assert_eq!(fetch_refresh(5).await, Some(2005));
    assert_eq!(fetch(5).await, Some(2005));
    assert_eq!(fetch_uncached(5).await, Some(3005));
    assert_eq!(fetch(5).await, Some(2005));
    assert_eq!(runs(&ASYNC_COMPANION_RUNS), 3);
}

// --- #[cache_remove] ---

static REMOVE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(namespace = "mb-remove")]
async fn profile(id: u64) -> String {
    REMOVE_RUNS.fetch_add(1, SeqCst);
    format!("profile {id} #{}", REMOVE_RUNS.load(SeqCst))
}

#[derive(Debug)]
struct Rejected;

#[cache_remove(profile(id))]
async fn update_profile(id: u64, accept: bool) -> Result<u64, Rejected> {
    if !accept {
        return Err(Rejected);
    }
    let parsed: u64 = "1".parse().map_err(|_| Rejected)?;
    Ok(parsed)
}

#[cache_remove(profile(id), before)]
async fn reset_profile(id: u64) -> Result<(), Rejected> {
    // Removed before the body: even a failure leaves no entry behind.
    let _ = id;
    Err(Rejected)
}

#[tokio::test]
async fn cache_remove_removes_after_success_only_or_before_with_before() {
    let first = profile(1).await;
    assert_eq!(profile(1).await, first);

    assert!(update_profile(1, false).await.is_err());
    assert_eq!(profile(1).await, first, "an Err removes nothing");

    assert_eq!(update_profile(1, true).await.unwrap(), 1);
    let second = profile(1).await;
    assert_ne!(second, first, "an Ok removed the entry");

    assert!(reset_profile(1).await.is_err());
    assert_ne!(profile(1).await, second, "`before` removed it first");
    assert_eq!(runs(&REMOVE_RUNS), 3);
}

static REMOVE_METHOD_RUNS: AtomicUsize = AtomicUsize::new(0);

struct Accounts;

impl Accounts {
    #[cached(namespace = "mb-remove")]
    fn balance(&self, account: String) -> u64 {
        REMOVE_METHOD_RUNS.fetch_add(1, SeqCst);
        account.len() as u64
    }

    #[cache_remove(self.balance(account.clone()), Accounts::balance(self, "other".to_owned()))]
    fn deposit(&self, account: String) -> u64 {
        account.len() as u64
    }
}

#[test]
fn cache_remove_targets_methods_and_several_entries() {
    let accounts = Accounts;
    accounts.balance("main".to_owned());
    accounts.balance("other".to_owned());
    accounts.balance("main".to_owned());
    assert_eq!(runs(&REMOVE_METHOD_RUNS), 2);
    accounts.deposit("main".to_owned());
    accounts.balance("main".to_owned());
    accounts.balance("other".to_owned());
    assert_eq!(runs(&REMOVE_METHOD_RUNS), 4);
}
