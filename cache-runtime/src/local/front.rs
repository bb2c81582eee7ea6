//! Per-thread fronts of a local tier: a small four-way set-associative array
//! per thread and tier (inline in one allocation) that answers repeated hits without touching any memory another
//! thread writes, so hits scale with threads (a shared map's read lock is a
//! write to a shared cache line, which threads then pass back and forth).
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
/// Entries per set: four, so that hot keys that hash to one set do not keep
/// replacing each other (with two ways, 64 keys cycled through 128 sets
/// usually had a set of three, which then missed on every call).
const WAYS: usize = 4;

struct Entry<V> {
    hash: u64,
    args: FrontKey,
    value: V,
    expires_at: Millis,
    epoch: u64,
}

struct Front<V> {
    /// Set `i` is `slots[i * WAYS..][..WAYS]`, most recently filled first.
    /// A fixed-size array: its bound is known, and one load less than a slice.
    slots: Box<[Option<Entry<V>>; SETS * WAYS]>,
}

impl<V> Front<V> {
    #[inline]
    fn set(&mut self, hash: u64) -> &mut [Option<Entry<V>>] {
        let start = (hash as usize & (SETS - 1)) * WAYS;
        &mut self.slots[start..start + WAYS]
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
            let entry = front
                .set(hash)
                .iter()
                .flatten()
                .find(|e| e.hash == hash && e.args.is(args));
            if let Some(entry) = entry {
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
                let slots: Box<[Option<Entry<V>>]> = (0..SETS * WAYS).map(|_| None).collect();
                *front = slots.try_into().ok().map(|slots| Front { slots });
            }
            let Some(front) = front else { return };
            let set = front.set(hash);
            // Same arguments: refresh in place, keeping their bytes.
            if let Some(entry) = set
                .iter_mut()
                .flatten()
                .find(|e| e.hash == hash && e.args.is(args))
            {
                entry.value = value;
                entry.expires_at = expires_at;
                entry.epoch = epoch;
                return;
            }
            // Else the new entry goes first and the last one leaves.
            set.rotate_right(1);
            set[0] = Some(Entry {
                hash,
                args: FrontKey::new(args),
                value,
                expires_at,
                epoch,
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Query::Bytes as B;

    #[test]
    fn a_front_answers_its_own_thread_only_and_per_epoch() {
        let fronts: Fronts<u32> = Fronts::new();
        // A lone integer and bytes are different keys.
        fronts.put(9, Query::Int(1), 5, clock::now() + 60_000, 2);
        assert_eq!(fronts.get(9, Query::Int(1), 2, None), Some(5));
        assert_eq!(fronts.get(9, Query::Int(2), 2, None), None);
        assert_eq!(fronts.get(9, B(&[0x10, 1]), 2, None), None);
        let far = clock::now() + 60_000;
        fronts.put(7, B(b"a"), 1, far, 2);
        assert_eq!(fronts.get(7, B(b"a"), 2, None), Some(1));
        assert_eq!(fronts.get(7, B(b"a"), 4, None), None, "another epoch");
        assert_eq!(
            fronts.get(7, B(b"b"), 2, None),
            None,
            "other arguments, same set"
        );
        assert_eq!(fronts.get(8, B(b"a"), 2, None), None);
        // A set holds `WAYS` entries; one more and the oldest leaves.
        let others: Vec<[u8; 1]> = (0..WAYS as u8).map(|i| [b'b' + i]).collect();
        for (i, key) in others.iter().enumerate() {
            let hash = 7 + (i as u64 + 1) * SETS as u64;
            assert_eq!(fronts.get(7, B(b"a"), 2, None), Some(1), "still held");
            fronts.put(hash, B(key), i as u32 + 2, far, 2);
        }
        for (i, key) in others.iter().enumerate() {
            let hash = 7 + (i as u64 + 1) * SETS as u64;
            assert_eq!(fronts.get(hash, B(key), 2, None), Some(i as u32 + 2));
        }
        assert_eq!(fronts.get(7, B(b"a"), 2, None), None, "evicted");
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(fronts.get(7, B(b"a"), 2, None), None, "another thread"));
        });
        fronts.put(7, B(b"x"), 9, clock::now().saturating_sub(1), 2);
        assert_eq!(fronts.get(7, B(b"x"), 2, None), None, "expired");
    }
}
