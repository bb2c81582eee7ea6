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
//! Races with computations: each tier has an epoch that every invalidation
//! moves on. A call notes the epoch before it reads the backend, and its
//! value enters the tier only if the epoch is still the same afterwards, so
//! a value computed before an invalidation never lands in the tier after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;

use crate::key::{Digest, Name};
use crate::store::{Bounds, Store, Weigh};

/// How many entries one function's local tier holds at most.
pub const LOCAL_MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
struct Local<V>(V);

impl<V> Weigh for Local<V> {
    fn weight(&self) -> usize {
        std::mem::size_of::<V>()
    }
}

/// One function's local tier.
pub struct LocalTier<V> {
    namespace: Name,
    ttl: Duration,
    store: Store<Digest, Local<V>>,
    epoch: AtomicU64,
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
        LocalTier {
            namespace,
            ttl,
            store: Store::new(Bounds {
                max_entries: LOCAL_MAX_ENTRIES,
                max_bytes: usize::MAX,
            }),
            epoch: AtomicU64::new(0),
        }
    }

    /// The current epoch: note it before reading the backend.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The value of the entry of arguments `digest`.
    pub fn get(&self, digest: &Digest) -> Option<V> {
        self.store.get(digest).map(|l| l.0)
    }

    /// Keeps `value` for the tier's TTL, or less if its entry has less
    /// left (`at_most`), unless an invalidation happened since `epoch`.
    pub fn insert(&self, digest: Digest, value: V, epoch: u64, at_most: Option<Duration>) {
        if self.epoch() != epoch {
            return;
        }
        let ttl = at_most.map_or(self.ttl, |left| left.min(self.ttl));
        if ttl.is_zero() {
            return;
        }
        self.store.insert(digest, Local(value), Some(ttl));
        // An invalidation between the check and the insert may have missed
        // this entry: take it out again.
        if self.epoch() != epoch {
            self.store.remove(&digest);
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
        self.store.clear();
    }
    fn remove(&self, tail: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // The tier holds one function's entries by digest: the tail's end.
        match tail
            .get(tail.len().saturating_sub(32)..)
            .and_then(Digest::from_hex)
        {
            Some(digest) => {
                self.store.remove(&digest);
            }
            None => self.store.clear(),
        }
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
        t.insert(d(1), 1, epoch, None);
        assert_eq!(t.get(&d(1)), None);
        t.insert(d(1), 2, t.epoch(), None);
        assert_eq!(t.get(&d(1)), Some(2));
    }

    #[test]
    fn a_copy_never_outlives_its_entry() {
        let t = tier();
        t.insert(d(1), 1, t.epoch(), Some(Duration::from_millis(30)));
        assert_eq!(t.get(&d(1)), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.get(&d(1)), None, "the backend entry had 30 ms left");
        t.insert(d(2), 1, t.epoch(), Some(Duration::ZERO));
        assert_eq!(t.get(&d(2)), None, "an expired entry is not copied");
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
        a.insert(d(1), 1, a.epoch(), None);
        b.insert(d(1), 1, b.epoch(), None);
        c.apply(&Invalidation::Flush(Name::new("ns").unwrap()));
        assert_eq!(a.get(&d(1)), None);
        assert_eq!(b.get(&d(1)), Some(1));
        c.set_connected(false);
        assert!(!c.usable());
        assert_eq!(b.get(&d(1)), None);
    }
}
