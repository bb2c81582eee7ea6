//! Where entries live: the [`Backend`] trait and its implementations.
//!
//! The trait is a small, dyn-compatible core of storage primitives (the
//! object_store habit): everything the cache needs (generations, tombstones,
//! locks, counters) is built on these few operations in one place, so a new
//! backend implements storage only and inherits the cache's semantics.
//! Every backend must pass the shared suite in [`conformance`] (feature
//! `conformance`).

pub mod disabled;
#[cfg(feature = "redis")]
mod io_probe;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Result;

/// A boxed, `Send` future: what the dyn-compatible trait returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The condition of a conditional write or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The key holds nothing (or only an expired entry).
    Absent,
    /// The key holds exactly these bytes.
    Exact(Bytes),
    /// The key holds a value that starts with these bytes.
    Prefix(Bytes),
    /// The key holds a value that starts with these bytes, or nothing.
    PrefixOrAbsent(Bytes),
}

impl Expect {
    /// Whether `current` meets the condition.
    pub fn holds(&self, current: Option<&[u8]>) -> bool {
        match (self, current) {
            (Expect::Absent, None) => true,
            (Expect::Exact(want), Some(cur)) => cur == &want[..],
            (Expect::Prefix(want) | Expect::PrefixOrAbsent(want), Some(cur)) => {
                cur.starts_with(want)
            }
            (Expect::PrefixOrAbsent(_), None) => true,
            _ => false,
        }
    }
}

/// The remaining lifetime of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTtl {
    /// No such key.
    Missing,
    /// The key never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// Storage for cache entries: byte values under string keys, with expiry.
///
/// Implementations must be safe to share between threads and tasks, and each
/// operation must be atomic with respect to the others on the same key.
/// Patterns given to [`scan`](Backend::scan) are key prefixes made of
/// validated names, digits and `:` only: no glob characters to escape.
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and health reports (`"memory"`, `"redis"`).
    fn name(&self) -> &'static str;

    /// Whether calls leave the process: remote backends get a time budget and
    /// a circuit breaker, and sync callers drive them on the I/O runtime.
    fn is_remote(&self) -> bool;

    /// The values of `keys`, in order, read atomically (one `MGET`).
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>>;

    /// Reads `[generation, entry]`, a namespace's generation key and one
    /// entry key, and tells whether the generation key holds `expected` (the
    /// generation the caller rendered the entry key with). The answer must be
    /// what one atomic read of both keys ([`get_many`](Backend::get_many))
    /// would have found at some instant between the call and its reply.
    ///
    /// A backend that is told of every change of the generation key, in
    /// order with its replies (Redis client-side tracking), may answer the
    /// generation from the value it last read and fetch the entry alone.
    /// The default is `get_many`. (Keys borrowed, not owned: the generation
    /// key is rendered once per namespace, not per read. The generation is
    /// compared, not returned, when it is the expected one: a hit copies no
    /// generation value.)
    fn get_with_generation<'a>(
        &'a self,
        keys: [&'a str; 2],
        expected: &'a [u8],
    ) -> BoxFuture<'a, Result<GenerationRead>> {
        let keys = keys.map(str::to_owned);
        Box::pin(async move {
            let values = two_values(self.get_many(&keys).await?, self.name())?;
            Ok(GenerationRead::of(values, expected))
        })
    }

    /// Stores every `(key, value)` with `ttl` (`None`: no expiry).
    fn set_many<'a>(
        &'a self,
        items: &'a [(String, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Stores `value` if the key's current state meets `expect`; whether it did.
    fn set_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: &'a Expect,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Deletes `keys`; how many existed.
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>>;

    /// Deletes `key` if its current state meets `expect`; whether it did.
    fn delete_if<'a>(&'a self, key: &'a str, expect: &'a Expect) -> BoxFuture<'a, Result<bool>>;

    /// Adds `delta` to the integer at `key` (absent: 0) and returns the sum; a
    /// key created by this call gets `ttl`.
    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>>;

    /// Sets the integer at `key` to `max(current + 1, floor)` (absent: `floor`)
    /// and returns it, atomically: how a namespace's generation moves on.
    fn advance<'a>(&'a self, key: &'a str, floor: u64) -> BoxFuture<'a, Result<u64>>;

    /// Sets the time to live of an existing key; whether it existed.
    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool>>;

    /// The remaining lifetime of `key`.
    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyTtl>>;

    /// One step of an iteration over the keys starting with `prefix`: give
    /// cursor 0 first, then the returned cursor until it is 0 again. `count`
    /// is a hint of how much work one step does. Keys that exist for the whole
    /// iteration are returned at least once.
    fn scan<'a>(
        &'a self,
        prefix: &'a str,
        cursor: u64,
        count: usize,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>)>>;

    /// Checks the backend answers.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;

    /// Sends `message` to every process subscribed to `channel` (at most
    /// once, no persistence). Backends without messages do nothing: this is
    /// how local tiers in other processes learn of invalidations.
    fn publish<'a>(&'a self, channel: &'a str, message: Bytes) -> BoxFuture<'a, Result<()>> {
        let _ = (channel, message);
        Box::pin(std::future::ready(Ok(())))
    }

    /// Delivers the messages of `channel` to `listener`, for the life of the
    /// process, reconnecting as needed and telling the listener when the
    /// subscription goes up or down.
    ///
    /// # Errors
    /// Backends without messages (the default): local tiers in front of them
    /// are then never used, since they could not be kept coherent.
    fn subscribe(&self, channel: &str, listener: Weak<dyn Listener>) -> Result<()> {
        let _ = (channel, listener);
        Err(crate::Error::new(
            crate::ErrorKind::Unavailable,
            format!("the {} backend has no invalidation messages", self.name()),
        ))
    }
}

/// The values of a read of two keys, as an array; a backend that answered
/// another count (`name` says which) is an error.
pub(crate) fn two_values(values: Vec<Option<Bytes>>, name: &str) -> Result<[Option<Bytes>; 2]> {
    <[Option<Bytes>; 2]>::try_from(values).map_err(|v| {
        crate::Error::new(
            crate::ErrorKind::Backend,
            format!(
                "the {name} backend answered {} values for two keys",
                v.len()
            ),
        )
    })
}

/// What [`Backend::get_with_generation`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationRead {
    /// The generation key, against the expected value.
    pub generation: Generation,
    /// The entry's value, read together with the generation.
    pub entry: Option<Bytes>,
}

/// A namespace's generation key, as [`Backend::get_with_generation`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Generation {
    /// It held the expected value.
    Expected,
    /// It held another value.
    Other(Bytes),
    /// It held nothing.
    Absent,
}

impl GenerationRead {
    /// The answer for `[generation, entry]` as read together, against
    /// `expected`.
    #[must_use]
    pub fn of(values: [Option<Bytes>; 2], expected: &[u8]) -> Self {
        let [generation, entry] = values;
        let generation = match generation {
            Some(g) if *g == *expected => Generation::Expected,
            Some(g) => Generation::Other(g),
            None => Generation::Absent,
        };
        GenerationRead { generation, entry }
    }
}

/// What receives the messages of a subscription.
pub trait Listener: Send + Sync {
    /// The subscription went up (`true`) or down.
    fn connected(&self, up: bool);
    /// A message arrived.
    fn message(&self, payload: &[u8]);
}

/// Conveniences over [`Backend`], implemented for every backend.
pub trait BackendExt: Backend {
    /// The value of one key.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>> {
        Box::pin(async move {
            let keys = [key.to_owned()];
            Ok(self.get_many(&keys).await?.pop().flatten())
        })
    }

    /// Stores one value.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let items = [(key.to_owned(), value)];
            self.set_many(&items, ttl).await
        })
    }
}

impl<B: Backend + ?Sized> BackendExt for B {}

impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn is_remote(&self) -> bool {
        (**self).is_remote()
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        (**self).get_many(keys)
    }
    fn get_with_generation<'a>(
        &'a self,
        keys: [&'a str; 2],
        expected: &'a [u8],
    ) -> BoxFuture<'a, Result<GenerationRead>> {
        (**self).get_with_generation(keys, expected)
    }
    fn set_many<'a>(
        &'a self,
        items: &'a [(String, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        (**self).set_many(items, ttl)
    }
    fn set_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: &'a Expect,
    ) -> BoxFuture<'a, Result<bool>> {
        (**self).set_if(key, value, ttl, expect)
    }
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        (**self).delete(keys)
    }
    fn delete_if<'a>(&'a self, key: &'a str, expect: &'a Expect) -> BoxFuture<'a, Result<bool>> {
        (**self).delete_if(key, expect)
    }
    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        (**self).increment(key, delta, ttl)
    }
    fn advance<'a>(&'a self, key: &'a str, floor: u64) -> BoxFuture<'a, Result<u64>> {
        (**self).advance(key, floor)
    }
    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool>> {
        (**self).expire(key, ttl)
    }
    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyTtl>> {
        (**self).ttl(key)
    }
    fn scan<'a>(
        &'a self,
        prefix: &'a str,
        cursor: u64,
        count: usize,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>)>> {
        (**self).scan(prefix, cursor, count)
    }
    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        (**self).ping()
    }
    fn publish<'a>(&'a self, channel: &'a str, message: Bytes) -> BoxFuture<'a, Result<()>> {
        (**self).publish(channel, message)
    }
    fn subscribe(&self, channel: &str, listener: Weak<dyn Listener>) -> Result<()> {
        (**self).subscribe(channel, listener)
    }
}
