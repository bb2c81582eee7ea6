//! The map behind a local tier: typed values keyed by the canonical bytes of
//! a call's key arguments, so a hit needs neither the keyed digest nor the
//! key string (both are computed on a miss only).
//!
//! - Sharded, one `RwLock` per shard (each on its own cache line): a hit
//!   takes one shard's read lock, never a global lock.
//! - One hash per lookup (seeded per map; see `args`), which picks both the
//!   shard and the bucket.
//! - Expiry mostly on the coarse clock (see `clock`); recency is kept to
//!   the second, so it is written about once a second per entry and threads
//!   hitting the same entry do not keep stealing its cache line.
//! - Each entry also records the digest of its key, and each shard an index
//!   from digests to entries, because invalidations arrive by key (from
//!   other processes or from code that only has the key).
//! - Bounded: past its share of the entry bound a shard evicts, expired
//!   entries first, else the least recently used of a small sample.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hashbrown::HashTable;
use parking_lot::RwLock;

use super::args::{ArgBytes, ArgsHasher, Query};
use super::clock::{self, Millis};
use crate::key::Digest;

/// How many entries one eviction looks at.
const EVICTION_SAMPLE: usize = 8;

struct Slot<V> {
    args: ArgBytes,
    hash: u64,
    digest: Digest,
    /// Shared, so that no `Clone` or `Drop` of the user's type runs under a
    /// shard's lock (one that calls a cached function could deadlock).
    value: Arc<V>,
    expires_at: Millis,
    last_used: AtomicU64,
}

#[derive(Default)]
struct Shard<V> {
    by_args: HashTable<Slot<V>>,
    /// Digest → hash of the entry's argument bytes.
    by_digest: HashTable<(Digest, u64)>,
}

#[repr(align(128))]
struct Padded<T>(T);

/// A sharded, bounded map from argument bytes to typed values.
pub(crate) struct TierMap<V> {
    shards: Box<[Padded<RwLock<Shard<V>>>]>,
    hasher: foldhash::fast::RandomState,
    args_hasher: ArgsHasher,
    per_shard: usize,
}

impl<V: Clone> TierMap<V> {
    /// A map of at most about `max_entries` entries.
    pub(crate) fn new(max_entries: usize) -> Self {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (threads * 8).next_power_of_two().clamp(16, 128);
        TierMap {
            shards: (0..shards)
                .map(|_| {
                    Padded(RwLock::new(Shard {
                        by_args: HashTable::new(),
                        by_digest: HashTable::new(),
                    }))
                })
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
            args_hasher: ArgsHasher::default(),
            per_shard: max_entries.div_ceil(shards).max(1),
        }
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard<V>> {
        // The high bits: hashbrown uses the low ones for buckets and the top
        // seven for its tags, and the shard count is at most 128.
        &self.shards[(hash >> 32) as usize & (self.shards.len() - 1)].0
    }

    fn digest_hash(&self, digest: &Digest) -> u64 {
        self.hasher.hash_one(digest)
    }

    /// The hash of `args` in the fronts (for bytes, the same as in this map).
    #[inline]
    pub(crate) fn hash_query(&self, args: Query<'_>) -> u64 {
        self.args_hasher.hash_query(args)
    }

    /// The seed of lone integers' hashes.
    pub(crate) fn int_seed(&self) -> [u64; 2] {
        self.args_hasher.int_seed()
    }

    /// The hash of `args` in this map.
    #[inline]
    pub(crate) fn hash(&self, args: &[u8]) -> u64 {
        self.args_hasher.hash(args)
    }

    /// The live value for `args` (whose hash is `hash`), and its expiry.
    #[inline]
    pub(crate) fn get(&self, hash: u64, args: &[u8]) -> Option<(Arc<V>, Millis)> {
        let shard = self.shard(hash).read();
        let slot = shard.by_args.find(hash, |s| s.args.is(args))?;
        if !clock::is_before(slot.expires_at) {
            return None;
        }
        // Recency to the second: written about once a second per entry,
        // so threads hitting one entry do not fight over its cache line.
        let second = clock::now_coarse() / 1000;
        if slot.last_used.load(Ordering::Relaxed) != second {
            slot.last_used.store(second, Ordering::Relaxed);
        }
        Some((Arc::clone(&slot.value), slot.expires_at))
    }

    /// Keeps `value` for `args` (whose key has `digest`) for `ttl_ms`.
    pub(crate) fn insert(&self, args: &[u8], digest: Digest, value: V, ttl_ms: u64) {
        let hash = self.hash(args);
        let dhash = self.digest_hash(&digest);
        let now = clock::now();
        let slot = Slot {
            args: ArgBytes::new(args),
            hash,
            digest,
            value: Arc::new(value),
            expires_at: now.saturating_add(ttl_ms),
            last_used: AtomicU64::new(now / 1000),
        };
        // What leaves the map is dropped after the lock is released.
        let mut gone = Vec::new();
        let mut guard = self.shard(hash).write();
        let shard = &mut *guard;
        match shard.by_args.find_mut(hash, |s| s.args.is(args)) {
            Some(old) => {
                // Same arguments, so the same digest: the index stands.
                gone.push(std::mem::replace(old, slot));
                drop(guard);
                return;
            }
            None => {
                shard.by_args.insert_unique(hash, slot, |s| s.hash);
                shard
                    .by_digest
                    .insert_unique(dhash, (digest, hash), |(d, _)| self.digest_hash(d));
            }
        }
        while shard.by_args.len() > self.per_shard {
            match self.evict_one(shard, args, now) {
                Some(slot) => gone.push(slot),
                None => break,
            }
        }
        drop(guard);
    }

    /// Evicts one entry other than `keep`'s, and returns it.
    fn evict_one(&self, shard: &mut Shard<V>, keep: &[u8], now: Millis) -> Option<Slot<V>> {
        let victim = shard
            .by_args
            .iter()
            .filter(|s| !s.args.is(keep))
            .take(EVICTION_SAMPLE)
            .min_by_key(|s| {
                if now < s.expires_at {
                    // Seconds, as `get` writes it.
                    s.last_used.load(Ordering::Relaxed)
                } else {
                    0
                }
            })
            .map(|s| (s.hash, s.args.clone()));
        let (hash, args) = victim?;
        let (slot, _) = shard
            .by_args
            .find_entry(hash, |s| s.args.is(args.as_slice()))
            .ok()?
            .remove();
        self.unindex(shard, &slot.digest);
        Some(slot)
    }

    fn unindex(&self, shard: &mut Shard<V>, digest: &Digest) {
        if let Ok(entry) = shard
            .by_digest
            .find_entry(self.digest_hash(digest), |(d, _)| d == digest)
        {
            entry.remove();
        }
    }

    /// Removes the entry whose key has `digest`.
    pub(crate) fn remove_digest(&self, digest: &Digest) {
        let dhash = self.digest_hash(digest);
        for lock in self.shards.iter() {
            let lock = &lock.0;
            if lock
                .read()
                .by_digest
                .find(dhash, |(d, _)| d == digest)
                .is_none()
            {
                continue;
            }
            let mut guard = lock.write();
            let shard = &mut *guard;
            let mut gone = None;
            if let Ok(entry) = shard.by_digest.find_entry(dhash, |(d, _)| d == digest) {
                let ((_, hash), _) = entry.remove();
                if let Ok(slot) = shard.by_args.find_entry(hash, |s| s.digest == *digest) {
                    gone = Some(slot.remove().0);
                }
            }
            // Dropped after the lock is released.
            drop(guard);
            drop(gone);
        }
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        for lock in self.shards.iter() {
            let mut shard = lock.0.write();
            let gone = std::mem::take(&mut shard.by_args);
            shard.by_digest.clear();
            // The values are dropped after the lock is released.
            drop(shard);
            drop(gone);
        }
    }

    /// How many entries are held (expired ones included until evicted).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.read().by_args.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyHasher;

    fn d(n: u64) -> Digest {
        KeyHasher::default().digest(&n).unwrap()
    }

    fn args(n: u64) -> Vec<u8> {
        n.to_le_bytes().to_vec()
    }

    fn get<V: Clone>(m: &TierMap<V>, n: u64) -> Option<V> {
        m.get(m.hash(&args(n)), &args(n)).map(|(v, _)| (*v).clone())
    }

    #[test]
    fn insert_get_replace_remove() {
        let m = TierMap::new(1000);
        assert_eq!(get(&m, 1), None);
        m.insert(&args(1), d(1), "one".to_owned(), 60_000);
        m.insert(&args(2), d(2), "two".to_owned(), 60_000);
        assert_eq!(get(&m, 1).as_deref(), Some("one"));
        m.insert(&args(1), d(1), "uno".to_owned(), 60_000);
        assert_eq!(get(&m, 1).as_deref(), Some("uno"));
        assert_eq!(m.len(), 2);
        m.remove_digest(&d(1));
        assert_eq!(get(&m, 1), None);
        assert_eq!(get(&m, 2).as_deref(), Some("two"));
        m.remove_digest(&d(7));
        m.clear();
        assert_eq!(get(&m, 2), None);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn entries_expire() {
        let m = TierMap::new(1000);
        // (Room for both: with a bound of 10, a shard holds one entry, and
        // the two may share a shard.)
        m.insert(&args(1), d(1), 1u8, 30);
        m.insert(&args(2), d(2), 2u8, 60_000);
        assert_eq!(get(&m, 1), Some(1));
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert_eq!(get(&m, 1), None);
        assert_eq!(get(&m, 2), Some(2));
    }

    #[test]
    fn the_bound_holds_and_the_index_follows_evictions() {
        let m = TierMap::new(100);
        for n in 0..10_000 {
            m.insert(&args(n), d(n), n, 60_000);
        }
        let held = m.len();
        assert!(held <= 100 + m.shards.len(), "{held} entries held");
        let indexed: usize = m.shards.iter().map(|s| s.0.read().by_digest.len()).sum();
        assert_eq!(indexed, held, "one index entry per entry");
        // The latest insert is never the one evicted.
        assert_eq!(get(&m, 9_999), Some(9_999));
    }
}
