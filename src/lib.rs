//! # memocache
//!
//! Declarative memoization for Rust services: put `#[cached]` on a function
//! and its results are kept in Redis, or in process memory by default, keyed
//! by module path, function name and a stable digest of the arguments.
//!
//! ```
//! use std::time::Duration;
//! use memocache::Cache;
//!
//! # memocache::block_on(async {
//! // The explicit API: a typed handle on one kind of entry in a namespace.
//! let prices: Cache<str, u64> = Cache::new("prices", "by_sku").unwrap();
//! let price = prices.get_or_set("sku-1", || async { 4200 }).await;
//! assert_eq!(price, 4200);
//! memocache::flush_namespace("prices").await.unwrap();
//! # });
//! ```
//!
//! ## Configuration
//!
//! With nothing configured, entries live in process memory. Set
//! `MEMOCACHE_URL=redis://host:6379` (or call [`init`] with a [`Config`]) to
//! share them through Redis. See [`Config`] for every setting.
//!
//! ## The cache is a luxury
//!
//! A cached function returns exactly what the uncached one would, whatever
//! the backend does: slow, down or returning garbage, it is a miss. Every
//! backend call has a time budget; after repeated failures a circuit breaker
//! skips the backend for a cool-down.
#![deny(missing_docs)]

pub use memocache_runtime::backend::{Backend, BackendExt};
pub use memocache_runtime::config::{BackendUrl, Config, ConfigBuilder};
pub use memocache_runtime::key::{EntryKey, Name};
pub use memocache_runtime::{
    block_on, global, init, init_from_env, BreakerState, Cache, Error, ErrorKind, Health, Manager,
    Result, StatsSnapshot,
};

/// Flushes `namespace` in the global cache: at once, in every process, and
/// race-free (see [`Manager::flush_namespace`]).
///
/// # Errors
/// An invalid namespace or a backend failure.
pub async fn flush_namespace(namespace: &str) -> Result<()> {
    global().flush_namespace(namespace).await
}

/// [`flush_namespace`] for sync code (any thread, inside a runtime or not).
///
/// # Errors
/// As [`flush_namespace`].
pub fn flush_namespace_blocking(namespace: &str) -> Result<()> {
    block_on(flush_namespace(namespace))
}

/// Pings the global cache's backend.
pub async fn health() -> Health {
    global().health().await
}

/// The global cache's counters.
pub fn stats() -> StatsSnapshot {
    global().stats()
}

/// Caches a function's results: the function keeps its signature, and
/// callers compile the same with and without the attribute.
///
/// ```
/// use memocache::cached;
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct User { id: u64, name: String }
///
/// #[cached(namespace = "users", ttl = "5m")]
/// fn load_user(id: u64) -> Option<User> {
///     // Runs once per `id` (until the entry expires or is removed).
///     Some(User { id, name: format!("user {id}") })
/// }
///
/// assert_eq!(load_user(7).unwrap().name, "user 7");
/// assert_eq!(load_user(7).unwrap().name, "user 7"); // from the cache
/// ```
///
/// # What is cached
///
/// The return type decides, by its name: `Result<T, E>` caches `Ok` only
/// (and `E` needs no trait), `Option<T>` caches `Some` only, anything else
/// is cached whole. What is stored must be `Clone + Serialize +
/// DeserializeOwned + Send + Sync + 'static`; a function returning `()` or
/// `impl Trait` is a compile error.
///
/// # The key
///
/// By default the key is every argument but `self`, by value (a `&str` keys
/// like a `String`), each of which must be `Serialize`; arguments that are
/// patterns (`(a, b): (u32, u32)`) key by the names they bind. The function's
/// module path and name, its namespace, its `version` and the names of its
/// type parameters (and of `Self` in an `impl`) are part of the key too, so
/// two functions, two instantiations or two impls never share entries.
///
/// # Options
///
/// Every option is optional.
///
/// | option | meaning |
/// |---|---|
/// | `namespace = "users"` | the namespace, flushed as a whole; 1 to 64 of `[A-Za-z0-9_.-]` (default `"default"`) |
/// | `ttl = "1h 30m"` | how long entries live: units `ms`, `s`, `m`, `h`, `d` (default: the configured default TTL) |
/// | `key = <expr>` | the key instead of the arguments: any `Serialize` expression of the arguments (including `self`) |
/// | `skip(a, b)` | arguments left out of the key (they need not be `Serialize`) |
/// | `version = N` | entries of this version only: bump it when the stored type changes |
/// | `cache_err` | on a `Result`: cache `Err` too (the whole `Result` is stored, `E` must be storable) |
/// | `cache_none` | on an `Option`: cache `None` too |
/// | `store_if = path` | a `fn(&Ret) -> bool` that may veto storing an outcome |
/// | `single_flight = false` | let concurrent misses of one key all compute (default: one computes, the others wait for it) |
/// | `lock = "30s"` | on a miss, take a lock in the backend with this lease, so that concurrent misses in *all processes* share one computation; the others wait for its value, at most the lease if the holder dies |
/// | `early_refresh` or `early_refresh = 2.0` | XFetch (beta 1.0, or as given): a hit recomputes early, with a probability that grows as expiry nears and with the compute time; one caller recomputes while the others keep getting the current value, so a hot key never expires for everyone at once |
/// | `local_ttl = "10s"` | keep a typed copy of values in this process for this long, in front of the backend: a local hit costs no round trip and no decoding. Removals and flushes reach the local copies of every process through the backend's invalidation messages (Redis pub/sub); while those are down the local copies are not used. A copy never outlives its entry. On the in-process backend every function keeps typed values, as if `local_ttl` were its TTL |
/// | `in_impl` | the function is associated (in an `impl` or trait) although it has no `self` and its signature does not name `Self` |
/// | `crate = "path"` | the path of this crate, if it is renamed in `Cargo.toml` |
///
/// ```
/// use memocache::cached;
///
/// #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
/// struct Page { items: Vec<u32>, complete: bool }
///
/// struct Db; // not `Serialize`: skipped
///
/// fn is_complete(page: &Result<Page, String>) -> bool {
///     page.as_ref().is_ok_and(|p| p.complete)
/// }
///
/// #[cached(
///     namespace = "pages",
///     ttl = "90s",
///     skip(db),
///     version = 2,
///     cache_err,
///     store_if = is_complete,
///     single_flight = false,
/// )]
/// fn page(db: &Db, number: u32) -> Result<Page, String> {
///     let _ = db;
///     Ok(Page { items: vec![number], complete: number < 10 })
/// }
///
/// #[cached(key = query.to_lowercase(), cache_none)]
/// fn search(query: &str) -> Option<u32> {
///     query.parse().ok()
/// }
///
/// assert_eq!(page(&Db, 1).unwrap().items, [1]);
/// assert_eq!(search("42"), Some(42));
/// assert_eq!(search("x"), None); // cached too, with cache_none
/// ```
///
/// The options for hot keys and fleets of processes:
///
/// ```
/// use memocache::cached;
///
/// #[cached(namespace = "reports", ttl = "1h", lock = "30s", early_refresh)]
/// async fn daily_report(day: u32) -> Vec<u64> {
///     // Expensive: one process computes it, the others wait for its value;
///     // near expiry one caller refreshes it while the others keep hitting.
///     vec![u64::from(day); 3]
/// }
///
/// #[cached(namespace = "flags", ttl = "5m", local_ttl = "5s")]
/// fn feature_enabled(name: &str) -> bool {
///     // Read on every request: served from this process's memory.
///     name.starts_with("beta-")
/// }
///
/// # memocache::block_on(async {
/// assert_eq!(daily_report(3).await, [3, 3, 3]);
/// # });
/// assert!(feature_enabled("beta-search"));
/// assert!(feature_enabled("beta-search"));
/// ```
///
/// # Methods and associated functions
///
/// `#[cached]` works on methods (`&self`, `&mut self`, `self: Arc<Self>`...)
/// and associated functions, in generic impls too. `self` is out of the key
/// unless `key` names it. The macro sees only the function, not the `impl`
/// around it: a function with `self`, or whose signature names `Self`, is
/// known to be associated; any other associated function needs `in_impl`.
/// On a method of a *trait implementation* it cannot work (the companions
/// below would not be members of the trait): cache an inherent method and
/// call it from the trait method.
///
/// ```
/// use memocache::cached;
///
/// struct Repo { tenant: u32 }
///
/// impl Repo {
///     #[cached(key = (self.tenant, id))]
///     fn name(&self, id: u64) -> String {
///         format!("{}/{id}", self.tenant)
///     }
///
///     #[cached(in_impl, ttl = "1m")]
///     fn count(prefix: &str) -> usize {
///         prefix.len()
///     }
/// }
///
/// assert_eq!(Repo { tenant: 1 }.name(5), "1/5");
/// assert_eq!(Repo { tenant: 2 }.name(5), "2/5"); // self.tenant is in the key
/// assert_eq!(Repo::count("abc"), 3);
/// ```
///
/// # Companions
///
/// Next to `f` (with its visibility, in its `impl` for a method) the macro
/// generates, with `f`'s arguments:
///
/// | companion | what it does |
/// |---|---|
/// | `f_uncached(args) -> Ret` | runs the body, without the cache |
/// | `f_key(args) -> Result<EntryKey>` | the key of these arguments |
/// | `f_remove(args) -> Result<bool>` | removes their entry; whether one was there |
/// | `f_prime(args, value: &Stored) -> Result<()>` | stores `value` as their entry (`Stored` is `T` of `Result<T, _>`/`Option<T>`, else the return type) |
/// | `f_refresh(args) -> Ret` | runs the body and stores the outcome |
///
/// `f_remove`, `f_prime` and `f_refresh` are `async` when `f` is.
///
/// ```
/// use memocache::cached;
///
/// #[cached(namespace = "prices")]
/// async fn price(sku: &str) -> u64 {
///     sku.len() as u64 * 100
/// }
///
/// # memocache::block_on(async {
/// price_prime("abc", &999).await.unwrap();
/// assert_eq!(price("abc").await, 999);
/// assert!(price_remove("abc").await.unwrap());
/// assert_eq!(price("abc").await, 300);
/// assert_eq!(price_uncached("abcd").await, 400);
/// assert_eq!(price_refresh("abc").await, 300);
/// assert!(price_key("abc").unwrap().tail.contains("price"));
/// # });
/// ```
///
/// # Failures
///
/// A cached function never returns a cache error: a backend that is down,
/// slow or returns garbage makes the call a miss, and the body runs.
pub use memocache_macros::cached;

/// Removes cached entries when the annotated function succeeds (returns
/// `Ok` for a `Result`, anything for other types).
///
/// Each target is a call of a `#[cached]` function with the arguments of
/// the entry to remove, written as a call of that function, or
/// `namespace = "..."` to flush a namespace. The keys are computed when the
/// function is entered, from its arguments as passed. A failure to remove
/// is logged and never changes the function's result.
///
/// | option | meaning |
/// |---|---|
/// | `path::to::f(args)`, `receiver.method(args)` | remove `f`'s entry for `args` (checked by the compiler: `f` must be `#[cached]`, `args` of its types) |
/// | `namespace = "users"` | flush a namespace |
/// | `before` | remove before the body runs, whatever it returns |
/// | `crate = "path"` | the path of this crate, if it is renamed |
///
/// ```
/// use memocache::{cache_remove, cached};
///
/// #[cached(namespace = "accounts")]
/// fn balance(account: u64) -> u64 {
///     account * 10
/// }
///
/// #[cache_remove(balance(account))]
/// fn deposit(account: u64, amount: u64) -> Result<u64, String> {
///     if amount == 0 {
///         return Err("nothing to deposit".into()); // nothing is removed
///     }
///     Ok(amount)
/// }
///
/// #[cache_remove(balance(1), namespace = "accounts", before)]
/// fn close_all() {}
///
/// assert_eq!(balance(1), 10);
/// deposit(1, 5).unwrap();
/// assert!(!balance_remove(1).unwrap()); // deposit removed it already
/// close_all();
/// ```
pub use memocache_macros::cache_remove;

/// axum 0.8 integration (feature `axum`): `#[cached(handler)]` caches a
/// handler's responses (status, headers, body) with `ETag`, `304`, `Age`
/// and `Cache-Status`; the admin router flushes, invalidates and reports.
/// `docs/HTTP.md` describes the HTTP rules and the handler options
/// (`vary(..)`, `include(..)`, `methods(..)`, `status(..)`, `max_body`,
/// `public`).
///
/// ```
/// use axum::{extract::{Path, State}, http::StatusCode, routing::get, Json, Router};
/// use memocache::cached;
///
/// #[derive(Clone)]
/// struct Db;
///
/// // Keyed by `id`; `State` is not part of the key; a 404 is not stored.
/// #[cached(handler, namespace = "users", ttl = "5m")]
/// #[axum::debug_handler]
/// async fn get_user(State(_db): State<Db>, Path(id): Path<u64>) -> Result<Json<String>, StatusCode> {
///     if id == 0 { Err(StatusCode::NOT_FOUND) } else { Ok(Json(format!("user {id}"))) }
/// }
///
/// // Refuses to mount without a token (or with one under 16 characters).
/// let admin = memocache::axum::admin_router("0123456789abcdef-admin").unwrap();
/// let app: Router = Router::new()
///     .route("/users/{id}", get(get_user))
///     .with_state(Db)
///     .nest("/admin/cache", admin);
/// # let _ = app;
/// assert!(memocache::axum::admin_router::<()>("").is_err());
/// ```
#[cfg(feature = "axum")]
pub mod axum {
    pub use memocache_runtime::http::{
        admin_router, admin_router_from_env, handler_stats, AdminToken, HandlerStats,
        ADMIN_TOKEN_VAR,
    };
}

/// What generated code uses. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use memocache_runtime::cached_fn::*;
    #[cfg(feature = "axum")]
    pub use memocache_runtime::http;
    pub use memocache_runtime::key::EntryKey;
    pub use memocache_runtime::Result;
    pub use serde::Serialize;

    pub use crate::__memocache_axum_handler as axum_handler;
}

/// `#[cached(handler)]` wraps its output in this: with the `axum` feature,
/// the generated handler; without it, one clear error and the function
/// unchanged, instead of a cascade of missing items.
#[cfg(feature = "axum")]
#[doc(hidden)]
#[macro_export]
macro_rules! __memocache_axum_handler {
    ({ $($generated:tt)* } { $($original:tt)* }) => { $($generated)* };
}

/// See the `axum` variant.
#[cfg(not(feature = "axum"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __memocache_axum_handler {
    ({ $($generated:tt)* } { $($original:tt)* }) => {
        ::core::compile_error!(
            "#[cached(handler)] needs the `axum` feature of memocache: \
             memocache = { version = \"0.1\", features = [\"axum\"] }"
        );
        $($original)*
    };
}
