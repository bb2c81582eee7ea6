//! A sharded, bounded, in-process map with per-entry expiry: the storage of
//! the memory backend.
//!
//! Reads take one shard's read lock (never a global lock) and mark the entry
//! used with a relaxed atomic store. Writes take one shard's write lock. Each
//! shard holds at most its share of the entry and byte bounds; past either,
//! it evicts, expired entries first, else the least recently used of a small
//! random sample (the approach of Redis' `allkeys-lru`): O(1) per eviction and
//! no global list to maintain on the hit path. Entries sit in a vector, found
//! through a hash table of their positions, so that the sample is drawn at
//! random positions: drawn from a hash map's iteration, it was always the
//! same first buckets, and entries elsewhere were never evicted.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hashbrown::HashTable;
use parking_lot::RwLock;

/// How many entries one eviction looks at.
const EVICTION_SAMPLE: usize = 8;
/// Fixed bookkeeping cost counted per entry, in bytes.
const ENTRY_OVERHEAD: usize = 64;

/// Bounds of a [`Store`]. Both apply; `usize::MAX` disables one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The most entries held.
    pub max_entries: usize,
    /// The most bytes held, keys and values and a fixed per-entry overhead.
    pub max_bytes: usize,
}

/// Microseconds since the first use of a store: a monotonic clock in a u64.
fn now_tick() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1
}

struct Slot<V> {
    value: V,
    /// Tick after which the entry is gone; 0: never.
    expires_at: u64,
    last_used: AtomicU64,
    weight: usize,
}

impl<V> Slot<V> {
    fn is_live(&self, now: u64) -> bool {
        self.expires_at == 0 || now < self.expires_at
    }
}

struct Shard<K, V> {
    /// The positions of `entries`, by their keys' hashes.
    index: HashTable<usize>,
    entries: Vec<Entry<K, V>>,
    bytes: usize,
    /// The state of the eviction sample's random positions (xorshift).
    draw: u64,
}

/// A key, its hash (kept: the table rehashes from it, and an eviction reads
/// it for every entry it samples), and its slot.
struct Entry<K, V> {
    key: K,
    hash: u64,
    slot: Slot<V>,
}

impl<K: Eq, V> Shard<K, V> {
    fn new(draw: u64) -> Self {
        Shard {
            index: HashTable::new(),
            entries: Vec::new(),
            bytes: 0,
            draw: draw | 1,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The position of `key`, whose hash is `hash`.
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let entries = &self.entries;
        self.index
            .find(hash, |&i| entries[i].key.borrow() == key)
            .copied()
    }

    fn get<Q>(&self, hash: u64, key: &Q) -> Option<&Slot<V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find(hash, key).map(|i| &self.entries[i].slot)
    }

    /// Stores `slot` under `key` (whose hash is `hash`): its position, and
    /// the slot replaced.
    fn insert(&mut self, hash: u64, key: K, slot: Slot<V>) -> (usize, Option<Slot<V>>) {
        if let Some(i) = self.find(hash, &key) {
            return (i, Some(std::mem::replace(&mut self.entries[i].slot, slot)));
        }
        let i = self.entries.len();
        self.entries.push(Entry { key, hash, slot });
        let entries = &self.entries;
        self.index.insert_unique(hash, i, |&j| entries[j].hash);
        (i, None)
    }

    /// Removes `key` (whose hash is `hash`); its slot.
    fn remove<Q>(&mut self, hash: u64, key: &Q) -> Option<Slot<V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let i = self.find(hash, key)?;
        Some(self.remove_at(i))
    }

    /// Removes the entry at `i`: the last entry takes its place.
    fn remove_at(&mut self, i: usize) -> Slot<V> {
        if let Ok(found) = self.index.find_entry(self.entries[i].hash, |&j| j == i) {
            found.remove();
        }
        let last = self.entries.len() - 1;
        if i != last {
            if let Some(at) = self.index.find_mut(self.entries[last].hash, |&j| j == last) {
                *at = i;
            }
        }
        self.entries.swap_remove(i).slot
    }

    /// A random position, of `n` (not zero).
    fn draw(&mut self, n: usize) -> usize {
        let mut x = self.draw;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.draw = x;
        (x % n as u64) as usize
    }

    /// Keeps the entries whose slot `keep` accepts; the bytes of those
    /// dropped.
    fn retain(&mut self, mut keep: impl FnMut(&Slot<V>) -> bool) -> usize {
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|entry| {
            let kept = keep(&entry.slot);
            if !kept {
                freed += entry.slot.weight;
            }
            kept
        });
        if self.entries.len() != before {
            self.index.clear();
            let entries = &self.entries;
            for (i, entry) in entries.iter().enumerate() {
                self.index
                    .insert_unique(entry.hash, i, |&j| entries[j].hash);
            }
        }
        freed
    }

    fn clear(&mut self) {
        self.index.clear();
        self.entries.clear();
        self.bytes = 0;
    }
}

/// What [`Store::update`] does with the entry it was shown.
#[derive(Debug)]
pub enum Update<V> {
    /// Leave it as it is.
    Keep,
    /// Store this value, with this time to live (`None`: no expiry).
    Set(V, Option<Duration>),
    /// Store this value, keeping the entry's expiry.
    SetKeepingExpiry(V),
    /// Remove the entry.
    Remove,
}

/// What an entry weighs: its key's and value's bytes.
pub trait Weigh {
    /// The bytes this holds on the heap, roughly.
    fn weight(&self) -> usize;
}

impl Weigh for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for bytes::Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// A sharded, bounded map with per-entry expiry.
pub struct Store<K, V> {
    shards: Box<[RwLock<Shard<K, V>>]>,
    hasher: RandomState,
    shard_bounds: Bounds,
}

impl<K, V> std::fmt::Debug for Store<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("shards", &self.shards.len())
            .field("shard_bounds", &self.shard_bounds)
            .finish()
    }
}

fn expiry_tick(ttl: Option<Duration>) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => {
            now_tick().saturating_add(ttl.as_micros().clamp(1, u128::from(u64::MAX / 2)) as u64)
        }
    }
}

impl<K: Hash + Eq + Clone + Weigh, V: Clone + Weigh> Store<K, V> {
    /// A store within `bounds`.
    pub fn new(bounds: Bounds) -> Self {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (threads * 4).next_power_of_two().clamp(4, 64);
        let hasher = RandomState::new();
        let share = |total: usize| {
            if total == usize::MAX {
                usize::MAX
            } else {
                (total / shards).max(1)
            }
        };
        Store {
            shards: (0..shards)
                .map(|i| RwLock::new(Shard::new(hasher.hash_one(i))))
                .collect(),
            hasher,
            shard_bounds: Bounds {
                max_entries: share(bounds.max_entries),
                max_bytes: share(bounds.max_bytes),
            },
        }
    }

    /// The hash of `key`, and the shard that holds it.
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, &RwLock<Shard<K, V>>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[self.shard_of(hash)])
    }

    /// The shard of a key whose hash is `hash`: from the middle bits, as the
    /// shard's table uses the low ones for its buckets and the top ones for
    /// its tags.
    fn shard_of(&self, hash: u64) -> usize {
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    /// The live value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = now_tick();
        let (hash, shard) = self.shard(key);
        let shard = shard.read();
        let slot = shard.get(hash, key)?;
        if !slot.is_live(now) {
            return None;
        }
        slot.last_used.store(now, Ordering::Relaxed);
        Some(slot.value.clone())
    }

    /// The live values of `keys`, read as one atomic snapshot: the shards
    /// involved are read-locked together (in shard order, so never in a
    /// deadlock: writers hold one shard at a time). A namespace's generation
    /// and an entry are read this way, so that no flush and sweep can fall
    /// between the two reads.
    pub fn get_many<Q>(&self, keys: &[&Q]) -> Vec<Option<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = now_tick();
        let hashes: Vec<u64> = keys.iter().map(|k| self.hasher.hash_one(k)).collect();
        let index: Vec<usize> = hashes.iter().map(|&h| self.shard_of(h)).collect();
        let mut order = index.clone();
        order.sort_unstable();
        order.dedup();
        let guards: Vec<_> = order.iter().map(|&i| (i, self.shards[i].read())).collect();
        keys.iter()
            .zip(hashes.iter().zip(&index))
            .map(|(key, (&hash, i))| {
                let (_, shard) = guards.iter().find(|(g, _)| g == i)?;
                let slot = shard.get(hash, *key).filter(|s| s.is_live(now))?;
                slot.last_used.store(now, Ordering::Relaxed);
                Some(slot.value.clone())
            })
            .collect()
    }

    /// Calls `f` with the live value of `key` (or `None`) under the shard's
    /// write lock and applies the [`Update`] it returns: an atomic
    /// read-modify-write, for compare-and-set and counters.
    pub fn update<F, R>(&self, key: &K, f: F) -> R
    where
        F: FnOnce(Option<&V>) -> (Update<V>, R),
    {
        let now = now_tick();
        let (hash, shard) = self.shard(key);
        let mut shard = shard.write();
        let current = shard.get(hash, key).filter(|s| s.is_live(now));
        let kept_expiry = current.map_or(0, |s| s.expires_at);
        let (update, result) = f(current.map(|s| &s.value));
        match update {
            Update::Keep => {}
            Update::Set(value, ttl) => {
                self.insert_locked(&mut shard, hash, key.clone(), value, expiry_tick(ttl), now);
            }
            Update::SetKeepingExpiry(value) => {
                self.insert_locked(&mut shard, hash, key.clone(), value, kept_expiry, now);
            }
            Update::Remove => {
                if let Some(old) = shard.remove(hash, key) {
                    shard.bytes -= old.weight;
                }
            }
        }
        result
    }

    /// Stores `value` under `key`, for `ttl` (`None`: until evicted).
    pub fn insert(&self, key: K, value: V, ttl: Option<Duration>) {
        let now = now_tick();
        let (hash, shard) = self.shard(&key);
        let mut shard = shard.write();
        self.insert_locked(&mut shard, hash, key, value, expiry_tick(ttl), now);
    }

    fn insert_locked(
        &self,
        shard: &mut Shard<K, V>,
        hash: u64,
        key: K,
        value: V,
        expires_at: u64,
        now: u64,
    ) {
        let weight = key.weight() + value.weight() + ENTRY_OVERHEAD;
        let slot = Slot {
            value,
            expires_at,
            last_used: AtomicU64::new(now),
            weight,
        };
        shard.bytes += weight;
        let (mut at, old) = shard.insert(hash, key, slot);
        if let Some(old) = old {
            shard.bytes -= old.weight;
        }
        while shard.len() > self.shard_bounds.max_entries
            || (shard.bytes > self.shard_bounds.max_bytes && shard.len() > 1)
        {
            match Self::evict_one(shard, at, now) {
                Some(moved) => at = moved,
                None => break,
            }
        }
    }

    /// Evicts one entry other than the one at `keep` (just written): an
    /// expired one from a sample of random positions if any, else the least
    /// recently used of it. The new position of the kept entry (the last
    /// entry takes the place of the one evicted), or `None` if it is alone.
    fn evict_one(shard: &mut Shard<K, V>, keep: usize, now: u64) -> Option<usize> {
        let n = shard.len();
        if n < 2 {
            return None;
        }
        let mut victim: Option<(usize, u64)> = None;
        for _ in 0..EVICTION_SAMPLE.min(n - 1) {
            // Drawn among the others, evenly.
            let drawn = shard.draw(n - 1);
            let i = if drawn >= keep { drawn + 1 } else { drawn };
            let slot = &shard.entries[i].slot;
            let used = if slot.is_live(now) {
                slot.last_used.load(Ordering::Relaxed)
            } else {
                0
            };
            if victim.is_none_or(|(_, best)| used < best) {
                victim = Some((i, used));
            }
        }
        let (i, _) = victim?;
        let old = shard.remove_at(i);
        shard.bytes -= old.weight;
        Some(if keep == n - 1 { i } else { keep })
    }

    /// Removes `key`; whether it held a live entry.
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = now_tick();
        let (hash, shard) = self.shard(key);
        let mut shard = shard.write();
        match shard.remove(hash, key) {
            Some(old) => {
                shard.bytes -= old.weight;
                old.is_live(now)
            }
            None => false,
        }
    }

    /// The remaining time to live of `key`: `None` if absent, `Some(None)` if
    /// it never expires.
    pub fn ttl<Q>(&self, key: &Q) -> Option<Option<Duration>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = now_tick();
        let (hash, shard) = self.shard(key);
        let shard = shard.read();
        let slot = shard.get(hash, key).filter(|s| s.is_live(now))?;
        Some((slot.expires_at != 0).then(|| Duration::from_micros(slot.expires_at - now)))
    }

    /// Sets a new time to live on a live `key`; whether it was there.
    pub fn expire<Q>(&self, key: &Q, ttl: Duration) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = now_tick();
        let (hash, shard) = self.shard(key);
        let mut shard = shard.write();
        match shard.find(hash, key) {
            Some(i) if shard.entries[i].slot.is_live(now) => {
                shard.entries[i].slot.expires_at = expiry_tick(Some(ttl));
                true
            }
            _ => false,
        }
    }

    /// The live keys of shard `shard` that `select` accepts, and whether there
    /// are shards after it. Drops expired entries on the way.
    pub fn keys_of_shard(&self, shard: usize, select: impl Fn(&K) -> bool) -> (Vec<K>, bool) {
        let Some(lock) = self.shards.get(shard) else {
            return (Vec::new(), false);
        };
        let now = now_tick();
        let mut shard_guard = lock.write();
        let freed = shard_guard.retain(|s| s.is_live(now));
        shard_guard.bytes -= freed;
        let keys = shard_guard
            .entries
            .iter()
            .map(|entry| &entry.key)
            .filter(|k| select(k))
            .cloned()
            .collect();
        (keys, shard + 1 < self.shards.len())
    }

    /// Removes every entry.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.write().clear();
        }
    }

    /// How many entries and bytes are held (expired ones included until swept).
    pub fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), s| {
            let s = s.read();
            (n + s.len(), b + s.bytes)
        })
    }

    /// The bounds the store keeps, summed over its shards.
    pub fn bounds(&self) -> Bounds {
        let n = self.shards.len();
        Bounds {
            max_entries: self.shard_bounds.max_entries.saturating_mul(n),
            max_bytes: self.shard_bounds.max_bytes.saturating_mul(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unbounded() -> Bounds {
        Bounds {
            max_entries: usize::MAX,
            max_bytes: usize::MAX,
        }
    }

    #[test]
    fn get_insert_remove() {
        let s: Store<String, String> = Store::new(unbounded());
        assert_eq!(s.get("a"), None);
        s.insert("a".into(), "1".into(), None);
        assert_eq!(s.get("a").as_deref(), Some("1"));
        assert_eq!(s.ttl("a"), Some(None));
        assert!(s.remove("a"));
        assert!(!s.remove("a"));
    }

    #[test]
    fn get_many_reads_every_key_in_order() {
        let s: Store<String, String> = Store::new(unbounded());
        for i in 0..50 {
            s.insert(format!("k{i}"), format!("v{i}"), None);
        }
        let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let got = s.get_many(&refs);
        for (i, v) in got.iter().enumerate() {
            assert_eq!(v.as_deref(), (i < 50).then(|| format!("v{i}")).as_deref());
        }
    }

    #[test]
    fn entries_expire() {
        let s: Store<String, String> = Store::new(unbounded());
        s.insert("a".into(), "1".into(), Some(Duration::from_millis(30)));
        assert!(s.get("a").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.get("a"), None);
        assert_eq!(s.ttl("a"), None);
    }

    #[test]
    fn stays_within_entry_bound_at_ten_times_capacity() {
        let s: Store<String, String> = Store::new(Bounds {
            max_entries: 1000,
            max_bytes: usize::MAX,
        });
        for i in 0..10_000 {
            s.insert(format!("k{i}"), "v".into(), None);
        }
        let (n, _) = s.usage();
        assert!(
            n <= s.bounds().max_entries && s.bounds().max_entries <= 1000,
            "{n}"
        );
        assert!(n > 500, "evicted far too much: {n}");
    }

    #[test]
    fn evicts_old_entries_wherever_they_sit() {
        let s: Store<String, String> = Store::new(Bounds {
            max_entries: 1000,
            max_bytes: usize::MAX,
        });
        for i in 0..10_000 {
            s.insert(format!("k{i}"), "v".into(), None);
            assert!(s.get(&format!("k{i}")).is_some(), "k{i} was written");
        }
        let old = (0..1000)
            .filter(|i| s.get(&format!("k{i}")).is_some())
            .count();
        assert!(
            old < 50,
            "{old} of the first 1000 survived 9000 newer inserts"
        );
        // Removals keep positions and the table in step.
        for i in 9000..10_000 {
            s.remove(&format!("k{i}"));
            assert_eq!(s.get(&format!("k{i}")), None);
        }
        let (n, _) = s.usage();
        let left = (0..9000)
            .filter(|i| s.get(&format!("k{i}")).is_some())
            .count();
        assert_eq!(left, n, "every entry counted is found");
    }

    #[test]
    fn stays_within_byte_bound() {
        let s: Store<String, String> = Store::new(Bounds {
            max_entries: usize::MAX,
            max_bytes: 1 << 20,
        });
        for i in 0..10_000 {
            s.insert(format!("k{i}"), "x".repeat(1000), None);
        }
        let (_, bytes) = s.usage();
        assert!(bytes <= 1 << 20, "{bytes}");
    }

    #[test]
    fn recently_used_entries_survive_eviction() {
        let s: Store<String, String> = Store::new(Bounds {
            max_entries: 64,
            max_bytes: usize::MAX,
        });
        s.insert("hot".into(), "v".into(), None);
        for i in 0..2000 {
            // Strictly later ticks than the entries inserted before.
            std::thread::sleep(Duration::from_micros(1));
            assert!(
                s.get("hot").is_some(),
                "hot entry evicted after {i} inserts"
            );
            s.insert(format!("k{i}"), "v".into(), None);
        }
    }
}
