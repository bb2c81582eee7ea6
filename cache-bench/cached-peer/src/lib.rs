//! The `cached` crate's Redis-backed functions that memocache's benchmarks
//! measure, with the loops that call them, in a crate of their own.
//!
//! Why a crate: Rust compiles generic code (and the bodies of `async fn`s)
//! in the crate that uses it, once per crate. `cached`'s
//! `AsyncRedisCache<K, V>` is generic, so compiled in the bench's crate it
//! connected through the very machine code of redis-rs (the connection's
//! driver task, its channels, its codec) that the bench's raw `GET` rows
//! run, which connect from that crate too. Every raw row then warmed
//! `cached`'s code between two of its calls, while memocache's connection
//! code, compiled in memocache's crate, had no such help. Here `cached`'s
//! code is its own, as it is in an application where nothing else talks to
//! Redis through it.
//!
//! So that nothing of it is compiled in the bench's crate, the bench never
//! calls [`peer_hit`] or [`peer_miss`] itself: it calls [`timed`],
//! [`calls_until`] and [`calls`], which are not generic, are never inlined,
//! and hand back a boxed future made here (the bench boxes every row's
//! call the same way, before its clock starts). `docs/BENCHMARKS.md` has
//! the measurements.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The length of [`text`].
pub const TEXT_LEN: usize = 100;

/// A 100-byte `String` that depends on `id`: the 100-byte `String` result
/// the benchmarks cache. It lives here so that these functions and the
/// bench's own compute the same values.
pub fn text(id: u64) -> String {
    let mut s = format!("value-{id:020}-");
    while s.len() < TEXT_LEN {
        s.push(char::from(b'a' + (s.len() % 26) as u8));
    }
    s
}

/// The error type of the functions (`cached`'s Redis macro needs a
/// `Result` and a `map_error`).
#[derive(Debug, Clone)]
pub struct PeerError(pub String);

/// Hit: a 100-byte `String` from Redis, through `cached`'s
/// `AsyncRedisCache` (its default multiplexed connection, URL from
/// `CACHED_REDIS_CONNECTION_STRING`).
#[cached::macros::concurrent_cached(
    redis = true,
    ttl_secs = 3600,
    map_error = |e| PeerError(format!("{e:?}"))
)]
pub async fn peer_hit(id: u64) -> Result<String, PeerError> {
    Ok(text(id))
}

/// Miss: called with a new argument each time.
#[cached::macros::concurrent_cached(
    redis = true,
    ttl_secs = 600,
    map_error = |e| PeerError(format!("{e:?}"))
)]
pub async fn peer_miss(id: u64) -> Result<String, PeerError> {
    Ok(text(id))
}

/// A boxed future, as the bench's rows hold their calls.
pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Which function a call calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// [`peer_hit`].
    Hit,
    /// [`peer_miss`].
    Miss,
}

impl Function {
    async fn call(self, id: u64) -> Result<String, PeerError> {
        match self {
            Function::Hit => peer_hit(id).await,
            Function::Miss => peer_miss(id).await,
        }
    }
}

/// The argument of a timed call.
#[derive(Debug, Clone, Copy)]
pub enum Id {
    /// This one.
    Key(u64),
    /// A new one from this function, taken once the clock runs (as the
    /// bench's own miss rows take theirs).
    Next(fn() -> u64),
}

/// One call of `function`, timed from its first poll to its end (as the
/// bench times every row); an error goes to `failed`.
#[inline(never)]
pub fn timed(function: Function, id: Id, failed: fn(&PeerError)) -> BoxFut<Duration> {
    Box::pin(async move {
        let started = Instant::now();
        let id = match id {
            Id::Key(id) => id,
            Id::Next(next) => next(),
        };
        if let Err(e) = function.call(id).await {
            failed(&e);
        }
        started.elapsed()
    })
}

/// Calls of `function` with ids `start, start + 1, ...` (modulo `keys`)
/// until `stop` is set: how many. Errors go to `failed`.
#[inline(never)]
pub fn calls_until(
    function: Function,
    start: u64,
    keys: u64,
    stop: Arc<AtomicBool>,
    failed: fn(&PeerError),
) -> BoxFut<u64> {
    Box::pin(async move {
        let mut calls = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = function.call((start + calls) % keys).await {
                failed(&e);
            }
            calls += 1;
        }
        calls
    })
}

/// `n` calls of `function` with ids `start, start + 1, ...` (modulo
/// `keys`): how many returned a value of [`TEXT_LEN`] bytes (a check that
/// costs no more than the bench's own loops pay), or the first error.
#[inline(never)]
pub fn calls(function: Function, start: u64, n: u64, keys: u64) -> BoxFut<Result<u64, PeerError>> {
    Box::pin(async move {
        let mut right = 0;
        for i in 0..n {
            if function.call((start + i) % keys).await?.len() == TEXT_LEN {
                right += 1;
            }
        }
        Ok(right)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_100_bytes_and_differ_by_id() {
        assert_eq!(text(7).len(), TEXT_LEN);
        assert_ne!(text(7), text(8));
        assert!(text(7).starts_with("value-00000000000000000007-"));
    }
}
