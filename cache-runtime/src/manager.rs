//! The cache manager: what one cached call does, how a namespace is flushed,
//! and the global instance that `#[cached]` functions use.
//!
//! # One cached call
//!
//! 1. [`Manager::read`]: one round trip reads the namespace's generation and
//!    the entry under the generation this process last saw
//!    ([`Backend::get_with_generation`]: `MGET gen key`, or `GET key` alone
//!    while Redis tracks the generation key for the connection). If the
//!    generation moved on (a flush, maybe in another process), the entry is
//!    read again under the live one.
//! 2. A value entry that decodes is a hit. Anything else is a miss: no entry,
//!    a tombstone left by a removal, or bytes that do not decode (counted,
//!    then overwritten or deleted).
//! 3. On a miss the caller joins the key's single flight: one computes, the
//!    others wait for its value.
//! 4. The leader computes and stores with a conditional write: "only if the
//!    key still holds what I read". A removal that happened meanwhile left a
//!    new tombstone there, so the late write is refused.
//! 5. Backend trouble anywhere is counted, logged (at most once a second) and
//!    treated as a miss that is not stored: the caller always gets its value.
//!
//! # Flushing
//!
//! Every key holds its namespace's generation. [`Manager::flush_namespace`]
//! moves the generation on in one atomic backend call: from that moment every
//! reader, in every process, validates against the new generation in the same
//! round trip as its read, so nothing older is ever returned; computations in
//! flight write under the old generation, where nobody looks. Old entries are
//! then deleted in the background (`SCAN` + `UNLINK` in small batches, with a
//! pause between them) and expire by TTL anyway. No `KEYS`, no `FLUSHDB`.
//!
//! Generations start at the current Unix time in microseconds and only grow
//! (`max(old + 1, now)`): if Redis evicts the generation key, the next one is
//! still newer than every generation used before, so no old entry comes back.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, BackendExt, Expect, Generation, GenerationRead};
use crate::breaker::{Breaker, BreakerState};
use crate::config::{BackendUrl, Config};
use crate::envelope::{self, Kind, STAMP_END};
use crate::error::{Error, ErrorKind, Result};
use crate::guard::{Guarded, Policy};
use crate::key::{generation_key, Decimal, Digest, EntryKey, KeyHasher, Name, RenderKey};
use crate::local::{Coherence, Invalidate, Invalidation, LocalTier};
use crate::read_mostly::ReadMostly;
use crate::singleflight::{Flights, Joined, Leader};
use crate::stats::{Stats, StatsSnapshot};

/// Keys per step of the background sweep of old generations.
const SWEEP_BATCH: usize = 200;
/// How long a stored value stays joinable by callers whose read missed just
/// before it was stored (see `singleflight`).
const FLIGHT_GRACE: Duration = Duration::from_secs(1);
/// Pause between two sweep steps, so the sweep never hogs the server.
const SWEEP_PAUSE: Duration = Duration::from_millis(2);

/// What a manager knows of a namespace.
#[derive(Clone, Copy)]
struct Seen {
    /// The newest generation seen (0: none yet).
    generation: u64,
    /// `generation` in decimal: a read renders its key with these, and
    /// compares them with the generation it reads (no parse when equal).
    digits: Decimal,
    /// For a namespace named by a `&'static str` (every cached function's),
    /// its generation key, rendered once and kept for the life of the
    /// process ([`kept_generation_key`]): reads then borrow it instead of
    /// rendering it (an allocation per read).
    key: Option<&'static str>,
}

/// The generation key of `namespace` under `prefix`, rendered once per
/// process and kept for its life: for namespaces named by a `&'static str`,
/// of which a program has a fixed number, so at most one string each (per
/// prefix), however many managers use it.
fn kept_generation_key(prefix: &Name, namespace: &Name) -> &'static str {
    static KEPT: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let key = generation_key(prefix, namespace);
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&found) = kept.iter().find(|k| **k == key) {
        return found;
    }
    let leaked: &'static str = Box::leak(key.into_boxed_str());
    kept.push(leaked);
    leaked
}

impl Seen {
    /// Whether `namespace` should keep its generation key and has none yet.
    fn wants_key(&self, namespace: &Name) -> bool {
        self.key.is_none() && namespace.is_static()
    }
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            generation: 0,
            digits: Decimal::of(0),
            key: None,
        }
    }
}

/// The cache: a backend, the configuration, and the state shared by every
/// cached function (generations seen, flights in progress, counters).
///
/// Most code uses the global one through `#[cached]` and [`crate::Cache`];
/// build your own with [`Manager::new`] to use several caches in one process.
pub struct Manager {
    backend: Arc<dyn Backend>,
    /// The backend without its policy, with the policy apart: what reads an
    /// entry (see `guard`).
    unguarded: Arc<dyn Backend>,
    /// The same backend, when it is the Redis one this manager made: a hit
    /// reads through it without the trait's boxed future.
    #[cfg(feature = "redis")]
    redis: Option<Arc<crate::backend::redis::RedisBackend>>,
    policy: Option<Policy>,
    config: Config,
    hasher: KeyHasher,
    generations: ReadMostly<Name, Seen>,
    flights: Flights,
    stats: Stats,
    disabled: Option<String>,
    coherence: Arc<Coherence>,
    subscribed: OnceLock<bool>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("backend", &self.backend)
            .field("config", &self.config)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// The raw state of one entry, read together with its namespace's generation.
#[derive(Debug, Clone)]
pub struct Read {
    /// The live generation of the namespace.
    pub generation: u64,
    /// The entry's full key under that generation.
    pub full_key: String,
    /// What the key holds.
    pub raw: Option<Bytes>,
    /// Whether `raw` was read under the live generation. Not so when the
    /// namespace was flushed twice during the read: `raw` is then `None`,
    /// which is right for a plain read but not proof that the key is absent,
    /// so nothing may be stored or shared on its strength.
    pub settled: bool,
}

/// The outcome of [`Manager::begin`].
pub enum Begin<'a, V> {
    /// The cache had the value; and when its entry expires, when known (a
    /// value shared by a computation that just stored it has its whole TTL
    /// ahead).
    Hit(V, Option<ExpiresAt>),
    /// The caller must compute, then hand the value to [`Manager::finish`].
    /// (Boxed: a miss can afford an allocation; the hit path then moves a
    /// small enum.)
    Compute(Box<Ticket<'a>>),
}

/// A caller's duty to compute a value, and where to store it.
pub struct Ticket<'a> {
    target: Option<Target>,
    leader: Option<Leader<'a>>,
    lock: Option<LockGuard>,
    started: Instant,
}

/// How one call behaves on a miss.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CallOptions {
    /// Concurrent misses of one key in this process share one computation.
    pub single_flight: bool,
    /// Concurrent misses of one key in all processes share one computation:
    /// the first takes a lock in the backend for this lease, the others wait
    /// for its value (at most the lease, if the holder dies).
    pub lock_lease: Option<Duration>,
    /// Early refresh (XFetch, Vattani et al., VLDB 2015) with this beta
    /// (1.0 is the paper's default): a hit recomputes early, with a
    /// probability that grows as expiry nears and with the compute time, so
    /// a hot key is refreshed by one caller before it expires instead of
    /// missing for everyone at once.
    pub early_refresh: Option<f64>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            single_flight: true,
            lock_lease: None,
            early_refresh: None,
        }
    }
}

enum Observed<V> {
    /// A value, and when its entry expires.
    Hit(V, ExpiresAt),
    Miss(Target, u64),
    /// A hit chosen to refresh early: the value, its expiry, and where to
    /// store anew.
    Refresh(V, ExpiresAt, Target),
}

/// When a hit's entry expires, as its header says. Turned into the time
/// left only where that is used (a local copy's lifetime): reading the
/// wall clock on every hit cost more than a percent of a Redis hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiresAt {
    /// Milliseconds since the Unix epoch.
    ms: u64,
}

impl ExpiresAt {
    fn of(header: &envelope::Header) -> Self {
        ExpiresAt {
            ms: header.stored_at_ms.saturating_add(header.ttl_ms),
        }
    }

    /// The time the entry has left now.
    pub fn left(self) -> Duration {
        Duration::from_millis(self.ms.saturating_sub(envelope::now_ms()))
    }
}

enum Locked<V> {
    Held(LockGuard),
    /// Another process stored the value: it, and its expiry.
    Computed(V, ExpiresAt),
    GaveUp,
}

/// A compute lock held in the backend; released when the value is stored,
/// or in the background if the computation is abandoned.
struct LockGuard {
    backend: Arc<dyn Backend>,
    key: String,
    token: Expect,
    released: bool,
}

impl LockGuard {
    async fn release(mut self) {
        self.released = true;
        // A failed release leaves the lock to its lease.
        let _ = self.backend.delete_if(&self.key, &self.token).await;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(io) = crate::blocking::io_handle() {
            let (backend, key, token) = (
                self.backend.clone(),
                std::mem::take(&mut self.key),
                self.token.clone(),
            );
            io.spawn(async move {
                let _ = backend.delete_if(&key, &token).await;
            });
        }
    }
}

/// XFetch: whether to recompute now, given the entry's expiry and compute time.
fn refresh_early(header: &envelope::Header, beta: f64) -> bool {
    let expiry = header.stored_at_ms.saturating_add(header.ttl_ms) as f64;
    let delta_ms = f64::from(header.compute_us) / 1000.0;
    let now = envelope::now_ms() as f64;
    now - delta_ms * beta * crate::random::unit_interval().ln() >= expiry
}

struct Target {
    full_key: String,
    /// What the key held when the miss was read: the write happens only if it
    /// still holds it.
    expect: Expect,
    /// The key held bytes that did not decode: delete them if nothing replaces them.
    corrupt: bool,
}

impl Ticket<'_> {
    fn bypass() -> Self {
        Ticket {
            target: None,
            leader: None,
            lock: None,
            started: Instant::now(),
        }
    }
}

/// The result of a health check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Health {
    /// The backend's name.
    pub backend: &'static str,
    /// Whether it answered.
    pub ok: bool,
    /// How long the check took.
    pub latency: Duration,
    /// The circuit breaker's state, for remote backends.
    pub breaker: Option<BreakerState>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
}

fn parse_generation(raw: &[u8]) -> Result<u64> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Deserialization,
                "the namespace generation is not a number (a flush repairs it)",
            )
        })
}

/// The generation segment of a full key (`prefix:ns:GEN:...`).
fn generation_of(key: &str) -> Option<u64> {
    key.split(':').nth(2)?.parse().ok()
}

impl Manager {
    /// A manager for `config`. Connects lazily: a Redis that is down now
    /// makes calls miss, not this fail.
    ///
    /// # Errors
    /// When the backend cannot be set up from the configuration (a bad URL,
    /// TLS asked without the `tls` feature, an unreadable CA file).
    pub fn new(config: Config) -> Result<Self> {
        match &config.backend {
            BackendUrl::Memory => {
                let backend =
                    MemoryBackend::new(config.memory_max_entries, config.memory_max_bytes);
                Ok(Self::with_backend(config, Arc::new(backend)))
            }
            #[cfg(feature = "redis")]
            BackendUrl::Redis(url) => {
                let backend = Arc::new(crate::backend::redis::RedisBackend::new(
                    &crate::backend::redis::RedisOptions {
                        url: url.clone(),
                        connect_timeout: config.connect_timeout,
                        response_timeout: config.budget,
                        tls_ca_file: config.tls_ca_file.clone(),
                        caller_runtime: config.redis_caller_runtime,
                        tcp_nodelay: config.redis_tcp_nodelay,
                    },
                )?);
                let mut manager = Self::with_backend(config, backend.clone());
                manager.redis = Some(backend);
                Ok(manager)
            }
            #[cfg(not(feature = "redis"))]
            BackendUrl::Redis(url) => Err(Error::invalid(format!(
                "{url} needs the Redis backend, but memocache was built without its \
                 `redis` feature; enable it (it is a default feature)"
            ))),
        }
    }

    /// A manager over any backend. Remote backends get the time budget and
    /// circuit breaker of `config`.
    pub fn with_backend(config: Config, backend: Arc<dyn Backend>) -> Self {
        let is_remote = backend.is_remote();
        let unguarded = backend.clone();
        let (backend, policy): (Arc<dyn Backend>, _) = if is_remote {
            let breaker = Arc::new(Breaker::new(
                config.breaker_threshold,
                config.breaker_cooldown,
                config.budget * 2,
            ));
            let policy = Policy::new(config.budget, breaker);
            (
                Arc::new(Guarded::new(backend, policy.clone())),
                Some(policy),
            )
        } else {
            (backend, None)
        };
        let hasher = KeyHasher::new(
            config
                .key_secret
                .as_ref()
                .map_or(&[][..], |s| s.expose().as_bytes()),
        );
        Manager {
            backend,
            unguarded,
            #[cfg(feature = "redis")]
            redis: None,
            policy,
            config,
            hasher,
            generations: ReadMostly::new(),
            flights: Flights::default(),
            stats: Stats::default(),
            disabled: None,
            coherence: Arc::new(Coherence::new(!is_remote)),
            subscribed: OnceLock::new(),
        }
    }

    /// A manager that caches nothing: every call computes. Used when the
    /// environment's configuration is broken, so that cached functions still
    /// return correct values while the error is logged.
    fn disabled(reason: String) -> Self {
        let mut m = Self::with_backend(
            Config::default(),
            Arc::new(crate::backend::disabled::Disabled::new(reason.clone())),
        );
        m.disabled = Some(reason);
        m
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The backend (with its budget and breaker, if remote).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The hasher of key arguments.
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// The counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The key of an entry: `function` (module path and name), `version`, and
    /// the digest of the arguments.
    pub fn entry_key(
        &self,
        namespace: &Name,
        function: &str,
        version: Option<u32>,
        digest: Digest,
    ) -> EntryKey {
        EntryKey::new(namespace.clone(), function, version, digest)
    }

    /// A new local tier for entries of `namespace` living `ttl`, registered
    /// for invalidations. The first one subscribes to the backend's
    /// invalidation channel.
    pub fn local_tier<V: Clone + Send + Sync + 'static>(
        &self,
        namespace: &Name,
        ttl: Duration,
    ) -> Arc<LocalTier<V>> {
        let tier = Arc::new(
            LocalTier::new(namespace.clone(), ttl).counting_hits_in(self.stats.local_hits()),
        );
        let as_dyn: Arc<dyn Invalidate> = tier.clone();
        self.coherence.register(&as_dyn);
        self.subscribed.get_or_init(|| {
            if !self.backend.is_remote() {
                return true;
            }
            let listener: Arc<dyn crate::backend::Listener> = self.coherence.clone();
            match self.backend.subscribe(&self.invalidation_channel(), Arc::downgrade(&listener)) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "memocache: local tiers disabled: no invalidation channel");
                    false
                }
            }
        });
        tier
    }

    /// Whether local tiers may answer now: always for in-process backends;
    /// for remote ones, while the invalidation subscription is up.
    #[inline]
    pub fn local_tiers_usable(&self) -> bool {
        self.coherence.usable()
    }

    fn invalidation_channel(&self) -> String {
        format!("{}:invalidations", self.config.prefix)
    }

    /// Applies an invalidation to this process's local tiers and tells the
    /// other processes.
    async fn broadcast(&self, invalidation: Invalidation) {
        self.coherence.apply(&invalidation);
        if self.backend.is_remote() {
            let message = Bytes::from(invalidation.encode());
            if let Err(e) = self
                .backend
                .publish(&self.invalidation_channel(), message)
                .await
            {
                self.stats.error("publishing an invalidation", &e);
            }
        }
    }

    /// The circuit breaker's state, for remote backends, without a ping.
    pub fn health_breaker(&self) -> Option<BreakerState> {
        self.policy.as_ref().map(Policy::breaker_state)
    }

    /// Pings the backend.
    pub async fn health(&self) -> Health {
        let started = Instant::now();
        let outcome = match &self.disabled {
            Some(reason) => Err(Error::new(ErrorKind::Unavailable, reason.clone())),
            None => self.backend.ping().await,
        };
        Health {
            backend: self.backend.name(),
            ok: outcome.is_ok(),
            latency: started.elapsed(),
            breaker: self.health_breaker(),
            error: outcome.err().map(|e| e.to_string()),
        }
    }

    #[inline]
    fn seen(&self, namespace: &Name) -> Seen {
        self.generations
            .read(namespace, |seen| *seen)
            .unwrap_or_default()
    }

    fn remember_generation(&self, namespace: &Name, generation: u64) {
        let seen = self.seen(namespace);
        let wants_key = seen.wants_key(namespace);
        if seen.generation >= generation && !wants_key {
            return;
        }
        // Found before the update, which may run more than once.
        let key = wants_key.then(|| kept_generation_key(&self.config.prefix, namespace));
        self.generations.update(|gens| {
            let seen = gens.entry(namespace.clone()).or_default();
            if generation > seen.generation {
                seen.generation = generation;
                seen.digits = Decimal::of(generation);
            }
            seen.key = seen.key.or(key);
        });
    }

    /// Reads an entry and its namespace's live generation (one round trip,
    /// two when the generation moved on since this process last looked).
    ///
    /// # Errors
    /// Backend failures.
    pub async fn read(&self, key: &EntryKey) -> Result<Read> {
        self.read_key(key).await
    }

    /// [`read`](Manager::read) of an entry key or of its parts.
    async fn read_key<K: RenderKey + ?Sized>(&self, key: &K) -> Result<Read> {
        let namespace = key.namespace();
        let seen = self.seen(namespace);
        // The generation key, then the entry's key at the guessed generation.
        let rendered;
        let gen_key = match seen.key {
            Some(kept) => kept,
            None => {
                rendered = generation_key(&self.config.prefix, namespace);
                &rendered
            }
        };
        let full_key = key.render_at(&self.config.prefix, &seen.digits);
        let read = self
            .read_with_generation([gen_key, &full_key], seen.digits.as_bytes())
            .await?;
        if let Generation::Expected = read.generation {
            // The generation guessed, as it is written: no parse.
            if seen.wants_key(namespace) {
                // The generation was seen first by another way (a flush,
                // or a name made at run time): keep the key now.
                self.remember_generation(namespace, seen.generation);
            }
            return Ok(Read {
                generation: seen.generation,
                full_key,
                raw: read.entry,
                settled: true,
            });
        }
        // Boxed: a hit's future then carries none of this, nor its code.
        Box::pin(self.read_key_again(key, gen_key, seen, read, full_key)).await
    }

    /// The rest of [`read_key`](Manager::read_key) when the first read did
    /// not find the guessed generation as it is written: the generation is
    /// parsed (or created), and the entry read again under the live one,
    /// once more at most.
    async fn read_key_again<K: RenderKey + ?Sized>(
        &self,
        key: &K,
        gen_key: &str,
        seen: Seen,
        mut read: GenerationRead,
        mut full_key: String,
    ) -> Result<Read> {
        let namespace = key.namespace();
        let mut guess = seen.generation;
        for again in [true, false] {
            let live = match &read.generation {
                Generation::Expected => guess,
                // Parsed, and the same number when it was written otherwise
                // (not by memocache, which writes plain decimals).
                Generation::Other(g) => parse_generation(g)?,
                Generation::Absent => self.start_generation(gen_key).await?,
            };
            if live == guess {
                if seen.wants_key(namespace) {
                    self.remember_generation(namespace, live);
                }
                return Ok(Read {
                    generation: live,
                    full_key,
                    raw: read.entry,
                    settled: true,
                });
            }
            self.remember_generation(namespace, live);
            guess = live;
            let digits = Decimal::of(live);
            full_key = key.render_at(&self.config.prefix, &digits);
            if again {
                read = self
                    .read_with_generation([gen_key, &full_key], digits.as_bytes())
                    .await?;
            }
        }
        // The generation moved twice during this call: a miss under the
        // newest one is the right answer.
        Ok(Read {
            generation: guess,
            full_key,
            raw: None,
            settled: false,
        })
    }

    /// The backend's `get_with_generation`, under the policy (applied here,
    /// not by the guarded backend: one boxed future fewer on every read).
    /// On the Redis backend this manager made, its `read_generation_under`:
    /// with connections in callers' runtimes (the default), no boxed future
    /// at all, and on a tracked hit none of the policy's either. (Its space
    /// is part of this future on every backend, used or not: about 1.8 KB.)
    async fn read_with_generation(
        &self,
        keys: [&str; 2],
        expected: &[u8],
    ) -> Result<GenerationRead> {
        #[cfg(feature = "redis")]
        if let (Some(policy), Some(redis)) = (&self.policy, self.redis.as_deref()) {
            return redis.read_generation_under(keys, expected, policy).await;
        }
        let backend = &*self.unguarded;
        match &self.policy {
            Some(policy) => {
                let call = || backend.get_with_generation(keys, expected);
                policy.run(backend.name(), keys.len(), call).await
            }
            None => backend.get_with_generation(keys, expected).await,
        }
    }

    /// Creates a namespace's generation key if it is missing.
    async fn start_generation(&self, gen_key: &str) -> Result<u64> {
        let fresh = now_micros();
        let created = self
            .backend
            .set_if(
                gen_key,
                Bytes::from(fresh.to_string()),
                None,
                &Expect::Absent,
            )
            .await?;
        if created {
            return Ok(fresh);
        }
        match self.backend.get(gen_key).await? {
            Some(g) => parse_generation(&g),
            None => Err(Error::new(
                ErrorKind::Backend,
                "the namespace generation vanished while being created",
            )),
        }
    }

    /// Looks `key` up; on a miss, joins or leads its single flight.
    pub async fn begin<V>(&self, key: &EntryKey) -> Begin<'_, V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.begin_opts(key, &CallOptions::default()).await
    }

    /// [`begin`](Manager::begin), with single-flight on or off.
    pub async fn begin_with<V>(&self, key: &EntryKey, single_flight: bool) -> Begin<'_, V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let opts = CallOptions {
            single_flight,
            ..CallOptions::default()
        };
        self.begin_opts(key, &opts).await
    }

    /// [`begin`](Manager::begin), with the given [`CallOptions`].
    pub async fn begin_opts<V>(&self, key: &EntryKey, opts: &CallOptions) -> Begin<'_, V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.begin_key(key, opts).await
    }

    /// [`begin_opts`](Manager::begin_opts) of an entry key or of its parts
    /// (what `#[cached]` functions call: no `EntryKey` is built).
    pub(crate) async fn begin_key<V, K>(&self, key: &K, opts: &CallOptions) -> Begin<'_, V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
        K: RenderKey + ?Sized,
    {
        let read = match self.read_key(key).await {
            Ok(read) => read,
            Err(e) => {
                self.stats.error("a cache read", &e);
                self.stats.miss();
                return Begin::Compute(Box::new(Ticket::bypass()));
            }
        };
        if !read.settled {
            // Flushes kept racing the read: compute, as without the cache.
            self.stats.miss();
            return Begin::Compute(Box::new(Ticket::bypass()));
        }
        match self.classify::<V>(read, opts.early_refresh) {
            Observed::Hit(value, left) => {
                self.stats.hit();
                Begin::Hit(value, Some(left))
            }
            // Boxed: a hit then carries neither the single flight's nor the
            // lock's state, nor their code, in its own future.
            Observed::Miss(target, tag) => Box::pin(self.begin_miss(key, target, tag, opts)).await,
            Observed::Refresh(value, left, target) => self.begin_refresh(value, left, target, opts),
        }
    }

    /// A miss: joins or leads its single flight (when on), then takes the
    /// lock (when asked), or is served by whoever held either.
    async fn begin_miss<V, K>(
        &self,
        key: &K,
        target: Target,
        flight_tag: u64,
        opts: &CallOptions,
    ) -> Begin<'_, V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
        K: RenderKey + ?Sized,
    {
        let leader = if opts.single_flight {
            let flight = format!("{}#{flight_tag:x}", target.full_key);
            match self.flights.join(flight).await {
                Joined::Leader(leader) => Some(leader),
                Joined::Done(shared) => match shared.and_then(|s| s.downcast_ref::<V>().cloned()) {
                    Some(value) => {
                        self.stats.hit();
                        return Begin::Hit(value, None);
                    }
                    // Nothing to share: compute alone, as without the cache.
                    None => {
                        self.stats.miss();
                        return Begin::Compute(Box::new(Ticket::bypass()));
                    }
                },
            }
        } else {
            None
        };
        let lock = match opts.lock_lease {
            None => None,
            // Boxed: most misses take no lock, and their box is then
            // small enough for the allocator's per-thread cache.
            Some(lease) => match Box::pin(self.lock_or_wait::<V, K>(key, &target, lease)).await {
                Locked::Held(guard) => Some(guard),
                Locked::GaveUp => None,
                Locked::Computed(value, left) => {
                    self.stats.hit();
                    if let Some(leader) = leader {
                        leader.publish(Some(Arc::new(value.clone())), Some(FLIGHT_GRACE));
                    }
                    return Begin::Hit(value, Some(left));
                }
            },
        };
        self.stats.miss();
        Begin::Compute(Box::new(Ticket {
            target: Some(target),
            leader,
            lock,
            started: Instant::now(),
        }))
    }

    /// An early refresh: one caller recomputes (with single-flight, only if
    /// nobody else is refreshing the entry); the others return the current
    /// value without waiting.
    fn begin_refresh<V>(
        &self,
        current: V,
        left: ExpiresAt,
        target: Target,
        opts: &CallOptions,
    ) -> Begin<'_, V> {
        let leader = if opts.single_flight {
            match self
                .flights
                .lead_if_idle(format!("{}#refresh", target.full_key))
            {
                Some(leader) => Some(leader),
                None => {
                    self.stats.hit();
                    return Begin::Hit(current, Some(left));
                }
            }
        } else {
            None
        };
        self.stats.refresh();
        Begin::Compute(Box::new(Ticket {
            target: Some(target),
            leader,
            lock: None,
            started: Instant::now(),
        }))
    }

    /// What a read found: a value to return, or a miss with where and under
    /// which condition to store, and the tag of its single flight.
    #[inline]
    fn classify<V: DeserializeOwned>(&self, read: Read, early_refresh: Option<f64>) -> Observed<V> {
        let miss = |expect, corrupt, tag| {
            Observed::Miss(
                Target {
                    full_key: read.full_key.clone(),
                    expect,
                    corrupt,
                },
                tag,
            )
        };
        let Some(bytes) = &read.raw else {
            return miss(Expect::Absent, false, 0);
        };
        let header = match envelope::read_header(bytes) {
            Ok(header) => header,
            Err(e) => {
                self.stats.corrupt(&read.full_key, &e);
                let digest = KeyHasher::default().digest_bytes(bytes);
                let mut tag = [0u8; 8];
                tag.copy_from_slice(&digest.as_bytes()[..8]);
                return miss(
                    Expect::Exact(bytes.clone()),
                    true,
                    u64::from_le_bytes(tag) | 1,
                );
            }
        };
        // The entry's stamp, for a write that must find it still there
        // (made on a miss or a refresh only: a hit needs none).
        let written = || Bytes::copy_from_slice(&bytes[..STAMP_END]);
        if header.kind == Kind::Tombstone {
            return miss(Expect::Prefix(written()), false, header.stamp);
        }
        match envelope::decode_value::<V>(&header, bytes) {
            Ok(value) if early_refresh.is_some_and(|beta| refresh_early(&header, beta)) => {
                // Recompute and replace this very entry, or fill the key if
                // it expired meanwhile; a removal's tombstone still wins.
                let target = Target {
                    full_key: read.full_key.clone(),
                    expect: Expect::PrefixOrAbsent(written()),
                    corrupt: false,
                };
                Observed::Refresh(value, ExpiresAt::of(&header), target)
            }
            Ok(value) => Observed::Hit(value, ExpiresAt::of(&header)),
            Err(e) => {
                self.stats.corrupt(&read.full_key, &e);
                miss(Expect::Prefix(written()), true, header.stamp)
            }
        }
    }

    /// Takes the backend lock of a missing entry, or waits for its holder (in
    /// another process) to store the value. Waiting is bounded by the lease:
    /// a holder that died costs at most that; then this caller computes.
    async fn lock_or_wait<V: DeserializeOwned, K: RenderKey + ?Sized>(
        &self,
        key: &K,
        target: &Target,
        lease: Duration,
    ) -> Locked<V> {
        let lock_key = format!("{}:lock", target.full_key);
        let token = Bytes::from(format!("{:016x}", crate::random::next_u64()));
        let deadline = Instant::now() + lease;
        let poll = (lease / 50).clamp(Duration::from_millis(2), Duration::from_millis(50));
        loop {
            match self
                .backend
                .set_if(&lock_key, token.clone(), Some(lease), &Expect::Absent)
                .await
            {
                Ok(true) => {
                    let guard = LockGuard {
                        backend: self.backend.clone(),
                        key: lock_key,
                        token: Expect::Exact(token),
                        released: false,
                    };
                    // The previous holder may have stored the value just
                    // before releasing the lock to us.
                    if let Ok(read) = self.read_key(key).await {
                        if let Observed::Hit(value, left) = self.classify::<V>(read, None) {
                            guard.release().await;
                            return Locked::Computed(value, left);
                        }
                    }
                    return Locked::Held(guard);
                }
                Ok(false) => {}
                Err(e) => {
                    self.stats.error("taking a compute lock", &e);
                    return Locked::GaveUp;
                }
            }
            if Instant::now() >= deadline {
                return Locked::GaveUp;
            }
            crate::blocking::sleep(poll).await;
            if let Ok(read) = self.read_key(key).await {
                if let Observed::Hit(value, left) = self.classify::<V>(read, None) {
                    return Locked::Computed(value, left);
                }
            }
        }
    }

    /// Ends a [`Ticket`]: stores `value` (`None`: the outcome is not to be
    /// cached) if the computation took less than the removal window, and
    /// hands it to the callers waiting on the same computation (with `None`
    /// they compute on their own, as they would without the cache).
    ///
    /// Returns whether the value was stored.
    pub async fn finish<V>(&self, ticket: Box<Ticket<'_>>, value: Option<&V>, ttl: Duration) -> bool
    where
        V: Serialize + Clone + Send + Sync + 'static,
    {
        let elapsed = ticket.started.elapsed();
        let mut stored = false;
        if let Some(target) = &ticket.target {
            if let Some(value) = value.filter(|_| elapsed < self.config.removal_window) {
                stored = self.store(target, value, ttl, elapsed).await;
            } else if target.corrupt {
                if let Err(e) = self
                    .backend
                    .delete_if(&target.full_key, &target.expect)
                    .await
                {
                    self.stats.error("deleting a corrupt entry", &e);
                }
            }
        }
        if let Some(lock) = ticket.lock {
            lock.release().await;
        }
        if let Some(leader) = ticket.leader {
            let grace = stored.then(|| ttl.min(FLIGHT_GRACE));
            let shared = value.map(|v| Arc::new(v.clone()) as crate::singleflight::Shared);
            leader.publish(shared, grace);
        }
        stored
    }

    /// Writes a computed value if the key still holds what the miss read;
    /// whether it did.
    async fn store<V: Serialize>(
        &self,
        target: &Target,
        value: &V,
        ttl: Duration,
        took: Duration,
    ) -> bool {
        let bytes = match envelope::encode_value(value, self.config.encoding, ttl, took) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.stats.error("encoding a value", &e);
                return false;
            }
        };
        match self
            .backend
            .set_if(&target.full_key, bytes.into(), Some(ttl), &target.expect)
            .await
        {
            Ok(true) => {
                self.stats.store();
                true
            }
            // A removal or another writer changed the key meanwhile: theirs stands.
            Ok(false) => false,
            Err(e) => {
                self.stats.error("a cache write", &e);
                false
            }
        }
    }

    /// Stores `value` as the entry of `key` for `ttl`, replacing what is there.
    ///
    /// # Errors
    /// A zero TTL, a value that fails to encode, or a backend failure.
    pub async fn put<V: Serialize + ?Sized>(
        &self,
        key: &EntryKey,
        value: &V,
        ttl: Duration,
    ) -> Result<()> {
        if ttl.is_zero() {
            return Err(Error::invalid("a TTL must be longer than zero"));
        }
        let bytes = envelope::encode_value(value, self.config.encoding, ttl, Duration::ZERO)?;
        let read = self.read(key).await?;
        self.backend
            .set(&read.full_key, bytes.into(), Some(ttl))
            .await?;
        // Local copies of the old value, here and in other processes, go.
        self.broadcast(Invalidation::Remove(
            key.namespace.clone(),
            key.tail.clone(),
        ))
        .await;
        Ok(())
    }

    /// Removes one entry: leaves a tombstone, so that computations which
    /// started before the removal cannot store their (older) value after it.
    /// Returns whether a value was there.
    ///
    /// # Errors
    /// Backend failures.
    pub async fn remove(&self, key: &EntryKey) -> Result<bool> {
        let read = self.read(key).await?;
        let existed = read
            .raw
            .as_deref()
            .and_then(|b| envelope::read_header(b).ok())
            .is_some_and(|h| h.kind == Kind::Value);
        let window = self.config.removal_window;
        self.backend
            .set(
                &read.full_key,
                envelope::encode_tombstone(window).into(),
                Some(window),
            )
            .await?;
        self.broadcast(Invalidation::Remove(
            key.namespace.clone(),
            key.tail.clone(),
        ))
        .await;
        Ok(existed)
    }

    /// Makes every entry of `namespace` unreachable, at once and in every
    /// process, then deletes the old entries in the background.
    ///
    /// Once this returns, no process returns an entry computed before it,
    /// including computations that were in flight while it ran.
    ///
    /// # Errors
    /// An invalid namespace, or a backend failure (then nothing was flushed).
    pub async fn flush_namespace(&self, namespace: &str) -> Result<()> {
        Name::check(namespace, "namespace")?;
        let namespace = Name::new(namespace)?;
        let gen_key = generation_key(&self.config.prefix, &namespace);
        let generation = self.backend.advance(&gen_key, now_micros()).await?;
        self.remember_generation(&namespace, generation);
        self.broadcast(Invalidation::Flush(namespace.clone())).await;
        tracing::info!(namespace = %namespace, generation, "memocache: namespace flushed");
        self.spawn_sweep(namespace, generation);
        Ok(())
    }

    fn spawn_sweep(&self, namespace: Name, live: u64) {
        let Ok(io) = crate::blocking::io_handle() else {
            return;
        };
        let backend = self.backend.clone();
        let prefix = format!("{}:{namespace}:", self.config.prefix);
        io.spawn(async move {
            match sweep(&*backend, &prefix, live).await {
                Ok(n) => tracing::debug!(prefix, deleted = n, "memocache: old generations swept"),
                Err(e) => tracing::debug!(prefix, error = %e, "memocache: sweep stopped; TTLs will reclaim the rest"),
            }
        });
    }
}

/// Deletes the entries under `prefix` whose generation is older than `live`.
async fn sweep(backend: &dyn Backend, prefix: &str, live: u64) -> Result<u64> {
    let mut cursor = 0;
    let mut deleted = 0;
    loop {
        let (next, keys) = backend.scan(prefix, cursor, SWEEP_BATCH).await?;
        let old: Vec<String> = keys
            .into_iter()
            .filter(|k| generation_of(k).is_some_and(|g| g < live))
            .collect();
        if !old.is_empty() {
            deleted += backend.delete(&old).await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
        tokio::time::sleep(SWEEP_PAUSE).await;
    }
}

static GLOBAL: OnceLock<Arc<Manager>> = OnceLock::new();

/// Sets up the global cache from `config`. Call it once, early in `main`,
/// before any cached function runs.
///
/// # Errors
/// [`ErrorKind::AlreadyInitialized`] if the global cache exists already
/// (from an earlier `init`, or from a cached call that set it up from the
/// environment), or the errors of [`Manager::new`].
pub fn init(config: Config) -> Result<()> {
    let manager = Arc::new(Manager::new(config)?);
    install(manager)
}

/// Sets up the global cache from the environment and `memocache.toml`
/// ([`Config::from_env`]), reporting any error instead of logging it.
///
/// # Errors
/// As [`init`], plus configuration errors.
pub fn init_from_env() -> Result<()> {
    init(Config::from_env()?)
}

fn install(manager: Arc<Manager>) -> Result<()> {
    let describe = describe(&manager);
    let mut installed = false;
    GLOBAL.get_or_init(|| {
        installed = true;
        manager
    });
    if installed {
        tracing::info!("memocache: {describe}");
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::AlreadyInitialized,
            "the global cache is already set up (by an earlier init, or by the first \
             cached call, which reads the environment); call init once, before any cached call",
        ))
    }
}

fn describe(manager: &Manager) -> String {
    match &manager.config.backend {
        BackendUrl::Memory => "caching in process memory".to_owned(),
        BackendUrl::Redis(url) => format!("caching in Redis at {url}"),
    }
}

/// The global cache, set up from the environment on first use if [`init`]
/// was not called. With nothing configured it caches in process memory, and
/// says so once in the log. A broken configuration is logged as an error and
/// disables caching (every call computes) rather than failing calls.
#[inline]
pub fn global() -> &'static Arc<Manager> {
    match GLOBAL.get() {
        Some(manager) => manager,
        None => global_first_use(),
    }
}

#[cold]
fn global_first_use() -> &'static Arc<Manager> {
    GLOBAL.get_or_init(|| {
        let manager = match Config::from_env().and_then(Manager::new) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "memocache: bad configuration; caching is disabled");
                Manager::disabled(e.to_string())
            }
        };
        if manager.disabled.is_none() {
            if manager.config.backend == BackendUrl::Memory {
                tracing::info!(
                    "memocache: no MEMOCACHE_URL or memocache.toml; caching in process memory"
                );
            } else {
                tracing::info!("memocache: {}", describe(&manager));
            }
        }
        Arc::new(manager)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager() -> Manager {
        let config = Config::builder().url("memory://").prefix("p").build();
        Manager::new(config.expect("a config")).expect("a manager")
    }

    #[test]
    fn a_static_namespace_keeps_its_generation_key_and_reads_stay_right() {
        let m = manager();
        let digest = m.hasher().digest_bytes(b"args");
        let fixed = EntryKey::new(Name::new_static("fixed").unwrap(), "f", None, digest);
        let shared = EntryKey::new(Name::new("fixed").unwrap(), "f", None, digest);
        crate::blocking::block_on(async {
            assert!(m.read(&fixed).await.unwrap().raw.is_none());
            assert_eq!(m.seen(&fixed.namespace).key, Some("p:fixed:gen"));
            m.put(&fixed, &5u32, Duration::from_secs(60)).await.unwrap();
            let read = m.read(&fixed).await.unwrap();
            assert!(read.raw.is_some(), "a value stored is read back");
            assert_eq!(
                read.full_key,
                fixed.render(&m.config.prefix, read.generation)
            );
            m.flush_namespace("fixed").await.unwrap();
            let after = m.read(&fixed).await.unwrap();
            assert!(after.raw.is_none(), "nothing after a flush");
            assert!(after.generation > read.generation);
            assert_eq!(m.seen(&fixed.namespace).key, Some("p:fixed:gen"));
            // A name made at run time gets no kept key: there may be any
            // number of them.
            let other = EntryKey::new(Name::new("other").unwrap(), "f", None, digest);
            m.read(&other).await.unwrap();
            assert_eq!(m.seen(&other.namespace).key, None);
            assert!(m.seen(&other.namespace).generation > 0);
            // The same name made either way is one namespace.
            assert!(m.read(&shared).await.unwrap().raw.is_none());
            m.put(&shared, &6u32, Duration::from_secs(60))
                .await
                .unwrap();
            assert!(m.read(&fixed).await.unwrap().raw.is_some());
        });
    }

    #[test]
    fn a_generation_written_otherwise_than_in_plain_decimal_still_hits() {
        let m = manager();
        let digest = m.hasher().digest_bytes(b"args");
        let key = EntryKey::new(Name::new_static("padded").unwrap(), "f", None, digest);
        crate::blocking::block_on(async {
            m.put(&key, &5u32, Duration::from_secs(60)).await.unwrap();
            let generation = m.read(&key).await.unwrap().generation;
            // Rewritten from outside with a leading zero: the same number.
            let padded = Bytes::from(format!("0{generation}"));
            m.backend.set("p:padded:gen", padded, None).await.unwrap();
            for _ in 0..3 {
                let read = m.read(&key).await.unwrap();
                assert_eq!(read.generation, generation);
                assert!(read.settled);
                assert!(read.raw.is_some(), "the entry is still found");
            }
        });
    }

    #[test]
    fn the_key_is_kept_when_another_name_saw_the_generation_first_and_once_per_process() {
        let (m, other) = (manager(), manager());
        let digest = m.hasher().digest_bytes(b"args");
        let fixed = EntryKey::new(Name::new_static("first").unwrap(), "f", None, digest);
        let shared = EntryKey::new(Name::new("first").unwrap(), "f", None, digest);
        crate::blocking::block_on(async {
            m.read(&shared).await.unwrap();
            assert_eq!(m.seen(&fixed.namespace).key, None);
            m.read(&fixed).await.unwrap();
            let kept = m.seen(&fixed.namespace).key.expect("kept");
            assert_eq!(kept, "p:first:gen");
            other.read(&fixed).await.unwrap();
            let again = other.seen(&fixed.namespace).key.expect("kept");
            assert!(std::ptr::eq(kept, again), "one string per process");
        });
    }
}
