//! The runtime of memocache: the cache manager, the backends, keys, value
//! envelopes and the failure policy. Users depend on the `memocache` crate,
//! which re-exports what they need from here.
//!
//! Where things are:
//!
//! | file | what it holds |
//! |---|---|
//! | `manager.rs` | one cached call, namespace flush, the global cache |
//! | `cached_fn.rs` | what `#[cached]` functions call: specs, return shapes, sync and async drivers |
//! | `typed.rs` | the explicit typed API, [`Cache`] |
//! | `key/` | key layout, names, argument digests, canonical encoding |
//! | `envelope.rs` | what a stored entry holds, codecs, compression |
//! | `backend/` | the [`Backend`] trait, memory and Redis backends, conformance suite |
//! | `guard.rs`, `breaker.rs` | time budget and circuit breaker around remote backends |
//! | `singleflight.rs` | one computation for concurrent misses |
//! | `local.rs` | the typed in-process tier in front of a backend, kept coherent by invalidation messages |
//! | `store.rs` | the sharded bounded map under the memory backend |
//! | `blocking.rs` | how sync callers drive async backends |
//! | `config.rs` | configuration from code, environment or `memocache.toml` |
#![deny(missing_docs)]

// On `#[inline]`: the functions a hit runs (key, generation lookup,
// connection checkout and return, tracking check, budget, breaker,
// envelope) are marked so even when they are not small. A cached function's
// state machines are generic, so they are compiled in the caller's crate;
// without the mark, each helper is compiled once here, in one of this
// crate's codegen units, and a Redis hit ran code from 33 separate 4-KiB
// pages of this crate alone. With it, the helpers are compiled beside
// their caller: the code a hit runs fell from 1 033 to 955 64-byte lines
// and 144 to 129 pages, and the hit's p50 from 1.056x-1.059x to
// 1.045x-1.049x a raw `GET` (measured with `redis_hit_loop` and the bench;
// see docs/BENCHMARKS.md). Code a hit does not run is kept out of line:
// boxed miss paths, `#[inline(never)]` fallbacks, `#[cold]` errors.

pub mod backend;
pub mod blocking;
pub mod breaker;
mod budget;
pub mod cached_fn;
pub mod config;
pub mod envelope;
mod error;
pub mod guard;
#[cfg(feature = "axum")]
pub mod http;
pub mod key;
pub mod local;
pub mod manager;
mod random;
mod read_mostly;
pub mod singleflight;
pub mod stats;
pub mod store;
mod thread_slot;
pub mod typed;

pub use backend::{Backend, BackendExt};
pub use blocking::block_on;
pub use breaker::BreakerState;
pub use config::{Config, ConfigBuilder};
pub use error::{Error, ErrorKind, Result};
pub use manager::{global, init, init_from_env, Health, Manager};
pub use stats::StatsSnapshot;
pub use typed::Cache;
