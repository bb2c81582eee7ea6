//! Per-thread fronts of a local tier: a small set-associative array per
//! thread and tier (one allocation) that answers repeated hits without
//! touching any memory another thread writes, so hits scale with threads (a
//! shared map's read lock is a write to a shared cache line, which threads
//! then pass back and forth).
//!
//! Layout: [`SETS`] sets of [`WAYS`] entries. A set keeps the hashes of its
//! entries together in front of them (one 32-byte line), so a lookup reads
//! that line and then only the entry whose hash matches. A key may live in
//! either of two sets chosen by its hash, and goes to one with a free way:
//! with one set per key, 64 keys cycled through 64 sets of 4 often put five
//! keys in one set, which then missed on every call (a cliff from 9 to 30 ns
//! per hit, depending on the tier's random seed); with two choices a
//! working set up to about half the front's size fits.
//!
//! Coherence: every entry of a front records the tier's epoch when its value
//! was read from the shared map, and is used only while the epoch is the
//! same. Every invalidation moves the epoch on twice, once before it clears
//! the shared map and once after; an odd epoch means one is under way. A
//! value is copied into a front only if the epoch was the same even number
//! before and after it was read: then no invalidation overlapped the read,
//! and any later one changes the epoch. (A front therefore forgets all its
//! entries on any invalidation of its tier; fronts are small and refill from
//! the shared map.)
//!
//! Ownership: each live thread holds a distinct index (`thread_slot`), and
//! the front at index `i` of a tier is touched only by the thread holding
//! `i`. Threads past [`MAX_THREADS`] get no front and use the shared map
//! alone.

use super::args::{FrontKey, Query};
use super::clock::{self, Millis};
use crate::stats::PerThread;
use crate::thread_slot::{self, MAX_THREADS};
use std::cell::UnsafeCell;

/// Sets per front (a power of two), of [`WAYS`] entries each.
const SETS: usize = 64;
/// Entries per set.
const WAYS: usize = 4;

struct Entry<V> {
    args: FrontKey,
    value: V,
    expires_at: Millis,
    epoch: u64,
}

/// One set: the hashes of its entries (0: a free way), then the entries,
/// most recently filled first.
struct Set<V> {
    tags: [u64; WAYS],
    entries: [Option<Entry<V>>; WAYS],
}

struct Front<V> {
    /// A fixed-size array: its bound is known, and one load less than a slice.
    sets: Box<[Set<V>; SETS]>,
    /// Which of a key's two full sets loses an entry next (alternates).
    evict_second: bool,
}

/// A hash as a tag: never 0, which marks a free way.
#[inline]
fn tag(hash: u64) -> u64 {
    hash | 1
}

/// The two sets a key with `hash` may live in.
#[inline]
fn sets_of(hash: u64) -> [usize; 2] {
    [
        hash as usize & (SETS - 1),
        (hash >> 32) as usize & (SETS - 1),
    ]
}

impl<V> Set<V> {
    /// The way holding `args` (hashed to `tag`).
    #[inline]
    fn find(&self, tag: u64, args: Query<'_>) -> Option<usize> {
        (0..WAYS).find(|&w| {
            self.tags[w] == tag && self.entries[w].as_ref().is_some_and(|e| e.args.is(args))
        })
    }

    /// Puts `entry` first; the last entry leaves if the set was full.
    fn push(&mut self, tag: u64, entry: Entry<V>) {
        self.tags.rotate_right(1);
        self.entries.rotate_right(1);
        self.tags[0] = tag;
        self.entries[0] = Some(entry);
    }
}

impl<V> Front<V> {
    #[inline]
    fn get(&self, hash: u64, args: Query<'_>) -> Option<&Entry<V>> {
        let tag = tag(hash);
        for set in sets_of(hash) {
            let set = &self.sets[set];
            if let Some(way) = set.find(tag, args) {
                return set.entries[way].as_ref();
            }
        }
        None
    }

    fn put(&mut self, hash: u64, args: Query<'_>, value: V, expires_at: Millis, epoch: u64) {
        let tag = tag(hash);
        let [first, second] = sets_of(hash);
        // Same arguments: refresh in place, keeping their bytes.
        for set in [first, second] {
            let set = &mut self.sets[set];
            if let Some(way) = set.find(tag, args) {
                if let Some(entry) = &mut set.entries[way] {
                    entry.value = value;
                    entry.expires_at = expires_at;
                    entry.epoch = epoch;
                }
                return;
            }
        }
        // Else into a set with a free way, or out goes the oldest entry of
        // one of the two (in turn).
        let free = |set: &Set<V>| set.tags[WAYS - 1] == 0;
        let into = if free(&self.sets[first]) {
            first
        } else if free(&self.sets[second]) {
            second
        } else {
            self.evict_second = !self.evict_second;
            if self.evict_second {
                second
            } else {
                first
            }
        };
        self.sets[into].push(
            tag,
            Entry {
                args: FrontKey::new(args),
                value,
                expires_at,
                epoch,
            },
        );
    }
}

#[repr(align(128))]
struct Cell<V>(UnsafeCell<Option<Front<V>>>);

/// The fronts of one tier, one per thread index.
pub(crate) struct Fronts<V> {
    cells: [Cell<V>; MAX_THREADS],
}

// SAFETY: the cell at index `i` is only ever accessed by the one live thread
// that holds index `i` (see `thread_slot`), and an index passes from an
// exiting thread to a new one through a mutex, which orders the accesses. So
// no cell is accessed by two threads at once; `V: Send` lets a value move to
// the thread that next holds the index.
unsafe impl<V: Send> Sync for Fronts<V> {}
unsafe impl<V: Send> Send for Fronts<V> {}

impl<V: Clone> Fronts<V> {
    pub(crate) fn new() -> Self {
        Fronts {
            cells: std::array::from_fn(|_| Cell(UnsafeCell::new(None))),
        }
    }

    /// This thread's front, with `f`; `None` for threads without an index,
    /// and when this thread is already in a front (a `Clone` or `Drop` of a
    /// value that calls a cached function).
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Option<Front<V>>, usize) -> R) -> Option<R> {
        thread_slot::enter(|index| {
            let cell = self.cells.get(index)?;
            // SAFETY: this thread holds the index (see the `Sync` impl)
            // and is not in another borrow of the cell (`enter`).
            Some(f(unsafe { &mut *cell.0.get() }, index))
        })
        .flatten()
    }

    /// The value for `args` (hashed to `hash`), if this thread's front has
    /// it from epoch `epoch` and it has not expired; counted in `hits` (at
    /// this thread's index, known here already).
    #[inline]
    pub(crate) fn get(
        &self,
        hash: u64,
        args: Query<'_>,
        epoch: u64,
        hits: Option<&PerThread>,
    ) -> Option<V> {
        // The clone is written once, into `found`: a value passed out
        // through nested `Option`s is copied several times on the way.
        let mut found = None;
        self.with(|front, index| {
            let Some(front) = front else { return };
            if let Some(entry) = front.get(hash, args) {
                if entry.epoch == epoch && clock::is_before(entry.expires_at) {
                    found = Some(entry.value.clone());
                    if let Some(hits) = hits {
                        hits.add_at(index);
                    }
                }
            }
        });
        found
    }

    /// Keeps `value` for `args` in this thread's front, as read at `epoch`.
    pub(crate) fn put(&self, hash: u64, args: Query<'_>, value: V, expires_at: Millis, epoch: u64) {
        self.with(|front, _| {
            if front.is_none() {
                // Built on the heap: an array of entries this size (tens of
                // KiB for larger values) would otherwise pass through the
                // stack. (The conversion cannot fail: the lengths match.)
                let sets: Box<[Set<V>]> = (0..SETS)
                    .map(|_| Set {
                        tags: [0; WAYS],
                        entries: std::array::from_fn(|_| None),
                    })
                    .collect();
                *front = sets.try_into().ok().map(|sets| Front {
                    sets,
                    evict_second: false,
                });
            }
            if let Some(front) = front {
                front.put(hash, args, value, expires_at, epoch);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Query::Bytes as B;

    /// Hashes spread like real ones (splitmix64 of `i`).
    fn spread(i: u64) -> u64 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn a_front_answers_its_own_thread_only_and_per_epoch() {
        let fronts: Fronts<u32> = Fronts::new();
        let far = clock::now() + 60_000;
        // A lone integer and bytes are different keys.
        fronts.put(9, Query::Int(1), 5, far, 2);
        assert_eq!(fronts.get(9, Query::Int(1), 2, None), Some(5));
        assert_eq!(fronts.get(9, Query::Int(2), 2, None), None);
        assert_eq!(fronts.get(9, B(&[0x10, 1]), 2, None), None);
        fronts.put(7, B(b"a"), 1, far, 2);
        assert_eq!(fronts.get(7, B(b"a"), 2, None), Some(1));
        assert_eq!(fronts.get(7, B(b"a"), 4, None), None, "another epoch");
        assert_eq!(
            fronts.get(7, B(b"b"), 2, None),
            None,
            "other arguments, same hash"
        );
        assert_eq!(fronts.get(8, B(b"a"), 2, None), None, "another hash");
        fronts.put(7, B(b"a"), 3, far, 2);
        assert_eq!(
            fronts.get(7, B(b"a"), 2, None),
            Some(3),
            "refreshed in place"
        );
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(fronts.get(7, B(b"a"), 2, None), None, "another thread"));
        });
        fronts.put(7, B(b"x"), 9, clock::now().saturating_sub(1), 2);
        assert_eq!(fronts.get(7, B(b"x"), 2, None), None, "expired");
    }

    #[test]
    fn keys_that_share_both_sets_fill_both_then_the_oldest_leave() {
        let fronts: Fronts<u64> = Fronts::new();
        let far = clock::now() + 60_000;
        // Every hash `5 + 64 * i` (i < 2^26) has sets 5 and 0.
        let hash = |i: u64| 5 + ((i + 1) << 6);
        for i in 0..2 * WAYS as u64 {
            fronts.put(hash(i), Query::Int(i.into()), i, far, 2);
        }
        for i in 0..2 * WAYS as u64 {
            assert_eq!(fronts.get(hash(i), Query::Int(i.into()), 2, None), Some(i));
        }
        let extra = 2 * WAYS as u64;
        fronts.put(hash(extra), Query::Int(extra.into()), extra, far, 2);
        let held = (0..=extra)
            .filter(|&i| fronts.get(hash(i), Query::Int(i.into()), 2, None).is_some())
            .count();
        assert_eq!(held, 2 * WAYS, "two sets hold {} entries", 2 * WAYS);
        assert_eq!(
            fronts.get(hash(extra), Query::Int(extra.into()), 2, None),
            Some(extra),
            "the newest is held"
        );
    }

    #[test]
    fn sixty_four_hot_keys_all_stay() {
        let keys: Vec<u64> = (0..64).map(spread).collect();
        // With one set per key, these hashes put five or more keys in one
        // set of four: the cliff this layout removes.
        let mut load = [0usize; SETS];
        for &h in &keys {
            load[sets_of(h)[0]] += 1;
        }
        assert!(load.iter().any(|&n| n > WAYS), "{load:?}");

        let fronts: Fronts<u64> = Fronts::new();
        let far = clock::now() + 60_000;
        for round in 0..3 {
            for (i, &h) in keys.iter().enumerate() {
                if fronts.get(h, Query::Int(i as i128), 2, None).is_none() {
                    assert_eq!(round, 0, "key {i} left the front");
                    fronts.put(h, Query::Int(i as i128), i as u64, far, 2);
                }
            }
        }
    }
}
