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

/// What generated code uses. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use memocache_runtime::cached_fn::*;
    pub use memocache_runtime::Result;
    pub use serde::Serialize;
}
