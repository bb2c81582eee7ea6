//! The explicit API: a typed handle on one kind of entry in one namespace.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::{Backend, KeyTtl};
use crate::envelope::{self, Kind};
use crate::error::{Error, Result};
use crate::key::{generation_key, EntryKey, Name};
use crate::manager::{Begin, CallOptions, Manager};

/// A typed cache of `V` values keyed by `K`, in one namespace.
///
/// Keys are built like those of `#[cached]` functions: the handle's name
/// stands where a function's path would, and the key is the digest of `K`.
/// Every read checks the namespace's generation, so a flush hides every entry
/// at once; [`delete`](Cache::delete) leaves a tombstone so that a
/// [`get_or_set`](Cache::get_or_set) computing meanwhile does not write back
/// an older value.
///
/// ```
/// use memocache_runtime::{Cache, Config, Manager};
/// use std::sync::Arc;
/// # memocache_runtime::block_on(async {
/// let manager = Arc::new(Manager::new(Config::default()).unwrap());
/// let users: Cache<u64, String> = Cache::with_manager(manager, "users", "by_id").unwrap();
/// users.set(&1, &"ada".to_string()).await.unwrap();
/// assert_eq!(users.get(&1).await.unwrap().as_deref(), Some("ada"));
/// let name = users.get_or_set(&2, || async { "grace".to_string() }).await;
/// assert_eq!(name, "grace");
/// users.flush().await.unwrap();
/// assert_eq!(users.get(&1).await.unwrap(), None);
/// # });
/// ```
pub struct Cache<K: ?Sized, V> {
    manager: Arc<Manager>,
    namespace: Name,
    name: Name,
    ttl: Duration,
    options: CallOptions,
    _types: PhantomData<fn(&K) -> V>,
}

impl<K: ?Sized, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Cache {
            manager: self.manager.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            ttl: self.ttl,
            options: self.options,
            _types: PhantomData,
        }
    }
}

impl<K: ?Sized, V> std::fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl<K, V> Cache<K, V>
where
    K: Serialize + ?Sized,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A handle on the global cache, for entries `name` in `namespace`, with
    /// the default TTL.
    ///
    /// # Errors
    /// An invalid namespace or name (see [`Name`]).
    pub fn new(namespace: &str, name: &str) -> Result<Self> {
        Self::with_manager(crate::manager::global().clone(), namespace, name)
    }

    /// A handle on `manager`'s cache.
    ///
    /// # Errors
    /// An invalid namespace or name (see [`Name`]).
    pub fn with_manager(manager: Arc<Manager>, namespace: &str, name: &str) -> Result<Self> {
        Name::check(namespace, "namespace")?;
        Name::check(name, "cache name")?;
        Ok(Cache {
            ttl: manager.config().default_ttl,
            manager,
            namespace: Name::new(namespace)?,
            name: Name::new(name)?,
            options: CallOptions::default(),
            _types: PhantomData,
        })
    }

    /// The same handle with another TTL for the values it writes.
    ///
    /// # Errors
    /// A zero TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> Result<Self> {
        if ttl.is_zero() {
            return Err(Error::invalid("a cache TTL must be longer than zero"));
        }
        self.ttl = ttl;
        Ok(self)
    }

    /// The same handle, whose [`get_or_set`](Cache::get_or_set) takes a lock
    /// in the backend on a miss, so that concurrent misses in all processes
    /// share one computation. Waiters wait at most `lease` for a holder.
    ///
    /// # Errors
    /// A zero lease.
    pub fn with_lock(mut self, lease: Duration) -> Result<Self> {
        if lease.is_zero() {
            return Err(Error::invalid("a lock lease must be longer than zero"));
        }
        self.options.lock_lease = Some(lease);
        Ok(self)
    }

    /// The same handle, refreshing hot entries early (XFetch) with `beta`
    /// (1.0 is the usual choice; larger refreshes earlier).
    ///
    /// # Errors
    /// A beta that is not a positive finite number.
    pub fn with_early_refresh(mut self, beta: f64) -> Result<Self> {
        if !(beta.is_finite() && beta > 0.0) {
            return Err(Error::invalid(format!(
                "early refresh beta must be positive, not {beta}"
            )));
        }
        self.options.early_refresh = Some(beta);
        Ok(self)
    }

    /// The same handle without single-flight: concurrent misses all compute.
    pub fn without_single_flight(mut self) -> Self {
        self.options.single_flight = false;
        self
    }

    /// The namespace of the handle.
    pub fn namespace(&self) -> &Name {
        &self.namespace
    }

    fn key(&self, key: &K) -> Result<EntryKey> {
        let digest = self.manager.hasher().digest(key)?;
        Ok(EntryKey::new(
            self.namespace.clone(),
            self.name.as_str(),
            None,
            digest,
        ))
    }

    fn full_key(&self, key: &K, generation: u64) -> Result<String> {
        Ok(self
            .key(key)?
            .render(&self.manager.config().prefix, generation))
    }

    fn backend(&self) -> &Arc<dyn Backend> {
        self.manager.backend()
    }

    fn encode(&self, value: &V, ttl: Duration) -> Result<Bytes> {
        Ok(
            envelope::encode_value(value, self.manager.config().encoding, ttl, Duration::ZERO)?
                .into(),
        )
    }

    /// Decodes raw entry bytes: `None` for tombstones and for bytes that do
    /// not decode (which are deleted, as the cache does on its hit path).
    async fn decode(&self, full_key: &str, raw: Option<Bytes>) -> Option<V> {
        let bytes = raw?;
        let decoded = envelope::read_header(&bytes).and_then(|h| match h.kind {
            Kind::Value => envelope::decode_value::<V>(&h, &bytes).map(Some),
            Kind::Tombstone => Ok(None),
        });
        match decoded {
            Ok(value) => value,
            Err(e) => {
                tracing::debug!(key = full_key, error = %e, "memocache: deleting an entry that does not decode");
                let expect = crate::backend::Expect::Exact(bytes);
                let _ = self.backend().delete_if(full_key, &expect).await;
                None
            }
        }
    }

    /// The value of `key`, if cached.
    ///
    /// # Errors
    /// A key that fails to serialize, or a backend failure.
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        let read = self.manager.read(&self.key(key)?).await?;
        Ok(self.decode(&read.full_key, read.raw).await)
    }

    /// Whether `key` holds a value.
    ///
    /// # Errors
    /// As [`get`](Cache::get).
    pub async fn exists(&self, key: &K) -> Result<bool> {
        Ok(self.get(key).await?.is_some())
    }

    /// Stores `value` under `key` with the handle's TTL.
    ///
    /// # Errors
    /// A key or value that fails to serialize, or a backend failure.
    pub async fn set(&self, key: &K, value: &V) -> Result<()> {
        self.set_with_ttl(key, value, self.ttl).await
    }

    /// Stores `value` under `key` for `ttl`.
    ///
    /// # Errors
    /// As [`set`](Cache::set), or a zero TTL.
    pub async fn set_with_ttl(&self, key: &K, value: &V, ttl: Duration) -> Result<()> {
        self.manager.put(&self.key(key)?, value, ttl).await
    }

    /// Removes `key`; whether it held a value. Computations of `key` that
    /// started before this call will not store their result.
    ///
    /// # Errors
    /// A key that fails to serialize, or a backend failure.
    pub async fn delete(&self, key: &K) -> Result<bool> {
        let entry = self.key(key)?;
        let existed = self.manager.remove(&entry).await?;
        let generation = self.manager.read(&entry).await?.generation;
        let counter = [counter_key(
            &entry.render(&self.manager.config().prefix, generation),
        )];
        self.backend().delete(&counter).await?;
        Ok(existed)
    }

    /// The values of `keys`, in order, read in batches (one round trip per
    /// 500 keys).
    ///
    /// # Errors
    /// A key that fails to serialize, or a backend failure.
    pub async fn get_many(&self, keys: &[&K]) -> Result<Vec<Option<V>>> {
        let Some(first) = keys.first() else {
            return Ok(Vec::new());
        };
        let generation = self.manager.read(&self.key(first)?).await?.generation;
        let prefix = &self.manager.config().prefix;
        let mut full = Vec::with_capacity(keys.len() + 1);
        full.push(generation_key(prefix, &self.namespace));
        for k in keys {
            full.push(self.full_key(k, generation)?);
        }
        let mut raw = self.backend().get_many(&full).await?.into_iter();
        let live = raw.next().flatten();
        if live.as_deref() != Some(generation.to_string().as_bytes()) {
            // Flushed during the call: everything read is from before it.
            return Ok(keys.iter().map(|_| None).collect());
        }
        let mut out = Vec::with_capacity(keys.len());
        for (key, value) in full[1..].iter().zip(raw) {
            out.push(self.decode(key, value).await);
        }
        Ok(out)
    }

    /// Stores every `(key, value)` with the handle's TTL, in batches.
    ///
    /// # Errors
    /// A key or value that fails to serialize, or a backend failure.
    pub async fn set_many(&self, items: &[(&K, &V)]) -> Result<()> {
        let Some((first, _)) = items.first() else {
            return Ok(());
        };
        let generation = self.manager.read(&self.key(first)?).await?.generation;
        let mut encoded = Vec::with_capacity(items.len());
        for (k, v) in items {
            encoded.push((self.full_key(k, generation)?, self.encode(v, self.ttl)?));
        }
        self.backend().set_many(&encoded, Some(self.ttl)).await
    }

    /// The cached value of `key`, or the value of `compute` (stored for next
    /// time). Concurrent callers of one missing key run `compute` once.
    /// Backend failures are logged and count as misses: this never fails.
    pub async fn get_or_set<F, Fut>(&self, key: &K, compute: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let entry = match self.key(key) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "memocache: key not cacheable; computing");
                return compute().await;
            }
        };
        match self.manager.begin_opts::<V>(&entry, &self.options).await {
            Begin::Hit(value, _) => value,
            Begin::Compute(ticket) => {
                let value = compute().await;
                self.manager.finish(ticket, Some(&value), self.ttl).await;
                value
            }
        }
    }

    /// Like [`get_or_set`](Cache::get_or_set) for a fallible computation:
    /// only `Ok` values are stored and shared. After an `Err`, the callers
    /// that waited on the same computation run their own.
    ///
    /// # Errors
    /// The computation's own error.
    pub async fn try_get_or_set<E, F, Fut>(&self, key: &K, compute: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let entry = match self.key(key) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "memocache: key not cacheable; computing");
                return compute().await;
            }
        };
        match self.manager.begin_opts::<V>(&entry, &self.options).await {
            Begin::Hit(value, _) => Ok(value),
            Begin::Compute(ticket) => {
                let result = compute().await;
                self.manager
                    .finish(ticket, result.as_ref().ok(), self.ttl)
                    .await;
                result
            }
        }
    }

    /// Adds `delta` to the counter of `key` (a number kept beside the value;
    /// it starts at 0 and expires with the handle's TTL) and returns the sum.
    ///
    /// # Errors
    /// A key that fails to serialize, or a backend failure.
    pub async fn increment(&self, key: &K, delta: i64) -> Result<i64> {
        let read = self.manager.read(&self.key(key)?).await?;
        self.backend()
            .increment(&counter_key(&read.full_key), delta, Some(self.ttl))
            .await
    }

    /// Sets a new TTL on the value of `key`; whether there was one.
    ///
    /// # Errors
    /// A key that fails to serialize, a zero TTL, or a backend failure.
    pub async fn expire(&self, key: &K, ttl: Duration) -> Result<bool> {
        if ttl.is_zero() {
            return Err(Error::invalid("a TTL must be longer than zero"));
        }
        let read = self.manager.read(&self.key(key)?).await?;
        if self.decode(&read.full_key, read.raw).await.is_none() {
            return Ok(false);
        }
        self.backend().expire(&read.full_key, ttl).await
    }

    /// The remaining TTL of the value of `key`, if there is one.
    ///
    /// # Errors
    /// A key that fails to serialize, or a backend failure.
    pub async fn ttl(&self, key: &K) -> Result<Option<Duration>> {
        let read = self.manager.read(&self.key(key)?).await?;
        if self.decode(&read.full_key, read.raw).await.is_none() {
            return Ok(None);
        }
        Ok(match self.backend().ttl(&read.full_key).await? {
            KeyTtl::Expires(d) => Some(d),
            KeyTtl::Missing | KeyTtl::Persistent => None,
        })
    }

    /// Flushes the handle's whole namespace (every handle and function in it).
    ///
    /// # Errors
    /// A backend failure.
    pub async fn flush(&self) -> Result<()> {
        self.manager.flush_namespace(self.namespace.as_str()).await
    }
}

fn counter_key(entry_key: &str) -> String {
    format!("{entry_key}:n")
}
