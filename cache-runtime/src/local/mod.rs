//! The local tier: a typed copy of a function's values in this process, in
//! front of the backend. A local hit costs a hash lookup: no round trip, no
//! decoding.
//!
//! Coherence across processes: every removal and flush is applied to the
//! local tiers of this process at once and published on the backend's
//! invalidation channel (Redis pub/sub, `{prefix}:invalidations`); every
//! process with a local tier subscribes and applies what it receives, within
//! the pub/sub latency (well under a millisecond on one host). Local tiers
//! are used only while the subscription is up: after it drops they are
//! bypassed, and when it comes back they are cleared, since messages may have
//! been missed meanwhile. A backend without invalidation messages never uses
//! local tiers. Each entry also expires after its own, short, TTL.
//!
//! A hit asks no flag whether tiers are usable: when the subscription drops,
//! the flag goes down first (so no call starts keeping values), then every
//! tier is cleared, which also turns away the values of calls already under
//! way (their epoch is gone). Tiers then stay empty until it is back up.
//!
//! Races with computations: each tier has an epoch that every invalidation
//! moves on. A call notes the epoch before it reads the backend, and its
//! value enters the tier only if the epoch is still the same afterwards, so
//! a value computed before an invalidation never lands in the tier after it.
//!
//! A hit is keyed by the canonical bytes of the call's key arguments (see
//! `map`): the keyed digest and the key string are computed on a miss only.

mod args;
pub(crate) mod clock;
pub(crate) mod front;
mod map;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;

use crate::key::canonical::int_bytes;
use crate::key::{Digest, Name};
use crate::stats::PerThread;
pub(crate) use args::Query;
use clock::Millis;
pub use front::FnFront;
use map::TierMap;

/// How many entries one function's local tier holds at most.
pub const LOCAL_MAX_ENTRIES: usize = 10_000;

/// One function's local tier.
pub struct LocalTier<V> {
    namespace: Name,
    ttl: Duration,
    map: TierMap<V>,
    /// Moved on twice by every invalidation: before and after it clears.
    epoch: AtomicU64,
    /// Where hits are counted (the manager's statistics).
    hits: Option<Arc<PerThread>>,
}

impl<V> std::fmt::Debug for LocalTier<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTier")
            .field("namespace", &self.namespace)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> LocalTier<V> {
    /// A tier for entries of `namespace` that live `ttl`.
    pub fn new(namespace: Name, ttl: Duration) -> Self {
        clock::start_ticker();
        LocalTier {
            namespace,
            ttl,
            map: TierMap::new(LOCAL_MAX_ENTRIES),
            epoch: AtomicU64::new(0),
            hits: None,
        }
    }

    /// Counts this tier's hits in `hits`.
    #[must_use]
    pub(crate) fn counting_hits_in(mut self, hits: Arc<PerThread>) -> Self {
        self.hits = Some(hits);
        self
    }

    /// The current epoch: note it before reading the backend.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The value for the key arguments whose canonical bytes are `args`,
    /// from the shared map, counted as a hit in the manager's statistics.
    /// (Functions also keep a front per thread: see
    /// [`lookup`](Self::lookup).)
    pub fn get(&self, args: &[u8]) -> Option<V> {
        self.find(Query::Bytes(args))
    }

    /// [`get`](Self::get) for a lone integer argument.
    pub fn get_int(&self, arg: i128) -> Option<V> {
        self.find(Query::Int(arg))
    }

    /// [`get`](Self::get) for a query.
    pub(crate) fn find(&self, args: Query<'_>) -> Option<V> {
        self.shared(args).map(|(value, _)| value)
    }

    /// The value for `args` from the shared map, also kept in this thread's
    /// front `front` of the function at `owner` (the caller asked the front
    /// already, and it missed) if no invalidation overlapped the read (see
    /// `front`). Counted as a hit.
    pub(crate) fn lookup(
        &'static self,
        args: Query<'_>,
        owner: *const (),
        front: &FnFront,
    ) -> Option<V> {
        let epoch = self.epoch();
        let (value, expires_at) = self.shared(args)?;
        if self.epoch() == epoch {
            front.put(owner, self, args, value.clone(), expires_at, epoch);
        }
        Some(value)
    }

    /// The value for `args` in the shared map and its expiry, counted as a
    /// hit.
    fn shared(&self, args: Query<'_>) -> Option<(V, Millis)> {
        let int;
        let bytes = match args {
            Query::Bytes(bytes) => bytes,
            Query::Int(v) => {
                int = int_bytes(v);
                &int[..]
            }
        };
        let (shared, expires_at) = self.map.get(self.map.hash(bytes), bytes)?;
        // Cloned out of the map's lock (see `map`).
        let value = V::clone(&shared);
        if let Some(hits) = &self.hits {
            hits.add();
        }
        Some((value, expires_at))
    }

    /// Keeps `value` for the key arguments `args` (whose entry key has
    /// `digest`) for the tier's TTL, or less if its entry has less left
    /// (`at_most`), unless an invalidation happened since `epoch`.
    pub fn insert(
        &self,
        args: &[u8],
        digest: Digest,
        value: V,
        epoch: u64,
        at_most: Option<Duration>,
    ) {
        if self.epoch() != epoch {
            return;
        }
        let ttl = at_most.map_or(self.ttl, |left| left.min(self.ttl));
        // Whole milliseconds, rounded down: a copy never outlives its entry.
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ttl_ms == 0 {
            return;
        }
        self.map.insert(args, digest, value, ttl_ms);
        // An invalidation between the check and the insert may have missed
        // this entry: take it out again.
        if self.epoch() != epoch {
            self.map.remove_digest(&digest);
        }
    }
}

/// What a local tier must do when told of an invalidation.
pub trait Invalidate: Send + Sync {
    /// The namespace of the tier.
    fn namespace(&self) -> &Name;
    /// Forgets everything.
    fn clear(&self);
    /// Forgets the entry whose key ends with `tail`.
    fn remove(&self, tail: &str);
}

impl<V: Clone + Send + Sync + 'static> Invalidate for LocalTier<V> {
    fn namespace(&self) -> &Name {
        &self.namespace
    }
    fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.map.clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
    fn remove(&self, tail: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // The tier holds one function's entries by digest: the tail's end.
        match tail
            .get(tail.len().saturating_sub(32)..)
            .and_then(Digest::from_hex)
        {
            Some(digest) => self.map.remove_digest(&digest),
            None => self.map.clear(),
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// An invalidation, as applied locally and sent to other processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A namespace was flushed.
    Flush(Name),
    /// One entry was removed: its namespace and key tail.
    Remove(Name, String),
}

impl Invalidation {
    /// The message bytes: `f <namespace>` or `r <namespace> <tail>`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Invalidation::Flush(ns) => format!("f {ns}").into_bytes(),
            Invalidation::Remove(ns, tail) => format!("r {ns} {tail}").into_bytes(),
        }
    }

    /// Parses a message; `None` for anything else (foreign publishers on the
    /// channel are ignored).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, ' ');
        let kind = parts.next()?;
        let ns = Name::new(parts.next()?).ok()?;
        match (kind, parts.next()) {
            ("f", None) => Some(Invalidation::Flush(ns)),
            ("r", Some(tail)) if !tail.is_empty() => {
                Some(Invalidation::Remove(ns, tail.to_owned()))
            }
            _ => None,
        }
    }
}

/// The local tiers of one manager, and whether they may be used.
#[derive(Default)]
pub struct Coherence {
    tiers: RwLock<HashMap<Name, Vec<Weak<dyn Invalidate>>>>,
    usable: AtomicBool,
}

impl std::fmt::Debug for Coherence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coherence")
            .field("usable", &self.usable())
            .finish_non_exhaustive()
    }
}

impl Coherence {
    /// Tiers start usable (in-process backends) or not (remote ones, until
    /// their subscription is up).
    pub fn new(usable: bool) -> Self {
        Coherence {
            tiers: RwLock::default(),
            usable: AtomicBool::new(usable),
        }
    }

    /// Whether local tiers may answer now.
    #[inline]
    pub fn usable(&self) -> bool {
        self.usable.load(Ordering::Acquire)
    }

    /// Records a new tier.
    pub fn register(&self, tier: &Arc<dyn Invalidate>) {
        let mut tiers = self.tiers.write();
        let list = tiers.entry(tier.namespace().clone()).or_default();
        list.retain(|t| t.strong_count() > 0);
        list.push(Arc::downgrade(tier));
    }

    /// Applies an invalidation to the tiers of its namespace.
    pub fn apply(&self, invalidation: &Invalidation) {
        let ns = match invalidation {
            Invalidation::Flush(ns) | Invalidation::Remove(ns, _) => ns,
        };
        let tiers = self.tiers.read();
        for tier in tiers
            .get(ns)
            .into_iter()
            .flatten()
            .filter_map(Weak::upgrade)
        {
            match invalidation {
                Invalidation::Flush(_) => tier.clear(),
                Invalidation::Remove(_, tail) => tier.remove(tail),
            }
        }
    }

    /// The subscription went up or down. Up again: clear every tier, since
    /// messages may have been missed while it was down.
    pub fn set_connected(&self, up: bool) {
        if up {
            self.clear_all();
        }
        self.usable.store(up, Ordering::Release);
        if !up {
            self.clear_all();
        }
    }

    fn clear_all(&self) {
        for tier in self
            .tiers
            .read()
            .values()
            .flatten()
            .filter_map(Weak::upgrade)
        {
            tier.clear();
        }
    }
}

impl crate::backend::Listener for Coherence {
    fn connected(&self, up: bool) {
        self.set_connected(up);
    }
    fn message(&self, payload: &[u8]) {
        if let Some(invalidation) = Invalidation::decode(payload) {
            self.apply(&invalidation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        crate::key::KeyHasher::default().digest(&n).unwrap()
    }

    fn args(n: u8) -> Vec<u8> {
        crate::key::canonical::to_canonical_bytes(&n).unwrap()
    }

    fn tier() -> Arc<LocalTier<u64>> {
        Arc::new(LocalTier::new(
            Name::new("ns").unwrap(),
            Duration::from_secs(60),
        ))
    }

    #[test]
    fn messages_roundtrip_and_foreign_ones_are_ignored() {
        let ns = Name::new("users").unwrap();
        for m in [
            Invalidation::Flush(ns.clone()),
            Invalidation::Remove(ns, "app::f:0123".into()),
        ] {
            assert_eq!(Invalidation::decode(&m.encode()), Some(m));
        }
        for junk in [
            &b""[..],
            b"x users",
            b"f a:b",
            b"r users",
            b"f users extra",
            b"\xff",
        ] {
            assert_eq!(Invalidation::decode(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_value_computed_before_an_invalidation_is_not_kept() {
        let t = tier();
        let epoch = t.epoch();
        t.remove(&crate::key::EntryKey::new(Name::new("ns").unwrap(), "f", None, d(1)).tail);
        t.insert(&args(1), d(1), 1, epoch, None);
        assert_eq!(t.get(&args(1)), None);
        t.insert(&args(1), d(1), 2, t.epoch(), None);
        assert_eq!(t.get(&args(1)), Some(2));
    }

    #[test]
    fn a_copy_never_outlives_its_entry() {
        let t = tier();
        t.insert(
            &args(1),
            d(1),
            1,
            t.epoch(),
            Some(Duration::from_millis(30)),
        );
        assert_eq!(t.get(&args(1)), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.get(&args(1)), None, "the backend entry had 30 ms left");
        t.insert(&args(2), d(2), 1, t.epoch(), Some(Duration::ZERO));
        assert_eq!(t.get(&args(2)), None, "an expired entry is not copied");
    }

    /// The function the fronts of these tests serve.
    const OWNER: *const () = std::ptr::null();

    /// A tier for the life of the test process, as a function's is.
    fn static_tier() -> &'static LocalTier<u64> {
        Box::leak(Box::new(LocalTier::new(
            Name::new("ns").unwrap(),
            Duration::from_secs(60),
        )))
    }

    /// What a cached function does: this thread's front, then the tier.
    fn call(t: &'static LocalTier<u64>, front: &FnFront, args: Query<'_>) -> Option<u64> {
        front
            .get(OWNER, args)
            .or_else(|| t.lookup(args, OWNER, front))
    }

    #[test]
    fn a_thread_front_never_answers_after_an_invalidation_elsewhere() {
        let t = static_tier();
        let tail = crate::key::EntryKey::new(Name::new("ns").unwrap(), "f", None, d(1)).tail;
        t.insert(&args(1), d(1), 1, t.epoch(), None);
        t.insert(&args(2), d(2), 2, t.epoch(), None);
        std::thread::scope(|s| {
            let (go, wait) = std::sync::mpsc::channel::<()>();
            let (done, seen) = std::sync::mpsc::channel::<()>();
            let reader = s.spawn(move || {
                let front = FnFront::new();
                let (one, two) = (Query::Bytes(&args(1)), Query::Bytes(&args(2)));
                assert_eq!(call(t, &front, one), Some(1));
                assert_eq!(
                    front.get(OWNER, one),
                    Some(1u64),
                    "kept in this thread's front"
                );
                assert_eq!(call(t, &front, two), Some(2));
                done.send(()).unwrap();
                wait.recv().unwrap();
                // Removed by another thread meanwhile.
                assert_eq!(front.get::<u64>(OWNER, one), None);
                assert_eq!(call(t, &front, one), None);
                assert_eq!(call(t, &front, two), Some(2), "the others stay in the map");
                assert_eq!(front.get(OWNER, two), Some(2u64));
                done.send(()).unwrap();
                wait.recv().unwrap();
                assert_eq!(call(t, &front, two), None, "cleared");
            });
            seen.recv().unwrap();
            t.remove(&tail);
            go.send(()).unwrap();
            seen.recv().unwrap();
            t.clear();
            go.send(()).unwrap();
            reader.join().unwrap();
        });
    }

    #[test]
    fn a_lone_integer_finds_what_its_bytes_find_and_invalidations_reach_both() {
        let t = static_tier();
        let front = FnFront::new();
        t.insert(&args(1), d(1), 10, t.epoch(), None);
        // Twice each: the second answer comes from this thread's front.
        for _ in 0..2 {
            assert_eq!(call(t, &front, Query::Int(1)), Some(10));
            assert_eq!(call(t, &front, Query::Bytes(&args(1))), Some(10));
            assert_eq!(call(t, &front, Query::Int(2)), None);
        }
        assert_eq!(front.get(OWNER, Query::Int(1)), Some(10u64));
        t.remove(&crate::key::EntryKey::new(Name::new("ns").unwrap(), "f", None, d(1)).tail);
        assert_eq!(call(t, &front, Query::Int(1)), None);
        assert_eq!(call(t, &front, Query::Bytes(&args(1))), None);
    }

    /// A value whose `Clone` and `Drop` use the tier it is in, as a value
    /// that calls a cached function would.
    #[derive(Debug, PartialEq)]
    struct Reentrant(u8);

    thread_local! {
        static REENTER: std::cell::Cell<Option<&'static LocalTier<Reentrant>>> =
            const { std::cell::Cell::new(None) };
        static REENTRANT_FRONT: FnFront = const { FnFront::new() };
    }

    /// A cached function's lookup: this thread's front, then the tier.
    fn reentrant_call(t: &'static LocalTier<Reentrant>, n: u8) -> Option<Reentrant> {
        REENTRANT_FRONT.with(|front| {
            let q = Query::Bytes(&args(n));
            front.get(OWNER, q).or_else(|| t.lookup(q, OWNER, front))
        })
    }

    fn reenter() {
        let tier = REENTER.with(std::cell::Cell::take);
        if let Some(t) = tier {
            // Writes and reads, in every shard: some share the caller's;
            // and through this thread's front, which the caller may be in.
            for n in 100..140 {
                t.insert(&args(n), d(n), Reentrant(n), t.epoch(), None);
                let _ = reentrant_call(t, n);
            }
            t.remove(&crate::key::EntryKey::new(Name::new("ns").unwrap(), "f", None, d(100)).tail);
            REENTER.with(|slot| slot.set(Some(t)));
        }
    }

    impl Clone for Reentrant {
        fn clone(&self) -> Self {
            reenter();
            Reentrant(self.0)
        }
    }

    impl Drop for Reentrant {
        fn drop(&mut self) {
            reenter();
        }
    }

    #[test]
    fn a_value_that_uses_its_tier_in_clone_or_drop_does_not_deadlock() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let t: &'static LocalTier<Reentrant> = Box::leak(Box::new(LocalTier::new(
                Name::new("ns").unwrap(),
                Duration::from_secs(60),
            )));
            REENTER.with(|slot| slot.set(Some(t)));
            for n in 0..40 {
                t.insert(&args(n), d(n), Reentrant(n), t.epoch(), None);
                // Twice: from the shared map, then from this thread's front.
                assert_eq!(reentrant_call(t, n), Some(Reentrant(n)));
                assert_eq!(reentrant_call(t, n), Some(Reentrant(n)));
                assert_eq!(t.get(&args(n)), Some(Reentrant(n)));
                // Replaced, so the old value is dropped.
                t.insert(&args(n), d(n), Reentrant(n), t.epoch(), None);
            }
            t.clear();
            REENTER.with(std::cell::Cell::take);
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(20))
            .expect("a Clone or Drop that uses the tier deadlocked it");
    }

    #[test]
    fn coherence_applies_to_the_namespace_only_and_clears_on_reconnect() {
        let c = Coherence::new(true);
        let a = tier();
        let b = Arc::new(LocalTier::<u64>::new(
            Name::new("other").unwrap(),
            Duration::from_secs(60),
        ));
        let (da, db): (Arc<dyn Invalidate>, Arc<dyn Invalidate>) = (a.clone(), b.clone());
        c.register(&da);
        c.register(&db);
        a.insert(&args(1), d(1), 1, a.epoch(), None);
        b.insert(&args(1), d(1), 1, b.epoch(), None);
        c.apply(&Invalidation::Flush(Name::new("ns").unwrap()));
        assert_eq!(a.get(&args(1)), None);
        assert_eq!(b.get(&args(1)), Some(1));
        c.set_connected(false);
        assert!(!c.usable());
        assert_eq!(b.get(&args(1)), None);
    }
}
