//! The in-process backend: the embedded default, nothing to install.

use std::future::ready;
use std::time::Duration;

use bytes::Bytes;

use super::{Backend, BoxFuture, Expect, GenerationRead, KeyTtl};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Bounds, Store, Update};

/// Entries in this process's memory: sharded, bounded, with per-entry expiry.
///
/// ```
/// use memocache_runtime::backend::{memory::MemoryBackend, Backend, BackendExt};
/// # memocache_runtime::block_on(async {
/// let backend = MemoryBackend::new(10_000, 64 << 20);
/// backend.set("k", "v".into(), None).await.unwrap();
/// assert_eq!(backend.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryBackend {
    store: Store<String, Bytes>,
}

impl MemoryBackend {
    /// A backend holding at most `max_entries` entries and about `max_bytes`
    /// bytes (keys, values and bookkeeping); past either it evicts.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        MemoryBackend {
            store: Store::new(Bounds {
                max_entries,
                max_bytes,
            }),
        }
    }

    /// How many entries and bytes it holds now.
    pub fn usage(&self) -> (usize, usize) {
        self.store.usage()
    }
}

fn done<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(ready(value))
}

fn parse_counter(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::new(ErrorKind::Backend, "the value is not an integer"))
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn is_remote(&self) -> bool {
        false
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        done(Ok(self.store.get_many(&keys)))
    }

    fn get_with_generation<'a>(
        &'a self,
        keys: [&'a str; 2],
        expected: &'a [u8],
    ) -> BoxFuture<'a, Result<GenerationRead>> {
        let values = super::two_values(self.store.get_many(&keys), "memory");
        done(values.map(|values| GenerationRead::of(values, expected)))
    }

    fn set_many<'a>(
        &'a self,
        items: &'a [(String, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        for (k, v) in items {
            self.store.insert(k.clone(), v.clone(), ttl);
        }
        done(Ok(()))
    }

    fn set_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: &'a Expect,
    ) -> BoxFuture<'a, Result<bool>> {
        let stored = self.store.update(&key.to_owned(), |current| {
            if expect.holds(current.map(|b| &b[..])) {
                (Update::Set(value, ttl), true)
            } else {
                (Update::Keep, false)
            }
        });
        done(Ok(stored))
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        done(Ok(keys
            .iter()
            .filter(|k| self.store.remove(k.as_str()))
            .count() as u64))
    }

    fn delete_if<'a>(&'a self, key: &'a str, expect: &'a Expect) -> BoxFuture<'a, Result<bool>> {
        let deleted = self.store.update(&key.to_owned(), |current| {
            if current.is_some() && expect.holds(current.map(|b| &b[..])) {
                (Update::Remove, true)
            } else {
                (Update::Keep, false)
            }
        });
        done(Ok(deleted))
    }

    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        let result = self.store.update(&key.to_owned(), |current| {
            let old = match current.map(|bytes| parse_counter(bytes)).transpose() {
                Ok(old) => old,
                Err(e) => return (Update::Keep, Err(e)),
            };
            match old.unwrap_or(0).checked_add(delta) {
                Some(new) => {
                    let bytes = Bytes::from(new.to_string());
                    let update = if old.is_some() {
                        Update::SetKeepingExpiry(bytes)
                    } else {
                        Update::Set(bytes, ttl)
                    };
                    (update, Ok(new))
                }
                None => (
                    Update::Keep,
                    Err(Error::new(ErrorKind::Backend, "increment would overflow")),
                ),
            }
        });
        done(result)
    }

    fn advance<'a>(&'a self, key: &'a str, floor: u64) -> BoxFuture<'a, Result<u64>> {
        let result = self.store.update(&key.to_owned(), |current| {
            // Like the Redis script: a value that is not a counter is replaced.
            let old = current.and_then(|bytes| parse_counter(bytes).ok());
            let new = old.map_or(floor, |old| (old.max(0) as u64 + 1).max(floor));
            (
                Update::SetKeepingExpiry(Bytes::from(new.to_string())),
                Ok(new),
            )
        });
        done(result)
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool>> {
        done(Ok(self.store.expire(key, ttl)))
    }

    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyTtl>> {
        done(Ok(match self.store.ttl(key) {
            None => KeyTtl::Missing,
            Some(None) => KeyTtl::Persistent,
            Some(Some(d)) => KeyTtl::Expires(d),
        }))
    }

    fn scan<'a>(
        &'a self,
        prefix: &'a str,
        cursor: u64,
        _count: usize,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>)>> {
        let (keys, more) = self
            .store
            .keys_of_shard(cursor as usize, |k| k.starts_with(prefix));
        done(Ok((if more { cursor + 1 } else { 0 }, keys)))
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        done(Ok(()))
    }
}
